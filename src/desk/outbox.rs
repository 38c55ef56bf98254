//! Outcomes to `inspection.outcomes`. An outcome is committed to the store
//! first; this loop sends every outcome Kafka has not acknowledged yet,
//! oldest first, exactly the bytes stored (so a resend after a crash or an
//! outage is the same message, same `outcome_id`), through an idempotent
//! producer, and marks it sent. While Kafka is down outcomes wait in the
//! store (`reviewguard_desk_outcomes_unpublished`).

use super::Desk;
use super::store::now_ms;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::sync::Arc;
use std::time::Duration;

/// How often the store is looked at when nothing wakes the loop.
const IDLE: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_secs(2);

pub fn producer(cfg: &crate::service::config::Config) -> anyhow::Result<FutureProducer> {
    use anyhow::Context as _;
    let mut c = cfg.kafka_client();
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    c.create()
        .context("cannot create the outcomes producer (check kafka.brokers)")
}

/// How long one instance holds the sending of an outcome (longer than a
/// send may take), so that desk instances sharing a store do not both send.
const LEASE_MS: i64 = 60_000;
const BATCH: i64 = 100;

/// Send what is unsent, once. `Ok(n)`: n sent; an error stops the round.
pub async fn send_pending(
    desk: &Desk,
    producer: &FutureProducer,
    topic: &str,
) -> anyhow::Result<usize> {
    let mut sent = 0;
    loop {
        let pending = desk.store.unpublished(BATCH, now_ms()).await?;
        for o in &pending {
            if !desk
                .store
                .lease_outcome(&o.outcome_id, now_ms(), LEASE_MS)
                .await?
            {
                continue;
            }
            let record = FutureRecord::to(topic)
                .key(o.business_id.as_bytes())
                .payload(o.message.as_bytes());
            if let Err((e, _)) = producer.send(record, Duration::from_secs(30)).await {
                desk.store.release_outcome(&o.outcome_id).await?;
                anyhow::bail!("cannot send an outcome to {topic}: {e}");
            }
            desk.store.mark_published(&o.outcome_id, now_ms()).await?;
            desk.metrics.outcomes_published.inc();
            sent += 1;
        }
        if (pending.len() as i64) < BATCH {
            return Ok(sent);
        }
    }
}

pub async fn run(
    desk: Arc<Desk>,
    producer: FutureProducer,
    topic: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let wait = match send_pending(&desk, &producer, &topic).await {
            Ok(0) => IDLE,
            Ok(n) => {
                tracing::info!(sent = n, %topic, "outcomes published");
                IDLE
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "outcomes wait in the store");
                RETRY
            }
        };
        tokio::select! {
            _ = desk.outbox.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
