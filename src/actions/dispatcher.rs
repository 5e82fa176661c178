//! The recovery actions' runtime: one task that owns the outbox. It takes alert sightings
//! (from the rules task after each evaluation, over a channel of their own, or from
//! Alertmanager's webhook) and remote run requests over a channel, lets the policy decide, writes each decided run to the
//! outbox before trying it, runs at most `max_concurrent` at once, retries failures with
//! back-off, records every attempt in the audit log and the metrics, and hands alerts due for
//! Alertmanager to the pusher.
//!
//! Owns scheduling and bookkeeping; what an attempt does is [`super::deliver`]'s, when to run
//! [`super::policy`]'s.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

use super::alertmanager::{self, Batch};
use super::audit::{ActionRun, AuditLog, RunResult};
use super::deliver::{self, Attempt, Settings};
use super::outbox::{Backoff, Fate, Job, Outbox};
use super::policy::{ActionPolicy, Decision, Trigger};
use super::remote::{RemoteAnswer, RemoteRequest};
use super::stats::Stats;
use crate::clock::system_ms;
use crate::model::{AlertEvent, Sighting, Status};

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
/// task holds its sender; see [`SIGHTINGS_CAPACITY`]).
pub fn start(
    settings: Settings,
    outbox: Outbox,
    audit: AuditLog,
    stats: Stats,
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
    let dispatcher = Dispatcher {
        settings: Arc::clone(&settings),
        client,
        outbox,
        audit: audit.clone(),
        stats,
        am: am_tx,
        running: HashSet::new(),
        remote_running: HashSet::new(),
    };
    let handle = tokio::spawn(dispatcher.run(input_rx, evaluated, shutdown));
    Ok((
        Actions {
            input: input_tx,
            settings: Arc::new(ArcSwap::new(settings)),
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
            self.start_due(&done_tx);
            self.publish_stats();
            let running = &self.running;
            let wait = self
                .outbox
                .next_due_ms(&|id| running.contains(id))
                .map_or(Duration::from_secs(3600), |at| {
                    Duration::from_millis((at - now_ms()).clamp(0, 3_600_000) as u64)
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

    fn publish_stats(&self) {
        let queued = self.outbox.pending().saturating_sub(self.running.len());
        self.stats.set_outbox(
            queued,
            self.outbox.pending(),
            self.outbox.dead_letters_total(),
        );
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
                self.outbox.enqueue(job);
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
        &self,
        job: Job,
        reply: Option<oneshot::Sender<Result<RemoteAnswer, RemoteRefusal>>>,
        done: &mpsc::UnboundedSender<Finished>,
    ) {
        let (settings, client, done) = (
            Arc::clone(&self.settings),
            self.client.clone(),
            done.clone(),
        );
        let gc_runs = self.stats.gc_runs().clone();
        tokio::spawn(async move {
            let attempt = deliver::attempt(&settings, &client, &job, &gc_runs).await;
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
        if let Some(reply) = reply {
            let _ = reply.send(Ok(RemoteAnswer {
                result: attempt.result,
                output: attempt.output,
                duration_seconds: attempt.duration.as_secs_f64(),
            }));
        }
    }
}
