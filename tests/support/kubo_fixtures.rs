//! Replays Kubo's documented RPC responses from `tests/fixtures/kubo/` over HTTP, as a Kubo
//! daemon would send them: POST only (GET is 405, as in Kubo), `size-only` and `type` query
//! parameters honoured, `/debug/metrics/prometheus` on GET, `provide/stat` as Kubo 0.39+ with
//! the sweep provider answers it. For the golden end-to-end test,
//! where the input must be fixed; live behaviour is tested against a real js-ipfs node.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kubo")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn rpc(
    provide: &'static str,
    method: Method,
    Path(endpoint): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "405 - Method Not Allowed\n").into_response();
    }
    let name = match (endpoint.as_str(), query.get("type").map(String::as_str)) {
        ("id", _) => "id.json",
        ("version", _) => "version.json",
        ("repo/stat", _) if query.get("size-only").is_some_and(|v| v == "true") => {
            "repo_stat_size_only.json"
        }
        ("repo/stat", _) => "repo_stat.json",
        ("stats/bw", _) => "stats_bw.json",
        ("bitswap/stat", _) => "bitswap_stat.json",
        ("swarm/peers", _) => "swarm_peers.json",
        ("pin/ls", Some("recursive")) => "pin_ls_recursive_stream.ndjson",
        ("pin/ls", Some("direct")) => "pin_ls_direct_stream.ndjson",
        ("config", _) if query.get("arg").is_some_and(|a| a == "Datastore") => {
            "config_datastore.json"
        }
        ("provide/stat", _) => provide,
        _ => {
            let body =
                format!(r#"{{"Message":"unknown command {endpoint:?}","Code":0,"Type":"error"}}"#);
            return (StatusCode::NOT_FOUND, body).into_response();
        }
    };
    let content_type = if name.ends_with(".ndjson") {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    ([("content-type", content_type)], fixture(name)).into_response()
}

/// Serves the fixtures on a free loopback port, `provide/stat` as Kubo 0.39+ with the sweep
/// provider answers it; returns the API base URL.
pub async fn serve() -> String {
    serve_with_provide_stat("provide_stat_sweep.json").await
}

/// Serves the fixtures, answering `provide/stat` with the fixture `provide`.
pub async fn serve_with_provide_stat(provide: &'static str) -> String {
    let app = Router::new()
        .route(
            "/api/v0/{*endpoint}",
            any(move |method, endpoint, query| rpc(provide, method, endpoint, query)),
        )
        .route(
            "/debug/metrics/prometheus",
            get(|| async { fixture("debug_metrics.prom") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
