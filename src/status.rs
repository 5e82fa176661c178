//! The node status report served on `GET /api/v1/status` and read back from peer sentinels:
//! identity, uptime, IPFS, headline figures, collector health and this node's view of the
//! cluster.
//!
//! Owns the report's shape and how it is derived from a [`Snapshot`]; everything here is a pure
//! function of the snapshot, the node's identity and the clock passed in. Fields a peer leaves
//! out (an older or newer sentinel) read as absent, never as an error.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::Role;
use crate::model::{Family, NodeStatus, Snapshot};
use crate::remote_write::ReceiverStatus;

/// Collectors whose failure does not make this node unhealthy: they report on others.
const CLUSTER_COLLECTORS: &[&str] = &["cluster", "ipfs_cluster"];

/// Who this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `cluster.node_id`.
    pub node_id: String,
    /// `cluster.role`.
    pub role: Role,
}

/// What `GET /api/v1/status` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusReport {
    /// The node's id in the cluster.
    pub node_id: String,
    /// `master`, `worker` or `leecher`.
    pub role: String,
    /// ipfs-sentinel's version.
    pub version: String,
    /// Seconds since this sentinel started.
    pub uptime_seconds: f64,
    /// This node's own health: `Online` or `Degraded` (a node that answers is never `Offline`).
    pub status: Option<NodeStatus>,
    /// The IPFS node beside it.
    pub ipfs: IpfsStatus,
    /// Headline figures; absent ones were not collected.
    pub metrics: Headline,
    /// Each collector's last result (true: succeeded).
    pub collectors: BTreeMap<String, bool>,
    /// This node's view of the cluster, itself included.
    pub cluster: Vec<ClusterNode>,
    /// Each remote write receiver's state (none configured: empty).
    pub remote_write: Vec<ReceiverStatus>,
}

/// The IPFS part of a status report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpfsStatus {
    /// Whether the Kubo RPC API answered at the last collection.
    pub up: bool,
    /// The IPFS node's version.
    pub version: Option<String>,
    /// The IPFS node's peer id.
    pub peer_id: Option<String>,
}

/// Headline figures of one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Headline {
    /// CPU busy, 0-1.
    pub cpu_usage_ratio: Option<f64>,
    /// Memory in use, 0-1.
    pub memory_usage_ratio: Option<f64>,
    /// The fullest real filesystem's usage, 0-1.
    pub disk_usage_ratio: Option<f64>,
    /// Where that filesystem is mounted.
    pub disk_mountpoint: Option<String>,
    /// IPFS repo size.
    pub repo_size_bytes: Option<f64>,
    /// IPFS repo limit (StorageMax).
    pub repo_storage_max_bytes: Option<f64>,
    /// Recursive plus direct pins.
    pub pins: Option<f64>,
    /// Connected swarm peers.
    pub peers: Option<f64>,
    /// Incoming bandwidth, bytes per second.
    pub bandwidth_in_bytes_per_second: Option<f64>,
    /// Outgoing bandwidth, bytes per second.
    pub bandwidth_out_bytes_per_second: Option<f64>,
}

/// One node as this sentinel sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// The node's id.
    pub node_id: String,
    /// Its role (`unknown` until it has answered once).
    pub role: String,
    /// Online, Degraded or Offline.
    pub status: NodeStatus,
    /// When it last answered, Unix seconds.
    pub last_seen_timestamp_seconds: Option<f64>,
}

/// Whether a node with these readings is `Online` or `Degraded`.
pub fn health<'a>(
    ipfs_up: bool,
    collectors: impl IntoIterator<Item = (&'a str, bool)>,
) -> NodeStatus {
    let collectors_ok = collectors
        .into_iter()
        .filter(|(name, _)| !CLUSTER_COLLECTORS.contains(name))
        .all(|(_, ok)| ok);
    if ipfs_up && collectors_ok {
        NodeStatus::Online
    } else {
        NodeStatus::Degraded
    }
}

/// Each collector's last result, from `ipfs_sentinel_collector_success`.
pub fn collectors(snapshot: &Snapshot) -> BTreeMap<String, bool> {
    snapshot
        .family("ipfs_sentinel_collector_success")
        .map(|f| {
            f.samples
                .iter()
                .filter_map(|s| Some((Family::label(s, "collector")?.to_owned(), s.value == 1.0)))
                .collect()
        })
        .unwrap_or_default()
}

/// This node's own health, from its snapshot.
pub fn local_health(snapshot: &Snapshot) -> NodeStatus {
    let up = snapshot.value("ipfs_sentinel_ipfs_up", &[]) == Some(1.0);
    let collectors = collectors(snapshot);
    health(up, collectors.iter().map(|(k, v)| (k.as_str(), *v)))
}

/// The headline figures in a snapshot.
pub fn headline(snapshot: &Snapshot) -> Headline {
    let one = |name: &str| snapshot.value(name, &[]);
    let worst_disk = snapshot
        .family("ipfs_sentinel_node_disk_usage_ratio")
        .and_then(|f| f.samples.iter().max_by(|a, b| a.value.total_cmp(&b.value)));
    let pins = snapshot
        .family("ipfs_sentinel_ipfs_pins")
        .filter(|f| !f.samples.is_empty())
        .map(|f| f.samples.iter().map(|s| s.value).sum());
    let rate = |direction| {
        snapshot.value(
            "ipfs_sentinel_ipfs_bandwidth_rate_bytes",
            &[("direction", direction)],
        )
    };
    Headline {
        cpu_usage_ratio: one("ipfs_sentinel_node_cpu_usage_ratio"),
        memory_usage_ratio: one("ipfs_sentinel_node_memory_usage_ratio"),
        disk_usage_ratio: worst_disk.map(|s| s.value),
        disk_mountpoint: worst_disk
            .and_then(|s| Family::label(s, "mountpoint"))
            .map(str::to_owned),
        repo_size_bytes: one("ipfs_sentinel_ipfs_repo_size_bytes"),
        repo_storage_max_bytes: one("ipfs_sentinel_ipfs_repo_storage_max_bytes"),
        pins,
        peers: one("ipfs_sentinel_ipfs_peers"),
        bandwidth_in_bytes_per_second: rate("in"),
        bandwidth_out_bytes_per_second: rate("out"),
    }
}

/// The cluster view recorded in a snapshot by the `cluster` collector.
pub fn cluster_view(snapshot: &Snapshot) -> Vec<ClusterNode> {
    let Some(states) = snapshot.family("ipfs_sentinel_cluster_node_status") else {
        return Vec::new();
    };
    let last_seen = snapshot.family("ipfs_sentinel_cluster_node_last_seen_timestamp_seconds");
    states
        .samples
        .iter()
        .filter(|s| s.value == 1.0)
        .filter_map(|s| {
            let node_id = Family::label(s, "node_id")?;
            Some(ClusterNode {
                node_id: node_id.to_owned(),
                role: Family::label(s, "role").unwrap_or("unknown").to_owned(),
                status: NodeStatus::parse(Family::label(s, "status")?)?,
                last_seen_timestamp_seconds: last_seen
                    .and_then(|f| f.value(&[("node_id", node_id)])),
            })
        })
        .collect()
}

/// The full report of this node.
pub fn report(
    snapshot: &Snapshot,
    me: &Identity,
    started: SystemTime,
    now: SystemTime,
) -> StatusReport {
    let info = snapshot
        .family("ipfs_sentinel_ipfs_info")
        .and_then(|f| f.samples.first());
    StatusReport {
        node_id: me.node_id.clone(),
        role: me.role.as_str().to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: now
            .duration_since(started)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        status: Some(local_health(snapshot)),
        ipfs: IpfsStatus {
            up: snapshot.value("ipfs_sentinel_ipfs_up", &[]) == Some(1.0),
            version: info
                .and_then(|s| Family::label(s, "version"))
                .map(str::to_owned),
            peer_id: info
                .and_then(|s| Family::label(s, "peer_id"))
                .map(str::to_owned),
        },
        metrics: headline(snapshot),
        collectors: collectors(snapshot),
        cluster: cluster_view(snapshot),
        remote_write: ReceiverStatus::from_families(&snapshot.families),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Family;

    fn snapshot(ipfs_up: f64, ipfs_ok: f64) -> Snapshot {
        Snapshot::new(
            SystemTime::UNIX_EPOCH,
            vec![
                Family::single_gauge("ipfs_sentinel_ipfs_up", "", ipfs_up),
                Family::gauge("ipfs_sentinel_collector_success", "")
                    .with(&[("collector", "node")], 1.0)
                    .with(&[("collector", "ipfs")], ipfs_ok)
                    .with(&[("collector", "ipfs_cluster")], 0.0),
                Family::gauge("ipfs_sentinel_node_disk_usage_ratio", "")
                    .with(&[("mountpoint", "/")], 0.4)
                    .with(&[("mountpoint", "/data")], 0.9),
                Family::gauge("ipfs_sentinel_ipfs_pins", "")
                    .with(&[("type", "recursive")], 5.0)
                    .with(&[("type", "direct")], 2.0),
                Family::gauge("ipfs_sentinel_cluster_node_status", "")
                    .with(
                        &[("node_id", "b"), ("role", "worker"), ("status", "Online")],
                        0.0,
                    )
                    .with(
                        &[("node_id", "b"), ("role", "worker"), ("status", "Offline")],
                        1.0,
                    ),
            ],
        )
    }

    #[test]
    fn health_ignores_the_collectors_that_report_on_others() {
        assert_eq!(local_health(&snapshot(1.0, 1.0)), NodeStatus::Online);
        assert_eq!(local_health(&snapshot(0.0, 0.0)), NodeStatus::Degraded);
        assert_eq!(local_health(&snapshot(1.0, 0.0)), NodeStatus::Degraded);
    }

    #[test]
    fn report_reads_the_headline_and_the_cluster_view() {
        let me = Identity {
            node_id: "a".into(),
            role: Role::Master,
        };
        let started = SystemTime::UNIX_EPOCH;
        let now = started + std::time::Duration::from_secs(90);
        let r = report(&snapshot(1.0, 1.0), &me, started, now);
        assert_eq!(
            (r.node_id.as_str(), r.role.as_str(), r.uptime_seconds),
            ("a", "master", 90.0)
        );
        assert_eq!(r.metrics.disk_usage_ratio, Some(0.9));
        assert_eq!(r.metrics.disk_mountpoint.as_deref(), Some("/data"));
        assert_eq!(r.metrics.pins, Some(7.0));
        assert_eq!(r.cluster.len(), 1);
        assert_eq!(r.cluster[0].status, NodeStatus::Offline);
        let json = serde_json::to_string(&r).unwrap();
        let back: StatusReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn a_peer_report_with_fields_missing_or_added_still_reads() {
        let r: StatusReport =
            serde_json::from_str(r#"{"node_id":"b","ipfs":{"up":true},"future":1}"#).unwrap();
        assert_eq!(r.node_id, "b");
        assert!(r.ipfs.up);
        assert_eq!(r.metrics.cpu_usage_ratio, None);
    }
}
