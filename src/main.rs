//! The `ipfs-sentinel` command line: parses arguments, loads the configuration, starts the
//! parts. No logic of its own.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use ipfs_sentinel::clock::system_ms;
use ipfs_sentinel::config::{Config, Threshold, EMBEDDED_DEFAULT};
use ipfs_sentinel::history::export::{Export, Format};
use ipfs_sentinel::history::query::{Selector, WindowParams};
use ipfs_sentinel::http::auth::WebToken;
use ipfs_sentinel::http::connections::{Limits, ServerOptions};
use ipfs_sentinel::http::web_reload::LiveWebConfig;
use ipfs_sentinel::rules::load::{Group, SHORT_FORM_GROUP};
use ipfs_sentinel::rules::reload::ConfigSource;
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
        /// Serve POST /-/reload, which re-reads the configuration and rule files (SIGHUP does
        /// too). Off by default, as in Prometheus: the endpoint changes state.
        #[arg(long = "web.enable-lifecycle")]
        enable_lifecycle: bool,
        /// Serve POST /api/v1/alertmanager/webhook (Alertmanager's webhook receiver) and
        /// POST /api/v1/actions/NAME/run (peer sentinels running actions here). Off by
        /// default: both make this node run recovery actions.
        #[arg(long = "web.enable-remote-actions")]
        enable_remote_actions: bool,
        /// Run no recovery action: record, log and count what would have run, cool-downs
        /// included (as cluster.monitoring.actions.dry_run: true).
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        web: WebArgs,
    },
    /// Check a configuration file: prints a summary and exits 0, or the error and exits 1.
    CheckConfig {
        /// The YAML file to check.
        file: PathBuf,
    },
    /// Print the embedded default configuration, a commented starting point for your own.
    PrintDefaultConfig,
    /// Check Prometheus rule files as `promtool check rules` does: exit 0 and a summary, or
    /// each error (file, line, column, group, rule) and exit 1.
    CheckRules {
        /// Rule files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run rule unit tests in promtool's format (`promtool test rules`), with its verdicts:
    /// exit 0 when every test passes, 1 otherwise.
    TestRules {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Work with the loaded rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Export the history as CSV, JSON or OpenMetrics, from a running sentinel (--url) or a
    /// data dir.
    ///
    /// Raw samples by default; with --step, one point per step (the last sample, or --fn).
    /// Bad input exits with status 2.
    Export(ExportArgs),
    /// Write the dashboard page once, from a running sentinel (--url) or a data dir, for
    /// mailing or archiving. The page needs no network: its charts are inline SVG.
    Dashboard(DashboardArgs),
}

#[derive(clap::Args)]
struct DashboardArgs {
    /// The HTML file to write.
    #[arg(long, short = 'o', value_name = "FILE.html")]
    output: PathBuf,
    /// Read from a running sentinel, e.g. http://127.0.0.1:9401.
    #[arg(long, value_name = "URL", conflicts_with_all = ["data_dir", "config"])]
    url: Option<String>,
    /// Read the data dir directly, touching nothing (default: the serve default).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The configuration the data dir was written with (node id, retention, rules).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

/// `serve`'s web security and limits.
#[derive(clap::Args)]
struct WebArgs {
    /// Web configuration in Prometheus exporter-toolkit's format, the file node_exporter's
    /// --web.config.file takes: tls_server_config (TLS, client certificates),
    /// basic_auth_users (bcrypt hashes), http_server_config.headers.
    #[arg(long = "web.config.file", value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// A file holding the token that state-changing endpoints (POST /-/reload, ...) require as
    /// `Authorization: Bearer TOKEN`; with it they are on without their --web.enable-* switch.
    /// The token itself is never given on the command line.
    #[arg(
        long = "web.token-file",
        value_name = "FILE",
        env = "IPFS_SENTINEL_WEB_TOKEN_FILE"
    )]
    token_file: Option<PathBuf>,
    /// The longest a connection may take, from its start, to send a request head; slow
    /// clients are cut there.
    #[arg(long = "web.header-read-timeout", value_name = "DURATION", default_value = "10s", value_parser = ipfs_sentinel::clock::parse_std_duration)]
    header_read_timeout: std::time::Duration,
    /// Connections served at once; past it a new one gets 503 at once.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// The largest request body taken, in bytes (larger: 413).
    #[arg(
        long = "web.max-request-body-bytes",
        value_name = "BYTES",
        default_value_t = 1 << 20
    )]
    max_request_body_bytes: usize,
}

impl WebArgs {
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

#[derive(Subcommand)]
enum RulesCommand {
    /// Print every rule the configuration loads (its short-form alerts included) as one
    /// Prometheus rule file, for `promtool check rules` and for Prometheus itself.
    Export {
        /// The configuration (default: the embedded defaults).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ExportArgs {
    /// csv: timestamp,metric,<labels...>,value rows; json: see the README; openmetrics: for
    /// `promtool tsdb create-blocks-from openmetrics`.
    #[arg(long, default_value = "csv", value_parser = ["csv", "json", "openmetrics"])]
    format: String,
    /// Series selector, e.g. 'ipfs_sentinel_node_disk_usage_ratio{mountpoint="/"}' (default: all).
    #[arg(long = "match", value_name = "SELECTOR")]
    selector: Option<String>,
    /// How far back from now, e.g. 24h, 30m (default: everything kept).
    #[arg(long, value_name = "DURATION")]
    range: Option<String>,
    /// One point per step, e.g. 1h (default: every sample).
    #[arg(long, value_name = "DURATION")]
    step: Option<String>,
    /// Aggregation per step: avg, min, max, sum, count, last, rate, increase.
    #[arg(long = "fn", value_name = "FUNCTION")]
    function: Option<String>,
    /// Write here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Read from a running sentinel, e.g. http://127.0.0.1:9401.
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    url: Option<String>,
    /// Read the data dir directly, touching nothing (default: the serve default).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The configuration the data dir was written with (for its retention).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            enable_lifecycle,
            enable_remote_actions,
            dry_run,
            web,
        } => report(serve(
            config.as_deref(),
            listen,
            data_dir,
            Switches {
                enable_lifecycle,
                enable_remote_actions,
                dry_run,
            },
            &web,
        )),
        Command::CheckConfig { file } => {
            let source = ConfigSource {
                path: Some(file.clone()),
            };
            match source.load() {
                Ok((config, groups)) => {
                    print!("{}", summary(&file, &config));
                    let files: Vec<&Group> = groups
                        .iter()
                        .filter(|g| g.name != SHORT_FORM_GROUP)
                        .collect();
                    println!(
                        "  {} rule group(s) with {} rule(s) from rule_files",
                        files.len(),
                        files.iter().map(|g| g.rules.len()).sum::<usize>()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    // A configuration error is already one line naming file, line and key.
                    eprintln!(
                        "{}",
                        if e.place == "configuration" {
                            e.reason
                        } else {
                            e.to_string()
                        }
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Command::PrintDefaultConfig => {
            print!("{EMBEDDED_DEFAULT}");
            ExitCode::SUCCESS
        }
        Command::CheckRules { files } => check_rules(&files),
        Command::TestRules { files } => test_rules(&files),
        Command::Rules {
            command: RulesCommand::Export { config },
        } => {
            let source = ConfigSource { path: config };
            match source.load() {
                Ok((config, groups)) => {
                    let interval =
                        (config.cluster.monitoring.collection_interval_seconds.0 * 1000.0) as i64;
                    match ipfs_sentinel::rules::rulefile::to_yaml(&groups, interval) {
                        Ok(yaml) => {
                            print!("{yaml}");
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            eprintln!("{e}");
                            ExitCode::FAILURE
                        }
                    }
                }
                Err(e) => {
                    eprintln!(
                        "{}",
                        if e.place == "configuration" {
                            e.reason
                        } else {
                            e.to_string()
                        }
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Command::Dashboard(args) => report(dashboard(args)),
        Command::Export(args) => match export(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(ExportFailure::BadInput(reason)) => {
                eprintln!("ipfs-sentinel export: {reason}");
                ExitCode::from(2)
            }
            Err(ExportFailure::Failed(e)) => {
                eprintln!("ipfs-sentinel export: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `check-rules`: every file checked, every error shown.
fn check_rules(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        println!("Checking {}", file.display());
        match ipfs_sentinel::rules::load::check_file(file) {
            Ok(groups) => {
                let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
                println!("  SUCCESS: {rules} rules found");
            }
            Err(errors) => {
                failed = true;
                println!("  FAILED:");
                for e in errors {
                    eprintln!("{e}");
                }
            }
        }
        println!();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `test-rules`: every file run, promtool's output shape.
fn test_rules(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        println!("Unit Testing:  {}", file.display());
        match ipfs_sentinel::rules::promtool_test::run_file(file) {
            Ok(outcome) if outcome.failures.is_empty() => println!("  SUCCESS"),
            Ok(outcome) => {
                failed = true;
                println!("  FAILED:");
                for f in &outcome.failures {
                    println!("{f}");
                }
            }
            Err(e) => {
                failed = true;
                println!("  FAILED:");
                println!("    {e}");
            }
        }
        println!();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

enum ExportFailure {
    /// The request itself is wrong: exit 2.
    BadInput(String),
    /// Reading or writing failed: exit 1.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for ExportFailure {
    fn from(e: anyhow::Error) -> Self {
        ExportFailure::Failed(e)
    }
}

fn export(args: ExportArgs) -> Result<(), ExportFailure> {
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match &args.url {
        Some(url) => export_from_url(&args, url, &mut out)?,
        None => export_from_data_dir(&args, &mut out)?,
    }
    out.flush().context("cannot write the export")?;
    Ok(())
}

fn export_from_url(args: &ExportArgs, url: &str, out: &mut dyn Write) -> Result<(), ExportFailure> {
    let mut query: Vec<(&str, &str)> = vec![("format", &args.format)];
    for (key, value) in [
        ("match", &args.selector),
        ("range", &args.range),
        ("step", &args.step),
        ("fn", &args.function),
    ] {
        if let Some(v) = value {
            query.push((key, v));
        }
    }
    let endpoint = format!("{}/api/v1/export", url.trim_end_matches('/'));
    let (runtime, client) = cli_http()?;
    runtime.block_on(async {
        let mut response = client
            .get(&endpoint)
            .query(&query)
            .send()
            .await
            .with_context(|| format!("cannot reach {endpoint}; is the sentinel running there?"))?;
        if response.status() == reqwest::StatusCode::BAD_REQUEST {
            let reason = response.text().await.unwrap_or_default();
            return Err(ExportFailure::BadInput(reason.trim().to_owned()));
        }
        if !response.status().is_success() {
            return Err(anyhow::anyhow!("{endpoint}: HTTP {}", response.status()).into());
        }
        let progress = indicatif::ProgressBar::new_spinner();
        progress.set_message("exporting");
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("{endpoint}: the export was cut off"))?
        {
            out.write_all(&chunk).context("cannot write the export")?;
            progress.inc(chunk.len() as u64);
        }
        progress.finish_and_clear();
        Ok(())
    })
}

fn export_from_data_dir(args: &ExportArgs, out: &mut dyn Write) -> Result<(), ExportFailure> {
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| ExportFailure::BadInput(e.to_string()))?,
        None => Config::default(),
    };
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => default_data_dir()?,
    };
    if !data_dir.join("history").is_dir() {
        return Err(ExportFailure::BadInput(format!(
            "{} holds no history; pass --data-dir, or --url to read a running sentinel",
            data_dir.display()
        )));
    }
    let selector = match &args.selector {
        Some(s) => Selector::parse(s).map_err(|e| ExportFailure::BadInput(e.0))?,
        None => Selector::all(),
    };
    let format: Format = args.format.parse().map_err(ExportFailure::BadInput)?;
    let (history, _) = sentinel::open_history(&config, &data_dir, true)
        .with_context(|| format!("cannot read the history in {}", data_dir.display()))?;
    let params = WindowParams {
        range: args.range.as_deref(),
        step: args.step.as_deref(),
        function: args.function.as_deref(),
        ..WindowParams::default()
    };
    let window = params
        .check(
            history.first_tick(),
            system_ms(std::time::SystemTime::now()),
            false,
        )
        .map_err(|e| ExportFailure::BadInput(e.0))?;
    let plan = Export::new(format, window, history.series(|k| selector.matches(k)));
    let progress = indicatif::ProgressBar::new(plan.keys().len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} series {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    plan.write_all(&history, out, |done| progress.set_position(done as u64))
        .context("cannot write the export")?;
    progress.finish_and_clear();
    Ok(())
}

/// A runtime and an HTTP client with the CLI's timeouts, for commands that read a running
/// sentinel.
fn cli_http() -> anyhow::Result<(tokio::runtime::Runtime, reqwest::Client)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(60))
        .build()
        .context("cannot build an HTTP client")?;
    Ok((runtime, client))
}

fn dashboard(args: DashboardArgs) -> anyhow::Result<()> {
    let html = match &args.url {
        Some(url) => {
            let endpoint = format!("{}/dashboard", url.trim_end_matches('/'));
            let (runtime, client) = cli_http()?;
            runtime.block_on(async {
                let response = client
                    .get(&endpoint)
                    .query(&[("refresh", "0")])
                    .send()
                    .await
                    .with_context(|| {
                        format!("cannot reach {endpoint}; is the sentinel running there?")
                    })?;
                let status = response.status();
                let body = response
                    .text()
                    .await
                    .with_context(|| format!("{endpoint}: the page was cut off"))?;
                anyhow::ensure!(
                    status.is_success(),
                    "{endpoint}: HTTP {status}: {}; is the dashboard enabled there (cluster.dashboard)?",
                    body.trim()
                );
                Ok(body)
            })?
        }
        None => {
            let source = ConfigSource {
                path: args.config.clone(),
            };
            let (config, groups) = source.load().map_err(|e| anyhow::anyhow!("{e}"))?;
            let data_dir = match &args.data_dir {
                Some(dir) => dir.clone(),
                None => default_data_dir()?,
            };
            anyhow::ensure!(
                data_dir.join("history").is_dir(),
                "{} holds no history; pass --data-dir, or --url to read a running sentinel",
                data_dir.display()
            );
            ipfs_sentinel::http::dashboard::render_from_data_dir(
                &config,
                groups,
                &data_dir,
                std::time::SystemTime::now(),
            )?
        }
    };
    std::fs::write(&args.output, html)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    Ok(())
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

/// The on/off flags of `serve`.
struct Switches {
    enable_lifecycle: bool,
    enable_remote_actions: bool,
    dry_run: bool,
}

fn serve(
    config: Option<&Path>,
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
    switches: Switches,
    web: &WebArgs,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: journald and log files get plain `key=value` lines.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config_path = config.map(Path::to_path_buf);
    let config = match config {
        Some(path) => Config::load(path)?,
        None => Config::parse(EMBEDDED_DEFAULT, "<embedded default config>")?,
    };
    let (server, token) = web.load()?;
    for warning in &server.web.current().warnings {
        tracing::warn!("web config: {warning}");
    }
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
            tls = server.web.current().tls.is_some(),
            basic_auth = !server.web.current().users.is_empty(),
            token = token.is_some(),
            "ipfs-sentinel {} started",
            env!("CARGO_PKG_VERSION")
        );
        let options = sentinel::Options {
            data_dir,
            source: ConfigSource { path: config_path },
            enable_lifecycle: switches.enable_lifecycle,
            enable_remote_actions: switches.enable_remote_actions,
            dry_run: switches.dry_run,
            token,
            server,
        };
        sentinel::serve(config, listener, options, shutdown_signal()).await?;
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
