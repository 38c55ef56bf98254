//! The key of a business's labels (name and region) as a review gives them.

/// A business's name and region as one review gives them, as a key: a hash
/// of both, made where the message is read, while its bytes are in cache.
/// A state remembers the key of the labels it last took, so a review that
/// gives the same ones again (nearly every review) is checked without
/// reading the names: by the time the stream folds a review in, its
/// message's bytes have left the cache, and comparing the names there
/// would wait on a cache miss for every review. The hash is seeded at random per process: a
/// key means nothing to another process, and is never stored. Two different
/// labels with the same key (a 64-bit hash: one chance in 2^64 for a given
/// change, the seed unknown outside the process) would leave the old labels
/// in place until the next change.
/// (Never zero: a state's `Option` of one then takes 8 bytes, not 16.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelsKey(std::num::NonZeroU64);

impl LabelsKey {
    pub fn of(business_name: Option<&str>, region: Option<&str>) -> LabelsKey {
        use std::hash::BuildHasher;
        static SEED: std::sync::LazyLock<foldhash::quality::RandomState> =
            std::sync::LazyLock::new(foldhash::quality::RandomState::default);
        let hash = SEED.hash_one((business_name, region));
        LabelsKey(std::num::NonZeroU64::new(hash).unwrap_or(std::num::NonZeroU64::MIN))
    }
}
