//! The built-in recovery actions against real parts: `run_gc` and `connect_bootstrap_peers`
//! against a real js-ipfs node (it serves the Kubo RPC API), `reallocate_pins` against the
//! IPFS Cluster stand-in (IPFS Cluster cannot be installed here), whose `POST /pins/{cid}`
//! allocates as IPFS Cluster's `allocate.go` does and records every write.

mod support;

use std::time::Duration;

use ipfs_sentinel::actions::builtin::{
    connect_bootstrap_peers, reallocate_pins, run_gc, BuiltinError,
};
use ipfs_sentinel::config::{HttpUrl, IpfsClusterConfig, PositiveSeconds};
use serde_json::{json, Value};
use support::ipfs_cluster::{ClusterState, IpfsClusterStandIn};
use support::{black_hole, free_port, http, sample, IpfsNode, Sentinel};

/// The client the dispatcher hands the built-ins: a timeout on every call, no proxy.
fn client(timeout_seconds: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_seconds))
        .connect_timeout(Duration::from_secs(timeout_seconds))
        .no_proxy()
        .build()
        .unwrap()
}

fn url(s: &str) -> reqwest::Url {
    s.parse().unwrap()
}

/// POSTs a Kubo RPC call to the node and reads its JSON answer (one object).
async fn rpc(node: &IpfsNode, endpoint: &str, query: &[(&str, &str)]) -> reqwest::Response {
    http()
        .post(format!("{}/api/v0/{endpoint}", node.api_url))
        .query(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{endpoint}: {e}"))
}

/// Puts `content` as a raw block (CIDv1, as the blockstore and GC name it); returns its CID.
async fn put_block(node: &IpfsNode, content: Vec<u8>, pin: bool) -> String {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(content)
            .file_name("block")
            .mime_str("application/octet-stream")
            .unwrap(),
    );
    let body: Value = http()
        .post(format!("{}/api/v0/block/put", node.api_url))
        .query(&[
            ("format", "raw"),
            ("cid-codec", "raw"),
            ("pin", if pin { "true" } else { "false" }),
        ])
        .multipart(form)
        .send()
        .await
        .expect("block/put")
        .json()
        .await
        .expect("block/put answers JSON");
    body["Key"]
        .as_str()
        .unwrap_or_else(|| panic!("block/put returns a Key, got {body}"))
        .to_owned()
}

/// The CIDs of every block the node holds (`refs/local`, one `{"Ref": cid}` per line).
async fn local_blocks(node: &IpfsNode) -> Vec<String> {
    let body = rpc(node, "refs/local", &[]).await.text().await.unwrap();
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["Ref"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// 100 KB no other test run has written.
fn unique_content(tag: &str) -> Vec<u8> {
    let stamp = format!(
        "{tag} {:?} {}",
        std::time::SystemTime::now(),
        std::process::id()
    );
    stamp.bytes().cycle().take(100_000).collect()
}

/// The built-in run by a sentinel for an alert, as the dispatcher runs it: its runs, duration
/// and the bytes it freed show on `/metrics`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs js-ipfs from tests/ipfs-node; the README's test command runs it"]
async fn a_sentinel_counts_its_gc_runs_and_the_bytes_they_free() {
    let node = IpfsNode::start().await;
    put_block(&node, unique_content("garbage"), false).await;
    let sentinel = Sentinel::start(&format!(
        "ipfs: {{api_url: '{}', timeout_seconds: 5}}
cluster:
  monitoring:
    collection_interval_seconds: 1
    alerts:
      - {{metric: node.memory_usage_percent, threshold: 0, operator: '>=', severity: warning, action: gc}}
    recovery_actions:
      gc: {{builtin: run_gc, target: local, cooldown_seconds: 3600}}
",
        node.api_url
    ))
    .await;
    let body = sentinel
        .metrics_until("a successful GC run", |b| {
            sample(b, "ipfs_sentinel_gc_runs_total", &[("result", "success")]) == Some(1.0)
        })
        .await;
    assert_eq!(
        sample(
            &body,
            "ipfs_sentinel_gc_runs_total",
            &[("result", "failure")]
        ),
        Some(0.0)
    );
    let freed = sample(&body, "ipfs_sentinel_gc_reclaimed_bytes_total", &[]).unwrap();
    // js-ipfs counts the 100 kB block as 99,936 bytes of RepoSize.
    assert!(freed > 90_000.0, "about the 100 kB block: {freed}");
    let took = sample(&body, "ipfs_sentinel_gc_last_duration_seconds", &[]).unwrap();
    assert!(took > 0.0 && took < 30.0, "{took}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs js-ipfs from tests/ipfs-node; the README's test command runs it"]
async fn run_gc_removes_an_unpinned_block_and_keeps_a_pinned_one() {
    let node = IpfsNode::start().await;
    let loose = put_block(&node, unique_content("loose"), false).await;
    let kept = put_block(&node, unique_content("kept"), true).await;
    let before = local_blocks(&node).await;
    assert!(
        before.contains(&loose) && before.contains(&kept),
        "{before:?}"
    );

    let report = run_gc(&client(30), &url(&node.api_url)).await.unwrap();

    assert!(report.success, "{report:?}");
    let removed: Vec<&str> = report.details["removed_sample"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(removed.contains(&loose.as_str()), "{report:?}");
    assert!(!removed.contains(&kept.as_str()), "{report:?}");
    let count = report.details["blocks_removed"].as_u64().unwrap();
    assert!(count >= 1 && count as usize >= removed.len(), "{report:?}");
    assert!(
        report
            .summary
            .starts_with(&format!("repo GC removed {count} blocks and freed ")),
        "{}",
        report.summary
    );
    // The 100 KB block's bytes leave the repo (js-ipfs counts a little less than the content).
    assert!(
        report.details["bytes_freed"].as_u64().unwrap() >= 50_000,
        "{report:?}"
    );
    assert!(
        report.details["repo_size_after_bytes"].as_u64()
            < report.details["repo_size_before_bytes"].as_u64(),
        "{report:?}"
    );

    let after = local_blocks(&node).await;
    assert!(
        !after.contains(&loose),
        "the unpinned block is gone: {after:?}"
    );
    assert!(after.contains(&kept), "the pinned block stays: {after:?}");
    assert!(rpc(&node, "block/stat", &[("arg", &kept)])
        .await
        .status()
        .is_success());
    let gone = rpc(&node, "block/stat", &[("arg", &loose), ("timeout", "1s")]).await;
    assert!(
        !gone.status().is_success(),
        "block/stat of a removed block fails"
    );

    let again = run_gc(&client(30), &url(&node.api_url)).await.unwrap();
    assert!(again.success);
    assert!(
        !again.details["removed_sample"]
            .as_array()
            .unwrap()
            .contains(&json!(kept)),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs js-ipfs from tests/ipfs-node; the README's test command runs it"]
async fn connect_bootstrap_peers_reports_each_unreachable_peer() {
    let node = IpfsNode::start().await;
    let api = url(&node.api_url);

    let empty = connect_bootstrap_peers(&client(5), &api).await.unwrap();
    assert!(empty.success, "nothing to do is no failure: {empty:?}");
    assert_eq!(empty.details["bootstrap_peers"], 0);

    // A port nothing listens on, and one that accepts and never answers; the peer ids are
    // Kubo's default bootstrap peers', whose real addresses are never dialled.
    let hole = black_hole().await;
    let hole_port = hole.rsplit(':').next().unwrap();
    let refused = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
        free_port()
    );
    let silent = format!(
        "/ip4/127.0.0.1/tcp/{hole_port}/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ"
    );
    for address in [&refused, &silent] {
        let added = rpc(&node, "bootstrap/add", &[("arg", address)]).await;
        assert!(added.status().is_success(), "bootstrap/add {address}");
    }

    let report = connect_bootstrap_peers(&client(5), &api).await.unwrap();

    assert!(!report.success, "no peer connected: {report:?}");
    assert_eq!(report.details["bootstrap_peers"], 2);
    assert_eq!(report.details["connected"], json!([]));
    let failed = report.details["failed"].as_array().unwrap();
    let mut addresses: Vec<&str> = failed
        .iter()
        .filter_map(|f| f["address"].as_str())
        .collect();
    // In the order bootstrap/list gives, which js-ipfs does not keep.
    addresses.sort_unstable();
    let mut expected = [refused.as_str(), silent.as_str()];
    expected.sort_unstable();
    assert_eq!(addresses, expected);
    assert!(
        failed
            .iter()
            .all(|f| !f["error"].as_str().unwrap_or("").is_empty()),
        "{failed:?}"
    );
    assert!(
        report
            .summary
            .starts_with("connected to 0 of 2 bootstrap peers; first failure: "),
        "{}",
        report.summary
    );
}

#[tokio::test]
async fn a_node_that_never_answers_is_an_error_after_the_timeout() {
    let hole = url(&black_hole().await);
    for outcome in [
        run_gc(&client(1), &hole).await,
        connect_bootstrap_peers(&client(1), &hole).await,
    ] {
        match outcome {
            Err(e @ BuiltinError::Unreachable { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains("no answer before the timeout"),
                    "{message}"
                );
                assert!(
                    message.contains(hole.as_str().trim_end_matches('/')),
                    "{message}"
                );
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
    let refused = url(&format!("http://127.0.0.1:{}", free_port()));
    let e = run_gc(&client(1), &refused).await.unwrap_err().to_string();
    assert!(
        e.contains("cannot connect (is the IPFS daemon running?)"),
        "{e}"
    );
}

const A: &str = "12D3KooWNodeAOffline";
const B: &str = "12D3KooWNodeB";
const C: &str = "12D3KooWNodeC";
const D: &str = "12D3KooWNodeD";
const CREDENTIALS: &str = "sentinel:s3cret";

fn four_peers() -> Vec<Value> {
    vec![
        ClusterState::peer(A, "node-a", "context deadline exceeded"),
        ClusterState::peer(B, "node-b", ""),
        ClusterState::peer(C, "node-c", ""),
        ClusterState::peer(D, "node-d", ""),
    ]
}

/// The sentinel's view of the stand-in: its URL, basic auth `secret` from a file in `dir`
/// named after the secret's user.
fn cluster_config(
    stand_in: &IpfsClusterStandIn,
    dir: &tempfile::TempDir,
    secret: &str,
) -> IpfsClusterConfig {
    let user = secret.split(':').next().unwrap();
    let auth = dir.path().join(format!("{user}.auth"));
    std::fs::write(&auth, format!("{secret}\n")).unwrap();
    IpfsClusterConfig {
        api_url: HttpUrl(url(&stand_in.url)),
        basic_auth_file: Some(auth),
        timeout_seconds: PositiveSeconds(5.0),
    }
}

fn allocations_of(stand_in: &IpfsClusterStandIn, cid: &str) -> Vec<String> {
    let state = stand_in.state.lock().unwrap();
    let pin = state.allocation_of(cid).unwrap();
    pin["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn cids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["cid"].as_str())
        .collect()
}

#[tokio::test]
async fn reallocate_pins_moves_exactly_the_pins_that_need_it() {
    let mut under = ClusterState::replicated("QmUnder", &[A, B], 2, 2);
    under["name"] = json!("site-2026");
    under["metadata"] = json!({"owner": "ops"});
    let state = ClusterState {
        peers: four_peers(),
        pins: Vec::new(),
        allocations: vec![
            under,
            ClusterState::replicated("QmSatisfied", &[A, B], 1, 2),
            ClusterState::replicated("QmOnlyA", &[A], 1, 1),
            ClusterState::replicated("QmElsewhere", &[B, C], 2, 2),
            ClusterState::replicated("QmEverywhere", &[], -1, -1),
            ClusterState::replicated("QmRejected", &[A, B, C], 3, 3),
            ClusterState::replicated("QmNoRoom", &[A, B, C, D], 4, 4),
        ],
    };
    let stand_in = IpfsClusterStandIn::start(state, CREDENTIALS).await;
    stand_in.fail_pin("QmRejected");
    let dir = tempfile::tempdir().unwrap();
    let config = cluster_config(&stand_in, &dir, CREDENTIALS);

    let report = reallocate_pins(&client(5), &config, "node-a", false)
        .await
        .unwrap();

    // Exactly the pins below their minimum without A were written, once each, in order.
    let requests = stand_in.pin_requests();
    let written: Vec<&str> = requests.iter().map(|r| r.cid.as_str()).collect();
    assert_eq!(written, ["QmUnder", "QmOnlyA", "QmRejected"]);
    // Loads before: B 5 pins, C 3, D 1. QmUnder keeps B and takes D (fewest pins); QmOnlyA
    // takes D too (now 2 against C's 3); QmRejected keeps B, C and is offered D.
    assert_eq!(
        requests[0].arg("user-allocations"),
        Some(&*format!("{B},{D}"))
    );
    assert_eq!(requests[1].arg("user-allocations"), Some(D));
    assert_eq!(
        requests[2].arg("user-allocations"),
        Some(&*format!("{B},{C},{D}"))
    );
    // A re-pin keeps the pin's own options.
    let q = &requests[0];
    assert_eq!(q.arg("name"), Some("site-2026"));
    assert_eq!(q.arg("meta-owner"), Some("ops"));
    assert_eq!(
        (q.arg("replication-min"), q.arg("replication-max")),
        (Some("2"), Some("2"))
    );
    assert_eq!(q.arg("mode"), Some("recursive"));

    assert_eq!(allocations_of(&stand_in, "QmUnder"), [B, D]);
    assert_eq!(allocations_of(&stand_in, "QmOnlyA"), [D]);
    {
        let state = stand_in.state.lock().unwrap();
        let stored = state.allocation_of("QmUnder").unwrap();
        assert_eq!(stored["name"], "site-2026");
        assert_eq!(stored["metadata"], json!({"owner": "ops"}));
        assert_eq!(stored["replication_factor_min"], 2);
    }
    assert_eq!(
        allocations_of(&stand_in, "QmSatisfied"),
        [A, B],
        "untouched"
    );
    assert_eq!(allocations_of(&stand_in, "QmRejected"), [A, B, C]);
    assert_eq!(allocations_of(&stand_in, "QmNoRoom"), [A, B, C, D]);

    assert!(!report.success, "{report:?}");
    assert_eq!(cids(&report.details["moved"]), ["QmUnder", "QmOnlyA"]);
    assert_eq!(cids(&report.details["failed"]), ["QmRejected", "QmNoRoom"]);
    assert_eq!(
        cids(&report.details["satisfied_untouched"]),
        ["QmSatisfied"]
    );
    let failed = report.details["failed"].as_array().unwrap();
    let rejected = failed[0]["error"].as_str().unwrap();
    assert!(
        rejected.contains("HTTP 500") && rejected.contains("told to fail this CID"),
        "{rejected}"
    );
    assert!(
        failed[1]["error"]
            .as_str()
            .unwrap()
            .contains("no healthy IPFS Cluster peer"),
        "{failed:?}"
    );
    assert_eq!(
        report.details["moved"][0]["allocations_after"],
        json!([B, D])
    );
    assert_eq!(
        report.summary,
        format!(
            "re-pinned 2 of 4 pins allocated to IPFS Cluster peer node-a ({A}) onto healthy peers; \
             2 failed (first: QmRejected: {rejected}); 1 left on it, their other allocations \
             meeting replication-min (include_satisfied_pins moves them too)"
        )
    );
    stand_in.stop().await;
}

#[tokio::test]
async fn include_satisfied_pins_moves_them_and_puts_their_minimum_back() {
    let state = ClusterState {
        peers: four_peers(),
        pins: Vec::new(),
        allocations: vec![
            ClusterState::replicated("QmSatisfied", &[A, B], 1, 2),
            ClusterState::replicated("QmElsewhere", &[B, C], 2, 2),
        ],
    };
    let stand_in = IpfsClusterStandIn::start(state, CREDENTIALS).await;
    let dir = tempfile::tempdir().unwrap();
    let config = cluster_config(&stand_in, &dir, CREDENTIALS);

    // The node named by its peer id this time.
    let report = reallocate_pins(&client(5), &config, A, true).await.unwrap();

    assert!(report.success, "{report:?}");
    let requests = stand_in.pin_requests();
    let written: Vec<(&str, Option<&str>)> = requests
        .iter()
        .map(|r| (r.cid.as_str(), r.arg("replication-min")))
        .collect();
    assert_eq!(
        written,
        [("QmSatisfied", Some("2")), ("QmSatisfied", Some("1"))],
        "raised to force a new allocation, then put back"
    );
    // Loads: B 2, C 1, D 0: D takes A's place.
    assert_eq!(allocations_of(&stand_in, "QmSatisfied"), [B, D]);
    assert_eq!(
        requests[1].arg("user-allocations"),
        Some(&*format!("{B},{D}"))
    );
    assert_eq!(
        allocations_of(&stand_in, "QmElsewhere"),
        [B, C],
        "untouched"
    );
    {
        let state = stand_in.state.lock().unwrap();
        let stored = state.allocation_of("QmSatisfied").unwrap();
        assert_eq!(
            (
                &stored["replication_factor_min"],
                &stored["replication_factor_max"]
            ),
            (&json!(1), &json!(2))
        );
    }
    assert_eq!(cids(&report.details["moved"]), ["QmSatisfied"]);
    assert_eq!(report.details["satisfied_untouched"], json!([]));
    stand_in.stop().await;
}

#[tokio::test]
async fn an_unknown_node_or_refused_credentials_change_nothing_and_say_why() {
    let state = ClusterState {
        peers: four_peers(),
        pins: Vec::new(),
        allocations: vec![ClusterState::replicated("QmOnlyA", &[A], 1, 1)],
    };
    let stand_in = IpfsClusterStandIn::start(state, CREDENTIALS).await;
    let dir = tempfile::tempdir().unwrap();

    let config = cluster_config(&stand_in, &dir, CREDENTIALS);
    let unknown = reallocate_pins(&client(5), &config, "node-z", false)
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, BuiltinError::UnknownNode { .. }),
        "{unknown:?}"
    );
    let message = unknown.to_string();
    assert!(
        message.contains("\"node-z\"") && message.contains(&format!("node-b ({B})")),
        "{message}"
    );

    let wrong = cluster_config(&stand_in, &dir, "intruder:wrong");
    let refused = reallocate_pins(&client(5), &wrong, "node-a", false)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, BuiltinError::Unauthorized { .. }),
        "{refused:?}"
    );
    let message = refused.to_string();
    assert!(message.contains("401 Unauthorized"), "{message}");
    assert!(
        message.contains("cluster.ipfs_cluster.basic_auth_file"),
        "{message}"
    );
    assert!(
        message.contains(&dir.path().join("intruder.auth").display().to_string()),
        "{message}"
    );
    assert!(
        !message.contains("wrong"),
        "the secret is never shown: {message}"
    );

    let mut missing = wrong.clone();
    missing.basic_auth_file = Some(dir.path().join("absent.auth"));
    let unreadable = reallocate_pins(&client(5), &missing, "node-a", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(unreadable.contains("absent.auth"), "{unreadable}");

    let mut anonymous = wrong.clone();
    anonymous.basic_auth_file = None;
    let none_sent = reallocate_pins(&client(5), &anonymous, "node-a", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(none_sent.contains("none were sent"), "{none_sent}");

    assert!(stand_in.pin_requests().is_empty(), "nothing was written");
    assert_eq!(allocations_of(&stand_in, "QmOnlyA"), [A]);
    stand_in.stop().await;
}

#[tokio::test]
async fn a_peer_ipfs_cluster_still_counts_as_up_keeps_its_pins_and_the_report_says_so() {
    // The sentinel sees node-a Offline, but IPFS Cluster still has valid metrics for it.
    let mut peers = four_peers();
    peers[0] = ClusterState::peer(A, "node-a", "");
    let state = ClusterState {
        peers,
        pins: Vec::new(),
        allocations: vec![
            ClusterState::replicated("QmOnlyA", &[A], 1, 1),
            ClusterState::replicated("QmSatisfied", &[A, B], 1, 2),
        ],
    };
    let stand_in = IpfsClusterStandIn::start(state, CREDENTIALS).await;
    let dir = tempfile::tempdir().unwrap();
    let config = cluster_config(&stand_in, &dir, CREDENTIALS);

    let report = reallocate_pins(&client(5), &config, "node-a", true)
        .await
        .unwrap();

    assert!(!report.success, "{report:?}");
    assert_eq!(cids(&report.details["failed"]), ["QmOnlyA", "QmSatisfied"]);
    assert!(
        report.details["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("IPFS Cluster kept its allocation on {A}")),
        "{report:?}"
    );
    assert_eq!(allocations_of(&stand_in, "QmOnlyA"), [A]);
    assert_eq!(allocations_of(&stand_in, "QmSatisfied"), [A, B]);
    let minimums: Vec<(String, Option<String>)> = stand_in
        .pin_requests()
        .iter()
        .map(|r| (r.cid.clone(), r.arg("replication-min").map(str::to_owned)))
        .collect();
    assert_eq!(
        minimums,
        [
            ("QmOnlyA".to_owned(), Some("1".to_owned())),
            ("QmSatisfied".to_owned(), Some("2".to_owned())),
            ("QmSatisfied".to_owned(), Some("1".to_owned())),
        ],
        "a raised minimum is put back even when nothing moved"
    );
    let restored = stand_in
        .state
        .lock()
        .unwrap()
        .allocation_of("QmSatisfied")
        .unwrap()["replication_factor_min"]
        .clone();
    assert_eq!(restored, 1);
    stand_in.stop().await;
}
