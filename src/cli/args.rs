//! The command line's arguments: every subcommand and its options.

use super::common::*;
use anyhow::Result;
use clap::{Parser, Subcommand};
use reviewguard::types::Domain;
use std::path::PathBuf;

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
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        /// Then serve the inspectors' desk with the demo's flags on this
        /// address (e.g. 127.0.0.1:8080) until Ctrl-C; prints the logins.
        #[arg(long)]
        desk: Option<std::net::SocketAddr>,
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
        /// Inspection outcomes to fold in as the reviews reach their time:
        /// the inspections CSV, or `inspection.outcomes` messages as JSON lines.
        #[arg(long)]
        outcomes: Option<PathBuf>,
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
        /// Inspection outcomes, as for replay: the inspections CSV or
        /// `inspection.outcomes` messages as JSON lines.
        #[arg(long)]
        outcomes: Option<PathBuf>,
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
        /// Share of inspections (earliest first) used to fit and to
        /// cross-validate; the later rest is held out and only reported on.
        #[arg(long, default_value_t = 0.7)]
        fit_share: f64,
        /// Time-ordered cross-validation folds inside the fitting part.
        #[arg(long, default_value_t = 4)]
        folds: usize,
        /// Use the inspection history as features (days since the last
        /// inspection, its outcome, violations in the past year, inspected
        /// since the last flag), and fold each inspection into its
        /// business's state as the service folds `inspection.outcomes` in.
        /// Without outcomes the service scores every business as never
        /// inspected.
        #[arg(long)]
        history: bool,
        /// Which features the scorecard may read: `invariant` (shares and
        /// evidence measured against the domain's prior, and the inspection
        /// history: what means the same in any world) or `all` (counts too,
        /// which grow with a business's popularity).
        #[arg(long, default_value = "invariant")]
        features: String,
        /// A scorecard to shrink towards: `builtin` (this build's default
        /// model of the domain), a model file, or `none`. The
        /// cross-validation judges scorecards pulled towards its weights
        /// beside those pulled towards 0 and keeps whichever does best: with
        /// a few hundred inspections, starting from a larger history's
        /// weights usually ranks better.
        #[arg(long, default_value = "builtin")]
        prior: String,
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
        /// Written statements to judge too (`id,domain,kind,signals,text`, e.g.
        /// dev/labels/fresh-holdout/statements.csv): the recall of risk
        /// statements and the share of hard negatives flagged.
        #[arg(long)]
        statements: Option<PathBuf>,
        /// Bootstrap resamples behind each 95% interval (0: no intervals).
        #[arg(long, default_value_t = 1000)]
        bootstrap: usize,
    },
    /// Fit the learned signal model (per category, a calibrated logistic
    /// regression over hashed character n-grams, lexicon hits and cues) on
    /// hand-labelled reviews; report cross-validated figures; write it.
    FitSignals {
        #[command(flatten)]
        set: LabelledSet,
        /// Write the model here, e.g. config/lexicons/signals-tourism.json.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Version written into the model file.
        #[arg(long, default_value = "dev")]
        version: String,
        /// Folds of the cross-validation that chooses regularisation,
        /// calibration and thresholds (at least 2).
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Features are hashed into 2^bits buckets.
        #[arg(long, default_value_t = 18)]
        bits: u32,
        /// Candidate L1 strengths (comma-separated); cross-validation picks
        /// one per category.
        #[arg(long, value_delimiter = ',', default_value = "10,30,100")]
        l1: Vec<f64>,
        /// L2 strength.
        #[arg(long, default_value_t = 1.0)]
        l2: f64,
        /// FTRL learning-rate scale.
        #[arg(long, default_value_t = 0.2)]
        alpha: f64,
        /// Passes over the examples.
        #[arg(long, default_value_t = 5)]
        epochs: usize,
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
        /// The simulator's hidden truth (`simulate --truth`): also score the
        /// inspections as a scorer that knows each business's state would
        /// (bad spell, chronic, clean), and print the model's ROC-AUC as a
        /// share of that one's.
        #[arg(long)]
        truth: Option<PathBuf>,
    },
    /// The inspectors' web desk: flags in, outcomes back (docs/desk.md).
    /// Without a subcommand, serves the desk until SIGTERM or SIGINT.
    Desk {
        /// Config file; every key can be overridden by REVIEWGUARD_<SECTION>_<KEY>.
        #[arg(long, global = true, default_value = "config/reviewguard.toml")]
        config: PathBuf,
        #[command(subcommand)]
        action: Option<DeskCommand>,
    },
    /// Inspection outcomes recorded at the desk.
    Outcomes {
        #[command(subcommand)]
        action: OutcomesCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum DeskCommand {
    /// The desk's users.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Print the audit log, oldest first: every view and action, by whom and when.
    Audit {
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many entries.
        #[arg(long, default_value_t = 10_000)]
        limit: i64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user (or, with --replace, change one).
    Add {
        #[arg(long)]
        name: String,
        /// inspector, supervisor or admin.
        #[arg(long)]
        role: String,
        /// A region the user works (repeat for several); an inspector needs one.
        #[arg(long)]
        region: Vec<String>,
        /// A file holding the password (at least 10 characters); never give it on the command line.
        #[arg(long)]
        password_file: PathBuf,
        /// Change the role, regions and password of an existing user.
        #[arg(long)]
        replace: bool,
    },
    /// List the users (names, roles, regions).
    List,
    /// Remove a user; their sessions end at once.
    Remove {
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum OutcomesCommand {
    /// Write the inspections CSV (what `train` and `evaluate` read) from the desk's store.
    Export {
        #[arg(long, default_value = "config/reviewguard.toml")]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Read the outcomes topic (topics.outcomes, kafka.*) from its beginning
        /// instead of the desk's store: outcomes from any system that publishes them.
        #[arg(long)]
        from_topic: bool,
    },
}

/// A hand-labelled corpus and the lexicons to run on it.
#[derive(clap::Args)]
pub(crate) struct LabelledSet {
    /// Corpus CSV with a `review` column, e.g. ../shared/data/ChnSentiCorp_htl_all.csv.
    #[arg(long)]
    pub(crate) corpus: PathBuf,
    /// Labels CSV (index,sha256,signals), e.g. dev/labels/ChnSentiCorp_htl_all.csv;
    /// repeat for several files of the same corpus (their records are joined).
    #[arg(long, required = true)]
    pub(crate) labels: Vec<PathBuf>,
    #[arg(long)]
    pub(crate) domain: String,
    /// Lexicon folder (fit-signals: the terms the model complements); default: built in.
    #[arg(long)]
    pub(crate) lexicons: Option<PathBuf>,
}

#[derive(clap::Args)]
pub(crate) struct SimulateArgs {
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Businesses per domain.
    #[arg(long, default_value_t = 500)]
    pub(crate) businesses: usize,
    #[arg(long, default_value_t = 180)]
    pub(crate) days: u32,
    /// food, tourism or both.
    #[arg(long, default_value = "both")]
    pub(crate) domain: String,
    /// Reviews JSONL ("-" for stdout).
    #[arg(long)]
    pub(crate) reviews: Option<PathBuf>,
    /// Inspections CSV.
    #[arg(long)]
    pub(crate) inspections: Option<PathBuf>,
    /// Hidden truth per business, JSONL.
    #[arg(long)]
    pub(crate) truth: Option<PathBuf>,
    /// Produce the reviews to Kafka (reviews.food / reviews.tourism, key = business_id).
    #[arg(long)]
    pub(crate) brokers: Option<String>,
    /// With --brokers: reviews per second (0: as fast as the broker takes them).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// With --brokers: start over with the next seed when the world is used up, forever.
    #[arg(long)]
    pub(crate) forever: bool,
    /// Mix real review texts in as background: a CSV with a `review` column and
    /// optionally `label` (1 positive, 0 negative), e.g.
    /// food=../shared/data/waimai_10k.csv. `DOMAIN=PATH` for one domain, a
    /// bare PATH for both; repeatable. The texts are read, never copied.
    #[arg(long, value_name = "[DOMAIN=]PATH")]
    pub(crate) texts: Vec<String>,
    /// The world's rates, noise and phrasing: `standard` (what the default
    /// models are fitted on) or `stress` (a deliberately different world:
    /// other rates, other phrasing, heavier tails, more attacks, noisier
    /// outcomes).
    #[arg(long, default_value = "standard")]
    pub(crate) profile: String,
    /// Judge flags (JSONL, as `replay --out` writes them) against this
    /// world's hidden truth: precision, and recall of the bad businesses
    /// with at least 1 and at least 3 genuine risk reports in a bad spell.
    #[arg(long, value_name = "FLAGS")]
    pub(crate) judge: Option<PathBuf>,
}

impl LabelledSet {
    /// The domain, the extractor from `lexicons` and the labelled reviews.
    pub(crate) fn open(
        &self,
    ) -> Result<(
        Domain,
        reviewguard::core::extract::Extractor,
        Vec<reviewguard::offline::devset::Labelled>,
    )> {
        let domain = parse_domain(&self.domain)?;
        let ex = extractor_from(self.lexicons.as_deref())?;
        let mut set = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for labels in &self.labels {
            for l in reviewguard::offline::devset::load(&self.corpus, labels, domain)? {
                if !seen.insert(l.index) {
                    anyhow::bail!(
                        "record {} is labelled in more than one of the --labels files (the last: {})",
                        l.index,
                        labels.display()
                    );
                }
                set.push(l);
            }
        }
        Ok((domain, ex, set))
    }
}
