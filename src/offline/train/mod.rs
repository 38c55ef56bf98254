//! Training and evaluation from a regulator's history: reviews plus the
//! outcomes of past inspections.
//!
//! Features are point-in-time: an inspection sees only the reviews created
//! before `inspected_at`, folded in by the same core code the stream uses
//! ([`crate::core::scorer::observe`]).

pub mod fit;
mod metrics;

use crate::core::extract::Extractor;
use crate::core::features::{self, BusinessState};
use crate::core::model::{
    self, Calibration, Exceedance, Model, ModelFile, ModelKind, Provenance, Scorecard, Thresholds,
};
use crate::core::privacy::Pseudonymiser;
use crate::core::review::{self, DecodeOptions, Review};
use crate::core::scorer::{self, States};
use crate::types::Domain;
use anyhow::{Context, Result, anyhow, bail};
use chrono::{NaiveDate, TimeZone};
use indicatif::ProgressBar;
pub use metrics::{Interval, Intervals, Metrics, bootstrap, metrics, metrics_markdown, roc_auc};
use std::collections::{BTreeMap, HashMap};
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

/// Point-in-time feature rows, one per inspection of a domain, in time order.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// The build's feature vector ([`features::feature_names`]).
    pub x: Vec<Vec<f64>>,
    pub y: Vec<bool>,
    pub t: Vec<i64>,
    /// The business's region as its reviews gave it ("" when none did).
    pub region: Vec<String>,
}

/// Feature rows, one per inspection of `domain`, in time order, each built from
/// the reviews created strictly before its inspection. With `history`, each
/// inspection is folded into its business's state after its row is taken
/// ([`BusinessState::inspected`]), as the service folds in
/// `inspection.outcomes`: later rows see it.
pub fn point_in_time_features(
    reviews: &[Review],
    inspections: &[InspectionRow],
    domain: Domain,
    extractor: &Extractor,
    history: bool,
    progress: &ProgressBar,
) -> Rows {
    let pseudonyms = training_pseudonyms();
    let events = in_time_order(reviews, inspections, domain);
    // Reviews after the last inspection make no row.
    let end = events
        .iter()
        .rposition(|e| matches!(e, Event::Inspection(_)))
        .map_or(0, |i| i + 1);
    let inspected = events
        .iter()
        .filter(|e| matches!(e, Event::Inspection(_)))
        .count();
    progress.set_length(inspected as u64);
    progress.set_position(0);
    let mut states = States::default();
    let mut rows = Rows::default();
    for event in &events[..end] {
        let i = match event {
            Event::Review(r) => {
                scorer::observe(extractor, &pseudonyms, &mut states, r);
                continue;
            }
            Event::Inspection(i) => i,
        };
        let (row, region) = match states.get(domain, &i.business_id) {
            Some(s) => (
                s.features_at(i.inspected_at),
                s.region().unwrap_or_default().to_owned(),
            ),
            None => (
                BusinessState::new(domain, i.inspected_at).features_at(i.inspected_at),
                String::new(),
            ),
        };
        rows.x.push(row);
        rows.y.push(i.outcome);
        rows.t.push(i.inspected_at);
        rows.region.push(region);
        if history {
            states
                .entry(domain, &i.business_id, i.inspected_at)
                .inspected(i.inspected_at, i.outcome);
        }
        progress.inc(1);
    }
    rows
}

/// Reviewer pseudonyms for training: only whether two reviews share a
/// reviewer matters, so the key is fixed.
fn training_pseudonyms() -> Pseudonymiser {
    Pseudonymiser::new(b"training: only equality of reviewers matters")
}

/// A review or an inspection of a domain's history.
enum Event<'a> {
    Review(&'a Review),
    Inspection(&'a InspectionRow),
}

/// A domain's reviews and inspections as the service meets them, in time
/// order: a review created before an inspection comes ahead of it, one
/// created at or after it behind (the outcome is folded in first). Ties
/// among reviews, or among inspections, keep their input order.
fn in_time_order<'a>(
    reviews: &'a [Review],
    inspections: &'a [InspectionRow],
    domain: Domain,
) -> Vec<Event<'a>> {
    let mut revs: Vec<&Review> = reviews.iter().filter(|r| r.domain == domain).collect();
    revs.sort_by_key(|r| r.event_time);
    let mut insp: Vec<&InspectionRow> = inspections.iter().filter(|i| i.domain == domain).collect();
    insp.sort_by_key(|i| i.inspected_at);
    let mut events = Vec::with_capacity(revs.len() + insp.len());
    let mut next = 0;
    for i in insp {
        while next < revs.len() && revs[next].event_time < i.inspected_at {
            events.push(Event::Review(revs[next]));
            next += 1;
        }
        events.push(Event::Inspection(i));
    }
    events.extend(revs[next..].iter().map(|r| Event::Review(r)));
    events
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
    /// Share of inspections, earliest first, used for fitting (and its
    /// cross-validation); the rest is held out and only reported on.
    pub fit_share: f64,
    /// Time-ordered folds of the cross-validation inside the fitting part.
    pub folds: usize,
    /// Read the inspection history (features `days_since_inspection` and
    /// the like): the service must then consume `inspection.outcomes`.
    pub history: bool,
    /// Bootstrap resamples behind each interval on the held-out part.
    pub bootstrap: usize,
    /// Read only the features that mean the same in any world
    /// ([`features::world_invariant`]): shares and evidence measured
    /// against the domain's prior, and the inspection history; no counts,
    /// which grow with a business's popularity.
    pub invariant: bool,
    /// A scorecard to shrink towards ([`Prior`]): the cross-validation then
    /// also judges scorecards pulled towards its weights.
    pub prior: Option<Prior>,
    /// Shows how far feature building and fitting are (hidden: nothing shown).
    pub progress: ProgressBar,
}

/// Another scorecard of the domain whose weights a fit may be pulled
/// towards instead of towards 0: with a few hundred inspections, a model
/// that starts from what a larger history taught and moves as far as this
/// one's data says. The cross-validation chooses how far, or not at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Prior {
    /// How the candidates name it (`food 2026.12.8`).
    pub label: String,
    /// Per feature of the build's vector, its weight per unit of the
    /// transformed feature (the weight over its standard deviation); 0 for
    /// a feature it does not read.
    per_unit: Vec<f64>,
}

impl Prior {
    /// The prior a loaded model gives for training `domain`: a scorecard of
    /// that domain (the loader has matched its features to this build's).
    pub fn of(model: &Model, domain: Domain) -> Result<Prior> {
        let file = &model.file;
        if file.domain != domain {
            bail!(
                "the prior model {} {} is a {} model, not {domain}",
                file.name,
                file.version,
                file.domain
            );
        }
        let Some(card) = &file.scorecard else {
            bail!(
                "the prior model {} {} is not a scorecard (kind {}): only a scorecard's weights can be shrunk towards",
                file.name,
                file.version,
                file.kind.as_str()
            );
        };
        let mut per_unit = vec![0.0; features::feature_count(domain)];
        for ((&j, w), sd) in model.columns().iter().zip(&card.weights).zip(&file.std) {
            per_unit[j] = w / sd.max(1e-6);
        }
        Ok(Prior {
            label: format!("{} {}", file.name, file.version),
            per_unit,
        })
    }

    /// Its weights on the scale of a fit's standardisation.
    fn on(&self, std: &fit::Standard) -> Vec<f64> {
        self.per_unit
            .iter()
            .zip(&std.std)
            .map(|(w, sd)| w * sd)
            .collect()
    }
}

/// L2 strengths the cross-validation chooses from.
pub const ALPHAS: [f64; 6] = [0.3, 1.0, 3.0, 10.0, 30.0, 100.0];

/// Strengths of the pull towards a prior's weights ([`Prior`]).
pub const PRIOR_ALPHAS: [f64; 5] = [10.0, 30.0, 100.0, 300.0, 1000.0];

/// One model the cross-validation judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// `scorecard alpha=A` or `single feature NAME`.
    pub name: String,
    /// Mean ROC-AUC over the folds.
    pub cv_roc_auc: f64,
    /// The features it reads (indices into the build's vector).
    columns: Vec<usize>,
    alpha: f64,
    /// Pulled towards the prior's weights rather than towards 0.
    prior: bool,
    /// ROC-AUC per fold.
    fold_roc_auc: Vec<f64>,
}

/// The outcome of training: the model file and what it was judged on.
#[derive(Debug, Clone)]
pub struct Trained {
    pub file: ModelFile,
    /// Every candidate, in the order judged, and the index of the one chosen.
    pub candidates: Vec<Candidate>,
    pub chosen: usize,
    pub fit_rows: usize,
    /// Cross-validation folds asked for.
    pub folds: usize,
    /// The held-out (later) inspections: the shipped model's figures with
    /// bootstrap intervals, scores, outcomes, features and regions.
    pub holdout: Metrics,
    pub holdout_intervals: Intervals,
    pub holdout_scores: Vec<f64>,
    pub holdout_outcomes: Vec<bool>,
    pub holdout_features: Vec<Vec<f64>>,
    pub holdout_regions: Vec<String>,
    /// The single feature with the best cross-validated ROC-AUC, judged on
    /// the held-out part beside the model.
    pub best_single: (String, Metrics),
    pub best_single_scores: Vec<f64>,
}

/// Fit a monotone scorecard on the earlier inspections: the regularisation,
/// and whether a single feature does better, chosen by time-ordered
/// cross-validation inside them; the later inspections judge the result.
pub fn train(
    reviews: &[Review],
    inspections: &[InspectionRow],
    extractor: &Extractor,
    opts: &TrainOptions,
) -> Result<Trained> {
    let domain = opts.domain;
    opts.progress.set_message(format!("{domain} features"));
    let rows = point_in_time_features(
        reviews,
        inspections,
        domain,
        extractor,
        opts.history,
        &opts.progress,
    );
    let names = features::feature_names(domain);
    let n = rows.x.len();
    if n < 40 {
        bail!(
            "only {n} {domain} inspections: at least 40 are needed to fit, cross-validate and hold out"
        );
    }
    let split = ((n as f64) * opts.fit_share).round() as usize;
    let split = split.clamp(30, n - 10);
    let (xf, yf) = (&rows.x[..split], &rows.y[..split]);
    let pos = yf.iter().filter(|v| **v).count();
    if pos < 5 || yf.len() - pos < 5 {
        bail!(
            "the fitting part ({} inspections before {}) has {pos} with violations: need at least 5 of each outcome",
            yf.len(),
            crate::types::time::rfc3339(rows.t[split])
        );
    }
    let usable: Vec<usize> = (0..names.len())
        .filter(|&j| opts.history || features::rises_with_reports(&names[j]))
        .filter(|&j| !opts.invariant || features::world_invariant(&names[j]))
        .collect();
    let free: Vec<bool> = names
        .iter()
        .map(|n| !features::rises_with_reports(n))
        .collect();
    // Candidates: the scorecard at each strength, and each usable feature alone.
    let mut candidates: Vec<Candidate> = ALPHAS
        .iter()
        .map(|&alpha| Candidate {
            name: format!("scorecard alpha={alpha}"),
            cv_roc_auc: 0.0,
            columns: usable.clone(),
            alpha,
            prior: false,
            fold_roc_auc: Vec::new(),
        })
        .collect();
    if let Some(p) = &opts.prior {
        for alpha in PRIOR_ALPHAS {
            candidates.push(Candidate {
                name: format!("scorecard towards {} alpha={alpha}", p.label),
                cv_roc_auc: 0.0,
                columns: usable.clone(),
                alpha,
                prior: true,
                fold_roc_auc: Vec::new(),
            });
        }
    }
    for &j in &usable {
        candidates.push(Candidate {
            name: format!("single feature {}", names[j]),
            cv_roc_auc: 0.0,
            columns: vec![j],
            alpha: 1.0,
            prior: false,
            fold_roc_auc: Vec::new(),
        });
    }
    let prior_of = |c: &Candidate| opts.prior.as_ref().filter(|_| c.prior);
    opts.progress
        .set_message(format!("{domain} cross-validation"));
    opts.progress.set_length(candidates.len() as u64);
    opts.progress.set_position(0);
    let folds = time_folds(split, opts.folds.max(2));
    // Each candidate's scores on each fold's validation rows, fitted on the
    // rows before them.
    let mut fold_scores: Vec<Vec<Vec<f64>>> = Vec::with_capacity(candidates.len());
    for c in &mut candidates {
        let per_fold: Vec<Vec<f64>> = folds
            .iter()
            .map(|&(fit_end, val_end)| {
                fit_and_score(
                    (&xf[..fit_end], &yf[..fit_end]),
                    &xf[fit_end..val_end],
                    &c.columns,
                    &free,
                    c.alpha,
                    prior_of(c),
                )
                .0
            })
            .collect();
        let aucs: Vec<f64> = per_fold
            .iter()
            .zip(&folds)
            .map(|(scores, &(fit_end, val_end))| roc_auc(scores, &yf[fit_end..val_end]))
            .collect();
        c.cv_roc_auc = aucs.iter().sum::<f64>() / aucs.len().max(1) as f64;
        c.fold_roc_auc = aucs;
        fold_scores.push(per_fold);
        opts.progress.inc(1);
    }
    // The best by mean cross-validated ROC-AUC; on a tie, the earlier (a
    // scorecard before a single feature, weaker regularisation first).
    let best = |among: &mut dyn Iterator<Item = usize>| {
        among.reduce(|a, b| {
            if candidates[b].cv_roc_auc > candidates[a].cv_roc_auc + 1e-12 {
                b
            } else {
                a
            }
        })
    };
    let mut chosen = best(&mut (0..candidates.len())).unwrap_or(0);
    // The prior carries a larger history: keep its best pull unless another
    // candidate does better by more than one standard error of their paired
    // differences over the folds.
    if let Some(p) = best(&mut (0..candidates.len()).filter(|&i| candidates[i].prior)) {
        if !clearly_better(
            &candidates[chosen].fold_roc_auc,
            &candidates[p].fold_roc_auc,
        ) {
            chosen = p;
        }
    }
    let best_single =
        best(&mut (0..candidates.len()).filter(|&i| candidates[i].columns.len() == 1))
            .unwrap_or(chosen);
    // Out-of-fold scores of the chosen candidate: the severity thresholds.
    let c = &candidates[chosen];
    let oof: Vec<f64> = fold_scores[chosen].concat();
    let oof_y: Vec<bool> = folds
        .iter()
        .flat_map(|&(fit_end, val_end)| yf[fit_end..val_end].iter().copied())
        .collect();
    let thresholds = thresholds_from(&oof, &oof_y);
    // The shipped model: the chosen candidate refitted on the whole fitting part.
    let (card, std) = fit_card(xf, yf, &c.columns, &free, c.alpha, prior_of(c));
    let columns = &c.columns;
    let mut file = ModelFile {
        format_version: model::FORMAT_VERSION,
        name: opts.name.clone(),
        version: opts.version.clone(),
        domain,
        kind: ModelKind::Scorecard,
        feature_names: columns.iter().map(|&j| names[j].clone()).collect(),
        mean: columns.iter().map(|&j| round6(std.mean[j])).collect(),
        std: columns.iter().map(|&j| round6(std.std[j])).collect(),
        logistic: None,
        trees: None,
        scorecard: Some(Scorecard {
            intercept: round6(card.intercept),
            weights: columns.iter().map(|&j| round6(card.weights[j])).collect(),
        }),
        exceedance: None,
        calibration: Calibration::IDENTITY,
        thresholds,
        provenance: Provenance::default(),
        content_sha256: String::new(),
    };
    // Loaded as the service loads it (`to_json` seals the text).
    let scoring = Model::from_bytes(
        file.to_json()
            .map_err(|e| anyhow!("cannot serialise the model: {e}"))?
            .as_bytes(),
        "(fitted)",
        domain,
    )?;
    // Judged on the later inspections, untouched so far.
    let xh = &rows.x[split..];
    let yh = &rows.y[split..];
    let holdout_scores: Vec<f64> = xh.iter().map(|r| scoring.probability(r)).collect();
    let holdout = metrics(&holdout_scores, yh);
    let seed = opts.seed.unwrap_or(0);
    let holdout_intervals = bootstrap(&holdout_scores, yh, opts.bootstrap, seed);
    let single = &candidates[best_single];
    let (single_scores, _) =
        fit_and_score((xf, yf), xh, &single.columns, &free, single.alpha, None);
    let best_single_metrics = (
        names[single.columns[0]].clone(),
        metrics(&single_scores, yh),
    );
    opts.progress.set_message(format!("{domain} exceedance"));
    file.exceedance = Some(exceedance(
        reviews,
        inspections,
        &scoring,
        extractor,
        opts.history,
    ));
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("roc_auc", holdout.roc_auc),
        ("pr_auc", holdout.pr_auc),
        ("precision_at_10pct", holdout.precision_at_10pct),
        ("lift_at_10pct", holdout.lift_at_10pct),
        ("brier", holdout.brier),
        ("cv_roc_auc", c.cv_roc_auc),
        ("alpha", c.alpha),
        ("best_single_feature_roc_auc", best_single_metrics.1.roc_auc),
    ] {
        m.insert(k.to_owned(), (v * 10_000.0).round() / 10_000.0);
    }
    file.provenance = Provenance {
        data: opts.data.clone(),
        seed: opts.seed,
        rows: n,
        positives: rows.y.iter().filter(|v| **v).count(),
        data_until: rows
            .t
            .last()
            .map(|t| crate::types::time::rfc3339(*t))
            .unwrap_or_default(),
        command: opts.command.clone(),
        metrics: m,
    };
    file.seal()
        .map_err(|e| anyhow!("cannot serialise the model: {e}"))?;
    opts.progress.finish_and_clear();
    Ok(Trained {
        file,
        candidates,
        chosen,
        fit_rows: split,
        folds: opts.folds.max(2),
        holdout,
        holdout_intervals,
        holdout_scores,
        holdout_outcomes: yh.to_vec(),
        holdout_features: xh.to_vec(),
        holdout_regions: rows.region[split..].to_vec(),
        best_single: best_single_metrics,
        best_single_scores: single_scores,
    })
}

/// Whether `a` beats `b` by more than one standard error of their paired
/// per-fold differences.
fn clearly_better(a: &[f64], b: &[f64]) -> bool {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let k = d.len() as f64;
    if k < 2.0 {
        return d.first().is_some_and(|v| *v > 0.0);
    }
    let mean = d.iter().sum::<f64>() / k;
    let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0);
    mean > (var / k).sqrt()
}

/// Expanding-window folds over the first `n` rows (time order): the rows
/// are cut into `k + 1` blocks; fold `i` fits on blocks `0..=i` and
/// validates on block `i + 1`. `(fit_end, validation_end)` per fold.
pub fn time_folds(n: usize, k: usize) -> Vec<(usize, usize)> {
    let block = n / (k + 1);
    (1..=k)
        .map(|i| (block * i, if i == k { n } else { block * (i + 1) }))
        .filter(|(a, b)| *a > 0 && b > a)
        .collect()
}

/// Fit a scorecard on `columns` of the fitting rows; the standardisation
/// comes from the same rows.
fn fit_card(
    x: &[Vec<f64>],
    y: &[bool],
    columns: &[usize],
    free: &[bool],
    alpha: f64,
    prior: Option<&Prior>,
) -> (fit::Fitted, fit::Standard) {
    let p = free.len();
    let std = fit::Standard::of(x, p);
    let mut keep = vec![false; p];
    for &j in columns {
        keep[j] = true;
    }
    let z = std.apply(x, &keep);
    let w0 = prior.map(|pr| pr.on(&std));
    (fit::fit(&z, y, free, &keep, alpha, w0.as_deref()), std)
}

/// [`fit_card`], then the probabilities of `score_rows`.
fn fit_and_score(
    (x, y): (&[Vec<f64>], &[bool]),
    score_rows: &[Vec<f64>],
    columns: &[usize],
    free: &[bool],
    alpha: f64,
    prior: Option<&Prior>,
) -> (Vec<f64>, fit::Fitted) {
    let (card, std) = fit_card(x, y, columns, free, alpha, prior);
    let mut keep = vec![false; free.len()];
    for &j in columns {
        keep[j] = true;
    }
    let z = std.apply(score_rows, &keep);
    (z.iter().map(|r| card.probability(r)).collect(), card)
}

/// Inspection yields the severity thresholds aim at: low, medium, high.
/// Inspections find violations at a clean business too (minor findings)
/// and miss some at a bad one, so a yield of 65% (two inspections in three
/// find violations) means about four flags in five point at a business
/// that is bad.
pub const PRECISION: [f64; 3] = [0.65, 0.8, 0.9];

/// Severity thresholds from out-of-fold scores: `low`, `medium` and `high`
/// are the lowest cut-offs at which the inspections scored at or above them
/// found violations at least [`PRECISION`] of the time; where no cut-off
/// reaches that, the score above which the top 5%, 2% and 1% lie.
pub fn thresholds_from(scores: &[f64], y: &[bool]) -> Thresholds {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let quantile = |share: f64| {
        let k = ((scores.len() as f64 * share).ceil() as usize).clamp(1, scores.len().max(1));
        order.get(k - 1).map_or(0.5, |&i| scores[i])
    };
    let cut = |precision: f64, fallback: f64| {
        let (mut hits, mut best) = (0usize, None);
        for (k, &i) in order.iter().enumerate() {
            hits += usize::from(y[i]);
            let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
            if last_of_tie && k >= 4 && hits as f64 / (k + 1) as f64 >= precision {
                best = Some(scores[i]);
            }
        }
        best.unwrap_or_else(|| quantile(fallback))
    };
    let clamp = |v: f64| round6(v.clamp(0.01, 0.99));
    let low = clamp(cut(PRECISION[0], 0.05));
    let medium = clamp(cut(PRECISION[1], 0.02)).max(low);
    let high = clamp(cut(PRECISION[2], 0.01)).max(medium);
    Thresholds { low, medium, high }
}

/// Probability levels of the exceedance table.
const LEVELS: usize = 99;

/// Fold every review of the model's domain in time order (and, with
/// `history`, the inspections), score each business at each of its risk
/// reports, and count per level the share of business-weeks whose highest
/// probability reached it (weeks from the first review to the last).
fn exceedance(
    reviews: &[Review],
    inspections: &[InspectionRow],
    model: &Model,
    extractor: &Extractor,
    history: bool,
) -> Exceedance {
    let domain = model.file.domain;
    let pseudonyms = training_pseudonyms();
    let events = in_time_order(reviews, inspections, domain);
    let review_time = |e: &Event<'_>| match e {
        Event::Review(r) => Some(r.event_time),
        Event::Inspection(_) => None,
    };
    let week = 7 * features::DAY;
    let start = events.iter().find_map(review_time).unwrap_or(0);
    let end = events.iter().rev().find_map(review_time).unwrap_or(0);
    // Inspections after the last review change no score.
    let last = events
        .iter()
        .rposition(|e| matches!(e, Event::Review(_)))
        .map_or(0, |i| i + 1);
    let mut states = States::default();
    let mut best: HashMap<(&str, i64), f64> = HashMap::new();
    for event in &events[..last] {
        let r = match event {
            Event::Review(r) => r,
            Event::Inspection(i) => {
                if history {
                    states
                        .entry(domain, &i.business_id, i.inspected_at)
                        .inspected(i.inspected_at, i.outcome);
                }
                continue;
            }
        };
        let signals = scorer::observe(extractor, &pseudonyms, &mut states, r);
        if signals.is_empty() {
            continue;
        }
        if let Some(s) = states.get(domain, &r.business_id) {
            let p = model.probability(&s.features_at(r.event_time.max(s.as_of)));
            let k = (r.business_id.as_str(), (r.event_time - start) / week);
            let e = best.entry(k).or_insert(0.0);
            *e = e.max(p);
        }
    }
    let weeks = ((end - start) / week + 1).max(1) as f64;
    let business_weeks = (states.count(domain) as f64 * weeks).max(1.0);
    let levels: Vec<f64> = (1..=LEVELS)
        .map(|i| i as f64 / (LEVELS + 1) as f64)
        .collect();
    let weekly_share = levels
        .iter()
        .map(|l| round6(best.values().filter(|p| **p >= *l).count() as f64 / business_weeks))
        .collect();
    Exceedance {
        levels,
        weekly_share,
    }
}

/// Round to 6 decimals: keeps model files compact and their bytes stable.
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Score past inspections with a model: the scores and outcomes, in time order.
pub fn evaluate(
    reviews: &[Review],
    inspections: &[InspectionRow],
    model: &Model,
    extractor: &Extractor,
    progress: &ProgressBar,
) -> (Vec<f64>, Vec<bool>) {
    let history = model
        .feature_names()
        .iter()
        .any(|n| !features::rises_with_reports(n));
    let rows = point_in_time_features(
        reviews,
        inspections,
        model.file.domain,
        extractor,
        history,
        progress,
    );
    progress.finish_and_clear();
    let scores: Vec<f64> = rows.x.iter().map(|r| model.probability(r)).collect();
    (scores, rows.y)
}

#[cfg(test)]
mod tests;
