//! The loop's state and its steps: rebalances and restore, pipelining
//! batches, commits (at_least_once and exactly_once), rewinds after an
//! aborted transaction.

use crate::core::scorer::Scorer;
use crate::service::changelog::write::{
    Changed, Hurry, Pacer, changelog_delivered, write_changelog_records,
};
use crate::service::config::Config;
use crate::service::http::Health;
use crate::service::kafka::clients::TXN_TIMEOUT;
use crate::service::kafka::commit::Tp;
use crate::service::kafka::context::{Ctx, RebalanceEvent};
use crate::service::kafka::fetch_queue::Msg;
use crate::service::kafka::gather::gather;
use crate::service::kafka::out::{Delivered, InFlight, Out};
use crate::service::kafka::partitions::PartitionState;
use crate::service::kafka::run::PIPELINE_ROUND;
use crate::service::kafka::work::{Worked, work_out};
use crate::service::metrics::Metrics;
use crate::types::Domain;
use anyhow::{Context as _, Result, anyhow};
use futures::{FutureExt as _, StreamExt as _};
use rdkafka::consumer::{Consumer, MessageStream, StreamConsumer};
use rdkafka::producer::{DeliveryFuture, Producer};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct Shell<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) scorer: Scorer,
    pub(crate) metrics: Metrics,
    pub(crate) restorer: crate::service::changelog::Restorer,
    pub(crate) partitions: HashMap<Tp, PartitionState>,
    pub(crate) suspended: HashMap<Tp, PartitionState>,
    /// Sending outputs and following them (apart from the state, so a batch's
    /// outputs are sent while the next batch is worked out on the pool).
    pub(crate) out: Out<'a>,
    /// at_least_once: the changelog records of the commit under way, until
    /// they are acknowledged (what else the commit waits for is in
    /// `out.commits`).
    pub(crate) changelog: Option<ChangelogWrite>,
}

impl Shell<'_> {
    pub(crate) async fn apply_rebalances(
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
    pub(crate) fn restore(&mut self, parts: &[Tp]) -> Result<()> {
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

    pub(crate) fn update_tracked(&self) {
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
    pub(crate) async fn end_round(
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
    pub(crate) fn overlap<'c>(
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
            ..
        } = self;
        let mut worked = None;
        let mut applied = Ok(());
        rayon::in_place_scope(|s| {
            s.spawn(|_| worked = Some(work_out(partitions, scorer, metrics, cfg, batch)));
            if let Some((msgs, w)) = prev {
                applied = out.apply(&msgs, w);
            }
            meanwhile();
        });
        applied?;
        worked.ok_or_else(|| anyhow!("a batch was not worked out"))
    }

    /// Whether `limits.commit_interval_ms` has passed since the last commit.
    /// (Not while a commit is under way: the next one waits for it.)
    pub(crate) fn commit_due(&self) -> bool {
        self.out.commits.due(Instant::now())
    }

    /// Handle `batch` and the batches read behind it: each is worked out on
    /// the pool while this thread sends the outputs of the one before and
    /// reads the next. Returns, with every batch handled so far applied, when
    /// nothing more is ready, or before a rebalance, a commit, shutdown
    /// (`stop`) or after [`PIPELINE_ROUND`], with what it read and did not
    /// handle. exactly_once and `limits.batch_wait_ms` > 0 handle one batch.
    pub(crate) async fn pipeline<'c>(
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
                self.out.apply(&batch, worked)?;
                return Ok(next);
            }
            prev = Some((batch, worked));
            self.progress_outputs().await?;
            self.try_finish_commit(consumer);
            batch = next;
        }
    }

    pub(crate) async fn on_delivered(
        &mut self,
        consumer: &StreamConsumer<Ctx>,
        d: Delivered,
    ) -> Result<()> {
        match self.out.delivered(d) {
            Err(e) if self.out.eos && self.out.in_txn => self.abort_and_rewind(consumer, e).await,
            r => r,
        }
    }

    /// Take the delivery reports that have arrived, then wait for the
    /// oldest outputs until none is older than a batch of reads: the
    /// service reads on while its outputs are being delivered, but stops
    /// when the broker stops acknowledging them.
    pub(crate) async fn progress_outputs(&mut self) -> Result<()> {
        while let Some(Some(d)) = self.out.inflight.next().now_or_never() {
            self.out.delivered(d)?;
        }
        let window = 10_000u64;
        while self.out.commits.behind(window) {
            match self.out.inflight.next().await {
                Some(d) => self.out.delivered(d)?,
                None => break,
            }
        }
        Ok(())
    }

    /// Wait for every output sent so far.
    pub(crate) async fn await_all(&mut self) -> Result<()> {
        while let Some(d) = self.out.inflight.next().await {
            self.out.delivered(d)?;
        }
        Ok(())
    }

    /// When uncommitted changes are due for a commit; none while a commit
    /// is under way (the branch that sees its changelog records acknowledged
    /// finishes it, and the next is due once it has).
    pub(crate) fn commit_due_at(&self) -> Option<Instant> {
        self.out.commits.due_at(self.out.in_txn)
    }

    /// End of a batch: take the delivery reports that have arrived (and wait
    /// for outputs older than a batch). Then, when `limits.commit_interval_ms`
    /// has passed since the last commit: exactly_once, await every output,
    /// write the changed states to the changelog and commit it all as one
    /// transaction; at_least_once, send the changed states to the changelog
    /// and read on, storing the input offsets they cover once they and every
    /// earlier output are acknowledged (`commit` does all of it before
    /// returning).
    pub(crate) async fn flush(
        &mut self,
        consumer: &StreamConsumer<Ctx>,
        commit: bool,
    ) -> Result<()> {
        self.out.batch_len = 0;
        let due = commit || self.out.commits.interval_passed(Instant::now());
        if self.out.eos {
            if !self.out.in_txn {
                self.out.commits.restart_interval(Instant::now());
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
                    self.out.commits.restart_interval(Instant::now());
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
            if due && !self.out.commits.committing() {
                // Reading goes on while the changelog records are delivered.
                self.start_commit()?;
            }
        }
        Ok(())
    }

    /// at_least_once: send the changed states to the changelog and set aside
    /// the input offsets they cover; [`Shell::finish_commit`] stores those
    /// offsets once the records and every earlier output are acknowledged.
    pub(crate) fn start_commit(&mut self) -> Result<()> {
        // Copied here; written and enqueued on a blocking thread, so that a
        // commit holds up neither the loop nor the pool (a commit of a few
        // thousand busy businesses is megabytes of JSON).
        let changed = self.take_changed();
        let producer = self.out.producer.clone();
        let topic = self.cfg.topics.changelog.clone();
        let metrics = self.metrics.clone();
        let hurry = Arc::new(AtomicBool::new(false));
        let pacer = Pacer::new(self.out.commits.interval(), changed.len(), hurry.clone());
        let write = tokio::task::spawn_blocking(move || {
            write_changelog_records(&producer, &topic, &changed, Some(pacer))
        });
        let delivered = async move {
            let sent = write
                .await
                .map_err(|e| anyhow!("the changelog writer stopped: {e}"))??;
            changelog_delivered(sent, metrics).await
        };
        self.changelog = Some(ChangelogWrite {
            delivered: Box::pin(delivered),
            hurry: Hurry(hurry),
        });
        self.out.commits.start(Instant::now());
        Ok(())
    }

    /// Wait for the commit under way, if any, and store its input offsets.
    pub(crate) async fn finish_commit(&mut self, consumer: &StreamConsumer<Ctx>) -> Result<()> {
        if let Some(w) = self.changelog.as_mut() {
            // Waited for: the rest of its records go out without pauses.
            w.hurry.now();
            (&mut w.delivered).await?;
            self.changelog_acked();
        }
        let Some(read_before) = self.out.commits.waits_before() else {
            return Ok(());
        };
        while self.out.commits.outputs_pending_before(read_before) {
            match self.out.inflight.next().await {
                Some(d) => self.out.delivered(d)?,
                None => break,
            }
        }
        self.try_finish_commit(consumer);
        Ok(())
    }

    /// The changelog records of the commit under way are acknowledged.
    pub(crate) fn changelog_acked(&mut self) {
        self.changelog = None;
        self.out.commits.changelog_acked();
    }

    /// Store the input offsets of the commit under way once its changelog
    /// records and the outputs of every message read before it are
    /// acknowledged (without waiting: checked again as reports arrive).
    pub(crate) fn try_finish_commit(&mut self, consumer: &StreamConsumer<Ctx>) {
        let Some(offsets) = self.out.commits.take_ready() else {
            return;
        };
        for ((topic, partition), offset) in offsets {
            if let Err(e) = consumer.store_offset(&topic, partition, offset) {
                // The partition was revoked meanwhile: its new owner starts from the last commit.
                tracing::debug!(%topic, partition, error = %e, "offset not stored");
            }
        }
        self.update_tracked();
    }

    /// exactly_once: abort the open transaction after `error` and rewind
    /// every partition it touched to its committed offset and state.
    pub(crate) async fn abort_and_rewind(
        &mut self,
        consumer: &StreamConsumer<Ctx>,
        error: anyhow::Error,
    ) -> Result<()> {
        tracing::warn!(error = %format!("{error:#}"), "transaction failed: aborting it and rewinding its partitions");
        let batch: HashSet<Tp> = self.out.commits.abort(Instant::now()).into_iter().collect();
        self.out.inflight = InFlight::new();
        self.out.batch_len = 0;
        self.out.flags_in_txn.clear();
        self.out.in_txn = false;
        let producer = self.out.producer.clone();
        tokio::task::block_in_place(|| producer.abort_transaction(TXN_TIMEOUT))
            .context("cannot abort the failed transaction (fenced by another instance with the same kafka.instance_id?)")?;
        self.metrics
            .transactions
            .with_label_values(&["aborted"])
            .inc();
        tokio::task::block_in_place(|| self.rewind(consumer, batch))
    }

    pub(crate) async fn commit_transaction(
        &mut self,
        consumer: &StreamConsumer<Ctx>,
    ) -> Result<Vec<(Domain, crate::types::Severity)>> {
        self.await_all().await?;
        self.write_changelog().await?;
        let mut offsets = rdkafka::TopicPartitionList::new();
        for ((topic, partition), offset) in self.out.commits.uncommitted() {
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
        self.out.commits.take_uncommitted();
        Ok(std::mem::take(&mut self.out.flags_in_txn))
    }

    /// After an aborted transaction: forget the batch's partitions' state,
    /// read it back from the changelog (without the aborted changes) and
    /// seek the consumer to their committed offsets.
    pub(crate) fn rewind(
        &mut self,
        consumer: &StreamConsumer<Ctx>,
        batch: HashSet<Tp>,
    ) -> Result<()> {
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
    pub(crate) async fn write_changelog(&mut self) -> Result<()> {
        let sent = self.send_changelog()?;
        changelog_delivered(sent, self.metrics.clone()).await
    }

    /// Send the states changed since the last call to the changelog.
    pub(crate) fn send_changelog(&mut self) -> Result<Vec<DeliveryFuture>> {
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
    pub(crate) fn take_changed(&mut self) -> Vec<Changed> {
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

/// The changelog records of a commit under way (at_least_once), until the
/// broker acknowledges them.
pub(crate) struct ChangelogWrite {
    pub(crate) delivered: futures::future::BoxFuture<'static, Result<()>>,
    /// Set: the writer stops pausing between slices (see [`Pacer`]).
    pub(crate) hurry: Hurry,
}
