//! The audit log of recovery actions: every decision, skip, approval, run and outcome the
//! actions record, appended to a hash chain under the data dir
//! (`actions/audit/audit-000001.jsonl`, ...; the format is [`chain`]'s), and the last [`KEEP`]
//! of them in memory for `GET /api/v1/actions` and the dashboard.
//!
//! Owns the record type, the files (appends, fsync, rotation by size, continuing the chain after
//! a restart, recording a line a crash tore) and the audit metrics; it does not decide or run
//! anything. A failed append never stops the actions: the record stays in memory, is counted
//! and logged, and is written at the next append or collection.

pub mod chain;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use self::chain::{Content, TornTail, GENESIS};
use crate::clock::{rfc3339, system_ms};
use crate::collect::{CollectError, Collector};
use crate::config::AuditConfig;
use crate::model::Family;

/// The folder under the actions' folder (`<data dir>/actions`) that holds the log's files.
pub const DIR: &str = "audit";

/// The file the audit log was kept in before the chain; its records are moved into the chain
/// once, and it is renamed `audit.jsonl.migrated`.
const LEGACY_FILE: &str = "audit.jsonl";

/// Records kept in memory for the API and the page (the files keep every record).
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

/// The audit log: the chain on disk and the last [`KEEP`] records in memory; cheap to clone
/// and share.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    runs: VecDeque<ActionRun>,
    writer: Option<Writer>,
    records_written: u64,
    write_failures: u64,
}

/// A line waiting to be appended: serialized when it was recorded, so what is written is what
/// was recorded then.
#[derive(Debug)]
struct Pending {
    time_ms: i64,
    key: &'static str,
    json: String,
}

/// The end of the chain on disk: where the next line goes and what it must carry.
#[derive(Debug)]
struct Tail {
    file_number: u32,
    file_len: u64,
    next_seq: u64,
    head: String,
    /// A last line a crash cut off, not yet recorded in the chain.
    torn: Option<TornTail>,
}

#[derive(Debug)]
struct Writer {
    dir: PathBuf,
    settings: AuditConfig,
    tail: Tail,
    pending: VecDeque<Pending>,
    /// A failed append may have left part of a line: read the tail again before the next one.
    reread_tail: bool,
    /// The pre-chain file, renamed once its records are in the chain.
    legacy: Option<PathBuf>,
}

/// A failed append: one warning line and one count, together.
struct AuditWriteFailed<'a> {
    error: &'a io::Error,
    pending: usize,
}

impl AuditWriteFailed<'_> {
    fn emit(self, write_failures: &mut u64) {
        tracing::warn!(
            error = %self.error,
            pending = self.pending,
            "cannot append to the recovery actions' audit log; the records are kept in memory and \
             retried at the next record or collection (check the disk and the data dir's permissions)"
        );
        *write_failures += 1;
    }
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl AuditLog {
    /// A log kept only in memory (for tests and the read-only CLI).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// The log kept in `dir` (the actions' folder; the files go in its [`DIR`]) with the default
    /// rotation, and the records a previous run left there. Nothing is written, not even the
    /// folder, until the first record or [`AuditLog::flush`].
    pub fn open(dir: &Path) -> io::Result<Self> {
        Self::open_with(dir, &AuditConfig::default())
    }

    /// As [`AuditLog::open`], rotating as `settings` say. A last line a crash cut off is
    /// reported here and recorded in the chain at the first append (never chained over).
    pub fn open_with(dir: &Path, settings: &AuditConfig) -> io::Result<Self> {
        // Created at the first append: opening a data dir to read it changes nothing.
        let audit_dir = dir.join(DIR);
        let (tail, mut runs) = read_tail(&audit_dir)?;
        let mut pending = VecDeque::new();
        if let Some(torn) = &tail.torn {
            tracing::warn!(
                file = %audit_dir.join(&torn.file).display(),
                line = torn.line,
                bytes = torn.bytes,
                "the audit log's last line was cut off (a crash during a write?); it is left as it \
                 is, the tear is recorded in the chain and the log goes on in a new file"
            );
        }
        let legacy_file = dir.join(LEGACY_FILE);
        let mut legacy = None;
        if tail.next_seq == 1 && legacy_file.is_file() {
            let text = fs::read_to_string(&legacy_file).map_err(|e| with_path(&legacy_file, e))?;
            for run in text
                .lines()
                .filter_map(|line| serde_json::from_str::<ActionRun>(line).ok())
            {
                pending.push_back(Pending::record(&run, run.at_ms)?);
                runs.push_back(run);
            }
            legacy = Some(legacy_file);
        }
        while runs.len() > KEEP {
            runs.pop_front();
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                runs,
                writer: Some(Writer {
                    dir: audit_dir,
                    settings: settings.clone(),
                    tail,
                    pending,
                    reread_tail: false,
                    legacy,
                }),
                records_written: 0,
                write_failures: 0,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a record, in memory and on disk (fsync'd before this returns). A disk error is
    /// counted, logged and returned; the record is kept and written at the next append or
    /// [`AuditLog::flush`].
    pub fn record(&self, run: ActionRun) -> io::Result<()> {
        let mut inner = self.lock();
        let pending = Pending::record(&run, system_ms(SystemTime::now()))?;
        inner.runs.push_back(run);
        if inner.runs.len() > KEEP {
            inner.runs.pop_front();
        }
        let Some(writer) = inner.writer.as_mut() else {
            return Ok(());
        };
        writer.pending.push_back(pending);
        inner.flush()
    }

    /// Writes what is waiting: records a failed append kept, a torn line's note, records moved
    /// from the pre-chain file. Errors are counted and logged as [`AuditLog::record`]'s are.
    pub fn flush(&self) -> io::Result<()> {
        self.lock().flush()
    }

    /// The last `limit` records, newest first.
    pub fn recent(&self, limit: usize) -> Vec<ActionRun> {
        self.lock().runs.iter().rev().take(limit).cloned().collect()
    }

    /// The audit metrics: records appended, failed appends, records waiting, and the head of
    /// the chain (its seq and hash, to keep elsewhere and check with `verify --head`).
    pub fn families(&self) -> Vec<Family> {
        let inner = self.lock();
        let (seq, head, pending) = match &inner.writer {
            Some(w) => (w.tail.next_seq - 1, w.tail.head.clone(), w.pending.len()),
            None => (0, GENESIS.to_owned(), 0),
        };
        let seq = seq.to_string();
        vec![
            Family::counter(
                "ipfs_sentinel_actions_audit_records_total",
                "Records appended to the recovery actions' audit log since the sentinel started.",
            )
            .with(&[], inner.records_written as f64),
            Family::counter(
                "ipfs_sentinel_actions_audit_write_failures_total",
                "Failed appends to the audit log; the records are kept in memory and retried.",
            )
            .with(&[], inner.write_failures as f64),
            Family::single_gauge(
                "ipfs_sentinel_actions_audit_pending",
                "Audit records waiting to be written after a failed append.",
                pending as f64,
            ),
            Family::gauge(
                "ipfs_sentinel_actions_audit_head_info",
                "The audit chain's last record: its seq and hash (keep it elsewhere; `actions audit verify --head HASH` checks the log still holds it).",
            )
            .with(&[("seq", &seq), ("hash", &head)], 1.0),
        ]
    }
}

impl Inner {
    fn flush(&mut self) -> io::Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let before = writer.pending.len();
        let result = writer.flush();
        let left = writer.pending.len();
        self.records_written += (before - left) as u64;
        if let Err(e) = &result {
            AuditWriteFailed {
                error: e,
                pending: left,
            }
            .emit(&mut self.write_failures);
        }
        result
    }
}

impl Pending {
    fn record(run: &ActionRun, time_ms: i64) -> io::Result<Self> {
        Ok(Self {
            time_ms,
            key: "record",
            json: serde_json::to_string(run).map_err(io::Error::other)?,
        })
    }
}

impl Writer {
    fn path(&self) -> PathBuf {
        self.dir.join(chain::file_name(self.tail.file_number))
    }

    /// Appends every pending line in order, each fsync'd; stops at the first failure, leaving
    /// it and the rest pending.
    fn flush(&mut self) -> io::Result<()> {
        if self.reread_tail {
            self.tail = read_tail(&self.dir)?.0;
            self.reread_tail = false;
        }
        if let Some(torn) = self.tail.torn.take() {
            self.pending.push_front(Pending {
                time_ms: system_ms(SystemTime::now()),
                key: "torn_tail",
                json: serde_json::to_string(&torn).map_err(io::Error::other)?,
            });
        }
        while let Some(next) = self.pending.front() {
            let (line, hash) = chain::encode(
                self.tail.next_seq,
                &rfc3339(next.time_ms),
                &self.tail.head,
                next.key,
                &next.json,
            );
            let len = line.len() as u64 + 1;
            if self.tail.file_len > 0 && self.tail.file_len + len > self.settings.max_file_bytes.0 {
                self.tail.file_number += 1;
                self.tail.file_len = 0;
            }
            if let Err(e) = self.append(&line) {
                let path = self.path();
                // Take back a partial line, so the next append does not follow it; when even
                // that fails, the tail is read again (and a torn line recorded) first.
                let undone = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(self.tail.file_len));
                if undone.is_err() {
                    self.reread_tail = true;
                }
                return Err(with_path(&path, e));
            }
            if self.tail.file_len == 0 {
                self.prune();
            }
            self.tail.file_len += len;
            self.tail.next_seq += 1;
            self.tail.head = hash;
            self.pending.pop_front();
        }
        if let Some(legacy) = self.legacy.take() {
            let to = legacy.with_extension("jsonl.migrated");
            if let Err(e) = fs::rename(&legacy, &to) {
                tracing::warn!(error = %e, file = %legacy.display(), "the pre-chain audit file's records are in the chain, but it cannot be renamed; remove it");
            }
        }
        Ok(())
    }

    /// Appends one line and fsyncs it. The file is opened each time (records are few, the
    /// fsync costs far more): a file moved or removed under the sentinel is noticed, not
    /// written to unseen.
    fn append(&self, line: &str) -> io::Result<()> {
        let new_file = self.tail.file_len == 0;
        if new_file {
            fs::create_dir_all(&self.dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path())?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        file.sync_data()?;
        if new_file {
            // The new file's name must survive a crash too.
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Deletes the oldest whole files past `keep_files` (0: keep all).
    fn prune(&self) {
        let keep = self.settings.keep_files as usize;
        if keep == 0 {
            return;
        }
        let files = match chain::list_files(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the audit log's files to rotate them");
                return;
            }
        };
        for (_, path) in files.iter().take(files.len().saturating_sub(keep)) {
            match fs::remove_file(path) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), "audit log file removed by rotation (actions.audit.keep_files)")
                }
                Err(e) => {
                    tracing::warn!(error = %e, file = %path.display(), "cannot remove an old audit log file")
                }
            }
        }
    }
}

/// Reads the end of the chain in `dir` (where the next line goes, its seq and prev, a torn last
/// line) and the last [`KEEP`] records, oldest first.
fn read_tail(dir: &Path) -> io::Result<(Tail, VecDeque<ActionRun>)> {
    let files = chain::list_files(dir).map_err(io::Error::other)?;
    let mut tail = Tail {
        file_number: files.last().map_or(1, |(n, _)| *n),
        file_len: 0,
        next_seq: 1,
        head: GENESIS.to_owned(),
        torn: None,
    };
    let mut runs = VecDeque::new();
    let mut found_head = false;
    for (index, (number, path)) in files.iter().enumerate().rev() {
        let bytes = fs::read(path).map_err(|e| with_path(path, e))?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let lines: Vec<&[u8]> = bytes[..complete]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        if index + 1 == files.len() {
            tail.file_len = bytes.len() as u64;
            if complete < bytes.len() {
                tail.torn = Some(TornTail {
                    file: chain::file_name(*number),
                    line: bytes[..complete].iter().filter(|b| **b == b'\n').count() as u64 + 1,
                    bytes: (bytes.len() - complete) as u64,
                });
                tail.file_number = number + 1;
                tail.file_len = 0;
            }
        }
        if !found_head {
            for line in lines.iter().rev() {
                if let (Some(seq), Some(hash)) =
                    (chain::leading_seq(line), chain::computed_hash(line))
                {
                    tail.next_seq = seq + 1;
                    tail.head = hash;
                    found_head = true;
                    break;
                }
            }
        }
        if runs.len() < KEEP {
            let mut older: Vec<ActionRun> = lines
                .iter()
                .filter_map(|line| match chain::decode(line) {
                    Ok(chain::Entry {
                        content: Content::Record(value),
                        ..
                    }) => serde_json::from_value(value).ok(),
                    _ => None,
                })
                .collect();
            while let Some(run) = older.pop() {
                if runs.len() == KEEP {
                    break;
                }
                runs.push_front(run);
            }
        }
        if found_head && runs.len() >= KEEP {
            break;
        }
    }
    Ok((tail, runs))
}

/// Exposes [`AuditLog::families`] on `/metrics`, and writes records a failed append left
/// waiting at each collection.
pub struct AuditCollector {
    log: AuditLog,
}

impl AuditCollector {
    /// A collector for `log`.
    pub fn new(log: AuditLog) -> Self {
        Self { log }
    }
}

impl Collector for AuditCollector {
    fn name(&self) -> &'static str {
        "actions_audit"
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
        // A failure is already counted and logged; the metrics say the rest.
        let waiting = self
            .log
            .lock()
            .writer
            .as_ref()
            .is_some_and(|w| !w.pending.is_empty() || w.tail.torn.is_some());
        if waiting {
            let _ = self.log.flush();
        }
        let families = self.log.families();
        Box::pin(async move { Ok(families) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain::{walk, ChainError};

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

    fn settings(max_file_bytes: u64, keep_files: u64) -> AuditConfig {
        AuditConfig {
            max_file_bytes: crate::config::NonZeroCount(max_file_bytes),
            keep_files,
        }
    }

    /// Every entry of the chain in `dir`, checked.
    fn entries(dir: &Path) -> (chain::Summary, Vec<(String, u64, chain::Entry)>) {
        let mut seen = Vec::new();
        let summary = walk(&dir.join(DIR), &mut |v, _| {
            seen.push((v.file.to_owned(), v.line, v.entry.clone()))
        })
        .unwrap();
        (summary, seen)
    }

    fn files(dir: &Path) -> Vec<String> {
        chain::list_files(&dir.join(DIR))
            .unwrap()
            .into_iter()
            .map(|(n, _)| chain::file_name(n))
            .collect()
    }

    #[test]
    fn each_record_carries_the_hash_of_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        for n in 1..=5 {
            log.record(run(n)).unwrap();
        }
        let (summary, seen) = entries(dir.path());
        assert_eq!(summary.records, 5);
        assert_eq!(seen[0].2.prev, GENESIS);
        for pair in seen.windows(2) {
            assert_eq!(pair[1].2.prev, pair[0].2.hash);
            assert_eq!(pair[1].2.seq, pair[0].2.seq + 1);
        }
        assert_eq!(
            seen[2].2.content,
            Content::Record(serde_json::to_value(run(3)).unwrap())
        );
        assert_eq!(summary.head_hash, seen[4].2.hash);
        let head = log.families().pop().unwrap();
        assert_eq!(
            head.samples[0].labels,
            vec![
                ("seq".to_owned(), "5".to_owned()),
                ("hash".to_owned(), summary.head_hash.clone())
            ]
        );
    }

    #[test]
    fn opening_a_data_dir_writes_nothing_until_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        assert!(log.recent(10).is_empty());
        log.flush().unwrap();
        assert!(!dir.path().join(DIR).exists());
        log.record(run(1)).unwrap();
        assert_eq!(files(dir.path()), ["audit-000001.jsonl"]);
    }

    #[test]
    fn the_chain_goes_on_after_a_restart_and_nothing_is_dropped_at_keep() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let total = KEEP as i64 + 20;
        for n in 0..total / 2 {
            log.record(run(n)).unwrap();
        }
        drop(log);
        let again = AuditLog::open(dir.path()).unwrap();
        assert_eq!(again.recent(1)[0].at_ms, total / 2 - 1);
        for n in total / 2..total {
            again.record(run(n)).unwrap();
        }
        let (summary, seen) = entries(dir.path());
        assert_eq!(summary.records, total as u64);
        assert_eq!(seen.last().unwrap().2.seq, total as u64);
        let view = AuditLog::open(dir.path()).unwrap().recent(usize::MAX);
        assert_eq!(view.len(), KEEP, "the in-memory view stays bounded");
        assert_eq!(view[0].at_ms, total - 1);
    }

    #[test]
    fn rotation_carries_the_chain_into_the_next_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open_with(dir.path(), &settings(1000, 0)).unwrap();
        for n in 0..10 {
            log.record(run(n)).unwrap();
        }
        let names = files(dir.path());
        assert!(names.len() >= 4, "1000-byte files: {names:?}");
        for name in &names {
            let len = fs::metadata(dir.path().join(DIR).join(name)).unwrap().len();
            assert!(len <= 1000, "{name} has {len} bytes");
        }
        let (summary, seen) = entries(dir.path());
        assert_eq!(summary.records, 10);
        assert_eq!(summary.files, names.len());
        let first_of_second = seen.iter().position(|s| s.0 == names[1]).unwrap();
        assert_eq!(seen[first_of_second].1, 1);
        assert_eq!(
            seen[first_of_second].2.prev,
            seen[first_of_second - 1].2.hash,
            "the first record of a new file carries the last hash of the one before"
        );
    }

    #[test]
    fn rotation_keeps_the_newest_files_and_the_rest_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open_with(dir.path(), &settings(1000, 2)).unwrap();
        for n in 0..10 {
            log.record(run(n)).unwrap();
        }
        let names = files(dir.path());
        assert_eq!(names.len(), 2, "{names:?}");
        assert_ne!(names[0], chain::file_name(1));
        let (summary, _) = entries(dir.path());
        assert!(summary.first_seq > 1);
        assert_eq!(summary.head_seq, 10);
    }

    #[test]
    fn a_torn_last_line_is_recorded_in_the_chain_not_chained_over() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.record(run(1)).unwrap();
        log.record(run(2)).unwrap();
        drop(log);
        let first = dir.path().join(DIR).join(chain::file_name(1));
        let mut f = OpenOptions::new().append(true).open(&first).unwrap();
        f.write_all(b"{\"seq\":3,\"time\":\"20").unwrap();
        drop(f);
        match walk(&dir.path().join(DIR), &mut |_, _| {}) {
            Err(ChainError::Broken(b)) => {
                assert_eq!((b.file.as_str(), b.line), ("audit-000001.jsonl", 3));
                assert!(b.reason.contains("cut off after 19 bytes"), "{b}");
            }
            other => panic!("a torn line must break the chain: {other:?}"),
        }
        let again = AuditLog::open(dir.path()).unwrap();
        assert_eq!(again.recent(10), vec![run(2), run(1)]);
        again.record(run(3)).unwrap();
        let (summary, seen) = entries(dir.path());
        assert_eq!(
            summary.torn,
            vec![TornTail {
                file: "audit-000001.jsonl".into(),
                line: 3,
                bytes: 19
            }]
        );
        assert_eq!(seen[2].0, "audit-000002.jsonl");
        assert_eq!(
            seen[2].2.content,
            Content::TornTail(summary.torn[0].clone())
        );
        assert_eq!(seen[2].2.prev, seen[1].2.hash);
        assert_eq!(seen[3].2.seq, 4);
        assert_eq!(
            fs::read(&first).unwrap().last(),
            Some(&b'0'),
            "the torn line is left as evidence"
        );
    }

    #[test]
    fn a_failed_append_is_counted_kept_and_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.record(run(1)).unwrap();
        let audit_dir = dir.path().join(DIR);
        fs::rename(&audit_dir, dir.path().join("moved")).unwrap();
        fs::write(&audit_dir, b"not a folder").unwrap();
        let e = log.record(run(2)).unwrap_err();
        assert!(e.to_string().contains("audit-000001.jsonl"), "{e}");
        assert_eq!(log.recent(1), vec![run(2)], "kept in memory");
        let value = |name: &str| {
            log.families()
                .into_iter()
                .find(|f| f.name == name)
                .unwrap()
                .samples[0]
                .value
        };
        assert_eq!(
            value("ipfs_sentinel_actions_audit_write_failures_total"),
            1.0
        );
        assert_eq!(value("ipfs_sentinel_actions_audit_pending"), 1.0);
        fs::remove_file(&audit_dir).unwrap();
        fs::rename(dir.path().join("moved"), &audit_dir).unwrap();
        let mut collector = AuditCollector::new(log.clone());
        futures::executor::block_on(collector.collect()).unwrap();
        assert_eq!(value("ipfs_sentinel_actions_audit_pending"), 0.0);
        assert_eq!(value("ipfs_sentinel_actions_audit_records_total"), 2.0);
        let (summary, seen) = entries(dir.path());
        assert_eq!(summary.records, 2);
        assert_eq!(
            seen[1].2.content,
            Content::Record(serde_json::to_value(run(2)).unwrap())
        );
    }

    #[test]
    fn the_pre_chain_file_moves_into_the_chain_once() {
        let dir = tempfile::tempdir().unwrap();
        let old: String = (1..=3)
            .map(|n| serde_json::to_string(&run(n)).unwrap() + "\n")
            .collect();
        fs::write(dir.path().join(LEGACY_FILE), old).unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(log.recent(1), vec![run(3)]);
        log.flush().unwrap();
        assert!(!dir.path().join(LEGACY_FILE).exists());
        assert!(dir.path().join("audit.jsonl.migrated").exists());
        let (summary, seen) = entries(dir.path());
        assert_eq!(summary.records, 3);
        assert_eq!(seen[0].2.time, rfc3339(1));
        drop(log);
        assert_eq!(AuditLog::open(dir.path()).unwrap().recent(10).len(), 3);
    }
}
