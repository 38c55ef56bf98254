//! The batch fold: the one way a batch of messages becomes outcomes, for the
//! Kafka stream and `replay` alike, so that a replay of a stream gives the
//! stream's flags by construction.
//!
//! Two steps. [`prepare_run`] decodes messages and extracts their signals
//! (pure, any thread, many runs in parallel); each review is given the fold
//! shard of its business ([`shard_of`]). [`fold_shard`] then folds one
//! shard's reviews into its [`States`], in input order: two businesses never
//! interact, so shards fold in parallel and the result is that of a single
//! thread. The caller owns the batching and the parallelism (the stream: a
//! batch of Kafka messages per partition; `replay`: a block of lines).
//!
//! No decision here reads a clock: a flag's `emitted_at` is stamped by the
//! caller. Timing (for the processing-time metric) is taken only when asked.

use crate::core::review::{DecodeOptions, RejectReason, Rejection, ReviewRef};
use crate::core::scorer::{Outcome, Scorer, Slot, States, shard_of, shield};
use crate::types::category::CategorySet;
use compact_str::CompactString;
use std::time::{Duration, Instant};

/// The messages of a batch, by index: what [`prepare_run`] reads.
pub trait Input: Sync {
    /// The message's bytes (empty when it has none).
    fn bytes(&self, i: usize) -> &[u8];
    /// Its place in its input: the Kafka offset, or the line's index. The
    /// stream records it in the business's state (`source_offset`).
    fn position(&self, i: usize) -> i64;
    /// The Kafka message timestamp, if any.
    fn timestamp_ms(&self, _i: usize) -> Option<i64> {
        None
    }
}

/// A review decoded and its signals extracted, with what the fold needs of
/// its message (read while the message is at hand).
pub struct Prepared<'m> {
    /// Its message's index in the batch.
    pub at: usize,
    pub position: i64,
    pub timestamp_ms: Option<i64>,
    /// Its business's fold shard.
    pub shard: usize,
    /// Its business id, copied out of the message while it is in cache (up
    /// to 24 bytes inline): the fold finds the business by it without going
    /// back to the message, whose bytes have left the cache by then.
    pub business_id: CompactString,
    /// Time spent decoding and extracting it (zero unless timed).
    pub took: Duration,
    pub review: ReviewRef<'m>,
    pub signals: CategorySet,
}

/// A message decoded and extracted, or its index in the batch and why it
/// was refused.
pub type Decoded<'m> = Result<Prepared<'m>, (usize, Rejection)>;

/// How a batch is prepared and folded.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Fold shards the businesses are spread over.
    pub shards: usize,
    /// Measure each review's decode, extract and fold time.
    pub timed: bool,
    /// Positions are offsets of one partition: a review at or below its
    /// business's `source_offset` is a duplicate (the restored state holds
    /// it already), a folded one records its offset and marks its business
    /// changed (for the changelog).
    pub offsets: bool,
}

/// Decode and extract a run of a batch's messages, `todo` (index, decoding
/// options). A panic (a bug that some message sets off) is contained: the
/// run is read again one message at a time, each in [`shield`], so that only
/// the message that sets it off is refused (`internal_error`). One guard per
/// run rather than per message: a guard costs a copy of each decoded review.
/// (Never inlined: one call per run, and a name that
/// `scripts/callgrind-run.sh` counts the reading of messages by.)
#[inline(never)]
pub fn prepare_run<'m, I: Input + ?Sized>(
    scorer: &Scorer,
    input: &'m I,
    todo: &[(usize, DecodeOptions)],
    opts: BatchOptions,
) -> Vec<Decoded<'m>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        prepare(scorer, input, todo, opts, false)
    }))
    .unwrap_or_else(|_| prepare(scorer, input, todo, opts, true))
}

/// [`prepare_run`]'s reading, each message in [`shield`] when `shielded`.
fn prepare<'m, I: Input + ?Sized>(
    scorer: &Scorer,
    input: &'m I,
    todo: &[(usize, DecodeOptions)],
    opts: BatchOptions,
    shielded: bool,
) -> Vec<Decoded<'m>> {
    // One clock reading per message: each one's time runs from the last's end.
    let mut last = opts.timed.then(Instant::now);
    todo.iter()
        .map(|&(i, ref decode)| {
            let read = || scorer.read(input.bytes(i), decode);
            let decoded = if shielded { shield(read) } else { read() };
            let took = match last.as_mut() {
                Some(last) => {
                    let now = Instant::now();
                    let took = now - *last;
                    *last = now;
                    took
                }
                None => Duration::ZERO,
            };
            match decoded {
                Err(rejection) => Err((i, rejection)),
                Ok((review, signals)) => Ok(Prepared {
                    at: i,
                    position: input.position(i),
                    timestamp_ms: input.timestamp_ms(i),
                    shard: shard_of(review.domain, &review.business_id, opts.shards),
                    business_id: CompactString::from(review.business_id.as_ref()),
                    took,
                    review,
                    signals,
                }),
            }
        })
        .collect()
}

/// Whether a refusal is a contained panic: a bug, to be logged by the caller
/// with where the message came from.
pub fn is_internal(rejection: &Rejection) -> bool {
    rejection.reason == RejectReason::Internal
}

/// What folding one review led to.
// A batch's results live in one Vec for a moment: boxing the large variant
// would allocate once per review instead.
#[allow(clippy::large_enum_variant)]
pub enum Folded {
    /// Its business's state holds it already (with `offsets`).
    Duplicate,
    Scored(Outcome),
}

/// A shard's fold: per review (in the order given), its index in the batch
/// and what it led to; and, when timed, how long each took.
pub struct ShardFold {
    pub results: Vec<(usize, Folded)>,
    /// Per review, its whole time: its own reading, its share of the shard's
    /// lookups, and its fold (timed on its own for a review that reports a
    /// risk: scored, maybe flagged; an equal share of the rest for the
    /// others, a fraction of a microsecond each). Empty unless timed.
    pub times: Vec<Duration>,
}

/// Fold a shard's reviews of a batch into its state, in the order given
/// (input order). Every review's business is looked up first (see
/// [`States::slot`]), so the lookups' cache misses overlap; a new business
/// is created as its first review would have created it.
pub fn fold_shard(
    scorer: &Scorer,
    states: &mut States,
    mine: &[&Prepared<'_>],
    opts: BatchOptions,
) -> ShardFold {
    let mut results = Vec::with_capacity(mine.len());
    // Per review, its fold time if it reports a risk (timed only).
    let mut own: Vec<Option<Duration>> =
        Vec::with_capacity(if opts.timed { mine.len() } else { 0 });
    let looking = opts.timed.then(Instant::now);
    let slots: Vec<Slot> = mine
        .iter()
        .map(|p| states.slot(p.review.domain, &p.business_id, p.review.event_time))
        .collect();
    let folding = opts.timed.then(Instant::now);
    for (p, slot) in mine.iter().zip(slots) {
        let state = states.at(slot);
        if opts.offsets && state.source_offset >= p.position {
            results.push((p.at, Folded::Duplicate));
            if opts.timed {
                own.push(None);
            }
            continue;
        }
        let started = (opts.timed && !p.signals.is_empty()).then(Instant::now);
        let outcome = scorer.process_state(state, &p.review, p.signals);
        if opts.offsets {
            state.source_offset = p.position;
            states.mark_changed(slot);
        }
        if opts.timed {
            own.push(started.map(|t| t.elapsed()));
        }
        results.push((p.at, Folded::Scored(outcome)));
    }
    let times = match (looking, folding) {
        (Some(looking), Some(folding)) => {
            let done = Instant::now();
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).max(1);
            let lookup = (folding - looking) / count(mine.len());
            let timed: Duration = own.iter().flatten().sum();
            let untimed = own.iter().filter(|d| d.is_none()).count();
            let rest = (done - folding).saturating_sub(timed) / count(untimed);
            mine.iter()
                .zip(own)
                .map(|(p, fold)| p.took + lookup + fold.unwrap_or(rest))
                .collect()
        }
        _ => Vec::new(),
    };
    ShardFold { results, times }
}
