//! Service configuration: `config/reviewguard.toml`, every key overridable by
//! an environment variable `REVIEWGUARD_<SECTION>_<KEY>` (upper case), e.g.
//! `REVIEWGUARD_KAFKA_BROKERS`. An invalid config is refused at start with the
//! key and the reason.

use crate::core::decide::DecideConfig;
use crate::types::Domain;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const ENV_PREFIX: &str = "REVIEWGUARD_";

/// A secret config value (password, key, token): it prints as `<redacted>`
/// in `Debug` output, so a logged or printed config never shows it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that hands it on.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

/// librdkafka's names of the security protocols and SASL mechanisms we accept.
const SECURITY_PROTOCOLS: [&str; 4] = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
const SASL_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    pub metrics: MetricsConfig,
    pub privacy: PrivacyConfig,
    pub models: ModelsConfig,
    pub lexicons: LexiconsConfig,
    pub limits: LimitsConfig,
    pub decide: DecideConfig,
    /// The inspectors' desk (`reviewguard desk`).
    pub desk: crate::desk::config::DeskConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    pub group_id: String,
    /// Where a group with no committed offset starts: `earliest` or `latest`.
    pub auto_offset_reset: String,
    /// How long a dead member holds its partitions. Kept short so a crashed
    /// instance's partitions move on within seconds.
    pub session_timeout_ms: u32,
    /// Longest time between two polls before the member is considered stuck;
    /// also how long a rebalance waits for members to rejoin, so a crashed
    /// member's partitions move on within about this much time.
    pub max_poll_interval_ms: u32,
    /// Longest time the broker may hold a fetch waiting for data. Apache
    /// Kafka answers as soon as data arrives, so this only matters when idle;
    /// brokers that wait it out on every fetch (Tansu 0.6) add it to latency.
    pub fetch_wait_max_ms: u32,
    pub client_id: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// With `sasl_*`: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: String,
    pub sasl_username: String,
    /// Prefer the environment (`REVIEWGUARD_KAFKA_SASL_PASSWORD`) or
    /// `sasl_password_file`; never written to logs or errors.
    pub sasl_password: Secret,
    pub sasl_password_file: String,
    /// CA certificate(s) (PEM) to verify the brokers; empty: the system's.
    pub ssl_ca_location: String,
    /// Client certificate and key (PEM) for mutual TLS; empty: none.
    pub ssl_certificate_location: String,
    pub ssl_key_location: String,
    pub ssl_key_password: Secret,
    pub ssl_key_password_file: String,
    /// `at_least_once` (default) or `exactly_once` (Kafka transactions: a
    /// batch's flags, dead letters, changelog records and input offsets are
    /// committed together or not at all).
    pub processing_guarantee: String,
    /// Stable id of this instance within the group, for the transactional id
    /// of `exactly_once` (`<group_id>-<instance_id>`). Empty: the host name.
    /// Must differ between live instances and stay the same across restarts.
    pub instance_id: String,
}

/// What `kafka.processing_guarantee` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    AtLeastOnce,
    ExactlyOnce,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    pub reviews_food: String,
    pub reviews_tourism: String,
    pub inspection_food: String,
    pub inspection_tourism: String,
    pub dlq: String,
    pub changelog: String,
    /// What inspectors found (read by every instance, whole).
    pub outcomes: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of /metrics, /healthz and /readyz.
    pub addr: String,
    /// Bearer token for the endpoints that change state (`POST /reload`);
    /// empty (and no file): those endpoints are disabled.
    pub admin_token: Secret,
    pub admin_token_file: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Secret for reviewer pseudonyms (HMAC-SHA256). Prefer the environment
    /// (`REVIEWGUARD_PRIVACY_PSEUDONYM_KEY`) or `pseudonym_key_file`.
    pub pseudonym_key: Secret,
    pub pseudonym_key_file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Model files; empty means the defaults compiled into the binary.
    pub food: String,
    pub tourism: String,
    /// How often `run` looks for changed model and lexicon files (0: never).
    pub reload_seconds: u64,
    /// Shadow models, scored beside the live ones without ever flagging
    /// (their own metrics only); empty: none. Loaded at start.
    pub shadow_food: String,
    pub shadow_tourism: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LexiconsConfig {
    /// Folder with common.toml, food.toml, tourism.toml; empty means built in.
    pub dir: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_message_bytes: usize,
    /// Messages processed before their outputs are awaited and offsets stored.
    pub batch_size: usize,
    /// Longest wait for a batch to fill, in milliseconds; 0: a batch ends
    /// as soon as no further message is ready (low latency when traffic is
    /// light, full batches under load).
    pub batch_wait_ms: u64,
    /// How often the changed states go to the changelog and the input
    /// offsets are committed (with them, in exactly_once mode, the
    /// transaction), in milliseconds. Longer: fewer changelog records (a
    /// business changed many times is written once), more work redone
    /// after a crash.
    pub commit_interval_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            group_id: "reviewguard".into(),
            auto_offset_reset: "earliest".into(),
            session_timeout_ms: 6000,
            max_poll_interval_ms: 15000,
            fetch_wait_max_ms: 10,
            client_id: "reviewguard".into(),
            security_protocol: "plaintext".into(),
            sasl_mechanism: String::new(),
            sasl_username: String::new(),
            sasl_password: Secret::default(),
            sasl_password_file: String::new(),
            ssl_ca_location: String::new(),
            ssl_certificate_location: String::new(),
            ssl_key_location: String::new(),
            ssl_key_password: Secret::default(),
            ssl_key_password_file: String::new(),
            processing_guarantee: "at_least_once".into(),
            instance_id: String::new(),
        }
    }
}

impl KafkaConfig {
    pub fn guarantee(&self) -> Guarantee {
        if self.processing_guarantee == "exactly_once" {
            Guarantee::ExactlyOnce
        } else {
            Guarantee::AtLeastOnce
        }
    }

    /// `transactional.id` of `exactly_once`: `<group_id>-<instance_id>`, the
    /// instance id defaulting to the host name. Stable across restarts, so a
    /// restarted instance fences its previous incarnation and aborts the
    /// transaction it left open at once (instead of after
    /// `transaction.timeout.ms`). Zombies that lost their partitions in a
    /// rebalance are fenced by the consumer group generation the offsets are
    /// committed with (KIP-447), so the id need not name the partitions.
    pub fn transactional_id(&self) -> String {
        let instance = if self.instance_id.is_empty() {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_owned())
                        .filter(|h| !h.is_empty())
                })
                .unwrap_or_else(|| self.client_id.clone())
        } else {
            self.instance_id.clone()
        };
        format!("{}-{instance}", self.group_id)
    }
}

impl TopicsConfig {
    /// The domain of a review topic; `None` for any other topic.
    pub fn domain_of(&self, topic: &str) -> Option<Domain> {
        if topic == self.reviews_food {
            Some(Domain::Food)
        } else if topic == self.reviews_tourism {
            Some(Domain::Tourism)
        } else {
            None
        }
    }

    /// Every topic the service uses, inputs first.
    pub fn all(&self) -> [&str; 7] {
        [
            &self.reviews_food,
            &self.reviews_tourism,
            &self.inspection_food,
            &self.inspection_tourism,
            &self.dlq,
            &self.changelog,
            &self.outcomes,
        ]
    }
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            reviews_food: "reviews.food".into(),
            reviews_tourism: "reviews.tourism".into(),
            inspection_food: "inspection.food".into(),
            inspection_tourism: "inspection.tourism".into(),
            dlq: "reviewguard.dlq".into(),
            changelog: "reviewguard.changelog".into(),
            outcomes: "inspection.outcomes".into(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            addr: "127.0.0.1:9898".into(),
            admin_token: Secret::default(),
            admin_token_file: String::new(),
        }
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            food: String::new(),
            tourism: String::new(),
            reload_seconds: 5,
            shadow_food: String::new(),
            shadow_tourism: String::new(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: crate::core::review::DEFAULT_MAX_MESSAGE_BYTES,
            batch_size: 2000,
            batch_wait_ms: 0,
            commit_interval_ms: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config key {key}: {message}")]
    Invalid { key: String, message: String },
}

/// A secret from a file, trailing white space (a final newline) removed.
fn read_secret_file(key: &str, path: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, format!("cannot read {path}: {e}")))?;
    let s = text.trim_end().to_owned();
    if s.is_empty() {
        return Err(invalid(key, format!("{path} is empty")));
    }
    Ok(s)
}

/// A whole-number setting outside its range names the key and the range.
fn within(key: &str, value: u64, range: std::ops::RangeInclusive<u64>) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be from {} to {}", range.start(), range.end()),
        ))
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

impl Config {
    /// Load `path` (when given), apply environment overrides, validate.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (source, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?,
            ),
            None => ("(defaults)".to_owned(), String::new()),
        };
        let mut value: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: source.clone(),
            message: e.to_string(),
        })?;
        let defaults = toml::Table::try_from(Config::default())
            .map_err(|e| invalid("(defaults)", e.to_string()))?;
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            // The section is the part before the first underscore that names one.
            let Some((section, key)) = defaults.keys().find_map(|s| {
                rest.strip_prefix(&format!("{s}_"))
                    .map(|k| (s.clone(), k.to_owned()))
            }) else {
                // Variables such as REVIEWGUARD_LOG are not config keys.
                continue;
            };
            let Some(default) = defaults.get(&section).and_then(|s| s.get(&key)) else {
                return Err(invalid(
                    &name,
                    format!("no key {key:?} in section [{section}]"),
                ));
            };
            let v = match default {
                toml::Value::Integer(_) => toml::Value::Integer(
                    raw.trim()
                        .parse()
                        .map_err(|_| invalid(&name, format!("{raw:?} is not a whole number")))?,
                ),
                toml::Value::Float(_) => toml::Value::Float(
                    raw.trim()
                        .parse()
                        .map_err(|_| invalid(&name, format!("{raw:?} is not a number")))?,
                ),
                toml::Value::Boolean(_) => toml::Value::Boolean(
                    raw.trim()
                        .parse()
                        .map_err(|_| invalid(&name, format!("{raw:?} is not true or false")))?,
                ),
                // A list (such as decide.capacity) is written as TOML:
                // `[{region = "310105", domain = "food", per_week = 5, businesses = 1200}]`.
                toml::Value::Array(_) => {
                    let t: toml::Table = toml::from_str(&format!("v = {raw}"))
                        .map_err(|e| invalid(&name, format!("{raw:?} is not a TOML list: {e}")))?;
                    t.get("v")
                        .cloned()
                        .unwrap_or(toml::Value::Array(Vec::new()))
                }
                _ => toml::Value::String(raw),
            };
            let table = value
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match table.as_table_mut() {
                Some(t) => {
                    t.insert(key, v);
                }
                None => return Err(invalid(&section, "must be a table")),
            }
        }
        let mut cfg: Config =
            toml::Value::Table(value)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: source,
                    message: e.to_string(),
                })?;
        cfg.read_secret_files()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Fill each secret from its `*_file` key (a secret set both ways is an
    /// error: which one wins would be a guess).
    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        let k = &mut self.kafka;
        for (key, secret, file) in [
            (
                "kafka.sasl_password_file",
                &mut k.sasl_password,
                &k.sasl_password_file,
            ),
            (
                "kafka.ssl_key_password_file",
                &mut k.ssl_key_password,
                &k.ssl_key_password_file,
            ),
            (
                "metrics.admin_token_file",
                &mut self.metrics.admin_token,
                &self.metrics.admin_token_file,
            ),
        ] {
            if file.is_empty() {
                continue;
            }
            if !secret.is_empty() {
                return Err(invalid(
                    key,
                    "the secret is also set directly; set one of the two",
                ));
            }
            *secret = Secret::new(read_secret_file(key, file)?);
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(problem) = self.decide.problem() {
            return Err(invalid("decide.capacity", problem));
        }
        if let Some((key, problem)) = self.desk.problem() {
            return Err(invalid(key, problem));
        }
        if self.kafka.brokers.trim().is_empty() {
            return Err(invalid(
                "kafka.brokers",
                "is empty; give host:port[,host:port...]",
            ));
        }
        if self.kafka.group_id.trim().is_empty() {
            return Err(invalid("kafka.group_id", "is empty"));
        }
        if !matches!(self.kafka.auto_offset_reset.as_str(), "earliest" | "latest") {
            return Err(invalid(
                "kafka.auto_offset_reset",
                format!(
                    "is {:?}; use \"earliest\" or \"latest\"",
                    self.kafka.auto_offset_reset
                ),
            ));
        }
        if !matches!(
            self.kafka.processing_guarantee.as_str(),
            "at_least_once" | "exactly_once"
        ) {
            return Err(invalid(
                "kafka.processing_guarantee",
                format!(
                    "is {:?}; use \"at_least_once\" or \"exactly_once\"",
                    self.kafka.processing_guarantee
                ),
            ));
        }
        if !self
            .kafka
            .instance_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(invalid(
                "kafka.instance_id",
                "may hold only letters, digits, '.', '_' and '-'",
            ));
        }
        within(
            "kafka.session_timeout_ms",
            self.kafka.session_timeout_ms.into(),
            1000..=300_000,
        )?;
        within(
            "kafka.fetch_wait_max_ms",
            self.kafka.fetch_wait_max_ms.into(),
            1..=10_000,
        )?;
        within(
            "limits.commit_interval_ms",
            self.limits.commit_interval_ms,
            1..=60_000,
        )?;
        if self.metrics.addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "metrics.addr",
                format!(
                    "{:?} is not an address such as 127.0.0.1:9898",
                    self.metrics.addr
                ),
            ));
        }
        let t = &self.topics;
        for (k, v) in [
            ("topics.reviews_food", &t.reviews_food),
            ("topics.reviews_tourism", &t.reviews_tourism),
            ("topics.inspection_food", &t.inspection_food),
            ("topics.inspection_tourism", &t.inspection_tourism),
            ("topics.dlq", &t.dlq),
            ("topics.changelog", &t.changelog),
        ] {
            if v.is_empty()
                || !v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                || v.len() > 249
            {
                return Err(invalid(k, format!("{v:?} is not a valid Kafka topic name")));
            }
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.limits.max_message_bytes) {
            return Err(invalid(
                "limits.max_message_bytes",
                "must be from 1 KiB to 64 MiB",
            ));
        }
        within(
            "limits.batch_size",
            self.limits.batch_size as u64,
            1..=100_000,
        )?;
        self.validate_kafka_security()
    }

    fn validate_kafka_security(&self) -> Result<(), ConfigError> {
        let k = &self.kafka;
        let protocol = k.security_protocol.to_ascii_lowercase();
        if !SECURITY_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(invalid(
                "kafka.security_protocol",
                format!(
                    "is {:?}; use one of {}",
                    k.security_protocol,
                    SECURITY_PROTOCOLS.join(", ")
                ),
            ));
        }
        let sasl = protocol.starts_with("sasl_");
        if sasl {
            let m = k.sasl_mechanism.to_ascii_uppercase();
            if !SASL_MECHANISMS.contains(&m.as_str()) {
                return Err(invalid(
                    "kafka.sasl_mechanism",
                    format!(
                        "is {:?}; with {protocol} use one of {}",
                        k.sasl_mechanism,
                        SASL_MECHANISMS.join(", ")
                    ),
                ));
            }
            if k.sasl_username.is_empty() {
                return Err(invalid(
                    "kafka.sasl_username",
                    format!("is empty; {protocol} needs it"),
                ));
            }
            if k.sasl_password.is_empty() {
                return Err(invalid(
                    "kafka.sasl_password",
                    format!(
                        "is empty; {protocol} needs it (REVIEWGUARD_KAFKA_SASL_PASSWORD or kafka.sasl_password_file)"
                    ),
                ));
            }
        } else if !k.sasl_mechanism.is_empty() || !k.sasl_username.is_empty() {
            return Err(invalid(
                "kafka.security_protocol",
                format!(
                    "is {protocol}, but SASL settings are given; use sasl_ssl (or sasl_plaintext)"
                ),
            ));
        }
        let tls = protocol.ends_with("ssl");
        for (key, path) in [
            ("kafka.ssl_ca_location", &k.ssl_ca_location),
            (
                "kafka.ssl_certificate_location",
                &k.ssl_certificate_location,
            ),
            ("kafka.ssl_key_location", &k.ssl_key_location),
        ] {
            if path.is_empty() {
                continue;
            }
            if !tls {
                return Err(invalid(
                    key,
                    format!(
                        "is set, but kafka.security_protocol is {protocol}; use ssl or sasl_ssl"
                    ),
                ));
            }
            if !Path::new(path).exists() {
                return Err(invalid(key, format!("{path} does not exist")));
            }
        }
        if k.ssl_certificate_location.is_empty() != k.ssl_key_location.is_empty() {
            return Err(invalid(
                "kafka.ssl_key_location",
                "mutual TLS needs both kafka.ssl_certificate_location and kafka.ssl_key_location",
            ));
        }
        Ok(())
    }

    /// The librdkafka properties for TLS and SASL; every client the service
    /// makes (consumer, producer, changelog reader, admin) gets them.
    pub fn kafka_security(&self) -> Vec<(&'static str, String)> {
        let k = &self.kafka;
        let protocol = k.security_protocol.to_ascii_lowercase();
        let mut p = vec![("security.protocol", protocol.clone())];
        if protocol.starts_with("sasl_") {
            p.push(("sasl.mechanism", k.sasl_mechanism.to_ascii_uppercase()));
            p.push(("sasl.username", k.sasl_username.clone()));
            p.push(("sasl.password", k.sasl_password.expose().to_owned()));
        }
        if protocol.ends_with("ssl") {
            for (name, v) in [
                ("ssl.ca.location", &k.ssl_ca_location),
                ("ssl.certificate.location", &k.ssl_certificate_location),
                ("ssl.key.location", &k.ssl_key_location),
            ] {
                if !v.is_empty() {
                    p.push((name, v.clone()));
                }
            }
            if !k.ssl_key_password.is_empty() {
                p.push(("ssl.key.password", k.ssl_key_password.expose().to_owned()));
            }
        }
        p
    }

    /// A librdkafka client config with the brokers, client id, security
    /// settings and reconnect backoff; callers add their own properties.
    pub fn kafka_client(&self) -> rdkafka::config::ClientConfig {
        let mut c = rdkafka::config::ClientConfig::new();
        c.set("bootstrap.servers", &self.kafka.brokers)
            .set("client.id", &self.kafka.client_id)
            // Exponential reconnect backoff; librdkafka adds -25%..+50% jitter.
            .set("reconnect.backoff.ms", "200")
            .set("reconnect.backoff.max.ms", "10000");
        for (k, v) in self.kafka_security() {
            c.set(k, v);
        }
        c
    }

    /// The admin bearer token, if the state-changing endpoints are enabled.
    pub fn admin_token(&self) -> Option<&Secret> {
        (!self.metrics.admin_token.is_empty()).then_some(&self.metrics.admin_token)
    }

    /// The pseudonym key: from `privacy.pseudonym_key`, else from the file.
    /// `None` when neither is set.
    pub fn pseudonym_key(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        if !self.privacy.pseudonym_key.is_empty() {
            return Ok(Some(
                self.privacy.pseudonym_key.expose().as_bytes().to_vec(),
            ));
        }
        if self.privacy.pseudonym_key_file.is_empty() {
            return Ok(None);
        }
        let key = std::fs::read(&self.privacy.pseudonym_key_file).map_err(|e| {
            invalid(
                "privacy.pseudonym_key_file",
                format!("cannot read the key file: {e}"),
            )
        })?;
        let trimmed = key.trim_ascii();
        if trimmed.len() < 16 {
            return Err(invalid(
                "privacy.pseudonym_key_file",
                "the key must be at least 16 bytes",
            ));
        }
        Ok(Some(trimmed.to_vec()))
    }

    /// Model and lexicon files `run` watches for changes.
    pub fn watched(&self) -> crate::service::reload::Watched {
        let path = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        crate::service::reload::Watched {
            food_model: path(&self.models.food),
            tourism_model: path(&self.models.tourism),
            shadow_food_model: path(&self.models.shadow_food),
            shadow_tourism_model: path(&self.models.shadow_tourism),
            lexicons: self.lexicon_dir(),
        }
    }

    pub fn lexicon_dir(&self) -> Option<PathBuf> {
        (!self.lexicons.dir.is_empty()).then(|| PathBuf::from(&self.lexicons.dir))
    }
}

#[cfg(test)]
mod tests;
