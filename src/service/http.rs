//! The HTTP endpoints on the metrics address: `/metrics`, `/healthz`,
//! `/readyz`, and the admin `POST /reload` when an admin token is set.

use crate::service::metrics::Metrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What `/readyz` reports.
#[derive(Debug, Default)]
pub struct Health {
    pub assigned: AtomicBool,
    pub broker_up: AtomicBool,
    /// State is being restored from the changelog.
    pub restoring: AtomicBool,
    /// `POST /reload` requests to the run loop.
    pub reload: crate::service::reload::Trigger,
    /// The producer has requests outstanding and has heard nothing from the
    /// broker for a while (a frozen or unreachable broker).
    pub broker_stalled: AtomicBool,
}

impl Health {
    pub fn ready(&self) -> bool {
        self.assigned.load(Ordering::Relaxed)
            && self.broker_up.load(Ordering::Relaxed)
            && !self.broker_stalled.load(Ordering::Relaxed)
            && !self.restoring.load(Ordering::Relaxed)
    }
}

/// Serve the endpoints until `stop` turns true; returns the bound address.
pub async fn serve(
    addr: std::net::SocketAddr,
    metrics: Metrics,
    health: Arc<Health>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<std::net::SocketAddr> {
    serve_with_admin(addr, metrics, health, None, stop).await
}

/// Constant-time comparison: the time taken does not tell how much of a
/// guessed token was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

/// Whether `headers` carry `Authorization: Bearer <token>`.
fn authorized(headers: &axum::http::HeaderMap, token: &crate::service::config::Secret) -> bool {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(given.trim().as_bytes(), token.expose().as_bytes())
}

/// Like [`serve`]; with `admin_token`, also `POST /reload` (bearer token
/// required), which makes the run loop check model and lexicon files now.
/// Without a token that endpoint does not exist (404).
pub async fn serve_with_admin(
    addr: std::net::SocketAddr,
    metrics: Metrics,
    health: Arc<Health>,
    admin_token: Option<crate::service::config::Secret>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<std::net::SocketAddr> {
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    use axum::http::{StatusCode, header};
    use axum::routing::{get, post};
    let reload_health = health.clone();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        m.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let h = health.clone();
                async move {
                    if h.ready() {
                        (StatusCode::OK, "ready\n")
                    } else if h.restoring.load(Ordering::Relaxed) {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: restoring state from the changelog\n",
                        )
                    } else if !h.assigned.load(Ordering::Relaxed) {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: no partitions assigned yet\n",
                        )
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: broker unreachable\n",
                        )
                    }
                }
            }),
        );
    let app = match admin_token {
        None => app,
        Some(token) => app.route(
            "/reload",
            post(move |headers: axum::http::HeaderMap| {
                let (h, token) = (reload_health.clone(), token.clone());
                async move {
                    use axum::response::IntoResponse;
                    if !authorized(&headers, &token) {
                        tracing::warn!("POST /reload refused: missing or wrong bearer token");
                        return (
                            StatusCode::UNAUTHORIZED,
                            [(header::WWW_AUTHENTICATE, "Bearer")],
                            "a valid bearer token is required\n",
                        )
                            .into_response();
                    }
                    match h.reload.request(std::time::Duration::from_secs(30)).await {
                        Some(report) => {
                            tracing::info!(
                                changed = report.changed,
                                refused = report.refused,
                                "reload requested"
                            );
                            (
                                [(header::CONTENT_TYPE, "application/json")],
                                serde_json::to_string(&report).unwrap_or_default() + "\n",
                            )
                                .into_response()
                        }
                        None => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the service is not consuming yet; try again\n",
                        )
                            .into_response(),
                    }
                }
            }),
        ),
    };
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(local)
}
