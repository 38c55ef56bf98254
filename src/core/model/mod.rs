//! Trained models: the file format, loading with checks, and scoring with
//! per-feature contributions.
//!
//! A model file is JSON: format version, the feature names it was fitted on,
//! the standardisation (mean, std), the model itself, its calibration,
//! severity thresholds, provenance and `content_sha256`: the sha256 of the
//! file's own content (see [`content_digest`]), checked on load, so a file
//! changed after training is refused. A file whose feature names do not match
//! the code's, or that is corrupt, is refused with what is wrong.
//!
//! Two kinds of model (`kind`): a logistic regression (`logistic`: the fitted
//! linfa model, serde) and a tree ensemble (`trees`: bagged linfa-trees
//! decision trees, flattened into arrays, see [`TreeEnsemble`]). Both give
//! every score additive per-feature contributions in calibrated log-odds
//! (see [`Score`]). Files of format version 2 (logistic regression only, no
//! `kind`) still load.

use crate::core::features;
use crate::types::Domain;
use linfa_logistic::FittedLogisticRegression;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// 2: `content_sha256` added. 3: `kind`, and tree ensembles (`trees`).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this build still reads.
pub const OLDEST_FORMAT_VERSION: u32 = 2;

/// The embedded defaults, so `demo` and a bare binary work anywhere.
pub const BUILTIN_FOOD: &str = include_str!("../../../models/food.json");
pub const BUILTIN_TOURISM: &str = include_str!("../../../models/tourism.json");

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("model file {path} is not a reviewguard model: {message}")]
    Corrupt { path: String, message: String },
    #[error("model file {path} is invalid: {message}")]
    Invalid { path: String, message: String },
}

/// Probability cut-offs from low to high severity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub low: f64,
    pub medium: f64,
    pub high: f64,
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Provenance {
    pub data: String,
    pub seed: Option<u64>,
    pub rows: usize,
    pub positives: usize,
    /// Latest inspection time in the training data (not the wall clock, so
    /// the same data gives the same file).
    pub data_until: String,
    pub command: String,
    pub metrics: BTreeMap<String, f64>,
}

/// What a model file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// `logistic`: a linfa logistic regression on standardised features.
    #[default]
    LogisticRegression,
    /// `trees`: bagged decision trees on the raw features.
    TreeEnsemble,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::LogisticRegression => "logistic_regression",
            ModelKind::TreeEnsemble => "tree_ensemble",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub format_version: u32,
    pub name: String,
    pub version: String,
    pub domain: Domain,
    /// Absent in format version 2: a logistic regression.
    #[serde(default)]
    pub kind: ModelKind,
    pub feature_names: Vec<String>,
    /// Mean and standard deviation of each feature on the fitting rows: the
    /// logistic regression scores `(x - mean) / std`; the trees split raw values.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// With `kind` `logistic_regression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logistic: Option<FittedLogisticRegression<f64, bool>>,
    /// With `kind` `tree_ensemble`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trees: Option<TreeEnsemble>,
    /// Maps the fitted model's log-odds to calibrated ones.
    pub calibration: Calibration,
    pub thresholds: Thresholds,
    pub provenance: Provenance,
    /// sha256 (hex) of the canonical JSON of this file without this field:
    /// see [`content_digest`]. Written by [`ModelFile::to_json`].
    pub content_sha256: String,
}

impl ModelFile {
    /// Set `content_sha256` to the digest of the rest of the content.
    pub fn seal(&mut self) -> Result<(), serde_json::Error> {
        self.content_sha256 = content_digest(&serde_json::to_value(&*self)?);
        Ok(())
    }

    /// The file's text: JSON with `content_sha256` filled in, objects one key
    /// a line and arrays on one line each (a tree ensemble's node arrays stay
    /// compact), ending in a newline. The same model gives the same bytes.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        // Digest what a reader will parse (numbers as they read back).
        let mut v: serde_json::Value = serde_json::from_str(&serde_json::to_string(self)?)?;
        seal(&mut v);
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, Layout::default());
        v.serialize(&mut ser)?;
        let mut text = String::from_utf8(out).map_err(serde::ser::Error::custom)?;
        text.push('\n');
        Ok(text)
    }
}

/// serde_json layout of model files: objects indented one key a line,
/// arrays (and anything inside them) on one line.
#[derive(Default)]
struct Layout {
    level: usize,
    arrays: usize,
    has_value: bool,
}

impl Layout {
    fn newline<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.level {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Layout {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.arrays += 1;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.arrays -= 1;
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b",") }
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        if self.arrays == 0 {
            self.level += 1;
            self.has_value = false;
        }
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        if self.arrays == 0 {
            self.level -= 1;
            if self.has_value {
                self.newline(w)?;
            }
        }
        w.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.arrays == 0 {
            self.newline(w)?;
        }
        Ok(())
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(if self.arrays == 0 { b": " } else { b":" })
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        if self.arrays == 0 {
            self.has_value = true;
        }
        Ok(())
    }
}

/// Bagged decision trees, flattened: node `i` of the ensemble splits on
/// feature `feature[i]` (an index into the file's `feature_names`; -1 for a
/// leaf) at `threshold[i]`: a raw feature value `<=` the threshold goes to
/// node `left[i]`, a greater one to `right[i]` (0 for a leaf). Tree `t` is
/// the nodes from `roots[t]` up to the next root, its root first; children
/// come after their parent within their tree (so a file cannot hold a cycle).
/// `value[i]` is the share of violations (smoothed: (violations + 1) /
/// (rows + 2)) among the tree's class-balanced bootstrap rows that reach node
/// `i`. The ensemble's raw score is the mean over trees of the value of the
/// leaf a business reaches; the file's calibration turns it into a
/// probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeEnsemble {
    pub roots: Vec<u32>,
    pub feature: Vec<i32>,
    pub threshold: Vec<f64>,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    pub value: Vec<f64>,
}

/// One node as scoring reads it (packed, so a hop touches one cache line).
/// A leaf points to itself on both sides with an infinite threshold, so a
/// walk can take a fixed number of steps without asking whether it is at a
/// leaf (and a step at a leaf credits nothing: the value does not change).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    threshold: f64,
    value: f64,
    feature: u32,
    left: u32,
    right: u32,
}

/// Trees walked side by side: their memory loads overlap instead of each
/// waiting for the one before.
const LANES: usize = 8;

/// A checked [`TreeEnsemble`], ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct Forest {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    /// The longest root-to-leaf path, in splits.
    depth: usize,
}

impl TreeEnsemble {
    /// Check the arrays (lengths, feature indices, child indices within the
    /// tree and after the parent, finite numbers, values in [0, 1]) and pack
    /// them for scoring.
    pub fn check(&self, n_features: usize) -> Result<Forest, String> {
        let n = self.feature.len();
        if n == 0 || self.roots.is_empty() {
            return Err("trees: the ensemble has no nodes or no trees".into());
        }
        if [
            self.threshold.len(),
            self.left.len(),
            self.right.len(),
            self.value.len(),
        ]
        .iter()
        .any(|l| *l != n)
        {
            return Err(format!(
                "trees: node arrays differ in length (feature {n}, threshold {}, left {}, right {}, value {})",
                self.threshold.len(),
                self.left.len(),
                self.right.len(),
                self.value.len()
            ));
        }
        if self.roots[0] != 0 || self.roots.windows(2).any(|w| w[0] >= w[1]) {
            return Err("trees: roots must start at 0 and increase".into());
        }
        let mut nodes = Vec::with_capacity(n);
        for (t, &root) in self.roots.iter().enumerate() {
            let end = self.roots.get(t + 1).map_or(n, |r| *r as usize);
            if root as usize >= n {
                return Err(format!(
                    "trees: root {root} of tree {t} is past the {n} nodes"
                ));
            }
            for i in root as usize..end {
                let v = self.value[i];
                if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                    return Err(format!("trees: node {i} has value {v}, outside [0, 1]"));
                }
                let f = self.feature[i];
                if f < 0 {
                    nodes.push(Node {
                        threshold: f64::INFINITY,
                        value: v,
                        feature: 0,
                        left: i as u32,
                        right: i as u32,
                    });
                    continue;
                }
                if f as usize >= n_features {
                    return Err(format!(
                        "trees: node {i} splits on feature {f}, but the model has {n_features} features"
                    ));
                }
                let (l, r) = (self.left[i] as usize, self.right[i] as usize);
                for c in [l, r] {
                    if c <= i || c >= end {
                        return Err(format!(
                            "trees: node {i} of tree {t} has child {c}, outside its tree's nodes after it ({}..{end})",
                            i + 1
                        ));
                    }
                }
                if !self.threshold[i].is_finite() {
                    return Err(format!("trees: node {i} has a non-finite threshold"));
                }
                nodes.push(Node {
                    threshold: self.threshold[i],
                    value: v,
                    feature: f as u32,
                    left: l as u32,
                    right: r as u32,
                });
            }
        }
        // Children come after their parent, so one pass finds every depth.
        let mut depths = vec![0usize; n];
        for (i, node) in nodes.iter().enumerate() {
            if node.left as usize != i {
                for c in [node.left, node.right] {
                    depths[c as usize] = depths[c as usize].max(depths[i] + 1);
                }
            }
        }
        Ok(Forest {
            nodes,
            roots: self.roots.clone(),
            depth: depths.into_iter().max().unwrap_or(0),
        })
    }
}

impl Forest {
    pub fn trees(&self) -> usize {
        self.roots.len()
    }

    /// The raw score: mean over trees of the value of the leaf `x` reaches.
    /// `x` holds one value per feature of the model.
    pub fn raw_score(&self, x: &[f64]) -> f64 {
        let mut sum = 0.0;
        for chunk in self.roots.chunks(LANES) {
            let mut at = [0u32; LANES];
            at[..chunk.len()].copy_from_slice(chunk);
            for _ in 0..self.depth {
                for a in at.iter_mut().take(chunk.len()) {
                    let n = &self.nodes[*a as usize];
                    *a = if x[n.feature as usize] <= n.threshold {
                        n.left
                    } else {
                        n.right
                    };
                }
            }
            for a in &at[..chunk.len()] {
                sum += self.nodes[*a as usize].value;
            }
        }
        sum / self.roots.len() as f64
    }

    /// Path attribution (Saabas): in each tree, walking from the root to the
    /// leaf `x` reaches, each split's change in node value is credited to the
    /// split's feature; averaged over trees. Adds each feature's credit to
    /// `contributions` and returns `(base, raw)`: the mean root value and the
    /// raw score, with `base + Σ contributions = raw` (up to rounding).
    /// Allocates nothing.
    pub fn attribute(&self, x: &[f64], contributions: &mut [f64]) -> (f64, f64) {
        let k = 1.0 / self.roots.len() as f64;
        let (mut base, mut raw) = (0.0, 0.0);
        for chunk in self.roots.chunks(LANES) {
            let mut at = [0u32; LANES];
            at[..chunk.len()].copy_from_slice(chunk);
            for a in &at[..chunk.len()] {
                base += self.nodes[*a as usize].value;
            }
            for _ in 0..self.depth {
                for a in at.iter_mut().take(chunk.len()) {
                    let n = &self.nodes[*a as usize];
                    let f = n.feature as usize;
                    let next = if x[f] <= n.threshold { n.left } else { n.right };
                    // Zero at a leaf (it points to itself).
                    contributions[f] += k * (self.nodes[next as usize].value - n.value);
                    *a = next;
                }
            }
            for a in &at[..chunk.len()] {
                raw += self.nodes[*a as usize].value;
            }
        }
        // Divided as `raw_score` divides, so both give the same bits.
        (base * k, raw / self.roots.len() as f64)
    }
}

/// The sha256 (hex) of a model file's content: the JSON value with its
/// `content_sha256` field removed, written compactly with object keys sorted
/// (so whitespace and key order do not matter, every number and string does).
pub fn content_digest(v: &serde_json::Value) -> String {
    fn canonical(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    if let Some(x) = m.get(k) {
                        out.insert(k.clone(), canonical(x));
                    }
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.iter().map(canonical).collect())
            }
            other => other.clone(),
        }
    }
    let mut c = canonical(v);
    if let Some(m) = c.as_object_mut() {
        m.remove("content_sha256");
    }
    hex::encode(Sha256::digest(c.to_string().as_bytes()))
}

/// Fill in (or refresh) `content_sha256` of a model file's JSON value: for
/// tools and tests that edit a model file on purpose.
pub fn seal(v: &mut serde_json::Value) {
    let digest = content_digest(v);
    if let Some(m) = v.as_object_mut() {
        m.insert("content_sha256".into(), digest.into());
    }
}

/// Platt scaling: calibrated log-odds = `slope` × log-odds + `intercept`.
/// The model is fitted on class-balanced rows, which inflates its
/// probabilities; the calibration, fitted on the original (unbalanced) rows,
/// turns them back into "probability that an inspection finds violations".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub slope: f64,
    pub intercept: f64,
}

impl Calibration {
    pub const IDENTITY: Calibration = Calibration {
        slope: 1.0,
        intercept: 0.0,
    };

    pub fn apply(&self, p: f64) -> f64 {
        1.0 / (1.0 + (-self.log_odds(p)).exp())
    }

    /// Calibrated log-odds of an uncalibrated probability.
    pub fn log_odds(&self, p: f64) -> f64 {
        let p = p.clamp(1e-12, 1.0 - 1e-12);
        self.slope * (p / (1.0 - p)).ln() + self.intercept
    }
}

/// A loaded, checked model.
#[derive(Debug, Clone)]
pub struct Model {
    pub file: ModelFile,
    /// sha256 of the file's bytes, hex: what `sha256sum` prints for it.
    pub sha256: String,
    /// The trees of a tree ensemble, checked and packed.
    forest: Option<Forest>,
}

/// A score and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub probability: f64,
    /// Per feature, in calibrated log-odds of violations: how far the feature
    /// moved this score from `base_log_odds`. Logistic regression: calibration
    /// slope × weight × standardised value. Tree ensemble: the path
    /// attribution of the raw score ([`Forest::attribute`]), scaled by one
    /// factor so that they add up to the calibrated log-odds difference.
    /// Either way `base_log_odds + Σ contributions = logit(probability)`.
    pub contributions: Vec<f64>,
    /// Logistic regression: the calibrated log-odds of a business whose
    /// features all sit at the fitting mean. Tree ensemble: those of the
    /// ensemble's base value (mean root value).
    pub base_log_odds: f64,
}

impl Model {
    pub fn load(path: &Path, domain: Domain) -> Result<Model, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Model::from_bytes(&bytes, &path.display().to_string(), domain)
    }

    pub fn builtin(domain: Domain) -> Result<Model, ModelError> {
        let (src, name) = match domain {
            Domain::Food => (BUILTIN_FOOD, "builtin models/food.json"),
            Domain::Tourism => (BUILTIN_TOURISM, "builtin models/tourism.json"),
        };
        Model::from_bytes(src.as_bytes(), name, domain)
    }

    pub fn from_bytes(bytes: &[u8], path: &str, domain: Domain) -> Result<Model, ModelError> {
        let corrupt = |e: serde_json::Error| ModelError::Corrupt {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(corrupt)?;
        let invalid = |message: String| ModelError::Invalid {
            path: path.to_owned(),
            message,
        };
        let version = value.get("format_version").and_then(|v| v.as_u64());
        if !version.is_some_and(|v| {
            (u64::from(OLDEST_FORMAT_VERSION)..=u64::from(FORMAT_VERSION)).contains(&v)
        }) {
            return Err(invalid(format!(
                "format_version {} is not supported (this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}); retrain with this version",
                version.map_or("(missing)".to_owned(), |v| v.to_string())
            )));
        }
        let stored = value
            .get("content_sha256")
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid("field content_sha256 is missing or not a string".into()))?;
        let computed = content_digest(&value);
        if stored != computed {
            return Err(invalid(format!(
                "field content_sha256 is {stored} but the content hashes to {computed}: the file was changed after training; retrain it, or reseal it on purpose (reviewguard::model::seal)"
            )));
        }
        let file: ModelFile = serde_json::from_value(value).map_err(corrupt)?;
        if file.domain != domain {
            return Err(invalid(format!(
                "it is a {} model, but is configured for {}",
                file.domain, domain
            )));
        }
        let expected = features::feature_names(domain);
        if file.feature_names != expected {
            let missing: Vec<_> = expected
                .iter()
                .filter(|n| !file.feature_names.contains(n))
                .collect();
            let extra: Vec<_> = file
                .feature_names
                .iter()
                .filter(|n| !expected.contains(n))
                .collect();
            return Err(invalid(format!(
                "its feature names do not match this build's (missing {missing:?}, unknown {extra:?}, or another order); retrain it with `reviewguard train`"
            )));
        }
        let n = expected.len();
        if file.mean.len() != n || file.std.len() != n {
            return Err(invalid(format!(
                "it has {} means and {} deviations for {n} features",
                file.mean.len(),
                file.std.len(),
            )));
        }
        let finite = file.mean.iter().chain(&file.std).all(|v| v.is_finite())
            && file.calibration.slope.is_finite()
            && file.calibration.intercept.is_finite();
        if !finite || file.std.iter().any(|s| *s <= 0.0) {
            return Err(invalid(
                "it holds non-finite numbers or a deviation <= 0".into(),
            ));
        }
        let forest = match (file.kind, &file.logistic, &file.trees) {
            (ModelKind::LogisticRegression, Some(lr), None) => {
                if lr.params().len() != n {
                    return Err(invalid(format!(
                        "its logistic regression has {} weights for {n} features",
                        lr.params().len()
                    )));
                }
                if !(lr.params().iter().all(|v| v.is_finite()) && lr.intercept().is_finite()) {
                    return Err(invalid(
                        "its logistic regression holds non-finite numbers".into(),
                    ));
                }
                None
            }
            (ModelKind::TreeEnsemble, None, Some(trees)) => {
                if file.format_version < 3 {
                    return Err(invalid(
                        "a tree ensemble needs format_version 3 or later".into(),
                    ));
                }
                Some(trees.check(n).map_err(invalid)?)
            }
            (kind, lr, trees) => {
                return Err(invalid(format!(
                    "kind {} needs exactly its own model field (logistic present: {}, trees present: {})",
                    kind.as_str(),
                    lr.is_some(),
                    trees.is_some()
                )));
            }
        };
        let t = file.thresholds;
        if !(0.0 < t.low && t.low <= t.medium && t.medium <= t.high && t.high < 1.0) {
            return Err(invalid(format!(
                "thresholds must satisfy 0 < low <= medium <= high < 1, got {t:?}"
            )));
        }
        Ok(Model {
            sha256: hex::encode(Sha256::digest(bytes)),
            file,
            forest,
        })
    }

    pub fn kind(&self) -> ModelKind {
        self.file.kind
    }

    /// The packed trees of a tree ensemble.
    pub fn forest(&self) -> Option<&Forest> {
        self.forest.as_ref()
    }

    /// Standardise a raw feature vector as the model was fitted.
    pub fn standardise(&self, raw: &[f64]) -> Vec<f64> {
        raw.iter()
            .zip(self.file.mean.iter().zip(&self.file.std))
            .map(|(x, (m, s))| (x - m) / s)
            .collect()
    }

    /// The calibrated probability of violations: exactly
    /// `score(raw).probability`, without working out each feature's part
    /// (what deciding needs; the parts are for the flag's reasons).
    pub fn probability(&self, raw: &[f64]) -> f64 {
        match &self.forest {
            Some(forest) => self.file.calibration.apply(forest.raw_score(raw)),
            None => self.score(raw).probability,
        }
    }

    /// The calibrated probability of violations and each feature's part in it.
    pub fn score(&self, raw: &[f64]) -> Score {
        let cal = self.file.calibration;
        if let Some(forest) = &self.forest {
            let mut contributions = vec![0.0; raw.len()];
            let (base, r) = forest.attribute(raw, &mut contributions);
            let (lb, lr) = (cal.log_odds(base), cal.log_odds(r));
            // One factor carries the additive split of the raw score into
            // calibrated log-odds (the derivative where the two meet).
            let scale = if (r - base).abs() > 1e-9 {
                (lr - lb) / (r - base)
            } else {
                let p = base.clamp(1e-12, 1.0 - 1e-12);
                cal.slope / (p * (1.0 - p))
            };
            for c in &mut contributions {
                *c *= scale;
            }
            return Score {
                probability: cal.apply(r),
                contributions,
                base_log_odds: lb,
            };
        }
        let Some(lr) = &self.file.logistic else {
            unreachable!("a checked model has a logistic regression or trees")
        };
        let z = self.standardise(raw);
        let sign = violation_sign(lr);
        let contributions: Vec<f64> = z
            .iter()
            .zip(lr.params())
            .map(|(z, w)| sign * z * w * cal.slope)
            .collect();
        let x = Array2::from_shape_vec((1, z.len()), z)
            .unwrap_or_else(|_| unreachable!("one row of n values is a 1×n matrix"));
        let p = violation_probabilities(lr, &x)[0];
        Score {
            probability: cal.apply(p),
            contributions,
            base_log_odds: cal.slope * sign * lr.intercept() + cal.intercept,
        }
    }

    /// Logistic regression: weights in the direction of "violations found"
    /// (see [`violation_sign`]). `None` for a tree ensemble.
    pub fn weights(&self) -> Option<Vec<f64>> {
        let lr = self.file.logistic.as_ref()?;
        let sign = violation_sign(lr);
        Some(lr.params().iter().map(|w| sign * w).collect())
    }
}

/// linfa-logistic models the probability of the class that was more numerous
/// in the training targets, which may be `false`; +1 when that class is
/// `true` (violations found), -1 otherwise.
pub fn violation_sign(m: &FittedLogisticRegression<f64, bool>) -> f64 {
    if m.labels().pos.class { 1.0 } else { -1.0 }
}

/// Probability of "violations found" for each row of standardised features.
pub fn violation_probabilities(
    m: &FittedLogisticRegression<f64, bool>,
    x: &Array2<f64>,
) -> Vec<f64> {
    let p = m.predict_probabilities(x);
    if m.labels().pos.class {
        p.to_vec()
    } else {
        p.iter().map(|p| 1.0 - p).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A logistic regression model file of format version 2 (before `kind`).
    const V2_FOOD: &str = include_str!("../../../tests/fixtures/food-v2-logistic.json");

    fn feature(name: &str) -> usize {
        features::feature_names(Domain::Food)
            .iter()
            .position(|n| n == name)
            .unwrap()
    }

    /// A hand-built food ensemble: tree 0 splits on illness_7d (<= 0.5: 0.2,
    /// else 0.9; root 0.4); tree 1 on reviews_30d (<= 10: 0.5, else splits on
    /// hygiene_7d: <= 1: 0.3, else 0.6; root 0.45).
    fn ensemble_value() -> serde_json::Value {
        let mut f: ModelFile = serde_json::from_str(V2_FOOD).unwrap();
        f.format_version = FORMAT_VERSION;
        f.kind = ModelKind::TreeEnsemble;
        f.logistic = None;
        f.calibration = Calibration {
            slope: 1.2,
            intercept: -0.4,
        };
        let (ill, rev, hyg) = (
            feature("illness_7d") as i32,
            feature("reviews_30d") as i32,
            feature("hygiene_7d") as i32,
        );
        f.trees = Some(TreeEnsemble {
            roots: vec![0, 3],
            feature: vec![ill, -1, -1, rev, -1, hyg, -1, -1],
            threshold: vec![0.5, 0.0, 0.0, 10.0, 0.0, 1.0, 0.0, 0.0],
            left: vec![1, 0, 0, 4, 0, 6, 0, 0],
            right: vec![2, 0, 0, 5, 0, 7, 0, 0],
            value: vec![0.4, 0.2, 0.9, 0.45, 0.5, 0.4, 0.3, 0.6],
        });
        let mut v = serde_json::to_value(&f).unwrap();
        seal(&mut v);
        v
    }

    fn load(v: &serde_json::Value) -> Result<Model, ModelError> {
        Model::from_bytes(&serde_json::to_vec(v).unwrap(), "m.json", Domain::Food)
    }

    /// Deciding uses `probability`, the flag `score`: they must agree to the bit.
    #[test]
    fn probability_is_the_scores_probability_to_the_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for d in Domain::ALL {
            let lr: serde_json::Value = serde_json::from_str(V2_FOOD).unwrap();
            let mut models = vec![Model::builtin(d).unwrap()];
            if d == Domain::Food {
                models.push(load(&lr).unwrap());
                models.push(load(&ensemble_value()).unwrap());
            }
            for m in &models {
                for _ in 0..2_000 {
                    let raw: Vec<f64> = (0..features::feature_count(d))
                        .map(|_| rng.gen_range(0.0..20.0f64).floor() / 2.0)
                        .collect();
                    assert_eq!(
                        m.probability(&raw).to_bits(),
                        m.score(&raw).probability.to_bits(),
                        "{d} {:?} {raw:?}",
                        m.kind()
                    );
                }
            }
        }
    }

    #[test]
    fn a_version_2_logistic_file_still_loads_and_scores_as_before() {
        let m = Model::from_bytes(V2_FOOD.as_bytes(), "v2.json", Domain::Food).unwrap();
        assert_eq!(m.kind(), ModelKind::LogisticRegression);
        let mut x = vec![0.0; features::feature_count(Domain::Food)];
        x[feature("illness_7d")] = 2.0;
        let s = m.score(&x);
        let logit = (s.probability / (1.0 - s.probability)).ln();
        let sum: f64 = s.contributions.iter().sum();
        assert!((s.base_log_odds + sum - logit).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn ensemble_contributions_add_up_and_name_the_driving_feature() {
        let m = load(&ensemble_value()).unwrap();
        assert_eq!(m.kind(), ModelKind::TreeEnsemble);
        let forest = m.forest().unwrap();
        let mut x = vec![0.0; features::feature_count(Domain::Food)];
        x[feature("illness_7d")] = 3.0;
        x[feature("reviews_30d")] = 20.0;
        // Raw: tree 0 -> 0.9, tree 1 -> 0.3 (hygiene 0 <= 1): mean 0.6.
        let mut c = vec![0.0; x.len()];
        let (base, raw) = forest.attribute(&x, &mut c);
        assert!((base - 0.425).abs() < 1e-12 && (raw - 0.6).abs() < 1e-12);
        assert!((base + c.iter().sum::<f64>() - raw).abs() < 1e-12);
        assert!((c[feature("illness_7d")] - 0.25).abs() < 1e-12, "{c:?}");
        assert!(
            (c[feature("reviews_30d")] - (-0.025)).abs() < 1e-12,
            "{c:?}"
        );
        assert!((c[feature("hygiene_7d")] - (-0.05)).abs() < 1e-12, "{c:?}");
        assert_eq!(forest.raw_score(&x), raw);
        // The score: calibrated, its contributions in log-odds add up too.
        let s = m.score(&x);
        assert!((s.probability - m.file.calibration.apply(0.6)).abs() < 1e-12);
        let logit = (s.probability / (1.0 - s.probability)).ln();
        let sum: f64 = s.contributions.iter().sum();
        assert!((s.base_log_odds + sum - logit).abs() < 1e-9, "{s:?}");
        let top = (0..x.len())
            .max_by(|&a, &b| s.contributions[a].total_cmp(&s.contributions[b]))
            .unwrap();
        assert_eq!(top, feature("illness_7d"));
        // No illness: the illness split now pulls the score down.
        x[feature("illness_7d")] = 0.0;
        let quiet = m.score(&x);
        assert!(quiet.probability < s.probability);
        assert!(quiet.contributions[feature("illness_7d")] < 0.0);
        // Another path: the contributions still add up.
        let mut at_base = vec![0.0; x.len()];
        at_base[feature("illness_7d")] = 3.0;
        at_base[feature("reviews_30d")] = 20.0;
        at_base[feature("hygiene_7d")] = 5.0;
        let s = m.score(&at_base);
        let logit = (s.probability / (1.0 - s.probability)).ln();
        assert!((s.base_log_odds + s.contributions.iter().sum::<f64>() - logit).abs() < 1e-9);
        // The file round-trips through to_json byte for byte.
        let text = m.file.to_json().unwrap();
        let again = Model::from_bytes(text.as_bytes(), "m.json", Domain::Food).unwrap();
        assert_eq!(again.file.to_json().unwrap(), text);
        assert_eq!(again.score(&x), m.score(&x));
    }

    #[test]
    fn malformed_ensembles_are_refused_with_what_is_wrong() {
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, Edit, &str); 7] = [
            ("cycle", |v| v["trees"]["left"][5] = 3.into(), "child 3"),
            (
                "self loop",
                |v| v["trees"]["right"][0] = 0.into(),
                "child 0",
            ),
            (
                "child in the next tree",
                |v| v["trees"]["right"][0] = 4.into(),
                "child 4",
            ),
            (
                "child past the end",
                |v| v["trees"]["left"][5] = 99.into(),
                "child 99",
            ),
            (
                "feature out of range",
                |v| v["trees"]["feature"][0] = 19.into(),
                "feature 19",
            ),
            (
                "short array",
                |v| {
                    v["trees"]["value"].as_array_mut().unwrap().pop();
                },
                "differ in length",
            ),
            (
                "value above 1",
                |v| v["trees"]["value"][1] = 1.5.into(),
                "outside [0, 1]",
            ),
        ];
        for (what, edit, expect) in cases {
            let mut v = ensemble_value();
            edit(&mut v);
            seal(&mut v);
            let e = load(&v).unwrap_err().to_string();
            assert!(e.contains(expect) && e.contains("m.json"), "{what}: {e}");
        }
        // A kind without its own model field, or with both.
        let mut v = ensemble_value();
        v["kind"] = "logistic_regression".into();
        seal(&mut v);
        assert!(load(&v).unwrap_err().to_string().contains("kind"));
        let mut v = ensemble_value();
        v["format_version"] = 2.into();
        seal(&mut v);
        assert!(
            load(&v)
                .unwrap_err()
                .to_string()
                .contains("format_version 3")
        );
        let mut v = ensemble_value();
        v["format_version"] = 4.into();
        seal(&mut v);
        assert!(
            load(&v)
                .unwrap_err()
                .to_string()
                .contains("format_version 4")
        );
    }

    #[test]
    fn builtin_models_load_and_score_risk_higher() {
        for d in Domain::ALL {
            let m = Model::builtin(d).unwrap();
            assert_eq!(m.sha256.len(), 64);
            let names = features::feature_names(d);
            let quiet = vec![0.0; names.len()];
            let mut risky = quiet.clone();
            for (i, n) in names.iter().enumerate() {
                if n.starts_with("risk") || n.starts_with("illness") || n.starts_with("hygiene") {
                    risky[i] = 3.0;
                }
            }
            assert!(
                m.score(&risky).probability > m.score(&quiet).probability,
                "{d}"
            );
        }
    }

    #[test]
    fn refuses_wrong_features_corrupt_files_and_wrong_domain() {
        let good: serde_json::Value = serde_json::from_str(BUILTIN_FOOD).unwrap();
        let mut renamed = good.clone();
        renamed["feature_names"][0] = "shoe_size".into();
        seal(&mut renamed);
        let e = Model::from_bytes(
            &serde_json::to_vec(&renamed).unwrap(),
            "m.json",
            Domain::Food,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("shoe_size") && e.to_string().contains("m.json"),
            "{e}"
        );
        let e = Model::from_bytes(b"{\"format_version\": 2", "m.json", Domain::Food).unwrap_err();
        assert!(matches!(e, ModelError::Corrupt { .. }));
        let e = Model::from_bytes(BUILTIN_FOOD.as_bytes(), "m.json", Domain::Tourism).unwrap_err();
        assert!(e.to_string().contains("food model"), "{e}");
        let mut bad_std = good;
        bad_std["std"][0] = 0.0.into();
        seal(&mut bad_std);
        assert!(
            Model::from_bytes(&serde_json::to_vec(&bad_std).unwrap(), "m", Domain::Food).is_err()
        );
    }

    #[test]
    fn a_file_changed_after_training_is_refused_and_whitespace_does_not_matter() {
        let good: serde_json::Value = serde_json::from_str(BUILTIN_FOOD).unwrap();
        // Same content, other layout: still loads.
        let compact = serde_json::to_vec(&good).unwrap();
        Model::from_bytes(&compact, "m.json", Domain::Food).unwrap();
        // One weight changed by hand: refused, naming the field and the file.
        let mut tampered = good.clone();
        tampered["thresholds"]["high"] = 0.86.into();
        let e = Model::from_bytes(
            &serde_json::to_vec(&tampered).unwrap(),
            "m.json",
            Domain::Food,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("m.json") && e.contains("content_sha256") && e.contains("changed"),
            "{e}"
        );
        // Resealed on purpose: accepted again.
        seal(&mut tampered);
        let m = Model::from_bytes(
            &serde_json::to_vec(&tampered).unwrap(),
            "m.json",
            Domain::Food,
        )
        .unwrap();
        assert_eq!(m.file.thresholds.high, 0.86);
        // to_json gives back a file that loads, byte for byte the same each time.
        let text = m.file.to_json().unwrap();
        assert_eq!(text, m.file.to_json().unwrap());
        Model::from_bytes(text.as_bytes(), "m.json", Domain::Food).unwrap();
        // A file without the field is refused by name.
        let mut missing = good;
        missing.as_object_mut().unwrap().remove("content_sha256");
        let e = Model::from_bytes(
            &serde_json::to_vec(&missing).unwrap(),
            "m.json",
            Domain::Food,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("content_sha256") && e.contains("missing"), "{e}");
    }
}
