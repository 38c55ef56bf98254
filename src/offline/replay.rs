//! `replay`: reviews JSONL through the same core as the stream, flags JSONL
//! out, no Kafka.
//!
//! The file is read a block at a time into one buffer. A block is decoded and
//! extracted on a pool of threads (pure, per line; the reviews borrow from the
//! buffer), then folded into state on the same pool, sharded by business (two
//! businesses never interact), each shard in input order. The calling thread
//! writes out the previous block and reads the next while a block is decoded.
//! The flags are put back in input order, so the output, the rejects and the
//! summary are those of a single-threaded pass.

use crate::core::batch::{self, BatchOptions, Decoded, Input, Prepared};
use crate::core::flag::Flag;
use crate::core::review::{DecodeOptions, RejectReason};
use crate::core::scorer::{Agreement, Scorer, States};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::ops::Range;

#[derive(Debug, Default, Clone)]
pub struct ReplaySummary {
    pub reviews: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    pub flags: u64,
    pub bytes: u64,
    /// Shadow model vs live model, by [`crate::core::scorer::Agreement`] name.
    pub shadow: BTreeMap<&'static str, u64>,
}

/// A line that could not be used, for the caller to report.
#[derive(Debug, Clone)]
pub struct BadLine {
    pub line: u64,
    pub reason: RejectReason,
    pub detail: String,
}

/// Most lines in a block: the unit read, decoded and folded at a time.
const BLOCK_LINES: usize = 8_192;
/// A block also ends once it holds this many bytes (long lines).
const BLOCK_BYTES: usize = 8 << 20;
/// Fold shards per thread (with more than one thread).
const SHARDS_PER_THREAD: usize = 4;
/// Lines per decoding task.
const CHUNK_LINES: usize = 256;

/// What folding one review led to, when it is more than a state update.
struct Folded {
    /// Position of the line in its block.
    at: usize,
    flag: Option<Box<Flag>>,
    shadow: Option<Agreement>,
}

/// A block once folded: what is left to write out and count.
#[derive(Default)]
struct Done {
    lines: usize,
    reviews: u64,
    /// Position in the block, reason, detail; in input order.
    bad: Vec<(usize, RejectReason, String)>,
    /// In input order.
    folded: Vec<Folded>,
}

/// Lines of the input, without their line ends, in one buffer.
#[derive(Default)]
struct Block {
    buf: Vec<u8>,
    lines: Vec<Range<usize>>,
}

/// Run every line of `input` through `scorer`; write each flag as a JSON line.
/// `emitted_at` is stamped by `stamp` (the wall clock in the CLI). Uses one
/// thread per core; see [`replay_with_threads`].
pub fn replay(
    scorer: &Scorer,
    input: impl BufRead,
    out: impl Write,
    max_bytes: usize,
    stamp: impl Fn() -> String,
    on_bad: impl FnMut(BadLine),
) -> std::io::Result<(ReplaySummary, States)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    replay_with_threads(scorer, threads, input, out, max_bytes, stamp, on_bad)
}

/// [`replay`] on `threads` worker threads (at least 1). The output does not
/// depend on `threads`: the flags (in input order), the `on_bad` calls (in
/// line order), the summary and the states are those of a single-threaded
/// pass.
pub fn replay_with_threads(
    scorer: &Scorer,
    threads: usize,
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
    let threads = threads.max(1);
    // A few shards per thread, so that a shard with busier businesses than
    // the others does not leave a thread idle at the end of a block.
    let shards = if threads == 1 {
        1
    } else {
        threads * SHARDS_PER_THREAD
    };
    // The stream's fold, untimed; positions are lines, not offsets.
    let batch_opts = BatchOptions {
        shards,
        timed: false,
        offsets: false,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("replay-{i}"))
        .build()
        .map_err(std::io::Error::other)?;
    let mut states: Vec<States> = (0..shards).map(|_| States::default()).collect();
    let mut s = ReplaySummary::default();
    let mut line_no = 0u64;
    let (mut cur, mut next) = (Block::default(), Block::default());
    let mut eof = read_block(&mut input, &mut next, &mut s.bytes)?;
    let mut folded: Vec<Vec<Folded>> = (0..shards).map(|_| Vec::new()).collect();
    // The previous block, to be written out while this one is decoded.
    let mut done = Done::default();
    loop {
        std::mem::swap(&mut cur, &mut next);
        let lines = Lines {
            buf: &cur.buf,
            lines: &cur.lines,
        };
        let mut decoded: Vec<Vec<Decoded<'_>>> = Vec::new();
        decoded.resize_with(cur.lines.len().div_ceil(CHUNK_LINES), Vec::new);
        // Decode and extract this block on the pool, while this thread
        // writes out the previous one and reads the next.
        eof = pool.in_place_scope(|scope| -> std::io::Result<bool> {
            for (k, dst) in decoded.iter_mut().enumerate() {
                let (lines, opts) = (&lines, &opts);
                scope.spawn(move |_| {
                    let chunk = k * CHUNK_LINES..((k + 1) * CHUNK_LINES).min(lines.lines.len());
                    let todo: Vec<(usize, DecodeOptions)> = chunk
                        .filter(|&i| !lines.bytes(i).iter().all(u8::is_ascii_whitespace))
                        .map(|i| (i, *opts))
                        .collect();
                    *dst = batch::prepare_run(scorer, lines, &todo, batch_opts);
                });
            }
            emit(
                std::mem::take(&mut done),
                &mut line_no,
                &mut s,
                &mut out,
                &stamp,
                &mut on_bad,
            )?;
            if eof {
                next.buf.clear();
                next.lines.clear();
                Ok(true)
            } else {
                read_block(&mut input, &mut next, &mut s.bytes)
            }
        })?;
        if cur.lines.is_empty() {
            break;
        }
        // Fold it, one task per shard, each in input order; meanwhile this
        // thread collects the bad lines.
        done = pool.in_place_scope(|scope| {
            for (shard, (st, f)) in states.iter_mut().zip(&mut folded).enumerate() {
                let block = &decoded;
                scope.spawn(move |_| fold_shard(scorer, st, block, shard, batch_opts, f));
            }
            let mut done = Done {
                lines: cur.lines.len(),
                ..Done::default()
            };
            for d in decoded.iter().flatten() {
                done.reviews += 1;
                if let Err((at, r)) = d {
                    done.bad.push((*at, r.reason, r.detail.clone()));
                }
            }
            done
        });
        for f in &mut folded {
            done.folded.append(f);
        }
        done.folded.sort_unstable_by_key(|f| f.at);
    }
    out.flush()?;
    // Every business is in exactly one shard.
    let mut all = states.pop().unwrap_or_default();
    for st in states {
        all.absorb(st);
    }
    Ok((s, all))
}

/// Write out a folded block: its bad lines and flags, in input order.
fn emit(
    done: Done,
    line_no: &mut u64,
    s: &mut ReplaySummary,
    out: &mut impl Write,
    stamp: &impl Fn() -> String,
    on_bad: &mut impl FnMut(BadLine),
) -> std::io::Result<()> {
    let first = *line_no + 1;
    *line_no += done.lines as u64;
    s.reviews += done.reviews;
    let mut bad = done.bad.into_iter().peekable();
    for f in done.folded {
        while let Some((at, reason, detail)) = bad.next_if(|b| b.0 < f.at) {
            report(s, on_bad, first + at as u64, reason, detail);
        }
        if let Some(sh) = f.shadow {
            *s.shadow.entry(sh.as_str()).or_default() += 1;
        }
        if let Some(mut flag) = f.flag {
            flag.emitted_at = stamp();
            write_flag(out, &flag)?;
            s.flags += 1;
        }
    }
    for (at, reason, detail) in bad {
        report(s, on_bad, first + at as u64, reason, detail);
    }
    Ok(())
}

fn report(
    s: &mut ReplaySummary,
    on_bad: &mut impl FnMut(BadLine),
    line: u64,
    reason: RejectReason,
    detail: String,
) {
    *s.rejected.entry(reason.as_str()).or_default() += 1;
    on_bad(BadLine {
        line,
        reason,
        detail,
    });
}

/// Refill `block` with up to [`BLOCK_LINES`] lines (or about [`BLOCK_BYTES`]);
/// true once the input is at its end.
fn read_block(
    input: &mut impl BufRead,
    block: &mut Block,
    bytes: &mut u64,
) -> std::io::Result<bool> {
    block.buf.clear();
    block.lines.clear();
    while block.lines.len() < BLOCK_LINES && block.buf.len() < BLOCK_BYTES {
        let start = block.buf.len();
        if input.read_until(b'\n', &mut block.buf)? == 0 {
            return Ok(true);
        }
        let mut end = block.buf.len();
        if block.buf[..end].last() == Some(&b'\n') {
            end -= 1;
        }
        if block.buf[start..end].last() == Some(&b'\r') {
            end -= 1;
        }
        *bytes += (end - start) as u64 + 1;
        block.lines.push(start..end);
    }
    Ok(false)
}

/// A block's lines, as the batch fold reads them.
struct Lines<'a> {
    buf: &'a [u8],
    lines: &'a [Range<usize>],
}

impl Input for Lines<'_> {
    fn bytes(&self, i: usize) -> &[u8] {
        &self.buf[self.lines[i].clone()]
    }

    fn position(&self, i: usize) -> i64 {
        i as i64
    }
}

/// Fold the reviews of `block` that belong to `shard` into `states`, in input
/// order; keep what is more than a state update.
fn fold_shard(
    scorer: &Scorer,
    states: &mut States,
    block: &[Vec<Decoded<'_>>],
    shard: usize,
    opts: BatchOptions,
    out: &mut Vec<Folded>,
) {
    let mine: Vec<&Prepared<'_>> = block
        .iter()
        .flatten()
        .filter_map(|d| d.as_ref().ok())
        .filter(|p| p.shard == shard)
        .collect();
    for (at, folded) in batch::fold_shard(scorer, states, &mine, opts).results {
        let batch::Folded::Scored(outcome) = folded else {
            continue;
        };
        if outcome.flag.is_some() || outcome.shadow.is_some() {
            out.push(Folded {
                at,
                flag: outcome.flag,
                shadow: outcome.shadow.map(|sh| sh.agreement),
            });
        }
    }
}

fn write_flag(out: &mut impl Write, flag: &Flag) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, flag)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::decide::DecideConfig;
    use crate::core::extract::Extractor;
    use crate::core::model::Model;
    use crate::core::privacy::Pseudonymiser;
    use crate::core::review;
    use crate::core::scorer::Models;
    use crate::offline::simulate::{self, SimConfig};
    use crate::types::Domain;
    use std::sync::Arc;

    /// A scorer with a shadow food model whose lower threshold disagrees
    /// with the live one, so that shadow counts move too.
    fn scorer() -> Scorer {
        let mut models = Models::builtin().unwrap();
        let mut v: serde_json::Value =
            serde_json::from_str(crate::core::model::BUILTIN_FOOD).unwrap();
        v["thresholds"]["low"] = 0.2.into();
        crate::core::model::seal(&mut v);
        let shadow =
            Model::from_bytes(v.to_string().as_bytes(), "shadow.json", Domain::Food).unwrap();
        models.shadow_food = Some(Arc::new(shadow));
        Scorer {
            extractor: Arc::new(Extractor::builtin().unwrap()),
            models,
            pseudonyms: Pseudonymiser::new(b"replay-test-key-0123456789"),
            decide: DecideConfig::default(),
            outcomes: Default::default(),
        }
    }

    /// Many businesses over several blocks, with bad, blank and CRLF lines
    /// among the good ones.
    fn input() -> Vec<u8> {
        let world = simulate::generate(&SimConfig {
            seed: 17,
            businesses: 400,
            days: 20,
            ..SimConfig::default()
        });
        let bad: [&[u8]; 6] = [
            b"{not json",
            b"[1, 2]",
            b"\xff\xfe{}",
            b"{\"review_id\": \"r\", \"business_id\": \"b\", \"text\": \"x\", \"created_at\": \"2026-01-01T00:00:00Z\"}",
            b"",
            b"   \t",
        ];
        let mut input = Vec::new();
        for (i, r) in world.reviews.iter().enumerate() {
            serde_json::to_writer(&mut input, r).unwrap();
            input.extend_from_slice(if i % 13 == 0 { b"\r\n" } else { b"\n" });
            if i % 389 == 0 {
                input.extend_from_slice(bad[i / 389 % bad.len()]);
                input.push(b'\n');
            }
        }
        // The last line without a line end.
        serde_json::to_writer(&mut input, &world.reviews[0]).unwrap();
        input
    }

    struct Run {
        flags: Vec<String>,
        bad: Vec<(u64, RejectReason, String)>,
        summary: ReplaySummary,
        states: States,
    }

    /// A plain single-threaded loop, the reference.
    fn sequential(scorer: &Scorer, input: &[u8]) -> Run {
        let mut run = Run {
            flags: Vec::new(),
            bad: Vec::new(),
            summary: ReplaySummary::default(),
            states: States::default(),
        };
        for (i, line) in input.split(|b| *b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            run.summary.bytes += line.len() as u64 + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            run.summary.reviews += 1;
            match review::decode(line, &DecodeOptions::default()) {
                Err(r) => {
                    *run.summary.rejected.entry(r.reason.as_str()).or_default() += 1;
                    run.bad.push((i as u64 + 1, r.reason, r.detail));
                }
                Ok(review) => {
                    let o = scorer.process(&mut run.states, &review);
                    if let Some(sh) = o.shadow {
                        *run.summary.shadow.entry(sh.agreement.as_str()).or_default() += 1;
                    }
                    if let Some(mut f) = o.flag {
                        f.emitted_at = "t".into();
                        run.flags.push(serde_json::to_string(&f).unwrap());
                        run.summary.flags += 1;
                    }
                }
            }
        }
        run
    }

    fn parallel(scorer: &Scorer, input: &[u8], threads: usize) -> Run {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        let (summary, states) = replay_with_threads(
            scorer,
            threads,
            input,
            &mut out,
            review::DEFAULT_MAX_MESSAGE_BYTES,
            || "t".into(),
            |b| bad.push((b.line, b.reason, b.detail)),
        )
        .unwrap();
        let flags = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        Run {
            flags,
            bad,
            summary,
            states,
        }
    }

    /// The parallel, sharded replay gives exactly the flags, rejects, summary
    /// and states of a plain single-threaded loop over the same lines, across
    /// many blocks, whatever the number of threads.
    #[test]
    fn parallel_replay_equals_a_sequential_pass() {
        let scorer = scorer();
        let input = input();
        let lines = input.iter().filter(|b| **b == b'\n').count();
        assert!(
            lines > 2 * BLOCK_LINES,
            "only {lines} lines: too few blocks"
        );
        let want = sequential(&scorer, &input);
        assert!(want.flags.len() > 10, "too few flags to compare");
        assert!(want.bad.len() > 20, "too few bad lines to compare");
        assert!(
            want.summary.shadow.len() > 1,
            "the shadow model never disagreed"
        );
        assert!(want.states.len() > 300);
        for threads in [1, 2, 3, 8] {
            let got = parallel(&scorer, &input, threads);
            assert_eq!(got.flags, want.flags, "{threads} threads");
            assert_eq!(got.bad, want.bad, "{threads} threads");
            let (g, w) = (&got.summary, &want.summary);
            assert_eq!(
                (g.reviews, &g.rejected, g.flags, g.bytes, &g.shadow),
                (w.reviews, &w.rejected, w.flags, w.bytes, &w.shadow),
                "{threads} threads"
            );
            assert_eq!(got.states.len(), want.states.len(), "{threads} threads");
            for (d, id, s) in want.states.iter() {
                assert_eq!(got.states.get(d, id), Some(s), "{threads} threads: {id}");
            }
        }
    }

    /// Blocks end at a byte budget too, and a line longer than a block still
    /// gets through whole.
    #[test]
    fn blocks_end_at_their_line_or_byte_budget() {
        let mut input = Vec::new();
        input.extend_from_slice(b"a\r\n\n");
        input.extend(std::iter::repeat_n(b'x', BLOCK_BYTES + 5));
        input.extend_from_slice(b"\nlast");
        let mut r = &input[..];
        let mut block = Block::default();
        let mut bytes = 0;
        assert!(!read_block(&mut r, &mut block, &mut bytes).unwrap());
        assert_eq!(block.lines.len(), 3);
        assert_eq!(&block.buf[block.lines[0].clone()], b"a");
        assert!(block.lines[1].is_empty());
        assert_eq!(block.lines[2].len(), BLOCK_BYTES + 5);
        assert!(read_block(&mut r, &mut block, &mut bytes).unwrap());
        assert_eq!(block.lines.len(), 1);
        assert_eq!(block.lines[0], 0..4);
        assert_eq!(bytes, input.len() as u64);
    }
}
