//! The short form end to end: the configuration in the README (three threshold alerts, three
//! actions) fires each alert and runs its action as the configuration describes it. `run_gc`
//! (`command: 'ipfs repo gc'`) runs an `ipfs` on PATH that drives a real js-ipfs node (curl to
//! its RPC API); `notify_admin` runs a script with `{node_id}` and `{details}`;
//! `reallocate_pins` (`method: cluster_manager.reallocate_pins`) moves the pins of a peer
//! sentinel that went Offline, through the IPFS Cluster stand-in (IPFS Cluster cannot be
//! installed here). Thresholds are lowered and the Offline alert's 5 minutes shortened so the
//! alerts fire on any machine within the test; everything else is as the README has it.

mod support;

use serde_json::Value;
use support::ipfs_cluster::{ClusterState, IpfsClusterStandIn};
use support::{action_runs, eventually, executable, free_port, http, IpfsNode, Sentinel};

async fn run_of(sentinel: &Sentinel, action: &str) -> Value {
    eventually(&format!("a finished run of {action}"), || async {
        action_runs(sentinel).await.into_iter().find(|r| {
            r["action"] == action && (r["result"] == "success" || r["result"] == "dead_letter")
        })
    })
    .await
}

/// Puts an unpinned raw block; returns its CID.
async fn unpinned_block(node: &IpfsNode) -> String {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(
            format!("unpinned for gc {:?}", std::time::SystemTime::now()).into_bytes(),
        )
        .file_name("block")
        .mime_str("application/octet-stream")
        .unwrap(),
    );
    let body: Value = http()
        .post(format!("{}/api/v0/block/put", node.api_url))
        .query(&[("format", "raw"), ("cid-codec", "raw"), ("pin", "false")])
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["Key"]
        .as_str()
        .unwrap_or_else(|| panic!("block/put answers a Key: {body}"))
        .to_owned()
}

async fn has_block(node: &IpfsNode, cid: &str) -> bool {
    http()
        .post(format!("{}/api/v0/block/stat", node.api_url))
        .query(&[("arg", cid), ("offline", "true")])
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs js-ipfs from tests/ipfs-node; the README's test command runs it"]
async fn the_short_forms_three_alerts_run_their_actions() {
    let node = IpfsNode::start().await;
    let garbage = unpinned_block(&node).await;
    assert!(has_block(&node, &garbage).await);

    let dir = tempfile::tempdir().unwrap();
    // `ipfs` on PATH: `ipfs A B` is the node's RPC call `A/B` (js-ipfs's own CLI cannot
    // reach its daemon in this install: its http client rejects the API address).
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    executable(
        &bin.join("ipfs"),
        &format!(
            "#!/bin/sh\nexec curl -sS --fail-with-body --max-time 50 -X POST \"{}/api/v0/$1/$2\"\n",
            node.api_url
        ),
    );
    let notified = dir.path().join("notified");
    let notify = dir.path().join("notify_script.sh");
    executable(
        &notify,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n",
            notified.display()
        ),
    );

    // The peer that goes Offline, and IPFS Cluster allocating one pin to it.
    let peer_port = free_port();
    let mut peer = Sentinel::start_on(
        peer_port,
        "ipfs: {api_url: 'http://127.0.0.1:9', timeout_seconds: 1}\ncluster:\n  node_id: node-b\n  monitoring: {collection_interval_seconds: 1, collector_timeout_seconds: 1}\n",
    )
    .await;
    let state = ClusterState {
        peers: vec![
            ClusterState::peer("12D3KooWA", "node-a", ""),
            ClusterState::peer("12D3KooWB", "node-b", "context deadline exceeded"),
            ClusterState::peer("12D3KooWC", "node-c", ""),
        ],
        pins: Vec::new(),
        allocations: vec![
            ClusterState::replicated("QmOnB", &["12D3KooWA", "12D3KooWB"], 2, 2),
            ClusterState::replicated("QmNotOnB", &["12D3KooWA", "12D3KooWC"], 2, 2),
        ],
    };
    let stand_in = IpfsClusterStandIn::start(state, "sentinel:pw").await;
    let auth = dir.path().join("cluster.auth");
    std::fs::write(&auth, "sentinel:pw\n").unwrap();

    let config = format!(
        "ipfs: {{api_url: '{ipfs}', timeout_seconds: 5}}
cluster:
  node_id: node-a
  peers: ['http://127.0.0.1:{peer_port}']
  peer_timeout_seconds: 1
  offline_after_seconds: 1
  ipfs_cluster: {{api_url: '{cluster}', basic_auth_file: '{auth}'}}
  monitoring:
    enabled: true
    collection_interval_seconds: 1
    collector_timeout_seconds: 5
    metrics_history_duration_hours: 24
    alerts:
      - {{metric: node.disk_usage_percent, threshold: 0, operator: '>=', severity: warning, action: run_gc}}
      - {{metric: node.memory_usage_percent, threshold: 0, operator: '>=', severity: critical, action: notify_admin}}
      - {{metric: node.status, threshold: Offline, operator: '==', severity: critical, duration_minutes: 0.02, action: reallocate_pins}}
    recovery_actions:
      run_gc: {{command: 'ipfs repo gc', target: alerting_node}}
      reallocate_pins: {{method: cluster_manager.reallocate_pins, target: alerting_node}}
      notify_admin: {{script: '{notify}', args: ['{{node_id}}', '{{details}}']}}
  dashboard:
    enabled: true
    refresh_interval_seconds: 30
",
        ipfs = node.api_url,
        cluster = stand_in.url,
        auth = auth.display(),
        notify = notify.display(),
    );
    let sentinel_dir = tempfile::tempdir().unwrap();
    let data = sentinel_dir.path().join("data");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let sentinel = Sentinel::start_with(
        free_port(),
        &config,
        &data,
        sentinel_dir,
        &[],
        &[("PATH", &path)],
        true,
    )
    .await;

    // node.disk_usage_percent >= 0: `ipfs repo gc` removes the unpinned block.
    let gc = run_of(&sentinel, "run_gc").await;
    assert_eq!(gc["result"], "success", "{gc}");
    assert_eq!(gc["node_id"], "node-a");
    assert!(gc["output"].as_str().unwrap().contains(&garbage), "{gc}");
    assert!(!has_block(&node, &garbage).await, "the block is gone");

    // node.memory_usage_percent >= 0: the script gets {node_id} and {details}.
    let notify_run = run_of(&sentinel, "notify_admin").await;
    assert_eq!(notify_run["result"], "success", "{notify_run}");
    let lines: Vec<String> = std::fs::read_to_string(&notified)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines[0], "node-a");
    assert!(
        lines[1].starts_with("memory on node-a is ")
            && lines[1].ends_with(" % used (alert: node.memory_usage_percent >= 0)"),
        "{{details}} is the description, in words: {lines:?}"
    );

    // node.status == Offline: node-b stops answering; its pin moves off it.
    assert!(action_runs(&sentinel)
        .await
        .iter()
        .all(|r| r["action"] != "reallocate_pins"));
    peer.process.stop();
    let moved = run_of(&sentinel, "reallocate_pins").await;
    assert_eq!(moved["result"], "success", "{moved}");
    assert_eq!(moved["node_id"], "node-b");
    let written: Vec<String> = stand_in
        .pin_requests()
        .iter()
        .map(|r| r.cid.clone())
        .collect();
    assert_eq!(written, ["QmOnB"], "only the pin allocated to node-b");
}
