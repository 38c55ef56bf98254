//! `train`: fit a model from reviews and past inspections; write it, its
//! model card and, on request, a report with plots.

use super::common::*;
use super::model_card::model_card;
use anyhow::{Context, Result, anyhow, bail};
use reviewguard::core::extract::Extractor;
use reviewguard::core::model::{Model, ModelKind};
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

pub(crate) fn shipped_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::LogisticRegression => "logistic regression",
        ModelKind::TreeEnsemble => "tree ensemble",
    }
}

pub(crate) fn other_kind(kind: ModelKind) -> ModelKind {
    match kind {
        ModelKind::LogisticRegression => ModelKind::TreeEnsemble,
        ModelKind::TreeEnsemble => ModelKind::LogisticRegression,
    }
}
