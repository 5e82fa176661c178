//! A STAND-IN for IPFS Cluster's REST API, for tests only: IPFS Cluster cannot be installed on
//! these machines. Built from the published API reference (ipfscluster.io, "REST API
//! Reference": `GET /peers`, `GET /pins`, `GET /allocations`, basic authentication) and the
//! object formats of the Go API client (`api/types.go`: `ID` with `id`, `peername`, `error`;
//! `GlobalPinInfo` with `cid`, `name`, `allocations`, `peer_map` of `PinInfoShort` with
//! `peername`, `status`, `error`; `Pin` with `cid`, `allocations`, `replication_factor_min/max`).
//! Like IPFS Cluster 1.x it streams lists as NDJSON and answers `204 No Content` for an empty
//! one, and `401` without the right credentials. It serves whatever the test puts in its state;
//! it does not pin anything.
//!
//! The peer monitor's endpoints follow `api/rest/restapi.go` and `api/types.go` at v1.1.6:
//! `GET /monitor/metrics` answers the names of the metrics held (a JSON array),
//! `GET /monitor/metrics/{name}` each peer's latest `Metric` of that name that is valid and not
//! yet expired (`metrics.Store.LatestValid`: an expired one is left out), `GET /health/alerts`
//! the `Alert`s (an expired `Metric` plus `triggered_at`) the test puts there. Like the real
//! API these are one JSON array each, never NDJSON.
//!
//! `POST /pins/{cid}` (REST API reference: "Pin a CID", options as query arguments
//! `replication-min`, `replication-max`, `name`, `mode`, `user-allocations`, `meta-<key>`,
//! `expire-at`; the Go client's `PinOptions.ToQuery`) is recorded and answered with the `Pin`
//! as stored, its allocations chosen the way IPFS Cluster's `allocate.go` chooses them: peers
//! without an `error` count as having valid metrics; valid current allocations are kept; if
//! they already meet `replication-min` the allocations stay as they were (invalid ones too);
//! otherwise `user-allocations` come first, then the other valid peers (by id here, by
//! metrics in IPFS Cluster), up to `replication-max`; too few is a 500 "not enough peers to
//! allocate CID". A CID the test marks as failing gets a 500 instead, as a failed consensus
//! write would.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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

    /// A GlobalPinInfo whose status was set at `timestamp` (RFC 3339).
    pub fn pin_since(cid: &str, local_peer: &str, status: &str, timestamp: &str) -> Value {
        let mut pin = ClusterState::pin(cid, local_peer, status);
        pin["peer_map"][local_peer]["timestamp"] = json!(timestamp);
        pin
    }

    /// A Pin as `GET /allocations` lists it, replicated exactly on `allocations` (everywhere
    /// when empty).
    pub fn allocation(cid: &str, allocations: &[&str]) -> Value {
        let factor = if allocations.is_empty() {
            -1
        } else {
            allocations.len() as i64
        };
        ClusterState::replicated(cid, allocations, factor, factor)
    }

    /// A Pin as `GET /allocations` lists it, with its replication factors.
    pub fn replicated(cid: &str, allocations: &[&str], min: i64, max: i64) -> Value {
        json!({
            "cid": cid, "type": "pin", "allocations": allocations, "max_depth": -1, "reference": null,
            "replication_factor_min": min, "replication_factor_max": max, "name": "",
            "mode": "recursive", "shard_size": 0, "user_allocations": null, "expire_at": "0001-01-01T00:00:00Z",
            "metadata": null, "pin_update": null, "origins": [], "timestamp": "2026-11-28T10:00:00Z"
        })
    }

    /// The Pin of `cid` as it is stored now.
    pub fn allocation_of(&self, cid: &str) -> Option<&Value> {
        self.allocations.iter().find(|a| a["cid"] == cid)
    }

    /// Peers with valid metrics: those without an error.
    fn valid_peers(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .peers
            .iter()
            .filter(|p| p["error"].as_str().unwrap_or("").is_empty())
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    /// `POST /pins/{cid}`: allocates as IPFS Cluster's `allocate.go` does and stores the pin.
    fn repin(&mut self, cid: &str, query: &[(String, String)]) -> Result<Value, String> {
        let arg = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let factor = |key: &str| -> Result<i64, String> {
            match arg(key) {
                None | Some("") => Ok(-1),
                Some(v) => v.parse().map_err(|_| format!("parameter {key} invalid")),
            }
        };
        let (min, max) = (factor("replication-min")?, factor("replication-max")?);
        let user_allocations: Vec<String> = arg("user-allocations")
            .filter(|v| !v.is_empty())
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let existing = self.allocation_of(cid).cloned();
        let existing_allocations: Vec<String> = existing
            .as_ref()
            .and_then(|p| p["allocations"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        let valid = self.valid_peers();
        let current: Vec<String> = existing_allocations
            .iter()
            .filter(|a| valid.contains(a))
            .cloned()
            .collect();
        let allocations: Vec<String> = if min == -1 && max == -1 {
            Vec::new()
        } else {
            let needed = min - current.len() as i64;
            let wanted = max - current.len() as i64;
            if wanted < 0 {
                current[..(current.len() as i64 + wanted) as usize].to_vec()
            } else if needed <= 0 {
                existing_allocations.clone()
            } else {
                let mut pool: Vec<String> = user_allocations
                    .iter()
                    .filter(|p| valid.contains(p) && !current.contains(p))
                    .cloned()
                    .collect();
                for peer in &valid {
                    if !current.contains(peer) && !pool.contains(peer) {
                        pool.push(peer.clone());
                    }
                }
                if (pool.len() as i64) < needed {
                    return Err(format!(
                        "not enough peers to allocate CID. Needed at least: {needed}. Wanted at most: {wanted}. Available candidates: {}. See logs for more info.",
                        pool.len()
                    ));
                }
                let mut chosen = current.clone();
                chosen.extend(pool.into_iter().take(wanted.max(0) as usize));
                chosen
            }
        };
        let mut pin = existing.unwrap_or_else(|| ClusterState::replicated(cid, &[], min, max));
        pin["allocations"] = json!(allocations);
        pin["replication_factor_min"] = json!(min);
        pin["replication_factor_max"] = json!(max);
        pin["name"] = json!(arg("name").unwrap_or(""));
        pin["mode"] = json!(arg("mode").filter(|m| !m.is_empty()).unwrap_or("recursive"));
        pin["user_allocations"] = if user_allocations.is_empty() {
            Value::Null
        } else {
            json!(user_allocations)
        };
        let metadata: serde_json::Map<String, Value> = query
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("meta-")?.to_owned(), json!(v))))
            .collect();
        pin["metadata"] = if metadata.is_empty() {
            Value::Null
        } else {
            Value::Object(metadata)
        };
        if let Some(at) = arg("expire-at") {
            pin["expire_at"] = json!(at);
        }
        self.allocations.retain(|a| a["cid"] != cid);
        self.allocations.push(pin.clone());
        Ok(pin)
    }
}

/// What the stand-in's peer monitor holds.
#[derive(Debug, Clone, Default)]
pub struct MonitorState {
    /// Every peer's latest metric of each name (`api.Metric`), expired ones included: the
    /// stand-in leaves those out of `GET /monitor/metrics/{name}` as the monitor does.
    pub metrics: Vec<Value>,
    /// What `GET /health/alerts` answers (`api.Alert`).
    pub alerts: Vec<Value>,
}

/// Unix nanoseconds of a time.
fn unix_nanos(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
}

impl MonitorState {
    /// A valid `api.Metric` received at `received`, expiring `ttl` later (a ping's value is a
    /// `pingValue` as JSON, as `cluster.go` sends it).
    pub fn metric(
        name: &str,
        peer: &str,
        received: std::time::SystemTime,
        ttl: std::time::Duration,
    ) -> Value {
        let value = if name == "ping" {
            json!({"peer_name": peer, "ipfs_id": format!("ipfs-{peer}")}).to_string()
        } else {
            "53687091200".to_owned()
        };
        json!({
            "name": name, "peer": peer, "value": value,
            "expire": unix_nanos(received + ttl), "valid": true, "weight": 0,
            "partitionable": false, "received_at": unix_nanos(received)
        })
    }

    /// An `api.Alert` for `metric` (expired), raised at `triggered_at` (RFC 3339).
    pub fn alert(metric: &Value, triggered_at: &str) -> Value {
        let mut alert = metric.clone();
        alert["triggered_at"] = json!(triggered_at);
        alert
    }

    /// The names held, sorted, as `metrics.Store.MetricNames` answers them.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .metrics
            .iter()
            .filter_map(|m| m["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The latest valid, unexpired metric of `name` per peer.
    fn latest_valid(&self, name: &str) -> Vec<Value> {
        let now = unix_nanos(std::time::SystemTime::now());
        self.metrics
            .iter()
            .filter(|m| m["name"] == name && m["valid"] == true)
            .filter(|m| m["expire"].as_i64().unwrap_or(0) > now)
            .cloned()
            .collect()
    }
}

/// One `POST /pins/{cid}` the stand-in received.
#[derive(Debug, Clone, PartialEq)]
pub struct PinRequest {
    /// The CID in the path.
    pub cid: String,
    /// The query arguments, in order.
    pub query: Vec<(String, String)>,
}

impl PinRequest {
    /// The value of one query argument.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The writes the stand-in received, and the CIDs it is told to fail.
#[derive(Debug, Clone, Default)]
pub struct PinWrites {
    /// Every authorized `POST /pins/{cid}`, in order.
    pub requests: Vec<PinRequest>,
    /// CIDs whose `POST /pins/{cid}` answers 500.
    pub failing: Vec<String>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<ClusterState>>,
    monitor: Arc<Mutex<MonitorState>>,
    writes: Arc<Mutex<PinWrites>>,
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
    /// The peer monitor's metrics and alerts; empty unless the test puts some.
    pub monitor: Arc<Mutex<MonitorState>>,
    pub writes: Arc<Mutex<PinWrites>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl IpfsClusterStandIn {
    /// Serves `state` on a free loopback port, requiring basic auth `credentials` (user:password).
    pub async fn start(state: ClusterState, credentials: &str) -> IpfsClusterStandIn {
        let state = Arc::new(Mutex::new(state));
        let writes = Arc::new(Mutex::new(PinWrites::default()));
        let monitor = Arc::new(Mutex::new(MonitorState::default()));
        let shared = Shared {
            state: Arc::clone(&state),
            monitor: Arc::clone(&monitor),
            writes: Arc::clone(&writes),
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
                "/pins/{cid}",
                post(|State(s): State<Shared>, h: HeaderMap, Path(cid): Path<String>, Query(query): Query<Vec<(String, String)>>| async move {
                    if !authorized(&s, &h) {
                        return unauthorized();
                    }
                    let fail = {
                        let mut writes = s.writes.lock().unwrap();
                        writes.requests.push(PinRequest { cid: cid.clone(), query: query.clone() });
                        writes.failing.contains(&cid)
                    };
                    let stored = if fail {
                        Err("error logging pin: the stand-in was told to fail this CID".to_owned())
                    } else {
                        s.state.lock().unwrap().repin(&cid, &query)
                    };
                    match stored {
                        Ok(pin) => axum::Json(pin).into_response(),
                        Err(message) => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(json!({"code": 500, "message": message})),
                        )
                            .into_response(),
                    }
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
            .route(
                "/monitor/metrics",
                get(|State(s): State<Shared>, h: HeaderMap| async move {
                    if !authorized(&s, &h) {
                        return unauthorized();
                    }
                    axum::Json(s.monitor.lock().unwrap().names()).into_response()
                }),
            )
            .route(
                "/monitor/metrics/{name}",
                get(|State(s): State<Shared>, h: HeaderMap, Path(name): Path<String>| async move {
                    if !authorized(&s, &h) {
                        return unauthorized();
                    }
                    axum::Json(s.monitor.lock().unwrap().latest_valid(&name)).into_response()
                }),
            )
            .route(
                "/health/alerts",
                get(|State(s): State<Shared>, h: HeaderMap| async move {
                    if !authorized(&s, &h) {
                        return unauthorized();
                    }
                    axum::Json(s.monitor.lock().unwrap().alerts.clone()).into_response()
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
            monitor,
            writes,
            stop: Some(stop),
            server,
        }
    }

    /// Makes `POST /pins/{cid}` answer 500 for this CID.
    pub fn fail_pin(&self, cid: &str) {
        self.writes.lock().unwrap().failing.push(cid.to_owned());
    }

    /// The `POST /pins/{cid}` requests received so far.
    pub fn pin_requests(&self) -> Vec<PinRequest> {
        self.writes.lock().unwrap().requests.clone()
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
