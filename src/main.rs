//! The `reviewguard` command line: the thin shell over the library.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use cli::demo;
use reviewguard::core::extract::Extractor;
use reviewguard::core::model::{Model, ModelKind};
use reviewguard::core::privacy::Pseudonymiser;
use reviewguard::core::review;
use reviewguard::core::scorer::{Models, Scorer};
use reviewguard::offline::{replay, simulate, train};
use reviewguard::service::config::Config;
use reviewguard::service::http::Health;
use reviewguard::service::kafka;
use reviewguard::service::metrics::Metrics;
use reviewguard::types::Domain;

mod cli;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// mimalloc: under `run`'s threads glibc malloc and free took about a fifth
/// of the CPU (perf); mimalloc's thread-local pages make them cheap. Its
/// `override` feature also serves C's malloc and free, so librdkafka's
/// per-message allocations (made on its fetch thread, freed on ours) go to
/// mimalloc too: 240 fewer instructions per review on `run`'s stream path
/// (scripts/callgrind-run.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "reviewguard",
    version,
    about = "Streaming risk scorer: online reviews in, inspection flags out.",
    long_about = "reviewguard reads restaurant and tourism reviews from Kafka, extracts risk signals \
(illness, foreign objects, dirty rooms, overcharging ...), keeps per-business state in event time, \
scores each business with a trained model and puts flags with evidence on inspection topics.\n\n\
Start with `reviewguard demo`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole pipeline on an embedded Kafka cluster with simulated reviews; no setup.
    Demo {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Businesses per domain.
        #[arg(long, default_value_t = 150)]
        businesses: usize,
        #[arg(long, default_value_t = 45)]
        days: u32,
        /// Where /metrics is served while the demo runs (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        metrics_addr: std::net::SocketAddr,
    },
    /// The service against real brokers; SIGTERM/SIGINT drain and exit cleanly.
    Run {
        /// Config file; every key can be overridden by REVIEWGUARD_<SECTION>_<KEY>.
        #[arg(long, default_value = "config/reviewguard.toml")]
        config: PathBuf,
        /// Create missing topics with this many partitions before consuming.
        #[arg(long)]
        create_topics: Option<i32>,
    },
    /// Review JSON lines on stdin to {"review_id", "signals"} lines on stdout.
    Extract {
        /// Lexicon folder (common.toml, food.toml, tourism.toml); default: built in.
        #[arg(long)]
        lexicons: Option<PathBuf>,
    },
    /// Reviews JSONL through the same core as the stream; flags JSONL out.
    Replay {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Config file for models, lexicons and decision settings; default: built in.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// How a business's flags came about: its reviews through the same core, step by step.
    Explain {
        /// The business to explain.
        #[arg(long)]
        business: String,
        /// Reviews JSONL, as for replay.
        #[arg(long)]
        input: PathBuf,
        /// food or tourism; default: every domain the business appears in.
        #[arg(long)]
        domain: Option<String>,
        /// Check that this flag_id is reproduced (exit 1 when it is not).
        #[arg(long)]
        flag: Option<String>,
        /// Config file for models, lexicons and decision settings; default: built in.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// A seeded synthetic world: reviews (JSONL or to Kafka), inspections CSV, hidden truth JSONL.
    Simulate(SimulateArgs),
    /// Fit a model from reviews and past inspection outcomes.
    Train {
        #[arg(long)]
        reviews: PathBuf,
        #[arg(long)]
        inspections: PathBuf,
        #[arg(long)]
        domain: String,
        /// Model file to write; its model card goes beside it (.md).
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        report: Option<PathBuf>,
        #[arg(long, default_value = "0.1.0")]
        version: String,
        /// Seed of the simulated data, recorded as provenance.
        #[arg(long)]
        seed: Option<u64>,
        /// Share of inspections (earliest first) used to fit; the rest validate.
        #[arg(long, default_value_t = 0.7)]
        fit_share: f64,
        /// Model to ship: `auto` (the tree ensemble when both its validation
        /// ROC-AUC and lift@10% beat the logistic regression's, else the
        /// logistic regression), `logistic` or `trees`.
        #[arg(long, default_value = "auto")]
        model_kind: String,
        /// Trees in the tree ensemble.
        #[arg(long, default_value_t = train::FOREST_TREES)]
        trees: usize,
        /// Greatest depth of each tree.
        #[arg(long, default_value_t = train::FOREST_DEPTH)]
        max_depth: usize,
    },
    /// Measure the signal extractor on a hand-labelled corpus (precision, recall, F1).
    EvalSignals {
        #[command(flatten)]
        set: LabelledSet,
        /// Print this many wrong records (index, expected, got) to stderr.
        #[arg(long, default_value_t = 0)]
        errors: usize,
        /// The lexicons alone: leave out the learned signal model (signals-<domain>.json).
        #[arg(long)]
        lexicon_only: bool,
    },
    /// Fit the learned signal model (char n-gram logistic regression) on a
    /// hand-labelled corpus, report k-fold cross-validated figures, write it.
    FitSignals {
        #[command(flatten)]
        set: LabelledSet,
        /// Write the model here, e.g. config/lexicons/signals-tourism.json.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Folds of the cross-validation that reports honest figures (0: none).
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Features are hashed into 2^bits buckets.
        #[arg(long, default_value_t = 12)]
        bits: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Score past inspections with a model.
    Evaluate {
        #[arg(long)]
        reviews: PathBuf,
        #[arg(long)]
        inspections: PathBuf,
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        report: Option<PathBuf>,
        /// Print one JSON object with the figures.
        #[arg(long)]
        json: bool,
    },
}

/// A hand-labelled corpus and the lexicons to run on it.
#[derive(clap::Args)]
struct LabelledSet {
    /// Corpus CSV with a `review` column, e.g. ../shared/data/ChnSentiCorp_htl_all.csv.
    #[arg(long)]
    corpus: PathBuf,
    /// Labels CSV (index,sha256,signals), e.g. dev/labels/ChnSentiCorp_htl_all.csv.
    #[arg(long)]
    labels: PathBuf,
    #[arg(long)]
    domain: String,
    /// Lexicon folder (fit-signals: the terms the model complements); default: built in.
    #[arg(long)]
    lexicons: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SimulateArgs {
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Businesses per domain.
    #[arg(long, default_value_t = 500)]
    businesses: usize,
    #[arg(long, default_value_t = 180)]
    days: u32,
    /// food, tourism or both.
    #[arg(long, default_value = "both")]
    domain: String,
    /// Reviews JSONL ("-" for stdout).
    #[arg(long)]
    reviews: Option<PathBuf>,
    /// Inspections CSV.
    #[arg(long)]
    inspections: Option<PathBuf>,
    /// Hidden truth per business, JSONL.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Produce the reviews to Kafka (reviews.food / reviews.tourism, key = business_id).
    #[arg(long)]
    brokers: Option<String>,
    /// With --brokers: reviews per second (0: as fast as the broker takes them).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// With --brokers: start over with the next seed when the world is used up, forever.
    #[arg(long)]
    forever: bool,
    /// Mix real review texts in as background: a CSV with a `review` column and
    /// optionally `label` (1 positive, 0 negative), e.g.
    /// food=../shared/data/waimai_10k.csv. `DOMAIN=PATH` for one domain, a
    /// bare PATH for both; repeatable. The texts are read, never copied.
    #[arg(long, value_name = "[DOMAIN=]PATH")]
    texts: Vec<String>,
}

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    init_tracing();
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Transparent huge pages off for this process: where the kernel uses
/// them always, a page mimalloc touches in its arenas can make a whole 2 MiB
/// page resident (an idle `run`: 62 MiB with them, 35 MiB without). The
/// memory bound is the service's promise; alternating stream runs showed no
/// loss of speed without them.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes integers only and touches no
        // memory of ours; a kernel without it returns an error, ignored.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("REVIEWGUARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("REVIEWGUARD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        b.json().init();
    } else {
        b.init();
    }
}

fn real_main() -> Result<()> {
    match Cli::parse().command {
        Command::Demo {
            seed,
            businesses,
            days,
            metrics_addr,
        } => {
            let opts = demo::DemoOptions {
                seed,
                businesses,
                days,
                metrics_addr,
            };
            let mut stdout = std::io::stdout().lock();
            demo::run(&opts, |line| {
                let _ = writeln!(stdout, "{line}");
            })?;
            Ok(())
        }
        Command::Run {
            config,
            create_topics,
        } => run(&config, create_topics),
        Command::Extract { lexicons } => extract(lexicons.as_deref()),
        Command::Replay { input, out, config } => replay_cmd(&input, &out, config.as_deref()),
        Command::Explain {
            business,
            input,
            domain,
            flag,
            config,
        } => explain_cmd(
            &business,
            &input,
            domain.as_deref(),
            flag.as_deref(),
            config.as_deref(),
        ),
        Command::Simulate(args) => simulate_cmd(&args),
        Command::Train {
            reviews,
            inspections,
            domain,
            out,
            report,
            version,
            seed,
            fit_share,
            model_kind,
            trees,
            max_depth,
        } => train_cmd(
            &reviews,
            &inspections,
            &domain,
            &out,
            report.as_deref(),
            &version,
            seed,
            fit_share,
            &model_kind,
            (trees, max_depth),
        ),
        Command::EvalSignals {
            set,
            errors,
            lexicon_only,
        } => eval_signals(&set, errors, lexicon_only),
        Command::FitSignals {
            set,
            out,
            folds,
            bits,
            seed,
        } => fit_signals(
            &set,
            out.as_deref(),
            folds,
            reviewguard::offline::fit_signals::FitOptions {
                bits,
                seed,
                ..Default::default()
            },
        ),
        Command::Evaluate {
            reviews,
            inspections,
            model,
            report,
            json,
        } => evaluate_cmd(&reviews, &inspections, &model, report.as_deref(), json),
    }
}

fn parse_domain(s: &str) -> Result<Domain> {
    Domain::parse(s).ok_or_else(|| anyhow!("--domain must be food or tourism, got {s:?}"))
}

/// Models, lexicons and decision settings named by a config.
fn scorer_from(cfg: &Config, pseudonyms: Pseudonymiser) -> Result<Scorer> {
    let load = |path: &str, d: Domain| -> Result<Arc<Model>> {
        Ok(Arc::new(if path.is_empty() {
            Model::builtin(d)?
        } else {
            Model::load(Path::new(path), d)?
        }))
    };
    let shadow = |path: &str, d: Domain| -> Result<Option<Arc<Model>>> {
        if path.is_empty() {
            return Ok(None);
        }
        let m = Model::load(Path::new(path), d)
            .with_context(|| format!("models.shadow_{d}: cannot use {path}"))?;
        tracing::info!(domain = %d, path, name = %m.file.name, version = %m.file.version, "shadow model loaded: scored beside the live model, never flags");
        Ok(Some(Arc::new(m)))
    };
    let extractor = extractor_from(cfg.lexicon_dir().as_deref())?;
    Ok(Scorer {
        extractor: Arc::new(extractor),
        models: Models {
            food: load(&cfg.models.food, Domain::Food)?,
            tourism: load(&cfg.models.tourism, Domain::Tourism)?,
            shadow_food: shadow(&cfg.models.shadow_food, Domain::Food)?,
            shadow_tourism: shadow(&cfg.models.shadow_tourism, Domain::Tourism)?,
        },
        pseudonyms,
        decide: cfg.decide,
    })
}

fn run(config: &Path, create_topics: Option<i32>) -> Result<()> {
    let cfg = Config::load(Some(config), std::env::vars())?;
    let key = cfg.pseudonym_key()?.ok_or_else(|| {
        anyhow!("no pseudonym key: set REVIEWGUARD_PRIVACY_PSEUDONYM_KEY (or privacy.pseudonym_key_file) to a secret of at least 16 bytes; reviewer ids are never kept in clear")
    })?;
    if key.len() < 16 {
        bail!("privacy.pseudonym_key must be at least 16 bytes");
    }
    let scorer = scorer_from(&cfg, Pseudonymiser::new(&key))?;
    // The loop below runs on this thread and hands each batch to rayon: as one
    // of rayon's workers it works on the batch too, instead of waiting idle.
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .context("cannot start the worker threads")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        let metrics = Metrics::new();
        let health = Arc::new(Health::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let addr = reviewguard::service::http::serve_with_admin(
            cfg.metrics.addr.parse()?,
            metrics.clone(),
            health.clone(),
            cfg.admin_token().cloned(),
            stop_rx.clone(),
        )
        .await
        .with_context(|| format!("cannot listen on metrics.addr {}", cfg.metrics.addr))?;
        tracing::info!(%addr, reload_endpoint = cfg.admin_token().is_some(), "serving /metrics, /healthz, /readyz");
        if let Some(p) = create_topics {
            kafka::ensure_topics(&cfg, p).await?;
        }
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received");
            let _ = stop_tx.send(true);
        });
        kafka::run(&cfg, scorer, metrics, health, stop_rx).await?;
        Ok(())
    });
    // A changelog writer still enqueuing (the broker gone) must not keep a
    // stopping process alive.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn extract(lexicons: Option<&Path>) -> Result<()> {
    let ex = extractor_from(lexicons)?;
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let opts = review::DecodeOptions::default();
    for (i, line) in stdin.split(b'\n').enumerate() {
        let line = line?;
        let n = i + 1;
        let v = match extract_line(&ex, &line, &opts) {
            Ok((id, signals)) => serde_json::json!({"review_id": id, "signals": signals}),
            Err(e) => serde_json::json!({"line": n, "error": e}),
        };
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// `extract` needs only review_id, domain and text.
fn extract_line(
    ex: &Extractor,
    line: &[u8],
    opts: &review::DecodeOptions,
) -> Result<(String, Vec<&'static str>), String> {
    if line.len() > opts.max_bytes {
        return Err(format!(
            "line is {} bytes, the limit is {}",
            line.len(),
            opts.max_bytes
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let id = obj
        .get("review_id")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or("review_id is missing or not a string")?;
    let domain = obj
        .get("domain")
        .and_then(|v| v.as_str())
        .and_then(Domain::parse)
        .ok_or("domain is missing or not \"food\"/\"tourism\"")?;
    let text = obj
        .get("text")
        .and_then(|v| v.as_str())
        .ok_or("text is missing or not a string")?;
    Ok((
        id.to_owned(),
        ex.extract(domain, text).categories.sorted_names(),
    ))
}

fn explain_cmd(
    business: &str,
    input: &Path,
    domain: Option<&str>,
    flag: Option<&str>,
    config: Option<&Path>,
) -> Result<()> {
    let domain = domain.map(parse_domain).transpose()?;
    let (cfg, scorer) = offline_scorer(config)?;
    let f = std::fs::File::open(input)
        .with_context(|| format!("cannot open --input {}", input.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let x = reviewguard::offline::explain::explain(
        &scorer,
        std::io::BufReader::with_capacity(1 << 20, f),
        business,
        domain,
        cfg.limits.max_message_bytes,
        &mut out,
    )?;
    writeln!(
        out,
        "business {business}: {} reviews, {} flags ({} input lines refused by the decoder)",
        x.reviews,
        x.flags.len(),
        x.rejected
    )?;
    out.flush()?;
    if x.reviews == 0 {
        bail!("no review of business {business:?} in {}", input.display());
    }
    if let Some(id) = flag {
        if x.flags.iter().any(|f| f.flag_id == id) {
            writeln!(out, "flag {id}: reproduced")?;
            out.flush()?;
        } else {
            bail!(
                "flag {id} is not reproduced from {}: the reviews, the models (sha256) or the decision settings differ",
                input.display()
            );
        }
    }
    Ok(())
}

/// Config, and a scorer from it, for the commands that read files (replay, explain).
fn offline_scorer(config: Option<&Path>) -> Result<(Config, Scorer)> {
    let cfg = match config {
        Some(p) => Config::load(Some(p), std::env::vars())?,
        None => Config::default(),
    };
    let key = cfg.pseudonym_key()?;
    let scorer = scorer_from(
        &cfg,
        key.map_or_else(Pseudonymiser::ephemeral, |k| Pseudonymiser::new(&k)),
    )?;
    Ok((cfg, scorer))
}

fn replay_cmd(input: &Path, out: &Path, config: Option<&Path>) -> Result<()> {
    let (cfg, scorer) = offline_scorer(config)?;
    let f = std::fs::File::open(input)
        .with_context(|| format!("cannot open --input {}", input.display()))?;
    let o = std::fs::File::create(out)
        .with_context(|| format!("cannot create --out {}", out.display()))?;
    let started = std::time::Instant::now();
    let mut shown = 0;
    let (s, _) = replay::replay(
        &scorer,
        std::io::BufReader::with_capacity(1 << 20, f),
        std::io::BufWriter::new(o),
        cfg.limits.max_message_bytes,
        || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        |bad| {
            if shown < 10 {
                eprintln!(
                    "{}:{}: skipped: {}: {}",
                    input.display(),
                    bad.line,
                    bad.reason.as_str(),
                    bad.detail
                );
            }
            shown += 1;
        },
    )?;
    let secs = started.elapsed().as_secs_f64();
    let rejected: u64 = s.rejected.values().sum();
    if !s.shadow.is_empty() {
        eprintln!(
            "replay: shadow model vs live (scores at or above each model's low threshold): {:?}",
            s.shadow
        );
    }
    eprintln!(
        "replay: {} lines, {} rejected {:?}, {} flags in {:.2}s ({:.0} reviews/s, {:.1} MB/s)",
        s.reviews,
        rejected,
        s.rejected,
        s.flags,
        secs,
        s.reviews as f64 / secs.max(1e-9),
        s.bytes as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(())
}

fn simulate_cmd(a: &SimulateArgs) -> Result<()> {
    if a.reviews.is_none() && a.brokers.is_none() {
        bail!(
            "say where the reviews go: --reviews FILE (or - for stdout) and/or --brokers HOST:PORT"
        );
    }
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
        ..Default::default()
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
    if let Some(brokers) = &a.brokers {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(kafka::produce_simulation(
            brokers,
            &Config::default().topics,
            sim,
            a.rate,
            a.forever,
        ))?;
    }
    Ok(())
}

fn write_reviews(world: &simulate::World, reviews: &Path) -> Result<()> {
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

#[allow(clippy::too_many_arguments)]
fn train_cmd(
    reviews: &Path,
    inspections: &Path,
    domain: &str,
    out: &Path,
    report: Option<&Path>,
    version: &str,
    seed: Option<u64>,
    fit_share: f64,
    model_kind: &str,
    (trees, max_depth): (usize, usize),
) -> Result<()> {
    let domain = parse_domain(domain)?;
    if !(0.3..=0.95).contains(&fit_share) {
        bail!("--fit-share must be from 0.3 to 0.95");
    }
    let kind = train::KindChoice::parse(model_kind).ok_or_else(|| {
        anyhow!("--model-kind must be auto, logistic or trees, got {model_kind:?}")
    })?;
    let revs = train::read_reviews(reviews)?;
    let insp = train::read_inspections(inspections)?;
    let ex = Extractor::builtin()?;
    // File names only: the same data in another folder gives the same model file.
    let command = format!(
        "train --reviews {} --inspections {} --domain {domain} --version {version}{} --fit-share {fit_share}{}{}",
        file_name(reviews),
        file_name(inspections),
        seed.map_or(String::new(), |s| format!(" --seed {s}")),
        if kind == train::KindChoice::Auto {
            String::new()
        } else {
            format!(" --model-kind {model_kind}")
        },
        if (trees, max_depth) == (train::FOREST_TREES, train::FOREST_DEPTH) {
            String::new()
        } else {
            format!(" --trees {trees} --max-depth {max_depth}")
        }
    );
    let t = train::train(
        &revs,
        &insp,
        &ex,
        &train::TrainOptions {
            domain,
            name: domain.as_str().to_owned(),
            version: version.to_owned(),
            data: format!("{} + {}", file_name(reviews), file_name(inspections)),
            seed,
            command: format!("reviewguard {command}"),
            fit_share,
            kind,
            trees,
            max_depth,
            progress: reviewguard::offline::progress::bar(0, "training"),
        },
    )?;
    let text = t.file.to_json()?;
    std::fs::write(out, &text).with_context(|| format!("cannot write {}", out.display()))?;
    // Check the file we wrote loads as the service would load it.
    let model = Model::load(out, domain)?;
    let card = model_card(&model, &t);
    let card_path = out.with_extension("md");
    std::fs::write(&card_path, &card)
        .with_context(|| format!("cannot write {}", card_path.display()))?;
    if let Some(dir) = report {
        reviewguard::offline::report::plots(
            dir,
            &[
                reviewguard::offline::report::Series {
                    name: shipped_name(t.file.kind),
                    scores: &t.validation_scores,
                    outcomes: &t.validation_outcomes,
                },
                reviewguard::offline::report::Series {
                    name: shipped_name(other_kind(t.file.kind)),
                    scores: match t.file.kind {
                        ModelKind::TreeEnsemble => &t.logistic_scores,
                        ModelKind::LogisticRegression => &t.forest.validation_scores,
                    },
                    outcomes: &t.validation_outcomes,
                },
            ],
        )?;
        let p = dir.join("report.md");
        std::fs::write(
            &p,
            format!("{card}\n{}", reviewguard::offline::report::plots_markdown()),
        )
        .with_context(|| format!("cannot write {}", p.display()))?;
    }
    tracing::info!(
        domain = %domain,
        model = %out.display(),
        sha256 = %model.sha256,
        kind = t.file.kind.as_str(),
        roc_auc = t.validation.roc_auc,
        lift_at_10pct = t.validation.lift_at_10pct,
        logistic_roc_auc = t.logistic.roc_auc,
        logistic_lift_at_10pct = t.logistic.lift_at_10pct,
        forest_roc_auc = t.forest.validation.roc_auc,
        forest_lift_at_10pct = t.forest.validation.lift_at_10pct,
        "model written"
    );
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn shipped_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::LogisticRegression => "logistic regression",
        ModelKind::TreeEnsemble => "tree ensemble",
    }
}

fn other_kind(kind: ModelKind) -> ModelKind {
    match kind {
        ModelKind::LogisticRegression => ModelKind::TreeEnsemble,
        ModelKind::TreeEnsemble => ModelKind::LogisticRegression,
    }
}

fn model_card(model: &Model, t: &train::Trained) -> String {
    let f = &model.file;
    let names = &f.feature_names;
    let trees_name = format!(
        "bagged decision trees ({} trees, depth <= {}, {} nodes)",
        t.forest.trees, t.forest.max_depth, t.forest.nodes
    );
    let (lr_row, trees_row) = match f.kind {
        ModelKind::LogisticRegression => (
            "logistic regression (shipped)".to_owned(),
            trees_name.clone(),
        ),
        ModelKind::TreeEnsemble => (
            "logistic regression".to_owned(),
            format!("{trees_name} (shipped)"),
        ),
    };
    let mut s = format!(
        "# Model card: {} {} ({})\n\n\
sha256 of the model file: `{}`\n\n\
Model: **{}** (`kind` `{}`).\n\n\
## Data\n{}; {} inspections ({} with violations), up to {}. Seed: {}.\n\n\
Command: `{}`\n\n\
## How it was fitted\n\
Features are point-in-time: each inspection sees only reviews created before it, folded in by the \
same core code the stream uses. The earliest {} inspections were used to fit, the later {} to validate. \
Two models are fitted on the same rows and judged on the same validation inspections:\n\n\
- a logistic regression (linfa-logistic) on standardised features, positives repeated to balance \
the classes; the regularisation strength (alpha) chosen on validation by ROC-AUC: {};\n\
- bagged decision trees: {} linfa-trees trees of depth at most {}, each on a seeded bootstrap of the \
class-balanced fitting rows and {:.0}% of the features (raw values); a tree's node value is the \
smoothed share of violations among its bootstrap rows reaching it, the score the mean leaf value \
over trees, Platt-calibrated on out-of-bag scores of the fitting rows.\n\n\
Rule: the tree ensemble is shipped when its validation ROC-AUC **and** its validation lift@10% are \
both higher than the logistic regression's; otherwise the logistic regression (the simpler model) \
is shipped.\n\n\
## Logistic regression vs the tree ensemble (same split, validation)\n{}\n{}\n\n\
## Validation of the shipped model (later inspections, not used to fit)\n{}\n\
Scores are calibrated (Platt scaling, slope {:.3}, intercept {:.3}) into the \
probability that an inspection finds violations. Severity thresholds on that probability: \
low {:.2}, medium {:.2}, high {:.2}.\n\n",
        f.name,
        f.version,
        f.domain,
        model.sha256,
        shipped_name(f.kind),
        f.kind.as_str(),
        f.provenance.data,
        f.provenance.rows,
        f.provenance.positives,
        f.provenance.data_until,
        f.provenance.seed.map_or("-".into(), |s| s.to_string()),
        f.provenance.command,
        t.validation_outcomes.len().abs_diff(f.provenance.rows),
        t.validation.n,
        t.alphas
            .iter()
            .map(|(a, auc)| format!("{a} -> {auc:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        t.forest.trees,
        t.forest.max_depth,
        train::FOREST_FEATURE_SHARE * 100.0,
        reviewguard::offline::report::comparison_markdown(&[
            (&lr_row, &t.logistic),
            (&trees_row, &t.forest.validation),
        ]),
        t.decision,
        train::metrics_markdown(&t.validation),
        f.calibration.slope,
        f.calibration.intercept,
        f.thresholds.low,
        f.thresholds.medium,
        f.thresholds.high,
    );
    if let Some(weights) = model.weights() {
        s.push_str(
            "## Coefficients (standardised features, towards violations, largest first)\n\
A weight is the change in log-odds of violations for one standard deviation more of the feature, \
the others held equal. Features are correlated (7-day counts are part of 30-day ones), so read \
signs of correlated pairs together.\n\n| feature | meaning | weight |\n|---|---|---|\n",
        );
        let mut coefs: Vec<(usize, f64)> = weights.into_iter().enumerate().collect();
        coefs.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        for (i, w) in coefs {
            s.push_str(&format!(
                "| {} | {} | {:+.3} |\n",
                names[i],
                reviewguard::offline::report::readable(&names[i]),
                w
            ));
        }
    } else {
        // Mean contribution over the validation inspections: what the flags' reasons show.
        let n = names.len();
        let (mut abs, mut signed) = (vec![0.0; n], vec![0.0; n]);
        for x in &t.validation_features {
            let sc = model.score(x);
            for (j, c) in sc.contributions.iter().enumerate() {
                abs[j] += c.abs();
                signed[j] += c;
            }
        }
        let rows = t.validation_features.len().max(1) as f64;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| abs[b].total_cmp(&abs[a]).then(a.cmp(&b)));
        s.push_str(
            "## Feature influence (validation inspections, largest first)\n\
A flag's reasons are per-feature contributions in calibrated log-odds of violations: in each tree, \
the change in node value at each split on the way to the leaf is credited to the split's feature \
(path attribution), averaged over trees and scaled to log-odds; with the base value they add up to \
the score. Below, their mean size and mean signed value over the validation inspections.\n\n\
| feature | meaning | mean abs. contribution | mean contribution |\n|---|---|---|---|\n",
        );
        for j in order {
            s.push_str(&format!(
                "| {} | {} | {:.3} | {:+.3} |\n",
                names[j],
                reviewguard::offline::report::readable(&names[j]),
                abs[j] / rows,
                signed[j] / rows
            ));
        }
    }
    s.push_str("\n## Limits\n\
- Fitted on simulated data (`reviewguard simulate`): the generative story is documented in `src/simulate.rs`; \
real inspection histories will differ. Retrain on the regulator's own history before relying on the scores.\n\
- Signals come from lexicons; what they miss (sarcasm, images, unusual phrasing) the model cannot see.\n\
- Scores rank businesses for inspection; they are not findings. Every flag carries its evidence for a person to read.\n");
    s
}

fn evaluate_cmd(
    reviews: &Path,
    inspections: &Path,
    model_path: &Path,
    report: Option<&Path>,
    json: bool,
) -> Result<()> {
    let text = std::fs::read(model_path)
        .with_context(|| format!("cannot read --model {}", model_path.display()))?;
    let domain = serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("domain")
                .and_then(|d| d.as_str())
                .and_then(Domain::parse)
        })
        .ok_or_else(|| {
            anyhow!(
                "{}: not a reviewguard model (no domain)",
                model_path.display()
            )
        })?;
    let model = Model::from_bytes(&text, &model_path.display().to_string(), domain)?;
    let revs = train::read_reviews(reviews)?;
    let insp = train::read_inspections(inspections)?;
    let (scores, outcomes) = train::evaluate(
        &revs,
        &insp,
        &model,
        &Extractor::builtin()?,
        &reviewguard::offline::progress::bar(0, "evaluating"),
    );
    let m = train::metrics(&scores, &outcomes);
    if let Some(dir) = report {
        reviewguard::offline::report::plots(
            dir,
            &[reviewguard::offline::report::Series {
                name: &format!("{} {}", model.file.name, model.file.version),
                scores: &scores,
                outcomes: &outcomes,
            }],
        )?;
        let p = dir.join("report.md");
        std::fs::write(
            &p,
            format!(
                "# Evaluation of model {} {} ({})\n\n\
Model file `{}`, sha256 `{}`.\n\n\
Reviews `{}`, inspections `{}`: every {} inspection scored with the features of the reviews \
created before it.\n\n{}\n{}",
                model.file.name,
                model.file.version,
                model.file.domain,
                file_name(model_path),
                model.sha256,
                file_name(reviews),
                file_name(inspections),
                model.file.domain,
                train::metrics_markdown(&m),
                reviewguard::offline::report::plots_markdown()
            ),
        )
        .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string(&m)?);
    } else {
        print!("{}", train::metrics_markdown(&m));
    }
    Ok(())
}

impl LabelledSet {
    /// The domain, the extractor from `lexicons` and the labelled reviews.
    fn open(
        &self,
    ) -> Result<(
        Domain,
        reviewguard::core::extract::Extractor,
        Vec<reviewguard::offline::devset::Labelled>,
    )> {
        let domain = parse_domain(&self.domain)?;
        let ex = extractor_from(self.lexicons.as_deref())?;
        let set = reviewguard::offline::devset::load(&self.corpus, &self.labels, domain)?;
        Ok((domain, ex, set))
    }
}

fn eval_signals(labelled: &LabelledSet, errors: usize, lexicon_only: bool) -> Result<()> {
    let (domain, mut ex, set) = labelled.open()?;
    if lexicon_only {
        ex.set_model(domain, None)?;
    }
    println!(
        "signals: lexicons{}",
        if ex.has_model(domain) {
            " + learned model"
        } else {
            " only"
        }
    );
    let r = reviewguard::offline::devset::evaluate(&ex, domain, &set);
    println!(
        "{} labelled reviews of {}",
        set.len(),
        labelled.corpus.display()
    );
    print!("{}", r.table());
    let texts: std::collections::HashMap<usize, &str> =
        set.iter().map(|l| (l.index, l.text.as_str())).collect();
    for (index, want, got) in r.errors.iter().take(errors) {
        // The terms behind the answer, never the review text.
        let hits: Vec<String> = texts
            .get(index)
            .map(|t| ex.extract(domain, t).hits)
            .unwrap_or_default()
            .into_iter()
            .map(|h| format!("{}:{}", h.category.as_str(), h.term))
            .collect();
        eprintln!(
            "{index}: expected {:?} got {:?} hits {:?}",
            want.sorted_names(),
            got.sorted_names(),
            hits
        );
    }
    Ok(())
}

fn fit_signals(
    input: &LabelledSet,
    out: Option<&Path>,
    folds: usize,
    opts: reviewguard::offline::fit_signals::FitOptions,
) -> Result<()> {
    use reviewguard::offline::devset;
    use reviewguard::offline::fit_signals as ngram;
    if !(4..=16).contains(&opts.bits) {
        bail!("--bits must be 4..=16, got {}", opts.bits);
    }
    let (domain, ex, set) = input.open()?;
    let examples = ngram::examples(&ex, domain, &set, opts.bits);
    let labelled: Vec<_> = examples.iter().map(|e| e.labels).collect();
    let lexicon: Vec<_> = examples.iter().map(|e| e.lexicon).collect();
    println!(
        "{} labelled reviews of {}",
        set.len(),
        input.corpus.display()
    );
    println!("\nlexicons alone:");
    print!("{}", devset::score(domain, &labelled, &lexicon).table());
    if folds >= 2 {
        let cv = ngram::cross_validate(&examples, domain, folds, &opts)?;
        println!(
            "\nlexicons OR model, {folds}-fold cross-validated (each review judged by a model fitted without it; no cue check):"
        );
        print!("{}", devset::score(domain, &labelled, &cv).table());
    }
    if let Some(out) = out {
        let name = input
            .labels
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = ngram::fit(
            &examples,
            domain,
            &opts,
            &format!(
                "{} labelled reviews ({name}), seed {}",
                set.len(),
                opts.seed
            ),
        )?;
        let mut text = serde_json::to_string(&file)?;
        text.push('\n');
        std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
        println!("\nwrote {}", out.display());
    }
    Ok(())
}

/// The lexicons in `dir`, or the ones compiled in.
fn extractor_from(dir: Option<&Path>) -> Result<Extractor> {
    Ok(match dir {
        Some(d) => Extractor::from_dir(d)?,
        None => Extractor::builtin()?,
    })
}
