//! The model card written beside a trained model.

use super::train::shipped_name;
use reviewguard::core::model::{Model, ModelKind};
use reviewguard::offline::train;

pub(crate) fn model_card(model: &Model, t: &train::Trained) -> String {
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
