//! The pure core: decoded review in, risk signals and maybe a flag out.
//! It knows nothing of Kafka, clocks or files: `run`, `demo`, `replay` and the
//! tests all drive this same code, so a replay gives the flags the stream gave.

use crate::core::decide::{self, DecideConfig};
use crate::core::extract::Extractor;
use crate::core::features::{BusinessState, LastFlag, Observation};
use crate::core::flag::{self, Flag};
use crate::core::model::Model;
use crate::core::outcome::OutcomeBook;
use crate::core::privacy::Pseudonymiser;
use crate::core::review::{DecodeOptions, RejectReason, Rejection, Review, ReviewRef};
use crate::types::Domain;
use crate::types::category::CategorySet;
use compact_str::CompactString;
use hashbrown::DefaultHashBuilder;
use hashbrown::hash_table::{Entry, HashTable};
use std::hash::BuildHasher;
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

    pub fn builtin() -> Result<Models, crate::core::model::ModelError> {
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
    /// Inspection outcomes, folded into a business's state when its reviews
    /// reach their time (shared: the stream's follower of
    /// `inspection.outcomes` fills it).
    pub outcomes: Arc<OutcomeBook>,
}

/// What one review led to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub signals: CategorySet,
    pub risk_score: Option<f64>,
    /// Boxed: outcomes are moved about in batches, flags are rare.
    pub flag: Option<Box<Flag>>,
    /// The shadow model's score, when the domain has one and the live model scored.
    pub shadow: Option<ShadowScore>,
}

/// Per-business state of one partition (or of a whole replay): one shelf per
/// domain, looked up by `&str` so that a review costs no key allocation.
///
/// A shelf keeps its businesses side by side in one vector, in the order they
/// first appeared, each beside its id (inline, no allocation, up to 24
/// bytes); a hash table of 4-byte positions in that vector finds them. With a
/// million businesses that is 1 byte of control and 4 of position per table
/// slot instead of a whole key and state, so the table stays small enough to
/// be cached and the states themselves are dense. The hasher is hashbrown's
/// default (foldhash, seeded at random per process), so ids chosen by
/// reviewers cannot be made to collide on purpose.
#[derive(Default, Clone)]
pub struct States {
    shelves: [Shelf; 2],
}

/// One domain's businesses.
#[derive(Default, Clone)]
struct Shelf {
    /// Insertion order; never shrinks (a business, once seen, stays).
    entries: Vec<(CompactString, BusinessState)>,
    /// Positions in `entries`, by hash of the id.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Positions marked changed since the last [`States::take_changed`],
    /// once each, and a bit per entry that says which are.
    changed: Vec<u32>,
    marked: Vec<u64>,
}

impl Shelf {
    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    fn position(&self, id: &str) -> Option<usize> {
        let hash = self.hash(id);
        self.index
            .find(hash, |&i| self.entries[i as usize].0 == id)
            .map(|&i| i as usize)
    }

    /// The position of `id`'s state, created by `new` when the business is new.
    fn locate(&mut self, id: &str, new: impl FnOnce() -> BusinessState) -> usize {
        let hash = self.hash(id);
        let (entries, hasher) = (&self.entries, &self.hasher);
        match self.index.entry(
            hash,
            |&i| entries[i as usize].0 == id,
            |&i| hasher.hash_one(entries[i as usize].0.as_str()),
        ) {
            Entry::Occupied(o) => *o.get() as usize,
            Entry::Vacant(v) => {
                let at = self.entries.len();
                v.insert(position(at));
                self.entries.push((CompactString::from(id), new()));
                at
            }
        }
    }

    fn mark(&mut self, at: usize) {
        let (word, bit) = (at / 64, 1u64 << (at % 64));
        if self.marked.len() <= word {
            self.marked.resize(word + 1, 0);
        }
        if self.marked[word] & bit == 0 {
            self.marked[word] |= bit;
            self.changed.push(position(at));
        }
    }

    /// Put `state` in place for `id`, replacing what was there.
    fn put(&mut self, id: CompactString, state: BusinessState) {
        let hash = self.hash(&id);
        let (entries, hasher) = (&self.entries, &self.hasher);
        match self.index.entry(
            hash,
            |&i| entries[i as usize].0 == id,
            |&i| hasher.hash_one(entries[i as usize].0.as_str()),
        ) {
            Entry::Occupied(o) => self.entries[*o.get() as usize].1 = state,
            Entry::Vacant(v) => {
                v.insert(position(self.entries.len()));
                self.entries.push((id, state));
            }
        }
    }

    fn reserve(&mut self, additional: usize) {
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.reserve(additional, |&i| {
            hasher.hash_one(entries[i as usize].0.as_str())
        });
        self.entries.reserve(additional);
    }
}

/// A position in a shelf as the index stores it.
fn position(at: usize) -> u32 {
    // Four billion businesses of one domain in one partition would need
    // hundreds of gigabytes of state first; past that is a bug, not input.
    u32::try_from(at).unwrap_or_else(|_| panic!("more than {} businesses in a shelf", u32::MAX))
}

impl std::fmt::Debug for States {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(d, id, s)| ((d, id), s)))
            .finish()
    }
}

impl States {
    pub fn len(&self) -> usize {
        self.shelves.iter().map(|s| s.entries.len()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, domain: Domain, business_id: &str) -> Option<&BusinessState> {
        let shelf = &self.shelves[domain.index()];
        shelf.position(business_id).map(|at| &shelf.entries[at].1)
    }
    pub fn count(&self, domain: Domain) -> usize {
        self.shelves[domain.index()].entries.len()
    }
    /// Every business: domain, id, state (by domain, then in order of first appearance).
    pub fn iter(&self) -> impl Iterator<Item = (Domain, &str, &BusinessState)> {
        Domain::ALL.into_iter().flat_map(move |d| {
            self.shelves[d.index()]
                .entries
                .iter()
                .map(move |(id, s)| (d, id.as_str(), s))
        })
    }
    pub fn get_mut(&mut self, domain: Domain, business_id: &str) -> Option<&mut BusinessState> {
        let shelf = &mut self.shelves[domain.index()];
        let at = shelf.position(business_id)?;
        Some(&mut shelf.entries[at].1)
    }
    /// Put a restored state in place (replacing what was there).
    pub fn insert(&mut self, domain: Domain, business_id: String, state: BusinessState) {
        self.shelves[domain.index()].put(CompactString::from(business_id), state);
    }
    /// Move every business of `other` in (keys are expected disjoint; where not, `other`'s state replaces).
    pub fn absorb(&mut self, other: States) {
        for (mine, theirs) in self.shelves.iter_mut().zip(other.shelves) {
            if mine.entries.is_empty() {
                *mine = theirs;
                continue;
            }
            mine.reserve(theirs.entries.len());
            for (id, state) in theirs.entries {
                mine.put(id, state);
            }
        }
    }
    /// Every business, taken out: domain, id, state (by domain, then in insertion order).
    pub fn into_businesses(self) -> impl Iterator<Item = (Domain, String, BusinessState)> {
        Domain::ALL
            .into_iter()
            .zip(self.shelves)
            .flat_map(|(d, shelf)| {
                shelf
                    .entries
                    .into_iter()
                    .map(move |(id, s)| (d, id.into_string(), s))
            })
    }
    pub fn entry(&mut self, domain: Domain, business_id: &str, t: i64) -> &mut BusinessState {
        let slot = self.slot(domain, business_id, t);
        self.at(slot)
    }

    /// Where `business_id`'s state is, created (as of `t`) when the business
    /// is new (for [`States::at`] and [`States::mark_changed`]). Finding a batch's
    /// businesses first, one after another, lets their cache misses overlap
    /// (no lookup waits for the one before); folding then finds them cached.
    pub fn slot(&mut self, domain: Domain, business_id: &str, t: i64) -> Slot {
        let shelf = &mut self.shelves[domain.index()];
        let at = shelf.locate(business_id, || BusinessState::new(domain, t));
        Slot { domain, at }
    }

    /// The state at `slot` (from [`States::slot`]).
    pub fn at(&mut self, slot: Slot) -> &mut BusinessState {
        &mut self.shelves[slot.domain.index()].entries[slot.at].1
    }

    /// Note that a business's state changed (each is noted once until taken).
    pub fn mark_changed(&mut self, slot: Slot) {
        self.shelves[slot.domain.index()].mark(slot.at);
    }

    /// The businesses marked changed since the last call, each once, in the
    /// order first marked; their marks are cleared.
    pub fn take_changed(&mut self) -> impl Iterator<Item = (Domain, &str, &BusinessState)> {
        Domain::ALL
            .into_iter()
            .zip(self.shelves.iter_mut())
            .flat_map(|(domain, shelf)| {
                let changed = std::mem::take(&mut shelf.changed);
                for &at in &changed {
                    shelf.marked[at as usize / 64] = 0;
                }
                let entries = &shelf.entries;
                changed.into_iter().map(move |at| {
                    let (id, state) = &entries[at as usize];
                    (domain, id.as_str(), state)
                })
            })
    }
}

/// Where a business's state is in [`States`] (valid while no business is
/// removed: none ever is).
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    domain: Domain,
    at: usize,
}

/// The fold shard of a business among `shards`: a fixed function of (domain,
/// id) (FNV-1a), so that a business's reviews always meet in one shard and
/// shards can fold in parallel, each in input order. `replay` and `run` both
/// shard this way; a skewed set of ids costs parallelism only.
pub fn shard_of(domain: Domain, business_id: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ domain.index() as u64;
    for b in business_id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % shards as u64) as usize
}

impl Scorer {
    /// A message decoded and its signals extracted (pure): what the stream
    /// and `replay` read of each message before folding it. (Inlined: a
    /// decoded review is a few hundred bytes, and a call returns it by copy.)
    #[inline]
    pub fn read<'a>(
        &self,
        bytes: &'a [u8],
        opts: &DecodeOptions,
    ) -> Result<(ReviewRef<'a>, CategorySet), Rejection> {
        let review = crate::core::review::decode_ref(bytes, opts)?;
        let signals = self
            .extractor
            .extract(review.domain, &review.text)
            .categories;
        Ok((review, signals))
    }

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
        self.process_extracted(states, &review.view(), signals)
    }

    /// [`Scorer::process`] for a review whose signals were extracted already
    /// (extraction is pure, so callers may run it ahead, in parallel).
    pub fn process_extracted(
        &self,
        states: &mut States,
        review: &ReviewRef<'_>,
        signals: CategorySet,
    ) -> Outcome {
        let state = states.entry(review.domain, &review.business_id, review.event_time);
        self.process_state(state, review, signals)
    }

    /// [`Scorer::process_extracted`] on the review's business state, which
    /// the caller looked up (once: the stream also checks and records the
    /// review's offset in it).
    pub fn process_state(
        &self,
        state: &mut BusinessState,
        review: &ReviewRef<'_>,
        signals: CategorySet,
    ) -> Outcome {
        self.outcomes
            .apply_due(review.domain, &review.business_id, state, review.event_time);
        fold_into(&self.pseudonyms, state, review, signals);
        if signals.is_empty() {
            // Only a review that reports a risk can trigger a flag.
            return Outcome {
                signals,
                risk_score: None,
                flag: None,
                shadow: None,
            };
        }
        let model = self.models.get(review.domain);
        let now = review.event_time.max(state.as_of);
        let raw = state.features_at(now);
        // Deciding needs the probability only; each feature's part is worked
        // out when a flag is built.
        let probability = model.probability(&raw);
        // The shadow sees the same features and decides nothing.
        let shadow = self.models.shadow(review.domain).map(|m| {
            let p = m.probability(&raw);
            let live = probability >= model.file.thresholds.low;
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
        let cutoffs = decide::cutoffs(
            &model.file.thresholds,
            model.file.exceedance.as_ref(),
            self.decide.capacity_of(state.region(), review.domain),
        );
        let decision = decide::decide(
            state,
            probability,
            &cutoffs,
            &self.decide,
            review.event_time,
        );
        let flag = decision.map(|d| {
            state.set_last_flag(LastFlag {
                event_time: review.event_time,
                severity: d.severity,
            });
            let score = model.score(&raw);
            Box::new(flag::build(review, state, model, &raw, &score, &d))
        });
        Outcome {
            signals,
            risk_score: Some(probability),
            flag,
            shadow,
        }
    }
}

/// `work` (reading a message, [`Scorer::read`]: pure), with a panic inside
/// it turned into the message's refusal (`internal_error`). The stream and
/// `replay` read every message through it. A bug that one message sets off
/// then costs that message a dead letter, not the service a crash and,
/// restarted, the same crash on the same message.
pub fn shield<T>(work: impl FnOnce() -> Result<T, Rejection>) -> Result<T, Rejection> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
        Err(Rejection::new(
            RejectReason::Internal,
            "reviewguard failed while reading this message (a bug: please report it with this dead letter)",
        ))
    })
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
    let state = states.entry(review.domain, &review.business_id, review.event_time);
    fold_into(pseudonyms, state, &review.view(), signals);
}

/// [`fold`] on the review's business state.
fn fold_into(
    pseudonyms: &Pseudonymiser,
    state: &mut BusinessState,
    review: &ReviewRef<'_>,
    signals: CategorySet,
) {
    // The pseudonym only matters for risk reports (distinct reporters).
    let reviewer = match &review.reviewer_id {
        _ if signals.is_empty() => 0,
        Some(id) => pseudonyms.short(id),
        // Unknown reviewer: each review counts as its own reporter.
        None => pseudonyms.short(&format!("review:{}", review.review_id)),
    };
    state.set_labels(
        review.labels,
        review.business_name.as_deref(),
        review.region.as_deref(),
    );
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

    /// A panic while reading a message becomes that message's refusal
    /// (dead-lettered as `internal_error`); the caller goes on.
    #[test]
    fn a_panic_reading_a_message_refuses_it_and_the_stream_goes_on() {
        let broken = |bytes: &[u8]| -> Result<usize, Rejection> {
            // As the compact scanner once did on a 1,024-byte message.
            let bits = [0u64; 16];
            Ok(bits[bytes.len() / 64] as usize)
        };
        let refused = shield(|| broken(&[b'x'; 1024])).unwrap_err();
        assert_eq!(refused.reason, RejectReason::Internal);
        assert_eq!(refused.reason.as_str(), "internal_error");
        assert_eq!(shield(|| broken(b"{}")).ok(), Some(0));
        // Refusals of the work itself pass through as they are.
        let invalid = shield::<()>(|| Err(Rejection::new(RejectReason::InvalidJson, "not JSON")))
            .unwrap_err();
        assert_eq!(invalid.reason, RejectReason::InvalidJson);
    }

    /// A slot addresses the state `entry` finds; a business is created once,
    /// as of its first lookup, and the domain is part of its identity.
    #[test]
    fn a_slot_finds_the_state_that_entry_finds() {
        let mut s = States::default();
        let first = s.slot(Domain::Food, "shop-1", 5);
        let other = s.slot(Domain::Food, "shop-2", 7);
        let again = s.slot(Domain::Food, "shop-1", 99);
        let hotel = s.slot(Domain::Tourism, "shop-1", 11);
        s.at(first).reviews_total = 3;
        assert_eq!(s.entry(Domain::Food, "shop-1", 0).reviews_total, 3);
        assert_eq!(s.at(again).reviews_total, 3);
        assert_eq!(s.at(first).as_of, 5);
        assert_eq!(s.at(other).as_of, 7);
        assert_eq!((s.at(hotel).reviews_total, s.at(hotel).as_of), (0, 11));
        assert_eq!(s.len(), 3);
    }

    /// Lookups, replacement and absorb over many businesses (the index grows
    /// through several rehashes), ids long and short (inline and on the heap).
    #[test]
    fn states_find_replace_and_absorb() {
        let id = |i: usize| {
            if i % 3 == 0 {
                format!("a-long-business-id-that-does-not-fit-inline-{i}")
            } else {
                format!("shop-{i}")
            }
        };
        let (mut a, mut b) = (States::default(), States::default());
        for i in 0..5_000 {
            let d = Domain::ALL[i % 2];
            let s = if i < 3_000 { &mut a } else { &mut b };
            s.entry(d, &id(i), i as i64).reviews_total = i as u32;
        }
        // entry finds, it does not create twice.
        a.entry(Domain::ALL[0], &id(0), 99).reviews_total += 1;
        assert_eq!(a.len(), 3_000);
        assert_eq!(a.get(Domain::ALL[0], &id(0)).map(|s| s.as_of), Some(0));
        assert!(a.get(Domain::ALL[1], &id(0)).is_none(), "domains are apart");
        // Iteration: by domain, then in order of first appearance.
        let ids: Vec<&str> = a.iter().map(|(_, id, _)| id).collect();
        assert_eq!(ids[..2], [id(0), id(2)]);
        // insert replaces; absorb moves everything, the absorbed state winning.
        let mut restored = BusinessState::new(Domain::ALL[1], 7);
        restored.reviews_total = 77;
        a.insert(Domain::ALL[1], id(1), restored.clone());
        assert_eq!(a.get(Domain::ALL[1], &id(1)), Some(&restored));
        let mut clash = BusinessState::new(Domain::ALL[0], 8);
        clash.reviews_total = 88;
        b.insert(Domain::ALL[0], id(2), clash.clone());
        a.absorb(b);
        assert_eq!(a.len(), 5_000);
        assert_eq!(a.get(Domain::ALL[0], &id(2)), Some(&clash));
        for i in (0..5_000).filter(|i| *i != 0 && *i != 1 && *i != 2) {
            let s = a.get_mut(Domain::ALL[i % 2], &id(i));
            assert_eq!(s.map(|s| s.reviews_total), Some(i as u32), "{i}");
        }
        // Absorbing into an empty States takes the other whole.
        let mut empty = States::default();
        empty.absorb(a.clone());
        assert_eq!(empty.len(), a.len());
        assert_eq!(empty.count(Domain::ALL[0]), a.count(Domain::ALL[0]));
        assert!(empty.iter().all(|(d, id, s)| a.get(d, id) == Some(s)));
    }

    /// Changed businesses are taken once each, in the order first marked,
    /// and marks after a take start afresh; lookups and inserts mark nothing.
    #[test]
    fn changed_businesses_are_taken_once_each() {
        let mut s = States::default();
        let (food, tourism) = (Domain::ALL[0], Domain::ALL[1]);
        // Past a word of marks, in both domains, some twice.
        for i in [3, 70, 3, 130, 70, 0] {
            let slot = s.slot(food, &format!("shop-{i}"), 0);
            s.mark_changed(slot);
        }
        let slot = s.slot(tourism, "hotel-1", 0);
        s.mark_changed(slot);
        s.entry(food, "looked-up-only", 0);
        s.insert(food, "restored".into(), BusinessState::new(food, 0));
        let taken: Vec<(Domain, String)> = s
            .take_changed()
            .map(|(d, id, _)| (d, id.to_owned()))
            .collect();
        let want: Vec<(Domain, String)> = ["shop-3", "shop-70", "shop-130", "shop-0"]
            .iter()
            .map(|id| (food, (*id).to_owned()))
            .chain([(tourism, "hotel-1".to_owned())])
            .collect();
        assert_eq!(taken, want);
        assert_eq!(s.take_changed().count(), 0);
        let slot = s.slot(food, "shop-70", 0);
        s.at(slot).reviews_total = 5;
        s.mark_changed(slot);
        let again: Vec<(String, u32)> = s
            .take_changed()
            .map(|(_, id, st)| (id.to_owned(), st.reviews_total))
            .collect();
        assert_eq!(again, [("shop-70".to_owned(), 5)]);
    }
}
