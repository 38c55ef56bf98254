//! Judging the risk signals on a held-out set, with 95% bootstrap
//! intervals: micro and per-category precision, recall and F1, precision on
//! the part drawn at natural prevalence, and, on written statements, the
//! recall of risk statements and the share of hard negatives flagged.
//!
//! Intervals are percentile bootstraps over records (statements): the
//! records are drawn again with replacement, `reps` times with a fixed
//! seed, and each figure's 2.5th and 97.5th percentiles are reported.

use crate::offline::devset::{Counts, Labelled};
use crate::types::Domain;
use crate::types::category::{Category, CategorySet};
use anyhow::{Context, Result, anyhow, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// A figure and its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} [{:.3}, {:.3}]", self.value, self.low, self.high)
    }
}

/// A figure computed on a resampled set of rows.
fn bootstrap<T>(
    rows: &[T],
    reps: usize,
    seed: u64,
    figure: impl Fn(&mut dyn Iterator<Item = &T>) -> f64,
) -> Interval {
    let value = figure(&mut rows.iter());
    if rows.is_empty() || reps == 0 {
        return Interval {
            value,
            low: value,
            high: value,
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draws: Vec<f64> = (0..reps)
        .map(|_| {
            let picks: Vec<usize> = (0..rows.len())
                .map(|_| rng.gen_range(0..rows.len()))
                .collect();
            figure(&mut picks.iter().map(|&i| &rows[i]))
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((q * (reps - 1) as f64).round() as usize).min(reps - 1)];
    Interval {
        value,
        low: at(0.025),
        high: at(0.975),
    }
}

/// Counts of one category (or all, with `None`) over (labels, answer) rows.
fn counts(
    rows: &mut dyn Iterator<Item = &(CategorySet, CategorySet)>,
    domain: Domain,
    only: Option<Category>,
) -> Counts {
    let mut c = Counts::default();
    for (want, got) in rows {
        for cat in Category::of(domain) {
            if only.is_some_and(|o| o != *cat) {
                continue;
            }
            c.add(want.contains(*cat), got.contains(*cat));
        }
    }
    c
}

/// Precision, recall and F1 with their intervals.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    pub support: usize,
    pub precision: Interval,
    pub recall: Interval,
    pub f1: Interval,
}

fn scores(
    rows: &[(CategorySet, CategorySet)],
    domain: Domain,
    only: Option<Category>,
    reps: usize,
    seed: u64,
) -> Scores {
    let of = |f: fn(&Counts) -> f64| {
        move |it: &mut dyn Iterator<Item = &(CategorySet, CategorySet)>| {
            f(&counts(it, domain, only))
        }
    };
    Scores {
        support: counts(&mut rows.iter(), domain, only).support(),
        precision: bootstrap(rows, reps, seed, of(Counts::precision)),
        recall: bootstrap(rows, reps, seed, of(Counts::recall)),
        f1: bootstrap(rows, reps, seed, of(Counts::f1)),
    }
}

/// What the signals score on a held-out set of labelled records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeldOut {
    pub records: usize,
    pub micro: Scores,
    pub per_category: Vec<(&'static str, Scores)>,
    /// Precision over the records drawn at random (`part` = `random`), when
    /// the set says which those are.
    pub random_part: Option<Scores>,
}

/// Score `got` (the extractor's answers, in the order of `set`).
pub fn held_out(
    domain: Domain,
    set: &[Labelled],
    got: &[CategorySet],
    reps: usize,
    seed: u64,
) -> HeldOut {
    let rows: Vec<(CategorySet, CategorySet)> = set
        .iter()
        .map(|l| l.labels)
        .zip(got.iter().copied())
        .collect();
    let random: Vec<(CategorySet, CategorySet)> = set
        .iter()
        .zip(&rows)
        .filter(|(l, _)| l.part == "random")
        .map(|(_, r)| *r)
        .collect();
    HeldOut {
        records: set.len(),
        micro: scores(&rows, domain, None, reps, seed),
        per_category: Category::of(domain)
            .iter()
            .map(|c| (c.as_str(), scores(&rows, domain, Some(*c), reps, seed)))
            .collect(),
        random_part: (!random.is_empty()).then(|| scores(&random, domain, None, reps, seed)),
    }
}

impl HeldOut {
    pub fn table(&self) -> String {
        let mut s = String::from(
            "| category | support | precision | recall | F1 |\n|---|---:|---:|---:|---:|\n",
        );
        let row = |name: &str, c: &Scores| {
            format!(
                "| {name} | {} | {} | {} | {} |\n",
                c.support, c.precision, c.recall, c.f1
            )
        };
        for (name, c) in &self.per_category {
            s.push_str(&row(name, c));
        }
        s.push_str(&row("**micro**", &self.micro));
        if let Some(r) = &self.random_part {
            s.push_str(&row("random part (natural prevalence)", r));
        }
        s
    }
}

/// A written statement: a short review with its labels, or a hard negative.
#[derive(Debug, Clone)]
pub struct Statement {
    pub id: String,
    pub domain: Domain,
    pub risk: bool,
    pub labels: CategorySet,
    pub text: String,
}

/// Read `id,domain,kind,signals,text` statements (kind `risk` or `hard_negative`).
pub fn load_statements(path: &Path) -> Result<Vec<Statement>> {
    let mut rdr = csv::Reader::from_path(path)
        .with_context(|| format!("cannot open statements {}", path.display()))?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| anyhow!("{}: no column `{name}`", path.display()))
    };
    let (id, dom, kind, sig, text) = (
        col("id")?,
        col("domain")?,
        col("kind")?,
        col("signals")?,
        col("text")?,
    );
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{}:{line}: malformed CSV", path.display()))?;
        let field = |c: usize| rec.get(c).unwrap_or_default();
        let domain = Domain::parse(field(dom))
            .ok_or_else(|| anyhow!("{}:{line}: domain must be food or tourism", path.display()))?;
        let risk = match field(kind) {
            "risk" => true,
            "hard_negative" => false,
            other => bail!(
                "{}:{line}: kind {other:?} is neither risk nor hard_negative",
                path.display()
            ),
        };
        let mut labels = CategorySet::default();
        for name in field(sig).split(';').filter(|s| !s.is_empty()) {
            let c = Category::parse(name)
                .filter(|c| Category::of(domain).contains(c))
                .ok_or_else(|| {
                    anyhow!(
                        "{}:{line}: {name:?} is not a {domain} category",
                        path.display()
                    )
                })?;
            labels.insert(c);
        }
        if risk == labels.is_empty() {
            bail!(
                "{}:{line}: a risk statement needs categories, a hard negative none",
                path.display()
            );
        }
        out.push(Statement {
            id: field(id).to_owned(),
            domain,
            risk,
            labels,
            text: field(text).to_owned(),
        });
    }
    Ok(out)
}

/// What the signals make of the written statements of one domain.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Probes {
    pub risk_statements: usize,
    /// Share of the risk statements' categories found (micro recall).
    pub recall: Interval,
    /// Per category: statements, recall.
    pub per_category: Vec<(&'static str, usize, Interval)>,
    pub hard_negatives: usize,
    /// Share of hard negatives given any category.
    pub hard_negatives_flagged: Interval,
}

/// Score `got` (answers in the order of `statements`, all of `domain`).
pub fn probes(
    domain: Domain,
    statements: &[Statement],
    got: &[CategorySet],
    reps: usize,
    seed: u64,
) -> Probes {
    let risk: Vec<(CategorySet, CategorySet)> = statements
        .iter()
        .zip(got)
        .filter(|(s, _)| s.risk)
        .map(|(s, g)| (s.labels, *g))
        .collect();
    let negatives: Vec<bool> = statements
        .iter()
        .zip(got)
        .filter(|(s, _)| !s.risk)
        .map(|(_, g)| !g.is_empty())
        .collect();
    let recall_of = |only: Option<Category>| {
        move |it: &mut dyn Iterator<Item = &(CategorySet, CategorySet)>| {
            counts(it, domain, only).recall()
        }
    };
    let per_category = Category::of(domain)
        .iter()
        .map(|c| {
            let n = risk.iter().filter(|(w, _)| w.contains(*c)).count();
            (
                c.as_str(),
                n,
                bootstrap(&risk, reps, seed, recall_of(Some(*c))),
            )
        })
        .collect();
    Probes {
        risk_statements: risk.len(),
        recall: bootstrap(&risk, reps, seed, recall_of(None)),
        per_category,
        hard_negatives: negatives.len(),
        hard_negatives_flagged: bootstrap(&negatives, reps, seed, |it| {
            let (mut n, mut flagged) = (0usize, 0usize);
            for f in it {
                n += 1;
                flagged += usize::from(*f);
            }
            if n == 0 {
                0.0
            } else {
                flagged as f64 / n as f64
            }
        }),
    }
}

impl Probes {
    pub fn table(&self) -> String {
        let mut s = format!(
            "| written statements | n | figure |\n|---|---:|---:|\n| risk statements: recall | {} | {} |\n",
            self.risk_statements, self.recall
        );
        for (name, n, r) in &self.per_category {
            s.push_str(&format!("| {name}: recall | {n} | {r} |\n"));
        }
        s.push_str(&format!(
            "| hard negatives flagged | {} | {} |\n",
            self.hard_negatives, self.hard_negatives_flagged
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(labels: &[&[Category]]) -> Vec<Labelled> {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| Labelled {
                index: i,
                text: String::new(),
                labels: l.iter().copied().collect(),
                part: if i % 2 == 0 { "random" } else { "prefiltered" }.to_owned(),
            })
            .collect()
    }

    #[test]
    fn intervals_hold_the_figure_and_narrow_with_more_records() {
        use Category::*;
        let small: Vec<&[Category]> = vec![&[Illness], &[], &[Spoilage], &[]];
        let labelled = set(&small);
        let got: Vec<CategorySet> = [&[Illness][..], &[Spoilage], &[], &[]]
            .iter()
            .map(|c| c.iter().copied().collect())
            .collect();
        let r = held_out(Domain::Food, &labelled, &got, 500, 1);
        // One of two found, one of two right: 0.5 each.
        assert_eq!(r.micro.precision.value, 0.5);
        assert_eq!(r.micro.recall.value, 0.5);
        assert!(r.micro.f1.low <= 0.5 && 0.5 <= r.micro.f1.high);
        // The random part (records 0 and 2): illness found, spoilage missed.
        let random = r.random_part.expect("the set has a random part");
        assert_eq!(random.recall.value, 0.5);
        assert_eq!(random.precision.value, 1.0);
        // The same proportions over 25 times the records: a narrower interval.
        let many: Vec<&[Category]> = small.iter().cycle().take(100).copied().collect();
        let got_many: Vec<CategorySet> = got.iter().cycle().take(100).copied().collect();
        let big = held_out(Domain::Food, &set(&many), &got_many, 500, 1);
        assert_eq!(big.micro.f1.value, 0.5);
        let width = |i: Interval| i.high - i.low;
        assert!(width(big.micro.f1) < width(r.micro.f1) / 2.0);
        // The same seed, the same interval.
        let again = held_out(Domain::Food, &labelled, &got, 500, 1);
        assert_eq!(again.micro.f1, r.micro.f1);
    }

    #[test]
    fn statements_count_recall_and_flagged_negatives() {
        let s = |risk: bool, labels: &[Category]| Statement {
            id: String::new(),
            domain: Domain::Food,
            risk,
            labels: labels.iter().copied().collect(),
            text: String::new(),
        };
        use Category::*;
        let statements = [
            s(true, &[Illness]),
            s(true, &[Illness, Hygiene]),
            s(false, &[]),
            s(false, &[]),
        ];
        let got: Vec<CategorySet> = [&[Illness][..], &[Illness], &[Spoilage], &[]]
            .iter()
            .map(|c| c.iter().copied().collect())
            .collect();
        let p = probes(Domain::Food, &statements, &got, 200, 3);
        assert_eq!(p.risk_statements, 2);
        assert!((p.recall.value - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(p.hard_negatives, 2);
        assert_eq!(p.hard_negatives_flagged.value, 0.5);
        let illness = p.per_category.iter().find(|c| c.0 == "illness").unwrap();
        assert_eq!((illness.1, illness.2.value), (2, 1.0));
    }

    #[test]
    fn a_statement_file_with_a_mistake_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        std::fs::write(
            &path,
            "id,domain,kind,signals,text\ns1,food,risk,illness,吃完吐了\ns2,food,hard_negative,illness,没事\n",
        )
        .unwrap();
        let e = load_statements(&path).unwrap_err().to_string();
        assert!(e.contains(":3:"), "{e}");
        std::fs::write(
            &path,
            "id,domain,kind,signals,text\ns1,food,risk,safety,吃完吐了\n",
        )
        .unwrap();
        let e = load_statements(&path).unwrap_err().to_string();
        assert!(e.contains("not a food category"), "{e}");
    }
}
