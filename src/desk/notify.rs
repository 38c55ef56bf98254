//! Notifications of new flags to webhooks: WeCom (企业微信) and DingTalk
//! (钉钉) group robots and a generic JSON POST. A high flag is sent at
//! once; medium and low ones go in a daily digest. Each flag reaches each
//! webhook once (claimed in the store, so desk instances sharing a store do
//! not both send). A send is retried with back-off; a failure is counted
//! (`reviewguard_desk_webhook_failures_total`) and never holds up the desk.

use super::config::{DeskConfig, Webhook};
use super::metrics::DeskMetrics;
use super::store::{FlagRow, Store, now_ms};
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::time::Duration;

/// Waits between attempts of one send.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub attempts: u32,
    pub first: Duration,
    pub timeout: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 4,
            first: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        }
    }
}

pub struct Notifier {
    hooks: Vec<(i64, Webhook)>,
    client: reqwest::Client,
    store: Store,
    metrics: DeskMetrics,
    backoff: Backoff,
    public_url: String,
}

/// A stable id of a webhook (its kind and URL), for "sent once".
fn hook_id(w: &Webhook) -> i64 {
    let h = Sha256::digest(format!("{}\n{}", w.kind, w.url).as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    i64::from_le_bytes(b) & i64::MAX
}

fn wants(w: &Webhook, f: &FlagRow) -> bool {
    (w.regions.is_empty() || w.regions.contains(&f.region))
        && (w.severities.is_empty() || w.severities.contains(&f.severity))
}

/// Text safe inside a robot's markdown: no markup, no line breaks.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '[' | ']' | '(' | ')' | '*' | '#' | '>' | '`' | '<' | '_' | '|' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .take(120)
        .collect()
}

fn severity_zh(s: &str) -> &'static str {
    match s {
        "high" => "高风险",
        "medium" => "中风险",
        _ => "低风险",
    }
}

fn first_reason(f: &FlagRow) -> String {
    super::i18n::first_reason(super::i18n::Lang::Zh, &f.reason)
}

impl Notifier {
    pub fn new(cfg: &DeskConfig, store: Store, metrics: DeskMetrics, backoff: Backoff) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(backoff.timeout)
            .build()
            .unwrap_or_default();
        Notifier {
            hooks: cfg
                .webhooks
                .iter()
                .map(|w| (hook_id(w), w.clone()))
                .collect(),
            client,
            store,
            metrics,
            backoff,
            public_url: cfg.public_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn has_hooks(&self) -> bool {
        !self.hooks.is_empty()
    }

    fn link(&self, flag_id: &str) -> Option<String> {
        (!self.public_url.is_empty()).then(|| format!("{}/flags/{flag_id}", self.public_url))
    }

    fn line(&self, f: &FlagRow) -> String {
        let name = if f.business_name.is_empty() {
            &f.business_id
        } else {
            &f.business_name
        };
        let mut s = format!(
            "{} · {}（{}）风险分 {:.2}：{}",
            severity_zh(&f.severity),
            plain(name),
            plain(&f.region),
            f.risk_score,
            plain(&first_reason(f))
        );
        if let Some(l) = self.link(&f.flag_id) {
            s += &format!(" [查看]({l})");
        }
        s
    }

    /// The request body of a message about `flags` to `w`.
    pub fn body(&self, w: &Webhook, digest: bool, flags: &[FlagRow]) -> Value {
        let title = if digest {
            format!("今日风险预警汇总：{} 条", flags.len())
        } else {
            "高风险预警".to_owned()
        };
        let text = std::iter::once(format!("**{title}**"))
            .chain(flags.iter().map(|f| format!("> {}", self.line(f))))
            .collect::<Vec<_>>()
            .join("\n");
        match w.kind.as_str() {
            "wecom" => json!({ "msgtype": "markdown", "markdown": { "content": text } }),
            "dingtalk" => {
                json!({ "msgtype": "markdown", "markdown": { "title": title, "text": text } })
            }
            _ => json!({
                "kind": if digest { "digest" } else { "flag" },
                "flags": flags.iter().map(|f| json!({
                    "flag_id": f.flag_id, "domain": f.domain, "business_id": f.business_id,
                    "business_name": f.business_name, "region": f.region, "severity": f.severity,
                    "risk_score": f.risk_score, "reason": first_reason(f), "url": self.link(&f.flag_id),
                })).collect::<Vec<_>>(),
            }),
        }
    }

    /// The URL to post to: DingTalk robots with a secret sign each request.
    fn url(w: &Webhook) -> String {
        if w.kind != "dingtalk" || w.secret.is_empty() {
            return w.url.clone();
        }
        let ts = now_ms();
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(w.secret.as_bytes()) else {
            return w.url.clone();
        };
        mac.update(format!("{ts}\n{}", w.secret).as_bytes());
        let sign = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let sign: String = sign
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let sep = if w.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}timestamp={ts}&sign={sign}", w.url)
    }

    /// One delivery, with retries. The robots answer 200 with a non-zero
    /// `errcode` when they refuse a message.
    async fn deliver(&self, w: &Webhook, body: &Value) -> bool {
        let mut wait = self.backoff.first;
        for attempt in 1..=self.backoff.attempts {
            let result = self.client.post(Self::url(w)).json(body).send().await;
            let ok = match result {
                Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                    Ok(v) => v.get("errcode").and_then(Value::as_i64).unwrap_or(0) == 0,
                    Err(_) => w.kind == "generic",
                },
                _ => false,
            };
            if ok {
                self.metrics
                    .webhook_sent
                    .with_label_values(&[&w.kind])
                    .inc();
                return true;
            }
            self.metrics
                .webhook_failures
                .with_label_values(&[&w.kind])
                .inc();
            tracing::warn!(kind = %w.kind, attempt, "webhook send failed");
            if attempt < self.backoff.attempts {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        false
    }

    /// A newly stored flag: a high one goes out now, in the background.
    pub fn new_flag(self: &std::sync::Arc<Self>, f: &FlagRow) {
        if f.severity != "high" {
            return;
        }
        for (id, w) in &self.hooks {
            if !wants(w, f) {
                continue;
            }
            let (me, id, w, f) = (self.clone(), *id, w.clone(), f.clone());
            tokio::spawn(async move { me.send_claimed(id, &w, false, vec![f]).await });
        }
    }

    /// Send `flags` to one webhook, each claimed first; a failed send
    /// releases its claims so the next digest tries again.
    async fn send_claimed(&self, id: i64, w: &Webhook, digest: bool, flags: Vec<FlagRow>) {
        let mut claimed = Vec::new();
        for f in flags {
            match self
                .store
                .claim_notification(&f.flag_id, id, now_ms())
                .await
            {
                Ok(true) => claimed.push(f),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot claim a notification"),
            }
        }
        if claimed.is_empty() {
            return;
        }
        let ok = self.deliver(w, &self.body(w, digest, &claimed)).await;
        for f in &claimed {
            let r = if ok {
                self.store
                    .set_notification(&f.flag_id, id, "sent", now_ms())
                    .await
            } else {
                self.store.release_notification(&f.flag_id, id).await
            };
            if let Err(e) = r {
                tracing::warn!(error = %e, "cannot record a notification");
            }
        }
    }

    /// The digest: every open flag of the last week not yet sent to each
    /// webhook (at most 50 per message, highest risk first).
    pub async fn digest(&self) {
        let since = now_ms() - 7 * 86_400_000;
        for (id, w) in &self.hooks {
            // Read widely, then keep this hook's regions and severities:
            // other hooks' flags must not crowd its own out.
            let flags = match self.store.unnotified(*id, since, 5_000).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read flags for the digest");
                    continue;
                }
            };
            let flags: Vec<FlagRow> = flags.into_iter().filter(|f| wants(w, f)).take(50).collect();
            if !flags.is_empty() {
                self.send_claimed(*id, w, true, flags).await;
            }
        }
    }

    /// Send the digest every day at `digest_hour` (local time).
    pub async fn run_digest(
        self: std::sync::Arc<Self>,
        digest_hour: u32,
        utc_offset_hours: i32,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        if self.hooks.is_empty() {
            return;
        }
        loop {
            let wait = until_next(chrono::Utc::now(), digest_hour, utc_offset_hours);
            let due = tokio::select! {
                _ = tokio::time::sleep(wait) => true,
                _ = stop.wait_for(|s| *s) => false,
            };
            if !due {
                return;
            }
            self.digest().await;
        }
    }
}

/// Time from `now` to the next `hour`:00 at the offset.
pub fn until_next(now: chrono::DateTime<chrono::Utc>, hour: u32, offset_hours: i32) -> Duration {
    let local = now + chrono::Duration::hours(offset_hours.into());
    let today = local
        .date_naive()
        .and_hms_opt(hour, 0, 0)
        .map(|t| t.and_utc());
    let Some(today) = today else {
        return Duration::from_secs(86_400);
    };
    let next = if today > local {
        today
    } else {
        today + chrono::Duration::days(1)
    };
    (next - local)
        .to_std()
        .unwrap_or(Duration::from_secs(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_waits_for_its_hour_in_local_time() {
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        // 23:00 UTC is 07:00 in Beijing: one hour to 08:00.
        assert_eq!(
            until_next(t("2026-12-07T23:00:00Z"), 8, 8),
            Duration::from_secs(3600)
        );
        // 08:30 Beijing: tomorrow.
        assert_eq!(
            until_next(t("2026-12-08T00:30:00Z"), 8, 8),
            Duration::from_secs(23 * 3600 + 1800)
        );
    }

    /// A hook on loopback that answers its first `fail` requests with 500,
    /// then 200, and keeps what it accepted.
    async fn hook(fail: usize) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = got.clone();
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/h",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (seen, failed) = (seen.clone(), failed.clone());
                async move {
                    use std::sync::atomic::Ordering;
                    if failed.fetch_add(1, Ordering::SeqCst) < fail {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    if let Ok(v) = serde_json::from_slice(&body) {
                        seen.lock().unwrap().push(v);
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        (format!("http://{addr}/h"), got)
    }

    async fn notifier(url: &str, store: &Store) -> Notifier {
        let cfg = DeskConfig {
            webhooks: vec![Webhook {
                kind: "generic".into(),
                url: url.into(),
                regions: vec![],
                severities: vec![],
                secret: String::new(),
            }],
            ..DeskConfig::default()
        };
        let fast = Backoff {
            attempts: 2,
            first: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        };
        Notifier::new(&cfg, store.clone(), DeskMetrics::new(), fast)
    }

    #[tokio::test]
    async fn the_digest_sends_each_open_flag_once_and_retries_what_failed() {
        use crate::desk::store::tests::flag;
        use crate::types::Severity;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("d.sqlite").to_str().unwrap())
            .await
            .unwrap();
        for (id, sev) in [("a", Severity::Low), ("b", Severity::Medium)] {
            store
                .insert_flag(&flag(id, "310105", sev, 0.5), "{}", now_ms())
                .await
                .unwrap();
        }
        // The hook fails both attempts of the first digest: nothing is
        // marked sent; the next digest sends both, once; a third, nothing.
        let (url, got) = hook(2).await;
        let n = notifier(&url, &store).await;
        n.digest().await;
        assert_eq!(
            n.metrics
                .webhook_failures
                .with_label_values(&["generic"])
                .get(),
            2
        );
        assert!(got.lock().unwrap().is_empty());
        n.digest().await;
        n.digest().await;
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["kind"], "digest");
        assert_eq!(got[0]["flags"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn robot_markdown_cannot_be_broken_by_a_business_name() {
        assert_eq!(plain("[x](http://e)\n**"), " x  http://e    ");
    }
}
