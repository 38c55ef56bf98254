//! The desk under load: 10,000 flags ingested (decoded and stored, as the
//! consumer does), then 20 inspectors, each a concurrent client with its
//! own session, opening the open-flags page over and over. Prints the
//! ingest rate and the page's latency percentiles, beside `/healthz`
//! under the same concurrency in the same run (what the HTTP stack alone
//! costs), and the JSON list. Target: the page's p99 ≤ 100 ms.
//!
//! `cargo bench --bench desk`. `DESK_FLAGS` sets the flags (default
//! 10,000), `DESK_USERS` the concurrent inspectors (default 20),
//! `DESK_REQUESTS` each one's requests per endpoint (default 100);
//! `DESK_PARTS` first times the store's parts of a page alone.

#[path = "../tests/common/mod.rs"]
mod common;

use reviewguard::core::flag::Flag;
use reviewguard::desk::config::DeskConfig;
use reviewguard::desk::store::{Role, Store, User, now_ms};
use reviewguard::desk::{Desk, auth, ingest};
use reviewguard::types::{Domain, Severity};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const REGIONS: usize = 16;

fn flag(i: usize) -> Flag {
    let severity = match i % 10 {
        0 => Severity::High,
        1..=3 => Severity::Medium,
        _ => Severity::Low,
    };
    // About three flags per business.
    let mut f = common::desk::flag(
        &format!("flag-{i:06}"),
        &format!("shop-{:05}", i / 3),
        &format!("3101{:02}", (i / 3) % REGIONS),
        severity,
        0.5 + (i % 97) as f64 / 200.0,
    );
    if i % 3 == 0 {
        f.domain = Domain::Tourism;
    }
    f.evidence = vec![f.evidence[0].clone(); 3];
    f
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn load(clients: &[(reqwest::Client, String)], path: &str, requests: usize) -> Vec<Duration> {
    let mut tasks = Vec::new();
    for (c, base) in clients {
        let (c, url) = (c.clone(), format!("{base}{path}"));
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                let r = c.get(&url).send().await.expect("request");
                assert!(r.status().is_success(), "{url}: {}", r.status());
                let body = r.bytes().await.expect("body");
                assert!(!body.is_empty());
                took.push(t.elapsed());
            }
            took
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all.sort();
    all
}

fn main() {
    let flags = env("DESK_FLAGS", 10_000);
    let users = env("DESK_USERS", 20);
    let requests = env("DESK_REQUESTS", 100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("desk.sqlite").to_str().expect("path"))
            .await
            .expect("store");
        let desk = Desk::new(store.clone(), DeskConfig::default(), Vec::new());

        // Ingest: each message decoded and stored as the consumer does it.
        let messages: Vec<Vec<u8>> = (0..flags)
            .map(|i| serde_json::to_vec(&flag(i)).expect("json"))
            .collect();
        let t = Instant::now();
        for m in &messages {
            ingest::keep(&desk, m).await.expect("keep");
        }
        let ingest = t.elapsed();

        // Inspectors of one region each (the regions in turn).
        let hash = auth::hash_password("bench-password-1").expect("hash");
        for u in 0..users {
            store
                .add_user(
                    &User {
                        name: format!("inspector{u}"),
                        role: Role::Inspector,
                        regions: vec![format!("3101{:02}", u % REGIONS)],
                        password_hash: hash.clone(),
                        pseudonym: auth::pseudonym(),
                    },
                    false,
                    now_ms(),
                )
                .await
                .expect("user");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(reviewguard::desk::web::serve(desk.clone(), listener, stop_rx));
        let base = format!("http://{addr}");
        let mut clients = Vec::new();
        for u in 0..users {
            let c = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let r = c
                .post(format!("{base}/login"))
                .form(&[("username", format!("inspector{u}")), ("password", "bench-password-1".into())])
                .send()
                .await
                .expect("login");
            assert_eq!(r.status(), 200);
            clients.push((c, base.clone()));
        }
        if std::env::var("DESK_PARTS").is_ok() {
            use reviewguard::desk::store::{Scope, StatusFilter};
            let scope = Scope::Regions(vec!["310100".into()]);
            let t = Instant::now();
            for _ in 0..50 {
                store.open_by_business(&scope, 50, 0).await.expect("list");
            }
            println!("open_by_business (50): {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / 50.0);
            let t = Instant::now();
            for _ in 0..50 {
                store.flags(&scope, StatusFilter::Open, reviewguard::desk::store::Order::HighestRisk, 200, 0).await.expect("list");
            }
            println!("flags 200 with bodies: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / 50.0);
            let t = Instant::now();
            for _ in 0..50 {
                store.execute_raw("SELECT COUNT(*) FROM flags WHERE status = 'open' AND region = '310100'").await.expect("count");
            }
            println!("count: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / 50.0);
            let t = Instant::now();
            for _ in 0..50 {
                store.session("nope", now_ms()).await.expect("session");
            }
            println!("session: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / 50.0);
            let t = Instant::now();
            for _ in 0..50 {
                store.audit("x", "view_flags", None, "", now_ms()).await.expect("audit");
            }
            println!("audit: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / 50.0);
        }
        // Warm up, then each endpoint in turn under the same concurrency.
        load(&clients, "/flags", 5).await;
        let health = load(&clients, "/healthz", requests).await;
        let page = load(&clients, "/flags", requests).await;
        let api = load(&clients, "/api/flags?status=open", requests).await;
        let per_region = flags / REGIONS;
        println!(
            "desk: {flags} flags ingested in {:.2} s ({:.0} flags/s); {users} inspectors, {requests} requests each, about {per_region} flags per region",
            ingest.as_secs_f64(),
            flags as f64 / ingest.as_secs_f64()
        );
        println!("{:<28} {:>9} {:>9} {:>9} {:>12}", "endpoint", "p50 ms", "p99 ms", "max ms", "p99 / health");
        let h99 = percentile(&health, 0.99).as_secs_f64();
        for (name, d) in [("/healthz (baseline)", &health), ("/flags (open-flags page)", &page), ("/api/flags?status=open", &api)] {
            let p99 = percentile(d, 0.99).as_secs_f64();
            println!(
                "{name:<28} {:>9.2} {:>9.2} {:>9.2} {:>12.1}",
                percentile(d, 0.5).as_secs_f64() * 1e3,
                p99 * 1e3,
                d.last().map_or(0.0, |x| x.as_secs_f64() * 1e3),
                p99 / h99.max(1e-9)
            );
        }
        let p99 = percentile(&page, 0.99);
        println!(
            "target: open-flags page p99 <= 100 ms at {users} concurrent inspectors: {}",
            if p99 <= Duration::from_millis(100) { "met" } else { "NOT met" }
        );
        drop(desk);
    });
}
