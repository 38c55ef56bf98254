//! `evaluate`: score past inspections with a model.

use super::common::*;
use anyhow::{Context, Result, anyhow};
use reviewguard::core::extract::Extractor;
use reviewguard::core::model::Model;
use reviewguard::offline::simulate::Truth;
use reviewguard::offline::train;
use reviewguard::types::Domain;
use std::path::Path;

pub(crate) fn run(
    reviews: &Path,
    inspections: &Path,
    model_path: &Path,
    report: Option<&Path>,
    json: bool,
    truth: Option<&Path>,
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
    let oracle = match truth {
        Some(t) => Some(oracle_roc_auc(t, &insp, domain, &outcomes)?),
        None => None,
    };
    if json {
        let mut v = serde_json::to_value(&m)?;
        if let (Some(o), Some(obj)) = (oracle, v.as_object_mut()) {
            obj.insert("oracle_roc_auc".into(), o.into());
            obj.insert("roc_auc_share_of_oracle".into(), (m.roc_auc / o).into());
        }
        println!("{v}");
    } else {
        print!("{}", train::metrics_markdown(&m, &ci));
        if let Some(o) = oracle {
            println!(
                "A scorer that knows each business's hidden state reaches ROC-AUC {o:.3} on these inspections; this model reaches {:.3} of it.",
                m.roc_auc / o
            );
        }
    }
    Ok(())
}

/// ROC-AUC of the simulator's hidden state on the inspections of `domain`
/// (in the order `evaluate` scores them): 2 in a bad spell, 1 a chronic
/// offender, 0 clean.
fn oracle_roc_auc(
    truth: &Path,
    inspections: &[train::InspectionRow],
    domain: Domain,
    outcomes: &[bool],
) -> Result<f64> {
    use std::collections::HashMap;
    let text = std::fs::read_to_string(truth)
        .with_context(|| format!("cannot read --truth {}", truth.display()))?;
    let mut by: HashMap<String, Truth> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let t: Truth = serde_json::from_str(line)
            .map_err(|e| anyhow!("{}:{}: {e}", truth.display(), i + 1))?;
        if t.domain == domain {
            by.insert(t.business_id.clone(), t);
        }
    }
    let mut rows: Vec<&train::InspectionRow> =
        inspections.iter().filter(|i| i.domain == domain).collect();
    rows.sort_by_key(|i| i.inspected_at);
    let mut scores = Vec::with_capacity(rows.len());
    for r in rows {
        let t = by.get(&r.business_id).ok_or_else(|| {
            anyhow!(
                "--truth has no {domain} business {} (another world's truth?)",
                r.business_id
            )
        })?;
        scores.push(if t.in_episode(r.inspected_at) {
            2.0
        } else if t.chronic {
            1.0
        } else {
            0.0
        });
    }
    if scores.len() != outcomes.len() {
        return Err(anyhow!(
            "--truth: {} inspections against {} scored",
            scores.len(),
            outcomes.len()
        ));
    }
    Ok(train::roc_auc(&scores, outcomes))
}
