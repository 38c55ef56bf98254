//! Measuring the extractor on hand-labelled real reviews.
//!
//! Labels live in `dev/labels/<corpus>.csv` (`index,sha256,signals`): the
//! record index in the corpus file, the first 16 hex digits of the sha256 of
//! the review text (so a label can be checked against its text without the
//! text being in the repository) and the categories, `;`-separated. The
//! corpora themselves stay outside the repository (`../shared/data`).

use crate::core::extract::Extractor;
use crate::types::Domain;
use crate::types::category::{Category, CategorySet};
use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// One labelled review, with its text from the corpus.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub index: usize,
    pub text: String,
    pub labels: CategorySet,
    /// How the record was chosen, where the label file says (a fourth
    /// column, e.g. `random` or `prefiltered`); empty otherwise.
    pub part: String,
}

pub fn text_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// Read a corpus (`label,review` CSV) and the labels for it, checking hashes.
pub fn load(corpus: &Path, labels: &Path, domain: Domain) -> Result<Vec<Labelled>> {
    let mut texts = Vec::new();
    let mut rdr = csv::Reader::from_path(corpus)
        .with_context(|| format!("cannot open corpus {}", corpus.display()))?;
    let col = rdr
        .headers()?
        .iter()
        .position(|h| h == "review")
        .ok_or_else(|| anyhow!("{}: no column `review`", corpus.display()))?;
    for rec in rdr.records() {
        let rec = rec.with_context(|| format!("{}: malformed CSV", corpus.display()))?;
        texts.push(rec.get(col).unwrap_or_default().to_owned());
    }
    let mut out = Vec::new();
    let mut rdr = csv::Reader::from_path(labels)
        .with_context(|| format!("cannot open labels {}", labels.display()))?;
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{}:{line}: malformed CSV", labels.display()))?;
        let index: usize = rec
            .get(0)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("{}:{line}: index is not a number", labels.display()))?;
        let text = texts.get(index).ok_or_else(|| {
            anyhow!(
                "{}:{line}: index {index} is past the corpus's {} records",
                labels.display(),
                texts.len()
            )
        })?;
        let hash = rec.get(1).unwrap_or_default();
        if hash != text_hash(text) {
            bail!(
                "{}:{line}: the hash of record {index} does not match {}: labels and corpus are out of step",
                labels.display(),
                corpus.display()
            );
        }
        let mut set = CategorySet::default();
        for name in rec
            .get(2)
            .unwrap_or_default()
            .split(';')
            .filter(|s| !s.is_empty())
        {
            let c = Category::parse(name)
                .filter(|c| Category::of(domain).contains(c))
                .ok_or_else(|| {
                    anyhow!(
                        "{}:{line}: {name:?} is not a {domain} category",
                        labels.display()
                    )
                })?;
            set.insert(c);
        }
        out.push(Labelled {
            index,
            text: text.clone(),
            labels: set,
            part: rec.get(3).unwrap_or_default().to_owned(),
        });
    }
    Ok(out)
}

/// Counts for one category.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

impl Counts {
    /// Count one decision: whether the label says so, and the answer.
    pub fn add(&mut self, label: bool, answer: bool) {
        match (label, answer) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => {}
        }
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    pub fn support(&self) -> usize {
        self.tp + self.fn_
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Per-category and micro-averaged counts, and the records that were wrong.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub per_category: BTreeMap<&'static str, Counts>,
    pub micro: Counts,
    pub errors: Vec<(usize, CategorySet, CategorySet)>,
}

pub fn evaluate(ex: &Extractor, domain: Domain, set: &[Labelled]) -> Report {
    let got: Vec<CategorySet> = set
        .iter()
        .map(|l| ex.extract(domain, &l.text).categories)
        .collect();
    let labels: Vec<CategorySet> = set.iter().map(|l| l.labels).collect();
    let mut r = score(domain, &labels, &got);
    // Positions to record indices.
    for e in &mut r.errors {
        e.0 = set[e.0].index;
    }
    r
}

/// Score answers against labels, record by record; `errors` holds the
/// positions of the records that were wrong.
pub fn score(domain: Domain, labels: &[CategorySet], got: &[CategorySet]) -> Report {
    let mut r = Report::default();
    for c in Category::of(domain) {
        r.per_category.insert(c.as_str(), Counts::default());
    }
    for (i, (&want, &got)) in labels.iter().zip(got).enumerate() {
        for c in Category::of(domain) {
            let (w, h) = (want.contains(*c), got.contains(*c));
            r.per_category.entry(c.as_str()).or_default().add(w, h);
            r.micro.add(w, h);
        }
        if got != want {
            r.errors.push((i, want, got));
        }
    }
    r
}

impl Report {
    pub fn table(&self) -> String {
        let mut s = String::from(
            "| category | support | precision | recall | F1 |\n|---|---:|---:|---:|---:|\n",
        );
        for (name, c) in &self.per_category {
            s.push_str(&format!(
                "| {name} | {} | {:.3} | {:.3} | {:.3} |\n",
                c.support(),
                c.precision(),
                c.recall(),
                c.f1()
            ));
        }
        let m = &self.micro;
        s.push_str(&format!(
            "| **micro** | {} | {:.3} | {:.3} | {:.3} |\n",
            m.support(),
            m.precision(),
            m.recall(),
            m.f1()
        ));
        s
    }
}
