//! The rule manager: the loaded groups with their alert states, evaluated group by group,
//! reloaded without losing state, and reported as Prometheus reports them (`ALERTS`,
//! `ALERTS_FOR_STATE`, `/api/v1/rules`, `/api/v1/alerts`).
//!
//! Owns each rule's health and last error, the reload policy (a broken set of files keeps the
//! old rules running) and the state saved across restarts. An evaluation comes in two steps, so
//! the slow one holds no lock: the due groups' expressions ([`RuleEngine::queries`]) are
//! answered first ([`Queries::answer`] over a read view of the history, or a remote
//! datasource's [`RemoteAnswers`]), then [`RuleEngine::evaluate_groups`] turns the answers into
//! alert states and recorded samples. When each group is due is the rules task's
//! ([`super::task`]). Pure apart from the time argument: nothing here touches a file or the
//! network.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use promql_parser::parser::Expr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::alerting::{AlertState, AlertingRule, ResultSample, RuleStateSnapshot, SharedNames};
use super::load::{Group, Rule, RuleError, RuleKind};
use super::promql::{EvalError, Evaluator, Labels, Queryable, Value, NAME};
use super::remote::{RemoteAnswers, RemoteDatasource};
use super::template::{self, NoQueries, QuerySample, TemplateData, TemplateQuery};
use crate::clock::rfc3339;
use crate::model::{AlertEvent, Family, Semantics, Sighting, Status};

/// After a restart a restored pending alert fires no sooner than this. Prometheus's default
/// (`--rules.alert.for-grace-period`, 10 m) also skips restoring any alert whose `for` is
/// shorter than it, which would reset the short form's 5-minute `for` on every restart; the sentinel
/// keeps its history across restarts, so it restores every `for` clock and needs no grace.
pub const FOR_GRACE_PERIOD_MS: i64 = 0;

/// One recorded sample a recording rule produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Labels, `__name__` included.
    pub labels: Labels,
    /// Value.
    pub value: f64,
    /// The instant it stands for: the evaluation time less the group's query offset, where
    /// Prometheus writes it.
    pub at_ms: i64,
}

struct RuleRun {
    rule: Rule,
    alerting: Option<AlertingRule>,
    last_error: Option<String>,
    last_eval_ms: Option<i64>,
    duration_seconds: f64,
}

struct GroupRun {
    group: Group,
    rules: Vec<RuleRun>,
    last_eval_ms: Option<i64>,
    duration_seconds: f64,
    failures: u64,
}

/// Which group: its file and name (a name is unique within its file).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    /// The rule file (or the configuration, for the short form).
    pub file: String,
    /// The group's name.
    pub name: String,
}

impl GroupKey {
    fn of(group: &Group) -> GroupKey {
        GroupKey {
            file: group.file.clone(),
            name: group.name.clone(),
        }
    }
}

/// The expressions of the groups due at one evaluation, to be answered before
/// [`RuleEngine::evaluate_groups`].
#[derive(Debug, Clone, Default)]
pub struct Queries {
    /// Each distinct expression at each distinct query offset.
    exprs: Vec<Query>,
    /// The PromQL semantics the expressions are evaluated with.
    semantics: Semantics,
}

/// One expression to answer.
#[derive(Debug, Clone)]
struct Query {
    /// Which expression at which offset.
    key: QueryKey,
    /// Its parsed form.
    expr: Expr,
    /// Whether an alerting rule uses it (alerting rules take instant vectors only; recording
    /// rules take a scalar too).
    vector_only: bool,
}

/// An expression's text and the query offset (ms) it is evaluated at: groups with different
/// `query_offset`s ask the same expression at different instants.
type QueryKey = (String, i64);

impl Queries {
    /// The expressions' texts, for a remote datasource.
    /// The remote datasource answers every expression at the evaluation time: query offsets
    /// apply to the local history only.
    pub fn texts(&self) -> Vec<String> {
        let mut texts: Vec<String> = self.exprs.iter().map(|q| q.key.0.clone()).collect();
        texts.dedup();
        texts
    }

    /// Answers every expression at `at_ms` less its query offset over `source` (a read view of
    /// the local history), timing each.
    pub fn answer(&self, at_ms: i64, source: &dyn Queryable) -> Answers {
        let answers = self
            .exprs
            .iter()
            .map(|q| {
                let began = Instant::now();
                let evaluator =
                    Evaluator::new(source, at_ms - q.key.1).with_semantics(self.semantics);
                let result = match evaluator.eval(&q.expr) {
                    Ok(Value::Vector(v)) => Ok(compact(v.iter().map(|s| (&s.labels, s.value)))),
                    Ok(Value::Scalar(v)) if !q.vector_only => Ok(compact([(&Labels::new(), v)])),
                    Ok(other) => Err(EvalError(format!(
                        "rule result is a {}, not an instant vector",
                        super::promql::type_name(&other)
                    ))),
                    Err(e) => Err(e),
                };
                (q.key.clone(), (result, began.elapsed().as_secs_f64()))
            })
            .collect();
        Answers { at_ms, answers }
    }
}

/// One expression's samples, or why there are none. The labels are held compactly: a round
/// holds every expression's answer until its rules have taken it in.
pub type Answer = Result<Vec<ResultSample>, EvalError>;

/// Samples with their labels held compactly, the samples with the same label names sharing
/// them.
fn compact<'a>(samples: impl IntoIterator<Item = (&'a Labels, f64)>) -> Vec<ResultSample> {
    let mut shared = SharedNames::default();
    samples
        .into_iter()
        .map(|(labels, value)| (shared.label_set(labels), value))
        .collect()
}

/// The answers to one evaluation's [`Queries`]: each expression's samples or why there are
/// none, and how long it took.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// The evaluation time, ms.
    pub at_ms: i64,
    answers: HashMap<QueryKey, (Answer, f64)>,
}

impl Answers {
    /// Which answer a rule with expression `text` in a group queried at `offset_ms` reads:
    /// its own, or with a remote datasource (which answers every expression at the
    /// evaluation time) the one asked at offset 0.
    fn key_for(&self, text: &str, offset_ms: i64, remote: bool) -> Option<QueryKey> {
        let key = (text.to_owned(), offset_ms);
        if self.answers.contains_key(&key) {
            return Some(key);
        }
        let at_evaluation_time = (text.to_owned(), 0);
        (offset_ms != 0 && remote && self.answers.contains_key(&at_evaluation_time))
            .then_some(at_evaluation_time)
    }
}

impl From<RemoteAnswers> for Answers {
    fn from(remote: RemoteAnswers) -> Answers {
        Answers {
            at_ms: remote.at_ms,
            answers: remote
                .answers
                .into_iter()
                .map(|(text, answer)| {
                    let answer = answer.map(|v| compact(v.iter().map(|(l, v)| (l, *v))));
                    ((text, 0), (answer, 0.0))
                })
                .collect(),
        }
    }
}

/// Settings shared by every rule.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    /// Default evaluation interval (the collection interval), ms.
    pub interval_ms: i64,
    /// Added to every alert this sentinel sends (an alert's own labels win), as Prometheus's
    /// `global.external_labels`; `$externalLabels` in templates. The alert identity label
    /// (`node_id`: this sentinel's node) is one of them; see
    /// [`Config::alert_external_labels`](crate::config::Config::alert_external_labels).
    pub external_labels: BTreeMap<String, String>,
    /// `$externalURL` in templates.
    pub external_url: String,
    /// How far back groups without their own `query_offset` query, ms.
    pub query_offset_ms: i64,
    /// The PromQL semantics rules are evaluated with.
    pub semantics: Semantics,
    /// A remote query API the expressions go to, instead of the local history.
    pub datasource: Option<RemoteDatasource>,
}

/// The state kept across restarts: each alerting rule's alerts, by group and rule name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EngineState {
    /// (group, rule name) to its state.
    pub rules: Vec<(String, String, RuleStateSnapshot)>,
}

/// The loaded rules and their state.
pub struct RuleEngine {
    globals: Globals,
    groups: Vec<GroupRun>,
    last_reload_ok: bool,
    last_reload_error: Option<String>,
    failures_total: u64,
}

fn alerting_rule(rule: &Rule) -> Option<AlertingRule> {
    match &rule.kind {
        RuleKind::Alert {
            name,
            for_ms,
            keep_firing_for_ms,
            annotations,
        } => Some(AlertingRule::new(
            name.clone(),
            *for_ms,
            *keep_firing_for_ms,
            rule.labels.clone(),
            annotations.clone(),
        )),
        RuleKind::Record { .. } => None,
    }
}

fn run(group: Group, previous: &mut Vec<GroupRun>) -> GroupRun {
    // A rule that did not change keeps its alerts (Prometheus matches by group and rule).
    let mut old: Option<GroupRun> = previous
        .iter()
        .position(|g| g.group.name == group.name && g.group.file == group.file)
        .map(|i| previous.remove(i));
    let rules = group
        .rules
        .iter()
        .map(|rule| {
            let kept = old.as_mut().and_then(|g| {
                let i = g.rules.iter().position(|r| same_rule(&r.rule, rule))?;
                Some(g.rules.remove(i))
            });
            match kept {
                Some(mut r) => {
                    r.rule = rule.clone();
                    r
                }
                None => RuleRun {
                    rule: rule.clone(),
                    alerting: alerting_rule(rule),
                    last_error: None,
                    last_eval_ms: None,
                    duration_seconds: 0.0,
                },
            }
        })
        .collect();
    GroupRun {
        last_eval_ms: old.as_ref().and_then(|g| g.last_eval_ms),
        duration_seconds: 0.0,
        failures: old.as_ref().map_or(0, |g| g.failures),
        group,
        rules,
    }
}

fn same_rule(a: &Rule, b: &Rule) -> bool {
    a.kind == b.kind && a.expr_text == b.expr_text && a.labels == b.labels
}

impl RuleEngine {
    /// An engine running `groups`.
    pub fn new(globals: Globals, groups: Vec<Group>) -> Self {
        let mut none = Vec::new();
        Self {
            globals,
            groups: groups.into_iter().map(|g| run(g, &mut none)).collect(),
            last_reload_ok: true,
            last_reload_error: None,
            failures_total: 0,
        }
    }

    /// Swaps in newly loaded rules, keeping the state of rules that did not change; a load
    /// error keeps the old rules running and is reported.
    pub fn reload(&mut self, globals: Globals, loaded: Result<Vec<Group>, RuleError>) {
        match loaded {
            Ok(groups) => {
                let mut previous = std::mem::take(&mut self.groups);
                self.groups = groups.into_iter().map(|g| run(g, &mut previous)).collect();
                self.globals = globals;
                self.last_reload_ok = true;
                self.last_reload_error = None;
            }
            Err(e) => {
                tracing::error!(error = %e, "rules not reloaded; the previous rules keep running");
                self.last_reload_ok = false;
                self.last_reload_error = Some(e.to_string());
            }
        }
    }

    fn interval_ms(group: &GroupRun, globals: &Globals) -> i64 {
        group
            .group
            .interval_ms
            .unwrap_or(globals.interval_ms)
            .max(1)
    }

    /// Every group with how often it is evaluated (its `interval`, else the global one), ms.
    pub fn schedule(&self) -> Vec<(GroupKey, i64)> {
        self.groups
            .iter()
            .map(|g| (GroupKey::of(&g.group), Self::interval_ms(g, &self.globals)))
            .collect()
    }

    /// The largest query offset of any group (its own, else the global one), ms: how far
    /// before its evaluation time a recorded sample may be stamped.
    pub fn max_query_offset_ms(&self) -> i64 {
        self.groups
            .iter()
            .map(|g| self.query_offset_ms(g))
            .fold(self.globals.query_offset_ms, i64::max)
    }

    /// The groups whose interval has passed since their last evaluation at `now_ms` (all of
    /// them the first time), for callers that step time themselves (rule unit tests).
    pub fn due_groups(&self, now_ms: i64) -> Vec<GroupKey> {
        self.groups
            .iter()
            .filter(|g| {
                let interval = Self::interval_ms(g, &self.globals);
                g.last_eval_ms.is_none_or(|last| now_ms - last >= interval)
            })
            .map(|g| GroupKey::of(&g.group))
            .collect()
    }

    /// The remote datasource the expressions go to, if one is configured.
    pub fn datasource(&self) -> Option<RemoteDatasource> {
        self.globals.datasource.clone()
    }

    /// The expressions of the groups in `due`, each once.
    pub fn queries(&self, due: &[GroupKey]) -> Queries {
        let mut exprs: Vec<Query> = Vec::new();
        for g in self
            .groups
            .iter()
            .filter(|g| due.contains(&GroupKey::of(&g.group)))
        {
            let offset = self.query_offset_ms(g);
            for r in &g.rules {
                let alerting = r.alerting.is_some();
                let key = (r.rule.expr_text.clone(), offset);
                match exprs.iter_mut().find(|q| q.key == key) {
                    Some(known) => known.vector_only |= alerting,
                    None => exprs.push(Query {
                        key,
                        expr: r.rule.expr.clone(),
                        vector_only: alerting,
                    }),
                }
            }
        }
        Queries {
            exprs,
            semantics: self.globals.semantics,
        }
    }

    /// A group's query offset: its own `query_offset`, else the global one (ms).
    fn query_offset_ms(&self, g: &GroupRun) -> i64 {
        g.group
            .query_offset_ms
            .unwrap_or(self.globals.query_offset_ms)
    }

    /// Evaluates every group in `due` at the answers' time from `answers`: alert states change,
    /// recording rules' samples are returned. A rule without an answer (loaded after the
    /// queries were taken) waits for its group's next evaluation. Templates' `query` calls
    /// read `source` (the same read view the answers came from); without one (a remote
    /// datasource) they fail with the reason. Each answer is dropped once the last rule that
    /// reads it has taken it in, so that its memory serves the alerts that follow.
    pub fn evaluate_groups(
        &mut self,
        due: &[GroupKey],
        mut answers: Answers,
        source: Option<&dyn Queryable>,
    ) -> Vec<Recorded> {
        let now_ms = answers.at_ms;
        let remote = self.globals.datasource.is_some();
        let mut recorded = Vec::new();
        let globals = self.globals.clone();
        let queries: Box<dyn TemplateQuery + '_> = match source {
            Some(source) => Box::new(HistoryQueries {
                source,
                at_ms: now_ms,
                semantics: globals.semantics,
            }),
            None => Box::new(NoQueries(NO_REMOTE_TEMPLATE_QUERIES)),
        };
        let offsets: Vec<i64> = self
            .groups
            .iter()
            .map(|g| self.query_offset_ms(g))
            .collect();
        // How many rules read each answer.
        let mut readers: HashMap<QueryKey, usize> = HashMap::new();
        for (g, offset) in self.groups.iter().zip(&offsets) {
            if !due.contains(&GroupKey::of(&g.group)) {
                continue;
            }
            for r in &g.rules {
                if let Some(key) = answers.key_for(&r.rule.expr_text, *offset, remote) {
                    *readers.entry(key).or_default() += 1;
                }
            }
        }
        for (g, offset) in self.groups.iter_mut().zip(offsets) {
            if !due.contains(&GroupKey::of(&g.group)) {
                continue;
            }
            let interval = Self::interval_ms(g, &globals);
            let mut group_seconds = 0.0;
            for r in &mut g.rules {
                let Some(key) = answers.key_for(&r.rule.expr_text, offset, remote) else {
                    continue;
                };
                let Some((answer, query_seconds)) = answers.answers.get(&key) else {
                    continue;
                };
                let began = Instant::now();
                let times = Times {
                    now_ms,
                    query_ms: now_ms - offset,
                    interval_ms: interval,
                };
                let result = evaluate_rule(r, &g.group, &globals, times, answer, queries.as_ref());
                r.duration_seconds = query_seconds + began.elapsed().as_secs_f64();
                if let Some(left) = readers.get_mut(&key) {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        answers.answers.remove(&key);
                    }
                }
                group_seconds += r.duration_seconds;
                r.last_eval_ms = Some(now_ms);
                match result {
                    Ok(mut samples) => {
                        r.last_error = None;
                        recorded.append(&mut samples);
                    }
                    Err(e) => {
                        tracing::warn!(group = %g.group.name, rule = %r.rule.name(), error = %e, "rule evaluation failed");
                        r.last_error = Some(e.0);
                        g.failures += 1;
                        self.failures_total += 1;
                    }
                }
            }
            g.last_eval_ms = Some(now_ms);
            g.duration_seconds = group_seconds;
        }
        recorded
    }

    /// Evaluates every group due at `now_ms` over `source`, in one step; returns recording
    /// rules' samples. For callers that hold the source themselves (rule unit tests); the
    /// rules task answers the queries with no lock held instead.
    pub fn evaluate_due(&mut self, now_ms: i64, source: &dyn Queryable) -> Vec<Recorded> {
        let due = self.due_groups(now_ms);
        let answers = self.queries(&due).answer(now_ms, source);
        self.evaluate_groups(&due, answers, Some(source))
    }

    /// Every alert now pending or firing, with its rule's actions.
    pub fn active_alerts(&self) -> Vec<(&Rule, &super::alerting::Alert)> {
        self.groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter_map(|r| Some((&r.rule, r.alerting.as_ref()?)))
            .flat_map(|(rule, a)| {
                a.active_alerts()
                    .into_iter()
                    .map(move |alert| (rule, alert))
            })
            .filter(|(_, a)| a.state != AlertState::Inactive)
            .collect()
    }

    /// Every firing or resolved alert of the rules that name recovery actions, as the
    /// actions see them: external labels added (without overriding the alert's own), Prometheus's
    /// `startsAt`/`endsAt`, and whether the evaluation at `now_ms` marked it for sending to
    /// Alertmanager.
    pub fn sightings(&self, now_ms: i64) -> Vec<Sighting> {
        let mut sightings = Vec::new();
        for r in self.groups.iter().flat_map(|g| &g.rules) {
            let Some(alerting) = r.alerting.as_ref().filter(|_| !r.rule.actions.is_empty()) else {
                continue;
            };
            for alert in alerting.active_alerts() {
                let (status, ends_at_ms) = match (alert.state, alert.resolved_at_ms()) {
                    (AlertState::Firing, _) => (Status::Firing, alert.valid_until_ms),
                    (AlertState::Inactive, Some(resolved)) => (Status::Resolved, resolved),
                    _ => continue,
                };
                let mut labels = alert.labels.to_label_set();
                for (k, v) in &self.globals.external_labels {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                sightings.push(Sighting {
                    alert: AlertEvent {
                        labels,
                        annotations: Labels::clone(&alert.annotations),
                        status,
                        value: alert.value,
                        starts_at_ms: alert.fired_at_ms().unwrap_or(alert.active_at_ms),
                        ends_at_ms,
                        generator_url: generator_url(&self.globals.external_url, &r.rule.expr_text),
                        actions: r.rule.actions.clone(),
                        expr: r.rule.expr_text.clone(),
                    },
                    due_for_sending: alert.last_sent_at_ms() == Some(now_ms),
                });
            }
        }
        sightings
    }

    /// `ALERTS`, `ALERTS_FOR_STATE` and the engine's own metrics.
    pub fn families(&self) -> Vec<Family> {
        let mut alerts = Family::gauge(
            "ALERTS",
            "Alerts pending or firing on this sentinel, as Prometheus exposes them.",
        );
        let mut for_state = Family::gauge(
            "ALERTS_FOR_STATE",
            "When each pending or firing alert became active, Unix seconds.",
        );
        for r in self.groups.iter().flat_map(|g| &g.rules) {
            let Some(a) = &r.alerting else { continue };
            for (labels, value) in a.alerts_series() {
                let target = if labels.get(NAME).is_some_and(|n| n == "ALERTS_FOR_STATE") {
                    &mut for_state
                } else {
                    &mut alerts
                };
                let pairs: Vec<(&str, &str)> = labels
                    .iter()
                    .filter(|(k, _)| *k != NAME)
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                target.push(&pairs, value);
            }
        }
        let mut group_duration = Family::gauge(
            "ipfs_sentinel_rule_group_last_duration_seconds",
            "How long the group's last evaluation took.",
        );
        let mut failures = Family::counter(
            "ipfs_sentinel_rule_evaluation_failures_total",
            "Rule evaluations that failed, by group.",
        );
        let mut total = 0.0;
        for g in &self.groups {
            let group = [("rule_group", g.group.name.as_str())];
            group_duration.push(&group, g.duration_seconds);
            failures.push(&group, g.failures as f64);
            total += g.duration_seconds;
        }
        vec![
            alerts,
            for_state,
            group_duration,
            failures,
            Family::single_gauge("ipfs_sentinel_rule_evaluation_duration_seconds", "How long the last evaluation of every due group took.", total),
            Family::single_gauge(
                "ipfs_sentinel_config_last_reload_successful",
                "1 when the last rule reload succeeded, 0 when it failed and the previous rules keep running.",
                if self.last_reload_ok { 1.0 } else { 0.0 },
            ),
        ]
    }

    /// `GET /api/v1/rules` in Prometheus's shape.
    pub fn rules_json(&self) -> Json {
        let groups: Vec<Json> = self
            .groups
            .iter()
            .map(|g| {
                let rules: Vec<Json> = g.rules.iter().map(rule_json).collect();
                json!({
                    "name": g.group.name,
                    "file": g.group.file,
                    "rules": rules,
                    "interval": g.group.interval_ms.unwrap_or(self.globals.interval_ms) as f64 / 1000.0,
                    "limit": g.group.limit,
                    "evaluationTime": g.duration_seconds,
                    "lastEvaluation": g.last_eval_ms.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                })
            })
            .collect();
        let mut data = json!({"groups": groups});
        if let Some(e) = &self.last_reload_error {
            data["lastReloadError"] = json!(e);
        }
        json!({"status": "success", "data": data})
    }

    /// The last evaluation in two figures, without rendering any alert: the groups' durations
    /// summed (seconds) and how many rules failed in their last evaluation.
    pub fn last_evaluation(&self) -> (f64, usize) {
        let seconds = self.groups.iter().map(|g| g.duration_seconds).sum();
        let failed = self
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| r.last_error.is_some())
            .count();
        (seconds, failed)
    }

    /// `GET /api/v1/alerts` in Prometheus's shape.
    pub fn alerts_json(&self) -> Json {
        let alerts: Vec<Json> = self
            .active_alerts()
            .into_iter()
            .map(|(_, a)| alert_json(a))
            .collect();
        json!({"status": "success", "data": {"alerts": alerts}})
    }

    /// The alert states to keep across a restart.
    pub fn state(&self) -> EngineState {
        EngineState {
            rules: self
                .groups
                .iter()
                .flat_map(|g| g.rules.iter().map(move |r| (g, r)))
                .filter_map(|(g, r)| {
                    Some((
                        g.group.name.clone(),
                        r.rule.name().to_owned(),
                        r.alerting.as_ref()?.snapshot(),
                    ))
                })
                .collect(),
        }
    }

    /// Restores alert states saved by [`RuleEngine::state`], so `for` clocks survive a restart.
    pub fn restore(&mut self, state: EngineState, now_ms: i64) {
        for (group, rule, snapshot) in state.rules {
            let target = self
                .groups
                .iter_mut()
                .filter(|g| g.group.name == group)
                .flat_map(|g| g.rules.iter_mut())
                .find(|r| r.rule.name() == rule)
                .and_then(|r| r.alerting.as_mut());
            if let Some(a) = target {
                a.restore(snapshot, now_ms, FOR_GRACE_PERIOD_MS);
            }
        }
    }
}

fn alert_json(a: &super::alerting::Alert) -> Json {
    json!({
        "labels": a.labels,
        "annotations": *a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339(a.active_at_ms),
        "value": crate::history::export::value_text(a.value),
    })
}

fn rule_json(r: &RuleRun) -> Json {
    let health = match (&r.last_error, r.last_eval_ms) {
        (Some(_), _) => "err",
        (None, Some(_)) => "ok",
        (None, None) => "unknown",
    };
    let mut j = json!({
        "name": r.rule.name(),
        "query": r.rule.expr_text,
        "labels": r.rule.labels,
        "health": health,
        "evaluationTime": r.duration_seconds,
        "lastEvaluation": r.last_eval_ms.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
    });
    if let Some(e) = &r.last_error {
        j["lastError"] = json!(e);
    }
    match (&r.rule.kind, &r.alerting) {
        (
            RuleKind::Alert {
                for_ms,
                keep_firing_for_ms,
                annotations,
                ..
            },
            Some(a),
        ) => {
            j["type"] = json!("alerting");
            j["duration"] = json!(*for_ms as f64 / 1000.0);
            j["keepFiringFor"] = json!(*keep_firing_for_ms as f64 / 1000.0);
            j["annotations"] = json!(annotations);
            j["state"] = json!(a.state().as_str());
            j["alerts"] = json!(a
                .active_alerts()
                .into_iter()
                .map(alert_json)
                .collect::<Vec<_>>());
        }
        _ => j["type"] = json!("recording"),
    }
    j
}

/// The instants one evaluation uses.
#[derive(Clone, Copy)]
struct Times {
    /// The evaluation time: alert states and template queries.
    now_ms: i64,
    /// Where the rule's expression was evaluated: `now_ms` less the group's query offset.
    query_ms: i64,
    /// The group's interval.
    interval_ms: i64,
}

/// Template `query` calls over the history, at the evaluation time (Prometheus runs them at
/// the rule's evaluation time, not at the offset instant).
struct HistoryQueries<'a> {
    source: &'a dyn Queryable,
    at_ms: i64,
    semantics: Semantics,
}

impl TemplateQuery for HistoryQueries<'_> {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        let parsed = super::promql::parse_as(expr, self.semantics).map_err(|e| e.0)?;
        match Evaluator::new(self.source, self.at_ms)
            .with_semantics(self.semantics)
            .eval(&parsed)
            .map_err(|e| e.0)?
        {
            Value::Vector(v) => Ok(v
                .into_iter()
                .map(|s| QuerySample {
                    labels: s.labels,
                    value: s.value,
                })
                .collect()),
            Value::Scalar(value) => Ok(vec![QuerySample {
                labels: Labels::new(),
                value,
            }]),
            _ => Err("rule result is not a vector or scalar".to_owned()),
        }
    }
}

/// Why templates cannot query with a remote datasource: the answers come in before the
/// evaluation, and a template's queries are known only while it runs.
const NO_REMOTE_TEMPLATE_QUERIES: &str =
    "queries in templates need the local history; this sentinel's rules read a remote datasource";

/// Evaluates one rule from its expression's answer: alert state changes, or the samples to
/// record.
fn evaluate_rule(
    r: &mut RuleRun,
    group: &Group,
    globals: &Globals,
    times: Times,
    answer: &Answer,
    queries: &dyn TemplateQuery,
) -> Result<Vec<Recorded>, EvalError> {
    let Times {
        now_ms,
        query_ms,
        interval_ms,
    } = times;
    // Borrowed: one answer serves every rule with the same expression.
    let result = answer.as_ref().map_err(Clone::clone)?;
    match (&mut r.alerting, &r.rule.kind) {
        (Some(alerting), _) => {
            let name = template::alert_template_name(r.rule.name());
            let expand = |text: &str, labels: &BTreeMap<String, String>, value: f64| {
                template::expand(
                    &name,
                    text,
                    &TemplateData {
                        labels: labels.clone(),
                        external_labels: globals.external_labels.clone(),
                        external_url: globals.external_url.clone(),
                        value,
                        eval_time_ms: now_ms,
                    },
                    queries,
                )
            };
            alerting
                .eval(now_ms, interval_ms, result, group.limit, &expand)
                .map_err(|e| EvalError(e.to_string()))?;
            Ok(Vec::new())
        }
        (None, RuleKind::Record { name }) => {
            let mut out = Vec::with_capacity(result.len());
            let mut seen = std::collections::HashSet::new();
            for (labels, value) in result {
                let (mut labels, value) = (labels.to_label_set(), *value);
                labels.insert(NAME.to_owned(), name.clone());
                for (k, v) in &r.rule.labels {
                    if v.is_empty() {
                        labels.remove(k);
                    } else {
                        labels.insert(k.clone(), v.clone());
                    }
                }
                if !seen.insert(labels.clone()) {
                    return Err(EvalError(
                        "vector contains metrics with the same labelset after applying rule labels"
                            .into(),
                    ));
                }
                out.push(Recorded {
                    labels,
                    value,
                    at_ms: query_ms,
                });
            }
            if group.limit > 0 && out.len() > group.limit {
                return Err(EvalError(format!(
                    "exceeded limit of {} with {} series",
                    group.limit,
                    out.len()
                )));
            }
            Ok(out)
        }
        (None, RuleKind::Alert { .. }) => Ok(Vec::new()),
    }
}

/// Prometheus's link to an expression: `<external URL>/graph?g0.expr=...&g0.tab=1`.
fn generator_url(external_url: &str, expr: &str) -> String {
    let mut url = format!("{}/graph?", external_url.trim_end_matches('/'));
    url.push_str(
        &reqwest::Url::parse_with_params("http://x/", [("g0.expr", expr), ("g0.tab", "1")])
            .map(|u| u.query().unwrap_or_default().to_owned())
            .unwrap_or_default(),
    );
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rules::load::short_form_group;
    use crate::rules::promql::testing::Fixed;

    const MINUTE: i64 = 60_000;

    fn short_form_engine() -> RuleEngine {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/config/short-form.yaml"
        ))
        .unwrap();
        let config = Config::parse(&text, "short-form.yaml").unwrap();
        RuleEngine::new(
            Globals {
                interval_ms: MINUTE,
                ..Globals::default()
            },
            vec![short_form_group(&config, "short-form.yaml")],
        )
    }

    /// Injected data: disk at 95 %, memory at 97 %, and node-b Offline from minute 0, one sample
    /// a minute for 10 minutes.
    fn injected() -> Fixed {
        let n = 11;
        Fixed::from(
            &[
                ("ipfs_sentinel_node_disk_usage_ratio{mountpoint=\"/data\"}", vec![0.95; n]),
                ("ipfs_sentinel_node_disk_usage_ratio{mountpoint=\"/\"}", vec![0.40; n]),
                ("ipfs_sentinel_node_memory_usage_ratio", vec![0.97; n]),
                ("ipfs_sentinel_cluster_node_status{node_id=\"node-b\",role=\"worker\",status=\"Offline\"}", vec![1.0; n]),
                ("ipfs_sentinel_cluster_node_status{node_id=\"node-b\",role=\"worker\",status=\"Online\"}", vec![0.0; n]),
                ("ipfs_sentinel_cluster_node_status{node_id=\"node-a\",role=\"master\",status=\"Offline\"}", vec![0.0; n]),
            ],
            MINUTE,
        )
    }

    fn states(engine: &RuleEngine) -> Vec<(String, &'static str)> {
        let mut s: Vec<_> = engine
            .active_alerts()
            .into_iter()
            .map(|(_, a)| {
                (
                    a.labels.get("alertname").unwrap_or_default().to_owned(),
                    a.state.as_str(),
                )
            })
            .collect();
        s.sort();
        s
    }

    #[test]
    fn the_short_form_alerts_fire_on_injected_data() {
        let src = injected();
        let mut engine = short_form_engine();
        engine.evaluate_due(0, &src);
        assert_eq!(
            states(&engine),
            vec![
                ("NodeDiskUsagePercentHigh".into(), "firing"),
                ("NodeMemoryUsagePercentHigh".into(), "firing"),
                ("NodeStatusOffline".into(), "pending"),
            ]
        );
        for minute in 1..=4 {
            engine.evaluate_due(minute * MINUTE, &src);
            assert_eq!(
                states(&engine)[2].1,
                "pending",
                "still pending at minute {minute}"
            );
        }
        engine.evaluate_due(5 * MINUTE, &src);
        assert_eq!(
            states(&engine)[2],
            ("NodeStatusOffline".into(), "firing"),
            "Offline for 5 minutes fires"
        );
        let (rule, offline) = engine
            .active_alerts()
            .into_iter()
            .find(|(r, _)| r.name() == "NodeStatusOffline")
            .unwrap();
        assert_eq!(offline.labels.get("node_id"), Some("node-b"));
        assert_eq!(offline.labels.get("severity"), Some("critical"));
        assert_eq!(rule.actions, vec!["reallocate_pins"]);
        let alerts = engine
            .families()
            .into_iter()
            .find(|f| f.name == "ALERTS")
            .unwrap();
        assert_eq!(alerts.samples.len(), 3);
    }

    #[test]
    fn alerts_carry_this_nodes_identity_unless_they_name_a_node() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/config/short-form.yaml"
        ))
        .unwrap();
        let config = Config::parse(&text, "short-form.yaml").unwrap();
        let globals = crate::rules::reload::globals(&config).unwrap();
        let mut engine = RuleEngine::new(
            Globals {
                interval_ms: MINUTE,
                ..globals
            },
            vec![short_form_group(&config, "short-form.yaml")],
        );
        let src = injected();
        for minute in 0..=5 {
            engine.evaluate_due(minute * MINUTE, &src);
        }
        let sightings = engine.sightings(5 * MINUTE);
        let node_of = |name: &str| {
            sightings
                .iter()
                .find(|s| s.alert.alertname() == name)
                .map(|s| s.alert.labels["node_id"].clone())
        };
        assert_eq!(
            node_of("NodeDiskUsagePercentHigh").as_deref(),
            Some(config.cluster.node_id.as_str()),
            "this node's own alert carries this node's id"
        );
        assert_eq!(
            node_of("NodeStatusOffline").as_deref(),
            Some("node-b"),
            "an alert about another node keeps that node's id"
        );
        let (_, disk) = engine
            .active_alerts()
            .into_iter()
            .find(|(r, _)| r.name() == "NodeDiskUsagePercentHigh")
            .unwrap();
        assert!(
            disk.labels.get("node_id").is_none(),
            "as external labels in Prometheus, added when the alert leaves, not to ALERTS"
        );
    }

    #[test]
    fn a_restart_keeps_the_for_clock() {
        let src = injected();
        let mut engine = short_form_engine();
        for minute in 0..=3 {
            engine.evaluate_due(minute * MINUTE, &src);
        }
        let saved = serde_json::to_string(&engine.state()).unwrap();
        // Restarted straight away: 3 minutes of the 5 already count.
        let mut restarted = short_form_engine();
        restarted.restore(serde_json::from_str(&saved).unwrap(), 3 * MINUTE);
        restarted.evaluate_due(4 * MINUTE, &src);
        assert_eq!(states(&restarted)[2].1, "pending");
        let pending = restarted
            .active_alerts()
            .into_iter()
            .find(|(r, _)| r.name() == "NodeStatusOffline")
            .unwrap()
            .1;
        assert_eq!(
            pending.active_at_ms, 0,
            "the alert became active before the restart"
        );
    }

    #[test]
    fn groups_wait_for_their_interval_and_errors_are_reported() {
        let src = injected();
        let broken = crate::rules::load::parse_file(
            "groups:\n  - name: g\n    interval: 2m\n    rules:\n      - record: r\n        expr: ipfs_sentinel_node_memory_usage_ratio / on(missing) group_left ipfs_sentinel_cluster_node_status\n",
            "g.yml",
            Semantics::Prometheus2_42,
        )
        .unwrap();
        let mut engine = RuleEngine::new(
            Globals {
                interval_ms: MINUTE,
                ..Globals::default()
            },
            broken,
        );
        engine.evaluate_due(0, &src);
        engine.evaluate_due(MINUTE, &src);
        let rules = engine.rules_json();
        let rule = &rules["data"]["groups"][0]["rules"][0];
        assert_eq!(rule["health"], "err", "{rules}");
        assert!(
            rule["lastError"].as_str().unwrap().contains("many-to-many"),
            "{rules}"
        );
        let (seconds, failed) = engine.last_evaluation();
        assert_eq!(failed, 1);
        assert_eq!(seconds, rules["data"]["groups"][0]["evaluationTime"]);
        let failures = engine
            .families()
            .into_iter()
            .find(|f| f.name == "ipfs_sentinel_rule_evaluation_failures_total")
            .unwrap();
        assert_eq!(
            failures.samples[0].value, 1.0,
            "evaluated once: the group's interval is 2 minutes"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_datasource_marks_the_rule_err_and_keeps_its_alerts() {
        let mut engine = short_form_engine();
        engine.evaluate_due(0, &injected());
        assert_eq!(states(&engine).len(), 3);
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config: crate::config::DatasourceConfig = serde_json::from_value(serde_json::json!({
            "type": "prometheus", "url": format!("http://{closed}"), "timeout_seconds": 1
        }))
        .unwrap();
        engine.globals.datasource = Some(RemoteDatasource::new(&config).unwrap());
        let due = engine.due_groups(10 * MINUTE);
        let exprs = engine.queries(&due).texts();
        assert_eq!(exprs.len(), 3, "one query per rule: {exprs:?}");
        let answers = engine
            .datasource()
            .unwrap()
            .query_all(exprs, 10 * MINUTE, std::time::Duration::from_secs(5))
            .await;
        engine.evaluate_groups(&due, answers.into(), None);
        assert_eq!(states(&engine).len(), 3, "the alerts keep their state");
        let rules = engine.rules_json();
        let rule = &rules["data"]["groups"][0]["rules"][0];
        assert_eq!(rule["health"], "err");
        assert!(
            rule["lastError"].as_str().unwrap().contains("datasource"),
            "{rule}"
        );
    }

    #[test]
    fn a_rule_without_an_answer_waits_and_groups_wait_for_their_interval() {
        let mut engine = short_form_engine();
        let due = engine.due_groups(0);
        assert_eq!(due.len(), 1, "everything is due the first time");
        let mut exprs = engine.queries(&due).texts();
        assert_eq!(exprs.len(), 3);
        // One rule's answer is missing, as for a rule loaded after the queries were sent.
        let missing = exprs.pop().unwrap();
        let answers = RemoteAnswers {
            at_ms: 0,
            answers: exprs
                .iter()
                .map(|e| (e.clone(), Ok(vec![(Labels::new(), 1.0)])))
                .collect(),
        };
        engine.evaluate_groups(&due, answers.into(), None);
        assert_eq!(states(&engine).len(), 2, "the two answered rules fired");
        let rules = engine.rules_json();
        let waiting = rules["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["query"] == missing.as_str())
            .unwrap();
        assert_eq!(waiting["health"], "unknown", "{waiting}");
        assert!(
            engine.due_groups(MINUTE - 1).is_empty(),
            "not due before the interval"
        );
        assert_eq!(engine.due_groups(MINUTE), due);
    }

    /// `cluster.monitoring.rule_query_offset_seconds` moves every group's queries back; a
    /// group's own `query_offset` wins; recorded samples carry the offset instant; template
    /// queries run at the evaluation time.
    #[test]
    fn query_offsets_move_the_query_not_the_evaluation() {
        let rules = "groups:\n  - name: default\n    rules:\n      - record: x:copy\n        expr: x\n      - alert: XHigh\n        expr: x >= 3\n        annotations: {now: '{{ query \"x\" | first | value }}', seen: '{{ $value }}'}\n  - name: own\n    query_offset: 0s\n    rules:\n      - record: x:now\n        expr: x\n";
        let groups =
            crate::rules::load::parse_file(rules, "offsets.yml", Semantics::Prometheus2_42)
                .unwrap();
        let mut engine = RuleEngine::new(
            Globals {
                interval_ms: MINUTE,
                query_offset_ms: 2 * MINUTE,
                semantics: Semantics::Prometheus2_42,
                ..Globals::default()
            },
            groups,
        );
        let src = Fixed::from(&[("x", (0..8).map(f64::from).collect())], MINUTE);
        let recorded = engine.evaluate_due(5 * MINUTE, &src);
        let by_name = |name: &str| {
            recorded
                .iter()
                .find(|r| r.labels[NAME] == name)
                .map(|r| (r.value, r.at_ms))
        };
        assert_eq!(by_name("x:copy"), Some((3.0, 3 * MINUTE)));
        assert_eq!(by_name("x:now"), Some((5.0, 5 * MINUTE)));
        let alerts = engine.active_alerts();
        assert_eq!(alerts.len(), 1);
        let alert = alerts[0].1;
        assert_eq!(
            alert.active_at_ms,
            5 * MINUTE,
            "alert states keep the evaluation time"
        );
        assert_eq!(alert.annotations["seen"], "3");
        assert_eq!(alert.annotations["now"], "5");
    }
}
