//! Inspection outcomes from a file, for `replay` and `explain`: the
//! inspections CSV that `train` reads, or `inspection.outcomes` messages as
//! JSON lines (what a consumer of the topic writes).

use crate::core::outcome::{self, OutcomeBook};
use anyhow::{Context, Result, anyhow};
use std::io::BufRead;
use std::path::Path;

/// Read `path` into `book`: JSON lines when its first non-blank character
/// is `{`, else the inspections CSV. Returns how many outcomes were read.
/// A bad line or record is an error naming the file, line and field.
pub fn load(book: &OutcomeBook, path: &Path) -> Result<usize> {
    let text = std::fs::read(path)
        .with_context(|| format!("cannot read outcomes file {}", path.display()))?;
    let json = text
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if !json {
        let rows = crate::offline::train::read_inspections(path)?;
        for r in &rows {
            book.add(r.domain, &r.business_id, r.inspected_at, r.outcome);
        }
        return Ok(rows.len());
    }
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let line =
            line.with_context(|| format!("{}:{}: cannot read line", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let o = outcome::decode(line.as_bytes())
            .map_err(|e| anyhow!("{}:{}: {e}", path.display(), i + 1))?;
        book.add(o.domain, &o.business_id, o.inspected_at, o.violation);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Domain;

    #[test]
    fn reads_the_csv_and_json_lines_and_names_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("i.csv");
        std::fs::write(
            &csv,
            "business_id,domain,inspected_at,outcome\nshop-1,food,2026-03-01,0\n",
        )
        .unwrap();
        let book = OutcomeBook::default();
        assert_eq!(load(&book, &csv).unwrap(), 1);
        let jsonl = dir.path().join("o.jsonl");
        let line = serde_json::json!({"schema_version": 1, "outcome_id": "o1", "business_id": "hotel-1",
            "domain": "tourism", "inspected_at": "2026-03-01T10:00:00+08:00", "outcome": 1});
        std::fs::write(&jsonl, format!("{line}\n\n{{\"schema_version\": 1}}\n")).unwrap();
        let e = load(&book, &jsonl).unwrap_err().to_string();
        assert!(e.contains(":3:") && e.contains("outcome_id"), "{e}");
        std::fs::write(&jsonl, format!("{line}\n")).unwrap();
        assert_eq!(load(&book, &jsonl).unwrap(), 1);
        assert_eq!(book.len(), 2);
        let mut s = crate::core::features::BusinessState::new(Domain::Tourism, 0);
        book.apply_due(Domain::Tourism, "hotel-1", &mut s, i64::MAX);
        assert!(s.inspections()[0].violation);
    }
}
