//! The inspections CSV from the desk's store: the header `train` and
//! `evaluate` read (`business_id,domain,inspected_at,outcome`), then the
//! outcome's other facts as extra columns.

use super::store::OutcomeRow;
use anyhow::{Context as _, Result};
use std::path::Path;

pub const HEADER: [&str; 10] = [
    "business_id",
    "domain",
    "inspected_at",
    "outcome",
    "region",
    "categories",
    "flag_id",
    "outcome_id",
    "inspector",
    "recorded_at",
];

pub fn write<W: std::io::Write>(out: W, outcomes: &[OutcomeRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(HEADER)?;
    for o in outcomes {
        w.write_record([
            o.business_id.as_str(),
            o.domain.as_str(),
            o.inspected_at.as_str(),
            if o.violation { "1" } else { "0" },
            o.region.as_str(),
            &o.categories.join(";"),
            o.flag_id.as_deref().unwrap_or(""),
            o.outcome_id.as_str(),
            o.inspector.as_str(),
            o.recorded_at.as_str(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Write `outcomes` to `path` (through a temporary file, renamed into
/// place, so a reader never sees half a file).
pub fn to_file(path: &Path, outcomes: &[OutcomeRow]) -> Result<()> {
    let tmp = path.with_extension("csv.tmp");
    let f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    write(std::io::BufWriter::new(f), outcomes)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
