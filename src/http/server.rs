//! The HTTP server: `GET /metrics` (gzip when asked), the API of [`super::api`],
//! `GET /-/healthy`, `GET /-/ready`, and the dashboard of [`super::dashboard`] at `/` (unless it
//! is disabled or served on a listener of its own).
//!
//! Takes a bound listener and a shutdown future, so tests bind port 0 and stop it cleanly. It
//! serves cached bytes and never waits on a collector. Requests that read the history or the
//! rules (the API's reads and the dashboard) run on blocking threads, so they never hold up the
//! runtime's workers, and with them the scrapes. Connections, TLS and limits are
//! [`super::connections`]'s; state-changing routes go through [`super::token::state_changing`].

use std::future::Future;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::actions as action_api;
use super::api;
use super::connections::{self, ServerOptions};
use super::dashboard;
use super::state::AppState;
use super::token;
use crate::exposition::Format;

/// The routes, ready to serve.
pub fn router(state: AppState) -> Router {
    let reads = Router::new()
        .route(
            "/api/v1/query_range",
            get(api::query_range).post(api::query_range),
        )
        .route("/api/v1/query", get(api::query).post(api::query))
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route("/api/v1/export", get(api::export))
        .route("/api/v1/summary", get(api::summary))
        .route("/api/v1/rules", get(api::rules))
        .route("/api/v1/alerts", get(api::alerts));
    let reads = match &state.dashboard {
        Some(d) if !d.own_listener => reads.merge(dashboard::routes()),
        _ => reads,
    };
    let main = match &state.dashboard {
        Some(d) if !d.own_listener => Router::new(),
        _ => Router::new().route("/", get(landing)),
    };
    main.merge(reads.route_layer(from_fn(off_the_workers)))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(api::status_report))
        .route("/api/v1/actions", get(action_api::list))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .merge(token::state_changing(
            Router::new()
                .route("/-/reload", axum::routing::post(api::reload))
                .route(
                    "/api/v1/actions/{name}/run",
                    axum::routing::post(action_api::run_for_peer),
                )
                .route(
                    "/api/v1/alertmanager/webhook",
                    axum::routing::post(action_api::alertmanager_webhook),
                )
                .route(
                    "/api/v1/actions/runs/{id}/approve",
                    axum::routing::post(action_api::approve),
                )
                .route(
                    "/api/v1/actions/runs/{id}/reject",
                    axum::routing::post(action_api::reject),
                )
                .route(
                    "/api/v1/actions/circuit/reset",
                    axum::routing::post(action_api::reset_circuit),
                ),
            state.token.clone(),
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and returns; plain
/// HTTP with the default limits.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with(listener, state, ServerOptions::default(), shutdown).await
}

/// [`run`] with a web configuration (TLS, basic auth, headers) and limits.
pub async fn run_with(
    listener: TcpListener,
    state: AppState,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = connections::guard(router(state.clone()), &options.web, state.token.clone());
    connections::serve(listener, app, options, shutdown).await
}

/// Whether a list header (`Accept`, `Accept-Encoding`) names `token` with a weight above 0.
/// A `*` entry counts when `wildcard` is true.
fn header_accepts(
    headers: &HeaderMap,
    name: header::HeaderName,
    token: &str,
    wildcard: bool,
) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let value = parts.next().unwrap_or("");
            let weight = parts
                .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (value.eq_ignore_ascii_case(token) || (wildcard && value == "*")) && weight > 0.0
        })
}

/// The format the client asked for: OpenMetrics when its `Accept` lists it (Prometheus does),
/// else text format 0.0.4, as client_golang decides.
fn negotiate(headers: &HeaderMap) -> Format {
    if header_accepts(
        headers,
        header::ACCEPT,
        "application/openmetrics-text",
        false,
    ) {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Whether the client accepts a gzip body.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    header_accepts(headers, header::ACCEPT_ENCODING, "gzip", true)
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let exposition = state.metrics.current();
    let format = negotiate(&headers);
    let body = exposition.body(format);
    let content_type = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        ),
        (
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Encoding"),
        ),
    ];
    if let Some(gzip) = accepts_gzip(&headers).then(|| body.gzip()).flatten() {
        let encoding = [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))];
        (content_type, encoding, gzip).into_response()
    } else {
        (content_type, body.plain.clone()).into_response()
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
            "ipfs-sentinel is starting: not every collector has reported yet.\n",
        )
            .into_response()
    }
}

/// `/` when the dashboard is off here: a list of what is served.
async fn landing(State(state): State<AppState>) -> Html<String> {
    let why = if state.dashboard.is_some() {
        "The dashboard is served on its own listener (cluster.dashboard.host and port)."
    } else {
        "The dashboard is disabled (cluster.dashboard.enabled: false)."
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ipfs-sentinel</title></head>\
         <body><h1>ipfs-sentinel {}</h1><p>{why}</p><ul><li><a href=\"metrics\">metrics</a></li>\
         <li><a href=\"api/v1/status\">status (JSON)</a></li>\
         <li><a href=\"-/healthy\">health</a></li><li><a href=\"-/ready\">readiness</a></li>\
         </ul></body></html>",
        env!("CARGO_PKG_VERSION")
    ))
}

/// The dashboard alone, for its own listener.
pub fn dashboard_router(state: AppState) -> Router {
    dashboard::routes()
        .route_layer(from_fn(off_the_workers))
        .with_state(state)
}

/// Runs a request on a blocking thread. Reading the history decodes blocks, and reading the
/// history or the rules waits while the recorder appends a tick or the rules task updates the
/// alert states; on a runtime worker either would hold up every request that worker serves.
async fn off_the_workers(request: Request, next: Next) -> Response {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || runtime.block_on(next.run(request)))
        .await
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn format_negotiation_follows_accept() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(&accept(prometheus)), Format::OpenMetrics);
        assert_eq!(negotiate(&accept("text/plain")), Format::Text);
        assert_eq!(negotiate(&accept("*/*")), Format::Text);
        assert_eq!(negotiate(&HeaderMap::new()), Format::Text);
        assert_eq!(
            negotiate(&accept("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(
            negotiate(&accept("application/openmetrics-text; q=0.0, text/plain")),
            Format::Text
        );
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

    #[test]
    fn a_read_waiting_on_a_lock_leaves_the_worker_free() {
        use std::sync::{Arc, Mutex};
        use tower::Service;

        let store = Arc::new(Mutex::new(()));
        let held = store.lock().unwrap();
        let (answered, answer) = std::sync::mpsc::channel();
        let waiting = Arc::clone(&store);
        // A thread of its own: without the layer the only worker blocks, and the test must
        // fail rather than hang.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app: Router = Router::new()
                    .route(
                        "/read",
                        get(move || {
                            let store = Arc::clone(&waiting);
                            async move {
                                drop(store.lock());
                                "read"
                            }
                        }),
                    )
                    .route_layer(from_fn(off_the_workers))
                    .route("/metrics", get(|| async { "scrape" }));
                let request = |path: &str| {
                    axum::http::Request::get(path)
                        .body(axum::body::Body::empty())
                        .unwrap()
                };
                for _ in 0..3 {
                    let mut app = app.clone();
                    let read = request("/read");
                    tokio::spawn(async move { app.call(read).await });
                }
                let mut app = app.clone();
                let scrape = request("/metrics");
                let status = tokio::spawn(async move { app.call(scrape).await.unwrap().status() })
                    .await
                    .unwrap();
                answered.send(status).unwrap();
            });
        });
        let status = answer
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a scrape was held up by reads waiting on the store");
        assert_eq!(status, StatusCode::OK);
        drop(held);
    }
}
