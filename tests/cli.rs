//! The offline commands as a user runs them: `extract`, `replay`, `simulate`,
//! `train`, `evaluate`.

use reviewguard::types::Domain;
use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reviewguard"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run_with_stdin(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn extract_keeps_order_and_reports_bad_lines_in_place() {
    let input = [
        r#"{"review_id":"a","domain":"food","text":"好吃，就是汤里有根头发，吃完还拉肚子"}"#,
        "not json",
        r#"{"review_id":"b","domain":"food","text":"太难吃了"}"#,
        r#"{"review_id":"c","domain":"tourism","text":"房间很干净，没有乱收费"}"#,
        r#"{"review_id":"d","text":"no domain"}"#,
        r#"{"review_id":"e","domain":"tourism","text":"导游强制购物，床单有污渍"}"#,
    ]
    .join("\n");
    let (ok, out, _) = run_with_stdin(&["extract"], &input);
    assert!(ok);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["review_id"], "a");
    assert_eq!(
        lines[0]["signals"],
        serde_json::json!(["foreign_object", "illness"])
    );
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("JSON"));
    assert_eq!(lines[2]["signals"], serde_json::json!([]));
    assert_eq!(lines[3]["signals"], serde_json::json!([]));
    assert_eq!(lines[4]["line"], 5);
    assert_eq!(
        lines[5]["signals"],
        serde_json::json!(["forced_consumption", "hygiene"])
    );
}

fn without_emitted_at(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("emitted_at");
            v
        })
        .collect()
}

#[test]
fn simulate_replay_is_deterministic_and_flags_the_bad_businesses() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let st = bin()
        .args([
            "simulate",
            "--seed",
            "5",
            "--businesses",
            "120",
            "--days",
            "60",
        ])
        .args([
            "--reviews",
            &p("r.jsonl"),
            "--inspections",
            &p("i.csv"),
            "--truth",
            &p("t.jsonl"),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let mut outs = Vec::new();
    // As the service runs: the inspection outcomes folded in as well.
    for name in ["f1.jsonl", "f2.jsonl"] {
        let out = bin()
            .args(["replay", "--input", &p("r.jsonl"), "--out", &p(name)])
            .args(["--outcomes", &p("i.csv")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outs.push(std::fs::read_to_string(p(name)).unwrap());
    }
    let (a, b) = (without_emitted_at(&outs[0]), without_emitted_at(&outs[1]));
    assert!(!a.is_empty());
    assert_eq!(a, b, "the same input gives the same flags");

    // Against the hidden truth.
    let world =
        reviewguard::offline::simulate::generate(&reviewguard::offline::simulate::SimConfig {
            seed: 5,
            businesses: 120,
            days: 60,
            ..Default::default()
        });
    let keyed: Vec<_> = a
        .iter()
        .map(|f| {
            (
                reviewguard::types::Domain::parse(f["domain"].as_str().unwrap()).unwrap(),
                f["business_id"].as_str().unwrap().to_owned(),
                chrono::DateTime::parse_from_rfc3339(f["event_time"].as_str().unwrap())
                    .unwrap()
                    .timestamp(),
            )
        })
        .collect();
    for domain in reviewguard::types::Domain::ALL {
        let mine: Vec<_> = keyed.iter().filter(|k| k.0 == domain).cloned().collect();
        let mut part = world.clone();
        part.reviews.retain(|r| r.domain == domain);
        part.truth.retain(|t| t.domain == domain);
        let q = reviewguard::offline::simulate::flag_quality(&part, &mine);
        eprintln!(
            "replay {domain} flags: {} precision {:.3} ({:.3} without the {} raised by competitors' attacks) recall {:.3} ({} of {} detectable bad businesses found)",
            q.flags,
            q.precision(),
            q.precision_without_attacks(),
            q.attacked,
            q.recall(),
            q.found,
            q.bad_businesses
        );
        // Fake risk reports from a competitor read like real ones, so an
        // attack can raise a flag (a person reads its evidence: fresh
        // accounts, no photos). Food: one customer in a hundred reports a
        // risk at a clean restaurant, so a flag is almost always right.
        // Tourism: one hotel review in seven carries a risk at a clean hotel
        // too (the real corpus's rate), so a flag is a weaker claim, and
        // two months are little history to tell a bad hotel by; it must
        // still beat the share of bad hotels by far.
        let (precision, recall) = match domain {
            reviewguard::types::Domain::Food => (0.8, 0.6),
            reviewguard::types::Domain::Tourism => (0.5, 0.3),
        };
        assert!(
            q.precision_without_attacks() >= precision,
            "{domain}: precision without attacks {:.3}",
            q.precision_without_attacks()
        );
        assert!(q.recall() >= recall, "{domain}: recall {:.3}", q.recall());
    }
}

#[test]
fn train_then_evaluate_reports_the_contract_figures() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    assert!(
        bin()
            .args([
                "simulate",
                "--seed",
                "9",
                "--businesses",
                "300",
                "--days",
                "120",
                "--domain",
                "food"
            ])
            .args(["--reviews", &p("r.jsonl"), "--inspections", &p("i.csv")])
            .args(["--truth", &p("t.jsonl")])
            .status()
            .unwrap()
            .success()
    );
    // Trained twice with the same data and seed: byte-identical model
    // files and cards.
    for (out_file, report) in [("food.json", "report"), ("again.json", "report2")] {
        let out = bin()
            .args([
                "train",
                "--reviews",
                &p("r.jsonl"),
                "--inspections",
                &p("i.csv"),
                "--domain",
                "food",
                "--seed",
                "9",
            ])
            .args(["--out", &p(out_file), "--report", &p(report)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let model = std::fs::read(p("food.json")).unwrap();
    assert_eq!(
        model,
        std::fs::read(p("again.json")).unwrap(),
        "same data and seed, same model file"
    );
    let sealed: serde_json::Value = serde_json::from_slice(&model).unwrap();
    assert_eq!(sealed["kind"], "scorecard");
    assert_eq!(
        std::fs::read_to_string(p("food.md"))
            .unwrap()
            .replace("food.json", ""),
        std::fs::read_to_string(p("again.md"))
            .unwrap()
            .replace("again.json", ""),
        "same data and seed, same model card"
    );
    let m =
        reviewguard::core::model::Model::load(std::path::Path::new(&p("food.json")), Domain::Food)
            .unwrap();
    assert!(m.file.exceedance.is_some());
    let card = std::fs::read_to_string(p("food.md")).unwrap();
    assert!(card.contains("ROC-AUC"), "{card}");
    // The report: what was chosen by cross-validation, the held-out figures
    // with intervals beside the best single feature, capacity, yield and
    // calibration tables, and real PNGs; no published figures that are not
    // like for like.
    let report = std::fs::read_to_string(dir.path().join("report/report.md")).unwrap();
    for needle in [
        "cross-validated ROC-AUC",
        "(chosen)",
        "best single feature",
        "lift@10%",
        "Brier",
        "Capacity curve",
        "Yield by business size",
        "Yield by region",
        "Calibration",
        "share of reviews reporting a risk, last 30 days",
        "![ROC curve](roc.png)",
    ] {
        assert!(report.contains(needle), "{needle} missing in report.md");
    }
    for gone in ["nEmesis", "FINDER", "Chicago"] {
        assert!(!report.contains(gone), "{gone} in report.md");
    }
    for png in reviewguard::offline::report::PLOTS {
        let bytes = std::fs::read(dir.path().join("report").join(png)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
            "{png}: {} bytes",
            bytes.len()
        );
    }
    let out = bin()
        .args([
            "evaluate",
            "--reviews",
            &p("r.jsonl"),
            "--inspections",
            &p("i.csv"),
            "--model",
            &p("food.json"),
            "--report",
            &p("eval"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(dir.path().join("eval/report.md")).unwrap();
    assert!(
        report.contains("ROC-AUC") && report.contains("gains.png"),
        "{report}"
    );
    assert!(dir.path().join("eval/calibration.png").is_file());
    let out = bin()
        .args([
            "evaluate",
            "--reviews",
            &p("r.jsonl"),
            "--inspections",
            &p("i.csv"),
            "--model",
            &p("food.json"),
            "--json",
            "--truth",
            &p("t.jsonl"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "roc_auc",
        "pr_auc",
        "precision_at_10pct",
        "lift_at_10pct",
        "brier",
    ] {
        assert!(m[k].is_number(), "{k} missing in {m}");
    }
    assert!(m["roc_auc"].as_f64().unwrap() > 0.65, "{m}");
    assert!(m["lift_at_10pct"].as_f64().unwrap() > 1.5, "{m}");
    // Beside a scorer that knows each business's hidden state: that one
    // ranks better, and the share is the model's ROC-AUC over its.
    let oracle = m["oracle_roc_auc"].as_f64().unwrap();
    assert!(oracle > m["roc_auc"].as_f64().unwrap(), "{m}");
    let share = m["roc_auc_share_of_oracle"].as_f64().unwrap();
    assert!(
        (share - m["roc_auc"].as_f64().unwrap() / oracle).abs() < 1e-12,
        "{m}"
    );

    // A model file with the wrong features is refused by name.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("food.json")).unwrap()).unwrap();
    v["feature_names"][0] = "shoe_size".into();
    reviewguard::core::model::seal(&mut v);
    std::fs::write(p("bad.json"), v.to_string()).unwrap();
    let out = bin()
        .args([
            "evaluate",
            "--reviews",
            &p("r.jsonl"),
            "--inspections",
            &p("i.csv"),
            "--model",
            &p("bad.json"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("shoe_size"));
}

#[test]
fn run_refuses_to_start_without_a_pseudonym_key_or_with_a_bad_config() {
    let out = bin()
        .args(["run", "--config", "config/reviewguard.toml"])
        .env_remove("REVIEWGUARD_PRIVACY_PSEUDONYM_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("REVIEWGUARD_PRIVACY_PSEUDONYM_KEY"));
    let out = bin()
        .args(["run", "--config", "config/reviewguard.toml"])
        .env("REVIEWGUARD_KAFKA_AUTO_OFFSET_RESET", "whenever")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kafka.auto_offset_reset"));
}

#[test]
fn demo_runs_the_whole_pipeline_and_exits_0() {
    let out = bin()
        .args(["demo", "--businesses", "40", "--days", "40", "--seed", "3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("metrics: http://127.0.0.1:"));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("[HIGH") || l.starts_with("[MEDIUM") || l.starts_with("[LOW")),
        "{stdout}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary:"))
        .expect("a summary line");
    assert!(summary.contains("3 to the DLQ"), "{summary}");
}

#[test]
fn replay_with_a_shadow_model_gives_the_same_flags_and_reports_the_shadow() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    assert!(
        bin()
            .args([
                "simulate",
                "--seed",
                "4",
                "--businesses",
                "80",
                "--days",
                "40"
            ])
            .args(["--reviews", &p("r.jsonl")])
            .status()
            .unwrap()
            .success()
    );
    // The shadow: the shipped food model with a lower threshold, resealed.
    let mut v: serde_json::Value =
        serde_json::from_str(reviewguard::core::model::BUILTIN_FOOD).unwrap();
    v["thresholds"]["low"] = 0.2.into();
    reviewguard::core::model::seal(&mut v);
    std::fs::write(p("shadow.json"), v.to_string()).unwrap();
    std::fs::write(
        p("with.toml"),
        format!("[models]\nshadow_food = {:?}\n", p("shadow.json")),
    )
    .unwrap();
    std::fs::write(p("without.toml"), "[models]\n").unwrap();
    let mut flags = Vec::new();
    let mut stderr = Vec::new();
    for cfg in ["without.toml", "with.toml"] {
        let out = bin()
            .args(["replay", "--input", &p("r.jsonl"), "--out", &p("f.jsonl")])
            .args(["--config", &p(cfg)])
            .env(
                "REVIEWGUARD_PRIVACY_PSEUDONYM_KEY",
                "a-test-key-of-enough-bytes",
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        flags.push(without_emitted_at(
            &std::fs::read_to_string(p("f.jsonl")).unwrap(),
        ));
        stderr.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    assert!(!flags[0].is_empty());
    assert_eq!(
        flags[0], flags[1],
        "a shadow model must not change the flags"
    );
    assert!(!stderr[0].contains("shadow"), "{}", stderr[0]);
    assert!(
        stderr[1].contains("shadow model vs live") && stderr[1].contains("\"shadow_only\""),
        "{}",
        stderr[1]
    );
}

/// Real review texts as background (../shared/data, never copied here).
#[test]
fn simulate_mixes_in_real_texts_when_the_corpus_is_there() {
    let data = std::env::var_os("REVIEWGUARD_SHARED_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
        });
    let corpus = data.join("waimai_10k.csv");
    if !corpus.is_file() {
        eprintln!("SKIPPED: {} is not on this machine", corpus.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.jsonl");
    let run = || {
        let st = bin()
            .args([
                "simulate",
                "--seed",
                "3",
                "--businesses",
                "40",
                "--days",
                "20",
            ])
            .args(["--domain", "food", "--reviews"])
            .arg(&out)
            .arg("--texts")
            .arg(format!("food={}", corpus.display()))
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::read_to_string(&out).unwrap()
    };
    let a = run();
    assert_eq!(a, run(), "same seed and corpus, same reviews");
    let texts: std::collections::HashSet<String> = csv::Reader::from_path(&corpus)
        .unwrap()
        .records()
        .map(|r| r.unwrap()[1].trim().to_owned())
        .collect();
    let lines: Vec<serde_json::Value> = a
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let real = lines
        .iter()
        .filter(|v| texts.contains(v["text"].as_str().unwrap()))
        .count();
    let share = real as f64 / lines.len() as f64;
    assert!(
        (0.15..0.4).contains(&share),
        "{real} of {} reviews are real texts",
        lines.len()
    );
}

/// With `decide.capacity`, a region's flags come to about the inspections
/// it can make: over 60 days, a week's capacity of 1 or 3 per region and
/// domain gives about that many flags a week (the model file's exceedance
/// table turns capacity into cut-offs), fewer for the smaller capacity,
/// the top quarter of it `high`.
#[test]
fn a_regions_weekly_capacity_sets_how_many_it_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let st = bin()
        .args([
            "simulate",
            "--seed",
            "5",
            "--businesses",
            "120",
            "--days",
            "60",
        ])
        .args(["--reviews", &p("r.jsonl"), "--inspections", &p("i.csv")])
        .status()
        .unwrap();
    assert!(st.success());
    let regions = [
        "310105", "310104", "110105", "440305", "330106", "510107", "530102", "460202",
    ];
    let mut counts = Vec::new();
    for per_week in [1u32, 3] {
        let mut toml = String::from("[decide]\n");
        for r in regions {
            for d in ["food", "tourism"] {
                toml.push_str(&format!(
                    "[[decide.capacity]]\nregion = \"{r}\"\ndomain = \"{d}\"\nper_week = {per_week}\nbusinesses = 15\n"
                ));
            }
        }
        let cfg = p(&format!("capacity-{per_week}.toml"));
        std::fs::write(&cfg, toml).unwrap();
        let out = p(&format!("flags-{per_week}.jsonl"));
        let st = bin()
            .args(["replay", "--input", &p("r.jsonl"), "--out", &out])
            .args(["--outcomes", &p("i.csv"), "--config", &cfg])
            .status()
            .unwrap();
        assert!(st.success());
        let flags: Vec<serde_json::Value> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let expected = f64::from(per_week) * (60.0 / 7.0) * (regions.len() * 2) as f64;
        let ratio = flags.len() as f64 / expected;
        eprintln!(
            "capacity {per_week} a week: {} flags, {expected:.0} expected",
            flags.len()
        );
        assert!(
            (0.5..=1.5).contains(&ratio),
            "capacity {per_week}: {} flags against {expected:.0}",
            flags.len()
        );
        assert!(flags.iter().any(|f| f["severity"] == "high"));
        counts.push(flags.len());
    }
    assert!(counts[0] < counts[1], "{counts:?}");
}
