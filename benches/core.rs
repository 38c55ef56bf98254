//! Criterion benchmarks of the core, per review: decode, extract, state
//! update, score, and the whole `process` (`cargo bench --bench core`).
//! The figures bench (`benches/figures.rs`) puts these beside their baselines.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reviewguard::core::decide::DecideConfig;
use reviewguard::core::extract::Extractor;
use reviewguard::core::features::{BusinessState, Observation};
use reviewguard::core::model::{Model, ModelKind};
use reviewguard::core::privacy::Pseudonymiser;
use reviewguard::core::review::{self, DecodeOptions, Review};
use reviewguard::core::scorer::{Models, Scorer, States};
use reviewguard::offline::simulate::{self, SimConfig};
use reviewguard::types::Domain;
use std::hint::black_box;
use std::sync::Arc;

fn sample() -> (Scorer, Vec<Vec<u8>>, Vec<Review>) {
    let scorer = Scorer {
        extractor: Arc::new(Extractor::builtin().expect("builtin lexicons")),
        models: Models::builtin().expect("builtin models"),
        pseudonyms: Pseudonymiser::new(b"core-bench-key-0123456789"),
        decide: DecideConfig::default(),
        outcomes: Default::default(),
    };
    let world = simulate::generate(&SimConfig {
        seed: 3,
        businesses: 200,
        days: 30,
        ..SimConfig::default()
    });
    let lines: Vec<Vec<u8>> = world
        .reviews
        .iter()
        .map(|r| serde_json::to_vec(r).expect("a simulated review serialises"))
        .collect();
    let reviews = lines
        .iter()
        .filter_map(|l| review::decode(l, &DecodeOptions::default()).ok())
        .collect();
    (scorer, lines, reviews)
}

fn per_review(c: &mut Criterion) {
    let (scorer, lines, reviews) = sample();
    let n = reviews.len() as u64;
    let mut g = c.benchmark_group("per_review");
    g.throughput(Throughput::Elements(n));
    g.sample_size(20);

    g.bench_function("decode", |b| {
        let opts = DecodeOptions::default();
        b.iter(|| {
            for l in &lines {
                let _ = black_box(review::decode(black_box(l), &opts));
            }
        })
    });
    g.bench_function("extract", |b| {
        b.iter(|| {
            for r in &reviews {
                black_box(scorer.extractor.extract(r.domain, black_box(&r.text)));
            }
        })
    });
    let signals: Vec<_> = reviews
        .iter()
        .map(|r| scorer.extractor.extract(r.domain, &r.text).categories)
        .collect();
    g.bench_function("state_update", |b| {
        b.iter(|| {
            let mut s = BusinessState::new(reviews[0].domain, reviews[0].event_time);
            for (r, sig) in reviews.iter().zip(&signals) {
                s.observe(&Observation {
                    event_time: r.event_time,
                    rating: r.rating,
                    photos: r.photos.unwrap_or(0),
                    signals: *sig,
                    review_id: &r.review_id,
                    created_at: &r.created_at,
                    reviewer: 7,
                    text: &r.text,
                });
            }
            black_box(s)
        })
    });
    let mut states = States::default();
    for r in &reviews {
        scorer.observe(&mut states, r);
    }
    g.bench_function("score", |b| {
        b.iter(|| {
            for r in &reviews {
                if let Some(s) = states.get(r.domain, &r.business_id) {
                    let raw = s.features_at(r.event_time.max(s.as_of));
                    black_box(scorer.models.get(r.domain).score(&raw));
                }
            }
        })
    });
    // The score by model kind, on the food reviews: the logistic regression
    // of format version 2 (tests/fixtures) beside the default food model.
    let lr = Model::from_bytes(
        include_bytes!("../tests/fixtures/food-v2-logistic.json"),
        "food-v2-logistic.json",
        Domain::Food,
    )
    .expect("the logistic regression fixture loads");
    let food: Vec<Vec<f64>> = reviews
        .iter()
        .filter(|r| r.domain == Domain::Food)
        .filter_map(|r| {
            let s = states.get(r.domain, &r.business_id)?;
            Some(s.features_at(r.event_time.max(s.as_of)))
        })
        .collect();
    let mut kinds = vec![("score_food_logistic", lr)];
    let builtin = Model::builtin(Domain::Food).expect("builtin food model");
    match builtin.kind() {
        ModelKind::TreeEnsemble => kinds.push(("score_food_trees", builtin)),
        ModelKind::Scorecard => kinds.push(("score_food_scorecard", builtin)),
        ModelKind::LogisticRegression => {}
    }
    // Another food model file to compare (e.g. a tree ensemble of another size).
    if let Ok(path) = std::env::var("REVIEWGUARD_BENCH_FOOD_MODEL") {
        let m = Model::load(std::path::Path::new(&path), Domain::Food)
            .expect("REVIEWGUARD_BENCH_FOOD_MODEL names a food model file");
        kinds.push(("score_food_model_file", m));
    }
    g.throughput(Throughput::Elements(food.len() as u64));
    for (name, model) in &kinds {
        g.bench_function(*name, |b| {
            b.iter(|| {
                for x in &food {
                    black_box(model.score(black_box(x)));
                }
            })
        });
    }
    g.throughput(Throughput::Elements(n));
    g.bench_function("process", |b| {
        b.iter(|| {
            let mut states = States::default();
            for r in &reviews {
                black_box(scorer.process(&mut states, r));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, per_review);
criterion_main!(benches);
