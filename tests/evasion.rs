//! Evasion resistance of the extractor: the tricks people (and review
//! platforms' own filters) use to dodge keyword matching must not hide a
//! risk from the regulator. Each case pairs a disguised review with the
//! category its plain form has, and checks both forms agree, through the
//! public `reviewguard::core::extract` API with the compiled-in lexicons.

use reviewguard::core::extract::Extractor;
use reviewguard::types::Domain;

fn extractor() -> Extractor {
    Extractor::builtin().expect("the compiled-in lexicons load")
}

/// (description, domain, disguised text, category it must yield)
type Case = (&'static str, Domain, &'static str, &'static str);

fn check(cases: &[Case]) {
    let ex = extractor();
    let mut failed = Vec::new();
    for (what, domain, text, want) in cases {
        let got = ex.extract(*domain, text).categories.sorted_names();
        if !got.contains(want) {
            failed.push(format!("{what}: {text:?} gave {got:?}, want {want}"));
        }
    }
    assert!(failed.is_empty(), "evaded:\n{}", failed.join("\n"));
}

#[test]
fn the_plain_forms_are_found() {
    // The baseline the disguises below are measured against.
    check(&[
        ("plain illness", Domain::Food, "吃完就拉肚子了", "illness"),
        ("plain hair", Domain::Food, "汤里有头发", "foreign_object"),
        ("plain fly", Domain::Food, "饭里有苍蝇", "foreign_object"),
        ("plain dirty room", Domain::Tourism, "房间很脏", "hygiene"),
        (
            "plain overcharge",
            Domain::Tourism,
            "导游乱收费",
            "price_fraud",
        ),
    ]);
}

#[test]
fn zero_width_and_invisible_characters_inside_words() {
    check(&[
        (
            "zero-width space",
            Domain::Food,
            "吃完就拉\u{200B}肚\u{200B}子了",
            "illness",
        ),
        (
            "zero-width joiner",
            Domain::Food,
            "汤里有头\u{200D}发",
            "foreign_object",
        ),
        (
            "word joiner",
            Domain::Food,
            "饭里有苍\u{2060}蝇",
            "foreign_object",
        ),
        ("BOM inside", Domain::Tourism, "房间很\u{FEFF}脏", "hygiene"),
        (
            "right-to-left override",
            Domain::Food,
            "吃完就\u{202E}拉肚子\u{202C}了",
            "illness",
        ),
        (
            "soft hyphen",
            Domain::Food,
            "汤里有头\u{00AD}发",
            "foreign_object",
        ),
        (
            "emoji between characters",
            Domain::Food,
            "吃完就拉😭肚😭子了",
            "illness",
        ),
    ]);
}

#[test]
fn spaces_between_characters() {
    check(&[
        ("ASCII spaces", Domain::Food, "吃完就拉 肚 子了", "illness"),
        (
            "ideographic spaces",
            Domain::Food,
            "汤里有头\u{3000}发",
            "foreign_object",
        ),
        (
            "tabs and newlines",
            Domain::Food,
            "饭里有苍\t\n蝇",
            "foreign_object",
        ),
        (
            "many spaces",
            Domain::Tourism,
            "导 游 乱 收 费",
            "price_fraud",
        ),
    ]);
}

#[test]
fn full_width_forms() {
    check(&[
        (
            "full-width latin and digits around the term",
            Domain::Food,
            "ＡＢＣ１２３汤里有头发",
            "foreign_object",
        ),
        (
            "full-width punctuation between characters",
            Domain::Food,
            "吃完就拉肚子了！！！",
            "illness",
        ),
    ]);
}

#[test]
fn traditional_characters() {
    check(&[
        ("頭髮", Domain::Food, "湯裡有頭髮", "foreign_object"),
        ("蒼蠅", Domain::Food, "飯裡有蒼蠅", "foreign_object"),
        ("腹瀉", Domain::Food, "吃完腹瀉了一整晚", "illness"),
        ("髒", Domain::Tourism, "房間很髒", "hygiene"),
        ("亂收費", Domain::Tourism, "導遊亂收費", "price_fraud"),
        ("變質", Domain::Food, "肉已經變質了", "spoilage"),
    ]);
}

#[test]
fn homophone_substitutions() {
    check(&[
        ("拉杜子", Domain::Food, "吃完就拉杜子了", "illness"),
        ("拉肚紫", Domain::Food, "吃完就拉肚紫了", "illness"),
    ]);
}

#[test]
fn disguises_combined() {
    check(&[
        (
            "traditional + zero-width + spaces",
            Domain::Food,
            "湯裡有 頭\u{200B}髮",
            "foreign_object",
        ),
        (
            "homophone + spaces + zero-width",
            Domain::Food,
            "吃完就拉 杜\u{200B}子了",
            "illness",
        ),
    ]);
}

#[test]
fn disguises_do_not_undo_negation() {
    // Normalising must not turn a negated or worried statement into a risk.
    let ex = extractor();
    for text in ["没 有 拉 肚 子", "沒有拉杜子", "怕\u{200B}拉肚子"] {
        let got = ex.extract(Domain::Food, text).categories.sorted_names();
        assert!(
            !got.contains(&"illness"),
            "{text:?} is not an illness report, got {got:?}"
        );
    }
}

/// Dodges seen in the wild beyond the plain forms: separators between the
/// characters, pinyin for one character, look-alikes, traditional characters
/// outside the phrase list, invisible fillers.
#[test]
fn split_pinyin_lookalike_and_filler_dodges() {
    check(&[
        (
            "dots between characters",
            Domain::Food,
            "吃完就拉.肚.子了",
            "illness",
        ),
        (
            "dashes between characters",
            Domain::Food,
            "吃完就拉-肚-子了",
            "illness",
        ),
        (
            "stars between characters",
            Domain::Food,
            "吃完就拉*肚*子了",
            "illness",
        ),
        (
            "underscores between characters",
            Domain::Food,
            "吃完就拉_肚_子了",
            "illness",
        ),
        (
            "pinyin for one character",
            Domain::Food,
            "吃完就la肚子了",
            "illness",
        ),
        (
            "pinyin in the middle",
            Domain::Food,
            "吃完就拉du子了",
            "illness",
        ),
        (
            "pinyin in 头发",
            Domain::Food,
            "汤里有tou发",
            "foreign_object",
        ),
        (
            "look-alike 垃 for 拉",
            Domain::Food,
            "吃完就垃肚子了",
            "illness",
        ),
        (
            "common misspelling 腹泄",
            Domain::Food,
            "吃完腹泄了",
            "illness",
        ),
        (
            "Japanese form 髪",
            Domain::Food,
            "汤里有头髪",
            "foreign_object",
        ),
        (
            "mixed traditional 頭发",
            Domain::Food,
            "汤里有頭发",
            "foreign_object",
        ),
        (
            "traditional 強制購物",
            Domain::Tourism,
            "導遊強制購物",
            "forced_consumption",
        ),
        (
            "Mongolian vowel separator U+180E",
            Domain::Food,
            "吃完就拉\u{180E}肚子了",
            "illness",
        ),
        (
            "combining grapheme joiner U+034F",
            Domain::Food,
            "吃完就拉\u{034F}肚子了",
            "illness",
        ),
        (
            "Hangul filler U+3164",
            Domain::Food,
            "吃完就拉\u{3164}肚子了",
            "illness",
        ),
    ]);
}
