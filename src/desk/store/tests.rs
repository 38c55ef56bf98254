use super::*;
use crate::core::flag::{Flag, ModelRef};
use crate::types::{Domain, Severity};

pub(crate) fn flag(id: &str, region: &str, severity: Severity, score: f64) -> Flag {
    Flag {
        schema_version: 1,
        flag_id: id.into(),
        domain: Domain::Food,
        business_id: format!("shop-{id}"),
        business_name: Some(format!("店 {id}")),
        region: Some(region.into()),
        risk_score: score,
        severity,
        trigger: "model".into(),
        model: ModelRef {
            name: "food".into(),
            version: "1".into(),
            sha256: "00".into(),
        },
        reasons: Vec::new(),
        features: Default::default(),
        evidence: Vec::new(),
        reviews_considered: 3,
        event_time: "2026-11-01T00:00:00Z".into(),
        emitted_at: String::new(),
    }
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.sqlite");
    let s = Store::open(path.to_str().unwrap()).await.unwrap();
    (dir, s)
}

fn outcome(id: &str, flag: Option<&str>, region: &str, violation: bool) -> OutcomeRow {
    OutcomeRow {
        outcome_id: id.into(),
        flag_id: flag.map(str::to_owned),
        business_id: "shop".into(),
        domain: "food".into(),
        region: region.into(),
        inspected_at: "2026-11-02T10:00:00+08:00".into(),
        violation,
        categories: vec!["hygiene".into()],
        note: String::new(),
        inspector: "insp-1".into(),
        recorded_by: "li".into(),
        recorded_at: "2026-11-02T10:05:00+08:00".into(),
        recorded_ms: 1,
        message: "{}".into(),
        published_ms: None,
    }
}

#[tokio::test]
async fn a_flag_delivered_twice_is_one_row() {
    let (_d, s) = store().await;
    let f = flag("a", "310105", Severity::High, 0.9);
    assert!(s.insert_flag(&f, "{}", 1).await.unwrap());
    assert!(!s.insert_flag(&f, "{}", 2).await.unwrap());
    let all = s
        .flags(&Scope::All, StatusFilter::All, Order::Newest, 100, 0)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].received_ms, 1);
}

#[tokio::test]
async fn an_inspector_lists_only_their_regions_highest_risk_first() {
    let (_d, s) = store().await;
    for (id, region, sev, score) in [
        ("a", "310105", Severity::Low, 0.3),
        ("b", "310105", Severity::High, 0.8),
        ("c", "310106", Severity::High, 0.95),
        ("d", "310105", Severity::High, 0.9),
    ] {
        s.insert_flag(&flag(id, region, sev, score), "{}", 1)
            .await
            .unwrap();
    }
    let scope = Scope::Regions(vec!["310105".into()]);
    let ids: Vec<String> = s
        .flags(&scope, StatusFilter::Open, Order::HighestRisk, 100, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.flag_id)
        .collect();
    assert_eq!(ids, ["d", "b", "a"]);
    assert!(
        s.flags(
            &Scope::Regions(vec![]),
            StatusFilter::All,
            Order::Newest,
            100,
            0
        )
        .await
        .unwrap()
        .is_empty()
    );
}

#[tokio::test]
async fn an_outcome_closes_its_flag_once() {
    let (_d, s) = store().await;
    s.insert_flag(&flag("a", "310105", Severity::High, 0.9), "{}", 1)
        .await
        .unwrap();
    let first = s
        .record_outcome(&outcome("o1", Some("a"), "310105", true))
        .await
        .unwrap();
    assert!(matches!(first, Recorded::Stored(..)));
    assert_eq!(s.flag("a").await.unwrap().unwrap().status, "inspected");
    let again = s
        .record_outcome(&outcome("o2", Some("a"), "310105", false))
        .await
        .unwrap();
    assert_eq!(again, Recorded::AlreadyInspected("o1".into()));
    assert_eq!(
        s.record_outcome(&outcome("o3", Some("zz"), "310105", false))
            .await
            .unwrap(),
        Recorded::NoSuchFlag
    );
    // A routine inspection has no flag.
    assert!(matches!(
        s.record_outcome(&outcome("o4", None, "310105", false))
            .await
            .unwrap(),
        Recorded::Stored(..)
    ));
    let y = s.yields(&Scope::All, 0).await.unwrap();
    assert_eq!((y.flagged, y.flagged_violations, y.routine), (1, 1, 1));
    assert_eq!(s.unpublished_count().await.unwrap(), 2);
    s.mark_published("o1", 5).await.unwrap();
    let left: Vec<String> = s
        .unpublished(10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.outcome_id)
        .collect();
    assert_eq!(left, ["o4"]);
}

#[tokio::test]
async fn the_audit_log_cannot_be_changed_or_emptied() {
    let (_d, s) = store().await;
    s.audit("li", "view_flag", Some("a"), "", 1).await.unwrap();
    assert!(s.execute_raw("UPDATE audit SET actor = 'x'").await.is_err());
    assert!(s.execute_raw("DELETE FROM audit").await.is_err());
    let log = s.audit_log(0, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].actor, "li");
}

#[tokio::test]
async fn reopening_keeps_the_schema_and_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.sqlite");
    let p = path.to_str().unwrap();
    let s = Store::open(p).await.unwrap();
    s.insert_flag(&flag("a", "310105", Severity::High, 0.9), "{}", 1)
        .await
        .unwrap();
    s.close().await;
    let s = Store::open(p).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), migrations::latest());
    assert!(s.flag("a").await.unwrap().is_some());
}

#[tokio::test]
async fn a_missing_folder_is_named() {
    let e = Store::open("/nonexistent-dir-rg/desk.sqlite")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent-dir-rg"), "{e}");
}

#[tokio::test]
async fn a_business_is_listed_once_and_its_inspection_closes_all_its_flags() {
    let (_d, s) = store().await;
    let mut older = flag("a1", "310105", Severity::Low, 0.5);
    older.business_id = "shop-x".into();
    let mut newer = flag("a2", "310105", Severity::High, 0.9);
    newer.business_id = "shop-x".into();
    for f in [&older, &newer, &flag("b", "310105", Severity::Medium, 0.7)] {
        s.insert_flag(f, "{}", 1).await.unwrap();
    }
    let rows = s.open_by_business(&Scope::All, 10, 0).await.unwrap();
    let got: Vec<(&str, i64)> = rows.iter().map(|(f, n)| (f.flag_id.as_str(), *n)).collect();
    assert_eq!(got, [("a2", 2), ("b", 1)]);
    let mut o = outcome("o1", Some("a2"), "310105", true);
    o.business_id = "shop-x".into();
    match s.record_outcome(&o).await.unwrap() {
        Recorded::Stored(closed) => assert_eq!(closed, ["a1"]),
        other => panic!("{other:?}"),
    }
    let a1 = s.flag("a1").await.unwrap().unwrap();
    assert_eq!(a1.status, "inspected");
    assert_eq!(
        s.outcome_closing(&a1).await.unwrap().unwrap().outcome_id,
        "o1"
    );
    assert_eq!(s.flag("b").await.unwrap().unwrap().status, "open");
    let rows = s.open_by_business(&Scope::All, 10, 0).await.unwrap();
    assert_eq!(rows.len(), 1);
    // A dismissal hands the business's place to its next open flag.
    let mut c1 = flag("c1", "310105", Severity::High, 0.8);
    c1.business_id = "shop-y".into();
    let mut c2 = flag("c2", "310105", Severity::Low, 0.3);
    c2.business_id = "shop-y".into();
    for f in [&c1, &c2] {
        s.insert_flag(f, "{}", 2).await.unwrap();
    }
    assert!(s.dismiss("c1", "li", 3).await.unwrap());
    let rows = s.open_by_business(&Scope::All, 10, 0).await.unwrap();
    let got: Vec<(&str, i64)> = rows.iter().map(|(f, n)| (f.flag_id.as_str(), *n)).collect();
    assert_eq!(got, [("b", 1), ("c2", 1)]);
}
