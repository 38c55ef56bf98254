use super::*;

#[test]
fn auc_and_lift_on_known_cases() {
    let y = [true, true, false, false];
    assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &y), 1.0);
    assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &y), 0.0);
    assert_eq!(roc_auc(&[0.5; 4], &y), 0.5);
    let scores: Vec<f64> = (0..100).map(|i| f64::from(100 - i)).collect();
    let y: Vec<bool> = (0..100).map(|i| i < 10 || i % 10 == 5).collect();
    let m = metrics(&scores, &y);
    assert_eq!(m.precision_at_10pct, 1.0);
    assert!((m.lift_at_10pct - 1.0 / m.base_rate).abs() < 1e-9);
}

#[test]
fn inspections_csv_errors_name_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("i.csv");
    std::fs::write(&p, "business_id,domain,inspected_at,outcome,inspector\nb1,food,2026-03-01,1,x\nb2,food,yesterday,0,y\n").unwrap();
    let e = read_inspections(&p).unwrap_err().to_string();
    assert!(e.contains(":3:") && e.contains("inspected_at"), "{e}");
    std::fs::write(&p, "business_id,domain,inspected_at,outcome\nb1,food,2026-03-01,1\nb2,tourism,2026-03-02T10:00:00+08:00,0\n").unwrap();
    let rows = read_inspections(&p).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].outcome && !rows[1].outcome);
}

#[test]
fn features_never_see_the_future() {
    let ex = Extractor::builtin().unwrap();
    let mk = |id: &str, t: &str, text: &str| {
        review::decode(
            serde_json::json!({"review_id": id, "business_id": "b", "domain": "food", "text": text, "created_at": t})
                .to_string()
                .as_bytes(),
            &DecodeOptions::default(),
        )
        .unwrap()
    };
    let reviews = vec![
        mk("1", "2026-03-01T10:00:00+08:00", "拉肚子"),
        mk("2", "2026-03-03T10:00:00+08:00", "拉肚子"),
    ];
    let insp = vec![InspectionRow {
        business_id: "b".into(),
        domain: Domain::Food,
        inspected_at: parse_time("2026-03-02").unwrap(),
        outcome: true,
    }];
    let rows = point_in_time_features(
        &reviews,
        &insp,
        Domain::Food,
        &ex,
        true,
        &ProgressBar::hidden(),
    );
    let names = features::feature_names(Domain::Food);
    let ill = names.iter().position(|n| n == "illness_30d").unwrap();
    let x = &rows.x;
    assert!(x[0][ill] > 0.9 && x[0][ill] < 1.0, "{}", x[0][ill]);
}

/// A second inspection sees the first one's outcome (with the history on)
/// and never its own.
#[test]
fn history_features_see_earlier_inspections_only() {
    let ex = Extractor::builtin().unwrap();
    let row = |b: &str, day: &str, outcome| InspectionRow {
        business_id: b.into(),
        domain: Domain::Food,
        inspected_at: parse_time(day).unwrap(),
        outcome,
    };
    let insp = vec![row("b", "2026-03-01", true), row("b", "2026-03-11", false)];
    let names = features::feature_names(Domain::Food);
    let col = |n: &str| names.iter().position(|x| x == n).unwrap();
    let rows = point_in_time_features(&[], &insp, Domain::Food, &ex, true, &ProgressBar::hidden());
    assert_eq!(rows.x[0][col("days_since_inspection")], 365.0);
    assert_eq!(rows.x[0][col("last_inspection_violation")], 0.0);
    assert_eq!(rows.x[1][col("days_since_inspection")], 10.0);
    assert_eq!(rows.x[1][col("last_inspection_violation")], 1.0);
    assert_eq!(rows.x[1][col("violations_365d")], 1.0);
    let without =
        point_in_time_features(&[], &insp, Domain::Food, &ex, false, &ProgressBar::hidden());
    assert_eq!(without.x[1][col("days_since_inspection")], 365.0);
}

#[test]
fn folds_are_time_ordered_and_expanding() {
    assert_eq!(
        time_folds(100, 4),
        vec![(20, 40), (40, 60), (60, 80), (80, 100)]
    );
    for (fit_end, val_end) in time_folds(37, 3) {
        assert!(0 < fit_end && fit_end < val_end && val_end <= 37);
    }
}

#[test]
fn thresholds_aim_at_inspection_yields() {
    // Scores 0.00..0.99; violations exactly where the score is at least 0.6.
    let scores: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
    let y: Vec<bool> = scores.iter().map(|s| *s >= 0.6).collect();
    let t = thresholds_from(&scores, &y);
    assert!(t.low <= t.medium && t.medium <= t.high, "{t:?}");
    // Everything above 0.6 found violations: 65% of the 61 above 0.39.
    assert!(t.low < 0.6 && t.low > 0.35, "{t:?}");
    assert!(t.high <= 0.6 + 1e-9, "{t:?}");
}

/// A prior is a scorecard of the domain being trained; another domain's
/// model is refused with a message naming both.
#[test]
fn a_prior_must_be_a_scorecard_of_the_domain() {
    let food = crate::core::model::Model::builtin(Domain::Food).unwrap();
    let p = Prior::of(&food, Domain::Food).unwrap();
    assert!(p.label.starts_with("food "), "{}", p.label);
    let e = Prior::of(&food, Domain::Tourism).unwrap_err().to_string();
    assert!(e.contains("food model, not tourism"), "{e}");
}
