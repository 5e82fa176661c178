//! A STAND-IN for IPFS Cluster's REST API, for tests only: IPFS Cluster cannot be installed on
//! these machines. Built from the published API reference (ipfscluster.io, "REST API
//! Reference": `GET /peers`, `GET /pins`, `GET /allocations`, basic authentication) and the
//! object formats of the Go API client (`api/types.go`: `ID` with `id`, `peername`, `error`;
//! `GlobalPinInfo` with `cid`, `name`, `allocations`, `peer_map` of `PinInfoShort` with
//! `peername`, `status`, `error`; `Pin` with `cid`, `allocations`, `replication_factor_min/max`).
//! Like IPFS Cluster 1.x it streams lists as NDJSON and answers `204 No Content` for an empty
//! one, and `401` without the right credentials. It serves whatever the test puts in its state;
//! it does not pin anything.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

/// What the stand-in serves: one JSON object per list entry.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    pub peers: Vec<Value>,
    pub pins: Vec<Value>,
    pub allocations: Vec<Value>,
}

impl ClusterState {
    /// A peer entry as `GET /peers` lists it; `error` non-empty for a peer that is down.
    pub fn peer(id: &str, name: &str, error: &str) -> Value {
        json!({
            "id": id, "addresses": [], "cluster_peers": [], "cluster_peers_addresses": [],
            "version": "1.1.1", "commit": "", "rpc_protocol_version": "/ipfscluster/1.0/rpc",
            "error": error, "ipfs": {"id": format!("ipfs-{id}"), "addresses": [], "error": ""},
            "peername": name
        })
    }

    /// A GlobalPinInfo as `GET /pins?local=true` lists it: one peer in the peer_map.
    pub fn pin(cid: &str, local_peer: &str, status: &str) -> Value {
        json!({
            "cid": cid, "name": "", "allocations": [], "origins": [], "created": "2026-11-28T10:00:00Z",
            "metadata": null,
            "peer_map": {local_peer: {
                "peername": "node-a", "ipfs_peer_id": "ipfs-node-a", "ipfs_peer_addresses": [],
                "status": status, "timestamp": "2026-11-28T10:00:00Z",
                "error": if status.ends_with("error") { "context deadline exceeded" } else { "" },
                "attempt_count": 0, "priority_pin": false
            }}
        })
    }

    /// A Pin as `GET /allocations` lists it.
    pub fn allocation(cid: &str, allocations: &[&str]) -> Value {
        let min = if allocations.is_empty() {
            -1
        } else {
            allocations.len() as i64
        };
        json!({
            "cid": cid, "type": 2, "allocations": allocations, "max_depth": -1, "reference": null,
            "replication_factor_min": min, "replication_factor_max": min, "name": "",
            "mode": "recursive", "shard_size": 0, "user_allocations": null, "expire_at": "0001-01-01T00:00:00Z",
            "metadata": null, "pin_update": null, "origins": []
        })
    }
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<ClusterState>>,
    credentials: String,
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&shared.credentials)
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

fn ndjson(items: &[Value]) -> Response {
    if items.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut body = String::new();
    for item in items {
        body.push_str(&item.to_string());
        body.push('\n');
    }
    ([("content-type", "application/json")], body).into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            "www-authenticate",
            "Basic realm=\"Restricted IPFS Cluster API\"",
        )],
        r#"{"code":401,"message":"Unauthorized"}"#,
    )
        .into_response()
}

/// A running stand-in; dropping the returned handle's sender stops it.
pub struct IpfsClusterStandIn {
    pub url: String,
    pub state: Arc<Mutex<ClusterState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl IpfsClusterStandIn {
    /// Serves `state` on a free loopback port, requiring basic auth `credentials` (user:password).
    pub async fn start(state: ClusterState, credentials: &str) -> IpfsClusterStandIn {
        let state = Arc::new(Mutex::new(state));
        let shared = Shared {
            state: Arc::clone(&state),
            credentials: credentials.to_owned(),
        };
        let app = Router::new()
            .route(
                "/peers",
                get(|State(s): State<Shared>, h: HeaderMap| async move {
                    if !authorized(&s, &h) {
                        return unauthorized();
                    }
                    ndjson(&s.state.lock().unwrap().peers)
                }),
            )
            .route(
                "/pins",
                get(|State(s): State<Shared>, h: HeaderMap, Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    if !authorized(&s, &h) {
                        return unauthorized();
                    }
                    if q.get("local").map(String::as_str) != Some("true") {
                        return (StatusCode::BAD_REQUEST, "the stand-in serves only local=true").into_response();
                    }
                    ndjson(&s.state.lock().unwrap().pins)
                }),
            )
            .route(
                "/allocations",
                get(|State(s): State<Shared>, h: HeaderMap| async move {
                    if !authorized(&s, &h) {
                        return unauthorized();
                    }
                    ndjson(&s.state.lock().unwrap().allocations)
                }),
            )
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        IpfsClusterStandIn {
            url,
            state,
            stop: Some(stop),
            server,
        }
    }

    /// Stops serving and closes the port.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.abort();
        let _ = (&mut self.server).await;
    }
}
