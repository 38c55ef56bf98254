use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_shipped_file_is_valid() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reviewguard.toml");
    Config::load(Some(&p), vec![]).unwrap();
}

#[test]
fn environment_overrides_keys_by_name_and_type() {
    let c = Config::load(
        None,
        env(&[
            ("REVIEWGUARD_KAFKA_BROKERS", "b1:9092,b2:9092"),
            ("REVIEWGUARD_KAFKA_GROUP_ID", "g7"),
            ("REVIEWGUARD_KAFKA_AUTO_OFFSET_RESET", "latest"),
            ("REVIEWGUARD_METRICS_ADDR", "0.0.0.0:9000"),
            ("REVIEWGUARD_PRIVACY_PSEUDONYM_KEY", "s3cret-s3cret-s3cret"),
            ("REVIEWGUARD_LIMITS_BATCH_SIZE", "64"),
            ("REVIEWGUARD_DECIDE_COOLDOWN_HOURS", "24"),
            ("REVIEWGUARD_LOG", "debug"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(c.kafka.brokers, "b1:9092,b2:9092");
    assert_eq!(c.kafka.group_id, "g7");
    assert_eq!(c.kafka.auto_offset_reset, "latest");
    assert_eq!(c.metrics.addr, "0.0.0.0:9000");
    assert_eq!(c.limits.batch_size, 64);
    assert_eq!(c.decide.cooldown_hours, 24);
    assert_eq!(c.pseudonym_key().unwrap().unwrap(), b"s3cret-s3cret-s3cret");
    assert_eq!(c.kafka.guarantee(), Guarantee::AtLeastOnce);
    let c = Config::load(
        None,
        env(&[
            ("REVIEWGUARD_KAFKA_PROCESSING_GUARANTEE", "exactly_once"),
            ("REVIEWGUARD_KAFKA_INSTANCE_ID", "rg-0"),
        ]),
    )
    .unwrap();
    assert_eq!(c.kafka.guarantee(), Guarantee::ExactlyOnce);
    assert_eq!(c.kafka.transactional_id(), "reviewguard-rg-0");
}

#[test]
fn invalid_values_name_the_key() {
    let e = Config::load(
        None,
        env(&[("REVIEWGUARD_KAFKA_AUTO_OFFSET_RESET", "sometimes")]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("kafka.auto_offset_reset"), "{e}");
    let e = Config::load(
        None,
        env(&[("REVIEWGUARD_KAFKA_PROCESSING_GUARANTEE", "exactly_twice")]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("kafka.processing_guarantee"), "{e}");
    let e = Config::load(None, env(&[("REVIEWGUARD_LIMITS_BATCH_SIZE", "many")])).unwrap_err();
    assert!(
        e.to_string().contains("REVIEWGUARD_LIMITS_BATCH_SIZE"),
        "{e}"
    );
    let e = Config::load(None, env(&[("REVIEWGUARD_KAFKA_BROKER", "x")])).unwrap_err();
    assert!(e.to_string().contains("broker"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "[kafka]\nbrokerz = \"x\"\n").unwrap();
    let e = Config::load(Some(&p), vec![]).unwrap_err();
    assert!(e.to_string().contains("brokerz"), "{e}");
}

const PASSWORD: &str = "pw-Zk38-never-printed";

#[test]
fn kafka_sasl_and_tls_from_the_environment_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("kafka-password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let c = Config::load(
        None,
        env(&[
            ("REVIEWGUARD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("REVIEWGUARD_KAFKA_SASL_MECHANISM", "scram-sha-512"),
            ("REVIEWGUARD_KAFKA_SASL_USERNAME", "reviewguard"),
            ("REVIEWGUARD_KAFKA_SASL_PASSWORD_FILE", pw.to_str().unwrap()),
            ("REVIEWGUARD_KAFKA_SSL_CA_LOCATION", ca.to_str().unwrap()),
        ]),
    )
    .unwrap();
    let props: std::collections::HashMap<_, _> = c.kafka_security().into_iter().collect();
    assert_eq!(props["security.protocol"], "sasl_ssl");
    assert_eq!(props["sasl.mechanism"], "SCRAM-SHA-512");
    assert_eq!(props["sasl.username"], "reviewguard");
    assert_eq!(
        props["sasl.password"], PASSWORD,
        "the file's trailing newline is dropped"
    );
    assert_eq!(props["ssl.ca.location"], ca.to_str().unwrap());
    // librdkafka reads the CA file when the client is made (this one is no
    // certificate); without it, this build (TLS and SCRAM) makes the client.
    let bad_ca: Result<rdkafka::consumer::BaseConsumer, _> =
        c.kafka_client().set("group.id", "g").create();
    let e = bad_ca.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains("ssl.ca.location") && !e.contains(PASSWORD),
        "{e}"
    );
    let mut system_ca = c.clone();
    system_ca.kafka.ssl_ca_location.clear();
    let consumer: Result<rdkafka::consumer::BaseConsumer, _> =
        system_ca.kafka_client().set("group.id", "g").create();
    assert!(consumer.is_ok(), "{:?}", consumer.err());
    for m in ["PLAIN", "SCRAM-SHA-256"] {
        let c = Config::load(
            None,
            env(&[
                ("REVIEWGUARD_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
                ("REVIEWGUARD_KAFKA_SASL_MECHANISM", m),
                ("REVIEWGUARD_KAFKA_SASL_USERNAME", "u"),
                ("REVIEWGUARD_KAFKA_SASL_PASSWORD", PASSWORD),
            ]),
        )
        .unwrap();
        let made: Result<rdkafka::producer::BaseProducer, _> = c.kafka_client().create();
        assert!(made.is_ok(), "{m}: {:?}", made.err());
    }
    // The default is plaintext with nothing else.
    assert_eq!(
        Config::default().kafka_security(),
        vec![("security.protocol", "plaintext".to_owned())]
    );
}

#[test]
fn secrets_never_show_in_debug_output_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tok-Qm81-never-printed").unwrap();
    let c = Config::load(
        None,
        env(&[
            ("REVIEWGUARD_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
            ("REVIEWGUARD_KAFKA_SASL_MECHANISM", "PLAIN"),
            ("REVIEWGUARD_KAFKA_SASL_USERNAME", "u"),
            ("REVIEWGUARD_KAFKA_SASL_PASSWORD", PASSWORD),
            (
                "REVIEWGUARD_PRIVACY_PSEUDONYM_KEY",
                "key-Wc55-never-printed",
            ),
            (
                "REVIEWGUARD_METRICS_ADMIN_TOKEN_FILE",
                token.to_str().unwrap(),
            ),
        ]),
    )
    .unwrap();
    assert_eq!(c.admin_token().unwrap().expose(), "tok-Qm81-never-printed");
    let shown = format!("{c:?} {c:#?}");
    for secret in [PASSWORD, "key-Wc55-never-printed", "tok-Qm81-never-printed"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("<redacted>"));

    // Errors about the SASL settings name the key, never the password.
    for bad in [
        vec![
            ("REVIEWGUARD_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("REVIEWGUARD_KAFKA_SASL_MECHANISM", "GSSAPI"),
            ("REVIEWGUARD_KAFKA_SASL_USERNAME", "u"),
            ("REVIEWGUARD_KAFKA_SASL_PASSWORD", PASSWORD),
        ],
        vec![
            ("REVIEWGUARD_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("REVIEWGUARD_KAFKA_SASL_MECHANISM", "PLAIN"),
            ("REVIEWGUARD_KAFKA_SASL_PASSWORD", PASSWORD),
        ],
        vec![
            ("REVIEWGUARD_KAFKA_SECURITY_PROTOCOL", "tls-please"),
            ("REVIEWGUARD_KAFKA_SASL_PASSWORD", PASSWORD),
        ],
        vec![
            ("REVIEWGUARD_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("REVIEWGUARD_KAFKA_SASL_MECHANISM", "PLAIN"),
            ("REVIEWGUARD_KAFKA_SASL_USERNAME", "u"),
            ("REVIEWGUARD_KAFKA_SASL_PASSWORD", PASSWORD),
            (
                "REVIEWGUARD_KAFKA_SASL_PASSWORD_FILE",
                token.to_str().unwrap(),
            ),
        ],
        vec![
            ("REVIEWGUARD_KAFKA_SASL_PASSWORD", PASSWORD),
            ("REVIEWGUARD_KAFKA_SESSION_TIMEOUT_MS", "soon"),
        ],
    ] {
        let e = Config::load(None, env(&bad)).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(text.to_lowercase().contains("kafka"), "{text}");
        assert!(!text.contains(PASSWORD), "password in {text}");
    }
    let e = Config::load(
        None,
        env(&[
            ("REVIEWGUARD_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("REVIEWGUARD_KAFKA_SASL_MECHANISM", "PLAIN"),
            ("REVIEWGUARD_KAFKA_SASL_USERNAME", "u"),
        ]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("kafka.sasl_password"), "{e}");
}
