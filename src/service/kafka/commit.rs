//! The commit bookkeeping of the loop, apart from any Kafka client: which
//! input offsets may be stored, and when.
//!
//! The rule (at_least_once): an input offset is stored only once everything
//! the messages up to it caused is acknowledged by the broker — their flags
//! and dead letters, and the changelog records of the states they changed.
//! A commit takes the offsets handled so far and notes how many messages had
//! been read; its offsets are released once its changelog records are
//! acknowledged and no output of a message read before it is still waiting.
//! Outputs of messages read later do not hold it up. One commit is under way
//! at a time; offsets handled meanwhile wait for the next.
//!
//! exactly_once uses the same record of handled offsets (they go into the
//! transaction) and of outputs in flight.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A topic and partition.
pub(crate) type Tp = (String, i32);

/// A commit under way: its offsets wait for its changelog records and for
/// the outputs of every message read before it.
#[derive(Debug)]
struct Pending {
    offsets: HashMap<Tp, i64>,
    /// Outputs of messages read before this sequence number must be
    /// acknowledged before the offsets are stored.
    read_before: u64,
    changelog_acked: bool,
}

/// See the module documentation. Times are passed in, so that every rule
/// here is tested without a clock or a broker.
#[derive(Debug)]
pub(crate) struct CommitTracker {
    /// Per partition, the last offset handled and not yet part of a commit.
    uncommitted: HashMap<Tp, i64>,
    /// Messages read so far: the next message's sequence number.
    read_seq: u64,
    /// Outputs sent and not yet acknowledged, per message sequence number.
    unacked: BTreeMap<u64, u32>,
    pending: Option<Pending>,
    last_commit: Instant,
    interval: Duration,
}

impl CommitTracker {
    pub(crate) fn new(interval: Duration, now: Instant) -> CommitTracker {
        CommitTracker {
            uncommitted: HashMap::new(),
            read_seq: 0,
            unacked: BTreeMap::new(),
            pending: None,
            last_commit: now,
            interval,
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// A message was read and is being handled: its sequence number.
    pub(crate) fn read(&mut self) -> u64 {
        let seq = self.read_seq;
        self.read_seq += 1;
        seq
    }

    /// An output of message `seq` was sent.
    pub(crate) fn output_sent(&mut self, seq: u64) {
        *self.unacked.entry(seq).or_default() += 1;
    }

    /// An output of message `seq` was acknowledged (or failed: the caller
    /// stops or aborts then, and its offset is never stored).
    pub(crate) fn output_done(&mut self, seq: u64) {
        if let Some(n) = self.unacked.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                self.unacked.remove(&seq);
            }
        }
    }

    /// Partition `tp` was handled up to `offset` (its outputs sent).
    pub(crate) fn handled(&mut self, tp: Tp, offset: i64) {
        self.uncommitted.insert(tp, offset);
    }

    /// The offsets handled and not yet part of a commit.
    pub(crate) fn uncommitted(&self) -> &HashMap<Tp, i64> {
        &self.uncommitted
    }

    /// Whether a commit is under way.
    pub(crate) fn committing(&self) -> bool {
        self.pending.is_some()
    }

    /// Whether the commit interval has passed since the last commit started.
    pub(crate) fn interval_passed(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_commit) >= self.interval
    }

    /// Whether a commit is due now: the interval has passed and none is
    /// under way (the next one waits for it).
    pub(crate) fn due(&self, now: Instant) -> bool {
        !self.committing() && self.interval_passed(now)
    }

    /// When handled offsets (or, with `open_work`, other uncommitted work
    /// such as an open transaction) are due for a commit; none while a
    /// commit is under way.
    pub(crate) fn due_at(&self, open_work: bool) -> Option<Instant> {
        let waiting = (!self.uncommitted.is_empty() || open_work) && !self.committing();
        waiting.then(|| self.last_commit + self.interval)
    }

    /// The interval starts again (a commit done, or nothing to commit).
    pub(crate) fn restart_interval(&mut self, now: Instant) {
        self.last_commit = now;
    }

    /// Start a commit of every offset handled so far; its changelog records
    /// are on their way. (At most one at a time: a second call while one is
    /// under way merges into it and keeps its earlier `read_before`.)
    pub(crate) fn start(&mut self, now: Instant) {
        let offsets = std::mem::take(&mut self.uncommitted);
        match self.pending.as_mut() {
            Some(p) => {
                p.offsets.extend(offsets);
                p.changelog_acked = false;
            }
            None => {
                self.pending = Some(Pending {
                    offsets,
                    read_before: self.read_seq,
                    changelog_acked: false,
                });
            }
        }
        self.last_commit = now;
    }

    /// The changelog records of the commit under way are acknowledged.
    pub(crate) fn changelog_acked(&mut self) {
        if let Some(p) = self.pending.as_mut() {
            p.changelog_acked = true;
        }
    }

    /// Whether an output of a message read before `seq` is unacknowledged.
    pub(crate) fn outputs_pending_before(&self, seq: u64) -> bool {
        self.unacked
            .first_key_value()
            .is_some_and(|(s, _)| *s < seq)
    }

    /// The sequence number the commit under way waits on outputs before.
    pub(crate) fn waits_before(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.read_before)
    }

    /// Whether the oldest unacknowledged output is more than `window`
    /// messages behind the reading (the loop then waits for it).
    pub(crate) fn behind(&self, window: u64) -> bool {
        self.unacked
            .first_key_value()
            .is_some_and(|(seq, _)| self.read_seq - seq > window)
    }

    /// The offsets of the commit under way, once they may be stored: its
    /// changelog records and every output of a message read before it are
    /// acknowledged. The commit is then over.
    pub(crate) fn take_ready(&mut self) -> Option<HashMap<Tp, i64>> {
        let ready = self
            .pending
            .as_ref()
            .is_some_and(|p| p.changelog_acked && !self.outputs_pending_before(p.read_before));
        if !ready {
            return None;
        }
        self.pending.take().map(|p| p.offsets)
    }

    /// exactly_once: the handled offsets go into the transaction being
    /// committed; they are no longer waiting.
    pub(crate) fn take_uncommitted(&mut self) -> HashMap<Tp, i64> {
        std::mem::take(&mut self.uncommitted)
    }

    /// exactly_once, a transaction aborted: forget its outputs and handled
    /// offsets (the partitions are rewound); the partitions it touched.
    pub(crate) fn abort(&mut self, now: Instant) -> Vec<Tp> {
        self.unacked.clear();
        self.last_commit = now;
        self.uncommitted.drain().map(|(tp, _)| tp).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> Tp {
        ("reviews.food".to_owned(), p)
    }

    fn tracker() -> (CommitTracker, Instant) {
        let t0 = Instant::now();
        (CommitTracker::new(Duration::from_secs(1), t0), t0)
    }

    /// A message read, handled at `offset` of `tp`, with `outputs` outputs sent.
    fn handle(c: &mut CommitTracker, tp: Tp, offset: i64, outputs: u32) -> u64 {
        let seq = c.read();
        for _ in 0..outputs {
            c.output_sent(seq);
        }
        c.handled(tp, offset);
        seq
    }

    #[test]
    fn offsets_wait_for_the_changelog_and_every_earlier_output() {
        let (mut c, t0) = tracker();
        let a = handle(&mut c, tp(0), 10, 1);
        let b = handle(&mut c, tp(1), 20, 2);
        c.start(t0);
        // Neither the changelog nor the outputs are acknowledged.
        assert_eq!(c.take_ready(), None);
        c.changelog_acked();
        assert_eq!(c.take_ready(), None, "the outputs of a and b are waiting");
        c.output_done(a);
        c.output_done(b);
        assert_eq!(c.take_ready(), None, "one of b's two outputs is waiting");
        c.output_done(b);
        let ready = c.take_ready().expect("everything acknowledged");
        assert_eq!(ready, HashMap::from([(tp(0), 10), (tp(1), 20)]));
        assert!(!c.committing());
        assert_eq!(c.take_ready(), None, "released once");
    }

    #[test]
    fn outputs_of_messages_read_after_the_commit_do_not_hold_it_up() {
        let (mut c, t0) = tracker();
        handle(&mut c, tp(0), 10, 0);
        c.start(t0);
        let later = handle(&mut c, tp(0), 11, 1);
        c.changelog_acked();
        assert_eq!(c.take_ready(), Some(HashMap::from([(tp(0), 10)])));
        // The later message's offset waits for the next commit.
        assert_eq!(c.uncommitted(), &HashMap::from([(tp(0), 11)]));
        c.start(t0);
        c.changelog_acked();
        assert_eq!(c.take_ready(), None, "its output is not acknowledged");
        c.output_done(later);
        assert_eq!(c.take_ready(), Some(HashMap::from([(tp(0), 11)])));
    }

    #[test]
    fn a_commit_is_due_once_per_interval_and_never_while_one_is_under_way() {
        let (mut c, t0) = tracker();
        let second = Duration::from_secs(1);
        assert!(!c.due(t0));
        assert_eq!(c.due_at(false), None, "nothing handled, nothing open");
        assert_eq!(c.due_at(true), Some(t0 + second), "an open transaction");
        handle(&mut c, tp(0), 1, 0);
        assert_eq!(c.due_at(false), Some(t0 + second));
        assert!(c.due(t0 + second));
        c.start(t0 + second);
        assert!(!c.due(t0 + 5 * second), "one commit at a time");
        assert_eq!(c.due_at(true), None);
        c.changelog_acked();
        assert!(c.take_ready().is_some());
        assert!(!c.due(t0 + second + second / 2), "the interval restarted");
        assert!(c.due(t0 + 2 * second));
    }

    #[test]
    fn the_reading_waits_when_the_oldest_output_falls_a_window_behind() {
        let (mut c, _) = tracker();
        let first = handle(&mut c, tp(0), 0, 1);
        for offset in 1..10 {
            handle(&mut c, tp(0), offset, 0);
        }
        assert!(!c.behind(10), "ten messages read from the oldest output on");
        handle(&mut c, tp(0), 10, 0);
        assert!(c.behind(10), "eleven");
        c.output_done(first);
        assert!(!c.behind(10));
    }

    #[test]
    fn the_last_offset_handled_per_partition_is_committed() {
        let (mut c, t0) = tracker();
        for offset in [5, 6, 7] {
            handle(&mut c, tp(0), offset, 0);
        }
        handle(&mut c, tp(3), 40, 0);
        c.start(t0);
        c.changelog_acked();
        assert_eq!(
            c.take_ready(),
            Some(HashMap::from([(tp(0), 7), (tp(3), 40)]))
        );
    }

    #[test]
    fn an_aborted_transaction_forgets_its_outputs_and_offsets() {
        let (mut c, t0) = tracker();
        handle(&mut c, tp(0), 10, 2);
        handle(&mut c, tp(2), 3, 0);
        let mut touched = c.abort(t0);
        touched.sort();
        assert_eq!(touched, vec![tp(0), tp(2)]);
        assert!(c.uncommitted().is_empty());
        assert!(!c.behind(0));
        assert!(!c.outputs_pending_before(u64::MAX));
        // A transaction commit takes what was handled since.
        handle(&mut c, tp(0), 11, 0);
        assert_eq!(c.take_uncommitted(), HashMap::from([(tp(0), 11)]));
        assert!(c.uncommitted().is_empty());
    }
}
