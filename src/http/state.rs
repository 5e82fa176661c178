//! What the HTTP handlers share: [`AppState`], the handles to what other stages own (the
//! exposition cache, the history, the rule engine, the recovery actions) plus the server's own
//! settings.
//!
//! Owns the type only, in a module of its own so the route modules ([`super::api`],
//! [`super::actions`], [`super::dashboard`]) and the server that assembles them all import it
//! from here, and none imports another back. Connection-level checks (TLS, basic auth) never
//! need it.

use std::time::SystemTime;

use crate::actions::audit::AuditLog;
use crate::actions::dispatcher::Actions;
use crate::exposition::ExpositionCache;
use crate::history::recorder::SharedHistory;
use crate::model::Semantics;
use crate::rules::reload::{ConfigSource, SharedEngine};
use crate::status::Identity;

use super::token::WebToken;

/// How the dashboard is served.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardSettings {
    /// Seconds between refreshes of the page (`cluster.dashboard.refresh_interval_seconds`).
    pub refresh_seconds: f64,
    /// True when the page is served on a listener of its own (`cluster.dashboard.host` and
    /// `port`) rather than beside the API.
    pub own_listener: bool,
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The latest snapshot and its encoded metrics.
    pub metrics: ExpositionCache,
    /// Who this node is, for the status report.
    pub identity: Identity,
    /// When this sentinel started.
    pub started: SystemTime,
    /// The history, for queries and exports.
    pub history: SharedHistory,
    /// The rule engine, for `/api/v1/rules` and `/api/v1/alerts`.
    pub engine: SharedEngine,
    /// The PromQL semantics `/api/v1/query` and `/api/v1/query_range` evaluate with
    /// (`cluster.monitoring.promql_semantics`).
    pub promql_semantics: Semantics,
    /// Where to reload the configuration from, when `POST /-/reload` is enabled (a token is
    /// configured, or `--web.enable-lifecycle`).
    pub reload: Option<ConfigSource>,
    /// The token state-changing routes require (`--web.token-file`), if any.
    pub token: Option<WebToken>,
    /// Recent recovery action runs, for `/api/v1/actions` and the dashboard.
    pub audit: AuditLog,
    /// The recovery actions' dispatcher (none when monitoring is off).
    pub actions: Option<Actions>,
    /// Serve the state-changing action endpoints (`--web.enable-remote-actions`).
    pub remote_actions: bool,
    /// How the dashboard is served; `None` when `cluster.dashboard.enabled` is false.
    pub dashboard: Option<DashboardSettings>,
}
