//! What each fuzz target does with one input, shared by the `cargo fuzz` binaries in
//! `fuzz_targets/` and by `tests/fuzz_regressions.rs`, which replays every input the fuzzers
//! ever crashed on. Each function feeds the bytes to one parser of untrusted input the way the
//! sentinel does and says whether the input was accepted (`Ok`) or refused with an error
//! (`Err`, its message); a panic, a hang or running out of memory is the defect fuzzing looks
//! for. A new target is one function here, one file in `fuzz_targets/`, one `[[bin]]` in
//! `fuzz/Cargo.toml`, one line in `TARGETS` and one seed entry in `fuzz/run.sh`.

use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use ipfs_sentinel::actions::argv::{self, RunContext};
use ipfs_sentinel::actions::payload;
use ipfs_sentinel::actions::policy::Trigger;
use ipfs_sentinel::clients::ipfs_cluster::{
    parse_list, Allocation, ClusterPeer, ClusterPin, MonitorAlert, MonitorMetric, PinStatus,
};
use ipfs_sentinel::clients::kubo;
use ipfs_sentinel::collect::ipfs_cluster::{figures, peer_metric_ages, LastReceived};
use ipfs_sentinel::config::Config;
use ipfs_sentinel::history::recorder::SharedHistory;
use ipfs_sentinel::history::{History, SeriesKey};
use ipfs_sentinel::http::actions::parse_alertmanager_payload;
use ipfs_sentinel::http::api::promql as query_api_answers;
use ipfs_sentinel::model::Semantics;
use ipfs_sentinel::rules::promql::{self, Evaluator};
use ipfs_sentinel::rules::{load, promtool_test};

/// What a target does with one input: `Ok` when accepted, `Err` with the reason when refused.
pub type Target = fn(&[u8]) -> Result<(), String>;

/// Every target by name (the directory names under `tests/fixtures/fuzz/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("rule_file", rule_file),
    ("expression", expression),
    ("kubo", kubo),
    ("ipfs_cluster", ipfs_cluster),
    ("promtool_test", promtool_test),
    ("alertmanager_webhook", alertmanager_webhook),
    ("query_api", query_api),
];

fn text(data: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(data).map_err(|e| format!("not UTF-8: {e}"))
}

/// `Config::parse`, as `--config FILE` and `/-/reload` read the configuration.
pub fn config(data: &[u8]) -> Result<(), String> {
    Config::parse(text(data)?, "fuzz.yaml")
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `rules::load::parse_file`, as `--rules FILE` and `check-rules` read a rule file.
pub fn rule_file(data: &[u8]) -> Result<(), String> {
    load::parse_file(text(data)?, "fuzz.rules.yml", Semantics::default())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The small history, built once.
fn history() -> &'static History {
    static HISTORY: OnceLock<History> = OnceLock::new();
    HISTORY.get_or_init(small_history)
}

/// The same history behind the lock the query API takes.
fn shared_history() -> &'static SharedHistory {
    static HISTORY: OnceLock<SharedHistory> = OnceLock::new();
    HISTORY.get_or_init(|| Arc::new(RwLock::new(small_history())))
}

/// A small history: two counters, a gauge with a gap (stale markers) and a NaN, 40 ticks at
/// 15 s, some sealed into blocks and some in the head.
fn small_history() -> History {
    let mut h = History::new(i64::MAX / 4, 16);
    let key = |h: &mut History, name: &str, labels: &[(&str, &str)]| {
        h.intern(SeriesKey {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        })
    };
    let a = key(&mut h, "requests_total", &[("job", "a"), ("instance", "x")]);
    let b = key(&mut h, "requests_total", &[("job", "b"), ("instance", "x")]);
    let g = key(&mut h, "disk_usage_ratio", &[("mountpoint", "/")]);
    for i in 0..40_i64 {
        let mut samples = vec![
            (a.clone(), (i * 10 % 170) as f64),
            (b.clone(), i as f64 * 0.5),
        ];
        if !(10..14).contains(&i) {
            let v = if i == 20 {
                f64::NAN
            } else {
                0.5 + i as f64 / 100.0
            };
            samples.push((g.clone(), v));
        }
        h.append(i * 15_000, &samples);
        // Sealing keeps the block in the store (inserting it again would double its points).
        h.take_full_block();
    }
    h
}

/// A PromQL expression parsed and checked as a rule's `expr` is, then evaluated over a fixed
/// history at its start, its middle, its end and long after, and sent to the query API as an
/// instant query and as a range query over the whole history.
pub fn expression(data: &[u8]) -> Result<(), String> {
    let query = text(data)?;
    let params = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        std::iter::once(("query", query))
            .chain(extra.iter().copied())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let _ = query_api_answers::instant(
        shared_history(),
        &params(&[("time", "300")]),
        0,
        Semantics::default(),
    );
    let _ = query_api_answers::range(
        shared_history(),
        &params(&[
            ("start", "0"),
            ("end", "600"),
            ("step", "15"),
            ("timeout", "5s"),
        ]),
        Semantics::default(),
    );
    let expr = promql::parse(query).map_err(|e| e.0)?;
    promql::check_supported(&expr).map_err(|e| e.0)?;
    let mut last = Ok(());
    for at_ms in [0, 300_000, 585_000, 86_400_000] {
        last = Evaluator::new(history(), at_ms)
            .eval(&expr)
            .map(drop)
            .map_err(|e| e.0);
    }
    last
}

/// A request to `/api/v1/query` and to `/api/v1/query_range`: the input is the form body
/// (`query=...&time=...&start=...&end=...&step=...&timeout=...`, split on `&` and the first
/// `=`, not percent-decoded: decoding is the HTTP framework's), answered over the small history
/// at a fixed "now". Refused when either answer is an error, with its body; a panic or a hang
/// past the query timeout (5 s unless the input sets one, 2 min at most) is the defect.
pub fn query_api(data: &[u8]) -> Result<(), String> {
    let mut params: Vec<(String, String)> = text(data)?
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (pair.to_owned(), String::new()),
        })
        .collect();
    params.push(("timeout".into(), "5s".into()));
    let instant =
        query_api_answers::instant(shared_history(), &params, 600_000, Semantics::default());
    let range = query_api_answers::range(shared_history(), &params, Semantics::default());
    for answer in [instant, range] {
        if answer.status != 200 {
            return Err(answer.body);
        }
    }
    Ok(())
}

/// Every Kubo RPC response parser on the same body; refused when any of them refuses it.
pub fn kubo(data: &[u8]) -> Result<(), String> {
    let results = [
        kubo::parse_id(data).map(drop),
        kubo::parse_version(data).map(drop),
        kubo::parse_repo_stat(data).map(drop),
        kubo::parse_bandwidth(data).map(drop),
        kubo::parse_bitswap_stat(data).map(drop),
        kubo::parse_swarm_peer_count(data).map(drop),
        kubo::count_pins(data).map(drop),
        kubo::parse_bootstrap_list(data).map(drop),
    ];
    for line in ipfs_sentinel::clients::ndjson_lines(data) {
        let _ = kubo::parse_gc_line(line);
    }
    let _ = ipfs_sentinel::clients::error_message(data, kubo::KUBO.message_field);
    if let Ok(t) = std::str::from_utf8(data) {
        let _ = kubo::parse_block_cache(t).map(|c| c.hit_ratio());
    }
    results
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The IPFS Cluster list parsers on the same body, and the figures and peer metric ages of
/// what they read; the re-pin options of the pins it may list.
pub fn ipfs_cluster(data: &[u8]) -> Result<(), String> {
    let peers = parse_list::<ClusterPeer>("peers", data);
    let pins = parse_list::<PinStatus>("pins", data);
    let allocations = parse_list::<Allocation>("allocations", data);
    if let Ok(full) = parse_list::<ClusterPin>("allocations", data) {
        for pin in &full {
            let _ = pin.repin_query(pin.replication_factor_min, &pin.allocations);
        }
    }
    let _ = figures(
        peers.as_deref().unwrap_or_default(),
        pins.as_deref().unwrap_or_default(),
        allocations.as_deref().unwrap_or_default(),
        i64::MAX,
    );
    let _ = peer_metric_ages(
        &mut LastReceived::new(),
        peers.as_deref().unwrap_or_default(),
        parse_list::<MonitorMetric>("monitor/metrics", data)
            .as_deref()
            .unwrap_or_default(),
        parse_list::<MonitorAlert>("health/alerts", data)
            .as_deref()
            .unwrap_or_default(),
        i64::MIN,
    );
    peers
        .and(pins)
        .and(allocations)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A promtool unit-test file run with `rule_files` read from `tests/conformance/`. Inputs that
/// could name files elsewhere (a `/`, `..` or an escape) are refused first: the fuzzer must not
/// read or glob the whole file system.
pub fn promtool_test(data: &[u8]) -> Result<(), String> {
    let t = text(data)?;
    if t.contains(['/', '\\']) || t.contains("..") {
        return Err("names a path outside tests/conformance/ (skipped)".into());
    }
    // Built as the fuzz crate (in `fuzz/`) or as the main crate's regression test.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if manifest.ends_with("fuzz") {
        manifest.parent().unwrap_or(manifest)
    } else {
        manifest
    };
    promtool_test::run_text(
        t,
        &root.join("tests/conformance"),
        "fuzz.test.yml",
        Semantics::Prometheus2_42,
    )
    .map(drop)
}

/// The body `POST /api/v1/alertmanager/webhook` receives: parsed, then each alert's
/// fingerprint, placeholders, environment and the webhook payload built back from it.
pub fn alertmanager_webhook(data: &[u8]) -> Result<(), String> {
    let alerts = parse_alertmanager_payload(data)?;
    let template: Vec<String> = [
        "/bin/x",
        "{alertname}",
        "{node_id}-{value}",
        "{summary}{details}",
        "{nope}{",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for alert in &alerts {
        let _ = alert.fingerprint();
        let run = RunContext {
            action: "fuzz",
            trigger: Trigger::Firing,
            node_id: alert.node_id("here"),
        };
        let _ = argv::argv(&template, alert, &run);
        let _ = argv::environment(alert, &run);
    }
    let _ = payload::webhook("fuzz", &alerts, "http://127.0.0.1:9401");
    let _ = payload::alertmanager_alerts(&alerts);
    Ok(())
}
