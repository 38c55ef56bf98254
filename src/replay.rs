//! `replay`: reviews JSONL through the same core as the stream, flags JSONL
//! out, no Kafka.

use crate::category::CategorySet;
use crate::flag::Flag;
use crate::pipeline::{Scorer, States};
use crate::review::{self, DecodeOptions, RejectReason, Review};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

#[derive(Debug, Default, Clone)]
pub struct ReplaySummary {
    pub reviews: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    pub flags: u64,
    pub bytes: u64,
}

/// A line that could not be used, for the caller to report.
#[derive(Debug, Clone)]
pub struct BadLine {
    pub line: u64,
    pub reason: RejectReason,
    pub detail: String,
}

/// Lines decoded and extracted per block: the unit of work handed to a
/// decoding thread.
const BLOCK_LINES: usize = 8_192;

/// A line after the pure, parallel part of the work.
enum Decoded {
    Blank,
    Bad {
        reason: RejectReason,
        detail: String,
    },
    Review(Box<Review>, CategorySet),
}

/// Run every line of `input` through `scorer`; write each flag as a JSON line.
/// `emitted_at` is stamped by `stamp` (the wall clock in the CLI).
///
/// Decoding and extraction (pure, per review) run on other threads, a block
/// ahead, while this thread folds the previous block into state in input
/// order; the flags are those of a single-threaded pass, in the same order.
pub fn replay(
    scorer: &Scorer,
    mut input: impl BufRead,
    mut out: impl Write,
    max_bytes: usize,
    stamp: impl Fn() -> String,
    mut on_bad: impl FnMut(BadLine),
) -> std::io::Result<(ReplaySummary, States)> {
    let opts = DecodeOptions {
        max_bytes,
        default_domain: None,
    };
    let decoders = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .clamp(1, 8);
    let mut states = States::default();
    let mut s = ReplaySummary::default();
    let mut line_no = 0u64;
    std::thread::scope(|scope| -> std::io::Result<()> {
        let mut pending: Vec<std::thread::ScopedJoinHandle<'_, Vec<Decoded>>> = Vec::new();
        loop {
            let block = read_block(&mut input, &mut s.bytes)?;
            let done = block.is_empty();
            // Hand the new block to the decoders before folding the previous one.
            let mut next = Vec::new();
            if !done {
                let per = block.len().div_ceil(decoders);
                let mut rest = block;
                while !rest.is_empty() {
                    let tail = rest.split_off(per.min(rest.len()));
                    let chunk = std::mem::replace(&mut rest, tail);
                    next.push(scope.spawn(move || decode_chunk(scorer, &opts, chunk)));
                }
            }
            for handle in pending.drain(..) {
                let decoded = handle
                    .join()
                    .map_err(|_| std::io::Error::other("a replay decoding thread panicked"))?;
                for d in decoded {
                    line_no += 1;
                    match d {
                        Decoded::Blank => {}
                        Decoded::Bad { reason, detail } => {
                            s.reviews += 1;
                            *s.rejected.entry(reason.as_str()).or_default() += 1;
                            on_bad(BadLine {
                                line: line_no,
                                reason,
                                detail,
                            });
                        }
                        Decoded::Review(review, signals) => {
                            s.reviews += 1;
                            let outcome = scorer.process_extracted(&mut states, &review, signals);
                            if let Some(mut flag) = outcome.flag {
                                flag.emitted_at = stamp();
                                write_flag(&mut out, &flag)?;
                                s.flags += 1;
                            }
                        }
                    }
                }
            }
            pending = next;
            if done {
                return Ok(());
            }
        }
    })?;
    out.flush()?;
    Ok((s, states))
}

/// Up to [`BLOCK_LINES`] lines (without their line ends); empty at the end.
fn read_block(input: &mut impl BufRead, bytes: &mut u64) -> std::io::Result<Vec<Vec<u8>>> {
    let mut block = Vec::with_capacity(BLOCK_LINES);
    while block.len() < BLOCK_LINES {
        let mut line = Vec::new();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        *bytes += line.len() as u64 + 1;
        block.push(line);
    }
    Ok(block)
}

fn decode_chunk(scorer: &Scorer, opts: &DecodeOptions, lines: Vec<Vec<u8>>) -> Vec<Decoded> {
    lines
        .into_iter()
        .map(|line| {
            if line.iter().all(u8::is_ascii_whitespace) {
                return Decoded::Blank;
            }
            match review::decode(&line, opts) {
                Err(r) => Decoded::Bad {
                    reason: r.reason,
                    detail: r.detail,
                },
                Ok(review) => {
                    let signals = scorer
                        .extractor
                        .extract(review.domain, &review.text)
                        .categories;
                    Decoded::Review(Box::new(review), signals)
                }
            }
        })
        .collect()
}

fn write_flag(out: &mut impl Write, flag: &Flag) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, flag)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::DecideConfig;
    use crate::extract::Extractor;
    use crate::pipeline::Models;
    use crate::privacy::Pseudonymiser;
    use crate::simulate::{self, SimConfig};
    use std::sync::Arc;

    /// The parallel replay gives exactly the flags, rejects and states of a
    /// plain single-threaded loop over the same lines, across many blocks.
    #[test]
    fn parallel_replay_equals_a_sequential_pass() {
        let scorer = Scorer {
            extractor: Arc::new(Extractor::builtin().unwrap()),
            models: Models::builtin().unwrap(),
            pseudonyms: Pseudonymiser::new(b"replay-test-key-0123456789"),
            decide: DecideConfig::default(),
        };
        let world = simulate::generate(&SimConfig {
            seed: 17,
            businesses: 120,
            days: 60,
            ..SimConfig::default()
        });
        let mut input = Vec::new();
        for (i, r) in world.reviews.iter().enumerate() {
            serde_json::to_writer(&mut input, r).unwrap();
            input.push(b'\n');
            if i % 997 == 0 {
                input.extend_from_slice(b"{not json\n\n");
            }
        }
        let lines = input.iter().filter(|b| **b == b'\n').count();
        assert!(
            lines > 2 * BLOCK_LINES,
            "only {lines} lines: too few blocks"
        );

        let mut want_flags = Vec::new();
        let mut want_bad = Vec::new();
        let mut want_states = States::default();
        for (i, line) in input.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match review::decode(line, &DecodeOptions::default()) {
                Err(r) => want_bad.push((i as u64 + 1, r.reason)),
                Ok(review) => {
                    if let Some(mut f) = scorer.process(&mut want_states, &review).flag {
                        f.emitted_at = "t".into();
                        want_flags.push(serde_json::to_string(&f).unwrap());
                    }
                }
            }
        }
        assert!(!want_flags.is_empty());

        let mut out = Vec::new();
        let mut bad = Vec::new();
        let (summary, states) = replay(
            &scorer,
            &input[..],
            &mut out,
            review::DEFAULT_MAX_MESSAGE_BYTES,
            || "t".into(),
            |b| bad.push((b.line, b.reason)),
        )
        .unwrap();
        let got: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(got, want_flags);
        assert_eq!(bad, want_bad);
        assert_eq!(summary.flags as usize, want_flags.len());
        assert_eq!(states.len(), want_states.len());
        for (d, id, s) in want_states.iter() {
            assert_eq!(states.get(d, id), Some(s), "{id}");
        }
    }
}
