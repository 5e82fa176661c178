//! The audit log of recovery actions: every run, skip and dry run, newest last, kept across
//! restarts in `actions/audit.jsonl` under the data dir, served by `GET /api/v1/actions` and
//! shown on the dashboard.
//!
//! Owns the record type and the bounded list; it does not decide or run anything. Appends are
//! one JSON line each; the file is rewritten (atomically) to the last [`KEEP`] records when it
//! grows past twice that.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Records kept in memory and on disk.
pub const KEEP: usize = 1000;

/// What became of one attempt to run an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    /// It ran and succeeded (exit status 0, a 2xx answer, a built-in that did its work).
    Success,
    /// It ran and failed; it may be retried.
    Failure,
    /// It was killed at its timeout; it may be retried.
    Timeout,
    /// Dry run: recorded as what would have run.
    DryRun,
    /// Not run: the action's cool-down for this node has not passed.
    SkippedCooldown,
    /// Not run: the alert episode has used up `max_runs`.
    SkippedMaxRuns,
    /// Failed for the last allowed time: moved to the dead letters.
    DeadLetter,
    /// Decided, waiting as a proposal for an operator's approval.
    AwaitingApproval,
    /// A proposal an operator approved (who, in the output); it runs now.
    Approved,
    /// A proposal an operator rejected (who, in the output); it never runs.
    Rejected,
    /// A proposal nobody approved within `approval_timeout_seconds`; it never runs.
    Expired,
    /// Not run: the action's `when` expression returned nothing.
    SkippedPrecondition,
    /// Not run: this sentinel sees too much of the cluster Offline to act on another node.
    SkippedPartition,
    /// Not run: the circuit breaker is open.
    SkippedCircuitOpen,
    /// Stopped (SIGTERM, then SIGKILL to its process group) when its alert resolved.
    Cancelled,
    /// Verified after a successful run: the alert no longer fires.
    Resolved,
    /// Verified after a successful run: the alert still fires; counts toward escalation.
    StillFiring,
}

impl RunResult {
    /// The name used in the API and in `ipfs_sentinel_actions_total{result}`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::Failure => "failure",
            RunResult::Timeout => "timeout",
            RunResult::DryRun => "dry_run",
            RunResult::SkippedCooldown => "skipped_cooldown",
            RunResult::SkippedMaxRuns => "skipped_max_runs",
            RunResult::DeadLetter => "dead_letter",
            RunResult::AwaitingApproval => "awaiting_approval",
            RunResult::Approved => "approved",
            RunResult::Rejected => "rejected",
            RunResult::Expired => "expired",
            RunResult::SkippedPrecondition => "skipped_precondition",
            RunResult::SkippedPartition => "skipped_partition",
            RunResult::SkippedCircuitOpen => "skipped_circuit_open",
            RunResult::Cancelled => "cancelled",
            RunResult::Resolved => "resolved",
            RunResult::StillFiring => "still_firing",
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRun {
    /// When the attempt ended, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The outbox entry this attempt belongs to.
    pub job: String,
    /// The alert that asked for it.
    pub alertname: String,
    /// The alert's severity label, if any.
    pub severity: String,
    /// The action's name in the configuration.
    pub action: String,
    /// The node it ran for (the alert's `node_id`, or this node's).
    pub node_id: String,
    /// Why it ran: `firing`, `resolved`, `escalation` or `remote`.
    pub trigger: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// What became of it.
    pub result: RunResult,
    /// The first 4 KiB of its output, an HTTP answer, or why it was skipped or failed.
    pub output: String,
    /// How long the attempt took.
    pub duration_seconds: f64,
    /// True when nothing ran because of `--dry-run` or `actions.dry_run`.
    pub dry_run: bool,
}

/// The bounded, persisted list of [`ActionRun`]s; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    runs: VecDeque<ActionRun>,
    file: Option<PathBuf>,
    lines_in_file: usize,
}

impl AuditLog {
    /// A log kept only in memory (for tests and the read-only CLI).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// The log kept in `dir` (created if missing), with the records a previous run left there.
    /// Unreadable lines (a torn last write) are skipped.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let file = dir.join("audit.jsonl");
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut runs: VecDeque<ActionRun> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        let lines_in_file = text.lines().count();
        while runs.len() > KEEP {
            runs.pop_front();
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                runs,
                file: Some(file),
                lines_in_file,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a record, in memory and on disk. A disk error is returned, but the record is
    /// kept in memory regardless.
    pub fn record(&self, run: ActionRun) -> std::io::Result<()> {
        let mut inner = self.lock();
        inner.runs.push_back(run.clone());
        if inner.runs.len() > KEEP {
            inner.runs.pop_front();
        }
        let Some(file) = inner.file.clone() else {
            return Ok(());
        };
        if inner.lines_in_file >= 2 * KEEP {
            let mut text = String::new();
            for r in &inner.runs {
                text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
                text.push('\n');
            }
            crate::files::write_atomically(&file, text.as_bytes())?;
            inner.lines_in_file = inner.runs.len();
            return Ok(());
        }
        let mut line = serde_json::to_string(&run).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut f = OpenOptions::new().create(true).append(true).open(&file)?;
        f.write_all(line.as_bytes())?;
        f.sync_data()?;
        inner.lines_in_file += 1;
        Ok(())
    }

    /// The last `limit` records, newest first.
    pub fn recent(&self, limit: usize) -> Vec<ActionRun> {
        self.lock().runs.iter().rev().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: i64) -> ActionRun {
        ActionRun {
            at_ms: n,
            job: format!("j{n}"),
            alertname: "DiskFull".into(),
            severity: "warning".into(),
            action: "run_gc".into(),
            node_id: "node-a".into(),
            trigger: "firing".into(),
            attempt: 1,
            result: RunResult::Success,
            output: "ok".into(),
            duration_seconds: 0.5,
            dry_run: false,
        }
    }

    #[test]
    fn records_survive_a_reopen_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        for n in 0..(2 * KEEP as i64 + 5) {
            log.record(run(n)).unwrap();
        }
        let newest = log.recent(2);
        assert_eq!(newest[0].at_ms, 2 * KEEP as i64 + 4);
        assert_eq!(newest[1].at_ms, 2 * KEEP as i64 + 3);
        let again = AuditLog::open(dir.path()).unwrap();
        let all = again.recent(usize::MAX);
        assert_eq!(all.len(), KEEP);
        assert_eq!(all[0], log.recent(1)[0]);
        let lines = fs::read_to_string(dir.path().join("audit.jsonl"))
            .unwrap()
            .lines()
            .count();
        assert!(
            lines <= 2 * KEEP,
            "the file is compacted, has {lines} lines"
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.record(run(1)).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("audit.jsonl"))
            .unwrap();
        f.write_all(b"{\"at_ms\": 2, \"jo").unwrap();
        let again = AuditLog::open(dir.path()).unwrap();
        assert_eq!(again.recent(10), vec![run(1)]);
    }
}
