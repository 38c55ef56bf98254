//! `eval-signals` and `fit-signals`: the extractor against a hand-labelled
//! set, and the n-gram signal model fitted on one.

use super::args::*;
use anyhow::{Context, Result, bail};
use std::path::Path;

/// Seed of the bootstrap intervals: the same run, the same intervals.
const BOOTSTRAP_SEED: u64 = 20261207;

pub(crate) fn eval_signals(
    labelled: &LabelledSet,
    errors: usize,
    lexicon_only: bool,
    statements: Option<&Path>,
    reps: usize,
) -> Result<()> {
    use reviewguard::offline::signal_eval;
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
    let got: Vec<_> = set
        .iter()
        .map(|l| ex.extract(domain, &l.text).categories)
        .collect();
    let held = signal_eval::held_out(domain, &set, &got, reps, BOOTSTRAP_SEED);
    println!("figures with 95% bootstrap intervals ({reps} resamples):");
    print!("{}", held.table());
    if let Some(path) = statements {
        let all = signal_eval::load_statements(path)?;
        let mine: Vec<_> = all.into_iter().filter(|s| s.domain == domain).collect();
        let got: Vec<_> = mine
            .iter()
            .map(|s| ex.extract(domain, &s.text).categories)
            .collect();
        println!(
            "\n{} written {domain} statements of {}",
            mine.len(),
            path.display()
        );
        print!(
            "{}",
            signal_eval::probes(domain, &mine, &got, reps, BOOTSTRAP_SEED).table()
        );
    }
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

pub(crate) fn fit_signals(
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
