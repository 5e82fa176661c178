//! The peers collector (named `cluster` in `ipfs_sentinel_collector_success{collector}`): every
//! node's status, from this node's own snapshot and from each peer sentinel's `/api/v1/status`
//! (asked through [`PeerClient`]), as the `ipfs_sentinel_cluster_node*` and
//! `ipfs_sentinel_cluster_nodes` families. IPFS Cluster is another collector's
//! (`collect::ipfs_cluster`).
//!
//! Owns the peers' reachability history (last seen, since when unreachable), which decides
//! `Degraded` against `Offline`. Peers are asked concurrently, each under its own timeout, so a
//! dead or hung peer costs one timeout for the round and never delays the others. It reads this
//! node's latest snapshot; it never writes anything but its own families.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use super::{CollectError, Collector};
use crate::clients::peers::PeerClient;
use crate::config::{ClusterConfig, Role};
use crate::exposition::ExpositionCache;
use crate::model::{Family, NodeStatus};
use crate::status::{self, Headline, Identity};

/// Roles every `cluster_nodes` series is exposed for, so absent roles read 0 rather than nothing.
const ROLES: [Role; 3] = [Role::Master, Role::Worker, Role::Leecher];

/// A peer sentinel that did not answer: logged when it goes from answering to not answering.
struct PeerUnreachable<'a> {
    url: &'a str,
    error: &'a str,
}

impl PeerUnreachable<'_> {
    fn emit(&self) {
        tracing::warn!(
            peer = self.url,
            error = self.error,
            "peer sentinel unreachable"
        );
    }
}

/// What this collector remembers of one peer.
struct Peer {
    url: reqwest::Url,
    /// The peer's node id once it has answered; its address until then.
    node_id: String,
    role: String,
    last_seen: Option<SystemTime>,
    last_answered: bool,
    headline: Option<Headline>,
}

/// One node's row in the view built each round.
struct Row {
    node_id: String,
    role: String,
    status: NodeStatus,
    last_seen: Option<SystemTime>,
    headline: Option<Headline>,
}

/// Builds the cluster view from peer sentinels and this node's own snapshot.
pub struct PeersCollector {
    /// With the token of `cluster.peer_token_file`, under `cluster.peer_timeout_seconds`.
    sentinels: PeerClient,
    me: Identity,
    local: ExpositionCache,
    peers: Vec<Peer>,
    offline_after: Duration,
    export_peer_metrics: bool,
    started: SystemTime,
}

impl PeersCollector {
    /// A collector for `config.peers`, reading this node's state from `local`.
    pub fn new(config: &ClusterConfig, local: ExpositionCache) -> Result<Self, CollectError> {
        let sentinels = PeerClient::new(config).map_err(|e| CollectError::Source(e.to_string()))?;
        let peers = config
            .peers
            .iter()
            .map(|url| Peer {
                node_id: url.0.authority().to_owned(),
                url: url.0.clone(),
                role: "unknown".to_owned(),
                last_seen: None,
                last_answered: true,
                headline: None,
            })
            .collect();
        Ok(Self {
            sentinels,
            me: Identity {
                node_id: config.node_id.clone(),
                role: config.role,
            },
            local,
            peers,
            offline_after: config.offline_after_seconds.duration(),
            export_peer_metrics: config.export_peer_metrics,
            started: SystemTime::now(),
        })
    }

    async fn round(&mut self) -> Vec<Family> {
        let sentinels = &self.sentinels;
        let answers =
            futures::future::join_all(self.peers.iter().map(|p| sentinels.status(&p.url))).await;
        let now = SystemTime::now();
        let local = self.local.current();
        let mut rows = vec![Row {
            node_id: self.me.node_id.clone(),
            role: self.me.role.as_str().to_owned(),
            status: status::local_health(&local.snapshot),
            last_seen: Some(now),
            headline: Some(status::headline(&local.snapshot)),
        }];
        for (peer, answer) in self.peers.iter_mut().zip(answers) {
            let status = match answer {
                Ok(report) => {
                    if !report.node_id.is_empty() {
                        peer.node_id = report.node_id.clone();
                    }
                    if !report.role.is_empty() {
                        peer.role = report.role.clone();
                    }
                    peer.last_seen = Some(now);
                    peer.last_answered = true;
                    peer.headline = Some(report.metrics.clone());
                    status::health(
                        report.ipfs.up,
                        report.collectors.iter().map(|(k, v)| (k.as_str(), *v)),
                    )
                }
                Err(error) => {
                    if peer.last_answered {
                        PeerUnreachable {
                            url: peer.url.as_str(),
                            error: &error.to_string(),
                        }
                        .emit();
                    }
                    peer.last_answered = false;
                    peer.headline = None;
                    let since = peer.last_seen.unwrap_or(self.started);
                    let unreachable_for = now.duration_since(since).unwrap_or_default();
                    if unreachable_for < self.offline_after {
                        NodeStatus::Degraded
                    } else {
                        NodeStatus::Offline
                    }
                }
            };
            rows.push(Row {
                node_id: peer.node_id.clone(),
                role: peer.role.clone(),
                status,
                last_seen: peer.last_seen,
                headline: peer.headline.clone(),
            });
        }
        disambiguate(&mut rows);
        families(&rows, self.export_peer_metrics)
    }
}

/// Two nodes answering with the same id would collide in the series: the later ones get their
/// position appended (and a warning says which).
fn disambiguate(rows: &mut [Row]) {
    let mut seen = BTreeSet::new();
    for (i, row) in rows.iter_mut().enumerate() {
        if !seen.insert(row.node_id.clone()) {
            tracing::warn!(node_id = %row.node_id, "two cluster nodes report the same node_id; check cluster.node_id on each");
            row.node_id = format!("{}#{i}", row.node_id);
        }
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn families(rows: &[Row], export_peer_metrics: bool) -> Vec<Family> {
    let mut nodes = Family::gauge(
        "ipfs_sentinel_cluster_nodes",
        "Cluster nodes by role and status, this one included.",
    );
    let mut roles: Vec<&str> = ROLES.iter().map(|r| r.as_str()).collect();
    for row in rows {
        if !roles.contains(&row.role.as_str()) {
            roles.push(&row.role);
        }
    }
    for role in &roles {
        for status in NodeStatus::ALL {
            let count = rows
                .iter()
                .filter(|r| r.role == *role && r.status == status)
                .count();
            nodes.push(&[("role", role), ("status", status.as_str())], count as f64);
        }
    }
    let mut state = Family::gauge(
        "ipfs_sentinel_cluster_node_status",
        "The node's status: 1 for the current one of Online, Degraded, Offline.",
    );
    let mut last_seen = Family::gauge(
        "ipfs_sentinel_cluster_node_last_seen_timestamp_seconds",
        "When the node last answered, Unix time.",
    );
    for row in rows {
        for status in NodeStatus::ALL {
            let labels = [
                ("node_id", row.node_id.as_str()),
                ("role", row.role.as_str()),
                ("status", status.as_str()),
            ];
            state.push(&labels, if row.status == status { 1.0 } else { 0.0 });
        }
        if let Some(t) = row.last_seen {
            last_seen.push(&[("node_id", &row.node_id)], unix_seconds(t));
        }
    }
    let mut out = vec![nodes, state, last_seen];
    if export_peer_metrics {
        out.extend(headline_families(rows));
    }
    out
}

fn headline_families(rows: &[Row]) -> Vec<Family> {
    type Pick = fn(&Headline) -> Option<f64>;
    let table: [(&str, &str, Pick); 7] = [
        (
            "ipfs_sentinel_cluster_node_cpu_usage_ratio",
            "The node's CPU busy ratio (0-1), as it reports it.",
            |h| h.cpu_usage_ratio,
        ),
        (
            "ipfs_sentinel_cluster_node_memory_usage_ratio",
            "The node's memory usage ratio (0-1), as it reports it.",
            |h| h.memory_usage_ratio,
        ),
        (
            "ipfs_sentinel_cluster_node_disk_usage_ratio",
            "The node's fullest real filesystem's usage ratio (0-1).",
            |h| h.disk_usage_ratio,
        ),
        (
            "ipfs_sentinel_cluster_node_repo_size_bytes",
            "The node's IPFS repo size.",
            |h| h.repo_size_bytes,
        ),
        (
            "ipfs_sentinel_cluster_node_repo_storage_max_bytes",
            "The node's IPFS repo limit (Datastore.StorageMax).",
            |h| h.repo_storage_max_bytes,
        ),
        (
            "ipfs_sentinel_cluster_node_pins",
            "The node's IPFS pins, recursive plus direct.",
            |h| h.pins,
        ),
        (
            "ipfs_sentinel_cluster_node_peers",
            "The node's connected IPFS swarm peers.",
            |h| h.peers,
        ),
    ];
    let mut out: Vec<Family> = table
        .iter()
        .map(|(name, help, pick)| {
            let mut family = Family::gauge(*name, *help);
            for row in rows {
                if let Some(v) = row.headline.as_ref().and_then(pick) {
                    family.push(&[("node_id", &row.node_id)], v);
                }
            }
            family
        })
        .collect();
    let mut bandwidth = Family::gauge(
        "ipfs_sentinel_cluster_node_bandwidth_rate_bytes",
        "The node's IPFS bandwidth in bytes per second, by direction, as it reports it.",
    );
    for row in rows {
        let Some(h) = &row.headline else { continue };
        for (direction, rate) in [
            ("in", h.bandwidth_in_bytes_per_second),
            ("out", h.bandwidth_out_bytes_per_second),
        ] {
            if let Some(v) = rate {
                bandwidth.push(&[("node_id", &row.node_id), ("direction", direction)], v);
            }
        }
    }
    out.push(bandwidth);
    out
}

impl Collector for PeersCollector {
    fn name(&self) -> &'static str {
        "cluster"
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
        Box::pin(async move { Ok(self.round().await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, role: &str, status: NodeStatus) -> Row {
        Row {
            node_id: id.into(),
            role: role.into(),
            status,
            last_seen: Some(UNIX_EPOCH + Duration::from_secs(100)),
            headline: Some(Headline {
                cpu_usage_ratio: Some(0.5),
                ..Headline::default()
            }),
        }
    }

    #[test]
    fn state_set_counts_and_headline_series() {
        let rows = vec![
            row("a", "master", NodeStatus::Online),
            row("b", "worker", NodeStatus::Offline),
            row("c", "worker", NodeStatus::Offline),
        ];
        let f = families(&rows, true);
        let get = |n: &str| f.iter().find(|x| x.name == n).unwrap();
        let nodes = get("ipfs_sentinel_cluster_nodes");
        assert_eq!(
            nodes.value(&[("role", "worker"), ("status", "Offline")]),
            Some(2.0)
        );
        assert_eq!(
            nodes.value(&[("role", "leecher"), ("status", "Online")]),
            Some(0.0)
        );
        let state = get("ipfs_sentinel_cluster_node_status");
        assert_eq!(state.samples.len(), 9, "one series per node and status");
        assert_eq!(
            state.value(&[("node_id", "b"), ("status", "Offline")]),
            Some(1.0)
        );
        assert_eq!(
            state.value(&[("node_id", "b"), ("status", "Online")]),
            Some(0.0)
        );
        assert_eq!(
            get("ipfs_sentinel_cluster_node_last_seen_timestamp_seconds")
                .value(&[("node_id", "a")]),
            Some(100.0)
        );
        assert_eq!(
            get("ipfs_sentinel_cluster_node_cpu_usage_ratio")
                .samples
                .len(),
            3
        );
        assert!(families(&rows, false)
            .iter()
            .all(|x| x.name != "ipfs_sentinel_cluster_node_cpu_usage_ratio"));
    }

    #[test]
    fn duplicate_node_ids_do_not_collide() {
        let mut rows = vec![
            row("a", "worker", NodeStatus::Online),
            row("a", "worker", NodeStatus::Online),
        ];
        disambiguate(&mut rows);
        assert_eq!(rows[1].node_id, "a#1");
    }
}
