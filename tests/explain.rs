//! `reviewguard explain` as an auditor runs it: on a simulated input, it
//! reproduces exactly the flags `replay` emits for a business, shows the
//! feature values and thresholds behind them, and never prints a reviewer id.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reviewguard"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn explain_reproduces_the_flags_replay_emits_for_a_business() {
    let dir = tempfile::tempdir().unwrap();
    let reviews = dir.path().join("reviews.jsonl");
    let inspections = dir.path().join("inspections.csv");
    let flags = dir.path().join("flags.jsonl");
    let (ok, _, err) = run(&[
        "simulate",
        "--seed",
        "5",
        "--businesses",
        "40",
        "--days",
        "60",
        "--reviews",
        p(&reviews),
        "--inspections",
        p(&inspections),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["replay", "--input", p(&reviews), "--out", p(&flags)]);
    assert!(ok, "{err}");

    // Replay's flags, by (domain, business), in order.
    let mut by_business: BTreeMap<(String, String), Vec<serde_json::Value>> = BTreeMap::new();
    for line in std::fs::read_to_string(&flags).unwrap().lines() {
        let f: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            f["domain"].as_str().unwrap().to_owned(),
            f["business_id"].as_str().unwrap().to_owned(),
        );
        by_business.entry(key).or_default().push(f);
    }
    assert!(by_business.len() >= 2, "too few flagged businesses to test");
    let reviewer_ids: Vec<String> = std::fs::read_to_string(&reviews)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some(v["reviewer_id"].as_str()?.to_owned())
        })
        .collect();
    assert!(!reviewer_ids.is_empty());

    // A few flagged businesses of each domain.
    let mut tried = 0;
    for domain in ["food", "tourism"] {
        for ((_, business), want) in by_business.iter().filter(|((d, _), _)| d == domain).take(2) {
            let last = want.last().unwrap()["flag_id"].as_str().unwrap();
            let (ok, out, err) = run(&[
                "explain",
                "--business",
                business,
                "--input",
                p(&reviews),
                "--domain",
                domain,
                "--flag",
                last,
            ]);
            assert!(ok, "explain {business}: {err}\n{out}");
            let got: Vec<&str> = out
                .lines()
                .filter_map(|l| l.strip_prefix("  flag "))
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            let want_ids: Vec<&str> = want
                .iter()
                .map(|f| f["flag_id"].as_str().unwrap())
                .collect();
            assert_eq!(got, want_ids, "flags of {business}:\n{out}");
            assert!(out.contains(&format!("flag {last}: reproduced")), "{out}");
            // Every flag's reasons and the features behind it are shown.
            for f in want {
                for r in f["reasons"].as_array().unwrap() {
                    let feature = r["feature"].as_str().unwrap();
                    assert!(
                        out.contains(&format!("reason {feature} = ")),
                        "reason {feature} missing:\n{out}"
                    );
                }
                assert!(f["features"].as_object().is_some_and(|m| !m.is_empty()));
            }
            assert!(out.contains("  features: ") && out.contains("thresholds low "));
            for id in &reviewer_ids {
                assert!(!out.contains(id.as_str()), "reviewer id {id} printed");
            }
            tried += 1;
        }
    }
    assert!(tried >= 2);

    // A flag that was never emitted is reported as not reproduced.
    let ((domain, business), _) = by_business.iter().next().unwrap();
    let (ok, _, err) = run(&[
        "explain",
        "--business",
        business,
        "--input",
        p(&reviews),
        "--domain",
        domain,
        "--flag",
        "00000000000000000000000000000000",
    ]);
    assert!(!ok);
    assert!(err.contains("not reproduced"), "{err}");

    // An unknown business is an error that says so.
    let (ok, _, err) = run(&["explain", "--business", "nobody", "--input", p(&reviews)]);
    assert!(!ok);
    assert!(err.contains("no review of business"), "{err}");

    // With the world's inspections: replay folds them in, and explain shows
    // each where it takes effect and reproduces replay's flags.
    let with = dir.path().join("flags-with-outcomes.jsonl");
    let (ok, _, err) = run(&[
        "replay",
        "--input",
        p(&reviews),
        "--out",
        p(&with),
        "--outcomes",
        p(&inspections),
    ]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&with).unwrap();
    let f: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let (business, domain) = (
        f["business_id"].as_str().unwrap(),
        f["domain"].as_str().unwrap(),
    );
    let (ok, out, err) = run(&[
        "explain",
        "--business",
        business,
        "--input",
        p(&reviews),
        "--domain",
        domain,
        "--outcomes",
        p(&inspections),
        "--flag",
        f["flag_id"].as_str().unwrap(),
    ]);
    assert!(ok, "explain {business} with outcomes: {err}\n{out}");
    let inspected = std::fs::read_to_string(&inspections)
        .unwrap()
        .lines()
        .any(|l| l.starts_with(&format!("{business},")));
    assert_eq!(
        out.lines().any(|l| l.starts_with("inspection ")),
        inspected,
        "{out}"
    );
}
