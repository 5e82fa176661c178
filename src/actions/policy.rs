//! When a recovery action runs: the per-action policy (cool-down per action and node, runs
//! per alert episode, runs on resolve, escalation) applied to each alert as it is seen.
//!
//! A pure state machine in the manner of the alert state machine: [`PolicyState::observe`]
//! takes the alert and the time and returns what to run or skip; it never reads the clock,
//! runs nothing and writes nothing. Its state is serializable, so a restart carries cool-downs
//! and run counts over and does not run a finished action again.
//!
//! An *episode* of an alert (for one action) starts when the alert first fires and ends when
//! it has stayed resolved for the action's cool-down: an alert that flaps within the cool-down
//! stays in one episode, so `max_runs` holds under flapping too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::audit::RunResult;
use crate::config::RecoveryActionConfig;
use crate::model::{AlertEvent, Status};

/// The policy of one action, from its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPolicy {
    /// Milliseconds before the action may run again for the same node.
    pub cooldown_ms: i64,
    /// Runs per episode at most.
    pub max_runs: u64,
    /// Also run when the alert resolves.
    pub run_on_resolve: bool,
    /// Run `escalate_to` when the alert still fires this long after the first run.
    pub escalate_after_ms: Option<i64>,
    /// The action to escalate to.
    pub escalate_to: Option<String>,
}

impl From<&RecoveryActionConfig> for ActionPolicy {
    fn from(c: &RecoveryActionConfig) -> Self {
        Self {
            cooldown_ms: c.cooldown_ms(),
            max_runs: c.max_runs(),
            run_on_resolve: c.run_on_resolve,
            escalate_after_ms: c.escalate_after_seconds.map(|s| (s.0 * 1000.0) as i64),
            escalate_to: c.escalate_to.as_ref().map(|s| s.value.clone()),
        }
    }
}

/// Why an action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The alert fires.
    Firing,
    /// The alert resolved and the action has `run_on_resolve: true`.
    Resolved,
    /// The alert still fires `escalate_after_seconds` after the first run.
    Escalation,
    /// A peer sentinel asked this one to run it.
    Remote,
}

impl Trigger {
    /// The name in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Firing => "firing",
            Trigger::Resolved => "resolved",
            Trigger::Escalation => "escalation",
            Trigger::Remote => "remote",
        }
    }
}

/// What the policy decided for one action and one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Run `action` now.
    Run {
        /// The action's name.
        action: String,
        /// Why.
        trigger: Trigger,
        /// The node it is for.
        node_id: String,
        /// The episode's identity, for the outbox entry's id.
        episode: String,
        /// 1 for the episode's first run of this action (escalations and resolves count apart).
        run: u64,
    },
    /// Do not run `action`; recorded once per firing edge.
    Skip {
        /// The action's name.
        action: String,
        /// The node it is for.
        node_id: String,
        /// [`RunResult::SkippedCooldown`] or [`RunResult::SkippedMaxRuns`].
        result: RunResult,
        /// A sentence for the audit log.
        reason: String,
    },
}

/// One action's episode of one alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Episode {
    /// When the episode started (the first firing seen).
    started_ms: i64,
    node_id: String,
    runs: u64,
    first_run_ms: Option<i64>,
    escalated: bool,
    firing: bool,
    resolved_at_ms: Option<i64>,
    last_seen_ms: i64,
}

/// Episodes not seen for this long are forgotten (an alert whose rule was removed).
const FORGET_AFTER_MS: i64 = 24 * 3600 * 1000;

/// Cool-downs and episodes of every action; serializable for restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyState {
    /// `action \u{0} fingerprint` to its episode.
    episodes: BTreeMap<String, Episode>,
    /// `action \u{0} node_id` to the time of its last run.
    last_run_ms: BTreeMap<String, i64>,
}

fn key(a: &str, b: &str) -> String {
    format!("{a}\u{0}{b}")
}

impl PolicyState {
    /// Applies the policy of each action `alert` names (those `policy_of` knows) to this
    /// sighting of the alert at `now_ms`. `here` is this node's id, for alerts without
    /// `node_id`.
    pub fn observe(
        &mut self,
        now_ms: i64,
        alert: &AlertEvent,
        here: &str,
        policy_of: &dyn Fn(&str) -> Option<ActionPolicy>,
    ) -> Vec<Decision> {
        let fingerprint = alert.fingerprint();
        let node_id = alert.node_id(here).to_owned();
        let mut decisions = Vec::new();
        for action in &alert.actions {
            let Some(policy) = policy_of(action) else {
                continue;
            };
            let ep_key = key(action, &fingerprint);
            match alert.status {
                Status::Firing => {
                    self.firing(now_ms, action, &ep_key, &node_id, &policy, &mut decisions)
                }
                Status::Resolved => {
                    let Some(ep) = self.episodes.get_mut(&ep_key) else {
                        continue;
                    };
                    ep.last_seen_ms = now_ms;
                    if !ep.firing {
                        continue;
                    }
                    ep.firing = false;
                    ep.resolved_at_ms = Some(now_ms);
                    if policy.run_on_resolve && ep.runs > 0 {
                        decisions.push(Decision::Run {
                            action: action.clone(),
                            trigger: Trigger::Resolved,
                            node_id: ep.node_id.clone(),
                            episode: format!("{fingerprint}-{}", ep.started_ms),
                            run: ep.runs,
                        });
                    }
                }
            }
        }
        self.forget_old(now_ms);
        decisions
    }

    fn firing(
        &mut self,
        now_ms: i64,
        action: &str,
        ep_key: &str,
        node_id: &str,
        policy: &ActionPolicy,
        decisions: &mut Vec<Decision>,
    ) {
        let fresh = || Episode {
            started_ms: now_ms,
            node_id: node_id.to_owned(),
            runs: 0,
            first_run_ms: None,
            escalated: false,
            firing: false,
            resolved_at_ms: None,
            last_seen_ms: now_ms,
        };
        let ep = self.episodes.entry(ep_key.to_owned()).or_insert_with(fresh);
        if ep
            .resolved_at_ms
            .is_some_and(|r| now_ms - r >= policy.cooldown_ms)
        {
            *ep = fresh();
        }
        let edge = !ep.firing;
        ep.firing = true;
        ep.resolved_at_ms = None;
        ep.last_seen_ms = now_ms;
        let fingerprint = ep_key.split('\u{0}').nth(1).unwrap_or_default();
        let episode = format!("{fingerprint}-{}", ep.started_ms);
        let run_key = key(action, node_id);
        let last_run = self.last_run_ms.get(&run_key).copied();
        if ep.runs >= policy.max_runs {
            if edge {
                decisions.push(Decision::Skip {
                    action: action.to_owned(),
                    node_id: node_id.to_owned(),
                    result: RunResult::SkippedMaxRuns,
                    reason: format!(
                        "already ran {} times in this alert episode (max_runs {})",
                        ep.runs, policy.max_runs
                    ),
                });
            }
        } else if let Some(last) = last_run.filter(|l| now_ms - l < policy.cooldown_ms) {
            if edge {
                decisions.push(Decision::Skip {
                    action: action.to_owned(),
                    node_id: node_id.to_owned(),
                    result: RunResult::SkippedCooldown,
                    reason: format!(
                        "ran for {node_id} {} s ago; cool-down {} s",
                        (now_ms - last) / 1000,
                        policy.cooldown_ms / 1000
                    ),
                });
            }
        } else {
            ep.runs += 1;
            ep.first_run_ms.get_or_insert(now_ms);
            self.last_run_ms.insert(run_key, now_ms);
            decisions.push(Decision::Run {
                action: action.to_owned(),
                trigger: Trigger::Firing,
                node_id: node_id.to_owned(),
                episode: episode.clone(),
                run: ep.runs,
            });
        }
        if let (Some(after), Some(to), Some(first)) = (
            policy.escalate_after_ms,
            policy.escalate_to.as_ref(),
            ep.first_run_ms,
        ) {
            if !ep.escalated && now_ms - first >= after {
                ep.escalated = true;
                decisions.push(Decision::Run {
                    action: to.clone(),
                    trigger: Trigger::Escalation,
                    node_id: node_id.to_owned(),
                    episode,
                    run: 1,
                });
            }
        }
    }

    /// A run of `action` for the alert with `fingerprint` succeeded, yet the alert still
    /// fires: the fix did not work, so `escalate_to` runs now rather than after
    /// `escalate_after_seconds`, once per episode as any escalation.
    pub fn escalate_now(
        &mut self,
        action: &str,
        fingerprint: &str,
        policy: &ActionPolicy,
    ) -> Option<Decision> {
        let to = policy.escalate_to.as_ref()?;
        let ep = self.episodes.get_mut(&key(action, fingerprint))?;
        if ep.escalated {
            return None;
        }
        ep.escalated = true;
        Some(Decision::Run {
            action: to.clone(),
            trigger: Trigger::Escalation,
            node_id: ep.node_id.clone(),
            episode: format!("{fingerprint}-{}", ep.started_ms),
            run: 1,
        })
    }

    fn forget_old(&mut self, now_ms: i64) {
        self.episodes
            .retain(|_, ep| now_ms - ep.last_seen_ms < FORGET_AFTER_MS);
        self.last_run_ms
            .retain(|_, at| now_ms - *at < FORGET_AFTER_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelSet;

    const MIN: i64 = 60_000;

    fn alert(status: Status, node: &str) -> AlertEvent {
        let labels: LabelSet = [
            ("alertname".to_owned(), "DiskFull".to_owned()),
            ("node_id".to_owned(), node.to_owned()),
        ]
        .into();
        AlertEvent {
            labels,
            annotations: LabelSet::new(),
            status,
            value: 95.0,
            starts_at_ms: 0,
            ends_at_ms: 0,
            generator_url: String::new(),
            actions: vec!["gc".into()],
            expr: String::new(),
        }
    }

    fn policy(cooldown_min: i64, max_runs: u64) -> ActionPolicy {
        ActionPolicy {
            cooldown_ms: cooldown_min * MIN,
            max_runs,
            run_on_resolve: false,
            escalate_after_ms: None,
            escalate_to: None,
        }
    }

    fn runs(decisions: &[Decision]) -> Vec<(String, Trigger)> {
        decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Run {
                    action, trigger, ..
                } => Some((action.clone(), *trigger)),
                Decision::Skip { .. } => None,
            })
            .collect()
    }

    fn skips(decisions: &[Decision]) -> Vec<RunResult> {
        decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Skip { result, .. } => Some(*result),
                Decision::Run { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_firing_alert_runs_once_per_cooldown_up_to_max_runs() {
        let p = policy(10, 3);
        let of = |_: &str| Some(p.clone());
        let mut s = PolicyState::default();
        let firing = alert(Status::Firing, "a");
        let mut ran = 0;
        // Evaluated every minute for an hour.
        for m in 0..60 {
            let d = s.observe(m * MIN, &firing, "here", &of);
            assert!(
                skips(&d).is_empty(),
                "no skip records while it keeps firing"
            );
            ran += runs(&d).len();
            if m == 0 || m == 10 || m == 20 {
                assert_eq!(runs(&d).len(), 1, "minute {m}");
            }
        }
        assert_eq!(ran, 3);
    }

    #[test]
    fn a_flapping_alert_respects_cooldown_and_max_runs() {
        let p = policy(10, 2);
        let of = |_: &str| Some(p.clone());
        let mut s = PolicyState::default();
        let (firing, resolved) = (alert(Status::Firing, "a"), alert(Status::Resolved, "a"));
        let mut all = Vec::new();
        // Fires and resolves every other minute for two hours.
        for m in 0..120 {
            let a = if m % 2 == 0 { &firing } else { &resolved };
            all.extend(s.observe(m * MIN, a, "here", &of));
        }
        assert_eq!(runs(&all).len(), 2, "max_runs holds across flaps");
        assert!(skips(&all).contains(&RunResult::SkippedCooldown));
        assert!(skips(&all).contains(&RunResult::SkippedMaxRuns));
    }

    #[test]
    fn a_new_episode_after_a_long_resolve_runs_again() {
        let p = policy(10, 1);
        let of = |_: &str| Some(p.clone());
        let mut s = PolicyState::default();
        assert_eq!(
            runs(&s.observe(0, &alert(Status::Firing, "a"), "h", &of)).len(),
            1
        );
        s.observe(MIN, &alert(Status::Resolved, "a"), "h", &of);
        let again = s.observe(20 * MIN, &alert(Status::Firing, "a"), "h", &of);
        assert_eq!(runs(&again).len(), 1);
    }

    #[test]
    fn cooldown_is_per_node() {
        let p = policy(10, 3);
        let of = |_: &str| Some(p.clone());
        let mut s = PolicyState::default();
        assert_eq!(
            runs(&s.observe(0, &alert(Status::Firing, "a"), "h", &of)).len(),
            1
        );
        assert_eq!(
            runs(&s.observe(0, &alert(Status::Firing, "b"), "h", &of)).len(),
            1
        );
    }

    #[test]
    fn resolve_runs_only_when_asked_and_only_after_a_run() {
        let mut p = policy(10, 3);
        let mut s = PolicyState::default();
        {
            let of = |_: &str| Some(p.clone());
            s.observe(0, &alert(Status::Firing, "a"), "h", &of);
            let d = s.observe(MIN, &alert(Status::Resolved, "a"), "h", &of);
            assert!(runs(&d).is_empty(), "run_on_resolve is off by default");
        }
        p.run_on_resolve = true;
        let of = |_: &str| Some(p.clone());
        s.observe(30 * MIN, &alert(Status::Firing, "a"), "h", &of);
        let d = s.observe(31 * MIN, &alert(Status::Resolved, "a"), "h", &of);
        assert_eq!(runs(&d), vec![("gc".to_owned(), Trigger::Resolved)]);
        let d = s.observe(32 * MIN, &alert(Status::Resolved, "a"), "h", &of);
        assert!(runs(&d).is_empty(), "a resolve runs once");
    }

    #[test]
    fn escalation_runs_once_when_due() {
        let mut p = policy(60, 3);
        p.escalate_after_ms = Some(10 * MIN);
        p.escalate_to = Some("page".into());
        let of = |_: &str| Some(p.clone());
        let mut s = PolicyState::default();
        let firing = alert(Status::Firing, "a");
        let mut escalations = Vec::new();
        for m in 0..40 {
            for (action, trigger) in runs(&s.observe(m * MIN, &firing, "h", &of)) {
                if trigger == Trigger::Escalation {
                    assert_eq!(action, "page");
                    escalations.push(m);
                }
            }
        }
        assert_eq!(escalations, vec![10]);
    }

    #[test]
    fn no_escalation_when_the_alert_resolves_in_time() {
        let mut p = policy(60, 3);
        p.escalate_after_ms = Some(10 * MIN);
        p.escalate_to = Some("page".into());
        let of = |_: &str| Some(p.clone());
        let mut s = PolicyState::default();
        s.observe(0, &alert(Status::Firing, "a"), "h", &of);
        let d = s.observe(5 * MIN, &alert(Status::Resolved, "a"), "h", &of);
        assert!(runs(&d).is_empty());
        let d = s.observe(15 * MIN, &alert(Status::Resolved, "a"), "h", &of);
        assert!(runs(&d).is_empty());
    }

    #[test]
    fn still_firing_escalates_at_once_and_only_once() {
        let mut p = policy(60, 3);
        p.escalate_after_ms = Some(60 * MIN);
        p.escalate_to = Some("page".into());
        let of = |_: &str| Some(p.clone());
        let mut s = PolicyState::default();
        let firing = alert(Status::Firing, "a");
        s.observe(0, &firing, "h", &of);
        let fp = firing.fingerprint();
        let d = s.escalate_now("gc", &fp, &p).expect("escalates");
        assert!(
            matches!(d, Decision::Run { ref action, trigger: Trigger::Escalation, .. } if action == "page")
        );
        assert_eq!(s.escalate_now("gc", &fp, &p), None, "once per episode");
        let later = s.observe(61 * MIN, &firing, "h", &of);
        assert!(
            !runs(&later).iter().any(|(_, t)| *t == Trigger::Escalation),
            "the timed escalation does not run again"
        );
    }

    #[test]
    fn state_survives_serialization() {
        let p = policy(10, 3);
        let of = |_: &str| Some(p.clone());
        let mut s = PolicyState::default();
        s.observe(0, &alert(Status::Firing, "a"), "h", &of);
        let mut back: PolicyState =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let d = back.observe(MIN, &alert(Status::Firing, "a"), "h", &of);
        assert!(runs(&d).is_empty(), "a restart does not run it again");
    }
}
