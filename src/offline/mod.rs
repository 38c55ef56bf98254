//! The file-based commands: `replay`, `explain`, `simulate`, `train` and
//! `evaluate` with their reports, the labelled development sets and the
//! fitting of the n-gram signal model. They drive the pure [`crate::core`];
//! they never import [`crate::service`].

pub mod devset;
pub mod explain;
pub mod fit_signals;
pub mod outcomes;
pub mod progress;
pub mod replay;
pub mod report;
pub mod signal_eval;
pub mod simulate;
pub mod train;
