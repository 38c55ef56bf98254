//! The Kafka shell around the core: consumer group over the review topics,
//! flags and dead letters out, offsets stored only after everything a message
//! caused has been acknowledged by the broker (at-least-once).
//!
//! Loop: receive a message and whatever else librdkafka already holds (up to
//! `limits.batch_size` messages or 1 MiB, read a batch at a time from the
//! queue the partitions' fetch queues are forwarded to: `fetch_queue`);
//! decode the batch and extract its signals on every core, then fold each
//! partition's businesses in `SHARDS` (8) shards in parallel (each shard in
//! offset order, so a business sees its reviews in order and the result is a
//! single thread's); enqueue the outputs in the order read. While messages
//! keep coming the batches are pipelined: batch k is worked out on the pool
//! while the loop's thread sends batch k-1's outputs and reads batch k+1
//! (at_least_once; exactly_once sends each batch's outputs before the next is
//! worked out).
//! Outputs are delivered while the next batches are read; the
//! loop stops reading when an output is still unacknowledged a window of
//! 10,000 messages later (backpressure). Every `limits.commit_interval_ms`
//! the changed states go to the changelog (a business changed many times in
//! the interval is written once; copied on the loop's thread, written and
//! enqueued on a blocking thread) and reading goes on; once those records and
//! every output of the messages read before them are acknowledged, the
//! partitions' offsets are stored. librdkafka auto-commits stored offsets;
//! shutdown and revocation wait for all of it, synchronously at shutdown.
//!
//! Rebalance: a revoked partition's state is set aside; if the very next
//! assignment gives it back (eager rebalancing revokes everything) it is
//! resumed, otherwise dropped, so a partition never mixes in state from
//! before someone else owned it. A partition remembers the next offset it
//! has applied, so messages fetched again after a rebalance are not counted
//! twice.
//!
//! `kafka.processing_guarantee = "exactly_once"`: the producer is
//! transactional (`transactional.id` = `<group_id>-<instance_id>`, see
//! [`crate::service::config::KafkaConfig::transactional_id`]). The first message
//! after a commit opens a transaction; the flags, dead letters, changelog
//! records and input offsets (`send_offsets_to_transaction` with the
//! consumer's group metadata) until the next commit point are committed in
//! one transaction, on revoke and at shutdown too. When a transaction fails it is
//! aborted, the batch's partitions are restored again from the changelog
//! (read committed: the aborted changes are not in it) and the consumer is
//! rewound to their committed offsets, so nothing of the aborted batch stays
//! in memory. A fenced producer (another live instance with the same
//! transactional id) stops the service.

pub(crate) mod fetch_queue;

use crate::core::flag::Flag;
use crate::core::review::{self, DecodeOptions, Rejection, ReviewRef};
use crate::core::scorer::{Outcome, Scorer, Slot, States, shard_of, shield};
use crate::service::config::{Config, Guarantee};
use crate::service::http::Health;
use crate::service::kafka::fetch_queue::{FetchQueue, Msg};
use crate::service::metrics::Metrics;
use crate::types::Domain;
use crate::types::category::CategorySet;
use anyhow::{Context as _, Result, anyhow};
use base64::Engine as _;
use compact_str::CompactString;
use futures::{FutureExt as _, StreamExt as _};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, MessageStream, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaTopic;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

type Tp = (String, i32);

#[derive(Debug)]
enum RebalanceEvent {
    Revoke(Vec<Tp>),
    Assign(Vec<Tp>),
}

/// Consumer context: turns librdkafka callbacks into events for the loop and
/// into health and lag figures.
pub struct Ctx {
    events: Mutex<Vec<RebalanceEvent>>,
    /// Whether `events` holds any (read for every message, without the lock).
    pending: AtomicBool,
    health: Arc<Health>,
    metrics: Metrics,
    /// The queue the assigned partitions' messages are read from, a batch
    /// at a time.
    queues: Mutex<FetchQueue>,
}

fn tps(tpl: &rdkafka::TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl Ctx {
    fn push(&self, e: RebalanceEvent) {
        let mut v = self.events.lock().unwrap_or_else(|p| p.into_inner());
        v.push(e);
        self.pending.store(true, Ordering::Release);
    }
    fn take(&self) -> Vec<RebalanceEvent> {
        if !self.has_events() {
            return Vec::new();
        }
        let mut v = self.events.lock().unwrap_or_else(|p| p.into_inner());
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *v)
    }
    fn has_events(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }
    fn queues(&self) -> std::sync::MutexGuard<'_, FetchQueue> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A broker counts as reachable when its connection is up and it answers:
/// a broker with requests outstanding that has sent nothing for this long is
/// frozen or cut off even if the TCP connection still stands.
const BROKER_SILENCE_US: i64 = 5_000_000;

fn broker_answering(b: &rdkafka::statistics::Broker) -> bool {
    let waiting = b.waitresp_cnt > 0 || b.outbuf_cnt > 0;
    b.state == "UP" && !(waiting && b.rxidle > BROKER_SILENCE_US)
}

/// The cluster's brokers (not librdkafka's internal pseudo-broker, which is
/// always "UP", nor bootstrap entries once real brokers are known).
fn real_brokers(stats: &Statistics) -> impl Iterator<Item = &rdkafka::statistics::Broker> {
    stats
        .brokers
        .values()
        .filter(|b| b.nodeid >= 0 && b.source != "internal")
}

impl ClientContext for Ctx {
    fn stats(&self, stats: Statistics) {
        // The consumer always has a fetch or heartbeat outstanding, so a
        // silent broker shows within seconds.
        let up = real_brokers(&stats).any(broker_answering);
        self.health.broker_up.store(up, Ordering::Relaxed);
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[topic.as_str(), &p.to_string()])
                        .set(part.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        ) {
            self.health.broker_up.store(false, Ordering::Relaxed);
        }
        tracing::warn!(%error, reason, "kafka client error");
    }
}

/// Producer context: a producer with records or requests waiting on a broker
/// that does not answer makes the service not ready (the consumer's own
/// statistics are not served while the loop awaits deliveries).
pub struct ProducerCtx {
    health: Arc<Health>,
}

impl ClientContext for ProducerCtx {
    fn stats(&self, stats: Statistics) {
        let stalled = real_brokers(&stats)
            .any(|b| (b.waitresp_cnt > 0 || b.outbuf_cnt > 0) && !broker_answering(b));
        self.health.broker_stalled.store(stalled, Ordering::Relaxed);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka producer error");
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // Before librdkafka starts fetching them.
            self.queues().split(c.client(), &tps(tpl));
        }
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts = tps(tpl);
            self.queues().release(c.client(), &parts);
            tracing::info!(partitions = ?parts, "partitions revoked");
            for (topic, p) in &parts {
                let _ = self
                    .metrics
                    .consumer_lag
                    .remove_label_values(&[topic.as_str(), &p.to_string()]);
            }
            self.push(RebalanceEvent::Revoke(parts));
        }
    }

    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts = tps(tpl);
                tracing::info!(partitions = ?parts, "partitions assigned");
                // Not ready until the loop has restored these partitions' state.
                self.health.restoring.store(true, Ordering::Relaxed);
                self.health
                    .assigned
                    .store(!parts.is_empty(), Ordering::Relaxed);
                self.push(RebalanceEvent::Assign(parts));
            }
            Rebalance::Revoke(_) => self.health.assigned.store(false, Ordering::Relaxed),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// A dead-letter record: the original bytes and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub schema_version: u32,
    pub reason: String,
    pub error: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Kafka timestamp of the original message, milliseconds.
    pub timestamp_ms: Option<i64>,
    /// Original key and value, base64 (at most [`MAX_DEAD_LETTER_PAYLOAD`]
    /// bytes of each).
    pub key_base64: Option<String>,
    pub payload_base64: String,
    /// Size of the original value, and whether `payload_base64` holds only
    /// its first bytes.
    pub payload_bytes: usize,
    pub payload_truncated: bool,
}

/// Most bytes of an original message a dead letter carries: its base64 stays
/// well under Kafka's default 1 MB message limit, so a huge message cannot
/// make its own dead letter undeliverable (and stop the service).
pub const MAX_DEAD_LETTER_PAYLOAD: usize = 256 * 1024;

impl DeadLetter {
    pub fn new(
        rejection: &Rejection,
        topic: &str,
        partition: i32,
        offset: i64,
        ts: Option<i64>,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        DeadLetter {
            schema_version: 1,
            reason: rejection.reason.as_str().to_owned(),
            error: rejection.to_string(),
            topic: topic.to_owned(),
            partition,
            offset,
            timestamp_ms: ts,
            key_base64: key.map(|k| b64.encode(&k[..k.len().min(MAX_DEAD_LETTER_PAYLOAD)])),
            payload_base64: b64.encode(&payload[..payload.len().min(MAX_DEAD_LETTER_PAYLOAD)]),
            payload_bytes: payload.len(),
            payload_truncated: payload.len() > MAX_DEAD_LETTER_PAYLOAD,
        }
    }
}

/// A partition's businesses are spread over this many shards by
/// [`shard_of`], and the shards of a partition fold in parallel: a batch
/// often holds one partition's messages only. A business's reviews stay in offset
/// order in its shard, so the results are those of a single thread.
const SHARDS: usize = 8;

/// A shard's businesses; those changed since the last commit are marked
/// (for the changelog: [`States::take_changed`]).
#[derive(Default)]
struct Shard {
    states: States,
}

struct PartitionState {
    shards: Vec<Shard>,
    /// One past the last offset handled here (0 after a restore: the
    /// per-business `source_offset` then tells what was already applied).
    next_offset: i64,
}

impl PartitionState {
    fn new(states: States) -> PartitionState {
        let mut shards: Vec<Shard> = (0..SHARDS).map(|_| Shard::default()).collect();
        for (domain, business_id, state) in states.into_businesses() {
            shards[shard_of(domain, &business_id, SHARDS)]
                .states
                .insert(domain, business_id, state);
        }
        PartitionState {
            shards,
            next_offset: 0,
        }
    }

    fn count(&self, domain: Domain) -> usize {
        self.shards.iter().map(|s| s.states.count(domain)).sum()
    }
}

/// Counts of a batch, added to the metrics once per batch.
#[derive(Default)]
struct BatchCounts {
    /// Per topic domain: food, tourism, unknown.
    consumed: [u64; 3],
    scored: [u64; 2],
    signals: Vec<((Domain, crate::types::category::Category), u64)>,
}

impl BatchCounts {
    fn signal(&mut self, domain: Domain, c: crate::types::category::Category) {
        match self.signals.iter_mut().find(|(k, _)| *k == (domain, c)) {
            Some((_, n)) => *n += 1,
            None => self.signals.push(((domain, c), 1)),
        }
    }

    fn publish(&self, metrics: &Metrics, counters: &mut Counters) {
        for (i, n) in self.consumed.iter().enumerate() {
            if *n > 0 {
                counters.consumed[i].inc_by(*n);
            }
        }
        for (i, n) in self.scored.iter().enumerate() {
            if *n > 0 {
                counters.scored[i].inc_by(*n);
            }
        }
        for ((d, c), n) in &self.signals {
            metrics
                .signals
                .with_label_values(&[d.as_str(), c.as_str()])
                .inc_by(*n);
        }
    }
}

/// Metric children looked up once, not per message.
struct Counters {
    consumed: [prometheus::IntCounter; 3],
    scored: [prometheus::IntCounter; 2],
    risk_score: [prometheus::Histogram; 2],
}

impl Counters {
    fn new(m: &Metrics) -> Counters {
        let c = |l: &str| m.reviews_consumed.with_label_values(&[l]);
        let s = |d: Domain| m.reviews_scored.with_label_values(&[d.as_str()]);
        let r = |d: Domain| m.risk_score.with_label_values(&[d.as_str()]);
        Counters {
            consumed: [c("food"), c("tourism"), c("unknown")],
            scored: [s(Domain::Food), s(Domain::Tourism)],
            risk_score: [r(Domain::Food), r(Domain::Tourism)],
        }
    }
}

/// What became of one message, worked out beside its partition's state.
// A batch's steps live in one Vec for a moment: boxing the large variant
// would allocate once per review instead.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// Not a partition assigned here, or read again after a rebalance: left
    /// alone (its offset is not stored, so its owner reads it).
    Skip,
    Rejected(Rejection),
    /// The restored state holds it already.
    Duplicate,
    Scored(Domain, Outcome),
}

/// A review decoded and its signals extracted, with what the fold needs of
/// its message (read while the message is at hand), and the time that took.
struct Prepared<'m> {
    /// Its message's index in the batch.
    msg: usize,
    offset: i64,
    timestamp_ms: Option<i64>,
    /// Its business's shard of the partition.
    shard: usize,
    /// Its business id, copied out of the message while it is in cache (up
    /// to 24 bytes inline): the fold finds the business by it without going
    /// back to the message, whose bytes have left the cache by then (perf:
    /// reading them there was over half of the business lookups' time).
    business_id: CompactString,
    took: Duration,
    review: ReviewRef<'m>,
    signals: CategorySet,
}

/// A message decoded and extracted, or its index in the batch and why it
/// was refused.
type Decoded<'m> = Result<Prepared<'m>, (usize, Rejection)>;

/// Decode and extract a run of a batch's messages (pure, any thread). A
/// panic (a bug that some message sets off) is contained: the run is read
/// again one message at a time, each in [`shield`], so that only the
/// message that sets it off is refused (`internal_error`). One guard per
/// run rather than per message: a guard costs a copy of each decoded review.
/// (Never inlined: one call per run, and a name that
/// `scripts/callgrind-run.sh` counts the reading of messages by.)
#[inline(never)]
fn prepare_run<'m>(
    scorer: &Scorer,
    msgs: &'m [Msg<'_>],
    todo: &[(usize, DecodeOptions)],
) -> Vec<Decoded<'m>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        prepare(scorer, msgs, todo, false)
    }))
    .unwrap_or_else(|_| prepare(scorer, msgs, todo, true))
}

/// [`prepare_run`]'s reading, each message in [`shield`] when `shielded`.
fn prepare<'m>(
    scorer: &Scorer,
    msgs: &'m [Msg<'_>],
    todo: &[(usize, DecodeOptions)],
    shielded: bool,
) -> Vec<Decoded<'m>> {
    // One clock reading per message: each one's time runs from the last's end.
    let mut last = Instant::now();
    todo.iter()
        .map(|&(i, ref opts)| {
            let m = &msgs[i];
            let read = || scorer.read(m.payload().unwrap_or_default(), opts);
            let decoded = if shielded { shield(read) } else { read() }.map_err(|rejection| {
                if rejection.reason == review::RejectReason::Internal {
                    tracing::error!(
                        partition = m.partition(),
                        offset = m.offset(),
                        "reading a message panicked (a bug): it goes to the dead-letter topic"
                    );
                }
                (i, rejection)
            });
            let now = Instant::now();
            let took = now - last;
            last = now;
            decoded.map(|(review, signals)| Prepared {
                msg: i,
                offset: m.offset(),
                timestamp_ms: m.timestamp_ms(),
                shard: shard_of(review.domain, &review.business_id, SHARDS),
                business_id: CompactString::from(review.business_id.as_ref()),
                took,
                review,
                signals,
            })
        })
        .collect()
}

/// Fold a shard's reviews of a batch into its state, in offset order.
fn fold_shard(
    scorer: &Scorer,
    metrics: &Metrics,
    shard: &mut Shard,
    mine: &[&Prepared],
) -> Vec<(usize, Step)> {
    let processing = metrics.review_processing.local();
    let latency = metrics.pipeline_latency.local();
    let mut out = Vec::with_capacity(mine.len());
    // Per review, its fold time if it reports a risk (scored, maybe
    // flagged: several microseconds).
    let mut own: Vec<Option<Duration>> = Vec::with_capacity(mine.len());
    let looking = Instant::now();
    // Every review's business first (see `States::slot`), in offset order:
    // a new business is created as its first review would have created it.
    let slots: Vec<Slot> = mine
        .iter()
        .map(|p| {
            shard
                .states
                .slot(p.review.domain, &p.business_id, p.review.event_time)
        })
        .collect();
    let folding = Instant::now();
    for (p, slot) in mine.iter().zip(slots) {
        let offset = p.offset;
        let review = &p.review;
        let domain = review.domain;
        let state = shard.states.at(slot);
        let mut fold = None;
        let step = if state.source_offset >= offset {
            // The restored state holds it already.
            Step::Duplicate
        } else {
            let started = (!p.signals.is_empty()).then(Instant::now);
            let mut outcome = scorer.process_state(state, review, p.signals);
            state.source_offset = offset;
            shard.states.mark_changed(slot);
            if let Some(flag) = outcome.flag.as_mut() {
                flag.emitted_at =
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            }
            fold = started.map(|t| t.elapsed());
            Step::Scored(domain, outcome)
        };
        own.push(fold);
        out.push((p.msg, step));
    }
    // Each review's time: its own reading (decode and extract), its share
    // of the shard's lookups, and its fold: timed on its own for a review
    // that reports a risk (scored, maybe flagged), an equal share of the
    // rest for the others (a fraction of a microsecond each). Two clock
    // readings for every review were 3.8% of `run`'s CPU (perf).
    let done = Instant::now();
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).max(1);
    let lookup = (folding - looking) / count(mine.len());
    let timed: Duration = own.iter().flatten().sum();
    let untimed = own.iter().filter(|d| d.is_none()).count();
    let rest = (done - folding).saturating_sub(timed) / count(untimed);
    let now_ms = chrono::Utc::now().timestamp_millis();
    for ((p, (_, step)), fold) in mine.iter().zip(&out).zip(own) {
        let fold = fold.unwrap_or(rest);
        processing.observe((p.took + lookup + fold).as_secs_f64());
        let outputs = matches!(step, Step::Scored(_, o) if o.flag.is_some());
        if let (false, Some(ts)) = (outputs, p.timestamp_ms) {
            // Done with it: nothing to deliver.
            latency.observe(((now_ms - ts).max(0) as f64) / 1000.0);
        }
    }
    processing.flush();
    latency.flush();
    out
}

/// A batch worked out against its partitions' state, its outputs not yet sent.
struct Worked {
    /// Per message, in the order read: what became of it, or `None` for a
    /// partition not assigned here.
    steps: Vec<Option<Step>>,
    /// Per message: its partition, an index into `tps`.
    group_of: Vec<usize>,
    tps: Vec<Tp>,
}

/// Work a batch out against its partitions' state: decode and extract on
/// every core, then fold each partition's businesses in `SHARDS` shards in
/// parallel (each in offset order, as one thread would). Sends nothing.
fn work_out(
    partitions: &mut HashMap<Tp, PartitionState>,
    scorer: &Scorer,
    metrics: &Metrics,
    cfg: &Config,
    msgs: &[Msg<'_>],
) -> Worked {
    use rayon::prelude::*;
    // Message indices by partition, and each message's group.
    let mut groups: Vec<(&str, i32, Vec<usize>)> = Vec::new();
    // Groups by topic handle first: the name (a C string that `topic()`
    // measures and checks) is then read once per handle, not per message.
    // This loop is serial, on the batch's critical path.
    let mut handles: Vec<(*mut RDKafkaTopic, i32, usize)> = Vec::new();
    let mut group_of = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let (handle, partition) = (m.topic_ptr(), m.partition());
        let g = match handles
            .iter()
            .find(|&&(h, p, _)| p == partition && h == handle)
        {
            Some(&(_, _, g)) => g,
            None => {
                let topic = m.topic();
                let g = match groups
                    .iter()
                    .position(|(t, p, _)| *p == partition && *t == topic)
                {
                    Some(g) => g,
                    None => {
                        groups.push((topic, partition, Vec::new()));
                        groups.len() - 1
                    }
                };
                handles.push((handle, partition, g));
                g
            }
        };
        groups[g].2.push(i);
        group_of.push(g);
    }
    // What this instance applies: messages of its partitions not handled
    // before (a rebalance can deliver some again), with their decoding options.
    let mut steps: Vec<(usize, Step)> = Vec::with_capacity(msgs.len());
    let mut todo: Vec<(usize, DecodeOptions)> = Vec::with_capacity(msgs.len());
    let tps: Vec<Tp> = groups
        .iter()
        .map(|(t, p, _)| ((*t).to_owned(), *p))
        .collect();
    for ((t, _, idxs), tp) in groups.iter().zip(&tps) {
        let Some(part) = partitions.get_mut(tp) else {
            continue;
        };
        let opts = DecodeOptions {
            max_bytes: cfg.limits.max_message_bytes,
            default_domain: cfg.topics.domain_of(t),
        };
        for &i in idxs {
            let offset = msgs[i].offset();
            if offset < part.next_offset {
                // Fetched again after a rebalance: already handled here.
                steps.push((i, Step::Skip));
            } else {
                part.next_offset = offset + 1;
                todo.push((i, opts));
            }
        }
    }
    // Decode and extract on every core (pure), ...
    let decoded: Vec<Vec<Decoded>> = todo
        .par_chunks(32)
        .map(|run| prepare_run(scorer, msgs, run))
        .collect();
    // ... put each review in its partition's shard (by reference: this is
    // serial, and a decoded review is a few hundred bytes), ...
    let mut mine: Vec<Vec<&Prepared>> = vec![Vec::new(); groups.len() * SHARDS];
    for d in decoded.iter().flatten() {
        match d {
            // (Refusals are rare: copied.)
            Err((i, rejection)) => steps.push((*i, Step::Rejected(rejection.clone()))),
            Ok(p) => mine[group_of[p.msg] * SHARDS + p.shard].push(p),
        }
    }
    // ... and fold the shards in parallel, each in offset order.
    let mut work: Vec<(&mut Shard, &[&Prepared])> = Vec::with_capacity(mine.len());
    for (tp, part) in partitions.iter_mut() {
        let Some(g) = groups.iter().position(|(t, p, _)| *p == tp.1 && *t == tp.0) else {
            continue;
        };
        for (k, shard) in part.shards.iter_mut().enumerate() {
            let list = &mine[g * SHARDS + k];
            if !list.is_empty() {
                work.push((shard, list.as_slice()));
            }
        }
    }
    steps.par_extend(
        work.into_par_iter()
            .flat_map_iter(|(shard, list)| fold_shard(scorer, metrics, shard, list)),
    );
    // In the order read (placed, not sorted: steps are not small).
    let handled_here = steps.len();
    let mut in_order: Vec<Option<Step>> = Vec::with_capacity(msgs.len());
    in_order.resize_with(msgs.len(), || None);
    for (i, step) in steps {
        in_order[i] = Some(step);
    }
    // Messages of partitions not assigned here (fetched before a
    // revocation we have applied, or before an assignment we have not):
    // not ours to apply; their offsets are not stored, so whoever owns
    // the partition reads them again.
    let left = msgs.len() - handled_here;
    if left > 0 {
        tracing::debug!(
            messages = left,
            "messages of partitions not assigned here left alone"
        );
    }
    Worked {
        steps: in_order,
        group_of,
        tps,
    }
}

/// Most payload bytes a batch holds: a batch of large messages ends before
/// `limits.batch_size` (two batches are in hand while pipelining, and each
/// message keeps its fetch response's buffer).
const BATCH_BYTES: usize = 1 << 20;

/// Take what else librdkafka already holds, without waiting, until `batch`
/// holds `limit` messages or [`BATCH_BYTES`], or a rebalance waits to be
/// applied: first from the consumer queue (which also serves rebalances, and
/// holds any message fetched before its partition was forwarded to the fetch
/// queue, so it is read before the partition's later ones), then from the
/// fetch queue.
fn gather<'c>(
    messages: &mut MessageStream<'c, Ctx>,
    ctx: &Ctx,
    batch: &mut Vec<Msg<'c>>,
    limit: usize,
) {
    let mut bytes: usize = batch.iter().map(|m| m.payload_len()).sum();
    while batch.len() < limit && bytes < BATCH_BYTES && !ctx.has_events() {
        match messages.next().now_or_never() {
            Some(Some(Ok(m))) => {
                bytes += m.payload_len();
                batch.push(Msg::Stream(m));
            }
            Some(Some(Err(e))) => {
                tracing::warn!(error = %e, "consumer error");
                break;
            }
            _ => break,
        }
    }
    if ctx.has_events() {
        // Applying the rebalance re-arms the fetch queue's wake-up.
        return;
    }
    // (Re-arms the wake-up itself when the batch is full.)
    ctx.queues().read(batch, limit, bytes, BATCH_BYTES);
}

/// Forwards the partitions back to the consumer queue and destroys the fetch
/// queue when dropped: before the consumer.
struct ReleaseQueues<'c>(&'c StreamConsumer<Ctx>);

impl Drop for ReleaseQueues<'_> {
    fn drop(&mut self) {
        self.0.context().queues().release_all(self.0.client());
    }
}

/// What an output was, for its delivery report.
#[derive(Debug, Clone, Copy)]
enum Output {
    Flag(Domain, crate::types::Severity),
    DeadLetter,
}

/// The delivery report of one output of the message read `seq`-th.
struct Delivered {
    seq: u64,
    tp: Tp,
    offset: i64,
    timestamp_ms: Option<i64>,
    output: Output,
    result: Result<(), String>,
}

type InFlight = futures::stream::FuturesUnordered<futures::future::BoxFuture<'static, Delivered>>;

/// What a finished run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunSummary {
    pub consumed: u64,
    pub rejected: u64,
    pub flags: u64,
}

pub fn consumer_config(cfg: &Config) -> ClientConfig {
    let eos = cfg.kafka.guarantee() == Guarantee::ExactlyOnce;
    let mut c = cfg.kafka_client();
    c.set("group.id", &cfg.kafka.group_id)
        // exactly_once: offsets are committed inside the transactions.
        .set("enable.auto.commit", if eos { "false" } else { "true" })
        .set("isolation.level", "read_committed")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", &cfg.kafka.auto_offset_reset)
        .set(
            "session.timeout.ms",
            cfg.kafka.session_timeout_ms.to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (cfg.kafka.session_timeout_ms / 3).max(500).to_string(),
        )
        .set(
            "max.poll.interval.ms",
            cfg.kafka.max_poll_interval_ms.to_string(),
        )
        .set("statistics.interval.ms", "1000")
        .set("fetch.wait.max.ms", cfg.kafka.fetch_wait_max_ms.to_string())
        // Bound what librdkafka prefetches, so a slow pipeline cannot hoard
        // memory: at most 32 MiB queued, 8 MiB per fetch. When the queue is
        // full, fetch again 10 ms later (librdkafka's default waits 1 s,
        // which starved the loop: 0.7 of a core used, half the throughput).
        .set("queued.max.messages.kbytes", "32768")
        .set("fetch.queue.backoff.ms", "10")
        .set("fetch.max.bytes", "8388608")
        .set("max.partition.fetch.bytes", "1048576");
    c
}

/// The changelog reader's client: the service's, holding a fetch no longer
/// than the consumer does. A restore waits on its fetches, and on brokers
/// that hold every fetch for the longest wait (Tansu 0.6) librdkafka's
/// default 500 ms made each partition's restore take 0.75 s even when empty:
/// 6 of them kept a starting instance from reading for 4.5 s.
fn restore_client_config(cfg: &Config) -> ClientConfig {
    let mut c = cfg.kafka_client();
    c.set("fetch.wait.max.ms", cfg.kafka.fetch_wait_max_ms.to_string());
    c
}

pub fn producer_config(cfg: &Config) -> ClientConfig {
    let mut c = cfg.kafka_client();
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        // A batch's outputs are awaited at its end: waiting longer to fill
        // produce requests only adds latency (under load they fill anyway).
        .set("linger.ms", "1")
        .set("message.timeout.ms", "60000")
        // Bounded: a full queue makes `send` wait (and the loop stop reading).
        .set("queue.buffering.max.kbytes", "16384")
        .set("queue.buffering.max.messages", "20000")
        .set("statistics.interval.ms", "1000");
    if cfg.kafka.guarantee() == Guarantee::ExactlyOnce {
        c.set("transactional.id", cfg.kafka.transactional_id())
            .set("transaction.timeout.ms", "60000");
    }
    c
}

/// The plain (idempotent, non-transactional) producer of changelog barriers.
fn barrier_producer(cfg: &Config) -> Result<FutureProducer> {
    cfg.kafka_client()
        .set("enable.idempotence", "true")
        .create()
        .context("cannot create the changelog barrier producer (check kafka.brokers)")
}

const TXN_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest the loop stays in [`Shell::pipeline`] before it looks at its
/// other work (timers, delivery reports, reload requests).
const PIPELINE_ROUND: Duration = Duration::from_millis(100);

/// The service. Runs until `shutdown` turns true, then drains and commits.
pub async fn run(
    cfg: &Config,
    scorer: Scorer,
    metrics: Metrics,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunSummary> {
    let ctx = Ctx {
        events: Mutex::new(Vec::new()),
        pending: AtomicBool::new(false),
        health: health.clone(),
        metrics: metrics.clone(),
        queues: Mutex::new(FetchQueue::default()),
    };
    let wake = ctx.queues().wake();
    let consumer: StreamConsumer<Ctx> = consumer_config(cfg)
        .create_with_context(ctx)
        .context("cannot create the Kafka consumer (check kafka.brokers)")?;
    // Gives the fetch queue back before the consumer is dropped (also on an
    // early return).
    let _queues = ReleaseQueues(&consumer);
    let producer: FutureProducer<ProducerCtx> = producer_config(cfg)
        .create_with_context(ProducerCtx {
            health: health.clone(),
        })
        .context("cannot create the Kafka producer (check kafka.brokers)")?;
    let eos = cfg.kafka.guarantee() == Guarantee::ExactlyOnce;
    if eos {
        // Fences any earlier incarnation with the same transactional id and
        // aborts the transaction it left open.
        let p = producer.clone();
        tokio::task::spawn_blocking(move || p.init_transactions(TXN_TIMEOUT))
            .await
            .map_err(|e| anyhow!("init_transactions did not finish: {e}"))?
            .context("cannot initialise Kafka transactions (kafka.processing_guarantee = exactly_once needs a broker with transactions)")?;
        tracing::info!(transactional_id = %cfg.kafka.transactional_id(), "exactly-once: transactions initialised");
    }
    let topics = &cfg.topics;
    consumer
        .subscribe(&[&topics.reviews_food, &topics.reviews_tourism])
        .context("cannot subscribe to the review topics")?;
    metrics.set_models(&scorer.models);
    tracing::info!(brokers = %cfg.kafka.brokers, group = %cfg.kafka.group_id, "consuming");

    check_changelog_partitions(&consumer, cfg)?;
    let restorer = crate::service::changelog::Restorer::new(
        restore_client_config(cfg),
        &topics.changelog,
        barrier_producer(cfg)?,
    )?;
    let counters = Counters::new(&metrics);
    let mut shell = Shell {
        cfg,
        scorer,
        metrics: metrics.clone(),
        restorer,
        partitions: HashMap::new(),
        suspended: HashMap::new(),
        out: Out {
            cfg,
            metrics,
            producer,
            batch_len: 0,
            read_seq: 0,
            inflight: InFlight::new(),
            unacked: BTreeMap::new(),
            counters,
            flags_in_txn: Vec::new(),
            summary: RunSummary::default(),
            eos,
            in_txn: false,
        },
        uncommitted: HashMap::new(),
        last_commit: Instant::now(),
        commit_interval: Duration::from_millis(cfg.limits.commit_interval_ms),
        committing: None,
    };
    let mut reloader = crate::service::reload::Reloader::new(cfg.watched());
    let mut reload_tick =
        tokio::time::interval(Duration::from_secs(cfg.models.reload_seconds.max(1)));
    reload_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reload = cfg.models.reload_seconds > 0;
    // `POST /reload` (metrics server): check the files now and answer.
    let mut reload_requests = health.reload.take_receiver();
    let mut rebalance_tick = tokio::time::interval(Duration::from_millis(100));
    rebalance_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // None: a batch ends as soon as no further message is ready.
    let batch_wait =
        (cfg.limits.batch_wait_ms > 0).then(|| Duration::from_millis(cfg.limits.batch_wait_ms));
    let mut batch_started: Option<Instant> = None;
    // One stream for the whole run (each `recv()` would make a new one).
    let mut messages = consumer.stream();
    // Read and not yet handled: a new batch, or what a pipeline round read
    // (see `Shell::pipeline`).
    let mut carry: Vec<Msg<'_>> = Vec::new();
    loop {
        let deadline = batch_started.zip(batch_wait).map(|(t, w)| t + w);
        let commit_at = shell.commit_due_at();
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                shell.flush(&consumer, false).await?;
                batch_started = None;
            }
            // A commit is due and no batch has started it: traffic stopped,
            // or the loop is waiting between fetches (at a moderate rate it
            // mostly is). Started as a batch starts it, without awaiting its
            // changelog records: awaiting them here stopped reading for their
            // whole delivery, once a second.
            _ = async {
                match commit_at {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            }, if batch_started.is_none() => {
                shell.flush(&consumer, false).await?;
            }
            // The changelog records of a commit under way are acknowledged.
            done = async {
                match shell.committing.as_mut().and_then(|c| c.changelog.as_mut()) {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            } => {
                done?;
                if let Some(c) = shell.committing.as_mut() {
                    c.changelog = None;
                }
                shell.try_finish_commit(&consumer);
            }
            // Delivery reports while no message comes.
            Some(d) = shell.out.inflight.next(), if !shell.out.inflight.is_empty() => {
                shell.on_delivered(&consumer, d).await?;
                shell.try_finish_commit(&consumer);
            }
            // Rebalances are noticed inside recv(); restore without waiting for a message.
            _ = rebalance_tick.tick() => {
                shell.apply_rebalances(&consumer, &consumer.context().take(), &health).await?;
            }
            _ = reload_tick.tick(), if reload => {
                reloader.check(&mut shell.scorer, &shell.metrics);
            }
            Some(reply) = async {
                match reload_requests.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let _ = reply.send(reloader.check_now(&mut shell.scorer, &shell.metrics));
            }
            // Read and not yet handled (a new batch, or what the last
            // pipeline round read): before anything newer.
            _ = std::future::ready(()), if !carry.is_empty() => {
                shell.apply_rebalances(&consumer, &consumer.context().take(), &health).await?;
                let batch = std::mem::take(&mut carry);
                carry = shell.pipeline(&consumer, &mut messages, batch, || *shutdown.borrow()).await?;
                shell.end_round(&consumer, batch_wait, &mut batch_started).await?;
            }
            Some(msg) = messages.next(), if carry.is_empty() => {
                match msg {
                    Ok(m) => {
                        health.broker_up.store(true, Ordering::Relaxed);
                        // Take what else librdkafka already holds, up to a
                        // batch; the branch above handles it.
                        carry.push(Msg::Stream(m));
                        gather(&mut messages, consumer.context(), &mut carry, cfg.limits.batch_size);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "consumer error");
                    }
                }
            }
            // The fetch queue got messages.
            _ = wake.notified(), if carry.is_empty() => {
                gather(&mut messages, consumer.context(), &mut carry, cfg.limits.batch_size);
                if !carry.is_empty() {
                    health.broker_up.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    tracing::info!(
        in_flight = shell.out.inflight.len(),
        "shutting down: draining in-flight work"
    );
    shell.flush(&consumer, true).await?;
    if eos {
        // Offsets went with the transactions.
    } else if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing stored since the last commit is not an error.
        if !matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::NoOffset)) {
            tracing::warn!(error = %e, "final commit failed");
        }
    }
    shell
        .out
        .producer
        .flush(Duration::from_secs(10))
        .map_err(|e| anyhow!("cannot flush the producer: {e}"))?;
    consumer.unsubscribe();
    tracing::info!(
        consumed = shell.out.summary.consumed,
        rejected = shell.out.summary.rejected,
        flags = shell.out.summary.flags,
        "stopped cleanly"
    );
    Ok(shell.out.summary)
}

struct Shell<'a> {
    cfg: &'a Config,
    scorer: Scorer,
    metrics: Metrics,
    restorer: crate::service::changelog::Restorer,
    partitions: HashMap<Tp, PartitionState>,
    suspended: HashMap<Tp, PartitionState>,
    /// Sending outputs and following them (apart from the state, so a batch's
    /// outputs are sent while the next batch is worked out on the pool).
    out: Out<'a>,
    /// Highest offset per partition whose outputs are acknowledged but not
    /// yet committed.
    uncommitted: HashMap<Tp, i64>,
    last_commit: Instant,
    commit_interval: Duration,
    /// at_least_once: the commit whose changelog records are on their way.
    committing: Option<Committing>,
}

/// The output side of the loop: a batch's worked-out steps counted and
/// their outputs sent, in the order read, and followed until acknowledged.
struct Out<'a> {
    cfg: &'a Config,
    metrics: Metrics,
    producer: FutureProducer<ProducerCtx>,
    /// Messages handled in the current batch.
    batch_len: usize,
    /// Messages read so far (sequence numbers for the output window).
    read_seq: u64,
    /// Outputs sent and not yet acknowledged, and how many per message.
    inflight: InFlight,
    unacked: BTreeMap<u64, u32>,
    counters: Counters,
    /// exactly_once: flags delivered in the open transaction.
    flags_in_txn: Vec<(Domain, crate::types::Severity)>,
    summary: RunSummary,
    /// exactly_once mode, and whether a transaction is open.
    eos: bool,
    in_txn: bool,
}

impl Shell<'_> {
    async fn apply_rebalances(
        &mut self,
        consumer: &StreamConsumer<Ctx>,
        events: &[RebalanceEvent],
        health: &Health,
    ) -> Result<()> {
        if !events.is_empty() {
            // `gather` does not read the fetch queue while a rebalance
            // waits; it may hold messages and give no wake-up for them.
            consumer.context().queues().rearm();
        }
        for e in events {
            match e {
                RebalanceEvent::Revoke(parts) => {
                    // Finish the batch while the revoked partitions' state is still
                    // here, so its changes reach the changelog before anyone else
                    // restores from it. (Their offsets can no longer be stored: the
                    // new owner re-reads those messages and skips what the changelog
                    // already holds.)
                    self.flush(consumer, true).await?;
                    for tp in parts {
                        if let Some(s) = self.partitions.remove(tp) {
                            self.suspended.insert(tp.clone(), s);
                        }
                    }
                }
                RebalanceEvent::Assign(parts) => {
                    let mut restore = Vec::new();
                    for tp in parts {
                        match self.suspended.remove(tp) {
                            // Given straight back (eager rebalancing): nobody else had it.
                            Some(s) => {
                                self.partitions.insert(tp.clone(), s);
                            }
                            None if !self.partitions.contains_key(tp) => restore.push(tp.clone()),
                            None => {}
                        }
                    }
                    // Whatever was not given back may have moved on: its state is stale.
                    self.suspended.clear();
                    if !restore.is_empty() {
                        tokio::task::block_in_place(|| self.restore(&restore))?;
                    }
                    health.restoring.store(false, Ordering::Relaxed);
                }
            }
        }
        self.update_tracked();
        Ok(())
    }

    /// Read newly assigned partitions' state back from the changelog: each
    /// changelog partition once, for every review topic's partition of that
    /// number.
    fn restore(&mut self, parts: &[Tp]) -> Result<()> {
        let mut by_partition: std::collections::BTreeMap<i32, Vec<String>> = Default::default();
        for (topic, p) in parts {
            by_partition.entry(*p).or_default().push(topic.clone());
        }
        for (p, topics) in by_partition {
            let (mut all, done) = self
                .restorer
                .restore(&topics, p, Duration::from_secs(120))
                .with_context(|| {
                    format!("cannot restore the state of partition {p} of {topics:?}")
                })?;
            self.metrics
                .restore_seconds
                .observe(done.elapsed.as_secs_f64());
            self.metrics
                .businesses_restored
                .inc_by(done.businesses as u64);
            tracing::info!(
                topics = ?topics,
                partition = p,
                businesses = done.businesses,
                records = done.records,
                seconds = done.elapsed.as_secs_f64(),
                "state restored from the changelog"
            );
            for topic in topics {
                let states = all.remove(&topic).unwrap_or_default();
                self.partitions
                    .insert((topic, p), PartitionState::new(states));
            }
        }
        Ok(())
    }

    fn update_tracked(&self) {
        for d in Domain::ALL {
            let n: usize = self.partitions.values().map(|p| p.count(d)).sum();
            self.metrics
                .businesses_tracked
                .with_label_values(&[d.as_str()])
                .set(n as i64);
        }
    }

    /// After a pipeline round: end the batch (deliveries, a due commit), or
    /// with `limits.batch_wait_ms` once it is full or its time is up.
    async fn end_round(
        &mut self,
        consumer: &StreamConsumer<Ctx>,
        batch_wait: Option<Duration>,
        batch_started: &mut Option<Instant>,
    ) -> Result<()> {
        if self.out.batch_len >= self.cfg.limits.batch_size || batch_wait.is_none() {
            self.flush(consumer, false).await?;
            *batch_started = None;
        } else {
            batch_started.get_or_insert_with(Instant::now);
        }
        Ok(())
    }

    /// Work out `batch` on the pool while this thread sends the outputs of
    /// `prev` (the batch before, worked out) and runs `meanwhile` (reads the
    /// next batch).
    fn overlap<'c>(
        &mut self,
        batch: &[Msg<'c>],
        prev: Option<(Vec<Msg<'c>>, Worked)>,
        meanwhile: impl FnOnce(),
    ) -> Result<Worked> {
        let Shell {
            partitions,
            scorer,
            metrics,
            cfg,
            out,
            uncommitted,
            ..
        } = self;
        let mut worked = None;
        let mut applied = Ok(());
        rayon::in_place_scope(|s| {
            s.spawn(|_| worked = Some(work_out(partitions, scorer, metrics, cfg, batch)));
            if let Some((msgs, w)) = prev {
                applied = out.apply(&msgs, w, uncommitted);
            }
            meanwhile();
        });
        applied?;
        worked.ok_or_else(|| anyhow!("a batch was not worked out"))
    }

    /// Whether `limits.commit_interval_ms` has passed since the last commit.
    /// (Not while a commit is under way: the next one waits for it.)
    fn commit_due(&self) -> bool {
        self.committing.is_none() && self.last_commit.elapsed() >= self.commit_interval
    }

    /// Handle `batch` and the batches read behind it: each is worked out on
    /// the pool while this thread sends the outputs of the one before and
    /// reads the next. Returns, with every batch handled so far applied, when
    /// nothing more is ready, or before a rebalance, a commit, shutdown
    /// (`stop`) or after [`PIPELINE_ROUND`], with what it read and did not
    /// handle. exactly_once and `limits.batch_wait_ms` > 0 handle one batch.
    async fn pipeline<'c>(
        &mut self,
        consumer: &'c StreamConsumer<Ctx>,
        messages: &mut MessageStream<'c, Ctx>,
        mut batch: Vec<Msg<'c>>,
        stop: impl Fn() -> bool,
    ) -> Result<Vec<Msg<'c>>> {
        let started = Instant::now();
        let limit = self.cfg.limits.batch_size;
        let pipelined = !self.out.eos && self.cfg.limits.batch_wait_ms == 0;
        let mut prev = None;
        loop {
            let mut next = Vec::new();
            let worked = self.overlap(&batch, prev.take(), || {
                if pipelined {
                    gather(messages, consumer.context(), &mut next, limit);
                }
            })?;
            let interrupt = consumer.context().has_events()
                || self.commit_due()
                || stop()
                || started.elapsed() >= PIPELINE_ROUND;
            if next.is_empty() || interrupt {
                self.out.apply(&batch, worked, &mut self.uncommitted)?;
                return Ok(next);
            }
            prev = Some((batch, worked));
            self.progress_outputs().await?;
            self.try_finish_commit(consumer);
            batch = next;
        }
    }

    async fn on_delivered(&mut self, consumer: &StreamConsumer<Ctx>, d: Delivered) -> Result<()> {
        match self.out.delivered(d) {
            Err(e) if self.out.eos && self.out.in_txn => self.abort_and_rewind(consumer, e).await,
            r => r,
        }
    }

    /// Take the delivery reports that have arrived, then wait for the
    /// oldest outputs until none is older than a batch of reads: the
    /// service reads on while its outputs are being delivered, but stops
    /// when the broker stops acknowledging them.
    async fn progress_outputs(&mut self) -> Result<()> {
        while let Some(Some(d)) = self.out.inflight.next().now_or_never() {
            self.out.delivered(d)?;
        }
        let window = 10_000u64;
        while self
            .out
            .unacked
            .first_key_value()
            .is_some_and(|(seq, _)| self.out.read_seq - seq > window)
        {
            match self.out.inflight.next().await {
                Some(d) => self.out.delivered(d)?,
                None => break,
            }
        }
        Ok(())
    }

    /// Wait for every output sent so far.
    async fn await_all(&mut self) -> Result<()> {
        while let Some(d) = self.out.inflight.next().await {
            self.out.delivered(d)?;
        }
        Ok(())
    }

    /// When uncommitted changes are due for a commit; none while a commit
    /// is under way (the branch that sees its changelog records acknowledged
    /// finishes it, and the next is due once it has).
    fn commit_due_at(&self) -> Option<Instant> {
        let waiting =
            (!self.uncommitted.is_empty() || self.out.in_txn) && self.committing.is_none();
        waiting.then(|| self.last_commit + self.commit_interval)
    }

    /// End of a batch: take the delivery reports that have arrived (and wait
    /// for outputs older than a batch). Then, when `limits.commit_interval_ms`
    /// has passed since the last commit: exactly_once, await every output,
    /// write the changed states to the changelog and commit it all as one
    /// transaction; at_least_once, send the changed states to the changelog
    /// and read on, storing the input offsets they cover once they and every
    /// earlier output are acknowledged (`commit` does all of it before
    /// returning).
    async fn flush(&mut self, consumer: &StreamConsumer<Ctx>, commit: bool) -> Result<()> {
        self.out.batch_len = 0;
        let due = commit || self.last_commit.elapsed() >= self.commit_interval;
        if self.out.eos {
            if !self.out.in_txn {
                self.last_commit = Instant::now();
                return Ok(());
            }
            let result = match self.progress_outputs().await {
                Ok(()) if due => self.commit_transaction(consumer).await.map(Some),
                Ok(()) => Ok(None),
                Err(e) => Err(e),
            };
            return match result {
                Ok(None) => Ok(()),
                Ok(Some(flags)) => {
                    self.out.in_txn = false;
                    self.last_commit = Instant::now();
                    self.metrics
                        .transactions
                        .with_label_values(&["committed"])
                        .inc();
                    self.out.count_flags(&flags);
                    self.update_tracked();
                    Ok(())
                }
                Err(e) => self.abort_and_rewind(consumer, e).await,
            };
        }
        self.progress_outputs().await?;
        if commit {
            // Everything up to now, before returning (a revocation, shutdown,
            // or traffic has stopped).
            self.finish_commit(consumer).await?;
            self.start_commit()?;
            self.finish_commit(consumer).await?;
        } else {
            self.try_finish_commit(consumer);
            if due && self.committing.is_none() {
                // Reading goes on while the changelog records are delivered.
                self.start_commit()?;
            }
        }
        Ok(())
    }

    /// at_least_once: send the changed states to the changelog and set aside
    /// the input offsets they cover; [`Shell::finish_commit`] stores those
    /// offsets once the records and every earlier output are acknowledged.
    fn start_commit(&mut self) -> Result<()> {
        // Copied here; written and enqueued on a blocking thread, so that a
        // commit holds up neither the loop nor the pool (a commit of a few
        // thousand busy businesses is megabytes of JSON).
        let changed = self.take_changed();
        let producer = self.out.producer.clone();
        let topic = self.cfg.topics.changelog.clone();
        let metrics = self.metrics.clone();
        let hurry = Arc::new(AtomicBool::new(false));
        let pacer = Pacer::new(self.commit_interval, changed.len(), hurry.clone());
        let write = tokio::task::spawn_blocking(move || {
            write_changelog_records(&producer, &topic, &changed, Some(pacer))
        });
        let delivered = async move {
            let sent = write
                .await
                .map_err(|e| anyhow!("the changelog writer stopped: {e}"))??;
            changelog_delivered(sent, metrics).await
        };
        self.committing = Some(Committing {
            offsets: std::mem::take(&mut self.uncommitted),
            read_before: self.out.read_seq,
            changelog: Some(Box::pin(delivered)),
            hurry: Hurry(hurry),
        });
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Wait for the commit under way, if any, and store its input offsets.
    async fn finish_commit(&mut self, consumer: &StreamConsumer<Ctx>) -> Result<()> {
        let Some(c) = self.committing.as_mut() else {
            return Ok(());
        };
        // Waited for: the rest of its records go out without pauses.
        c.hurry.now();
        if let Some(f) = c.changelog.as_mut() {
            f.await?;
            c.changelog = None;
        }
        let read_before = c.read_before;
        while self.outputs_pending_before(read_before) {
            match self.out.inflight.next().await {
                Some(d) => self.out.delivered(d)?,
                None => break,
            }
        }
        self.try_finish_commit(consumer);
        Ok(())
    }

    /// Whether an output of a message read before `seq` is unacknowledged.
    fn outputs_pending_before(&self, seq: u64) -> bool {
        self.out
            .unacked
            .first_key_value()
            .is_some_and(|(s, _)| *s < seq)
    }

    /// Store the input offsets of the commit under way once its changelog
    /// records and the outputs of every message read before it are
    /// acknowledged (without waiting: checked again as reports arrive).
    fn try_finish_commit(&mut self, consumer: &StreamConsumer<Ctx>) {
        let ready = self
            .committing
            .as_ref()
            .is_some_and(|c| c.changelog.is_none() && !self.outputs_pending_before(c.read_before));
        if !ready {
            return;
        }
        let Some(c) = self.committing.take() else {
            return;
        };
        for ((topic, partition), offset) in c.offsets {
            if let Err(e) = consumer.store_offset(&topic, partition, offset) {
                // The partition was revoked meanwhile: its new owner starts from the last commit.
                tracing::debug!(%topic, partition, error = %e, "offset not stored");
            }
        }
        self.update_tracked();
    }

    /// exactly_once: abort the open transaction after `error` and rewind
    /// every partition it touched to its committed offset and state.
    async fn abort_and_rewind(
        &mut self,
        consumer: &StreamConsumer<Ctx>,
        error: anyhow::Error,
    ) -> Result<()> {
        tracing::warn!(error = %format!("{error:#}"), "transaction failed: aborting it and rewinding its partitions");
        let batch: HashSet<Tp> = self.uncommitted.keys().cloned().collect();
        self.out.inflight = InFlight::new();
        self.out.unacked.clear();
        self.out.batch_len = 0;
        self.uncommitted.clear();
        self.out.flags_in_txn.clear();
        self.out.in_txn = false;
        self.last_commit = Instant::now();
        let producer = self.out.producer.clone();
        tokio::task::block_in_place(|| producer.abort_transaction(TXN_TIMEOUT))
            .context("cannot abort the failed transaction (fenced by another instance with the same kafka.instance_id?)")?;
        self.metrics
            .transactions
            .with_label_values(&["aborted"])
            .inc();
        tokio::task::block_in_place(|| self.rewind(consumer, batch))
    }

    async fn commit_transaction(
        &mut self,
        consumer: &StreamConsumer<Ctx>,
    ) -> Result<Vec<(Domain, crate::types::Severity)>> {
        self.await_all().await?;
        self.write_changelog().await?;
        let mut offsets = rdkafka::TopicPartitionList::new();
        for ((topic, partition), offset) in &self.uncommitted {
            offsets.add_partition_offset(topic, *partition, rdkafka::Offset::Offset(offset + 1))?;
        }
        let group = consumer
            .group_metadata()
            .ok_or_else(|| anyhow!("the consumer has no group metadata"))?;
        let producer = self.out.producer.clone();
        tokio::task::block_in_place(|| {
            if offsets.count() > 0 {
                producer
                    .send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)
                    .context("cannot add the input offsets to the transaction")?;
            }
            producer
                .commit_transaction(TXN_TIMEOUT)
                .context("cannot commit the transaction")
        })?;
        self.uncommitted.clear();
        Ok(std::mem::take(&mut self.out.flags_in_txn))
    }

    /// After an aborted transaction: forget the batch's partitions' state,
    /// read it back from the changelog (without the aborted changes) and
    /// seek the consumer to their committed offsets.
    fn rewind(&mut self, consumer: &StreamConsumer<Ctx>, batch: HashSet<Tp>) -> Result<()> {
        let parts: Vec<Tp> = batch
            .into_iter()
            .filter(|tp| self.partitions.remove(tp).is_some())
            .collect();
        if parts.is_empty() {
            return Ok(());
        }
        let mut tpl = rdkafka::TopicPartitionList::new();
        for (topic, p) in &parts {
            tpl.add_partition(topic, *p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(30))
            .context("cannot read the committed offsets to rewind to")?;
        let assigned = consumer
            .assignment()
            .context("cannot read the consumer's assignment")?;
        for e in committed.elements() {
            if assigned.find_partition(e.topic(), e.partition()).is_none() {
                // Revoked meanwhile: its next owner starts from the committed offset.
                continue;
            }
            let to = match e.offset() {
                rdkafka::Offset::Offset(o) => rdkafka::Offset::Offset(o),
                _ if self.cfg.kafka.auto_offset_reset == "latest" => rdkafka::Offset::End,
                _ => rdkafka::Offset::Beginning,
            };
            // Not rewinding would skip the aborted batch: stop instead, and
            // let the restart resume from the committed offsets.
            consumer
                .seek(e.topic(), e.partition(), to, Duration::from_secs(10))
                .with_context(|| {
                    format!(
                        "cannot rewind {}[{}] after an aborted transaction",
                        e.topic(),
                        e.partition()
                    )
                })?;
        }
        tracing::info!(partitions = ?parts, "rewound to the committed offsets");
        self.restore(&parts)
    }

    /// Send the changed states to the changelog and wait for them.
    async fn write_changelog(&mut self) -> Result<()> {
        let sent = self.send_changelog()?;
        changelog_delivered(sent, self.metrics.clone()).await
    }

    /// Send the states changed since the last call to the changelog.
    fn send_changelog(&mut self) -> Result<Vec<DeliveryFuture>> {
        let changed = self.take_changed();
        write_changelog_records(
            &self.out.producer,
            &self.cfg.topics.changelog,
            &changed,
            None,
        )
    }

    /// Copies of the states changed since the last call, with their
    /// partition: what their changelog records are written from.
    fn take_changed(&mut self) -> Vec<Changed> {
        let mut changed = Vec::new();
        for (tp, part) in self.partitions.iter_mut() {
            let topic: Arc<str> = tp.0.as_str().into();
            for shard in part.shards.iter_mut() {
                for (domain, business_id, state) in shard.states.take_changed() {
                    changed.push(Changed {
                        topic: Arc::clone(&topic),
                        partition: tp.1,
                        domain,
                        business_id: business_id.into(),
                        state: state.clone(),
                    });
                }
            }
        }
        changed
    }
}

/// A changed business state, copied for its changelog record.
struct Changed {
    topic: Arc<str>,
    partition: i32,
    domain: Domain,
    business_id: Box<str>,
    state: crate::core::features::BusinessState,
}

/// Write changed states' changelog records and enqueue them, in order.
fn write_changelog_records<C: ClientContext + 'static>(
    producer: &FutureProducer<C>,
    changelog: &str,
    changed: &[Changed],
    mut pacer: Option<Pacer>,
) -> Result<Vec<DeliveryFuture>> {
    let mut futures = Vec::with_capacity(changed.len());
    let mut body = Vec::new();
    for c in changed {
        body.clear();
        serde_json::to_writer(
            &mut body,
            &crate::service::changelog::RecordRef {
                format_version: crate::service::changelog::FORMAT_VERSION,
                source_topic: &c.topic,
                source_partition: c.partition,
                source_offset: c.state.source_offset,
                domain: c.domain,
                business_id: &c.business_id,
                state: &c.state,
            },
        )?;
        futures.push(send(
            producer,
            changelog,
            &c.business_id,
            &body,
            Some(c.partition),
        )?);
        if let Some(p) = pacer.as_mut() {
            p.enqueued(body.len());
        }
    }
    Ok(futures)
}

impl Out<'_> {
    /// Count a worked-out batch's steps and send their outputs, in the
    /// order read; note each partition's last handled offset in `uncommitted`.
    fn apply(
        &mut self,
        msgs: &[Msg<'_>],
        worked: Worked,
        uncommitted: &mut HashMap<Tp, i64>,
    ) -> Result<()> {
        let Worked {
            steps,
            group_of,
            tps,
        } = worked;
        let mut handled: Vec<Option<i64>> = vec![None; tps.len()];
        // Each partition's topic's domain, for the consumed counts.
        let domains: Vec<Option<Domain>> = tps
            .iter()
            .map(|tp| self.cfg.topics.domain_of(&tp.0))
            .collect();
        let mut counts = BatchCounts::default();
        for (i, step) in steps.into_iter().enumerate() {
            let Some(step) = step else { continue };
            let g = group_of[i];
            if self.apply_step(&msgs[i], (&tps[g], domains[g]), step, &mut counts)? {
                handled[g] = Some(msgs[i].offset());
            }
        }
        for (tp, offset) in tps.into_iter().zip(handled) {
            if let Some(offset) = offset {
                uncommitted.insert(tp, offset);
            }
        }
        counts.publish(&self.metrics, &mut self.counters);
        Ok(())
    }

    /// Count a message's outcome and send its outputs.
    /// Whether the message was handled here (its offset may be committed).
    fn apply_step(
        &mut self,
        m: &Msg<'_>,
        (tp, topic_domain): (&Tp, Option<Domain>),
        step: Step,
        counts: &mut BatchCounts,
    ) -> Result<bool> {
        if matches!(step, Step::Skip) {
            return Ok(false);
        }
        if self.eos && !self.in_txn {
            self.producer
                .begin_transaction()
                .context("cannot begin a transaction")?;
            self.in_txn = true;
        }
        let offset = m.offset();
        // (Read only for a message with an output: most have none.)
        let timestamp_ms = || m.timestamp_ms();
        let seq = self.read_seq;
        self.read_seq += 1;
        self.summary.consumed += 1;
        counts.consumed[topic_domain.map_or(2, Domain::index)] += 1;
        match step {
            Step::Skip => {}
            Step::Rejected(rejection) => {
                self.summary.rejected += 1;
                self.metrics
                    .reviews_rejected
                    .with_label_values(&[rejection.reason.as_str()])
                    .inc();
                tracing::debug!(topic = %tp.0, partition = tp.1, offset, reason = rejection.reason.as_str(), "rejected");
                let payload = m.payload().unwrap_or_default();
                let timestamp_ms = timestamp_ms();
                let dl = DeadLetter::new(
                    &rejection,
                    &tp.0,
                    tp.1,
                    offset,
                    timestamp_ms,
                    m.key(),
                    payload,
                );
                let body = serde_json::to_vec(&dl)?;
                let key = format!("{}-{}-{}", tp.0, tp.1, offset);
                let f = send(&self.producer, &self.cfg.topics.dlq, &key, &body, None)?;
                self.track(f, seq, tp, offset, timestamp_ms, Output::DeadLetter);
            }
            Step::Duplicate => self.metrics.duplicates_skipped.inc(),
            Step::Scored(domain, outcome) => {
                counts.scored[domain.index()] += 1;
                for c in outcome.signals.iter() {
                    counts.signal(domain, c);
                }
                if let Some(p) = outcome.risk_score {
                    self.counters.risk_score[domain.index()].observe(p);
                }
                self.metrics.observe_shadow(domain, &outcome);
                if let Some(flag) = outcome.flag {
                    let out = match flag.domain {
                        Domain::Food => &self.cfg.topics.inspection_food,
                        Domain::Tourism => &self.cfg.topics.inspection_tourism,
                    };
                    let body = serde_json::to_vec(&flag)?;
                    tracing::debug!(business = %flag.business_id, severity = flag.severity.as_str(), trigger = %flag.trigger, flag_id = %flag.flag_id, "flag");
                    let f = send(&self.producer, out, &flag.business_id, &body, None)?;
                    let output = Output::Flag(flag.domain, flag.severity);
                    self.track(f, seq, tp, offset, timestamp_ms(), output);
                }
            }
        }
        // (A message with no output had its latency observed when folded.)
        self.batch_len += 1;
        Ok(true)
    }

    /// Kafka message timestamp to `now_ms`, its outputs acknowledged (one
    /// with none is observed when folded, in `fold_shard`).
    fn observe_latency(&self, timestamp_ms: Option<i64>, now_ms: i64) {
        if let Some(ts) = timestamp_ms {
            self.metrics
                .pipeline_latency
                .observe(((now_ms - ts).max(0) as f64) / 1000.0);
        }
    }

    /// Follow an output until the broker acknowledges it.
    fn track(
        &mut self,
        f: DeliveryFuture,
        seq: u64,
        tp: &Tp,
        offset: i64,
        timestamp_ms: Option<i64>,
        output: Output,
    ) {
        *self.unacked.entry(seq).or_default() += 1;
        let tp = tp.clone();
        self.inflight.push(Box::pin(async move {
            let result = match f.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _))) => Err(e.to_string()),
                Err(_) => Err("the producer was dropped before a delivery report".to_owned()),
            };
            Delivered {
                seq,
                tp,
                offset,
                timestamp_ms,
                output,
                result,
            }
        }));
    }

    /// A delivery report: a failure stops the service (at_least_once: the
    /// offset is not committed, so the message is processed again after the
    /// restart) or aborts the transaction (exactly_once).
    fn delivered(&mut self, d: Delivered) -> Result<()> {
        if let Some(n) = self.unacked.get_mut(&d.seq) {
            *n -= 1;
            if *n == 0 {
                self.unacked.remove(&d.seq);
            }
        }
        if let Err(e) = d.result {
            let what = match d.output {
                Output::Flag(..) => "flag",
                Output::DeadLetter => "dlq",
            };
            self.metrics.produce_errors.with_label_values(&[what]).inc();
            return Err(anyhow!(
                "delivery failed for {}[{}]@{}: {e}; its offset is not committed, so it will be processed again",
                d.tp.0,
                d.tp.1,
                d.offset
            ));
        }
        if let Output::Flag(domain, severity) = d.output {
            if self.eos {
                // Visible to readers when the transaction commits.
                self.flags_in_txn.push((domain, severity));
            } else {
                self.count_flags(&[(domain, severity)]);
            }
        }
        self.observe_latency(d.timestamp_ms, chrono::Utc::now().timestamp_millis());
        Ok(())
    }

    fn count_flags(&mut self, flags: &[(Domain, crate::types::Severity)]) {
        for (d, s) in flags {
            self.summary.flags += 1;
            self.metrics
                .flags_emitted
                .with_label_values(&[d.as_str(), s.as_str()])
                .inc();
        }
    }
}

/// A commit under way (at_least_once): changelog records sent, input
/// offsets waiting for them.
struct Committing {
    offsets: HashMap<Tp, i64>,
    /// Outputs of messages read before this sequence number must be
    /// acknowledged before the offsets are stored.
    read_before: u64,
    /// Until the records are acknowledged.
    changelog: Option<futures::future::BoxFuture<'static, Result<()>>>,
    /// Set: the writer stops pausing between slices (see [`Pacer`]).
    hurry: Hurry,
}

/// Tells a changelog writer to stop pausing; also when dropped (the commit
/// was given up with the loop), so no writer sleeps for nobody.
struct Hurry(Arc<AtomicBool>);

impl Hurry {
    fn now(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Drop for Hurry {
    fn drop(&mut self) {
        self.now();
    }
}

/// Spreads a commit's changelog records over time: a commit of thousands of
/// changed businesses is megabytes of JSON, and enqueued at once it reached
/// the broker as one burst, which held up the input's fetches (on Tansu at
/// 140k reviews/s, the p99 latency of every second's commit). After each
/// [`Pacer::SLICE_BYTES`] of records the writer pauses, so that the whole
/// commit (its size estimated from the records so far) is spread over half
/// of `limits.commit_interval_ms`, and no pause is longer than a fiftieth of
/// it (a commit of a few slices goes out within a few pauses). The commit
/// cadence and the changelog's throughput stay what they were. Hurried,
/// the writer stops pausing: the rest of a commit that is waited for (a
/// revocation, shutdown) goes out at once.
#[derive(Debug)]
struct Pacer {
    /// What all pauses of a commit add up to at most (half the interval).
    spread: Duration,
    /// Longest pause (a fiftieth of the interval).
    longest: Duration,
    /// Pauses taken (or due) so far.
    paused: Duration,
    /// Records in the commit, and records and bytes enqueued so far.
    records: usize,
    records_sent: usize,
    bytes_sent: usize,
    since_pause: usize,
    hurry: Arc<AtomicBool>,
}

impl Pacer {
    const SLICE_BYTES: usize = 256 * 1024;
    /// How often a pause looks whether it was hurried.
    const TICK: Duration = Duration::from_millis(2);

    fn new(commit_interval: Duration, records: usize, hurry: Arc<AtomicBool>) -> Pacer {
        Pacer {
            spread: commit_interval / 2,
            longest: commit_interval / 50,
            paused: Duration::ZERO,
            records,
            records_sent: 0,
            bytes_sent: 0,
            since_pause: 0,
            hurry,
        }
    }

    fn hurried(&self) -> bool {
        self.hurry.load(Ordering::Relaxed)
    }

    /// One more record of `bytes` was enqueued: the pause due now, if any.
    fn pause_after(&mut self, bytes: usize) -> Option<Duration> {
        self.records_sent += 1;
        self.bytes_sent += bytes;
        self.since_pause += bytes;
        if self.since_pause < Self::SLICE_BYTES || self.hurried() {
            return None;
        }
        self.since_pause = 0;
        // Slices in the whole commit, at the mean record size so far; the
        // pauses never add up to more than `spread` (the estimate can be
        // low when the big records come last).
        let total = self.bytes_sent as f64 / self.records_sent as f64 * self.records.max(1) as f64;
        let slices = (total / Self::SLICE_BYTES as f64).max(1.0);
        let pause = self
            .spread
            .div_f64(slices)
            .min(self.longest)
            .min(self.spread.saturating_sub(self.paused));
        self.paused += pause;
        (!pause.is_zero()).then_some(pause)
    }

    /// One more record of `bytes` was enqueued: pause if one is due, until
    /// it is over or the commit is hurried.
    fn enqueued(&mut self, bytes: usize) {
        let Some(pause) = self.pause_after(bytes) else {
            return;
        };
        let until = Instant::now() + pause;
        while !self.hurried() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Self::TICK));
        }
    }
}

/// Wait for changelog records' delivery reports.
async fn changelog_delivered(sent: Vec<DeliveryFuture>, metrics: Metrics) -> Result<()> {
    for f in sent {
        match f.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => {
                metrics
                    .produce_errors
                    .with_label_values(&["changelog"])
                    .inc();
                return Err(anyhow!(
                    "changelog delivery failed: {e}; input offsets are not committed"
                ));
            }
            Err(_) => return Err(anyhow!("the producer was dropped before a delivery report")),
        }
    }
    Ok(())
}

/// Enqueue one record; when librdkafka's queue is full, let it deliver first.
pub fn send<C: ClientContext + 'static>(
    producer: &FutureProducer<C>,
    topic: &str,
    key: &str,
    body: &[u8],
    partition: Option<i32>,
) -> Result<DeliveryFuture> {
    let mut record = FutureRecord::to(topic).key(key).payload(body);
    if let Some(p) = partition {
        record = record.partition(p);
    }
    loop {
        match producer.send_result(record) {
            Ok(f) => return Ok(f),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                // Backpressure: let librdkafka deliver before enqueuing more.
                producer.poll(Duration::from_millis(50));
                record = r;
            }
            Err((e, _)) => return Err(anyhow!("cannot enqueue to {topic}: {e}")),
        }
    }
}

/// The changelog needs a partition for every input partition.
fn check_changelog_partitions(consumer: &StreamConsumer<Ctx>, cfg: &Config) -> Result<()> {
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .context("cannot read the cluster's metadata (check kafka.brokers)")?;
    let count = |name: &str| {
        md.topics()
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.partitions().len())
    };
    let t = &cfg.topics;
    let need = [&t.reviews_food, &t.reviews_tourism]
        .iter()
        .filter_map(|n| count(n))
        .max()
        .unwrap_or(0);
    match count(&t.changelog) {
        Some(have) if have >= need => Ok(()),
        Some(have) => Err(anyhow!(
            "topic {} has {have} partitions but the review topics have up to {need}: the changelog needs at least as many (topics.changelog)",
            t.changelog
        )),
        None => Err(anyhow!(
            "the changelog topic {} does not exist: create it (compacted, as many partitions as the review topics) or run with --create-topics N",
            t.changelog
        )),
    }
}

/// Create the topics the service uses when they are missing (best effort:
/// a cluster that forbids it is told about in the log).
pub async fn ensure_topics(cfg: &Config, partitions: i32) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = cfg
        .kafka_client()
        .create()
        .context("cannot create the Kafka admin client")?;
    let t = &cfg.topics;
    let names = t.all();
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| {
            let nt = NewTopic::new(n, partitions, TopicReplication::Fixed(1));
            if *n == t.changelog {
                nt.set("cleanup.policy", "compact")
            } else {
                nt
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin
        .create_topics(new.iter(), &opts)
        .await
        .context("cannot create topics")?
    {
        match r {
            Ok(name) => tracing::info!(topic = %name, partitions, "topic created"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "topic exists")
            }
            Err((name, code)) => {
                tracing::warn!(topic = %name, error = %code, "cannot create topic")
            }
        }
    }
    Ok(())
}

/// The flag a consumer of an inspection topic reads back.
pub fn parse_flag(bytes: &[u8]) -> Result<Flag> {
    serde_json::from_slice(bytes).context("not a flag message")
}

/// Produce a simulated world's reviews to the review topics (key =
/// business_id), at `rate` reviews per second (0: as fast as acknowledged).
/// With `forever`, the next world (next seed, later dates) follows.
pub async fn produce_simulation(
    brokers: &str,
    topics: &crate::service::config::TopicsConfig,
    mut sim: crate::offline::simulate::SimConfig,
    rate: f64,
    forever: bool,
) -> Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "10")
        .create()
        .context("cannot create the Kafka producer (check --brokers)")?;
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        let world = crate::offline::simulate::generate(&sim);
        let mut inflight = std::collections::VecDeque::new();
        for r in &world.reviews {
            let topic = match r.domain {
                Domain::Food => &topics.reviews_food,
                Domain::Tourism => &topics.reviews_tourism,
            };
            let body = serde_json::to_vec(r)?;
            let mut rec = FutureRecord::to(topic).key(&r.business_id).payload(&body);
            loop {
                match producer.send_result(rec) {
                    Ok(f) => {
                        inflight.push_back(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        rec = back;
                        if let Some(f) = inflight.pop_front() {
                            wait_delivered(f).await?;
                        }
                    }
                    Err((e, _)) => return Err(anyhow!("cannot produce to {topic}: {e}")),
                }
            }
            while inflight.len() > 10_000 {
                if let Some(f) = inflight.pop_front() {
                    wait_delivered(f).await?;
                }
            }
            sent += 1;
            if rate > 0.0 {
                let due = started + Duration::from_secs_f64(sent as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
        }
        for f in inflight {
            wait_delivered(f).await?;
        }
        tracing::info!(
            seed = sim.seed,
            reviews = world.reviews.len(),
            total = sent,
            "simulated world produced"
        );
        if !forever {
            return Ok(());
        }
        sim.seed += 1;
        sim.start += i64::from(sim.days) * crate::core::features::DAY;
    }
}

async fn wait_delivered(f: DeliveryFuture) -> Result<()> {
    f.await
        .map_err(|_| anyhow!("the producer was dropped before a delivery report"))?
        .map_err(|(e, _)| anyhow!("delivery failed: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The changelog reader holds a fetch no longer than the consumer, as
    /// configured (librdkafka's own default is 500 ms, which a restore of
    /// each partition waited out on brokers that hold every fetch).
    #[test]
    fn a_restore_fetches_with_the_consumers_wait() {
        for wait in [10u32, 250] {
            let mut cfg = Config::default();
            cfg.kafka.fetch_wait_max_ms = wait;
            let wait = wait.to_string();
            for c in [restore_client_config(&cfg), consumer_config(&cfg)] {
                assert_eq!(c.get("fetch.wait.max.ms"), Some(wait.as_str()));
            }
        }
    }

    /// The pauses a writer takes over `records` records of `bytes` each.
    fn pauses(interval_ms: u64, records: usize, bytes: usize) -> Vec<Duration> {
        let mut p = Pacer::new(Duration::from_millis(interval_ms), records, Arc::default());
        (0..records).filter_map(|_| p.pause_after(bytes)).collect()
    }

    #[test]
    fn a_commit_is_spread_over_half_the_commit_interval() {
        // 4,000 businesses of 1,800 bytes (7.2 MB, what the stream bench's
        // commits hold): 27 slices, a pause after each, 0.5 s in all.
        let p = pauses(1000, 4000, 1800);
        assert_eq!(p.len(), 27);
        let total: Duration = p.iter().sum();
        assert!(
            total > Duration::from_millis(450) && total <= Duration::from_millis(500),
            "{total:?}"
        );
        // 100 times that: as many pauses, each as much shorter; the commit
        // still takes half the interval, not 100 times as long.
        let p = pauses(1000, 400_000, 1800);
        let total: Duration = p.iter().sum();
        assert!(
            total > Duration::from_millis(450) && total <= Duration::from_millis(500),
            "{total:?}"
        );
        // A commit of a slice and a half: one pause, no longer than 1/50.
        assert_eq!(pauses(1000, 200, 2000), vec![Duration::from_millis(20)]);
        // Scales with the interval.
        let total: Duration = pauses(5000, 4000, 1800).iter().sum();
        assert!(total > Duration::from_millis(2250) && total <= Duration::from_millis(2500));
    }

    #[test]
    fn a_small_commit_goes_out_without_a_pause() {
        // 2,000 records of 100 bytes: 195 KiB, under a slice.
        assert!(pauses(1000, 2000, 100).is_empty());
    }

    #[test]
    fn a_hurried_writer_stops_pausing() {
        let hurry = Arc::new(AtomicBool::new(false));
        let mut p = Pacer::new(Duration::from_millis(1000), 4000, hurry.clone());
        let before: Vec<_> = (0..1000).filter_map(|_| p.pause_after(1800)).collect();
        assert!(!before.is_empty());
        // The commit is waited for (or was given up): its guard hurries it.
        drop(Hurry(hurry));
        assert!((0..3000).all(|_| p.pause_after(1800).is_none()));
    }

    #[test]
    fn the_pauses_never_add_up_to_more_than_half_the_interval() {
        // Small records first, then big ones: the size estimate is low for
        // most of the commit, so each pause is too long (they would add up
        // to 1.42 s); their sum is capped at half the interval.
        let mut p = Pacer::new(Duration::from_millis(1000), 20_000, Arc::default());
        let total: Duration = (0..20_000)
            .filter_map(|i| p.pause_after(if i < 10_000 { 100 } else { 20_000 }))
            .sum();
        assert_eq!(total, Duration::from_millis(500));
    }

    #[test]
    fn a_pause_ends_early_when_the_commit_is_hurried() {
        let hurry = Arc::new(AtomicBool::new(false));
        // A 10-minute interval: pauses of 10.9 s.
        let mut p = Pacer::new(Duration::from_secs(600), 4000, hurry.clone());
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            Hurry(hurry).now();
        });
        let start = Instant::now();
        // The first slice's pause is due after 146 records of 1,800 bytes.
        for _ in 0..146 {
            p.enqueued(1800);
        }
        let took = start.elapsed();
        waker.join().unwrap();
        assert!(p.hurried());
        assert!(
            took < Duration::from_secs(5),
            "a 10.9 s pause should end when hurried (after 50 ms); it took {took:?}"
        );
    }
}
