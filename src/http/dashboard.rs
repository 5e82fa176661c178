//! The HTML dashboard at `GET /` and `GET /dashboard`: the cluster's nodes, this node's IPFS
//! signals (repo growth and time to full, GC, provide health, Kubo's version, IPFS Cluster's
//! stuck pins and silent peers), charts of the last hours of history, active alerts, recent
//! recovery actions and collector health, rendered with handlebars from the templates in
//! `templates/` (embedded in the binary).
//!
//! Owns the page's model (what is shown and how it is worded) and its rendering. Building the
//! model is a pure function of a snapshot, the history, the alerts, the audit log and the time
//! passed in; the handler only gathers those. It changes nothing it reads. Every string from
//! outside (node ids, labels, annotations, command output) reaches the page through
//! handlebars' escaping, or [`chart::escape`] inside the SVG.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use handlebars::Handlebars;
use serde::Serialize;

use super::chart::{self, Chart, Line, Unit};
use super::state::AppState;
use crate::actions::audit::ActionRun;
use crate::clock::{rfc3339, system_ms};
use crate::history::aggregate::{aggregate, Function};
use crate::history::codec::DecodeError;
use crate::history::recorder::read;
use crate::history::{History, SeriesKey};
use crate::model::{Family, Snapshot};
use crate::rules::alerting::AlertState;
use crate::rules::manager::RuleEngine;
use crate::status::{self, Identity};

/// How far back the charts reach at most.
pub const CHART_WINDOW_MS: i64 = 6 * 3_600_000;
/// Points per series at most: older data is averaged into steps.
pub const CHART_POINTS: i64 = 360;
/// Recovery action runs shown.
pub const RECENT_ACTIONS: usize = 20;
/// Characters of an action's output shown (the audit log keeps up to 4 KiB).
const OUTPUT_SHOWN: usize = 400;

/// Why the page could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// An embedded template does not compile (a bug: the unit tests render every template).
    #[error("the dashboard template does not compile: {0}")]
    Template(String),
    /// Rendering failed.
    #[error("cannot render the dashboard: {0}")]
    Render(#[from] handlebars::RenderError),
    /// A history block could not be decoded.
    #[error("cannot read the history for the charts: {0}")]
    History(#[from] DecodeError),
}

/// The page's routes, `/` and `/dashboard`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/dashboard", get(page))
}

/// The templates, compiled once.
fn registry() -> Result<&'static Handlebars<'static>, DashboardError> {
    static REGISTRY: OnceLock<Result<Handlebars<'static>, String>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let mut hb = Handlebars::new();
            hb.set_strict_mode(true);
            for (name, text) in [
                ("dashboard", include_str!("../../templates/dashboard.hbs")),
                ("nodes", include_str!("../../templates/nodes.hbs")),
                ("signals", include_str!("../../templates/signals.hbs")),
                ("alerts", include_str!("../../templates/alerts.hbs")),
                ("actions", include_str!("../../templates/actions.hbs")),
            ] {
                hb.register_template_string(name, text)
                    .map_err(|e| e.to_string())?;
            }
            Ok(hb)
        })
        .as_ref()
        .map_err(|e| DashboardError::Template(e.clone()))
}

/// The whole page, as the template sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// ipfs-sentinel's version.
    pub version: &'static str,
    /// This node's id.
    pub node_id: String,
    /// This node's role.
    pub role: String,
    /// When the page was built, RFC 3339 UTC.
    pub generated: String,
    /// Seconds between refreshes; `None` for a page written once.
    pub refresh_seconds: Option<String>,
    /// The refresh as text, e.g. `30s`.
    pub refresh_text: Option<String>,
    /// One row per node, this one first.
    pub nodes: Vec<NodeRow>,
    /// How many nodes.
    pub node_count: usize,
    /// This node's IPFS signals, a group per thing; a group with no figure at all is left out.
    pub signals: Vec<FigureGroup>,
    /// The charts.
    pub charts: Vec<ChartView>,
    /// What the charts span, e.g. `last 6h (UTC)`.
    pub chart_span: String,
    /// Pending and firing alerts, firing and most severe first.
    pub alerts: Vec<AlertRow>,
    /// Alerts firing.
    pub firing: usize,
    /// Alerts pending.
    pub pending: usize,
    /// Recent recovery action runs, newest first.
    pub actions: Vec<ActionRow>,
    /// Proposals waiting for approval and the circuit breaker (none: no dispatcher here).
    pub guard: Option<super::actions::GuardPanel>,
    /// Each collector's last run.
    pub collectors: Vec<CollectorRow>,
    /// Each remote write receiver: name, lag, samples sent and dropped, retries.
    pub remote_write: Vec<RemoteWriteRow>,
}

/// One remote write receiver on the page.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteWriteRow {
    /// Its name.
    pub name: String,
    /// How far behind the newest tick, e.g. `2m`.
    pub lag: String,
    /// Samples acknowledged since start.
    pub sent: String,
    /// Samples it refused since start.
    pub dropped: String,
    /// Requests retried since start.
    pub retries: String,
    /// True while it is behind by more than a few intervals' worth (lag over 5 minutes).
    pub behind: bool,
}

/// One node in the cluster table. Absent figures read `—`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    /// The node's id.
    pub node_id: String,
    /// True for this node.
    pub me: bool,
    /// master, worker, leecher or unknown.
    pub role: String,
    /// Online, Degraded or Offline.
    pub status: String,
    /// The status in lower case, for the CSS class.
    pub status_class: String,
    /// When it last answered, e.g. `12s ago`.
    pub last_seen: String,
    /// CPU busy.
    pub cpu: String,
    /// Memory in use.
    pub memory: String,
    /// The fullest real filesystem's usage.
    pub disk: String,
    /// Repo size against StorageMax, e.g. `4.95 GiB of 9.31 GiB (53%)`.
    pub repo: String,
    /// Recursive plus direct pins.
    pub pins: String,
    /// Connected swarm peers.
    pub peers: String,
    /// Incoming and outgoing bandwidth.
    pub bandwidth: String,
}

/// One figure among this node's signals, in words; absent figures read `—`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// What it is, e.g. `StorageMax full in`.
    pub name: String,
    /// Its value in words, e.g. `3h 20m`.
    pub value: String,
    /// `warning` or `bad` when it calls for attention, else empty (a CSS class).
    pub class: &'static str,
}

/// The figures about one thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FigureGroup {
    /// Its id in the page (`repo`, `gc`, `provide`, `kubo`, `ipfs-cluster`).
    pub id: &'static str,
    /// Its heading.
    pub title: &'static str,
    /// Its figures.
    pub figures: Vec<Figure>,
}

/// How old a cluster peer's last metric may be before the page marks it stale (the bundled
/// `IpfsClusterPeerMetricStale` alert's threshold).
pub const PEER_METRIC_STALE_SECONDS: f64 = 300.0;

/// How long a pin may sit in `pin_error` or `pin_queued` before the page marks it (the bundled
/// `IpfsClusterPinErrorStuck` and `IpfsClusterPinQueuedStuck` alerts' threshold).
pub const PIN_STUCK_SECONDS: f64 = 3600.0;

fn figure(name: &str, value: Option<String>, class: &'static str) -> Figure {
    Figure {
        name: name.to_owned(),
        value: value.unwrap_or_else(|| "—".to_owned()),
        class,
    }
}

/// A duration in seconds as `1h 2m 3s`.
fn seconds(v: f64) -> String {
    ago((v * 1000.0).round() as i64)
}

/// The samples of a family, or none.
fn samples<'a>(snapshot: &'a Snapshot, name: &str) -> &'a [crate::model::Sample] {
    snapshot.family(name).map_or(&[], |f| f.samples.as_slice())
}

fn label<'a>(sample: &'a crate::model::Sample, name: &str) -> Option<&'a str> {
    sample
        .labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Keeps a group only when one of its figures is there.
fn group(id: &'static str, title: &'static str, figures: Vec<Figure>) -> Option<FigureGroup> {
    figures
        .iter()
        .any(|f| f.value != "—")
        .then_some(FigureGroup { id, title, figures })
}

/// Time until a limit: the gauge when it is there; "not growing" when the repo's growth is
/// known and not positive (the gauge is absent then); else absent.
fn full_in(
    snapshot: &Snapshot,
    limit: &str,
    growth: Option<f64>,
) -> (Option<String>, &'static str) {
    match snapshot.value(
        "ipfs_sentinel_ipfs_repo_full_in_seconds",
        &[("limit", limit)],
    ) {
        Some(v) => (
            Some(seconds(v)),
            if v < 4.0 * 3600.0 {
                "bad"
            } else if v < 86_400.0 {
                "warning"
            } else {
                ""
            },
        ),
        None if growth.is_some_and(|g| g <= 0.0) => (Some("not growing".to_owned()), ""),
        None => (None, ""),
    }
}

/// This node's IPFS signals from its latest collection, a group per thing: repo growth and
/// limits, GC, provide, Kubo, IPFS Cluster. Thresholds for the marks are the bundled operator
/// alerts' (`rules/ipfs-operator.rules.yml`).
pub fn signal_groups(snapshot: &Snapshot) -> Vec<FigureGroup> {
    let v = |name: &str| snapshot.value(name, &[]);
    let percent = |x: f64| chart::format_value(Unit::Percent, x);
    let growth = v("ipfs_sentinel_ipfs_repo_growth_bytes_per_second");
    let (to_max, to_max_class) = full_in(snapshot, "storage_max", growth);
    let (to_fs, to_fs_class) = full_in(snapshot, "filesystem", growth);
    let of_max = v("ipfs_sentinel_ipfs_repo_storage_usage_ratio");
    let fs = v("ipfs_sentinel_ipfs_repo_filesystem_usage_ratio");
    let inodes = v("ipfs_sentinel_ipfs_repo_filesystem_inodes_usage_ratio");
    let inodes_free = v("ipfs_sentinel_ipfs_repo_filesystem_inodes_free");
    let repo = vec![
        figure(
            "growth",
            growth.map(|g| {
                let sign = if g < 0.0 { "−" } else { "+" };
                format!(
                    "{sign}{}",
                    chart::format_value(Unit::BytesPerSecond, g.abs())
                )
            }),
            "",
        ),
        figure("StorageMax reached in", to_max, to_max_class),
        figure("filesystem full in", to_fs, to_fs_class),
        figure(
            "of StorageMax",
            of_max.map(percent),
            if of_max.is_some_and(|r| r > 1.0) {
                "bad"
            } else {
                ""
            },
        ),
        figure(
            "filesystem used",
            fs.map(percent),
            if fs.is_some_and(|r| r > 0.9) {
                "warning"
            } else {
                ""
            },
        ),
        figure(
            "inodes used",
            match (inodes, inodes_free) {
                (Some(r), Some(free)) => Some(format!(
                    "{} ({} free)",
                    percent(r),
                    chart::format_value(Unit::Count, free)
                )),
                (r, _) => r.map(percent),
            },
            if inodes.is_some_and(|r| r > 0.9) {
                "warning"
            } else {
                ""
            },
        ),
    ];

    let runs = |result: &str| snapshot.value("ipfs_sentinel_gc_runs_total", &[("result", result)]);
    let (ok, failed) = (runs("success"), runs("failure"));
    let period = v("ipfs_sentinel_ipfs_gc_period_seconds");
    let gc = vec![
        figure(
            "runs by the sentinel",
            (ok.is_some() || failed.is_some()).then(|| {
                format!(
                    "{} succeeded, {} failed",
                    plain_number(ok.unwrap_or(0.0)),
                    plain_number(failed.unwrap_or(0.0))
                )
            }),
            if failed.is_some_and(|f| f > 0.0) {
                "warning"
            } else {
                ""
            },
        ),
        figure(
            "last run took",
            v("ipfs_sentinel_gc_last_duration_seconds").map(seconds),
            "",
        ),
        figure(
            "freed in all",
            v("ipfs_sentinel_gc_reclaimed_bytes_total")
                .map(|b| chart::format_value(Unit::Bytes, b)),
            "",
        ),
        figure(
            "periodic GC (Datastore.GCPeriod)",
            period.map(|p| {
                if p > 0.0 {
                    format!("every {}", seconds(p))
                } else {
                    "off".to_owned()
                }
            }),
            "",
        ),
    ];

    let labelled = |name: &str, by: &str| -> Option<String> {
        let all = samples(snapshot, name);
        (!all.is_empty()).then(|| {
            all.iter()
                .map(|s| {
                    format!(
                        "{} {}",
                        label(s, by).unwrap_or(""),
                        chart::format_value(Unit::Count, s.value)
                    )
                    .trim()
                    .to_owned()
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let summed = |name: &str| -> Option<f64> {
        let all = samples(snapshot, name);
        (!all.is_empty()).then(|| all.iter().map(|s| s.value).sum())
    };
    let overdue = summed("ipfs_sentinel_ipfs_provide_overdue");
    let worker =
        |state: &str| snapshot.value("ipfs_sentinel_ipfs_provide_workers", &[("state", state)]);
    let workers = match (worker("active"), worker("max")) {
        (Some(active), Some(max)) => Some(format!(
            "{} of {} busy",
            chart::format_value(Unit::Count, active),
            chart::format_value(Unit::Count, max)
        )),
        _ => labelled("ipfs_sentinel_ipfs_provide_workers", "state"),
    };
    let provide = vec![
        figure(
            "queues",
            labelled("ipfs_sentinel_ipfs_provide_queue_size", "queue"),
            "",
        ),
        figure(
            "overdue regions",
            overdue.map(|o| chart::format_value(Unit::Count, o)),
            if overdue.is_some_and(|o| o > 0.0) {
                "warning"
            } else {
                ""
            },
        ),
        figure(
            "ongoing",
            summed("ipfs_sentinel_ipfs_provide_ongoing")
                .map(|o| chart::format_value(Unit::Count, o)),
            "",
        ),
        figure("workers", workers, ""),
        figure(
            "last reprovide took",
            v("ipfs_sentinel_ipfs_reprovide_last_duration_seconds").map(seconds),
            if v("ipfs_sentinel_ipfs_reprovide_last_duration_seconds")
                .is_some_and(|d| d > 22.0 * 3600.0)
            {
                "warning"
            } else {
                ""
            },
        ),
    ];

    let kubo = vec![figure(
        "version",
        samples(snapshot, "ipfs_sentinel_ipfs_version_info")
            .first()
            .and_then(|s| label(s, "version"))
            .map(str::to_owned),
        "",
    )];

    let stuck = |status: &str| {
        let age = snapshot.value(
            "ipfs_sentinel_cluster_oldest_pin_age_seconds",
            &[("status", status)],
        );
        figure(
            &format!("oldest pin in {status}"),
            age.map(|a| {
                if a > 0.0 {
                    format!("{} ago", seconds(a))
                } else {
                    "none".to_owned()
                }
            }),
            if age.is_some_and(|a| a > PIN_STUCK_SECONDS) {
                "bad"
            } else {
                ""
            },
        )
    };
    let mut cluster = vec![stuck("pin_error"), stuck("pin_queued")];
    // Each peer's oldest metric: the stale ones by name, the others counted.
    let mut peers: BTreeMap<String, (f64, String)> = BTreeMap::new();
    for s in samples(snapshot, "ipfs_sentinel_cluster_peer_metric_age_seconds") {
        let peer = label(s, "peer_name")
            .filter(|n| !n.is_empty())
            .or_else(|| label(s, "peer"))
            .unwrap_or("")
            .to_owned();
        let metric = label(s, "metric").unwrap_or("").to_owned();
        let entry = peers.entry(peer).or_insert((s.value, metric.clone()));
        if s.value > entry.0 {
            *entry = (s.value, metric);
        }
    }
    let (stale, fresh): (Vec<_>, Vec<_>) = peers
        .iter()
        .partition(|(_, (age, _))| *age > PEER_METRIC_STALE_SECONDS);
    for (peer, (age, metric)) in &stale {
        cluster.push(figure(
            &format!("peer {peer}"),
            Some(format!("last {metric} {} ago", seconds(*age))),
            "bad",
        ));
    }
    cluster.push(figure(
        "peers' last metrics",
        (!peers.is_empty()).then(|| {
            match fresh.iter().map(|(_, (age, _))| *age).reduce(f64::max) {
                Some(oldest) => format!(
                    "{} fresh (oldest {} ago){}",
                    fresh.len(),
                    seconds(oldest),
                    if stale.is_empty() {
                        String::new()
                    } else {
                        format!(", {} stale", stale.len())
                    }
                ),
                None => format!("all {} stale", stale.len()),
            }
        }),
        "",
    ));

    [
        group("repo", "Repo", repo),
        group("gc", "Garbage collection", gc),
        group("provide", "Provide", provide),
        group("kubo", "Kubo", kubo),
        group("ipfs-cluster", "IPFS Cluster", cluster),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A chart and its legend.
#[derive(Debug, Clone, Serialize)]
pub struct ChartView {
    /// The heading.
    pub title: String,
    /// The `<svg>` element; its labels are escaped by [`chart::svg`].
    pub svg: String,
    /// One entry per series.
    pub legend: Vec<LegendItem>,
}

/// One series in a chart's legend.
#[derive(Debug, Clone, Serialize)]
pub struct LegendItem {
    /// Its label.
    pub label: String,
    /// Its colour class, `s0` to `s7`.
    pub class: String,
    /// Its newest value.
    pub last: String,
}

/// One pending or firing alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRow {
    /// `alertname`.
    pub alertname: String,
    /// The `severity` label (empty when none).
    pub severity: String,
    /// pending or firing.
    pub state: String,
    /// The expression's value at the last evaluation.
    pub value: String,
    /// When the condition started holding, RFC 3339.
    pub since: String,
    /// How long ago that was, e.g. `5m 3s`.
    pub since_ago: String,
    /// The `summary` annotation, or `description`.
    pub summary: String,
    /// The other labels, `name="value"` joined by commas.
    pub labels: String,
}

/// One recovery action run.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRow {
    /// When it ended, RFC 3339.
    pub at: String,
    /// The alert that asked for it.
    pub alertname: String,
    /// The action's name.
    pub action: String,
    /// The node it ran for.
    pub node_id: String,
    /// firing, resolved, escalation or remote.
    pub trigger: String,
    /// Attempt number.
    pub attempt: u32,
    /// success, failure, timeout, ...
    pub result: String,
    /// `ok`, `bad` or `info`, for the CSS class.
    pub result_class: &'static str,
    /// How long it took.
    pub duration: String,
    /// The start of its output.
    pub output: String,
}

/// One collector's health.
#[derive(Debug, Clone, Serialize)]
pub struct CollectorRow {
    /// The collector's name.
    pub name: String,
    /// Whether its last run succeeded.
    pub ok: bool,
    /// How long its last run took.
    pub duration: String,
}

/// What a page is built from.
pub struct Inputs<'a> {
    /// The latest collection.
    pub snapshot: &'a Snapshot,
    /// This node.
    pub identity: &'a Identity,
    /// The charts, from [`charts`].
    pub charts: Vec<Chart>,
    /// The alerts, from [`alert_rows`].
    pub alerts: Vec<AlertRow>,
    /// Recent runs, newest first.
    pub actions: Vec<ActionRun>,
    /// The guardrails' state, from the dispatcher.
    pub guard: Option<std::sync::Arc<crate::actions::dispatcher::GuardView>>,
    /// Seconds between refreshes, `None` for a page written once.
    pub refresh_seconds: Option<f64>,
    /// Now, ms since the Unix epoch.
    pub now_ms: i64,
}

/// A duration as `1h 2m 3s`, rounded to seconds.
fn ago(ms: i64) -> String {
    crate::clock::humane_duration(ms)
}

fn or_dash(unit: Unit, v: Option<f64>) -> String {
    v.map(|v| chart::format_value(unit, v))
        .unwrap_or_else(|| "—".to_owned())
}

/// A value as an alert shows it: up to four decimals, no trailing zeros.
fn plain_number(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "—".into()
        } else {
            v.to_string()
        };
    }
    let text = format!("{v:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A node's figures: from the `ipfs_sentinel_cluster_node_*{node_id}` families, else (for
/// this node) from its own collection.
fn node_row(
    snapshot: &Snapshot,
    own: &status::Headline,
    node: &status::ClusterNode,
    me: bool,
    now_ms: i64,
) -> NodeRow {
    let get = |metric: &str, own_value: Option<f64>, extra: &[(&str, &str)]| {
        let mut labels = vec![("node_id", node.node_id.as_str())];
        labels.extend_from_slice(extra);
        snapshot
            .value(&format!("ipfs_sentinel_cluster_node_{metric}"), &labels)
            .or(if me { own_value } else { None })
    };
    let size = get("repo_size_bytes", own.repo_size_bytes, &[]);
    let max = get("repo_storage_max_bytes", own.repo_storage_max_bytes, &[]);
    let repo = match (size, max) {
        (Some(s), Some(m)) if m > 0.0 => format!(
            "{} of {} ({})",
            chart::format_value(Unit::Bytes, s),
            chart::format_value(Unit::Bytes, m),
            chart::format_value(Unit::Percent, s / m)
        ),
        (s, _) => or_dash(Unit::Bytes, s),
    };
    let bw_in = get(
        "bandwidth_rate_bytes",
        own.bandwidth_in_bytes_per_second,
        &[("direction", "in")],
    );
    let bw_out = get(
        "bandwidth_rate_bytes",
        own.bandwidth_out_bytes_per_second,
        &[("direction", "out")],
    );
    let bandwidth = if bw_in.is_none() && bw_out.is_none() {
        "—".to_owned()
    } else {
        format!(
            "in {} / out {}",
            or_dash(Unit::BytesPerSecond, bw_in),
            or_dash(Unit::BytesPerSecond, bw_out)
        )
    };
    let disk = or_dash(
        Unit::Percent,
        get("disk_usage_ratio", own.disk_usage_ratio, &[]),
    );
    let disk = match (&own.disk_mountpoint, me) {
        (Some(mount), true) if disk != "—" => format!("{disk} ({mount})"),
        _ => disk,
    };
    NodeRow {
        node_id: node.node_id.clone(),
        me,
        role: node.role.clone(),
        status: node.status.as_str().to_owned(),
        status_class: node.status.as_str().to_lowercase(),
        last_seen: match node.last_seen_timestamp_seconds {
            Some(t) => format!("{} ago", ago(now_ms - (t * 1000.0) as i64)),
            None => "never".to_owned(),
        },
        cpu: or_dash(
            Unit::Percent,
            get("cpu_usage_ratio", own.cpu_usage_ratio, &[]),
        ),
        memory: or_dash(
            Unit::Percent,
            get("memory_usage_ratio", own.memory_usage_ratio, &[]),
        ),
        disk,
        repo,
        pins: or_dash(Unit::Count, get("pins", own.pins, &[])),
        peers: or_dash(Unit::Count, get("peers", own.peers, &[])),
        bandwidth,
    }
}

/// The cluster table: this node first, then the others as its cluster view lists them.
pub fn node_rows(snapshot: &Snapshot, me: &Identity, now_ms: i64) -> Vec<NodeRow> {
    let own = status::headline(snapshot);
    let mut view = status::cluster_view(snapshot);
    if !view.iter().any(|n| n.node_id == me.node_id) {
        view.insert(
            0,
            status::ClusterNode {
                node_id: me.node_id.clone(),
                role: me.role.as_str().to_owned(),
                status: status::local_health(snapshot),
                last_seen_timestamp_seconds: Some(system_ms(snapshot.taken_at) as f64 / 1000.0),
            },
        );
    }
    view.sort_by_key(|n| n.node_id != me.node_id);
    view.iter()
        .map(|n| node_row(snapshot, &own, n, n.node_id == me.node_id, now_ms))
        .collect()
}

/// A chart and where its series come from: the first source with any series wins, so a
/// sentinel that does not export its cluster view still charts itself.
struct ChartSpec {
    title: &'static str,
    unit: Unit,
    /// (metric, the label that names each series; empty: this node's id).
    sources: &'static [(&'static str, &'static str)],
}

const CHARTS: [ChartSpec; 6] = [
    ChartSpec {
        title: "CPU busy",
        unit: Unit::Percent,
        sources: &[
            ("ipfs_sentinel_cluster_node_cpu_usage_ratio", "node_id"),
            ("ipfs_sentinel_node_cpu_usage_ratio", ""),
        ],
    },
    ChartSpec {
        title: "Memory in use",
        unit: Unit::Percent,
        sources: &[
            ("ipfs_sentinel_cluster_node_memory_usage_ratio", "node_id"),
            ("ipfs_sentinel_node_memory_usage_ratio", ""),
        ],
    },
    ChartSpec {
        title: "Fullest disk",
        unit: Unit::Percent,
        sources: &[
            ("ipfs_sentinel_cluster_node_disk_usage_ratio", "node_id"),
            ("ipfs_sentinel_node_disk_usage_ratio", "mountpoint"),
        ],
    },
    ChartSpec {
        title: "IPFS repo size",
        unit: Unit::Bytes,
        sources: &[
            ("ipfs_sentinel_cluster_node_repo_size_bytes", "node_id"),
            ("ipfs_sentinel_ipfs_repo_size_bytes", ""),
        ],
    },
    ChartSpec {
        title: "Swarm peers",
        unit: Unit::Count,
        sources: &[
            ("ipfs_sentinel_cluster_node_peers", "node_id"),
            ("ipfs_sentinel_ipfs_peers", ""),
        ],
    },
    ChartSpec {
        title: "IPFS bandwidth",
        unit: Unit::BytesPerSecond,
        sources: &[
            ("ipfs_sentinel_cluster_node_bandwidth_rate_bytes", "node_id"),
            ("ipfs_sentinel_ipfs_bandwidth_rate_bytes", ""),
        ],
    },
];

/// The series label of `key`: the value of `label`, plus its direction for bandwidth.
fn series_label(key: &SeriesKey, label: &str, me: &Identity) -> String {
    let name = match key.label(label) {
        Some(v) if !label.is_empty() => v.to_owned(),
        _ => me.node_id.clone(),
    };
    match key.label("direction") {
        Some(d) => format!("{name} {d}"),
        None => name,
    }
}

/// The time window of the charts: the last [`CHART_WINDOW_MS`], or since the oldest sample
/// when the history is younger; and the step that keeps each series under [`CHART_POINTS`].
pub fn chart_window(first_tick: Option<i64>, now_ms: i64) -> (i64, i64, i64) {
    let start = first_tick
        .unwrap_or(now_ms)
        .max(now_ms - CHART_WINDOW_MS)
        .min(now_ms);
    let step = ((now_ms - start) / CHART_POINTS + 999) / 1000 * 1000;
    let step = step.max(1000);
    (start, now_ms, step)
}

/// The charts of the history up to `now_ms`, each series averaged per step.
pub fn charts(history: &History, me: &Identity, now_ms: i64) -> Result<Vec<Chart>, DecodeError> {
    let (start, end, step) = chart_window(history.first_tick(), now_ms);
    let mut out = Vec::new();
    for spec in &CHARTS {
        let mut lines = Vec::new();
        for (metric, label) in spec.sources {
            let mut keys = history.series_named(metric, |_| true);
            keys.sort();
            for key in keys {
                let points = history.points(&key, start, end)?;
                if points.is_empty() {
                    continue;
                }
                lines.push(Line {
                    label: series_label(&key, label, me),
                    points: aggregate(&points, start, end, step, Function::Avg),
                });
            }
            if !lines.is_empty() {
                break;
            }
        }
        out.push(Chart {
            title: spec.title.to_owned(),
            unit: spec.unit,
            start_ms: start,
            end_ms: end,
            lines,
        });
    }
    Ok(out)
}

fn chart_view(c: &Chart) -> ChartView {
    ChartView {
        title: c.title.clone(),
        svg: chart::svg(c),
        legend: c
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| LegendItem {
                label: l.label.clone(),
                class: format!("s{}", i % chart::PALETTE),
                last: l
                    .points
                    .last()
                    .map(|p| chart::format_value(c.unit, p.1))
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 0,
        "warning" => 1,
        "info" => 2,
        _ => 3,
    }
}

/// The engine's pending and firing alerts: firing first, then the most severe, then the
/// oldest.
pub fn alert_rows(engine: &RuleEngine, now_ms: i64) -> Vec<AlertRow> {
    let mut alerts: Vec<_> = engine.active_alerts().into_iter().map(|(_, a)| a).collect();
    alerts.sort_by_key(|a| {
        (
            a.state != AlertState::Firing,
            severity_rank(a.labels.get("severity").unwrap_or("")),
            a.active_at_ms,
        )
    });
    alerts
        .into_iter()
        .map(|a| {
            let get = |k: &str| a.labels.get(k).unwrap_or_default().to_owned();
            let labels: Vec<String> = a
                .labels
                .iter()
                .filter(|(k, _)| !matches!(*k, "alertname" | "severity"))
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            AlertRow {
                alertname: get("alertname"),
                severity: get("severity"),
                state: if a.state == AlertState::Firing {
                    "firing"
                } else {
                    "pending"
                }
                .to_owned(),
                value: plain_number(a.value),
                since: rfc3339(a.active_at_ms),
                since_ago: ago(now_ms - a.active_at_ms),
                summary: a
                    .annotations
                    .get("summary")
                    .or_else(|| a.annotations.get("description"))
                    .cloned()
                    .unwrap_or_default(),
                labels: labels.join(", "),
            }
        })
        .collect()
}

fn action_row(run: &ActionRun) -> ActionRow {
    let result = run.result.as_str();
    let mut output: String = run.output.chars().take(OUTPUT_SHOWN).collect();
    if output.len() < run.output.len() {
        output.push('…');
    }
    ActionRow {
        at: rfc3339(run.at_ms),
        alertname: run.alertname.clone(),
        action: run.action.clone(),
        node_id: run.node_id.clone(),
        trigger: run.trigger.clone(),
        attempt: run.attempt,
        result: result.to_owned(),
        result_class: match result {
            "success" | "resolved" | "approved" => "ok",
            "failure" | "timeout" | "dead_letter" | "still_firing" | "skipped_circuit_open" => {
                "bad"
            }
            _ => "info",
        },
        duration: format!(
            "{}s",
            plain_number((run.duration_seconds * 100.0).round() / 100.0)
        ),
        output,
    }
}

/// Each collector's last result and duration.
pub fn collector_rows(snapshot: &Snapshot) -> Vec<CollectorRow> {
    status::collectors(snapshot)
        .into_iter()
        .map(|(name, ok)| CollectorRow {
            duration: snapshot
                .value(
                    "ipfs_sentinel_collector_duration_seconds",
                    &[("collector", &name)],
                )
                .map(|d| format!("{}s", plain_number((d * 1000.0).round() / 1000.0)))
                .unwrap_or_else(|| "—".into()),
            name,
            ok,
        })
        .collect()
}

/// The page's model.
pub fn page_model(inputs: Inputs<'_>) -> Page {
    let firing = inputs.alerts.iter().filter(|a| a.state == "firing").count();
    let (start, end) = inputs
        .charts
        .first()
        .map_or((inputs.now_ms, inputs.now_ms), |c| (c.start_ms, c.end_ms));
    let nodes = node_rows(inputs.snapshot, inputs.identity, inputs.now_ms);
    Page {
        version: env!("CARGO_PKG_VERSION"),
        node_id: inputs.identity.node_id.clone(),
        role: inputs.identity.role.as_str().to_owned(),
        generated: rfc3339(inputs.now_ms),
        refresh_seconds: inputs.refresh_seconds.map(plain_number),
        refresh_text: inputs.refresh_seconds.map(|s| ago((s * 1000.0) as i64)),
        node_count: nodes.len(),
        nodes,
        signals: signal_groups(inputs.snapshot),
        charts: inputs.charts.iter().map(chart_view).collect(),
        chart_span: format!("last {}, UTC", ago(end - start)),
        pending: inputs.alerts.len() - firing,
        firing,
        alerts: inputs.alerts,
        actions: inputs.actions.iter().map(action_row).collect(),
        guard: inputs.guard.as_deref().map(super::actions::guard_panel),
        collectors: collector_rows(inputs.snapshot),
        remote_write: crate::remote_write::ReceiverStatus::from_families(&inputs.snapshot.families)
            .into_iter()
            .map(|r| RemoteWriteRow {
                lag: ago((r.lag_seconds * 1000.0) as i64),
                sent: plain_number(r.samples_sent),
                dropped: plain_number(r.samples_dropped),
                retries: plain_number(r.retries),
                behind: r.lag_seconds > 300.0,
                name: r.name,
            })
            .collect(),
    }
}

/// The page as HTML.
pub fn render(page: &Page) -> Result<String, DashboardError> {
    Ok(registry()?.render("dashboard", page)?)
}

/// A snapshot of the newest tick in the history, for a page built from a data dir.
pub fn last_tick_snapshot(history: &History) -> Result<Snapshot, DecodeError> {
    let Some(last) = history.last_tick() else {
        return Ok(Snapshot::new(SystemTime::UNIX_EPOCH, Vec::new()));
    };
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for key in history.series(|_| true) {
        if let Some((_, v)) = history.points(&key, last, last)?.first() {
            let labels: Vec<(&str, &str)> = key
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            families
                .entry(key.name.clone())
                .or_insert_with(|| Family::gauge(key.name.clone(), ""))
                .push(&labels, *v);
        }
    }
    let taken_at = SystemTime::UNIX_EPOCH + Duration::from_millis(last.max(0) as u64);
    Ok(Snapshot::new(taken_at, families.into_values().collect()))
}

/// `GET /` and `GET /dashboard`; `?refresh=0` leaves out the refresh (for a page kept).
async fn page(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(settings) = &state.dashboard else {
        return (StatusCode::NOT_FOUND, "The dashboard is disabled.\n").into_response();
    };
    let refresh =
        (q.get("refresh").map(String::as_str) != Some("0")).then_some(settings.refresh_seconds);
    let now_ms = system_ms(SystemTime::now());
    let current = state.metrics.current();
    let charts = match charts(&read(&state.history), &state.identity, now_ms) {
        Ok(c) => c,
        Err(e) => return failed(e.into()),
    };
    let alerts = alert_rows(&crate::rules::reload::lock(&state.engine), now_ms);
    let model = page_model(Inputs {
        snapshot: &current.snapshot,
        identity: &state.identity,
        charts,
        alerts,
        actions: state.audit.recent(RECENT_ACTIONS),
        guard: state.actions.as_ref().map(|a| a.guard()),
        refresh_seconds: refresh,
        now_ms,
    });
    match render(&model) {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => failed(e),
    }
}

fn failed(e: DashboardError) -> Response {
    tracing::warn!(error = %e, "dashboard not rendered");
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::audit::RunResult;
    use crate::config::Role;

    const EVIL: &str = "<script>alert(1)</script>";

    fn me() -> Identity {
        Identity {
            node_id: "node-a".into(),
            role: Role::Master,
        }
    }

    fn snapshot() -> Snapshot {
        let states = Family::gauge("ipfs_sentinel_cluster_node_status", "")
            .with(
                &[
                    ("node_id", "node-a"),
                    ("role", "master"),
                    ("status", "Online"),
                ],
                1.0,
            )
            .with(
                &[("node_id", EVIL), ("role", "worker"), ("status", "Offline")],
                1.0,
            );
        Snapshot::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000),
            vec![
                states,
                Family::gauge("ipfs_sentinel_cluster_node_last_seen_timestamp_seconds", "")
                    .with(&[("node_id", "node-a")], 1_000.0)
                    .with(&[("node_id", EVIL)], 880.0),
                Family::gauge("ipfs_sentinel_cluster_node_repo_size_bytes", "")
                    .with(&[("node_id", "node-a")], 5.0 * 1024.0 * 1024.0 * 1024.0),
                Family::gauge("ipfs_sentinel_cluster_node_repo_storage_max_bytes", "")
                    .with(&[("node_id", "node-a")], 10.0 * 1024.0 * 1024.0 * 1024.0),
                Family::gauge("ipfs_sentinel_cluster_node_cpu_usage_ratio", "")
                    .with(&[("node_id", EVIL)], 0.25),
                Family::single_gauge("ipfs_sentinel_node_cpu_usage_ratio", "", 0.5),
                Family::gauge("ipfs_sentinel_ipfs_bandwidth_rate_bytes", "")
                    .with(&[("direction", "in")], 2048.0)
                    .with(&[("direction", "out")], 1024.0),
                Family::gauge("ipfs_sentinel_collector_success", "")
                    .with(&[("collector", "node")], 1.0)
                    .with(&[("collector", "ipfs")], 0.0),
                Family::gauge("ipfs_sentinel_collector_duration_seconds", "")
                    .with(&[("collector", "node")], 0.0123),
            ],
        )
    }

    fn run() -> ActionRun {
        ActionRun {
            at_ms: 990_000,
            job: "j1".into(),
            alertname: "DiskFull".into(),
            severity: "warning".into(),
            action: "run_gc".into(),
            node_id: EVIL.into(),
            trigger: "firing".into(),
            attempt: 1,
            result: RunResult::Failure,
            output: "<script>alert(2)</script>".into(),
            duration_seconds: 0.456,
            dry_run: false,
        }
    }

    fn alert() -> AlertRow {
        AlertRow {
            alertname: "NodeDown".into(),
            severity: "critical".into(),
            state: "firing".into(),
            value: "1".into(),
            since: rfc3339(900_000),
            since_ago: ago(100_000),
            summary: "<img src=x onerror=alert(3)>".into(),
            labels: format!("node_id=\"{EVIL}\""),
        }
    }

    fn html(refresh: Option<f64>) -> String {
        let model = page_model(Inputs {
            snapshot: &snapshot(),
            identity: &me(),
            charts: vec![Chart {
                title: "CPU busy".into(),
                unit: Unit::Percent,
                start_ms: 0,
                end_ms: 1_000_000,
                lines: vec![Line {
                    label: EVIL.into(),
                    points: vec![(0, 0.1), (500_000, 0.2)],
                }],
            }],
            alerts: vec![alert()],
            actions: vec![run()],
            guard: None,
            refresh_seconds: refresh,
            now_ms: 1_000_000,
        });
        render(&model).unwrap()
    }

    /// A node with every new figure: the repo growing, GC run, provide stats, IPFS Cluster with
    /// a stuck pin and a silent peer.
    fn signals_snapshot() -> Snapshot {
        Snapshot::new(
            SystemTime::UNIX_EPOCH,
            vec![
                Family::single_gauge(
                    "ipfs_sentinel_ipfs_repo_growth_bytes_per_second",
                    "",
                    1.5 * 1024.0 * 1024.0,
                ),
                Family::gauge("ipfs_sentinel_ipfs_repo_full_in_seconds", "")
                    .with(&[("limit", "storage_max")], 3.0 * 3600.0 + 20.0 * 60.0)
                    .with(&[("limit", "filesystem")], 3.0 * 86_400.0),
                Family::single_gauge("ipfs_sentinel_ipfs_repo_storage_usage_ratio", "", 1.05),
                Family::single_gauge("ipfs_sentinel_ipfs_repo_filesystem_usage_ratio", "", 0.5),
                Family::single_gauge(
                    "ipfs_sentinel_ipfs_repo_filesystem_inodes_usage_ratio",
                    "",
                    0.935,
                ),
                Family::single_gauge(
                    "ipfs_sentinel_ipfs_repo_filesystem_inodes_free",
                    "",
                    1_200_000.0,
                ),
                Family::gauge("ipfs_sentinel_gc_runs_total", "")
                    .with(&[("result", "success")], 4.0)
                    .with(&[("result", "failure")], 1.0),
                Family::single_gauge("ipfs_sentinel_gc_last_duration_seconds", "", 95.0),
                Family::single_gauge(
                    "ipfs_sentinel_gc_reclaimed_bytes_total",
                    "",
                    3.0 * 1024.0 * 1024.0 * 1024.0,
                ),
                Family::single_gauge("ipfs_sentinel_ipfs_gc_period_seconds", "", 3600.0),
                Family::gauge("ipfs_sentinel_ipfs_provide_queue_size", "")
                    .with(&[("queue", "key_provides")], 1500.0)
                    .with(&[("queue", "region_provides")], 12.0),
                Family::single_gauge("ipfs_sentinel_ipfs_provide_overdue", "", 3.0),
                Family::single_gauge("ipfs_sentinel_ipfs_provide_ongoing", "", 7.0),
                Family::gauge("ipfs_sentinel_ipfs_provide_workers", "")
                    .with(&[("state", "active")], 16.0)
                    .with(&[("state", "max")], 64.0),
                Family::single_gauge(
                    "ipfs_sentinel_ipfs_reprovide_last_duration_seconds",
                    "",
                    2.0 * 3600.0,
                ),
                Family::gauge("ipfs_sentinel_ipfs_version_info", "")
                    .with(&[("version", "0.39.0"), ("agent", "kubo/0.39.0/")], 1.0),
                Family::gauge("ipfs_sentinel_cluster_oldest_pin_age_seconds", "")
                    .with(&[("status", "pin_error")], 7260.0)
                    .with(&[("status", "pin_queued")], 0.0),
                Family::gauge("ipfs_sentinel_cluster_peer_metric_age_seconds", "")
                    .with(
                        &[
                            ("peer", "12D3KooWA"),
                            ("peer_name", "node-a"),
                            ("metric", "ping"),
                        ],
                        5.0,
                    )
                    .with(
                        &[
                            ("peer", "12D3KooWA"),
                            ("peer_name", "node-a"),
                            ("metric", "freespace"),
                        ],
                        20.0,
                    )
                    .with(
                        &[
                            ("peer", "12D3KooWB"),
                            ("peer_name", "node-b"),
                            ("metric", "ping"),
                        ],
                        600.0,
                    )
                    .with(&[("peer", "12D3KooWC"), ("metric", "ping")], 8.0),
            ],
        )
    }

    /// A figure as (name, value, class).
    type Words<'a> = (&'a str, &'a str, &'a str);

    /// The groups as (id, their figures' words).
    fn words(groups: &[FigureGroup]) -> Vec<(&str, Vec<Words<'_>>)> {
        groups
            .iter()
            .map(|g| {
                (
                    g.id,
                    g.figures
                        .iter()
                        .map(|f| (f.name.as_str(), f.value.as_str(), f.class))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn the_signals_read_as_words_and_mark_what_needs_attention() {
        let groups = signal_groups(&signals_snapshot());
        assert_eq!(
            words(&groups),
            [
                (
                    "repo",
                    vec![
                        ("growth", "+1.5 MiB/s", ""),
                        ("StorageMax reached in", "3h 20m", "bad"),
                        ("filesystem full in", "3d", ""),
                        ("of StorageMax", "105%", "bad"),
                        ("filesystem used", "50%", ""),
                        ("inodes used", "93.5% (1.2M free)", "warning"),
                    ]
                ),
                (
                    "gc",
                    vec![
                        ("runs by the sentinel", "4 succeeded, 1 failed", "warning"),
                        ("last run took", "1m 35s", ""),
                        ("freed in all", "3 GiB", ""),
                        ("periodic GC (Datastore.GCPeriod)", "every 1h", ""),
                    ]
                ),
                (
                    "provide",
                    vec![
                        ("queues", "key_provides 1.5k, region_provides 12", ""),
                        ("overdue regions", "3", "warning"),
                        ("ongoing", "7", ""),
                        ("workers", "16 of 64 busy", ""),
                        ("last reprovide took", "2h", ""),
                    ]
                ),
                ("kubo", vec![("version", "0.39.0", "")]),
                (
                    "ipfs-cluster",
                    vec![
                        ("oldest pin in pin_error", "2h 1m ago", "bad"),
                        ("oldest pin in pin_queued", "none", ""),
                        ("peer node-b", "last ping 10m ago", "bad"),
                        (
                            "peers' last metrics",
                            "2 fresh (oldest 20s ago), 1 stale",
                            ""
                        ),
                    ]
                ),
            ]
        );
    }

    #[test]
    fn absent_signals_show_nothing_or_a_dash_never_zero() {
        assert!(
            signal_groups(&snapshot()).is_empty(),
            "a node without the figures has no signals section"
        );
        let page = html(None);
        assert!(!page.contains("id=\"signals\""), "no empty section");

        // The repo not growing: its time to full is absent, and says so; a figure the node does
        // not give (inodes on a filesystem that has none) is a dash; no GC run, no provide
        // figures: those groups are left out.
        let partial = Snapshot::new(
            SystemTime::UNIX_EPOCH,
            vec![
                Family::single_gauge("ipfs_sentinel_ipfs_repo_growth_bytes_per_second", "", 0.0),
                Family::single_gauge("ipfs_sentinel_ipfs_repo_storage_usage_ratio", "", 0.4),
                Family::single_gauge("ipfs_sentinel_ipfs_gc_period_seconds", "", 0.0),
            ],
        );
        assert_eq!(
            words(&signal_groups(&partial)),
            [
                (
                    "repo",
                    vec![
                        ("growth", "+0 B/s", ""),
                        ("StorageMax reached in", "not growing", ""),
                        ("filesystem full in", "not growing", ""),
                        ("of StorageMax", "40%", ""),
                        ("filesystem used", "—", ""),
                        ("inodes used", "—", ""),
                    ]
                ),
                (
                    "gc",
                    vec![
                        ("runs by the sentinel", "—", ""),
                        ("last run took", "—", ""),
                        ("freed in all", "—", ""),
                        ("periodic GC (Datastore.GCPeriod)", "off", ""),
                    ]
                ),
            ]
        );
        // Growth unknown: the time to full is a dash, not "not growing".
        let unknown = Snapshot::new(
            SystemTime::UNIX_EPOCH,
            vec![Family::single_gauge(
                "ipfs_sentinel_ipfs_repo_storage_usage_ratio",
                "",
                0.4,
            )],
        );
        let repo = &signal_groups(&unknown)[0];
        assert_eq!(repo.figures[1].value, "—");
    }

    #[test]
    fn the_signals_section_renders_escaped() {
        let mut evil = signals_snapshot();
        evil.families
            .iter_mut()
            .find(|f| f.name == "ipfs_sentinel_cluster_peer_metric_age_seconds")
            .unwrap()
            .push(&[("peer", EVIL), ("metric", "ping")], 900.0);
        let model = page_model(Inputs {
            snapshot: &evil,
            identity: &me(),
            charts: Vec::new(),
            alerts: Vec::new(),
            actions: Vec::new(),
            guard: None,
            refresh_seconds: None,
            now_ms: 0,
        });
        let page = render(&model).unwrap();
        for part in [
            "id=\"signals\"",
            "id=\"signals-repo\"",
            "<dt>StorageMax reached in</dt><dd class=\"bad\">3h 20m</dd>",
            "<dd class=\"\">0.39.0</dd>",
            "peer &lt;script&gt;alert(1)&lt;/script&gt;",
        ] {
            assert!(page.contains(part), "{part} missing:\n{page}");
        }
        assert!(!page.contains("<script>alert"), "unescaped script");
    }

    #[test]
    fn the_page_shows_every_section_and_escapes_what_comes_from_outside() {
        let page = html(Some(30.0));
        for part in [
            "id=\"nodes\"",
            "id=\"charts\"",
            "id=\"alerts\"",
            "id=\"actions\"",
            "id=\"collectors\"",
            "NodeDown",
            "1 firing, 0 pending",
            "run_gc",
            "<svg class=\"chart\"",
            "http-equiv=\"refresh\" content=\"30\"",
            "refreshes every 30s",
            "prefers-color-scheme: dark",
        ] {
            assert!(page.contains(part), "{part} missing from the page");
        }
        assert!(!page.contains("<script>alert"), "unescaped script");
        assert!(!page.contains("<img"), "unescaped markup");
        // Every occurrence is escaped text: the node table, the chart and its legend, the
        // alert's labels, the action's node and output.
        for (n, at_least) in [(1, 5), (2, 1)] {
            let raw = format!("alert({n})");
            let escaped = format!("&lt;script&gt;alert({n})");
            assert_eq!(page.matches(&raw).count(), page.matches(&escaped).count());
            assert!(page.matches(&escaped).count() >= at_least, "{page}");
        }
        // The only script is the page's own refresh.
        assert_eq!(page.matches("<script").count(), 1);
    }

    #[test]
    fn a_page_written_once_has_no_refresh_and_no_script() {
        let page = html(None);
        assert!(!page.contains("refresh"), "{page}");
        assert!(!page.contains("<script"));
    }

    #[test]
    fn the_cluster_table_puts_this_node_first_with_its_own_figures() {
        let rows = node_rows(&snapshot(), &me(), 1_000_000);
        assert_eq!(rows.len(), 2);
        let (a, b) = (&rows[0], &rows[1]);
        assert!(a.me && !b.me);
        assert_eq!(a.repo, "5 GiB of 10 GiB (50%)");
        // This node's CPU comes from its own collection when the cluster view has none.
        assert_eq!(a.cpu, "50%");
        assert_eq!(a.bandwidth, "in 2 KiB/s / out 1 KiB/s");
        assert_eq!(a.last_seen, "0s ago");
        assert_eq!((b.node_id.as_str(), b.status.as_str()), (EVIL, "Offline"));
        assert_eq!((b.cpu.as_str(), b.memory.as_str()), ("25%", "—"));
        assert_eq!(b.last_seen, "2m ago");
        assert_eq!(b.bandwidth, "—");
    }

    #[test]
    fn without_a_cluster_view_this_node_still_has_a_row() {
        let bare = Snapshot::new(SystemTime::UNIX_EPOCH, vec![]);
        let rows = node_rows(&bare, &me(), 0);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].status.as_str(), rows[0].cpu.as_str()),
            ("Degraded", "—")
        );
        let collectors = collector_rows(&snapshot());
        assert_eq!(collectors.len(), 2);
        assert_eq!(collectors[1].duration, "0.012s");
    }

    #[test]
    fn charts_span_the_history_up_to_six_hours_in_at_most_360_steps() {
        assert_eq!(chart_window(Some(40_000), 100_000), (40_000, 100_000, 1000));
        assert_eq!(chart_window(None, 100_000), (100_000, 100_000, 1000));
        let day = 24 * 3_600_000;
        assert_eq!(
            chart_window(Some(0), day),
            (day - CHART_WINDOW_MS, day, 60_000)
        );
    }

    #[test]
    fn charts_read_the_cluster_series_or_fall_back_to_this_node() {
        let mut history = History::new(i64::MAX, 1000);
        let key = |name: &str, labels: &[(&str, &str)]| SeriesKey {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        };
        let cpu_b = history.intern(key(
            "ipfs_sentinel_cluster_node_cpu_usage_ratio",
            &[("node_id", "b")],
        ));
        let cpu_a = history.intern(key(
            "ipfs_sentinel_cluster_node_cpu_usage_ratio",
            &[("node_id", "a")],
        ));
        let peers = history.intern(key("ipfs_sentinel_ipfs_peers", &[]));
        for i in 0..10 {
            history.append(
                i * 1000,
                &[
                    (cpu_a.clone(), 0.1 * i as f64),
                    (cpu_b.clone(), 0.5),
                    (peers.clone(), i as f64),
                ],
            );
        }
        let charts = charts(&history, &me(), 9_000).unwrap();
        assert_eq!(charts.len(), CHARTS.len());
        let labels: Vec<&str> = charts[0].lines.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["a", "b"]);
        assert_eq!(charts[0].lines[0].points.len(), 10);
        assert_eq!(charts[0].lines[0].points[3], (3000, 0.30000000000000004));
        let peers = &charts[4];
        assert_eq!(peers.lines.len(), 1);
        assert_eq!(peers.lines[0].label, "node-a");
        assert!(charts[1].lines.is_empty());
        let snapshot = last_tick_snapshot(&history).unwrap();
        assert_eq!(snapshot.value("ipfs_sentinel_ipfs_peers", &[]), Some(9.0));
        assert_eq!(
            snapshot.value(
                "ipfs_sentinel_cluster_node_cpu_usage_ratio",
                &[("node_id", "b")]
            ),
            Some(0.5)
        );
    }
}
