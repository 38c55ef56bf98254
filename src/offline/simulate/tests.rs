use super::*;

/// With a relabel share, some reviews name their business or region
/// otherwise, and everything else is the world without it.
#[test]
fn relabelled_reviews_change_only_their_labels() {
    let cfg = SimConfig {
        businesses: 30,
        days: 20,
        ..SimConfig::default()
    };
    let plain = generate(&cfg);
    let relabelled = generate(&SimConfig {
        relabel_share: 0.1,
        ..cfg.clone()
    });
    assert_eq!(plain.reviews.len(), relabelled.reviews.len());
    let mut changed = 0;
    for (a, b) in plain.reviews.iter().zip(&relabelled.reviews) {
        let labels = |r: &SimReview| (r.business_name.clone(), r.region.clone());
        if labels(a) != labels(b) {
            changed += 1;
        }
        let unlabelled = |r: &SimReview| SimReview {
            business_name: String::new(),
            region: String::new(),
            ..r.clone()
        };
        assert_eq!(unlabelled(a), unlabelled(b));
    }
    let share = f64::from(changed) / plain.reviews.len() as f64;
    assert!((0.05..0.15).contains(&share), "{changed} relabelled");
}

#[test]
fn same_seed_same_world() {
    let cfg = SimConfig {
        businesses: 20,
        days: 20,
        ..Default::default()
    };
    let a = generate(&cfg);
    let b = generate(&cfg);
    assert_eq!(a.reviews, b.reviews);
    assert_eq!(a.inspections, b.inspections);
    let c = generate(&SimConfig { seed: 43, ..cfg });
    assert_ne!(a.reviews, c.reviews);
}

#[test]
fn attacks_hit_clean_businesses_and_farms_praise_bad_ones() {
    let w = generate(&SimConfig {
        businesses: 300,
        days: 120,
        ..Default::default()
    });
    let truth: std::collections::HashMap<_, _> = w
        .truth
        .iter()
        .map(|t| ((t.domain, t.business_id.clone()), t))
        .collect();
    let (mut attacks, mut farmed) = (0, 0);
    for r in w.reviews.iter().filter(|r| r.fake) {
        let t = truth[&(r.domain, r.business_id.clone())];
        let inside = |spans: &[(i64, i64)]| {
            spans
                .iter()
                .find(|(s, e)| *s <= r.event_time && r.event_time < *e)
                .copied()
        };
        if r.reports_risk {
            let (start, _) = inside(&t.attacks).expect("a fake risk report lies in an attack");
            assert!(!t.bad_at(start), "attacks start on clean businesses");
            assert_eq!(r.rating, 1);
            attacks += 1;
        } else {
            let (start, _) = inside(&t.farms).expect("fake praise lies in a farm burst");
            assert!(t.bad_at(start), "farms work for bad businesses");
            assert_eq!(r.rating, 5);
            farmed += 1;
        }
    }
    assert!(
        attacks >= 10 && farmed >= 50,
        "{attacks} attack reviews, {farmed} farmed"
    );
}

#[test]
fn real_texts_are_mixed_in_as_background_rated_by_sentiment() {
    let texts = Texts {
        food: vec![
            ("真实评论甲，送得快".into(), Some(true)),
            ("真实评论乙，太咸".into(), Some(false)),
        ],
        tourism: Vec::new(),
    };
    let cfg = SimConfig {
        businesses: 60,
        days: 30,
        domains: vec![Domain::Food],
        texts: Some(Arc::new(texts)),
        ..Default::default()
    };
    let w = generate(&cfg);
    assert_eq!(w.reviews, generate(&cfg).reviews, "still deterministic");
    let real: Vec<_> = w
        .reviews
        .iter()
        .filter(|r| r.text.starts_with("真实评论"))
        .collect();
    let share = real.len() as f64 / w.reviews.len() as f64;
    assert!(
        (0.15..0.35).contains(&share),
        "share of real texts {share:.3}"
    );
    for r in real {
        assert!(!r.reports_risk && !r.fake);
        if r.text.contains('甲') {
            assert!(r.rating >= 4, "{r:?}");
        } else {
            assert!(r.rating <= 3, "{r:?}");
        }
    }
}

#[test]
fn reviews_are_in_time_order_and_valid() {
    let w = generate(&SimConfig {
        businesses: 30,
        days: 10,
        ..Default::default()
    });
    assert!(!w.reviews.is_empty());
    assert!(
        w.reviews
            .windows(2)
            .all(|p| p[0].event_time <= p[1].event_time)
    );
    for r in &w.reviews {
        let bytes = serde_json::to_vec(r).unwrap();
        crate::core::review::decode(&bytes, &Default::default()).unwrap();
    }
}

/// Every simulated inspection makes an `inspection.outcomes` message the
/// service reads.
#[test]
fn inspections_make_outcome_messages_of_the_contract() {
    let w = generate(&SimConfig {
        businesses: 40,
        days: 60,
        ..Default::default()
    });
    assert!(!w.inspections.is_empty());
    for i in &w.inspections {
        let bytes = i.outcome_message().to_string().into_bytes();
        let o = crate::core::outcome::decode(&bytes).unwrap();
        assert_eq!(
            (
                o.business_id.as_str(),
                o.domain,
                o.inspected_at,
                o.violation
            ),
            (
                i.business_id.as_str(),
                i.domain,
                i.inspected_at,
                i.outcome == 1
            )
        );
    }
}
