//! `train`: fit a model from reviews and past inspections; write it, its
//! model card and, on request, a report with plots.

use super::common::*;
use super::model_card::model_card;
use anyhow::{Context, Result, bail};
use reviewguard::core::extract::Extractor;
use reviewguard::core::model::Model;
use reviewguard::offline::train;
use std::path::Path;

#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    reviews: &Path,
    inspections: &Path,
    domain: &str,
    out: &Path,
    report: Option<&Path>,
    version: &str,
    seed: Option<u64>,
    fit_share: f64,
    folds: usize,
    history: bool,
    features: &str,
    prior_arg: &str,
) -> Result<()> {
    let domain = parse_domain(domain)?;
    if !(0.3..=0.95).contains(&fit_share) {
        bail!("--fit-share must be from 0.3 to 0.95");
    }
    if !(2..=10).contains(&folds) {
        bail!("--folds must be from 2 to 10");
    }
    let prior = match prior_arg {
        "none" => None,
        "builtin" => Some(train::Prior::of(&Model::builtin(domain)?, domain)?),
        path => Some(
            train::Prior::of(&Model::load(Path::new(path), domain)?, domain)
                .with_context(|| format!("--prior {path}"))?,
        ),
    };
    let revs = train::read_reviews(reviews)?;
    let insp = train::read_inspections(inspections)?;
    let ex = Extractor::builtin()?;
    // File names only: the same data in another folder gives the same model file.
    let command = format!(
        "train --reviews {} --inspections {} --domain {domain} --version {version}{} --fit-share {fit_share} --folds {folds}{} --features {features} --prior {}",
        file_name(reviews),
        file_name(inspections),
        seed.map_or(String::new(), |s| format!(" --seed {s}")),
        if history { " --history" } else { "" },
        match prior_arg {
            "none" | "builtin" => prior_arg.to_owned(),
            path => file_name(Path::new(path)),
        },
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
            folds,
            history,
            bootstrap: 1000,
            invariant: match features {
                "invariant" => true,
                "all" => false,
                f => bail!("--features must be invariant or all, got {f:?}"),
            },
            prior,
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
        let single = format!("best single feature ({})", t.best_single.0);
        reviewguard::offline::report::plots(
            dir,
            &[
                reviewguard::offline::report::Series {
                    name: "scorecard (shipped)",
                    scores: &t.holdout_scores,
                    outcomes: &t.holdout_outcomes,
                },
                reviewguard::offline::report::Series {
                    name: &single,
                    scores: &t.best_single_scores,
                    outcomes: &t.holdout_outcomes,
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
        chosen = %t.candidates[t.chosen].name,
        cv_roc_auc = t.candidates[t.chosen].cv_roc_auc,
        holdout_roc_auc = t.holdout.roc_auc,
        holdout_lift_at_10pct = t.holdout.lift_at_10pct,
        best_single_feature = %t.best_single.0,
        best_single_roc_auc = t.best_single.1.roc_auc,
        "model written"
    );
    Ok(())
}
