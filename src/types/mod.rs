//! Leaf types every layer shares. This module imports nothing of the crate.

pub mod category;
mod domain;
mod labels_key;
mod severity;
pub mod time;

pub use category::{Category, CategorySet};
pub use domain::Domain;
pub use labels_key::LabelsKey;
pub use severity::Severity;
