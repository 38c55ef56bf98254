//! The long-running service (`run`): Kafka clients and the run loop, the
//! changelog, metrics and the HTTP endpoints, hot reload, configuration.
//! It drives the pure [`crate::core`]; it never imports [`crate::offline`].

pub mod changelog;
pub mod config;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod produce;
pub(crate) mod reload;
