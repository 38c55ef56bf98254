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
//! Three kinds of model (`kind`): a monotone scorecard (`scorecard`, see
//! [`Scorecard`]: what `train` fits), a logistic regression (`logistic`: a
//! fitted linfa model, serde) and a tree ensemble (`trees`: bagged decision
//! trees, flattened into arrays, see [`TreeEnsemble`]). All give every score
//! additive per-feature contributions in calibrated log-odds (see
//! [`Score`]). Files of format versions 2 and 3 still load.
//!
//! A model reads the features its file names, each one this build computes
//! (see [`crate::core::features::feature_names`]), in the file's order: a
//! build that computes more features still loads the older files.

use crate::core::features;
use crate::types::Domain;
use linfa_logistic::FittedLogisticRegression;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// 2: `content_sha256` added. 3: `kind`, and tree ensembles (`trees`).
/// 4: scorecards (`scorecard`), any subset of the build's features, and the
/// weekly exceedance table (`exceedance`).
pub const FORMAT_VERSION: u32 = 4;

/// The most features a model reads (a build computes fewer).
pub const MAX_FEATURES: usize = 64;

mod scorecard;
pub use scorecard::{Exceedance, Scorecard, transform as scorecard_transform};
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
    /// `scorecard`: a logistic model on log1p-transformed, standardised
    /// features whose weights on risk features are never negative.
    Scorecard,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::LogisticRegression => "logistic_regression",
            ModelKind::TreeEnsemble => "tree_ensemble",
            ModelKind::Scorecard => "scorecard",
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
    /// With `kind` `scorecard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorecard: Option<Scorecard>,
    /// How often, per business and week, the model's probability reached
    /// each level on the history it was fitted on: turns a region's weekly
    /// inspection capacity into a probability threshold (format version 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceedance: Option<Exceedance>,
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

    /// The calibrated probability of uncalibrated log-odds `z`.
    pub fn apply_log_odds(&self, z: f64) -> f64 {
        1.0 / (1.0 + (-(self.slope * z + self.intercept)).exp())
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
    /// Per feature of the file, its index in this build's feature vector.
    columns: Vec<usize>,
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
        let build = features::feature_names(domain);
        let mut columns = Vec::with_capacity(file.feature_names.len());
        for name in &file.feature_names {
            match build.iter().position(|b| b == name) {
                Some(i) if !columns.contains(&i) => columns.push(i),
                Some(_) => {
                    return Err(invalid(format!(
                        "it names feature {name:?} twice in feature_names"
                    )));
                }
                None => {
                    return Err(invalid(format!(
                        "it reads feature {name:?}, which this build does not compute (it computes {build:?}); retrain it with `reviewguard train`"
                    )));
                }
            }
        }
        if columns.is_empty() || columns.len() > MAX_FEATURES {
            return Err(invalid(format!(
                "it reads {} features; a model reads 1 to {MAX_FEATURES}",
                columns.len()
            )));
        }
        let n = columns.len();
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
        let forest = match (file.kind, &file.logistic, &file.trees, &file.scorecard) {
            (ModelKind::Scorecard, None, None, Some(card)) => {
                if file.format_version < 4 {
                    return Err(invalid(
                        "a scorecard needs format_version 4 or later".into(),
                    ));
                }
                card.check(&file.feature_names, file.calibration)
                    .map_err(invalid)?;
                None
            }
            (ModelKind::LogisticRegression, Some(lr), None, None) => {
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
            (ModelKind::TreeEnsemble, None, Some(trees), None) => {
                if file.format_version < 3 {
                    return Err(invalid(
                        "a tree ensemble needs format_version 3 or later".into(),
                    ));
                }
                Some(trees.check(n).map_err(invalid)?)
            }
            (kind, lr, trees, card) => {
                return Err(invalid(format!(
                    "kind {} needs exactly its own model field (logistic present: {}, trees present: {}, scorecard present: {})",
                    kind.as_str(),
                    lr.is_some(),
                    trees.is_some(),
                    card.is_some()
                )));
            }
        };
        let t = file.thresholds;
        if !(0.0 < t.low && t.low <= t.medium && t.medium <= t.high && t.high < 1.0) {
            return Err(invalid(format!(
                "thresholds must satisfy 0 < low <= medium <= high < 1, got {t:?}"
            )));
        }
        if let Some(e) = &file.exceedance {
            e.check().map_err(invalid)?;
        }
        Ok(Model {
            sha256: hex::encode(Sha256::digest(bytes)),
            file,
            forest,
            columns,
        })
    }

    pub fn kind(&self) -> ModelKind {
        self.file.kind
    }

    /// The packed trees of a tree ensemble.
    pub fn forest(&self) -> Option<&Forest> {
        self.forest.as_ref()
    }

    /// The model's features out of the build's vector `raw`, in the file's
    /// order (no allocation: at most [`MAX_FEATURES`]).
    fn select(&self, raw: &[f64]) -> ([f64; MAX_FEATURES], usize) {
        let mut x = [0.0; MAX_FEATURES];
        for (v, &c) in x.iter_mut().zip(&self.columns) {
            *v = raw[c];
        }
        (x, self.columns.len())
    }

    /// The names of the features this model reads, in its order.
    /// Per feature the model reads (in its file's order), the feature's
    /// index in this build's feature vector.
    pub fn columns(&self) -> &[usize] {
        &self.columns
    }

    pub fn feature_names(&self) -> &[String] {
        &self.file.feature_names
    }

    /// Standardise the model's features (in its order) as it was fitted.
    pub fn standardise(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(self.file.mean.iter().zip(&self.file.std))
            .map(|(x, (m, s))| (x - m) / s)
            .collect()
    }

    /// The calibrated probability of violations: exactly
    /// `score(raw).probability`, without working out each feature's part
    /// (what deciding needs; the parts are for the flag's reasons). `raw`
    /// is the build's feature vector ([`crate::core::features`]).
    pub fn probability(&self, raw: &[f64]) -> f64 {
        let (x, n) = self.select(raw);
        let x = &x[..n];
        match (&self.forest, &self.file.scorecard) {
            (Some(forest), _) => self.file.calibration.apply(forest.raw_score(x)),
            (None, Some(card)) => self.file.calibration.apply_log_odds(card.log_odds(
                x,
                &self.file.mean,
                &self.file.std,
            )),
            (None, None) => self.score(raw).probability,
        }
    }

    /// The calibrated probability of violations and each feature's part in
    /// it. `raw` is the build's feature vector; the contributions are per
    /// feature of that vector (0 for one the model does not read).
    pub fn score(&self, raw: &[f64]) -> Score {
        let (x, n) = self.select(raw);
        let mut s = self.score_own(&x[..n]);
        let mut all = vec![0.0; raw.len()];
        for (c, &i) in s.contributions.iter().zip(&self.columns) {
            all[i] = *c;
        }
        s.contributions = all;
        s
    }

    /// [`Model::score`] on the model's own features, in its order.
    fn score_own(&self, raw: &[f64]) -> Score {
        let cal = self.file.calibration;
        if let Some(card) = &self.file.scorecard {
            let mut contributions = vec![0.0; raw.len()];
            let z = card.attribute(raw, &self.file.mean, &self.file.std, &mut contributions);
            for c in &mut contributions {
                *c *= cal.slope;
            }
            return Score {
                probability: cal.apply_log_odds(z),
                contributions,
                base_log_odds: cal.slope * card.intercept + cal.intercept,
            };
        }
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
            unreachable!("a checked model has a scorecard, a logistic regression or trees")
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
mod tests;
