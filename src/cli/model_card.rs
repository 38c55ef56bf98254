//! The model card written beside a trained model.

use reviewguard::core::features;
use reviewguard::core::model::Model;
use reviewguard::offline::report::readable;
use reviewguard::offline::train;
use std::collections::BTreeMap;
use std::fmt::Write;

pub(crate) fn model_card(model: &Model, t: &train::Trained) -> String {
    let f = &model.file;
    let chosen = &t.candidates[t.chosen];
    let mut s = String::new();
    let _ = write!(
        s,
        "# Model card: {} {} ({})\n\n\
sha256 of the model file: `{}`\n\n\
Model: **monotone scorecard** (`kind` `{}`).\n\n\
## Data\n{}; {} inspections ({} with violations), up to {}. Seed: {}.\n\n\
Command: `{}`\n\n\
## How it was fitted\n\
Features are point-in-time: each inspection sees only the reviews created before it{}, folded in \
by the same core code the stream uses. The earliest {} inspections are the fitting part; the later \
{} are held out: nothing was chosen on them, they are only reported on below.\n\n\
The model is a logistic scorecard on `ln(1 + x)` of each feature, standardised: L2-regularised, \
fitted by coordinate descent with the weight of every feature that a new risk report can raise held \
at 0 or above, so more risk reports never lower a score (the loader refuses a file that breaks this). \
The regularisation strength, and whether one feature alone does better, were chosen by \
time-ordered cross-validation inside the fitting part ({} expanding folds, mean ROC-AUC){}:\n\n\
| candidate | cross-validated ROC-AUC |\n|---|---|\n",
        f.name,
        f.version,
        f.domain,
        model.sha256,
        f.kind.as_str(),
        f.provenance.data,
        f.provenance.rows,
        f.provenance.positives,
        f.provenance.data_until,
        f.provenance.seed.map_or("-".into(), |s| s.to_string()),
        f.provenance.command,
        if f.feature_names
            .iter()
            .any(|n| !features::rises_with_reports(n))
        {
            " (and the inspections before it)"
        } else {
            ""
        },
        t.fit_rows,
        t.holdout.n,
        train::time_folds(t.fit_rows, t.folds).len(),
        if t.candidates.iter().any(|c| c.name.contains(" towards ")) {
            "; the scorecards pulled towards a prior model's weights (`--prior`) keep \
the best of theirs unless another candidate beats it by more than one standard error of the \
paired differences over the folds"
        } else {
            ""
        },
    );
    let mut shown: Vec<usize> = (0..t.candidates.len())
        .filter(|&i| !t.candidates[i].name.starts_with("single") || i == t.chosen)
        .collect();
    // The five best single features, for scale.
    let mut singles: Vec<usize> = (0..t.candidates.len())
        .filter(|&i| t.candidates[i].name.starts_with("single") && i != t.chosen)
        .collect();
    singles.sort_by(|&a, &b| {
        t.candidates[b]
            .cv_roc_auc
            .total_cmp(&t.candidates[a].cv_roc_auc)
    });
    shown.extend(singles.into_iter().take(5));
    for i in shown {
        let c = &t.candidates[i];
        let _ = writeln!(
            s,
            "| {}{} | {:.3} |",
            c.name,
            if i == t.chosen { " (chosen)" } else { "" },
            c.cv_roc_auc
        );
    }
    let _ = write!(
        s,
        "\nChosen: **{}**.\n\n\
## Held-out inspections (later, untouched)\n\
Figures with 95% bootstrap intervals (1,000 resamples of the held-out inspections).\n\n{}\
The best single feature by cross-validation, `{}`, fitted alone on the same fitting part: \
ROC-AUC {:.3}, lift@10% {:.2}x on the same held-out inspections.\n\n",
        chosen.name,
        train::metrics_markdown(&t.holdout, &t.holdout_intervals),
        t.best_single.0,
        t.best_single.1.roc_auc,
        t.best_single.1.lift_at_10pct,
    );
    capacity_curve(&mut s, t);
    size_deciles(&mut s, t);
    regions(&mut s, t);
    calibration(&mut s, t);
    let _ = write!(
        s,
        "## Severity thresholds\n\
On the calibrated probability that an inspection finds violations: low {:.3}, medium {:.3}, high {:.3}. \
They are the lowest cut-offs at which the fitting part's inspections scored at or above them (out of \
fold, in the cross-validation) found violations at least {:.0}%, {:.0}% and {:.0}% of the time (where none \
does, the top 5%, 2% and 1% of those scores). Where `decide.capacity` gives a region's weekly \
capacity, the region's cut-offs come from it instead (see `docs/training.md`).\n\n",
        f.thresholds.low,
        f.thresholds.medium,
        f.thresholds.high,
        train::PRECISION[0] * 100.0,
        train::PRECISION[1] * 100.0,
        train::PRECISION[2] * 100.0,
    );
    if let Some(e) = &f.exceedance {
        let _ = write!(
            s,
            "On the whole history given to `train`, a business reached the low threshold in {:.2}% of its weeks, \
medium in {:.2}%, high in {:.2}% (the model file's exceedance table).\n\n",
            100.0 * share_at(e, f.thresholds.low),
            100.0 * share_at(e, f.thresholds.medium),
            100.0 * share_at(e, f.thresholds.high),
        );
    }
    if let Some(card) = &f.scorecard {
        s.push_str(
            "## Weights (towards violations, largest first)\n\
A weight is the change in log-odds of violations for one standard deviation more of `ln(1 + feature)`, \
the others held equal. `>= 0`: held at 0 or above (a risk feature). Features are correlated (a \
7-day share is part of the 30-day one), so a feature at 0 may still matter through its neighbours.\n\n\
| feature | meaning | weight | bound |\n|---|---|---|---|\n",
        );
        let mut order: Vec<usize> = (0..card.weights.len()).collect();
        order.sort_by(|&a, &b| {
            card.weights[b]
                .abs()
                .total_cmp(&card.weights[a].abs())
                .then(a.cmp(&b))
        });
        for i in order {
            let name = &f.feature_names[i];
            let _ = writeln!(
                s,
                "| {name} | {} | {:+.3} | {} |",
                readable(name),
                card.weights[i],
                if features::rises_with_reports(name) {
                    ">= 0"
                } else {
                    "free"
                }
            );
        }
    }
    s.push_str("\n## Limits\n\
- Fitted on simulated data (`reviewguard simulate`, its story in `src/offline/simulate/mod.rs`); \
real inspection histories will differ. Retrain on the regulator's own history of reviews and inspections before relying on the scores.\n\
- Signals come from the extractor; what it misses (sarcasm, images, unusual phrasing) the model cannot see.\n\
- Scores rank businesses for inspection; they are not findings. Every flag carries its evidence for a person to read.\n");
    s
}

fn share_at(e: &reviewguard::core::model::Exceedance, level: f64) -> f64 {
    e.levels
        .iter()
        .zip(&e.weekly_share)
        .find(|(l, _)| **l >= level)
        .map_or(0.0, |(_, s)| *s)
}

/// Violations found against inspections made, visiting the held-out
/// inspections by score.
fn capacity_curve(s: &mut String, t: &train::Trained) {
    let (scores, y) = (&t.holdout_scores, &t.holdout_outcomes);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let total = y.iter().filter(|v| **v).count().max(1) as f64;
    s.push_str(
        "## Capacity curve (held out)\n\
Visiting the held-out inspections highest score first: violations found against inspections made.\n\n\
| inspections made | violations found | share of all violations | yield |\n|---|---|---|---|\n",
    );
    for share in [0.05, 0.1, 0.2, 0.3, 0.5, 1.0] {
        let k = ((scores.len() as f64 * share).ceil() as usize).min(scores.len());
        let found = order[..k].iter().filter(|&&i| y[i]).count();
        let _ = writeln!(
            s,
            "| {k} ({:.0}%) | {found} | {:.1}% | {:.1}% |",
            share * 100.0,
            100.0 * found as f64 / total,
            100.0 * found as f64 / k.max(1) as f64
        );
    }
    s.push('\n');
}

/// Yield by business size: deciles of the held-out inspections by the
/// business's reviews in the last 30 days.
fn size_deciles(s: &mut String, t: &train::Trained) {
    let Some(col) = features::feature_names(t.file.domain)
        .iter()
        .position(|n| n == "reviews_30d")
    else {
        return;
    };
    let n = t.holdout_features.len();
    if n < 10 {
        return;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        t.holdout_features[a][col]
            .total_cmp(&t.holdout_features[b][col])
            .then(a.cmp(&b))
    });
    s.push_str(
        "## Yield by business size (held out)\n\
Deciles of the held-out inspections by the business's time-weighted reviews in the last 30 days: \
how often an inspection found violations, and the mean score.\n\n\
| decile | reviews (30 d) | inspections | violations found | mean score |\n|---|---|---|---|---|\n",
    );
    for d in 0..10 {
        let part = &order[d * n / 10..(d + 1) * n / 10];
        if part.is_empty() {
            continue;
        }
        let lo = t.holdout_features[part[0]][col];
        let hi = t.holdout_features[part[part.len() - 1]][col];
        let found = part.iter().filter(|&&i| t.holdout_outcomes[i]).count();
        let mean = part.iter().map(|&i| t.holdout_scores[i]).sum::<f64>() / part.len() as f64;
        let _ = writeln!(
            s,
            "| {} | {lo:.1}–{hi:.1} | {} | {:.1}% | {mean:.3} |",
            d + 1,
            part.len(),
            100.0 * found as f64 / part.len() as f64
        );
    }
    s.push('\n');
}

/// Yield by region: per region, the held-out inspections, how often they
/// found violations, and how often the top-scored tenth of them did.
fn regions(s: &mut String, t: &train::Trained) {
    let mut by: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in t.holdout_regions.iter().enumerate() {
        by.entry(if r.is_empty() { "(none)" } else { r.as_str() })
            .or_default()
            .push(i);
    }
    s.push_str(
        "## Yield by region (held out)\n\
| region | inspections | violations found | yield of the top-scored 20% |\n|---|---|---|---|\n",
    );
    for (region, rows) in by {
        let found = rows.iter().filter(|&&i| t.holdout_outcomes[i]).count();
        let mut top = rows.clone();
        top.sort_by(|&a, &b| {
            t.holdout_scores[b]
                .total_cmp(&t.holdout_scores[a])
                .then(a.cmp(&b))
        });
        let k = (rows.len() as f64 * 0.2).ceil() as usize;
        let top_found = top[..k].iter().filter(|&&i| t.holdout_outcomes[i]).count();
        let _ = writeln!(
            s,
            "| {region} | {} | {:.1}% | {:.1}% |",
            rows.len(),
            100.0 * found as f64 / rows.len().max(1) as f64,
            100.0 * top_found as f64 / k.max(1) as f64
        );
    }
    s.push('\n');
}

/// Reliability: predicted against observed, in bins of the score.
fn calibration(s: &mut String, t: &train::Trained) {
    s.push_str(
        "## Calibration (held out)\n\
| score bin | inspections | mean score | share with violations |\n|---|---|---|---|\n",
    );
    for (mean, observed, n) in
        reviewguard::offline::report::reliability(&t.holdout_scores, &t.holdout_outcomes)
    {
        let _ = writeln!(
            s,
            "| {:.1} | {n} | {mean:.3} | {observed:.3} |",
            (mean * 10.0).floor() / 10.0
        );
    }
    s.push('\n');
}
