//! The durable outbox: every run the policy decides on is written here before it is tried,
//! with the policy state that decided it, in one file replaced atomically
//! (`actions/outbox.json`: write, fsync, rename). Runs that fail are rescheduled with
//! exponential back-off and jitter; after the last allowed attempt they move to
//! `actions/dead-letters.jsonl`. After a restart the pending runs are delivered and the policy
//! carries on where it stopped, so a finished run is never started again. The guardrails'
//! state ([`super::guard`]: proposals, the circuit breaker, runs being verified) is stored in
//! the same file.
//!
//! Owns the stored state and the retry schedule; it runs nothing and reads no clock.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::audit::RunResult;
use super::guard::GuardState;
use super::policy::{PolicyState, Trigger};
use crate::files::write_atomically;
use crate::model::AlertEvent;

/// Job ids remembered after they finish, so a peer's retry of a remote run is answered from
/// the record instead of running again.
const DONE_KEPT: usize = 1000;

/// One run waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Unique and stable: alert episode, action, trigger and run number.
    pub id: String,
    /// The action's name.
    pub action: String,
    /// Why it runs.
    pub trigger: Trigger,
    /// The node it runs for.
    pub node_id: String,
    /// The alert, as it was when the run was decided.
    pub alert: AlertEvent,
    /// When it was decided.
    pub created_ms: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not to be tried before this time.
    pub next_attempt_ms: i64,
    /// What the last attempt said.
    pub last_error: String,
}

/// How a finished job ended, kept for repeated remote requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// The job's id.
    pub id: String,
    /// Its final result.
    pub result: RunResult,
    /// Its output.
    pub output: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    policy: PolicyState,
    jobs: BTreeMap<String, Job>,
    dead_letters_total: u64,
    done: VecDeque<Done>,
    /// Proposals, the breaker and verifications; absent in files written before them.
    #[serde(default)]
    guard: GuardState,
}

/// Retry schedule.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts before a job becomes a dead letter.
    pub max_attempts: u32,
    /// Wait before the first retry.
    pub initial_ms: i64,
    /// Longest wait.
    pub max_ms: i64,
}

impl Backoff {
    /// The wait after `attempts` failed attempts: `initial * 2^(attempts-1)`, at most `max`,
    /// with up to 20 % random jitter so that many failing runs do not retry in step.
    pub fn delay_ms(&self, attempts: u32) -> i64 {
        let exp = attempts.saturating_sub(1).min(30);
        let base = self.initial_ms.saturating_mul(1i64 << exp).min(self.max_ms);
        let jitter = rand::rng().random_range(0..=base / 5);
        base + jitter
    }
}

/// The outbox and the policy state, as stored in the data dir (or in memory).
#[derive(Debug)]
pub struct Outbox {
    dir: Option<PathBuf>,
    stored: Stored,
}

/// What [`Outbox::finish`] did with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Done; removed.
    Finished,
    /// Failed; will be tried again.
    Retry,
    /// Failed for the last time; moved to the dead letters.
    DeadLetter,
}

impl Outbox {
    /// An outbox kept only in memory.
    pub fn in_memory() -> Self {
        Self {
            dir: None,
            stored: Stored::default(),
        }
    }

    /// The outbox kept in `dir`. An unreadable file is moved aside (and named in the
    /// returned warning) so the sentinel still starts.
    pub fn open(dir: &Path) -> io::Result<(Self, Option<String>)> {
        fs::create_dir_all(dir)?;
        let path = dir.join("outbox.json");
        let mut warning = None;
        let stored = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(stored) => stored,
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    fs::rename(&path, &aside)?;
                    warning = Some(format!(
                        "{}: unreadable ({e}); moved to {}",
                        path.display(),
                        aside.display()
                    ));
                    Stored::default()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(e),
        };
        Ok((
            Self {
                dir: Some(dir.to_owned()),
                stored,
            },
            warning,
        ))
    }

    /// Writes the state out (a no-op in memory).
    pub fn save(&self) -> io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&self.stored).map_err(io::Error::other)?;
        write_atomically(&dir.join("outbox.json"), &bytes)
    }

    /// The policy state, to decide with.
    pub fn policy_mut(&mut self) -> &mut PolicyState {
        &mut self.stored.policy
    }

    /// The guardrails' state (proposals, breaker, verifications).
    pub fn guard(&self) -> &GuardState {
        &self.stored.guard
    }

    /// The guardrails' state, to change.
    pub fn guard_mut(&mut self) -> &mut GuardState {
        &mut self.stored.guard
    }

    /// Adds a job unless one with its id exists or has finished. Returns whether it was added.
    pub fn enqueue(&mut self, job: Job) -> bool {
        if self.stored.jobs.contains_key(&job.id) || self.finished(&job.id).is_some() {
            return false;
        }
        self.stored.jobs.insert(job.id.clone(), job);
        true
    }

    /// Whether a job with this id is pending or has finished.
    pub fn enqueued_or_done(&self, id: &str) -> bool {
        self.stored.jobs.contains_key(id) || self.finished(id).is_some()
    }

    /// How a job that is no longer pending ended, if it is remembered.
    pub fn finished(&self, id: &str) -> Option<&Done> {
        self.stored.done.iter().find(|d| d.id == id)
    }

    /// Jobs due at `now_ms`, oldest first, skipping those in `running`.
    pub fn due(&self, now_ms: i64, running: &dyn Fn(&str) -> bool) -> Vec<Job> {
        let mut due: Vec<Job> = self
            .stored
            .jobs
            .values()
            .filter(|j| j.next_attempt_ms <= now_ms && !running(&j.id))
            .cloned()
            .collect();
        due.sort_by_key(|j| (j.next_attempt_ms, j.created_ms));
        due
    }

    /// When the next job not in `running` is due.
    pub fn next_due_ms(&self, running: &dyn Fn(&str) -> bool) -> Option<i64> {
        self.stored
            .jobs
            .values()
            .filter(|j| !running(&j.id))
            .map(|j| j.next_attempt_ms)
            .min()
    }

    /// Pending jobs.
    pub fn pending(&self) -> usize {
        self.stored.jobs.len()
    }

    /// Jobs moved to the dead letters since the data dir was made.
    pub fn dead_letters_total(&self) -> u64 {
        self.stored.dead_letters_total
    }

    /// Records an attempt's result: success (or a dry run) finishes the job; a failure
    /// reschedules it, or moves it to the dead letters after `backoff.max_attempts`.
    pub fn finish(
        &mut self,
        id: &str,
        result: RunResult,
        output: &str,
        now_ms: i64,
        backoff: &Backoff,
    ) -> io::Result<Fate> {
        let Some(job) = self.stored.jobs.get_mut(id) else {
            return Ok(Fate::Finished);
        };
        job.attempts += 1;
        let failed = matches!(result, RunResult::Failure | RunResult::Timeout);
        let fate = if !failed {
            Fate::Finished
        } else if job.attempts >= backoff.max_attempts {
            Fate::DeadLetter
        } else {
            job.last_error = output.to_owned();
            job.next_attempt_ms = now_ms + backoff.delay_ms(job.attempts);
            Fate::Retry
        };
        if fate == Fate::Retry {
            return Ok(fate);
        }
        let mut job = self.stored.jobs.remove(id).expect("present above");
        let final_result = if fate == Fate::DeadLetter {
            job.last_error = output.to_owned();
            self.stored.dead_letters_total += 1;
            self.write_dead_letter(&job)?;
            RunResult::DeadLetter
        } else {
            result
        };
        self.remember(id, final_result, output);
        Ok(fate)
    }

    /// Ends a job after one attempt whatever its result (a run a peer asked for: the peer
    /// retries), remembering the result.
    pub fn settle(&mut self, id: &str, result: RunResult, output: &str) {
        self.stored.jobs.remove(id);
        self.remember(id, result, output);
    }

    fn remember(&mut self, id: &str, result: RunResult, output: &str) {
        self.stored.done.push_back(Done {
            id: id.to_owned(),
            result,
            output: output.to_owned(),
        });
        while self.stored.done.len() > DONE_KEPT {
            self.stored.done.pop_front();
        }
    }

    fn write_dead_letter(&self, job: &Job) -> io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let mut line = serde_json::to_string(job).map_err(io::Error::other)?;
        line.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dead-letters.jsonl"))?;
        f.write_all(line.as_bytes())?;
        f.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LabelSet, Status};

    fn job(id: &str) -> Job {
        Job {
            id: id.into(),
            action: "page".into(),
            trigger: Trigger::Firing,
            node_id: "a".into(),
            alert: AlertEvent {
                labels: LabelSet::new(),
                annotations: LabelSet::new(),
                status: Status::Firing,
                value: 1.0,
                starts_at_ms: 0,
                ends_at_ms: 0,
                generator_url: String::new(),
                actions: vec!["page".into()],
                expr: String::new(),
            },
            created_ms: 0,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: String::new(),
        }
    }

    const BACKOFF: Backoff = Backoff {
        max_attempts: 3,
        initial_ms: 1000,
        max_ms: 4000,
    };

    #[test]
    fn back_off_doubles_up_to_the_cap_with_jitter() {
        for (attempts, base) in [(1, 1000), (2, 2000), (3, 4000), (9, 4000)] {
            let d = BACKOFF.delay_ms(attempts);
            assert!(d >= base && d <= base + base / 5, "{attempts}: {d}");
        }
    }

    #[test]
    fn failures_retry_then_become_dead_letters_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, warning) = Outbox::open(dir.path()).unwrap();
        assert!(warning.is_none());
        assert!(o.enqueue(job("j1")));
        assert!(!o.enqueue(job("j1")), "ids are unique");
        o.save().unwrap();
        let fate = o
            .finish("j1", RunResult::Failure, "502", 0, &BACKOFF)
            .unwrap();
        assert_eq!(fate, Fate::Retry);
        assert!(o.due(500, &|_| false).is_empty(), "not before its back-off");
        assert_eq!(o.next_due_ms(&|_| false).map(|t| t >= 1000), Some(true));
        o.finish("j1", RunResult::Timeout, "t", 0, &BACKOFF)
            .unwrap();
        let fate = o
            .finish("j1", RunResult::Failure, "503", 0, &BACKOFF)
            .unwrap();
        assert_eq!(fate, Fate::DeadLetter);
        o.save().unwrap();
        assert_eq!(o.pending(), 0);
        let dead = fs::read_to_string(dir.path().join("dead-letters.jsonl")).unwrap();
        assert!(dead.contains("\"j1\"") && dead.contains("503"));
        let (again, _) = Outbox::open(dir.path()).unwrap();
        assert_eq!(again.dead_letters_total(), 1);
        assert_eq!(again.finished("j1").unwrap().result, RunResult::DeadLetter);
    }

    #[test]
    fn pending_jobs_and_finished_ids_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Outbox::open(dir.path()).unwrap();
        o.enqueue(job("a"));
        o.enqueue(job("b"));
        o.finish("a", RunResult::Success, "ok", 0, &BACKOFF)
            .unwrap();
        o.save().unwrap();
        let (mut again, _) = Outbox::open(dir.path()).unwrap();
        assert_eq!(
            again
                .due(0, &|_| false)
                .iter()
                .map(|j| j.id.as_str())
                .collect::<Vec<_>>(),
            vec!["b"]
        );
        assert!(
            !again.enqueue(job("a")),
            "a finished run is not queued again"
        );
    }

    #[test]
    fn a_corrupt_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("outbox.json"), b"{\"jobs\": [tr").unwrap();
        let (o, warning) = Outbox::open(dir.path()).unwrap();
        assert_eq!(o.pending(), 0);
        assert!(warning.unwrap().contains("moved to"));
        assert!(dir.path().join("outbox.json.corrupt").exists());
    }
}
