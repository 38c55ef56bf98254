//! What several subcommands share: scorers, extractors and domains from
//! their options.

use anyhow::{Context, Result, anyhow};
use reviewguard::core::extract::Extractor;
use reviewguard::core::model::Model;
use reviewguard::core::privacy::Pseudonymiser;
use reviewguard::core::scorer::{Models, Scorer};
use reviewguard::service::config::Config;
use reviewguard::types::Domain;
use std::path::Path;
use std::sync::Arc;

pub(crate) fn parse_domain(s: &str) -> Result<Domain> {
    Domain::parse(s).ok_or_else(|| anyhow!("--domain must be food or tourism, got {s:?}"))
}

/// Models, lexicons and decision settings named by a config.
pub(crate) fn scorer_from(cfg: &Config, pseudonyms: Pseudonymiser) -> Result<Scorer> {
    let load = |path: &str, d: Domain| -> Result<Arc<Model>> {
        Ok(Arc::new(if path.is_empty() {
            Model::builtin(d)?
        } else {
            Model::load(Path::new(path), d)?
        }))
    };
    let shadow = |path: &str, d: Domain| -> Result<Option<Arc<Model>>> {
        if path.is_empty() {
            return Ok(None);
        }
        let m = Model::load(Path::new(path), d)
            .with_context(|| format!("models.shadow_{d}: cannot use {path}"))?;
        tracing::info!(domain = %d, path, name = %m.file.name, version = %m.file.version, "shadow model loaded: scored beside the live model, never flags");
        Ok(Some(Arc::new(m)))
    };
    let extractor = extractor_from(cfg.lexicon_dir().as_deref())?;
    Ok(Scorer {
        extractor: Arc::new(extractor),
        models: Models {
            food: load(&cfg.models.food, Domain::Food)?,
            tourism: load(&cfg.models.tourism, Domain::Tourism)?,
            shadow_food: shadow(&cfg.models.shadow_food, Domain::Food)?,
            shadow_tourism: shadow(&cfg.models.shadow_tourism, Domain::Tourism)?,
        },
        pseudonyms,
        decide: cfg.decide.clone(),
        outcomes: Default::default(),
    })
}

/// Config, and a scorer from it, for the commands that read files (replay, explain).
pub(crate) fn offline_scorer(config: Option<&Path>) -> Result<(Config, Scorer)> {
    let cfg = match config {
        Some(p) => Config::load(Some(p), std::env::vars())?,
        None => Config::default(),
    };
    let key = cfg.pseudonym_key()?;
    let scorer = scorer_from(
        &cfg,
        key.map_or_else(Pseudonymiser::ephemeral, |k| Pseudonymiser::new(&k)),
    )?;
    Ok((cfg, scorer))
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The lexicons in `dir`, or the ones compiled in.
pub(crate) fn extractor_from(dir: Option<&Path>) -> Result<Extractor> {
    Ok(match dir {
        Some(d) => Extractor::from_dir(d)?,
        None => Extractor::builtin()?,
    })
}
