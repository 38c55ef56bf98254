//! How good a model's scores are against inspection outcomes: ROC and PR
//! AUC, precision and lift at the top 10%, the Brier score, with bootstrap
//! intervals.

/// Metrics of scores against outcomes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Metrics {
    pub n: usize,
    pub positives: usize,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub precision_at_5pct: f64,
    pub precision_at_10pct: f64,
    pub precision_at_20pct: f64,
    pub lift_at_5pct: f64,
    pub lift_at_10pct: f64,
    pub lift_at_20pct: f64,
    pub base_rate: f64,
    pub brier: f64,
}

pub fn metrics(scores: &[f64], y: &[bool]) -> Metrics {
    let n = scores.len();
    let positives = y.iter().filter(|v| **v).count();
    let base_rate = if n == 0 {
        0.0
    } else {
        positives as f64 / n as f64
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let precision_at = |share: f64| {
        let k = ((n as f64 * share).ceil() as usize).clamp(1.min(n), n);
        if k == 0 {
            return 0.0;
        }
        order[..k].iter().filter(|&&i| y[i]).count() as f64 / k as f64
    };
    let lift = |p: f64| if base_rate > 0.0 { p / base_rate } else { 0.0 };
    let (p5, p10, p20) = (precision_at(0.05), precision_at(0.10), precision_at(0.20));
    Metrics {
        n,
        positives,
        roc_auc: roc_auc(scores, y),
        pr_auc: average_precision(&order, y, positives),
        precision_at_5pct: p5,
        precision_at_10pct: p10,
        precision_at_20pct: p20,
        lift_at_5pct: lift(p5),
        lift_at_10pct: lift(p10),
        lift_at_20pct: lift(p20),
        base_rate,
        brier: if n == 0 {
            0.0
        } else {
            scores
                .iter()
                .zip(y)
                .map(|(s, y)| (s - f64::from(u8::from(*y))).powi(2))
                .sum::<f64>()
                / n as f64
        },
    }
}

/// ROC-AUC by ranks (Mann-Whitney), ties counted half.
pub fn roc_auc(scores: &[f64], y: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    let pos = y.iter().filter(|v| **v).count() as f64;
    let neg = y.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    let sum: f64 = ranks
        .iter()
        .zip(y)
        .filter(|(_, y)| **y)
        .map(|(r, _)| r)
        .sum();
    (sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

pub(super) fn average_precision(order: &[usize], y: &[bool], positives: usize) -> f64 {
    if positives == 0 {
        return 0.0;
    }
    let mut hits = 0;
    let mut sum = 0.0;
    for (k, &i) in order.iter().enumerate() {
        if y[i] {
            hits += 1;
            sum += hits as f64 / (k + 1) as f64;
        }
    }
    sum / positives as f64
}

/// A 95% bootstrap percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{:.3}, {:.3}]", self.lo, self.hi)
    }
}

/// 95% intervals of the main figures (None without resamples).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Intervals {
    pub roc_auc: Option<Interval>,
    pub pr_auc: Option<Interval>,
    pub precision_at_10pct: Option<Interval>,
    pub lift_at_10pct: Option<Interval>,
    pub brier: Option<Interval>,
}

/// Percentile bootstrap over rows (`resamples` draws with replacement,
/// seeded): the 2.5% and 97.5% points of each figure.
pub fn bootstrap(scores: &[f64], y: &[bool], resamples: usize, seed: u64) -> Intervals {
    use rand::{Rng, SeedableRng};
    if resamples == 0 || scores.is_empty() {
        return Intervals::default();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x626f_6f74);
    let n = scores.len();
    let mut figures: [Vec<f64>; 5] = Default::default();
    let (mut s, mut o) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..resamples {
        s.clear();
        o.clear();
        for _ in 0..n {
            let i = rng.gen_range(0..n);
            s.push(scores[i]);
            o.push(y[i]);
        }
        let m = metrics(&s, &o);
        for (f, v) in figures.iter_mut().zip([
            m.roc_auc,
            m.pr_auc,
            m.precision_at_10pct,
            m.lift_at_10pct,
            m.brier,
        ]) {
            f.push(v);
        }
    }
    let interval = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(Interval {
            lo: at(0.025),
            hi: at(0.975),
        })
    };
    let [a, b, c, d, e] = &mut figures;
    Intervals {
        roc_auc: interval(a),
        pr_auc: interval(b),
        precision_at_10pct: interval(c),
        lift_at_10pct: interval(d),
        brier: interval(e),
    }
}

/// Markdown table of metrics, with their intervals where known.
pub fn metrics_markdown(m: &Metrics, ci: &Intervals) -> String {
    let show = |i: Option<Interval>| i.map_or(String::new(), |i| format!(" {i}"));
    format!(
        "| metric | value |\n|---|---|\n\
| inspections | {} ({} with violations, base rate {:.1}%) |\n\
| ROC-AUC | {:.3}{} |\n| PR-AUC | {:.3}{} |\n\
| precision@5% | {:.3} (lift {:.2}x) |\n| precision@10% | {:.3}{} (lift {:.2}x{}) |\n| precision@20% | {:.3} (lift {:.2}x) |\n\
| Brier score | {:.4}{} |\n\n",
        m.n,
        m.positives,
        m.base_rate * 100.0,
        m.roc_auc,
        show(ci.roc_auc),
        m.pr_auc,
        show(ci.pr_auc),
        m.precision_at_5pct,
        m.lift_at_5pct,
        m.precision_at_10pct,
        show(ci.precision_at_10pct),
        m.lift_at_10pct,
        show(ci.lift_at_10pct),
        m.precision_at_20pct,
        m.lift_at_20pct,
        m.brier,
        show(ci.brier),
    )
}
