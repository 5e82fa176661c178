//! The JSON and export endpoints: `GET /api/v1/status`; `GET /api/v1/rules` and
//! `GET /api/v1/alerts`; `POST /-/reload`; the read side of Prometheus's HTTP API
//! (`query` and `query_range` in PromQL, see [`promql`]; `series`, `labels`,
//! `label/NAME/values`), GET or POST with a form body as Prometheus takes them, so Grafana's
//! Prometheus datasource can read a bare sentinel; `GET /api/v1/export` (CSV, JSON or
//! OpenMetrics, streamed series by series) and `GET /api/v1/summary` (per node and
//! cluster-wide).
//!
//! Owns request parsing and answers; the meaning of parameters is [`crate::history::query`]'s,
//! the formats [`crate::history::export`]'s. Bad input is a 400 with a one-line reason.

pub mod promql;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::state::AppState;
use crate::actions::deliver::Settings;
use crate::clock::system_ms;
use crate::history::aggregate::{summarize, summarize_cluster};
use crate::history::export::{metric_json, Export, Format};
use crate::history::query::{BadRequest, Selector, WindowParams};
use crate::history::recorder::read as lock;
use crate::model::MetricKind;
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

/// A 400 in Prometheus's error shape.
fn prometheus_error(e: BadRequest) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": "error", "errorType": "bad_data", "error": e.0})),
    )
        .into_response()
}

/// The selectors in `match[]` (any of them), or every series when there is none.
fn match_list(pairs: &[(String, String)]) -> Result<Vec<Selector>, BadRequest> {
    let selectors = pairs
        .iter()
        .filter(|(k, _)| k == "match[]")
        .map(|(_, v)| Selector::parse(v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if selectors.is_empty() {
        vec![Selector::all()]
    } else {
        selectors
    })
}

/// Request parameters as Prometheus reads them (Go's `Request.FormValue`): a POST's
/// `application/x-www-form-urlencoded` body first, then the URL's query string.
pub struct FormParams(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for FormParams {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let url = Query::<Vec<(String, String)>>::try_from_uri(request.uri())
            .map(|q| q.0)
            .map_err(|e| prometheus_error(BadRequest(format!("error parsing form values: {e}"))))?;
        let form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let mut params = Vec::new();
        if request.method() == Method::POST && form {
            let axum::Form(body) =
                axum::Form::<Vec<(String, String)>>::from_request(request, state)
                    .await
                    .map_err(|e| {
                        prometheus_error(BadRequest(format!(
                            "error parsing form values: {}",
                            e.body_text()
                        )))
                    })?;
            params = body;
        }
        params.extend(url);
        Ok(FormParams(params))
    }
}

fn prometheus_answer(answer: promql::Answer) -> Response {
    (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response()
}

/// `GET` or `POST /api/v1/query?query=EXPR&time=&timeout=`: the expression's value at `time`
/// (default now), as Prometheus answers.
pub async fn query(State(state): State<AppState>, FormParams(p): FormParams) -> Response {
    let now = system_ms(SystemTime::now());
    prometheus_answer(promql::instant(
        &state.history,
        &p,
        now,
        state.promql_semantics,
    ))
}

/// `GET` or `POST /api/v1/series?match[]=SELECTOR...`: the label sets of the matching series.
pub async fn series(State(state): State<AppState>, FormParams(pairs): FormParams) -> Response {
    let selectors = match match_list(&pairs) {
        Ok(s) => s,
        Err(e) => return prometheus_error(e),
    };
    let history = lock(&state.history);
    let data: Vec<serde_json::Value> = history
        .series(|k| selectors.iter().any(|s| s.matches(k)))
        .iter()
        .map(|k| metric_json(k))
        .collect();
    Json(json!({"status": "success", "data": data})).into_response()
}

/// `GET` or `POST /api/v1/labels`: every label name in the history.
pub async fn labels(State(state): State<AppState>, FormParams(pairs): FormParams) -> Response {
    let selectors = match match_list(&pairs) {
        Ok(s) => s,
        Err(e) => return prometheus_error(e),
    };
    let history = lock(&state.history);
    let mut names: std::collections::BTreeSet<String> = ["__name__".to_owned()].into();
    for k in history.series(|k| selectors.iter().any(|s| s.matches(k))) {
        names.extend(k.labels.iter().map(|(n, _)| n.clone()));
    }
    Json(json!({"status": "success", "data": names})).into_response()
}

/// `GET /api/v1/label/NAME/values`: every value of label NAME (`__name__`: metric names).
pub async fn label_values(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let selectors = match match_list(&pairs) {
        Ok(s) => s,
        Err(e) => return prometheus_error(e),
    };
    let history = lock(&state.history);
    let values: std::collections::BTreeSet<String> = history
        .series(|k| selectors.iter().any(|s| s.matches(k)))
        .iter()
        .filter_map(|k| k.label(&name).map(str::to_owned))
        .collect();
    Json(json!({"status": "success", "data": values})).into_response()
}

/// `GET` or `POST /api/v1/query_range?query=EXPR&start=&end=&step=&timeout=`: the
/// expression at each step, as Prometheus answers.
pub async fn query_range(State(state): State<AppState>, FormParams(p): FormParams) -> Response {
    prometheus_answer(promql::range(&state.history, &p, state.promql_semantics))
}

/// `GET /api/v1/export?format=csv|json|openmetrics&match=SELECTOR&start=&end=&range=&step=&fn=`.
/// OpenMetrics types come from the families the sentinel exposes now.
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
        let kinds: HashMap<String, MetricKind> = state
            .metrics
            .current()
            .snapshot
            .families
            .iter()
            .map(|f| (f.name.to_string(), f.kind))
            .collect();
        Arc::new(
            Export::new(format, window, history.series(|k| selector.matches(k))).with_kinds(&kinds),
        )
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

/// `GET /api/v1/rules`, in Prometheus's shape.
pub async fn rules(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::rules::reload::lock(&state.engine).rules_json())
}

/// `GET /api/v1/alerts`, in Prometheus's shape.
pub async fn alerts(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::rules::reload::lock(&state.engine).alerts_json())
}

/// `POST /-/reload`: re-reads the configuration and rule files; 403 unless the sentinel was
/// started with `--web.enable-lifecycle` or a token (which it then requires), 500 with the reason when the new rules are broken
/// (the old ones keep running).
pub async fn reload(State(state): State<AppState>) -> Response {
    let Some(source) = state.reload.clone() else {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n").into_response();
    };
    let engine = Arc::clone(&state.engine);
    match tokio::task::spawn_blocking(move || source.reload(&engine)).await {
        Ok(Ok(config)) => {
            if let Some(actions) = &state.actions {
                actions
                    .reload(Settings::of(&config, actions.dry_run_forced()))
                    .await;
            }
            (StatusCode::OK, "").into_response()
        }
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
        Err(e) => internal(e),
    }
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
