//! The `ipfs_cluster` collector: IPFS Cluster's REST API (`GET /peers`, `GET /pins?local=true`,
//! `GET /allocations`, the peer monitor's `GET /monitor/metrics/{name}` and
//! `GET /health/alerts`), read into peers by status, this peer's pins by status, the pin queue,
//! the pins under-replicated because an allocated peer is down, the age of the oldest pin stuck
//! in `pin_error` and in `pin_queued`, and the age of each peer's last metric.
//!
//! Owns the reduction of the lists to figures and the families they become, and the memory of
//! when each peer's metric was last received (the monitor drops a metric from its answer once
//! it expires, so a peer that stopped sending would vanish instead of ageing); the calls, the
//! basic auth and IPFS Cluster's shapes are [`IpfsClusterClient`]'s (the secret is read from
//! its file once at start and never logged).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use futures::future::BoxFuture;

use super::{CollectError, Collector};
use crate::clients::ipfs_cluster::{
    Allocation, ClusterPeer, IpfsClusterClient, MonitorAlert, MonitorMetric, PinStatus,
};
use crate::clients::ClientError;
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

/// Statuses whose oldest pin's age is exposed: a pin that stays in one of them is stuck.
pub const STUCK_STATUSES: &[&str] = &["pin_error", "pin_queued"];

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
    /// For each of [`STUCK_STATUSES`], how long the oldest pin in it has been there, in
    /// seconds (from the tracker's status timestamp); 0 when no pin is in it.
    pub oldest_pin_age_seconds: BTreeMap<&'static str, f64>,
}

/// Reduces the three lists to figures at `now_ms` (ms since the Unix epoch). A pin allocated
/// everywhere (no allocations) is under-replicated when any peer is down. A stuck pin whose
/// status has no timestamp (Go's zero time) counts as stuck since now; a timestamp in the
/// future (clocks apart) counts as 0 s.
pub fn figures(
    peers: &[ClusterPeer],
    pins: &[PinStatus],
    allocations: &[Allocation],
    now_ms: i64,
) -> ClusterFigures {
    let healthy: HashSet<&str> = peers
        .iter()
        .filter(|p| p.error.is_empty())
        .map(|p| p.id.as_str())
        .collect();
    let peers_offline = peers.len() - healthy.len();
    let mut by_status: BTreeMap<String, usize> =
        PIN_STATUSES.iter().map(|s| ((*s).to_owned(), 0)).collect();
    let mut oldest_pin_age_seconds: BTreeMap<&'static str, f64> =
        STUCK_STATUSES.iter().map(|s| (*s, 0.0)).collect();
    for pin in pins {
        for info in pin.peer_map.values() {
            *by_status.entry(info.status.clone()).or_default() += 1;
            if let Some(oldest) = oldest_pin_age_seconds.get_mut(info.status.as_str()) {
                let since = info.since_ms().unwrap_or(now_ms);
                *oldest = oldest.max(now_ms.saturating_sub(since).max(0) as f64 / 1000.0);
            }
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
        oldest_pin_age_seconds,
    }
}

/// When a peer's metric was last received, as remembered across collections: the key is the
/// cluster peer id and the metric's name, the value ms since the Unix epoch.
pub type LastReceived = BTreeMap<(String, String), i64>;

/// The age of one peer's last metric.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerMetricAge {
    /// The cluster peer id.
    pub peer: String,
    /// Its `peername`, when `GET /peers` tells it.
    pub peer_name: String,
    /// The metric's name (`ping`, `freespace`, ...).
    pub metric: String,
    /// Seconds since the monitor received it.
    pub age_seconds: f64,
}

/// Updates `last` with what the monitor holds (its latest valid metrics, and the metrics its
/// alerts say expired, as last received) and answers each current peer's metric ages at
/// `now_ms`. A peer no longer in `peers` is forgotten; a metric never received (an alert with
/// `received_at` 0) has no age. The monitor leaves an expired metric out of its latest ones, so
/// `last` keeps its age growing until the peer sends again.
pub fn peer_metric_ages(
    last: &mut LastReceived,
    peers: &[ClusterPeer],
    latest: &[MonitorMetric],
    alerts: &[MonitorAlert],
    now_ms: i64,
) -> Vec<PeerMetricAge> {
    let received = latest.iter().chain(alerts.iter().map(|a| &a.metric));
    for metric in received.filter(|m| !m.name.is_empty() && !m.peer.is_empty()) {
        if let Some(at) = metric.received_ms() {
            let entry = last
                .entry((metric.peer.clone(), metric.name.clone()))
                .or_insert(at);
            *entry = (*entry).max(at);
        }
    }
    let names: HashMap<&str, &str> = peers
        .iter()
        .map(|p| (p.id.as_str(), p.peername.as_str()))
        .collect();
    last.retain(|(peer, _), _| names.contains_key(peer.as_str()));
    last.iter()
        .map(|((peer, metric), at)| PeerMetricAge {
            peer: peer.clone(),
            peer_name: names.get(peer.as_str()).copied().unwrap_or("").to_owned(),
            metric: metric.clone(),
            age_seconds: now_ms.saturating_sub(*at).max(0) as f64 / 1000.0,
        })
        .collect()
}

/// A 404 from an endpoint an older IPFS Cluster lacks reads as an empty list.
fn absent_as_empty<T>(answer: Result<Vec<T>, ClientError>) -> Result<Vec<T>, ClientError> {
    match answer {
        Err(ClientError::Status { status: 404, .. }) => Ok(Vec::new()),
        other => other,
    }
}

/// Reads IPFS Cluster's REST API.
pub struct IpfsClusterCollector {
    cluster: IpfsClusterClient,
    last_received: LastReceived,
}

impl IpfsClusterCollector {
    /// A collector for `config.api_url`; reads the basic-auth file now.
    pub fn new(config: &IpfsClusterConfig) -> Result<Self, CollectError> {
        let cluster =
            IpfsClusterClient::new(config).map_err(|e| CollectError::Source(e.to_string()))?;
        Ok(Self {
            cluster,
            last_received: LastReceived::new(),
        })
    }

    /// Every metric the peer monitor holds, latest valid ones of each name, and its alerts.
    async fn monitor(&self) -> Result<(Vec<MonitorMetric>, Vec<MonitorAlert>), ClientError> {
        let (names, alerts) = futures::try_join!(
            async { absent_as_empty(self.cluster.metric_names().await) },
            async { absent_as_empty(self.cluster.alerts().await) },
        )?;
        let latest =
            futures::future::try_join_all(names.iter().map(|n| self.cluster.latest_metrics(n)))
                .await?;
        Ok((latest.into_iter().flatten().collect(), alerts))
    }

    async fn round(&mut self) -> Result<Vec<Family>, CollectError> {
        let (peers, pins, allocations, (latest, alerts)) = futures::try_join!(
            self.cluster.peers(),
            self.cluster.local_pins(),
            self.cluster.allocations(),
            self.monitor(),
        )
        .map_err(|e| CollectError::Source(e.to_string()))?;
        let now_ms = crate::clock::system_ms(SystemTime::now());
        let f = figures(&peers, &pins, &allocations, now_ms);
        let ages = peer_metric_ages(&mut self.last_received, &peers, &latest, &alerts, now_ms);
        let mut oldest = Family::gauge(
            "ipfs_sentinel_cluster_oldest_pin_age_seconds",
            "Age of this IPFS Cluster peer's oldest pin in the status, from the pin tracker's status timestamp; 0 when no pin is in it.",
        );
        for (status, age) in &f.oldest_pin_age_seconds {
            oldest.push(&[("status", status)], *age);
        }
        let mut metric_age = Family::gauge(
            "ipfs_sentinel_cluster_peer_metric_age_seconds",
            "Seconds since this IPFS Cluster peer's monitor received each peer's last metric (ping, freespace, ...), kept growing after it expires.",
        );
        for a in &ages {
            let mut labels = vec![("peer", a.peer.as_str())];
            if !a.peer_name.is_empty() {
                labels.push(("peer_name", a.peer_name.as_str()));
            }
            labels.push(("metric", a.metric.as_str()));
            metric_age.push(&labels, a.age_seconds);
        }
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
            oldest,
            metric_age,
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
        let f = figures(&peers, &pins, &allocations, 0);
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

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/ipfs_cluster/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The fixtures' "now": 2026-11-28T10:00:00Z.
    const NOW_MS: i64 = 1_795_860_000_000;

    #[test]
    fn the_oldest_stuck_pin_is_aged_from_its_status_timestamp() {
        let pins: Vec<PinStatus> = parse_list("pins", &fixture("pins.ndjson")).unwrap();
        let f = figures(&[], &pins, &[], NOW_MS);
        assert_eq!(
            f.oldest_pin_age_seconds["pin_error"], 3600.0,
            "QmPin4, 09:00"
        );
        assert_eq!(
            f.oldest_pin_age_seconds["pin_queued"], 1799.877,
            "QmPin3, 09:30:00.123456789"
        );
        let none = figures(&[], &pins[..1], &[], NOW_MS);
        assert_eq!(
            none.oldest_pin_age_seconds,
            BTreeMap::from([("pin_error", 0.0), ("pin_queued", 0.0)]),
            "0 when no pin is stuck"
        );
        let zero_time: Vec<PinStatus> = parse_list(
            "pins",
            br#"{"cid":"Qm5","peer_map":{"12D3KooWA":{"status":"pin_queued","timestamp":"0001-01-01T00:00:00Z"}}}
{"cid":"Qm6","peer_map":{"12D3KooWA":{"status":"pin_error","timestamp":"2026-11-28T10:00:09Z"}}}"#,
        )
        .unwrap();
        let f = figures(&[], &zero_time, &[], NOW_MS);
        assert_eq!(
            (
                f.oldest_pin_age_seconds["pin_queued"],
                f.oldest_pin_age_seconds["pin_error"]
            ),
            (0.0, 0.0),
            "no timestamp: stuck since now; a clock ahead: not negative"
        );
    }

    #[test]
    fn peer_metric_ages_come_from_received_at_and_keep_growing_once_expired() {
        let peers: Vec<ClusterPeer> = parse_list("peers", PEERS.as_bytes()).unwrap();
        let names: Vec<String> =
            parse_list("monitor/metrics", &fixture("monitor_metric_names.json")).unwrap();
        assert_eq!(names, ["freespace", "ping"]);
        let mut latest: Vec<MonitorMetric> =
            parse_list("monitor/metrics", &fixture("monitor_metrics_ping.json")).unwrap();
        latest.extend(
            parse_list::<MonitorMetric>(
                "monitor/metrics",
                &fixture("monitor_metrics_freespace.json"),
            )
            .unwrap(),
        );
        let alerts: Vec<MonitorAlert> =
            parse_list("health/alerts", &fixture("health_alerts.json")).unwrap();
        assert_eq!(alerts[1].triggered_at, "2026-11-28T09:56:00.000000001Z");

        let mut last = LastReceived::new();
        let ages = peer_metric_ages(&mut last, &peers, &latest, &alerts, NOW_MS);
        let age = |ages: &[PeerMetricAge], peer: &str, metric: &str| {
            ages.iter()
                .find(|a| a.peer == peer && a.metric == metric)
                .map(|a| (a.peer_name.clone(), a.age_seconds))
        };
        assert_eq!(
            age(&ages, "12D3KooWA", "ping"),
            Some(("node-a".into(), 5.0))
        );
        assert_eq!(
            age(&ages, "12D3KooWC", "ping"),
            Some(("node-c".into(), 20.0))
        );
        assert_eq!(
            age(&ages, "12D3KooWA", "freespace"),
            Some(("node-a".into(), 10.0))
        );
        assert_eq!(
            age(&ages, "12D3KooWB", "ping"),
            Some(("node-b".into(), 300.0)),
            "expired: from the alert"
        );
        assert_eq!(
            age(&ages, "12D3KooWB", "freespace"),
            None,
            "never received: no age"
        );
        assert_eq!(ages.len(), 5);

        // A minute later node-c stopped sending and its ping left the monitor's answer;
        // node-a sent again; node-b left the cluster.
        let later = NOW_MS + 60_000;
        let mut fresh = latest[0].clone();
        fresh.received_at += 60_000_000_000;
        let still: Vec<ClusterPeer> = peers
            .iter()
            .filter(|p| p.id != "12D3KooWB")
            .cloned()
            .collect();
        let ages = peer_metric_ages(&mut last, &still, &[fresh], &[], later);
        assert_eq!(
            age(&ages, "12D3KooWA", "ping"),
            Some(("node-a".into(), 5.0))
        );
        assert_eq!(
            age(&ages, "12D3KooWC", "ping"),
            Some(("node-c".into(), 80.0)),
            "still ageing"
        );
        assert_eq!(age(&ages, "12D3KooWB", "ping"), None, "gone with its peer");
        assert!(!last.keys().any(|(peer, _)| peer == "12D3KooWB"));
    }
}
