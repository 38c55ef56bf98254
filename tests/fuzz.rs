//! Property-based fuzzing of the three parts that read hostile text: the
//! review decoder, the extractor and the PII redactor (with the whole core
//! behind the decoder), plus a replay of the committed regression corpus in
//! `tests/fuzz-corpus/`.
//!
//! CI runs a modest number of cases per property (`DEFAULT_CASES`). For a long
//! run set `PROPTEST_CASES`, e.g.
//! `PROPTEST_CASES=200000 cargo test --release --test fuzz -- --nocapture`.
//! A failing input proptest finds goes into `tests/fuzz-corpus/<target>/` as a
//! file of its own (raw bytes), so every later `cargo test` replays it.
//!
//! cargo-fuzz (libFuzzer) is not used: it needs a nightly toolchain and an
//! instrumented build of librdkafka, which CI here does not have.

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use reviewguard::core::extract::Extractor;
use reviewguard::core::privacy::Pseudonymiser;
use reviewguard::core::redact;
use reviewguard::core::review::{self, DecodeOptions};
use reviewguard::core::scorer::{Models, Scorer, States};
use reviewguard::types::Domain;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

const DEFAULT_CASES: u32 = 512;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn runner() -> TestRunner {
    TestRunner::new(PtConfig {
        cases: cases(),
        failure_persistence: None,
        ..PtConfig::default()
    })
}

static SCORER: LazyLock<Scorer> = LazyLock::new(|| Scorer {
    extractor: Arc::new(Extractor::builtin().expect("compiled-in lexicons")),
    models: Models::builtin().expect("compiled-in models"),
    pseudonyms: Pseudonymiser::new(b"fuzz-key-fuzz-key-fuzz"),
    decide: Default::default(),
    outcomes: Default::default(),
});

/// Prints how many inputs a property ran and for how long (for the record of
/// a long run: `cargo test --test fuzz -- --nocapture`).
fn report(what: &str, n: u32, started: Instant) {
    eprintln!(
        "fuzz {what}: {n} inputs in {:.2}s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------- checks

/// Everything the decoder promises about one message, and the core after it.
fn check_decode(bytes: &[u8]) {
    let opts = DecodeOptions {
        max_bytes: review::DEFAULT_MAX_MESSAGE_BYTES,
        default_domain: Some(Domain::Food),
    };
    match review::decode(bytes, &opts) {
        Ok(r) => {
            for id in [&r.review_id, &r.business_id] {
                let n = id.chars().count();
                assert!((1..=128).contains(&n), "id of {n} chars accepted");
                assert!(!id.chars().any(char::is_control), "control char in an id");
            }
            if let Some(x) = r.rating {
                assert!((1.0..=5.0).contains(&x), "rating {x} accepted");
            }
            assert!(review::parse_created_at(&r.created_at).is_ok());
            // The accepted review goes through the whole core without panicking.
            let mut states = States::default();
            let out = SCORER.process(&mut states, &r);
            if let Some(f) = out.flag {
                assert!(f.evidence.len() <= reviewguard::core::flag::MAX_EVIDENCE);
            }
        }
        Err(rej) => {
            // A rejection's detail never quotes the message.
            if let Ok(text) = std::str::from_utf8(bytes) {
                if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(text) {
                    for v in o.values() {
                        // (The example timestamp in the created_at message is
                        // no quote, nor are the domains the domain message names.)
                        if let Some(s) = v.as_str().filter(|s| {
                            s.chars().count() >= 6
                                && !"2026-11-27T12:30:00+08:00".contains(*s)
                                && !["food", "tourism"].contains(s)
                        }) {
                            assert!(
                                !rej.detail.contains(s),
                                "rejection detail quotes the payload: {}",
                                rej.detail
                            );
                        }
                    }
                }
            }
        }
    }
}

fn check_extract(text: &str) {
    let ex = &SCORER.extractor;
    for d in Domain::ALL {
        let a = ex.extract(d, text);
        let b = ex.extract(d, text);
        assert_eq!(a, b, "extraction is not deterministic");
        // Invisible characters between every two characters change nothing.
        let hidden: String = text.chars().flat_map(|c| [c, '\u{200B}']).collect();
        assert_eq!(
            a.categories,
            ex.extract(d, &hidden).categories,
            "zero-width characters changed the signals of {text:?}"
        );
        // Full-width ASCII reads as ASCII.
        let wide: String = text
            .chars()
            .map(|c| match c as u32 {
                0x21..=0x7E => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
                _ => c,
            })
            .collect();
        assert_eq!(
            a.categories,
            ex.extract(d, &wide).categories,
            "full-width forms changed the signals of {text:?}"
        );
    }
}

fn check_redact(text: &str) {
    let r = redact::redact(text);
    // Masking again finds nothing new to mask.
    assert_eq!(redact::redact(&r), r, "redaction is not stable on {text:?}");
    let s = redact::snippet(text, 40);
    assert!(s.chars().count() <= 41, "snippet too long");
    assert!(
        !s.chars().any(char::is_control),
        "control char in a snippet"
    );
}

// ---------------------------------------------------------------- strategies

/// Pieces hostile reviews are made of: lexicon terms and cues, disguises,
/// control characters, markup, numbers that look like PII.
const FRAGMENTS: &[&str] = &[
    "拉肚子",
    "拉杜子",
    "頭髮",
    "头发",
    "苍蝇",
    "没有",
    "不",
    "怕",
    "别家",
    "但是",
    "房间很脏",
    "乱收费",
    "导游",
    "，",
    "。",
    "！",
    "?",
    " ",
    "\u{3000}",
    "\u{200B}",
    "\u{202E}",
    "\u{FEFF}",
    "\u{0}",
    "\u{1b}[31m",
    "\r\n",
    "😭",
    "👨‍👩‍👧",
    "ＡＢＣ",
    "rat",
    "<script>alert(1)</script>",
    "'; DROP TABLE reviews;--",
    "13812345678",
    "+86 138-1234-5678",
    "110105199003071234",
    "a.b@example.com",
    "微信：abc_12345",
    "021-12345678",
    "00000000000000000000",
    "@@@@",
    "\\u0000",
    "\"",
];

fn hostile_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
            1 => any::<char>().prop_map(String::from),
            1 => "\\PC{0,8}",
        ],
        0..max,
    )
    .prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as V;
    let leaf = prop_oneof![
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(V::from),
        any::<f64>().prop_map(|x| serde_json::Number::from_f64(x).map_or(V::Null, V::Number)),
        (0u8..=7).prop_map(V::from),
        hostile_text(6).prop_map(V::String),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?"
            .prop_map(V::String),
        prop::sample::select(&["food", "tourism", "FOOD", "", "fashion"][..]).prop_map(V::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(V::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| V::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "review_id",
    "business_id",
    "domain",
    "text",
    "created_at",
    "rating",
    "business_name",
    "region",
    "platform",
    "reviewer_id",
    "photos",
];

/// A review-shaped object: each contract field present or not, each with a
/// valid value or any JSON value, plus unknown fields.
fn review_object() -> impl Strategy<Value = Vec<u8>> {
    let valid = |f: &str| -> serde_json::Value {
        match f {
            "domain" => "food".into(),
            "created_at" => "2026-11-27T12:30:00+08:00".into(),
            "rating" => 2.into(),
            "photos" => 1.into(),
            _ => "x1".into(),
        }
    };
    (
        prop::collection::vec((0u8..3, json_value()), FIELDS.len()),
        prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3),
    )
        .prop_map(move |(choices, extra)| {
            let mut o = serde_json::Map::new();
            for (k, v) in extra {
                o.insert(k, v);
            }
            for (f, (choice, v)) in FIELDS.iter().zip(choices) {
                match choice {
                    0 => {}
                    1 => {
                        o.insert((*f).to_owned(), valid(f));
                    }
                    _ => {
                        o.insert((*f).to_owned(), v);
                    }
                }
            }
            serde_json::to_vec(&serde_json::Value::Object(o)).unwrap_or_default()
        })
}

/// A valid review's bytes with a few random byte edits.
fn mutated_review() -> impl Strategy<Value = Vec<u8>> {
    let base = r#"{"review_id":"r1","business_id":"shop-1","domain":"food","text":"吃完拉肚子，汤里有头发","created_at":"2026-11-27T12:30:00+08:00","rating":1,"photos":2,"reviewer_id":"u-1"}"#.as_bytes().to_vec();
    prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8).prop_map(
        move |edits| {
            let mut b = base.clone();
            for (at, byte, op) in edits {
                if b.is_empty() {
                    break;
                }
                let i = at.index(b.len());
                match op {
                    0 => b[i] = byte,
                    1 => b.insert(i, byte),
                    _ => {
                        b.remove(i);
                    }
                }
            }
            b
        },
    )
}

// ---------------------------------------------------------------- properties

#[test]
fn decoder_on_arbitrary_bytes() {
    let started = Instant::now();
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..600), |b| {
            check_decode(&b);
            Ok(())
        })
        .unwrap();
    report("decoder/bytes", cases(), started);
}

#[test]
fn decoder_on_review_shaped_objects() {
    let started = Instant::now();
    runner()
        .run(&review_object(), |b| {
            check_decode(&b);
            Ok(())
        })
        .unwrap();
    report("decoder/objects", cases(), started);
}

#[test]
fn decoder_on_mutated_reviews() {
    let started = Instant::now();
    runner()
        .run(&mutated_review(), |b| {
            check_decode(&b);
            Ok(())
        })
        .unwrap();
    report("decoder/mutations", cases(), started);
}

#[test]
fn extractor_on_hostile_text() {
    let started = Instant::now();
    runner()
        .run(&hostile_text(40), |t| {
            check_extract(&t);
            Ok(())
        })
        .unwrap();
    report("extractor", cases(), started);
}

#[test]
fn redactor_on_hostile_text() {
    let started = Instant::now();
    runner()
        .run(&hostile_text(40), |t| {
            check_redact(&t);
            Ok(())
        })
        .unwrap();
    report("redactor", cases(), started);
}

proptest! {
    #![proptest_config(PtConfig { cases: cases(), failure_persistence: None, ..PtConfig::default() })]

    /// Every mobile number written with the usual separators is masked.
    #[test]
    fn mobile_numbers_are_masked_whatever_surrounds_them(
        before in hostile_text(4),
        after in hostile_text(4),
        sep in prop::sample::select(&["", " ", "-"][..]),
        n in 3u8..=9,
        rest in 0u64..1_000_000_000,
    ) {
        let digits = format!("1{n}{rest:09}");
        let written = format!("{}{sep}{}{sep}{}", &digits[..3], &digits[3..7], &digits[7..]);
        // A digit glued to the number makes it another number: keep a boundary.
        let text = format!("{before}。{written}。{after}");
        let r = redact::redact(&text);
        prop_assert!(!r.contains(&written), "{written} left in {r}");
    }
}

// ---------------------------------------------------------------- size and shape

/// Long and repetitive inputs at the message size limit: each part must stay
/// linear. The bound is generous (debug build, a shared machine); a quadratic
/// path on 256 KiB takes minutes, not seconds.
const LINEAR_BOUND: Duration = Duration::from_secs(10);

fn repeat_to_limit(unit: &str) -> String {
    let n = review::DEFAULT_MAX_MESSAGE_BYTES / unit.len().max(1) - 64;
    unit.repeat(n)
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let v = f();
    let took = started.elapsed();
    assert!(took < LINEAR_BOUND, "{what} took {took:?}");
    v
}

/// Pathological texts with no risk terms, or with cues but few terms.
const LONG_UNITS: &[&str] = &[
    "a",
    "好",
    " ",
    "\u{200B}",
    "😭",
    "没有",
    "不是",
    "别家",
    "1",
    "1381234567",
    "a@",
    "微信",
    "，",
];

/// Units that put a risk term in every few characters of one clause.
const LONG_TERM_UNITS: &[&str] = &["拉肚子", "没拉肚子", "头发 ", "脏"];

#[test]
fn long_repetitive_text_is_handled_in_linear_time() {
    let ex = &SCORER.extractor;
    for unit in LONG_UNITS {
        let text = repeat_to_limit(unit);
        timed(&format!("redacting {unit:?} x {}", text.len()), || {
            redact::snippet(&text, 120)
        });
        for d in Domain::ALL {
            timed(&format!("extracting {unit:?} x {}", text.len()), || {
                ex.extract(d, &text)
            });
        }
        let msg = serde_json::json!({
            "review_id": "r", "business_id": "b", "domain": "food",
            "created_at": "2026-11-27T12:30:00+08:00", "text": unit.repeat(text.len() / unit.len() / 2),
        });
        let bytes = serde_json::to_vec(&msg).unwrap_or_default();
        timed("decoding a long message", || check_decode(&bytes));
    }
}

/// One clause packed with risk terms: every term looks back for cues.
/// A clause of n characters with a term every few characters costs O(n): the
/// extractor finds a clause's cues once and walks them beside the terms
/// (rescanning the clause for every term would take minutes at the size
/// limit).
#[test]
fn one_long_clause_full_of_terms_is_linear() {
    let ex = &SCORER.extractor;
    for unit in LONG_TERM_UNITS {
        let text = repeat_to_limit(unit);
        for d in Domain::ALL {
            timed(&format!("extracting {unit:?} x {}", text.len()), || {
                ex.extract(d, &text)
            });
        }
    }
}

#[test]
fn deep_nesting_and_huge_numbers_are_refused_not_crashed() {
    let depth = review::DEFAULT_MAX_MESSAGE_BYTES / 2 - 100;
    let deep = format!(
        r#"{{"review_id":"r","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    timed("deep nesting", || check_decode(deep.as_bytes()));
    let deep_obj = format!(
        r#"{{"review_id":"r","x":{}1{}}}"#,
        r#"{"a":"#.repeat(20_000),
        "}".repeat(20_000)
    );
    timed("deep objects", || check_decode(deep_obj.as_bytes()));
    let big = format!(
        r#"{{"review_id":"r","business_id":"b","text":"","created_at":"2026-11-27T12:30:00+08:00","rating":1{}}}"#,
        "0".repeat(100_000)
    );
    timed("huge number", || check_decode(big.as_bytes()));
    let exp = br#"{"review_id":"r","business_id":"b","text":"","created_at":"2026-11-27T12:30:00+08:00","rating":1e999999999}"#;
    check_decode(exp);
    let many_keys: String = (0..20_000)
        .map(|i| format!(r#""k{i}":{i},"#))
        .collect::<String>();
    let wide = format!(r#"{{{many_keys}"review_id":"r"}}"#);
    timed("many keys", || check_decode(wide.as_bytes()));
    let dup = r#"{"review_id":"a","review_id":"b","business_id":"b","text":"","created_at":"2026-11-27T12:30:00+08:00"}"#;
    check_decode(dup.as_bytes());
}

// ---------------------------------------------------------------- corpus

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, b)
        })
        .collect()
}

#[test]
fn regression_corpus_replays() {
    let mut n = 0;
    for (path, bytes) in corpus("decode") {
        eprintln!("decode {}", path.display());
        timed(&path.display().to_string(), || check_decode(&bytes));
        n += 1;
    }
    for target in ["extract", "redact"] {
        for (path, bytes) in corpus(target) {
            let text = String::from_utf8_lossy(&bytes);
            timed(&path.display().to_string(), || {
                if target == "extract" {
                    check_extract(&text)
                } else {
                    check_redact(&text)
                }
            });
            n += 1;
        }
    }
    assert!(
        n >= 10,
        "the corpus holds {n} files; it was not found whole"
    );
}

/// Disguised identifiers in a review are still masked in the snippet that
/// leaves the process as evidence.
#[test]
fn disguised_identifiers_are_masked_in_snippets() {
    for (text, leaked) in [
        ("电话１３８１２３４５６７８找我", "5678"),
        ("电话138\u{200B}1234\u{200B}5678找我", "5678"),
        ("电话1\u{2060}3\u{2060}8\u{2060}1234 5678找我", "5678"),
        ("电话\u{202E}13812345678\u{202C}找我", "5678"),
        ("身份证１１０１０５１９９００３０７１２３４", "0307"),
        ("邮箱ａ.ｂ＠ｅｘａｍｐｌｅ.ｃｏｍ", "example"),
        ("加微信：ａｂｃ_12345", "12345"),
    ] {
        let s = redact::snippet(text, 80);
        let wide: String = leaked
            .chars()
            .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
            .collect();
        assert!(
            !s.contains(leaked) && !s.contains(&wide),
            "{text:?} -> {s:?}"
        );
    }
    // What people write stays as written.
    assert_eq!(
        redact::snippet("好吃，就是汤里有头发！ＯＫ", 80),
        "好吃，就是汤里有头发！OK"
    );
    let s = redact::snippet("电话\u{3000}13812345678", 80);
    assert!(!s.contains("5678"), "{s}");
}
