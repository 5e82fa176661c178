//! One attempt at one outbox entry: runs the command or script, posts the webhook, pushes to
//! Alertmanager, runs the built-in, or asks the peer it belongs to; in a dry run, says what
//! it would have done instead. Returns what the attempt came to; retrying and recording are
//! the dispatcher's.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::argv::{self, RunContext};
use super::audit::RunResult;
use super::builtin::GcRuns;
use super::outbox::Job;
use super::policy::Trigger;
use super::remote::{self, RemoteRequest};
use super::{command, payload, webhook};
use crate::config::{
    ActionsConfig, Builtin, ClusterConfig, Config, HttpUrl, IpfsClusterConfig,
    RecoveryActionConfig, Target,
};
use crate::model::{AlertEvent, Semantics};

/// What the actions need to know of the rest of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This node's id.
    pub node_id: String,
    /// The actions, by name.
    pub actions: std::collections::BTreeMap<String, RecoveryActionConfig>,
    /// Delivery settings.
    pub delivery: ActionsConfig,
    /// Run nothing, record what would run.
    pub dry_run: bool,
    /// `serve --dry-run` was given: every reloaded configuration is dry too.
    pub forced_dry_run: bool,
    /// `$externalURL`, for payloads.
    pub external_url: String,
    /// This node's Kubo RPC API.
    pub kubo_api_url: HttpUrl,
    /// The IPFS Cluster REST API, for `reallocate_pins`.
    pub ipfs_cluster: Option<IpfsClusterConfig>,
    /// Peer sentinels.
    pub peers: Vec<HttpUrl>,
    /// Timeout of calls to peers, besides the remote action's own time.
    pub peer_timeout: Duration,
    /// The token peers require, from a file.
    pub peer_token_file: Option<PathBuf>,
    /// The PromQL semantics `when` expressions are evaluated with.
    pub promql_semantics: Semantics,
    /// The rules' default evaluation interval (the collection interval), in ms: twice it is
    /// the default `verify_after_seconds`.
    pub evaluation_interval_ms: i64,
}

impl Settings {
    /// The settings of a configuration.
    pub fn new(cluster: &ClusterConfig, kubo_api_url: HttpUrl, dry_run: bool) -> Self {
        let monitoring = &cluster.monitoring;
        Self {
            node_id: cluster.node_id.clone(),
            actions: monitoring.recovery_actions.clone(),
            delivery: monitoring.actions.clone(),
            dry_run: dry_run || monitoring.actions.dry_run,
            forced_dry_run: dry_run,
            external_url: monitoring.external_url.clone(),
            kubo_api_url,
            ipfs_cluster: cluster.ipfs_cluster.clone(),
            peers: cluster.peers.clone(),
            peer_timeout: cluster.peer_timeout_seconds.duration(),
            peer_token_file: cluster.peer_token_file.clone(),
            promql_semantics: monitoring.promql_semantics,
            evaluation_interval_ms: (monitoring.collection_interval_seconds.0 * 1000.0) as i64,
        }
    }

    /// The settings of a whole configuration; `forced_dry_run` for `serve --dry-run`.
    pub fn of(config: &Config, forced_dry_run: bool) -> Self {
        Self::new(&config.cluster, config.ipfs.api_url.clone(), forced_dry_run)
    }

    /// Whether this entry runs on a peer rather than here: `target: alerting_node` for another
    /// node, for the kinds that act on a node (commands, scripts, `run_gc`,
    /// `connect_bootstrap_peers`). Webhooks, Alertmanager and `reallocate_pins` always run
    /// here; a run a peer asked for always runs here.
    pub fn runs_on_peer(&self, action: &RecoveryActionConfig, job: &Job) -> bool {
        let node_kind = action.command.is_some()
            || action.script.is_some()
            || matches!(
                action.builtin(),
                Some(Builtin::RunGc | Builtin::ConnectBootstrapPeers)
            );
        node_kind
            && action.target == Target::AlertingNode
            && job.trigger != Trigger::Remote
            && job.node_id != self.node_id
    }
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Success, failure, timeout or dry run.
    pub result: RunResult,
    /// Output, answer or reason, for the audit log.
    pub output: String,
    /// How long it took.
    pub duration: Duration,
}

impl Attempt {
    fn of(ok: bool, output: String, duration: Duration) -> Self {
        Self {
            result: if ok {
                RunResult::Success
            } else {
                RunResult::Failure
            },
            output,
            duration,
        }
    }
}

/// What `job` would do, in one line: the expanded argv, the URL, the built-in and the node,
/// or the peer asked. A dry run records it; a proposal shows it to the approver.
pub fn would_run(settings: &Settings, job: &Job) -> String {
    let Some(action) = settings.actions.get(&job.action) else {
        return format!("nothing: no recovery action named {:?}", job.action);
    };
    if settings.runs_on_peer(action, job) {
        return format!("would ask node {}'s sentinel to run it", job.node_id);
    }
    if action.command.is_some() || action.script.is_some() {
        let run = RunContext {
            action: &job.action,
            trigger: job.trigger,
            node_id: &job.node_id,
        };
        return match argv::template(action) {
            Ok(template) => format!(
                "would run: {}",
                shell_words::join(argv::argv(&template, &job.alert, &run))
            ),
            Err(e) => format!("nothing: {e}"),
        };
    }
    if let Some(hook) = &action.webhook {
        return format!("would POST to {}", hook.url);
    }
    if action.alertmanager.is_some() {
        return "would push the alert to Alertmanager".into();
    }
    match action.builtin() {
        Some(builtin) => {
            let limit = action
                .max_pins
                .map(|m| format!(" (at most {} pins)", m.0))
                .unwrap_or_default();
            format!(
                "would run the built-in {} for {}{limit}",
                builtin.as_str(),
                job.node_id
            )
        }
        None => "nothing: the action does nothing".into(),
    }
}

/// Makes one attempt at `job`.
/// A `run_gc` built-in is counted in `gc_runs`.
pub async fn attempt(
    settings: &Settings,
    client: &reqwest::Client,
    job: &Job,
    gc_runs: &GcRuns,
) -> Attempt {
    attempt_until(settings, client, job, gc_runs, std::future::pending()).await
}

/// [`attempt`]; a command or script still running when `cancel` resolves is stopped (its
/// process group) and the attempt ends [`RunResult::Cancelled`].
pub async fn attempt_until(
    settings: &Settings,
    client: &reqwest::Client,
    job: &Job,
    gc_runs: &GcRuns,
    cancel: impl std::future::Future<Output = ()>,
) -> Attempt {
    let started = Instant::now();
    let Some(action) = settings.actions.get(&job.action) else {
        return Attempt::of(
            false,
            format!(
                "no recovery action named {:?} in this sentinel's configuration",
                job.action
            ),
            started.elapsed(),
        );
    };
    if settings.dry_run {
        return dry(would_run(settings, job), started);
    }
    let run = RunContext {
        action: &job.action,
        trigger: job.trigger,
        node_id: &job.node_id,
    };
    if settings.runs_on_peer(action, job) {
        return on_peer(settings, client, action, job, started).await;
    }
    if action.command.is_some() || action.script.is_some() {
        let template = match argv::template(action) {
            Ok(t) => t,
            Err(e) => return Attempt::of(false, e.to_string(), started.elapsed()),
        };
        let argv = argv::argv(&template, &job.alert, &run);
        let env = argv::environment(&job.alert, &run);
        let ran = command::run_until(&argv, &env, action.timeout(), cancel).await;
        return Attempt {
            result: match ran.exit {
                command::Exit::TimedOut => RunResult::Timeout,
                command::Exit::Cancelled => RunResult::Cancelled,
                _ if ran.succeeded() => RunResult::Success,
                _ => RunResult::Failure,
            },
            output: ran.describe(),
            duration: ran.duration,
        };
    }
    if let Some(hook) = &action.webhook {
        let body = payload::webhook(
            &job.action,
            std::slice::from_ref(&job.alert),
            &settings.external_url,
        );
        let posted = webhook::post_json(
            client,
            hook.url.0.as_str(),
            &hook.headers,
            hook.bearer_token_file.as_deref(),
            &body,
        )
        .await;
        return Attempt::of(posted.ok, posted.output, posted.duration);
    }
    if let Some(am) = &action.alertmanager {
        return push_once(client, &am.urls, &job.alert, started).await;
    }
    match action.builtin() {
        Some(builtin) => {
            let outcome = tokio::time::timeout(
                action.timeout(),
                run_builtin(builtin, settings, client, job, action, gc_runs),
            )
            .await;
            match outcome {
                Ok(Ok((success, summary))) => Attempt::of(success, summary, started.elapsed()),
                Ok(Err(e)) => Attempt::of(false, e, started.elapsed()),
                Err(_) => Attempt {
                    result: RunResult::Timeout,
                    output: format!("{} timed out", builtin.as_str()),
                    duration: started.elapsed(),
                },
            }
        }
        None => Attempt::of(false, "the action does nothing".into(), started.elapsed()),
    }
}

fn dry(output: String, started: Instant) -> Attempt {
    Attempt {
        result: RunResult::DryRun,
        output,
        duration: started.elapsed(),
    }
}

/// Pushes one alert to every Alertmanager (an escalation or a route naming an
/// `alertmanager` action); success when every one took it.
async fn push_once(
    client: &reqwest::Client,
    urls: &[HttpUrl],
    alert: &AlertEvent,
    started: Instant,
) -> Attempt {
    let body = payload::alertmanager_alerts(std::slice::from_ref(alert));
    let mut ok = true;
    let mut output = Vec::new();
    for base in urls {
        let url = super::alertmanager::alerts_endpoint(base);
        let posted = webhook::post_json(client, &url, &Default::default(), None, &body).await;
        ok &= posted.ok;
        output.push(posted.output);
    }
    Attempt::of(ok, output.join("; "), started.elapsed())
}

async fn on_peer(
    settings: &Settings,
    client: &reqwest::Client,
    action: &RecoveryActionConfig,
    job: &Job,
    started: Instant,
) -> Attempt {
    let peer = match remote::find_peer(client, &settings.peers, &job.node_id).await {
        Ok(peer) => peer,
        Err(e) => return Attempt::of(false, e, started.elapsed()),
    };
    let request = RemoteRequest {
        job: job.id.clone(),
        alert: job.alert.clone(),
        trigger: job.trigger,
    };
    // The peer answers when its run ends: allow the action's time on top of the usual.
    let wait = action.timeout() + command::KILL_GRACE + settings.peer_timeout;
    let asked = tokio::time::timeout(
        wait,
        remote::run_on_peer(
            client,
            &peer,
            &job.action,
            &request,
            settings.peer_token_file.as_deref(),
        ),
    )
    .await;
    match asked {
        Ok(Ok(answer)) => Attempt {
            result: match answer.result {
                RunResult::Success | RunResult::DryRun => answer.result,
                RunResult::Timeout => RunResult::Timeout,
                _ => RunResult::Failure,
            },
            output: format!("on {}: {}", job.node_id, answer.output),
            duration: started.elapsed(),
        },
        Ok(Err(e)) => Attempt::of(false, e, started.elapsed()),
        Err(_) => Attempt {
            result: RunResult::Timeout,
            output: format!("node {}'s sentinel did not answer in time", job.node_id),
            duration: started.elapsed(),
        },
    }
}

/// Runs a built-in; `(success, summary)` or why it could not run. `run_gc` and
/// `connect_bootstrap_peers` act on this node's IPFS; `reallocate_pins` moves the pins of the
/// node the alert names, through IPFS Cluster.
async fn run_builtin(
    builtin: Builtin,
    settings: &Settings,
    client: &reqwest::Client,
    job: &Job,
    action: &RecoveryActionConfig,
    gc_runs: &GcRuns,
) -> Result<(bool, String), String> {
    let kubo = &settings.kubo_api_url.0;
    let report = match builtin {
        Builtin::RunGc => gc_runs.run(client, kubo).await,
        Builtin::ConnectBootstrapPeers => {
            super::builtin::connect_bootstrap_peers(client, kubo).await
        }
        Builtin::ReallocatePins => {
            let Some(cluster) = &settings.ipfs_cluster else {
                return Err(
                    "reallocate_pins needs cluster.ipfs_cluster (the IPFS Cluster REST API) in the configuration"
                        .into(),
                );
            };
            super::builtin::reallocate_at_most(
                client,
                cluster,
                &job.node_id,
                action.include_satisfied_pins,
                action.max_pins.map(|m| m.0),
            )
            .await
        }
    };
    report
        .map(|r| {
            let line = format!("{} {}", r.summary, r.details);
            let kept = webhook::bounded(&line, super::command::OUTPUT_LIMIT);
            (r.success, kept.to_owned())
        })
        .map_err(|e| e.to_string())
}
