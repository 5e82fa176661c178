//! The HTML dashboard as a person sees it: real headless Chromium loads the page from a
//! running sentinel with two hours of history, a peer sentinel whose node id is markup, a
//! firing alert and a recovery action whose output is a script; the page renders, shows the
//! alert, its charts hold the history's points, nothing from outside runs as markup and the
//! console stays empty. Screenshots (wide, phone, dark) are kept in `target/test-artifacts/`.
//! Also: `cluster.dashboard.enabled: false`, a listener of its own, and `ipfs-sentinel
//! dashboard --output` from a URL and from a data dir.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use ipfs_sentinel::clock::system_ms;
use ipfs_sentinel::config::Config;
use ipfs_sentinel::history::SeriesKey;
use support::chromium::Chromium;
use support::{cli, eventually, free_port, get_json, get_text, http, IpfsNode, Sentinel};

const EVIL_NODE: &str = "<script>alert(1)</script>";
const EVIL_OUTPUT: &str = "<script>alert(2)</script>";
const SEEDED_TICKS: i64 = 120;

fn config(node_id: &str, extra: &str) -> String {
    config_with_ipfs(&format!("http://127.0.0.1:{}", free_port()), node_id, extra)
}

fn config_with_ipfs(api_url: &str, node_id: &str, extra: &str) -> String {
    format!(
        "ipfs:\n  api_url: {api_url}\n  timeout_seconds: 5\ncluster:\n  node_id: '{node_id}'\n  role: master\n{extra}  monitoring:\n    collection_interval_seconds: 1\n    alerts:\n      - {{metric: node.memory_usage_percent, operator: '>', threshold: 0, severity: critical, name: MemoryInUse}}\n"
    )
}

/// The seeded CPU ratio of tick `i`.
fn seeded_value(i: i64) -> f64 {
    0.2 + 0.5 * i as f64 / (SEEDED_TICKS - 1) as f64
}

/// Writes two hours of this node's CPU, one tick a minute ending two minutes ago, into the
/// data dir's history, as a sentinel that ran then would have; returns the ticks' times.
fn seed_history(config_yaml: &str, data_dir: &std::path::Path) -> Vec<i64> {
    let config = Config::parse(config_yaml, "test").unwrap();
    let (mut history, mut persistence) =
        ipfs_sentinel::history::open(&config, data_dir, false).unwrap();
    let key = history.intern(SeriesKey {
        name: "ipfs_sentinel_cluster_node_cpu_usage_ratio".into(),
        labels: vec![("node_id".into(), "node-a".into())],
    });
    let now = system_ms(SystemTime::now());
    (0..SEEDED_TICKS)
        .map(|i| {
            let at = now - (SEEDED_TICKS + 1 - i) * 60_000;
            let samples = [(Arc::clone(&key), seeded_value(i))];
            assert!(history.append(at, &samples));
            persistence.record_tick(at, &samples).unwrap();
            at
        })
        .collect()
}

/// One recovery action run in the audit log, with a script for output.
fn seed_audit_log(data_dir: &std::path::Path) {
    let dir = data_dir.join("actions");
    std::fs::create_dir_all(&dir).unwrap();
    let run = serde_json::json!({
        "at_ms": system_ms(SystemTime::now()) - 30_000, "job": "j1", "alertname": "MemoryInUse",
        "severity": "critical", "action": "run_gc", "node_id": "node-a", "trigger": "firing",
        "attempt": 1, "result": "failure", "output": EVIL_OUTPUT, "duration_seconds": 0.25,
        "dry_run": false
    });
    std::fs::write(dir.join("audit.jsonl"), format!("{run}\n")).unwrap();
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `data-points` of the first series labelled `label` in `dom`, and the polylines drawn
/// for it (each as its number of points).
fn series(dom: &str, label: &str) -> (Vec<(i64, f64)>, Vec<usize>) {
    let start = dom
        .find(&format!("data-label=\"{label}\" data-points=\""))
        .unwrap_or_else(|| panic!("no series {label} in the page"));
    let group = &dom[start..start + dom[start..].find("</g>").unwrap()];
    let data = group.split("data-points=\"").nth(1).unwrap();
    let points = data[..data.find('"').unwrap()]
        .split_whitespace()
        .map(|p| {
            let (t, v) = p.split_once(':').unwrap();
            (t.parse().unwrap(), v.parse().unwrap())
        })
        .collect();
    let lines = group
        .split("<polyline points=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].split_whitespace().count())
        .collect();
    (points, lines)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's chromium and js-ipfs; the README's test command installs them"]
async fn chromium_shows_history_alerts_and_actions_and_runs_nothing_from_outside() {
    let browser = Chromium::new();
    // The console check can fail: a page that logs is caught.
    let probe = browser.dump_dom("data:text/html,<script>console.error('probe')</script>");
    assert!(
        probe.console.iter().any(|l| l.contains("probe")),
        "console messages are not captured: {:?}",
        probe.console
    );

    let ipfs = IpfsNode::start().await;
    ipfs.add_and_pin(b"shown on the dashboard").await;
    let peer = Sentinel::start(&config(EVIL_NODE, "")).await;
    let yaml = config_with_ipfs(
        &ipfs.api_url,
        "node-a",
        &format!(
            "  peers: ['{}']\n  dashboard:\n    refresh_interval_seconds: 30\n",
            peer.url
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let seeded = seed_history(&yaml, &data);
    seed_audit_log(&data);
    let sentinel = Sentinel::start_in(free_port(), &yaml, &data, dir).await;

    // Wait until the alert fires and the peer's CPU is in the history.
    let alerts = format!("{}/api/v1/alerts", sentinel.url);
    eventually("the alert to fire", || async {
        let body = get_json(&alerts, &[]).await;
        body["data"]["alerts"]
            .as_array()?
            .iter()
            .any(|a| a["state"] == "firing")
            .then_some(())
    })
    .await;
    let page_url = format!("{}/", sentinel.url);
    let escaped_label = "data-label=\"&lt;script&gt;alert(1)&lt;/script&gt;\"";
    eventually("live CPU of both nodes in the charts", || async {
        get_text(&page_url).await.filter(|p| {
            p.contains(escaped_label) && series(p, "node-a").0.len() > SEEDED_TICKS as usize
        })
    })
    .await;

    let visit = browser.dump_dom(&page_url);
    let dom = &visit.stdout;
    assert!(visit.console.is_empty(), "console: {:?}", visit.console);
    // It renders every section, with six charts.
    for section in ["nodes", "charts", "alerts", "actions", "collectors"] {
        assert!(
            dom.contains(&format!("<section id=\"{section}\">")),
            "{section}: {dom}"
        );
    }
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 6, "{dom}");
    // The alert, with severity, state and since-when.
    assert!(
        dom.contains("<td class=\"alertname\">MemoryInUse</td>"),
        "{dom}"
    );
    assert!(dom.contains("<span class=\"badge critical\">critical</span>"));
    assert!(dom.contains("<span class=\"badge firing\">firing</span>"));
    assert!(dom.contains("1 firing, 0 pending"));
    // Markup from outside is text: the node id in the table, chart and legend, the output.
    assert!(
        dom.contains("<td class=\"node-id\">&lt;script&gt;alert(1)&lt;/script&gt;</td>"),
        "{dom}"
    );
    assert!(dom.contains("<pre class=\"output\">&lt;script&gt;alert(2)&lt;/script&gt;</pre>"));
    assert!(
        !dom.contains("<script>alert("),
        "markup from outside in the DOM"
    );
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the page's own script"
    );

    // The CPU chart holds the seeded history, point for point, and draws it as one line.
    let (points, lines) = series(dom, "node-a");
    assert!(points.len() > SEEDED_TICKS as usize, "{points:?}");
    let step = (points[1].0 - points[0].0).max(1000);
    for (i, (&at, &(t, v))) in seeded.iter().zip(&points).enumerate() {
        assert_eq!(v, seeded_value(i as i64), "point {i}");
        assert!(
            t <= at && at - t < step.max(60_000),
            "point {i} at {t}, seeded at {at}"
        );
    }
    assert!(
        lines.iter().any(|n| *n >= SEEDED_TICKS as usize),
        "the seeded points are not one line: {lines:?}"
    );
    let (peer_points, _) = series(dom, "&lt;script&gt;alert(1)&lt;/script&gt;");
    assert!(!peer_points.is_empty());

    // Screenshots: wide, phone and dark, each without a console message.
    let dir = artifacts();
    let mut sizes = Vec::new();
    for (name, size, dark) in [
        ("dashboard-wide.png", (1280, 2000), false),
        ("dashboard-phone.png", (390, 3000), false),
        ("dashboard-dark.png", (1280, 2000), true),
    ] {
        let png = dir.join(name);
        let shot = browser.screenshot(&page_url, &png, size, dark);
        assert!(shot.console.is_empty(), "{name}: {:?}", shot.console);
        sizes.push(std::fs::metadata(&png).unwrap().len());
    }
    assert!(
        sizes.iter().all(|s| *s > 20_000),
        "blank screenshots? {sizes:?}"
    );
    let light = std::fs::read(dir.join("dashboard-wide.png")).unwrap();
    let dark = std::fs::read(dir.join("dashboard-dark.png")).unwrap();
    assert_ne!(light, dark, "the dark scheme changes nothing");
    drop(peer);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_can_be_turned_off_moved_to_its_own_listener_and_written_to_a_file() {
    // Off: `/` says so, `/dashboard` is not there.
    let off = Sentinel::start(&config("quiet", "  dashboard:\n    enabled: false\n")).await;
    let landing = get_text(&format!("{}/", off.url)).await.unwrap();
    assert!(
        landing.contains("cluster.dashboard.enabled: false"),
        "{landing}"
    );
    let status = http()
        .get(format!("{}/dashboard", off.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);

    // Its own listener: the page there, only the API on the main one.
    let port = free_port();
    let moved = Sentinel::start(&config(
        "moved",
        &format!("  dashboard:\n    host: 127.0.0.1\n    port: {port}\n"),
    ))
    .await;
    let own = format!("http://127.0.0.1:{port}");
    let own_page = format!("{own}/dashboard");
    let page = eventually("the dashboard on its own listener", || get_text(&own_page)).await;
    assert!(page.contains("node <strong>moved</strong>"), "{page}");
    assert!(get_text(&format!("{own}/metrics")).await.is_none());
    assert!(get_text(&format!("{}/dashboard", moved.url))
        .await
        .is_none());
    assert!(get_text(&format!("{}/metrics", moved.url)).await.is_some());

    // Written once from the running sentinel: the same page, without a refresh.
    let out = tempfile::tempdir().unwrap();
    let from_url = out.path().join("from-url.html");
    let (code, _, err) = cli(&[
        "dashboard",
        "--output",
        from_url.to_str().unwrap(),
        "--url",
        &own,
    ]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&from_url).unwrap();
    assert!(html.contains("node <strong>moved</strong>") && html.contains("<svg class=\"chart\""));
    assert!(!html.contains("refresh"), "a kept page does not refresh");

    // Written from the data dir of a stopped sentinel: its history and its alert.
    let mut off = off;
    off.metrics_until("a few collections", |m| m.contains("ALERTS{"))
        .await;
    off.process.stop();
    let from_dir = out.path().join("from-dir.html");
    let (code, _, err) = cli(&[
        "dashboard",
        "--output",
        from_dir.to_str().unwrap(),
        "--data-dir",
        off.dir.path().join("data").to_str().unwrap(),
        "--config",
        off.dir.path().join("sentinel.yaml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&from_dir).unwrap();
    assert!(html.contains("node <strong>quiet</strong>"), "{html}");
    assert!(
        html.contains("<td class=\"alertname\">MemoryInUse</td>"),
        "{html}"
    );
    let (points, _) = series(&html, "quiet");
    assert!(!points.is_empty());

    // A data dir without history is refused, saying what to pass.
    let (code, _, err) = cli(&[
        "dashboard",
        "--output",
        out.path().join("x.html").to_str().unwrap(),
        "--data-dir",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("holds no history; pass --data-dir"), "{err}");
}

/// One series of a seeded tick: its name, labels and value.
type Seeded<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// Writes one tick holding `series` (name, labels, value) into the data dir's history, a minute
/// ago, as a sentinel that collected them would have.
fn seed_tick(config_yaml: &str, data_dir: &std::path::Path, series: &[Seeded<'_>]) {
    let config = Config::parse(config_yaml, "test").unwrap();
    let (mut history, mut persistence) =
        ipfs_sentinel::history::open(&config, data_dir, false).unwrap();
    let samples: Vec<_> = series
        .iter()
        .map(|(name, labels, value)| {
            let mut labels: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            labels.sort();
            let key = history.intern(SeriesKey {
                name: (*name).to_owned(),
                labels,
            });
            (key, *value)
        })
        .collect();
    let at = system_ms(SystemTime::now()) - 60_000;
    assert!(history.append(at, &samples));
    persistence.record_tick(at, &samples).unwrap();
}

/// The signals a node's history holds, as the page written from its data dir words them: the
/// repo's growth and time to full, GC, provide health and Kubo's version; a figure the history
/// lacks is a dash, never a zero.
#[test]
fn the_page_words_the_repo_gc_and_provide_signals_of_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config("signals", "");
    let config_file = dir.path().join("sentinel.yaml");
    std::fs::write(&config_file, &yaml).unwrap();
    let data = dir.path().join("data");
    let gib = 1024.0 * 1024.0 * 1024.0;
    seed_tick(
        &yaml,
        &data,
        &[
            (
                "ipfs_sentinel_ipfs_repo_growth_bytes_per_second",
                &[],
                2048.0,
            ),
            (
                "ipfs_sentinel_ipfs_repo_full_in_seconds",
                &[("limit", "storage_max")],
                90_000.0,
            ),
            ("ipfs_sentinel_ipfs_repo_storage_usage_ratio", &[], 0.8),
            ("ipfs_sentinel_ipfs_repo_filesystem_usage_ratio", &[], 0.95),
            ("ipfs_sentinel_gc_runs_total", &[("result", "success")], 2.0),
            ("ipfs_sentinel_gc_runs_total", &[("result", "failure")], 0.0),
            ("ipfs_sentinel_gc_reclaimed_bytes_total", &[], 1.5 * gib),
            ("ipfs_sentinel_ipfs_provide_overdue", &[], 0.0),
            (
                "ipfs_sentinel_ipfs_reprovide_last_duration_seconds",
                &[],
                80_000.0,
            ),
            (
                "ipfs_sentinel_ipfs_version_info",
                &[("version", "0.38.2")],
                1.0,
            ),
        ],
    );
    let page = dir.path().join("page.html");
    let (code, _, err) = cli(&[
        "dashboard",
        "--output",
        page.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        config_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    for shown in [
        "<dt>growth</dt><dd class=\"\">+2 KiB/s</dd>",
        "<dt>StorageMax reached in</dt><dd class=\"\">1d 1h</dd>",
        "<dt>filesystem full in</dt><dd class=\"\">—</dd>",
        "<dt>filesystem used</dt><dd class=\"warning\">95%</dd>",
        "<dt>inodes used</dt><dd class=\"\">—</dd>",
        "<dt>runs by the sentinel</dt><dd class=\"\">2 succeeded, 0 failed</dd>",
        "<dt>last run took</dt><dd class=\"\">—</dd>",
        "<dt>freed in all</dt><dd class=\"\">1.5 GiB</dd>",
        "<dt>overdue regions</dt><dd class=\"\">0</dd>",
        "<dt>queues</dt><dd class=\"\">—</dd>",
        "<dt>last reprovide took</dt><dd class=\"warning\">22h 13m 20s</dd>",
        "<dt>version</dt><dd class=\"\">0.38.2</dd>",
    ] {
        assert!(html.contains(shown), "{shown} missing from:\n{html}");
    }
    assert!(
        !html.contains("id=\"signals-ipfs-cluster\""),
        "no IPFS Cluster figures, no IPFS Cluster group"
    );
}

/// IPFS Cluster's stuck pins and silent peers, from its REST API (the stand-in) through the
/// collector to the live page.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_the_oldest_stuck_pin_and_the_silent_peer() {
    use std::time::Duration;
    use support::ipfs_cluster::{ClusterState, IpfsClusterStandIn, MonitorState};
    let (a, b) = ("12D3KooWPeerA", "12D3KooWPeerB");
    let now = SystemTime::now();
    let error_since = ipfs_sentinel::clock::rfc3339(system_ms(now) - 7_260_000);
    let stand_in = IpfsClusterStandIn::start(
        ClusterState {
            peers: vec![
                ClusterState::peer(a, "node-a", ""),
                ClusterState::peer(b, "node-b", "context deadline exceeded"),
            ],
            pins: vec![
                ClusterState::pin_since("QmStuck", a, "pin_error", &error_since),
                ClusterState::pin("QmFine", a, "pinned"),
            ],
            allocations: vec![],
        },
        "sentinel:s3cret",
    )
    .await;
    let b_ping = MonitorState::metric(
        "ping",
        b,
        now - Duration::from_secs(900),
        Duration::from_secs(30),
    );
    *stand_in.monitor.lock().unwrap() = MonitorState {
        metrics: vec![
            MonitorState::metric("ping", a, now, Duration::from_secs(3600)),
            b_ping.clone(),
        ],
        alerts: vec![MonitorState::alert(&b_ping, "2026-11-30T00:00:00Z")],
    };
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("cluster.auth");
    std::fs::write(&auth, "sentinel:s3cret\n").unwrap();
    let sentinel = Sentinel::start(&config(
        "node-a",
        &format!(
            "  ipfs_cluster:\n    api_url: {}\n    basic_auth_file: {}\n",
            stand_in.url,
            auth.display()
        ),
    ))
    .await;
    let url = format!("{}/dashboard", sentinel.url);
    let page = eventually("the IPFS Cluster signals on the page", || {
        let url = url.clone();
        async move {
            get_text(&url)
                .await
                .filter(|p| p.contains("id=\"signals-ipfs-cluster\""))
        }
    })
    .await;
    for shown in [
        "<dt>oldest pin in pin_error</dt><dd class=\"bad\">2h 1m",
        "<dt>oldest pin in pin_queued</dt><dd class=\"\">none</dd>",
        "<dt>peer node-b</dt><dd class=\"bad\">last ping 15m",
        "<dt>peers&#x27; last metrics</dt><dd class=\"\">1 fresh (oldest ",
    ] {
        assert!(page.contains(shown), "{shown} missing from:\n{page}");
    }
    assert!(
        !page.contains("id=\"signals-provide\""),
        "no provide figures from a node that gives none"
    );
    stand_in.stop().await;
}
