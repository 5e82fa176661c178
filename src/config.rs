//! The YAML configuration: serde types in the short form's layout (`cluster.monitoring`,
//! `cluster.dashboard`) plus `ipfs`, their defaults, and validation.
//!
//! Owns parsing and checking only: nothing here opens a socket or starts a task. Every error a
//! user can get names the file, line, column and key path, on one line. Values are checked while
//! they are read (so serde-saphyr knows where they stand); references between sections (an alert
//! naming an action) are checked afterwards, with locations kept by [`Spanned`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use crate::dotted;
use crate::model::Semantics;

/// The configuration embedded in the binary, used by `serve` when no `--config` is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("default-config.yaml");

/// A configuration error, shown to the user on one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the configuration: {source}")]
    Read {
        /// The file's path.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed, or a key or value is wrong.
    #[error("{file}:{line}:{column}: {path}: {reason}")]
    Invalid {
        /// The file's path.
        file: String,
        /// 1-based line, 0 when unknown.
        line: u64,
        /// 1-based column, 0 when unknown.
        column: u64,
        /// Dotted key path, e.g. `cluster.monitoring.alerts[0].operator`.
        path: String,
        /// Why the value is wrong, and what would be right.
        reason: String,
    },
}

/// Something in a valid configuration that is most likely a mistake: `check-config` prints it
/// (and fails on it with `--strict`), `serve` logs it at start. Shown on one line naming the
/// file, the line and column where known, and the key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file's path.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// Dotted key path, e.g. `cluster.monitoring.alerts[2].threshold`.
    pub path: String,
    /// What is likely wrong, and what to do.
    pub reason: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        write!(f, "{}: warning: {}", self.path, self.reason)
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Kubo RPC API of this node.
    #[serde(default)]
    pub ipfs: IpfsConfig,
    /// This node's place in the cluster, monitoring and dashboard.
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// `ipfs`: how to reach this node's Kubo RPC API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpfsConfig {
    /// Base URL of the Kubo RPC API (default `http://127.0.0.1:5001`).
    #[serde(default = "default_ipfs_api_url")]
    pub api_url: HttpUrl,
    /// Timeout of each call to the RPC API, in seconds (default 5).
    #[serde(default = "default_ipfs_timeout")]
    pub timeout_seconds: PositiveSeconds,
    /// Count pins every N collections, keeping the last count between (default 1: every one).
    /// Listing recursive and direct pins streams one line per pin: raise it on nodes with
    /// millions of pins.
    #[serde(default = "default_pin_count_every")]
    pub pin_count_every_collections: NonZeroCount,
    /// Read `NumObjects` (a full `repo/stat`, which walks the blockstore) every N collections
    /// (default 10).
    #[serde(default = "default_object_count_every")]
    pub object_count_every_collections: NonZeroCount,
    /// The IPFS repo's directory on this host, whose filesystem's space and inodes are watched
    /// (default: the `RepoPath` the node reports in `repo/stat`, else `$IPFS_PATH`, else
    /// `~/.ipfs`). Set it when the daemon runs in a container and sees its repo elsewhere.
    #[serde(default)]
    pub repo_path: Option<std::path::PathBuf>,
}

impl Default for IpfsConfig {
    fn default() -> Self {
        Self {
            api_url: default_ipfs_api_url(),
            timeout_seconds: default_ipfs_timeout(),
            pin_count_every_collections: default_pin_count_every(),
            object_count_every_collections: default_object_count_every(),
            repo_path: None,
        }
    }
}

fn default_ipfs_api_url() -> HttpUrl {
    HttpUrl::parse("http://127.0.0.1:5001").expect("the default URL is valid")
}
fn default_ipfs_timeout() -> PositiveSeconds {
    PositiveSeconds(5.0)
}
fn default_pin_count_every() -> NonZeroCount {
    NonZeroCount(1)
}
fn default_object_count_every() -> NonZeroCount {
    NonZeroCount(10)
}

/// `cluster`: this node's identity, monitoring and dashboard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id in the cluster (default: the host name).
    #[serde(default = "default_node_id")]
    pub node_id: String,
    /// This node's role (default `worker`).
    #[serde(default)]
    pub role: Role,
    /// Base URLs of the other nodes' sentinels, e.g. `http://10.0.0.2:9401` (default: none).
    #[serde(default)]
    pub peers: Vec<HttpUrl>,
    /// Timeout of each call to a peer sentinel, in seconds (default 3).
    #[serde(default = "default_peer_timeout")]
    pub peer_timeout_seconds: PositiveSeconds,
    /// A file holding the token sent to peer sentinels as `Authorization: Bearer` (their
    /// `--web.token-file`), for peers that require basic auth or a token (default: none).
    #[serde(default)]
    pub peer_token_file: Option<std::path::PathBuf>,
    /// A peer unreachable for this long is `Offline`; before that it is `Degraded` (default 30).
    #[serde(default = "default_offline_after")]
    pub offline_after_seconds: PositiveSeconds,
    /// Export every node's headline figures as `ipfs_sentinel_cluster_node_*{node_id}` series
    /// (default true). Turn off where Prometheus scrapes every node anyway.
    #[serde(default = "default_true")]
    pub export_peer_metrics: bool,
    /// The IPFS Cluster REST API, when this node runs an IPFS Cluster peer.
    #[serde(default)]
    pub ipfs_cluster: Option<IpfsClusterConfig>,
    /// Collection, alerts and recovery actions.
    #[serde(default)]
    pub monitoring: MonitoringConfig,
    /// The HTML dashboard.
    #[serde(default)]
    pub dashboard: DashboardConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: default_node_id(),
            role: Role::default(),
            peers: Vec::new(),
            peer_timeout_seconds: default_peer_timeout(),
            peer_token_file: None,
            offline_after_seconds: default_offline_after(),
            export_peer_metrics: true,
            ipfs_cluster: None,
            monitoring: MonitoringConfig::default(),
            dashboard: DashboardConfig::default(),
        }
    }
}

fn default_peer_timeout() -> PositiveSeconds {
    PositiveSeconds(3.0)
}
fn default_offline_after() -> PositiveSeconds {
    PositiveSeconds(30.0)
}

/// `cluster.ipfs_cluster`: the IPFS Cluster REST API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpfsClusterConfig {
    /// Base URL of the REST API, e.g. `http://127.0.0.1:9094`.
    pub api_url: HttpUrl,
    /// A file holding `user:password` for basic authentication (never the secret itself here).
    #[serde(default)]
    pub basic_auth_file: Option<std::path::PathBuf>,
    /// Timeout of each call, in seconds (default 5).
    #[serde(default = "default_ipfs_timeout")]
    pub timeout_seconds: PositiveSeconds,
}

fn default_node_id() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// A node's role, as in ipfs-kit-py.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Coordinates the cluster and sees every peer.
    Master,
    /// Stores and serves content.
    #[default]
    Worker,
    /// Consumes content without storing it for others.
    Leecher,
}

impl Role {
    /// The role as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Worker => "worker",
            Role::Leecher => "leecher",
        }
    }
}

/// `cluster.monitoring`: collection, alerts and recovery actions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Collect at all (default true). When false, only `ipfs_sentinel_build_info` is served.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Seconds between collections (default 60).
    #[serde(default = "default_collection_interval")]
    pub collection_interval_seconds: PositiveSeconds,
    /// The longest one collector may take, in seconds, before it counts as failed (default 10).
    #[serde(default = "default_collector_timeout")]
    pub collector_timeout_seconds: PositiveSeconds,
    /// Hours of history to keep (default 24).
    #[serde(default = "default_history_hours")]
    pub metrics_history_duration_hours: PositiveSeconds,
    /// Threshold alerts in the short form.
    #[serde(default)]
    pub alerts: Vec<AlertConfig>,
    /// Recovery actions, by name; alerts refer to them with `action` or `actions`.
    #[serde(default)]
    pub recovery_actions: BTreeMap<String, RecoveryActionConfig>,
    /// Prometheus rule files to evaluate here, as paths or globs, relative to the
    /// configuration file's folder.
    #[serde(default)]
    pub rule_files: Vec<String>,
    /// How far back in time every rule group queries, in seconds, unless the group sets its
    /// own `query_offset` (default 0): Prometheus 2.53+'s `global.rule_query_offset`, for data
    /// that arrives late. Alerts and recorded series are then timed at the offset instant.
    #[serde(default = "default_rule_query_offset")]
    pub rule_query_offset_seconds: NonNegative,
    /// Which Prometheus release's PromQL the rules and the query API
    /// follow: `prometheus-3` (the default: Prometheus 3.5 LTS, left-open range windows,
    /// `double_exponential_smoothing`) or `prometheus-2.42` (closed windows, `holt_winters`).
    #[serde(default)]
    pub promql_semantics: Semantics,
    /// Labels added to every alert, as Prometheus's `global.external_labels`; templates see
    /// them as `$externalLabels`.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// The label that carries this sentinel's `cluster.node_id` on every alert it raises,
    /// unless the alert has that label already (default `node_id`; empty: none). It acts as one
    /// more external label, so alerts from different nodes stay apart in Alertmanager, while an
    /// alert about another node (`node.status == Offline`, which has that node's `node_id`)
    /// raised by several sentinels stays one. A value in `external_labels` under the same
    /// name wins over it.
    #[serde(default = "default_alert_identity_label")]
    pub alert_identity_label: String,
    /// The URL this sentinel is reached at, for templates' `$externalURL` and alerts'
    /// `generatorURL` (default: none).
    #[serde(default)]
    pub external_url: String,
    /// Where rules read their data: the local history (default), or a Prometheus-compatible
    /// query API for clusters too big for one node's view.
    #[serde(default)]
    pub datasource: Option<DatasourceConfig>,
    /// How recovery actions are delivered: dry run, concurrency, retries, and routes for
    /// alerts received from Alertmanager.
    #[serde(default)]
    pub actions: ActionsConfig,
    /// Receivers the history is pushed to with Prometheus remote write 1.0 (Prometheus,
    /// VictoriaMetrics, Mimir, Thanos Receive), shaped as Prometheus's own `remote_write`
    /// blocks (default: none).
    #[serde(default)]
    pub remote_write: Vec<RemoteWriteConfig>,
}

/// `cluster.monitoring.actions`: delivery of recovery actions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsConfig {
    /// Run nothing, but record, log and count what would have run, cool-downs included
    /// (default false; `serve --dry-run` sets it too).
    #[serde(default)]
    pub dry_run: bool,
    /// Actions running at once, at most (default 4); the rest wait in the outbox.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: NonZeroCount,
    /// Attempts of one run before it becomes a dead letter (default 5).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: NonZeroCount,
    /// Wait before the first retry, in seconds; doubled at each retry, with jitter (default 5).
    #[serde(default = "default_retry_initial")]
    pub retry_initial_seconds: PositiveSeconds,
    /// The longest wait between two attempts, in seconds (default 300).
    #[serde(default = "default_retry_max")]
    pub retry_max_seconds: PositiveSeconds,
    /// For alerts received from Alertmanager (`POST /api/v1/alertmanager/webhook`): which
    /// actions run for which labels. An alert's own `action` label (comma-separated names)
    /// is used first; otherwise every route whose `match_labels` all equal the alert's runs
    /// its actions.
    #[serde(default)]
    pub routes: Vec<ActionRoute>,
    /// At most this many runs of all actions together in a window; past it nothing runs
    /// (recorded `skipped_circuit_open`) until the window has passed or `POST
    /// /api/v1/actions/circuit/reset` (default: no breaker).
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreakerConfig>,
    /// Actions that act on another node (`reallocate_pins`, runs on a peer) refuse to run,
    /// recorded `skipped_partition`, when this sentinel sees more than `max_offline_ratio` of
    /// the cluster Offline (default 0.5).
    #[serde(default)]
    pub partition_guard: PartitionGuardConfig,
    /// The tamper-evident audit log's files (`<data dir>/actions/audit/`).
    #[serde(default)]
    pub audit: AuditConfig,
}

/// `cluster.monitoring.actions.audit`: rotation of the audit log's files.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// A new file is begun when the next record would take the current one past this many
    /// bytes (default 4194304, 4 MiB); the chain carries on into it.
    #[serde(default = "default_audit_max_file_bytes")]
    pub max_file_bytes: NonZeroCount,
    /// Files kept: at rotation the oldest whole files past this number are deleted; 0 (the
    /// default) keeps every file.
    #[serde(default)]
    pub keep_files: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: default_audit_max_file_bytes(),
            keep_files: 0,
        }
    }
}

fn default_audit_max_file_bytes() -> NonZeroCount {
    NonZeroCount(4 << 20)
}

impl Default for ActionsConfig {
    fn default() -> Self {
        Self {
            dry_run: false,
            max_concurrent: default_max_concurrent(),
            max_attempts: default_max_attempts(),
            retry_initial_seconds: default_retry_initial(),
            retry_max_seconds: default_retry_max(),
            routes: Vec::new(),
            audit: AuditConfig::default(),
            circuit_breaker: None,
            partition_guard: PartitionGuardConfig::default(),
        }
    }
}

fn default_max_concurrent() -> NonZeroCount {
    NonZeroCount(4)
}
fn default_max_attempts() -> NonZeroCount {
    NonZeroCount(5)
}
fn default_retry_initial() -> PositiveSeconds {
    PositiveSeconds(5.0)
}
fn default_retry_max() -> PositiveSeconds {
    PositiveSeconds(300.0)
}

/// One route of `cluster.monitoring.actions.routes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRoute {
    /// Labels the alert must carry, with these exact values.
    pub match_labels: BTreeMap<String, String>,
    /// The recovery actions to run.
    pub actions: Vec<Spanned<String>>,
}

/// `cluster.monitoring.datasource`: a Prometheus-compatible query API (Prometheus, Thanos,
/// Mimir, VictoriaMetrics) that rules send their expressions to instead of the local history.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasourceConfig {
    /// Only `prometheus` (the HTTP API's `/api/v1/query`).
    #[serde(rename = "type")]
    pub kind: DatasourceKind,
    /// Base URL, e.g. `http://prometheus:9090`.
    pub url: HttpUrl,
    /// Timeout of each query, in seconds (default 10).
    #[serde(default = "default_collector_timeout")]
    pub timeout_seconds: PositiveSeconds,
    /// A file holding `user:password` for basic authentication.
    #[serde(default)]
    pub basic_auth_file: Option<std::path::PathBuf>,
    /// A file holding a bearer token.
    #[serde(default)]
    pub bearer_token_file: Option<std::path::PathBuf>,
}

/// The kind of a remote datasource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasourceKind {
    /// Prometheus's HTTP API.
    Prometheus,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            collection_interval_seconds: default_collection_interval(),
            collector_timeout_seconds: default_collector_timeout(),
            metrics_history_duration_hours: default_history_hours(),
            alerts: Vec::new(),
            recovery_actions: BTreeMap::new(),
            rule_files: Vec::new(),
            rule_query_offset_seconds: default_rule_query_offset(),
            promql_semantics: Semantics::default(),
            external_labels: BTreeMap::new(),
            alert_identity_label: default_alert_identity_label(),
            external_url: String::new(),
            datasource: None,
            actions: ActionsConfig::default(),
            remote_write: Vec::new(),
        }
    }
}

fn default_alert_identity_label() -> String {
    "node_id".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_collection_interval() -> PositiveSeconds {
    PositiveSeconds(60.0)
}
fn default_collector_timeout() -> PositiveSeconds {
    PositiveSeconds(10.0)
}
fn default_history_hours() -> PositiveSeconds {
    PositiveSeconds(24.0)
}
fn default_rule_query_offset() -> NonNegative {
    NonNegative(0.0)
}

/// One threshold alert in the short form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Alert name (default: derived from metric, operator and threshold).
    #[serde(default)]
    pub name: Option<String>,
    /// A dotted metric name such as `node.disk_usage_percent`.
    pub metric: Spanned<String>,
    /// How the metric is compared with the threshold.
    pub operator: Operator,
    /// A number, or a state name for state metrics (`node.status`).
    pub threshold: Spanned<Threshold>,
    /// `info`, `warning` or `critical`.
    pub severity: Severity,
    /// How long the condition must hold before the alert fires (default 0).
    #[serde(default)]
    pub duration_minutes: NonNegative,
    /// The recovery action to run when it fires.
    #[serde(default)]
    pub action: Option<Spanned<String>>,
    /// Several recovery actions to run when it fires.
    #[serde(default)]
    pub actions: Vec<Spanned<String>>,
    /// Extra labels on the alert.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations on the alert (summary, description, ...).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl AlertConfig {
    /// The names of every action this alert runs, `action` first.
    pub fn action_names(&self) -> impl Iterator<Item = &Spanned<String>> {
        self.action.iter().chain(self.actions.iter())
    }
}

/// A comparison operator of a short-form alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Operator {
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Greater than or equal.
    #[serde(rename = ">=")]
    Ge,
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// Less than or equal.
    #[serde(rename = "<=")]
    Le,
    /// Equal.
    #[serde(rename = "==")]
    Eq,
    /// Not equal.
    #[serde(rename = "!=")]
    Ne,
}

impl Operator {
    /// The operator as PromQL writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Eq => "==",
            Operator::Ne => "!=",
        }
    }
}

/// The threshold of a short-form alert.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Threshold {
    /// A number, compared with the metric's value.
    Number(f64),
    /// A state name, for state metrics such as `node.status`.
    State(String),
}

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Look soon.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// The severity as written in the configuration (and in the `severity` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One recovery action. Exactly one of `command`, `script`, `method`, `builtin`, `webhook`,
/// `alertmanager` says what it does; the rest is policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryActionConfig {
    /// A command line (split into argv with shell-words rules, never run by a shell) or an argv list.
    #[serde(default)]
    pub command: Option<CommandLine>,
    /// A script to run with `args`.
    #[serde(default)]
    pub script: Option<String>,
    /// Arguments of `script`; placeholders such as `{node_id}` are expanded.
    #[serde(default)]
    pub args: Vec<String>,
    /// A built-in, in its dotted spelling (`cluster_manager.reallocate_pins`).
    #[serde(default)]
    pub method: Option<Builtin>,
    /// A built-in: `run_gc`, `reallocate_pins`, `connect_bootstrap_peers`.
    #[serde(default)]
    pub builtin: Option<Builtin>,
    /// POST Alertmanager's webhook payload to a URL.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// Push the alert to Alertmanager's API.
    #[serde(default)]
    pub alertmanager: Option<AlertmanagerConfig>,
    /// Where it runs: `local` or `alerting_node` (default).
    #[serde(default)]
    pub target: Target,
    /// The longest a command may run, in seconds (default 60).
    #[serde(default)]
    pub timeout_seconds: Option<PositiveSeconds>,
    /// Seconds before the same action may run again for the same node (default 600).
    #[serde(default)]
    pub cooldown_seconds: Option<NonNegative>,
    /// Runs per alert episode at most (default 3).
    #[serde(default)]
    pub max_runs: Option<NonZeroCount>,
    /// Also run when the alert resolves (default false). Called `on_resolved` before; that
    /// key still works.
    #[serde(default, alias = "on_resolved")]
    pub run_on_resolve: bool,
    /// `required`: a decided run waits as a proposal until an operator approves it (`POST
    /// /api/v1/actions/runs/ID/approve`, `ipfs-sentinel actions approve ID`), rejects it, or
    /// `approval_timeout_seconds` pass (default `none`: runs at once).
    #[serde(default)]
    pub approval: Approval,
    /// How long a proposal waits for approval before it is recorded `expired` (default 3600).
    #[serde(default)]
    pub approval_timeout_seconds: Option<PositiveSeconds>,
    /// A PromQL expression: the action runs only if it returns a non-empty result at decision
    /// time, evaluated over this sentinel's history; otherwise the run is recorded
    /// `skipped_precondition`.
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    /// Stop a command or script still running when its alert resolves: SIGTERM, then SIGKILL
    /// to its process group, recorded `cancelled` (default true for commands and scripts;
    /// other kinds cannot be stopped).
    #[serde(default)]
    pub cancel_on_resolve: Option<bool>,
    /// Seconds after a successful run to look at the alert again and record `resolved` or
    /// `still_firing` (default: twice the collection interval, the short form's and the
    /// rule files' default evaluation interval). `still_firing` escalates at once.
    #[serde(default)]
    pub verify_after_seconds: Option<PositiveSeconds>,
    /// `reallocate_pins` only: pins moved per run at most (default: all); the rest wait for
    /// the next run, and the run's record says how many are left.
    #[serde(default)]
    pub max_pins: Option<NonZeroCount>,
    /// This action's own partition guard, instead of `actions.partition_guard`.
    #[serde(default)]
    pub partition_guard: Option<PartitionGuardConfig>,
    /// Seconds the alert must still fire after the first run before `escalate_to` runs.
    #[serde(default)]
    pub escalate_after_seconds: Option<PositiveSeconds>,
    /// The action to run on escalation.
    #[serde(default)]
    pub escalate_to: Option<Spanned<String>>,
    /// `reallocate_pins` only: also move pins whose other allocations already meet their
    /// `replication_factor_min` (default false: such pins keep their allocation on the
    /// Offline node, as IPFS Cluster itself would keep it, and come back with it).
    #[serde(default)]
    pub include_satisfied_pins: bool,
}

impl RecoveryActionConfig {
    /// The longest a command or built-in may run (default 60 s).
    pub fn timeout(&self) -> Duration {
        self.timeout_seconds
            .map_or(Duration::from_secs(60), PositiveSeconds::duration)
    }

    /// Milliseconds before the action may run again for the same node (default 600 s).
    pub fn cooldown_ms(&self) -> i64 {
        self.cooldown_seconds
            .map_or(600_000, |c| (c.0 * 1000.0) as i64)
    }

    /// Runs per alert episode at most (default 3).
    pub fn max_runs(&self) -> u64 {
        self.max_runs.map_or(3, |m| m.0)
    }

    /// Whether a run still going is stopped when its alert resolves.
    pub fn cancels_on_resolve(&self) -> bool {
        let stoppable = self.command.is_some() || self.script.is_some();
        stoppable && self.cancel_on_resolve.unwrap_or(true)
    }

    /// How long a proposal waits for approval (default 3600 s).
    pub fn approval_timeout_ms(&self) -> i64 {
        self.approval_timeout_seconds
            .map_or(3_600_000, |s| (s.0 * 1000.0) as i64)
    }

    /// The built-in this action runs, in either spelling.
    pub fn builtin(&self) -> Option<Builtin> {
        self.method.or(self.builtin)
    }

    /// A short description of what the action does, for summaries.
    pub fn describe(&self) -> String {
        if let Some(c) = &self.command {
            return format!("command {}", c.describe());
        }
        if let Some(s) = &self.script {
            return format!("script {s} {}", self.args.join(" "))
                .trim_end()
                .to_owned();
        }
        if let Some(b) = self.method.or(self.builtin) {
            return format!("built-in {}", b.as_str());
        }
        if let Some(w) = &self.webhook {
            return format!("webhook {}", w.url.0);
        }
        if let Some(a) = &self.alertmanager {
            let urls: Vec<&str> = a.urls.iter().map(|u| u.0.as_str()).collect();
            return format!("alertmanager {}", urls.join(", "));
        }
        "nothing".to_owned()
    }

    fn kinds_given(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        let given = [
            (self.command.is_some(), "command"),
            (self.script.is_some(), "script"),
            (self.method.is_some(), "method"),
            (self.builtin.is_some(), "builtin"),
            (self.webhook.is_some(), "webhook"),
            (self.alertmanager.is_some(), "alertmanager"),
        ];
        for (present, name) in given {
            if present {
                kinds.push(name);
            }
        }
        kinds
    }
}

/// Whether a decided run waits for an operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Runs at once.
    #[default]
    None,
    /// Waits as a proposal until approved, rejected or expired.
    Required,
}

/// When actions acting on another node refuse to run: this sentinel sees too much of the
/// cluster Offline, so it is likely the one cut off.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionGuardConfig {
    /// Refuse when more than this share of the cluster's nodes (this one included) is
    /// Offline (default 0.5).
    #[serde(default = "default_max_offline_ratio")]
    pub max_offline_ratio: Ratio,
}

impl Default for PartitionGuardConfig {
    fn default() -> Self {
        Self {
            max_offline_ratio: default_max_offline_ratio(),
        }
    }
}

fn default_max_offline_ratio() -> Ratio {
    Ratio(0.5)
}

/// A number from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio(pub f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = number(d)?;
        if (0.0..=1.0).contains(&v) {
            Ok(Ratio(v))
        } else {
            Err(serde::de::Error::custom(format!(
                "must be a number from 0 to 1, got {v}"
            )))
        }
    }
}

/// `actions.circuit_breaker`: at most `max_runs` runs of all actions together in any
/// `per_seconds`; past it nothing runs until the window has passed or an operator resets it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Runs allowed in the window.
    pub max_runs: NonZeroCount,
    /// The window, in seconds.
    pub per_seconds: PositiveSeconds,
}

/// A command as one string (split with shell-words rules) or as an argv list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    /// One string, e.g. `ipfs repo gc`.
    Line(String),
    /// An argv list.
    Argv(Vec<String>),
}

impl CommandLine {
    fn describe(&self) -> String {
        match self {
            CommandLine::Line(s) => s.clone(),
            CommandLine::Argv(v) => v.join(" "),
        }
    }
}

/// A built-in recovery action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Builtin {
    /// Kubo `repo/gc`.
    #[serde(rename = "run_gc", alias = "ipfs.repo_gc")]
    RunGc,
    /// Re-pin what was allocated to an Offline node through IPFS Cluster.
    #[serde(rename = "reallocate_pins", alias = "cluster_manager.reallocate_pins")]
    ReallocatePins,
    /// Kubo `bootstrap/list` then `swarm/connect`.
    #[serde(rename = "connect_bootstrap_peers")]
    ConnectBootstrapPeers,
}

impl Builtin {
    /// The built-in's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::RunGc => "run_gc",
            Builtin::ReallocatePins => "reallocate_pins",
            Builtin::ConnectBootstrapPeers => "connect_bootstrap_peers",
        }
    }
}

/// Where a recovery action runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// On the node the alert names (`node_id`).
    #[default]
    AlertingNode,
    /// Here, on this sentinel's node.
    Local,
}

/// `webhook:` of a recovery action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: HttpUrl,
    /// Extra HTTP headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A file holding a bearer token.
    #[serde(default)]
    pub bearer_token_file: Option<String>,
}

/// `alertmanager:` of a recovery action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Alertmanager base URLs.
    pub urls: Vec<HttpUrl>,
}

/// `cluster.dashboard`: the HTML page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// Serve the page (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Seconds between page refreshes (default 30).
    #[serde(default = "default_refresh")]
    pub refresh_interval_seconds: PositiveSeconds,
    /// Serve the page on a listener of its own on this host (with `port`).
    #[serde(default)]
    pub host: Option<String>,
    /// Serve the page on a listener of its own on this port (with `host`).
    #[serde(default)]
    pub port: Option<u16>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            refresh_interval_seconds: default_refresh(),
            host: None,
            port: None,
        }
    }
}

fn default_refresh() -> PositiveSeconds {
    PositiveSeconds(30.0)
}

/// A number of seconds (or hours, by the key's name) greater than zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositiveSeconds(pub f64);

impl PositiveSeconds {
    /// As a duration, reading the number as seconds.
    pub fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }
}

/// Reads a YAML number, saying plainly when a string stands where it should be.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct NumberVisitor;
    impl serde::de::Visitor<'_> for NumberVisitor {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<f64, E> {
            Err(E::custom(format!("expected a number, got {v:?}")))
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<f64, E> {
            Err(E::custom(format!("expected a number, got {v}")))
        }
    }
    d.deserialize_any(NumberVisitor)
}

impl<'de> Deserialize<'de> for PositiveSeconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = number(d)?;
        if v.is_finite() && v > 0.0 && v < 1e9 {
            Ok(Self(v))
        } else {
            Err(serde::de::Error::custom(format!(
                "must be a number greater than 0, got {v}"
            )))
        }
    }
}

/// A number zero or greater.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NonNegative(pub f64);

impl<'de> Deserialize<'de> for NonNegative {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = number(d)?;
        if v.is_finite() && v >= 0.0 {
            Ok(Self(v))
        } else {
            Err(serde::de::Error::custom(format!(
                "must be a number 0 or greater, got {v}"
            )))
        }
    }
}

/// A whole number greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonZeroCount(pub u64);

impl<'de> Deserialize<'de> for NonZeroCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u64::deserialize(d)? {
            0 => Err(serde::de::Error::custom(
                "must be a whole number 1 or greater, got 0",
            )),
            v => Ok(Self(v)),
        }
    }
}

/// An absolute `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(pub reqwest::Url);

impl HttpUrl {
    /// Parses and checks a URL.
    pub fn parse(s: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(s).map_err(|e| format!("not a URL ({e}): {s:?}"))?;
        match url.scheme() {
            "http" | "https" if url.host().is_some() => Ok(Self(url)),
            _ => Err(format!(
                "must be an http:// or https:// URL with a host, got {s:?}"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HttpUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One `cluster.monitoring.remote_write` receiver, with the key names and shapes of
/// Prometheus 2.42's `remote_write` (config/config.go `RemoteWriteConfig`), so a block can be
/// copied across. Secrets come from files only. The issue's short names `timeout`, `tls` and
/// `queue` are accepted as aliases of `remote_timeout`, `tls_config` and `queue_config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver's remote write endpoint, e.g. `http://prometheus:9090/api/v1/write`.
    pub url: HttpUrl,
    /// The receiver's name in metrics, logs and the cursor file (default: `remote-` and a
    /// hash of the URL, as Prometheus names unnamed receivers by a hash). Names are unique.
    #[serde(default)]
    pub name: Option<String>,
    /// Timeout of each request (default `30s`), a Prometheus duration.
    #[serde(default = "default_remote_timeout", alias = "timeout")]
    pub remote_timeout: DurationMs,
    /// Extra request headers; the remote write protocol's own headers cannot be overridden.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HTTP basic authentication: `username` and `password_file`.
    #[serde(default)]
    pub basic_auth: Option<BasicAuthConfig>,
    /// A file holding a bearer token, sent as `Authorization: Bearer`.
    #[serde(default)]
    pub bearer_token_file: Option<std::path::PathBuf>,
    /// `Authorization` header: `type` (default `Bearer`) and `credentials_file`.
    #[serde(default)]
    pub authorization: Option<AuthorizationConfig>,
    /// TLS towards the receiver: `ca_file`, `cert_file`, `key_file`, `insecure_skip_verify`.
    #[serde(default, alias = "tls")]
    pub tls_config: ClientTlsConfig,
    /// Batching and retries: `max_samples_per_send`, `batch_send_deadline`, `min_backoff`,
    /// `max_backoff`.
    #[serde(default, alias = "queue")]
    pub queue_config: QueueConfig,
    /// Relabelling applied to each series after the external labels, as Prometheus's
    /// `write_relabel_configs` (actions `replace`, `keep`, `drop`, `keepequal`, `dropequal`,
    /// `labelmap`, `labeldrop`, `labelkeep`, `lowercase`, `uppercase`; not `hashmod`, which
    /// shards targets among Prometheus servers and has no use on one sentinel's own series).
    #[serde(default)]
    pub write_relabel_configs: Vec<RelabelConfig>,
}

impl RemoteWriteConfig {
    /// The receiver's name: `name`, else `remote-` and a hash of the URL (stable across
    /// restarts, so its cursor is found again).
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!(
                "remote-{:08x}",
                crc32fast::hash(self.url.0.as_str().as_bytes())
            ),
        }
    }
}

fn default_remote_timeout() -> DurationMs {
    DurationMs(30_000)
}

/// `basic_auth` of a remote write receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// The user name.
    pub username: String,
    /// A file holding the password (inline passwords are not accepted: secrets come from files).
    pub password_file: std::path::PathBuf,
}

/// `authorization` of a remote write receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationConfig {
    /// The scheme (default `Bearer`).
    #[serde(default = "default_authorization_type", rename = "type")]
    pub kind: String,
    /// A file holding the credentials.
    pub credentials_file: std::path::PathBuf,
}

fn default_authorization_type() -> String {
    "Bearer".to_owned()
}

/// `tls_config` of a remote write receiver, as Prometheus's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// PEM file of the CAs the receiver's certificate is checked against (default: the
    /// system's).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate, with `key_file`, for receivers that require one.
    #[serde(default)]
    pub cert_file: Option<std::path::PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
    /// Accept any certificate (default false; for tests only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// `queue_config` of a remote write receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Samples in one request, at most (default 500, as Prometheus 2.42).
    #[serde(default = "default_max_samples_per_send")]
    pub max_samples_per_send: NonZeroCount,
    /// How long a batch waits to fill before it is sent anyway (default `5s`).
    #[serde(default = "default_batch_send_deadline")]
    pub batch_send_deadline: DurationMs,
    /// Wait before the first retry of a failed request (default `30ms`); doubled at each retry.
    #[serde(default = "default_min_backoff")]
    pub min_backoff: DurationMs,
    /// The longest wait between two retries (default `5s`).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: DurationMs,
    /// Accepted so Prometheus blocks copy across, and ignored: one request at a time per
    /// receiver, read from the history, which is the queue.
    #[serde(default)]
    pub capacity: Option<u64>,
    /// Accepted and ignored, as `capacity`.
    #[serde(default)]
    pub max_shards: Option<u64>,
    /// Accepted and ignored, as `capacity`.
    #[serde(default)]
    pub min_shards: Option<u64>,
    /// Accepted and ignored: 429 is always retried, so nothing is lost.
    #[serde(default)]
    pub retry_on_http_429: Option<bool>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_samples_per_send: default_max_samples_per_send(),
            batch_send_deadline: default_batch_send_deadline(),
            min_backoff: default_min_backoff(),
            max_backoff: default_max_backoff(),
            capacity: None,
            max_shards: None,
            min_shards: None,
            retry_on_http_429: None,
        }
    }
}

fn default_max_samples_per_send() -> NonZeroCount {
    NonZeroCount(500)
}
fn default_batch_send_deadline() -> DurationMs {
    DurationMs(5_000)
}
fn default_min_backoff() -> DurationMs {
    DurationMs(30)
}
fn default_max_backoff() -> DurationMs {
    DurationMs(5_000)
}

/// One `write_relabel_configs` entry, as Prometheus 2.42's relabel `Config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` and matched against `regex`.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins the source labels' values (default `;`).
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Matched against the joined values, anchored at both ends (default `(.*)`).
    #[serde(default = "default_relabel_regex")]
    pub regex: RelabelRegex,
    /// The label written by `replace`, `lowercase`, `uppercase`; compared by `keepequal` and
    /// `dropequal`.
    #[serde(default)]
    pub target_label: String,
    /// The value written, with `$1`-style references to the regex's groups (default `$1`).
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// What to do (default `replace`).
    #[serde(default)]
    pub action: RelabelAction,
}

fn default_separator() -> String {
    ";".to_owned()
}
fn default_replacement() -> String {
    "$1".to_owned()
}
fn default_relabel_regex() -> RelabelRegex {
    RelabelRegex::new("(.*)").unwrap_or_else(|_| unreachable!("a valid pattern"))
}

/// A relabelling action, as Prometheus 2.42 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelabelAction {
    /// Writes `replacement` (expanded) to `target_label` when `regex` matches.
    #[default]
    Replace,
    /// Keeps the series only when `regex` matches.
    Keep,
    /// Drops the series when `regex` matches.
    Drop,
    /// Keeps the series when the joined source values equal `target_label`'s value.
    Keepequal,
    /// Drops the series when the joined source values equal `target_label`'s value.
    Dropequal,
    /// Copies labels whose names match `regex` to names made from `replacement`.
    Labelmap,
    /// Removes labels whose names match `regex`.
    Labeldrop,
    /// Keeps only labels whose names match `regex`.
    Labelkeep,
    /// Writes the joined values in lower case to `target_label`.
    Lowercase,
    /// Writes the joined values in upper case to `target_label`.
    Uppercase,
}

/// A relabelling regex: anchored at both ends, as Prometheus anchors it; keeps the text given.
#[derive(Debug, Clone)]
pub struct RelabelRegex {
    /// As written in the configuration.
    pub text: String,
    /// `^(?:text)$`.
    pub regex: regex::Regex,
}

impl RelabelRegex {
    /// Compiles `text` anchored at both ends.
    pub fn new(text: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            text: text.to_owned(),
            regex: regex::Regex::new(&format!("^(?s:{text})$"))?,
        })
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        RelabelRegex::new(&text)
            .map_err(|e| serde::de::Error::custom(format!("not a valid regex {text:?}: {e}")))
    }
}

/// A duration in Prometheus's notation (`30s`, `1m30s`, `500ms`), held in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationMs(pub i64);

impl DurationMs {
    /// As a [`Duration`].
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.0.unsigned_abs())
    }
}

impl<'de> Deserialize<'de> for DurationMs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::clock::parse_duration(&text)
            .map(DurationMs)
            .map_err(|e| {
                serde::de::Error::custom(format!("{e} (write it as Prometheus does, e.g. 30s)"))
            })
    }
}

/// Reads a secret (token, `user:password`) from the file a configuration key names, trimmed;
/// errors name the key and the file, never the secret.
pub fn read_secret(path: &Path, key: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("cannot read {key} {}: {e}", path.display()))
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::parse(&text, &file)
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config = parse_yaml::<Config>(text, file)?.unwrap_or_default();
        config.validate(file)?;
        Ok(config)
    }

    /// The labels every alert this sentinel raises carries unless it has them already, as
    /// Prometheus's `global.external_labels`: `cluster.monitoring.external_labels`, plus
    /// `cluster.monitoring.alert_identity_label` (default `node_id`) set to
    /// `cluster.node_id` when `external_labels` does not name it.
    ///
    /// ```
    /// use ipfs_sentinel::config::Config;
    ///
    /// let config = Config::parse("cluster: {node_id: node-b}", "s.yaml").unwrap();
    /// assert_eq!(config.alert_external_labels()["node_id"], "node-b");
    /// let config = Config::parse(
    ///     "cluster: {node_id: node-b, monitoring: {alert_identity_label: instance, external_labels: {dc: eu}}}",
    ///     "s.yaml",
    /// )
    /// .unwrap();
    /// let labels = config.alert_external_labels();
    /// assert_eq!((labels["instance"].as_str(), labels["dc"].as_str()), ("node-b", "eu"));
    /// assert!(!labels.contains_key("node_id"));
    /// let off = Config::parse("cluster: {monitoring: {alert_identity_label: ''}}", "s.yaml").unwrap();
    /// assert!(off.alert_external_labels().is_empty());
    /// ```
    pub fn alert_external_labels(&self) -> BTreeMap<String, String> {
        let monitoring = &self.cluster.monitoring;
        let mut labels = monitoring.external_labels.clone();
        if !monitoring.alert_identity_label.is_empty() {
            labels
                .entry(monitoring.alert_identity_label.clone())
                .or_insert_with(|| self.cluster.node_id.clone());
        }
        labels
    }

    /// What in this (valid) configuration is most likely a mistake, `file` naming it: a
    /// `reallocate_pins` action without `cluster.ipfs_cluster` (every run would fail), and a
    /// `node.status == Offline` alert without `cluster.peers` (it can never fire: a node cannot
    /// see itself Offline). An alert naming an undefined action is an error, not a warning.
    ///
    /// ```
    /// use ipfs_sentinel::config::Config;
    ///
    /// let yaml = "cluster:\n  monitoring:\n    alerts:\n      - {metric: node.status, threshold: Offline, operator: '==', severity: critical}\n";
    /// let warnings = Config::parse(yaml, "s.yaml").unwrap().warnings("s.yaml");
    /// assert_eq!(warnings.len(), 1);
    /// assert!(warnings[0]
    ///     .to_string()
    ///     .starts_with("s.yaml:4:42: cluster.monitoring.alerts[0].threshold: warning: "));
    /// ```
    pub fn warnings(&self, file: &str) -> Vec<ConfigWarning> {
        let monitoring = &self.cluster.monitoring;
        let mut warnings = Vec::new();
        for (name, action) in &monitoring.recovery_actions {
            if action.builtin() == Some(Builtin::ReallocatePins)
                && self.cluster.ipfs_cluster.is_none()
            {
                let key = if action.method.is_some() {
                    "method"
                } else {
                    "builtin"
                };
                warnings.push(ConfigWarning {
                    file: file.to_owned(),
                    line: 0,
                    column: 0,
                    path: format!("cluster.monitoring.recovery_actions.{name}.{key}"),
                    reason: "reallocate_pins moves pins through the IPFS Cluster REST API, and cluster.ipfs_cluster is not set: every run would fail; set cluster.ipfs_cluster.api_url".into(),
                });
            }
        }
        if self.cluster.peers.is_empty() {
            for (i, alert) in monitoring.alerts.iter().enumerate() {
                let offline = Threshold::State("Offline".into());
                if alert.metric.value == "node.status"
                    && alert.operator == Operator::Eq
                    && alert.threshold.value == offline
                {
                    warnings.push(ConfigWarning {
                        file: file.to_owned(),
                        line: alert.threshold.referenced.line(),
                        column: alert.threshold.referenced.column(),
                        path: format!("cluster.monitoring.alerts[{i}].threshold"),
                        reason: "node.status == Offline can never fire without cluster.peers: a sentinel sees other nodes go Offline, never its own; list the other nodes' sentinels under cluster.peers".into(),
                    });
                }
            }
        }
        warnings
    }

    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let monitoring = &self.cluster.monitoring;
        let identity = &monitoring.alert_identity_label;
        let is_label_name = |s: &str| {
            s.chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        };
        if !identity.is_empty() && (!is_label_name(identity) || identity.starts_with("__")) {
            return Err(ConfigError::Invalid {
                file: file.to_owned(),
                line: 0,
                column: 0,
                path: "cluster.monitoring.alert_identity_label".into(),
                reason: format!(
                    "{identity:?} is not a label name: letters, digits and _, not starting with a digit or __ (or '' for no identity label)"
                ),
            });
        }
        for (i, alert) in monitoring.alerts.iter().enumerate() {
            let at = format!("cluster.monitoring.alerts[{i}]");
            validate_alert(alert, &at, file)?;
            for (j, name) in alert.action_names().enumerate() {
                if !monitoring.recovery_actions.contains_key(&name.value) {
                    let key = if j == 0 && alert.action.is_some() {
                        format!("{at}.action")
                    } else {
                        format!("{at}.actions")
                    };
                    return Err(unknown_action(file, &key, name, monitoring));
                }
            }
        }
        for (i, route) in monitoring.actions.routes.iter().enumerate() {
            for name in &route.actions {
                if !monitoring.recovery_actions.contains_key(&name.value) {
                    let key = format!("cluster.monitoring.actions.routes[{i}].actions");
                    return Err(unknown_action(file, &key, name, monitoring));
                }
            }
        }
        for (name, action) in &monitoring.recovery_actions {
            let at = format!("cluster.monitoring.recovery_actions.{name}");
            let kinds = action.kinds_given();
            if kinds.len() != 1 {
                return Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    line: 0,
                    column: 0,
                    path: at,
                    reason: format!(
                        "needs exactly one of command, script, method, builtin, webhook, alertmanager; got {}",
                        if kinds.is_empty() { "none".to_owned() } else { kinds.join(" and ") }
                    ),
                });
            }
            if !action.args.is_empty() && action.script.is_none() {
                return Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    line: 0,
                    column: 0,
                    path: format!("{at}.args"),
                    reason:
                        "args go with script; a command takes its arguments in its own line or list"
                            .into(),
                });
            }
            if let Some(when) = &action.when {
                if let Err(e) =
                    crate::rules::promql::parse_as(&when.value, monitoring.promql_semantics)
                {
                    return Err(ConfigError::Invalid {
                        file: file.to_owned(),
                        line: when.referenced.line(),
                        column: when.referenced.column(),
                        path: format!("{at}.when"),
                        reason: format!("not a PromQL expression: {e}"),
                    });
                }
            }
            if action.max_pins.is_some() && action.builtin() != Some(Builtin::ReallocatePins) {
                return Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    line: 0,
                    column: 0,
                    path: format!("{at}.max_pins"),
                    reason: "max_pins goes with the built-in reallocate_pins only".into(),
                });
            }
            if let Some(to) = &action.escalate_to {
                if !monitoring.recovery_actions.contains_key(&to.value) {
                    return Err(unknown_action(
                        file,
                        &format!("{at}.escalate_to"),
                        to,
                        monitoring,
                    ));
                }
            }
        }
        validate_remote_write(&monitoring.remote_write, file)
    }
}

/// Checks what serde cannot: unique receiver names, one way of authenticating, a client
/// certificate with its key, back-off bounds in order.
fn validate_remote_write(receivers: &[RemoteWriteConfig], file: &str) -> Result<(), ConfigError> {
    let mut names = std::collections::HashSet::new();
    for (i, r) in receivers.iter().enumerate() {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            file: file.to_owned(),
            line: 0,
            column: 0,
            path: format!("cluster.monitoring.remote_write[{i}]{key}"),
            reason,
        };
        let name = r.display_name();
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(invalid(
                ".name",
                format!("{name:?} is empty or names another receiver too; give each receiver a name of its own"),
            ));
        }
        let auths = [
            r.basic_auth.is_some(),
            r.bearer_token_file.is_some(),
            r.authorization.is_some(),
        ];
        if auths.iter().filter(|a| **a).count() > 1 {
            return Err(invalid(
                "",
                "give one of basic_auth, bearer_token_file, authorization, not several".into(),
            ));
        }
        if r.tls_config.cert_file.is_some() != r.tls_config.key_file.is_some() {
            return Err(invalid(
                ".tls_config",
                "cert_file and key_file go together: give both or neither".into(),
            ));
        }
        let q = &r.queue_config;
        if q.min_backoff.0 <= 0 || q.max_backoff.0 < q.min_backoff.0 {
            return Err(invalid(
                ".queue_config",
                "min_backoff must be above 0 and at most max_backoff".into(),
            ));
        }
        if r.remote_timeout.0 <= 0 {
            return Err(invalid(".remote_timeout", "must be above 0".into()));
        }
    }
    Ok(())
}

fn validate_alert(alert: &AlertConfig, at: &str, file: &str) -> Result<(), ConfigError> {
    let located =
        |at_value: serde_saphyr::Location, key: &str, reason: String| ConfigError::Invalid {
            file: file.to_owned(),
            line: at_value.line(),
            column: at_value.column(),
            path: format!("{at}.{key}"),
            reason,
        };
    let Some(metric) = dotted::lookup(&alert.metric.value) else {
        return Err(located(
            alert.metric.referenced,
            "metric",
            format!(
                "unknown metric {:?}; known: {}",
                alert.metric.value,
                dotted::names().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    match (&alert.threshold.value, metric.states) {
        (Threshold::Number(_), None) => Ok(()),
        (Threshold::Number(n), Some(states)) => Err(located(
            alert.threshold.referenced,
            "threshold",
            format!(
                "{} is a state; compare it with one of {}, not {n}",
                metric.name,
                states.join(", ")
            ),
        )),
        (Threshold::State(s), None) => Err(located(
            alert.threshold.referenced,
            "threshold",
            format!(
                "{} is a number; the threshold must be a number, not {s:?}",
                metric.name
            ),
        )),
        (Threshold::State(s), Some(states)) => {
            if !states.contains(&s.as_str()) {
                Err(located(
                    alert.threshold.referenced,
                    "threshold",
                    format!(
                        "unknown state {s:?} of {}; one of {}",
                        metric.name,
                        states.join(", ")
                    ),
                ))
            } else if !matches!(alert.operator, Operator::Eq | Operator::Ne) {
                Err(located(
                    alert.threshold.referenced,
                    "operator",
                    format!(
                        "a state is compared with == or !=, not {}",
                        alert.operator.as_str()
                    ),
                ))
            } else {
                Ok(())
            }
        }
    }
}

fn unknown_action(
    file: &str,
    path: &str,
    name: &Spanned<String>,
    monitoring: &MonitoringConfig,
) -> ConfigError {
    let defined: Vec<&str> = monitoring
        .recovery_actions
        .keys()
        .map(String::as_str)
        .collect();
    ConfigError::Invalid {
        file: file.to_owned(),
        line: name.referenced.line(),
        column: name.referenced.column(),
        path: path.to_owned(),
        reason: format!(
            "no recovery action named {:?} is defined under cluster.monitoring.recovery_actions (defined: {})",
            name.value,
            if defined.is_empty() { "none".to_owned() } else { defined.join(", ") }
        ),
    }
}

/// Reads YAML text into `T`; `None` for an empty file (or one holding only comments). An error
/// names `file`, line, column and the key path. Other files in YAML (the web configuration)
/// share it.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<Option<T>, ConfigError> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, Option<T>>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| invalid_from_yaml(file, &path, &e))
}

fn invalid_from_yaml(file: &str, path: &str, e: &serde_saphyr::Error) -> ConfigError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let path = if path.is_empty() || path == "." {
        "(top level)".to_owned()
    } else {
        path.to_owned()
    };
    ConfigError::Invalid {
        file: file.to_owned(),
        line,
        column,
        path,
        reason: one_line_reason(&e.without_snippet().to_string()),
    }
}

/// serde-saphyr's message, reduced to one line and without its own location suffix (we print
/// the location in front, once).
fn one_line_reason(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    match first.rfind(" at line ") {
        Some(i) => first[..i].trim_end_matches(',').to_owned(),
        None => first.to_owned(),
    }
}

#[cfg(test)]
mod remote_write_tests {
    use super::*;

    fn parse(remote_write: &str) -> Result<Config, ConfigError> {
        Config::parse(
            &format!("cluster:\n  monitoring:\n    remote_write:\n{remote_write}"),
            "s.yaml",
        )
    }

    #[test]
    fn a_prometheus_remote_write_block_copies_across() {
        // As in Prometheus 2.42's documentation (docs/configuration/configuration.md).
        let config = parse(
            "      - url: https://mimir.example/api/v1/push\n        name: mimir\n        remote_timeout: 1m30s\n        headers: {X-Scope-OrgID: fleet}\n        authorization: {credentials_file: /run/token}\n        tls_config: {ca_file: /etc/ca.pem, insecure_skip_verify: false}\n        queue_config: {capacity: 2500, max_shards: 200, min_shards: 1, max_samples_per_send: 2000, batch_send_deadline: 5s, min_backoff: 30ms, max_backoff: 5s, retry_on_http_429: true}\n        write_relabel_configs:\n          - {source_labels: [__name__], regex: 'go_.*', action: drop}\n      - url: http://vm.example:8428/api/v1/write\n        timeout: 10s\n        queue: {max_backoff: 1m}\n",
        )
        .unwrap();
        let r = &config.cluster.monitoring.remote_write;
        assert_eq!(r[0].remote_timeout, DurationMs(90_000));
        assert_eq!(r[0].queue_config.max_samples_per_send, NonZeroCount(2000));
        assert_eq!(r[0].authorization.as_ref().unwrap().kind, "Bearer");
        assert_eq!(r[0].write_relabel_configs[0].action, RelabelAction::Drop);
        assert_eq!(r[1].remote_timeout, DurationMs(10_000));
        assert_eq!(r[1].queue_config.max_backoff, DurationMs(60_000));
        assert_eq!(r[1].queue_config.min_backoff, DurationMs(30));
        assert!(r[1].display_name().starts_with("remote-"));
    }

    #[test]
    fn mistakes_name_the_receiver_and_the_key() {
        let e = parse("      - {url: 'http://a/w', bearer_token_file: /t, basic_auth: {username: u, password_file: /p}}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cluster.monitoring.remote_write[0]") && e.contains("not several"),
            "{e}"
        );
        let e =
            parse("      - {url: 'http://a/w', name: x}\n      - {url: 'http://b/w', name: x}\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("remote_write[1].name"), "{e}");
        let e = parse("      - {url: 'http://a/w', remote_timeout: 30}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("remote_timeout"), "{e}");
        let e = parse("      - {url: 'http://a/w', basic_auth: {username: u, password: secret}}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("password") && !e.contains("secret"), "{e}");
    }
}
