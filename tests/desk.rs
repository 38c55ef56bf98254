//! The desk as its users and its operators rely on it, against a real
//! broker (Tansu) and the real binary: flags in once, region scoping,
//! sessions and CSRF, outcomes to Kafka and to the inspections CSV, the
//! audit log, the login throttle, and hostile input.

mod common;

use common::desk::*;
use common::*;
use reviewguard::types::Severity;
use serde_json::json;
use std::time::Duration;

fn world() -> (Broker, tempfile::TempDir, DeskProc) {
    let broker = Broker::start();
    broker.create_topics(2);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("desk.sqlite");
    let desk = DeskProc::start_with(
        &broker.addr,
        store.to_str().unwrap(),
        dir.path(),
        &[(
            "REVIEWGUARD_DECIDE_CAPACITY",
            r#"[{region = "310106", domain = "food", per_week = 2, businesses = 300}]"#,
        )],
    );
    desk.add_user("li", "inspector", &["310105"]);
    desk.add_user("wang", "inspector", &["310106"]);
    desk.add_user("zhao", "supervisor", &[]);
    (broker, dir, desk)
}

#[test]
fn an_inspector_records_an_outcome_that_reaches_kafka_and_the_csv() {
    let (broker, dir, desk) = world();
    let a = flag("fa", "shop-a", "310105", Severity::High, 0.93);
    let b = flag("fb", "shop-b", "310105", Severity::Low, 0.41);
    let c = flag("fc", "shop-c", "310106", Severity::Medium, 0.7);
    // Delivered twice, and one message that is no flag.
    produce_flags(&broker.addr, &[a.clone(), b.clone(), c.clone(), a.clone()]);
    produce(
        &broker.addr,
        "inspection.food",
        &[("x".into(), b"{\"not\": \"a flag\"}".to_vec())],
    );

    let li = Client::login_as(&desk, "li");
    let ids = wait_for("li's two flags", Duration::from_secs(60), || {
        let ids = li.flag_ids("/api/flags?status=open");
        (ids.len() == 2).then_some(ids)
    });
    assert_eq!(ids, ["fa", "fb"]);
    // Every message read, the duplicate kept once, the stranger counted.
    let m = wait_for("all five messages read", Duration::from_secs(30), || {
        let m = desk.metrics();
        (metric(&m, "reviewguard_desk_flags_ingested_total", &[]) == 5.0).then_some(m)
    });
    assert_eq!(
        metric(
            &m,
            "reviewguard_desk_flags_ingested_total",
            &["result=\"stored\""]
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            "reviewguard_desk_flags_ingested_total",
            &["result=\"duplicate\""]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "reviewguard_desk_flags_ingested_total",
            &["result=\"rejected\""]
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "reviewguard_desk_open_flags", &["region=\"310105\""]),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            "reviewguard_desk_open_flags",
            &["region=\"310106\"", "severity=\"medium\""]
        ),
        1.0
    );
    // The offsets are committed once the rows are kept.
    wait_for(
        "the desk's offsets committed",
        Duration::from_secs(30),
        || (committed_total(&broker.addr, "desk-test", "inspection.food", 2) == 5).then_some(()),
    );

    // Another region's inspector sees neither the flag nor can act on it.
    let wang = Client::login_as(&desk, "wang");
    assert_eq!(wang.flag_ids("/api/flags?status=all"), ["fc"]);
    assert_eq!(wang.get("/api/flags/fa").status(), 404);
    assert_eq!(wang.get("/flags/fa").status(), 404);
    let outcome = json!({"inspected_at": now_beijing(), "outcome": 1,
                         "categories": ["illness", "hygiene"], "note": "后厨无消毒记录"});
    assert_eq!(wang.post("/api/flags/fa/outcome", &outcome).status(), 404);
    assert_eq!(
        wang.post("/api/flags/fa/dismiss", &json!({"reason": "x"}))
            .status(),
        404
    );
    // The supervisor sees all three.
    let zhao = Client::login_as(&desk, "zhao");
    assert_eq!(zhao.flag_ids("/api/flags?status=all"), ["fa", "fb", "fc"]);

    // Without a session: 401; without the CSRF token: 403.
    let anon = Client::new(&desk);
    assert_eq!(anon.post("/api/flags/fa/outcome", &outcome).status(), 401);
    assert_eq!(anon.get("/api/session").status(), 401);
    let mut no_csrf = Client::login_as(&desk, "li");
    no_csrf.csrf = String::new();
    assert_eq!(
        no_csrf.post("/api/flags/fa/outcome", &outcome).status(),
        403
    );
    no_csrf.csrf = "a".repeat(43);
    assert_eq!(
        no_csrf.post("/api/flags/fa/outcome", &outcome).status(),
        403
    );

    // li takes the flag, records violations; dismisses the other.
    assert_eq!(li.post("/api/flags/fa/assign", &json!({})).status(), 200);
    let r = li.post("/api/flags/fa/outcome", &outcome);
    assert_eq!(r.status(), 201);
    let rec: serde_json::Value = r.json().unwrap();
    let outcome_id = rec["outcome_id"].as_str().unwrap().to_owned();
    assert_eq!(li.post("/api/flags/fa/outcome", &outcome).status(), 409);
    assert_eq!(
        li.post(
            "/api/flags/fb/dismiss",
            &json!({"reason": "competitor attack"})
        )
        .status(),
        200
    );
    assert_eq!(li.flag_ids("/api/flags?status=open"), Vec::<String>::new());
    let fa = li.get_json("/api/flags/fa");
    assert_eq!(fa["status"], "inspected");
    assert_eq!(fa["outcome"]["outcome_id"], outcome_id.as_str());
    let actions: Vec<&str> = fa["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["assign", "outcome"]);

    // A plain Kafka consumer reads the outcome, once, as the contract says.
    let (key, v) = first_outcome(&broker.addr, Duration::from_secs(60));
    assert_eq!(key, b"shop-a");
    assert_eq!(v["outcome_id"], outcome_id.as_str());
    assert_eq!(v["flag_id"], "fa");
    assert_eq!(v["business_id"], "shop-a");
    assert_eq!(v["region"], "310105");
    assert_eq!(v["outcome"], 1);
    assert_eq!(v["categories"], json!(["hygiene", "illness"]));
    assert!(v["inspector"].as_str().unwrap().starts_with("insp-"));
    assert!(!v.to_string().contains("\"li\""));
    assert!(reviewguard::core::outcome::decode(v.to_string().as_bytes()).is_ok());
    wait_for("the outcome marked sent", Duration::from_secs(30), || {
        (metric(
            &desk.metrics(),
            "reviewguard_desk_outcomes_unpublished",
            &[],
        ) == 0.0)
            .then_some(())
    });
    let all = read_all(&broker.addr, "inspection.outcomes", 2);
    assert_eq!(all.len(), 1, "the outcome is sent once");

    // The inspections CSV that `train` reads.
    let csv = dir.path().join("inspections.csv");
    let out = desk.cli(&["outcomes", "export", "--out", csv.to_str().unwrap()]);
    assert!(out.contains("wrote 1 outcomes"), "{out}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("business_id,domain,inspected_at,outcome,")
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("shop-a,food,") && row.contains(",1,310105,hygiene;illness,fa,"),
        "{row}"
    );
    // The same row from the topic, as any system's outcomes would be read.
    let from_topic = dir.path().join("from-topic.csv");
    let out = desk.cli(&[
        "outcomes",
        "export",
        "--from-topic",
        "--out",
        from_topic.to_str().unwrap(),
    ]);
    assert!(out.contains("wrote 1 outcomes"), "{out}");
    let topic_text = std::fs::read_to_string(&from_topic).unwrap();
    assert_eq!(
        topic_text
            .lines()
            .nth(1)
            .map(|l| l.split(',').take(8).collect::<Vec<_>>()),
        Some(row.split(',').take(8).collect::<Vec<_>>())
    );
    let read = reviewguard::offline::train::read_inspections(&csv).unwrap();
    assert_eq!(read.len(), 1);
    assert!(read[0].outcome);

    // The audit log has every view and action, and names no password.
    let audit = desk.cli(&["desk", "audit"]);
    for needle in [
        "\tli\tview_flags\t",
        "\twang\trefused\tfa",
        "\tli\tassign\tfa",
        "\tli\toutcome\tfa",
        "\tli\tdismiss\tfb\tcompetitor attack",
        "user_add",
    ] {
        assert!(audit.contains(needle), "audit lacks {needle:?}:\n{audit}");
    }
    assert!(!audit.contains(PASSWORD));
    let m = desk.metrics();
    assert_eq!(
        metric(
            &m,
            "reviewguard_desk_outcomes_recorded_total",
            &["outcome=\"violation\""]
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "reviewguard_desk_open_flags", &["region=\"310105\""]),
        0.0
    );
    // Supervisors' overview: one flagged inspection, one violation.
    let o = zhao.get_json("/api/overview");
    assert_eq!(o["yield_90d"]["flagged"]["inspections"], 1);
    assert_eq!(o["yield_90d"]["flagged"]["violations"], 1);
    // 310106: one open flag against two inspections a week.
    let r = o["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["region"] == "310106")
        .unwrap();
    assert_eq!(
        (r["open"].as_i64(), r["inspections_per_week"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(r["weeks_to_clear"].as_f64(), Some(0.5));
    assert!(
        zhao.get("/overview")
            .text()
            .unwrap()
            .contains("<tr data-region=\"310106\">")
    );
    assert_eq!(li.get("/api/overview").status(), 403);
    assert!(!desk.log().contains("后厨"), "no note text in the log");
    // A removed user's session ends at once.
    assert!(
        desk.cli(&["desk", "user", "remove", "--name", "wang"])
            .contains("removed")
    );
    assert_eq!(wang.get("/api/session").status(), 401);
    assert!(!desk.cli(&["desk", "user", "list"]).contains("wang"));
}

#[test]
fn five_wrong_passwords_slow_the_next_login() {
    let (_broker, _dir, desk) = world();
    let c = Client::new(&desk);
    for _ in 0..5 {
        assert_eq!(c.login("li", "wrong password").status(), 401);
    }
    let r = c.login("li", PASSWORD);
    assert_eq!(r.status(), 429, "the right password waits too");
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 20, "{wait}");
    // Another user from another address is not slowed; this address is.
    assert_eq!(c.login("wang", PASSWORD).status(), 429);
    let m = desk.metrics();
    assert_eq!(
        metric(&m, "reviewguard_desk_logins_total", &["result=\"refused\""]),
        5.0
    );
    assert_eq!(
        metric(
            &m,
            "reviewguard_desk_logins_total",
            &["result=\"throttled\""]
        ),
        2.0
    );
    assert!(
        desk.cli(&["desk", "audit"])
            .contains("\tli\tlogin_failed\t")
    );
    // A login posted from another site's page is refused.
    let r = Client::new(&desk)
        .http
        .post(format!("http://{}/login", desk.addr))
        .header("Origin", "https://evil.example")
        .form(&[("username", "wang"), ("password", PASSWORD)])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[test]
fn hostile_input_gets_a_clear_4xx_and_is_stored_escaped() {
    let (broker, _dir, mut desk) = world();
    produce_flags(
        &broker.addr,
        &[
            flag("fh", "shop-h", "310105", Severity::High, 0.9),
            flag("fd", "shop-d", "310105", Severity::Low, 0.4),
        ],
    );
    let li = Client::login_as(&desk, "li");
    wait_for("the flags", Duration::from_secs(60), || {
        (li.flag_ids("/api/flags").len() == 2).then_some(())
    });
    let error = |r: reqwest::blocking::Response| -> (u16, String) {
        let s = r.status().as_u16();
        let v: serde_json::Value = r.json().unwrap_or_default();
        (s, v["error"].as_str().unwrap_or("").to_owned())
    };
    let now = now_beijing();
    // Wrong shapes name the field.
    let (s, e) = error(li.post(
        "/api/flags/fh/outcome",
        &json!({"inspected_at": now, "outcome": "yes"}),
    ));
    assert_eq!(s, 400);
    assert!(e.contains("outcome") || e.contains("invalid type"), "{e}");
    let (s, e) = error(li.post("/api/flags/fh/outcome", &json!({"outcome": 1})));
    assert_eq!((s, e.contains("inspected_at")), (400, true), "{e}");
    let (s, e) = error(li.post(
        "/api/flags/fh/outcome",
        &json!({"inspected_at": now, "outcome": 1, "extra": 1}),
    ));
    assert_eq!((s, e.contains("extra")), (400, true), "{e}");
    let (s, e) = error(li.post("/api/flags/fh/outcome", &json!([1, 2])));
    assert_eq!(s, 400, "{e}");
    let (s, e) = error(li.post(
        "/api/flags/fh/outcome",
        &json!({"inspected_at": now, "outcome": 1, "note": "长".repeat(2001)}),
    ));
    assert_eq!((s, e.contains("note")), (400, true), "{e}");
    let (s, e) = error(li.post(
        "/api/flags/fh/outcome",
        &json!({"inspected_at": now, "outcome": 1, "categories": ["<b>"]}),
    ));
    assert_eq!((s, e.contains("categories")), (400, true), "{e}");
    let (s, e) = error(li.post("/api/flags/fh/dismiss", &json!({"reason": ""})));
    assert_eq!((s, e.contains("reason")), (400, true), "{e}");
    // Not UTF-8, not JSON, too big, wrong type.
    let (s, e) = error(li.post_raw(
        "/api/flags/fh/outcome",
        "application/json",
        b"{\"note\": \"\xff\xfe\"}".to_vec(),
    ));
    assert_eq!((s, e.contains("UTF-8")), (400, true), "{e}");
    assert_eq!(
        li.post_raw("/api/flags/fh/outcome", "application/json", b"{".to_vec())
            .status(),
        400
    );
    assert_eq!(
        li.post_raw("/api/flags/fh/outcome", "text/plain", b"{}".to_vec())
            .status(),
        415
    );
    assert_eq!(
        li.post_raw(
            "/api/flags/fh/outcome",
            "application/json",
            vec![b' '; 200_000]
        )
        .status(),
        413
    );
    assert_eq!(li.get("/api/flags?status=%3Cscript%3E").status(), 400);
    assert_eq!(
        li.get("/api/flags?limit=999999999999999999999").status(),
        400
    );
    assert_eq!(
        li.get(&format!("/api/flags/{}", "x".repeat(5000))).status(),
        404
    );
    // Routine inspections and assignments are checked as strictly.
    let routine = |business: serde_json::Value, domain: &str| json!({"business_id": business, "domain": domain, "region": "310105", "inspected_at": now, "outcome": 0});
    let (s, e) = error(li.post("/api/outcomes", &routine(json!("b".repeat(200)), "food")));
    assert_eq!((s, e.contains("business_id")), (400, true), "{e}");
    let (s, e) = error(li.post("/api/outcomes", &routine(json!("b"), "<food>")));
    assert_eq!((s, e.contains("domain")), (400, true), "{e}");
    let (s, e) = error(li.post("/api/outcomes", &routine(json!(["b"]), "food")));
    assert_eq!(s, 400, "{e}");
    assert_eq!(
        li.post("/api/flags/fh/assign", &json!({"user": 5}))
            .status(),
        400
    );
    assert_eq!(
        li.post("/api/flags/fh/assign", &json!({"user": "wang"}))
            .status(),
        403
    );
    let r = li
        .http
        .post(format!("{}/login", li.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(b"username=%ff%fe&password=\xff".to_vec())
        .send()
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Nothing of that was stored; the desk still serves.
    assert_eq!(li.get_json("/api/flags/fh")["status"], "open");

    // Script in a note is kept as text and shown escaped, never run.
    let note = "<script>alert('x')</script><img src=x onerror=alert(1)> 老鼠 \"quoted\"";
    let r = li.post(
        "/api/flags/fh/outcome",
        &json!({"inspected_at": now, "outcome": 0, "note": note}),
    );
    assert_eq!(r.status(), 201);
    let v = li.get_json("/api/flags/fh");
    assert_eq!(v["outcome"]["note"], note, "stored as given");
    let page = li.get("/flags/fh").text().unwrap();
    assert!(!page.contains("<script>alert"), "raw script in the page");
    assert!(
        page.contains("&lt;script&gt;alert('x')&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    // A dismissal's reason with markup shows as text in the flag's history.
    let reason = "<b onmouseover=alert(1)>竞争对手</b>";
    assert_eq!(
        li.post("/api/flags/fd/dismiss", &json!({"reason": reason}))
            .status(),
        200
    );
    let page = li.get("/flags/fd").text().unwrap();
    assert!(
        page.contains("&lt;b onmouseover=alert(1)&gt;竞争对手&lt;/b&gt;")
            && !page.contains("<b onmouseover"),
        "{page}"
    );
    assert!(
        desk.child.try_wait().unwrap().is_none(),
        "the desk is alive"
    );
}

#[test]
fn an_outcome_recorded_while_kafka_is_down_is_sent_once_when_it_is_back() {
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("desk.sqlite");
    let desk = DeskProc::start(&brokers, store.to_str().unwrap(), dir.path());
    desk.add_user("li", "inspector", &["310105"]);
    let li = Client::login_as(&desk, "li");
    let r = li.post(
        "/api/outcomes",
        &json!({"business_id": "shop-r", "domain": "food", "region": "310105",
                "inspected_at": now_beijing(), "outcome": 0}),
    );
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().unwrap()["outcome_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        metric(
            &desk.metrics(),
            "reviewguard_desk_outcomes_unpublished",
            &[]
        ),
        1.0
    );
    // Another region is refused.
    let other = li.post(
        "/api/outcomes",
        &json!({"business_id": "shop-r", "domain": "food", "region": "999999",
                "inspected_at": now_beijing(), "outcome": 0}),
    );
    assert_eq!(other.status(), 403);

    // The broker comes up; the outcome goes out, once.
    let broker = Broker::start_on(port);
    broker.create_topics(1);
    let (_, v) = first_outcome(&broker.addr, Duration::from_secs(120));
    assert_eq!(v["outcome_id"], id.as_str());
    assert_eq!(v["flag_id"], serde_json::Value::Null);
    wait_for("the outcome marked sent", Duration::from_secs(60), || {
        (metric(
            &desk.metrics(),
            "reviewguard_desk_outcomes_unpublished",
            &[],
        ) == 0.0)
            .then_some(())
    });
    assert_eq!(read_all(&broker.addr, "inspection.outcomes", 1).len(), 1);
}

#[test]
fn the_demo_serves_its_flags_on_the_desk_and_prints_the_login() {
    use std::io::BufRead as _;
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reviewguard"))
        .args([
            "demo",
            "--businesses",
            "40",
            "--days",
            "20",
            "--desk",
            &addr,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let line = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the demo's desk line");
        if l.starts_with("desk: ") {
            break l;
        }
    };
    assert!(line.contains(&format!("http://{addr}")), "{line}");
    let password = line
        .split("password ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let c = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = c
        .post(format!("http://{addr}/login"))
        .form(&[("username", "demo"), ("password", password.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let flags: serde_json::Value = c
        .get(format!("http://{addr}/api/flags?status=all&limit=1000"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let n: usize = line
        .split(" flags)")
        .next()
        .unwrap()
        .rsplit('(')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 0);
    assert_eq!(flags.as_array().unwrap().len(), n);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_for("the demo to stop", Duration::from_secs(30), || {
        child.try_wait().unwrap()
    });
    assert!(status.success());
}

#[test]
fn a_killed_desk_loses_no_flag_and_keeps_none_twice() {
    let broker = Broker::start();
    broker.create_topics(1);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("desk.sqlite");
    let store = store.to_str().unwrap();
    let flags: Vec<_> = (0..400)
        .map(|i| {
            flag(
                &format!("k-{i:03}"),
                &format!("shop-{i}"),
                "310105",
                Severity::Low,
                0.5,
            )
        })
        .collect();
    // One flag per record batch: a restarted consumer resumes mid-stream.
    let recs: Vec<(String, Vec<u8>)> = flags
        .iter()
        .map(|f| (f.business_id.clone(), serde_json::to_vec(f).unwrap()))
        .collect();
    produce_with(&broker.addr, "inspection.food", &recs, 1);
    let mut first = DeskProc::start(&broker.addr, store, dir.path());
    wait_for(
        "the desk to store some flags",
        Duration::from_secs(60),
        || {
            let m = first.metrics();
            (metric(
                &m,
                "reviewguard_desk_flags_ingested_total",
                &["result=\"stored\""],
            ) >= 30.0)
                .then_some(())
        },
    );
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let second = DeskProc::start(&broker.addr, store, dir.path());
    second.add_user("li", "inspector", &["310105"]);
    let li = Client::login_as(&second, "li");
    let ids = wait_for(
        "every flag, after the restart",
        Duration::from_secs(120),
        || {
            let ids = li.flag_ids("/api/flags?status=all&limit=1000");
            (ids.len() >= 400).then_some(ids)
        },
    );
    let expected: Vec<String> = flags.iter().map(|f| f.flag_id.clone()).collect();
    assert_eq!(ids, expected, "each flag kept exactly once");
}
