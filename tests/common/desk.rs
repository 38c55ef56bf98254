//! The desk under test: the real binary serving a store, users added with
//! the real `desk user add`, flags produced to a real broker, and an HTTP
//! client that keeps its session cookie.

use super::*;
use reviewguard::core::flag::{Evidence, Flag, ModelRef, Reason};
use reviewguard::types::{Domain, Severity};

pub const PASSWORD: &str = "correct-horse-battery";

/// `reviewguard desk` with its own store, on a free port.
pub struct DeskProc {
    pub child: Child,
    pub addr: String,
    pub store: String,
    pub log: PathBuf,
    env: Vec<(String, String)>,
}

pub fn desk_env(brokers: &str, store: &str, addr: &str) -> Vec<(String, String)> {
    vec![
        ("REVIEWGUARD_KAFKA_BROKERS".into(), brokers.into()),
        ("REVIEWGUARD_DESK_STORE".into(), store.into()),
        ("REVIEWGUARD_DESK_ADDR".into(), addr.into()),
        ("REVIEWGUARD_DESK_GROUP_ID".into(), "desk-test".into()),
    ]
}

fn reviewguard(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reviewguard"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl DeskProc {
    pub fn start(brokers: &str, store: &str, dir: &std::path::Path) -> DeskProc {
        DeskProc::start_with(brokers, store, dir, &[])
    }

    pub fn start_with(
        brokers: &str,
        store: &str,
        dir: &std::path::Path,
        extra: &[(&str, &str)],
    ) -> DeskProc {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut env = desk_env(brokers, store, &addr);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let log = dir.join(format!("desk-{}.log", free_port()));
        let child = reviewguard(&env)
            .args(["desk", "--config", "config/reviewguard.toml"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start reviewguard desk");
        let d = DeskProc {
            child,
            addr,
            store: store.into(),
            log,
            env,
        };
        wait_for(
            "the desk to serve /healthz",
            Duration::from_secs(60),
            || match http_get(&d.addr, "/healthz") {
                Some((200, _)) => Some(()),
                _ => None,
            },
        );
        d
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `reviewguard desk <args>` against this desk's store; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(&self.env, args)
    }

    pub fn add_user(&self, name: &str, role: &str, regions: &[&str]) {
        add_user(&self.env, name, role, regions);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        http_get(&self.addr, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

impl Drop for DeskProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn cli(env: &[(String, String)], args: &[&str]) -> String {
    let out = reviewguard(env)
        .args(args)
        .args(["--config", "config/reviewguard.toml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reviewguard {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn add_user(env: &[(String, String)], name: &str, role: &str, regions: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let mut args = vec!["desk", "user", "add", "--name", name, "--role", role];
    for r in regions {
        args.extend(["--region", r]);
    }
    let pw = pw.to_str().unwrap().to_owned();
    args.extend(["--password-file", &pw]);
    cli(env, &args);
}

/// A flag as the service emits it.
pub fn flag(id: &str, business: &str, region: &str, severity: Severity, score: f64) -> Flag {
    Flag {
        schema_version: 1,
        flag_id: id.into(),
        domain: Domain::Food,
        business_id: business.into(),
        business_name: Some(format!("{business} 小吃店")),
        region: Some(region.into()),
        risk_score: score,
        severity,
        trigger: "model".into(),
        model: ModelRef {
            name: "food".into(),
            version: "2026.12.1".into(),
            sha256: "ab".repeat(32),
        },
        reasons: vec![Reason {
            feature: "illness_7d".into(),
            value: 3.0,
            contribution: 1.2,
            text: "3.0 reviews in the last 7 days report illness after eating".into(),
        }],
        features: [("illness_7d".to_owned(), 3.0)].into_iter().collect(),
        evidence: vec![Evidence {
            review_id: format!("r-{id}"),
            created_at: "2026-12-01T12:00:00+08:00".into(),
            signals: vec!["illness".into()],
            snippet: "吃完就拉肚子，电话[PHONE]".into(),
            photos: 1,
        }],
        reviews_considered: 40,
        event_time: "2026-12-01T12:00:00+08:00".into(),
        emitted_at: "2026-12-01T12:00:01Z".into(),
    }
}

pub fn produce_flags(brokers: &str, flags: &[Flag]) {
    let recs: Vec<(String, Vec<u8>)> = flags
        .iter()
        .map(|f| (f.business_id.clone(), serde_json::to_vec(f).unwrap()))
        .collect();
    produce(brokers, "inspection.food", &recs);
}

/// An HTTP client with its own cookie jar, following no redirects.
pub struct Client {
    pub http: reqwest::blocking::Client,
    pub base: String,
    pub csrf: String,
}

impl Client {
    pub fn new(desk: &DeskProc) -> Client {
        Client {
            http: reqwest::blocking::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: format!("http://{}", desk.addr),
            csrf: String::new(),
        }
    }

    pub fn login_as(desk: &DeskProc, name: &str) -> Client {
        let mut c = Client::new(desk);
        let r = c.login(name, PASSWORD);
        assert_eq!(r.status(), 200, "login as {name}");
        let v: serde_json::Value = r.json().unwrap();
        c.csrf = v["csrf_token"].as_str().unwrap().to_owned();
        c
    }

    pub fn login(&self, name: &str, password: &str) -> reqwest::blocking::Response {
        self.http
            .post(format!("{}/login", self.base))
            .form(&[("username", name), ("password", password)])
            .send()
            .unwrap()
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap()
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path);
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().unwrap()
    }

    /// POST a JSON body with the CSRF token.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::blocking::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("X-CSRF-Token", &self.csrf)
            .json(body)
            .send()
            .unwrap()
    }

    /// POST raw bytes with a content type, with the CSRF token.
    pub fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::blocking::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("X-CSRF-Token", &self.csrf)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .unwrap()
    }

    /// The ids of the flags listed at `path`.
    pub fn flag_ids(&self, path: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .get_json(path)
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["flag_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }
}

/// Now in Beijing time, RFC 3339.
pub fn now_beijing() -> String {
    let t = chrono::Utc::now() + chrono::Duration::hours(8);
    t.format("%Y-%m-%dT%H:%M:%S+08:00").to_string()
}

/// The first message on `inspection.outcomes`, read by a plain Kafka
/// consumer: its key and its JSON.
pub fn first_outcome(brokers: &str, timeout: Duration) -> (Vec<u8>, serde_json::Value) {
    use rdkafka::Message as _;
    let msgs = consume_until(brokers, &["inspection.outcomes"], timeout, |m| {
        !m.is_empty()
    });
    let payload = msgs[0].payload().expect("an outcome message has a payload");
    (
        msgs[0].key().unwrap_or_default().to_vec(),
        serde_json::from_slice(payload).expect("an outcome message is JSON"),
    )
}
