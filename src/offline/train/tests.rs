use super::*;

#[test]
fn negative_weight_sums_never_reach_an_integer() {
    // linfa-trees' weighted count of n "no violation" rows, summed in f32
    // as linfa does: strictly between n and n + 1 for every n it allows.
    let mut s = 0.0f32;
    for n in 1..=MAX_TIE_FREE_ROWS {
        s += NEGATIVE_ROW_WEIGHT;
        let (lo, hi) = (n as f64, n as f64 + 1.0);
        assert!(
            f64::from(s) > lo && f64::from(s) < hi,
            "{n} rows sum to {s}"
        );
    }
}

#[test]
fn an_even_split_is_labelled_no_violation_every_time() {
    // One node, as many rows of each class: unweighted, linfa-trees labels
    // it by HashMap order (a new random seed per fit); weighted, it is
    // always "no violation".
    use linfa_trees::DecisionTree;
    let x = Array2::from_shape_vec((8, 1), vec![0.0; 8]).unwrap();
    let y = Array1::from(vec![true, false, true, false, true, false, true, false]);
    for _ in 0..64 {
        let d = tie_free_weights(Dataset::new(x.clone(), y.clone())).unwrap();
        let tree = DecisionTree::params().max_depth(Some(1)).fit(&d).unwrap();
        assert_eq!(tree.predict(&x).to_vec(), vec![false; 8]);
    }
}

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
    let (x, _, _) =
        point_in_time_features(&reviews, &insp, Domain::Food, &ex, &ProgressBar::hidden());
    let names = features::feature_names(Domain::Food);
    let ill = names.iter().position(|n| n == "illness_30d").unwrap();
    assert!(x[0][ill] > 0.9 && x[0][ill] < 1.0, "{}", x[0][ill]);
}
