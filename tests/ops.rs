//! Operations, checked without a container engine: the compose file, the
//! Prometheus configuration and alert rules, a live scrape linted by promtool,
//! and a real Prometheus server scraping a running instance while the
//! dashboard's own queries are run against it. Needs `docker-compose`,
//! `promtool` and `prometheus` (scripts/test.sh installs them).

mod common;

use common::*;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn tool(name: &str) -> Command {
    let mut c = Command::new(name);
    c.current_dir(ROOT);
    c
}

fn check(out: std::io::Result<std::process::Output>, what: &str) -> String {
    let out =
        out.unwrap_or_else(|e| panic!("{what}: cannot run it ({e}); scripts/test.sh installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn compose_file_is_valid() {
    check(
        tool("docker-compose")
            .args(["config", "-q"])
            .env(
                "REVIEWGUARD_PRIVACY_PSEUDONYM_KEY",
                "ci-only-key-ci-only-key",
            )
            .output(),
        "docker-compose config -q",
    );
}

#[test]
fn prometheus_config_and_rules_are_valid() {
    check(
        tool("promtool")
            .args(["check", "config", "config/prometheus/prometheus.yml"])
            .output(),
        "promtool check config",
    );
    check(
        tool("promtool")
            .args(["check", "rules", "config/prometheus/alerts.yml"])
            .output(),
        "promtool check rules",
    );
}

/// The PromQL expressions of the Grafana dashboard.
fn dashboard_queries() -> Vec<(String, String)> {
    let d: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/config/grafana/dashboards/reviewguard.json"))
            .unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push((
                p["title"].as_str().unwrap().to_owned(),
                t["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// Metric names (`reviewguard_...`) used in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("reviewguard_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn prom_query(addr: &str, q: &str) -> Option<serde_json::Value> {
    let (status, body) = http_get(addr, &format!("/api/v1/query?query={}", percent_encode(q)))?;
    if status != 200 {
        return None;
    }
    // The body may be chunked; the JSON object is between the first '{' and the last '}'.
    let (a, b) = (body.find('{')?, body.rfind('}')?);
    let v: serde_json::Value = serde_json::from_str(&body[a..=b]).ok()?;
    (v["status"] == "success").then(|| v["data"]["result"].clone())
}

#[test]
fn a_live_scrape_passes_promtool_and_the_dashboard_queries_return_data() {
    let broker = Broker::start();
    broker.create_topics(2);
    let dir = tempfile::tempdir().unwrap();
    let mut svc = Service::start(&broker.addr, "rg-ops", dir.path(), &[]);
    svc.wait_ready(Duration::from_secs(60));
    // The desk beside it, every open flag overdue at once.
    let desk = common::desk::DeskProc::start_with(
        &broker.addr,
        dir.path().join("desk.sqlite").to_str().unwrap(),
        dir.path(),
        &[("REVIEWGUARD_DESK_OVERDUE_HOURS", "0")],
    );
    desk.add_user("li", "inspector", &["310105"]);

    // A real Prometheus server scraping the instance every second.
    let prom_port = free_port();
    let prom_addr = format!("127.0.0.1:{prom_port}");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: reviewguard\n    static_configs:\n      - targets: [\"{}\"]\n  - job_name: reviewguard-desk\n    static_configs:\n      - targets: [\"{}\"]\n",
            svc.metrics_addr, desk.addr
        ),
    )
    .unwrap();
    let prom_log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(Stdio::null())
        .stderr(prom_log)
        .spawn()
        .expect("cannot start prometheus; scripts/test.sh installs it");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = {
        wait_for(
            "prometheus to scrape the instance",
            Duration::from_secs(60),
            || {
                if let Ok(Some(s)) = prom.try_wait() {
                    panic!("prometheus exited: {s}");
                }
                let r = prom_query(&prom_addr, "up{job=\"reviewguard\"} == 1")?;
                (!r.as_array()?.is_empty()).then_some(())
            },
        );
        Kill(prom)
    };

    // A known number of reviews, a few of them malformed.
    let w = reviewguard::offline::simulate::generate(&reviewguard::offline::simulate::SimConfig {
        seed: 21,
        businesses: 40,
        days: 30,
        ..Default::default()
    });
    for d in reviewguard::types::Domain::ALL {
        let recs: Vec<(String, Vec<u8>)> = w
            .reviews
            .iter()
            .filter(|r| r.domain == d)
            .map(|r| (r.business_id.clone(), serde_json::to_vec(r).unwrap()))
            .collect();
        produce(&broker.addr, &format!("reviews.{d}"), &recs);
    }
    produce(
        &broker.addr,
        "reviews.food",
        &[("x".into(), b"not json".to_vec())],
    );
    let total = w.reviews.len() + 1;
    svc.wait_consumed(total as u64, Duration::from_secs(120));
    // Lag comes from librdkafka's statistics, every few seconds.
    let scrape = wait_for("consumer lag on /metrics", Duration::from_secs(30), || {
        let m = svc.metrics()?;
        m.contains("reviewguard_consumer_lag_messages{")
            .then_some(m)
    });

    // The desk keeps a flag and an inspector records what was found.
    common::desk::produce_flags(
        &broker.addr,
        &[common::desk::flag(
            "ops-1",
            "shop-ops",
            "310105",
            reviewguard::types::Severity::High,
            0.9,
        )],
    );
    let li = common::desk::Client::login_as(&desk, "li");
    wait_for("the desk to keep the flag", Duration::from_secs(60), || {
        li.get_json("/api/flags/ops-1")["status"]
            .as_str()
            .map(|_| ())
    });
    let r = li.post(
        "/api/outcomes",
        &serde_json::json!({"business_id": "shop-x", "domain": "food", "region": "310105",
                            "inspected_at": common::desk::now_beijing(), "outcome": 1}),
    );
    assert_eq!(r.status(), 201);
    let desk_scrape = desk.metrics();

    // promtool lints the live scrapes.
    for scrape in [&scrape, &desk_scrape] {
        let mut child = tool("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(scrape.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let lint = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && lint.trim().is_empty(),
            "promtool check metrics:\n{lint}"
        );
    }

    // Every metric the dashboard and the alerts use exists in the scrape.
    let mut exposed = metric_names(&scrape);
    exposed.extend(metric_names(&desk_scrape));
    let mut used = BTreeSet::new();
    for (_, q) in dashboard_queries() {
        used.extend(metric_names(&q));
    }
    used.extend(metric_names(
        &std::fs::read_to_string(format!("{ROOT}/config/prometheus/alerts.yml")).unwrap(),
    ));
    let missing: Vec<_> = used.difference(&exposed).collect();
    assert!(
        missing.is_empty(),
        "used by the dashboard or alerts but not exposed: {missing:?}"
    );

    // Prometheus has seen all of it, then each panel's query returns data.
    wait_for(
        "prometheus to see every review",
        Duration::from_secs(60),
        || {
            let r = prom_query(&prom_addr, "sum(reviewguard_reviews_consumed_total)")?;
            let v: f64 = r.get(0)?["value"][1].as_str()?.parse().ok()?;
            (v as usize == total).then_some(())
        },
    );
    for (title, q) in dashboard_queries() {
        let result = wait_for(
            &format!("data for panel {title:?}: {q}"),
            Duration::from_secs(30),
            || {
                let r = prom_query(&prom_addr, &q)?;
                let rows = r.as_array()?;
                let has_number = rows.iter().any(|row| {
                    row["value"][1]
                        .as_str()
                        .and_then(|v| v.parse::<f64>().ok())
                        .is_some_and(f64::is_finite)
                });
                has_number.then_some(rows.len())
            },
        );
        assert!(result > 0);
    }
    assert!(svc.terminate().success());
}
