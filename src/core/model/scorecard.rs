//! The monotone scorecard: what `train` fits, and the weekly exceedance
//! table that turns a region's inspection capacity into a threshold.

use crate::core::features;
use serde::{Deserialize, Serialize};

use super::Calibration;

/// A logistic model on transformed features: the log-odds of violations are
/// `intercept + Σ weight_j × (ln(1 + x_j) − mean_j) / std_j`, with the file's
/// `mean` and `std` (of the transformed values on the fitting rows).
///
/// Monotone where common sense demands it: every feature that a new risk
/// report can only raise (see [`features::rises_with_reports`]) has a weight
/// of at least 0, and `ln(1 + x)` rises with `x`, so more reports never lower
/// a score. A file that breaks this is refused. Features a report cannot
/// move (the inspection history) may weigh either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scorecard {
    pub intercept: f64,
    /// One per feature of the file, in its order.
    pub weights: Vec<f64>,
}

/// The transform every scorecard feature goes through (counts and shares
/// alike are at least 0).
#[inline]
pub fn transform(x: f64) -> f64 {
    x.max(0.0).ln_1p()
}

impl Scorecard {
    /// Check against the file's feature names and calibration.
    pub fn check(&self, names: &[String], calibration: Calibration) -> Result<(), String> {
        if self.weights.len() != names.len() {
            return Err(format!(
                "scorecard: {} weights for {} features",
                self.weights.len(),
                names.len()
            ));
        }
        if !(self.intercept.is_finite() && self.weights.iter().all(|w| w.is_finite())) {
            return Err("scorecard: it holds non-finite numbers".into());
        }
        for (w, name) in self.weights.iter().zip(names) {
            if *w < 0.0 && features::rises_with_reports(name) {
                return Err(format!(
                    "scorecard: feature {name} weighs {w}, but more risk reports may never lower a score (weights of risk features must be >= 0)"
                ));
            }
        }
        if calibration.slope <= 0.0 {
            return Err(format!(
                "scorecard: calibration slope {} would turn the score around (must be > 0)",
                calibration.slope
            ));
        }
        Ok(())
    }

    /// Uncalibrated log-odds of the model's features `x` (its order).
    pub fn log_odds(&self, x: &[f64], mean: &[f64], std: &[f64]) -> f64 {
        let mut z = self.intercept;
        for (((x, w), m), s) in x.iter().zip(&self.weights).zip(mean).zip(std) {
            z += w * (transform(*x) - m) / s;
        }
        z
    }

    /// [`Scorecard::log_odds`], with each feature's term written to
    /// `contributions` (they add up to the log-odds minus the intercept).
    pub fn attribute(
        &self,
        x: &[f64],
        mean: &[f64],
        std: &[f64],
        contributions: &mut [f64],
    ) -> f64 {
        let mut z = self.intercept;
        for (i, (((x, w), m), s)) in x.iter().zip(&self.weights).zip(mean).zip(std).enumerate() {
            let term = w * (transform(*x) - m) / s;
            contributions[i] = term;
            z += term;
        }
        z
    }
}

/// On the history a model was fitted on: for each probability level, the
/// share of business-weeks in which the model's probability for the
/// business reached it. A region of `n` businesses that can inspect `c` a
/// week flags from the lowest level whose share × `n` is at most `c`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exceedance {
    /// Increasing, within (0, 1).
    pub levels: Vec<f64>,
    /// Per level, non-increasing, within [0, 1].
    pub weekly_share: Vec<f64>,
}

impl Exceedance {
    pub fn check(&self) -> Result<(), String> {
        let n = self.levels.len();
        if n == 0 || self.weekly_share.len() != n {
            return Err(format!(
                "exceedance: {} levels and {} shares (need as many, at least one)",
                n,
                self.weekly_share.len()
            ));
        }
        let levels_ok = self
            .levels
            .iter()
            .all(|l| l.is_finite() && 0.0 < *l && *l < 1.0)
            && self.levels.windows(2).all(|w| w[0] < w[1]);
        let shares_ok = self
            .weekly_share
            .iter()
            .all(|s| s.is_finite() && (0.0..=1.0).contains(s))
            && self.weekly_share.windows(2).all(|w| w[0] >= w[1]);
        if !(levels_ok && shares_ok) {
            return Err(
                "exceedance: levels must increase within (0, 1) and shares must not increase, within [0, 1]"
                    .into(),
            );
        }
        Ok(())
    }

    /// The lowest level whose weekly share is at most `share`; the highest
    /// level when none is.
    pub fn level_for(&self, share: f64) -> f64 {
        self.levels
            .iter()
            .zip(&self.weekly_share)
            .find(|(_, s)| **s <= share)
            .map_or_else(|| self.levels.last().copied().unwrap_or(1.0), |(l, _)| *l)
    }
}
