//! The extractor on hand-labelled real reviews. Reads the corpora from
//! `../shared/data` (never copied into the repository); on a machine without
//! that folder the test says so and checks nothing.

use reviewguard::devset;
use reviewguard::extract::Extractor;
use reviewguard::review::Domain;
use std::path::PathBuf;

fn shared(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name);
    p.is_file().then_some(p)
}

fn measure(corpus: &str, labels: &str, domain: Domain) -> Option<devset::Report> {
    let Some(path) = shared(corpus) else {
        eprintln!("SKIPPED: ../shared/data/{corpus} is not on this machine");
        return None;
    };
    let labels = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("dev/labels")
        .join(labels);
    let set = devset::load(&path, &labels, domain).unwrap();
    let r = devset::evaluate(&Extractor::builtin().unwrap(), domain, &set);
    eprintln!("{domain}: {} labelled reviews\n{}", set.len(), r.table());
    Some(r)
}

#[test]
fn food_signals_meet_the_quality_bar() {
    let Some(r) = measure("waimai_10k.csv", "waimai_10k.csv", Domain::Food) else {
        return;
    };
    assert!(r.micro.f1() >= 0.90, "micro-F1 {:.3}", r.micro.f1());
    for (name, c) in &r.per_category {
        if c.support() >= 10 {
            assert!(c.recall() >= 0.85, "{name}: recall {:.3}", c.recall());
        }
    }
}

/// Tourism is below the 0.90 bar (issue 3 stays open); this guards what it
/// has reached so far against regressions.
#[test]
fn tourism_signals_do_not_regress() {
    let Some(r) = measure(
        "ChnSentiCorp_htl_all.csv",
        "ChnSentiCorp_htl_all.csv",
        Domain::Tourism,
    ) else {
        return;
    };
    assert!(r.micro.f1() >= 0.84, "micro-F1 {:.3}", r.micro.f1());
    assert!(
        r.micro.precision() >= 0.84,
        "precision {:.3}",
        r.micro.precision()
    );
}
