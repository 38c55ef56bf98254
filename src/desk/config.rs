//! The `[desk]` section of the service configuration.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskConfig {
    /// Where the desk serves its pages, its JSON API, /metrics and /healthz.
    pub addr: String,
    /// A file path (SQLite, created when missing) or a `postgres://` URL.
    pub store: String,
    /// The desk's own consumer group on the inspection topics.
    pub group_id: String,
    /// How long a login lasts, in hours.
    pub session_hours: u64,
    /// Mark the session cookie `Secure` (serve the desk behind HTTPS).
    pub secure_cookies: bool,
    /// An open flag older than this many hours is overdue
    /// (`reviewguard_desk_flags_overdue`, alert `DeskFlagsOverdue`).
    pub overdue_hours: u64,
    /// Hour of the day (local time, `utc_offset_hours`) of the daily digest.
    pub digest_hour: u32,
    /// The regulator's time zone as an offset from UTC (China: 8).
    pub utc_offset_hours: i32,
    /// The desk's public address, for links in notifications (empty: none).
    pub public_url: String,
    /// Where notifications go.
    pub webhooks: Vec<Webhook>,
}

/// One notification target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `wecom` (企业微信 group robot), `dingtalk` (钉钉 robot) or `generic`
    /// (a JSON POST).
    pub kind: String,
    pub url: String,
    /// Regions whose flags go here; empty: every region.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Severities sent here (`high` at once, the others in the daily
    /// digest); empty: all three.
    #[serde(default)]
    pub severities: Vec<String>,
    /// DingTalk's signing secret (robots with "加签"); empty: unsigned.
    #[serde(default)]
    pub secret: String,
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            addr: "127.0.0.1:8080".into(),
            store: "desk.sqlite".into(),
            group_id: "reviewguard-desk".into(),
            session_hours: 12,
            secure_cookies: false,
            overdue_hours: 72,
            digest_hour: 8,
            utc_offset_hours: 8,
            public_url: String::new(),
            webhooks: Vec::new(),
        }
    }
}

pub const WEBHOOK_KINDS: [&str; 3] = ["wecom", "dingtalk", "generic"];

impl DeskConfig {
    /// The first problem with these settings, as (key, message).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.addr.parse::<std::net::SocketAddr>().is_err() {
            return Some(("desk.addr", format!("{:?} is not host:port", self.addr)));
        }
        if self.store.trim().is_empty() {
            return Some((
                "desk.store",
                "is empty; give a file path or a postgres:// URL".into(),
            ));
        }
        if self.group_id.trim().is_empty() {
            return Some(("desk.group_id", "is empty".into()));
        }
        if !(1..=24 * 30).contains(&self.session_hours) {
            return Some(("desk.session_hours", "must be from 1 to 720".into()));
        }
        if self.digest_hour > 23 {
            return Some(("desk.digest_hour", "must be from 0 to 23".into()));
        }
        if !(-12..=14).contains(&self.utc_offset_hours) {
            return Some(("desk.utc_offset_hours", "must be from -12 to 14".into()));
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            if !WEBHOOK_KINDS.contains(&w.kind.as_str()) {
                return Some((
                    "desk.webhooks",
                    format!(
                        "webhook {i}: kind {:?}; use one of {}",
                        w.kind,
                        WEBHOOK_KINDS.join(", ")
                    ),
                ));
            }
            if !(w.url.starts_with("https://") || w.url.starts_with("http://")) {
                return Some((
                    "desk.webhooks",
                    format!("webhook {i}: url must start with https:// or http://"),
                ));
            }
            if let Some(s) = w
                .severities
                .iter()
                .find(|s| !matches!(s.as_str(), "high" | "medium" | "low"))
            {
                return Some((
                    "desk.webhooks",
                    format!("webhook {i}: severity {s:?}; use high, medium or low"),
                ));
            }
        }
        None
    }

    pub fn is_postgres(&self) -> bool {
        self.store.starts_with("postgres://") || self.store.starts_with("postgresql://")
    }
}

#[cfg(test)]
mod tests {
    use crate::service::config::Config;

    fn load(env: &[(&str, &str)]) -> Result<Config, String> {
        Config::load(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn desk_keys_come_from_the_environment_and_bad_ones_are_named() {
        let cfg = load(&[
            ("REVIEWGUARD_DESK_ADDR", "0.0.0.0:8081"),
            ("REVIEWGUARD_DESK_STORE", "postgres://desk@db/desk"),
            (
                "REVIEWGUARD_DESK_WEBHOOKS",
                r#"[{kind = "wecom", url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", regions = ["310105"]}]"#,
            ),
        ])
        .unwrap();
        assert_eq!(cfg.desk.addr, "0.0.0.0:8081");
        assert!(cfg.desk.is_postgres());
        assert_eq!(cfg.desk.webhooks[0].regions, ["310105"]);
        for (key, value, named) in [
            ("REVIEWGUARD_DESK_ADDR", "localhost", "desk.addr"),
            ("REVIEWGUARD_DESK_DIGEST_HOUR", "24", "desk.digest_hour"),
            ("REVIEWGUARD_DESK_SESSION_HOURS", "0", "desk.session_hours"),
            (
                "REVIEWGUARD_DESK_WEBHOOKS",
                r#"[{kind = "slack", url = "https://x"}]"#,
                "desk.webhooks",
            ),
            (
                "REVIEWGUARD_DESK_WEBHOOKS",
                r#"[{kind = "generic", url = "ftp://x"}]"#,
                "desk.webhooks",
            ),
        ] {
            let e = load(&[(key, value)]).unwrap_err();
            assert!(e.contains(named), "{key}={value}: {e}");
        }
    }
}
