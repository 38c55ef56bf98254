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
//!
//! Where things are: [`run`] (the loop), `shell` (its state and steps:
//! rebalance, restore, pipelining, commits, rewinds), `commit` (the commit
//! bookkeeping, pure), `work` (a batch against its partitions' state, through
//! [`crate::core::batch`]), `out` (sending outputs, following deliveries),
//! `gather` (reading a batch), `partitions`, `context` (client callbacks and
//! health), `clients` (client configurations), `dead_letter`,
//! `admin` (topics), `fetch_queue` (librdkafka's queue, read in batches),
//! `outcomes` (the follower of `inspection.outcomes`: every instance reads it
//! whole into the scorer's outcome book, caught up before the first review).

mod admin;
mod clients;
mod commit;
mod context;
mod dead_letter;
pub(crate) mod fetch_queue;
mod gather;
mod out;
mod outcomes;
mod partitions;

mod run;
mod shell;
mod work;

pub use admin::ensure_topics;
pub use clients::{consumer_config, producer_config};
pub use dead_letter::{DeadLetter, MAX_DEAD_LETTER_PAYLOAD};
pub use out::RunSummary;

pub use run::run;
