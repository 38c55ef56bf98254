//! The desk's Prometheus metrics (prefix `reviewguard_desk_`). The gauges of
//! open work are recomputed from the store on each scrape, so every desk
//! instance sharing a store reports the same. No business, flag or user id
//! is ever a label.

use super::store::Store;
use crate::service::metrics::must;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct DeskMetrics {
    registry: Registry,
    pub flags_ingested: IntCounterVec,
    pub outcomes_recorded: IntCounterVec,
    pub outcomes_published: prometheus::IntCounter,
    pub webhook_sent: IntCounterVec,
    pub webhook_failures: IntCounterVec,
    pub logins: IntCounterVec,
    pub request_seconds: Histogram,
    open_flags: IntGaugeVec,
    oldest_open: IntGaugeVec,
    overdue: IntGaugeVec,
    unpublished: IntGauge,
}

impl DeskMetrics {
    pub fn new() -> DeskMetrics {
        let registry = must(Registry::new_custom(Some("reviewguard_desk".into()), None));
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = must(IntCounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = must(IntGaugeVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(g.clone())));
            g
        };
        let outcomes_published = must(prometheus::IntCounter::new(
            "outcomes_published_total",
            "Outcomes acknowledged by Kafka on the outcomes topic",
        ));
        must(registry.register(Box::new(outcomes_published.clone())));
        let unpublished = must(IntGauge::new(
            "outcomes_unpublished",
            "Outcomes recorded but not yet acknowledged by Kafka",
        ));
        must(registry.register(Box::new(unpublished.clone())));
        let request_seconds = must(Histogram::with_opts(
            HistogramOpts::new("request_seconds", "Time to answer a desk request").buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        ));
        must(registry.register(Box::new(request_seconds.clone())));
        let m = DeskMetrics {
            flags_ingested: counter(
                "flags_ingested_total",
                "Flag messages read: stored, duplicate (already kept) or rejected",
                &["result"],
            ),
            outcomes_recorded: counter(
                "outcomes_recorded_total",
                "Inspection outcomes recorded at the desk",
                &["domain", "outcome"],
            ),
            outcomes_published,
            webhook_sent: counter(
                "webhook_sent_total",
                "Notifications delivered to a webhook",
                &["kind"],
            ),
            webhook_failures: counter(
                "webhook_failures_total",
                "Notification attempts that failed (each retry counts)",
                &["kind"],
            ),
            logins: counter(
                "logins_total",
                "Login attempts: ok, refused or throttled",
                &["result"],
            ),
            request_seconds,
            open_flags: gauge(
                "open_flags",
                "Flags open or assigned, not yet inspected or dismissed",
                &["region", "severity"],
            ),
            oldest_open: gauge(
                "oldest_open_flag_age_seconds",
                "Age of the oldest open flag",
                &["region"],
            ),
            overdue: gauge(
                "flags_overdue",
                "Open flags older than desk.overdue_hours",
                &["region"],
            ),
            unpublished,
            registry,
        };
        for kind in super::config::WEBHOOK_KINDS {
            m.webhook_sent.with_label_values(&[kind]);
            m.webhook_failures.with_label_values(&[kind]);
        }
        for r in ["stored", "duplicate", "rejected"] {
            m.flags_ingested.with_label_values(&[r]);
        }
        for r in ["ok", "refused", "throttled"] {
            m.logins.with_label_values(&[r]);
        }
        m
    }

    /// Recompute the gauges from `store` and render every metric.
    pub async fn render(&self, store: &Store, overdue_ms: i64) -> String {
        let now = super::store::now_ms();
        match store.open_stats(now - overdue_ms).await {
            Ok(stats) => {
                self.open_flags.reset();
                self.oldest_open.reset();
                self.overdue.reset();
                for s in &stats {
                    let region = if s.region.is_empty() {
                        "unknown"
                    } else {
                        &s.region
                    };
                    self.open_flags
                        .with_label_values(&[region, &s.severity])
                        .set(s.open);
                    let age = ((now - s.oldest_received_ms) / 1000).max(0);
                    let g = self.oldest_open.with_label_values(&[region]);
                    g.set(g.get().max(age));
                    self.overdue.with_label_values(&[region]).add(s.overdue);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read open flags for /metrics"),
        }
        match store.unpublished_count().await {
            Ok(n) => self.unpublished.set(n),
            Err(e) => tracing::warn!(error = %e, "cannot count unpublished outcomes"),
        }
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for DeskMetrics {
    fn default() -> Self {
        DeskMetrics::new()
    }
}
