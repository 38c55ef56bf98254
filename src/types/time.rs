//! Event-time helpers: China Standard Time (+08:00), the offset of the
//! simulator's and the training tools' timestamps.

use chrono::{DateTime, FixedOffset, TimeZone};

/// The +08:00 offset.
pub fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("+08:00 is a valid offset"))
}

/// `t` (Unix seconds) as RFC 3339 in +08:00.
pub fn rfc3339(t: i64) -> String {
    let dt: DateTime<FixedOffset> = cst()
        .timestamp_opt(t, 0)
        .single()
        .unwrap_or_else(|| cst().timestamp_opt(0, 0).single().unwrap_or_default());
    dt.to_rfc3339()
}
