//! `reviewguard run` on a real Kafka-protocol broker (Tansu), beside the rate
//! at which a bare rdkafka consumer drains the same topics in the same run,
//! then pipeline latency at half of the service's measured maximum rate.
//!
//! `cargo bench --bench stream` (needs `tansu`, which `scripts/test.sh`
//! installs; says SKIPPED without it). `STREAM_REVIEWS` sets the stream size
//! (default 200,000).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Broker, Service, metric, produce_with};
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use reviewguard::review::Domain;
use reviewguard::simulate::{self, SimConfig, SimReview};
use std::time::{Duration, Instant};

fn world(target: usize, seed: u64) -> Vec<SimReview> {
    let mut days = 30;
    loop {
        let w = simulate::generate(&SimConfig {
            seed,
            businesses: 2_000,
            days,
            ..SimConfig::default()
        });
        if w.reviews.len() >= target {
            let mut r = w.reviews;
            r.truncate(target);
            return r;
        }
        days =
            (f64::from(days) * target as f64 / w.reviews.len().max(1) as f64 * 1.05).ceil() as u32;
    }
}

fn produce_all(brokers: &str, reviews: &[SimReview]) {
    for d in Domain::ALL {
        let recs: Vec<(String, Vec<u8>)> = reviews
            .iter()
            .filter(|r| r.domain == d)
            .map(|r| (r.business_id.clone(), serde_json::to_vec(r).expect("json")))
            .collect();
        produce_with(brokers, &format!("reviews.{d}"), &recs, 10_000);
    }
}

/// Seconds from the first message to the last, for a bare consumer that only
/// counts messages and bytes.
fn bare_consumer(brokers: &str, n: usize) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bare-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&["reviews.food", "reviews.tourism"])
        .expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(600);
    let (mut seen, mut bytes) = (0usize, 0usize);
    let mut first = None;
    while seen < n {
        assert!(
            Instant::now() < deadline,
            "bare consumer: {seen} of {n} after 600 s"
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            seen += 1;
            bytes += m.payload().map_or(0, <[u8]>::len);
        }
    }
    std::hint::black_box(bytes);
    first.map_or(0.0, |t| t.elapsed().as_secs_f64())
}

/// Seconds from the service's first consumed review to the n-th.
fn service_drain(svc: &mut Service, n: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut first = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "service did not drain {n} reviews"
        );
        if let Some(m) = svc.metrics() {
            let c = metric(&m, "reviewguard_reviews_consumed_total", &[]) as u64;
            if c > 0 {
                first.get_or_insert_with(Instant::now);
            }
            if c >= n {
                return first.map_or(0.0, |t| t.elapsed().as_secs_f64());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Cumulative histogram buckets (le, count) of `name` from a scrape.
fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The q-quantile of the observations between two scrapes, interpolated
/// linearly inside its bucket (as Prometheus' histogram_quantile does).
fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, c)| {
            let b = before.iter().find(|(l, _)| l == le).map_or(0.0, |x| x.1);
            (*le, c - b)
        })
        .collect();
    let total = delta.last().map_or(0.0, |x| x.1);
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (le, c) in delta {
        if c >= rank {
            if le.is_infinite() {
                return lower.0;
            }
            let frac = if c > lower.1 {
                (rank - lower.1) / (c - lower.1)
            } else {
                0.0
            };
            return lower.0 + (le - lower.0) * frac;
        }
        lower = (le, c);
    }
    f64::NAN
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("stream bench: run it with `cargo bench --bench stream`");
        return;
    }
    if common::tansu_available().is_none() {
        println!("SKIPPED: the tansu broker is not installed (scripts/test.sh installs it)");
        return;
    }
    let n: usize = std::env::var("STREAM_REVIEWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let broker = Broker::start();
    broker.create_topics(6);
    let reviews = world(n, 31);
    let mb = reviews
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len()))
        .sum::<usize>() as f64
        / 1e6;
    produce_all(&broker.addr, &reviews);

    let bare = bare_consumer(&broker.addr, n);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut svc = Service::start(
        &broker.addr,
        "stream-bench",
        dir.path(),
        &[("RUST_LOG", "warn")],
    );
    let run = service_drain(&mut svc, n as u64);
    let (bare_rate, run_rate) = (n as f64 / bare, n as f64 / run);
    println!(
        "# reviewguard run beside a bare consumer (Tansu, 6 partitions per topic, same run)\n"
    );
    println!("| reader | reviews | seconds | reviews/s | MB/s | share of bare |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| bare rdkafka consumer | {n} | {bare:.2} | {bare_rate:.0} | {:.1} | 1.000 |",
        mb / bare
    );
    println!(
        "| reviewguard run | {n} | {run:.2} | {run_rate:.0} | {:.1} | {:.3} |",
        mb / run,
        run_rate / bare_rate
    );

    // Latency at half of the maximum: a fresh stream at run_rate / 2.
    let rate = (run_rate / 2.0).max(1.0);
    let secs = 20.0;
    let extra = world(((rate * secs) as usize).max(1000), 32);
    let before = svc.metrics().unwrap_or_default();
    let brokers = broker.addr.clone();
    let start = Instant::now();
    let per_tick = (rate / 20.0).ceil() as usize;
    for (i, chunk) in extra.chunks(per_tick).enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / 20.0);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        produce_all(&brokers, chunk);
    }
    let sent = start.elapsed().as_secs_f64();
    let after = svc.wait_consumed((n + extra.len()) as u64, Duration::from_secs(300));
    let name = "reviewguard_pipeline_latency_seconds";
    let (b, a) = (buckets(&before, name), buckets(&after, name));
    println!(
        "\n## Pipeline latency at half the maximum rate ({} reviews at {:.0}/s offered, sent in {sent:.1} s)\n",
        extra.len(),
        rate
    );
    println!("| p50 | p99 | observations |");
    println!("| ---: | ---: | ---: |");
    println!(
        "| {:.1} ms | {:.1} ms | {:.0} |",
        quantile(&b, &a, 0.50) * 1e3,
        quantile(&b, &a, 0.99) * 1e3,
        a.last().map_or(0.0, |x| x.1) - b.last().map_or(0.0, |x| x.1)
    );
    svc.terminate();
}
