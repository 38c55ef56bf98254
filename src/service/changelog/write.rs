//! Writing changed business states to the changelog at a commit, paced so
//! that a large commit does not hold up the input's fetches.

use crate::service::metrics::Metrics;
use crate::service::produce::send;
use crate::types::Domain;
use anyhow::{Result, anyhow};
use rdkafka::client::ClientContext;
use rdkafka::producer::{DeliveryFuture, FutureProducer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A changed business state, copied for its changelog record.
pub(crate) struct Changed {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) domain: Domain,
    pub(crate) business_id: Box<str>,
    pub(crate) state: crate::core::features::BusinessState,
}

/// Write changed states' changelog records and enqueue them, in order.
pub(crate) fn write_changelog_records<C: ClientContext + 'static>(
    producer: &FutureProducer<C>,
    changelog: &str,
    changed: &[Changed],
    mut pacer: Option<Pacer>,
) -> Result<Vec<DeliveryFuture>> {
    let mut futures = Vec::with_capacity(changed.len());
    let mut body = Vec::new();
    for c in changed {
        body.clear();
        serde_json::to_writer(
            &mut body,
            &crate::service::changelog::RecordRef {
                format_version: crate::service::changelog::FORMAT_VERSION,
                source_topic: &c.topic,
                source_partition: c.partition,
                source_offset: c.state.source_offset,
                domain: c.domain,
                business_id: &c.business_id,
                state: &c.state,
            },
        )?;
        futures.push(send(
            producer,
            changelog,
            &c.business_id,
            &body,
            Some(c.partition),
        )?);
        if let Some(p) = pacer.as_mut() {
            p.enqueued(body.len());
        }
    }
    Ok(futures)
}

/// Tells a changelog writer to stop pausing; also when dropped (the commit
/// was given up with the loop), so no writer sleeps for nobody.
pub(crate) struct Hurry(pub(crate) Arc<AtomicBool>);

impl Hurry {
    pub(crate) fn now(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Drop for Hurry {
    fn drop(&mut self) {
        self.now();
    }
}

/// Spreads a commit's changelog records over time: a commit of thousands of
/// changed businesses is megabytes of JSON, and enqueued at once it reached
/// the broker as one burst, which held up the input's fetches (on Tansu at
/// 140k reviews/s, the p99 latency of every second's commit). After each
/// [`Pacer::SLICE_BYTES`] of records the writer pauses, so that the whole
/// commit (its size estimated from the records so far) is spread over half
/// of `limits.commit_interval_ms`, and no pause is longer than a fiftieth of
/// it (a commit of a few slices goes out within a few pauses). The commit
/// cadence and the changelog's throughput stay what they were. Hurried,
/// the writer stops pausing: the rest of a commit that is waited for (a
/// revocation, shutdown) goes out at once.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// What all pauses of a commit add up to at most (half the interval).
    pub(crate) spread: Duration,
    /// Longest pause (a fiftieth of the interval).
    pub(crate) longest: Duration,
    /// Pauses taken (or due) so far.
    pub(crate) paused: Duration,
    /// Records in the commit, and records and bytes enqueued so far.
    pub(crate) records: usize,
    pub(crate) records_sent: usize,
    pub(crate) bytes_sent: usize,
    pub(crate) since_pause: usize,
    pub(crate) hurry: Arc<AtomicBool>,
}

impl Pacer {
    pub(crate) const SLICE_BYTES: usize = 256 * 1024;
    /// How often a pause looks whether it was hurried.
    pub(crate) const TICK: Duration = Duration::from_millis(2);

    pub(crate) fn new(commit_interval: Duration, records: usize, hurry: Arc<AtomicBool>) -> Pacer {
        Pacer {
            spread: commit_interval / 2,
            longest: commit_interval / 50,
            paused: Duration::ZERO,
            records,
            records_sent: 0,
            bytes_sent: 0,
            since_pause: 0,
            hurry,
        }
    }

    pub(crate) fn hurried(&self) -> bool {
        self.hurry.load(Ordering::Relaxed)
    }

    /// One more record of `bytes` was enqueued: the pause due now, if any.
    pub(crate) fn pause_after(&mut self, bytes: usize) -> Option<Duration> {
        self.records_sent += 1;
        self.bytes_sent += bytes;
        self.since_pause += bytes;
        if self.since_pause < Self::SLICE_BYTES || self.hurried() {
            return None;
        }
        self.since_pause = 0;
        // Slices in the whole commit, at the mean record size so far; the
        // pauses never add up to more than `spread` (the estimate can be
        // low when the big records come last).
        let total = self.bytes_sent as f64 / self.records_sent as f64 * self.records.max(1) as f64;
        let slices = (total / Self::SLICE_BYTES as f64).max(1.0);
        let pause = self
            .spread
            .div_f64(slices)
            .min(self.longest)
            .min(self.spread.saturating_sub(self.paused));
        self.paused += pause;
        (!pause.is_zero()).then_some(pause)
    }

    /// One more record of `bytes` was enqueued: pause if one is due, until
    /// it is over or the commit is hurried.
    pub(crate) fn enqueued(&mut self, bytes: usize) {
        let Some(pause) = self.pause_after(bytes) else {
            return;
        };
        let until = Instant::now() + pause;
        while !self.hurried() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Self::TICK));
        }
    }
}

/// Wait for changelog records' delivery reports.
pub(crate) async fn changelog_delivered(sent: Vec<DeliveryFuture>, metrics: Metrics) -> Result<()> {
    for f in sent {
        match f.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => {
                metrics
                    .produce_errors
                    .with_label_values(&["changelog"])
                    .inc();
                return Err(anyhow!(
                    "changelog delivery failed: {e}; input offsets are not committed"
                ));
            }
            Err(_) => return Err(anyhow!("the producer was dropped before a delivery report")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pauses a writer takes over `records` records of `bytes` each.
    fn pauses(interval_ms: u64, records: usize, bytes: usize) -> Vec<Duration> {
        let mut p = Pacer::new(Duration::from_millis(interval_ms), records, Arc::default());
        (0..records).filter_map(|_| p.pause_after(bytes)).collect()
    }

    #[test]
    fn a_commit_is_spread_over_half_the_commit_interval() {
        // 4,000 businesses of 1,800 bytes (7.2 MB, what the stream bench's
        // commits hold): 27 slices, a pause after each, 0.5 s in all.
        let p = pauses(1000, 4000, 1800);
        assert_eq!(p.len(), 27);
        let total: Duration = p.iter().sum();
        assert!(
            total > Duration::from_millis(450) && total <= Duration::from_millis(500),
            "{total:?}"
        );
        // 100 times that: as many pauses, each as much shorter; the commit
        // still takes half the interval, not 100 times as long.
        let p = pauses(1000, 400_000, 1800);
        let total: Duration = p.iter().sum();
        assert!(
            total > Duration::from_millis(450) && total <= Duration::from_millis(500),
            "{total:?}"
        );
        // A commit of a slice and a half: one pause, no longer than 1/50.
        assert_eq!(pauses(1000, 200, 2000), vec![Duration::from_millis(20)]);
        // Scales with the interval.
        let total: Duration = pauses(5000, 4000, 1800).iter().sum();
        assert!(total > Duration::from_millis(2250) && total <= Duration::from_millis(2500));
    }

    #[test]
    fn a_small_commit_goes_out_without_a_pause() {
        // 2,000 records of 100 bytes: 195 KiB, under a slice.
        assert!(pauses(1000, 2000, 100).is_empty());
    }

    #[test]
    fn a_hurried_writer_stops_pausing() {
        let hurry = Arc::new(AtomicBool::new(false));
        let mut p = Pacer::new(Duration::from_millis(1000), 4000, hurry.clone());
        let before: Vec<_> = (0..1000).filter_map(|_| p.pause_after(1800)).collect();
        assert!(!before.is_empty());
        // The commit is waited for (or was given up): its guard hurries it.
        drop(Hurry(hurry));
        assert!((0..3000).all(|_| p.pause_after(1800).is_none()));
    }

    #[test]
    fn the_pauses_never_add_up_to_more_than_half_the_interval() {
        // Small records first, then big ones: the size estimate is low for
        // most of the commit, so each pause is too long (they would add up
        // to 1.42 s); their sum is capped at half the interval.
        let mut p = Pacer::new(Duration::from_millis(1000), 20_000, Arc::default());
        let total: Duration = (0..20_000)
            .filter_map(|i| p.pause_after(if i < 10_000 { 100 } else { 20_000 }))
            .sum();
        assert_eq!(total, Duration::from_millis(500));
    }

    #[test]
    fn a_pause_ends_early_when_the_commit_is_hurried() {
        let hurry = Arc::new(AtomicBool::new(false));
        // A 10-minute interval: pauses of 10.9 s.
        let mut p = Pacer::new(Duration::from_secs(600), 4000, hurry.clone());
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            Hurry(hurry).now();
        });
        let start = Instant::now();
        // The first slice's pause is due after 146 records of 1,800 bytes.
        for _ in 0..146 {
            p.enqueued(1800);
        }
        let took = start.elapsed();
        waker.join().unwrap();
        assert!(p.hurried());
        assert!(
            took < Duration::from_secs(5),
            "a 10.9 s pause should end when hurried (after 50 ms); it took {took:?}"
        );
    }
}
