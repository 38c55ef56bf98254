//! `explain`: why a business was (or was not) flagged, from a reviews file.

use super::common::*;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::Path;

pub(crate) fn run(
    business: &str,
    input: &Path,
    domain: Option<&str>,
    flag: Option<&str>,
    config: Option<&Path>,
    outcomes: Option<&Path>,
) -> Result<()> {
    let domain = domain.map(parse_domain).transpose()?;
    let (cfg, scorer) = offline_scorer(config)?;
    if let Some(p) = outcomes {
        reviewguard::offline::outcomes::load(&scorer.outcomes, p)?;
    }
    let f = std::fs::File::open(input)
        .with_context(|| format!("cannot open --input {}", input.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let x = reviewguard::offline::explain::explain(
        &scorer,
        std::io::BufReader::with_capacity(1 << 20, f),
        business,
        domain,
        cfg.limits.max_message_bytes,
        &mut out,
    )?;
    writeln!(
        out,
        "business {business}: {} reviews, {} flags ({} input lines refused by the decoder)",
        x.reviews,
        x.flags.len(),
        x.rejected
    )?;
    out.flush()?;
    if x.reviews == 0 {
        bail!("no review of business {business:?} in {}", input.display());
    }
    if let Some(id) = flag {
        if x.flags.iter().any(|f| f.flag_id == id) {
            writeln!(out, "flag {id}: reproduced")?;
            out.flush()?;
        } else {
            bail!(
                "flag {id} is not reproduced from {}: the reviews, the models (sha256) or the decision settings differ",
                input.display()
            );
        }
    }
    Ok(())
}
