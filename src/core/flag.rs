//! The flag message (`docs/contract.md`, "Flag message"): what a regulator reads.

use crate::core::decide::Decision;

use crate::core::features::{self, BusinessState};
use crate::core::model::{Model, Score};
use crate::core::review::ReviewRef;
use crate::types::Domain;
use crate::types::Severity;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: u32 = 1;
pub const MAX_EVIDENCE: usize = 5;
pub const MAX_REASONS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// A feature that pushed the score up: its value and its contribution in
/// calibrated log-odds of violations ([`crate::core::model::Score`]): for a
/// scorecard, weight × standardised `ln(1 + value)`; for the older kinds,
/// weight × standardised value (logistic regression) or path attribution
/// (tree ensemble). The contributions of all features and the model's base
/// add up to the score's log-odds; the flag shows the largest positive ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub feature: String,
    pub value: f64,
    pub contribution: f64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub review_id: String,
    pub created_at: String,
    pub signals: Vec<String>,
    pub snippet: String,
    pub photos: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub schema_version: u32,
    pub flag_id: String,
    pub domain: Domain,
    pub business_id: String,
    pub business_name: Option<String>,
    pub region: Option<String>,
    pub risk_score: f64,
    pub severity: Severity,
    pub trigger: String,
    pub model: ModelRef,
    pub reasons: Vec<Reason>,
    /// Every feature value the model scored, by name: with `model.sha256`,
    /// enough to recompute `risk_score` (audit). Additive to the contract.
    #[serde(default)]
    pub features: BTreeMap<String, f64>,
    pub evidence: Vec<Evidence>,
    pub reviews_considered: u32,
    pub event_time: String,
    /// Wall clock, set by whoever emits the flag; the core leaves it empty.
    pub emitted_at: String,
}

/// Same inputs, same id: domain, business, trigger, severity, triggering
/// review and the model's sha256.
pub fn flag_id(
    domain: Domain,
    business_id: &str,
    decision: &Decision,
    review_id: &str,
    model_sha: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        "reviewguard-flag-v1",
        domain.as_str(),
        business_id,
        decision.trigger.as_str(),
        decision.severity.as_str(),
        review_id,
        model_sha,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// Build the flag for a decision on `state` (which includes `review`).
pub fn build(
    review: &ReviewRef<'_>,
    state: &BusinessState,
    model: &Model,
    raw: &[f64],
    score: &Score,
    decision: &Decision,
) -> Flag {
    let names = features::feature_names(review.domain);
    let mut order: Vec<usize> = (0..names.len())
        .filter(|&i| score.contributions[i] > 0.0)
        .collect();
    order.sort_by(|&a, &b| {
        score.contributions[b]
            .total_cmp(&score.contributions[a])
            .then(a.cmp(&b))
    });
    let reasons = order
        .into_iter()
        .take(MAX_REASONS)
        .map(|i| Reason {
            feature: names[i].clone(),
            value: round(raw[i], 3),
            contribution: round(score.contributions[i], 3),
            text: features::describe(&names[i], raw[i]),
        })
        .collect();
    let evidence = state
        .recent_risk()
        .iter()
        .take(MAX_EVIDENCE)
        .map(|e| Evidence {
            review_id: String::from(&*e.review_id),
            created_at: String::from(&*e.created_at),
            signals: e
                .categories()
                .sorted_names()
                .into_iter()
                .map(String::from)
                .collect(),
            snippet: String::from(&*e.snippet),
            photos: e.photos,
        })
        .collect();
    Flag {
        schema_version: SCHEMA_VERSION,
        flag_id: flag_id(
            review.domain,
            &review.business_id,
            decision,
            &review.review_id,
            &model.sha256,
        ),
        domain: review.domain,
        business_id: review.business_id.to_string(),
        business_name: state.business_name().map(str::to_owned),
        region: state.region().map(str::to_owned),
        risk_score: round(score.probability, 4),
        severity: decision.severity,
        trigger: decision.trigger.as_str().to_owned(),
        model: ModelRef {
            name: model.file.name.clone(),
            version: model.file.version.clone(),
            sha256: model.sha256.clone(),
        },
        reasons,
        features: names
            .iter()
            .zip(raw)
            .map(|(n, v)| (n.clone(), round(*v, 6)))
            .collect(),
        evidence,
        reviews_considered: state.reviews_total,
        event_time: review.created_at.to_string(),
        emitted_at: String::new(),
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

/// One readable line for a terminal: severity, business, top reason, evidence.
pub fn summary_line(f: &Flag) -> String {
    let reason = f.reasons.first().map_or("-", |r| r.text.as_str());
    let evidence = f
        .evidence
        .first()
        .map_or(String::new(), |e| format!(" | \"{}\"", e.snippet));
    format!(
        "[{:<6}] {:<7} {} ({}) score {:.2} via {} | {}{}",
        f.severity.as_str().to_uppercase(),
        f.domain.as_str(),
        f.business_id,
        f.business_name.as_deref().unwrap_or("?"),
        f.risk_score,
        f.trigger,
        reason,
        evidence
    )
}
