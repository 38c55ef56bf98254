//! Fitting the learned signal model ([`crate::core::extract::learned`]) on
//! hand-labelled reviews: what `reviewguard fit-signals` runs.
//!
//! Per category, an L1 and L2 regularised logistic regression over the
//! sparse hashed features (2^18 buckets by default), solved by FTRL-Proximal
//! (McMahan et al., "Ad Click Prediction: a View from the Trenches", 2013):
//! a per-coordinate online solver made for exactly this shape of problem —
//! millions of possible features, a few hundred present per example — whose
//! L1 term leaves most weights at zero, so the model file stays small.
//! linfa's logistic regression needs a dense matrix, which at 2^18 features
//! and thousands of reviews would take gigabytes; it still fits what is
//! dense and small here: the Platt calibration of each category.
//!
//! Everything is chosen by k-fold cross-validation on the training labels
//! only: the regularisation strength per category (from a small grid), the
//! calibration (fitted on out-of-fold scores) and the threshold (the one
//! that maximises out-of-fold F1). The same data, options and seed give the
//! same bytes: examples are visited in an order drawn from the seed, and
//! nothing iterates a hash map.

use crate::core::extract::Extractor;
use crate::core::extract::learned::{CategoryWeights, SignalModelFile, features};
use crate::core::model::Calibration;
use crate::offline::devset::{Counts, Labelled};
use crate::types::Domain;
use crate::types::category::{Category, CategorySet};
use anyhow::{Result, anyhow};
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Options of [`fit`] and [`cross_validate`].
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub bits: u32,
    /// Candidate L1 strengths; cross-validation picks one per category.
    pub l1: Vec<f64>,
    pub l2: f64,
    /// FTRL's learning-rate scale (alpha) and smoothing (beta).
    pub alpha: f64,
    pub beta: f64,
    /// Passes over the examples.
    pub epochs: usize,
    /// Folds of the cross-validation that picks L1, calibration and threshold.
    pub folds: usize,
    pub seed: u64,
    /// A category with fewer positive examples is left to the lexicons.
    pub min_positives: usize,
    /// Buckets exempt from L1 (see [`named_buckets`]).
    pub free: Vec<u32>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            bits: 18,
            l1: vec![10.0, 30.0, 100.0],
            l2: 1.0,
            alpha: 0.2,
            beta: 1.0,
            epochs: 5,
            folds: 5,
            seed: 1,
            min_positives: 10,
            free: Vec::new(),
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

/// Build examples from labelled reviews with the extractor's normalisation,
/// lexicons and cues: the features the extractor will compute.
pub fn examples(ex: &Extractor, domain: Domain, set: &[Labelled], bits: u32) -> Vec<Example> {
    set.iter()
        .map(|l| {
            let (norm, ctx) = ex.model_input(domain, &l.text);
            Example {
                features: features(&norm, ctx, bits),
                labels: l.labels,
                lexicon: ctx.lexicon,
            }
        })
        .collect()
}

/// An FTRL-Proximal logistic regression over binary features; the last
/// coordinate is the intercept. The intercept and the lexicon and cue
/// features are not L1-regularised.
struct Ftrl {
    z: Vec<f64>,
    n: Vec<f64>,
    /// Per coordinate: exempt from L1.
    free: Vec<bool>,
    alpha: f64,
    beta: f64,
    l1: f64,
    l2: f64,
}

impl Ftrl {
    fn new(bits: u32, free: &[u32], alpha: f64, beta: f64, l1: f64, l2: f64) -> Ftrl {
        let dim = (1usize << bits) + 1;
        let mut exempt = vec![false; dim];
        exempt[dim - 1] = true;
        for &b in free {
            exempt[b as usize] = true;
        }
        Ftrl {
            z: vec![0.0; dim],
            n: vec![0.0; dim],
            free: exempt,
            alpha,
            beta,
            l1,
            l2,
        }
    }

    fn bias(&self) -> usize {
        self.z.len() - 1
    }

    fn weight(&self, i: usize) -> f64 {
        let l1 = if self.free[i] { 0.0 } else { self.l1 };
        let z = self.z[i];
        if z.abs() <= l1 {
            0.0
        } else {
            -(z - z.signum() * l1) / ((self.beta + self.n[i].sqrt()) / self.alpha + self.l2)
        }
    }

    fn logit(&self, x: &[u32]) -> f64 {
        let mut s = self.weight(self.bias());
        for &i in x {
            s += self.weight(i as usize);
        }
        s
    }

    fn learn(&mut self, x: &[u32], y: bool) {
        let p = 1.0 / (1.0 + (-self.logit(x)).exp());
        let g = p - if y { 1.0 } else { 0.0 };
        let bias = self.bias();
        for i in x.iter().map(|&i| i as usize).chain([bias]) {
            let w = self.weight(i);
            let sigma = ((self.n[i] + g * g).sqrt() - self.n[i].sqrt()) / self.alpha;
            self.z[i] += g - sigma * w;
            self.n[i] += g * g;
        }
    }
}

/// Fit one category on `rows` (indices into `examples`).
fn fit_ftrl(
    examples: &[Example],
    rows: &[usize],
    cat: Category,
    l1: f64,
    o: &FitOptions,
    seed: u64,
) -> Ftrl {
    let mut m = Ftrl::new(o.bits, &o.free, o.alpha, o.beta, l1, o.l2);
    let mut order = rows.to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..o.epochs {
        order.shuffle(&mut rng);
        for &r in &order {
            let e = &examples[r];
            m.learn(&e.features, e.labels.contains(cat));
        }
    }
    m
}

/// Fold of each example (0..k), balanced and drawn from `seed`.
fn folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut fold = vec![0; n];
    for (pos, &i) in idx.iter().enumerate() {
        fold[i] = pos % k;
    }
    fold
}

/// Out-of-fold log-odds of every example for `cat` at `l1`.
fn out_of_fold(
    examples: &[Example],
    fold: &[usize],
    cat: Category,
    l1: f64,
    o: &FitOptions,
) -> Vec<f64> {
    let k = o.folds.max(2);
    let mut scores = vec![0.0; examples.len()];
    for f in 0..k {
        let train: Vec<usize> = (0..examples.len()).filter(|&i| fold[i] != f).collect();
        let m = fit_ftrl(examples, &train, cat, l1, o, o.seed ^ (f as u64 + 1));
        for (i, s) in scores.iter_mut().enumerate() {
            if fold[i] == f {
                *s = m.logit(&examples[i].features);
            }
        }
    }
    scores
}

/// Platt scaling of log-odds, fitted with linfa on (score, label) pairs.
fn platt(scores: &[f64], y: &[bool]) -> Result<Calibration> {
    let x = ndarray::Array2::from_shape_vec((scores.len(), 1), scores.to_vec())?;
    let t = ndarray::Array1::from_vec(y.to_vec());
    let fitted = LogisticRegression::default()
        .alpha(1e-4)
        .max_iterations(200)
        .fit(&Dataset::new(x, t))
        .map_err(|e| anyhow!("cannot calibrate: {e}"))?;
    // linfa's positive class is the larger label: `true`.
    let sign = crate::core::model::violation_sign(&fitted);
    Ok(Calibration {
        slope: round6(sign * fitted.params()[0]),
        intercept: round6(sign * fitted.intercept()),
    })
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// F1 of `p >= threshold` against `y`.
fn f1_at(p: &[f64], y: &[bool], threshold: f64) -> f64 {
    let mut c = Counts::default();
    for (&p, &y) in p.iter().zip(y) {
        c.add(y, p >= threshold);
    }
    if c.tp == 0 {
        0.0
    } else {
        2.0 * c.tp as f64 / (2 * c.tp + c.fp + c.fn_) as f64
    }
}

/// The threshold (0.05 to 0.95 by 0.05) with the best F1; ties go to the
/// one nearest 0.5.
fn best_threshold(p: &[f64], y: &[bool]) -> (f64, f64) {
    let mut best = (0.5, f1_at(p, y, 0.5));
    for i in 1..20 {
        let t = f64::from(i) * 0.05;
        let f = f1_at(p, y, t);
        if f > best.1 + 1e-12
            || ((f - best.1).abs() <= 1e-12 && (t - 0.5).abs() < (best.0 - 0.5f64).abs())
        {
            best = (t, f);
        }
    }
    (round6(best.0), best.1)
}

/// What cross-validation chose for one category, and what it measured.
#[derive(Debug, Clone)]
pub struct CategoryChoice {
    pub category: Category,
    pub positives: usize,
    pub l1: f64,
    pub calibration: Calibration,
    pub threshold: f64,
    /// Out-of-fold F1 at the threshold (optimistic: the threshold and L1
    /// were chosen on the same folds).
    pub cv_f1: f64,
    /// Out-of-fold decisions, per example.
    pub decisions: Vec<bool>,
}

/// Choose L1, calibration and threshold for every category with enough
/// positives, by `o.folds`-fold cross-validation.
pub fn cross_validate(
    examples: &[Example],
    domain: Domain,
    o: &FitOptions,
) -> Result<Vec<CategoryChoice>> {
    let fold = folds(examples.len(), o.folds.max(2), o.seed);
    let mut out = Vec::new();
    for &cat in Category::of(domain) {
        let y: Vec<bool> = examples.iter().map(|e| e.labels.contains(cat)).collect();
        let positives = y.iter().filter(|&&v| v).count();
        if positives < o.min_positives {
            continue;
        }
        let mut best: Option<CategoryChoice> = None;
        for &l1 in &o.l1 {
            let scores = out_of_fold(examples, &fold, cat, l1, o);
            let calibration = platt(&scores, &y)?;
            let p: Vec<f64> = scores
                .iter()
                .map(|s| sigmoid(calibration.slope * s + calibration.intercept))
                .collect();
            let (threshold, cv_f1) = best_threshold(&p, &y);
            if best.as_ref().is_none_or(|b| cv_f1 > b.cv_f1 + 1e-12) {
                best = Some(CategoryChoice {
                    category: cat,
                    positives,
                    l1,
                    calibration,
                    threshold,
                    cv_f1,
                    decisions: p.iter().map(|&p| p >= threshold).collect(),
                });
            }
        }
        out.extend(best);
    }
    Ok(out)
}

/// Fit the model on every example with the choices of [`cross_validate`].
pub fn fit(
    examples: &[Example],
    domain: Domain,
    choices: &[CategoryChoice],
    o: &FitOptions,
    version: &str,
    fitted_on: &str,
) -> SignalModelFile {
    let all: Vec<usize> = (0..examples.len()).collect();
    let categories = choices
        .iter()
        .map(|c| {
            let m = fit_ftrl(examples, &all, c.category, c.l1, o, o.seed);
            let weights: Vec<(u32, f32)> = (0..m.bias())
                .filter_map(|i| {
                    let w = (m.weight(i) * 1e4).round() / 1e4;
                    (w != 0.0).then_some((i as u32, w as f32))
                })
                .collect();
            CategoryWeights {
                category: c.category.as_str().to_owned(),
                intercept: round6(m.weight(m.bias())),
                calibration: c.calibration,
                threshold: c.threshold,
                weights,
            }
        })
        .collect();
    SignalModelFile::new(domain, o.bits, version, fitted_on, categories)
}

/// The cross-validated answer per example: the model's decision for the
/// categories it covers, the lexicons' for the others.
pub fn cv_answers(
    examples: &[Example],
    domain: Domain,
    choices: &[CategoryChoice],
) -> Vec<CategorySet> {
    examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut s = CategorySet::default();
            for &cat in Category::of(domain) {
                let decided = match choices.iter().find(|c| c.category == cat) {
                    Some(c) => c.decisions[i],
                    None => e.lexicon.contains(cat),
                };
                if decided {
                    s.insert(cat);
                }
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy problem: category when feature 7 is present, noise elsewhere.
    fn toy(n: usize) -> Vec<Example> {
        (0..n)
            .map(|i| {
                let positive = i % 4 == 0;
                let mut features = vec![(i % 13) as u32 + 100, (i % 7) as u32 + 200];
                if positive {
                    features.push(7);
                }
                features.sort_unstable();
                let mut labels = CategorySet::default();
                if positive {
                    labels.insert(Category::Illness);
                }
                Example {
                    features,
                    labels,
                    lexicon: CategorySet::default(),
                }
            })
            .collect()
    }

    fn small() -> FitOptions {
        FitOptions {
            bits: 10,
            l1: vec![0.1, 1.0],
            folds: 3,
            ..FitOptions::default()
        }
    }

    #[test]
    fn learns_a_separable_category_and_calibrates_it() {
        let examples = toy(400);
        let o = small();
        let choices = cross_validate(&examples, Domain::Food, &o).unwrap();
        // Only illness has positives enough.
        assert_eq!(choices.len(), 1);
        let c = &choices[0];
        assert!(c.cv_f1 > 0.99, "{}", c.cv_f1);
        assert!(c.calibration.slope > 0.0);
        let file = fit(&examples, Domain::Food, &choices, &o, "t", "toy");
        let w = &file.categories[0].weights;
        assert!(w.iter().any(|&(b, w)| b == 7 && w > 0.5), "{w:?}");
        // Every noise feature weighs far less than the signal.
        let noise = w
            .iter()
            .filter(|(b, _)| *b != 7)
            .map(|(_, w)| w.abs())
            .fold(0.0f32, f32::max);
        let signal = w.iter().find(|(b, _)| *b == 7).map_or(0.0, |(_, w)| *w);
        assert!(noise < signal / 3.0, "noise {noise} vs signal {signal}");
    }

    #[test]
    fn the_same_data_and_seed_give_the_same_bytes() {
        let examples = toy(300);
        let o = small();
        let one = {
            let c = cross_validate(&examples, Domain::Food, &o).unwrap();
            fit(&examples, Domain::Food, &c, &o, "t", "toy")
                .to_sealed_json()
                .unwrap()
        };
        let two = {
            let c = cross_validate(&examples, Domain::Food, &o).unwrap();
            fit(&examples, Domain::Food, &c, &o, "t", "toy")
                .to_sealed_json()
                .unwrap()
        };
        assert_eq!(one, two);
        let other_seed = FitOptions { seed: 2, ..o };
        let c = cross_validate(&examples, Domain::Food, &other_seed).unwrap();
        let three = fit(&examples, Domain::Food, &c, &other_seed, "t", "toy")
            .to_sealed_json()
            .unwrap();
        assert_ne!(one, three, "the seed orders the examples");
    }

    #[test]
    fn a_rare_category_is_left_to_the_lexicons() {
        let mut examples = toy(200);
        examples[1].labels.insert(Category::Hygiene);
        examples[1].lexicon.insert(Category::Hygiene);
        let choices = cross_validate(&examples, Domain::Food, &small()).unwrap();
        assert!(choices.iter().all(|c| c.category != Category::Hygiene));
        let answers = cv_answers(&examples, Domain::Food, &choices);
        assert!(answers[1].contains(Category::Hygiene));
    }
}
