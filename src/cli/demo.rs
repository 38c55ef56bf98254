//! `demo`: the whole pipeline on an embedded default. An in-process
//! Kafka-protocol cluster (librdkafka's mock cluster), a simulated stream in
//! which a few businesses go bad among many that stay fine, the default
//! models; prints each flag as one line and a summary.

use anyhow::{Context, Result, anyhow};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, Producer};
use reviewguard::core::extract::Extractor;
use reviewguard::core::flag::{self, Flag};
use reviewguard::core::privacy::Pseudonymiser;
use reviewguard::core::scorer::{Models, Scorer};
use reviewguard::offline::simulate::{self, SimConfig};
use reviewguard::service::config::Config;
use reviewguard::service::http::Health;
use reviewguard::service::kafka;
use reviewguard::service::metrics::Metrics;
use reviewguard::service::produce;
use reviewguard::types::Domain;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub(crate) struct DemoOptions {
    pub seed: u64,
    pub businesses: usize,
    pub days: u32,
    pub metrics_addr: std::net::SocketAddr,
    /// Serve the desk here after the run, until a signal.
    pub desk: Option<std::net::SocketAddr>,
}

const PARTITIONS: i32 = 3;

/// Run the demo. Blocks; must be called outside a Tokio runtime, since the
/// mock cluster lives on this thread.
pub(crate) fn run(opts: &DemoOptions, mut print: impl FnMut(&str)) -> Result<()> {
    let started = Instant::now();
    let cluster = MockCluster::new(1).context("cannot start the in-process Kafka cluster")?;
    let mut cfg = Config::default();
    cfg.kafka.brokers = cluster.bootstrap_servers();
    cfg.kafka.group_id = "reviewguard-demo".into();
    cfg.metrics.addr = opts.metrics_addr.to_string();
    let t = cfg.topics.clone();
    for topic in t.all() {
        cluster
            .create_topic(topic, PARTITIONS, 1)
            .with_context(|| format!("cannot create topic {topic}"))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let summary = rt.block_on(async_demo(opts, cfg, &mut print, started));
    drop(rt);
    drop(cluster);
    summary
}

async fn async_demo(
    opts: &DemoOptions,
    cfg: Config,
    print: &mut impl FnMut(&str),
    started: Instant,
) -> Result<()> {
    let world = simulate::generate(&SimConfig {
        seed: opts.seed,
        businesses: opts.businesses,
        days: opts.days,
        ..SimConfig::default()
    });
    print(&format!(
        "reviewguard demo: {} businesses per domain over {} days, {} reviews, in-process Kafka at {}",
        opts.businesses,
        opts.days,
        world.reviews.len(),
        cfg.kafka.brokers
    ));
    let metrics = Metrics::new();
    let health = Arc::new(Health::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let addr = reviewguard::service::http::serve(
        cfg.metrics.addr.parse()?,
        metrics.clone(),
        health.clone(),
        stop_rx.clone(),
    )
    .await
    .with_context(|| format!("cannot serve metrics on {}", cfg.metrics.addr))?;
    print(&format!(
        "metrics: http://{addr}/metrics (while the demo runs)"
    ));

    // Produce the simulated stream, plus a few malformed messages for the DLQ.
    let producer: FutureProducer = kafka::producer_config(&cfg).create()?;
    let mut deliveries = Vec::with_capacity(world.reviews.len());
    for r in &world.reviews {
        let topic = match r.domain {
            Domain::Food => &cfg.topics.reviews_food,
            Domain::Tourism => &cfg.topics.reviews_tourism,
        };
        let body = serde_json::to_vec(r)?;
        deliveries.push(produce::send(
            &producer,
            topic,
            &r.business_id,
            &body,
            None,
        )?);
    }
    let malformed: [&[u8]; 3] = [
        b"{not json",
        b"{\"review_id\":\"x\",\"business_id\":\"shop-1\",\"text\":\"hi\"}",
        b"\xff\xfe",
    ];
    for m in malformed {
        deliveries.push(produce::send(
            &producer,
            &cfg.topics.reviews_food,
            "shop-00001",
            m,
            None,
        )?);
    }
    // What inspectors found, on the outcomes topic: the service folds each
    // into its business's state when the reviews reach its time.
    for i in &world.inspections {
        let body = serde_json::to_vec(&i.outcome_message())?;
        deliveries.push(produce::send(
            &producer,
            &cfg.topics.outcomes,
            &i.business_id,
            &body,
            None,
        )?);
    }
    for d in deliveries {
        d.await
            .map_err(|_| anyhow!("producer dropped"))?
            .map_err(|(e, _)| anyhow!("cannot produce to the demo cluster: {e}"))?;
    }
    let total = world.reviews.len() + malformed.len();

    let scorer = Scorer {
        extractor: Arc::new(Extractor::builtin()?),
        models: Models::builtin()?,
        pseudonyms: Pseudonymiser::ephemeral(),
        decide: cfg.decide.clone(),
        outcomes: Default::default(),
    };
    let svc_cfg = cfg.clone();
    let svc_metrics = metrics.clone();
    let service =
        tokio::spawn(
            async move { kafka::run(&svc_cfg, scorer, svc_metrics, health, stop_rx).await },
        );

    // Wait until every message has been consumed, then drain and stop.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let consumed: u64 = Domain::ALL
            .iter()
            .map(|d| {
                metrics
                    .reviews_consumed
                    .with_label_values(&[d.as_str()])
                    .get()
            })
            .sum();
        if consumed as usize >= total {
            break;
        }
        if service.is_finished() || Instant::now() > deadline {
            let _ = stop_tx.send(true);
            let res = service.await?;
            res?;
            return Err(anyhow!(
                "the service consumed only {consumed} of {total} messages before the deadline"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let run = service.await??;

    let flags = read_flags(&cfg, run.flags as usize).await?;
    let mut flags = flags;
    flags.sort_by(|a, b| {
        a.event_time
            .cmp(&b.event_time)
            .then(a.business_id.cmp(&b.business_id))
    });
    for f in &flags {
        print(&flag::summary_line(f));
    }
    let keyed: Vec<(Domain, String, i64)> = flags
        .iter()
        .filter_map(|f| {
            chrono::DateTime::parse_from_rfc3339(&f.event_time)
                .ok()
                .map(|t| (f.domain, f.business_id.clone(), t.timestamp()))
        })
        .collect();
    let quality = simulate::flag_quality(&world, &keyed);
    let three = simulate::flag_quality_at_least(&world, &keyed, 3);
    let severities: Vec<String> = reviewguard::types::Severity::ALL
        .iter()
        .rev()
        .map(|s| {
            let n = flags.iter().filter(|f| f.severity == *s).count();
            format!("{} {n}", s.as_str())
        })
        .collect();
    let elapsed = started.elapsed();
    print(&format!(
        "summary: {} reviews + {} malformed consumed ({} to the DLQ), {} inspection outcomes, {} flags ({}); precision {:.2} and recall {:.2} against the simulator's hidden truth ({} of {} businesses with reported problems during a bad spell found; {} of {} with three or more); {:.1}s",
        world.reviews.len(),
        malformed.len(),
        run.rejected,
        world.inspections.len(),
        flags.len(),
        severities.join(", "),
        quality.precision(),
        quality.recall(),
        quality.found,
        quality.bad_businesses,
        three.found,
        three.bad_businesses,
        elapsed.as_secs_f64()
    ));
    producer.flush(Duration::from_secs(5))?;
    if let Some(addr) = opts.desk {
        serve_desk(&cfg, addr, flags.len(), print).await?;
    }
    Ok(())
}

/// The inspectors' desk on the demo's flags, with a supervisor and an
/// inspector of the most flagged region, until SIGINT or SIGTERM. Its
/// store is a file in the temporary folder, removed at the end.
async fn serve_desk(
    cfg: &Config,
    addr: std::net::SocketAddr,
    flags: usize,
    print: &mut impl FnMut(&str),
) -> Result<()> {
    use reviewguard::desk::{auth, store};
    let path = std::env::temp_dir().join(format!(
        "reviewguard-demo-desk-{}.sqlite",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let mut cfg = cfg.clone();
    cfg.desk.addr = addr.to_string();
    cfg.desk.store = path.display().to_string();
    cfg.desk.group_id = "reviewguard-demo-desk".into();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = reviewguard::desk::serve::start(&cfg, stop_rx).await?;
    let desk = running.desk.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let kept = loop {
        let kept = desk
            .store
            .flags(
                &store::Scope::All,
                store::StatusFilter::All,
                store::Order::Newest,
                100_000,
                0,
            )
            .await?;
        if kept.len() >= flags || Instant::now() > deadline {
            break kept;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut per_region = std::collections::BTreeMap::<&str, usize>::new();
    for f in &kept {
        *per_region.entry(f.region.as_str()).or_default() += 1;
    }
    let region = per_region
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(r, _)| r.to_string())
        .unwrap_or_default();
    let password = auth::random_hex(8);
    let hash = auth::hash_password(&password)?;
    for (name, role, regions) in [
        ("demo", store::Role::Supervisor, vec![]),
        ("inspector", store::Role::Inspector, vec![region.clone()]),
    ] {
        let user = store::User {
            name: name.into(),
            role,
            regions,
            password_hash: hash.clone(),
            pseudonym: auth::pseudonym(),
        };
        desk.store.add_user(&user, true, store::now_ms()).await?;
    }
    print(&format!(
        "desk: http://{} ({} flags) — log in as demo (supervisor, every region) or inspector (region {region}), password {password}; Ctrl-C stops it",
        running.addr,
        kept.len()
    ));
    super::run::wait_for_signal().await;
    let _ = stop_tx.send(true);
    running.join().await;
    let _ = std::fs::remove_file(&path);
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    Ok(())
}

async fn read_flags(cfg: &Config, expected: usize) -> Result<Vec<Flag>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", "reviewguard-demo-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&cfg.topics.inspection_food, &cfg.topics.inspection_tourism])?;
    let mut flags = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while flags.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(anyhow!(
                "read back {} of {expected} flags before the deadline",
                flags.len()
            ));
        }
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => flags.push(produce::parse_flag(m.payload().unwrap_or_default())?),
            Ok(Err(e)) => tracing::debug!(error = %e, "flag reader"),
            Err(_) => {}
        }
    }
    Ok(flags)
}
