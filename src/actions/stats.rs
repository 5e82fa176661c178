//! The recovery actions' metrics: `ipfs_sentinel_actions_total{action,result}`,
//! `ipfs_sentinel_action_duration_seconds{action}` (the last attempt),
//! `ipfs_sentinel_actions_queued`, `ipfs_sentinel_outbox_pending`,
//! `ipfs_sentinel_actions_dead_letter_total`, the guardrails' `ipfs_sentinel_actions_awaiting_approval`,
//! `ipfs_sentinel_action_proposal{proposal,...}` and `ipfs_sentinel_actions_circuit_open`,
//! exposed by the `actions` collector.
//!
//! Owns the counters; the dispatcher and the Alertmanager pusher update them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use super::audit::RunResult;
use super::builtin::GcRuns;
use crate::collect::{CollectError, Collector};
use crate::model::Family;

#[derive(Debug, Default)]
struct Counts {
    runs: BTreeMap<(String, &'static str), u64>,
    durations: BTreeMap<String, f64>,
    queued: usize,
    pending: usize,
    dead_letters: u64,
    proposals: Vec<ProposalGauge>,
    circuit_open: bool,
}

/// One proposal waiting for approval, as `ipfs_sentinel_action_proposal`'s labels:
/// what the `RecoveryActionAwaitingApproval` alert carries.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalGauge {
    /// Its id.
    pub proposal: String,
    /// The action.
    pub action: String,
    /// The node it is for.
    pub node_id: String,
    /// The alert that asked for it.
    pub alertname: String,
    /// What it would do.
    pub would_run: String,
}

/// Characters of `would_run` kept in a label.
const WOULD_RUN_LABEL_CHARS: usize = 256;

/// Shared counters; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    inner: Arc<Mutex<Counts>>,
    gc: GcRuns,
}

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `run_gc` built-in's own counts, exposed with these.
    pub fn gc_runs(&self) -> &GcRuns {
        &self.gc
    }

    /// Counts one attempt's (or skip's) result.
    pub fn count(&self, action: &str, result: RunResult) {
        *self
            .lock()
            .runs
            .entry((action.to_owned(), result.as_str()))
            .or_default() += 1;
    }

    /// Records how long an attempt took.
    pub fn observe(&self, action: &str, took: Duration) {
        self.lock()
            .durations
            .insert(action.to_owned(), took.as_secs_f64());
    }

    /// Sets the outbox's figures: runs waiting for a free slot or their retry time, runs
    /// pending in all, dead letters in all.
    pub fn set_outbox(&self, queued: usize, pending: usize, dead_letters: u64) {
        let mut c = self.lock();
        c.queued = queued;
        c.pending = pending;
        c.dead_letters = dead_letters;
    }

    /// Sets the proposals waiting for approval and whether the circuit breaker is open.
    pub fn set_guard(&self, proposals: Vec<ProposalGauge>, circuit_open: bool) {
        let mut c = self.lock();
        c.proposals = proposals;
        c.circuit_open = circuit_open;
    }

    /// The metric families.
    pub fn families(&self) -> Vec<Family> {
        let c = self.lock();
        let mut runs = Family::counter(
            "ipfs_sentinel_actions_total",
            "Recovery action attempts, skips and outcomes, by action and result (success, failure, timeout, dry_run, skipped_cooldown, skipped_max_runs, dead_letter, awaiting_approval, approved, rejected, expired, skipped_precondition, skipped_partition, skipped_circuit_open, cancelled, resolved, still_firing).",
        );
        for ((action, result), n) in &c.runs {
            runs.push(&[("action", action), ("result", result)], *n as f64);
        }
        let mut durations = Family::gauge(
            "ipfs_sentinel_action_duration_seconds",
            "How long the last attempt of each recovery action took.",
        );
        for (action, seconds) in &c.durations {
            durations.push(&[("action", action)], *seconds);
        }
        let mut awaiting = Family::gauge(
            "ipfs_sentinel_action_proposal",
            "1 for each recovery action run waiting for approval, with what it would do.",
        );
        for p in &c.proposals {
            let would_run: String = p.would_run.chars().take(WOULD_RUN_LABEL_CHARS).collect();
            awaiting.push(
                &[
                    ("proposal", &p.proposal),
                    ("action", &p.action),
                    ("node_id", &p.node_id),
                    ("alertname", &p.alertname),
                    ("would_run", &would_run),
                ],
                1.0,
            );
        }
        vec![
            runs,
            durations,
            awaiting,
            Family::single_gauge(
                "ipfs_sentinel_actions_awaiting_approval",
                "Recovery action runs waiting for approval.",
                c.proposals.len() as f64,
            ),
            Family::single_gauge(
                "ipfs_sentinel_actions_circuit_open",
                "1 while the recovery actions' circuit breaker is open (nothing runs).",
                if c.circuit_open { 1.0 } else { 0.0 },
            ),
            Family::single_gauge(
                "ipfs_sentinel_actions_queued",
                "Recovery action runs waiting for a free slot or for their retry time.",
                c.queued as f64,
            ),
            Family::single_gauge(
                "ipfs_sentinel_outbox_pending",
                "Recovery action runs in the durable outbox, running ones included.",
                c.pending as f64,
            ),
            Family::counter(
                "ipfs_sentinel_actions_dead_letter_total",
                "Recovery action runs given up after their last allowed attempt.",
            )
            .with(&[], c.dead_letters as f64),
        ]
        .into_iter()
        .chain(self.gc.families())
        .collect()
    }
}

/// Exposes [`Stats`] on `/metrics`.
pub struct ActionsCollector {
    stats: Stats,
}

impl ActionsCollector {
    /// A collector reading `stats`.
    pub fn new(stats: Stats) -> Self {
        Self { stats }
    }
}

impl Collector for ActionsCollector {
    fn name(&self) -> &'static str {
        "actions"
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
        let families = self.stats.families();
        Box::pin(async move { Ok(families) })
    }
}
