//! Flags from the inspection topics into the store, with the desk's own
//! consumer group. A flag is stored by `flag_id` (delivered twice, kept
//! once); its offset is committed only after the row is durable, so a
//! crash re-reads rather than loses. A message that is not a flag is
//! counted (`flags_ingested_total{result="rejected"}`), logged and passed.

use super::Desk;
use super::store::now_ms;
use crate::core::flag::Flag;
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use std::sync::Arc;
use std::time::Duration;

pub const MAX_FLAG_BYTES: usize = 256 * 1024;

/// Why a message is not a flag the desk can keep.
pub fn decode(bytes: &[u8]) -> Result<(Flag, String), String> {
    if bytes.len() > MAX_FLAG_BYTES {
        return Err(format!("over {MAX_FLAG_BYTES} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let flag: Flag = serde_json::from_str(text).map_err(|e| format!("not a flag: {e}"))?;
    for (field, value, max) in [
        ("flag_id", flag.flag_id.as_str(), 128),
        ("business_id", flag.business_id.as_str(), 128),
        ("region", flag.region.as_deref().unwrap_or(""), 128),
        (
            "business_name",
            flag.business_name.as_deref().unwrap_or(""),
            256,
        ),
        ("trigger", flag.trigger.as_str(), 64),
    ] {
        if value.chars().count() > max {
            return Err(format!("field {field} is longer than {max} characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("field {field} contains control characters"));
        }
    }
    if flag.flag_id.is_empty() || flag.business_id.is_empty() {
        return Err("field flag_id or business_id is empty".into());
    }
    if !flag.risk_score.is_finite() {
        return Err("field risk_score is not a number".into());
    }
    // Stored as the contract's fields only: whatever else a producer put in
    // the message (a reviewer id, say) never reaches the desk.
    let body = serde_json::to_string(&flag).map_err(|e| e.to_string())?;
    Ok((flag, body))
}

/// Keep one message's flag; `Err` only when the store cannot be written.
pub async fn keep(desk: &Desk, payload: &[u8]) -> anyhow::Result<()> {
    match decode(payload) {
        Ok((flag, body)) => {
            if desk.store.insert_flag(&flag, &body, now_ms()).await? {
                desk.metrics
                    .flags_ingested
                    .with_label_values(&["stored"])
                    .inc();
                // Read back only what is notified at once (a high flag, with
                // webhooks set); the rest waits for the digest.
                if flag.severity == crate::types::Severity::High && desk.notifier.has_hooks() {
                    if let Some(row) = desk.store.flag(&flag.flag_id).await? {
                        desk.notifier.new_flag(&row);
                    }
                }
            } else {
                desk.metrics
                    .flags_ingested
                    .with_label_values(&["duplicate"])
                    .inc();
            }
        }
        Err(why) => {
            desk.metrics
                .flags_ingested
                .with_label_values(&["rejected"])
                .inc();
            tracing::warn!(reason = %why, "a message on an inspection topic is not a flag; passed");
        }
    }
    Ok(())
}

pub fn consumer(cfg: &crate::service::config::Config) -> anyhow::Result<StreamConsumer> {
    use anyhow::Context as _;
    let mut c = cfg.kafka_client();
    c.set("group.id", &cfg.desk.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            cfg.kafka.session_timeout_ms.to_string(),
        )
        .set("fetch.wait.max.ms", "100");
    let consumer: StreamConsumer = c
        .create()
        .context("cannot create the desk's consumer (check kafka.brokers)")?;
    consumer
        .subscribe(&[&cfg.topics.inspection_food, &cfg.topics.inspection_tourism])
        .context("cannot subscribe to the inspection topics")?;
    Ok(consumer)
}

pub async fn run(
    desk: Arc<Desk>,
    consumer: StreamConsumer,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let m = tokio::select! {
            m = consumer.recv() => m,
            _ = stop.wait_for(|s| *s) => return,
        };
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "reading the inspection topics");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Until the row is durable the offset is not committed: retry.
        let mut backoff = Duration::from_millis(200);
        while let Err(e) = keep(&desk, m.payload().unwrap_or_default()).await {
            tracing::error!(error = format!("{e:#}"), "cannot store a flag; retrying");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        if let Err(e) = consumer.commit_message(&m, CommitMode::Async) {
            tracing::warn!(error = %e, "cannot commit the desk's offset; the flag may be read again (kept once)");
        }
    }
}
