//! The desk as an inspector uses it: a real headless Chromium (Debian's
//! `chromium` and `chromium-driver`, scripts/test.sh installs them) driven
//! over WebDriver. Log in, see only one's region, open a flag, record a
//! violation, find it on `inspection.outcomes` and in the exported CSV; be
//! refused another region's flag, a request without the CSRF token, and a
//! sixth wrong password.

mod common;

use common::desk::*;
use common::*;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use reviewguard::types::Severity;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// chromedriver in a process group of its own, killed whole on drop, so
/// that no Chromium outlives the test (a failed assertion included).
struct Driver(Child);
impl Drop for Driver {
    fn drop(&mut self) {
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn chromedriver() -> (Driver, u16) {
    let port = free_port();
    use std::os::unix::process::CommandExt as _;
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start chromedriver; scripts/test.sh installs Debian's chromium-driver");
    wait_for("chromedriver to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    (Driver(child), port)
}

async fn browser(port: u16, profile: &std::path::Path) -> Browser {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--window-size=1200,1000",
                     "--lang=zh-CN", format!("--user-data-dir={}", profile.display())],
        }),
    );
    ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("cannot open a Chromium session through chromedriver")
}

async fn log_in(b: &Browser, base: &str, name: &str, password: &str) {
    b.goto(&format!("{base}/login")).await.unwrap();
    b.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    b.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    b.find(Locator::Css("form.login button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn text_of(b: &Browser, css: &str) -> String {
    b.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

#[test]
fn an_inspector_records_a_violation_in_the_browser() {
    let broker = Broker::start();
    broker.create_topics(2);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("desk.sqlite");
    let desk = DeskProc::start(&broker.addr, store.to_str().unwrap(), dir.path());
    desk.add_user("li", "inspector", &["310105"]);
    desk.add_user("wang", "inspector", &["310106"]);
    let mut flags = vec![
        flag("b-high", "shop-1", "310105", Severity::High, 0.94),
        flag("b-med", "shop-2", "310105", Severity::Medium, 0.72),
        flag("b-low", "shop-3", "310105", Severity::Low, 0.45),
        flag("b-other", "shop-9", "310106", Severity::High, 0.97),
    ];
    flags[0].business_name = Some("老王麻辣烫（徐汇店）".into());
    produce_flags(&broker.addr, &flags);
    let api = Client::login_as(&desk, "li");
    wait_for(
        "the desk to keep li's flags",
        Duration::from_secs(60),
        || (api.flag_ids("/api/flags").len() == 3).then_some(()),
    );

    let (_driver, port) = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let base = format!("http://{}", desk.addr);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = browser(port, profile.path()).await;

        // Log in; only li's region, highest risk first, in Chinese.
        log_in(&b, &base, "li", PASSWORD).await;
        b.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("ul.flags li.flag")).await.unwrap();
        assert!(b.current_url().await.unwrap().path().ends_with("/flags"));
        let items = b.find_all(Locator::Css("li.flag")).await.unwrap();
        let mut ids = Vec::new();
        for i in &items {
            assert_eq!(i.attr("data-region").await.unwrap().as_deref(), Some("310105"));
            ids.push(i.attr("data-flag-id").await.unwrap().unwrap());
        }
        assert_eq!(ids, ["b-high", "b-med", "b-low"]);
        assert!(text_of(&b, "h1").await.contains("待处理预警"));
        let shot = b.screenshot().await.unwrap();
        assert!(shot.starts_with(b"\x89PNG"));
        let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("desk-flags.png");
        std::fs::write(&out, &shot).unwrap();

        // Open the top flag; its reason is in plain words.
        b.find(Locator::Css("li.flag[data-flag-id=b-high] a")).await.unwrap().click().await.unwrap();
        assert!(text_of(&b, "section.reasons").await.contains("身体不适"));
        assert!(text_of(&b, "section.evidence").await.contains("[PHONE]"));
        // Record a violation: hygiene confirmed.
        b.find(Locator::Css("#outcome input[name=outcome][value='1']")).await.unwrap().click().await.unwrap();
        b.find(Locator::Css("#outcome input[name=categories][value=hygiene]")).await.unwrap().click().await.unwrap();
        b.find(Locator::Css("#outcome textarea[name=note]")).await.unwrap().send_keys("后厨地面积水，<b>无消毒记录</b>").await.unwrap();
        b.find(Locator::Css("#outcome button[type=submit]")).await.unwrap().click().await.unwrap();
        b.wait().at_most(Duration::from_secs(20))
            .for_element(Locator::Css("article.detail[data-status=inspected]"))
            .await
            .expect("the page shows the flag inspected");
        assert!(text_of(&b, "section.outcome").await.contains("<b>无消毒记录</b>"), "the note shows as text");

        // Without the CSRF token, the browser's own request is refused.
        let status = b
            .execute_async(
                "const done = arguments[0];
                 fetch('/api/flags/b-med/dismiss', {method: 'POST', credentials: 'same-origin',
                   headers: {'Content-Type': 'application/json'}, body: JSON.stringify({reason: 'x'})})
                   .then(r => done(r.status));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(status, 403);

        // Log out; another region's inspector does not get the flag.
        b.find(Locator::Css("form.logout button")).await.unwrap().click().await.unwrap();
        b.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("form.login")).await.unwrap();
        log_in(&b, &base, "wang", PASSWORD).await;
        b.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("ul.flags")).await.unwrap();
        b.goto(&format!("{base}/flags/b-high")).await.unwrap();
        assert!(text_of(&b, "main").await.contains("没有这条预警"));
        b.find(Locator::Css("form.logout button")).await.unwrap().click().await.unwrap();

        // Five wrong passwords, then even the right one waits.
        for _ in 0..5 {
            log_in(&b, &base, "li", "not the password").await;
            assert!(text_of(&b, "p.error").await.contains("用户名或密码错误"));
        }
        log_in(&b, &base, "li", PASSWORD).await;
        assert!(text_of(&b, "p.error").await.contains("秒后再试"));
        b.close().await.unwrap();
    });

    // The outcome is on inspection.outcomes for any plain consumer.
    let (_, v) = first_outcome(&broker.addr, Duration::from_secs(60));
    assert_eq!(v["flag_id"], "b-high");
    assert_eq!(v["outcome"], 1);
    assert_eq!(v["categories"], serde_json::json!(["hygiene"]));
    // And in the CSV a city retrains on.
    let csv = dir.path().join("inspections.csv");
    desk.cli(&["outcomes", "export", "--out", csv.to_str().unwrap()]);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("shop-1,food,") && l.contains(",1,310105,hygiene,b-high,")),
        "{text}"
    );
}
