//! The `ipfs_cluster` collector: IPFS Cluster's REST API (`GET /peers`, `GET /pins?local=true`,
//! `GET /allocations`), read into peers by status, this peer's pins by status, the pin queue and
//! the pins under-replicated because an allocated peer is down.
//!
//! Owns the reduction of the three lists to figures and the families they become; the calls,
//! the basic auth and IPFS Cluster's shapes are [`IpfsClusterClient`]'s (the secret is read
//! from its file once at start and never logged).

use std::collections::{BTreeMap, HashSet};

use futures::future::BoxFuture;

use super::{CollectError, Collector};
use crate::clients::ipfs_cluster::{Allocation, ClusterPeer, IpfsClusterClient, PinStatus};
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

/// Reads IPFS Cluster's REST API.
pub struct IpfsClusterCollector {
    cluster: IpfsClusterClient,
}

impl IpfsClusterCollector {
    /// A collector for `config.api_url`; reads the basic-auth file now.
    pub fn new(config: &IpfsClusterConfig) -> Result<Self, CollectError> {
        let cluster =
            IpfsClusterClient::new(config).map_err(|e| CollectError::Source(e.to_string()))?;
        Ok(Self { cluster })
    }

    async fn round(&self) -> Result<Vec<Family>, CollectError> {
        let (peers, pins, allocations) = futures::try_join!(
            self.cluster.peers(),
            self.cluster.local_pins(),
            self.cluster.allocations(),
        )
        .map_err(|e| CollectError::Source(e.to_string()))?;
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
    use crate::clients::ipfs_cluster::parse_list;

    const PEERS: &str = r#"{"id":"12D3KooWA","peername":"node-a","error":"","version":"1.1.1","ipfs":{"id":"12D3KooWX","error":""}}
{"id":"12D3KooWB","peername":"node-b","error":"dial backoff","ipfs":{"id":"","error":""}}
{"id":"12D3KooWC","peername":"node-c","error":""}
"#;

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
