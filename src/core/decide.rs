//! From a score to a decision: rules beside the model, thresholds to
//! severity, and the per-business cooldown with escalation.

use crate::core::features::BusinessState;
use crate::core::model::Thresholds;
use crate::types::Severity;
use crate::types::category::Category;
use serde::{Deserialize, Serialize};

/// Rule and cooldown settings (config section `[decide]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecideConfig {
    /// A business is not flagged again within this many hours unless its severity rises.
    pub cooldown_hours: u32,
    /// `illness_cluster`: this many independent illness reports ...
    pub illness_cluster_reports: u32,
    /// ... within this many hours flag the business as high severity at once.
    pub illness_cluster_hours: u32,
}

impl Default for DecideConfig {
    fn default() -> Self {
        DecideConfig {
            cooldown_hours: 7 * 24,
            illness_cluster_reports: 2,
            illness_cluster_hours: 72,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Model,
    IllnessCluster,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Model => "model",
            Trigger::IllnessCluster => "illness_cluster",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub severity: Severity,
    pub trigger: Trigger,
}

/// Severity the model's probability alone earns, if any.
pub fn severity_of(probability: f64, t: &Thresholds) -> Option<Severity> {
    if probability >= t.high {
        Some(Severity::High)
    } else if probability >= t.medium {
        Some(Severity::Medium)
    } else if probability >= t.low {
        Some(Severity::Low)
    } else {
        None
    }
}

/// Decide for a business whose state already includes the review at `now`.
pub fn decide(
    state: &BusinessState,
    probability: f64,
    thresholds: &Thresholds,
    cfg: &DecideConfig,
    now: i64,
) -> Option<Decision> {
    let cluster = state.distinct_reporters(
        Some(Category::Illness),
        now,
        i64::from(cfg.illness_cluster_hours) * 3600,
    ) >= cfg.illness_cluster_reports as usize
        && cfg.illness_cluster_reports > 0;
    let decision = if cluster {
        Decision {
            severity: Severity::High,
            trigger: Trigger::IllnessCluster,
        }
    } else {
        Decision {
            severity: severity_of(probability, thresholds)?,
            trigger: Trigger::Model,
        }
    };
    if let Some(last) = state.last_flag() {
        let within = now - last.event_time < i64::from(cfg.cooldown_hours) * 3600;
        if within && decision.severity <= last.severity {
            return None;
        }
    }
    Some(decision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::features::{LastFlag, Observation};
    use crate::types::Domain;
    use crate::types::category::CategorySet;

    const T: Thresholds = Thresholds {
        low: 0.5,
        medium: 0.7,
        high: 0.9,
    };

    fn state_with_illness(reporters: &[(i64, u64)]) -> BusinessState {
        let mut s = BusinessState::new(Domain::Food, 0);
        for (t, who) in reporters {
            s.observe(&Observation {
                event_time: *t,
                rating: None,
                photos: 0,
                signals: [Category::Illness].into_iter().collect::<CategorySet>(),
                review_id: "r",
                created_at: "c",
                reviewer: *who,
                text: "拉肚子",
            });
        }
        s
    }

    #[test]
    fn thresholds_map_to_severity() {
        assert_eq!(severity_of(0.95, &T), Some(Severity::High));
        assert_eq!(severity_of(0.75, &T), Some(Severity::Medium));
        assert_eq!(severity_of(0.5, &T), Some(Severity::Low));
        assert_eq!(severity_of(0.49, &T), None);
    }

    #[test]
    fn illness_cluster_needs_two_people_within_72_hours() {
        let c = DecideConfig::default();
        let one_person = state_with_illness(&[(0, 1), (3600, 1)]);
        assert_eq!(decide(&one_person, 0.1, &T, &c, 3600), None);
        let two = state_with_illness(&[(0, 1), (3600, 2)]);
        let d = decide(&two, 0.1, &T, &c, 3600).unwrap();
        assert_eq!(
            (d.severity, d.trigger),
            (Severity::High, Trigger::IllnessCluster)
        );
        let far_apart = state_with_illness(&[(0, 1), (73 * 3600, 2)]);
        assert_eq!(decide(&far_apart, 0.1, &T, &c, 73 * 3600), None);
    }

    #[test]
    fn cooldown_holds_unless_severity_rises() {
        let c = DecideConfig::default();
        let mut s = state_with_illness(&[(0, 1)]);
        s.set_last_flag(LastFlag {
            event_time: 0,
            severity: Severity::Medium,
        });
        assert_eq!(decide(&s, 0.75, &T, &c, 3600), None);
        assert_eq!(
            decide(&s, 0.95, &T, &c, 3600).map(|d| d.severity),
            Some(Severity::High)
        );
        let after = 8 * 24 * 3600;
        assert_eq!(
            decide(&s, 0.75, &T, &c, after).map(|d| d.severity),
            Some(Severity::Medium)
        );
    }
}
