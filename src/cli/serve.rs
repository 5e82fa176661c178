//! `serve`: sets up logging, reads the configuration and the web security files, creates the
//! data dir, binds the listener, and runs the sentinel on a multi-threaded runtime until
//! SIGTERM or SIGINT.
//!
//! Owns the process around the sentinel (logging, runtime, signals); the sentinel itself is
//! `sentinel::serve`'s.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use ipfs_sentinel::config::{Config, EMBEDDED_DEFAULT};
use ipfs_sentinel::http::connections::{Limits, ServerOptions};
use ipfs_sentinel::http::token::WebToken;
use ipfs_sentinel::http::web_reload::LiveWebConfig;
use ipfs_sentinel::rules::reload::ConfigSource;
use ipfs_sentinel::sentinel;

/// What `serve` was asked.
pub struct Request {
    /// The configuration file (default: the embedded one).
    pub config: Option<PathBuf>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where state is kept (default: the serve default).
    pub data_dir: Option<PathBuf>,
    /// `--web.enable-lifecycle`.
    pub enable_lifecycle: bool,
    /// `--web.enable-remote-actions`.
    pub enable_remote_actions: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// The web security and limits.
    pub web: Web,
}

/// `serve`'s web security files and limits.
pub struct Web {
    /// `--web.config.file`.
    pub config_file: Option<PathBuf>,
    /// `--web.token-file`.
    pub token_file: Option<PathBuf>,
    /// `--web.header-read-timeout`.
    pub header_read_timeout: Duration,
    /// `--web.max-connections`.
    pub max_connections: u32,
    /// `--web.max-request-body-bytes`.
    pub max_request_body_bytes: usize,
}

impl Web {
    /// The server options and token these flags ask for; reads the files now.
    fn load(&self) -> anyhow::Result<(ServerOptions, Option<WebToken>)> {
        let web = match &self.config_file {
            Some(path) => LiveWebConfig::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
            None => LiveWebConfig::default(),
        };
        let token = self.token_file.as_deref().map(WebToken::read).transpose()?;
        let limits = Limits {
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections as usize,
            max_body_bytes: self.max_request_body_bytes,
            ..Limits::default()
        };
        Ok((
            ServerOptions {
                web,
                limits,
                stats: Default::default(),
            },
            token,
        ))
    }
}

/// Runs the sentinel until SIGTERM or SIGINT.
pub fn run(request: Request) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: journald and log files get plain `key=value` lines.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config_name = match &request.config {
        Some(path) => path.display().to_string(),
        None => "<embedded default config>".to_owned(),
    };
    let config = match &request.config {
        Some(path) => Config::load(path)?,
        None => Config::parse(EMBEDDED_DEFAULT, &config_name)?,
    };
    for warning in config.warnings(&config_name) {
        tracing::warn!("{warning}");
    }
    let (server, token) = request.web.load()?;
    for warning in &server.web.current().warnings {
        tracing::warn!("web config: {warning}");
    }
    let data_dir = match request.data_dir {
        Some(dir) => dir,
        None => super::default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir).with_context(|| {
        format!(
            "cannot create the data dir {}; pass --data-dir",
            data_dir.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let listen = request.listen;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!("cannot listen on {listen}; is another process using it? pass --listen")
            })?;
        let local = listener.local_addr()?;
        let scheme = if server.web.current().tls.is_some() {
            "https"
        } else {
            "http"
        };
        let dashboard = &config.cluster.dashboard;
        let dashboard_at = match (dashboard.enabled, &dashboard.host, dashboard.port) {
            (false, _, _) => "off".to_owned(),
            (true, Some(host), Some(port)) => {
                format!("{scheme}://{host}:{port}/ (its own listener)")
            }
            (true, _, _) => format!("{scheme}://{local}/"),
        };
        tracing::info!(
            listen = %local,
            metrics = %format!("{scheme}://{local}/metrics"),
            dashboard = %dashboard_at,
            data_dir = %data_dir.display(),
            node_id = %config.cluster.node_id,
            ipfs_api = %config.ipfs.api_url,
            tls = server.web.current().tls.is_some(),
            basic_auth = !server.web.current().users.is_empty(),
            token = token.is_some(),
            "ipfs-sentinel {} started",
            env!("CARGO_PKG_VERSION")
        );
        let options = sentinel::Options {
            data_dir,
            source: ConfigSource {
                path: request.config,
            },
            enable_lifecycle: request.enable_lifecycle,
            enable_remote_actions: request.enable_remote_actions,
            dry_run: request.dry_run,
            token,
            server,
        };
        sentinel::serve(config, listener, options, shutdown_signal()).await?;
        tracing::info!("ipfs-sentinel stopped");
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
