//! `replay`: reviews JSONL through the same core as the stream, flags JSONL
//! out, no Kafka.

use crate::flag::Flag;
use crate::pipeline::{Scorer, States};
use crate::review::{self, DecodeOptions, RejectReason};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

#[derive(Debug, Default, Clone)]
pub struct ReplaySummary {
    pub reviews: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    pub flags: u64,
    pub bytes: u64,
    /// Shadow model vs live model, by [`crate::pipeline::Agreement`] name.
    pub shadow: BTreeMap<&'static str, u64>,
}

/// A line that could not be used, for the caller to report.
#[derive(Debug, Clone)]
pub struct BadLine {
    pub line: u64,
    pub reason: RejectReason,
    pub detail: String,
}

/// Run every line of `input` through `scorer`; write each flag as a JSON line.
/// `emitted_at` is stamped by `stamp` (the wall clock in the CLI).
pub fn replay(
    scorer: &Scorer,
    input: impl BufRead,
    mut out: impl Write,
    max_bytes: usize,
    stamp: impl Fn() -> String,
    mut on_bad: impl FnMut(BadLine),
) -> std::io::Result<(ReplaySummary, States)> {
    let opts = DecodeOptions {
        max_bytes,
        default_domain: None,
    };
    let mut states = States::default();
    let mut s = ReplaySummary::default();
    for (i, line) in input.split(b'\n').enumerate() {
        let mut line = line?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        s.bytes += line.len() as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        s.reviews += 1;
        match review::decode(&line, &opts) {
            Err(r) => {
                *s.rejected.entry(r.reason.as_str()).or_default() += 1;
                on_bad(BadLine {
                    line: i as u64 + 1,
                    reason: r.reason,
                    detail: r.detail,
                });
            }
            Ok(review) => {
                let outcome = scorer.process(&mut states, &review);
                if let Some(sh) = outcome.shadow {
                    *s.shadow.entry(sh.agreement.as_str()).or_default() += 1;
                }
                if let Some(mut flag) = outcome.flag {
                    flag.emitted_at = stamp();
                    write_flag(&mut out, &flag)?;
                    s.flags += 1;
                }
            }
        }
    }
    out.flush()?;
    Ok((s, states))
}

fn write_flag(out: &mut impl Write, flag: &Flag) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, flag)?;
    out.write_all(b"\n")
}
