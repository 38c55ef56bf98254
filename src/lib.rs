//! reviewguard: a streaming market-supervision risk scorer.
//!
//! Dependencies point one way: [`types`] (leaf types) ← [`core`] (pure: from
//! decoded review to "flag or nothing") ← [`service`] (the Kafka service) and
//! [`offline`] (file-based commands), which never import each other;
//! [`desk`] (the inspectors' web desk) uses `core`'s flag and `service`'s
//! configuration and Kafka clients. The binary's `cli` sits on top. See `docs/architecture.md`.

pub mod core;
pub mod desk;
pub mod offline;
pub mod service;
pub mod types;
