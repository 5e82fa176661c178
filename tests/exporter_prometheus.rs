//! The exporter as Prometheus sees it: a real Prometheus scrapes it, and `promtool check
//! metrics` finds nothing to say about its output.

mod support;

use support::{eventually, free_port, promtool_check_metrics, Prometheus, Sentinel};

fn sentinel_config() -> String {
    // No IPFS node: the exporter must still be a clean target.
    format!(
        "ipfs:\n  api_url: http://127.0.0.1:{}\n  timeout_seconds: 1\ncluster:\n  monitoring:\n    collection_interval_seconds: 1\n",
        free_port()
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus (promtool); the README's test command runs it"]
async fn promtool_check_metrics_is_clean() {
    let sentinel = Sentinel::start(&sentinel_config()).await;
    let body = sentinel
        .metrics_until("ipfs and node collectors", |b| {
            b.contains("ipfs_sentinel_ipfs_up")
                && b.contains("ipfs_sentinel_node_memory_usage_ratio")
        })
        .await;
    let (ok, said) = promtool_check_metrics(body.as_bytes());
    assert!(ok, "promtool check metrics:\n{said}\non:\n{body}");

    // promtool does find problems when there are some: the check itself is live.
    let (ok, said) = promtool_check_metrics(b"# TYPE requests counter\nrequests 1\n");
    assert!(!ok, "promtool flags a counter without _total: {said}");
}

/// With an IPFS node that serves every figure: the repo, GC, cache and version figures, and the
/// provider's in both of Kubo 0.39's shapes (sweep and legacy).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus (promtool); the README's test command runs it"]
async fn promtool_check_metrics_is_clean_with_every_ipfs_figure() {
    for (provide, family) in [
        (
            "provide_stat_sweep.json",
            "ipfs_sentinel_ipfs_provide_workers",
        ),
        (
            "provide_stat_legacy.json",
            "ipfs_sentinel_ipfs_reprovide_last_run_timestamp_seconds",
        ),
    ] {
        let api = support::kubo_fixtures::serve_with_provide_stat(provide).await;
        let sentinel = Sentinel::start(&format!(
            "ipfs:\n  api_url: {api}\n  repo_path: {}\ncluster:\n  monitoring:\n    collection_interval_seconds: 1\n",
            env!("CARGO_MANIFEST_DIR")
        ))
        .await;
        let body = sentinel
            .metrics_until("two collections of every IPFS figure", |b| {
                b.contains(family)
                    && b.contains("ipfs_sentinel_ipfs_repo_growth_bytes_per_second")
                    && b.contains("ipfs_sentinel_ipfs_repo_filesystem_usage_ratio")
            })
            .await;
        for name in [
            "ipfs_sentinel_ipfs_version_info",
            "ipfs_sentinel_ipfs_repo_storage_usage_ratio",
            "ipfs_sentinel_ipfs_cache_size_bytes",
            "ipfs_sentinel_ipfs_cache_size_entries",
            "ipfs_sentinel_ipfs_gc_period_seconds",
            "ipfs_sentinel_gc_runs_total",
            "ipfs_sentinel_ipfs_provide_total",
        ] {
            assert!(
                body.contains(&format!("# TYPE {name} ")),
                "{name} in\n{body}"
            );
        }
        let (ok, said) = promtool_check_metrics(body.as_bytes());
        assert!(ok, "promtool check metrics:\n{said}\non:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus; the README's test command runs it"]
async fn prometheus_scrapes_the_sentinel() {
    let sentinel = Sentinel::start(&sentinel_config()).await;
    let target = sentinel.url.trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(std::slice::from_ref(&target)).await;

    let up = eventually("Prometheus to scrape the target successfully", || async {
        let r = prometheus.query("up{job=\"ipfs-sentinel\"}").await;
        r.first().filter(|s| s["value"][1] == "1").cloned()
    })
    .await;
    assert_eq!(up["metric"]["instance"], target.as_str());

    let memory = eventually(
        "ipfs_sentinel_node_memory_usage_ratio in Prometheus",
        || async {
            prometheus
                .query("ipfs_sentinel_node_memory_usage_ratio")
                .await
                .first()
                .cloned()
        },
    )
    .await;
    let ratio: f64 = memory["value"][1].as_str().unwrap().parse().unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "memory ratio {ratio}");

    // Counters keep their type through the OpenMetrics scrape: rate() works on them.
    let ipfs_down = prometheus.query("ipfs_sentinel_ipfs_up == 0").await;
    assert_eq!(
        ipfs_down.len(),
        1,
        "Prometheus sees IPFS down: {ipfs_down:?}"
    );
    let metadata = support::get_json(
        &format!("{}/api/v1/metadata", prometheus.url),
        &[("metric", "ipfs_sentinel_node_network_received_bytes")],
    )
    .await;
    let kinds = metadata["data"].to_string();
    assert!(kinds.contains("counter"), "{metadata}");
}
