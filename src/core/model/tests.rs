use super::*;

/// A logistic regression model file of format version 2 (before `kind`).
const V2_FOOD: &str = include_str!("../../../tests/fixtures/food-v2-logistic.json");

fn feature(name: &str) -> usize {
    features::feature_names(Domain::Food)
        .iter()
        .position(|n| n == name)
        .unwrap()
}

/// A hand-built food ensemble: tree 0 splits on illness_7d (<= 0.5: 0.2,
/// else 0.9; root 0.4); tree 1 on reviews_30d (<= 10: 0.5, else splits on
/// hygiene_7d: <= 1: 0.3, else 0.6; root 0.45).
fn ensemble_value() -> serde_json::Value {
    let mut f: ModelFile = serde_json::from_str(V2_FOOD).unwrap();
    f.format_version = FORMAT_VERSION;
    f.kind = ModelKind::TreeEnsemble;
    f.logistic = None;
    f.calibration = Calibration {
        slope: 1.2,
        intercept: -0.4,
    };
    let (ill, rev, hyg) = (
        feature("illness_7d") as i32,
        feature("reviews_30d") as i32,
        feature("hygiene_7d") as i32,
    );
    f.trees = Some(TreeEnsemble {
        roots: vec![0, 3],
        feature: vec![ill, -1, -1, rev, -1, hyg, -1, -1],
        threshold: vec![0.5, 0.0, 0.0, 10.0, 0.0, 1.0, 0.0, 0.0],
        left: vec![1, 0, 0, 4, 0, 6, 0, 0],
        right: vec![2, 0, 0, 5, 0, 7, 0, 0],
        value: vec![0.4, 0.2, 0.9, 0.45, 0.5, 0.4, 0.3, 0.6],
    });
    let mut v = serde_json::to_value(&f).unwrap();
    seal(&mut v);
    v
}

fn load(v: &serde_json::Value) -> Result<Model, ModelError> {
    Model::from_bytes(&serde_json::to_vec(v).unwrap(), "m.json", Domain::Food)
}

/// Deciding uses `probability`, the flag `score`: they must agree to the bit.
#[test]
fn probability_is_the_scores_probability_to_the_bit() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for d in Domain::ALL {
        let lr: serde_json::Value = serde_json::from_str(V2_FOOD).unwrap();
        let mut models = vec![Model::builtin(d).unwrap()];
        if d == Domain::Food {
            models.push(load(&lr).unwrap());
            models.push(load(&ensemble_value()).unwrap());
        }
        for m in &models {
            for _ in 0..2_000 {
                let raw: Vec<f64> = (0..features::feature_count(d))
                    .map(|_| rng.gen_range(0.0..20.0f64).floor() / 2.0)
                    .collect();
                assert_eq!(
                    m.probability(&raw).to_bits(),
                    m.score(&raw).probability.to_bits(),
                    "{d} {:?} {raw:?}",
                    m.kind()
                );
            }
        }
    }
}

#[test]
fn a_version_2_logistic_file_still_loads_and_scores_as_before() {
    let m = Model::from_bytes(V2_FOOD.as_bytes(), "v2.json", Domain::Food).unwrap();
    assert_eq!(m.kind(), ModelKind::LogisticRegression);
    let mut x = vec![0.0; features::feature_count(Domain::Food)];
    x[feature("illness_7d")] = 2.0;
    let s = m.score(&x);
    let logit = (s.probability / (1.0 - s.probability)).ln();
    let sum: f64 = s.contributions.iter().sum();
    assert!((s.base_log_odds + sum - logit).abs() < 1e-9, "{s:?}");
}

#[test]
fn ensemble_contributions_add_up_and_name_the_driving_feature() {
    let m = load(&ensemble_value()).unwrap();
    assert_eq!(m.kind(), ModelKind::TreeEnsemble);
    let forest = m.forest().unwrap();
    let mut x = vec![0.0; features::feature_count(Domain::Food)];
    x[feature("illness_7d")] = 3.0;
    x[feature("reviews_30d")] = 20.0;
    // Raw: tree 0 -> 0.9, tree 1 -> 0.3 (hygiene 0 <= 1): mean 0.6.
    let mut c = vec![0.0; x.len()];
    let (base, raw) = forest.attribute(&x, &mut c);
    assert!((base - 0.425).abs() < 1e-12 && (raw - 0.6).abs() < 1e-12);
    assert!((base + c.iter().sum::<f64>() - raw).abs() < 1e-12);
    assert!((c[feature("illness_7d")] - 0.25).abs() < 1e-12, "{c:?}");
    assert!(
        (c[feature("reviews_30d")] - (-0.025)).abs() < 1e-12,
        "{c:?}"
    );
    assert!((c[feature("hygiene_7d")] - (-0.05)).abs() < 1e-12, "{c:?}");
    assert_eq!(forest.raw_score(&x), raw);
    // The score: calibrated, its contributions in log-odds add up too.
    let s = m.score(&x);
    assert!((s.probability - m.file.calibration.apply(0.6)).abs() < 1e-12);
    let logit = (s.probability / (1.0 - s.probability)).ln();
    let sum: f64 = s.contributions.iter().sum();
    assert!((s.base_log_odds + sum - logit).abs() < 1e-9, "{s:?}");
    let top = (0..x.len())
        .max_by(|&a, &b| s.contributions[a].total_cmp(&s.contributions[b]))
        .unwrap();
    assert_eq!(top, feature("illness_7d"));
    // No illness: the illness split now pulls the score down.
    x[feature("illness_7d")] = 0.0;
    let quiet = m.score(&x);
    assert!(quiet.probability < s.probability);
    assert!(quiet.contributions[feature("illness_7d")] < 0.0);
    // Another path: the contributions still add up.
    let mut at_base = vec![0.0; x.len()];
    at_base[feature("illness_7d")] = 3.0;
    at_base[feature("reviews_30d")] = 20.0;
    at_base[feature("hygiene_7d")] = 5.0;
    let s = m.score(&at_base);
    let logit = (s.probability / (1.0 - s.probability)).ln();
    assert!((s.base_log_odds + s.contributions.iter().sum::<f64>() - logit).abs() < 1e-9);
    // The file round-trips through to_json byte for byte.
    let text = m.file.to_json().unwrap();
    let again = Model::from_bytes(text.as_bytes(), "m.json", Domain::Food).unwrap();
    assert_eq!(again.file.to_json().unwrap(), text);
    assert_eq!(again.score(&x), m.score(&x));
}

#[test]
fn malformed_ensembles_are_refused_with_what_is_wrong() {
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 7] = [
        ("cycle", |v| v["trees"]["left"][5] = 3.into(), "child 3"),
        (
            "self loop",
            |v| v["trees"]["right"][0] = 0.into(),
            "child 0",
        ),
        (
            "child in the next tree",
            |v| v["trees"]["right"][0] = 4.into(),
            "child 4",
        ),
        (
            "child past the end",
            |v| v["trees"]["left"][5] = 99.into(),
            "child 99",
        ),
        (
            "feature out of range",
            |v| v["trees"]["feature"][0] = 19.into(),
            "feature 19",
        ),
        (
            "short array",
            |v| {
                v["trees"]["value"].as_array_mut().unwrap().pop();
            },
            "differ in length",
        ),
        (
            "value above 1",
            |v| v["trees"]["value"][1] = 1.5.into(),
            "outside [0, 1]",
        ),
    ];
    for (what, edit, expect) in cases {
        let mut v = ensemble_value();
        edit(&mut v);
        seal(&mut v);
        let e = load(&v).unwrap_err().to_string();
        assert!(e.contains(expect) && e.contains("m.json"), "{what}: {e}");
    }
    // A kind without its own model field, or with both.
    let mut v = ensemble_value();
    v["kind"] = "logistic_regression".into();
    seal(&mut v);
    assert!(load(&v).unwrap_err().to_string().contains("kind"));
    let mut v = ensemble_value();
    v["format_version"] = 2.into();
    seal(&mut v);
    assert!(
        load(&v)
            .unwrap_err()
            .to_string()
            .contains("format_version 3")
    );
    let mut v = ensemble_value();
    v["format_version"] = 5.into();
    seal(&mut v);
    assert!(
        load(&v)
            .unwrap_err()
            .to_string()
            .contains("format_version 5")
    );
}

/// A scorecard that would let more risk reports lower a score is refused,
/// naming the feature; a free weight on the inspection history is not.
#[test]
fn a_scorecard_with_a_negative_risk_weight_is_refused() {
    let good: serde_json::Value = serde_json::from_str(BUILTIN_FOOD).unwrap();
    assert_eq!(good["kind"], "scorecard");
    let names: Vec<String> = serde_json::from_value(good["feature_names"].clone()).unwrap();
    let mut v = good.clone();
    v["scorecard"]["weights"][0] = (-0.5).into();
    seal(&mut v);
    let e = load(&v).unwrap_err().to_string();
    assert!(e.contains(&names[0]) && e.contains(">= 0"), "{e}");
    let mut v = good.clone();
    v["calibration"]["slope"] = (-1.0).into();
    seal(&mut v);
    assert!(load(&v).unwrap_err().to_string().contains("slope"));
    // The history may weigh either way.
    let mut v = good;
    let at = names
        .iter()
        .position(|n| n == "days_since_inspection")
        .expect("the default food model reads the inspection history");
    v["scorecard"]["weights"][at] = (-0.3).into();
    seal(&mut v);
    load(&v).unwrap();
}

/// A model reads the features its file names, in its order, out of the
/// build's vector; the contributions land on the build's features.
#[test]
fn a_model_reads_its_own_features_by_name() {
    let m = Model::builtin(Domain::Food).unwrap();
    let build = features::feature_names(Domain::Food);
    let mut x = vec![0.0; build.len()];
    let first = &m.feature_names()[0];
    let at = build.iter().position(|n| n == first).unwrap();
    x[at] = 4.0;
    let s = m.score(&x);
    assert_eq!(s.contributions.len(), build.len());
    let unread: Vec<usize> = (0..build.len())
        .filter(|i| !m.feature_names().contains(&build[*i]))
        .collect();
    assert!(unread.iter().all(|&i| s.contributions[i] == 0.0));
    let logit = (s.probability / (1.0 - s.probability)).ln();
    assert!((s.base_log_odds + s.contributions.iter().sum::<f64>() - logit).abs() < 1e-9);
    // A name this build does not compute is refused by name.
    let mut v: serde_json::Value = serde_json::from_str(BUILTIN_FOOD).unwrap();
    v["feature_names"][0] = "stars_in_the_sky".into();
    seal(&mut v);
    assert!(
        load(&v)
            .unwrap_err()
            .to_string()
            .contains("stars_in_the_sky")
    );
}

mod monotone {
    use super::*;
    use crate::core::features::{BusinessState, Observation};
    use crate::types::category::{Category, CategorySet};
    use proptest::prelude::*;

    fn observe(s: &mut BusinessState, t: i64, cats: u16, reviewer: u64, photos: u32, rating: f64) {
        let domain = s.domain;
        let all = Category::of(domain);
        let signals: CategorySet = all
            .iter()
            .enumerate()
            .filter(|(i, _)| cats & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect();
        s.observe(&Observation {
            event_time: t,
            rating: Some(rating),
            photos,
            signals,
            review_id: "r",
            created_at: "c",
            reviewer,
            text: "t",
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Whatever a business's history (reviews, risk reports, bursts,
        /// inspections), one more risk report from a reviewer it has not
        /// seen never lowers its score under the default models.
        #[test]
        fn one_more_independent_report_never_lowers_a_score(
            food in any::<bool>(),
            history in proptest::collection::vec(
                (0i64..60 * 86_400, 0u16..64, 0u64..20, 0u32..2, 1u8..=5, any::<bool>()),
                0..40,
            ),
            inspections in proptest::collection::vec((0i64..60 * 86_400, any::<bool>()), 0..3),
            new_cats in 1u16..64,
            new_photos in 0u32..2,
            new_rating in 1u8..=5,
            later in 0i64..86_400,
        ) {
            let domain = if food { Domain::Food } else { Domain::Tourism };
            let model = Model::builtin(domain).unwrap();
            let mask = (1u16 << Category::of(domain).len()) - 1;
            let mut s = BusinessState::new(domain, 0);
            for (t, cats, who, photos, rating, plain) in &history {
                let cats = if *plain { 0 } else { cats & mask };
                observe(&mut s, *t, cats, *who, *photos, f64::from(*rating));
            }
            for (t, found) in &inspections {
                s.inspected(*t, *found);
            }
            let now = s.as_of + later;
            let before = model.probability(&s.features_at(now));
            let cats = (new_cats & mask).max(1);
            observe(&mut s, now, cats, 1_000_000, new_photos, f64::from(new_rating));
            let after = model.probability(&s.features_at(now));
            prop_assert!(after >= before - 1e-12, "{before} -> {after}");
        }
    }
}

#[test]
fn builtin_models_load_and_score_risk_higher() {
    for d in Domain::ALL {
        let m = Model::builtin(d).unwrap();
        assert_eq!(m.sha256.len(), 64);
        let names = features::feature_names(d);
        let quiet = vec![0.0; names.len()];
        let mut risky = quiet.clone();
        for (i, n) in names.iter().enumerate() {
            if n.starts_with("risk") || n.starts_with("illness") || n.starts_with("hygiene") {
                risky[i] = 3.0;
            }
        }
        assert!(
            m.score(&risky).probability > m.score(&quiet).probability,
            "{d}"
        );
    }
}

#[test]
fn refuses_wrong_features_corrupt_files_and_wrong_domain() {
    let good: serde_json::Value = serde_json::from_str(BUILTIN_FOOD).unwrap();
    let mut renamed = good.clone();
    renamed["feature_names"][0] = "shoe_size".into();
    seal(&mut renamed);
    let e = Model::from_bytes(
        &serde_json::to_vec(&renamed).unwrap(),
        "m.json",
        Domain::Food,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("shoe_size") && e.to_string().contains("m.json"),
        "{e}"
    );
    let e = Model::from_bytes(b"{\"format_version\": 2", "m.json", Domain::Food).unwrap_err();
    assert!(matches!(e, ModelError::Corrupt { .. }));
    let e = Model::from_bytes(BUILTIN_FOOD.as_bytes(), "m.json", Domain::Tourism).unwrap_err();
    assert!(e.to_string().contains("food model"), "{e}");
    let mut bad_std = good;
    bad_std["std"][0] = 0.0.into();
    seal(&mut bad_std);
    assert!(Model::from_bytes(&serde_json::to_vec(&bad_std).unwrap(), "m", Domain::Food).is_err());
}

#[test]
fn a_file_changed_after_training_is_refused_and_whitespace_does_not_matter() {
    let good: serde_json::Value = serde_json::from_str(BUILTIN_FOOD).unwrap();
    // Same content, other layout: still loads.
    let compact = serde_json::to_vec(&good).unwrap();
    Model::from_bytes(&compact, "m.json", Domain::Food).unwrap();
    // One weight changed by hand: refused, naming the field and the file.
    let mut tampered = good.clone();
    tampered["thresholds"]["high"] = 0.86.into();
    let e = Model::from_bytes(
        &serde_json::to_vec(&tampered).unwrap(),
        "m.json",
        Domain::Food,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("m.json") && e.contains("content_sha256") && e.contains("changed"),
        "{e}"
    );
    // Resealed on purpose: accepted again.
    seal(&mut tampered);
    let m = Model::from_bytes(
        &serde_json::to_vec(&tampered).unwrap(),
        "m.json",
        Domain::Food,
    )
    .unwrap();
    assert_eq!(m.file.thresholds.high, 0.86);
    // to_json gives back a file that loads, byte for byte the same each time.
    let text = m.file.to_json().unwrap();
    assert_eq!(text, m.file.to_json().unwrap());
    Model::from_bytes(text.as_bytes(), "m.json", Domain::Food).unwrap();
    // A file without the field is refused by name.
    let mut missing = good;
    missing.as_object_mut().unwrap().remove("content_sha256");
    let e = Model::from_bytes(
        &serde_json::to_vec(&missing).unwrap(),
        "m.json",
        Domain::Food,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("content_sha256") && e.contains("missing"), "{e}");
}
