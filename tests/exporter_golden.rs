//! Golden end-to-end test, in node_exporter's manner: Kubo's documented responses in, `/metrics`
//! out, compared with `tests/fixtures/exporter.prom`. The host's own series (`node_*`),
//! collector durations, the history's size and the cluster view (timestamps, and this node's own
//! row, which follows the IPFS collector by one round) change from run to run and are left out. Regenerate the file with
//! `UPDATE_GOLDEN=1 cargo test --test exporter_golden`.

mod support;

use support::{kubo_fixtures, sample, Sentinel};

/// Families whose values depend on the machine or the moment.
fn is_volatile(name: &str) -> bool {
    name.starts_with("ipfs_sentinel_node_")
        || name.starts_with("ipfs_sentinel_cluster_")
        || name.starts_with("ipfs_sentinel_history_")
        || name.starts_with("ipfs_sentinel_rule_")
        || name.starts_with("ipfs_sentinel_http_")
        || name == "ipfs_sentinel_collector_duration_seconds"
        || name == "ipfs_sentinel_web_config_last_reload_success_timestamp_seconds"
}

/// Drops the volatile families (samples and their HELP/TYPE lines).
fn stable_part(text: &str) -> String {
    text.lines()
        .filter(|line| {
            let name = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .unwrap_or(line);
            let name = name.split([' ', '{']).next().unwrap_or("");
            !is_volatile(name)
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubo_fixtures_in_metrics_out() {
    let api = kubo_fixtures::serve().await;
    let sentinel = Sentinel::start(&format!(
        "ipfs:\n  api_url: {api}\ncluster:\n  node_id: golden\n  monitoring:\n    collection_interval_seconds: 3600\n"
    ))
    .await;
    let body = sentinel
        .metrics_until("every collector to report", |b| {
            ["node", "ipfs", "cluster", "history", "rules"]
                .iter()
                .all(|c| {
                    sample(b, "ipfs_sentinel_collector_success", &[("collector", c)]).is_some()
                })
        })
        .await;
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    for name in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = name.split(' ').next().unwrap();
        assert!(
            readme.contains(&format!("`{name}")),
            "README.md's metric list lacks {name}"
        );
    }
    let got = stable_part(&body);
    let golden =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exporter.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .expect("tests/fixtures/exporter.prom (create it with UPDATE_GOLDEN=1)");
    if got != want {
        panic!(
            "/metrics differs from {}; if the change is intended, rerun with UPDATE_GOLDEN=1\n--- want\n{want}\n--- got\n{got}",
            golden.display()
        );
    }
}
