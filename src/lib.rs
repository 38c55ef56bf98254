//! reviewguard: a streaming market-supervision risk scorer.
//!
//! The pure core, from decoded review to "flag or nothing": [`review`] (decode
//! and validate, with [`flatjson`] for the common message shape), [`extract`]
//! (risk signals), [`features`] (per-business state), [`model`] (scoring),
//! [`decide`] (rules, severity, cooldown), [`flag`] (the output), tied
//! together in [`pipeline`]. Around it, the shell: [`kafka`]
//! (the service), [`metrics`], [`config`], and the offline commands
//! [`replay`], [`simulate`], [`train`] and its [`report`].

pub mod category;
pub mod changelog;
pub mod config;
pub mod decide;
pub mod demo;
pub mod devset;
pub mod explain;
pub mod extract;
pub mod features;
pub(crate) mod fetch_queue;
pub mod flag;
pub mod flatjson;
pub mod kafka;
pub mod metrics;
pub mod model;
pub mod ngram;
pub mod pipeline;
pub mod privacy;
pub mod progress;
pub mod redact;
pub mod reload;
pub mod replay;
pub mod report;
pub mod review;
pub mod simulate;
pub mod train;
