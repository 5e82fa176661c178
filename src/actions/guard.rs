//! The guardrails between a decided run and the outbox: the circuit breaker across all
//! actions, proposals waiting for an operator's approval, runs waiting to be verified, and the
//! partition guard's arithmetic.
//!
//! Pure state in the manner of [`super::policy`]: every function takes the time as an
//! argument and never reads the clock, runs nothing and writes nothing. [`GuardState`] is
//! serializable and is stored in the outbox file beside the policy state, so a pending
//! proposal, an open breaker and a run being verified survive a restart. What is run, recorded
//! and counted is the dispatcher's.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::outbox::Job;
use crate::model::NodeStatus;

/// The breaker's limit: at most `max_runs` runs in any `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerLimit {
    /// Runs allowed in the window.
    pub max_runs: u64,
    /// The window, in milliseconds.
    pub window_ms: i64,
}

/// What the breaker said about one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// It may run; it was counted.
    Admitted,
    /// It would go past the limit: the breaker opened now, and the run does not happen.
    Opened,
    /// The breaker was already open: the run does not happen.
    Open,
}

/// The circuit breaker across all actions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Breaker {
    /// When the runs in the window started, oldest first.
    runs_ms: VecDeque<i64>,
    /// When it opened, while it is open.
    open_since_ms: Option<i64>,
}

impl Breaker {
    /// Closes the breaker if its window has passed since it opened.
    fn expire(&mut self, now_ms: i64, limit: BreakerLimit) {
        if self
            .open_since_ms
            .is_some_and(|since| now_ms - since >= limit.window_ms)
        {
            self.open_since_ms = None;
            self.runs_ms.clear();
        }
        while self
            .runs_ms
            .front()
            .is_some_and(|t| now_ms - t >= limit.window_ms)
        {
            self.runs_ms.pop_front();
        }
    }

    /// Asks whether a run may start at `now_ms` under `limit` (no limit: always), counting it
    /// when it may.
    ///
    /// ```
    /// use ipfs_sentinel::actions::guard::{Admission, Breaker, BreakerLimit};
    /// let limit = BreakerLimit { max_runs: 2, window_ms: 60_000 };
    /// let mut b = Breaker::default();
    /// assert_eq!(b.admit(0, Some(limit)), Admission::Admitted);
    /// assert_eq!(b.admit(1_000, Some(limit)), Admission::Admitted);
    /// assert_eq!(b.admit(2_000, Some(limit)), Admission::Opened);
    /// assert_eq!(b.admit(3_000, Some(limit)), Admission::Open);
    /// // A window after it opened, it is closed again.
    /// assert_eq!(b.admit(62_000, Some(limit)), Admission::Admitted);
    /// ```
    pub fn admit(&mut self, now_ms: i64, limit: Option<BreakerLimit>) -> Admission {
        let Some(limit) = limit else {
            self.open_since_ms = None;
            self.runs_ms.clear();
            return Admission::Admitted;
        };
        self.expire(now_ms, limit);
        if self.open_since_ms.is_some() {
            return Admission::Open;
        }
        if self.runs_ms.len() as u64 >= limit.max_runs {
            self.open_since_ms = Some(now_ms);
            return Admission::Opened;
        }
        self.runs_ms.push_back(now_ms);
        Admission::Admitted
    }

    /// When it closes on its own, while it is open at `now_ms`.
    pub fn closes_at_ms(&mut self, now_ms: i64, limit: Option<BreakerLimit>) -> Option<i64> {
        let limit = limit?;
        self.expire(now_ms, limit);
        self.open_since_ms.map(|since| since + limit.window_ms)
    }

    /// Closes it now (`POST /api/v1/actions/circuit/reset`), forgetting the window's runs.
    /// Returns whether it was open.
    pub fn reset(&mut self) -> bool {
        self.runs_ms.clear();
        self.open_since_ms.take().is_some()
    }

    /// Runs counted in the current window.
    pub fn runs_in_window(&self) -> usize {
        self.runs_ms.len()
    }
}

/// A decided run waiting for an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The run it would be, its id the proposal's id.
    pub job: Job,
    /// What it would do: the expanded argv, the URL, the built-in and node.
    pub would_run: String,
    /// When it was proposed, ms since the Unix epoch.
    pub proposed_ms: i64,
    /// When it expires unless approved or rejected.
    pub expires_ms: i64,
}

/// A successful run whose alert is looked at again at `due_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// The run that succeeded.
    pub job: Job,
    /// When it finished.
    pub finished_ms: i64,
    /// When to look.
    pub due_ms: i64,
    /// The action's `verify_after_seconds`, in ms: after a restart the rules get this long
    /// again to report the alert before it is looked at.
    pub after_ms: i64,
}

/// The last time an alert was seen in a rule evaluation, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Whether it fired.
    pub firing: bool,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
}

/// What a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The alert no longer fires (it resolved, or the rules no longer report it).
    Resolved,
    /// The alert was seen firing after the run finished.
    StillFiring,
}

/// Decides a verification from the last sighting of its alert: firing when seen firing
/// after the run finished, resolved otherwise.
///
/// ```
/// use ipfs_sentinel::actions::guard::{verdict, Seen, Verdict};
/// assert_eq!(verdict(Some(Seen { firing: true, at_ms: 20 }), 10), Verdict::StillFiring);
/// assert_eq!(verdict(Some(Seen { firing: false, at_ms: 20 }), 10), Verdict::Resolved);
/// assert_eq!(verdict(Some(Seen { firing: true, at_ms: 5 }), 10), Verdict::Resolved);
/// assert_eq!(verdict(None, 10), Verdict::Resolved);
/// ```
pub fn verdict(last: Option<Seen>, finished_ms: i64) -> Verdict {
    match last {
        Some(seen) if seen.firing && seen.at_ms >= finished_ms => Verdict::StillFiring,
        _ => Verdict::Resolved,
    }
}

/// Whether this sentinel sees more than `max_offline_ratio` of the cluster Offline; the
/// Offline and total counts when it does. An empty view (no cluster) never trips it.
///
/// ```
/// use ipfs_sentinel::actions::guard::partitioned;
/// use ipfs_sentinel::model::NodeStatus::{Offline, Online};
/// assert_eq!(partitioned(&[Online, Offline, Offline], 0.5), Some((2, 3)));
/// assert_eq!(partitioned(&[Online, Online, Offline], 0.5), None);
/// assert_eq!(partitioned(&[Online, Offline], 0.5), None, "half is not more than half");
/// assert_eq!(partitioned(&[], 0.5), None);
/// ```
pub fn partitioned(statuses: &[NodeStatus], max_offline_ratio: f64) -> Option<(usize, usize)> {
    let total = statuses.len();
    let offline = statuses
        .iter()
        .filter(|s| **s == NodeStatus::Offline)
        .count();
    (total > 0 && offline as f64 / total as f64 > max_offline_ratio).then_some((offline, total))
}

/// The guardrails' state, stored beside the policy state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardState {
    /// The breaker across all actions.
    #[serde(default)]
    pub breaker: Breaker,
    /// Proposals by id.
    #[serde(default)]
    pub proposals: BTreeMap<String, Proposal>,
    /// Runs being verified, by job id.
    #[serde(default)]
    pub verifications: BTreeMap<String, Verification>,
    /// The last sighting of each alert (by fingerprint) a verification waits for.
    #[serde(default)]
    pub seen: BTreeMap<String, Seen>,
}

impl GuardState {
    /// Proposals past their expiry at `now_ms`, removed.
    pub fn take_expired(&mut self, now_ms: i64) -> Vec<Proposal> {
        let ids: Vec<String> = self
            .proposals
            .iter()
            .filter(|(_, p)| p.expires_ms <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.proposals.remove(id))
            .collect()
    }

    /// Verifications due at `now_ms`, removed, each with its verdict.
    pub fn take_verified(&mut self, now_ms: i64) -> Vec<(Verification, Verdict)> {
        let ids: Vec<String> = self
            .verifications
            .iter()
            .filter(|(_, v)| v.due_ms <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        let done: Vec<(Verification, Verdict)> = ids
            .iter()
            .filter_map(|id| self.verifications.remove(id))
            .map(|v| {
                let last = self.seen.get(&v.job.alert.fingerprint()).copied();
                let verdict = verdict(last, v.finished_ms);
                (v, verdict)
            })
            .collect();
        let waited: std::collections::HashSet<String> = self
            .verifications
            .values()
            .map(|v| v.job.alert.fingerprint())
            .collect();
        self.seen.retain(|fp, _| waited.contains(fp));
        done
    }

    /// Notes a sighting of the alert with `fingerprint`, if a verification waits for it.
    pub fn saw(&mut self, fingerprint: &str, firing: bool, at_ms: i64) {
        let waited = self
            .verifications
            .values()
            .any(|v| v.job.alert.fingerprint() == fingerprint);
        if waited {
            self.seen
                .insert(fingerprint.to_owned(), Seen { firing, at_ms });
        }
    }

    /// After a restart: every verification gets its full wait again from `now_ms`, so the
    /// rules have evaluated (and reported the alert) before it is looked at.
    pub fn restarted(&mut self, now_ms: i64) {
        for v in self.verifications.values_mut() {
            v.due_ms = v.due_ms.max(now_ms + v.after_ms);
        }
    }

    /// The next time something is due: a proposal expires, a verification is due.
    pub fn next_due_ms(&self) -> Option<i64> {
        let expiries = self.proposals.values().map(|p| p.expires_ms);
        let verifications = self.verifications.values().map(|v| v.due_ms);
        expiries.chain(verifications).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::policy::Trigger;
    use crate::model::{AlertEvent, LabelSet, Status};

    fn job(id: &str) -> Job {
        Job {
            id: id.into(),
            action: "gc".into(),
            trigger: Trigger::Firing,
            node_id: "a".into(),
            alert: AlertEvent {
                labels: [("alertname".to_owned(), "DiskFull".to_owned())].into(),
                annotations: LabelSet::new(),
                status: Status::Firing,
                value: 1.0,
                starts_at_ms: 0,
                ends_at_ms: 0,
                generator_url: String::new(),
                actions: vec!["gc".into()],
                expr: String::new(),
            },
            created_ms: 0,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: String::new(),
        }
    }

    #[test]
    fn the_breaker_opens_at_the_rate_and_closes_after_the_window_or_a_reset() {
        let limit = Some(BreakerLimit {
            max_runs: 5,
            window_ms: 60_000,
        });
        let mut b = Breaker::default();
        // A storm: twenty runs at once.
        let said: Vec<Admission> = (0..20).map(|_| b.admit(1_000, limit)).collect();
        assert_eq!(
            said.iter().filter(|a| **a == Admission::Admitted).count(),
            5
        );
        assert_eq!(said[5], Admission::Opened);
        assert!(said[6..].iter().all(|a| *a == Admission::Open));
        assert_eq!(b.closes_at_ms(30_000, limit), Some(61_000));
        assert_eq!(
            b.closes_at_ms(61_000, limit),
            None,
            "closed after the window"
        );
        assert_eq!(b.admit(61_000, limit), Admission::Admitted);
        for _ in 0..4 {
            b.admit(61_500, limit);
        }
        assert_eq!(b.admit(62_000, limit), Admission::Opened);
        assert!(b.reset(), "it was open");
        assert_eq!(b.admit(62_500, limit), Admission::Admitted);
    }

    #[test]
    fn the_breaker_survives_serialization() {
        let limit = Some(BreakerLimit {
            max_runs: 1,
            window_ms: 10_000,
        });
        let mut g = GuardState::default();
        g.breaker.admit(0, limit);
        g.breaker.admit(1, limit);
        let mut back: GuardState =
            serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(back.breaker.admit(2, limit), Admission::Open);
    }

    #[test]
    fn proposals_expire_at_their_time() {
        let mut g = GuardState::default();
        g.proposals.insert(
            "p".into(),
            Proposal {
                job: job("p"),
                would_run: "would run: true".into(),
                proposed_ms: 0,
                expires_ms: 100,
            },
        );
        assert!(g.take_expired(99).is_empty());
        assert_eq!(g.next_due_ms(), Some(100));
        assert_eq!(g.take_expired(100).len(), 1);
        assert!(g.proposals.is_empty());
    }

    #[test]
    fn a_verification_reads_the_last_sighting_after_the_run() {
        let mut g = GuardState::default();
        let fp = job("j").alert.fingerprint();
        g.saw(&fp, true, 5);
        assert!(g.seen.is_empty(), "sightings nobody waits for are not kept");
        g.verifications.insert(
            "j".into(),
            Verification {
                job: job("j"),
                finished_ms: 10,
                due_ms: 50,
                after_ms: 40,
            },
        );
        g.saw(&fp, true, 20);
        assert!(g.take_verified(49).is_empty());
        let done = g.take_verified(50);
        assert_eq!(done[0].1, Verdict::StillFiring);
        assert!(g.seen.is_empty());
    }

    #[test]
    fn after_a_restart_a_verification_waits_its_full_time_again() {
        let mut g = GuardState::default();
        g.verifications.insert(
            "j".into(),
            Verification {
                job: job("j"),
                finished_ms: 10,
                due_ms: 50,
                after_ms: 40,
            },
        );
        g.restarted(45);
        assert_eq!(g.verifications["j"].due_ms, 85);
    }
}
