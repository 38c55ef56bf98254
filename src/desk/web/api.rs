//! The JSON API (contract in DESIGN.md, "The desk") and the login.

use super::{MAX_BODY_BYTES, SESSION_COOKIE, WebError, acting, json_body, session};
use crate::desk::Desk;
use crate::desk::auth;
use crate::desk::outcome::{self, DismissInput, OutcomeInput, RoutineInput};
use crate::desk::store::{
    AuditRow, FlagRow, Order, OutcomeRow, Recorded, Role, Session, StatusFilter, now_ms,
};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

pub const MAX_LIST: i64 = 1000;
pub const DEFAULT_LIST: i64 = 200;

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

fn session_cookie(desk: &Desk, token: &str, max_age_s: i64) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if desk.cfg.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

/// Whether a request's `Origin`, when it has one, is this desk: a page on
/// another site cannot log a browser in to an account of its choosing.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// A short, printable form of what a client sent as a user name, for the
/// audit log and the throttle.
fn name_key(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect::<String>()
        .to_lowercase()
}

pub async fn login(
    State(desk): State<Arc<Desk>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let html = wants_html(&headers);
    if !same_origin(&headers) {
        return Err(WebError::Forbidden(
            "a login must come from the desk's own page (Origin differs from Host)",
        ));
    }
    let form: LoginForm = serde_urlencoded::from_bytes(&body).map_err(|_| {
        WebError::BadRequest(
            "send the form fields username and password (application/x-www-form-urlencoded, UTF-8)"
                .into(),
        )
    })?;
    let who = name_key(&form.username);
    let user_key = format!("u:{who}");
    let ip_key = format!("ip:{}", peer.ip());
    let keys = [user_key.as_str(), ip_key.as_str()];
    let now = std::time::Instant::now();
    let wait = desk.throttle.wait(&keys, now);
    if !wait.is_zero() {
        // Counted, not audited: a row per refused attempt would let anyone
        // without an account fill the store.
        desk.metrics.logins.with_label_values(&["throttled"]).inc();
        if html {
            let secs = wait.as_secs().max(1);
            let msg = format!("too many failed logins; try again in {secs} seconds");
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                super::pages::login_html(&headers, Some(&msg)),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(r);
        }
        return Err(WebError::TooMany(wait));
    }
    let user = if form.password.len() > auth::MAX_PASSWORD_BYTES || who.is_empty() {
        None
    } else {
        desk.store.user(form.username.trim()).await?
    };
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| auth::decoy_hash().to_owned());
    let password = form.password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        desk.throttle.failed(&keys, now);
        desk.metrics.logins.with_label_values(&["refused"]).inc();
        desk.store
            .audit(&who, "login_failed", None, "", now_ms())
            .await?;
        let msg = "wrong user name or password";
        return Ok(if html {
            (
                StatusCode::UNAUTHORIZED,
                super::pages::login_html(&headers, Some(msg)),
            )
                .into_response()
        } else {
            (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "application/json")],
                json!({ "error": msg }).to_string(),
            )
                .into_response()
        });
    };
    desk.throttle.succeeded(&user_key);
    let token = auth::token();
    let csrf = auth::token();
    let hours = desk.cfg.session_hours as i64;
    desk.store
        .create_session(
            &auth::token_hash(&token),
            &user.name,
            &csrf,
            now_ms() + hours * 3_600_000,
        )
        .await?;
    desk.metrics.logins.with_label_values(&["ok"]).inc();
    desk.store
        .audit(&user.name, "login", None, "", now_ms())
        .await?;
    let cookie = session_cookie(&desk, &token, hours * 3600);
    let mut r = if html {
        see_other("/flags")
    } else {
        axum::Json(json!({
            "user": user.name, "role": user.role.as_str(), "regions": user.regions, "csrf_token": csrf,
        }))
        .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn logout(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form: Option<LogoutForm> = serde_urlencoded::from_bytes(&body).ok();
    let s = acting(
        &desk,
        &headers,
        form.as_ref().map(|f| f.csrf_token.as_str()),
    )
    .await?;
    if let Some(token) = super::cookie(&headers, SESSION_COOKIE) {
        desk.store.end_session(&auth::token_hash(token)).await?;
    }
    desk.store
        .audit(&s.user.name, "logout", None, "", now_ms())
        .await?;
    let mut r = if wants_html(&headers) {
        see_other("/login")
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&session_cookie(&desk, "", 0)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

pub async fn session_info(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let s = session(&desk, &headers).await?;
    Ok(axum::Json(json!({
        "user": s.user.name,
        "role": s.user.role.as_str(),
        "regions": s.user.regions,
        "csrf_token": s.csrf_token,
    }))
    .into_response())
}

/// The flag message as kept, with the desk's fields.
pub fn flag_json(f: &FlagRow) -> Value {
    let mut v: Value = serde_json::from_str(&f.body).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        for (k, x) in desk_fields(f) {
            o.insert(k.into(), x);
        }
    }
    v
}

fn desk_fields(f: &FlagRow) -> [(&'static str, Value); 3] {
    [
        ("status", json!(f.status)),
        ("assignee", json!(f.assignee)),
        (
            "received_at",
            json!(
                chrono::DateTime::from_timestamp_millis(f.received_ms)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            ),
        ),
    ]
}

/// A JSON array of flags, each the stored message with the desk's fields
/// spliced in (the message is not parsed again).
pub fn flags_json(rows: &[FlagRow]) -> String {
    let mut out = String::with_capacity(rows.iter().map(|r| r.body.len() + 96).sum::<usize>() + 2);
    out.push('[');
    for (i, f) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match f.body.trim_end().strip_suffix('}') {
            Some(head) if f.body.starts_with('{') => {
                out.push_str(head);
                for (k, x) in desk_fields(f) {
                    if head.len() > 1 {
                        out.push(',');
                    }
                    out.push_str(&format!("{}:{x}", json!(k)));
                }
                out.push('}');
            }
            _ => out.push_str(&flag_json(f).to_string()),
        }
    }
    out.push(']');
    out
}

pub fn outcome_json(o: &OutcomeRow) -> Value {
    json!({
        "outcome_id": o.outcome_id,
        "flag_id": o.flag_id,
        "business_id": o.business_id,
        "domain": o.domain,
        "region": o.region,
        "inspected_at": o.inspected_at,
        "outcome": i64::from(o.violation),
        "categories": o.categories,
        "note": o.note,
        "inspector": o.inspector,
        "recorded_by": o.recorded_by,
        "recorded_at": o.recorded_at,
        "published": o.published_ms.is_some(),
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The listing a query asks for, checked.
pub fn list_params(
    q: &ListQuery,
    default_limit: i64,
) -> Result<(StatusFilter, i64, i64), WebError> {
    let status = q.status.as_deref().unwrap_or("open");
    let filter = StatusFilter::parse(status).ok_or_else(|| {
        WebError::BadRequest("status must be open, all, assigned, inspected or dismissed".into())
    })?;
    let limit = q.limit.unwrap_or(default_limit);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(WebError::BadRequest(format!(
            "limit must be from 1 to {MAX_LIST}"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    if !(0..=1_000_000).contains(&offset) {
        return Err(WebError::BadRequest(
            "offset must be from 0 to 1000000".into(),
        ));
    }
    Ok((filter, limit, offset))
}

pub async fn flags(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let s = session(&desk, &headers).await?;
    let Query(q) = q.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let (filter, limit, offset) = list_params(&q, DEFAULT_LIST)?;
    let rows = desk
        .store
        .flags(&s.user.scope(), filter, Order::Newest, limit, offset)
        .await?;
    audit_list(&desk, &s, rows.len()).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        flags_json(&rows),
    )
        .into_response())
}

/// The flag `flag_id` if this session may see it.
pub async fn visible(desk: &Desk, s: &Session, flag_id: &str) -> Result<FlagRow, WebError> {
    if flag_id.is_empty() || flag_id.len() > 128 {
        return Err(WebError::NotFound);
    }
    match desk.store.flag(flag_id).await? {
        Some(f) if s.user.scope().allows(&f.region) => Ok(f),
        _ => {
            // Asking for a flag one may not see is audited too.
            desk.store
                .audit(&s.user.name, "refused", Some(flag_id), "", now_ms())
                .await?;
            Err(WebError::NotFound)
        }
    }
}

/// A listing of `n` flags seen, for the audit log.
pub async fn audit_list(desk: &Desk, s: &Session, n: usize) -> Result<(), WebError> {
    desk.store
        .audit(
            &s.user.name,
            "view_flags",
            None,
            &format!("{n} flags"),
            now_ms(),
        )
        .await?;
    Ok(())
}

/// One flag as its page and the API show it: the flag this session may
/// see, the actions on it and the outcome that closed it; the view audited.
pub async fn view_flag(
    desk: &Desk,
    s: &Session,
    flag_id: &str,
) -> Result<(FlagRow, Vec<AuditRow>, Option<OutcomeRow>), WebError> {
    let f = visible(desk, s, flag_id).await?;
    desk.store
        .audit(&s.user.name, "view_flag", Some(&f.flag_id), "", now_ms())
        .await?;
    let history = desk.store.flag_history(&f.flag_id).await?;
    let outcome = desk.store.outcome_closing(&f).await?;
    Ok((f, history, outcome))
}

pub async fn flag(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(flag_id): Path<String>,
) -> Result<Response, WebError> {
    let s = session(&desk, &headers).await?;
    let (f, history, outcome) = view_flag(&desk, &s, &flag_id).await?;
    let mut v = flag_json(&f);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "history".into(),
            history
                .iter()
                .map(|h| {
                    json!({
                        "at": chrono::DateTime::from_timestamp_millis(h.at_ms)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        "user": h.actor, "action": h.action, "detail": h.detail,
                    })
                })
                .collect(),
        );
        o.insert("outcome".into(), outcome.as_ref().map(outcome_json).into());
    }
    Ok(axum::Json(v).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignInput {
    /// Whom to assign to; only a supervisor or an admin may name another.
    user: Option<String>,
}

pub async fn assign(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(flag_id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let s = acting(&desk, &headers, None).await?;
    let f = visible(&desk, &s, &flag_id).await?;
    let input: AssignInput = if body.iter().all(u8::is_ascii_whitespace) {
        AssignInput { user: None }
    } else {
        json_body(&headers, &body)?
    };
    let to = match input.user {
        None => s.user.name.clone(),
        Some(_) if s.user.role == Role::Inspector => {
            return Err(WebError::Forbidden(
                "an inspector assigns flags to themselves only",
            ));
        }
        Some(name) => {
            let Some(u) = desk.store.user(name.trim()).await? else {
                return Err(WebError::BadRequest("field user: no such user".into()));
            };
            if !u.scope().allows(&f.region) {
                return Err(WebError::BadRequest(
                    "field user: that user does not work this flag's region".into(),
                ));
            }
            u.name
        }
    };
    if !desk.store.assign(&f.flag_id, &to, now_ms()).await? {
        return Err(WebError::Conflict(format!(
            "the flag is already {}",
            f.status
        )));
    }
    desk.store
        .audit(
            &s.user.name,
            "assign",
            Some(&f.flag_id),
            &format!("to {to}"),
            now_ms(),
        )
        .await?;
    Ok(
        axum::Json(json!({ "flag_id": f.flag_id, "status": "assigned", "assignee": to }))
            .into_response(),
    )
}

fn stamp(desk: &Desk) -> outcome::Stamp {
    outcome::Stamp {
        outcome_id: format!("out-{}", auth::random_hex(16)),
        now: chrono::Utc::now(),
        utc_offset_hours: desk.cfg.utc_offset_hours,
    }
}

async fn stored(
    desk: &Desk,
    s: &Session,
    o: &OutcomeRow,
    closed: &[String],
) -> Result<(), WebError> {
    desk.metrics
        .outcomes_recorded
        .with_label_values(&[
            o.domain.as_str(),
            if o.violation { "violation" } else { "none" },
        ])
        .inc();
    desk.store
        .audit(
            &s.user.name,
            if o.flag_id.is_some() {
                "outcome"
            } else {
                "routine_outcome"
            },
            o.flag_id.as_deref(),
            &format!(
                "{} {}: violation={} categories={}",
                o.outcome_id,
                o.business_id,
                u8::from(o.violation),
                o.categories.join(",")
            ),
            now_ms(),
        )
        .await?;
    for other in closed {
        desk.store
            .audit(
                &s.user.name,
                "closed_by_outcome",
                Some(other),
                &o.outcome_id,
                now_ms(),
            )
            .await?;
    }
    desk.outbox.notify_one();
    Ok(())
}

pub async fn outcome(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(flag_id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let s = acting(&desk, &headers, None).await?;
    let f = visible(&desk, &s, &flag_id).await?;
    let input: OutcomeInput = json_body(&headers, &body)?;
    let o = outcome::on_flag(&f, &input, &s.user, &stamp(&desk))
        .map_err(|e| WebError::BadRequest(e.to_string()))?;
    record(&desk, &s, &o).await
}

pub async fn routine_outcome(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let s = acting(&desk, &headers, None).await?;
    let input: RoutineInput = json_body(&headers, &body)?;
    let o = outcome::routine(&input, &s.user, &stamp(&desk))
        .map_err(|e| WebError::BadRequest(e.to_string()))?;
    if !s.user.scope().allows(&o.region) {
        return Err(WebError::Forbidden("that region is not one of yours"));
    }
    record(&desk, &s, &o).await
}

/// Store an outcome and answer with its record (201) and the flags it closed.
async fn record(desk: &Desk, s: &Session, o: &OutcomeRow) -> Result<Response, WebError> {
    match desk.store.record_outcome(o).await? {
        Recorded::Stored(closed) => {
            stored(desk, s, o, &closed).await?;
            let mut v = outcome_json(o);
            v["closed_flags"] = json!(closed);
            Ok((StatusCode::CREATED, axum::Json(v)).into_response())
        }
        Recorded::AlreadyInspected(id) => Err(WebError::Conflict(format!(
            "the flag already has an outcome ({id})"
        ))),
        Recorded::Dismissed => Err(WebError::Conflict("the flag was dismissed".into())),
        Recorded::NoSuchFlag => Err(WebError::NotFound),
    }
}

pub async fn dismiss(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(flag_id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let s = acting(&desk, &headers, None).await?;
    let f = visible(&desk, &s, &flag_id).await?;
    let input: DismissInput = json_body(&headers, &body)?;
    let reason = outcome::text("reason", &input.reason, outcome::MAX_REASON_CHARS, true)
        .map_err(|e| WebError::BadRequest(e.to_string()))?;
    if !desk
        .store
        .dismiss(&f.flag_id, &s.user.name, now_ms())
        .await?
    {
        return Err(WebError::Conflict(format!(
            "the flag is already {}",
            f.status
        )));
    }
    desk.store
        .audit(&s.user.name, "dismiss", Some(&f.flag_id), &reason, now_ms())
        .await?;
    Ok(
        axum::Json(json!({ "flag_id": f.flag_id, "status": "dismissed", "reason": reason }))
            .into_response(),
    )
}

/// What a supervisor plans with: backlog per region and inspector, the
/// oldest open flag, and the yield of flagged against routine inspections
/// over the last 90 days.
pub async fn overview_json(desk: &Desk, s: &Session) -> Result<Value, WebError> {
    if s.user.role == Role::Inspector {
        return Err(WebError::Forbidden("the overview is for supervisors"));
    }
    let backlog = desk.store.backlog().await?;
    let since = now_ms() - 90 * 86_400_000;
    let y = desk.store.yields(&s.user.scope(), since).await?;
    let share = |v: i64, n: i64| {
        if n > 0 {
            json!(v as f64 / n as f64)
        } else {
            Value::Null
        }
    };
    let now = now_ms();
    // Per region: open work against the weekly inspections it can make
    // (decide.capacity, every domain together): weeks to clear the backlog.
    let mut regions: std::collections::BTreeMap<&str, (i64, i64, Option<i64>)> = Default::default();
    for b in &backlog {
        let r = regions.entry(b.region.as_str()).or_insert((0, 0, None));
        r.0 += b.open + b.assigned;
        r.1 = r.1.max((now - b.oldest_received_ms) / 1000);
    }
    for c in &desk.capacity {
        let r = regions.entry(c.region.as_str()).or_insert((0, 0, None));
        r.2 = Some(r.2.unwrap_or(0) + i64::from(c.per_week));
    }
    Ok(json!({
        "regions": regions.iter().map(|(region, (open, oldest, per_week))| json!({
            "region": region, "open": open, "oldest_age_seconds": oldest,
            "inspections_per_week": per_week,
            "weeks_to_clear": per_week.filter(|w| *w > 0).map(|w| *open as f64 / w as f64),
        })).collect::<Vec<_>>(),
        "backlog": backlog.iter().map(|b| json!({
            "region": b.region, "assignee": b.assignee, "open": b.open, "assigned": b.assigned,
            "oldest_age_seconds": (now - b.oldest_received_ms) / 1000,
        })).collect::<Vec<_>>(),
        "oldest_open_age_seconds": backlog.iter().map(|b| (now - b.oldest_received_ms) / 1000).max(),
        "yield_90d": {
            "flagged": {"inspections": y.flagged, "violations": y.flagged_violations,
                        "share": share(y.flagged_violations, y.flagged)},
            "routine": {"inspections": y.routine, "violations": y.routine_violations,
                        "share": share(y.routine_violations, y.routine)},
        },
    }))
}

pub async fn overview(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let s = session(&desk, &headers).await?;
    let v = overview_json(&desk, &s).await?;
    desk.store
        .audit(&s.user.name, "view_overview", None, "", now_ms())
        .await?;
    Ok(axum::Json(v).into_response())
}

pub async fn metrics(State(desk): State<Arc<Desk>>) -> Response {
    let overdue = desk.cfg.overdue_hours as i64 * 3_600_000;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        desk.metrics.render(&desk.store, overdue).await,
    )
        .into_response()
}

const _: () = assert!(MAX_BODY_BYTES >= 4 * outcome::MAX_NOTE_CHARS);
