//! `explain`: how a business's flags came about. Replays that business's
//! reviews through the same core as the stream and `replay` and tells, for
//! each review, its signals (on a redacted snippet; never the reviewer id),
//! and for each risk review the feature values, the score against the
//! model's thresholds, the rule or threshold that fired (or why nothing did)
//! and each flag with its reasons.
//!
//! A business's state depends on its own reviews only, so replaying just
//! them, in input order, gives exactly the flags a replay of the whole input
//! gives for it.

use crate::core::decide;

use crate::core::features;
use crate::core::flag::Flag;
use crate::core::redact;
use crate::core::review::{self, DecodeOptions};
use crate::core::scorer::{Scorer, States};
use crate::types::Domain;
use crate::types::Severity;
use std::io::{BufRead, Write};

/// Longest snippet shown for a review: as long as the evidence snippets.
const SNIPPET_CHARS: usize = features::SNIPPET_CHARS;

#[derive(Debug, Default)]
pub struct Explained {
    /// Reviews of the business found in the input.
    pub reviews: u64,
    /// Input lines refused by the decoder (of any business).
    pub rejected: u64,
    /// Flags the core emitted for the business, in order (`emitted_at` empty).
    pub flags: Vec<Flag>,
}

/// Explain `business` (in `domain`, or in any domain) from review JSON lines.
pub fn explain(
    scorer: &Scorer,
    input: impl BufRead,
    business: &str,
    domain: Option<Domain>,
    max_bytes: usize,
    out: &mut impl Write,
) -> std::io::Result<Explained> {
    let opts = DecodeOptions {
        max_bytes,
        default_domain: None,
    };
    let mut states = States::default();
    let mut x = Explained::default();
    for line in input.split(b'\n') {
        let mut line = line?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let r = match review::decode(&line, &opts) {
            Ok(r) => r,
            Err(_) => {
                x.rejected += 1;
                continue;
            }
        };
        if r.business_id != business || domain.is_some_and(|d| d != r.domain) {
            continue;
        }
        x.reviews += 1;
        let last_flag = states
            .get(r.domain, &r.business_id)
            .and_then(|s| s.last_flag());
        let newest = states
            .get(r.domain, &r.business_id)
            .and_then(|s| s.inspections().first().map(|i| i.event_time));
        let outcome = scorer.process(&mut states, &r);
        // Inspections folded in before this review (the outcome book's).
        if let Some(s) = states.get(r.domain, &r.business_id) {
            let new = s
                .inspections()
                .iter()
                .take_while(|i| newest.is_none_or(|n| i.event_time > n))
                .count();
            for i in s.inspections()[..new].iter().rev() {
                writeln!(
                    out,
                    "inspection {} {}",
                    crate::types::time::rfc3339(i.event_time),
                    if i.violation {
                        "found violations"
                    } else {
                        "found nothing: the reports before it count a quarter, the cooldown ends"
                    }
                )?;
            }
        }
        let signals = outcome.signals.sorted_names();
        writeln!(
            out,
            "review {} {} {} signals {:?} \"{}\"",
            r.review_id,
            r.created_at,
            r.domain,
            signals,
            redact::snippet(&r.text, SNIPPET_CHARS)
        )?;
        let Some(probability) = outcome.risk_score else {
            continue;
        };
        let Some(state) = states.get(r.domain, &r.business_id) else {
            continue;
        };
        // The vector the core scored: the state as of this review.
        let raw = state.features_at(r.event_time.max(state.as_of));
        let names = features::feature_names(r.domain);
        let shown: Vec<String> = names
            .iter()
            .zip(&raw)
            .filter(|(_, v)| **v != 0.0)
            .map(|(n, v)| format!("{n}={v:.3}"))
            .collect();
        writeln!(out, "  features: {}", shown.join(" "))?;
        let model = scorer.models.get(r.domain);
        let capacity = scorer.decide.capacity_of(state.region(), r.domain);
        let t = &decide::cutoffs(
            &model.file.thresholds,
            model.file.exceedance.as_ref(),
            capacity,
        );
        let by = match capacity {
            Some(c) => format!(
                " (region {}'s capacity: {} a week of {} businesses)",
                c.region, c.per_week, c.businesses
            ),
            None => String::new(),
        };
        writeln!(
            out,
            "  score {probability:.4} by model {} {} ({}, sha256 {}); thresholds low {:.4} medium {:.4} high {:.4}{by}",
            model.file.name,
            model.file.version,
            model.kind().as_str(),
            model.sha256,
            t.low,
            t.medium,
            t.high
        )?;
        let by_model = decide::severity_of(probability, t);
        let cluster = state.credible_reporters(
            Some(crate::types::category::Category::Illness),
            r.event_time,
            i64::from(scorer.decide.illness_cluster_hours) * 3600,
        );
        // (+ 0.0: no reporter prints as 0.00, not -0.00.)
        let cluster = cluster + 0.0;
        let cluster_fires = decide::illness_cluster(state, &scorer.decide, r.event_time);
        let reporters =
            state.credible_reporters(None, r.event_time, decide::MODEL_REPORTERS_WINDOW) + 0.0;
        writeln!(
            out,
            "  model alone: {}; reporters in 30 days {reporters:.2} (a model flag needs {}); illness reporters in {} h {cluster:.2} (illness_cluster needs {})",
            by_model.map_or("below the low threshold", Severity::as_str),
            scorer.decide.model_min_reporters,
            scorer.decide.illness_cluster_hours,
            scorer.decide.illness_cluster_reports
        )?;
        match &outcome.flag {
            Some(f) => {
                writeln!(
                    out,
                    "  flag {} severity {} trigger {} risk_score {}",
                    f.flag_id,
                    f.severity.as_str(),
                    f.trigger,
                    f.risk_score
                )?;
                for reason in &f.reasons {
                    writeln!(
                        out,
                        "    reason {} = {} (contribution {:+.3}): {}",
                        reason.feature, reason.value, reason.contribution, reason.text
                    )?;
                }
                x.flags.push(Flag::clone(f));
            }
            None => {
                let enough = decide::enough_reporters(state, &scorer.decide, r.event_time);
                let why = match last_flag {
                    _ if by_model.is_some() && !cluster_fires && !enough => format!(
                        "no flag: the reporters in 30 days weigh {reporters:.2}, under the {} a model flag needs",
                        scorer.decide.model_min_reporters
                    ),
                    Some(l) if by_model.is_some() || cluster_fires => format!(
                        "no flag: within the cooldown of the flag at {} (severity {}) and severity did not rise",
                        crate::types::time::rfc3339(l.event_time),
                        l.severity.as_str()
                    ),
                    _ => "no flag: no rule fired and the score is below the low threshold".into(),
                };
                writeln!(out, "  {why}")?;
            }
        }
    }
    Ok(x)
}
