//! Access to the running service: the HTTP endpoints bind to loopback by
//! default, and `POST /reload` (the one endpoint that changes state) needs the
//! configured bearer token: 401 without it or with a wrong one, 200 with it,
//! and no such endpoint at all when no token is configured.

mod common;

use common::*;
use std::time::Duration;

const TOKEN: &str = "admin-token-Hq27-never-logged";

/// One HTTP POST on loopback: (status, body).
fn http_post(addr: &str, path: &str, bearer: Option<&str>) -> Option<(u16, String)> {
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    http_request(addr, "POST", path, &auth, Duration::from_secs(40))
}

#[test]
fn metrics_bind_to_loopback_by_default() {
    use reviewguard::service::config::Config;
    let shipped = Config::load(
        Some(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reviewguard.toml")),
        Vec::new(),
    )
    .unwrap();
    for c in [Config::default(), shipped] {
        let addr: std::net::SocketAddr = c.metrics.addr.parse().unwrap();
        assert!(addr.ip().is_loopback(), "{addr}");
        assert!(c.admin_token().is_none(), "no admin token by default");
    }
}

#[test]
fn reload_needs_the_bearer_token_and_is_absent_without_one() {
    let broker = Broker::start();
    broker.create_topics(1);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let model = dir.path().join("food.json");
    let original = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/food.json"),
    )
    .unwrap();
    std::fs::write(&model, &original).unwrap();

    let mut guarded = Service::start(
        &broker.addr,
        "rg-access-1",
        dir.path(),
        &[
            (
                "REVIEWGUARD_METRICS_ADMIN_TOKEN_FILE",
                token_file.to_str().unwrap(),
            ),
            ("REVIEWGUARD_MODELS_FOOD", model.to_str().unwrap()),
            // Only a request reloads.
            ("REVIEWGUARD_MODELS_RELOAD_SECONDS", "0"),
            ("REVIEWGUARD_LOG", "debug"),
        ],
    );
    let mut open = Service::start(&broker.addr, "rg-access-2", dir.path(), &[]);
    guarded.wait_ready(Duration::from_secs(60));
    open.wait_ready(Duration::from_secs(60));

    // No token configured: the endpoint does not exist.
    let (status, _) = http_post(&open.metrics_addr, "/reload", Some(TOKEN)).unwrap();
    assert_eq!(status, 404);

    // Without a token, with a wrong one, with a prefix of the right one: 401.
    let addr = guarded.metrics_addr.clone();
    for bearer in [
        None,
        Some("wrong"),
        Some(&TOKEN[..TOKEN.len() - 1]),
        Some(""),
    ] {
        let (status, _) = http_post(&addr, "/reload", bearer).unwrap();
        assert_eq!(status, 401, "bearer {bearer:?}");
    }
    // A GET does not reload either.
    let (status, _) = http_get(&addr, "/reload").unwrap();
    assert_eq!(status, 405);

    // The right token: 200, nothing changed yet.
    let (status, body) = http_post(&addr, "/reload", Some(TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["changed"], false, "{body}");

    // A new model file is picked up on request, not before.
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    v["version"] = "2099.7".into();
    reviewguard::core::model::seal(&mut v);
    std::fs::write(&model, v.to_string()).unwrap();
    let m = guarded.metrics().unwrap();
    assert!(!m.contains("2099.7"), "reloaded without a request");
    let (status, body) = http_post(&addr, "/reload", Some(TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["changed"], true, "{body}");
    assert_eq!(report["refused"], 0, "{body}");
    let m = guarded.metrics().unwrap();
    assert_eq!(
        metric(
            &m,
            "reviewguard_model_info",
            &["domain=\"food\"", "version=\"2099.7\""]
        ),
        1.0
    );

    // A broken file is refused, reported, and the model keeps serving.
    std::fs::write(&model, "{ truncated").unwrap();
    let (status, body) = http_post(&addr, "/reload", Some(TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["changed"], false, "{body}");
    assert_eq!(report["refused"], 1, "{body}");
    assert!(body.contains("2099.7"), "{body}");

    assert!(guarded.terminate().success());
    assert!(open.terminate().success());
    let log = guarded.log();
    assert!(log.contains("POST /reload refused"), "{log}");
    assert!(!log.contains(TOKEN), "the token was logged");
}

/// SASL settings reach librdkafka (it attempts the SCRAM handshake, which
/// Tansu refuses), and the password shows nowhere in the debug log.
#[test]
fn sasl_settings_are_used_and_the_password_is_never_logged() {
    const PASSWORD: &str = "sasl-pw-Tv93-never-logged";
    let broker = Broker::start();
    broker.create_topics(1);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("kafka-password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let mut svc = Service::start(
        &broker.addr,
        "rg-access-sasl",
        dir.path(),
        &[
            ("REVIEWGUARD_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
            ("REVIEWGUARD_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
            ("REVIEWGUARD_KAFKA_SASL_USERNAME", "reviewguard"),
            ("REVIEWGUARD_KAFKA_SASL_PASSWORD_FILE", pw.to_str().unwrap()),
            ("REVIEWGUARD_LOG", "debug"),
        ],
    );
    let log = wait_for(
        "librdkafka to attempt the SASL handshake",
        Duration::from_secs(30),
        || {
            let log = svc.log();
            log.contains("SASL SCRAM-SHA-256").then_some(log)
        },
    );
    // Not ready: the broker did not authenticate it.
    assert!(!matches!(
        http_get(&svc.metrics_addr, "/readyz"),
        Some((200, _))
    ));
    svc.kill();
    let log = log + &svc.log();
    assert!(!log.contains(PASSWORD), "the SASL password was logged");
}
