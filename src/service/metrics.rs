//! Prometheus metrics (contract names, prefix `reviewguard_`), served by
//! [`crate::service::http`]. No business, review or reviewer id is ever a
//! label.

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub reviews_consumed: IntCounterVec,
    pub reviews_rejected: IntCounterVec,
    pub reviews_scored: IntCounterVec,
    pub flags_emitted: IntCounterVec,
    pub review_processing: Histogram,
    pub pipeline_latency: Histogram,
    pub consumer_lag: IntGaugeVec,
    pub businesses_tracked: IntGaugeVec,
    pub model_info: GaugeVec,
    /// The shadow model of each domain that has one (value 1).
    pub shadow_model_info: GaugeVec,
    pub risk_score: HistogramVec,
    pub shadow_risk_score: HistogramVec,
    pub shadow_agreement: IntCounterVec,
    pub signals: IntCounterVec,
    pub produce_errors: IntCounterVec,
    pub model_reload_failures: IntCounterVec,
    pub lexicon_reload_failures: prometheus::IntCounter,
    pub restore_seconds: Histogram,
    pub businesses_restored: prometheus::IntCounter,
    pub duplicates_skipped: prometheus::IntCounter,
    pub transactions: IntCounterVec,
    pub outcomes: IntCounterVec,
}

/// A metric definition's result: definitions are literals of this crate;
/// a clash is a bug the tests catch.
pub(crate) fn must<T>(r: prometheus::Result<T>) -> T {
    // Metric definitions are literals of this file; a clash is a bug the tests catch.
    r.unwrap_or_else(|e| panic!("metric definition: {e}"))
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = must(Registry::new_custom(Some("reviewguard".into()), None));
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = must(IntCounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let h = must(HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets),
                labels,
            ));
            must(registry.register(Box::new(h.clone())));
            h
        };
        let plain = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = must(Histogram::with_opts(
                HistogramOpts::new(name, help).buckets(buckets),
            ));
            must(registry.register(Box::new(h.clone())));
            h
        };
        // Fine from 10 to 100 ms, where a healthy pipeline's p99 lies.
        let latency_buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1,
            0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let m = Metrics {
            outcomes: counter(
                "outcomes_consumed_total",
                "Inspection outcomes read from inspection.outcomes: new, a duplicate of one held, or refused (dead-lettered).",
                &["result"],
            ),
            reviews_consumed: counter(
                "reviews_consumed_total",
                "Reviews read from the input topics, valid or not.",
                &["domain"],
            ),
            reviews_rejected: counter(
                "reviews_rejected_total",
                "Messages refused and sent to the dead-letter topic, by reason.",
                &["reason"],
            ),
            reviews_scored: counter(
                "reviews_scored_total",
                "Valid reviews run through the core (consumed = scored + rejected + duplicates skipped).",
                &["domain"],
            ),
            flags_emitted: counter(
                "flags_emitted_total",
                "Risk flags acknowledged by the broker.",
                &["domain", "severity"],
            ),
            review_processing: plain(
                "review_processing_seconds",
                "Time spent in the core per review: decode, extract, state, score, decide.",
                vec![
                    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025,
                    0.005, 0.01,
                ],
            ),
            pipeline_latency: plain(
                "pipeline_latency_seconds",
                "From the review's Kafka timestamp to its outputs acknowledged by the broker.",
                latency_buckets,
            ),
            consumer_lag: {
                let g = must(IntGaugeVec::new(
                    Opts::new(
                        "consumer_lag_messages",
                        "Messages behind the end of each assigned partition.",
                    ),
                    &["topic", "partition"],
                ));
                must(registry.register(Box::new(g.clone())));
                g
            },
            businesses_tracked: {
                let g = must(IntGaugeVec::new(
                    Opts::new(
                        "businesses_tracked",
                        "Businesses with state in this instance.",
                    ),
                    &["domain"],
                ));
                must(registry.register(Box::new(g.clone())));
                g
            },
            model_info: {
                let g = must(GaugeVec::new(
                    Opts::new("model_info", "The model serving each domain (value 1)."),
                    &["domain", "name", "version"],
                ));
                must(registry.register(Box::new(g.clone())));
                g
            },
            shadow_model_info: {
                let g = must(GaugeVec::new(
                    Opts::new(
                        "shadow_model_info",
                        "The shadow model scored beside the live one, per domain that has one (value 1).",
                    ),
                    &["domain", "name", "version"],
                ));
                must(registry.register(Box::new(g.clone())));
                g
            },
            risk_score: histogram(
                "risk_score",
                "Model scores of reviews that carried a risk signal.",
                &["domain"],
                vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
            ),
            shadow_risk_score: histogram(
                "shadow_risk_score",
                "Shadow model scores of the reviews the live model scored (never flag).",
                &["domain"],
                vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
            ),
            shadow_agreement: counter(
                "shadow_agreement_total",
                "Live vs shadow model: whether each score reaches its model's low threshold.",
                &["domain", "outcome"],
            ),
            signals: counter(
                "signals_total",
                "Risk signals extracted from reviews, by category.",
                &["domain", "category"],
            ),
            produce_errors: counter(
                "produce_errors_total",
                "Failed deliveries to the broker, by output.",
                &["output"],
            ),
            model_reload_failures: counter(
                "model_reload_failures_total",
                "Changed model files refused (the previous model keeps serving).",
                &["domain"],
            ),
            lexicon_reload_failures: {
                let c = must(prometheus::IntCounter::new(
                    "lexicon_reload_failures_total",
                    "Changed lexicon files refused (the previous lexicons stay in use).",
                ));
                must(registry.register(Box::new(c.clone())));
                c
            },
            restore_seconds: plain(
                "restore_seconds",
                "Time to restore one partition's state from the changelog.",
                vec![0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            ),
            businesses_restored: {
                let c = must(prometheus::IntCounter::new(
                    "businesses_restored_total",
                    "Business states restored from the changelog.",
                ));
                must(registry.register(Box::new(c.clone())));
                c
            },
            duplicates_skipped: {
                let c = must(prometheus::IntCounter::new(
                    "duplicates_skipped_total",
                    "Reviews delivered again whose effect the restored state already held.",
                ));
                must(registry.register(Box::new(c.clone())));
                c
            },
            transactions: counter(
                "transactions_total",
                "Kafka transactions of exactly_once mode, by outcome (committed, aborted).",
                &["outcome"],
            ),
            registry,
        };
        // Series that exist from the start, so dashboards and alerts see zeros.
        for d in crate::types::Domain::ALL {
            m.reviews_consumed.with_label_values(&[d.as_str()]);
            m.reviews_scored.with_label_values(&[d.as_str()]);
            m.businesses_tracked.with_label_values(&[d.as_str()]).set(0);
            m.model_reload_failures.with_label_values(&[d.as_str()]);
            for s in crate::types::Severity::ALL {
                m.flags_emitted.with_label_values(&[d.as_str(), s.as_str()]);
            }
        }
        for r in crate::core::review::RejectReason::ALL {
            m.reviews_rejected.with_label_values(&[r.as_str()]);
        }
        for r in ["new", "duplicate", "refused"] {
            m.outcomes.with_label_values(&[r]);
        }
        m
    }

    /// Count a shadow model's view of one scored review.
    pub fn observe_shadow(
        &self,
        domain: crate::types::Domain,
        outcome: &crate::core::scorer::Outcome,
    ) {
        if let Some(s) = outcome.shadow {
            self.shadow_risk_score
                .with_label_values(&[domain.as_str()])
                .observe(s.probability);
            self.shadow_agreement
                .with_label_values(&[domain.as_str(), s.agreement.as_str()])
                .inc();
        }
    }

    pub fn set_models(&self, models: &crate::core::scorer::Models) {
        self.model_info.reset();
        self.shadow_model_info.reset();
        for d in crate::types::Domain::ALL {
            let f = &models.get(d).file;
            self.model_info
                .with_label_values(&[d.as_str(), &f.name, &f.version])
                .set(1.0);
            if let Some(shadow) = models.shadow(d) {
                let f = &shadow.file;
                self.shadow_model_info
                    .with_label_values(&[d.as_str(), &f.name, &f.version])
                    .set(1.0);
                for a in crate::core::scorer::Agreement::ALL {
                    self.shadow_agreement
                        .with_label_values(&[d.as_str(), a.as_str()]);
                }
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_names_are_exposed() {
        let m = Metrics::new();
        m.review_processing.observe(0.001);
        m.pipeline_latency.observe(0.01);
        m.risk_score.with_label_values(&["food"]).observe(0.5);
        m.consumer_lag
            .with_label_values(&["reviews.food", "0"])
            .set(3);
        let text = m.render();
        for name in [
            "reviewguard_reviews_consumed_total",
            "reviewguard_reviews_rejected_total",
            "reviewguard_flags_emitted_total",
            "reviewguard_review_processing_seconds_bucket",
            "reviewguard_pipeline_latency_seconds_bucket",
            "reviewguard_consumer_lag_messages",
            "reviewguard_businesses_tracked",
            "reviewguard_risk_score_bucket",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
