//! Webhook notifications from a running desk, to a receiver on loopback
//! that speaks HTTP: a high flag reaches WeCom, DingTalk (signed) and
//! generic hooks at once, in their robot formats; a flag delivered twice is
//! notified once; a hook that fails is retried and its failures counted;
//! low flags wait for the digest.

mod common;

use common::desk::*;
use common::*;
use reviewguard::types::Severity;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Received {
    path: String,
    body: serde_json::Value,
}

/// An HTTP receiver answering each path's first `fail` requests with 500.
fn receiver(fail: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        let mut failures = std::collections::HashMap::<String, usize>::new();
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let route = path.split('?').next().unwrap_or("").to_owned();
            let n = failures.entry(route).or_default();
            let mut s = stream;
            if *n < fail {
                *n += 1;
                let _ = s.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            }
            seen.lock().unwrap().push(Received {
                path,
                body: serde_json::from_slice(&body).unwrap_or_default(),
            });
            let ok = b"{\"errcode\":0,\"errmsg\":\"ok\"}";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                ok.len()
            );
            let _ = s.write_all(ok);
        }
    });
    (addr, got)
}

#[test]
fn a_high_flag_reaches_each_webhook_once_in_its_format() {
    let (hooks, got) = receiver(1);
    let broker = Broker::start();
    broker.create_topics(1);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("desk.sqlite");
    let webhooks = format!(
        "[{{kind = \"wecom\", url = \"http://{hooks}/wecom\", regions = [\"310105\"]}}, \
          {{kind = \"dingtalk\", url = \"http://{hooks}/ding?access_token=t\", secret = \"SECabc\"}}, \
          {{kind = \"generic\", url = \"http://{hooks}/generic\", severities = [\"high\"]}}, \
          {{kind = \"wecom\", url = \"http://{hooks}/other-region\", regions = [\"999999\"]}}]"
    );
    let desk = DeskProc::start_with(
        &broker.addr,
        store.to_str().unwrap(),
        dir.path(),
        &[
            ("REVIEWGUARD_DESK_WEBHOOKS", &webhooks),
            ("REVIEWGUARD_DESK_PUBLIC_URL", "https://desk.example.gov.cn"),
        ],
    );
    let mut high = flag("n-high", "shop-1", "310105", Severity::High, 0.95);
    high.business_name = Some("[恶意](http://x) **名字**".into());
    let low = flag("n-low", "shop-2", "310105", Severity::Low, 0.4);
    produce_flags(&broker.addr, &[high.clone(), low, high]);

    // Each matching hook once, after one failed attempt each.
    let all = wait_for("three deliveries", Duration::from_secs(60), || {
        let g = got.lock().unwrap().clone();
        (g.len() >= 3).then_some(g)
    });
    let m = desk.metrics();
    assert_eq!(
        metric(&m, "reviewguard_desk_webhook_failures_total", &[]),
        3.0
    );
    assert_eq!(metric(&m, "reviewguard_desk_webhook_sent_total", &[]), 3.0);
    let by = |p: &str| {
        all.iter()
            .filter(|r| r.path.starts_with(p))
            .cloned()
            .collect::<Vec<_>>()
    };
    let wecom = by("/wecom");
    assert_eq!(wecom.len(), 1);
    assert_eq!(wecom[0].body["msgtype"], "markdown");
    let content = wecom[0].body["markdown"]["content"].as_str().unwrap();
    assert!(
        content.contains("高风险") && content.contains("https://desk.example.gov.cn/flags/n-high"),
        "{content}"
    );
    assert!(
        !content.contains("](http://x)"),
        "a business name cannot inject a link: {content}"
    );
    let ding = by("/ding");
    assert_eq!(ding.len(), 1);
    assert!(
        ding[0].path.contains("access_token=t&timestamp=") && ding[0].path.contains("&sign="),
        "{}",
        ding[0].path
    );
    assert_eq!(ding[0].body["markdown"]["title"], "高风险预警");
    let generic = by("/generic");
    assert_eq!(generic[0].body["kind"], "flag");
    assert_eq!(generic[0].body["flags"][0]["flag_id"], "n-high");
    assert!(by("/other-region").is_empty());
    // The second delivery of the high flag was a duplicate, which is never
    // notified (only a newly stored flag is); the low flag waits for the digest.
    wait_for(
        "the desk to read all three",
        Duration::from_secs(30),
        || {
            let m = desk.metrics();
            (metric(
                &m,
                "reviewguard_desk_flags_ingested_total",
                &["result=\"duplicate\""],
            ) == 1.0)
                .then_some(())
        },
    );
    assert_eq!(got.lock().unwrap().len(), 3);
    // The desk answered throughout.
    assert_eq!(http_get(&desk.addr, "/healthz").unwrap().0, 200);
}
