//! `replay`: a reviews file through the core, flags out, no Kafka.

use super::common::*;
use anyhow::{Context, Result};
use reviewguard::offline::replay;
use std::path::Path;

pub(crate) fn run(
    input: &Path,
    out: &Path,
    config: Option<&Path>,
    outcomes: Option<&Path>,
) -> Result<()> {
    let (cfg, scorer) = offline_scorer(config)?;
    if let Some(p) = outcomes {
        let n = reviewguard::offline::outcomes::load(&scorer.outcomes, p)?;
        eprintln!("replay: {n} inspection outcomes from {}", p.display());
    }
    let f = std::fs::File::open(input)
        .with_context(|| format!("cannot open --input {}", input.display()))?;
    let o = std::fs::File::create(out)
        .with_context(|| format!("cannot create --out {}", out.display()))?;
    let started = std::time::Instant::now();
    let mut shown = 0;
    let (s, _) = replay::replay(
        &scorer,
        std::io::BufReader::with_capacity(1 << 20, f),
        std::io::BufWriter::new(o),
        cfg.limits.max_message_bytes,
        || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        |bad| {
            if shown < 10 {
                eprintln!(
                    "{}:{}: skipped: {}: {}",
                    input.display(),
                    bad.line,
                    bad.reason.as_str(),
                    bad.detail
                );
            }
            shown += 1;
        },
    )?;
    let secs = started.elapsed().as_secs_f64();
    let rejected: u64 = s.rejected.values().sum();
    if !s.shadow.is_empty() {
        eprintln!(
            "replay: shadow model vs live (scores at or above each model's low threshold): {:?}",
            s.shadow
        );
    }
    eprintln!(
        "replay: {} lines, {} rejected {:?}, {} flags in {:.2}s ({:.0} reviews/s, {:.1} MB/s)",
        s.reviews,
        rejected,
        s.rejected,
        s.flags,
        secs,
        s.reviews as f64 / secs.max(1e-9),
        s.bytes as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(())
}
