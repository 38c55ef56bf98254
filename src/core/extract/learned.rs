//! The learned signal model: the decider of the risk categories of a
//! domain, where one is loaded. Per category, a logistic regression over
//! sparse hashed features of the normalised text — character n-grams (1 to
//! 3 characters), the categories the lexicons found, and the cues present
//! (negation, worry, another place) alone and crossed with those categories —
//! calibrated (Platt scaling) into a probability, with a threshold chosen by
//! cross-validation. `reviewguard fit-signals` fits it
//! ([`crate::offline::fit_signals`]).
//!
//! The lexicons thus become features and evidence rather than the decision:
//! a plain complaint the lexicons never saw can still be found, and a
//! lexicon hit in a context the labels say is no report can be outvoted.
//! Each decision is explained by the n-grams that weigh most for it (they
//! become the [`crate::core::extract::Hit`] term, e.g. `ngram:吐了|诊所`).
//!
//! The model file (`signals-<domain>.json`) lives beside the lexicons, loads
//! and is reloaded with them, and carries the sha256 of its content
//! (`content_sha256`, as the scoring models do): a file whose content does
//! not match is refused, and the model before it keeps serving.

use crate::core::model::{Calibration, content_digest};
use crate::types::Domain;
use crate::types::category::{Category, CategorySet};
use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

/// Format tag of the model file.
pub const FORMAT: &str = "reviewguard-signals-2";

/// The longest n-gram, in characters.
const MAX_N: usize = 3;

/// Most hash bits a model may use (2^20 buckets).
pub const MAX_BITS: u32 = 20;

/// The model file, as written by `fit-signals`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalModelFile {
    pub format: String,
    pub domain: String,
    /// Version of the model, for people and the logs.
    pub version: String,
    /// What it was fitted on and how, for people.
    pub fitted_on: String,
    /// Features are hashed into 2^bits buckets.
    pub bits: u32,
    pub categories: Vec<CategoryWeights>,
    /// sha256 of the content without this field ([`content_digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryWeights {
    pub category: String,
    pub intercept: f64,
    /// From the model's log-odds to a probability.
    pub calibration: Calibration,
    /// The category is reported at this calibrated probability or above.
    pub threshold: f64,
    /// Non-zero weights as `[bucket, weight]`, by bucket.
    pub weights: Vec<(u32, f32)>,
}

impl SignalModelFile {
    /// A model file of this format for `domain`, not yet sealed.
    pub fn new(
        domain: Domain,
        bits: u32,
        version: &str,
        fitted_on: &str,
        categories: Vec<CategoryWeights>,
    ) -> SignalModelFile {
        SignalModelFile {
            format: FORMAT.to_owned(),
            domain: domain.as_str().to_owned(),
            version: version.to_owned(),
            fitted_on: fitted_on.to_owned(),
            bits,
            categories,
            content_sha256: None,
        }
    }

    /// The file's JSON with its `content_sha256` filled in.
    pub fn to_sealed_json(&self) -> Result<String> {
        let mut v = serde_json::to_value(self)?;
        let digest = content_digest(&v);
        if let Some(m) = v.as_object_mut() {
            m.insert("content_sha256".into(), digest.into());
        }
        let mut out = serde_json::to_string(&v)?;
        out.push('\n');
        Ok(out)
    }
}

/// The cues a text holds anywhere (negation, worry or hypothesis, another
/// place), as bits: [`Cues::NEGATION`], [`Cues::WORRY`], [`Cues::ELSEWHERE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cues(pub u8);

impl Cues {
    pub const NEGATION: u8 = 1;
    pub const WORRY: u8 = 2;
    pub const ELSEWHERE: u8 = 4;
    const NAMES: [(u8, &'static str); 3] = [
        (Cues::NEGATION, "negation"),
        (Cues::WORRY, "worry"),
        (Cues::ELSEWHERE, "elsewhere"),
    ];
}

/// What the model reads of a review besides its text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// The categories the lexicons found (cues applied).
    pub lexicon: CategorySet,
    pub cues: Cues,
}

/// Every feature of a review, as (bucket, where it stands in `norm`: the
/// byte range of an n-gram, or `None` for a lexicon or cue feature), in
/// order, possibly repeated.
fn for_each_feature(
    norm: &str,
    ctx: Context,
    bits: u32,
    mut f: impl FnMut(usize, Option<(usize, usize)>),
) {
    for_each_gram(norm, |start, end, h| f(bucket(h, bits), Some((start, end))));
    // A named feature's bucket is the hash of its name's parts in a row
    // (FNV-1a runs on), so no name is built per review.
    let named = |parts: &[&str]| {
        let h = parts
            .iter()
            .fold(FNV_OFFSET, |h, p| fnv1a_from(h, p.as_bytes()));
        bucket(h, bits)
    };
    for c in ctx.lexicon.iter() {
        f(named(&["\u{1}lex:", c.as_str()]), None);
        for (bit, cue) in Cues::NAMES {
            if ctx.cues.0 & bit != 0 {
                f(named(&["\u{1}lex:", c.as_str(), ":", cue]), None);
            }
        }
    }
    for (bit, cue) in Cues::NAMES {
        if ctx.cues.0 & bit != 0 {
            f(named(&["\u{1}cue:", cue]), None);
        }
    }
}

/// The buckets of the lexicon and cue features of `domain` (not the
/// n-grams): prior knowledge that fitting does not shrink to zero.
pub fn named_buckets(domain: Domain, bits: u32) -> Vec<u32> {
    let mut lexicon = CategorySet::default();
    for c in Category::of(domain) {
        lexicon.insert(*c);
    }
    let ctx = Context {
        lexicon,
        cues: Cues(Cues::NEGATION | Cues::WORRY | Cues::ELSEWHERE),
    };
    let mut v = Vec::new();
    for_each_feature("", ctx, bits, |b, _| v.push(b as u32));
    v.sort_unstable();
    v.dedup();
    v
}

/// The distinct feature buckets of a review, sorted: what the model and its
/// fitting read.
pub fn features(norm: &str, ctx: Context, bits: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for_each_feature(norm, ctx, bits, |b, _| v.push(b as u32));
    v.sort_unstable();
    v.dedup();
    v
}

/// A loaded model, ready to score.
#[derive(Debug, Clone)]
pub struct SignalModel {
    version: String,
    bits: u32,
    /// Per category: the category, intercept, calibration, threshold.
    categories: Vec<(Category, f64, Calibration, f64)>,
    /// Non-zero weight rows: bucket to row index (sorted by bucket).
    buckets: Vec<u32>,
    /// `rows[i * categories.len() + k]`: the weight of bucket `buckets[i]`.
    rows: Vec<f32>,
}

/// What the model says of one review.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Per category of the model, its calibrated probability.
    pub probabilities: Vec<(Category, f64)>,
    /// The categories at or above their threshold: the byte offset of the
    /// n-gram that weighs most for it (0 when none does), and the
    /// explanation (`ngram:a|b|c`).
    pub fired: Vec<(Category, usize, String)>,
}

impl SignalModel {
    /// Parse and check a model file for `domain`; `path` names it in errors.
    pub fn parse(path: &str, text: &str, domain: Domain) -> Result<SignalModel> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| anyhow!("signal model {path} is not valid JSON: {e}"))?;
        let stated = v
            .get("content_sha256")
            .and_then(|s| s.as_str())
            .ok_or_else(|| anyhow!("signal model {path} has no content_sha256"))?;
        let actual = content_digest(&v);
        if stated != actual {
            bail!(
                "signal model {path}: content_sha256 is {stated} but the content's is {actual}: the file was changed or damaged; refit it with `reviewguard fit-signals`"
            );
        }
        let f: SignalModelFile = serde_json::from_value(v)
            .map_err(|e| anyhow!("signal model {path} is not valid: {e}"))?;
        SignalModel::from_file(path, &f, domain)
    }

    pub fn from_file(path: &str, f: &SignalModelFile, domain: Domain) -> Result<SignalModel> {
        if f.format != FORMAT {
            bail!(
                "signal model {path}: format is {:?}, expected {FORMAT:?} (refit it with `reviewguard fit-signals`)",
                f.format
            );
        }
        if f.domain != domain.as_str() {
            bail!(
                "signal model {path}: domain is {:?}, expected {:?}",
                f.domain,
                domain.as_str()
            );
        }
        if !(4..=MAX_BITS).contains(&f.bits) {
            bail!(
                "signal model {path}: bits must be 4..={MAX_BITS}, got {}",
                f.bits
            );
        }
        let buckets_total = 1u64 << f.bits;
        let k = f.categories.len();
        let mut categories: Vec<(Category, f64, Calibration, f64)> = Vec::with_capacity(k);
        let mut all: Vec<(u32, usize, f32)> = Vec::new();
        for (j, c) in f.categories.iter().enumerate() {
            let cat = Category::parse(&c.category)
                .filter(|x| Category::of(domain).contains(x))
                .ok_or_else(|| {
                    anyhow!(
                        "signal model {path}: {:?} is not a {domain} category",
                        c.category
                    )
                })?;
            if categories.iter().any(|(x, ..)| *x == cat) {
                bail!("signal model {path}: {} appears twice", c.category);
            }
            let finite = c.intercept.is_finite()
                && c.calibration.slope.is_finite()
                && c.calibration.intercept.is_finite();
            if !(finite && c.threshold > 0.0 && c.threshold <= 1.0) {
                bail!(
                    "signal model {path}: {} has a non-finite number or a threshold outside (0, 1]",
                    c.category
                );
            }
            for &(b, w) in &c.weights {
                if u64::from(b) >= buckets_total || !w.is_finite() {
                    bail!(
                        "signal model {path}: {} has a weight out of range (bucket {b})",
                        c.category
                    );
                }
                all.push((b, j, w));
            }
            categories.push((cat, c.intercept, c.calibration, c.threshold));
        }
        all.sort_by_key(|&(b, j, _)| (b, j));
        let mut buckets: Vec<u32> = all.iter().map(|x| x.0).collect();
        buckets.dedup();
        let mut rows = vec![0f32; buckets.len() * k];
        for (b, j, w) in all {
            if let Ok(i) = buckets.binary_search(&b) {
                rows[i * k + j] = w;
            }
        }
        Ok(SignalModel {
            version: f.version.clone(),
            bits: f.bits,
            categories,
            buckets,
            rows,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether the model decides `category` (a category with too few
    /// labelled examples to fit is left to the lexicons).
    pub fn covers(&self, category: Category) -> bool {
        self.categories.iter().any(|c| c.0 == category)
    }

    /// The weights of bucket `b`, one per category, if any is non-zero.
    fn row(&self, b: usize) -> Option<&[f32]> {
        let k = self.categories.len();
        let b = u32::try_from(b).ok()?;
        self.buckets
            .binary_search(&b)
            .ok()
            .map(|i| &self.rows[i * k..i * k + k])
    }

    /// Score a review: its normalised text and what the lexicons and cues
    /// found. Linear in the length of the text.
    pub fn judge(&self, norm: &str, ctx: Context) -> Verdict {
        let k = self.categories.len();
        if k == 0 {
            return Verdict::default();
        }
        let mut logits: Vec<f64> = self.categories.iter().map(|c| c.1).collect();
        // Per category: the heaviest n-gram (weight, start, end).
        let mut best: Vec<(f32, usize, usize)> = vec![(0.0, 0, 0); k];
        // The weighted features present, each counted once however often it
        // occurs (sorted and deduplicated: linear-logarithmic in the text).
        let mut present: Vec<usize> = Vec::new();
        for_each_feature(norm, ctx, self.bits, |b, at| {
            let Some(row) = self.row(b) else {
                return;
            };
            present.push(b);
            if let Some((start, end)) = at {
                for j in 0..k {
                    if row[j] > best[j].0 {
                        best[j] = (row[j], start, end);
                    }
                }
            }
        });
        present.sort_unstable();
        present.dedup();
        for b in present {
            if let Some(row) = self.row(b) {
                for j in 0..k {
                    logits[j] += f64::from(row[j]);
                }
            }
        }
        let mut out = Verdict::default();
        for (j, &(cat, _, calibration, threshold)) in self.categories.iter().enumerate() {
            let z = calibration.slope * logits[j] + calibration.intercept;
            let p = 1.0 / (1.0 + (-z).exp());
            out.probabilities.push((cat, p));
            if p >= threshold {
                let (_, start, end) = best[j];
                out.fired
                    .push((cat, start, self.explain(norm, j, &norm[start..end])));
            }
        }
        out
    }

    /// The n-grams that weigh most for category `j` in `norm` (at most 3,
    /// distinct, heaviest first), joined as `ngram:a|b|c`; `model` when no
    /// n-gram weighs for it (lexicon and cue features decided).
    fn explain(&self, norm: &str, j: usize, top: &str) -> String {
        let mut grams: Vec<(f32, &str)> = Vec::new();
        for_each_gram(norm, |start, end, h| {
            if let Some(row) = self.row(bucket(h, self.bits))
                && row[j] > 0.0
            {
                grams.push((row[j], &norm[start..end]));
            }
        });
        grams.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        grams.dedup_by(|a, b| a.1 == b.1);
        let mut names: Vec<&str> = Vec::new();
        if !top.is_empty() {
            names.push(top);
        }
        for (_, g) in grams {
            if names.len() == 3 {
                break;
            }
            if !names.contains(&g) {
                names.push(g);
            }
        }
        if names.is_empty() {
            "model".to_owned()
        } else {
            format!("ngram:{}", names.join("|"))
        }
    }
}

/// Characters that n-grams are made of; everything else separates them.
fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

/// Every n-gram (1..=3 characters within a run of word characters) of `s`,
/// as (byte start, byte end, hash).
fn for_each_gram(s: &str, mut f: impl FnMut(usize, usize, u64)) {
    // Start offsets of the last MAX_N characters of the current run.
    let mut starts = [0usize; MAX_N];
    let mut run = 0usize;
    for (i, ch) in s.char_indices() {
        if !is_word(ch) {
            run = 0;
            continue;
        }
        starts.rotate_right(1);
        starts[0] = i;
        run += 1;
        let end = i + ch.len_utf8();
        for n in 1..=run.min(MAX_N) {
            let start = starts[n - 1];
            f(start, end, fnv1a(&s.as_bytes()[start..end]));
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(FNV_OFFSET, bytes)
}

/// FNV-1a of `bytes` continuing from `h` (the hash of what came before).
fn fnv1a_from(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn bucket(h: u64, bits: u32) -> usize {
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

/// The bucket of one n-gram (for tests and tools that build models by hand).
pub fn bucket_of(gram: &str, bits: u32) -> u32 {
    bucket(fnv1a(gram.as_bytes()), bits) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grams_stay_inside_runs_of_word_characters() {
        let mut got = Vec::new();
        for_each_gram("ab，c", |s, e, _| got.push("ab，c"[s..e].to_owned()));
        assert_eq!(got, vec!["a", "b", "ab", "c"]);
        let mut n = 0;
        for_each_gram("没房间了", |_, _, _| n += 1);
        assert_eq!(n, 4 + 3 + 2);
    }

    fn tiny_file() -> SignalModelFile {
        let bits = 10;
        SignalModelFile::new(
            Domain::Tourism,
            bits,
            "test",
            "test",
            vec![CategoryWeights {
                category: "consumer_rights".into(),
                intercept: -4.0,
                calibration: Calibration::IDENTITY,
                threshold: 0.5,
                weights: vec![
                    (bucket_of("没房", bits), 3.0),
                    (bucket_of("房间", bits), 3.0),
                ],
            }],
        )
    }

    fn tiny_model() -> SignalModel {
        let json = tiny_file().to_sealed_json().unwrap();
        SignalModel::parse("t", &json, Domain::Tourism).unwrap()
    }

    #[test]
    fn fires_at_its_threshold_with_a_probability_and_explains_why() {
        let m = tiny_model();
        let v = m.judge("到了说没房间", Context::default());
        assert_eq!(v.fired.len(), 1);
        let (cat, _, why) = &v.fired[0];
        assert_eq!(*cat, Category::ConsumerRights);
        assert!(why.starts_with("ngram:") && why.contains("没房"), "{why}");
        let p = v.probabilities[0].1;
        assert!((p - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-9, "{p}");
        // One of the two n-grams only: -1 log-odds, below the threshold.
        let one = m.judge("没房", Context::default());
        assert!(one.fired.is_empty());
        assert!(one.probabilities[0].1 < 0.5);
    }

    #[test]
    fn lexicon_and_cue_features_are_distinct_from_text() {
        let bits = 18;
        let plain = features("房间", Context::default(), bits);
        let mut lexicon = CategorySet::default();
        lexicon.insert(Category::Hygiene);
        let with = features(
            "房间",
            Context {
                lexicon,
                cues: Cues(Cues::NEGATION),
            },
            bits,
        );
        // lex:hygiene, lex:hygiene:negation, cue:negation.
        assert_eq!(with.len(), plain.len() + 3);
        assert!(plain.iter().all(|b| with.contains(b)));
        // Each named feature is the bucket of its whole name.
        for name in [
            "\u{1}lex:hygiene",
            "\u{1}lex:hygiene:negation",
            "\u{1}cue:negation",
        ] {
            assert!(with.contains(&bucket_of(name, bits)), "{name}");
        }
    }

    /// Texts a client can send: none makes the model panic or answer
    /// anything but a probability. (The features are counted once each by
    /// sorting, not by a "seen" list: 256 KiB of distinct characters would
    /// take minutes with a quadratic check.)
    #[test]
    fn hostile_texts_are_judged_quickly_and_safely() {
        let m = tiny_model();
        let distinct: String = (0..87_000u32)
            .filter_map(|i| char::from_u32(0x4E00 + i % 20_000 + (i / 20_000) * 0x10000))
            .collect();
        let texts = [
            String::new(),
            "没".repeat(256 * 1024 / 3),
            distinct,
            "房间😀🏨 room 没房 ٠١٢ Ⅻ \u{200b}".repeat(2000),
        ];
        for t in &texts {
            let v = m.judge(t, Context::default());
            assert_eq!(v.probabilities.len(), 1);
            assert!(v.probabilities[0].1.is_finite());
        }
    }

    #[test]
    fn a_changed_or_bad_model_file_is_refused() {
        let good = tiny_file().to_sealed_json().unwrap();
        assert!(SignalModel::parse("m.json", &good, Domain::Tourism).is_ok());
        let e = SignalModel::parse("m.json", &good, Domain::Food).unwrap_err();
        assert!(e.to_string().contains("m.json"), "{e}");
        // One weight changed, the checksum left as it was.
        let tampered = good.replacen("3.0", "30.0", 1);
        assert_ne!(tampered, good);
        let e = SignalModel::parse("m.json", &tampered, Domain::Tourism).unwrap_err();
        assert!(e.to_string().contains("content_sha256"), "{e}");
        let unsealed = serde_json::to_string(&tiny_file()).unwrap();
        assert!(SignalModel::parse("m.json", &unsealed, Domain::Tourism).is_err());
        let mut bad = tiny_file();
        bad.bits = 40;
        let e = SignalModel::parse("m.json", &bad.to_sealed_json().unwrap(), Domain::Tourism)
            .unwrap_err();
        assert!(e.to_string().contains("bits"), "{e}");
        let mut bad = tiny_file();
        bad.categories[0].weights.push((1 << 12, 1.0));
        assert!(
            SignalModel::parse("m.json", &bad.to_sealed_json().unwrap(), Domain::Tourism).is_err()
        );
        let mut bad = tiny_file();
        bad.categories[0].threshold = 0.0;
        assert!(
            SignalModel::parse("m.json", &bad.to_sealed_json().unwrap(), Domain::Tourism).is_err()
        );
        assert!(SignalModel::parse("m.json", "{ truncated", Domain::Tourism).is_err());
    }
}
