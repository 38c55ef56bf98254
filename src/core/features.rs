//! Per-business state in event time, and the feature vector the models read.
//!
//! Counts are exponentially decayed sums over two horizons (time constants of
//! 7 and 30 days): a review `d` days older than the newest counts `exp(-d/7)`
//! in the 7-day figure. The sum does not depend on arrival order, and state
//! stays the same size however many reviews a business gets.

use crate::types::Domain;
use crate::types::LabelsKey;
use crate::types::category::{Category, CategorySet};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

pub const DAY: i64 = 86_400;
/// Decay time constants, in seconds: short and long horizon.
pub const HORIZONS: [(&str, f64); 2] = [("7d", 7.0 * DAY as f64), ("30d", 30.0 * DAY as f64)];
/// Most recent risk reviews kept per business (evidence and the cluster rule).
pub const MAX_RECENT_RISK: usize = 8;
/// Longest evidence snippet kept, in characters.
pub const SNIPPET_CHARS: usize = 80;
/// A rating at or below this is a low rating.
pub const LOW_RATING: f64 = 2.0;
/// A review rated at or below this (of 5) does not recommend its business:
/// counted, among the reviews that report no risk, as dissatisfied.
pub const UNHAPPY_RATING: f64 = 3.0;
/// Past inspections kept per business, newest first.
pub const MAX_INSPECTIONS: usize = 8;
/// Credibility of a risk report that comes without photos (one with photos
/// weighs 1): nothing the reviewer shows backs it.
pub const NO_PHOTO_CREDIBILITY: f32 = 0.7;
/// A risk report that is the third or later at its business within this
/// many seconds is part of a burst ...
pub const BURST_WINDOW: i64 = 72 * 3600;
/// ... and weighs this share of what it would alone: competitors' attacks
/// come as bursts of fresh accounts, real trouble as a trickle of customers.
pub const BURST_CREDIBILITY: f32 = 0.5;
/// What a clean inspection leaves of the credibility of the evidence it
/// examined (the reports before it).
pub const EXAMINED_CREDIBILITY: f32 = 0.25;

const MAX_CATEGORIES: usize = 6;

/// A decayed count over both horizons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Decayed(pub [f32; 2]);

/// What `dt` seconds of decay multiply a count by, per horizon:
/// `exp(-dt / tau)`. Worked out once per review for all of a business's
/// counts (`exp` is most of a count's cost); no decay is exactly 1.
fn factors(dt: i64) -> [f64; 2] {
    if dt == 0 {
        return [1.0; 2];
    }
    HORIZONS.map(|(_, tau)| (-(dt as f64) / tau).exp())
}

impl Decayed {
    fn decay(&mut self, factors: [f64; 2]) {
        for (v, f) in self.0.iter_mut().zip(factors) {
            *v = (f64::from(*v) * f) as f32;
        }
    }
    /// Add one event whose weight per horizon is `weights` (the
    /// [`factors`] of its age before the state's time).
    fn add(&mut self, weights: [f64; 2]) {
        for (v, w) in self.0.iter_mut().zip(weights) {
            *v += w as f32;
        }
    }
    fn scale(&mut self, k: f32) {
        for v in &mut self.0 {
            *v *= k;
        }
    }
    fn is_zero(&self) -> bool {
        self.0 == [0.0; 2]
    }
    fn at(self, factors: [f64; 2]) -> [f64; 2] {
        let mut d = self;
        d.decay(factors);
        [f64::from(d.0[0]), f64::from(d.0[1])]
    }
}

/// One recent review with a risk signal, kept as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskEvent {
    // Boxed strings, not `String`: no spare capacity, and 24 bytes less an
    // event (the JSON is the same).
    pub review_id: Box<str>,
    pub created_at: Box<str>,
    pub event_time: i64,
    pub categories: u16,
    /// Pseudonymous reviewer (or review, when the reviewer is unknown).
    pub reviewer: u64,
    /// PII-redacted excerpt.
    pub snippet: Box<str>,
    pub photos: u32,
    /// How much this report counts, in (0, 1] (see [`credibility`]); damped
    /// when a clean inspection examined it.
    #[serde(default = "full", skip_serializing_if = "is_full")]
    pub credibility: f32,
    /// No photo and one star ([`is_bare`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bare: bool,
}

fn full() -> f32 {
    1.0
}

fn is_full(c: &f32) -> bool {
    *c == 1.0
}

/// One past inspection of a business.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Inspected {
    pub event_time: i64,
    /// Violations found.
    pub violation: bool,
}

impl RiskEvent {
    pub fn categories(&self) -> CategorySet {
        CategorySet::from_bits(self.categories)
    }
}

/// The last flag emitted for a business, for cooldown and escalation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LastFlag {
    pub event_time: i64,
    pub severity: crate::types::Severity,
}

/// What is known of one business. Kept small: most businesses never get a
/// risk report, so everything about risk lives in a box that exists only
/// once one arrives (see `benches/figures.rs` for the bytes per business).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "StateWire")]
pub struct BusinessState {
    pub domain: Domain,
    /// Newest event time seen (Unix seconds).
    pub as_of: i64,
    pub reviews_total: u32,
    reviews: Decayed,
    low_rating: Decayed,
    /// Reviews without a risk report rated [`UNHAPPY_RATING`] or lower.
    unhappy: Decayed,
    /// Position of the last review folded in, in its source (the Kafka offset
    /// in its partition; -1 when unknown). Lets the shell apply a review
    /// delivered twice only once.
    pub source_offset: i64,
    /// Names and regions are short: inline up to 24 bytes, no allocation.
    business_name: Option<CompactString>,
    region: Option<CompactString>,
    /// The key of the labels a review last gave (see [`BusinessState::set_labels`]).
    labels_seen: LabelsSeen,
    risk: Option<Box<RiskState>>,
}

/// The [`LabelsKey`] of the labels a state last took, or `None` (a new or
/// restored state). A cache, not part of the state: states are equal
/// whatever it holds, and it is left out of their `Debug`.
#[derive(Clone, Copy, Default)]
struct LabelsSeen(Option<LabelsKey>);

impl PartialEq for LabelsSeen {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for LabelsSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("_")
    }
}

/// The part of a business's state that only risk reports create.
#[derive(Debug, Clone, Default, PartialEq)]
struct RiskState {
    risk_reviews: Decayed,
    /// Risk reports weighted by their credibility.
    credible: Decayed,
    /// Reporters not among the recent ones before, weighted by the
    /// credibility of their report.
    reporters: Decayed,
    photo_risk: Decayed,
    categories: [Decayed; MAX_CATEGORIES],
    /// Newest first, at most [`MAX_RECENT_RISK`].
    recent_risk: Vec<RiskEvent>,
    last_flag: Option<LastFlag>,
    /// Newest first, at most [`MAX_INSPECTIONS`].
    inspections: Vec<Inspected>,
    /// Sequential evidence that the business is bad (see [`evidence_weights`]).
    evidence: f32,
}

impl RiskState {
    /// The credibility-weighted sums as the changelog writes them: absent
    /// while both equal the plain count of reports (every report fully
    /// credible, as in records written before credibility was kept).
    fn credibility_sums(&self) -> Option<(Decayed, Decayed)> {
        (self.credible != self.risk_reviews || self.reporters != self.risk_reviews)
            .then_some((self.credible, self.reporters))
    }
}

/// The changelog's shape of a state (format version 1), flat as it has always
/// been: read owned ([`StateWire`]), written borrowing the state
/// ([`StateWireRef`], no copy of it); one definition, so the two cannot drift.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Wire<Categories, Events, Label, Inspections: IsEmpty + Default> {
    domain: Domain,
    as_of: i64,
    reviews_total: u32,
    reviews: Decayed,
    low_rating: Decayed,
    risk_reviews: Decayed,
    photo_risk: Decayed,
    categories: Categories,
    recent_risk: Events,
    business_name: Option<Label>,
    region: Option<Label>,
    last_flag: Option<LastFlag>,
    #[serde(default = "no_position")]
    source_offset: i64,
    /// Absent when it equals `risk_reviews` (every report fully credible, as
    /// in records written before credibility was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credible_risk: Option<Decayed>,
    /// Absent as `credible_risk` is (then taken equal to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credible_reporters: Option<Decayed>,
    #[serde(default, skip_serializing_if = "Inspections::is_empty")]
    inspections: Inspections,
    #[serde(default, skip_serializing_if = "is_zero")]
    evidence: f32,
    /// Absent when zero (and in records written before it was kept).
    #[serde(default, skip_serializing_if = "Decayed::is_zero")]
    unhappy: Decayed,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

/// What the wire holds of a state's inspections (owned or borrowed).
trait IsEmpty {
    fn is_empty(&self) -> bool;
}

impl IsEmpty for Vec<Inspected> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

impl IsEmpty for &[Inspected] {
    fn is_empty(&self) -> bool {
        <[Inspected]>::is_empty(self)
    }
}

/// A state as read from the changelog.
type StateWire = Wire<[Decayed; MAX_CATEGORIES], Vec<RiskEvent>, CompactString, Vec<Inspected>>;

/// A state as written to the changelog: the same JSON, borrowing the state.
type StateWireRef<'a> =
    Wire<&'a [Decayed; MAX_CATEGORIES], &'a [RiskEvent], &'a str, &'a [Inspected]>;

impl Serialize for BusinessState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const NONE: [Decayed; MAX_CATEGORIES] = [Decayed([0.0; 2]); MAX_CATEGORIES];
        let risk = self.risk.as_deref();
        let sums = risk.and_then(RiskState::credibility_sums);
        StateWireRef {
            domain: self.domain,
            as_of: self.as_of,
            reviews_total: self.reviews_total,
            reviews: self.reviews,
            low_rating: self.low_rating,
            risk_reviews: risk.map_or_else(Decayed::default, |r| r.risk_reviews),
            photo_risk: risk.map_or_else(Decayed::default, |r| r.photo_risk),
            categories: risk.map_or(&NONE, |r| &r.categories),
            recent_risk: risk.map_or(&[], |r| &r.recent_risk),
            business_name: self.business_name.as_deref(),
            region: self.region.as_deref(),
            last_flag: risk.and_then(|r| r.last_flag),
            source_offset: self.source_offset,
            credible_risk: sums.map(|(c, _)| c),
            credible_reporters: sums.map(|(_, r)| r),
            inspections: risk.map_or(&[], |r| &r.inspections),
            evidence: risk.map_or(0.0, |r| r.evidence),
            unhappy: self.unhappy,
        }
        .serialize(s)
    }
}

#[cfg(test)]
impl From<BusinessState> for StateWire {
    fn from(s: BusinessState) -> Self {
        let risk = s.risk.map(|b| *b).unwrap_or_default();
        let sums = risk.credibility_sums();
        StateWire {
            domain: s.domain,
            as_of: s.as_of,
            reviews_total: s.reviews_total,
            reviews: s.reviews,
            low_rating: s.low_rating,
            risk_reviews: risk.risk_reviews,
            photo_risk: risk.photo_risk,
            categories: risk.categories,
            recent_risk: risk.recent_risk,
            business_name: s.business_name,
            region: s.region,
            last_flag: risk.last_flag,
            source_offset: s.source_offset,
            credible_risk: sums.map(|(c, _)| c),
            credible_reporters: sums.map(|(_, r)| r),
            inspections: risk.inspections,
            evidence: risk.evidence,
            unhappy: s.unhappy,
        }
    }
}

impl From<StateWire> for BusinessState {
    fn from(mut w: StateWire) -> Self {
        w.recent_risk.shrink_to_fit();
        w.inspections.shrink_to_fit();
        let risk = RiskState {
            risk_reviews: w.risk_reviews,
            credible: w.credible_risk.unwrap_or(w.risk_reviews),
            reporters: w
                .credible_reporters
                .or(w.credible_risk)
                .unwrap_or(w.risk_reviews),
            photo_risk: w.photo_risk,
            categories: w.categories,
            recent_risk: w.recent_risk,
            last_flag: w.last_flag,
            inspections: w.inspections,
            evidence: w.evidence,
        };
        BusinessState {
            domain: w.domain,
            as_of: w.as_of,
            reviews_total: w.reviews_total,
            reviews: w.reviews,
            low_rating: w.low_rating,
            unhappy: w.unhappy,
            source_offset: w.source_offset,
            business_name: w.business_name,
            region: w.region,
            labels_seen: LabelsSeen::default(),
            risk: (risk != RiskState::default()).then(|| Box::new(risk)),
        }
    }
}

fn no_position() -> i64 {
    -1
}

/// What one review contributes to its business's state.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub event_time: i64,
    pub rating: Option<f64>,
    pub photos: u32,
    pub signals: CategorySet,
    pub review_id: &'a str,
    pub created_at: &'a str,
    pub reviewer: u64,
    pub text: &'a str,
}

/// Whether a risk report is bare: no photo, and one star (or no rating).
/// Competitors' attacks are made of such reports; about one genuine report
/// in five is one too.
pub fn is_bare(photos: u32, rating: Option<f64>) -> bool {
    photos == 0 && rating.is_none_or(|r| r <= 1.0)
}

/// How much a new risk report counts, given the business's recent reports
/// (newest first): 1 with photos, [`NO_PHOTO_CREDIBILITY`] without. A bare
/// report ([`is_bare`]) after `k` other bare ones in the [`BURST_WINDOW`]
/// before it counts `1 / (k + 1)²` of that (a burst of them, however long,
/// weighs little more than one report); any other report without photos counts
/// [`BURST_CREDIBILITY`] of it when two or more reports came in the window
/// before it.
pub fn credibility(recent: &[RiskEvent], t: i64, photos: u32, bare: bool) -> f32 {
    if photos > 0 {
        return 1.0;
    }
    let window = |e: &&RiskEvent| e.event_time <= t && t - e.event_time <= BURST_WINDOW;
    if bare {
        let k = recent.iter().filter(window).filter(|e| e.bare).count() as f32;
        return NO_PHOTO_CREDIBILITY / ((k + 1.0) * (k + 1.0));
    }
    if recent.iter().filter(window).count() >= 2 {
        NO_PHOTO_CREDIBILITY * BURST_CREDIBILITY
    } else {
        NO_PHOTO_CREDIBILITY
    }
}

/// A domain's prior share of risk reports among reviews, and its strength in
/// reviews: what a business's share is shrunk towards while it has few
/// reviews (empirical Bayes). The shares are the natural prevalence of risk
/// reports in the hand-labelled random reviews of the real corpora
/// (`docs/signals.md`): about one hotel review in seven carries a risk label,
/// one delivery review in two hundred.
pub fn prior(domain: Domain) -> (f64, f64) {
    match domain {
        Domain::Food => (0.005, PRIOR_REVIEWS),
        Domain::Tourism => (0.15, PRIOR_REVIEWS),
    }
}

/// Log-likelihood ratios of one review under "bad" against "clean": a bad
/// business draws [`BAD_EXCESS`] more risk reports than the domain's prior
/// share ([`prior`]), and of its other reviews [`BAD_EXCESS`] more do not
/// recommend it ([`UNHAPPY_PRIOR`], [`UNHAPPY_RATING`]). Returns the ratio
/// of a risk report, and of a review without one: `[satisfied,
/// dissatisfied]`. The evidence feature adds them up review by review (a
/// report weighed by its credibility), never below 0, decaying with a 30-day
/// time constant: a CUSUM that climbs while a business's reports come faster
/// than its domain's and its other reviews are unhappier than usual, and
/// falls back while they are not. A report always adds, so more reports
/// never lower it.
pub fn evidence_weights(domain: Domain) -> (f64, [f64; 2]) {
    let (p0, _) = prior(domain);
    let p1 = p0 + BAD_EXCESS;
    let (q0, q1) = (UNHAPPY_PRIOR, UNHAPPY_PRIOR + BAD_EXCESS);
    let quiet = ((1.0 - p1) / (1.0 - p0)).ln();
    (
        (p1 / p0).ln(),
        [
            quiet + ((1.0 - q1) / (1.0 - q0)).ln(),
            quiet + (q1 / q0).ln(),
        ],
    )
}

/// How much more of a bad business's reviews report a risk, and how much
/// more of its other reviews are dissatisfied, for [`evidence_weights`].
pub const BAD_EXCESS: f64 = 0.2;

/// The share of reviews without a risk report that are rated
/// [`UNHAPPY_RATING`] or lower, before a business has many reviews: on the
/// review platforms about one review in four does not recommend its
/// business. Weighs [`PRIOR_REVIEWS`] reviews.
pub const UNHAPPY_PRIOR: f64 = 0.25;

/// How many (time-weighted) reviews the prior share weighs.
pub const PRIOR_REVIEWS: f64 = 10.0;

/// Days since an inspection, as a feature, when there has been none (or it
/// is longer ago than this).
pub const NEVER_INSPECTED_DAYS: f64 = 365.0;

impl BusinessState {
    pub fn new(domain: Domain, first_event: i64) -> Self {
        BusinessState {
            domain,
            as_of: first_event,
            reviews_total: 0,
            reviews: Decayed::default(),
            low_rating: Decayed::default(),
            unhappy: Decayed::default(),
            source_offset: -1,
            business_name: None,
            region: None,
            labels_seen: LabelsSeen::default(),
            risk: None,
        }
    }

    pub fn business_name(&self) -> Option<&str> {
        self.business_name.as_deref()
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Keep the latest name and region a review gave (no allocation when
    /// unchanged). `key` is theirs ([`LabelsKey::of`]): when this state last
    /// took labels with the same key, taking them again changes nothing, and
    /// they are not read.
    pub fn set_labels(
        &mut self,
        key: LabelsKey,
        business_name: Option<&str>,
        region: Option<&str>,
    ) {
        debug_assert_eq!(
            key,
            LabelsKey::of(business_name, region),
            "a key of other labels"
        );
        self.take_labels(key, business_name, region);
    }

    /// [`BusinessState::set_labels`] without the debug build's check that
    /// `key` is the labels' (tests give it another's, to show the skip).
    fn take_labels(&mut self, key: LabelsKey, business_name: Option<&str>, region: Option<&str>) {
        if self.labels_seen.0 == Some(key) {
            return;
        }
        self.labels_seen = LabelsSeen(Some(key));
        if business_name.is_some() && self.business_name.as_deref() != business_name {
            self.business_name = business_name.map(CompactString::from);
        }
        if region.is_some() && self.region.as_deref() != region {
            self.region = region.map(CompactString::from);
        }
    }

    /// Recent risk reviews, newest first, at most [`MAX_RECENT_RISK`].
    pub fn recent_risk(&self) -> &[RiskEvent] {
        self.risk.as_ref().map_or(&[], |r| &r.recent_risk)
    }

    pub fn last_flag(&self) -> Option<LastFlag> {
        self.risk.as_ref().and_then(|r| r.last_flag)
    }

    pub fn set_last_flag(&mut self, flag: LastFlag) {
        self.risk.get_or_insert_default().last_flag = Some(flag);
    }

    /// Fold one review in. Late reviews (older than `as_of`) count with their age.
    pub fn observe(&mut self, o: &Observation<'_>) {
        let age = if o.event_time > self.as_of {
            let decay = factors(o.event_time - self.as_of);
            for d in self.all_mut() {
                d.decay(decay);
            }
            if let Some(r) = self.risk.as_deref_mut() {
                r.evidence = (f64::from(r.evidence) * decay[1]) as f32;
            }
            self.as_of = o.event_time;
            0
        } else {
            self.as_of - o.event_time
        };
        let weight = factors(age);
        self.reviews_total = self.reviews_total.saturating_add(1);
        self.reviews.add(weight);
        if o.rating.is_some_and(|r| r <= LOW_RATING) {
            self.low_rating.add(weight);
        }
        // The log-likelihood ratios are worked out only where evidence is
        // kept: most businesses never get a risk report.
        if o.signals.is_empty() {
            let unhappy = o.rating.is_some_and(|r| r <= UNHAPPY_RATING);
            if unhappy {
                self.unhappy.add(weight);
            }
            if let Some(r) = self.risk.as_deref_mut() {
                let llr = evidence_weights(self.domain).1[usize::from(unhappy)];
                r.evidence = (f64::from(r.evidence) + llr * weight[1]).max(0.0) as f32;
            }
            return;
        }
        let domain = self.domain;
        let risk = self.risk.get_or_insert_default();
        let bare = is_bare(o.photos, o.rating);
        let credibility = credibility(&risk.recent_risk, o.event_time, o.photos, bare);
        risk.risk_reviews.add(weight);
        let scaled = weight.map(|w| w * f64::from(credibility));
        risk.credible.add(scaled);
        let risk_llr = evidence_weights(domain).0;
        risk.evidence = (f64::from(risk.evidence) + risk_llr * scaled[1]).max(0.0) as f32;
        if !risk.recent_risk.iter().any(|e| e.reviewer == o.reviewer) {
            risk.reporters.add(scaled);
        }
        if o.photos > 0 {
            risk.photo_risk.add(weight);
        }
        for (i, c) in Category::of(domain).iter().enumerate() {
            if o.signals.contains(*c) {
                risk.categories[i].add(weight);
            }
        }
        let ev = RiskEvent {
            review_id: o.review_id.into(),
            created_at: o.created_at.into(),
            event_time: o.event_time,
            categories: o.signals.bits(),
            reviewer: o.reviewer,
            snippet: crate::core::redact::snippet(o.text, SNIPPET_CHARS).into_boxed_str(),
            photos: o.photos,
            credibility,
            bare,
        };
        // Newest first; among equal times, the later arrival first.
        let pos = risk
            .recent_risk
            .iter()
            .position(|e| e.event_time <= ev.event_time)
            .unwrap_or(risk.recent_risk.len());
        if pos < MAX_RECENT_RISK {
            // Grow one event at a time and never past the bound: most
            // businesses with evidence hold one or two events, and a vector
            // grown by doubling would hold room for four.
            risk.recent_risk.truncate(MAX_RECENT_RISK - 1);
            risk.recent_risk.reserve_exact(1);
            risk.recent_risk.insert(pos, ev);
        }
    }

    /// Fold in the outcome of an inspection at `t`. One that found nothing
    /// examined the evidence before it and found it wanting: those reports
    /// keep [`EXAMINED_CREDIBILITY`] of their credibility, and the flag
    /// cooldown ends (a new report may flag the business again at once). One
    /// that found violations changes neither. The same inspection given
    /// twice counts once.
    pub fn inspected(&mut self, t: i64, violation: bool) {
        let risk = self.risk.get_or_insert_default();
        let mark = Inspected {
            event_time: t,
            violation,
        };
        if risk.inspections.contains(&mark) {
            return;
        }
        let pos = risk
            .inspections
            .iter()
            .position(|i| i.event_time <= t)
            .unwrap_or(risk.inspections.len());
        if pos >= MAX_INSPECTIONS {
            return;
        }
        risk.inspections.truncate(MAX_INSPECTIONS - 1);
        risk.inspections.insert(pos, mark);
        if violation {
            return;
        }
        // The decayed sums hold every report up to `as_of`; those after the
        // inspection are damped with the rest (an outcome arrives after the
        // reports it examined, as a rule).
        risk.credible.scale(EXAMINED_CREDIBILITY);
        risk.reporters.scale(EXAMINED_CREDIBILITY);
        risk.evidence *= EXAMINED_CREDIBILITY;
        for e in &mut risk.recent_risk {
            if e.event_time <= t {
                e.credibility *= EXAMINED_CREDIBILITY;
            }
        }
    }

    /// Whether the state holds this inspection already.
    pub fn holds_inspection(&self, t: i64, violation: bool) -> bool {
        self.inspections().contains(&Inspected {
            event_time: t,
            violation,
        })
    }

    /// Past inspections, newest first, at most [`MAX_INSPECTIONS`].
    pub fn inspections(&self) -> &[Inspected] {
        self.risk.as_ref().map_or(&[], |r| &r.inspections)
    }

    /// Whether an inspection that found nothing came after the last flag
    /// (which ends its cooldown).
    pub fn cleared_since_flag(&self) -> bool {
        match (self.last_flag(), self.inspections().first()) {
            (Some(f), Some(i)) => !i.violation && i.event_time >= f.event_time,
            _ => false,
        }
    }

    fn all_mut(&mut self) -> impl Iterator<Item = &mut Decayed> {
        let risk = self.risk.as_deref_mut().into_iter().flat_map(|r| {
            [
                &mut r.risk_reviews,
                &mut r.credible,
                &mut r.reporters,
                &mut r.photo_risk,
            ]
            .into_iter()
            .chain(r.categories.iter_mut())
        });
        [&mut self.reviews, &mut self.low_rating, &mut self.unhappy]
            .into_iter()
            .chain(risk)
    }

    /// Distinct reviewers among recent reports of `category` (any, when `None`)
    /// within `window` seconds before `t`.
    pub fn distinct_reporters(&self, category: Option<Category>, t: i64, window: i64) -> usize {
        self.reporters(category, t, window, None, |_| (1.0, false)) as usize
    }

    /// Distinct reviewers among recent reports of `category` (any, when
    /// `None`) within `window` seconds before `t`, after the last
    /// inspection that found nothing (it examined the ones before). Each
    /// weighs 1 when one of their reports has photos and
    /// [`NO_PHOTO_CREDIBILITY`] when one is rated above one star; the
    /// reviewers of only bare reports ([`is_bare`]: one star, no photo)
    /// weigh together as one reviewer without photos at most, however many
    /// accounts wrote them (a competitor's burst). Three people who rate
    /// and describe what happened within hours may be an outbreak, whatever
    /// else is reported at the time. The illness rule and the model's flags
    /// count these.
    pub fn credible_reporters(&self, category: Option<Category>, t: i64, window: i64) -> f64 {
        let cleared = self
            .inspections()
            .iter()
            .filter(|i| !i.violation && i.event_time <= t)
            .map(|i| i.event_time)
            .max();
        self.reporters(category, t, window, cleared, |e| {
            if e.photos > 0 {
                (1.0, false)
            } else {
                (NO_PHOTO_CREDIBILITY, e.bare)
            }
        })
    }

    /// Distinct reviewers among recent reports of `category` (any, when
    /// `None`) within `window` seconds before `t` and after `since`, each
    /// weighing the most that `weight` gives one of their reports. Those
    /// whose every report `weight` pools weigh together at most
    /// [`NO_PHOTO_CREDIBILITY`].
    fn reporters(
        &self,
        category: Option<Category>,
        t: i64,
        window: i64,
        since: Option<i64>,
        weight: impl Fn(&RiskEvent) -> (f32, bool),
    ) -> f64 {
        let mut seen: [(u64, f32, bool); MAX_RECENT_RISK] = [(0, 0.0, false); MAX_RECENT_RISK];
        let mut n = 0;
        for e in self.recent_risk() {
            let in_window = e.event_time <= t
                && t - e.event_time <= window
                && since.is_none_or(|c| e.event_time > c);
            if !(in_window && category.is_none_or(|c| e.categories().contains(c))) {
                continue;
            }
            let (w, pooled) = weight(e);
            match seen[..n].iter_mut().find(|(r, _, _)| *r == e.reviewer) {
                Some((_, c, p)) => {
                    *c = c.max(w);
                    *p = *p && pooled;
                }
                None if n < MAX_RECENT_RISK => {
                    seen[n] = (e.reviewer, w, pooled);
                    n += 1;
                }
                None => {}
            }
        }
        let own: f64 = seen[..n]
            .iter()
            .filter(|s| !s.2)
            .map(|s| f64::from(s.1))
            .sum();
        let pooled: f64 = seen[..n]
            .iter()
            .filter(|s| s.2)
            .map(|s| f64::from(s.1))
            .sum();
        own + pooled.min(f64::from(NO_PHOTO_CREDIBILITY))
    }

    /// The feature vector as of time `t` (≥ `as_of` decays further; earlier is
    /// taken as `as_of`). Order and names: [`feature_names`].
    pub fn features_at(&self, t: i64) -> Vec<f64> {
        let dt = factors((t - self.as_of).max(0));
        let t = t.max(self.as_of);
        let reviews = self.reviews.at(dt);
        let low = self.low_rating.at(dt);
        let none = RiskState::default();
        let r = self.risk.as_deref().unwrap_or(&none);
        let risk = r.risk_reviews.at(dt);
        let mut f = Vec::with_capacity(feature_count(self.domain));
        f.extend_from_slice(&reviews);
        f.extend_from_slice(&low);
        f.extend_from_slice(&risk);
        f.push(risk[1] / reviews[1].max(1.0));
        f.push(r.photo_risk.at(dt)[1]);
        f.push(self.distinct_reporters(None, t, 30 * DAY) as f64);
        for i in 0..Category::of(self.domain).len() {
            f.extend_from_slice(&r.categories[i].at(dt));
        }
        let credible = r.credible.at(dt);
        f.extend_from_slice(&credible);
        // Shrunk share: credible reports among the reviews (risk reports
        // counted by their credibility), pulled towards the domain's prior by
        // `PRIOR_REVIEWS` reviews. One more credible report never lowers it.
        let (p0, m) = prior(self.domain);
        let others = (reviews[1] - risk[1]).max(0.0);
        f.push((credible[1] + m * p0) / (others + credible[1] + m));
        f.extend_from_slice(&r.reporters.at(dt));
        let last = self.inspections().first();
        f.push(last.map_or(NEVER_INSPECTED_DAYS, |i| {
            ((t - i.event_time) as f64 / DAY as f64).clamp(0.0, NEVER_INSPECTED_DAYS)
        }));
        f.push(last.map_or(0.0, |i| f64::from(u8::from(i.violation))));
        f.push(
            self.inspections()
                .iter()
                .filter(|i| i.violation && i.event_time <= t && t - i.event_time <= 365 * DAY)
                .count() as f64,
        );
        f.push(f64::from(u8::from(self.cleared_since_flag())));
        f.push(f64::from(r.evidence) * dt[1]);
        let others7 = (reviews[0] - risk[0]).max(0.0);
        f.push((credible[0] + m * p0) / (others7 + credible[0] + m));
        // Dissatisfaction among the reviews that report no risk, shrunk
        // towards `UNHAPPY_PRIOR`: a risk report leaves it as it is.
        let unhappy = self.unhappy.at(dt);
        for (u, quiet) in unhappy.iter().zip([others7, others]) {
            f.push((u + m * UNHAPPY_PRIOR) / (quiet + m));
        }
        f
    }
}

/// The stable feature names of a domain, in vector order.
pub fn feature_names(domain: Domain) -> Vec<String> {
    let mut names: Vec<String> = [
        "reviews_7d",
        "reviews_30d",
        "low_rating_7d",
        "low_rating_30d",
        "risk_reviews_7d",
        "risk_reviews_30d",
        "risk_share_30d",
        "photo_risk_30d",
        "distinct_risk_reviewers_30d",
    ]
    .map(String::from)
    .to_vec();
    for c in Category::of(domain) {
        for (h, _) in HORIZONS {
            names.push(format!("{}_{h}", c.as_str()));
        }
    }
    names.extend(HISTORY.map(String::from));
    names
}

/// The features after the categories': credibility, shrinkage, reporters
/// and inspection history.
const HISTORY: [&str; 13] = [
    "credible_risk_7d",
    "credible_risk_30d",
    "credible_share_30d",
    "credible_reporters_7d",
    "credible_reporters_30d",
    "days_since_inspection",
    "last_inspection_violation",
    "violations_365d",
    "inspected_since_flag",
    "risk_evidence",
    "credible_share_7d",
    "unhappy_share_7d",
    "unhappy_share_30d",
];

/// Whether a new risk report can only raise this feature (or leave it):
/// every feature of the reviews. The inspection history is not moved by
/// reviews at all.
pub fn rises_with_reports(name: &str) -> bool {
    !matches!(
        name,
        "days_since_inspection"
            | "last_inspection_violation"
            | "violations_365d"
            | "inspected_since_flag"
    )
}

/// Whether a feature means the same in any world: a share or evidence
/// measured against the domain's prior, or the inspection history. Counts
/// are not: a popular business draws more of every kind of review.
pub fn world_invariant(name: &str) -> bool {
    matches!(
        name,
        "risk_share_30d"
            | "credible_share_30d"
            | "credible_share_7d"
            | "unhappy_share_7d"
            | "unhappy_share_30d"
            | "risk_evidence"
            | "days_since_inspection"
            | "last_inspection_violation"
            | "violations_365d"
            | "inspected_since_flag"
    )
}

pub fn feature_count(domain: Domain) -> usize {
    9 + 2 * Category::of(domain).len() + HISTORY.len()
}

/// A sentence a regulator can read for one feature's value.
pub fn describe(name: &str, value: f64) -> String {
    let (base, horizon) = match name.rsplit_once('_') {
        Some((b, h @ ("7d" | "30d"))) => (b, if h == "7d" { "7" } else { "30" }),
        _ => (name, "30"),
    };
    let n = format!("{value:.1}");
    match base {
        "reviews" => format!("{n} reviews in the last {horizon} days (time-weighted)"),
        "low_rating" => format!("{n} reviews rated 2 stars or lower in the last {horizon} days"),
        "risk_reviews" => format!("{n} reviews in the last {horizon} days report a risk"),
        "risk_share" => format!(
            "{:.0}% of reviews in the last 30 days report a risk",
            value * 100.0
        ),
        "photo_risk" => format!("{n} risk reports in the last 30 days come with photos"),
        "distinct_risk_reviewers" => {
            format!("{value:.0} different reviewers reported risks in the last 30 days")
        }
        "credible_risk" => format!(
            "{n} risk reports in the last {horizon} days, weighed by credibility (photos, bursts, inspections)"
        ),
        "credible_share" => format!(
            "{:.0}% of reviews in the last {horizon} days report a risk, weighed by credibility and volume",
            value * 100.0
        ),
        "unhappy_share" => format!(
            "{:.0}% of the reviews in the last {horizon} days that report no risk rate it 3 stars or lower",
            value * 100.0
        ),
        "credible_reporters" => format!(
            "{n} different reviewers reported risks in the last {horizon} days, weighed by credibility"
        ),
        "days_since_inspection" => {
            if value >= NEVER_INSPECTED_DAYS {
                "not inspected in the last year".to_owned()
            } else {
                format!("last inspected {value:.0} days ago")
            }
        }
        "last_inspection_violation" => if value > 0.5 {
            "the last inspection found violations"
        } else {
            "the last inspection found none (or there was none)"
        }
        .to_owned(),
        "violations_365d" => format!("{value:.0} inspections in the last year found violations"),
        "risk_evidence" => format!(
            "risk reports have come faster, and other reviews been unhappier, than the domain's usual (evidence {value:.1})"
        ),
        "inspected_since_flag" => if value > 0.5 {
            "inspected and found clean since its last flag"
        } else {
            "not inspected since its last flag (or never flagged)"
        }
        .to_owned(),
        other => match Category::parse(other) {
            Some(c) => format!(
                "{n} reviews in the last {horizon} days report {}",
                c.phrase()
            ),
            None => format!("{name} = {n}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(t: i64, signals: CategorySet, reviewer: u64) -> Observation<'static> {
        Observation {
            event_time: t,
            rating: Some(1.0),
            photos: 1,
            signals,
            review_id: "r",
            created_at: "c",
            reviewer,
            text: "吃完拉肚子，电话13812345678",
        }
    }

    /// `s` takes the labels a review gives, with their key.
    fn label(s: &mut BusinessState, name: Option<&str>, region: Option<&str>) {
        s.set_labels(LabelsKey::of(name, region), name, region);
    }

    /// A food business with one review and a name and region.
    fn plain_labelled() -> BusinessState {
        let mut plain = BusinessState::new(Domain::Food, 0);
        plain.observe(&obs(60, CategorySet::default(), 1));
        label(&mut plain, Some("店"), Some("310105"));
        plain
    }

    /// A state takes the labels each review gives, also after a review
    /// that gave other ones; labels given again (the key it last took) are
    /// not read; a restored state, which holds no key, takes them; and the
    /// key is no part of what makes two states equal.
    #[test]
    fn labels_follow_the_reviews_and_the_key_only_saves_reading_them() {
        let mut s = BusinessState::new(Domain::Food, 0);
        label(&mut s, Some("老王面馆"), Some("310105"));
        label(&mut s, None, Some("310106"));
        assert_eq!(
            (s.business_name(), s.region()),
            (Some("老王面馆"), Some("310106"))
        );
        label(&mut s, Some("老王面馆"), Some("310105"));
        assert_eq!(
            (s.business_name(), s.region()),
            (Some("老王面馆"), Some("310105"))
        );
        label(&mut s, Some("新王面馆"), None);
        assert_eq!(
            (s.business_name(), s.region()),
            (Some("新王面馆"), Some("310105"))
        );
        // Same key again: the names passed are not read (these would change them).
        let again = LabelsKey::of(Some("新王面馆"), None);
        s.take_labels(again, Some("never read"), Some("never read"));
        assert_eq!(
            (s.business_name(), s.region()),
            (Some("新王面馆"), Some("310105"))
        );
        // A name and a region that swap places are other labels.
        assert_ne!(
            LabelsKey::of(Some("a"), None),
            LabelsKey::of(None, Some("a"))
        );
        assert_ne!(
            LabelsKey::of(Some("ab"), Some("c")),
            LabelsKey::of(Some("a"), Some("bc"))
        );

        let json = serde_json::to_string(&s).unwrap();
        let mut restored: BusinessState = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, s);
        restored.take_labels(again, Some("老王面馆"), Some("310101"));
        assert_eq!(
            (restored.business_name(), restored.region()),
            (Some("老王面馆"), Some("310101"))
        );
        assert_ne!(restored, s);
        // The key costs a state 8 bytes (see the memory figures).
        assert_eq!(std::mem::size_of::<LabelsSeen>(), 8);
    }

    #[test]
    fn names_match_vector_length() {
        for d in Domain::ALL {
            let s = BusinessState::new(d, 0);
            assert_eq!(s.features_at(0).len(), feature_names(d).len());
            assert_eq!(feature_names(d).len(), feature_count(d));
        }
    }

    #[test]
    fn decay_follows_event_time_and_ignores_order() {
        let ill: CategorySet = [Category::Illness].into_iter().collect();
        let mut a = BusinessState::new(Domain::Food, 0);
        let mut b = BusinessState::new(Domain::Food, 0);
        a.observe(&obs(0, ill, 1));
        a.observe(&obs(7 * DAY, ill, 2));
        b.observe(&obs(7 * DAY, ill, 2));
        b.observe(&obs(0, ill, 1));
        let fa = a.features_at(7 * DAY);
        let fb = b.features_at(7 * DAY);
        for (x, y) in fa.iter().zip(&fb) {
            assert!((x - y).abs() < 1e-4, "{fa:?} vs {fb:?}");
        }
        // reviews_7d = 1 + e^-1
        assert!((fa[0] - (1.0 + (-1.0f64).exp())).abs() < 1e-4);
        // 30 days later the 7-day figure has all but gone.
        assert!(a.features_at(37 * DAY)[0] < 0.05);
    }

    #[test]
    fn state_is_bounded_and_evidence_redacted() {
        let ill: CategorySet = [Category::Illness].into_iter().collect();
        let mut s = BusinessState::new(Domain::Food, 0);
        for i in 0..1000 {
            s.observe(&obs(i * 60, ill, i as u64));
        }
        assert_eq!(s.recent_risk().len(), MAX_RECENT_RISK);
        assert_eq!(s.recent_risk()[0].event_time, 999 * 60);
        assert!(!s.recent_risk()[0].snippet.contains("13812345678"));
        assert_eq!(s.reviews_total, 1000);
    }

    #[test]
    fn changelog_shape_is_flat_and_round_trips() {
        let plain = plain_labelled();
        let mut risky = plain.clone();
        risky.observe(&obs(120, CategorySet::from_iter([Category::Illness]), 2));
        risky.set_last_flag(LastFlag {
            event_time: 120,
            severity: crate::types::Severity::High,
        });
        for s in [plain, risky] {
            let v = serde_json::to_value(&s).unwrap();
            for key in [
                "risk_reviews",
                "categories",
                "recent_risk",
                "last_flag",
                "business_name",
            ] {
                assert!(v.get(key).is_some(), "{key} missing from {v}");
            }
            let back: BusinessState = serde_json::from_value(v).unwrap();
            assert_eq!(back, s);
        }
    }

    /// Changelog records of format version 1, as they have been written
    /// (one with risk evidence and a flag, one bare, and one from before
    /// states carried their source offset), read back and written again
    /// byte for byte (the last with the offset it now carries).
    #[test]
    fn records_already_written_read_back_and_write_the_same_bytes() {
        let risky = r#"{"domain":"food","as_of":60,"reviews_total":1,"reviews":[1.0,1.0],"low_rating":[1.0,1.0],"risk_reviews":[1.0,1.0],"photo_risk":[1.0,1.0],"categories":[[1.0,1.0],[0.0,0.0],[0.0,0.0],[0.0,0.0],[0.0,0.0],[0.0,0.0]],"recent_risk":[{"review_id":"r","created_at":"c","event_time":60,"categories":1,"reviewer":3,"snippet":"吃完拉肚子","photos":1}],"business_name":"店","region":"310105","last_flag":{"event_time":60,"severity":"high"},"source_offset":-1}"#;
        let bare = r#"{"domain":"tourism","as_of":9,"reviews_total":0,"reviews":[0.0,0.0],"low_rating":[0.0,0.0],"risk_reviews":[0.0,0.0],"photo_risk":[0.0,0.0],"categories":[[0.0,0.0],[0.0,0.0],[0.0,0.0],[0.0,0.0],[0.0,0.0],[0.0,0.0]],"recent_risk":[],"business_name":null,"region":null,"last_flag":null,"source_offset":-1}"#;
        for record in [risky, bare] {
            let s: BusinessState = serde_json::from_str(record).unwrap();
            assert_eq!(serde_json::to_string(&s).unwrap(), record);
        }
        let s: BusinessState = serde_json::from_str(risky).unwrap();
        assert_eq!(s.recent_risk()[0].snippet.as_ref(), "吃完拉肚子");
        assert_eq!(s.business_name(), Some("店"));
        assert_eq!(s.last_flag().map(|f| f.event_time), Some(60));
        let before_offsets = bare.replace(r#","source_offset":-1"#, "");
        let s: BusinessState = serde_json::from_str(&before_offsets).unwrap();
        assert_eq!(s.source_offset, -1);
        assert_eq!(serde_json::to_string(&s).unwrap(), bare);
    }

    /// The state is written borrowed, as the owned wire shape that reads it
    /// back is written: the same bytes, with and without risk or labels.
    #[test]
    fn state_is_written_as_its_wire_shape_is() {
        let bare = BusinessState::new(Domain::Tourism, 7);
        let plain = plain_labelled();
        let mut risky = plain.clone();
        for k in 0..3 {
            risky.observe(&obs(
                120 + k,
                CategorySet::from_iter([Category::Illness, Category::Hygiene]),
                2,
            ));
        }
        risky.set_last_flag(LastFlag {
            event_time: 120,
            severity: crate::types::Severity::High,
        });
        for s in [bare, plain, risky] {
            let owned = serde_json::to_string(&StateWire::from(s.clone())).unwrap();
            assert_eq!(serde_json::to_string(&s).unwrap(), owned);
        }
    }

    #[test]
    fn distinct_reporters_counts_people_not_reviews() {
        let ill: CategorySet = [Category::Illness].into_iter().collect();
        let mut s = BusinessState::new(Domain::Food, 0);
        s.observe(&obs(0, ill, 7));
        s.observe(&obs(3600, ill, 7));
        assert_eq!(
            s.distinct_reporters(Some(Category::Illness), 3600, 72 * 3600),
            1
        );
        s.observe(&obs(7200, ill, 8));
        assert_eq!(
            s.distinct_reporters(Some(Category::Illness), 7200, 72 * 3600),
            2
        );
        assert_eq!(
            s.distinct_reporters(Some(Category::Hygiene), 7200, 72 * 3600),
            0
        );
    }

    /// Dissatisfaction is read from the reviews that report no risk: a
    /// review rated 3 stars or lower raises it, a risk report leaves it as
    /// it is, and it counts in the evidence that the business is bad.
    #[test]
    fn unhappy_reviews_raise_their_share_and_the_evidence() {
        let names = feature_names(Domain::Tourism);
        let at = |name: &str| names.iter().position(|n| n == name).unwrap();
        let review = |t: i64, rating: f64, signals: CategorySet| Observation {
            rating: Some(rating),
            photos: 0,
            text: "还行",
            ..obs(t, signals, t as u64)
        };
        let dirty: CategorySet = [Category::Hygiene].into_iter().collect();
        let mut happy = BusinessState::new(Domain::Tourism, 0);
        let mut unhappy = BusinessState::new(Domain::Tourism, 0);
        happy.observe(&review(0, 2.0, dirty));
        unhappy.observe(&review(0, 2.0, dirty));
        for i in 1..=10 {
            happy.observe(&review(i * 3600, 5.0, CategorySet::default()));
            unhappy.observe(&review(i * 3600, 3.0, CategorySet::default()));
        }
        let t = 11 * 3600;
        let (h, u) = (happy.features_at(t), unhappy.features_at(t));
        for name in ["unhappy_share_7d", "unhappy_share_30d", "risk_evidence"] {
            assert!(
                u[at(name)] > h[at(name)],
                "{name}: {} vs {}",
                u[at(name)],
                h[at(name)]
            );
        }
        assert!(h[at("unhappy_share_7d")] < UNHAPPY_PRIOR);
        let mut more = unhappy.clone();
        more.observe(&review(t, 1.0, dirty));
        let m = more.features_at(t);
        assert_eq!(m[at("unhappy_share_7d")], u[at("unhappy_share_7d")]);
        assert!(m[at("risk_evidence")] > u[at("risk_evidence")]);
    }

    #[test]
    fn descriptions_are_sentences() {
        assert_eq!(
            describe("illness_7d", 3.0),
            "3.0 reviews in the last 7 days report illness after eating"
        );
        assert!(describe("risk_share_30d", 0.25).starts_with("25%"));
    }
}

#[cfg(test)]
mod roundtrip_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The changelog carries state as JSON: it must come back bit for bit,
        /// or a restored business would score differently from one never moved.
        #[test]
        fn decayed_values_survive_json_exactly(a in any::<f32>(), b in any::<f32>()) {
            prop_assume!(a.is_finite() && b.is_finite());
            let d = Decayed([a, b]);
            let back: Decayed = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
            prop_assert_eq!(back.0[0].to_bits(), a.to_bits());
            prop_assert_eq!(back.0[1].to_bits(), b.to_bits());
        }
    }
}
