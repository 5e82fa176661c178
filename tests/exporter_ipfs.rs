//! The exporter against a real IPFS node (js-ipfs serving the Kubo RPC API), and against IPFS
//! nodes that are gone or hung.

mod support;

use support::{black_hole, free_port, sample, IpfsNode, Sentinel};

fn ipfs_up(metrics: &str) -> Option<f64> {
    sample(metrics, "ipfs_sentinel_ipfs_up", &[])
}

fn collector_success(metrics: &str, collector: &str) -> Option<f64> {
    sample(
        metrics,
        "ipfs_sentinel_collector_success",
        &[("collector", collector)],
    )
}

fn config(api_url: &str, interval: u32, ipfs_timeout: u32) -> String {
    format!(
        "ipfs:\n  api_url: {api_url}\n  timeout_seconds: {ipfs_timeout}\ncluster:\n  monitoring:\n    collection_interval_seconds: {interval}\n    collector_timeout_seconds: {}\n",
        ipfs_timeout + 2
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs js-ipfs from tests/ipfs-node; the README's test command runs it"]
async fn real_ipfs_node_is_up_and_a_new_pin_shows_at_the_next_collection() {
    let ipfs = IpfsNode::start().await;
    let sentinel = Sentinel::start(&config(&ipfs.api_url, 1, 5)).await;

    let body = sentinel
        .metrics_until("ipfs_up 1", |b| ipfs_up(b) == Some(1.0))
        .await;
    let repo_size = sample(&body, "ipfs_sentinel_ipfs_repo_size_bytes", &[]).expect("repo size");
    assert!(repo_size > 0.0, "repo size {repo_size}");
    assert_eq!(collector_success(&body, "ipfs"), Some(1.0));
    assert!(
        body.contains("ipfs_sentinel_ipfs_info{version=\"0.18.1\",peer_id=\"12D3KooW"),
        "{body}"
    );
    assert_eq!(sample(&body, "ipfs_sentinel_ipfs_peers", &[]), Some(0.0));
    let before = sample(&body, "ipfs_sentinel_ipfs_pins", &[("type", "recursive")]).expect("pins");

    ipfs.add_and_pin(format!("pinned by the test at port {}", free_port()).as_bytes())
        .await;
    let after = sentinel
        .metrics_until("the recursive pin count to rise", |b| {
            sample(b, "ipfs_sentinel_ipfs_pins", &[("type", "recursive")]) == Some(before + 1.0)
        })
        .await;
    assert_eq!(
        sample(
            &after,
            "ipfs_sentinel_ipfs_api_errors_total",
            &[("endpoint", "pin/ls")]
        ),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs js-ipfs from tests/ipfs-node; the README's test command runs it"]
async fn ipfs_node_stopped_while_watched_goes_to_ipfs_up_0() {
    let mut ipfs = IpfsNode::start().await;
    let sentinel = Sentinel::start(&config(&ipfs.api_url, 1, 2)).await;
    sentinel
        .metrics_until("ipfs_up 1", |b| ipfs_up(b) == Some(1.0))
        .await;
    ipfs.process.stop();
    let body = sentinel
        .metrics_until("ipfs_up 0", |b| ipfs_up(b) == Some(0.0))
        .await;
    assert_eq!(collector_success(&body, "ipfs"), Some(0.0));
    assert_eq!(collector_success(&body, "node"), Some(1.0));
    assert!(
        sample(
            &body,
            "ipfs_sentinel_ipfs_api_errors_total",
            &[("endpoint", "id")]
        )
        .unwrap()
            >= 1.0
    );
    let log = sentinel.process.log();
    assert!(
        log.contains("collector failed") && log.contains("IPFS node is down"),
        "a log line says why: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_listening_is_ipfs_up_0_with_node_metrics_still_served() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let sentinel = Sentinel::start(&config(&closed, 1, 2)).await;
    let body = sentinel
        .metrics_until("ipfs_up 0 and the node collector's first report", |b| {
            ipfs_up(b) == Some(0.0)
                && sample(
                    b,
                    "ipfs_sentinel_collector_success",
                    &[("collector", "node")],
                )
                .is_some()
        })
        .await;
    assert_eq!(collector_success(&body, "ipfs"), Some(0.0));
    assert!(sample(&body, "ipfs_sentinel_node_memory_usage_ratio", &[]).is_some());
    assert!(sample(&body, "ipfs_sentinel_node_cpu_usage_ratio", &[]).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_accepts_and_never_answers_does_not_hold_up_scrapes() {
    let hung = black_hole().await;
    // A long RPC timeout: the IPFS collector is stuck for 8 s on every round.
    let sentinel = Sentinel::start(&config(&hung, 1, 8)).await;
    // Node metrics appear while the IPFS collector is still waiting, and every scrape meanwhile
    // answers within 2 s, so none of them waited on the hung collector.
    let impatient = support::impatient_http();
    let body = sentinel
        .metrics_until("node metrics", |b| {
            sample(b, "ipfs_sentinel_node_memory_usage_ratio", &[]).is_some()
        })
        .await;
    assert_eq!(ipfs_up(&body), None, "no IPFS verdict yet");
    let ready = reqwest::get(format!("{}/-/ready", sentinel.url))
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        503,
        "not ready until every collector has reported"
    );
    for _ in 0..5 {
        let again = impatient
            .get(format!("{}/metrics", sentinel.url))
            .send()
            .await
            .expect("a scrape during the hang answers at once")
            .text()
            .await
            .unwrap();
        assert!(sample(&again, "ipfs_sentinel_node_memory_usage_ratio", &[]).is_some());
    }
    let body = sentinel
        .metrics_until("ipfs_up 0 after the RPC timeout", |b| {
            ipfs_up(b) == Some(0.0)
        })
        .await;
    assert_eq!(collector_success(&body, "ipfs"), Some(0.0));
    let ready = reqwest::get(format!("{}/-/ready", sentinel.url))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// The repo, version and provide figures against js-ipfs 0.66.1 (`Version` 0.18.1): it serves
/// `version` and `repo/stat` (with no `StorageMax`: `Number.MAX_SAFE_INTEGER`), a `Datastore`
/// configuration with the spec only, and none of the provide statistics endpoints.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs js-ipfs from tests/ipfs-node; the README's test command runs it"]
async fn js_ipfs_repo_version_and_no_provide_figures() {
    let ipfs = IpfsNode::start().await;
    let sentinel = Sentinel::start(&config(&ipfs.api_url, 1, 5)).await;
    let body = sentinel
        .metrics_until("two collections (a growth rate)", |b| {
            sample(b, "ipfs_sentinel_ipfs_repo_growth_bytes_per_second", &[]).is_some()
        })
        .await;
    assert_eq!(
        sample(
            &body,
            "ipfs_sentinel_ipfs_version_info",
            &[
                ("version", "0.18.1"),
                ("commit", ""),
                ("golang", ""),
                ("system", ""),
                ("agent", "js-ipfs/0.18.1")
            ]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "ipfs_sentinel_ipfs_repo_storage_max_bytes", &[]),
        Some(9_007_199_254_740_991.0)
    );
    assert!(
        !body.contains("ipfs_sentinel_ipfs_repo_storage_usage_ratio "),
        "js-ipfs sets no StorageMax: no ratio"
    );
    // The node reports its repo directory (a temporary directory here); its filesystem is
    // this machine's, as `df` sees it: the space not available to unprivileged users (as
    // ipfs_sentinel_node_disk_usage_ratio counts it, reserved blocks included) and the inodes
    // in use.
    let df = std::process::Command::new("df")
        .args(["-B1", "--output=size,avail,itotal,iavail"])
        .arg(ipfs.repo.path())
        .output()
        .unwrap();
    let df = String::from_utf8(df.stdout).unwrap();
    let f: Vec<f64> = df
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let used = sample(&body, "ipfs_sentinel_ipfs_repo_filesystem_usage_ratio", &[]).unwrap();
    let inodes = sample(
        &body,
        "ipfs_sentinel_ipfs_repo_filesystem_inodes_usage_ratio",
        &[],
    )
    .unwrap();
    assert!(
        (used - (1.0 - f[1] / f[0])).abs() < 0.01,
        "{used} vs df {df}"
    );
    assert!(
        (inodes - (1.0 - f[3] / f[2])).abs() < 0.01,
        "{inodes} vs df {df}"
    );
    assert!(sample(&body, "ipfs_sentinel_ipfs_repo_filesystem_inodes_free", &[]).unwrap() > 0.0);

    // Nothing about providing, and no error for it.
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.starts_with("ipfs_sentinel_ipfs_provide_")
                && !line.starts_with("ipfs_sentinel_ipfs_reprovide_"),
            "{line}"
        );
    }
    for endpoint in ["provide/stat", "stats/reprovide", "stats/provide", "config"] {
        assert_eq!(
            sample(
                &body,
                "ipfs_sentinel_ipfs_api_errors_total",
                &[("endpoint", endpoint)]
            ),
            Some(0.0),
            "{endpoint}"
        );
    }
    // js-ipfs's configuration holds the datastore spec only: no GC settings, no cache sizes.
    for absent in [
        "ipfs_sentinel_ipfs_gc_period_seconds ",
        "ipfs_sentinel_ipfs_gc_watermark_ratio ",
        "ipfs_sentinel_ipfs_cache_size_bytes{",
        "ipfs_sentinel_ipfs_cache_size_entries{",
    ] {
        assert!(!body.contains(absent), "{absent}");
    }

    // The repo grows: a rate above 0 and a time until the filesystem is full.
    ipfs.add_and_pin(&vec![7u8; 300_000]).await;
    let grown = sentinel
        .metrics_until("a positive growth rate", |b| {
            sample(b, "ipfs_sentinel_ipfs_repo_growth_bytes_per_second", &[])
                .is_some_and(|r| r > 0.0)
        })
        .await;
    let rate = sample(
        &grown,
        "ipfs_sentinel_ipfs_repo_growth_bytes_per_second",
        &[],
    )
    .unwrap();
    let full_in = sample(
        &grown,
        "ipfs_sentinel_ipfs_repo_full_in_seconds",
        &[("limit", "filesystem")],
    )
    .expect("a filesystem prediction while growing");
    assert!(full_in > 0.0, "{full_in}");
    assert!(
        !grown.contains("limit=\"storage_max\""),
        "no StorageMax, no prediction for it"
    );
    let log = sentinel.process.log();
    assert_eq!(
        log.matches("serves no provide statistics").count(),
        1,
        "said once, not every collection: {log}"
    );
    assert!(rate > 1_000.0, "300 kB in a few seconds: {rate} B/s");
}
