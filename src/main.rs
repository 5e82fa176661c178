//! The `ipfs-sentinel` command line: parses arguments, loads the configuration, starts the
//! parts. No logic of its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use ipfs_sentinel::config::{Config, Threshold, EMBEDDED_DEFAULT};
use ipfs_sentinel::{dotted, sentinel};

/// Monitor for IPFS (Kubo) nodes and clusters: exposes node and IPFS metrics to Prometheus.
///
/// Start with `ipfs-sentinel serve`: with no configuration it runs on embedded defaults,
/// listens on 127.0.0.1:9401 and serves /metrics, even when no IPFS node is running
/// (ipfs_sentinel_ipfs_up is then 0).
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Collect metrics in the background and serve them on /metrics.
    Serve {
        /// YAML configuration file (default: the embedded defaults; see print-default-config).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address to listen on. Keep it on loopback unless a firewall or TLS proxy guards it.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9401")]
        listen: SocketAddr,
        /// Directory for state kept across restarts (default: $XDG_STATE_HOME/ipfs-sentinel,
        /// or ~/.local/state/ipfs-sentinel).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Check a configuration file: prints a summary and exits 0, or the error and exits 1.
    CheckConfig {
        /// The YAML file to check.
        file: PathBuf,
    },
    /// Print the embedded default configuration, a commented starting point for your own.
    PrintDefaultConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => report(serve(config.as_deref(), listen, data_dir)),
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(config) => {
                print!("{}", summary(&file, &config));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::PrintDefaultConfig => {
            print!("{EMBEDDED_DEFAULT}");
            ExitCode::SUCCESS
        }
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipfs-sentinel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    config: Option<&Path>,
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match config {
        Some(path) => Config::load(path)?,
        None => Config::parse(EMBEDDED_DEFAULT, "<embedded default config>")?,
    };
    let data_dir = match data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
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
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!("cannot listen on {listen}; is another process using it? pass --listen")
            })?;
        tracing::info!(
            listen = %listener.local_addr()?,
            data_dir = %data_dir.display(),
            node_id = %config.cluster.node_id,
            ipfs_api = %config.ipfs.api_url,
            "ipfs-sentinel {} started",
            env!("CARGO_PKG_VERSION")
        );
        sentinel::serve(config, listener, shutdown_signal()).await?;
        tracing::info!("ipfs-sentinel stopped");
        Ok(())
    })
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(state).join("ipfs-sentinel"));
    }
    let home = std::env::var_os("HOME")
        .filter(|s| !s.is_empty())
        .context("neither XDG_STATE_HOME nor HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/state/ipfs-sentinel"))
}

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

/// The human summary `check-config` prints for a valid file.
fn summary(file: &Path, config: &Config) -> String {
    let m = &config.cluster.monitoring;
    let mut out = format!(
        "{}: valid\n  node {} ({}), IPFS API {}\n  collection every {}s (collector timeout {}s), history {}h, monitoring {}\n",
        file.display(),
        config.cluster.node_id,
        config.cluster.role.as_str(),
        config.ipfs.api_url,
        m.collection_interval_seconds.0,
        m.collector_timeout_seconds.0,
        m.metrics_history_duration_hours.0,
        if m.enabled { "enabled" } else { "disabled" },
    );
    out += &format!("  {} alert(s):\n", m.alerts.len());
    for alert in &m.alerts {
        let threshold = match &alert.threshold.value {
            Threshold::Number(n) => n.to_string(),
            Threshold::State(s) => s.clone(),
        };
        // The metric was checked against the table when the file was loaded.
        let condition = dotted::lookup(&alert.metric.value)
            .map(|d| d.condition(alert.operator.as_str(), &threshold))
            .unwrap_or_default();
        let actions: Vec<&str> = alert.action_names().map(|a| a.value.as_str()).collect();
        out += &format!(
            "    {} {} {} ({}{}){}: {}\n",
            alert.metric.value,
            alert.operator.as_str(),
            threshold,
            alert.severity.as_str(),
            if alert.duration_minutes.0 > 0.0 {
                format!(", for {}m", alert.duration_minutes.0)
            } else {
                String::new()
            },
            if actions.is_empty() {
                String::new()
            } else {
                format!(" -> {}", actions.join(", "))
            },
            condition,
        );
    }
    out += &format!("  {} recovery action(s):\n", m.recovery_actions.len());
    for (name, action) in &m.recovery_actions {
        out += &format!("    {name}: {}\n", action.describe());
    }
    out
}
