//! The start lines of `serve` name every listener: the main one with its `/metrics` URL and
//! where the dashboard is, and the dashboard's own listener when `cluster.dashboard` gives it
//! one.

mod support;

use support::{eventually, free_port, Sentinel};

const BASE: &str =
    "ipfs:\n  api_url: http://127.0.0.1:9\n  timeout_seconds: 1\ncluster:\n  node_id: lines\n";

#[tokio::test]
async fn the_start_line_names_the_listener_the_metrics_url_and_the_dashboard() {
    let sentinel = Sentinel::start(BASE).await;
    let log = sentinel.process.log();
    let start = log
        .lines()
        .find(|l| l.contains("started"))
        .unwrap_or_else(|| panic!("no start line: {log}"));
    let addr = sentinel.url.trim_start_matches("http://");
    assert!(start.contains(&format!("listen={addr}")), "{start}");
    assert!(
        start.contains(&format!("metrics={}/metrics", sentinel.url)),
        "{start}"
    );
    assert!(
        start.contains(&format!("dashboard={}/", sentinel.url)),
        "{start}"
    );
}

#[tokio::test]
async fn a_dashboard_on_its_own_listener_gets_a_start_line_of_its_own() {
    let port = free_port();
    let mut sentinel = Sentinel::start(&format!(
        "{BASE}  dashboard:\n    host: 127.0.0.1\n    port: {port}\n"
    ))
    .await;
    let own = format!("http://127.0.0.1:{port}/");
    let log = eventually("the dashboard's start line", || {
        sentinel.process.assert_running();
        let log = sentinel.process.log();
        async move {
            log.contains("its own listener (cluster.dashboard")
                .then_some(log)
        }
    })
    .await;
    let start = log.lines().find(|l| l.contains(" started ")).unwrap();
    assert!(
        start.contains(&format!("dashboard={own} (its own listener)")),
        "{start}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("the dashboard listens on its own listener"))
        .unwrap();
    assert!(
        line.contains(&format!("listen=127.0.0.1:{port}"))
            && line.contains(&format!("dashboard={own}")),
        "{line}"
    );
    let page = support::get_text(&own)
        .await
        .expect("the dashboard answers there");
    assert!(
        page.contains("<html") || page.contains("<!DOCTYPE"),
        "{page}"
    );
}
