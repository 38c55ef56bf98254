//! Client contexts: librdkafka's callbacks turned into rebalance events for
//! the loop, and into health and lag figures.

use super::commit::Tp;
use crate::service::http::Health;
use crate::service::kafka::fetch_queue::FetchQueue;
use crate::service::metrics::Metrics;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub(crate) enum RebalanceEvent {
    Revoke(Vec<Tp>),
    Assign(Vec<Tp>),
}

/// Consumer context: turns librdkafka callbacks into events for the loop and
/// into health and lag figures.
pub struct Ctx {
    pub(crate) events: Mutex<Vec<RebalanceEvent>>,
    /// Whether `events` holds any (read for every message, without the lock).
    pub(crate) pending: AtomicBool,
    pub(crate) health: Arc<Health>,
    pub(crate) metrics: Metrics,
    /// The queue the assigned partitions' messages are read from, a batch
    /// at a time.
    pub(crate) queues: Mutex<FetchQueue>,
}

pub(crate) fn tps(tpl: &rdkafka::TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl Ctx {
    pub(crate) fn push(&self, e: RebalanceEvent) {
        let mut v = self.events.lock().unwrap_or_else(|p| p.into_inner());
        v.push(e);
        self.pending.store(true, Ordering::Release);
    }
    pub(crate) fn take(&self) -> Vec<RebalanceEvent> {
        if !self.has_events() {
            return Vec::new();
        }
        let mut v = self.events.lock().unwrap_or_else(|p| p.into_inner());
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *v)
    }
    pub(crate) fn has_events(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }
    pub(crate) fn queues(&self) -> std::sync::MutexGuard<'_, FetchQueue> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A broker counts as reachable when its connection is up and it answers:
/// a broker with requests outstanding that has sent nothing for this long is
/// frozen or cut off even if the TCP connection still stands.
pub(crate) const BROKER_SILENCE_US: i64 = 5_000_000;

pub(crate) fn broker_answering(b: &rdkafka::statistics::Broker) -> bool {
    let waiting = b.waitresp_cnt > 0 || b.outbuf_cnt > 0;
    b.state == "UP" && !(waiting && b.rxidle > BROKER_SILENCE_US)
}

/// The cluster's brokers (not librdkafka's internal pseudo-broker, which is
/// always "UP", nor bootstrap entries once real brokers are known).
pub(crate) fn real_brokers(
    stats: &Statistics,
) -> impl Iterator<Item = &rdkafka::statistics::Broker> {
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
    pub(crate) health: Arc<Health>,
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
