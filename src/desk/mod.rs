//! `reviewguard desk`: the inspectors' side. Flags from the inspection
//! topics are kept in a [`store`] ([`ingest`]); inspectors see their
//! regions' open flags in the [`web`] desk, record what they found or
//! dismiss a flag; outcomes go back to `inspection.outcomes` ([`outbox`]);
//! [`notify`] tells people of new flags through webhooks. [`export`] writes
//! the inspections CSV that `train` reads.

pub mod auth;
pub mod config;
pub mod export;
pub mod i18n;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod outcome;
pub mod serve;
pub mod store;
pub mod web;

use std::sync::Arc;

/// What every part of a running desk shares.
pub struct Desk {
    pub store: store::Store,
    pub cfg: config::DeskConfig,
    pub throttle: auth::Throttle,
    pub metrics: metrics::DeskMetrics,
    /// Woken when an outcome is recorded, so it is sent at once.
    pub outbox: tokio::sync::Notify,
    pub notifier: Arc<notify::Notifier>,
    /// The regions' weekly inspection capacity (`decide.capacity`), for
    /// the supervisors' overview.
    pub capacity: Vec<crate::core::decide::Capacity>,
}

impl Desk {
    pub fn new(
        store: store::Store,
        cfg: config::DeskConfig,
        capacity: Vec<crate::core::decide::Capacity>,
    ) -> Arc<Desk> {
        let metrics = metrics::DeskMetrics::new();
        let notifier = Arc::new(notify::Notifier::new(
            &cfg,
            store.clone(),
            metrics.clone(),
            notify::Backoff::default(),
        ));
        Arc::new(Desk {
            store,
            cfg,
            throttle: auth::Throttle::default(),
            metrics,
            outbox: tokio::sync::Notify::new(),
            notifier,
            capacity,
        })
    }
}
