//! The output side of the loop: a batch's worked-out steps counted and
//! their outputs (flags, dead letters) sent in the order read, then followed
//! until the broker acknowledges them.

use crate::service::config::Config;
use crate::service::kafka::commit::{CommitTracker, Tp};
use crate::service::kafka::context::ProducerCtx;
use crate::service::kafka::dead_letter::DeadLetter;
use crate::service::kafka::fetch_queue::Msg;
use crate::service::kafka::work::{Step, Worked};
use crate::service::metrics::Metrics;
use crate::service::produce::send;
use crate::types::Domain;
use anyhow::{Context as _, Result, anyhow};
use rdkafka::producer::{DeliveryFuture, FutureProducer, Producer};

/// Counts of a batch, added to the metrics once per batch.
#[derive(Default)]
pub(crate) struct BatchCounts {
    /// Per topic domain: food, tourism, unknown.
    pub(crate) consumed: [u64; 3],
    pub(crate) scored: [u64; 2],
    pub(crate) signals: Vec<((Domain, crate::types::category::Category), u64)>,
}

impl BatchCounts {
    pub(crate) fn signal(&mut self, domain: Domain, c: crate::types::category::Category) {
        match self.signals.iter_mut().find(|(k, _)| *k == (domain, c)) {
            Some((_, n)) => *n += 1,
            None => self.signals.push(((domain, c), 1)),
        }
    }

    pub(crate) fn publish(&self, metrics: &Metrics, counters: &mut Counters) {
        for (i, n) in self.consumed.iter().enumerate() {
            if *n > 0 {
                counters.consumed[i].inc_by(*n);
            }
        }
        for (i, n) in self.scored.iter().enumerate() {
            if *n > 0 {
                counters.scored[i].inc_by(*n);
            }
        }
        for ((d, c), n) in &self.signals {
            metrics
                .signals
                .with_label_values(&[d.as_str(), c.as_str()])
                .inc_by(*n);
        }
    }
}

/// Metric children looked up once, not per message.
pub(crate) struct Counters {
    pub(crate) consumed: [prometheus::IntCounter; 3],
    pub(crate) scored: [prometheus::IntCounter; 2],
    pub(crate) risk_score: [prometheus::Histogram; 2],
}

impl Counters {
    pub(crate) fn new(m: &Metrics) -> Counters {
        let c = |l: &str| m.reviews_consumed.with_label_values(&[l]);
        let s = |d: Domain| m.reviews_scored.with_label_values(&[d.as_str()]);
        let r = |d: Domain| m.risk_score.with_label_values(&[d.as_str()]);
        Counters {
            consumed: [c("food"), c("tourism"), c("unknown")],
            scored: [s(Domain::Food), s(Domain::Tourism)],
            risk_score: [r(Domain::Food), r(Domain::Tourism)],
        }
    }
}

/// What an output was, for its delivery report.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Output {
    Flag(Domain, crate::types::Severity),
    DeadLetter,
}

/// The delivery report of one output of the message read `seq`-th.
pub(crate) struct Delivered {
    pub(crate) seq: u64,
    pub(crate) tp: Tp,
    pub(crate) offset: i64,
    pub(crate) timestamp_ms: Option<i64>,
    pub(crate) output: Output,
    pub(crate) result: Result<(), String>,
}

pub(crate) type InFlight =
    futures::stream::FuturesUnordered<futures::future::BoxFuture<'static, Delivered>>;

/// What a finished run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunSummary {
    pub consumed: u64,
    pub rejected: u64,
    pub flags: u64,
}

/// The output side of the loop: a batch's worked-out steps counted and
/// their outputs sent, in the order read, and followed until acknowledged.
pub(crate) struct Out<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) metrics: Metrics,
    pub(crate) producer: FutureProducer<ProducerCtx>,
    /// Messages handled in the current batch.
    pub(crate) batch_len: usize,
    /// Outputs sent and not yet acknowledged.
    pub(crate) inflight: InFlight,
    /// Messages read, outputs in flight, offsets handled: what may be
    /// committed, and when.
    pub(crate) commits: CommitTracker,
    pub(crate) counters: Counters,
    /// exactly_once: flags delivered in the open transaction.
    pub(crate) flags_in_txn: Vec<(Domain, crate::types::Severity)>,
    pub(crate) summary: RunSummary,
    /// exactly_once mode, and whether a transaction is open.
    pub(crate) eos: bool,
    pub(crate) in_txn: bool,
}

impl Out<'_> {
    /// Count a worked-out batch's steps and send their outputs, in the
    /// order read; note each partition's last handled offset for the next
    /// commit.
    pub(crate) fn apply(&mut self, msgs: &[Msg<'_>], worked: Worked) -> Result<()> {
        let Worked {
            steps,
            group_of,
            tps,
        } = worked;
        let mut handled: Vec<Option<i64>> = vec![None; tps.len()];
        // Each partition's topic's domain, for the consumed counts.
        let domains: Vec<Option<Domain>> = tps
            .iter()
            .map(|tp| self.cfg.topics.domain_of(&tp.0))
            .collect();
        let mut counts = BatchCounts::default();
        for (i, step) in steps.into_iter().enumerate() {
            let Some(step) = step else { continue };
            let g = group_of[i];
            if self.apply_step(&msgs[i], (&tps[g], domains[g]), step, &mut counts)? {
                handled[g] = Some(msgs[i].offset());
            }
        }
        for (tp, offset) in tps.into_iter().zip(handled) {
            if let Some(offset) = offset {
                self.commits.handled(tp, offset);
            }
        }
        counts.publish(&self.metrics, &mut self.counters);
        Ok(())
    }

    /// Count a message's outcome and send its outputs.
    /// Whether the message was handled here (its offset may be committed).
    pub(crate) fn apply_step(
        &mut self,
        m: &Msg<'_>,
        (tp, topic_domain): (&Tp, Option<Domain>),
        step: Step,
        counts: &mut BatchCounts,
    ) -> Result<bool> {
        if matches!(step, Step::Skip) {
            return Ok(false);
        }
        if self.eos && !self.in_txn {
            self.producer
                .begin_transaction()
                .context("cannot begin a transaction")?;
            self.in_txn = true;
        }
        let offset = m.offset();
        // (Read only for a message with an output: most have none.)
        let timestamp_ms = || m.timestamp_ms();
        let seq = self.commits.read();
        self.summary.consumed += 1;
        counts.consumed[topic_domain.map_or(2, Domain::index)] += 1;
        match step {
            Step::Skip => {}
            Step::Rejected(rejection) => {
                self.summary.rejected += 1;
                self.metrics
                    .reviews_rejected
                    .with_label_values(&[rejection.reason.as_str()])
                    .inc();
                tracing::debug!(topic = %tp.0, partition = tp.1, offset, reason = rejection.reason.as_str(), "rejected");
                let payload = m.payload().unwrap_or_default();
                let timestamp_ms = timestamp_ms();
                let dl = DeadLetter::new(
                    &rejection,
                    &tp.0,
                    tp.1,
                    offset,
                    timestamp_ms,
                    m.key(),
                    payload,
                );
                let body = serde_json::to_vec(&dl)?;
                let key = format!("{}-{}-{}", tp.0, tp.1, offset);
                let f = send(&self.producer, &self.cfg.topics.dlq, &key, &body, None)?;
                self.track(f, seq, tp, offset, timestamp_ms, Output::DeadLetter);
            }
            Step::Duplicate => self.metrics.duplicates_skipped.inc(),
            Step::Scored(domain, outcome) => {
                counts.scored[domain.index()] += 1;
                for c in outcome.signals.iter() {
                    counts.signal(domain, c);
                }
                if let Some(p) = outcome.risk_score {
                    self.counters.risk_score[domain.index()].observe(p);
                }
                self.metrics.observe_shadow(domain, &outcome);
                if let Some(flag) = outcome.flag {
                    let out = match flag.domain {
                        Domain::Food => &self.cfg.topics.inspection_food,
                        Domain::Tourism => &self.cfg.topics.inspection_tourism,
                    };
                    let body = serde_json::to_vec(&flag)?;
                    tracing::debug!(business = %flag.business_id, severity = flag.severity.as_str(), trigger = %flag.trigger, flag_id = %flag.flag_id, "flag");
                    let f = send(&self.producer, out, &flag.business_id, &body, None)?;
                    let output = Output::Flag(flag.domain, flag.severity);
                    self.track(f, seq, tp, offset, timestamp_ms(), output);
                }
            }
        }
        // (A message with no output had its latency observed when folded.)
        self.batch_len += 1;
        Ok(true)
    }

    /// Kafka message timestamp to `now_ms`, its outputs acknowledged (one
    /// with none is observed when folded, in `fold_shard`).
    pub(crate) fn observe_latency(&self, timestamp_ms: Option<i64>, now_ms: i64) {
        if let Some(ts) = timestamp_ms {
            self.metrics
                .pipeline_latency
                .observe(((now_ms - ts).max(0) as f64) / 1000.0);
        }
    }

    /// Follow an output until the broker acknowledges it.
    pub(crate) fn track(
        &mut self,
        f: DeliveryFuture,
        seq: u64,
        tp: &Tp,
        offset: i64,
        timestamp_ms: Option<i64>,
        output: Output,
    ) {
        self.commits.output_sent(seq);
        let tp = tp.clone();
        self.inflight.push(Box::pin(async move {
            let result = match f.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _))) => Err(e.to_string()),
                Err(_) => Err("the producer was dropped before a delivery report".to_owned()),
            };
            Delivered {
                seq,
                tp,
                offset,
                timestamp_ms,
                output,
                result,
            }
        }));
    }

    /// A delivery report: a failure stops the service (at_least_once: the
    /// offset is not committed, so the message is processed again after the
    /// restart) or aborts the transaction (exactly_once).
    pub(crate) fn delivered(&mut self, d: Delivered) -> Result<()> {
        self.commits.output_done(d.seq);
        if let Err(e) = d.result {
            let what = match d.output {
                Output::Flag(..) => "flag",
                Output::DeadLetter => "dlq",
            };
            self.metrics.produce_errors.with_label_values(&[what]).inc();
            return Err(anyhow!(
                "delivery failed for {}[{}]@{}: {e}; its offset is not committed, so it will be processed again",
                d.tp.0,
                d.tp.1,
                d.offset
            ));
        }
        if let Output::Flag(domain, severity) = d.output {
            if self.eos {
                // Visible to readers when the transaction commits.
                self.flags_in_txn.push((domain, severity));
            } else {
                self.count_flags(&[(domain, severity)]);
            }
        }
        self.observe_latency(d.timestamp_ms, chrono::Utc::now().timestamp_millis());
        Ok(())
    }

    pub(crate) fn count_flags(&mut self, flags: &[(Domain, crate::types::Severity)]) {
        for (d, s) in flags {
            self.summary.flags += 1;
            self.metrics
                .flags_emitted
                .with_label_values(&[d.as_str(), s.as_str()])
                .inc();
        }
    }
}
