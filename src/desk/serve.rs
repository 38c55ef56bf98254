//! A running desk: the store opened and migrated, the web server, the
//! flag consumer, the outcome publisher and the daily digest, until `stop`.

use super::Desk;
use super::store::Store;
use crate::service::config::Config;
use anyhow::{Context as _, Result};
use std::sync::Arc;

/// A started desk: its address and its shared state.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub desk: Arc<Desk>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Wait for every part to finish (after `stop`).
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        self.desk.store.close().await;
    }
}

/// Start the desk's parts; they run until `stop` turns true.
pub async fn start(cfg: &Config, stop: tokio::sync::watch::Receiver<bool>) -> Result<Running> {
    let store = Store::open(&cfg.desk.store).await?;
    let desk = Desk::new(store, cfg.desk.clone(), cfg.decide.capacity.clone());
    let listener = tokio::net::TcpListener::bind(&cfg.desk.addr)
        .await
        .with_context(|| format!("cannot listen on desk.addr {}", cfg.desk.addr))?;
    let addr = listener.local_addr()?;
    let mut tasks = Vec::new();
    {
        let (desk, stop) = (desk.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = super::web::serve(desk, listener, stop).await {
                tracing::error!(error = %e, "the desk's web server stopped");
            }
        }));
    }
    let consumer = super::ingest::consumer(cfg)?;
    tasks.push(tokio::spawn(super::ingest::run(
        desk.clone(),
        consumer,
        stop.clone(),
    )));
    let producer = super::outbox::producer(cfg)?;
    tasks.push(tokio::spawn(super::outbox::run(
        desk.clone(),
        producer,
        cfg.topics.outcomes.clone(),
        stop.clone(),
    )));
    tasks.push(tokio::spawn(desk.notifier.clone().run_digest(
        cfg.desk.digest_hour,
        cfg.desk.utc_offset_hours,
        stop.clone(),
    )));
    {
        // Expired sessions go, hourly.
        let (desk, mut stop) = (desk.clone(), stop);
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(e) = desk.store.purge_sessions(super::store::now_ms()).await {
                    tracing::warn!(error = %e, "cannot purge expired sessions");
                }
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }));
    }
    tracing::info!(%addr, store = store_kind(&cfg.desk.store), "desk serving");
    Ok(Running { addr, desk, tasks })
}

/// The store named without its password.
fn store_kind(s: &str) -> &'static str {
    if s.starts_with("postgres") {
        "postgresql"
    } else {
        "sqlite"
    }
}
