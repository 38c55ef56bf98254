//! An assigned partition's state: its businesses, spread over fold shards,
//! and the next offset it has applied.

use crate::core::scorer::{States, shard_of};
use crate::types::Domain;

/// A partition's businesses are spread over this many shards by
/// [`shard_of`], and the shards of a partition fold in parallel: a batch
/// often holds one partition's messages only. A business's reviews stay in offset
/// order in its shard, so the results are those of a single thread.
pub(crate) const SHARDS: usize = 8;

/// A shard's businesses; those changed since the last commit are marked
/// (for the changelog: [`States::take_changed`]).
#[derive(Default)]
pub(crate) struct Shard {
    pub(crate) states: States,
}

pub(crate) struct PartitionState {
    pub(crate) shards: Vec<Shard>,
    /// One past the last offset handled here (0 after a restore: the
    /// per-business `source_offset` then tells what was already applied).
    pub(crate) next_offset: i64,
}

impl PartitionState {
    pub(crate) fn new(states: States) -> PartitionState {
        let mut shards: Vec<Shard> = (0..SHARDS).map(|_| Shard::default()).collect();
        for (domain, business_id, state) in states.into_businesses() {
            shards[shard_of(domain, &business_id, SHARDS)]
                .states
                .insert(domain, business_id, state);
        }
        PartitionState {
            shards,
            next_offset: 0,
        }
    }

    pub(crate) fn count(&self, domain: Domain) -> usize {
        self.shards.iter().map(|s| s.states.count(domain)).sum()
    }
}
