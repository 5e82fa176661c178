//! The `ipfs-sentinel` command line: parses arguments and hands each command to [`cli`], where
//! what it does lives. No logic of its own.

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use ipfs_sentinel::config::EMBEDDED_DEFAULT;
use ipfs_sentinel::model::Semantics;

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
    /// Check a configuration file: prints a summary (and warnings: likely mistakes) and exits
    /// 0, or the error and exits 1; with --strict, warnings exit 1 too.
    CheckConfig {
        /// The YAML file to check.
        file: PathBuf,
        /// Fail (exit 1) on warnings too: likely mistakes in a valid file, such as a
        /// `node.status == Offline` alert without peers.
        #[arg(long)]
        strict: bool,
    },
    /// Print the embedded default configuration, a commented starting point for your own.
    PrintDefaultConfig,
    /// Check Prometheus rule files as `promtool check rules` does: exit 0 and a summary, or
    /// each error (file, line, column, group, rule) and exit 1.
    CheckRules {
        /// Rule files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Which Prometheus release's PromQL the expressions are read as: prometheus-3
        /// (Prometheus 3.5 LTS) or prometheus-2.42 (as promtool 2.42 reads them).
        #[arg(long, value_name = "SEMANTICS", default_value_t = Semantics::default())]
        promql: Semantics,
    },
    /// Run rule unit tests in promtool's format (`promtool test rules`), with its verdicts:
    /// exit 0 when every test passes, 1 otherwise.
    TestRules {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Which Prometheus release's PromQL the rules and expressions are evaluated with:
        /// prometheus-3 (Prometheus 3.5 LTS: left-open range windows) or prometheus-2.42 (the
        /// verdicts of promtool 2.42, float for float).
        #[arg(long, value_name = "SEMANTICS", default_value_t = Semantics::default())]
        promql: Semantics,
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
    /// Recovery actions: answer a running sentinel's proposals (approve, reject), reset its
    /// circuit breaker, or verify and export the audit log of a data dir.
    Actions {
        #[command(subcommand)]
        command: ActionsCommand,
    },
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

#[derive(Subcommand)]
enum ActionsCommand {
    /// Approve proposal ID (listed in GET /api/v1/actions and on the page): it runs now.
    Approve {
        /// The proposal's id.
        id: String,
        #[command(flatten)]
        to: SentinelArgs,
    },
    /// Reject proposal ID: it never runs.
    Reject {
        /// The proposal's id.
        id: String,
        #[command(flatten)]
        to: SentinelArgs,
    },
    /// Close the circuit breaker now.
    CircuitReset {
        #[command(flatten)]
        to: SentinelArgs,
    },
    /// The tamper-evident audit log of recovery actions (<data dir>/actions/audit/), read from
    /// the data dir, touching nothing.
    Audit {
        #[command(subcommand)]
        command: cli::audit::AuditCommand,
    },
}

/// Which sentinel to answer, and as whom.
#[derive(clap::Args)]
struct SentinelArgs {
    /// The sentinel, e.g. http://127.0.0.1:9401.
    #[arg(long, value_name = "URL")]
    url: String,
    /// The file holding the web token (the one given to serve's --web.token-file). The token
    /// itself is never given on the command line.
    #[arg(
        long = "token-file",
        value_name = "FILE",
        env = "IPFS_SENTINEL_WEB_TOKEN_FILE"
    )]
    token_file: PathBuf,
    /// The name recorded in the audit as the one who answered (default: $USER).
    #[arg(long, value_name = "NAME", env = "USER")]
    by: Option<String>,
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
        } => cli::report(cli::serve::run(cli::serve::Request {
            config,
            listen,
            data_dir,
            enable_lifecycle,
            enable_remote_actions,
            dry_run,
            web: cli::serve::Web {
                config_file: web.config_file,
                token_file: web.token_file,
                header_read_timeout: web.header_read_timeout,
                max_connections: web.max_connections,
                max_request_body_bytes: web.max_request_body_bytes,
            },
        })),
        Command::CheckConfig { file, strict } => cli::check_config::run(&file, strict),
        Command::PrintDefaultConfig => {
            print!("{EMBEDDED_DEFAULT}");
            ExitCode::SUCCESS
        }
        Command::CheckRules { files, promql } => cli::rules::check(&files, promql),
        Command::TestRules { files, promql } => cli::rules::test(&files, promql),
        Command::Rules {
            command: RulesCommand::Export { config },
        } => cli::rules::export(config),
        Command::Actions { command } => match command {
            ActionsCommand::Approve { id, to } => answer(cli::actions::Answer::Approve(id), to),
            ActionsCommand::Reject { id, to } => answer(cli::actions::Answer::Reject(id), to),
            ActionsCommand::CircuitReset { to } => answer(cli::actions::Answer::ResetCircuit, to),
            ActionsCommand::Audit { command } => cli::audit::run(command),
        },
        Command::Dashboard(args) => cli::report(cli::dashboard::run(cli::dashboard::Request {
            output: args.output,
            url: args.url,
            data_dir: args.data_dir,
            config: args.config,
        })),
        Command::Export(args) => cli::export::run(cli::export::Request {
            format: args.format,
            selector: args.selector,
            range: args.range,
            step: args.step,
            function: args.function,
            output: args.output,
            url: args.url,
            data_dir: args.data_dir,
            config: args.config,
        }),
    }
}

/// Sends `answer` to the sentinel `to` names.
fn answer(answer: cli::actions::Answer, to: SentinelArgs) -> ExitCode {
    cli::report(cli::actions::run(cli::actions::Request {
        answer,
        url: to.url,
        token_file: to.token_file,
        by: to.by,
    }))
}
