//! The pure core, from decoded review to "flag or nothing". It knows nothing
//! of Kafka, files or the wall clock: every decision uses event time. The
//! stream, `replay` and the tests all drive this same code.
//!
//! [`review`] decodes and validates (with [`flatjson`] for the common message
//! shape), [`extract`] finds risk signals, [`features`] keeps per-business
//! state, [`model`] scores, [`decide`] applies rules, severity and cooldown,
//! [`flag`] builds the output; [`scorer`] ties them together and [`batch`]
//! folds a batch of messages on every core, for the stream and `replay` alike.

pub(crate) mod batch;
pub mod decide;
pub mod extract;
pub mod features;
pub mod flag;
pub(crate) mod flatjson;
pub mod model;
pub mod outcome;
pub mod privacy;
pub mod redact;
pub mod review;
pub mod scorer;
