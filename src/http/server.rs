//! The HTTP server: `GET /metrics` (gzip when asked), `GET /-/healthy`, `GET /-/ready`, and a
//! landing page at `/`.
//!
//! Takes a bound listener and a shutdown future, so tests bind port 0 and stop it cleanly. It
//! serves cached bytes and never waits on a collector.

use std::future::Future;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::exposition::{ExpositionCache, CONTENT_TYPE};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The latest encoded metrics.
    pub metrics: ExpositionCache,
}

/// The routes, ready to serve.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and returns.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Whether the client accepts gzip (`Accept-Encoding: gzip`, not `gzip;q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let exposition = state.metrics.current();
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))];
    if accepts_gzip(&headers) {
        let encoding = [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))];
        (content_type, encoding, exposition.gzip.clone()).into_response()
    } else {
        (content_type, exposition.plain.clone()).into_response()
    }
}

async fn healthy() -> &'static str {
    "ipfs-sentinel is healthy.\n"
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.metrics.current().ready {
        (StatusCode::OK, "ipfs-sentinel is ready.\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "ipfs-sentinel is starting: the first collection has not finished.\n",
        )
            .into_response()
    }
}

async fn landing() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ipfs-sentinel</title></head>",
        "<body><h1>ipfs-sentinel ",
        env!("CARGO_PKG_VERSION"),
        "</h1><ul><li><a href=\"metrics\">metrics</a></li>",
        "<li><a href=\"-/healthy\">health</a></li><li><a href=\"-/ready\">readiness</a></li>",
        "</ul></body></html>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&with("gzip")));
        assert!(accepts_gzip(&with("deflate, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
