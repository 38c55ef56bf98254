//! Enqueueing records, and reading back a flag.

use crate::core::flag::Flag;
use anyhow::{Context as _, Result, anyhow};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use std::time::Duration;

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

/// The flag a consumer of an inspection topic reads back.
pub fn parse_flag(bytes: &[u8]) -> Result<Flag> {
    serde_json::from_slice(bytes).context("not a flag message")
}

pub async fn wait_delivered(f: DeliveryFuture) -> Result<()> {
    f.await
        .map_err(|_| anyhow!("the producer was dropped before a delivery report"))?
        .map_err(|(e, _)| anyhow!("delivery failed: {e}"))?;
    Ok(())
}
