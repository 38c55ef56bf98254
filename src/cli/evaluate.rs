//! `evaluate`: score past inspections with a model.

use super::common::*;
use anyhow::{Context, Result, anyhow};
use reviewguard::core::extract::Extractor;
use reviewguard::core::model::Model;
use reviewguard::offline::train;
use reviewguard::types::Domain;
use std::path::Path;

pub(crate) fn run(
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
    let ci = train::bootstrap(&scores, &outcomes, 1000, 20_261_207);
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
                train::metrics_markdown(&m, &ci),
                reviewguard::offline::report::plots_markdown()
            ),
        )
        .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string(&m)?);
    } else {
        print!("{}", train::metrics_markdown(&m, &ci));
    }
    Ok(())
}
