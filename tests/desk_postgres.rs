//! The desk's store on a real PostgreSQL server (scripts/test.sh starts
//! one and sets REVIEWGUARD_TEST_POSTGRES_URL): the same contract as on
//! SQLite, and two desk instances serving one city from one store.

mod common;

use common::desk::*;
use common::*;
use reviewguard::desk::store::{Order, OutcomeRow, Recorded, Scope, StatusFilter, Store};
use reviewguard::types::Severity;
use serde_json::json;
use sqlx::Connection as _;
use std::time::Duration;

/// A fresh, empty database on the test server; its URL.
fn database() -> String {
    let url = std::env::var("REVIEWGUARD_TEST_POSTGRES_URL").expect(
        "REVIEWGUARD_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts PostgreSQL",
    );
    let name = format!("rg_{}_{}", std::process::id(), free_port());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&url)
            .await
            .expect("cannot reach the test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
    });
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn outcome(id: &str, flag: Option<&str>) -> OutcomeRow {
    OutcomeRow {
        outcome_id: id.into(),
        flag_id: flag.map(str::to_owned),
        business_id: "shop".into(),
        domain: "food".into(),
        region: "310105".into(),
        inspected_at: "2026-11-02T10:00:00+08:00".into(),
        violation: true,
        categories: vec!["hygiene".into()],
        note: "<script>x</script>".into(),
        inspector: "insp-1".into(),
        recorded_by: "li".into(),
        recorded_at: "2026-11-02T10:05:00+08:00".into(),
        recorded_ms: 1,
        message: "{}".into(),
        published_ms: None,
    }
}

#[test]
fn the_store_keeps_its_contract_on_postgresql() {
    let url = database();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = Store::open(&url).await.unwrap();
        let f = flag("p1", "shop", "310105", Severity::High, 0.9);
        let body = serde_json::to_string(&f).unwrap();
        assert!(s.insert_flag(&f, &body, 1).await.unwrap());
        assert!(
            !s.insert_flag(&f, &body, 2).await.unwrap(),
            "a flag delivered twice is one row"
        );
        let g = flag("p2", "shop2", "310106", Severity::Low, 0.4);
        s.insert_flag(&g, &serde_json::to_string(&g).unwrap(), 3)
            .await
            .unwrap();
        let mine = s
            .flags(
                &Scope::Regions(vec!["310105".into()]),
                StatusFilter::Open,
                Order::HighestRisk,
                10,
                0,
            )
            .await
            .unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].flag_id, "p1");
        let mut again = flag("p3", "shop", "310105", Severity::Medium, 0.7);
        again.business_id = f.business_id.clone();
        s.insert_flag(&again, &serde_json::to_string(&again).unwrap(), 4)
            .await
            .unwrap();
        let grouped = s.open_by_business(&Scope::All, 10, 0).await.unwrap();
        let got: Vec<(&str, i64)> = grouped
            .iter()
            .map(|(f, n)| (f.flag_id.as_str(), *n))
            .collect();
        assert_eq!(got, [("p1", 2), ("p2", 1)]);
        assert!(matches!(
            s.record_outcome(&outcome("o1", Some("p1"))).await.unwrap(),
            Recorded::Stored(..)
        ));
        assert_eq!(s.flag("p3").await.unwrap().unwrap().status, "inspected");
        assert_eq!(
            s.record_outcome(&outcome("o2", Some("p1"))).await.unwrap(),
            Recorded::AlreadyInspected("o1".into())
        );
        assert_eq!(
            s.outcome_of_flag("p1").await.unwrap().unwrap().note,
            "<script>x</script>"
        );
        // Leased once at a time.
        assert!(s.lease_outcome("o1", 10, 1000).await.unwrap());
        assert!(!s.lease_outcome("o1", 20, 1000).await.unwrap());
        assert!(s.unpublished(10, 20).await.unwrap().is_empty());
        s.audit("li", "view_flag", Some("p1"), "", 5).await.unwrap();
        for sql in [
            "UPDATE audit SET actor = 'x'",
            "DELETE FROM audit",
            "TRUNCATE audit",
        ] {
            assert!(s.execute_raw(sql).await.is_err(), "{sql} must be refused");
        }
        assert_eq!(s.audit_log(0, 10).await.unwrap().len(), 1);
        s.close().await;
        // Reopened: migrations are not applied twice.
        let s = Store::open(&url).await.unwrap();
        assert_eq!(s.schema_version().await.unwrap(), 1);
        assert!(s.flag("p2").await.unwrap().is_some());
    });
}

#[test]
fn two_desks_serve_one_city_from_one_postgresql_store() {
    let url = database();
    let broker = Broker::start();
    broker.create_topics(2);
    let dir = tempfile::tempdir().unwrap();
    let a = DeskProc::start(&broker.addr, &url, dir.path());
    let b = DeskProc::start(&broker.addr, &url, dir.path());
    a.add_user("li", "inspector", &["310105"]);
    let flags: Vec<_> = (0..6)
        .map(|i| {
            flag(
                &format!("pg-{i}"),
                &format!("shop-{i}"),
                "310105",
                Severity::Medium,
                0.6,
            )
        })
        .collect();
    produce_flags(&broker.addr, &flags);
    produce_flags(&broker.addr, &flags[..2]);
    let on_a = Client::login_as(&a, "li");
    let on_b = Client::login_as(&b, "li");
    wait_for("six flags, kept once each", Duration::from_secs(90), || {
        (on_b.flag_ids("/api/flags").len() == 6).then_some(())
    });
    // Recorded through one desk, seen through the other; sent once.
    let r = on_a.post(
        "/api/flags/pg-3/outcome",
        &json!({"inspected_at": now_beijing(), "outcome": 1, "categories": ["spoilage"]}),
    );
    assert_eq!(r.status(), 201);
    assert_eq!(on_b.get_json("/api/flags/pg-3")["status"], "inspected");
    assert_eq!(
        on_b.post("/api/flags/pg-3/dismiss", &json!({"reason": "x"}))
            .status(),
        409
    );
    consume_until(
        &broker.addr,
        &["inspection.outcomes"],
        Duration::from_secs(60),
        |m| !m.is_empty(),
    );
    wait_for("the outcome marked sent", Duration::from_secs(30), || {
        (metric(&b.metrics(), "reviewguard_desk_outcomes_unpublished", &[]) == 0.0).then_some(())
    });
    assert_eq!(read_all(&broker.addr, "inspection.outcomes", 2).len(), 1);
    // The CSV from the shared store.
    let csv = dir.path().join("i.csv");
    assert!(
        b.cli(&["outcomes", "export", "--out", csv.to_str().unwrap()])
            .contains("wrote 1 outcomes")
    );
}
