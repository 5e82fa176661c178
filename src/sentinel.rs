//! Wires the parts together from a [`Config`]: it constructs each stage and spawns its `run`
//! function, all stopped by one shutdown signal. The data flows one way, and the wiring shows
//! it: collection loop -> exposition cache and history recorder -> rules task (a read view of
//! the history) -> recovery actions (alert sightings over a channel).
//!
//! Owns start-up and shutdown order and nothing else: each part keeps its own logic. Shutdown
//! (SIGTERM, SIGINT): the server stops accepting and finishes in-flight requests, then the
//! collectors, the recorder and the rules stop, the recorder writing what it holds only in
//! memory, then the dispatcher saves its outbox.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::actions;
use crate::actions::audit::{AuditCollector, AuditLog};
use crate::actions::deliver::Settings;
use crate::actions::dispatcher::SIGHTINGS_CAPACITY;
use crate::actions::outbox::Outbox;
use crate::actions::stats::{ActionsCollector, Stats};
use crate::clock::system_ms;
use crate::collect::ipfs::IpfsCollector;
use crate::collect::ipfs_cluster::IpfsClusterCollector;
use crate::collect::node::NodeCollector;
use crate::collect::peers::PeersCollector;
use crate::collect::{self, CollectError, Collector, COLLECTIONS_CAPACITY};
use crate::config::Config;
use crate::exposition::ExpositionCache;
use crate::history::landing::Landing;
use crate::history::recorder::{self, HistoryCollector, SharedHistory, WriteHealth};
use crate::http::connections::{self, HttpCollector, ServerOptions};
use crate::http::server;
use crate::http::state::{AppState, DashboardSettings};
use crate::http::token::{self, WebToken};
use crate::model::Snapshot;
use crate::remote_write::{self, RemoteWriteCollector, RemoteWriteStats};
use crate::rules::load::RuleError;
use crate::rules::reload::{self as rules_reload, ConfigSource, SharedEngine};
use crate::rules::task::{self as rules_task, RulesTask};
use crate::rules::RulesCollector;
use crate::status::Identity;

/// Why the sentinel could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A collector could not be built.
    #[error("cannot start the collectors: {0}")]
    Collectors(#[from] CollectError),
    /// The rules could not be loaded.
    #[error("{0}")]
    Rules(#[from] RuleError),
    /// A remote write receiver could not be set up.
    #[error("{0}")]
    RemoteWrite(#[from] remote_write::RemoteWriteError),
    /// The history in the data dir could not be opened.
    #[error("cannot open the history in the data dir: {0}")]
    History(std::io::Error),
    /// The recovery actions' files in the data dir could not be opened.
    #[error("cannot open the recovery actions' files in the data dir: {0}")]
    Actions(std::io::Error),
    /// The server failed.
    #[error("HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
    /// The dashboard's own listener could not be set up.
    #[error("cluster.dashboard: {0}")]
    DashboardListener(String),
}

/// The collectors this configuration asks for, in the order they are listed. The cluster
/// collector reads this node's own state from `local`; the history collector reads how
/// writing the history goes from `writes`; the actions collector exposes `action_stats`.
pub fn collectors(
    config: &Config,
    local: &ExpositionCache,
    history: &SharedHistory,
    writes: &Arc<WriteHealth>,
    engine: &SharedEngine,
    action_stats: &Stats,
) -> Result<Vec<Box<dyn Collector>>, CollectError> {
    let mut collectors: Vec<Box<dyn Collector>> = vec![
        Box::new(NodeCollector::new()),
        Box::new(IpfsCollector::new(&config.ipfs)?),
        Box::new(PeersCollector::new(&config.cluster, local.clone())?),
        Box::new(HistoryCollector::new(
            Arc::clone(history),
            Arc::clone(writes),
        )),
        Box::new(RulesCollector::new(Arc::clone(engine))),
        Box::new(ActionsCollector::new(action_stats.clone())),
    ];
    if let Some(ipfs_cluster) = &config.cluster.ipfs_cluster {
        collectors.push(Box::new(IpfsClusterCollector::new(ipfs_cluster)?));
    }
    Ok(collectors)
}

/// How a sentinel runs, beyond its configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where state is kept across restarts.
    pub data_dir: PathBuf,
    /// Where the configuration came from, to reload it.
    pub source: ConfigSource,
    /// Serve `POST /-/reload` (Prometheus's `--web.enable-lifecycle`); a token turns it on too.
    pub enable_lifecycle: bool,
    /// Serve the Alertmanager webhook receiver and the remote action endpoint.
    pub enable_remote_actions: bool,
    /// Run no recovery action; record what would have run.
    pub dry_run: bool,
    /// The token state-changing endpoints require (`--web.token-file`).
    pub token: Option<WebToken>,
    /// The web configuration (TLS, basic auth, headers) and the server's limits.
    pub server: ServerOptions,
}

/// How the dashboard is served, from `cluster.dashboard`.
fn dashboard_settings(config: &Config) -> Option<DashboardSettings> {
    let d = &config.cluster.dashboard;
    d.enabled.then(|| DashboardSettings {
        refresh_seconds: d.refresh_interval_seconds.0,
        own_listener: d.host.is_some() || d.port.is_some(),
    })
}

/// The dashboard's own listener, when `cluster.dashboard` names a host and a port.
async fn dashboard_listener(config: &Config) -> Result<Option<TcpListener>, ServeError> {
    let d = &config.cluster.dashboard;
    if !d.enabled {
        return Ok(None);
    }
    match (&d.host, d.port) {
        (None, None) => Ok(None),
        (Some(host), Some(port)) => TcpListener::bind((host.as_str(), port))
            .await
            .map(Some)
            .map_err(|e| {
                ServeError::DashboardListener(format!(
                    "cannot listen on {host}:{port}: {e}; is another process using it? change host or port"
                ))
            }),
        _ => Err(ServeError::DashboardListener(
            "host and port go together: give both to serve the dashboard on a listener of its own, or neither".into(),
        )),
    }
}

/// Runs the sentinel on `listener` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let engine = rules_reload::start(
        &config,
        &options.source,
        &options.data_dir,
        system_ms(SystemTime::now()),
    )?;
    let (history, persistence) =
        crate::history::open(&config, &options.data_dir, false).map_err(ServeError::History)?;
    let history: SharedHistory = Arc::new(RwLock::new(history));
    let writes = Arc::new(WriteHealth::default());
    let cache = ExpositionCache::new(Snapshot::new(
        SystemTime::now(),
        vec![collect::build_info()],
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        // Either a `true` or a dropped sender means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let monitoring = &config.cluster.monitoring;
    let actions_dir = options.data_dir.join("actions");
    let audit = AuditLog::open_with(&actions_dir, &monitoring.actions.audit)
        .map_err(ServeError::Actions)?;
    // A torn line's note and records kept from the pre-chain file go in now; a failure is
    // counted and logged, and retried at each collection.
    let _ = audit.flush();
    let (outbox, set_aside) = Outbox::open(&actions_dir).map_err(ServeError::Actions)?;
    if let Some(warning) = set_aside {
        tracing::warn!("{warning}");
    }
    tokio::spawn(options.server.web.clone().watch(stopped(stop_rx.clone())));
    let action_stats = Stats::default();
    let (sightings_tx, sightings_rx) = mpsc::channel(SIGHTINGS_CAPACITY);
    let (actions, dispatcher) = actions::dispatcher::start(
        Settings::new(
            &config.cluster,
            config.ipfs.api_url.clone(),
            options.dry_run,
        ),
        outbox,
        audit.clone(),
        action_stats.clone(),
        actions::dispatcher::Views {
            history: Some(Arc::clone(&history)),
            latest: Some(cache.clone()),
        },
        sightings_rx,
        stopped(stop_rx.clone()),
    )
    .map_err(|e| ServeError::Actions(std::io::Error::other(e)))?;
    let loops = if monitoring.enabled {
        let mut collectors =
            collectors(&config, &cache, &history, &writes, &engine, &action_stats)?;
        collectors.push(Box::new(AuditCollector::new(audit.clone())));
        // Remote write reads the history downstream of the recorder, one task per receiver.
        let receivers = monitoring
            .remote_write
            .iter()
            .map(|r| {
                remote_write::Receiver::new(
                    r,
                    &monitoring.external_labels,
                    &config.cluster.node_id,
                    &options.data_dir,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let remote_stats = RemoteWriteStats(receivers.iter().map(|r| r.stats()).collect());
        if !receivers.is_empty() {
            collectors.push(Box::new(RemoteWriteCollector::new(
                remote_stats,
                Arc::clone(&history),
            )));
        }
        collectors.push(Box::new(HttpCollector::new(
            options.server.stats.clone(),
            options.server.web.clone(),
        )));
        let (collections_tx, collections_rx) = mpsc::channel(COLLECTIONS_CAPACITY);
        let (appended_tx, appended_rx) = watch::channel(None);
        let collecting = collect::spawn(
            collectors,
            monitoring.collection_interval_seconds.duration(),
            monitoring.collector_timeout_seconds.duration(),
            collect::publisher(cache.clone(), collections_tx),
            stopped(stop_rx.clone()),
        )?;
        let recording = tokio::spawn(recorder::run(
            Arc::clone(&history),
            persistence,
            Arc::clone(&writes),
            collections_rx,
            appended_tx,
            stopped(stop_rx.clone()),
        ));
        let landing = Arc::new(Landing::default());
        let pacing = remote_write::Pacing {
            retention_ms: (monitoring.metrics_history_duration_hours.0 * 3_600_000.0) as i64,
        };
        let mut loops: Vec<_> = receivers
            .into_iter()
            .map(|r| {
                tokio::spawn(remote_write::run(
                    r,
                    Arc::clone(&history),
                    appended_rx.clone(),
                    Arc::clone(&landing),
                    pacing,
                    stop_rx.clone(),
                ))
            })
            .collect();
        let evaluating = tokio::spawn(rules_task::run(
            RulesTask {
                engine: Arc::clone(&engine),
                history: Arc::clone(&history),
                data_dir: options.data_dir.clone(),
                sightings: sightings_tx,
                clock: rules_task::wall_clock(),
                landing,
            },
            appended_rx,
            stopped(stop_rx.clone()),
        ));
        loops.extend([collecting, recording, evaluating]);
        loops
    } else {
        tracing::info!("cluster.monitoring.enabled is false: serving build info only");
        cache.publish(
            Snapshot::new(SystemTime::now(), vec![collect::build_info()]),
            true,
        );
        Vec::new()
    };

    let state = AppState {
        metrics: cache,
        identity: Identity {
            node_id: config.cluster.node_id.clone(),
            role: config.cluster.role,
        },
        started: SystemTime::now(),
        history,
        engine: Arc::clone(&engine),
        promql_semantics: config.cluster.monitoring.promql_semantics,
        reload: token::routes_enabled(options.token.as_ref(), options.enable_lifecycle)
            .then(|| options.source.clone()),
        token: options.token.clone(),
        audit,
        actions: Some(actions.clone()),
        remote_actions: token::routes_enabled(
            options.token.as_ref(),
            options.enable_remote_actions,
        ),
        dashboard: dashboard_settings(&config),
    };
    let dashboard_listener = dashboard_listener(&config).await?;
    tokio::spawn(rules_reload::on_sighup(
        options.source.clone(),
        Arc::clone(&engine),
        move |config| {
            let actions = actions.clone();
            async move {
                let settings = Settings::of(&config, actions.dry_run_forced());
                actions.reload(settings).await;
            }
        },
        stopped(stop_rx.clone()),
    ));
    if let Some(l) = &dashboard_listener {
        let scheme = if options.server.web.current().tls.is_some() {
            "https"
        } else {
            "http"
        };
        if let Ok(local) = l.local_addr() {
            tracing::info!(
                listen = %local,
                dashboard = %format!("{scheme}://{local}/"),
                "the dashboard listens on its own listener (cluster.dashboard.host and port)"
            );
        }
    }
    let dashboard_served = dashboard_listener.map(|l| {
        let app = connections::guard(
            server::dashboard_router(state.clone()),
            &options.server.web,
            state.token.clone(),
        );
        let stop = stopped(stop_rx.clone());
        tokio::spawn(connections::serve(l, app, options.server.clone(), stop))
    });
    // Shutdown, in order: the servers stop accepting and finish in-flight requests; then
    // the collectors, the recorder and the rules stop, the recorder writing what it holds
    // only in memory.
    let served = server::run_with(listener, state, options.server.clone(), shutdown).await;
    let _ = stop_tx.send(true);
    if let Some(handle) = dashboard_served {
        let _ = handle.await;
    }
    for handle in loops {
        let _ = handle.await;
    }
    // The dispatcher saves its outbox as it stops.
    let _ = dispatcher.await;
    Ok(served?)
}
