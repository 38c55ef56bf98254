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
    version: &str,
    opts: reviewguard::offline::fit_signals::FitOptions,
) -> Result<()> {
    use reviewguard::core::extract::learned::MAX_BITS;
    use reviewguard::offline::devset;
    use reviewguard::offline::fit_signals;
    if !(4..=MAX_BITS).contains(&opts.bits) {
        bail!("--bits must be 4..={MAX_BITS}, got {}", opts.bits);
    }
    if opts.folds < 2 {
        bail!("--folds must be at least 2, got {}", opts.folds);
    }
    let (domain, mut ex, set) = input.open()?;
    let opts = reviewguard::offline::fit_signals::FitOptions {
        free: reviewguard::core::extract::learned::named_buckets(domain, opts.bits),
        ..opts
    };
    // The features are the lexicons' findings, not a previous model's.
    ex.set_model(domain, None)?;
    let examples = fit_signals::examples(&ex, domain, &set, opts.bits);
    let labelled: Vec<_> = examples.iter().map(|e| e.labels).collect();
    let lexicon: Vec<_> = examples.iter().map(|e| e.lexicon).collect();
    println!(
        "{} labelled reviews of {}",
        set.len(),
        input.corpus.display()
    );
    println!("\nlexicons alone:");
    print!("{}", devset::score(domain, &labelled, &lexicon).table());
    let choices = fit_signals::cross_validate(&examples, domain, &opts)?;
    println!(
        "\nlearned model, {}-fold cross-validated (each review judged by a model fitted without it; L1 and thresholds chosen on the same folds, so somewhat optimistic):",
        opts.folds
    );
    let cv = fit_signals::cv_answers(&examples, domain, &choices);
    print!("{}", devset::score(domain, &labelled, &cv).table());
    println!("\n| category | positives | L1 | threshold | calibration |\n|---|---:|---:|---:|---|");
    for c in &choices {
        println!(
            "| {} | {} | {} | {:.2} | {:.3} x + {:.3} |",
            c.category.as_str(),
            c.positives,
            c.l1,
            c.threshold,
            c.calibration.slope,
            c.calibration.intercept
        );
    }
    if let Some(out) = out {
        let names: Vec<String> = input
            .labels
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let file = fit_signals::fit(
            &examples,
            domain,
            &choices,
            &opts,
            version,
            &format!(
                "{} labelled reviews ({}), {} buckets, seed {}",
                set.len(),
                names.join(", "),
                1u64 << opts.bits,
                opts.seed
            ),
        );
        let text = file.to_sealed_json()?;
        std::fs::write(out, &text).with_context(|| format!("cannot write {}", out.display()))?;
        let weights: usize = file.categories.iter().map(|c| c.weights.len()).sum();
        println!(
            "\nwrote {} ({} bytes, {weights} non-zero weights)",
            out.display(),
            text.len()
        );
    }
    Ok(())
}
