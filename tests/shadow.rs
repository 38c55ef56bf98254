//! Shadow models: scored beside the live one on the same features, they
//! change no flag, and their agreement with the live model is counted.

use reviewguard::core::decide::DecideConfig;
use reviewguard::core::extract::Extractor;
use reviewguard::core::model::Model;
use reviewguard::core::privacy::Pseudonymiser;
use reviewguard::core::scorer::{Agreement, Models, Scorer, States};
use reviewguard::offline::simulate::{SimConfig, generate};
use reviewguard::types::Domain;
use std::sync::Arc;

/// A shadow model changes no flag, and its own metrics move.
#[test]
fn a_shadow_model_never_changes_the_flags_and_its_metrics_move() {
    let live = Scorer {
        extractor: Arc::new(Extractor::builtin().unwrap()),
        models: Models::builtin().unwrap(),
        pseudonyms: Pseudonymiser::new(b"test-key-test-key"),
        decide: DecideConfig::default(),
        outcomes: Default::default(),
    };
    // The shadow: the same food model with a lower threshold, so the two disagree.
    let mut v: serde_json::Value =
        serde_json::from_str(reviewguard::core::model::BUILTIN_FOOD).unwrap();
    v["thresholds"]["low"] = 0.2.into();
    reviewguard::core::model::seal(&mut v);
    let shadow = Model::from_bytes(v.to_string().as_bytes(), "shadow.json", Domain::Food).unwrap();
    let mut with_shadow = live.clone();
    with_shadow.models.shadow_food = Some(Arc::new(shadow));
    let metrics = reviewguard::service::metrics::Metrics::new();
    let world = generate(&SimConfig {
        businesses: 60,
        days: 40,
        ..Default::default()
    });
    let (mut a, mut b) = (States::default(), States::default());
    let (mut flags_a, mut flags_b) = (Vec::new(), Vec::new());
    for r in &world.reviews {
        let review =
            reviewguard::core::review::decode(&serde_json::to_vec(r).unwrap(), &Default::default())
                .unwrap();
        let x = live.process(&mut a, &review);
        let y = with_shadow.process(&mut b, &review);
        assert!(x.shadow.is_none());
        assert_eq!(
            y.shadow.is_some(),
            review.domain == Domain::Food && y.risk_score.is_some()
        );
        metrics.observe_shadow(review.domain, &y);
        flags_a.extend(x.flag);
        flags_b.extend(y.flag);
    }
    assert!(!flags_a.is_empty());
    assert_eq!(flags_a, flags_b, "the shadow model changed the flags");
    let count = |o: Agreement| {
        metrics
            .shadow_agreement
            .with_label_values(&["food", o.as_str()])
            .get()
    };
    assert!(
        count(Agreement::ShadowOnly) > 0,
        "the shadow's lower threshold shows"
    );
    let scored: u64 = Agreement::ALL.iter().map(|o| count(*o)).sum();
    assert_eq!(
        metrics
            .shadow_risk_score
            .with_label_values(&["food"])
            .get_sample_count(),
        scored
    );
    assert_eq!(
        metrics
            .shadow_risk_score
            .with_label_values(&["tourism"])
            .get_sample_count(),
        0,
        "no tourism shadow configured"
    );
}
