//! `simulate`: a synthetic world's reviews and inspections, to files or to
//! Kafka.

use super::args::*;
use super::common::*;
use anyhow::{Context, Result, anyhow, bail};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use reviewguard::offline::simulate;
use reviewguard::service::config::Config;
use reviewguard::types::Domain;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn run(a: &SimulateArgs) -> Result<()> {
    if a.reviews.is_none() && a.brokers.is_none() && a.judge.is_none() {
        bail!(
            "say where the reviews go: --reviews FILE (or - for stdout) and/or --brokers HOST:PORT (or judge flags with --judge FILE)"
        );
    }
    let base = match a.profile.as_str() {
        "standard" => simulate::SimConfig::default(),
        "stress" => simulate::SimConfig::stress(),
        p => bail!("--profile must be standard or stress, got {p:?}"),
    };
    let domains = match a.domain.as_str() {
        "both" => Domain::ALL.to_vec(),
        d => vec![parse_domain(d)?],
    };
    let mut texts = simulate::Texts::default();
    for spec in &a.texts {
        let (domains, path) = match spec.split_once('=') {
            Some((d, p)) if Domain::parse(d).is_some() => (vec![parse_domain(d)?], p),
            _ => (Domain::ALL.to_vec(), spec.as_str()),
        };
        let rows = simulate::Texts::read_csv(Path::new(path))
            .with_context(|| format!("--texts {spec}"))?;
        for d in domains {
            match d {
                Domain::Food => texts.food.extend(rows.iter().cloned()),
                Domain::Tourism => texts.tourism.extend(rows.iter().cloned()),
            }
        }
    }
    let sim = simulate::SimConfig {
        seed: a.seed,
        businesses: a.businesses,
        days: a.days,
        domains,
        texts: (!a.texts.is_empty()).then(|| Arc::new(texts)),
        ..base
    };
    let bar = reviewguard::offline::progress::bar(u64::from(a.days), "simulating days");
    let world = simulate::generate_with_progress(&sim, |_| bar.inc(1));
    bar.finish_and_clear();
    if let Some(reviews) = &a.reviews {
        write_reviews(&world, reviews)?;
    }
    let (inspections, truth) = (a.inspections.as_deref(), a.truth.as_deref());
    let seed = a.seed;
    if let Some(p) = inspections {
        let mut w =
            csv::Writer::from_path(p).with_context(|| format!("cannot create {}", p.display()))?;
        w.write_record(["business_id", "domain", "inspected_at", "outcome"])?;
        for i in &world.inspections {
            w.write_record([
                i.business_id.as_str(),
                i.domain.as_str(),
                &reviewguard::types::time::rfc3339(i.inspected_at),
                &i.outcome.to_string(),
            ])?;
        }
        w.flush()?;
    }
    if let Some(p) = truth {
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        );
        for t in &world.truth {
            serde_json::to_writer(&mut w, t)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    }
    eprintln!(
        "simulate: seed {seed}, {} businesses, {} reviews, {} inspections ({} with violations)",
        world.truth.len(),
        world.reviews.len(),
        world.inspections.len(),
        world.inspections.iter().filter(|i| i.outcome == 1).count()
    );
    if let Some(flags) = &a.judge {
        judge(&world, flags)?;
    }
    if let Some(brokers) = &a.brokers {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(produce_simulation(
            brokers,
            &Config::default().topics,
            sim,
            a.rate,
            a.forever,
        ))?;
    }
    Ok(())
}

/// Print how the flags in `path` compare with the world's hidden truth.
fn judge(world: &simulate::World, path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read flags file {}", path.display()))?;
    let mut keyed = Vec::new();
    let mut by_severity = std::collections::BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = reviewguard::service::produce::parse_flag(line.as_bytes())
            .map_err(|e| anyhow!("{}:{}: {e}", path.display(), i + 1))?;
        let t = chrono::DateTime::parse_from_rfc3339(&f.event_time)
            .map_err(|e| anyhow!("{}:{}: event_time: {e}", path.display(), i + 1))?;
        *by_severity.entry(f.severity.as_str()).or_insert(0usize) += 1;
        keyed.push((f.domain, f.business_id.clone(), t.timestamp()));
    }
    let one = simulate::flag_quality(world, &keyed);
    let three = simulate::flag_quality_at_least(world, &keyed, 3);
    println!(
        "flags {} ({}); precision {:.3} ({} right; {} on businesses under a competitor's attack)",
        one.flags,
        by_severity
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        one.precision(),
        one.correct,
        one.attacked
    );
    println!(
        "recall {:.3} of bad businesses with >= 1 genuine risk report ({} of {}); {:.3} with >= 3 ({} of {})",
        one.recall(),
        one.found,
        one.bad_businesses,
        three.recall(),
        three.found,
        three.bad_businesses
    );
    Ok(())
}

pub(crate) fn write_reviews(world: &simulate::World, reviews: &Path) -> Result<()> {
    let mut out: Box<dyn Write> = if reviews == Path::new("-") {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(reviews)
                .with_context(|| format!("cannot create {}", reviews.display()))?,
        ))
    };
    for r in &world.reviews {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Produce a simulated world's reviews to the review topics (key =
/// business_id), at `rate` reviews per second (0: as fast as acknowledged).
/// With `forever`, the next world (next seed, later dates) follows.
async fn produce_simulation(
    brokers: &str,
    topics: &reviewguard::service::config::TopicsConfig,
    mut sim: simulate::SimConfig,
    rate: f64,
    forever: bool,
) -> Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "10")
        .create()
        .context("cannot create the Kafka producer (check --brokers)")?;
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        let world = simulate::generate(&sim);
        let mut inflight = std::collections::VecDeque::new();
        for r in &world.reviews {
            let topic = match r.domain {
                Domain::Food => &topics.reviews_food,
                Domain::Tourism => &topics.reviews_tourism,
            };
            let body = serde_json::to_vec(r)?;
            let mut rec = FutureRecord::to(topic).key(&r.business_id).payload(&body);
            loop {
                match producer.send_result(rec) {
                    Ok(f) => {
                        inflight.push_back(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        rec = back;
                        if let Some(f) = inflight.pop_front() {
                            reviewguard::service::produce::wait_delivered(f).await?;
                        }
                    }
                    Err((e, _)) => return Err(anyhow!("cannot produce to {topic}: {e}")),
                }
            }
            while inflight.len() > 10_000 {
                if let Some(f) = inflight.pop_front() {
                    reviewguard::service::produce::wait_delivered(f).await?;
                }
            }
            sent += 1;
            if rate > 0.0 {
                let due = started + Duration::from_secs_f64(sent as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
        }
        for f in inflight {
            reviewguard::service::produce::wait_delivered(f).await?;
        }
        tracing::info!(
            seed = sim.seed,
            reviews = world.reviews.len(),
            total = sent,
            "simulated world produced"
        );
        if !forever {
            return Ok(());
        }
        sim.seed += 1;
        sim.start += i64::from(sim.days) * reviewguard::core::features::DAY;
    }
}
