//! Training and evaluation from a regulator's history: reviews plus the
//! outcomes of past inspections.
//!
//! Features are point-in-time: an inspection sees only the reviews created
//! before `inspected_at`, folded in by the same core code the stream uses
//! ([`crate::core::scorer::observe`]).

mod metrics;

use crate::core::extract::Extractor;
use crate::core::features::{self, BusinessState};
use crate::core::model::{
    self, Calibration, Model, ModelFile, ModelKind, Provenance, Thresholds, TreeEnsemble,
};
use crate::core::privacy::Pseudonymiser;
use crate::core::review::{self, DecodeOptions, Review};
use crate::core::scorer::{self, States};
use crate::types::Domain;
use anyhow::{Context, Result, anyhow, bail};
use chrono::{NaiveDate, TimeZone};
use indicatif::ProgressBar;
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
pub use metrics::{ANCHORS, Metrics, metrics, metrics_markdown, roc_auc};
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// One past inspection.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionRow {
    pub business_id: String,
    pub domain: Domain,
    pub inspected_at: i64,
    pub outcome: bool,
}

/// Read reviews JSONL. A bad line is an error naming the file, line and reason.
pub fn read_reviews(path: &Path) -> Result<Vec<Review>> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot open reviews file {}", path.display()))?;
    let opts = DecodeOptions::default();
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line =
            line.with_context(|| format!("{}:{}: cannot read line", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let r = review::decode(line.as_bytes(), &opts)
            .map_err(|e| anyhow!("{}:{}: {e}", path.display(), i + 1))?;
        out.push(r);
    }
    Ok(out)
}

/// Read the inspections CSV (header `business_id,domain,inspected_at,outcome`,
/// extra columns allowed). `inspected_at` is RFC 3339 or `YYYY-MM-DD`
/// (taken as 00:00 China Standard Time).
pub fn read_inspections(path: &Path) -> Result<Vec<InspectionRow>> {
    let mut rdr = csv::Reader::from_path(path)
        .with_context(|| format!("cannot open inspections file {}", path.display()))?;
    let headers = rdr
        .headers()
        .with_context(|| format!("{}: cannot read the header line", path.display()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| anyhow!("{}:1: the header has no column {name:?} (need business_id,domain,inspected_at,outcome)", path.display()))
    };
    let (cb, cd, ct, co) = (
        col("business_id")?,
        col("domain")?,
        col("inspected_at")?,
        col("outcome")?,
    );
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.with_context(|| format!("{}: malformed CSV", path.display()))?;
        let line = rec.position().map_or(0, |p| p.line());
        let field = |i: usize, name: &str| {
            rec.get(i)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| anyhow!("{}:{line}: field {name} is empty", path.display()))
        };
        let business_id = field(cb, "business_id")?.to_owned();
        let d = field(cd, "domain")?;
        let domain = Domain::parse(d).ok_or_else(|| {
            anyhow!(
                "{}:{line}: field domain is {d:?}, expected food or tourism",
                path.display()
            )
        })?;
        let t = field(ct, "inspected_at")?;
        let inspected_at = parse_time(t).ok_or_else(|| {
            anyhow!(
                "{}:{line}: field inspected_at is {t:?}, expected RFC 3339 or YYYY-MM-DD",
                path.display()
            )
        })?;
        let outcome = match field(co, "outcome")? {
            "1" => true,
            "0" => false,
            o => bail!(
                "{}:{line}: field outcome is {o:?}, expected 1 (violations) or 0 (none)",
                path.display()
            ),
        };
        out.push(InspectionRow {
            business_id,
            domain,
            inspected_at,
            outcome,
        });
    }
    Ok(out)
}

fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    crate::types::time::cst()
        .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|t| t.timestamp())
}

/// Feature rows, one per inspection of `domain`, in time order, each built from
/// the reviews created strictly before its inspection.
pub fn point_in_time_features(
    reviews: &[Review],
    inspections: &[InspectionRow],
    domain: Domain,
    extractor: &Extractor,
    progress: &ProgressBar,
) -> (Vec<Vec<f64>>, Vec<bool>, Vec<i64>) {
    let pseudonyms = Pseudonymiser::new(b"training: only equality of reviewers matters");
    let mut revs: Vec<&Review> = reviews.iter().filter(|r| r.domain == domain).collect();
    revs.sort_by_key(|r| r.event_time);
    let mut insp: Vec<&InspectionRow> = inspections.iter().filter(|i| i.domain == domain).collect();
    insp.sort_by_key(|i| i.inspected_at);
    progress.set_length(insp.len() as u64);
    progress.set_position(0);
    let mut states = States::default();
    let (mut x, mut y, mut t) = (Vec::new(), Vec::new(), Vec::new());
    let mut next = 0;
    for i in insp {
        while next < revs.len() && revs[next].event_time < i.inspected_at {
            scorer::observe(extractor, &pseudonyms, &mut states, revs[next]);
            next += 1;
        }
        let row = match states.get(domain, &i.business_id) {
            Some(s) => s.features_at(i.inspected_at),
            None => BusinessState::new(domain, i.inspected_at).features_at(i.inspected_at),
        };
        x.push(row);
        y.push(i.outcome);
        t.push(i.inspected_at);
        progress.inc(1);
    }
    (x, y, t)
}

/// Which model `train` ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KindChoice {
    /// The one that wins on validation (see [`ensemble_wins`]).
    #[default]
    Auto,
    Logistic,
    Trees,
}

impl KindChoice {
    pub fn parse(s: &str) -> Option<KindChoice> {
        match s {
            "auto" => Some(KindChoice::Auto),
            "logistic" => Some(KindChoice::Logistic),
            "trees" => Some(KindChoice::Trees),
            _ => None,
        }
    }
}

/// Options of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub domain: Domain,
    pub name: String,
    pub version: String,
    pub data: String,
    pub seed: Option<u64>,
    pub command: String,
    /// Share of inspections, earliest first, used for fitting; the rest validate.
    pub fit_share: f64,
    /// Which model to ship.
    pub kind: KindChoice,
    /// Trees in the ensemble and their greatest depth.
    pub trees: usize,
    pub max_depth: usize,
    /// Shows how far feature building and fitting are (hidden: nothing shown).
    pub progress: ProgressBar,
}

/// The outcome of training: the model file and what it was judged on.
#[derive(Debug, Clone)]
pub struct Trained {
    pub file: ModelFile,
    /// Why the shipped kind was chosen, in a sentence.
    pub decision: String,
    /// The shipped model's figures and scores on validation.
    pub validation: Metrics,
    pub validation_scores: Vec<f64>,
    pub validation_outcomes: Vec<bool>,
    /// The validation rows' raw feature vectors.
    pub validation_features: Vec<Vec<f64>>,
    pub alpha: f64,
    pub alphas: Vec<(f64, f64)>,
    /// The logistic regression on validation.
    pub logistic: Metrics,
    pub logistic_scores: Vec<f64>,
    /// The tree ensemble fitted on the same rows, judged on the same validation.
    pub forest: ForestComparison,
}

/// Bagged decision trees beside the logistic regression (see [`fit_forest`]).
#[derive(Debug, Clone)]
pub struct ForestComparison {
    pub trees: usize,
    pub max_depth: usize,
    pub nodes: usize,
    pub validation: Metrics,
    pub validation_scores: Vec<f64>,
    /// Whether the ensemble beat the logistic regression on validation:
    /// [`ensemble_wins`].
    pub wins: bool,
    pub ensemble: TreeEnsemble,
    pub calibration: Calibration,
}

pub const FOREST_TREES: usize = 50;
pub const FOREST_DEPTH: usize = 6;
/// Share of the features each tree sees (drawn with replacement, as
/// linfa's bootstrap does).
pub const FOREST_FEATURE_SHARE: f64 = 0.6;

/// The rule that decides which model ships: the tree ensemble wins when its
/// validation ROC-AUC and its validation lift at 10% capacity are both
/// strictly higher than the logistic regression's; otherwise the logistic
/// regression (the simpler model) ships.
pub fn ensemble_wins(trees: &Metrics, logistic: &Metrics) -> bool {
    trees.roc_auc > logistic.roc_auc && trees.lift_at_10pct > logistic.lift_at_10pct
}

fn standardisation(x: &[Vec<f64>], n: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = x.len().max(1) as f64;
    let mut mean = vec![0.0; n];
    for r in x {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v / rows;
        }
    }
    let mut std = vec![0.0; n];
    for r in x {
        for ((s, v), m) in std.iter_mut().zip(r).zip(&mean) {
            *s += (v - m).powi(2) / rows;
        }
    }
    (mean, std.into_iter().map(|s| s.sqrt().max(1e-6)).collect())
}

fn matrix(x: &[Vec<f64>], mean: &[f64], std: &[f64]) -> Array2<f64> {
    let n = mean.len();
    let mut m = Array2::zeros((x.len(), n));
    for (i, r) in x.iter().enumerate() {
        for j in 0..n {
            m[[i, j]] = (r[j] - mean[j]) / std[j];
        }
    }
    m
}

/// Fit a logistic regression on the earlier inspections, choose the
/// regularisation on the later ones.
pub fn train(
    reviews: &[Review],
    inspections: &[InspectionRow],
    extractor: &Extractor,
    opts: &TrainOptions,
) -> Result<Trained> {
    opts.progress
        .set_message(format!("{} features", opts.domain));
    let (x, y, t) =
        point_in_time_features(reviews, inspections, opts.domain, extractor, &opts.progress);
    let n_feat = features::feature_count(opts.domain);
    if x.len() < 20 {
        bail!(
            "only {} {} inspections: at least 20 are needed to fit and validate a model",
            x.len(),
            opts.domain
        );
    }
    let split = ((x.len() as f64) * opts.fit_share).round() as usize;
    let split = split.clamp(10, x.len() - 10);
    let (xf, yf) = (&x[..split], &y[..split]);
    let (xv, yv) = (&x[split..], &y[split..]);
    let pos = yf.iter().filter(|v| **v).count();
    if pos == 0 || pos == yf.len() {
        bail!(
            "the fitting part ({} inspections before {}) has only one outcome; need both 0 and 1",
            yf.len(),
            crate::types::time::rfc3339(t[split])
        );
    }
    let (mean, std) = standardisation(xf, n_feat);
    // Class imbalance: positives repeated so both classes weigh alike.
    let weight = ((yf.len() - pos) as f64 / pos as f64).round().max(1.0) as usize;
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (r, &label) in xf.iter().zip(yf) {
        for _ in 0..if label { weight } else { 1 } {
            rows.push(r.clone());
            targets.push(label);
        }
    }
    let xm = matrix(&rows, &mean, &std);
    let dataset = Dataset::new(xm, Array1::from(targets));
    opts.progress
        .set_message(format!("{} fitting", opts.domain));
    opts.progress.set_length(6 + opts.trees as u64);
    opts.progress.set_position(0);
    let xvm = matrix(xv, &mean, &std);
    let mut best: Option<(
        f64,
        f64,
        linfa_logistic::FittedLogisticRegression<f64, bool>,
    )> = None;
    let mut alphas = Vec::new();
    for alpha in [0.001, 0.01, 0.1, 1.0, 10.0, 100.0] {
        let fitted = LogisticRegression::default()
            .alpha(alpha)
            .max_iterations(300)
            .fit(&dataset)
            .map_err(|e| anyhow!("fitting with alpha {alpha} failed: {e}"))?;
        let scores = model::violation_probabilities(&fitted, &xvm);
        let auc = roc_auc(&scores, yv);
        alphas.push((alpha, auc));
        opts.progress.inc(1);
        if best.as_ref().is_none_or(|(_, a, _)| auc > *a + 1e-9) {
            best = Some((alpha, auc, fitted));
        }
    }
    let (alpha, _, fitted) =
        best.ok_or_else(|| anyhow!("no regularisation strength could be fitted"))?;
    // Calibrate on the fitting rows as they are (not balanced), then judge on validation.
    let calibration = calibrate(
        &model::violation_probabilities(&fitted, &matrix(xf, &mean, &std)),
        yf,
    )?;
    let scores: Vec<f64> = model::violation_probabilities(&fitted, &xvm)
        .into_iter()
        .map(|p| calibration.apply(p))
        .collect();
    let logistic_validation = metrics(&scores, yv);
    let forest = fit_forest(
        (xf, yf),
        (xv, yv),
        weight,
        opts.seed.unwrap_or(0),
        (opts.trees, opts.max_depth),
        &opts.progress,
    )?;
    let wins = ensemble_wins(&forest.validation, &logistic_validation);
    let forest = ForestComparison { wins, ..forest };
    opts.progress.finish_and_clear();
    let cmp = format!(
        "validation ROC-AUC {:.3} vs {:.3}, lift@10% {:.2}x vs {:.2}x (tree ensemble vs logistic regression)",
        forest.validation.roc_auc,
        logistic_validation.roc_auc,
        forest.validation.lift_at_10pct,
        logistic_validation.lift_at_10pct
    );
    let (kind, decision) = match opts.kind {
        KindChoice::Auto if wins => (
            ModelKind::TreeEnsemble,
            format!(
                "The tree ensemble is shipped: it wins on validation, both ROC-AUC and lift@10% higher ({cmp})."
            ),
        ),
        KindChoice::Auto => (
            ModelKind::LogisticRegression,
            format!(
                "The logistic regression is shipped: the tree ensemble does not beat it on both validation ROC-AUC and lift@10% ({cmp})."
            ),
        ),
        KindChoice::Logistic => (
            ModelKind::LogisticRegression,
            format!("The logistic regression is shipped, as asked (--model-kind logistic; {cmp})."),
        ),
        KindChoice::Trees => (
            ModelKind::TreeEnsemble,
            format!("The tree ensemble is shipped, as asked (--model-kind trees; {cmp})."),
        ),
    };
    let (validation, shipped_scores) = match kind {
        ModelKind::TreeEnsemble => (forest.validation.clone(), forest.validation_scores.clone()),
        ModelKind::LogisticRegression => (logistic_validation.clone(), scores.clone()),
    };
    let thresholds = DEFAULT_THRESHOLDS;
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("roc_auc", validation.roc_auc),
        ("pr_auc", validation.pr_auc),
        ("precision_at_10pct", validation.precision_at_10pct),
        ("lift_at_10pct", validation.lift_at_10pct),
        ("brier", validation.brier),
        ("alpha", alpha),
        ("logistic_roc_auc", logistic_validation.roc_auc),
        ("logistic_lift_at_10pct", logistic_validation.lift_at_10pct),
        ("trees_roc_auc", forest.validation.roc_auc),
        ("trees_lift_at_10pct", forest.validation.lift_at_10pct),
    ] {
        m.insert(k.to_owned(), (v * 10_000.0).round() / 10_000.0);
    }
    let (logistic, trees, calibration) = match kind {
        ModelKind::LogisticRegression => (Some(fitted), None, calibration),
        ModelKind::TreeEnsemble => (None, Some(forest.ensemble.clone()), forest.calibration),
    };
    let mut file = ModelFile {
        format_version: model::FORMAT_VERSION,
        name: opts.name.clone(),
        version: opts.version.clone(),
        domain: opts.domain,
        kind,
        feature_names: features::feature_names(opts.domain),
        mean,
        std,
        logistic,
        trees,
        calibration,
        thresholds,
        provenance: Provenance {
            data: opts.data.clone(),
            seed: opts.seed,
            rows: x.len(),
            positives: y.iter().filter(|v| **v).count(),
            data_until: t
                .last()
                .map(|t| crate::types::time::rfc3339(*t))
                .unwrap_or_default(),
            command: opts.command.clone(),
            metrics: m,
        },
        content_sha256: String::new(),
    };
    file.seal()
        .map_err(|e| anyhow!("cannot serialise the model: {e}"))?;
    Ok(Trained {
        file,
        decision,
        validation,
        validation_scores: shipped_scores,
        validation_outcomes: yv.to_vec(),
        validation_features: xv.to_vec(),
        alpha,
        alphas,
        logistic: logistic_validation,
        logistic_scores: scores,
        forest,
    })
}

/// Round to 6 decimals: keeps model files compact. A split threshold is a
/// midpoint between fitting values at least 1e-5 apart, so rounding it never
/// moves it past one of them.
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Append `node` and its subtree (pre-order) to `e`; returns its index.
/// `feats` maps the tree's columns to the model's features.
fn flatten(
    node: &linfa_trees::TreeNode<f64, bool>,
    feats: &[usize],
    e: &mut TreeEnsemble,
) -> Result<u32> {
    let i = e.feature.len();
    let index = u32::try_from(i).map_err(|_| anyhow!("the tree ensemble has too many nodes"))?;
    e.feature.push(-1);
    e.threshold.push(0.0);
    e.left.push(0);
    e.right.push(0);
    e.value.push(0.0);
    if node.is_leaf() {
        return Ok(index);
    }
    let children = node.children();
    if let (Some(Some(l)), Some(Some(r))) = (children.first(), children.get(1)) {
        let (f, threshold, _) = node.split();
        let feature = feats
            .get(f)
            .ok_or_else(|| anyhow!("a tree splits on column {f} of {}", feats.len()))?;
        e.feature[i] = i32::try_from(*feature).map_err(|_| anyhow!("feature index {feature}"))?;
        e.threshold[i] = round6(threshold);
        let l = flatten(l, feats, e)?;
        let r = flatten(r, feats, e)?;
        e.left[i] = l;
        e.right[i] = r;
    }
    Ok(index)
}

/// The nodes `x` passes in the tree rooted at `root`, root first, leaf last.
fn walk(e: &TreeEnsemble, root: usize, x: &[f64], mut visit: impl FnMut(usize)) {
    let mut i = root;
    loop {
        visit(i);
        let f = e.feature[i];
        if f < 0 {
            return;
        }
        i = if x[f as usize] <= e.threshold[i] {
            e.left[i]
        } else {
            e.right[i]
        } as usize;
    }
}

/// A random-subspace forest of linfa-trees decision trees: `trees` trees of
/// depth at most `max_depth` (defaults [`FOREST_TREES`], [`FOREST_DEPTH`]),
/// each fitted on a bootstrap
/// (linfa's `bootstrap_with_indices`, seeded) of the class-balanced fitting
/// rows (positives repeated `weight` times; weighted by [`tie_free_weights`]
/// so that the fit is deterministic) and [`FOREST_FEATURE_SHARE`] of the
/// features, on raw feature values. Each node's value is the smoothed
/// share of violations among its tree's bootstrap rows that reach it; the
/// raw score is the mean leaf value over trees, Platt-calibrated on the
/// fitting rows' out-of-bag scores (each row scored only by the trees that
/// did not see it), so the calibration is not fitted on memorised rows.
fn fit_forest(
    (fit_x, fit_y): (&[Vec<f64>], &[bool]),
    (val_x, val_y): (&[Vec<f64>], &[bool]),
    weight: usize,
    seed: u64,
    (trees, max_depth): (usize, usize),
    progress: &ProgressBar,
) -> Result<ForestComparison> {
    if trees == 0 || max_depth == 0 {
        bail!("the tree ensemble needs at least one tree of depth at least 1");
    }
    use linfa_trees::DecisionTree;
    let n_feat = fit_x.first().map_or(0, Vec::len);
    let mut rows = Vec::new();
    for (i, &label) in fit_y.iter().enumerate() {
        for _ in 0..if label { weight } else { 1 } {
            rows.push(i);
        }
    }
    let mut xb = Array2::zeros((rows.len(), n_feat));
    for (r, &i) in rows.iter().enumerate() {
        for (j, v) in fit_x[i].iter().enumerate() {
            xb[[r, j]] = *v;
        }
    }
    let balanced = Dataset::new(
        xb,
        Array1::from(rows.iter().map(|&i| fit_y[i]).collect::<Vec<_>>()),
    );
    // At least 5 rows per leaf: row weights are 1 or NEGATIVE_ROW_WEIGHT
    // (see `tie_free_weights`), so 5 rows weigh at least 5 and 4 rows less
    // than 4.001; 4.5 keeps that rule clear of f32 rounding in linfa's
    // running sums.
    let params = DecisionTree::params()
        .max_depth(Some(max_depth))
        .min_weight_leaf(4.5);
    let n_sub = ((n_feat as f64) * FOREST_FEATURE_SHARE).ceil() as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7265_7669_6577);
    let mut e = TreeEnsemble {
        roots: Vec::new(),
        feature: Vec::new(),
        threshold: Vec::new(),
        left: Vec::new(),
        right: Vec::new(),
        value: Vec::new(),
    };
    let (mut oob_sum, mut oob_n) = (vec![0.0; fit_x.len()], vec![0usize; fit_x.len()]);
    for (train, drawn, feats) in balanced
        .bootstrap_with_indices((rows.len(), n_sub), &mut rng)
        .take(trees)
    {
        let train = tie_free_weights(train)?;
        let tree = params
            .fit(&train)
            .map_err(|e| anyhow!("fitting a decision tree failed: {e}"))?;
        let root = e.feature.len();
        e.roots
            .push(u32::try_from(root).map_err(|_| anyhow!("too many nodes"))?);
        flatten(tree.root_node(), &feats, &mut e)?;
        let (mut pos, mut cnt) = (
            vec![0.0; e.feature.len() - root],
            vec![0.0; e.feature.len() - root],
        );
        let mut in_bag = vec![false; fit_x.len()];
        for &b in &drawn {
            let i = rows[b];
            in_bag[i] = true;
            let y = f64::from(u8::from(fit_y[i]));
            walk(&e, root, &fit_x[i], |n| {
                pos[n - root] += y;
                cnt[n - root] += 1.0;
            });
        }
        for (k, (p, c)) in pos.iter().zip(&cnt).enumerate() {
            e.value[root + k] = round6((p + 1.0) / (c + 2.0));
        }
        for (i, x) in fit_x.iter().enumerate() {
            if !in_bag[i] {
                let mut leaf = root;
                walk(&e, root, x, |n| leaf = n);
                oob_sum[i] += e.value[leaf];
                oob_n[i] += 1;
            }
        }
        progress.inc(1);
    }
    let forest = e
        .check(n_feat)
        .map_err(|m| anyhow!("the fitted tree ensemble is malformed: {m}"))?;
    let (mut oob_p, mut oob_y) = (Vec::new(), Vec::new());
    for ((s, n), y) in oob_sum.iter().zip(&oob_n).zip(fit_y) {
        if *n > 0 {
            oob_p.push(s / *n as f64);
            oob_y.push(*y);
        }
    }
    let calibration = calibrate(&oob_p, &oob_y)?;
    let scores: Vec<f64> = val_x
        .iter()
        .map(|x| calibration.apply(forest.raw_score(x)))
        .collect();
    Ok(ForestComparison {
        trees: forest.trees(),
        max_depth,
        nodes: e.feature.len(),
        validation: metrics(&scores, val_y),
        validation_scores: scores,
        wins: false,
        ensemble: e,
        calibration,
    })
}

/// Weight of a "no violation" row in a tree's fitting rows; "violation"
/// rows weigh 1. Exactly representable in f32: 1 + 2^-13.
const NEGATIVE_ROW_WEIGHT: f32 = 1.0 + 1.0 / 8192.0;
/// Most rows a tree may be fitted on for [`NEGATIVE_ROW_WEIGHT`] to rule out
/// ties (2^22; see [`tie_free_weights`]).
const MAX_TIE_FREE_ROWS: usize = 1 << 22;

/// Give a tree's fitting rows weights under which linfa-trees can never see
/// a tie between the two classes.
///
/// linfa-trees labels every node with the class of larger weighted count
/// (`find_modal_class`), and on an exact tie it returns whichever class its
/// `HashMap` iterates last: the map's hasher is seeded at random per map, so
/// a tie labels the leaf at random, and `prune` (which merges sibling leaves
/// of one label) then gives the tree a different shape from run to run. Our
/// flattened trees keep only the shape (node values come from our own
/// counts, see [`fit_forest`]), but the shape is enough to make training
/// non-deterministic. With unit weights ties are plain equal counts.
///
/// Here "violation" rows weigh 1 and "no violation" rows weigh
/// w = 1 + 2^-13. linfa sums a node's weights per class in f32, adding them
/// one by one from 0. A node with p violation rows and n others has
/// weighted counts p (exact: an integer below 2^24) and S(n), the f32 sum of
/// n copies of w; all addends are equal, so S(n) depends on n alone, not on
/// row order. For every 1 <= n <= 2^22, n < S(n) < n + 1: the test
/// `negative_weight_sums_never_reach_an_integer` checks every such n (while
/// n*w is exact in f32, for n < 2^11, S(n) - n = n*2^-13 < 1/4; past that
/// each addition rounds to a grid of 2^-12 or coarser and S(n) - n stays
/// within [2^-13, 1/2]; from 2^23 on f32 holds only integers). Hence S(n)
/// is never an integer, so never equal to p: no tie. And the winner is the
/// one unit weights would give, ties going to "no violation": S(n) > p when
/// n >= p, S(n) < n + 1 <= p when n < p. The 2^-13 reweighting moves the
/// impurity of a split by about 1e-4 at most.
fn tie_free_weights(
    train: DatasetBase<Array2<f64>, Array1<bool>>,
) -> Result<DatasetBase<Array2<f64>, Array1<bool>>> {
    if train.nsamples() > MAX_TIE_FREE_ROWS {
        bail!(
            "a tree would be fitted on {} rows; at most {MAX_TIE_FREE_ROWS} keep its training deterministic",
            train.nsamples()
        );
    }
    let weights = train
        .targets()
        .iter()
        .map(|&violation| if violation { 1.0 } else { NEGATIVE_ROW_WEIGHT })
        .collect::<Array1<f32>>();
    Ok(train.with_weights(weights))
}

/// Severity cut-offs on the calibrated probability that an inspection finds
/// violations: low from 50%, medium from 70%, high from 85%.
pub const DEFAULT_THRESHOLDS: Thresholds = Thresholds {
    low: 0.5,
    medium: 0.7,
    high: 0.85,
};

/// Platt scaling of probabilities against outcomes, fitted with linfa.
fn calibrate(p: &[f64], y: &[bool]) -> Result<Calibration> {
    let logits: Vec<f64> = p
        .iter()
        .map(|p| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            (p / (1.0 - p)).ln()
        })
        .collect();
    let x = Array2::from_shape_vec((logits.len(), 1), logits)
        .map_err(|e| anyhow!("calibration data: {e}"))?;
    let fitted = LogisticRegression::default()
        .alpha(1e-6)
        .max_iterations(200)
        .fit(&Dataset::new(x, Array1::from(y.to_vec())))
        .map_err(|e| anyhow!("calibration failed: {e}"))?;
    let sign = model::violation_sign(&fitted);
    Ok(Calibration {
        slope: sign * fitted.params()[0],
        intercept: sign * fitted.intercept(),
    })
}

/// Score past inspections with a model: the scores and outcomes, in time order.
pub fn evaluate(
    reviews: &[Review],
    inspections: &[InspectionRow],
    model: &Model,
    extractor: &Extractor,
    progress: &ProgressBar,
) -> (Vec<f64>, Vec<bool>) {
    let (x, y, _) =
        point_in_time_features(reviews, inspections, model.file.domain, extractor, progress);
    progress.finish_and_clear();
    let scores: Vec<f64> = x.iter().map(|r| model.score(r).probability).collect();
    (scores, y)
}

#[cfg(test)]
mod tests;
