//! Hostile input against the running service over a real broker (Tansu): a
//! barrage of every kind of malformed, oversized, mistyped and adversarial
//! message, mixed with valid reviews whose text is hostile. Every invalid
//! message must land in the DLQ with its reason, every valid one is scored,
//! consumed = scored + rejected exactly, memory stays bounded, reviews after
//! the barrage are still flagged, and, with debug logging on, no review text,
//! reviewer id or DLQ payload reaches the logs.

mod common;

use base64::Engine as _;
use common::*;
use rdkafka::message::Message;
use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Unique strings that must never appear in the service's output.
const TEXT_MARKER: &str = "MkTextQz7Rw";
const REVIEWER_MARKER: &str = "MkReviewerJx4Pf";
const DLQ_MARKER: &str = "MkDeadLetterVb9Ks";

const MAX_BYTES: usize = 16 * 1024;
const ROUNDS: usize = 20;
const PARTITIONS: i32 = 2;

struct Msg {
    kind: &'static str,
    topic: &'static str,
    bytes: Vec<u8>,
    /// `None`: valid, must be scored; `Some(reason)`: must be dead-lettered.
    reason: Option<&'static str>,
}

fn review(id: &str, business: &str, text: &str) -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({
        "review_id": id, "business_id": business, "domain": "food", "text": text,
        "created_at": "2026-03-01T12:00:00+08:00", "rating": 3,
        "reviewer_id": format!("{REVIEWER_MARKER}-{id}"),
    });
    match v {
        serde_json::Value::Object(o) => o,
        _ => unreachable!(),
    }
}

fn bytes(o: serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::Value::Object(o)).unwrap()
}

fn set(id: &str, field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut o = review(id, "shop-h", &format!("{DLQ_MARKER} 普通的评论"));
    o.insert(field.into(), value);
    bytes(o)
}

fn without(id: &str, field: &str) -> Vec<u8> {
    let mut o = review(id, "shop-h", &format!("{DLQ_MARKER} 普通的评论"));
    o.remove(field);
    bytes(o)
}

/// One round of the barrage; `r` makes ids unique.
fn barrage(r: usize) -> Vec<Msg> {
    use serde_json::json;
    let id = |k: &str| format!("h{r}-{k}");
    let bad = |kind, bytes: Vec<u8>, reason| Msg {
        kind,
        topic: "reviews.food",
        bytes,
        reason: Some(reason),
    };
    let good = |kind, topic, bytes: Vec<u8>| Msg {
        kind,
        topic,
        bytes,
        reason: None,
    };
    let depth = MAX_BYTES / 2 - 200;
    let nest = |inner: &str| format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth));
    let deep_whole = nest(&format!("\"{DLQ_MARKER}\""));
    // A review whose text is a deeply nested array.
    let deep_text = String::from_utf8(set(&id("deeptext"), "text", serde_json::Value::Null))
        .unwrap()
        .replace("\"text\":null", &format!("\"text\":{}", nest("1")))
        .into_bytes();
    let text_of = |t: &str| format!("{TEXT_MARKER} {t}");
    let hostile_good = |k: &str, t: &str| bytes(review(&id(k), &format!("shop-v{r}"), &text_of(t)));
    let mut extra = review(&id("extra"), "shop-x", &text_of("很好吃"));
    extra.insert(
        "unexpected".into(),
        json!({"nested": [1, 2, {"deep": null}]}),
    );
    extra.insert("photos_url".into(), json!("http://example.invalid/x.jpg"));
    let mut no_domain = review(&id("nodomain"), "shop-t", &text_of("房间干净"));
    no_domain.remove("domain");
    let mut nulls = review(&id("nulls"), "shop-n", &text_of("一般"));
    for f in ["rating", "photos", "region", "platform", "business_name"] {
        nulls.insert(f.into(), serde_json::Value::Null);
    }
    let mut msgs = Vec::new();
    if r < 2 {
        // Under Kafka's 1 MB limit, far over ours: its dead letter must still fit.
        msgs.push(bad(
            "far over the size limit (900 KB)",
            set(&id("huge"), "text", json!(DLQ_MARKER.repeat(900_000 / 17))),
            "too_large",
        ));
    }
    msgs.extend([
        bad("empty message", Vec::new(), "invalid_json"),
        bad(
            "invalid JSON",
            format!("{{\"review_id\": \"{DLQ_MARKER}\",").into_bytes(),
            "invalid_json",
        ),
        bad(
            "invalid UTF-8",
            [DLQ_MARKER.as_bytes(), b"\xff\xfe\xc3\x28"].concat(),
            "invalid_utf8",
        ),
        bad(
            "JSON not an object (array)",
            format!("[\"{DLQ_MARKER}\"]").into_bytes(),
            "not_an_object",
        ),
        bad(
            "JSON not an object (string)",
            format!("\"{DLQ_MARKER}\"").into_bytes(),
            "not_an_object",
        ),
        bad(
            "JSON not an object (null)",
            b"null".to_vec(),
            "not_an_object",
        ),
        bad(
            "very deep nesting (the whole message)",
            deep_whole.into_bytes(),
            "not_an_object",
        ),
        bad("very deep nesting in text", deep_text, "invalid_text"),
        bad(
            "over the size limit",
            set(&id("big"), "text", json!(DLQ_MARKER.repeat(MAX_BYTES / 10))),
            "too_large",
        ),
        bad(
            "missing review_id",
            without(&id("x"), "review_id"),
            "missing_review_id",
        ),
        bad(
            "missing business_id",
            without(&id("nobiz"), "business_id"),
            "missing_business_id",
        ),
        bad(
            "missing text",
            without(&id("notext"), "text"),
            "missing_text",
        ),
        bad(
            "missing created_at",
            without(&id("nots"), "created_at"),
            "missing_created_at",
        ),
        bad(
            "wrongly typed review_id",
            set(&id("x"), "review_id", json!(12345)),
            "invalid_review_id",
        ),
        bad(
            "wrongly typed text",
            set(&id("ttext"), "text", json!({"t": DLQ_MARKER})),
            "invalid_text",
        ),
        bad(
            "wrongly typed rating",
            set(&id("trating"), "rating", json!("5")),
            "invalid_rating",
        ),
        bad(
            "wrongly typed photos",
            set(&id("tphotos"), "photos", json!(-1)),
            "invalid_photos",
        ),
        bad(
            "wrongly typed region",
            set(&id("tregion"), "region", json!(310105)),
            "invalid_field",
        ),
        bad(
            "wrongly typed reviewer_id",
            set(&id("treviewer"), "reviewer_id", json!([REVIEWER_MARKER])),
            "invalid_field",
        ),
        bad(
            "rating out of range (0)",
            set(&id("r0"), "rating", json!(0)),
            "invalid_rating",
        ),
        bad(
            "rating out of range (6)",
            set(&id("r6"), "rating", json!(6)),
            "invalid_rating",
        ),
        bad(
            "rating out of range (1e308)",
            set(&id("rbig"), "rating", json!(1e308)),
            "invalid_rating",
        ),
        bad(
            "empty review_id",
            set(&id("x"), "review_id", json!("")),
            "invalid_review_id",
        ),
        bad(
            "over-long review_id",
            set(&id("x"), "review_id", json!("r".repeat(129))),
            "invalid_review_id",
        ),
        bad(
            "empty business_id",
            set(&id("ebiz"), "business_id", json!("")),
            "invalid_business_id",
        ),
        bad(
            "over-long business_id",
            set(&id("lbiz"), "business_id", json!("商".repeat(129))),
            "invalid_business_id",
        ),
        bad(
            "unknown domain",
            set(&id("dom"), "domain", json!("fashion")),
            "invalid_domain",
        ),
        bad(
            "timestamp without offset",
            set(&id("ts1"), "created_at", json!("2026-03-01T12:00:00")),
            "invalid_created_at",
        ),
        bad(
            "timestamp far in the future",
            set(&id("ts2"), "created_at", json!("9999-12-31T23:59:59+08:00")),
            "invalid_created_at",
        ),
        bad(
            "timestamp not a date",
            set(&id("ts3"), "created_at", json!("yesterday")),
            "invalid_created_at",
        ),
        bad(
            "NUL in review_id",
            set(&id("x"), "review_id", json!(format!("{}\u{0}", id("nul")))),
            "invalid_review_id",
        ),
        bad(
            "control characters in business_id",
            set(&id("ctl"), "business_id", json!("shop\u{1b}[31m")),
            "invalid_business_id",
        ),
        good("extra fields", "reviews.food", bytes(extra)),
        good(
            "domain missing, taken from the topic",
            "reviews.tourism",
            bytes(no_domain),
        ),
        good("optional fields null", "reviews.food", bytes(nulls)),
        good("very deep nesting in an unknown field", "reviews.food", {
            let o = review(&id("deepx"), "shop-d", &text_of("好"));
            let mut b = bytes(o);
            b.pop();
            b.extend(format!(",\"x\":{}}}", nest("0")).into_bytes());
            b
        }),
        good(
            "NUL and control characters in text",
            "reviews.food",
            hostile_good("ctl", "好吃\u{0}\u{1}\u{7}\u{1b}[2J\r不错"),
        ),
        good(
            "right-to-left override in text",
            "reviews.food",
            hostile_good("rtl", "\u{202E}吃好很\u{202C}"),
        ),
        good(
            "emoji in text",
            "reviews.food",
            hostile_good("emoji", "😋👍👨‍👩‍👧 很好吃🍜"),
        ),
        good(
            "SQL-like text",
            "reviews.food",
            hostile_good("sql", "'; DROP TABLE reviews; -- 好吃"),
        ),
        good(
            "script-like text",
            "reviews.food",
            hostile_good(
                "script",
                "<script>alert(document.cookie)</script><img src=x onerror=1>",
            ),
        ),
        good("empty text", "reviews.food", hostile_good("empty", "")),
        good(
            "long repetitive text under the limit",
            "reviews.food",
            hostile_good("long", &"哈".repeat(MAX_BYTES / 4)),
        ),
        good(
            "128-character ids",
            "reviews.food",
            bytes(review(
                &format!("{}{}", id("l"), "i".repeat(128 - id("l").len())),
                &"b".repeat(128),
                &text_of("好"),
            )),
        ),
        good(
            "exactly 1,024 bytes without white space (the compact scanner's longest)",
            "reviews.food",
            {
                let with = |t: &str| bytes(review(&id("k1024"), "shop-k", &text_of(t)));
                let pad = 1024 - with("好").len();
                let b = with(&format!("好{}", "x".repeat(pad)));
                assert_eq!(b.len(), 1024);
                b
            },
        ),
        good("timestamp with Z and fraction", "reviews.food", {
            let mut o = review(&id("z"), "shop-z", &text_of("好"));
            o.insert("created_at".into(), json!("2026-03-01T04:00:00.123456Z"));
            bytes(o)
        }),
    ]);
    msgs
}

/// Two different people report illness at one business within hours.
fn follow_up() -> Vec<Vec<u8>> {
    ["rv-after-1", "rv-after-2"]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut o = review(
                id,
                "shop-after",
                &format!("{TEXT_MARKER} 吃完回家就拉肚子了，上吐下泻"),
            );
            o.insert(
                "created_at".into(),
                format!("2026-03-02T1{i}:00:00+08:00").into(),
            );
            // Backed by photos: two such reports are a credible cluster.
            o.insert("photos".into(), 1.into());
            bytes(o)
        })
        .collect()
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn hostile_barrage_is_dead_lettered_scored_and_survived() {
    let broker = Broker::start();
    broker.create_topics(PARTITIONS);
    let dir = tempfile::tempdir().unwrap();

    let mut msgs = Vec::new();
    for r in 0..ROUNDS {
        msgs.extend(barrage(r));
    }
    for topic in ["reviews.food", "reviews.tourism"] {
        let recs: Vec<(String, Vec<u8>)> = msgs
            .iter()
            .filter(|m| m.topic == topic)
            .map(|m| ("k".to_owned(), m.bytes.clone()))
            .collect();
        produce(&broker.addr, topic, &recs);
    }
    let after = follow_up();
    let after_recs: Vec<(String, Vec<u8>)> = after
        .iter()
        .map(|b| ("shop-after".to_owned(), b.clone()))
        .collect();
    produce(&broker.addr, "reviews.food", &after_recs);

    let total = (msgs.len() + after.len()) as u64;
    let invalid: Vec<&Msg> = msgs.iter().filter(|m| m.reason.is_some()).collect();
    let valid = total - invalid.len() as u64;

    // The service, with every log level on, stdout and stderr kept.
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let stderr_path = dir.path().join("service.stderr");
    let stdout_path = dir.path().join("service.stdout");
    let child = Command::new(env!("CARGO_BIN_EXE_reviewguard"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--config", "config/reviewguard.toml"])
        .env("REVIEWGUARD_KAFKA_BROKERS", &broker.addr)
        .env("REVIEWGUARD_KAFKA_GROUP_ID", "rg-hostile")
        .env("REVIEWGUARD_METRICS_ADDR", &metrics_addr)
        .env(
            "REVIEWGUARD_PRIVACY_PSEUDONYM_KEY",
            "hostile-key-hostile-key",
        )
        .env(
            "REVIEWGUARD_LIMITS_MAX_MESSAGE_BYTES",
            MAX_BYTES.to_string(),
        )
        .env("REVIEWGUARD_LOG", "debug")
        .env("RUST_LOG", "debug")
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("cannot start reviewguard");
    let pid = child.id();
    let mut svc = Service {
        child,
        metrics_addr,
        stderr_path: stderr_path.clone(),
    };

    // Sample resident memory while the barrage is processed.
    let stop = Arc::new(AtomicBool::new(false));
    let peak_sampled = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak_sampled.clone());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid, "VmRSS:") {
                    peak.fetch_max(kib, Ordering::Relaxed);
                    samples += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            samples
        })
    };

    svc.wait_ready(Duration::from_secs(60));
    svc.wait_consumed(total, Duration::from_secs(60));
    // A review is counted as consumed when read and as scored once processed:
    // wait until every consumed one is scored or rejected.
    let m = wait_for(
        "every consumed review scored or rejected",
        Duration::from_secs(60),
        || {
            let m = svc.metrics()?;
            let done = metric(&m, "reviewguard_reviews_scored_total", &[])
                + metric(&m, "reviewguard_reviews_rejected_total", &[]);
            (done as u64 >= total).then_some(m)
        },
    );
    let consumed = metric(&m, "reviewguard_reviews_consumed_total", &[]) as u64;
    let rejected = metric(&m, "reviewguard_reviews_rejected_total", &[]) as u64;
    let scored = metric(&m, "reviewguard_reviews_scored_total", &[]) as u64;
    let skipped = metric(&m, "reviewguard_duplicates_skipped_total", &[]) as u64;
    assert_eq!(consumed, total, "consumed");
    assert_eq!(rejected, invalid.len() as u64, "rejected");
    assert_eq!(scored, valid, "scored");
    assert_eq!(skipped, 0);
    assert_eq!(consumed, scored + rejected, "consumed = scored + rejected");

    // Rejects by reason, as the metric counts them.
    let mut want_reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for m in &invalid {
        *want_reasons
            .entry(m.reason.unwrap_or_default())
            .or_default() += 1;
    }
    for (reason, n) in &want_reasons {
        let got = metric(
            &m,
            "reviewguard_reviews_rejected_total",
            &[&format!("reason=\"{reason}\"")],
        ) as u64;
        assert_eq!(
            got,
            *n,
            "rejected with reason {reason}; all: {:?}",
            m.lines()
                .filter(|l| l.starts_with("reviewguard_reviews_rejected_total{"))
                .collect::<Vec<_>>()
        );
    }

    // The DLQ holds exactly the invalid messages, each with its own reason and
    // its original bytes.
    let dlq = read_all(&broker.addr, "reviewguard.dlq", PARTITIONS);
    assert_eq!(dlq.len(), invalid.len(), "dead letters");
    let mut expected: HashMap<Vec<u8>, Vec<&'static str>> = HashMap::new();
    for m in &invalid {
        expected
            .entry(m.bytes.clone())
            .or_default()
            .push(m.reason.unwrap_or_default());
    }
    // Each dead letter names the message it holds: the input message at its
    // partition and offset has its bytes, key and timestamp.
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let inputs: HashMap<(i64, i64), _> = read_all(&broker.addr, "reviews.food", PARTITIONS)
        .into_iter()
        .map(|m| ((i64::from(m.partition()), m.offset()), m))
        .collect();
    for d in &dlq {
        let rec: serde_json::Value = serde_json::from_slice(d.payload().unwrap()).unwrap();
        let mut original = base64::engine::general_purpose::STANDARD
            .decode(rec["payload_base64"].as_str().unwrap())
            .unwrap();
        let at = (
            rec["partition"].as_i64().unwrap(),
            rec["offset"].as_i64().unwrap(),
        );
        let input = inputs
            .get(&at)
            .unwrap_or_else(|| panic!("a dead letter naming no input message: {rec}"));
        let input_bytes = input.payload().unwrap_or_default();
        assert_eq!(
            input_bytes.len() as u64,
            rec["payload_bytes"].as_u64().unwrap(),
            "{rec}"
        );
        assert!(input_bytes.starts_with(&original), "{rec}");
        assert_eq!(
            rec["key_base64"].as_str(),
            input.key().map(b64).as_deref(),
            "{rec}"
        );
        assert_eq!(
            rec["timestamp_ms"].as_i64(),
            input.timestamp().to_millis(),
            "{rec}"
        );
        if rec["payload_truncated"] == true {
            // The first bytes only: find the message they begin.
            let full = expected
                .keys()
                .find(|k| {
                    k.len() == rec["payload_bytes"].as_u64().unwrap() as usize
                        && k.starts_with(&original)
                })
                .unwrap_or_else(|| {
                    panic!(
                        "a truncated dead letter of no message sent: {}",
                        rec["payload_bytes"]
                    )
                })
                .clone();
            assert!(original.len() < full.len());
            original = full;
        }
        let reasons = expected
            .get_mut(&original)
            .unwrap_or_else(|| panic!("a dead letter for a message not sent as invalid: {rec}"));
        let want = reasons
            .pop()
            .unwrap_or_else(|| panic!("dead-lettered twice: {rec}"));
        assert_eq!(rec["reason"], want, "{rec}");
        assert_eq!(rec["topic"], "reviews.food");
        assert!(rec["offset"].as_i64().unwrap() >= 0);
        assert!(!rec["error"].as_str().unwrap().contains(DLQ_MARKER));
    }

    // Reviews after the barrage are still processed and flagged: the two
    // illness reports with photos end in a high-severity flag (the first alone may
    // already raise a lower one, depending on the model).
    let is_high_after =
        |v: &serde_json::Value| v["business_id"] == "shop-after" && v["severity"] == "high";
    let flags = wait_for("the follow-up flag", Duration::from_secs(30), || {
        let flags = read_all(&broker.addr, "inspection.food", PARTITIONS);
        flags
            .iter()
            .any(|f| {
                let v: serde_json::Value = serde_json::from_slice(f.payload().unwrap()).unwrap();
                is_high_after(&v)
            })
            .then_some(flags)
    });
    let flag: serde_json::Value = flags
        .iter()
        .map(|f| serde_json::from_slice::<serde_json::Value>(f.payload().unwrap()).unwrap())
        .find(is_high_after)
        .unwrap();
    assert_eq!(flag["evidence"][0]["signals"][0], "illness", "{flag}");
    let flag_text = flag.to_string();
    assert!(
        !flag_text.contains(REVIEWER_MARKER),
        "a reviewer id in a flag"
    );

    let peak_hwm = rss_kib(pid, "VmHWM:").unwrap_or(0);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let peak = peak_sampled.load(Ordering::Relaxed).max(peak_hwm);
    assert!(svc.terminate().success(), "{}", svc.log());

    // Figures for the record.
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &msgs {
        *kinds.entry(m.kind).or_default() += 1;
    }
    kinds.insert("follow-up illness reports", after.len());
    eprintln!("hostile barrage, messages by kind:");
    for (k, n) in &kinds {
        eprintln!("  {n:5}  {k}");
    }
    eprintln!(
        "consumed {consumed}, rejected {rejected}, scored {scored}; rejects by reason {want_reasons:?}"
    );
    eprintln!(
        "peak RSS {:.1} MiB (VmHWM {:.1} MiB, {samples} samples of VmRSS)",
        peak as f64 / 1024.0,
        peak_hwm as f64 / 1024.0
    );
    assert!(
        peak < 256 * 1024,
        "peak RSS {peak} KiB: memory is not bounded"
    );

    // No review text, reviewer id or DLQ payload in the logs, while debug
    // logging was really on.
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    assert!(
        stderr.contains("DEBUG") && stderr.contains("rejected"),
        "debug logging was not on: {}",
        &stderr[..stderr.len().min(2000)]
    );
    for (what, marker) in [
        ("review text", TEXT_MARKER),
        ("reviewer id", REVIEWER_MARKER),
        ("DLQ payload", DLQ_MARKER),
        ("pseudonym key", "hostile-key-hostile-key"),
    ] {
        for (stream, text) in [("stderr", &stderr), ("stdout", &stdout)] {
            let line = text.lines().find(|l| l.contains(marker));
            assert!(line.is_none(), "{what} leaked to {stream}: {line:?}");
        }
    }
    assert!(
        !stderr.contains("payload_base64"),
        "a dead letter in the log"
    );
}
