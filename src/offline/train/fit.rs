//! Fitting the monotone scorecard ([`crate::core::model::Scorecard`]):
//! L2-regularised logistic regression by cyclic coordinate descent, the
//! weights of risk features held at 0 or above.
//!
//! linfa's logistic regression (argmin's L-BFGS) takes no bounds on the
//! weights, and a bound is what makes the model monotone; the problem is
//! small (tens of features, hundreds to thousands of inspections), so a
//! coordinate descent that majorises the logistic loss (its curvature is at
//! most 1/4) is exact, deterministic and needs no line search: every step
//! lowers the objective, and clipping a coordinate at 0 is its exact
//! minimiser under the bound.

use crate::core::model::scorecard_transform as transform;

/// Standardisation of transformed features: per column (mean, std).
#[derive(Debug, Clone, PartialEq)]
pub struct Standard {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standard {
    /// Of `rows` (raw features), each column through the scorecard's transform.
    pub fn of(rows: &[Vec<f64>], n: usize) -> Standard {
        let count = rows.len().max(1) as f64;
        let mut mean = vec![0.0; n];
        for r in rows {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += transform(*v) / count;
            }
        }
        let mut var = vec![0.0; n];
        for r in rows {
            for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
                *s += (transform(*v) - m).powi(2) / count;
            }
        }
        Standard {
            mean,
            std: var.into_iter().map(|v| v.sqrt().max(1e-6)).collect(),
        }
    }

    /// `rows` transformed and standardised, column `j` only where `keep[j]`
    /// (others 0).
    pub fn apply(&self, rows: &[Vec<f64>], keep: &[bool]) -> Vec<Vec<f64>> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(j, v)| {
                        if keep[j] {
                            (transform(*v) - self.mean[j]) / self.std[j]
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// A fitted scorecard on standardised features: intercept and weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub intercept: f64,
    pub weights: Vec<f64>,
}

impl Fitted {
    pub fn log_odds(&self, z: &[f64]) -> f64 {
        self.intercept + self.weights.iter().zip(z).map(|(w, z)| w * z).sum::<f64>()
    }

    pub fn probability(&self, z: &[f64]) -> f64 {
        sigmoid(self.log_odds(z))
    }
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Minimise `Σ logloss + alpha/2 × |w - w0|²` over rows `z` (standardised)
/// with outcomes `y`, where `w0` is `prior` (another model's weights on the
/// same standardised scale) or 0. `free[j]`: weight `j` may be negative;
/// otherwise it is held at 0 or above. `use_col[j]`: false keeps weight `j`
/// at 0.
pub fn fit(
    z: &[Vec<f64>],
    y: &[bool],
    free: &[bool],
    use_col: &[bool],
    alpha: f64,
    prior: Option<&[f64]>,
) -> Fitted {
    let n = z.len();
    let p = free.len();
    let pos = y.iter().filter(|v| **v).count() as f64;
    let base = ((pos + 0.5) / (n as f64 - pos + 0.5)).ln();
    // Curvature bound per coordinate: 1/4 Σ z², plus the penalty. A column
    // without variance here stays at 0, whatever the prior says.
    let curv: Vec<f64> = (0..p)
        .map(|j| 0.25 * z.iter().map(|r| r[j] * r[j]).sum::<f64>() + alpha)
        .collect();
    let moves = |j: usize| use_col[j] && curv[j] > alpha + 1e-12;
    let w0: Vec<f64> = (0..p)
        .map(|j| match prior {
            Some(w) if moves(j) => {
                let v = w.get(j).copied().unwrap_or(0.0);
                if free[j] { v } else { v.max(0.0) }
            }
            _ => 0.0,
        })
        .collect();
    let mut f = Fitted {
        intercept: base,
        weights: w0.clone(),
    };
    if n == 0 {
        return f;
    }
    let mut eta: Vec<f64> = z.iter().map(|r| f.log_odds(r)).collect();
    let yv: Vec<f64> = y.iter().map(|v| f64::from(u8::from(*v))).collect();
    for _ in 0..2_000 {
        let mut moved: f64 = 0.0;
        // Intercept (unpenalised).
        let g: f64 = eta.iter().zip(&yv).map(|(e, y)| sigmoid(*e) - y).sum();
        let step = -g / (0.25 * n as f64);
        f.intercept += step;
        for e in &mut eta {
            *e += step;
        }
        moved = moved.max(step.abs());
        for j in 0..p {
            if !moves(j) {
                continue;
            }
            let g: f64 = z
                .iter()
                .zip(&eta)
                .zip(&yv)
                .map(|((r, e), y)| (sigmoid(*e) - y) * r[j])
                .sum::<f64>()
                + alpha * (f.weights[j] - w0[j]);
            let mut w = f.weights[j] - g / curv[j];
            if !free[j] {
                w = w.max(0.0);
            }
            let d = w - f.weights[j];
            if d != 0.0 {
                for (e, r) in eta.iter_mut().zip(z) {
                    *e += d * r[j];
                }
                f.weights[j] = w;
            }
            moved = moved.max(d.abs());
        }
        if moved < 1e-7 {
            break;
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Data where the first feature raises the odds and the second lowers
    /// them: fitted free, the second weight is negative; held monotone, it
    /// is 0 and the first still positive.
    #[test]
    fn bounded_weights_stay_at_zero_or_above() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (mut z, mut y) = (Vec::new(), Vec::new());
        for _ in 0..2_000 {
            let a: f64 = rng.gen_range(-2.0..2.0);
            let b: f64 = rng.gen_range(-2.0..2.0);
            let p = sigmoid(1.5 * a - 1.0 * b - 0.5);
            z.push(vec![a, b]);
            y.push(rng.r#gen::<f64>() < p);
        }
        let all = [true, true];
        let free = fit(&z, &y, &[true, true], &all, 1.0, None);
        assert!((free.weights[0] - 1.5).abs() < 0.2, "{free:?}");
        assert!((free.weights[1] + 1.0).abs() < 0.2, "{free:?}");
        let bounded = fit(&z, &y, &[false, false], &all, 1.0, None);
        assert_eq!(bounded.weights[1], 0.0);
        assert!(bounded.weights[0] > 1.0, "{bounded:?}");
        // A column left out keeps weight 0.
        let one = fit(&z, &y, &[true, true], &[true, false], 1.0, None);
        assert_eq!(one.weights[1], 0.0);
        // The same data gives the same fit, bit for bit.
        assert_eq!(fit(&z, &y, &[false, false], &all, 1.0, None), bounded);
    }

    /// With few rows, a strong pull towards a prior keeps the weights near
    /// it (and at 0 or above where they must be); a weak one lets the data
    /// move them; a column without variance stays at 0 whatever the prior.
    #[test]
    fn a_prior_pulls_the_weights_towards_it() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (mut z, mut y) = (Vec::new(), Vec::new());
        for _ in 0..60 {
            let a: f64 = rng.gen_range(-2.0..2.0);
            z.push(vec![a, 0.0]);
            y.push(rng.r#gen::<f64>() < sigmoid(1.0 * a));
        }
        let all = [true, true];
        let bound = [false, false];
        let plain = fit(&z, &y, &bound, &all, 1.0, None);
        let prior = [3.0, 2.0];
        let strong = fit(&z, &y, &bound, &all, 1e4, Some(&prior));
        assert!((strong.weights[0] - 3.0).abs() < 0.05, "{strong:?}");
        assert_eq!(strong.weights[1], 0.0);
        let weak = fit(&z, &y, &bound, &all, 1.0, Some(&prior));
        assert!(
            (weak.weights[0] - plain.weights[0]).abs() < 0.5,
            "{weak:?} {plain:?}"
        );
        let negative = fit(&z, &y, &bound, &all, 1e4, Some(&[-3.0, 0.0]));
        assert!((0.0..0.05).contains(&negative.weights[0]), "{negative:?}");
    }
}
