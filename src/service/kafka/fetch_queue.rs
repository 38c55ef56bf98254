//! Reading the consumer's messages a batch at a time.
//!
//! rdkafka's stream hands over one message per poll: a queue lock, an event,
//! a clock reading and a waker check for every message (about 1,200
//! instructions each, measured under callgrind). Here the fetch queue of each
//! partition is forwarded, just before the partition is assigned (before
//! librdkafka starts fetching it), to a queue of our own instead of the
//! consumer queue, and that queue is read with
//! `rd_kafka_consume_batch_queue`: one lock per read of up to 256 messages.
//! The consumer queue then carries rebalances, errors and statistics, which
//! the stream still serves, and any message fetched before a partition was
//! forwarded here (the loop reads the stream first, so a partition's
//! messages keep their order). librdkafka's prefetch limits
//! (`queued.max.messages.kbytes`) apply to the queue a fetch queue forwards
//! to, so they still bound all partitions together.
//!
//! The partitions are forwarded back to the consumer queue when revoked and
//! by [`FetchQueue::release_all`], which must run before the consumer is
//! dropped. Crate-private: the messages read and the queue must not outlive
//! the client, which `kafka::run` ensures (a guard releases the queue before
//! the consumer is dropped, every message is dropped before that guard, and
//! the consumer's context, which holds the queue and the wake-up the
//! callback points at, outlives librdkafka's threads).

use rdkafka::Message as _;
use rdkafka::bindings as rdsys;
use rdkafka::client::{Client, ClientContext};
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaTopic;
use std::ffi::{CStr, CString, c_void};
use std::ptr::NonNull;
use std::sync::Arc;
use tokio::sync::Notify;

/// A (topic, partition).
use super::commit::Tp;

/// A message read from a partition queue; destroyed (its buffer given back
/// to librdkafka) when dropped.
pub struct RawMessage(NonNull<rdsys::rd_kafka_message_t>);

// SAFETY: a message librdkafka has handed to the application is not changed
// by librdkafka until the application destroys it, which only `Drop` does
// (once); reading it from several threads is what rdkafka's own
// `BorrowedMessage` allows too.
unsafe impl Send for RawMessage {}
unsafe impl Sync for RawMessage {}

impl RawMessage {
    fn raw(&self) -> &rdsys::rd_kafka_message_t {
        // SAFETY: valid until `Drop` (see the type's comment).
        unsafe { self.0.as_ref() }
    }

    pub fn payload(&self) -> Option<&[u8]> {
        let m = self.raw();
        // SAFETY: librdkafka's payload pointer is valid for `len` bytes
        // while the message lives, which the borrow of `self` bounds.
        (!m.payload.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(m.payload as *const u8, m.len) })
    }

    pub fn key(&self) -> Option<&[u8]> {
        let m = self.raw();
        // SAFETY: as for the payload.
        (!m.key.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(m.key as *const u8, m.key_len) })
    }

    pub fn offset(&self) -> i64 {
        self.raw().offset
    }

    pub fn partition(&self) -> i32 {
        self.raw().partition
    }

    pub fn topic_ptr(&self) -> *mut RDKafkaTopic {
        self.raw().rkt
    }

    pub fn topic(&self) -> &str {
        // SAFETY: the message holds a reference to its topic handle, whose
        // name is a NUL-terminated string that lives as long as the handle.
        let name = unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(self.raw().rkt)) };
        name.to_str().unwrap_or_default()
    }

    /// The Kafka timestamp in milliseconds, if the message has one.
    pub fn timestamp_ms(&self) -> Option<i64> {
        let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: a live message; `kind` is written by librdkafka.
        let ts = unsafe { rdsys::rd_kafka_message_timestamp(self.0.as_ptr(), &mut kind) };
        (ts != -1 && kind != rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
            .then_some(ts)
    }

    /// librdkafka's error for an error "message" (a fetch error, not a record).
    fn error(&self) -> Option<String> {
        let err = self.raw().err;
        (err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR).then(|| {
            // SAFETY: a live message; librdkafka returns a static or
            // message-owned NUL-terminated string.
            let s = unsafe { CStr::from_ptr(rdsys::rd_kafka_message_errstr(self.0.as_ptr())) };
            s.to_string_lossy().into_owned()
        })
    }
}

impl Drop for RawMessage {
    fn drop(&mut self) {
        // SAFETY: handed to us by rd_kafka_consume_batch_queue, destroyed once.
        unsafe { rdsys::rd_kafka_message_destroy(self.0.as_ptr()) }
    }
}

/// A message the loop read: from the fetch queue, or from the stream.
pub enum Msg<'c> {
    Queue(RawMessage),
    Stream(BorrowedMessage<'c>),
}

impl Msg<'_> {
    pub fn payload(&self) -> Option<&[u8]> {
        match self {
            Msg::Queue(m) => m.payload(),
            Msg::Stream(m) => m.payload(),
        }
    }

    pub fn payload_len(&self) -> usize {
        self.payload().map_or(0, <[u8]>::len)
    }

    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Msg::Queue(m) => m.key(),
            Msg::Stream(m) => m.key(),
        }
    }

    pub fn offset(&self) -> i64 {
        match self {
            Msg::Queue(m) => m.offset(),
            Msg::Stream(m) => m.offset(),
        }
    }

    pub fn partition(&self) -> i32 {
        match self {
            Msg::Queue(m) => m.partition(),
            Msg::Stream(m) => m.partition(),
        }
    }

    pub fn topic_ptr(&self) -> *mut RDKafkaTopic {
        match self {
            Msg::Queue(m) => m.topic_ptr(),
            Msg::Stream(m) => m.topic_ptr(),
        }
    }

    pub fn topic(&self) -> &str {
        match self {
            Msg::Queue(m) => m.topic(),
            Msg::Stream(m) => m.topic(),
        }
    }

    pub fn timestamp_ms(&self) -> Option<i64> {
        match self {
            Msg::Queue(m) => m.timestamp_ms(),
            Msg::Stream(m) => m.timestamp().to_millis(),
        }
    }
}

/// The queue the assigned partitions' fetch queues are forwarded to, and
/// the wake-up it gives when it gets messages.
pub struct FetchQueue {
    wake: Arc<Notify>,
    /// Made at the first assignment (it needs the client).
    queue: Option<NonNull<rdsys::rd_kafka_queue_t>>,
    /// The partitions forwarded to it.
    forwarded: Vec<Tp>,
    /// After `release_all`: a late assignment (while the consumer closes)
    /// is forwarded to the consumer queue, and no queue is made again.
    closed: bool,
}

// SAFETY: the queue handle is used only through `&mut self` (the loop, and
// librdkafka's rebalance callbacks, which run inside the loop's polls); a
// queue handle may be used from any thread.
unsafe impl Send for FetchQueue {}

/// Called by librdkafka (on its own threads) when the queue, empty, gets a
/// message.
unsafe extern "C" fn wake_up(_rk: *mut rdsys::rd_kafka_t, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Notify` of an `Arc` the `FetchQueue` holds;
    // the callback is removed before the queue is destroyed, and the
    // `FetchQueue` lives in the consumer's context, which outlives
    // librdkafka's threads.
    let wake = unsafe { &*(opaque as *const Notify) };
    wake.notify_one();
}

/// Most messages one `rd_kafka_consume_batch_queue` call takes.
const CHUNK: usize = 256;

impl Default for FetchQueue {
    fn default() -> Self {
        FetchQueue {
            wake: Arc::new(Notify::new()),
            queue: None,
            forwarded: Vec::new(),
            closed: false,
        }
    }
}

/// Forward a partition's fetch queue to `to`.
///
/// # Safety
/// `rk` is the live consumer and `to` a live queue handle of it.
unsafe fn forward(rk: *mut rdsys::rd_kafka_t, tp: &Tp, to: *mut rdsys::rd_kafka_queue_t) -> bool {
    let Ok(topic) = CString::new(tp.0.as_str()) else {
        return false;
    };
    // SAFETY: per the function's contract. The partition's handle is
    // destroyed at once: the forward keeps its own reference to `to`, and
    // the fetch queue remembers that the application forwarded it, so
    // starting the fetch does not forward it to the consumer queue again.
    unsafe {
        let partition = rdsys::rd_kafka_queue_get_partition(rk, topic.as_ptr(), tp.1);
        if partition.is_null() {
            return false;
        }
        rdsys::rd_kafka_queue_forward(partition, to);
        rdsys::rd_kafka_queue_destroy(partition);
    }
    true
}

/// Forward these partitions' fetch queues back to the consumer queue; those
/// forwarded.
///
/// # Safety
/// `rk` is the live consumer.
unsafe fn to_consumer_queue(rk: *mut rdsys::rd_kafka_t, tps: &[Tp]) -> Vec<Tp> {
    // SAFETY: per the function's contract; the consumer queue handle is
    // destroyed after the forwards (each keeps its own reference).
    unsafe {
        let consumer_queue = rdsys::rd_kafka_queue_get_consumer(rk);
        if consumer_queue.is_null() {
            return Vec::new();
        }
        let back = tps
            .iter()
            .filter(|tp| forward(rk, tp, consumer_queue))
            .cloned()
            .collect();
        rdsys::rd_kafka_queue_destroy(consumer_queue);
        back
    }
}

impl FetchQueue {
    /// Notified when the queue may hold messages.
    pub fn wake(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Make the next wait for the wake-up return at once: for a reader
    /// that stopped with messages perhaps left (the queue gives a wake-up
    /// only when it gets a message while empty).
    pub fn rearm(&self) {
        self.wake.notify_one();
    }

    /// Forward these partitions' fetch queues here: call before they are
    /// assigned. Every time: once forwarded by the application, a fetch
    /// queue is never forwarded to the consumer queue by librdkafka again
    /// (and stopping its fetch, at a revocation, removes the forward), so a
    /// partition not forwarded here would be read by nobody.
    pub fn split<C: ClientContext>(&mut self, client: &Client<C>, tps: &[Tp]) {
        let rk = client.native_ptr();
        if self.closed {
            // SAFETY: `rk` is the live client's.
            unsafe { to_consumer_queue(rk, tps) };
            return;
        }
        let queue = match self.queue {
            Some(q) => q,
            None => {
                // SAFETY: `rk` is the live client's; the handle is ours
                // until `release_all`, which removes the wake-up first.
                let Some(q) = NonNull::new(unsafe { rdsys::rd_kafka_queue_new(rk) }) else {
                    tracing::error!(
                        "librdkafka could not make a queue: the assigned partitions stay on the consumer queue"
                    );
                    return;
                };
                unsafe {
                    rdsys::rd_kafka_queue_cb_event_enable(
                        q.as_ptr(),
                        Some(wake_up),
                        Arc::as_ptr(&self.wake) as *mut c_void,
                    );
                }
                self.queue = Some(q);
                q
            }
        };
        for tp in tps {
            // SAFETY: `rk` is the live client's, `queue` our live handle.
            if unsafe { forward(rk, tp, queue.as_ptr()) } {
                if !self.forwarded.contains(tp) {
                    self.forwarded.push(tp.clone());
                }
            } else {
                tracing::error!(topic = %tp.0, partition = tp.1, "librdkafka has no queue for this partition: its messages cannot be read");
            }
        }
        // Messages may have arrived before the wake-up was set.
        self.rearm();
    }

    /// Forward these (revoked) partitions back to the consumer queue.
    pub fn release<C: ClientContext>(&mut self, client: &Client<C>, tps: &[Tp]) {
        let revoked: Vec<Tp> = self
            .forwarded
            .iter()
            .filter(|tp| tps.contains(tp))
            .cloned()
            .collect();
        if revoked.is_empty() {
            return;
        }
        // SAFETY: `rk` is the live client's.
        let back = unsafe { to_consumer_queue(client.native_ptr(), &revoked) };
        self.forwarded.retain(|tp| !back.contains(tp));
    }

    /// Forward every partition back and destroy the queue: before the
    /// consumer is dropped.
    pub fn release_all<C: ClientContext>(&mut self, client: &Client<C>) {
        self.closed = true;
        let all = self.forwarded.clone();
        self.release(client, &all);
        if let Some(q) = self.queue.take() {
            // SAFETY: our live handle, destroyed once, its wake-up removed
            // first. What it still holds is destroyed with it.
            unsafe {
                rdsys::rd_kafka_queue_cb_event_enable(q.as_ptr(), None, std::ptr::null_mut());
                rdsys::rd_kafka_queue_destroy(q.as_ptr());
            }
        }
    }

    /// Append the messages the queue holds to `batch` until it holds
    /// `limit` messages or `max_bytes` of payload (`bytes` it holds
    /// already). Fetch errors are logged and dropped. When it stops with
    /// messages perhaps left, the wake-up is re-armed.
    pub fn read<'c>(
        &mut self,
        batch: &mut Vec<Msg<'c>>,
        limit: usize,
        mut bytes: usize,
        max_bytes: usize,
    ) {
        let Some(q) = self.queue else { return };
        let mut got: [*mut rdsys::rd_kafka_message_t; CHUNK] = [std::ptr::null_mut(); CHUNK];
        loop {
            let room = limit.saturating_sub(batch.len()).min(CHUNK);
            if room == 0 || bytes >= max_bytes {
                self.rearm();
                return;
            }
            // SAFETY: our live handle; librdkafka writes at most `room`
            // message pointers, each ours to destroy.
            let n = unsafe {
                rdsys::rd_kafka_consume_batch_queue(q.as_ptr(), 0, got.as_mut_ptr(), room)
            };
            let n = usize::try_from(n).unwrap_or(0);
            for &m in &got[..n] {
                let Some(m) = NonNull::new(m) else { continue };
                let m = RawMessage(m);
                if let Some(error) = m.error() {
                    tracing::warn!(topic = m.topic(), partition = m.partition(), %error, "consumer error");
                    continue;
                }
                let m = Msg::Queue(m);
                bytes += m.payload_len();
                batch.push(m);
            }
            if n < room {
                return;
            }
        }
    }
}
