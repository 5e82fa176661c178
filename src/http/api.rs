//! The JSON and export endpoints: `GET /api/v1/status`, `GET /api/v1/query_range` (Prometheus's
//! HTTP API shape, for plain selectors), `GET /api/v1/export` (CSV or JSON, streamed series by
//! series) and `GET /api/v1/summary` (per node and cluster-wide).
//!
//! Owns request parsing and answers; the meaning of parameters is [`crate::history::query`]'s,
//! the formats [`crate::history::export`]'s. Bad input is a 400 with a one-line reason.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::server::AppState;
use crate::history::aggregate::{summarize, summarize_cluster};
use crate::history::export::{at_steps, prometheus_matrix, Export, Format};
use crate::history::query::{system_ms, BadRequest, Selector, WindowParams};
use crate::history::recorder::lock;
use crate::status;

type Params = Query<HashMap<String, String>>;

fn window_params(p: &HashMap<String, String>) -> WindowParams<'_> {
    WindowParams {
        start: p.get("start").map(String::as_str),
        end: p.get("end").map(String::as_str),
        range: p.get("range").map(String::as_str),
        step: p.get("step").map(String::as_str),
        function: p.get("fn").map(String::as_str),
    }
}

fn bad_request(e: BadRequest) -> Response {
    (StatusCode::BAD_REQUEST, format!("{}\n", e.0)).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
}

/// `GET /api/v1/status`.
pub async fn status_report(State(state): State<AppState>) -> Json<status::StatusReport> {
    let current = state.metrics.current();
    Json(status::report(
        &current.snapshot,
        &state.identity,
        state.started,
        SystemTime::now(),
    ))
}

/// `GET /api/v1/query_range?query=SELECTOR&start=&end=&step=`.
pub async fn query_range(State(state): State<AppState>, Query(p): Params) -> Response {
    let prometheus_error = |e: BadRequest| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "error", "errorType": "bad_data", "error": e.0})),
        )
            .into_response()
    };
    let selector = match p.get("query").map(|q| Selector::parse(q)) {
        Some(Ok(s)) => s,
        Some(Err(e)) => return prometheus_error(e),
        None => return prometheus_error(BadRequest("query is required".into())),
    };
    let history = lock(&state.history);
    let window =
        match window_params(&p).check(history.first_tick(), system_ms(SystemTime::now()), true) {
            Ok(w) => w,
            Err(e) => return prometheus_error(e),
        };
    let step = window.step_ms.unwrap_or(1);
    let mut series = Vec::new();
    for key in history.series(|k| selector.matches(k)) {
        match history.points(&key, window.start_ms - 5 * 60_000, window.end_ms) {
            Ok(points) => {
                let stepped = at_steps(&points, window.start_ms, window.end_ms, step);
                series.push((key, stepped));
            }
            Err(e) => return internal(e),
        }
    }
    Json(prometheus_matrix(&series)).into_response()
}

/// `GET /api/v1/export?format=csv|json&match=SELECTOR&start=&end=&range=&step=&fn=`.
pub async fn export(State(state): State<AppState>, Query(p): Params) -> Response {
    let format: Format = match p
        .get("format")
        .map(|f| f.parse())
        .unwrap_or(Ok(Format::Json))
    {
        Ok(f) => f,
        Err(e) => return bad_request(BadRequest(e)),
    };
    let selector = match p
        .get("match")
        .map(|m| Selector::parse(m))
        .unwrap_or(Ok(Selector::all()))
    {
        Ok(s) => s,
        Err(e) => return bad_request(e),
    };
    let plan = {
        let history = lock(&state.history);
        let window = match window_params(&p).check(
            history.first_tick(),
            system_ms(SystemTime::now()),
            false,
        ) {
            Ok(w) => w,
            Err(e) => return bad_request(e),
        };
        Arc::new(Export::new(
            format,
            window,
            history.series(|k| selector.matches(k)),
        ))
    };
    // One chunk per series, each read under the lock only while it is read.
    let n = plan.keys().len();
    let header = futures::stream::once(futures::future::ready(Ok::<_, std::io::Error>(
        plan.header(),
    )));
    let history = Arc::clone(&state.history);
    let each = Arc::clone(&plan);
    let body = futures::stream::iter(0..n).map(move |i| {
        let points = each
            .points(&lock(&history), i)
            .map_err(std::io::Error::other)?;
        Ok(each.series(i, &points))
    });
    let footer = futures::stream::once(futures::future::ready(Ok(plan.footer())));
    use futures::StreamExt;
    let stream = header.chain(body).chain(footer);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `GET /api/v1/summary?metric=NAME&range=1h` (or `start`, `end`): per node and cluster-wide
/// avg, min, max and current of `ipfs_sentinel_cluster_node_NAME{node_id}`.
pub async fn summary(State(state): State<AppState>, Query(p): Params) -> Response {
    let Some(metric) = p.get("metric") else {
        return bad_request(BadRequest(
            "metric is required, e.g. cpu_usage_ratio, memory_usage_ratio, disk_usage_ratio, repo_size_bytes, pins, peers".into(),
        ));
    };
    let name = if metric.starts_with("ipfs_sentinel_") {
        metric.clone()
    } else {
        format!("ipfs_sentinel_cluster_node_{metric}")
    };
    let history = lock(&state.history);
    let window =
        match window_params(&p).check(history.first_tick(), system_ms(SystemTime::now()), false) {
            Ok(w) => w,
            Err(e) => return bad_request(e),
        };
    let mut nodes = serde_json::Map::new();
    let mut all = Vec::new();
    for key in history.series(|k| k.name == name) {
        let points = match history.points(&key, window.start_ms, window.end_ms) {
            Ok(p) => p,
            Err(e) => return internal(e),
        };
        if let (Some(node), Some(s)) = (key.label("node_id"), summarize(&points)) {
            nodes.insert(node.to_owned(), json!(s));
        }
        all.push(points);
    }
    Json(json!({"metric": name, "nodes": nodes, "cluster": summarize_cluster(&all)}))
        .into_response()
}
