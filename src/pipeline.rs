//! The pure core: decoded review in, risk signals and maybe a flag out.
//! It knows nothing of Kafka, clocks or files: `run`, `demo`, `replay` and the
//! tests all drive this same code, so a replay gives the flags the stream gave.

use crate::category::CategorySet;
use crate::decide::{self, DecideConfig};
use crate::extract::Extractor;
use crate::features::{BusinessState, LastFlag, Observation};
use crate::flag::{self, Flag};
use crate::model::Model;
use crate::privacy::Pseudonymiser;
use crate::review::{Domain, Review};
use std::collections::HashMap;
use std::sync::Arc;

/// The models in use, one per domain, and optional shadow models: scored
/// beside the live one, never deciding anything.
#[derive(Debug, Clone)]
pub struct Models {
    pub food: Arc<Model>,
    pub tourism: Arc<Model>,
    pub shadow_food: Option<Arc<Model>>,
    pub shadow_tourism: Option<Arc<Model>>,
}

impl Models {
    pub fn get(&self, d: Domain) -> &Arc<Model> {
        match d {
            Domain::Food => &self.food,
            Domain::Tourism => &self.tourism,
        }
    }

    pub fn shadow(&self, d: Domain) -> Option<&Arc<Model>> {
        match d {
            Domain::Food => self.shadow_food.as_ref(),
            Domain::Tourism => self.shadow_tourism.as_ref(),
        }
    }

    pub fn builtin() -> Result<Models, crate::model::ModelError> {
        Ok(Models {
            food: Arc::new(Model::builtin(Domain::Food)?),
            tourism: Arc::new(Model::builtin(Domain::Tourism)?),
            shadow_food: None,
            shadow_tourism: None,
        })
    }
}

/// A shadow model's view of a review the live model scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShadowScore {
    pub probability: f64,
    /// Whether each model's score reaches its own lowest severity threshold.
    pub agreement: Agreement,
}

/// How the live and the shadow model compare on one score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    BothFlag,
    LiveOnly,
    ShadowOnly,
    Neither,
}

impl Agreement {
    pub const ALL: [Agreement; 4] = [
        Agreement::BothFlag,
        Agreement::LiveOnly,
        Agreement::ShadowOnly,
        Agreement::Neither,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Agreement::BothFlag => "both_flag",
            Agreement::LiveOnly => "live_only",
            Agreement::ShadowOnly => "shadow_only",
            Agreement::Neither => "neither",
        }
    }
}

/// Everything the core needs to judge a review. Cheap to clone (shared parts).
#[derive(Debug, Clone)]
pub struct Scorer {
    pub extractor: Arc<Extractor>,
    pub models: Models,
    pub pseudonyms: Pseudonymiser,
    pub decide: DecideConfig,
}

/// What one review led to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub signals: CategorySet,
    pub risk_score: Option<f64>,
    pub flag: Option<Flag>,
    /// The shadow model's score, when the domain has one and the live model scored.
    pub shadow: Option<ShadowScore>,
}

/// Per-business state of one partition (or of a whole replay): one map per
/// domain, looked up by `&str` so that a review costs no key allocation.
#[derive(Debug, Default, Clone)]
pub struct States {
    maps: [HashMap<Box<str>, BusinessState>; 2],
}

impl States {
    pub fn len(&self) -> usize {
        self.maps.iter().map(HashMap::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, domain: Domain, business_id: &str) -> Option<&BusinessState> {
        self.maps[domain.index()].get(business_id)
    }
    pub fn count(&self, domain: Domain) -> usize {
        self.maps[domain.index()].len()
    }
    /// Every business: domain, id, state (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = (Domain, &str, &BusinessState)> {
        Domain::ALL.into_iter().flat_map(move |d| {
            self.maps[d.index()]
                .iter()
                .map(move |(id, s)| (d, id.as_ref(), s))
        })
    }
    pub fn get_mut(&mut self, domain: Domain, business_id: &str) -> Option<&mut BusinessState> {
        self.maps[domain.index()].get_mut(business_id)
    }
    /// Put a restored state in place (replacing what was there).
    pub fn insert(&mut self, domain: Domain, business_id: String, state: BusinessState) {
        self.maps[domain.index()].insert(business_id.into_boxed_str(), state);
    }
    /// Move every business of `other` in (keys are expected disjoint; where not, `other`'s state replaces).
    pub fn absorb(&mut self, other: States) {
        for (mine, theirs) in self.maps.iter_mut().zip(other.maps) {
            mine.extend(theirs);
        }
    }
    pub fn entry(&mut self, domain: Domain, business_id: &str, t: i64) -> &mut BusinessState {
        let map = &mut self.maps[domain.index()];
        if !map.contains_key(business_id) {
            map.insert(business_id.into(), BusinessState::new(domain, t));
        }
        map.get_mut(business_id)
            .unwrap_or_else(|| unreachable!("inserted just above"))
    }
}

impl Scorer {
    /// Fold a review into its business's state without deciding anything
    /// (training uses this, so features come from the same code as the stream).
    pub fn observe(&self, states: &mut States, review: &Review) -> CategorySet {
        observe(&self.extractor, &self.pseudonyms, states, review)
    }

    /// The whole core for one review.
    pub fn process(&self, states: &mut States, review: &Review) -> Outcome {
        let signals = self
            .extractor
            .extract(review.domain, &review.text)
            .categories;
        self.process_extracted(states, review, signals)
    }

    /// [`Scorer::process`] for a review whose signals were extracted already
    /// (extraction is pure, so callers may run it ahead, in parallel).
    pub fn process_extracted(
        &self,
        states: &mut States,
        review: &Review,
        signals: CategorySet,
    ) -> Outcome {
        fold(&self.pseudonyms, states, review, signals);
        if signals.is_empty() {
            // Only a review that reports a risk can trigger a flag.
            return Outcome {
                signals,
                risk_score: None,
                flag: None,
                shadow: None,
            };
        }
        let state = states.entry(review.domain, &review.business_id, review.event_time);
        let model = self.models.get(review.domain);
        let now = review.event_time.max(state.as_of);
        let raw = state.features_at(now);
        let score = model.score(&raw);
        // The shadow sees the same features and decides nothing.
        let shadow = self.models.shadow(review.domain).map(|m| {
            let p = m.score(&raw).probability;
            let live = score.probability >= model.file.thresholds.low;
            let other = p >= m.file.thresholds.low;
            ShadowScore {
                probability: p,
                agreement: match (live, other) {
                    (true, true) => Agreement::BothFlag,
                    (true, false) => Agreement::LiveOnly,
                    (false, true) => Agreement::ShadowOnly,
                    (false, false) => Agreement::Neither,
                },
            }
        });
        let decision = decide::decide(
            state,
            score.probability,
            &model.file.thresholds,
            &self.decide,
            review.event_time,
        );
        let flag = decision.map(|d| {
            state.set_last_flag(LastFlag {
                event_time: review.event_time,
                severity: d.severity,
            });
            flag::build(review, state, model, &raw, &score, &d)
        });
        Outcome {
            signals,
            risk_score: Some(score.probability),
            flag,
            shadow,
        }
    }
}

/// Fold a review into its business's state: extraction, pseudonymisation and
/// the state update, and nothing else. The stream and training share it.
pub fn observe(
    extractor: &Extractor,
    pseudonyms: &Pseudonymiser,
    states: &mut States,
    review: &Review,
) -> CategorySet {
    let signals = extractor.extract(review.domain, &review.text).categories;
    fold(pseudonyms, states, review, signals);
    signals
}

/// The state update for a review whose signals are known.
fn fold(pseudonyms: &Pseudonymiser, states: &mut States, review: &Review, signals: CategorySet) {
    // The pseudonym only matters for risk reports (distinct reporters).
    let reviewer = match &review.reviewer_id {
        _ if signals.is_empty() => 0,
        Some(id) => pseudonyms.short(id),
        // Unknown reviewer: each review counts as its own reporter.
        None => pseudonyms.short(&format!("review:{}", review.review_id)),
    };
    let state = states.entry(review.domain, &review.business_id, review.event_time);
    state.set_labels(review.business_name.as_deref(), review.region.as_deref());
    state.observe(&Observation {
        event_time: review.event_time,
        rating: review.rating,
        photos: review.photos.unwrap_or(0),
        signals,
        review_id: &review.review_id,
        created_at: &review.created_at,
        reviewer,
        text: &review.text,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{SimConfig, generate};

    /// A shadow model changes no flag, and its own metrics move.
    #[test]
    fn a_shadow_model_never_changes_the_flags_and_its_metrics_move() {
        let live = Scorer {
            extractor: Arc::new(Extractor::builtin().unwrap()),
            models: Models::builtin().unwrap(),
            pseudonyms: Pseudonymiser::new(b"test-key-test-key"),
            decide: DecideConfig::default(),
        };
        // The shadow: the same food model with a lower threshold, so the two disagree.
        let mut v: serde_json::Value = serde_json::from_str(crate::model::BUILTIN_FOOD).unwrap();
        v["thresholds"]["low"] = 0.2.into();
        crate::model::seal(&mut v);
        let shadow =
            Model::from_bytes(v.to_string().as_bytes(), "shadow.json", Domain::Food).unwrap();
        let mut with_shadow = live.clone();
        with_shadow.models.shadow_food = Some(Arc::new(shadow));
        let metrics = crate::metrics::Metrics::new();
        let world = generate(&SimConfig {
            businesses: 60,
            days: 40,
            ..Default::default()
        });
        let (mut a, mut b) = (States::default(), States::default());
        let (mut flags_a, mut flags_b) = (Vec::new(), Vec::new());
        for r in &world.reviews {
            let review =
                crate::review::decode(&serde_json::to_vec(r).unwrap(), &Default::default())
                    .unwrap();
            let x = live.process(&mut a, &review);
            let y = with_shadow.process(&mut b, &review);
            assert!(x.shadow.is_none());
            assert_eq!(
                y.shadow.is_some(),
                review.domain == Domain::Food && y.risk_score.is_some()
            );
            metrics.observe_shadow(review.domain, &y);
            flags_a.extend(x.flag);
            flags_b.extend(y.flag);
        }
        assert!(!flags_a.is_empty());
        assert_eq!(flags_a, flags_b, "the shadow model changed the flags");
        let count = |o: Agreement| {
            metrics
                .shadow_agreement
                .with_label_values(&["food", o.as_str()])
                .get()
        };
        assert!(
            count(Agreement::ShadowOnly) > 0,
            "the shadow's lower threshold shows"
        );
        let scored: u64 = Agreement::ALL.iter().map(|o| count(*o)).sum();
        assert_eq!(
            metrics
                .shadow_risk_score
                .with_label_values(&["food"])
                .get_sample_count(),
            scored
        );
        assert_eq!(
            metrics
                .shadow_risk_score
                .with_label_values(&["tourism"])
                .get_sample_count(),
            0,
            "no tourism shadow configured"
        );
    }
}
