//! From a score to a decision: rules beside the model, a region's weekly
//! inspection capacity or the model's thresholds to severity, and the
//! per-business cooldown with escalation.

use crate::core::features::BusinessState;
use crate::core::model::{Exceedance, Thresholds};
use crate::types::category::Category;
use crate::types::{Domain, Severity};
use serde::{Deserialize, Serialize};

/// Rule and cooldown settings (config section `[decide]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecideConfig {
    /// A business is not flagged again within this many hours unless its
    /// severity rises or an inspection found it clean since.
    pub cooldown_hours: u32,
    /// `illness_cluster`: illness reports from this many independent
    /// reporters, weighed by credibility as
    /// [`BusinessState::credible_reporters`] does (two fresh accounts are
    /// not enough, nor is a burst of bare one-star reports; three people
    /// are), since the last clean inspection ...
    pub illness_cluster_reports: u32,
    /// ... within this many hours flag the business as high severity at once.
    pub illness_cluster_hours: u32,
    /// A flag the model raises needs risk reports from independent reporters
    /// weighing at least this much (see
    /// [`BusinessState::credible_reporters`]) in the last 30 days since the
    /// last clean inspection (2: two people with photos, or three without):
    /// one person, or one burst of bare reports from fresh accounts, is not
    /// yet a pattern. 0 turns the check off.
    pub model_min_reporters: u32,
    /// Weekly inspection capacity per region and domain. Where a region has
    /// one, a business is flagged when its probability ranks it within that
    /// capacity (see [`Capacity`]); elsewhere by the model's thresholds.
    pub capacity: Vec<Capacity>,
}

impl Default for DecideConfig {
    fn default() -> Self {
        DecideConfig {
            cooldown_hours: 7 * 24,
            illness_cluster_reports: 2,
            illness_cluster_hours: 72,
            model_min_reporters: 2,
            capacity: Vec::new(),
        }
    }
}

/// How many inspections a region can make per week in one domain, and how
/// many businesses of that domain it has (`[[decide.capacity]]`).
///
/// Ranking needs every business of the region, which no instance of `run`
/// holds (businesses are spread over partitions). The model file carries how
/// often its probability reached each level per business and week on the
/// history it was fitted on ([`Exceedance`]); the region's cut-off is the
/// lowest level reached by at most `per_week` of its `businesses` a week, so
/// the flags of a region come to about its capacity, the highest
/// probabilities first, and every instance decides alike (replay equals
/// stream). The top quarter of the capacity is `high`, the next quarter
/// `medium`, the rest `low` (or higher where the model's thresholds say so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub region: String,
    pub domain: Domain,
    /// Inspections per week the region can make in this domain (at least 1).
    pub per_week: u32,
    /// Businesses of this domain in the region (at least 1).
    pub businesses: u32,
}

impl DecideConfig {
    /// The capacity configured for a region and domain.
    pub fn capacity_of(&self, region: Option<&str>, domain: Domain) -> Option<&Capacity> {
        let region = region?;
        self.capacity
            .iter()
            .find(|c| c.domain == domain && c.region == region)
    }

    /// What is wrong with the settings, if anything (a message naming the key).
    pub fn problem(&self) -> Option<String> {
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.capacity.iter().enumerate() {
            if c.region.trim().is_empty() {
                return Some(format!("decide.capacity[{i}].region is empty"));
            }
            if c.per_week == 0 || c.businesses == 0 {
                return Some(format!(
                    "decide.capacity[{i}] ({} {}): per_week and businesses must be at least 1",
                    c.region, c.domain
                ));
            }
            if !seen.insert((c.region.as_str(), c.domain)) {
                return Some(format!(
                    "decide.capacity lists region {} for {} twice",
                    c.region, c.domain
                ));
            }
        }
        None
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

/// Probability cut-offs for one business: its region's capacity where one
/// is configured (and the model carries its exceedance table), else the
/// model's thresholds.
pub fn cutoffs(
    thresholds: &Thresholds,
    exceedance: Option<&Exceedance>,
    capacity: Option<&Capacity>,
) -> Thresholds {
    let (Some(e), Some(c)) = (exceedance, capacity) else {
        return *thresholds;
    };
    let share = |k: f64| f64::from(c.per_week) * k / f64::from(c.businesses);
    let low = e.level_for(share(1.0));
    let medium = e.level_for(share(0.5)).max(low);
    let high = e.level_for(share(0.25)).max(medium);
    Thresholds {
        low,
        medium: medium.min(thresholds.medium.max(low)),
        high: high.min(thresholds.high.max(low)),
    }
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

/// The window in which a model flag's reporters are counted
/// ([`DecideConfig::model_min_reporters`]).
pub const MODEL_REPORTERS_WINDOW: i64 = 30 * 86_400;

/// Whether enough independent, credible reporters stand behind a flag the
/// model raises ([`DecideConfig::model_min_reporters`]).
pub fn enough_reporters(state: &BusinessState, cfg: &DecideConfig, now: i64) -> bool {
    cfg.model_min_reporters == 0
        || reporters_reach(
            state,
            None,
            now,
            MODEL_REPORTERS_WINDOW,
            cfg.model_min_reporters,
        )
}

/// Whether the credible reporters of `category` within `window` seconds
/// before `now` weigh `n` (up to rounding).
fn reporters_reach(
    state: &BusinessState,
    category: Option<Category>,
    now: i64,
    window: i64,
    n: u32,
) -> bool {
    state.credible_reporters(category, now, window) >= f64::from(n) - 1e-6
}

/// Whether the illness rule fires: credible illness reporters within the
/// configured hours reach the configured number.
pub fn illness_cluster(state: &BusinessState, cfg: &DecideConfig, now: i64) -> bool {
    cfg.illness_cluster_reports > 0
        && reporters_reach(
            state,
            Some(Category::Illness),
            now,
            i64::from(cfg.illness_cluster_hours) * 3600,
            cfg.illness_cluster_reports,
        )
}

/// Decide for a business whose state already includes the review at `now`,
/// with the cut-offs of its region ([`cutoffs`]).
pub fn decide(
    state: &BusinessState,
    probability: f64,
    cutoffs: &Thresholds,
    cfg: &DecideConfig,
    now: i64,
) -> Option<Decision> {
    let decision = if illness_cluster(state, cfg, now) {
        Decision {
            severity: Severity::High,
            trigger: Trigger::IllnessCluster,
        }
    } else {
        let severity = severity_of(probability, cutoffs)?;
        if !enough_reporters(state, cfg, now) {
            return None;
        }
        Decision {
            severity,
            trigger: Trigger::Model,
        }
    };
    if let Some(last) = state.last_flag() {
        let within = now - last.event_time < i64::from(cfg.cooldown_hours) * 3600;
        if within && decision.severity <= last.severity && !state.cleared_since_flag() {
            return None;
        }
    }
    Some(decision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::features::{LastFlag, Observation};
    use crate::types::category::CategorySet;

    const T: Thresholds = Thresholds {
        low: 0.5,
        medium: 0.7,
        high: 0.9,
    };

    /// Illness reports with photos, (time, reporter).
    fn state_with_illness(reporters: &[(i64, u64)]) -> BusinessState {
        state_with_reports(reporters, 1)
    }

    /// Illness reports without a rating (read as one star).
    fn state_with_reports(reporters: &[(i64, u64)], photos: u32) -> BusinessState {
        state_with_rated_reports(reporters, photos, None)
    }

    fn state_with_rated_reports(
        reporters: &[(i64, u64)],
        photos: u32,
        rating: Option<f64>,
    ) -> BusinessState {
        let mut s = BusinessState::new(Domain::Food, 0);
        for (t, who) in reporters {
            s.observe(&Observation {
                event_time: *t,
                rating,
                photos,
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

    /// Two accounts without photos are not a cluster, nor is a burst of
    /// bare one-star reports however many accounts write it (a competitor's
    /// attack); three people who rate and describe what happened are (an
    /// outbreak), and so are two with photos. Reports a clean inspection
    /// examined no longer count.
    #[test]
    fn illness_cluster_weighs_reporters_by_their_credibility() {
        let c = DecideConfig::default();
        let two_bare = state_with_reports(&[(0, 1), (600, 2)], 0);
        assert_eq!(decide(&two_bare, 0.1, &T, &c, 600), None);
        let burst: Vec<(i64, u64)> = (0..8).map(|i| (i * 600, 10 + i as u64)).collect();
        let attack = state_with_reports(&burst, 0);
        assert_eq!(decide(&attack, 0.1, &T, &c, 7 * 600), None);
        let three = state_with_rated_reports(&[(0, 1), (600, 2), (1200, 3)], 0, Some(2.0));
        let d = decide(&three, 0.1, &T, &c, 1200).unwrap();
        assert_eq!(d.trigger, Trigger::IllnessCluster);
        let two_with_photos = state_with_reports(&[(0, 1), (600, 2)], 1);
        assert!(decide(&two_with_photos, 0.1, &T, &c, 600).is_some());
        let mut examined = state_with_reports(&[(0, 1), (600, 2)], 0);
        examined.inspected(900, false);
        examined.observe(&Observation {
            event_time: 1200,
            rating: None,
            photos: 0,
            signals: [Category::Illness].into_iter().collect::<CategorySet>(),
            review_id: "r",
            created_at: "c",
            reviewer: 3,
            text: "拉肚子",
        });
        assert_eq!(decide(&examined, 0.1, &T, &c, 1200), None);
    }

    /// A region's capacity turns into cut-offs from the model's exceedance
    /// table: fewer inspections a week, higher cut-offs; severity never lower
    /// than the model's own thresholds give.
    #[test]
    fn capacity_sets_the_cutoffs_of_a_region() {
        let e = Exceedance {
            levels: vec![0.1, 0.2, 0.4, 0.6, 0.8, 0.95],
            weekly_share: vec![0.2, 0.1, 0.04, 0.02, 0.01, 0.001],
        };
        let cap = |per_week| Capacity {
            region: "310105".into(),
            domain: Domain::Food,
            per_week,
            businesses: 1000,
        };
        // 40 a week of 1,000: share 0.04 -> low 0.4; 20 -> 0.6; 10 -> 0.8.
        let t = cutoffs(&T, Some(&e), Some(&cap(40)));
        assert_eq!((t.low, t.medium, t.high), (0.4, 0.6, 0.8));
        let tight = cutoffs(&T, Some(&e), Some(&cap(4)));
        assert!(tight.low > t.low);
        assert_eq!(cutoffs(&T, None, Some(&cap(40))), T);
        assert_eq!(cutoffs(&T, Some(&e), None), T);
        // More capacity than the table ever reaches: its lowest level.
        assert_eq!(cutoffs(&T, Some(&e), Some(&cap(900))).low, 0.1);
        let cfg = DecideConfig {
            capacity: vec![cap(40)],
            ..Default::default()
        };
        assert!(cfg.capacity_of(Some("310105"), Domain::Food).is_some());
        assert!(cfg.capacity_of(Some("310105"), Domain::Tourism).is_none());
        assert!(cfg.capacity_of(None, Domain::Food).is_none());
        assert_eq!(cfg.problem(), None);
        let twice = DecideConfig {
            capacity: vec![cap(40), cap(3)],
            ..Default::default()
        };
        assert!(twice.problem().unwrap().contains("twice"));
    }

    /// An inspection that found nothing after a flag ends its cooldown; one
    /// that found violations does not.
    /// The cooldown alone, without the reporters' check.
    fn cooldown_only() -> DecideConfig {
        DecideConfig {
            model_min_reporters: 0,
            ..Default::default()
        }
    }

    /// A model flag needs independent, credible reporters weighing 2 in 30
    /// days: one person is not enough, nor a burst of bare reports from fresh
    /// accounts, nor two people without photos; two with photos are, and so
    /// are three who rate and describe what happened. 0 turns the check off.
    #[test]
    fn a_model_flag_needs_two_credible_reporters() {
        let c = DecideConfig::default();
        let one = state_with_rated_reports(&[(0, 1), (600, 1)], 0, Some(2.0));
        assert_eq!(decide(&one, 0.6, &T, &c, 600), None);
        let burst: Vec<(i64, u64)> = (0..6).map(|i| (i * 600, 10 + i as u64)).collect();
        let attack = state_with_reports(&burst, 0);
        assert_eq!(decide(&attack, 0.6, &T, &c, 5 * 600), None);
        let day = 86_400;
        let two = state_with_rated_reports(&[(0, 1), (day, 2)], 0, Some(2.0));
        assert_eq!(decide(&two, 0.6, &T, &c, day), None);
        let three = state_with_rated_reports(&[(0, 1), (day, 2), (5 * day, 3)], 0, Some(2.0));
        assert!(!illness_cluster(&three, &c, 5 * day));
        let d = decide(&three, 0.6, &T, &c, 5 * day).unwrap();
        assert_eq!((d.severity, d.trigger), (Severity::Low, Trigger::Model));
        let photos = state_with_rated_reports(&[(0, 1), (5 * day, 2)], 1, Some(2.0));
        assert!(decide(&photos, 0.6, &T, &c, 5 * day).is_some());
        let apart = state_with_rated_reports(&[(0, 1), (day, 2), (32 * day, 3)], 0, Some(2.0));
        assert_eq!(decide(&apart, 0.6, &T, &c, 32 * day), None);
        let off = DecideConfig {
            model_min_reporters: 0,
            ..Default::default()
        };
        assert!(decide(&attack, 0.6, &T, &off, 5 * 600).is_some());
    }

    #[test]
    fn a_clean_inspection_ends_the_cooldown() {
        let c = cooldown_only();
        let mut s = state_with_illness(&[(0, 1)]);
        s.set_last_flag(LastFlag {
            event_time: 0,
            severity: Severity::Medium,
        });
        let mut found = s.clone();
        found.inspected(3600, true);
        assert_eq!(decide(&found, 0.75, &T, &c, 7200), None);
        s.inspected(3600, false);
        assert_eq!(
            decide(&s, 0.75, &T, &c, 7200).map(|d| d.severity),
            Some(Severity::Medium)
        );
    }

    #[test]
    fn cooldown_holds_unless_severity_rises() {
        let c = cooldown_only();
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
