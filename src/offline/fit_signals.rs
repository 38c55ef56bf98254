//! Fitting the n-gram signal model ([`crate::core::extract::ngram`]) on the
//! hand-labelled development sets, and its k-fold cross-validation: what
//! `reviewguard fit-signals` runs.

use crate::core::extract::ngram::{CategoryWeights, FORMAT, SignalModelFile, features};
use crate::offline::devset::Labelled;
use crate::types::Domain;
use crate::types::category::{Category, CategorySet};
use anyhow::{Result, anyhow};

/// Options of [`fit`] and [`cross_validate`].
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub bits: u32,
    /// Candidate regularisation strengths; the inner cross-validation picks one.
    pub alphas: Vec<f64>,
    /// Folds of the inner cross-validation that picks alpha and threshold.
    pub inner_folds: usize,
    pub max_iterations: u64,
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            bits: 12,
            alphas: vec![0.3, 1.0, 3.0],
            inner_folds: 3,
            max_iterations: 150,
            seed: 1,
        }
    }
}

/// One training example: its feature buckets, its labels and what the
/// lexicons alone found in it.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Vec<u32>,
    pub labels: CategorySet,
    pub lexicon: CategorySet,
}

/// Build examples from labelled reviews with the extractor's normalisation
/// and its lexicons (without any model).
pub fn examples(
    ex: &crate::core::extract::Extractor,
    domain: Domain,
    set: &[Labelled],
    bits: u32,
) -> Vec<Example> {
    set.iter()
        .map(|l| Example {
            features: features(&ex.normalise(&l.text), bits),
            labels: l.labels,
            lexicon: ex.extract_lexicon(domain, &l.text).categories,
        })
        .collect()
}

fn dense(rows: &[&Example], bits: u32) -> ndarray::Array2<f64> {
    let mut x = ndarray::Array2::<f64>::zeros((rows.len(), 1usize << bits));
    for (i, r) in rows.iter().enumerate() {
        for &b in &r.features {
            x[[i, b as usize]] = 1.0;
        }
    }
    x
}

/// A fitted category: intercept and weights in log-odds of "positive".
struct Fitted {
    intercept: f64,
    weights: Vec<f64>,
}

impl Fitted {
    fn logit(&self, e: &Example) -> f64 {
        self.intercept
            + e.features
                .iter()
                .map(|&b| self.weights[b as usize])
                .sum::<f64>()
    }
}

fn fit_one(rows: &[&Example], cat: Category, alpha: f64, o: &FitOptions) -> Result<Fitted> {
    use linfa::prelude::*;
    let y: Vec<bool> = rows.iter().map(|e| e.labels.contains(cat)).collect();
    let positives = y.iter().filter(|p| **p).count();
    if positives == 0 || positives == y.len() {
        // Nothing to learn: a constant that never fires.
        return Ok(Fitted {
            intercept: if positives == 0 { -30.0 } else { 30.0 },
            weights: vec![0.0; 1usize << o.bits],
        });
    }
    let ds = Dataset::new(dense(rows, o.bits), ndarray::Array1::from(y));
    let m = linfa_logistic::LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(o.max_iterations)
        .fit(&ds)
        .map_err(|e| anyhow!("fitting {} with alpha {alpha}: {e}", cat.as_str()))?;
    let sign = if m.labels().pos.class { 1.0 } else { -1.0 };
    Ok(Fitted {
        intercept: sign * m.intercept(),
        weights: m.params().iter().map(|w| sign * w).collect(),
    })
}

/// Deterministic fold of example `i` (a seeded shuffle, then round robin).
fn folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let mut fold = vec![0; n];
    for (pos, i) in idx.into_iter().enumerate() {
        fold[i] = pos % k;
    }
    fold
}

/// F1 of "lexicon OR logit > threshold" for one category.
fn combined_f1(scored: &[(f64, bool, bool)], threshold: f64) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for &(logit, lex, want) in scored {
        let got = lex || logit > threshold;
        match (want, got) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            _ => {}
        }
    }
    if tp == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    }
}

/// Fit one category on `rows`: alpha and threshold chosen by inner
/// cross-validation on `rows` only (so that an outer fold stays unseen).
fn fit_category(
    rows: &[&Example],
    cat: Category,
    o: &FitOptions,
) -> Result<(f64, Option<f64>, Fitted)> {
    let inner = folds(rows.len(), o.inner_folds, o.seed ^ 0x5eed);
    let mut best: Option<(f64, f64, Option<f64>)> = None;
    for &alpha in &o.alphas {
        let mut scored = Vec::with_capacity(rows.len());
        for f in 0..o.inner_folds {
            let train: Vec<&Example> = rows
                .iter()
                .zip(&inner)
                .filter(|(_, g)| **g != f)
                .map(|(e, _)| *e)
                .collect();
            let m = fit_one(&train, cat, alpha, o)?;
            for (e, _) in rows.iter().zip(&inner).filter(|(_, g)| **g == f) {
                scored.push((m.logit(e), e.lexicon.contains(cat), e.labels.contains(cat)));
            }
        }
        // The lexicons alone, then every out-of-fold logit as a threshold.
        let mut cands: Vec<Option<f64>> = vec![None];
        cands.extend(scored.iter().map(|s| Some(s.0)));
        for t in cands {
            let f1 = combined_f1(&scored, t.unwrap_or(f64::INFINITY));
            if best.is_none_or(|(b, _, _)| f1 > b + 1e-12) {
                best = Some((f1, alpha, t));
            }
        }
    }
    let (_, alpha, threshold) = best.ok_or_else(|| anyhow!("no alpha to try"))?;
    let m = fit_one(rows, cat, alpha, o)?;
    Ok((alpha, threshold, m))
}

/// Fit a model for `domain` on all `examples`.
pub fn fit(
    examples: &[Example],
    domain: Domain,
    o: &FitOptions,
    fitted_on: &str,
) -> Result<SignalModelFile> {
    let rows: Vec<&Example> = examples.iter().collect();
    let mut categories = Vec::new();
    for &cat in Category::of(domain) {
        let (alpha, threshold, m) = fit_category(&rows, cat, o)?;
        categories.push(weights_of(cat, alpha, threshold, &m));
    }
    Ok(SignalModelFile {
        format: FORMAT.into(),
        domain: domain.as_str().into(),
        bits: o.bits,
        fitted_on: fitted_on.into(),
        categories,
    })
}

fn weights_of(cat: Category, alpha: f64, threshold: Option<f64>, m: &Fitted) -> CategoryWeights {
    let round = |x: f64| (x * 1e4).round() / 1e4;
    CategoryWeights {
        category: cat.as_str().into(),
        alpha,
        intercept: round(m.intercept),
        threshold: threshold.map(round),
        weights: m
            .weights
            .iter()
            .enumerate()
            .filter_map(|(b, &w)| {
                let w = round(w);
                (w != 0.0).then_some((b as u32, w as f32))
            })
            .collect(),
    }
}

/// k-fold cross-validation: every example is judged by a model (alpha and
/// threshold included) fitted without it. Returns, per example, the
/// categories of "lexicon OR model" (the model's cue check is not applied:
/// the figures are for the combination as fitted).
pub fn cross_validate(
    examples: &[Example],
    domain: Domain,
    k: usize,
    o: &FitOptions,
) -> Result<Vec<CategorySet>> {
    let outer = folds(examples.len(), k, o.seed);
    let mut out: Vec<CategorySet> = examples.iter().map(|e| e.lexicon).collect();
    for f in 0..k {
        let train: Vec<&Example> = examples
            .iter()
            .zip(&outer)
            .filter(|(_, g)| **g != f)
            .map(|(e, _)| e)
            .collect();
        for &cat in Category::of(domain) {
            let (_, threshold, m) = fit_category(&train, cat, o)?;
            let Some(t) = threshold else { continue };
            for (i, e) in examples.iter().enumerate() {
                if outer[i] == f && m.logit(e) > t {
                    out[i].insert(cat);
                }
            }
        }
        tracing::info!(fold = f + 1, of = k, "cross-validation fold done");
    }
    Ok(out)
}
