//! librdkafka client configurations: the consumer, the producer, the
//! changelog reader and the barrier producer.

use crate::service::config::{Config, Guarantee};
use anyhow::{Context as _, Result};
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use std::time::Duration;

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
pub(crate) fn restore_client_config(cfg: &Config) -> ClientConfig {
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
pub(crate) fn barrier_producer(cfg: &Config) -> Result<FutureProducer> {
    cfg.kafka_client()
        .set("enable.idempotence", "true")
        .create()
        .context("cannot create the changelog barrier producer (check kafka.brokers)")
}

pub(crate) const TXN_TIMEOUT: Duration = Duration::from_secs(60);

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
}
