//! The follower of `inspection.outcomes`: every instance reads the whole
//! topic (all partitions, from the start, under no consumer group of its
//! own making) into the scorer's [`OutcomeBook`], because the outcomes of a
//! business need not share a partition number with its reviews. Before the
//! service reads a review it has caught up with the topic as it stood at
//! start, so a restarted instance decides as the one before it did; then it
//! follows the topic as outcomes arrive. A message that breaks the outcome
//! contract is dead-lettered with its reason, and the follower goes on.

use crate::core::outcome::{self, OutcomeBook};
use crate::service::config::Config;
use crate::service::kafka::dead_letter::DeadLetter;
use crate::service::metrics::Metrics;
use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Longest a start waits to catch up with the outcomes topic.
pub(crate) const CATCH_UP: Duration = Duration::from_secs(30);

pub(crate) struct Follower {
    consumer: StreamConsumer,
    dlq: FutureProducer,
    book: Arc<OutcomeBook>,
    metrics: Metrics,
    topic: String,
    dlq_topic: String,
}

impl Follower {
    /// Assign every partition of the outcomes topic from its start. `None`
    /// (logged) when the topic does not exist: the service then runs on
    /// reviews alone.
    pub(crate) fn start(
        cfg: &Config,
        book: Arc<OutcomeBook>,
        metrics: Metrics,
    ) -> Result<Option<Follower>> {
        let topic = cfg.topics.outcomes.clone();
        let consumer: StreamConsumer = cfg
            .kafka_client()
            .set("group.id", format!("{}-outcomes", cfg.kafka.group_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", cfg.kafka.fetch_wait_max_ms.to_string())
            .create()
            .context("cannot create the inspection-outcomes consumer (check kafka.brokers)")?;
        let md = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(30))
            .context("cannot read the outcomes topic's metadata (check kafka.brokers)")?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            tracing::warn!(topic = %topic, "the inspection-outcomes topic does not exist: scoring without inspection history (create it, or run with --create-topics N)");
            return Ok(None);
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(&topic, *p, Offset::Beginning)
                .context("cannot assign the outcomes topic")?;
        }
        consumer
            .assign(&tpl)
            .context("cannot assign the outcomes topic")?;
        let dlq: FutureProducer = cfg
            .kafka_client()
            .set("enable.idempotence", "true")
            .create()
            .context("cannot create the outcomes dead-letter producer")?;
        Ok(Some(Follower {
            consumer,
            dlq,
            book,
            metrics,
            topic,
            dlq_topic: cfg.topics.dlq.clone(),
        }))
    }

    /// Read until every partition has reached the end it had when called
    /// (or [`CATCH_UP`] passed, logged).
    pub(crate) async fn catch_up(&self) -> Result<usize> {
        let started = Instant::now();
        // Per partition, the next offset to read and the end to reach.
        let mut todo: Vec<(i32, i64, i64)> = Vec::new();
        let md = self
            .consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
            .context("cannot read the outcomes topic's metadata")?;
        for t in md.topics().iter().filter(|t| t.name() == self.topic) {
            for p in t.partitions() {
                let (low, high) = self
                    .consumer
                    .fetch_watermarks(&self.topic, p.id(), Duration::from_secs(10))
                    .context("cannot read the outcomes topic's end offsets")?;
                todo.push((p.id(), low, high));
            }
        }
        let mut read = 0;
        let mut stream = self.consumer.stream();
        while todo.iter().any(|(_, next, high)| next < high) {
            let left = CATCH_UP.saturating_sub(started.elapsed());
            if left.is_zero() {
                tracing::warn!(
                    read,
                    "the inspection-outcomes topic was not read to its end in time: going on, the rest follows"
                );
                break;
            }
            match tokio::time::timeout(left.min(Duration::from_millis(500)), stream.next()).await {
                Ok(Some(Ok(m))) => {
                    if let Some(p) = todo.iter_mut().find(|(p, _, _)| *p == m.partition()) {
                        p.1 = p.1.max(m.offset() + 1);
                    }
                    self.take(&m).await;
                    read += 1;
                }
                Ok(Some(Err(e))) => tracing::warn!(error = %e, "outcomes consumer error"),
                Ok(None) | Err(_) => {}
            }
        }
        tracing::info!(
            read,
            businesses = self.book.len(),
            "inspection outcomes caught up"
        );
        Ok(read)
    }

    /// Follow the topic until `shutdown` turns true.
    pub(crate) async fn follow(self, mut shutdown: watch::Receiver<bool>) {
        let mut stream = self.consumer.stream();
        loop {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
                m = stream.next() => match m {
                    Some(Ok(m)) => self.take(&m).await,
                    Some(Err(e)) => tracing::warn!(error = %e, "outcomes consumer error"),
                    None => return,
                },
            }
        }
    }

    async fn take(&self, m: &rdkafka::message::BorrowedMessage<'_>) {
        let payload = m.payload().unwrap_or_default();
        match outcome::decode(payload) {
            Ok(o) => {
                let new = self
                    .book
                    .add(o.domain, &o.business_id, o.inspected_at, o.violation);
                self.metrics
                    .outcomes
                    .with_label_values(&[if new { "new" } else { "duplicate" }])
                    .inc();
            }
            Err(rejection) => {
                self.metrics.outcomes.with_label_values(&["refused"]).inc();
                tracing::warn!(
                    reason = rejection.reason.as_str(),
                    partition = m.partition(),
                    offset = m.offset(),
                    "inspection outcome refused: dead-lettered"
                );
                let dl = DeadLetter::new(
                    &rejection,
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    m.timestamp().to_millis(),
                    m.key(),
                    payload,
                );
                match serde_json::to_vec(&dl) {
                    Ok(bytes) => {
                        let key = m.key().unwrap_or_default();
                        let sent = self
                            .dlq
                            .send(
                                FutureRecord::to(&self.dlq_topic).payload(&bytes).key(key),
                                Duration::from_secs(30),
                            )
                            .await;
                        if let Err((e, _)) = sent {
                            tracing::error!(error = %e, "cannot dead-letter a refused inspection outcome");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot encode a dead letter"),
                }
            }
        }
    }
}
