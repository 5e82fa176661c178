//! The recovery actions' metrics: `ipfs_sentinel_actions_total{action,result}`,
//! `ipfs_sentinel_action_duration_seconds{action}` (the last attempt),
//! `ipfs_sentinel_actions_queued`, `ipfs_sentinel_outbox_pending` and
//! `ipfs_sentinel_actions_dead_letter_total`, exposed by the `actions` collector.
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
}

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

    /// The metric families.
    pub fn families(&self) -> Vec<Family> {
        let c = self.lock();
        let mut runs = Family::counter(
            "ipfs_sentinel_actions_total",
            "Recovery action attempts and skips, by action and result (success, failure, timeout, dry_run, skipped_cooldown, skipped_max_runs, dead_letter).",
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
        vec![
            runs,
            durations,
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
