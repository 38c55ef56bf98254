//! The two supervised domains: restaurants and food delivery, and tourism
//! (hotels, tour operators).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The two supervised domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    Food,
    Tourism,
}

impl Domain {
    pub const ALL: [Domain; 2] = [Domain::Food, Domain::Tourism];

    /// Position in [`Domain::ALL`], for per-domain arrays.
    pub fn index(self) -> usize {
        match self {
            Domain::Food => 0,
            Domain::Tourism => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Food => "food",
            Domain::Tourism => "tourism",
        }
    }

    pub fn parse(s: &str) -> Option<Domain> {
        match s {
            "food" => Some(Domain::Food),
            "tourism" => Some(Domain::Tourism),
            _ => None,
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
