//! The cluster view between real sentinel processes: peers see each other Online, a stopped one
//! goes Degraded then Offline and comes back; a hung peer does not slow scrapes; IPFS Cluster's
//! figures come from its REST API (a stand-in: IPFS Cluster cannot be installed here).

mod support;

use support::ipfs_cluster::{ClusterState, IpfsClusterStandIn};
use support::{black_hole, free_port, promtool_check_metrics, sample, IpfsNode, Sentinel};

fn node_status(metrics: &str, node_id: &str, status: &str) -> Option<f64> {
    sample(
        metrics,
        "ipfs_sentinel_cluster_node_status",
        &[("node_id", node_id), ("status", status)],
    )
}

fn peer_config(
    node_id: &str,
    role: &str,
    ipfs: &str,
    peers: &[String],
    peer_timeout: u32,
) -> String {
    let peers: Vec<String> = peers.iter().map(|p| format!("'{p}'")).collect();
    format!(
        "ipfs:\n  api_url: {ipfs}\ncluster:\n  node_id: {node_id}\n  role: {role}\n  peers: [{}]\n  peer_timeout_seconds: {peer_timeout}\n  offline_after_seconds: 5\n  monitoring:\n    collection_interval_seconds: 1\n    collector_timeout_seconds: {}\n",
        peers.join(", "),
        peer_timeout + 2
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs js-ipfs from tests/ipfs-node; the README's test command runs it"]
async fn two_peered_sentinels_see_each_other_through_a_stop_and_a_restart() {
    // One real IPFS node serves both sentinels: each then has IPFS up and can be Online.
    let ipfs = IpfsNode::start().await;
    let (port_a, port_b) = (free_port(), free_port());
    let url = |port| format!("http://127.0.0.1:{port}");
    let config_a = peer_config("node-a", "master", &ipfs.api_url, &[url(port_b)], 1);
    let config_b = peer_config("node-b", "worker", &ipfs.api_url, &[url(port_a)], 1);
    let a = Sentinel::start_on(port_a, &config_a).await;
    let b = Sentinel::start_on(port_b, &config_b).await;

    let seen = a
        .metrics_until("node-a to see node-b Online", |m| {
            node_status(m, "node-b", "Online") == Some(1.0)
        })
        .await;
    assert_eq!(
        node_status(&seen, "node-a", "Online"),
        Some(1.0),
        "a node sees itself"
    );
    assert_eq!(
        sample(
            &seen,
            "ipfs_sentinel_cluster_nodes",
            &[("role", "worker"), ("status", "Online")]
        ),
        Some(1.0)
    );
    assert!(sample(
        &seen,
        "ipfs_sentinel_cluster_node_memory_usage_ratio",
        &[("node_id", "node-b")]
    )
    .is_some());
    b.metrics_until("node-b to see node-a Online", |m| {
        node_status(m, "node-a", "Online") == Some(1.0)
    })
    .await;

    // The status API says the same, as JSON.
    let status: serde_json::Value = reqwest::get(format!("{}/api/v1/status", a.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["node_id"], "node-a");
    assert_eq!(status["role"], "master");
    assert_eq!(status["ipfs"]["up"], true);
    let view = status["cluster"].as_array().unwrap();
    assert!(
        view.iter()
            .any(|n| n["node_id"] == "node-b" && n["status"] == "Online"),
        "{status}"
    );

    drop(b);
    let degraded = a
        .metrics_until("node-b Degraded or Offline", |m| {
            node_status(m, "node-b", "Online") == Some(0.0)
        })
        .await;
    assert_eq!(
        node_status(&degraded, "node-b", "Degraded"),
        Some(1.0),
        "Degraded comes first"
    );
    a.metrics_until("node-b Offline after offline_after_seconds", |m| {
        node_status(m, "node-b", "Offline") == Some(1.0)
    })
    .await;

    let _b = Sentinel::start_on(port_b, &config_b).await;
    a.metrics_until("node-b Online again", |m| {
        node_status(m, "node-b", "Online") == Some(1.0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_peer_does_not_slow_scrapes_or_the_other_peers() {
    let hung = black_hole().await;
    let port_b = free_port();
    let closed_ipfs = format!("http://127.0.0.1:{}", free_port());
    let _b = Sentinel::start_on(
        port_b,
        &peer_config("node-b", "worker", &closed_ipfs, &[], 1),
    )
    .await;
    let a = Sentinel::start(&peer_config(
        "node-a",
        "master",
        &closed_ipfs,
        &[hung.clone(), format!("http://127.0.0.1:{port_b}")],
        6,
    ))
    .await;
    let impatient = support::impatient_http();
    for _ in 0..5 {
        impatient
            .get(format!("{}/metrics", a.url))
            .send()
            .await
            .expect("a scrape answers at once while a peer hangs");
    }
    let hung_id = hung.trim_start_matches("http://");
    let view = a
        .metrics_until("the peers' first statuses", |m| {
            node_status(m, "node-b", "Degraded") == Some(1.0)
        })
        .await;
    // node-b answers (IPFS down there: Degraded); the hung peer, never seen, is Degraded too
    // until offline_after_seconds have passed.
    assert_eq!(node_status(&view, hung_id, "Online"), Some(0.0), "{view}");
    a.metrics_until("the hung peer Offline", |m| {
        node_status(m, hung_id, "Offline") == Some(1.0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus (promtool); the README's test command runs it"]
async fn ipfs_cluster_figures_come_from_its_rest_api() {
    let (a, b, c) = ("12D3KooWPeerA", "12D3KooWPeerB", "12D3KooWPeerC");
    let state = ClusterState {
        peers: vec![
            ClusterState::peer(a, "node-a", ""),
            ClusterState::peer(b, "node-b", "context deadline exceeded"),
            ClusterState::peer(c, "node-c", ""),
        ],
        pins: vec![
            ClusterState::pin("QmPinned1", a, "pinned"),
            ClusterState::pin("QmPinned2", a, "pinned"),
            ClusterState::pin("QmQueued", a, "pin_queued"),
            ClusterState::pin("QmFailed", a, "pin_error"),
            ClusterState::pin("QmElsewhere", a, "remote"),
        ],
        allocations: vec![
            ClusterState::allocation("QmPinned1", &[a, c]),
            ClusterState::allocation("QmPinned2", &[a, b]),
            ClusterState::allocation("QmQueued", &[a]),
            ClusterState::allocation("QmFailed", &[a, c]),
            ClusterState::allocation("QmElsewhere", &[b, c]),
        ],
    };
    let stand_in = IpfsClusterStandIn::start(state, "sentinel:s3cret").await;
    let unauthenticated = reqwest::get(format!("{}/peers", stand_in.url))
        .await
        .unwrap();
    assert_eq!(
        unauthenticated.status(),
        401,
        "the stand-in checks credentials"
    );

    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("cluster.auth");
    std::fs::write(&auth, "sentinel:s3cret\n").unwrap();
    let sentinel = Sentinel::start(&format!(
        "ipfs:\n  api_url: http://127.0.0.1:{}\n  timeout_seconds: 1\ncluster:\n  ipfs_cluster:\n    api_url: {}\n    basic_auth_file: {}\n  monitoring:\n    collection_interval_seconds: 1\n",
        free_port(),
        stand_in.url,
        auth.display()
    ))
    .await;
    let m = sentinel
        .metrics_until("IPFS Cluster figures", |m| {
            sample(
                m,
                "ipfs_sentinel_collector_success",
                &[("collector", "ipfs_cluster")],
            ) == Some(1.0)
                && m.contains("ipfs_sentinel_node_memory_usage_ratio")
        })
        .await;
    let pins = |status| sample(&m, "ipfs_sentinel_cluster_pins", &[("status", status)]);
    assert_eq!(pins("pinned"), Some(2.0));
    assert_eq!(pins("pin_queued"), Some(1.0));
    assert_eq!(pins("pin_error"), Some(1.0));
    assert_eq!(pins("remote"), Some(1.0));
    assert_eq!(pins("unpinning"), Some(0.0));
    assert_eq!(
        sample(&m, "ipfs_sentinel_cluster_pin_queue_length", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "ipfs_sentinel_cluster_pins_under_replicated", &[]),
        Some(2.0),
        "QmPinned2 and QmElsewhere sit on the failed peer"
    );
    assert_eq!(
        sample(&m, "ipfs_sentinel_cluster_peers", &[("status", "Offline")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "ipfs_sentinel_cluster_peers", &[("status", "Online")]),
        Some(2.0)
    );
    assert!(
        !sentinel.process.log().contains("s3cret"),
        "the secret never reaches the log"
    );

    // promtool stays clean with the cluster families present.
    let (clean, said) = promtool_check_metrics(m.as_bytes());
    assert!(clean, "promtool check metrics:\n{said}");

    // A change in IPFS Cluster shows at the next collection.
    stand_in.state.lock().unwrap().peers[1] = ClusterState::peer(b, "node-b", "");
    sentinel
        .metrics_until("no pin under-replicated once node-b is back", |m| {
            sample(m, "ipfs_sentinel_cluster_pins_under_replicated", &[]) == Some(0.0)
        })
        .await;

    stand_in.stop().await;
    sentinel
        .metrics_until(
            "collector_success{ipfs_cluster} 0 once the API is gone",
            |m| {
                sample(
                    m,
                    "ipfs_sentinel_collector_success",
                    &[("collector", "ipfs_cluster")],
                ) == Some(0.0)
            },
        )
        .await;
}

/// The ages that say "pin stuck" and "peer silent": the oldest pin in `pin_error` and in
/// `pin_queued` from the tracker's status timestamps, and each peer's last metric from the
/// peer monitor (a ping that expired is left out of `GET /monitor/metrics/ping`, and keeps
/// ageing from what `GET /health/alerts` says it last was).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus (promtool); the README's test command runs it"]
async fn ipfs_cluster_ages_say_which_pin_is_stuck_and_which_peer_is_silent() {
    use std::time::{Duration, SystemTime};
    use support::ipfs_cluster::MonitorState;
    let (a, b) = ("12D3KooWPeerA", "12D3KooWPeerB");
    let now = SystemTime::now();
    let ago = |s: u64| {
        ipfs_sentinel::clock::rfc3339(ipfs_sentinel::clock::system_ms(
            now - Duration::from_secs(s),
        ))
    };
    let state = ClusterState {
        peers: vec![
            ClusterState::peer(a, "node-a", ""),
            ClusterState::peer(b, "node-b", "context deadline exceeded"),
        ],
        pins: vec![
            ClusterState::pin_since("QmOldError", a, "pin_error", &ago(7200)),
            ClusterState::pin_since("QmNewError", a, "pin_error", &ago(60)),
            ClusterState::pin_since("QmQueued", a, "pin_queued", &ago(900)),
            ClusterState::pin("QmPinned", a, "pinned"),
        ],
        allocations: vec![],
    };
    let stand_in = IpfsClusterStandIn::start(state, "sentinel:s3cret").await;
    let b_ping = MonitorState::metric(
        "ping",
        b,
        now - Duration::from_secs(600),
        Duration::from_secs(60),
    );
    *stand_in.monitor.lock().unwrap() = MonitorState {
        metrics: vec![
            MonitorState::metric("ping", a, now, Duration::from_secs(3600)),
            MonitorState::metric(
                "freespace",
                a,
                now - Duration::from_secs(30),
                Duration::from_secs(3600),
            ),
            b_ping.clone(),
        ],
        alerts: vec![MonitorState::alert(&b_ping, &ago(540))],
    };

    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("cluster.auth");
    std::fs::write(&auth, "sentinel:s3cret\n").unwrap();
    let sentinel = Sentinel::start(&format!(
        "ipfs:\n  api_url: http://127.0.0.1:{}\n  timeout_seconds: 1\ncluster:\n  ipfs_cluster:\n    api_url: {}\n    basic_auth_file: {}\n  monitoring:\n    collection_interval_seconds: 1\n",
        free_port(),
        stand_in.url,
        auth.display()
    ))
    .await;
    let m = sentinel
        .metrics_until("IPFS Cluster ages", |m| {
            m.contains("ipfs_sentinel_cluster_peer_metric_age_seconds")
        })
        .await;
    let elapsed = now.elapsed().unwrap().as_secs_f64();
    let within = |value: Option<f64>, at_least: f64, what: &str| {
        let value = value.unwrap_or_else(|| panic!("{what} missing:\n{m}"));
        assert!(
            value >= at_least && value <= at_least + elapsed + 1.0,
            "{what}: {value}, expected {at_least} to {at_least}+{elapsed}"
        );
    };
    let oldest = |status| {
        sample(
            &m,
            "ipfs_sentinel_cluster_oldest_pin_age_seconds",
            &[("status", status)],
        )
    };
    within(oldest("pin_error"), 7200.0, "oldest pin_error");
    within(oldest("pin_queued"), 900.0, "oldest pin_queued");
    let age = |m: &str, peer, metric| {
        sample(
            m,
            "ipfs_sentinel_cluster_peer_metric_age_seconds",
            &[("peer", peer), ("metric", metric)],
        )
    };
    within(age(&m, a, "ping"), 0.0, "node-a's ping");
    within(age(&m, a, "freespace"), 30.0, "node-a's freespace");
    within(
        age(&m, b, "ping"),
        600.0,
        "node-b's expired ping, from the alert",
    );
    assert!(
        sample(
            &m,
            "ipfs_sentinel_cluster_peer_metric_age_seconds",
            &[("peer", b), ("peer_name", "node-b"), ("metric", "ping")],
        )
        .is_some(),
        "the peer's name rides along:\n{m}"
    );
    let first = age(&m, b, "ping").unwrap_or_default();
    let (clean, said) = promtool_check_metrics(m.as_bytes());
    assert!(clean, "promtool check metrics:\n{said}");

    // The pins recover and node-b's alert ages out of the monitor: the stuck ages read 0 and
    // node-b's ping, remembered, keeps growing.
    {
        let mut state = stand_in.state.lock().unwrap();
        state.pins = vec![ClusterState::pin("QmPinned", a, "pinned")];
        stand_in.monitor.lock().unwrap().alerts.clear();
    }
    let m = sentinel
        .metrics_until("the stuck ages back to 0", |m| {
            sample(
                m,
                "ipfs_sentinel_cluster_oldest_pin_age_seconds",
                &[("status", "pin_error")],
            ) == Some(0.0)
        })
        .await;
    assert_eq!(
        sample(
            &m,
            "ipfs_sentinel_cluster_oldest_pin_age_seconds",
            &[("status", "pin_queued")]
        ),
        Some(0.0)
    );
    let later = age(&m, b, "ping").expect("node-b's ping is remembered");
    assert!(later > first, "still ageing: {first} then {later}");
    stand_in.stop().await;
}
