//! The Grafana dashboards in `grafana/dashboards/`: every panel's expression (and every
//! variable's query) parses as PromQL and names only metrics ipfs-sentinel emits, as the golden
//! fixture and the README's metric list say, so renaming a metric breaks this test; Kubo's own
//! metrics are allowed only in the Kubo row, and only names real Kubo serves (its fixture). A
//! real Prometheus scraping a sentinel (fed Kubo's documented responses and an IPFS Cluster
//! stand-in) and Kubo's metrics endpoint returns data for every expression.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use promql_parser::parser::{self, Expr};
use promql_parser::util::{walk_expr, ExprVisitor};
use serde_json::Value;
use support::ipfs_cluster::{ClusterState, IpfsClusterStandIn};
use support::{eventually, kubo_fixtures, Prometheus, Sentinel};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// One expression a dashboard sends to Prometheus.
struct Query {
    dashboard: String,
    panel: String,
    /// True inside the row of Kubo's own metrics.
    kubo_row: bool,
    expr: String,
}

/// Every dashboard file, parsed.
fn dashboards() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "cluster, node, IPFS, alerts: {files:?}");
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let json =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), json)
        })
        .collect()
}

/// Every panel's expressions and every query variable's metric, in order.
fn queries() -> Vec<Query> {
    let mut out = Vec::new();
    for (name, board) in dashboards() {
        let mut kubo_row = false;
        let panels = board["panels"].as_array().unwrap();
        for panel in panels
            .iter()
            .flat_map(|p| std::iter::once(p).chain(p["panels"].as_array().into_iter().flatten()))
        {
            if panel["type"] == "row" {
                kubo_row = panel["title"].as_str().unwrap().starts_with("Kubo");
                continue;
            }
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push(Query {
                    dashboard: name.clone(),
                    panel: panel["title"].as_str().unwrap().to_owned(),
                    kubo_row,
                    expr: target["expr"].as_str().unwrap().to_owned(),
                });
            }
        }
        for variable in board["templating"]["list"].as_array().unwrap() {
            if variable["type"] != "query" {
                continue;
            }
            // label_values(SELECTOR, label): the selector is PromQL.
            let definition = variable["query"]["query"].as_str().unwrap();
            let inner = definition
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(selector, _)| selector.to_owned())
                .unwrap_or_else(|| panic!("{name}: unexpected variable query {definition}"));
            out.push(Query {
                dashboard: name.clone(),
                panel: format!("variable {}", variable["name"]),
                kubo_row: false,
                expr: inner,
            });
        }
    }
    out
}

/// The expression as Prometheus gets it once Grafana has filled in its variables ("All").
fn substituted(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$instance", ".*")
        .replace("$node_id", ".*")
}

struct MetricNames(BTreeSet<String>);

impl ExprVisitor for MetricNames {
    type Error = String;
    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        let selector = match expr {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        let name = selector
            .name
            .clone()
            .ok_or_else(|| format!("a selector without a metric name: {selector}"))?;
        self.0.insert(name);
        Ok(true)
    }
}

fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let ast = parser::parse(expr)?;
    let mut names = MetricNames(BTreeSet::new());
    walk_expr(&mut names, &ast)?;
    Ok(names.0)
}

/// Metric names in Prometheus text.
fn names_in_exposition(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// The Kubo signals whose presence on a live node depends on the node (a repo that is not
/// growing has no time to full; no GC run, no GC duration; a node that serves neither
/// `provide/stat` nor `stats/reprovide` has no provide figures), so the scrape test does not
/// wait for their data: the back-fill test (`tests/grafana_panels_backfill.rs`) runs their
/// panels over generated series.
const NODE_DEPENDENT_SIGNALS: &[&str] = &[
    "ipfs_sentinel_ipfs_repo_storage_usage_ratio",
    "ipfs_sentinel_ipfs_repo_growth_bytes_per_second",
    "ipfs_sentinel_ipfs_repo_full_in_seconds",
    "ipfs_sentinel_ipfs_repo_filesystem_usage_ratio",
    "ipfs_sentinel_ipfs_repo_filesystem_inodes_usage_ratio",
    "ipfs_sentinel_ipfs_repo_filesystem_inodes_free",
    "ipfs_sentinel_gc_runs_total",
    "ipfs_sentinel_gc_last_duration_seconds",
    "ipfs_sentinel_gc_reclaimed_bytes_total",
    "ipfs_sentinel_ipfs_gc_period_seconds",
    "ipfs_sentinel_ipfs_provide_queue_size",
    "ipfs_sentinel_ipfs_provide_overdue",
    "ipfs_sentinel_ipfs_provide_ongoing",
    "ipfs_sentinel_ipfs_provide_workers",
    "ipfs_sentinel_ipfs_reprovide_last_duration_seconds",
    "ipfs_sentinel_ipfs_version_info",
];

/// What ipfs-sentinel emits: the golden fixture's names and the README's metric table.
fn exporter_names() -> BTreeSet<String> {
    let mut names = names_in_exposition(
        &std::fs::read_to_string(repo("tests/fixtures/exporter.prom")).unwrap(),
    );
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let metrics = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("README.md has a Metrics section");
    for line in metrics.lines().take_while(|l| !l.starts_with("## ")) {
        if let Some(rest) = line.strip_prefix("| `") {
            let name = rest.split(['{', '`']).next().unwrap();
            names.insert(name.to_owned());
        }
    }
    assert!(names.contains("ALERTS") && names.contains("ipfs_sentinel_cluster_node_pins"));
    names
}

#[test]
fn every_panel_parses_and_names_only_metrics_that_are_emitted() {
    let emitted = exporter_names();
    let kubo = names_in_exposition(
        &std::fs::read_to_string(repo("tests/fixtures/kubo/debug_metrics.prom")).unwrap(),
    );
    let queries = queries();
    assert!(queries.len() > 40, "only {} queries", queries.len());
    let mut problems = Vec::new();
    for q in &queries {
        match metric_names(&substituted(&q.expr)) {
            Err(e) => problems.push(format!(
                "{} / {}: {} does not parse: {e}",
                q.dashboard, q.panel, q.expr
            )),
            Ok(names) => {
                for name in names {
                    let known = emitted.contains(&name) || (q.kubo_row && kubo.contains(&name));
                    if !known {
                        problems.push(format!(
                            "{} / {}: {name} is not a metric ipfs-sentinel emits{}",
                            q.dashboard,
                            q.panel,
                            if q.kubo_row {
                                " nor one Kubo serves"
                            } else {
                                ""
                            }
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The three variables on every dashboard, and every panel on the chosen data source.
    for (name, board) in dashboards() {
        let variables: Vec<&str> = board["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(variables, ["datasource", "instance", "node_id"], "{name}");
        for panel in board["panels"].as_array().unwrap() {
            if panel["targets"].is_array() {
                assert_eq!(panel["datasource"]["uid"], "${datasource}", "{name}");
            }
        }
    }
}

#[test]
fn a_renamed_metric_is_caught() {
    let emitted = exporter_names();
    let names = metric_names(&substituted(
        "rate(ipfs_sentinel_ipfs_bandwidth_total{instance=~\"$instance\"}[$__rate_interval])",
    ))
    .unwrap();
    assert!(names.iter().any(|n| !emitted.contains(n)));
    assert!(metric_names("sum by (x (y)").is_err());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus; the README's test command runs it"]
async fn prometheus_scraping_a_sentinel_has_data_for_every_panel() {
    use std::time::{Duration, SystemTime};
    use support::ipfs_cluster::MonitorState;
    let kubo = kubo_fixtures::serve().await;
    let (a, b) = ("12D3KooWPeerA", "12D3KooWPeerB");
    let cluster = IpfsClusterStandIn::start(
        ClusterState {
            peers: vec![
                ClusterState::peer(a, "node-a", ""),
                ClusterState::peer(b, "node-b", "context deadline exceeded"),
            ],
            pins: vec![
                ClusterState::pin("QmPinned", a, "pinned"),
                ClusterState::pin("QmQueued", a, "pin_queued"),
            ],
            allocations: vec![
                ClusterState::allocation("QmPinned", &[a, b]),
                ClusterState::allocation("QmQueued", &[a]),
            ],
        },
        "sentinel:s3cret",
    )
    .await;
    cluster.monitor.lock().unwrap().metrics = vec![MonitorState::metric(
        "ping",
        a,
        SystemTime::now(),
        Duration::from_secs(3600),
    )];
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("cluster.auth");
    std::fs::write(&auth, "sentinel:s3cret\n").unwrap();
    let sentinel = Sentinel::start(&format!(
        "ipfs:\n  api_url: {kubo}\ncluster:\n  node_id: node-a\n  ipfs_cluster:\n    api_url: {}\n    basic_auth_file: {}\n  monitoring:\n    collection_interval_seconds: 1\n    alerts:\n      - {{metric: node.memory_usage_percent, operator: '>', threshold: 0, severity: warning, action: note}}\n    recovery_actions:\n      note: {{command: ['/bin/true'], target: local}}\n",
        cluster.url,
        auth.display()
    ))
    .await;
    let target = |url: &str| url.trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start_with(&format!(
        "  - job_name: ipfs-sentinel\n    static_configs:\n      - targets: ['{}']\n  - job_name: kubo\n    metrics_path: /debug/metrics/prometheus\n    static_configs:\n      - targets: ['{}']\n",
        target(&sentinel.url),
        target(&kubo)
    ))
    .await;
    for q in queries() {
        let expr = substituted(&q.expr);
        let names = metric_names(&expr).unwrap();
        if !names.is_empty()
            && names
                .iter()
                .all(|n| NODE_DEPENDENT_SIGNALS.contains(&n.as_str()))
        {
            continue;
        }
        let what = format!("data for {} / {}: {expr}", q.dashboard, q.panel);
        let prometheus = &prometheus;
        eventually(&what, || {
            let expr = expr.clone();
            async move {
                let result = prometheus.query(&expr).await;
                (!result.is_empty()).then_some(())
            }
        })
        .await;
    }
    drop(cluster);
}
