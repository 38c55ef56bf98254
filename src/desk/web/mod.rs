//! The desk over HTTP: server-rendered pages ([`pages`]), the JSON API
//! ([`api`]), `/metrics` and `/healthz`, on one address.
//!
//! Every request but the login page, the login itself, the assets and the
//! health and metrics endpoints needs a session (cookie `rg_session`,
//! HttpOnly, SameSite=Strict); every state-changing one also needs the
//! session's CSRF token in the `X-CSRF-Token` header (or, for the logout
//! form, a `csrf_token` field). A flag outside the user's regions answers
//! 404, as a flag that does not exist.

mod api;
mod pages;

use super::Desk;
use super::auth;
use super::store::Session;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "rg_session";
pub const LANG_COOKIE: &str = "rg_lang";
/// Largest request body taken (a note is at most 2,000 characters).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a request is refused; answered as JSON `{"error": ...}`.
#[derive(Debug)]
pub enum WebError {
    Unauthorized,
    Forbidden(&'static str),
    NotFound,
    BadRequest(String),
    Conflict(String),
    UnsupportedMedia,
    TooMany(std::time::Duration),
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for WebError {
    fn from(e: anyhow::Error) -> Self {
        WebError::Internal(e)
    }
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            WebError::Unauthorized => "log in first (POST /login)".into(),
            WebError::Forbidden(why) => (*why).into(),
            WebError::NotFound => "no such flag, or not in your regions".into(),
            WebError::BadRequest(m) | WebError::Conflict(m) => m.clone(),
            WebError::UnsupportedMedia => "send the body as application/json".into(),
            WebError::TooMany(wait) => format!(
                "too many failed logins; try again in {} seconds",
                wait.as_secs().max(1)
            ),
            WebError::Internal(_) => "the desk could not do this; see its log".into(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "desk request failed");
        }
        let status = self.status();
        let body = serde_json::json!({ "error": self.message() }).to_string();
        let mut r = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let WebError::TooMany(wait) = self {
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

/// One cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session of the request; `Unauthorized` without a live one.
pub async fn session(desk: &Desk, headers: &HeaderMap) -> Result<Session, WebError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(WebError::Unauthorized);
    };
    if token.len() > 128 {
        return Err(WebError::Unauthorized);
    }
    desk.store
        .session(&auth::token_hash(token), super::store::now_ms())
        .await?
        .ok_or(WebError::Unauthorized)
}

/// The session, and its CSRF token given in the `X-CSRF-Token` header (or
/// `form_token`): what every state-changing request needs.
pub async fn acting(
    desk: &Desk,
    headers: &HeaderMap,
    form_token: Option<&str>,
) -> Result<Session, WebError> {
    let s = session(desk, headers).await?;
    let given = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .or(form_token)
        .unwrap_or("");
    if !crate::service::http::constant_time_eq(given.as_bytes(), s.csrf_token.as_bytes()) {
        return Err(WebError::Forbidden(
            "missing or wrong CSRF token (header X-CSRF-Token; GET /api/session gives it)",
        ));
    }
    Ok(s)
}

/// A JSON body of type `T`; a refusal names what is wrong.
pub fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, WebError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if !is_json {
        return Err(WebError::UnsupportedMedia);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| WebError::BadRequest("the body is not valid UTF-8".into()))?;
    serde_json::from_str(text).map_err(|e| WebError::BadRequest(format!("the body: {e}")))
}

/// Security headers on every answer; the request's time in the histogram.
async fn harden(State(desk): State<Arc<Desk>>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    desk.metrics
        .request_seconds
        .observe(started.elapsed().as_secs_f64());
    r
}

pub fn router(desk: Arc<Desk>) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_page).post(api::login))
        .route("/logout", post(api::logout))
        .route("/lang/{lang}", get(pages::set_lang))
        .route("/flags", get(pages::flags))
        .route("/flags/{flag_id}", get(pages::flag))
        .route("/overview", get(pages::overview))
        .route("/assets/desk.css", get(pages::css))
        .route("/assets/desk.js", get(pages::js))
        .route("/api/session", get(api::session_info))
        .route("/api/flags", get(api::flags))
        .route("/api/flags/{flag_id}", get(api::flag))
        .route("/api/flags/{flag_id}/assign", post(api::assign))
        .route("/api/flags/{flag_id}/outcome", post(api::outcome))
        .route("/api/flags/{flag_id}/dismiss", post(api::dismiss))
        .route("/api/outcomes", post(api::routine_outcome))
        .route("/api/overview", get(api::overview))
        .route("/metrics", get(api::metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { WebError::NotFound })
        .layer(axum::middleware::from_fn_with_state(desk.clone(), harden))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(desk)
}

/// Serve the desk on `listener` until `stop` turns true.
pub async fn serve(
    desk: Arc<Desk>,
    listener: tokio::net::TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = router(desk).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}
