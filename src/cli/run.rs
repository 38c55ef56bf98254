//! `run`: the service against real brokers, until SIGTERM or SIGINT.

use super::common::*;
use anyhow::{Context, Result, anyhow, bail};
use reviewguard::core::privacy::Pseudonymiser;
use reviewguard::service::config::Config;
use reviewguard::service::http::Health;
use reviewguard::service::kafka;
use reviewguard::service::metrics::Metrics;
use std::path::Path;
use std::sync::Arc;

pub(crate) fn run(config: &Path, create_topics: Option<i32>) -> Result<()> {
    let cfg = Config::load(Some(config), std::env::vars())?;
    let key = cfg.pseudonym_key()?.ok_or_else(|| {
        anyhow!("no pseudonym key: set REVIEWGUARD_PRIVACY_PSEUDONYM_KEY (or privacy.pseudonym_key_file) to a secret of at least 16 bytes; reviewer ids are never kept in clear")
    })?;
    if key.len() < 16 {
        bail!("privacy.pseudonym_key must be at least 16 bytes");
    }
    let scorer = scorer_from(&cfg, Pseudonymiser::new(&key))?;
    // The loop below runs on this thread and hands each batch to rayon: as one
    // of rayon's workers it works on the batch too, instead of waiting idle.
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .context("cannot start the worker threads")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        let metrics = Metrics::new();
        let health = Arc::new(Health::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let addr = reviewguard::service::http::serve_with_admin(
            cfg.metrics.addr.parse()?,
            metrics.clone(),
            health.clone(),
            cfg.admin_token().cloned(),
            stop_rx.clone(),
        )
        .await
        .with_context(|| format!("cannot listen on metrics.addr {}", cfg.metrics.addr))?;
        tracing::info!(%addr, reload_endpoint = cfg.admin_token().is_some(), "serving /metrics, /healthz, /readyz");
        if let Some(p) = create_topics {
            kafka::ensure_topics(&cfg, p).await?;
        }
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received");
            let _ = stop_tx.send(true);
        });
        kafka::run(&cfg, scorer, metrics, health, stop_rx).await?;
        Ok(())
    });
    // A changelog writer still enqueuing (the broker gone) must not keep a
    // stopping process alive.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
