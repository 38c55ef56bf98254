//! `extract`: review JSON lines in, their signals out, one line each.

use super::common::extractor_from;
use anyhow::Result;
use reviewguard::core::review::{self, DEFAULT_MAX_MESSAGE_BYTES};
use std::io::{BufRead, Write};
use std::path::Path;

pub(crate) fn run(lexicons: Option<&Path>) -> Result<()> {
    let ex = extractor_from(lexicons)?;
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (i, line) in stdin.split(b'\n').enumerate() {
        let line = line?;
        let n = i + 1;
        let v = match review::decode_signal_request(&line, DEFAULT_MAX_MESSAGE_BYTES) {
            Ok(r) => {
                let signals = ex.extract(r.domain, &r.text).categories.sorted_names();
                serde_json::json!({"review_id": r.review_id, "signals": signals})
            }
            Err(e) => serde_json::json!({"line": n, "error": e}),
        };
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
