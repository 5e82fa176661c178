//! The recovery actions' runtime: one task that owns the outbox. It takes alert sightings
//! (from the rules task after each evaluation, over a channel of their own, or from
//! Alertmanager's webhook) and remote run requests over a channel, lets the policy decide, passes
//! each decided run through the guardrails ([`super::guard`]: the `when` precondition over the
//! history, the partition guard over the latest collection's cluster view, approval, the
//! circuit breaker), writes each admitted run to the
//! outbox before trying it, stops a command whose alert resolves, verifies a successful run's
//! alert after `verify_after_seconds`, runs at most `max_concurrent` at once, retries failures with
//! back-off, records every attempt in the audit log and the metrics, and hands alerts due for
//! Alertmanager to the pusher.
//!
//! Owns scheduling and bookkeeping; what an attempt does is [`super::deliver`]'s, when to run
//! [`super::policy`]'s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

use serde::Serialize;

use super::alertmanager::{self, Batch};
use super::audit::{ActionRun, AuditLog, RunResult};
use super::deliver::{self, Attempt, Settings};
use super::guard::{self, Admission, BreakerLimit, Proposal, Verdict, Verification};
use super::outbox::{Backoff, Fate, Job, Outbox};
use super::policy::{ActionPolicy, Decision, Trigger};
use super::remote::{RemoteAnswer, RemoteRequest};
use super::stats::{ProposalGauge, Stats};
use crate::clock::system_ms;
use crate::config::{Approval, Builtin, RecoveryActionConfig};
use crate::exposition::ExpositionCache;
use crate::history::recorder::SharedHistory;
use crate::model::{AlertEvent, NodeStatus, Sighting, Status};
use crate::rules::promql::{self, Evaluator, Value};

/// How long a stopping dispatcher waits for runs under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Requests waiting for the dispatcher, at most.
const INPUT_CAPACITY: usize = 1024;

/// Rule evaluations' sightings waiting for the dispatcher, at most: the capacity of the channel
/// the rules task sends on (it drops an evaluation's sightings with a warning when it is full).
pub const SIGHTINGS_CAPACITY: usize = 1024;

/// What the dispatcher is asked.
#[derive(Debug)]
enum Input {
    Sightings(Vec<Sighting>),
    Reload(Box<Settings>),
    Remote {
        action: String,
        request: RemoteRequest,
        reply: oneshot::Sender<Result<RemoteAnswer, RemoteRefusal>>,
    },
    Answer {
        id: String,
        approve: bool,
        approver: String,
        reply: oneshot::Sender<Result<ProposalView, AnswerRefusal>>,
    },
    ResetCircuit {
        by: String,
        reply: oneshot::Sender<bool>,
    },
}

/// Why a proposal could not be approved or rejected.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnswerRefusal {
    /// No proposal has that id (never made, or already approved, rejected or expired).
    #[error("no proposal {0:?} is waiting for approval: it was never made, or was already approved, rejected or expired (see GET /api/v1/actions)")]
    Unknown(String),
    /// The dispatcher is stopping.
    #[error("the sentinel is shutting down")]
    ShuttingDown,
}

/// What other stages may read of the dispatcher: the data the rules and the cluster
/// collector already produced (never their state). Both optional, for tests without them.
#[derive(Clone, Default)]
pub struct Views {
    /// The history, for `when` preconditions.
    pub history: Option<SharedHistory>,
    /// The latest collection, for the cluster view the partition guard reads.
    pub latest: Option<ExpositionCache>,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views")
            .field("history", &self.history.is_some())
            .field("latest", &self.latest.is_some())
            .finish()
    }
}

/// A proposal as the API and the page show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposalView {
    /// Its id: approve with `POST /api/v1/actions/runs/ID/approve`.
    pub id: String,
    /// The action.
    pub action: String,
    /// The node it is for.
    pub node_id: String,
    /// The alert that asked for it.
    pub alertname: String,
    /// What it would do.
    pub would_run: String,
    /// When it was proposed, ms since the Unix epoch.
    pub proposed_ms: i64,
    /// When it expires, ms since the Unix epoch.
    pub expires_ms: i64,
}

impl From<&Proposal> for ProposalView {
    fn from(p: &Proposal) -> Self {
        Self {
            id: p.job.id.clone(),
            action: p.job.action.clone(),
            node_id: p.job.node_id.clone(),
            alertname: p.job.alert.alertname().to_owned(),
            would_run: p.would_run.clone(),
            proposed_ms: p.proposed_ms,
            expires_ms: p.expires_ms,
        }
    }
}

/// The circuit breaker as the API and the page show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CircuitView {
    /// Whether `actions.circuit_breaker` is configured.
    pub configured: bool,
    /// Whether it is open (nothing runs).
    pub open: bool,
    /// When it closes on its own, while open, ms since the Unix epoch.
    pub closes_ms: Option<i64>,
    /// Runs counted in the current window.
    pub runs_in_window: usize,
    /// The limit.
    pub max_runs: u64,
    /// The window, in seconds.
    pub per_seconds: f64,
}

/// The guardrails' state as the API and the page show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GuardView {
    /// Proposals waiting for approval, oldest first.
    pub proposals: Vec<ProposalView>,
    /// The circuit breaker.
    pub circuit: CircuitView,
    /// Successful runs whose alert will be looked at again.
    pub verifying: usize,
}

/// Why a remote run was not run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteRefusal {
    /// This sentinel has no action of that name.
    #[error("no recovery action named {0:?} on this sentinel")]
    UnknownAction(String),
    /// The same job is running now; ask again later.
    #[error("job {0} is running; ask again later for its result")]
    Running(String),
    /// The dispatcher is stopping.
    #[error("the sentinel is shutting down")]
    ShuttingDown,
}

/// A run that could not be written to the outbox: it still runs, but would not survive a
/// restart.
struct OutboxWriteFailed<'a> {
    error: &'a std::io::Error,
}

impl OutboxWriteFailed<'_> {
    fn emit(&self) {
        tracing::error!(error = %self.error, "cannot write the recovery actions' outbox to the data dir");
    }
}

/// One attempt ended.
struct ActionAttempted<'a> {
    job: &'a Job,
    attempt: &'a Attempt,
    fate: Fate,
}

impl ActionAttempted<'_> {
    fn emit(&self) {
        let (job, a) = (self.job, self.attempt);
        let fields = (
            job.action.as_str(),
            job.alert.alertname(),
            job.node_id.as_str(),
            a.result.as_str(),
        );
        match self.fate {
            Fate::Finished if a.result == RunResult::Success || a.result == RunResult::DryRun => {
                tracing::info!(action = fields.0, alert = fields.1, node = fields.2, result = fields.3, attempt = job.attempts + 1, output = %a.output, "recovery action ran")
            }
            Fate::Retry | Fate::Finished => {
                tracing::warn!(action = fields.0, alert = fields.1, node = fields.2, result = fields.3, attempt = job.attempts + 1, output = %a.output, "recovery action failed; it will be retried")
            }
            Fate::DeadLetter => {
                tracing::error!(action = fields.0, alert = fields.1, node = fields.2, result = fields.3, attempt = job.attempts + 1, output = %a.output, "recovery action failed for the last time; moved to the dead letters")
            }
        }
    }
}

/// The handle the rest of the sentinel uses: cheap to clone.
#[derive(Debug, Clone)]
pub struct Actions {
    input: mpsc::Sender<Input>,
    settings: Arc<ArcSwap<Settings>>,
    guard: Arc<ArcSwap<GuardView>>,
    /// The audit log the dispatcher writes.
    pub audit: AuditLog,
}

impl Actions {
    /// Hands sightings (from Alertmanager's webhook) to the dispatcher, waiting for room.
    pub async fn send(&self, sightings: Vec<Sighting>) {
        let _ = self.input.send(Input::Sightings(sightings)).await;
    }

    /// Runs `action` here for a peer, once per job id; waits for the result.
    pub async fn run_for_peer(
        &self,
        action: String,
        request: RemoteRequest,
    ) -> Result<RemoteAnswer, RemoteRefusal> {
        let (reply, answer) = oneshot::channel();
        self.input
            .send(Input::Remote {
                action,
                request,
                reply,
            })
            .await
            .map_err(|_| RemoteRefusal::ShuttingDown)?;
        answer.await.map_err(|_| RemoteRefusal::ShuttingDown)?
    }

    /// Approves (`approve`) or rejects the proposal `id` on behalf of `approver`; an approved
    /// run goes to the outbox (past the circuit breaker), a rejected one never runs. Both are
    /// recorded in the audit with the approver.
    pub async fn answer(
        &self,
        id: String,
        approve: bool,
        approver: String,
    ) -> Result<ProposalView, AnswerRefusal> {
        let (reply, answer) = oneshot::channel();
        self.input
            .send(Input::Answer {
                id,
                approve,
                approver,
                reply,
            })
            .await
            .map_err(|_| AnswerRefusal::ShuttingDown)?;
        answer.await.map_err(|_| AnswerRefusal::ShuttingDown)?
    }

    /// Closes the circuit breaker now; returns whether it was open.
    pub async fn reset_circuit(&self, by: String) -> Option<bool> {
        let (reply, answer) = oneshot::channel();
        self.input
            .send(Input::ResetCircuit { by, reply })
            .await
            .ok()?;
        answer.await.ok()
    }

    /// Proposals, the breaker and verifications, as last published by the dispatcher.
    pub fn guard(&self) -> Arc<GuardView> {
        self.guard.load_full()
    }

    /// The actions configured for alerts received from Alertmanager: the alert's `action`
    /// label (comma-separated names) if it has one, else those of every matching route.
    pub fn actions_for(&self, labels: &BTreeMap<String, String>) -> Vec<String> {
        if let Some(named) = labels.get("action").filter(|a| !a.is_empty()) {
            return named
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect();
        }
        let mut names = Vec::new();
        for route in &self.settings.load().delivery.routes {
            if route
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
            {
                for a in &route.actions {
                    if !names.contains(&a.value) {
                        names.push(a.value.clone());
                    }
                }
            }
        }
        names
    }

    /// Swaps in the actions of a reloaded configuration: runs decided from now on use them;
    /// runs already going finish with the old ones. Pending runs of an action the new
    /// configuration dropped fail with a clear reason and end as dead letters.
    pub async fn reload(&self, settings: Settings) {
        self.settings.store(Arc::new(settings.clone()));
        let _ = self.input.send(Input::Reload(Box::new(settings))).await;
    }

    /// Whether `serve --dry-run` was given (it outlasts reloads).
    pub fn dry_run_forced(&self) -> bool {
        self.settings.load().forced_dry_run
    }

    /// Whether nothing really runs.
    pub fn dry_run(&self) -> bool {
        self.settings.load().dry_run
    }

    /// Whether an action of this name exists.
    pub fn knows(&self, action: &str) -> bool {
        self.settings.load().actions.contains_key(action)
    }
}

/// Starts the dispatcher and the Alertmanager pusher; they stop when `shutdown` resolves,
/// after saving the outbox. `evaluated` brings the sightings of each rule evaluation (the rules
/// task holds its sender; see [`SIGHTINGS_CAPACITY`]); `views` the history and the latest
/// collection the guardrails read.
pub fn start(
    settings: Settings,
    outbox: Outbox,
    audit: AuditLog,
    stats: Stats,
    views: Views,
    evaluated: mpsc::Receiver<Vec<Sighting>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Actions, tokio::task::JoinHandle<()>), reqwest::Error> {
    // Every outgoing call has a timeout; commands and remote runs have their own on top.
    let client = reqwest::Client::builder()
        .pool_idle_timeout(crate::clients::POOL_IDLE_TIMEOUT)
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let settings = Arc::new(settings);
    let (input_tx, input_rx) = mpsc::channel(INPUT_CAPACITY);
    let (am_tx, am_rx) = mpsc::channel(alertmanager::QUEUE_CAPACITY);
    tokio::spawn(alertmanager::run(client.clone(), am_rx, stats.clone()));
    let mut outbox = outbox;
    outbox.guard_mut().restarted(now_ms());
    let guard_view = Arc::new(ArcSwap::from_pointee(GuardView::default()));
    let dispatcher = Dispatcher {
        settings: Arc::clone(&settings),
        client,
        outbox,
        audit: audit.clone(),
        stats,
        am: am_tx,
        running: HashSet::new(),
        remote_running: HashSet::new(),
        views,
        cancels: HashMap::new(),
        guard_view: Arc::clone(&guard_view),
    };
    let handle = tokio::spawn(dispatcher.run(input_rx, evaluated, shutdown));
    Ok((
        Actions {
            input: input_tx,
            settings: Arc::new(ArcSwap::new(settings)),
            guard: guard_view,
            audit,
        },
        handle,
    ))
}

struct Finished {
    job: Job,
    attempt: Attempt,
    reply: Option<oneshot::Sender<Result<RemoteAnswer, RemoteRefusal>>>,
}

struct Dispatcher {
    settings: Arc<Settings>,
    client: reqwest::Client,
    outbox: Outbox,
    audit: AuditLog,
    stats: Stats,
    am: mpsc::Sender<Batch>,
    running: HashSet<String>,
    remote_running: HashSet<String>,
    views: Views,
    /// Runs that stop when their alert resolves: job id to the alert's fingerprint and the
    /// sender that stops it.
    cancels: HashMap<String, (String, oneshot::Sender<()>)>,
    guard_view: Arc<ArcSwap<GuardView>>,
}

fn now_ms() -> i64 {
    system_ms(SystemTime::now())
}

impl Dispatcher {
    fn backoff(&self) -> Backoff {
        let d = &self.settings.delivery;
        Backoff {
            max_attempts: d.max_attempts.0.min(u64::from(u32::MAX)) as u32,
            initial_ms: (d.retry_initial_seconds.0 * 1000.0) as i64,
            max_ms: (d.retry_max_seconds.0 * 1000.0) as i64,
        }
    }

    async fn run(
        mut self,
        mut input: mpsc::Receiver<Input>,
        mut evaluated: mpsc::Receiver<Vec<Sighting>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
        tokio::pin!(shutdown);
        loop {
            self.tick();
            self.start_due(&done_tx);
            self.publish_stats();
            let limit = self.breaker_limit();
            let now = now_ms();
            let closes = self.outbox.guard_mut().breaker.closes_at_ms(now, limit);
            let running = &self.running;
            let next = [
                self.outbox.next_due_ms(&|id| running.contains(id)),
                self.outbox.guard().next_due_ms(),
                closes,
            ]
            .into_iter()
            .flatten()
            .min();
            let wait = next.map_or(Duration::from_secs(3600), |at| {
                Duration::from_millis((at - now).clamp(0, 3_600_000) as u64)
            });
            tokio::select! {
                _ = &mut shutdown => break,
                received = input.recv() => match received {
                    Some(Input::Sightings(s)) => self.sightings(s).await,
                    Some(Input::Reload(settings)) => {
                        self.settings = Arc::new(*settings);
                        tracing::info!(actions = self.settings.actions.len(), "recovery actions reloaded");
                    }
                    Some(Input::Remote { action, request, reply }) => self.remote(action, request, reply, &done_tx),
                    Some(Input::Answer { id, approve, approver, reply }) => {
                        let _ = reply.send(self.answer(&id, approve, &approver));
                    }
                    Some(Input::ResetCircuit { by, reply }) => {
                        let was_open = self.outbox.guard_mut().breaker.reset();
                        tracing::info!(by = %by, was_open, "recovery actions' circuit breaker reset");
                        self.save();
                        let _ = reply.send(was_open);
                    }
                    None => break,
                },
                Some(sightings) = evaluated.recv() => self.sightings(sightings).await,
                Some(finished) = done_rx.recv() => self.finished(finished),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Runs under way get a little time to finish and be recorded; one cut short stays in
        // the outbox and runs again after the restart.
        let grace = tokio::time::sleep(SHUTDOWN_GRACE);
        tokio::pin!(grace);
        while !self.running.is_empty() || !self.remote_running.is_empty() {
            tokio::select! {
                _ = &mut grace => break,
                Some(finished) = done_rx.recv() => self.finished(finished),
            }
        }
        self.save();
    }

    fn save(&self) {
        if let Err(e) = self.outbox.save() {
            OutboxWriteFailed { error: &e }.emit();
        }
    }

    fn publish_stats(&mut self) {
        let queued = self.outbox.pending().saturating_sub(self.running.len());
        self.stats.set_outbox(
            queued,
            self.outbox.pending(),
            self.outbox.dead_letters_total(),
        );
        let limit = self.breaker_limit();
        let now = now_ms();
        let closes_ms = self.outbox.guard_mut().breaker.closes_at_ms(now, limit);
        let guard = self.outbox.guard();
        let proposals: Vec<ProposalView> = {
            let mut p: Vec<&Proposal> = guard.proposals.values().collect();
            p.sort_by_key(|p| p.proposed_ms);
            p.into_iter().map(ProposalView::from).collect()
        };
        self.stats.set_guard(
            proposals
                .iter()
                .map(|p| ProposalGauge {
                    proposal: p.id.clone(),
                    action: p.action.clone(),
                    node_id: p.node_id.clone(),
                    alertname: p.alertname.clone(),
                    would_run: p.would_run.clone(),
                })
                .collect(),
            closes_ms.is_some(),
        );
        self.guard_view.store(Arc::new(GuardView {
            proposals,
            circuit: CircuitView {
                configured: limit.is_some(),
                open: closes_ms.is_some(),
                closes_ms,
                runs_in_window: guard.breaker.runs_in_window(),
                max_runs: limit.map_or(0, |l| l.max_runs),
                per_seconds: limit.map_or(0.0, |l| l.window_ms as f64 / 1000.0),
            },
            verifying: guard.verifications.len(),
        }));
    }

    fn breaker_limit(&self) -> Option<BreakerLimit> {
        self.settings
            .delivery
            .circuit_breaker
            .map(|c| BreakerLimit {
                max_runs: c.max_runs.0,
                window_ms: (c.per_seconds.0 * 1000.0) as i64,
            })
    }

    /// Expires proposals and verifies runs that are due.
    fn tick(&mut self) {
        let now = now_ms();
        let expired = self.outbox.guard_mut().take_expired(now);
        let verified = self.outbox.guard_mut().take_verified(now);
        if expired.is_empty() && verified.is_empty() {
            return;
        }
        for p in expired {
            let output = format!(
                "nobody approved it within approval_timeout_seconds ({} s); it did not run. It would have: {}",
                (p.expires_ms - p.proposed_ms) / 1000,
                p.would_run
            );
            self.record_job(&p.job, RunResult::Expired, output, now);
        }
        for (v, verdict) in verified {
            self.verified(v, verdict, now);
        }
        self.save();
    }

    fn verified(&mut self, v: Verification, verdict: Verdict, now: i64) {
        let after = v.after_ms / 1000;
        match verdict {
            Verdict::Resolved => self.record_job(
                &v.job,
                RunResult::Resolved,
                format!("{after} s after the run, the alert no longer fires"),
                now,
            ),
            Verdict::StillFiring => {
                let Some(config) = self.settings.actions.get(&v.job.action).cloned() else {
                    return;
                };
                let policy = ActionPolicy::from(&config);
                let escalation = self.outbox.policy_mut().escalate_now(
                    &v.job.action,
                    &v.job.alert.fingerprint(),
                    &policy,
                );
                let next = match (&escalation, &policy.escalate_to) {
                    (Some(_), Some(to)) => format!("; escalating to {to}"),
                    (None, Some(_)) => "; already escalated in this episode".to_owned(),
                    _ => "; no escalate_to configured".to_owned(),
                };
                self.record_job(
                    &v.job,
                    RunResult::StillFiring,
                    format!("{after} s after a successful run, the alert still fires{next}"),
                    now,
                );
                if let Some(decision) = escalation {
                    self.decided(decision, &v.job.alert, now);
                }
            }
        }
    }

    /// Records what became of `job` without an attempt (a skip, a proposal, an answer, a
    /// verification), counting it too.
    fn record_job(&self, job: &Job, result: RunResult, output: String, now: i64) {
        tracing::info!(action = %job.action, alert = job.alert.alertname(), node = %job.node_id, result = result.as_str(), output = %output, "recovery action guardrail");
        self.stats.count(&job.action, result);
        self.record(ActionRun {
            at_ms: now,
            job: job.id.clone(),
            alertname: job.alert.alertname().to_owned(),
            severity: job.alert.label("severity").to_owned(),
            action: job.action.clone(),
            node_id: job.node_id.clone(),
            trigger: job.trigger.as_str().to_owned(),
            attempt: 0,
            result,
            output,
            duration_seconds: 0.0,
            dry_run: self.settings.dry_run,
        });
    }

    fn answer(
        &mut self,
        id: &str,
        approve: bool,
        approver: &str,
    ) -> Result<ProposalView, AnswerRefusal> {
        let now = now_ms();
        let Some(p) = self.outbox.guard_mut().proposals.remove(id) else {
            return Err(AnswerRefusal::Unknown(id.to_owned()));
        };
        let view = ProposalView::from(&p);
        if approve {
            self.record_job(
                &p.job,
                RunResult::Approved,
                format!("approved by {approver}; {}", p.would_run),
                now,
            );
            self.admit(p.job, now);
        } else {
            self.record_job(
                &p.job,
                RunResult::Rejected,
                format!(
                    "rejected by {approver}; it will not run. It would have: {}",
                    p.would_run
                ),
                now,
            );
        }
        self.save();
        Ok(view)
    }

    /// Whether the action's `when` expression returns something now; why not, when it does not.
    fn precondition(&self, when: &str, now: i64) -> Result<(), String> {
        let Some(history) = &self.views.history else {
            return Err("no history here to evaluate `when` over".into());
        };
        let semantics = self.settings.promql_semantics;
        let expr = promql::parse_as(when, semantics)
            .map_err(|e| format!("`when: {when}` is not valid PromQL: {e}"))?;
        // A view holds no lock while it is evaluated.
        let view = crate::history::recorder::read(history).view();
        let value = Evaluator::new(&view, now)
            .with_semantics(semantics)
            .eval(&expr)
            .map_err(|e| format!("`when: {when}` failed: {e}"))?;
        let empty = match value {
            Value::Vector(v) => v.is_empty(),
            Value::Matrix(m) => m.is_empty(),
            Value::Scalar(_) | Value::String(_) => false,
        };
        if empty {
            Err(format!("`when: {when}` returned nothing at decision time"))
        } else {
            Ok(())
        }
    }

    /// Why an action that acts on another node must not run now: this sentinel sees too much
    /// of the cluster Offline.
    fn partition(&self, action: &RecoveryActionConfig, job: &Job) -> Option<String> {
        let elsewhere = action.builtin() == Some(Builtin::ReallocatePins)
            || self.settings.runs_on_peer(action, job);
        if !elsewhere {
            return None;
        }
        let latest = self.views.latest.as_ref()?.current();
        let statuses: Vec<NodeStatus> = crate::status::cluster_view(&latest.snapshot)
            .iter()
            .map(|n| n.status)
            .collect();
        let ratio = action
            .partition_guard
            .unwrap_or(self.settings.delivery.partition_guard)
            .max_offline_ratio
            .0;
        let (offline, total) = guard::partitioned(&statuses, ratio)?;
        Some(format!(
            "this sentinel sees {offline} of {total} nodes Offline, more than max_offline_ratio {ratio}: it is likely the one cut off, so it does not act on node {}",
            job.node_id
        ))
    }

    /// A decided run: its precondition, the partition guard and approval, then the breaker.
    fn guarded(&mut self, job: Job, now: i64) {
        let Some(action) = self.settings.actions.get(&job.action).cloned() else {
            // Fails with a clear reason when tried.
            self.outbox.enqueue(job);
            return;
        };
        if let Some(when) = &action.when {
            if let Err(reason) = self.precondition(&when.value, now) {
                self.record_job(&job, RunResult::SkippedPrecondition, reason, now);
                return;
            }
        }
        if let Some(reason) = self.partition(&action, &job) {
            self.record_job(&job, RunResult::SkippedPartition, reason, now);
            return;
        }
        if action.approval == Approval::Required {
            let would_run = deliver::would_run(&self.settings, &job);
            let expires_ms = now + action.approval_timeout_ms();
            self.record_job(
                &job,
                RunResult::AwaitingApproval,
                format!(
                    "{would_run}; approve with POST /api/v1/actions/runs/{}/approve (or ipfs-sentinel actions approve {}) before {}",
                    job.id,
                    job.id,
                    crate::clock::rfc3339(expires_ms)
                ),
                now,
            );
            self.outbox.guard_mut().proposals.insert(
                job.id.clone(),
                Proposal {
                    job,
                    would_run,
                    proposed_ms: now,
                    expires_ms,
                },
            );
            return;
        }
        self.admit(job, now);
    }

    /// Past the circuit breaker into the outbox, or recorded `skipped_circuit_open`.
    fn admit(&mut self, job: Job, now: i64) {
        let limit = self.breaker_limit();
        match self.outbox.guard_mut().breaker.admit(now, limit) {
            Admission::Admitted => {
                self.outbox.enqueue(job);
            }
            Admission::Opened => {
                let l = limit.unwrap_or(BreakerLimit {
                    max_runs: 0,
                    window_ms: 0,
                });
                tracing::warn!(max_runs = l.max_runs, per_seconds = l.window_ms / 1000, "recovery actions' circuit breaker opened: nothing runs until the window has passed or POST /api/v1/actions/circuit/reset");
                self.record_job(
                    &job,
                    RunResult::SkippedCircuitOpen,
                    format!(
                        "the circuit breaker opened: {} runs in {} s already (circuit_breaker.max_runs {}); nothing runs for {} s or until POST /api/v1/actions/circuit/reset",
                        l.max_runs,
                        l.window_ms / 1000,
                        l.max_runs,
                        l.window_ms / 1000
                    ),
                    now,
                );
            }
            Admission::Open => {
                let closes = self.outbox.guard_mut().breaker.closes_at_ms(now, limit);
                self.record_job(
                    &job,
                    RunResult::SkippedCircuitOpen,
                    format!(
                        "the circuit breaker is open until {} (or POST /api/v1/actions/circuit/reset)",
                        closes.map_or_else(|| "its window passes".to_owned(), crate::clock::rfc3339)
                    ),
                    now,
                );
            }
        }
    }

    async fn sightings(&mut self, sightings: Vec<Sighting>) {
        let now = now_ms();
        let mut batches: BTreeMap<String, Vec<AlertEvent>> = BTreeMap::new();
        let mut changed = false;
        // Alertmanager actions follow the alert state machine's schedule, not a policy.
        let settings = Arc::clone(&self.settings);
        let policy_of = |a: &str| {
            let config = settings.actions.get(a)?;
            config
                .alertmanager
                .is_none()
                .then(|| ActionPolicy::from(config))
        };
        for s in sightings {
            let fingerprint = s.alert.fingerprint();
            let firing = s.alert.status == Status::Firing;
            self.outbox.guard_mut().saw(&fingerprint, firing, now);
            if !firing {
                self.cancel_runs_of(&fingerprint);
            }
            for action in &s.alert.actions {
                let is_am = self
                    .settings
                    .actions
                    .get(action)
                    .is_some_and(|a| a.alertmanager.is_some());
                if is_am && s.due_for_sending {
                    batches
                        .entry(action.clone())
                        .or_default()
                        .push(s.alert.clone());
                }
            }
            let decisions =
                self.outbox
                    .policy_mut()
                    .observe(now, &s.alert, &self.settings.node_id, &policy_of);
            for decision in decisions {
                changed = true;
                self.decided(decision, &s.alert, now);
            }
        }
        if changed {
            self.save();
        }
        for (action, alerts) in batches {
            let Some(am) = self
                .settings
                .actions
                .get(&action)
                .and_then(|a| a.alertmanager.as_ref())
            else {
                continue;
            };
            let batch = Batch {
                action,
                urls: am.urls.clone(),
                alerts,
            };
            if self.am.try_send(batch).is_err() {
                tracing::warn!("the Alertmanager queue is full: alerts dropped until it drains");
            }
        }
    }

    /// Stops the runs of a resolved alert whose action has `cancel_on_resolve`.
    fn cancel_runs_of(&mut self, fingerprint: &str) {
        let ids: Vec<String> = self
            .cancels
            .iter()
            .filter(|(_, (fp, _))| fp == fingerprint)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some((_, stop)) = self.cancels.remove(&id) {
                tracing::info!(job = %id, "its alert resolved: stopping the run (cancel_on_resolve)");
                let _ = stop.send(());
            }
        }
    }

    fn decided(&mut self, decision: Decision, alert: &AlertEvent, now: i64) {
        match decision {
            Decision::Run {
                action,
                trigger,
                node_id,
                episode,
                run,
            } => {
                let mut alert = alert.clone();
                if trigger == Trigger::Escalation && alert.status == Status::Firing {
                    alert
                        .annotations
                        .insert("escalated_from".into(), alert.actions.join(","));
                }
                let job = Job {
                    id: format!("{episode}-{action}-{}-{run}", trigger.as_str()),
                    action,
                    trigger,
                    node_id,
                    alert,
                    created_ms: now,
                    attempts: 0,
                    next_attempt_ms: now,
                    last_error: String::new(),
                };
                if !self.outbox.enqueued_or_done(&job.id) {
                    self.guarded(job, now);
                }
            }
            Decision::Skip {
                action,
                node_id,
                result,
                reason,
            } => {
                tracing::info!(action = %action, alert = alert.alertname(), node = %node_id, reason = %reason, "recovery action skipped");
                self.stats.count(&action, result);
                self.record(ActionRun {
                    at_ms: now,
                    job: String::new(),
                    alertname: alert.alertname().to_owned(),
                    severity: alert.label("severity").to_owned(),
                    action,
                    node_id,
                    trigger: Trigger::Firing.as_str().to_owned(),
                    attempt: 0,
                    result,
                    output: reason,
                    duration_seconds: 0.0,
                    dry_run: self.settings.dry_run,
                });
            }
        }
    }

    fn record(&self, run: ActionRun) {
        if let Err(e) = self.audit.record(run) {
            tracing::warn!(error = %e, "cannot write the recovery actions' audit log");
        }
    }

    fn start_due(&mut self, done: &mpsc::UnboundedSender<Finished>) {
        let slots = (self.settings.delivery.max_concurrent.0 as usize)
            .saturating_sub(self.running.len() + self.remote_running.len());
        if slots == 0 {
            return;
        }
        let running = &self.running;
        let due = self.outbox.due(now_ms(), &|id| running.contains(id));
        for job in due.into_iter().take(slots) {
            self.running.insert(job.id.clone());
            self.spawn(job, None, done);
        }
    }

    fn spawn(
        &mut self,
        job: Job,
        reply: Option<oneshot::Sender<Result<RemoteAnswer, RemoteRefusal>>>,
        done: &mpsc::UnboundedSender<Finished>,
    ) {
        let (settings, client, done) = (
            Arc::clone(&self.settings),
            self.client.clone(),
            done.clone(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let cancels = job.trigger != Trigger::Remote
            && job.trigger != Trigger::Resolved
            && settings
                .actions
                .get(&job.action)
                .is_some_and(RecoveryActionConfig::cancels_on_resolve);
        if cancels {
            self.cancels
                .insert(job.id.clone(), (job.alert.fingerprint(), stop));
        }
        let gc_runs = self.stats.gc_runs().clone();
        tokio::spawn(async move {
            // A dropped sender (the run is not cancellable, or finished) never stops it.
            let cancel = async move {
                if stopped.await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let attempt = deliver::attempt_until(&settings, &client, &job, &gc_runs, cancel).await;
            let _ = done.send(Finished {
                job,
                attempt,
                reply,
            });
        });
    }

    fn remote(
        &mut self,
        action: String,
        request: RemoteRequest,
        reply: oneshot::Sender<Result<RemoteAnswer, RemoteRefusal>>,
        done: &mpsc::UnboundedSender<Finished>,
    ) {
        if !self.settings.actions.contains_key(&action) {
            let _ = reply.send(Err(RemoteRefusal::UnknownAction(action)));
            return;
        }
        let id = format!("remote-{}", request.job);
        if let Some(d) = self.outbox.finished(&id) {
            let _ = reply.send(Ok(RemoteAnswer {
                result: d.result,
                output: d.output.clone(),
                duration_seconds: 0.0,
            }));
            return;
        }
        if !self.remote_running.insert(id.clone()) {
            let _ = reply.send(Err(RemoteRefusal::Running(request.job)));
            return;
        }
        let node_id = request.alert.node_id(&self.settings.node_id).to_owned();
        let job = Job {
            id,
            action,
            trigger: Trigger::Remote,
            node_id,
            alert: request.alert,
            created_ms: now_ms(),
            attempts: 0,
            next_attempt_ms: i64::MAX,
            last_error: String::new(),
        };
        // Kept in the outbox while it runs, so its result is remembered; the peer retries.
        self.outbox.enqueue(job.clone());
        self.spawn(job, Some(reply), done);
    }

    fn finished(&mut self, f: Finished) {
        let Finished {
            job,
            attempt,
            reply,
        } = f;
        self.running.remove(&job.id);
        self.cancels.remove(&job.id);
        let remote = self.remote_running.remove(&job.id);
        // A remote run is tried once here: the asking peer does the retrying.
        let finished = if remote {
            self.outbox.settle(&job.id, attempt.result, &attempt.output);
            Ok(Fate::Finished)
        } else {
            self.outbox.finish(
                &job.id,
                attempt.result,
                &attempt.output,
                now_ms(),
                &self.backoff(),
            )
        };
        let fate = match finished {
            Ok(fate) => fate,
            Err(e) => {
                OutboxWriteFailed { error: &e }.emit();
                Fate::Retry
            }
        };
        self.save();
        ActionAttempted {
            job: &job,
            attempt: &attempt,
            fate,
        }
        .emit();
        self.stats.count(&job.action, attempt.result);
        self.stats.observe(&job.action, attempt.duration);
        if fate == Fate::DeadLetter && !remote {
            self.stats.count(&job.action, RunResult::DeadLetter);
        }
        self.record(ActionRun {
            at_ms: now_ms(),
            job: job.id.clone(),
            alertname: job.alert.alertname().to_owned(),
            severity: job.alert.label("severity").to_owned(),
            action: job.action.clone(),
            node_id: job.node_id.clone(),
            trigger: job.trigger.as_str().to_owned(),
            attempt: job.attempts + 1,
            result: if fate == Fate::DeadLetter && !remote {
                RunResult::DeadLetter
            } else {
                attempt.result
            },
            output: attempt.output.clone(),
            duration_seconds: attempt.duration.as_secs_f64(),
            dry_run: self.settings.dry_run,
        });
        if attempt.result == RunResult::Success && !remote && job.trigger == Trigger::Firing {
            let after_ms = self
                .settings
                .actions
                .get(&job.action)
                .and_then(|a| a.verify_after_seconds)
                .map_or(2 * self.settings.evaluation_interval_ms, |s| {
                    (s.0 * 1000.0) as i64
                });
            let now = now_ms();
            self.outbox.guard_mut().verifications.insert(
                job.id.clone(),
                Verification {
                    job: job.clone(),
                    finished_ms: now,
                    due_ms: now + after_ms,
                    after_ms,
                },
            );
            self.save();
        }
        if let Some(reply) = reply {
            let _ = reply.send(Ok(RemoteAnswer {
                result: attempt.result,
                output: attempt.output,
                duration_seconds: attempt.duration.as_secs_f64(),
            }));
        }
    }
}
