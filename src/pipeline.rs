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

/// The models in use, one per domain.
#[derive(Debug, Clone)]
pub struct Models {
    pub food: Arc<Model>,
    pub tourism: Arc<Model>,
}

impl Models {
    pub fn get(&self, d: Domain) -> &Arc<Model> {
        match d {
            Domain::Food => &self.food,
            Domain::Tourism => &self.tourism,
        }
    }

    pub fn builtin() -> Result<Models, crate::model::ModelError> {
        Ok(Models {
            food: Arc::new(Model::builtin(Domain::Food)?),
            tourism: Arc::new(Model::builtin(Domain::Tourism)?),
        })
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
}

/// Per-business state of one partition (or of a whole replay): one map per
/// domain, looked up by `&str` so that a review costs no key allocation.
#[derive(Debug, Default, Clone)]
pub struct States {
    maps: [HashMap<Box<str>, BusinessState>; 2],
}

fn slot(domain: Domain) -> usize {
    match domain {
        Domain::Food => 0,
        Domain::Tourism => 1,
    }
}

impl States {
    pub fn len(&self) -> usize {
        self.maps.iter().map(HashMap::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, domain: Domain, business_id: &str) -> Option<&BusinessState> {
        self.maps[slot(domain)].get(business_id)
    }
    pub fn count(&self, domain: Domain) -> usize {
        self.maps[slot(domain)].len()
    }
    /// Every business: domain, id, state (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = (Domain, &str, &BusinessState)> {
        Domain::ALL.into_iter().flat_map(move |d| {
            self.maps[slot(d)]
                .iter()
                .map(move |(id, s)| (d, id.as_ref(), s))
        })
    }
    pub fn get_mut(&mut self, domain: Domain, business_id: &str) -> Option<&mut BusinessState> {
        self.maps[slot(domain)].get_mut(business_id)
    }
    /// Put a restored state in place (replacing what was there).
    pub fn insert(&mut self, domain: Domain, business_id: String, state: BusinessState) {
        self.maps[slot(domain)].insert(business_id.into_boxed_str(), state);
    }
    pub fn entry(&mut self, domain: Domain, business_id: &str, t: i64) -> &mut BusinessState {
        let map = &mut self.maps[slot(domain)];
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
            };
        }
        let state = states.entry(review.domain, &review.business_id, review.event_time);
        let model = self.models.get(review.domain);
        let now = review.event_time.max(state.as_of);
        let raw = state.features_at(now);
        let score = model.score(&raw);
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
