//! Alert identity with real parts: three ipfs-sentinel processes (the built binary, each with
//! its own `cluster.node_id`, data dir and loopback port) sending to one real Alertmanager
//! (Debian's `prometheus-alertmanager`). A rule that fires on all three arrives as three alerts,
//! told apart by `node_id`; an Offline peer seen by two sentinels arrives as one alert, carrying
//! the `node_id` of the peer it is about.

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use support::alertmanager::Alertmanager;
use support::{eventually, free_port, sample, Sentinel};

/// Fires on every sentinel, always, and goes to Alertmanager.
const RULES: &str = "groups:\n  - name: identity\n    rules:\n      - alert: EverywhereAlways\n        expr: vector(1)\n        labels: {severity: info, action: to_am}\n        annotations: {summary: 'fires on every node'}\n";

/// A sentinel named `node_id`, collecting every second, with [`RULES`], a short-form
/// `node.status == Offline` alert, and its peers. The Offline alert goes to Alertmanager
/// through an action of its own, `offline_from_<node_id>`, so each sentinel's sends of it are
/// counted apart (`ipfs_sentinel_actions_total{action}`).
fn config(node_id: &str, peers: &[String], alertmanager: &str) -> String {
    let peers: Vec<String> = peers.iter().map(|p| format!("'{p}'")).collect();
    format!(
        "ipfs:\n  api_url: http://127.0.0.1:9\n  timeout_seconds: 1\ncluster:\n  node_id: {node_id}\n  peers: [{}]\n  peer_timeout_seconds: 1\n  offline_after_seconds: 2\n  monitoring:\n    collection_interval_seconds: 1\n    collector_timeout_seconds: 1\n    rule_files: [rules.yml]\n    alerts:\n      - {{metric: node.status, threshold: Offline, operator: '==', severity: critical, action: offline_from_{node_id}}}\n    recovery_actions:\n      to_am: {{alertmanager: {{urls: ['{alertmanager}']}}}}\n      offline_from_{node_id}: {{alertmanager: {{urls: ['{alertmanager}']}}}}\n",
        peers.join(", ")
    )
}

async fn start(node_id: &str, port: u16, peers: &[String], alertmanager: &str) -> Sentinel {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let data = dir.path().join("data");
    Sentinel::start_in(port, &config(node_id, peers, alertmanager), &data, dir).await
}

/// The `node_id` of every active alert named `alertname` in Alertmanager, read with amtool.
fn amtool_node_ids(alertmanager: &str, alertname: &str) -> Vec<String> {
    let out = Command::new("amtool")
        .args([
            "alert",
            "query",
            "-o",
            "json",
            &format!("--alertmanager.url={alertmanager}"),
            &format!("alertname={alertname}"),
        ])
        .output()
        .expect("amtool runs (the README's test command installs prometheus-alertmanager)");
    assert!(
        out.status.success(),
        "amtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<String> = alerts
        .iter()
        .map(|a| a["labels"]["node_id"].as_str().unwrap_or("").to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus-alertmanager and amtool (the README's test command installs them)"]
async fn three_nodes_three_alerts_one_offline_peer_one_alert() {
    let am = Alertmanager::start(
        "route:\n  receiver: none\n  group_by: [alertname, node_id]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: none\n",
    )
    .await;
    let (port_c, port_a, port_b) = (free_port(), free_port(), free_port());
    let url_c = format!("http://127.0.0.1:{port_c}");
    let mut node_c = start("node-c", port_c, &[], &am.url).await;
    let node_a = start("node-a", port_a, std::slice::from_ref(&url_c), &am.url).await;
    let node_b = start("node-b", port_b, std::slice::from_ref(&url_c), &am.url).await;

    // The same rule on three nodes: three alerts, one per node_id.
    let ids = eventually("three EverywhereAlways alerts in Alertmanager", || {
        let url = am.url.clone();
        async move {
            let ids = amtool_node_ids(&url, "EverywhereAlways");
            (ids.len() == 3).then_some(ids)
        }
    })
    .await;
    assert_eq!(ids, ["node-a", "node-b", "node-c"]);
    let via_api: BTreeSet<String> = am
        .alerts()
        .await
        .iter()
        .filter(|a| a["labels"]["alertname"] == "EverywhereAlways")
        .map(|a| a["labels"]["node_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(via_api.len(), 3, "the v2 API agrees: {via_api:?}");

    // node-a and node-b see node-c answer (so they know its node_id; without a Kubo node it
    // is Degraded, not Online), then stop answering.
    for sentinel in [&node_a, &node_b] {
        sentinel
            .metrics_until("node-c answering in the cluster view", |body| {
                sample(
                    body,
                    "ipfs_sentinel_cluster_node_status",
                    &[("node_id", "node-c"), ("status", "Offline")],
                ) == Some(0.0)
            })
            .await;
    }
    node_c.process.stop();

    // Both raise NodeStatusOffline{node_id="node-c"} and send it; Alertmanager holds one.
    for (sentinel, node) in [(&node_a, "node-a"), (&node_b, "node-b")] {
        let action = format!("offline_from_{node}");
        sentinel
            .metrics_until("the Offline alert sent by each watching sentinel", |body| {
                sample(
                    body,
                    "ipfs_sentinel_actions_total",
                    &[("action", &action), ("result", "success")],
                )
                .is_some_and(|n| n >= 1.0)
            })
            .await;
    }
    let offline = amtool_node_ids(&am.url, "NodeStatusOffline");
    assert_eq!(
        offline,
        ["node-c"],
        "one alert, about node-c, whoever saw it"
    );
    let alert = am
        .alerts()
        .await
        .into_iter()
        .find(|a| a["labels"]["alertname"] == "NodeStatusOffline")
        .unwrap();
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(
        [
            "node node-c is Offline (seen from node-a)",
            "node node-c is Offline (seen from node-b)"
        ]
        .contains(&summary),
        "{alert}"
    );
}
