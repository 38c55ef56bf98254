//! `reviewguard run` on a real Kafka-protocol broker (Tansu), beside the rate
//! at which a bare rdkafka consumer drains the same topics, the two in turns
//! on one broker, then pipeline latency at half (the target) and a quarter of the service's
//! measured maximum rate, each beside a bare consumer's on the same stream.
//!
//! `cargo bench --bench stream` (needs `tansu`, which `scripts/test.sh`
//! installs; says SKIPPED without it). `STREAM_REVIEWS` sets the stream size
//! (default 1,000,000) and `STREAM_BUSINESSES` its businesses per domain
//! (default 2,000), `STREAM_PAIRS` the turns of bare consumer and service in
//! the throughput phase (default 5; with `STREAM_AB`, its pairs, default 6);
//! `STREAM_MAX_RATE` skips the
//! throughput phase and measures latency below the rate given instead;
//! `STREAM_TRACE` prints the service's rate and cores every quarter second
//! of a drain, and its p99 latency of every 100 ms of the latency runs
//! (stderr).
//! `STREAM_AB=OLD,NEW` (two binaries) compares their drain rates in
//! alternating runs, or with `STREAM_AB_RATE` their latency at that rate.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Broker, Service, cpu_seconds, metric, produce_with};
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use reviewguard::offline::simulate::{self, SimConfig, SimReview};
use reviewguard::types::Domain;
use std::time::{Duration, Instant};

/// `target` simulated reviews of `STREAM_BUSINESSES` businesses (default
/// 2,000) per domain.
fn world(target: usize, seed: u64) -> Vec<SimReview> {
    let businesses = std::env::var("STREAM_BUSINESSES")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(2_000)
        .max(1);
    let mut days = 30;
    loop {
        let w = simulate::generate(&SimConfig {
            seed,
            businesses,
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

/// Seconds from the first message to the last, for a bare consumer (in a
/// group of its own, `group`) that only counts messages and bytes.
fn bare_consumer(brokers: &str, n: usize, group: &str) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        // As the service's default: Tansu 0.6 holds every fetch this long.
        .set("fetch.wait.max.ms", "10")
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

/// Send `payloads` at `rate` per second (record i at i / rate seconds), to
/// their own topics or all to `topic`, with one producer; `at(i)` is called
/// just before record `i` of each index in `marks` is sent. The seconds it took.
fn paced_send(
    brokers: &str,
    payloads: &[(String, String, Vec<u8>)],
    rate: f64,
    topic: Option<&str>,
    marks: &[usize],
    mut at: impl FnMut(usize),
) -> f64 {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        // librdkafka's default: batches big enough that producing costs the
        // broker little (everything here shares two cores).
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let start = Instant::now();
    for (i, (t, key, value)) in payloads.iter().enumerate() {
        // Sleep only when a millisecond ahead: a sleep per record would cost
        // this process more CPU than sending (all of it shares two cores).
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            if wait >= Duration::from_millis(1) {
                std::thread::sleep(wait);
            }
        }
        if marks.contains(&i) {
            at(i);
        }
        let mut rec = BaseRecord::to(topic.unwrap_or(t)).key(key).payload(value);
        while let Err((_, back)) = producer.send(rec) {
            rec = back;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let sent = start.elapsed().as_secs_f64();
    producer.flush(Duration::from_secs(30)).expect("flush");
    sent
}

/// p50 and p99 (ms) from a record's timestamp to its arrival at a bare
/// consumer, for `measured` sent at `rate` to the review topics of a fresh
/// broker after `warmup`
/// (the consumer's first fetches come late; that start is not the floor).
fn bare_latency(
    broker: &Broker,
    warmup: &[(String, String, Vec<u8>)],
    measured: &[(String, String, Vec<u8>)],
    rate: f64,
) -> (f64, f64) {
    let brokers = broker.addr.as_str();
    let n = warmup.len() + measured.len();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let brokers_owned = brokers.to_owned();
    let reader = std::thread::spawn(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers_owned)
            .set("group.id", format!("bare-latency-{}", std::process::id()))
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .create()
            .expect("consumer");
        consumer
            .subscribe(&["reviews.food", "reviews.tourism"])
            .expect("subscribe");
        let deadline = Instant::now() + Duration::from_secs(300);
        // (record timestamp, latency) in ms.
        let mut lat = Vec::with_capacity(n);
        let mut ready = false;
        while lat.len() < n && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(5)) {
                if let Some(ts) = m.timestamp().to_millis() {
                    let now = chrono::Utc::now().timestamp_millis();
                    lat.push((ts, (now - ts).max(0) as f64));
                }
            }
            if !ready && consumer.assignment().is_ok_and(|a| a.count() > 0) {
                ready = true;
                let _ = ready_tx.send(());
            }
        }
        lat
    });
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("bare latency consumer assigned");
    let all: Vec<_> = warmup.iter().chain(measured).cloned().collect();
    let mut from = i64::MAX;
    paced_send(brokers, &all, rate, None, &[warmup.len()], |_| {
        from = chrono::Utc::now().timestamp_millis();
    });
    let lat = reader.join().expect("reader");
    assert_eq!(
        lat.len(),
        n,
        "bare latency consumer got {} of {n}",
        lat.len()
    );
    let mut lat: Vec<f64> = lat
        .into_iter()
        .filter(|(ts, _)| *ts >= from)
        .map(|(_, l)| l)
        .collect();
    lat.sort_by(f64::total_cmp);
    let k = lat.len();
    assert!(
        k > measured.len() / 2,
        "{k} of {} measured records",
        measured.len()
    );
    let q = |q: f64| lat[((q * k as f64) as usize).min(k - 1)];
    (q(0.50), q(0.99))
}

/// Seconds from the service's first consumed review to the n-th. With
/// `STREAM_TRACE`, prints every quarter second the reviews consumed in it and
/// the cores the service and `broker_pid` used (stderr).
fn service_drain(svc: &mut Service, n: u64, broker_pid: Option<u32>) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(900);
    let trace = std::env::var_os("STREAM_TRACE").is_some();
    let mut first = None;
    // (time, consumed, service CPU, broker CPU) at the last trace line.
    let mut mark: Option<(Instant, f64, f64, f64)> = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "service did not drain {n} reviews"
        );
        if let Some(m) = svc.metrics() {
            let c = metric(&m, "reviewguard_reviews_consumed_total", &[]);
            if c > 0.0 {
                first.get_or_insert_with(Instant::now);
            }
            if trace && first.is_some() {
                let now = Instant::now();
                let cpu = (
                    cpu_seconds(svc.child.id()),
                    broker_pid.map_or(0.0, cpu_seconds),
                );
                match mark {
                    Some((t, c0, s0, b0)) if now - t >= Duration::from_millis(250) => {
                        let dt = (now - t).as_secs_f64();
                        eprintln!(
                            "drain {:6.2} s: {:7.0} reviews/s, reviewguard {:.2} cores, broker {:.2} cores",
                            first.map_or(0.0, |f| (now - f).as_secs_f64()),
                            (c - c0) / dt,
                            (cpu.0 - s0) / dt,
                            (cpu.1 - b0) / dt
                        );
                        mark = Some((now, c, cpu.0, cpu.1));
                    }
                    None => mark = Some((now, c, cpu.0, cpu.1)),
                    Some(_) => {}
                }
            }
            if c >= n as f64 {
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

/// How many reviews the throughput phase streams: `STREAM_REVIEWS`, or
/// 1,000,000.
fn stream_reviews() -> usize {
    std::env::var("STREAM_REVIEWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// The throughput phase: a bare consumer and `reviewguard run` drain the
/// same topics in turns, `STREAM_PAIRS` times (default 5: about one service
/// run in sixteen stalls for some 0.6 s near its start, for a reason not yet
/// found, and a median of five pairs is not moved by one), each run with a
/// group (and the service with a changelog) of its own; prints each pair and
/// the median of the pairs' ratios. Turns, not one run each, because this
/// VM's speed drifts within minutes and Tansu's in-memory log gets slower
/// to read as the runs' outputs fill it: only runs close in time compare.
/// The service's median rate.
fn throughput(dir: &std::path::Path) -> f64 {
    let broker = Broker::start();
    broker.create_topics(6);
    let n = stream_reviews();
    let pairs = stream_pairs(5);
    let reviews = world(n, 31);
    let mb = reviews
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len()))
        .sum::<usize>() as f64
        / 1e6;
    produce_all(&broker.addr, &reviews);
    println!(
        "# reviewguard run beside a bare consumer (Tansu, 6 partitions per topic, {n} reviews, {mb:.0} MB, {pairs} pairs of runs)\n"
    );
    println!(
        "| pair | first | bare consumer reviews/s | run reviews/s | run / bare | bare µs CPU per review | run µs CPU per review | run cores | Tansu cores while run drained |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let me = std::process::id();
    let mut rows = Vec::new();
    // A bare consumer's drain: its rate and CPU µs per review.
    let bare_turn = |pair: usize| {
        let cpu0 = cpu_seconds(me);
        let rate = n as f64 / bare_consumer(&broker.addr, n, &format!("bare-{pair}-{me}"));
        (rate, (cpu_seconds(me) - cpu0) / n as f64 * 1e6)
    };
    let service_turn = |pair: usize| {
        drain(
            &broker,
            dir,
            env!("CARGO_BIN_EXE_reviewguard").as_ref(),
            &format!("stream-bench-{pair}-{me}"),
            n,
        )
    };
    for pair in 1..=pairs {
        // The bare consumer reads first in odd pairs, the service in even
        // ones: a broker that slows as the runs fill it favours neither.
        let bare_first = pair % 2 == 1;
        let (bare, served) = if bare_first {
            let b = bare_turn(pair);
            (b, service_turn(pair))
        } else {
            let s = service_turn(pair);
            (bare_turn(pair), s)
        };
        let ((bare, bare_us), d) = (bare, served);
        println!(
            "| {pair} | {} | {bare:.0} | {:.0} | {:.3} | {bare_us:.2} | {:.2} | {:.2} | {:.2} |",
            if bare_first { "bare" } else { "run" },
            d.rate,
            d.rate / bare,
            d.us_per_review,
            d.cores,
            d.broker_cores,
        );
        rows.push((bare, d.rate));
    }
    let ratio = median(rows.iter().map(|(b, r)| r / b).collect());
    let (bare, run) = (
        median(rows.iter().map(|x| x.0).collect()),
        median(rows.iter().map(|x| x.1).collect()),
    );
    println!(
        "\nMedians: bare consumer {bare:.0}/s ({:.1} MB/s), reviewguard run {run:.0}/s ({:.1} MB/s); **run / bare {ratio:.3}** (the median of the pairs' ratios).\n",
        mb * bare / n as f64,
        mb * run / n as f64
    );
    run
}

/// `STREAM_PAIRS` (at least 1), or `default`.
fn stream_pairs(default: usize) -> usize {
    std::env::var("STREAM_PAIRS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(default)
        .max(1)
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
    let dir = tempfile::tempdir().expect("tempdir");
    if let Ok(ab) = std::env::var("STREAM_AB") {
        match std::env::var("STREAM_AB_RATE")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
        {
            Some(rate) => compare_latency(dir.path(), &ab, rate),
            None => compare_builds(dir.path(), &ab),
        }
        return;
    }
    let run_rate = match std::env::var("STREAM_MAX_RATE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        Some(rate) => {
            println!("(STREAM_MAX_RATE: the maximum taken as {rate:.0}/s, not measured)");
            rate
        }
        None => throughput(dir.path()),
    };

    // Latency at half (the target) and a quarter of the maximum: a fresh
    // broker for each reader (Tansu 0.6's in-memory log gets slower to fetch
    // from as it grows) and a fresh service, a warm-up, then a measured stream.
    // Producer, broker and service share this machine's two cores here.
    let mut rows = Vec::new();
    for (k, share) in [(1, 0.5), (2, 0.25)] {
        let rate = (run_rate * share).max(1.0);
        rows.push(latency_at(dir.path(), k, rate));
    }
    println!(
        "\n## Pipeline latency below the maximum rate (a fresh broker for each reader, after a warm-up)\n"
    );
    println!("| offered rate | share of max | path | p50 | p99 | observations |");
    println!("| ---: | ---: | --- | ---: | ---: | ---: |");
    let mut cpu_lines = Vec::new();
    for (rate, floor, svc, cores) in rows {
        cpu_lines.push(format!(
            "at {rate:.0}/s: reviewguard {:.2}, Tansu {:.2}, the sending bench {:.2} cores (of 2)",
            cores[0], cores[1], cores[2]
        ));
        let share = rate / run_rate;
        println!(
            "| {rate:.0}/s | {share:.2} | producer → Tansu → bare consumer (floor) | {:.1} ms | {:.1} ms | {} |",
            floor.0, floor.1, floor.2
        );
        println!(
            "| {rate:.0}/s | {share:.2} | producer → Tansu → reviewguard run, outputs acknowledged | {:.1} ms | {:.1} ms | {:.0} |",
            svc.0, svc.1, svc.2
        );
    }
    println!(
        "\nCPU while the measured stream was sent: {}.",
        cpu_lines.join("; ")
    );
}

/// One drain of the review topics by a service.
struct Drain {
    rate: f64,
    us_per_review: f64,
    cores: f64,
    broker_cores: f64,
}

/// `binary` drains the `n` reviews of `broker`'s review topics in group
/// `group`, with a changelog of its own (one another run wrote would restore
/// its states, and its reviews would be skipped as done).
fn drain(
    broker: &Broker,
    dir: &std::path::Path,
    binary: &std::path::Path,
    group: &str,
    n: usize,
) -> Drain {
    let changelog = format!("changelog-{group}");
    broker.create_named_topics(&[&changelog], 6);
    let mut svc = Service::start_binary(
        binary,
        &broker.addr,
        group,
        dir,
        &[
            ("REVIEWGUARD_LOG", "warn"),
            ("REVIEWGUARD_TOPICS_CHANGELOG", &changelog),
        ],
    );
    let (svc_cpu0, broker_cpu0) = (cpu_seconds(svc.child.id()), cpu_seconds(broker.pid()));
    let secs = service_drain(&mut svc, n as u64, Some(broker.pid()));
    let (svc_cpu, broker_cpu) = (
        cpu_seconds(svc.child.id()) - svc_cpu0,
        cpu_seconds(broker.pid()) - broker_cpu0,
    );
    svc.terminate();
    Drain {
        rate: n as f64 / secs,
        us_per_review: svc_cpu / n as f64 * 1e6,
        cores: svc_cpu / secs,
        broker_cores: broker_cpu / secs,
    }
}

/// `STREAM_AB=OLD,NEW` (two reviewguard binaries): each drains the same
/// topics of one broker, in turns, `STREAM_PAIRS` times (default 6), each
/// run with a group and a changelog of its own. Prints each run's rate and
/// CPU per review, and the medians. Runs alternate because this VM's speed
/// drifts by half within minutes: only runs close in time compare.
fn compare_builds(dir: &std::path::Path, ab: &str) {
    let ((old, new), pairs) = ab_builds(ab);
    let n = stream_reviews();
    let broker = Broker::start();
    broker.create_topics(6);
    produce_all(&broker.addr, &world(n, 31));
    let bare = n as f64 / bare_consumer(&broker.addr, n, &format!("bare-{}", std::process::id()));
    println!("# {n} reviews, {pairs} pairs of runs; a bare consumer drained {bare:.0}/s\n");
    println!("| pair | build | reviews/s | CPU µs per review | cores |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    let m = alternate(old, new, pairs, |pair, label, binary| {
        let d = drain(
            &broker,
            dir,
            binary,
            &format!("ab-{pair}-{label}-{}", std::process::id()),
            n,
        );
        let (rate, per_review) = (d.rate, d.us_per_review);
        println!(
            "| {pair} | {label} | {rate:.0} | {per_review:.2} | {:.2} |",
            d.cores
        );
        (rate, per_review)
    });
    println!(
        "\nMedians: old {:.0}/s at {:.2} µs per review, new {:.0}/s at {:.2} µs; per pair, new/old: rate {:.3}, CPU per review {:.3}.",
        m[0], m[1], m[2], m[3], m[4], m[5]
    );
}

/// `STREAM_AB`'s two binaries, and `STREAM_PAIRS` (default 6).
fn ab_builds(ab: &str) -> ((&str, &str), usize) {
    let Some(builds) = ab.split_once(',') else {
        panic!("STREAM_AB must be OLD_BINARY,NEW_BINARY");
    };
    (builds, stream_pairs(6))
}

/// `run(pair, label, binary)` for the old build and the new, in turns, `pairs`
/// times; each run gives two figures. The medians: old's two, new's two,
/// and the per-pair ratios new/old of each.
fn alternate(
    old: &str,
    new: &str,
    pairs: usize,
    mut run: impl FnMut(usize, &str, &std::path::Path) -> (f64, f64),
) -> [f64; 6] {
    let mut figures: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for pair in 1..=pairs {
        // Old first in odd pairs, new first in even ones, so that neither
        // build always runs second: the VM's speed drifts, and in the drain
        // A/B the broker's log grows with every run.
        let mut sides = [(0, "old", old), (1, "new", new)];
        if pair % 2 == 0 {
            sides.reverse();
        }
        for (side, label, binary) in sides {
            figures[side].push(run(pair, label, binary.as_ref()));
        }
    }
    let [o, w] = &figures;
    let ratios =
        |f: fn(&(f64, f64)) -> f64| median(o.iter().zip(w).map(|(a, b)| f(b) / f(a)).collect());
    [
        median(o.iter().map(|x| x.0).collect()),
        median(o.iter().map(|x| x.1).collect()),
        median(w.iter().map(|x| x.0).collect()),
        median(w.iter().map(|x| x.1).collect()),
        ratios(|x| x.0),
        ratios(|x| x.1),
    ]
}

/// (rate, floor (p50 ms, p99 ms, n), service (p50 ms, p99 ms, n)) for a
/// stream of 5 s at `rate` after 3 s of warm-up, on topics of their own.
/// And the cores the service, Tansu and the sending bench used meanwhile.
type LatencyRow = (f64, (f64, f64, usize), (f64, f64, f64), [f64; 3]);

/// A paced stream's records: (topic, key, JSON).
type Records = Vec<(String, String, Vec<u8>)>;

/// The warm-up (3 s) and the measured stream (5 s) at `rate`.
fn latency_streams(rate: f64) -> (Records, Records) {
    let stream = |n: usize, seed: u64| -> Records {
        world(n.max(1000), seed)
            .iter()
            .map(|r| {
                (
                    format!("reviews.{}", r.domain),
                    r.business_id.clone(),
                    serde_json::to_vec(r).expect("json"),
                )
            })
            .collect()
    };
    (
        stream((rate * WARM_SECS) as usize, 32),
        stream((rate * MEASURED_SECS) as usize, 33),
    )
}

const WARM_SECS: f64 = 3.0;
const MEASURED_SECS: f64 = 5.0;

fn latency_at(dir: &std::path::Path, k: u32, rate: f64) -> LatencyRow {
    let (warmup, measured) = latency_streams(rate);

    // The broker's own floor: the same paced stream to the same topics,
    // read by a bare consumer; latency from the record's timestamp to its
    // arrival. Each reader has a fresh broker: Tansu 0.6's in-memory store
    // gets slower as it fills, which would favour whichever ran first.
    let (bare_p50, bare_p99) = {
        let broker = Broker::start();
        broker.create_topics(6);
        bare_latency(&broker, &warmup, &measured, rate)
    };
    let (svc, cores) = service_latency(
        dir,
        &format!("stream-bench-latency-{k}"),
        None,
        rate,
        &warmup,
        &measured,
    );
    (rate, (bare_p50, bare_p99, measured.len()), svc, cores)
}

/// `reviewguard run` (this build, or `binary`) on a fresh broker, sent
/// `warmup` then `measured` at `rate`: (p50 ms, p99 ms, observations) of the
/// measured stream's pipeline latency, from the service's histogram, and
/// the cores the service, Tansu and the sending bench used meanwhile.
/// `STREAM_TRACE` prints the p99 of every 100 ms (to stderr).
fn service_latency(
    dir: &std::path::Path,
    group: &str,
    binary: Option<&std::path::Path>,
    rate: f64,
    warmup: &[(String, String, Vec<u8>)],
    measured: &[(String, String, Vec<u8>)],
) -> ((f64, f64, f64), [f64; 3]) {
    let broker = Broker::start();
    broker.create_topics(6);
    let env = [("REVIEWGUARD_LOG", "warn")];
    let mut svc = match binary {
        Some(b) => Service::start_binary(b, &broker.addr, group, dir, &env),
        None => Service::start(&broker.addr, group, dir, &env),
    };
    svc.wait_ready(Duration::from_secs(60));
    let all: Vec<_> = warmup.iter().chain(measured).cloned().collect();
    let name = "reviewguard_pipeline_latency_seconds";
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tracer = std::env::var_os("STREAM_TRACE").map(|_| {
        let (addr, stop) = (svc.metrics_addr.clone(), stop.clone());
        std::thread::spawn(move || trace_p99(&addr, name, &stop))
    });
    // The histogram as the measured stream starts (what the warm-up left).
    let mut before = String::new();
    let pids = [svc.child.id(), broker.pid(), std::process::id()];
    let mut cpu0 = [0.0; 3];
    paced_send(&broker.addr, &all, rate, None, &[warmup.len()], |_| {
        before = svc.metrics().unwrap_or_default();
        cpu0 = pids.map(cpu_seconds);
    });
    let cpu = pids.map(cpu_seconds);
    let cores = [0, 1, 2].map(|i| (cpu[i] - cpu0[i]) / MEASURED_SECS);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = tracer {
        let _ = t.join();
    }
    let after = svc.wait_consumed(
        (warmup.len() + measured.len()) as u64,
        Duration::from_secs(300),
    );
    svc.terminate();
    let (b, a) = (buckets(&before, name), buckets(&after, name));
    (
        (
            quantile(&b, &a, 0.50) * 1e3,
            quantile(&b, &a, 0.99) * 1e3,
            a.last().map_or(0.0, |x| x.1) - b.last().map_or(0.0, |x| x.1),
        ),
        cores,
    )
}

/// Every 100 ms until `stop`: the observations of histogram `name` since
/// the last scrape, their p99 and the bucket that holds the slowest, on
/// stderr (where a latency tail comes from: periodic spikes or a rise).
fn trace_p99(addr: &str, name: &str, stop: &std::sync::atomic::AtomicBool) {
    let t0 = Instant::now();
    let mut prev: Vec<(f64, f64)> = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let Some((200, body)) = common::http_get(addr, "/metrics") else {
            continue;
        };
        let now = buckets(&body, name);
        if !prev.is_empty() {
            let n = now.last().map_or(0.0, |x| x.1) - prev.last().map_or(0.0, |x| x.1);
            let slowest = now
                .iter()
                .zip(&prev)
                .find(|(a, p)| n > 0.0 && a.1 - p.1 >= n)
                .map_or(0.0, |(a, _)| a.0);
            eprintln!(
                "trace {:6.2} s: {n:6.0} observed, p99 {:6.1} ms, slowest <= {:.0} ms",
                t0.elapsed().as_secs_f64(),
                quantile(&prev, &now, 0.99) * 1e3,
                slowest * 1e3
            );
        }
        prev = now;
    }
}

/// `STREAM_AB=OLD,NEW` with `STREAM_AB_RATE`: the two builds' pipeline
/// latency at that rate, in alternating runs (`STREAM_PAIRS`, default 6),
/// each on a fresh broker with the same streams; each run's p50 and p99,
/// the medians, and the per-pair ratios.
fn compare_latency(dir: &std::path::Path, ab: &str, rate: f64) {
    let ((old, new), pairs) = ab_builds(ab);
    let (warmup, measured) = latency_streams(rate);
    println!("# pipeline latency at {rate:.0}/s, {pairs} pairs of runs\n");
    println!("| pair | build | p50 | p99 | reviewguard cores | Tansu cores |");
    println!("| ---: | --- | ---: | ---: | ---: | ---: |");
    let m = alternate(old, new, pairs, |pair, label, binary| {
        let ((p50, p99, _), cores) = service_latency(
            dir,
            &format!("ab-latency-{pair}-{label}-{}", std::process::id()),
            Some(binary),
            rate,
            &warmup,
            &measured,
        );
        println!(
            "| {pair} | {label} | {p50:.1} ms | {p99:.1} ms | {:.2} | {:.2} |",
            cores[0], cores[1]
        );
        (p50, p99)
    });
    println!(
        "\nMedians: old p50 {:.1} ms, p99 {:.1} ms; new p50 {:.1} ms, p99 {:.1} ms; per pair, new/old: p50 {:.3}, p99 {:.3}.",
        m[0], m[1], m[2], m[3], m[4], m[5]
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}
