//! The `ipfs_cluster` collector: IPFS Cluster's REST API (`GET /peers`, `GET /pins?local=true`,
//! `GET /allocations`), read into peers by status, this peer's pins by status, the pin queue and
//! the pins under-replicated because an allocated peer is down.
//!
//! Owns the HTTP calls and the reading of IPFS Cluster's shapes (NDJSON streams, a JSON array
//! from older versions, `204 No Content` when a list is empty). The basic-auth secret is read
//! from its file once at start and never logged.

use std::collections::{BTreeMap, HashSet};

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{CollectError, Collector};
use crate::config::IpfsClusterConfig;
use crate::model::Family;

/// IPFS Cluster's tracker statuses, exposed even when zero so alerts can rely on them.
const PIN_STATUSES: &[&str] = &[
    "cluster_error",
    "error",
    "pin_error",
    "pin_queued",
    "pinned",
    "pinning",
    "remote",
    "sharded",
    "unexpectedly_unpinned",
    "unpin_error",
    "unpin_queued",
    "unpinned",
    "unpinning",
];

/// Statuses that are waiting in IPFS Cluster's queue.
const QUEUED: &[&str] = &["pin_queued", "unpin_queued"];

/// One entry of `GET /peers`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterPeer {
    /// The cluster peer id.
    pub id: String,
    /// Its name (`peername` in service.json).
    #[serde(default)]
    pub peername: String,
    /// Non-empty when the peer could not be reached.
    #[serde(default)]
    pub error: String,
}

/// One entry of `GET /pins` (a GlobalPinInfo).
#[derive(Debug, Clone, Deserialize)]
pub struct PinStatus {
    /// The pinned CID.
    pub cid: String,
    /// Status per cluster peer id (with `local=true`, only this peer).
    #[serde(default)]
    pub peer_map: BTreeMap<String, PeerPinInfo>,
}

/// A peer's part in one pin.
#[derive(Debug, Clone, Deserialize)]
pub struct PeerPinInfo {
    /// `pinned`, `pinning`, `pin_queued`, `pin_error`, `remote`, ...
    pub status: String,
}

/// One entry of `GET /allocations` (a Pin).
#[derive(Debug, Clone, Deserialize)]
pub struct Allocation {
    /// The pinned CID.
    pub cid: String,
    /// The peers chosen to hold it; empty when it goes everywhere.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub allocations: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Reads a list endpoint's body: NDJSON (IPFS Cluster 1.0 and later), a JSON array (older
/// versions), or nothing (204).
pub fn parse_list<T: for<'de> Deserialize<'de>>(
    endpoint: &str,
    body: &[u8],
) -> Result<Vec<T>, CollectError> {
    let bad = |e: serde_json::Error| {
        CollectError::Source(format!(
            "unexpected response from IPFS Cluster {endpoint}: {e}"
        ))
    };
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'[') {
        return serde_json::from_slice(trimmed).map_err(bad);
    }
    serde_json::Deserializer::from_slice(trimmed)
        .into_iter::<T>()
        .collect::<Result<Vec<T>, _>>()
        .map_err(bad)
}

/// What the three endpoints say, reduced to the figures exposed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterFigures {
    /// Peers without an error.
    pub peers_online: usize,
    /// Peers the API reports with an error.
    pub peers_offline: usize,
    /// This peer's pins by status.
    pub pins: BTreeMap<String, usize>,
    /// Pins waiting in the queue.
    pub queue_length: usize,
    /// Pins with at least one allocated peer that is down or gone.
    pub under_replicated: usize,
}

/// Reduces the three lists to figures. A pin allocated everywhere (no allocations) is
/// under-replicated when any peer is down.
pub fn figures(
    peers: &[ClusterPeer],
    pins: &[PinStatus],
    allocations: &[Allocation],
) -> ClusterFigures {
    let healthy: HashSet<&str> = peers
        .iter()
        .filter(|p| p.error.is_empty())
        .map(|p| p.id.as_str())
        .collect();
    let peers_offline = peers.len() - healthy.len();
    let mut by_status: BTreeMap<String, usize> =
        PIN_STATUSES.iter().map(|s| ((*s).to_owned(), 0)).collect();
    for pin in pins {
        for info in pin.peer_map.values() {
            *by_status.entry(info.status.clone()).or_default() += 1;
        }
    }
    let queue_length = QUEUED
        .iter()
        .map(|s| by_status.get(*s).copied().unwrap_or(0))
        .sum();
    let under_replicated = allocations
        .iter()
        .filter(|a| {
            if a.allocations.is_empty() {
                peers_offline > 0
            } else {
                a.allocations
                    .iter()
                    .any(|peer| !healthy.contains(peer.as_str()))
            }
        })
        .count();
    ClusterFigures {
        peers_online: healthy.len(),
        peers_offline,
        pins: by_status,
        queue_length,
        under_replicated,
    }
}

/// Reads `user:password` from a basic-auth file (`cluster.ipfs_cluster.basic_auth_file`).
pub fn read_basic_auth(path: &std::path::Path) -> Result<(String, String), CollectError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CollectError::Source(format!(
            "cannot read cluster.ipfs_cluster.basic_auth_file {}: {e}",
            path.display()
        ))
    })?;
    let line = text.lines().next().unwrap_or("").trim();
    line.split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
        .ok_or_else(|| {
            CollectError::Source(format!(
                "{}: expected one line user:password",
                path.display()
            ))
        })
}

/// Reads IPFS Cluster's REST API.
pub struct IpfsClusterCollector {
    client: reqwest::Client,
    base: reqwest::Url,
    auth: Option<(String, String)>,
}

impl IpfsClusterCollector {
    /// A collector for `config.api_url`; reads the basic-auth file now.
    pub fn new(config: &IpfsClusterConfig) -> Result<Self, CollectError> {
        let client = super::http_client(config.timeout_seconds.duration())?;
        let auth = config
            .basic_auth_file
            .as_deref()
            .map(read_basic_auth)
            .transpose()?;
        Ok(Self {
            client,
            base: config.api_url.0.clone(),
            auth,
        })
    }

    async fn list<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, CollectError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| CollectError::Source(e.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self.client.get(url.clone());
        if let Some((user, password)) = &self.auth {
            request = request.basic_auth(user, Some(password));
        }
        let failed = |reason: String| CollectError::Source(format!("IPFS Cluster {url}: {reason}"));
        let response = request.send().await.map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(Vec::new());
        }
        let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_owned();
            return Err(failed(format!("HTTP {status}: {text}")));
        }
        parse_list(path, &body)
    }

    async fn round(&self) -> Result<Vec<Family>, CollectError> {
        let (peers, pins, allocations) = futures::try_join!(
            self.list::<ClusterPeer>("peers", &[]),
            self.list::<PinStatus>("pins", &[("local", "true")]),
            self.list::<Allocation>("allocations", &[("filter", "pin")]),
        )?;
        let f = figures(&peers, &pins, &allocations);
        let mut by_status = Family::gauge(
            "ipfs_sentinel_cluster_pins",
            "This IPFS Cluster peer's pins by tracker status (GET /pins?local=true).",
        );
        for (status, n) in &f.pins {
            by_status.push(&[("status", status)], *n as f64);
        }
        Ok(vec![
            Family::gauge(
                "ipfs_sentinel_cluster_peers",
                "IPFS Cluster peers by status: Offline when the API reports the peer with an error.",
            )
            .with(&[("status", "Online")], f.peers_online as f64)
            .with(&[("status", "Offline")], f.peers_offline as f64),
            by_status,
            Family::single_gauge(
                "ipfs_sentinel_cluster_pin_queue_length",
                "This IPFS Cluster peer's pins waiting in its queue (pin_queued plus unpin_queued).",
                f.queue_length as f64,
            ),
            Family::single_gauge(
                "ipfs_sentinel_cluster_pins_under_replicated",
                "Pins with an allocated IPFS Cluster peer that is down or gone.",
                f.under_replicated as f64,
            ),
        ])
    }
}

impl Collector for IpfsClusterCollector {
    fn name(&self) -> &'static str {
        "ipfs_cluster"
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
        Box::pin(self.round())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEERS: &str = r#"{"id":"12D3KooWA","peername":"node-a","error":"","version":"1.1.1","ipfs":{"id":"12D3KooWX","error":""}}
{"id":"12D3KooWB","peername":"node-b","error":"dial backoff","ipfs":{"id":"","error":""}}
{"id":"12D3KooWC","peername":"node-c","error":""}
"#;

    #[test]
    fn ndjson_array_and_empty_bodies() {
        let peers: Vec<ClusterPeer> = parse_list("peers", PEERS.as_bytes()).unwrap();
        assert_eq!(peers.len(), 3);
        let old: Vec<ClusterPeer> =
            parse_list("peers", br#"[{"id":"a"},{"id":"b","error":"x"}]"#).unwrap();
        assert_eq!(old.len(), 2);
        assert!(parse_list::<ClusterPeer>("peers", b"").unwrap().is_empty());
        assert!(parse_list::<ClusterPeer>("peers", b"{\"id\":1}").is_err());
    }

    #[test]
    fn figures_count_statuses_queue_and_under_replication() {
        let peers: Vec<ClusterPeer> = parse_list("peers", PEERS.as_bytes()).unwrap();
        let pins: Vec<PinStatus> = parse_list(
            "pins",
            br#"{"cid":"Qm1","peer_map":{"12D3KooWA":{"peername":"node-a","status":"pinned","error":""}}}
{"cid":"Qm2","peer_map":{"12D3KooWA":{"status":"pin_queued"}}}
{"cid":"Qm3","peer_map":{"12D3KooWA":{"status":"pin_error","error":"context deadline exceeded"}}}
{"cid":"Qm4","peer_map":{"12D3KooWA":{"status":"remote"}}}"#,
        )
        .unwrap();
        let allocations: Vec<Allocation> = parse_list(
            "allocations",
            br#"{"cid":"Qm1","allocations":["12D3KooWA","12D3KooWC"],"replication_factor_min":2}
{"cid":"Qm2","allocations":["12D3KooWA","12D3KooWB"]}
{"cid":"Qm3","allocations":["12D3KooWGone"]}
{"cid":"Qm4","allocations":null,"replication_factor_min":-1}"#,
        )
        .unwrap();
        let f = figures(&peers, &pins, &allocations);
        assert_eq!((f.peers_online, f.peers_offline), (2, 1));
        assert_eq!(f.pins["pinned"], 1);
        assert_eq!(f.pins["pin_error"], 1);
        assert_eq!(f.pins["unpinning"], 0);
        assert_eq!(f.queue_length, 1);
        assert_eq!(
            f.under_replicated, 3,
            "Qm2 (B down), Qm3 (peer gone), Qm4 (everywhere, B down)"
        );
    }
}
