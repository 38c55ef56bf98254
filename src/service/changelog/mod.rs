//! The state changelog: every change of a business's state goes to the
//! compacted changelog topic (key = business_id), so that a partition's state
//! moves with it on restart and rebalance.
//!
//! A record carries a format version and the source topic, partition and
//! offset it reflects. It is written to the changelog partition with the same
//! number as its source partition, so restoring input partition `p` reads
//! changelog partition `p` only. Records are written after the outputs of
//! their batch were acknowledged and before the input offsets are stored: a
//! restored state never runs ahead of the flags it caused.
//!
//! Changelog partition `p` holds the records of partition `p` of every review
//! topic; a restore reads it once for all of them. It reads with
//! `isolation.level=read_committed`: in `exactly_once` mode records of an
//! aborted or still open transaction are not state.

use crate::core::features::BusinessState;
use crate::core::scorer::States;
use crate::types::Domain;
use anyhow::{Context, Result, anyhow};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const FORMAT_VERSION: u32 = 1;

/// A changelog record as read back. It is written as a [`RecordRef`] (one
/// definition of the JSON a record is written in).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    pub format_version: u32,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub domain: Domain,
    pub business_id: String,
    pub state: BusinessState,
}

impl Record {
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            format_version: self.format_version,
            source_topic: &self.source_topic,
            source_partition: self.source_partition,
            source_offset: self.source_offset,
            domain: self.domain,
            business_id: &self.business_id,
            state: &self.state,
        }
    }
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_ref().serialize(s)
    }
}

/// A [`Record`] to write, borrowing the state.
#[derive(Debug, Serialize)]
pub struct RecordRef<'a> {
    pub format_version: u32,
    pub source_topic: &'a str,
    pub source_partition: i32,
    pub source_offset: i64,
    pub domain: Domain,
    pub business_id: &'a str,
    pub state: &'a BusinessState,
}

/// What a restore did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Restored {
    pub records: u64,
    pub businesses: usize,
    pub skipped: u64,
    pub elapsed: Duration,
}

/// Key of the barrier records a restore writes to find the partition's end.
pub const BARRIER_KEY: &str = "\u{0}reviewguard-restore-barrier";

/// Reads changelog partitions back into state.
///
/// The end of a partition is found with a barrier: a record the restorer
/// writes itself, whose offset the broker acknowledges. Everything before it
/// was written before the restore began. (High watermarks are not used:
/// some Kafka-protocol brokers report them short of the last record.)
pub struct Restorer {
    consumer: BaseConsumer,
    producer: FutureProducer,
    topic: String,
}

impl Restorer {
    /// `client`: the service's client config (brokers, security).
    pub fn new(
        mut client: ClientConfig,
        topic: &str,
        producer: FutureProducer,
    ) -> Result<Restorer> {
        let consumer: BaseConsumer = client
            .set("group.id", "reviewguard-restore")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("queued.max.messages.kbytes", "16384")
            .create()
            .context("cannot create the changelog reader")?;
        Ok(Restorer {
            consumer,
            producer,
            topic: topic.to_owned(),
        })
    }

    /// The state of partition `partition` of each of `source_topics`, from
    /// changelog partition `partition`, read once. Blocks until the partition
    /// has been read to its end.
    pub fn restore(
        &self,
        source_topics: &[String],
        partition: i32,
        timeout: Duration,
    ) -> Result<(HashMap<String, States>, Restored)> {
        let started = Instant::now();
        let token = self.barrier(partition, timeout)?;
        let mut all: HashMap<String, States> = source_topics
            .iter()
            .map(|t| (t.clone(), States::default()))
            .collect();
        let mut done = Restored::default();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, partition, Offset::Beginning)?;
        self.consumer.assign(&tpl)?;
        let deadline = Instant::now() + timeout;
        loop {
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "restoring {}[{partition}] timed out before reaching its barrier",
                    self.topic
                ));
            }
            let Some(msg) = self.consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let msg =
                msg.with_context(|| format!("reading changelog {}[{partition}]", self.topic))?;
            if msg.partition() != partition || msg.topic() != self.topic {
                continue; // left over from the previous partition's assignment
            }
            if msg.key() == Some(BARRIER_KEY.as_bytes()) {
                if msg.payload() == Some(token.as_bytes()) {
                    break; // everything written before the restore began has been read
                }
                continue;
            }
            done.records += 1;
            let Some(payload) = msg.payload() else {
                continue; // tombstone
            };
            match serde_json::from_slice::<Record>(payload) {
                Ok(r) if r.format_version == FORMAT_VERSION && r.source_partition == partition => {
                    let Some(states) = all.get_mut(&r.source_topic) else {
                        continue; // a review topic not asked for
                    };
                    let newer = states
                        .get(r.domain, &r.business_id)
                        .is_none_or(|s| s.source_offset <= r.source_offset);
                    if newer {
                        states.insert(r.domain, r.business_id, r.state);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    done.skipped += 1;
                    tracing::warn!(topic = %self.topic, partition, offset = msg.offset(), error = %e, "unreadable changelog record skipped");
                }
            }
        }
        self.consumer.unassign()?;
        done.businesses = all.values().map(States::len).sum();
        done.elapsed = started.elapsed();
        Ok((all, done))
    }
}

impl Restorer {
    /// Write a barrier with a fresh token to `partition`; the restore has read
    /// everything written before it when it reads that token back.
    fn barrier(&self, partition: i32, timeout: Duration) -> Result<String> {
        use rand::RngCore;
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = hex::encode(raw);
        let record = FutureRecord::to(&self.topic)
            .key(BARRIER_KEY)
            .payload(token.as_bytes())
            .partition(partition);
        let delivery = self.producer.send_result(record).map_err(|(e, _)| {
            anyhow!("cannot write a barrier to {}[{partition}]: {e}", self.topic)
        })?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow!("restore needs a Tokio runtime"))?;
        let result = handle.block_on(async { tokio::time::timeout(timeout, delivery).await });
        match result {
            Ok(Ok(Ok(_))) => Ok(token),
            Ok(Ok(Err((e, _)))) => Err(anyhow!(
                "barrier to {}[{partition}] not delivered: {e}",
                self.topic
            )),
            Ok(Err(_)) => Err(anyhow!("the producer was dropped")),
            Err(_) => Err(anyhow!(
                "barrier to {}[{partition}] not acknowledged in {timeout:?}",
                self.topic
            )),
        }
    }
}
pub(crate) mod write;
