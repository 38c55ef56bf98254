//! Reading a batch: what librdkafka already holds, taken without waiting.

use crate::service::kafka::context::Ctx;
use crate::service::kafka::fetch_queue::Msg;
use futures::{FutureExt as _, StreamExt as _};
use rdkafka::consumer::{Consumer, MessageStream, StreamConsumer};

/// Most payload bytes a batch holds: a batch of large messages ends before
/// `limits.batch_size` (two batches are in hand while pipelining, and each
/// message keeps its fetch response's buffer).
pub(crate) const BATCH_BYTES: usize = 1 << 20;

/// Take what else librdkafka already holds, without waiting, until `batch`
/// holds `limit` messages or [`BATCH_BYTES`], or a rebalance waits to be
/// applied: first from the consumer queue (which also serves rebalances, and
/// holds any message fetched before its partition was forwarded to the fetch
/// queue, so it is read before the partition's later ones), then from the
/// fetch queue.
pub(crate) fn gather<'c>(
    messages: &mut MessageStream<'c, Ctx>,
    ctx: &Ctx,
    batch: &mut Vec<Msg<'c>>,
    limit: usize,
) {
    let mut bytes: usize = batch.iter().map(|m| m.payload_len()).sum();
    while batch.len() < limit && bytes < BATCH_BYTES && !ctx.has_events() {
        match messages.next().now_or_never() {
            Some(Some(Ok(m))) => {
                bytes += m.payload_len();
                batch.push(Msg::Stream(m));
            }
            Some(Some(Err(e))) => {
                tracing::warn!(error = %e, "consumer error");
                break;
            }
            _ => break,
        }
    }
    if ctx.has_events() {
        // Applying the rebalance re-arms the fetch queue's wake-up.
        return;
    }
    // (Re-arms the wake-up itself when the batch is full.)
    ctx.queues().read(batch, limit, bytes, BATCH_BYTES);
}

/// Forwards the partitions back to the consumer queue and destroys the fetch
/// queue when dropped: before the consumer.
pub(crate) struct ReleaseQueues<'c>(pub(crate) &'c StreamConsumer<Ctx>);

impl Drop for ReleaseQueues<'_> {
    fn drop(&mut self) {
        self.0.context().queues().release_all(self.0.client());
    }
}
