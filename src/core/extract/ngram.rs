//! A learned complement to the lexicons: per category, a logistic regression
//! over hashed character n-grams (1 to 3 characters) of the normalised text,
//! fitted with linfa on the hand-labelled development set.
//!
//! The extractor asks it only for what the lexicons did not find, and a
//! category it adds still has to pass the cue check: the n-gram that weighs
//! most for it must not stand in the scope of a negation, a worry or another
//! place. Each decision is explained by the n-grams that drove it (they become
//! the [`crate::core::extract::Hit`] term, e.g. `ngram:没房|退款|发票`).
//!
//! The model file (`config/lexicons/signals-<domain>.json`) lives beside the
//! lexicons, loads with them and is reloaded with them. `reviewguard
//! fit-signals` refits it and reports k-fold cross-validated figures.

use crate::types::Domain;
use crate::types::category::{Category, CategorySet};
use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

/// Format tag of the model file.
pub const FORMAT: &str = "reviewguard-signal-ngram-1";

/// The longest n-gram, in characters.
const MAX_N: usize = 3;

/// The model file, as written by `fit-signals`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalModelFile {
    pub format: String,
    pub domain: String,
    /// Features are hashed into 2^bits buckets.
    pub bits: u32,
    /// What it was fitted on, for people.
    pub fitted_on: String,
    pub categories: Vec<CategoryWeights>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryWeights {
    pub category: String,
    /// L2 regularisation strength chosen by inner cross-validation.
    pub alpha: f64,
    pub intercept: f64,
    /// Log-odds above which the category is reported (`null`: never).
    pub threshold: Option<f64>,
    /// Non-zero weights as `[bucket, weight]`.
    pub weights: Vec<(u32, f32)>,
}

/// A loaded model, ready to score.
#[derive(Debug, Clone)]
pub struct SignalModel {
    bits: u32,
    categories: Vec<(Category, f64, f64)>,
    /// `weights[bucket * categories.len() + k]`.
    weights: Vec<f32>,
}

/// What the model says of one text: per category, whether it fires, and the
/// byte range of the n-gram that weighs most for it.
#[derive(Debug, Clone, Default)]
pub struct ModelVerdict {
    pub fired: Vec<(Category, usize, String)>,
}

impl SignalModel {
    /// Parse and check a model file for `domain`; `path` names it in errors.
    pub fn parse(path: &str, text: &str, domain: Domain) -> Result<SignalModel> {
        let f: SignalModelFile = serde_json::from_str(text)
            .map_err(|e| anyhow!("signal model {path} is not valid: {e}"))?;
        SignalModel::from_file(path, &f, domain)
    }

    pub fn from_file(path: &str, f: &SignalModelFile, domain: Domain) -> Result<SignalModel> {
        if f.format != FORMAT {
            bail!(
                "signal model {path}: format is {:?}, expected {FORMAT:?}",
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
        if !(4..=20).contains(&f.bits) {
            bail!("signal model {path}: bits must be 4..=20, got {}", f.bits);
        }
        let buckets = 1usize << f.bits;
        let k = f.categories.len();
        let mut categories = Vec::with_capacity(k);
        let mut weights = vec![0f32; buckets * k];
        for (j, c) in f.categories.iter().enumerate() {
            let cat = Category::parse(&c.category)
                .filter(|x| Category::of(domain).contains(x))
                .ok_or_else(|| {
                    anyhow!(
                        "signal model {path}: {:?} is not a {domain} category",
                        c.category
                    )
                })?;
            if !c.intercept.is_finite() || c.threshold.is_some_and(|t| !t.is_finite()) {
                bail!(
                    "signal model {path}: {} has a non-finite number",
                    c.category
                );
            }
            for &(b, w) in &c.weights {
                if b as usize >= buckets || !w.is_finite() {
                    bail!(
                        "signal model {path}: {} has a weight out of range (bucket {b})",
                        c.category
                    );
                }
                weights[b as usize * k + j] = w;
            }
            categories.push((cat, c.intercept, c.threshold.unwrap_or(f64::INFINITY)));
        }
        Ok(SignalModel {
            bits: f.bits,
            categories,
            weights,
        })
    }

    /// Score normalised text; categories in `skip` (already found) are not
    /// considered. Linear in the length of the text.
    pub fn judge(&self, norm: &str, skip: CategorySet) -> ModelVerdict {
        let k = self.categories.len();
        if self
            .categories
            .iter()
            .all(|(c, _, t)| skip.contains(*c) || t.is_infinite())
        {
            return ModelVerdict::default();
        }
        let mut seen = vec![0u64; (1usize << self.bits).div_ceil(64)];
        let mut logits: Vec<f64> = self.categories.iter().map(|c| c.1).collect();
        // Per category: the heaviest n-gram so far (weight, start, end).
        let mut best: Vec<(f32, usize, usize)> = vec![(f32::MIN, 0, 0); k];
        for_each_gram(norm, |start, end, h| {
            let b = bucket(h, self.bits);
            let row = &self.weights[b * k..b * k + k];
            let (word, bit) = (b / 64, 1u64 << (b % 64));
            let first = seen[word] & bit == 0;
            seen[word] |= bit;
            for j in 0..k {
                if first {
                    logits[j] += f64::from(row[j]);
                }
                if row[j] > best[j].0 {
                    best[j] = (row[j], start, end);
                }
            }
        });
        let mut out = ModelVerdict::default();
        for (j, &(cat, _, threshold)) in self.categories.iter().enumerate() {
            if skip.contains(cat) || logits[j] <= threshold {
                continue;
            }
            let (_, start, end) = best[j];
            out.fired
                .push((cat, start, self.explain(norm, j, &norm[start..end])));
        }
        out
    }

    /// The n-grams that weigh most for category `j` in `norm` (at most 3,
    /// distinct, heaviest first), joined as `ngram:a|b|c`.
    fn explain(&self, norm: &str, j: usize, top: &str) -> String {
        let k = self.categories.len();
        let mut grams: Vec<(f32, &str)> = Vec::new();
        for_each_gram(norm, |start, end, h| {
            let w = self.weights[bucket(h, self.bits) * k + j];
            if w > 0.0 {
                grams.push((w, &norm[start..end]));
            }
        });
        grams.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        grams.dedup_by(|a, b| a.1 == b.1);
        let mut names: Vec<&str> = vec![top];
        for (_, g) in grams {
            if names.len() == 3 {
                break;
            }
            if !names.contains(&g) {
                names.push(g);
            }
        }
        format!("ngram:{}", names.join("|"))
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

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
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

/// The distinct buckets of a normalised text, sorted.
pub fn features(norm: &str, bits: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for_each_gram(norm, |_, _, h| v.push(bucket(h, bits) as u32));
    v.sort_unstable();
    v.dedup();
    v
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

    fn tiny_model() -> SignalModel {
        let bits = 10;
        let mut weights = Vec::new();
        for g in ["没房", "房间"] {
            weights.push((bucket(fnv1a(g.as_bytes()), bits) as u32, 3.0f32));
        }
        let f = SignalModelFile {
            format: FORMAT.into(),
            domain: "tourism".into(),
            bits,
            fitted_on: "test".into(),
            categories: vec![CategoryWeights {
                category: "consumer_rights".into(),
                alpha: 1.0,
                intercept: -4.0,
                threshold: Some(0.0),
                weights,
            }],
        };
        SignalModel::from_file("t", &f, Domain::Tourism).unwrap()
    }

    #[test]
    fn fires_above_its_threshold_and_explains_why() {
        let m = tiny_model();
        let v = m.judge("到了说没房间", CategorySet::default());
        assert_eq!(v.fired.len(), 1);
        let (cat, _, why) = &v.fired[0];
        assert_eq!(*cat, Category::ConsumerRights);
        assert!(why.starts_with("ngram:") && why.contains("没房"), "{why}");
        // One of the two n-grams only: below the threshold.
        assert!(m.judge("没房", CategorySet::default()).fired.is_empty());
        // A category already found is not judged again.
        let mut skip = CategorySet::default();
        skip.insert(Category::ConsumerRights);
        assert!(m.judge("到了说没房间", skip).fired.is_empty());
    }

    #[test]
    fn a_bad_model_file_is_refused() {
        let ok = r#"{"format":"reviewguard-signal-ngram-1","domain":"tourism","bits":8,"fitted_on":"x","categories":[]}"#;
        assert!(SignalModel::parse("m.json", ok, Domain::Tourism).is_ok());
        let e = SignalModel::parse("m.json", ok, Domain::Food).unwrap_err();
        assert!(e.to_string().contains("m.json"), "{e}");
        let e = SignalModel::parse(
            "m.json",
            &ok.replace("\"bits\":8", "\"bits\":40"),
            Domain::Tourism,
        )
        .unwrap_err();
        assert!(e.to_string().contains("bits"), "{e}");
        let bad = ok.replace(
            "[]}",
            r#"[{"category":"safety","alpha":1,"intercept":0,"threshold":0,"weights":[[999,1.0]]}]}"#,
        );
        assert!(SignalModel::parse("m.json", &bad, Domain::Tourism).is_err());
    }
}
