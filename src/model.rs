//! Trained models: the file format, loading with checks, and scoring with
//! per-feature contributions.
//!
//! A model file is JSON: format version, the feature names it was fitted on,
//! the standardisation (mean, std), the fitted linfa logistic regression
//! (serde), severity thresholds, provenance and `content_sha256`: the sha256
//! of the file's own content (see [`content_digest`]), checked on load, so a
//! file changed after training is refused. A file whose feature names do not
//! match the code's, or that is corrupt, is refused with what is wrong.

use crate::features;
use crate::review::Domain;
use linfa_logistic::FittedLogisticRegression;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// 2: `content_sha256` added.
pub const FORMAT_VERSION: u32 = 2;

/// The embedded defaults, so `demo` and a bare binary work anywhere.
pub const BUILTIN_FOOD: &str = include_str!("../models/food.json");
pub const BUILTIN_TOURISM: &str = include_str!("../models/tourism.json");

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub format_version: u32,
    pub name: String,
    pub version: String,
    pub domain: Domain,
    pub feature_names: Vec<String>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub logistic: FittedLogisticRegression<f64, bool>,
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

    /// The file's text: pretty JSON with `content_sha256` filled in, ending
    /// in a newline. The same model gives the same bytes.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        // Digest what a reader will parse (numbers as they read back).
        let mut v: serde_json::Value = serde_json::from_str(&serde_json::to_string(self)?)?;
        seal(&mut v);
        let mut text = serde_json::to_string_pretty(&v)?;
        text.push('\n');
        Ok(text)
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
        let p = p.clamp(1e-12, 1.0 - 1e-12);
        let logit = (p / (1.0 - p)).ln();
        1.0 / (1.0 + (-(self.slope * logit + self.intercept)).exp())
    }
}

/// A loaded, checked model.
#[derive(Debug, Clone)]
pub struct Model {
    pub file: ModelFile,
    /// sha256 of the file's bytes, hex: what `sha256sum` prints for it.
    pub sha256: String,
}

/// A score and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub probability: f64,
    /// Per feature: weight × standardised value (log-odds units).
    pub contributions: Vec<f64>,
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
        if version != Some(u64::from(FORMAT_VERSION)) {
            return Err(invalid(format!(
                "format_version {} is not supported (this build reads {FORMAT_VERSION}); retrain with this version",
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
        if file.mean.len() != n || file.std.len() != n || file.logistic.params().len() != n {
            return Err(invalid(format!(
                "it has {} means, {} deviations and {} weights for {n} features",
                file.mean.len(),
                file.std.len(),
                file.logistic.params().len()
            )));
        }
        let finite = file
            .mean
            .iter()
            .chain(&file.std)
            .chain(file.logistic.params())
            .all(|v| v.is_finite())
            && file.logistic.intercept().is_finite();
        if !finite || file.std.iter().any(|s| *s <= 0.0) {
            return Err(invalid(
                "it holds non-finite numbers or a deviation <= 0".into(),
            ));
        }
        let t = file.thresholds;
        if !(0.0 < t.low && t.low <= t.medium && t.medium <= t.high && t.high < 1.0) {
            return Err(invalid(format!(
                "thresholds must satisfy 0 < low <= medium <= high < 1, got {t:?}"
            )));
        }
        Ok(Model {
            sha256: hex::encode(Sha256::digest(bytes)),
            file,
        })
    }

    /// Standardise a raw feature vector as the model was fitted.
    pub fn standardise(&self, raw: &[f64]) -> Vec<f64> {
        raw.iter()
            .zip(self.file.mean.iter().zip(&self.file.std))
            .map(|(x, (m, s))| (x - m) / s)
            .collect()
    }

    pub fn score(&self, raw: &[f64]) -> Score {
        let z = self.standardise(raw);
        let sign = violation_sign(&self.file.logistic);
        let contributions: Vec<f64> = z
            .iter()
            .zip(self.file.logistic.params())
            .map(|(z, w)| sign * z * w)
            .collect();
        let x = Array2::from_shape_vec((1, z.len()), z)
            .unwrap_or_else(|_| unreachable!("one row of n values is a 1×n matrix"));
        let raw = violation_probabilities(&self.file.logistic, &x)[0];
        let cal = self.file.calibration;
        Score {
            probability: cal.apply(raw),
            contributions: contributions.into_iter().map(|c| c * cal.slope).collect(),
        }
    }

    /// Weights in the direction of "violations found" (see [`violation_sign`]).
    pub fn weights(&self) -> Vec<f64> {
        let sign = violation_sign(&self.file.logistic);
        self.file
            .logistic
            .params()
            .iter()
            .map(|w| sign * w)
            .collect()
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
