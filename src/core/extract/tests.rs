use super::*;
use Category as C;

/// [`normalise_chars`] one character at a time, Chinese ones too: the
/// oracle for the proptest below.
fn normalise_chars_per_char(text: &str) -> String {
    let mut n = Normaliser::new(text);
    for (i, raw) in text.char_indices() {
        n.push(text, i, raw);
    }
    n.out
}

proptest::proptest! {
    /// Copying Chinese runs whole changes nothing: the same text as one
    /// character at a time, on mixes of Chinese (both ends of each
    /// range), full-width forms, splitters, spaces and invisibles.
    #[test]
    fn chinese_runs_copy_as_characters_do(text in
        "[\u{3300}-\u{3500}\u{4e00}-\u{4e10}\u{9ff0}-\u{a010}\u{f8f0}-\u{fb10}\u{ff01}-\u{ff5e}\u{3000}\u{200b}\u{1f600}.·、 \tA-Za-z0-9拉肚子]{0,40}") {
        proptest::prop_assert_eq!(normalise_chars(&text), normalise_chars_per_char(&text));
    }
}

/// Every string of the built-in lexicon files (terms, exclusions, cues,
/// pair parts, variants and their targets), keys of tables included,
/// and each pair's first parts joined to its second parts.
fn lexicon_pieces() -> Vec<String> {
    fn walk(v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::String(s) => out.push(s.clone()),
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            toml::Value::Table(t) => {
                // A pair's parts also side by side (most pieces are terms).
                if let (Some(toml::Value::Array(first)), Some(toml::Value::Array(then))) =
                    (t.get("first"), t.get("then"))
                {
                    for (f, t) in first.iter().zip(then.iter().cycle()) {
                        if let (Some(f), Some(t)) = (f.as_str(), t.as_str()) {
                            out.push(format!("{f}{t}"));
                        }
                    }
                }
                t.iter().for_each(|(k, v)| {
                    out.push(k.clone());
                    walk(v, out);
                });
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for src in [BUILTIN_COMMON, BUILTIN_FOOD, BUILTIN_TOURISM] {
        walk(&toml::from_str::<toml::Value>(src).unwrap(), &mut out);
    }
    out
}

proptest::proptest! {
    /// Skipping the texts that hold nothing `quiet` knows changes
    /// nothing: the lexicons find what the full walk over the
    /// normalised text finds, on texts strung from the lexicons' own
    /// pieces, filler and breaks.
    #[test]
    fn the_quiet_check_skips_only_texts_with_nothing_to_find(
        picks in proptest::collection::vec(0usize..1_000_000, 0..8),
        food in proptest::bool::ANY,
    ) {
        use std::sync::LazyLock;
        static EX: LazyLock<(Extractor, Vec<String>)> = LazyLock::new(|| {
            let mut pieces = lexicon_pieces();
            pieces.extend(["今天", "，", "。", "不", " ", "a", "的"].map(String::from));
            (Extractor::builtin().unwrap(), pieces)
        });
        let (ex, pieces) = &*EX;
        let text: String = picks.iter().map(|i| pieces[i % pieces.len()].as_str()).collect();
        let domain = if food { Domain::Food } else { Domain::Tourism };
        proptest::prop_assert_eq!(
            ex.extract_lexicon(domain, &text),
            ex.lexicon_on(domain, &ex.normalise(&text)),
            "{:?}", text
        );
    }
}

fn x() -> Extractor {
    Extractor::builtin().unwrap()
}

fn food(text: &str) -> Vec<&'static str> {
    x().extract(Domain::Food, text).categories.sorted_names()
}

fn tour(text: &str) -> Vec<&'static str> {
    x().extract(Domain::Tourism, text).categories.sorted_names()
}

#[test]
fn reports_count_whatever_the_sentiment() {
    assert_eq!(food("好吃，就是汤里有根头发"), vec!["foreign_object"]);
    assert_eq!(food("吃完拉肚子了，还吐了"), vec!["illness"]);
    assert_eq!(food("太难吃了"), Vec::<&str>::new());
    assert_eq!(
        food("Found a cockroach in the soup and got sick after"),
        vec!["foreign_object", "illness"]
    );
}

#[test]
fn negation_worry_and_other_places_do_not_count() {
    assert!(food("吃了没有拉肚子，放心").is_empty());
    assert!(food("就怕拉肚子").is_empty());
    assert!(food("担心会不会食物中毒").is_empty());
    assert!(food("隔壁那家吃了拉肚子").is_empty());
    assert!(food("We did not get sick at all").is_empty());
    assert!(tour("房间很干净").is_empty());
    assert!(tour("房间不脏").is_empty());
}

#[test]
fn scope_ends_at_breakers_and_pseudo_cues() {
    assert_eq!(food("吃了不到一小时就拉肚子"), vec!["illness"]);
    assert_eq!(food("无语了吃出头发"), vec!["foreign_object"]);
    assert_eq!(food("没想到吃完拉肚子"), vec!["illness"]);
}

#[test]
fn figurative_and_lookalike_phrases_do_not_count() {
    assert!(food("难吃得快吐了").is_empty());
    assert!(food("送来的塑料袋破了").is_empty());
    assert!(food("The ratings lie").is_empty());
}

#[test]
fn evasions_are_folded() {
    assert_eq!(food("吃完拉\u{200b}肚子"), vec!["illness"]);
    assert_eq!(food("吃完拉 肚 子"), vec!["illness"]);
    assert_eq!(food("吃完拉杜子"), vec!["illness"]);
    assert_eq!(food("湯裡有頭髮"), vec!["foreign_object"]);
    assert_eq!(food("FOOD POISONING"), vec!["illness"]);
    assert_eq!(food("吃完拉😭肚子"), vec!["illness"]);
}

#[test]
fn tourism_categories() {
    assert_eq!(tour("前台乱收费，押金不退"), vec!["price_fraud"]);
    assert_eq!(tour("导游强制购物，不买不让走"), vec!["forced_consumption"]);
    assert_eq!(tour("床单有污渍，卫生很差"), vec!["hygiene"]);
    let e = x().extract(Domain::Tourism, "浴室漏电，差点触电");
    assert!(e.categories.contains(C::Safety));
    assert!(e.hits.iter().any(|h| h.term == "漏电"));
}

#[test]
fn two_part_patterns_need_both_parts_in_one_sentence() {
    assert_eq!(
        tour("网上的照片看着很新，实际完全不一样"),
        vec!["false_advertising"]
    );
    assert_eq!(tour("结账时竟然要收两天的钱"), vec!["price_fraud"]);
    assert_eq!(tour("退房的时候硬是要我赔偿毛巾"), vec!["price_fraud"]);
    // The parts in different sentences, in the wrong order, or negated.
    assert!(tour("照片拍得很好。房间布局不一样").is_empty());
    assert!(tour("房间不一样，照片也好看").is_empty());
    assert!(tour("实物和图片没有不一样").is_empty());
    let e = x().extract(Domain::Tourism, "携程上的图片和实物差太多");
    assert!(e.hits.iter().any(|h| h.term == "照片…不符"), "{:?}", e.hits);
}

#[test]
fn a_pair_answers_only_to_cues_after_its_first_part() {
    // 不 belongs to the first part (根本不是), it does not negate 平方.
    assert_eq!(
        tour("进门一看根本不是45平方米的房间"),
        vec!["false_advertising"]
    );
    // A negation between the parts still cancels.
    assert!(tour("照片和实物没有不一样").is_empty());
}

/// A hand-made signal model: safety when 蓝鲸 and 鲸鱼 are both there.
fn with_model() -> Extractor {
    use crate::core::extract::learned::{CategoryWeights, SignalModelFile, bucket_of};
    let bits = 10;
    let file = SignalModelFile::new(
        Domain::Tourism,
        bits,
        "test",
        "test",
        vec![CategoryWeights {
            category: "safety".into(),
            intercept: -4.0,
            calibration: crate::core::model::Calibration::IDENTITY,
            threshold: 0.5,
            weights: vec![
                (bucket_of("蓝鲸", bits), 3.0),
                (bucket_of("鲸鱼", bits), 3.0),
            ],
        }],
    );
    let json = file.to_sealed_json().unwrap();
    let mut ex = x();
    ex.set_model(Domain::Tourism, Some(("t.json", &json)))
        .unwrap();
    ex
}

#[test]
fn the_learned_model_adds_explained_signals_that_cues_still_cancel() {
    let ex = with_model();
    let e = ex.extract(Domain::Tourism, "窗外有一条蓝鲸鱼");
    assert_eq!(e.categories.sorted_names(), vec!["safety"]);
    assert!(
        e.hits
            .iter()
            .any(|h| h.term.starts_with("ngram:") && h.term.contains("鲸")),
        "{:?}",
        e.hits
    );
    assert!(
        ex.extract(Domain::Tourism, "窗外没有蓝鲸鱼")
            .categories
            .is_empty()
    );
    assert!(
        ex.extract(Domain::Tourism, "怕有蓝鲸鱼")
            .categories
            .is_empty()
    );
    assert!(
        ex.extract_lexicon(Domain::Tourism, "窗外有一条蓝鲸鱼")
            .categories
            .is_empty()
    );
    // Food has no model; the tourism one does not leak into it.
    assert!(
        ex.extract(Domain::Food, "窗外有一条蓝鲸鱼")
            .categories
            .is_empty()
    );
    let mut ex = ex;
    ex.set_model(Domain::Tourism, None).unwrap();
    assert!(
        ex.extract(Domain::Tourism, "窗外有一条蓝鲸鱼")
            .categories
            .is_empty()
    );
}

#[test]
fn a_bad_signal_model_is_refused_with_its_path() {
    let mut ex = x();
    let e = ex
        .set_model(Domain::Tourism, Some(("my/signals-tourism.json", "{")))
        .unwrap_err();
    assert!(e.to_string().contains("my/signals-tourism.json"), "{e}");
    assert!(!ex.has_model(Domain::Tourism));
}

#[test]
fn a_pair_without_parts_is_refused() {
    let bad = "domain = \"tourism\"\n[categories.safety]\nterms = [\"x\"]\n[[categories.safety.pairs]]\nfirst = []\nthen = [\"y\"]\nwithin = 3\n";
    let e = Extractor::from_sources(
        ("c", BUILTIN_COMMON),
        ("f", BUILTIN_FOOD),
        ("my/t.toml", bad),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("my/t.toml") && e.to_string().contains("first"),
        "{e}"
    );
}

#[test]
fn a_lexicon_with_a_term_across_a_clause_break_is_walked_clause_by_clause() {
    // "好吃，头" would take "头" from "头发" in a scan of the whole text;
    // in the clause "头发很多" nothing does, and hair is found.
    let lexicon = "domain = \"food\"\n[categories.foreign_object]\nterms = [\"头发\"]\nexclude = [\"好吃，头\"]\n";
    let ex = Extractor::from_sources(
        ("c", BUILTIN_COMMON),
        ("my/food.toml", lexicon),
        ("t", BUILTIN_TOURISM),
    )
    .unwrap();
    let (terms, risk) = ex.food.clause_terms.as_ref().unwrap();
    assert_eq!((terms.patterns_len(), risk.as_slice()), (1, &[true][..]));
    assert!(
        ex.extract_lexicon(Domain::Food, "好吃，头发很多")
            .categories
            .contains(C::ForeignObject)
    );
}

#[test]
fn domain_categories_stay_in_their_domain() {
    // "price_fraud" is not a food category, whatever the text says.
    assert!(food("乱收费").is_empty());
}

#[test]
fn a_bad_lexicon_is_refused_with_its_path() {
    let bad = "domain = \"food\"\n[categories.fashion]\nterms = [\"x\"]\n";
    let e = Extractor::from_sources(
        ("c", BUILTIN_COMMON),
        ("my/food.toml", bad),
        ("t", BUILTIN_TOURISM),
    )
    .unwrap_err();
    assert!(e.to_string().contains("my/food.toml") && e.to_string().contains("fashion"));
}

#[test]
fn normalisation() {
    assert_eq!(normalise_chars("ＡＢＣ　拉 肚"), "abc 拉肚");
    assert_eq!(normalise_chars("a\u{202e}b"), "ab");
    // Separators repeated between single characters are dodges...
    assert_eq!(normalise_chars("拉.肚.子"), "拉肚子");
    assert_eq!(normalise_chars("拉．肚．子"), "拉肚子");
    // ...but not ordinary punctuation, whatever its width.
    assert_eq!(normalise_chars("好吃.头发很多"), "好吃.头发很多");
    assert_eq!(normalise_chars("菜品物美价廉～～～"), "菜品物美价廉~~~");
}

/// Where a model decides, a lexicon hit of a category it covers counts only
/// when the model agrees; a category it does not cover stays with the
/// lexicons; every covered category gets a probability.
#[test]
fn the_learned_model_decides_the_categories_it_covers() {
    use crate::core::extract::learned::{CategoryWeights, SignalModelFile};
    let text = "床单很脏，结账时乱收费";
    assert_eq!(tour(text), vec!["hygiene", "price_fraud"]);
    // A model of hygiene alone that never reaches its threshold.
    let file = SignalModelFile::new(
        Domain::Tourism,
        10,
        "test",
        "test",
        vec![CategoryWeights {
            category: "hygiene".into(),
            intercept: -6.0,
            calibration: crate::core::model::Calibration::IDENTITY,
            threshold: 0.5,
            weights: Vec::new(),
        }],
    );
    let mut ex = x();
    ex.set_model(
        Domain::Tourism,
        Some(("t.json", &file.to_sealed_json().unwrap())),
    )
    .unwrap();
    let e = ex.extract(Domain::Tourism, text);
    assert_eq!(e.categories.sorted_names(), vec!["price_fraud"]);
    assert!(e.hits.iter().all(|h| h.category == Category::PriceFraud));
    assert_eq!(e.probabilities.len(), 1);
    let (c, p) = e.probabilities[0];
    assert_eq!(c, Category::Hygiene);
    assert!(p < 0.01, "{p}");
}

/// Regulators' overrides in a lexicon: a `force` entry reports its category
/// (unless negated) whatever the model says; a `block` entry takes its
/// category out whatever the lexicons or the model say.
#[test]
fn force_and_block_entries_override_the_decision() {
    // The shipped tourism lexicon, with overrides added to two categories.
    let tourism = BUILTIN_TOURISM
        .replacen(
            "[categories.safety]\n",
            "[categories.safety]\nforce = [\"插座冒火花\"]\n",
            1,
        )
        .replacen(
            "[categories.hygiene]\n",
            "[categories.hygiene]\nblock = [\"床单很脏的那家\"]\n",
            1,
        );
    let ex = Extractor::from_sources(
        ("common.toml", BUILTIN_COMMON),
        ("food.toml", BUILTIN_FOOD),
        ("tourism.toml", &tourism),
    )
    .unwrap();
    assert!(
        x().extract(Domain::Tourism, "插座冒火花，吓死了")
            .categories
            .is_empty()
    );
    let e = ex.extract(Domain::Tourism, "插座冒火花，吓死了");
    assert_eq!(e.categories.sorted_names(), vec!["safety"]);
    assert!(
        e.hits.iter().any(|h| h.term == "force:插座冒火花"),
        "{:?}",
        e.hits
    );
    assert!(
        ex.extract(Domain::Tourism, "不是插座冒火花，是灯坏了")
            .categories
            .is_empty(),
        "a negated force entry is not forced"
    );
    assert_eq!(tour("床单很脏"), vec!["hygiene"]);
    assert!(
        ex.extract(Domain::Tourism, "比床单很脏的那家好多了")
            .categories
            .is_empty()
    );
    // A bad entry is refused with the file's name.
    let bad = BUILTIN_TOURISM.replacen(
        "[categories.safety]\n",
        "[categories.safety]\nforce = [\"\"]\n",
        1,
    );
    let e = Extractor::from_sources(
        ("common.toml", BUILTIN_COMMON),
        ("food.toml", BUILTIN_FOOD),
        ("tourism.toml", &bad),
    )
    .unwrap_err();
    assert!(e.to_string().contains("tourism.toml"), "{e}");
}
