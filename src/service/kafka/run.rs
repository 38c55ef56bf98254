//! The run loop: consume, work out, send, commit; rebalances, reloads and
//! shutdown.

use crate::core::scorer::Scorer;
use crate::service::config::{Config, Guarantee};
use crate::service::http::Health;
use crate::service::kafka::admin::check_changelog_partitions;
use crate::service::kafka::clients::{
    TXN_TIMEOUT, barrier_producer, consumer_config, producer_config, restore_client_config,
};
use crate::service::kafka::commit::CommitTracker;
use crate::service::kafka::context::{Ctx, ProducerCtx};
use crate::service::kafka::fetch_queue::{FetchQueue, Msg};
use crate::service::kafka::gather::{ReleaseQueues, gather};
use crate::service::kafka::out::{Counters, InFlight, Out, RunSummary};
use crate::service::kafka::shell::Shell;
use crate::service::metrics::Metrics;
use anyhow::{Context as _, Result, anyhow};
use futures::StreamExt as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, Producer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Longest the loop stays in [`Shell::pipeline`] before it looks at its
/// other work (timers, delivery reports, reload requests).
pub(crate) const PIPELINE_ROUND: Duration = Duration::from_millis(100);

/// The service. Runs until `shutdown` turns true, then drains and commits.
pub async fn run(
    cfg: &Config,
    scorer: Scorer,
    metrics: Metrics,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunSummary> {
    let ctx = Ctx {
        events: Mutex::new(Vec::new()),
        pending: AtomicBool::new(false),
        health: health.clone(),
        metrics: metrics.clone(),
        queues: Mutex::new(FetchQueue::default()),
    };
    let wake = ctx.queues().wake();
    let consumer: StreamConsumer<Ctx> = consumer_config(cfg)
        .create_with_context(ctx)
        .context("cannot create the Kafka consumer (check kafka.brokers)")?;
    // Gives the fetch queue back before the consumer is dropped (also on an
    // early return).
    let _queues = ReleaseQueues(&consumer);
    let producer: FutureProducer<ProducerCtx> = producer_config(cfg)
        .create_with_context(ProducerCtx {
            health: health.clone(),
        })
        .context("cannot create the Kafka producer (check kafka.brokers)")?;
    let eos = cfg.kafka.guarantee() == Guarantee::ExactlyOnce;
    if eos {
        // Fences any earlier incarnation with the same transactional id and
        // aborts the transaction it left open.
        let p = producer.clone();
        tokio::task::spawn_blocking(move || p.init_transactions(TXN_TIMEOUT))
            .await
            .map_err(|e| anyhow!("init_transactions did not finish: {e}"))?
            .context("cannot initialise Kafka transactions (kafka.processing_guarantee = exactly_once needs a broker with transactions)")?;
        tracing::info!(transactional_id = %cfg.kafka.transactional_id(), "exactly-once: transactions initialised");
    }
    let topics = &cfg.topics;
    // Inspection outcomes first: a review after an inspection must meet it.
    let follower = crate::service::kafka::outcomes::Follower::start(
        cfg,
        scorer.outcomes.clone(),
        metrics.clone(),
    )?;
    if let Some(f) = follower {
        f.catch_up().await?;
        tokio::spawn(f.follow(shutdown.clone()));
    }
    consumer
        .subscribe(&[&topics.reviews_food, &topics.reviews_tourism])
        .context("cannot subscribe to the review topics")?;
    metrics.set_models(&scorer.models);
    tracing::info!(brokers = %cfg.kafka.brokers, group = %cfg.kafka.group_id, "consuming");

    check_changelog_partitions(&consumer, cfg)?;
    let restorer = crate::service::changelog::Restorer::new(
        restore_client_config(cfg),
        &topics.changelog,
        barrier_producer(cfg)?,
    )?;
    let counters = Counters::new(&metrics);
    let mut shell = Shell {
        cfg,
        scorer,
        metrics: metrics.clone(),
        restorer,
        partitions: HashMap::new(),
        suspended: HashMap::new(),
        out: Out {
            cfg,
            metrics,
            producer,
            batch_len: 0,
            inflight: InFlight::new(),
            commits: CommitTracker::new(
                Duration::from_millis(cfg.limits.commit_interval_ms),
                Instant::now(),
            ),
            counters,
            flags_in_txn: Vec::new(),
            summary: RunSummary::default(),
            eos,
            in_txn: false,
        },
        changelog: None,
    };
    let mut reloader = crate::service::reload::Reloader::new(cfg.watched());
    let mut reload_tick =
        tokio::time::interval(Duration::from_secs(cfg.models.reload_seconds.max(1)));
    reload_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reload = cfg.models.reload_seconds > 0;
    // `POST /reload` (metrics server): check the files now and answer.
    let mut reload_requests = health.reload.take_receiver();
    let mut rebalance_tick = tokio::time::interval(Duration::from_millis(100));
    rebalance_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // None: a batch ends as soon as no further message is ready.
    let batch_wait =
        (cfg.limits.batch_wait_ms > 0).then(|| Duration::from_millis(cfg.limits.batch_wait_ms));
    let mut batch_started: Option<Instant> = None;
    // One stream for the whole run (each `recv()` would make a new one).
    let mut messages = consumer.stream();
    // Read and not yet handled: a new batch, or what a pipeline round read
    // (see `Shell::pipeline`).
    let mut carry: Vec<Msg<'_>> = Vec::new();
    loop {
        let deadline = batch_started.zip(batch_wait).map(|(t, w)| t + w);
        let commit_at = shell.commit_due_at();
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                shell.flush(&consumer, false).await?;
                batch_started = None;
            }
            // A commit is due and no batch has started it: traffic stopped,
            // or the loop is waiting between fetches (at a moderate rate it
            // mostly is). Started as a batch starts it, without awaiting its
            // changelog records: awaiting them here stopped reading for their
            // whole delivery, once a second.
            _ = async {
                match commit_at {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            }, if batch_started.is_none() => {
                shell.flush(&consumer, false).await?;
            }
            // The changelog records of a commit under way are acknowledged.
            done = async {
                match shell.changelog.as_mut() {
                    Some(w) => (&mut w.delivered).await,
                    None => std::future::pending().await,
                }
            } => {
                done?;
                shell.changelog_acked();
                shell.try_finish_commit(&consumer);
            }
            // Delivery reports while no message comes.
            Some(d) = shell.out.inflight.next(), if !shell.out.inflight.is_empty() => {
                shell.on_delivered(&consumer, d).await?;
                shell.try_finish_commit(&consumer);
            }
            // Rebalances are noticed inside recv(); restore without waiting for a message.
            _ = rebalance_tick.tick() => {
                shell.apply_rebalances(&consumer, &consumer.context().take(), &health).await?;
            }
            _ = reload_tick.tick(), if reload => {
                reloader.check(&mut shell.scorer, &shell.metrics);
            }
            Some(reply) = async {
                match reload_requests.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let _ = reply.send(reloader.check_now(&mut shell.scorer, &shell.metrics));
            }
            // Read and not yet handled (a new batch, or what the last
            // pipeline round read): before anything newer.
            _ = std::future::ready(()), if !carry.is_empty() => {
                shell.apply_rebalances(&consumer, &consumer.context().take(), &health).await?;
                let batch = std::mem::take(&mut carry);
                carry = shell.pipeline(&consumer, &mut messages, batch, || *shutdown.borrow()).await?;
                shell.end_round(&consumer, batch_wait, &mut batch_started).await?;
            }
            Some(msg) = messages.next(), if carry.is_empty() => {
                match msg {
                    Ok(m) => {
                        health.broker_up.store(true, Ordering::Relaxed);
                        // Take what else librdkafka already holds, up to a
                        // batch; the branch above handles it.
                        carry.push(Msg::Stream(m));
                        gather(&mut messages, consumer.context(), &mut carry, cfg.limits.batch_size);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "consumer error");
                    }
                }
            }
            // The fetch queue got messages.
            _ = wake.notified(), if carry.is_empty() => {
                gather(&mut messages, consumer.context(), &mut carry, cfg.limits.batch_size);
                if !carry.is_empty() {
                    health.broker_up.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    tracing::info!(
        in_flight = shell.out.inflight.len(),
        "shutting down: draining in-flight work"
    );
    shell.flush(&consumer, true).await?;
    if eos {
        // Offsets went with the transactions.
    } else if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing stored since the last commit is not an error.
        if !matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::NoOffset)) {
            tracing::warn!(error = %e, "final commit failed");
        }
    }
    shell
        .out
        .producer
        .flush(Duration::from_secs(10))
        .map_err(|e| anyhow!("cannot flush the producer: {e}"))?;
    consumer.unsubscribe();
    tracing::info!(
        consumed = shell.out.summary.consumed,
        rejected = shell.out.summary.rejected,
        flags = shell.out.summary.flags,
        "stopped cleanly"
    );
    Ok(shell.out.summary)
}
