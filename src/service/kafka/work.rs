//! A batch worked out against its partitions' state: grouped by partition,
//! then decoded, extracted and folded by [`crate::core::batch`] on every core.
//! Sends nothing.

use crate::core::batch::{self, BatchOptions, Decoded, Folded, Input, Prepared};
use crate::core::review::{DecodeOptions, Rejection};
use crate::core::scorer::{Outcome, Scorer};
use crate::service::config::Config;
use crate::service::kafka::commit::Tp;
use crate::service::kafka::fetch_queue::Msg;
use crate::service::kafka::partitions::{PartitionState, SHARDS, Shard};
use crate::service::metrics::Metrics;
use crate::types::Domain;
use rdkafka::types::RDKafkaTopic;
use std::collections::HashMap;

/// What became of one message, worked out beside its partition's state.
// A batch's steps live in one Vec for a moment: boxing the large variant
// would allocate once per review instead.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step {
    /// Not a partition assigned here, or read again after a rebalance: left
    /// alone (its offset is not stored, so its owner reads it).
    Skip,
    Rejected(Rejection),
    /// The restored state holds it already.
    Duplicate,
    Scored(Domain, Outcome),
}

/// A batch's messages, as the batch fold reads them.
impl Input for [Msg<'_>] {
    fn bytes(&self, i: usize) -> &[u8] {
        self[i].payload().unwrap_or_default()
    }

    fn position(&self, i: usize) -> i64 {
        self[i].offset()
    }

    fn timestamp_ms(&self, i: usize) -> Option<i64> {
        self[i].timestamp_ms()
    }
}

/// How the stream prepares and folds: a partition's businesses over
/// [`SHARDS`] shards, timed (the processing-time metric), positions being
/// the partition's offsets.
const STREAM: BatchOptions = BatchOptions {
    shards: SHARDS,
    timed: true,
    offsets: true,
};

/// Fold a shard's reviews of a batch into its state, in offset order, and
/// observe their processing time, and the latency of those with nothing to
/// deliver. A flag is stamped with the wall clock here (`emitted_at`).
fn fold_shard(
    scorer: &Scorer,
    metrics: &Metrics,
    shard: &mut Shard,
    mine: &[&Prepared],
) -> Vec<(usize, Step)> {
    let processing = metrics.review_processing.local();
    let latency = metrics.pipeline_latency.local();
    let batch::ShardFold { results, times } =
        batch::fold_shard(scorer, &mut shard.states, mine, STREAM);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::with_capacity(mine.len());
    for (k, (p, (at, folded))) in mine.iter().zip(results).enumerate() {
        // (`times` is empty unless the fold was timed: a step is never
        // dropped for want of one.)
        if let Some(took) = times.get(k) {
            processing.observe(took.as_secs_f64());
        }
        let step = match folded {
            Folded::Duplicate => Step::Duplicate,
            Folded::Scored(mut outcome) => {
                if let Some(flag) = outcome.flag.as_mut() {
                    flag.emitted_at =
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                }
                Step::Scored(p.review.domain, outcome)
            }
        };
        let outputs = matches!(&step, Step::Scored(_, o) if o.flag.is_some());
        if let (false, Some(ts)) = (outputs, p.timestamp_ms) {
            // Done with it: nothing to deliver.
            latency.observe(((now_ms - ts).max(0) as f64) / 1000.0);
        }
        out.push((at, step));
    }
    processing.flush();
    latency.flush();
    out
}

/// A batch worked out against its partitions' state, its outputs not yet sent.
pub(crate) struct Worked {
    /// Per message, in the order read: what became of it, or `None` for a
    /// partition not assigned here.
    pub(crate) steps: Vec<Option<Step>>,
    /// Per message: its partition, an index into `tps`.
    pub(crate) group_of: Vec<usize>,
    pub(crate) tps: Vec<Tp>,
}

/// Work a batch out against its partitions' state: decode and extract on
/// every core, then fold each partition's businesses in `SHARDS` shards in
/// parallel (each in offset order, as one thread would). Sends nothing.
pub(crate) fn work_out(
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
        .map(|run| batch::prepare_run(scorer, msgs, run, STREAM))
        .collect();
    // ... put each review in its partition's shard (by reference: this is
    // serial, and a decoded review is a few hundred bytes), ...
    let mut mine: Vec<Vec<&Prepared>> = vec![Vec::new(); groups.len() * SHARDS];
    for d in decoded.iter().flatten() {
        match d {
            // (Refusals are rare: copied.)
            Err((i, rejection)) => {
                if batch::is_internal(rejection) {
                    tracing::error!(
                        partition = msgs[*i].partition(),
                        offset = msgs[*i].offset(),
                        "reading a message panicked (a bug): it goes to the dead-letter topic"
                    );
                }
                steps.push((*i, Step::Rejected(rejection.clone())));
            }
            Ok(p) => mine[group_of[p.at] * SHARDS + p.shard].push(p),
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
