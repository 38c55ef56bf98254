//! Topics: the changelog's partitions checked, missing topics created.

use crate::service::config::Config;
use crate::service::kafka::context::Ctx;
use anyhow::{Context as _, Result, anyhow};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use std::time::Duration;

/// The changelog needs a partition for every input partition.
pub(crate) fn check_changelog_partitions(
    consumer: &StreamConsumer<Ctx>,
    cfg: &Config,
) -> Result<()> {
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .context("cannot read the cluster's metadata (check kafka.brokers)")?;
    let count = |name: &str| {
        md.topics()
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.partitions().len())
    };
    let t = &cfg.topics;
    let need = [&t.reviews_food, &t.reviews_tourism]
        .iter()
        .filter_map(|n| count(n))
        .max()
        .unwrap_or(0);
    match count(&t.changelog) {
        Some(have) if have >= need => Ok(()),
        Some(have) => Err(anyhow!(
            "topic {} has {have} partitions but the review topics have up to {need}: the changelog needs at least as many (topics.changelog)",
            t.changelog
        )),
        None => Err(anyhow!(
            "the changelog topic {} does not exist: create it (compacted, as many partitions as the review topics) or run with --create-topics N",
            t.changelog
        )),
    }
}

/// Create the topics the service uses when they are missing (best effort:
/// a cluster that forbids it is told about in the log).
pub async fn ensure_topics(cfg: &Config, partitions: i32) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = cfg
        .kafka_client()
        .create()
        .context("cannot create the Kafka admin client")?;
    let t = &cfg.topics;
    let names = t.all();
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| {
            let nt = NewTopic::new(n, partitions, TopicReplication::Fixed(1));
            if *n == t.changelog {
                nt.set("cleanup.policy", "compact")
            } else {
                nt
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin
        .create_topics(new.iter(), &opts)
        .await
        .context("cannot create topics")?
    {
        match r {
            Ok(name) => tracing::info!(topic = %name, partitions, "topic created"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "topic exists")
            }
            Err((name, code)) => {
                tracing::warn!(topic = %name, error = %code, "cannot create topic")
            }
        }
    }
    Ok(())
}
