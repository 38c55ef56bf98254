//! The inspections CSV from the desk's store: the header `train` and
//! `evaluate` read (`business_id,domain,inspected_at,outcome`), then the
//! outcome's other facts as extra columns.

use super::store::OutcomeRow;
use anyhow::{Context as _, Result};
use std::path::Path;

pub const HEADER: [&str; 10] = [
    "business_id",
    "domain",
    "inspected_at",
    "outcome",
    "region",
    "categories",
    "flag_id",
    "outcome_id",
    "inspector",
    "recorded_at",
];

pub fn write<W: std::io::Write>(out: W, outcomes: &[OutcomeRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(HEADER)?;
    for o in outcomes {
        w.write_record([
            o.business_id.as_str(),
            o.domain.as_str(),
            o.inspected_at.as_str(),
            if o.violation { "1" } else { "0" },
            o.region.as_str(),
            &o.categories.join(";"),
            o.flag_id.as_deref().unwrap_or(""),
            o.outcome_id.as_str(),
            o.inspector.as_str(),
            o.recorded_at.as_str(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Write `outcomes` to `path` (through a temporary file, renamed into
/// place, so a reader never sees half a file).
pub fn to_file(path: &Path, outcomes: &[OutcomeRow]) -> Result<()> {
    let tmp = path.with_extension("csv.tmp");
    let f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    write(std::io::BufWriter::new(f), outcomes)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Every outcome on the outcomes topic, from its beginning to its end as
/// it is when called, deduplicated by `outcome_id` (the last copy kept),
/// in the order inspected; and how many messages were not outcomes.
pub fn from_topic(
    cfg: &crate::service::config::Config,
    timeout: std::time::Duration,
) -> Result<(Vec<OutcomeRow>, usize)> {
    use rdkafka::Message as _;
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let topic = cfg.topics.outcomes.as_str();
    let consumer: BaseConsumer = cfg
        .kafka_client()
        .set("group.id", "reviewguard-outcomes-export")
        .set("enable.auto.commit", "false")
        .create()
        .context("cannot create a consumer (check kafka.brokers)")?;
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .with_context(|| format!("cannot read the partitions of {topic}"))?;
    let partitions = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut left = std::collections::HashMap::new();
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .with_context(|| format!("cannot read the offsets of {topic} partition {p}"))?;
        if high > low {
            left.insert(p, high);
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(low))?;
        }
    }
    consumer.assign(&tpl)?;
    let deadline = std::time::Instant::now() + timeout;
    let mut by_id = std::collections::BTreeMap::new();
    let mut bad = 0;
    while !left.is_empty() {
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "{topic}: {} partitions not read to their end within {timeout:?}",
                left.len()
            );
        }
        let Some(m) = consumer.poll(std::time::Duration::from_millis(200)) else {
            continue;
        };
        let m = m.with_context(|| format!("reading {topic}"))?;
        if left
            .get(&m.partition())
            .is_some_and(|&h| m.offset() + 1 >= h)
        {
            left.remove(&m.partition());
        }
        match m.payload().map(row_of_message) {
            Some(Some(o)) => {
                by_id.insert(o.outcome_id.clone(), o);
            }
            _ => bad += 1,
        }
    }
    let mut rows: Vec<OutcomeRow> = by_id.into_values().collect();
    rows.sort_by(|a, b| (&a.inspected_at, &a.outcome_id).cmp(&(&b.inspected_at, &b.outcome_id)));
    Ok((rows, bad))
}

/// An `inspection.outcomes` message as a row; `None` when it is not one.
fn row_of_message(bytes: &[u8]) -> Option<OutcomeRow> {
    crate::core::outcome::decode(bytes).ok()?;
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    Some(OutcomeRow {
        outcome_id: text("outcome_id"),
        flag_id: v.get("flag_id").and_then(|x| x.as_str()).map(str::to_owned),
        business_id: text("business_id"),
        domain: text("domain"),
        region: text("region"),
        inspected_at: text("inspected_at"),
        violation: v.get("outcome").and_then(|x| x.as_i64()) == Some(1),
        categories: v
            .get("categories")
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        note: String::new(),
        inspector: text("inspector"),
        recorded_by: String::new(),
        recorded_at: text("recorded_at"),
        recorded_ms: 0,
        message: String::from_utf8_lossy(bytes).into_owned(),
        published_ms: None,
    })
}
