//! The dead-letter record: a refused message's original bytes, where they
//! came from and why they were refused.

use crate::core::review::Rejection;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A dead-letter record: the original bytes and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub schema_version: u32,
    pub reason: String,
    pub error: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Kafka timestamp of the original message, milliseconds.
    pub timestamp_ms: Option<i64>,
    /// Original key and value, base64 (at most [`MAX_DEAD_LETTER_PAYLOAD`]
    /// bytes of each).
    pub key_base64: Option<String>,
    pub payload_base64: String,
    /// Size of the original value, and whether `payload_base64` holds only
    /// its first bytes.
    pub payload_bytes: usize,
    pub payload_truncated: bool,
}

/// Most bytes of an original message a dead letter carries: its base64 stays
/// well under Kafka's default 1 MB message limit, so a huge message cannot
/// make its own dead letter undeliverable (and stop the service).
pub const MAX_DEAD_LETTER_PAYLOAD: usize = 256 * 1024;

impl DeadLetter {
    pub fn new(
        rejection: &Rejection,
        topic: &str,
        partition: i32,
        offset: i64,
        ts: Option<i64>,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        DeadLetter {
            schema_version: 1,
            reason: rejection.reason.as_str().to_owned(),
            error: rejection.to_string(),
            topic: topic.to_owned(),
            partition,
            offset,
            timestamp_ms: ts,
            key_base64: key.map(|k| b64.encode(&k[..k.len().min(MAX_DEAD_LETTER_PAYLOAD)])),
            payload_base64: b64.encode(&payload[..payload.len().min(MAX_DEAD_LETTER_PAYLOAD)]),
            payload_bytes: payload.len(),
            payload_truncated: payload.len() > MAX_DEAD_LETTER_PAYLOAD,
        }
    }
}
