//! Golden end-to-end test, in node_exporter's manner: Kubo's documented responses in, `/metrics`
//! out, compared with `tests/fixtures/exporter.prom`. Every family is compared, HELP and TYPE
//! included; values that change from run to run are replaced by what they are (`<host>`, `<duration>`,
//! `<timestamp>`, `<count>`), so their presence, labels and type are still checked. Only the
//! host's own samples (`node_*`) are left out, as their label sets are the machine's (its disks,
//! its network interfaces); their HELP and TYPE lines stay. This node's own row in the cluster
//! view follows the IPFS collector by one round, so with one collection it says `Degraded`.
//! Regenerate the file with `UPDATE_GOLDEN=1 cargo test --test exporter_golden`.

mod support;

use support::{kubo_fixtures, sample, Sentinel};

/// What stands in for a value that depends on the machine or the moment, if it does.
fn volatile_value(name: &str) -> Option<&'static str> {
    if name.ends_with("_duration_seconds") {
        Some("<duration>")
    } else if name.ends_with("_timestamp_seconds") {
        Some("<timestamp>")
    } else if name.starts_with("ipfs_sentinel_ipfs_repo_filesystem_") {
        // The filesystem holding the repo directory is this machine's.
        Some("<host>")
    } else if [
        // How much the history holds depends on whether its first tick came before the scrape.
        "ipfs_sentinel_history_bytes",
        "ipfs_sentinel_history_samples",
        "ipfs_sentinel_history_series",
        // The readiness probe's connection may still be open when the collection runs.
        "ipfs_sentinel_http_connections_open",
    ]
    .contains(&name)
    {
        Some("<count>")
    } else {
        None
    }
}

/// The exposition with the host's samples left out and volatile values replaced.
fn stable_part(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('#') {
            out.push_str(line);
        } else {
            let name = line.split([' ', '{']).next().unwrap_or("");
            if name.starts_with("ipfs_sentinel_node_") {
                continue;
            }
            match (volatile_value(name), line.rsplit_once(' ')) {
                (Some(stand_in), Some((series, _))) => {
                    out.push_str(series);
                    out.push(' ');
                    out.push_str(stand_in);
                }
                _ => out.push_str(line),
            }
        }
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn kubo_fixtures_in_metrics_out() {
    let api = kubo_fixtures::serve().await;
    let sentinel = Sentinel::start(&format!(
        "ipfs:\n  api_url: {api}\n  repo_path: {}\ncluster:\n  node_id: golden\n  monitoring:\n    collection_interval_seconds: 3600\n",
        env!("CARGO_MANIFEST_DIR")
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
    // The gzip form, built by the first scrape that asks and kept for the next: the same text.
    for _ in 0..2 {
        let zipped = reqwest::Client::new()
            .get(format!("{}/metrics", sentinel.url))
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(zipped.headers()["content-encoding"], "gzip");
        let mut unzipped = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&zipped.bytes().await.unwrap()[..]),
            &mut unzipped,
        )
        .unwrap();
        assert_eq!(unzipped, body, "the gzip form holds the plain text");
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
