//! Rule unit tests in the format of Prometheus 2.42's `promtool test rules`: a YAML file names
//! rule files, gives input series in PromQL's expanding notation (`0+10x5`, `_x3`, `stale`),
//! and asserts which alerts fire and what expressions return at given times.
//!
//! The test format and its quirks follow 2.42 (`cmd/promtool/unittest.go`); expressions are
//! evaluated with the PromQL semantics the caller chooses (`--promql`). A test without
//! `interval` puts every sample at t=0 (the first one wins), every group is evaluated at 0,
//! E, 2E, ... up to the largest `eval_time` (E is `evaluation_interval`, 1m by default), an
//! alert assertion at t reads the state after the last evaluation at or before t, only firing
//! alerts are compared, and expected sample values must match exactly. Recording rules'
//! output and the `ALERTS`/`ALERTS_FOR_STATE` series are written back into the test's
//! storage, with stale markers when a series disappears, so later rules and expression tests
//! see them. Each rule runs in its own [`RuleEngine`] so that a rule sees the output of the
//! rules evaluated before it at the same instant, as in Prometheus.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::Expr;
use serde::Deserialize;

use super::alerting::AlertState;
use super::load::{self, Group};
use super::manager::{Globals, RuleEngine};
use super::promql::{
    self, EvalError, Evaluator, Labels, Queryable, RangeSeries, Value, NAME, STALE_NAN,
};
use super::rulefile::format_duration;
use crate::clock::parse_duration;
use crate::model::Semantics;

/// The verdict on one unit-test file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileOutcome {
    /// Every failed assertion or evaluation error, worded as promtool words it.
    pub failures: Vec<String>,
    /// How many test groups (`tests[]` entries) the file holds.
    pub tests: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(default)]
    eval_time: Option<String>,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    #[serde(default)]
    eval_time: Option<String>,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    labels: String,
    value: f64,
}

/// Runs the unit-test file at `path` with the PromQL of `semantics` (promtool 2.42 is
/// [`Semantics::Prometheus2_42`]); the error is a one-line reason it could not be loaded.
pub fn run_file(path: &Path, semantics: Semantics) -> Result<FileOutcome, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    run_text(&text, dir, &name, semantics)
}

/// Runs unit-test `text`, reading rule files relative to `file_dir`; `file_name` names the
/// file in load errors.
pub fn run_text(
    text: &str,
    file_dir: &Path,
    file_name: &str,
    semantics: Semantics,
) -> Result<FileOutcome, String> {
    let spec = parse_spec(text, file_name)?;
    let eval_interval = match &spec.evaluation_interval {
        Some(d) => duration(d, file_name, "evaluation_interval")?,
        None => 60_000,
    };
    let order = eval_order(&spec.group_eval_order, file_name)?;
    let mut groups = load_rule_files(&spec.rule_files, file_dir, semantics)?;
    // A stable sort: groups the order does not name come first, in file order.
    groups.sort_by_key(|g| order.get(&g.name).copied().unwrap_or(0));
    let mut failures = Vec::new();
    for test in &spec.tests {
        failures.extend(run_group(
            test,
            &groups,
            eval_interval.max(1),
            file_name,
            semantics,
        )?);
    }
    Ok(FileOutcome {
        failures,
        tests: spec.tests.len(),
    })
}

fn parse_spec(text: &str, file_name: &str) -> Result<TestFile, String> {
    let parsed: Result<Option<TestFile>, _> = serde_saphyr::from_str(text);
    match parsed {
        Ok(spec) => Ok(spec.unwrap_or(TestFile {
            rule_files: Vec::new(),
            evaluation_interval: None,
            group_eval_order: Vec::new(),
            tests: Vec::new(),
        })),
        Err(e) => {
            let at = e
                .location()
                .map(|l| format!("{}:{}:", l.line(), l.column()))
                .unwrap_or_default();
            let reason = e.without_snippet().to_string();
            let reason = reason.lines().next().unwrap_or("").to_owned();
            Err(format!("{file_name}:{at} {reason}"))
        }
    }
}

fn duration(text: &str, file_name: &str, field: &str) -> Result<i64, String> {
    parse_duration(text).map_err(|e| format!("{file_name}: {field}: {e}"))
}

fn eval_order(names: &[String], file_name: &str) -> Result<BTreeMap<String, usize>, String> {
    let mut order = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        if order.insert(name.clone(), i).is_some() {
            return Err(format!(
                "{file_name}: group name repeated in evaluation order: {name}"
            ));
        }
    }
    Ok(order)
}

/// Every group of the files the globs name (relative to `dir`), globs in order; a glob
/// matching nothing is skipped, as promtool only warns about it.
fn load_rule_files(
    patterns: &[String],
    dir: &Path,
    semantics: Semantics,
) -> Result<Vec<Group>, String> {
    let mut groups = Vec::new();
    for pattern in patterns {
        let full = if Path::new(pattern).is_absolute() || pattern.is_empty() {
            pattern.clone()
        } else {
            dir.join(pattern).display().to_string()
        };
        let paths = glob::glob(&full).map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
        for file in paths.filter_map(Result::ok) {
            groups.extend(load::load_file(&file, semantics).map_err(|e| e.to_string())?);
        }
    }
    Ok(groups)
}

/// The test's storage: input series and everything rules wrote, each series' points in time
/// order.
#[derive(Default)]
struct Store {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
}

impl Store {
    /// Appends a sample; one at or before the series' newest is dropped, as the TSDB drops
    /// duplicates and out-of-order samples.
    fn append(&mut self, labels: Labels, at_ms: i64, value: f64) {
        let points = self.series.entry(labels).or_default();
        if points.last().is_none_or(|p| p.0 < at_ms) {
            points.push((at_ms, value));
        }
    }
}

impl Queryable for Store {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        Ok(self
            .series
            .iter()
            .filter(|(labels, _)| {
                matchers
                    .iter()
                    .all(|m| m.is_match(labels.get(&m.name).map_or("", String::as_str)))
            })
            .map(|(labels, points)| RangeSeries {
                labels: labels.clone(),
                points: points
                    .iter()
                    .copied()
                    .filter(|p| p.0 >= start_ms && p.0 <= end_ms)
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect())
    }
}

/// The most samples one input series may expand to. promtool has no limit; this one keeps a
/// typo such as `0+1x1000000000` from taking gigabytes.
pub const MAX_SERIES_SAMPLES: u64 = 1_000_000;

/// The most rule evaluations one test group may need (its last `eval_time` over
/// `evaluation_interval`; a week at 15 s is 40,321). promtool has no limit; this one keeps a
/// typo such as `eval_time: 3y` at `1s` from running for hours.
pub const MAX_EVALUATIONS: i64 = 50_000;

/// Expands promtool's value notation into one entry per step, `None` for a missing sample.
pub fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        let left = MAX_SERIES_SAMPLES - out.len() as u64;
        out.extend(expand_item(token, left).map_err(|e| format!("{token:?}: {e}"))?);
    }
    Ok(out)
}

/// One token of the notation; `left` is how many more samples the series may have.
fn expand_item(token: &str, left: u64) -> Result<Vec<Option<f64>>, String> {
    if left == 0 {
        return Err(format!(
            "more than {MAX_SERIES_SAMPLES} samples in one series"
        ));
    }
    if token == "_" {
        return Ok(vec![None]);
    }
    let Some((head, times)) = token.split_once('x') else {
        return Ok(vec![Some(series_value(token)?)]);
    };
    if head.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("unexpected identifier in series values".into());
    }
    let n: u64 = times
        .parse()
        .map_err(|_| format!("bad repetition count {times:?}"))?;
    if n >= left {
        return Err(format!(
            "repetition count {n} makes more than {MAX_SERIES_SAMPLES} samples in one series"
        ));
    }
    if head == "_" {
        return Ok(vec![None; n as usize]);
    }
    let (start, step) = split_step(head)?;
    let mut value = start;
    let mut out = Vec::with_capacity(n as usize + 1);
    for _ in 0..=n {
        out.push(Some(value));
        value += step;
    }
    Ok(out)
}

/// `a+b` or `a-b` into (a, ±b); a lone `a` into (a, 0).
fn split_step(head: &str) -> Result<(f64, f64), String> {
    let bytes = head.as_bytes();
    let split = (1..bytes.len()).find(|&i| {
        matches!(bytes[i], b'+' | b'-') && !matches!(bytes[i - 1], b'e' | b'E' | b'+' | b'-')
    });
    match split {
        Some(i) => Ok((series_value(&head[..i])?, number(&head[i..])?)),
        None => Ok((series_value(head)?, 0.0)),
    }
}

fn series_value(text: &str) -> Result<f64, String> {
    if text == "stale" {
        return Ok(STALE_NAN);
    }
    number(text)
}

/// A number as PromQL writes one: optionally signed, decimal or scientific, `Inf` or `NaN`.
fn number(text: &str) -> Result<f64, String> {
    let unsigned = text.trim_start_matches(['+', '-']);
    let sign_len = text.len() - unsigned.len();
    let word = unsigned.to_ascii_lowercase();
    let digits_ok = unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if sign_len > 1 || !(digits_ok || word == "inf" || word == "nan") {
        return Err(format!("expected a number or \"stale\", got {text:?}"));
    }
    text.parse()
        .map_err(|_| format!("expected a number, got {text:?}"))
}

/// The labels of a series written as a selector, `name{a="b"}` or `{}`.
fn series_labels(text: &str) -> Result<Labels, String> {
    if text.trim() == "{}" {
        return Ok(Labels::new());
    }
    let Ok(Expr::VectorSelector(vs)) = promql_parser::parser::parse(text) else {
        return Err(format!("not a series: {text:?}"));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(format!("not a series: {text:?}"));
    }
    let mut labels = Labels::new();
    for m in &vs.matchers.matchers {
        if !matches!(m.op, MatchOp::Equal) {
            return Err(format!("not a series: {text:?}: only = matchers"));
        }
        labels.insert(m.name.clone(), m.value.clone());
    }
    if let Some(name) = vs.name {
        labels.insert(NAME.into(), name);
    }
    Ok(labels)
}

/// The input series in storage: samples at 0, interval, 2 × interval, ...
fn load_inputs(test: &TestGroup, interval_ms: i64) -> Result<Store, String> {
    let mut by_series = BTreeMap::new();
    for input in &test.input_series {
        let labels = series_labels(&input.series)?;
        let values =
            expand_values(&input.values).map_err(|e| format!("series {:?}: {e}", input.series))?;
        // A series given twice keeps its last definition, as promtool's loader does.
        by_series.insert(labels, values);
    }
    let mut store = Store::default();
    for (labels, values) in by_series {
        for (i, v) in values.into_iter().enumerate() {
            let at_ms = (i as i64)
                .checked_mul(interval_ms)
                .ok_or_else(|| format!("sample {i} of a series is too late at this interval"))?;
            if let Some(v) = v {
                store.append(labels.clone(), at_ms, v);
            }
        }
    }
    Ok(store)
}

/// One rule with its own engine, and the series it wrote at its last evaluation.
struct RuleRunner {
    name: String,
    engine: RuleEngine,
    written: BTreeSet<Labels>,
    /// The group's query offset: its output is written that far back, as Prometheus does.
    offset_ms: i64,
}

fn runners(groups: &[Group], globals: &Globals) -> Vec<RuleRunner> {
    groups
        .iter()
        .flat_map(|g| g.rules.iter().map(move |r| (g, r)))
        .map(|(g, rule)| RuleRunner {
            name: rule.name().to_owned(),
            engine: RuleEngine::new(
                globals.clone(),
                vec![Group {
                    name: g.name.clone(),
                    file: g.file.clone(),
                    interval_ms: None,
                    query_offset_ms: g.query_offset_ms,
                    limit: g.limit,
                    rules: vec![rule.clone()],
                }],
            ),
            written: BTreeSet::new(),
            offset_ms: g.query_offset_ms.unwrap_or(globals.query_offset_ms),
        })
        .collect()
}

impl RuleRunner {
    /// Evaluates the rule at `ts` over `store` and writes its output back, with stale markers
    /// for series it no longer produces; an evaluation error is returned.
    fn eval(&mut self, ts: i64, store: &mut Store) -> Option<String> {
        let recorded = self.engine.evaluate_due(ts, store);
        let mut now: Vec<(Labels, f64)> =
            recorded.into_iter().map(|r| (r.labels, r.value)).collect();
        now.extend(self.alert_series());
        let fresh: BTreeSet<Labels> = now.iter().map(|(l, _)| l.clone()).collect();
        let at_ms = ts - self.offset_ms;
        for gone in self.written.difference(&fresh) {
            store.append(gone.clone(), at_ms, STALE_NAN);
        }
        for (labels, value) in now {
            store.append(labels, at_ms, value);
        }
        self.written = fresh;
        self.last_error()
    }

    fn last_error(&self) -> Option<String> {
        let rules = self.engine.rules_json();
        rules["data"]["groups"][0]["rules"][0]["lastError"]
            .as_str()
            .map(str::to_owned)
    }

    /// The alerts pending or firing, with their labels and annotations.
    fn alerts(&self) -> Vec<(AlertState, Labels, Labels, i64)> {
        self.engine
            .active_alerts()
            .into_iter()
            .map(|(_, a)| {
                (
                    a.state,
                    a.labels.to_label_set(),
                    Labels::clone(&a.annotations),
                    a.active_at_ms,
                )
            })
            .collect()
    }

    /// `ALERTS` and `ALERTS_FOR_STATE` samples for the current alerts.
    fn alert_series(&self) -> Vec<(Labels, f64)> {
        let mut out = Vec::new();
        for (state, labels, _, active_at) in self.alerts() {
            let mut alerts = labels.clone();
            alerts.insert(NAME.into(), "ALERTS".into());
            alerts.insert("alertstate".into(), state.as_str().into());
            out.push((alerts, 1.0));
            let mut for_state = labels;
            for_state.insert(NAME.into(), "ALERTS_FOR_STATE".into());
            out.push((for_state, active_at as f64 / 1000.0));
        }
        out
    }
}

type LabelsAndAnnotations = (Labels, Labels);

struct AlertCase {
    at_ms: i64,
    name: String,
    expected: Vec<LabelsAndAnnotations>,
}

fn alert_cases(test: &TestGroup, file_name: &str) -> Result<Vec<AlertCase>, String> {
    let mut cases = Vec::new();
    for t in &test.alert_rule_test {
        let at_ms = optional_duration(&t.eval_time, file_name)?;
        if t.alertname.is_empty() {
            let in_group = if test.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", test.name)
            };
            return Err(format!(
                "{file_name}: an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                model_duration(at_ms)
            ));
        }
        let mut expected: Vec<LabelsAndAnnotations> = t
            .exp_alerts
            .iter()
            .map(|a| {
                let mut labels = a.exp_labels.clone();
                labels.insert("alertname".into(), t.alertname.clone());
                (labels, a.exp_annotations.clone())
            })
            .collect();
        expected.sort();
        cases.push(AlertCase {
            at_ms,
            name: t.alertname.clone(),
            expected,
        });
    }
    cases.sort_by_key(|c| c.at_ms);
    Ok(cases)
}

fn optional_duration(d: &Option<String>, file_name: &str) -> Result<i64, String> {
    d.as_deref()
        .map_or(Ok(0), |d| duration(d, file_name, "eval_time"))
}

/// Runs one test group; its failures, or an error that stops the whole file.
fn run_group(
    test: &TestGroup,
    groups: &[Group],
    eval_interval: i64,
    file_name: &str,
    semantics: Semantics,
) -> Result<Vec<String>, String> {
    let interval = match &test.interval {
        Some(d) => duration(d, file_name, "interval")?,
        None => 0,
    };
    let mut store = load_inputs(test, interval).map_err(|e| format!("{file_name}: {e}"))?;
    let cases = alert_cases(test, file_name)?;
    let expr_times = test
        .promql_expr_test
        .iter()
        .map(|t| optional_duration(&t.eval_time, file_name))
        .collect::<Result<Vec<_>, _>>()?;
    let max_t = cases
        .iter()
        .map(|c| c.at_ms)
        .chain(expr_times.iter().copied())
        .max()
        .unwrap_or(0);
    let globals = Globals {
        interval_ms: eval_interval,
        external_labels: test.external_labels.clone(),
        external_url: test.external_url.clone(),
        query_offset_ms: 0,
        semantics,
        datasource: None,
    };
    let evaluations = max_t / eval_interval + 1;
    if evaluations > MAX_EVALUATIONS {
        return Err(format!(
            "{file_name}: eval_time {} needs {evaluations} rule evaluations at evaluation_interval {}; at most {MAX_EVALUATIONS} are run",
            format_duration(max_t),
            format_duration(eval_interval)
        ));
    }
    let mut rules = runners(groups, &globals);
    let mut failures = Vec::new();
    let mut next_case = 0;
    let mut ts = 0;
    while ts <= max_t {
        let errors = eval_all(&mut rules, ts, &mut store);
        if !errors.is_empty() {
            return Ok(errors);
        }
        while let Some(case) = cases
            .get(next_case)
            .filter(|c| c.at_ms < ts + eval_interval)
        {
            failures.extend(check_alerts(case, &rules, &test.name));
            next_case += 1;
        }
        ts += eval_interval;
    }
    for (t, at_ms) in test.promql_expr_test.iter().zip(expr_times) {
        failures.extend(check_expr(t, at_ms, &store, semantics));
    }
    Ok(failures)
}

fn eval_all(rules: &mut [RuleRunner], ts: i64, store: &mut Store) -> Vec<String> {
    rules
        .iter_mut()
        .filter_map(|r| {
            let err = r.eval(ts, store)?;
            Some(format!(
                "    rule: {}, time: {}, err: {err}",
                r.name,
                go_duration(ts)
            ))
        })
        .collect()
}

fn check_alerts(case: &AlertCase, rules: &[RuleRunner], test_name: &str) -> Option<String> {
    let mut got: Vec<LabelsAndAnnotations> = rules
        .iter()
        .filter(|r| r.name == case.name)
        .flat_map(|r| r.alerts())
        .filter(|a| a.0 == AlertState::Firing)
        .map(|(_, labels, annotations, _)| (labels, annotations))
        .collect();
    got.sort();
    if got == case.expected {
        return None;
    }
    let name = if test_name.is_empty() {
        String::new()
    } else {
        format!("    name: {test_name},\n")
    };
    let indent = "            ";
    Some(format!(
        "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
        case.name,
        model_duration(case.at_ms),
        indent_lines(&alerts_text(&case.expected), indent),
        indent_lines(&alerts_text(&got), indent)
    ))
}

fn alerts_text(alerts: &[LabelsAndAnnotations]) -> String {
    if alerts.is_empty() {
        return "[]".into();
    }
    let items: Vec<String> = alerts
        .iter()
        .enumerate()
        .map(|(i, (l, a))| {
            let body = format!(
                "\nLabels:{}\nAnnotations:{}",
                labels_text(l),
                labels_text(a)
            );
            format!("{i}:{}", indent_lines(&body, "  "))
        })
        .collect();
    format!("[\n{}\n]", items.join(",\n"))
}

fn indent_lines(text: &str, indent: &str) -> String {
    text.split('\n')
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

/// Labels as Prometheus prints them: `{__name__="up", job="a"}`.
fn labels_text(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

fn check_expr(t: &ExprTest, at_ms: i64, store: &Store, semantics: Semantics) -> Option<String> {
    let head = format!("    expr: {:?}, time: {}", t.expr, model_duration(at_ms));
    let mut got = match query(&t.expr, at_ms, store, semantics) {
        Ok(got) => got,
        Err(e) => return Some(format!("{head}, err: {e}")),
    };
    let mut exp = Vec::with_capacity(t.exp_samples.len());
    for s in &t.exp_samples {
        match series_labels(&s.labels) {
            Ok(labels) => exp.push((labels, s.value)),
            Err(e) => return Some(format!("{head}, err: labels {:?}: {e}", s.labels)),
        }
    }
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    // Exact comparison, as promtool 2.42's reflect.DeepEqual: NaN never matches.
    let same =
        exp.len() == got.len() && exp.iter().zip(&got).all(|(e, g)| e.0 == g.0 && e.1 == g.1);
    (!same).then(|| {
        format!(
            "{head},\n        exp: {}\n        got: {}",
            samples_text(&exp),
            samples_text(&got)
        )
    })
}

fn query(
    expr: &str,
    at_ms: i64,
    store: &Store,
    semantics: Semantics,
) -> Result<Vec<(Labels, f64)>, String> {
    // promtool 2.42's semantics until the setting is plumbed (`--promql`).
    let parsed = promql::parse_as(expr, semantics).map_err(|e| e.0)?;
    promql::check_supported(&parsed).map_err(|e| e.0)?;
    match Evaluator::new(store, at_ms)
        .with_semantics(semantics)
        .eval(&parsed)
        .map_err(|e| e.0)?
    {
        Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.value)).collect()),
        Value::Scalar(v) => Ok(vec![(Labels::new(), v)]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

fn samples_text(samples: &[(Labels, f64)]) -> String {
    if samples.is_empty() {
        return "nil".into();
    }
    let items: Vec<String> = samples
        .iter()
        .map(|(l, v)| format!("{} {}", labels_text(l), go_float_e(*v)))
        .collect();
    items.join(", ")
}

/// A float as Go's `strconv.FormatFloat(v, 'E', -1, 64)`: `3E+00`, `1.5E-01`, `+Inf`.
fn go_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let text = format!("{v:E}");
    let Some((mantissa, exp)) = text.split_once('E') else {
        return text;
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}E{sign}{digits:0>2}")
}

/// A duration as Prometheus's `model.Duration` prints it: `5m`, `1h30m`, `0s`.
fn model_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut rest = ms;
    let mut out = String::new();
    let day = 86_400_000;
    for (unit, size, exact) in [
        ("y", 365 * day, true),
        ("w", 7 * day, true),
        ("d", day, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1_000, false),
        ("ms", 1, false),
    ] {
        if exact && rest % size != 0 {
            continue;
        }
        if rest / size > 0 {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// A duration as Go's `time.Duration` prints it: `5m0s`, `1h0m30s`, `500ms`.
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, ms / 60_000 % 60);
    let secs = if ms % 1_000 == 0 {
        format!("{}", ms / 1_000 % 60)
    } else {
        let s = format!("{}.{:03}", ms / 1_000 % 60, ms % 1_000);
        s.trim_end_matches('0').to_owned()
    };
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, _) => format!("{m}m{secs}s"),
        _ => format!("{h}h{m}m{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn conformance() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
    }

    /// Runs a test file over `tests/conformance/jobs.rules.yml`. Every inline case here was
    /// also run with promtool 2.42.0 and gave the same verdicts and failure texts; the group
    /// order is pinned because promtool's is random without it.
    fn run(tests: &str) -> FileOutcome {
        let text = format!(
            "rule_files: [jobs.rules.yml]\ngroup_eval_order: [record, alert]\ntests:\n{tests}"
        );
        run_text(&text, &conformance(), "t.yml", Semantics::Prometheus2_42).unwrap()
    }

    fn values(text: &str) -> Vec<Option<f64>> {
        expand_values(text).unwrap()
    }

    #[test]
    fn absurd_sizes_are_refused_not_run_for_hours() {
        let err = expand_values("1+1x18446744073709551615").unwrap_err();
        assert!(err.contains("more than 1000000 samples"), "{err}");
        let err = expand_values("_x999999 1 2").unwrap_err();
        assert!(err.contains("more than 1000000 samples"), "{err}");
        assert_eq!(expand_values("0+1x999999").unwrap().len(), 1_000_000);
        let file = "tests:\n  - interval: 1m\n    promql_expr_test:\n      - expr: vector(1)\n        eval_time: 3w\n";
        let ok = run_text(file, Path::new("."), "t.yml", Semantics::Prometheus2_42).unwrap();
        assert_eq!(ok.tests, 1, "3 weeks at 1m: 30,241 evaluations");
        let slow = format!("evaluation_interval: 1s\n{file}");
        let err = run_text(&slow, Path::new("."), "t.yml", Semantics::Prometheus2_42).unwrap_err();
        assert!(
            err.contains("eval_time 3w needs 1814401 rule evaluations at evaluation_interval 1s"),
            "{err}"
        );
    }

    #[test]
    fn the_series_notation_expands_as_promtool_does() {
        assert_eq!(values("1 2.5 1e3 +2"), [1.0, 2.5, 1000.0, 2.0].map(Some));
        assert_eq!(values("0+10x3"), [0.0, 10.0, 20.0, 30.0].map(Some));
        assert_eq!(values("10-2.5x2"), [10.0, 7.5, 5.0].map(Some));
        assert_eq!(values("-1-1x1"), [-1.0, -2.0].map(Some));
        assert_eq!(values("1e1+1e0x1"), [10.0, 11.0].map(Some));
        assert_eq!(values("7x2"), [7.0; 3].map(Some));
        assert_eq!(values("_ 1 _x2"), [None, Some(1.0), None, None]);
        let odd = values("stale Inf -Inf NaN");
        assert!(promql::is_stale(odd[0].unwrap()));
        assert_eq!(odd[1], Some(f64::INFINITY));
        assert_eq!(odd[2], Some(f64::NEG_INFINITY));
        assert!(odd[3].unwrap().is_nan() && !promql::is_stale(odd[3].unwrap()));
        for bad in ["1+2", "abc", "1xa", "stalex2", "1 - 2", "1++2x3"] {
            assert!(expand_values(bad).is_err(), "{bad}");
        }
    }

    const ALERT_TEST: &str = "  - interval: 1m
    external_labels: {region: eu}
    input_series:
      - series: 'up{job=\"a\",instance=\"x\"}'
        values: '1 0x10'
    alert_rule_test:
      - eval_time: 3m
        alertname: JobDown
        exp_alerts:
          - exp_labels: {severity: SEVERITY, job: a}
            exp_annotations: {summary: 'SUMMARY'}
";

    fn alert_test(severity: &str, summary: &str) -> FileOutcome {
        run(&ALERT_TEST
            .replace("SEVERITY", severity)
            .replace("SUMMARY", summary))
    }

    #[test]
    fn a_recording_rule_feeds_an_alert_that_fires_after_its_for() {
        let good = alert_test("page", "job a down, value 0, region eu");
        assert_eq!(
            good,
            FileOutcome {
                failures: vec![],
                tests: 1
            }
        );
    }

    #[test]
    fn a_wrong_label_or_annotation_fails_as_promtool_reports_it() {
        let wrong_label = alert_test("critical", "job a down, value 0, region eu");
        assert_eq!(wrong_label.failures.len(), 1);
        let text = &wrong_label.failures[0];
        assert!(text.starts_with("    alertname: JobDown, time: 3m, \n        exp:[\n            0:\n              Labels:{alertname=\"JobDown\", job=\"a\", severity=\"critical\"}"), "{text}");
        assert!(text.contains("got:[\n            0:\n              Labels:{alertname=\"JobDown\", job=\"a\", severity=\"page\"}\n              Annotations:{summary=\"job a down, value 0, region eu\"}\n            ]"), "{text}");
        let wrong_annotation = alert_test("page", "job a is down");
        assert_eq!(wrong_annotation.failures.len(), 1);
        assert!(wrong_annotation.failures[0].contains("Annotations:{summary=\"job a is down\"}"));
    }

    #[test]
    fn expression_tests_compare_sorted_samples_exactly() {
        let case = |expr: &str, samples: &str| {
            run(&format!(
                "  - interval: 1m
    input_series:
      - series: 'up{{job=\"b\",instance=\"z\"}}'
        values: '1x5'
      - series: 'up{{job=\"a\",instance=\"x\"}}'
        values: '0x5'
    promql_expr_test:
      - expr: {expr}
        eval_time: 2m
        exp_samples: {samples}
"
            ))
            .failures
        };
        let both = "[{labels: 'job:up:sum{job=\"a\"}', value: 0}, {labels: 'job:up:sum{job=\"b\"}', value: 1}]";
        assert_eq!(case("job:up:sum", both), Vec::<String>::new());
        assert_eq!(
            case("sum(up)", "[{labels: '{}', value: 1}]"),
            Vec::<String>::new()
        );
        let failed = case(
            "job:up:sum",
            "[{labels: 'job:up:sum{job=\"a\"}', value: 0}]",
        );
        assert_eq!(
            failed,
            vec!["    expr: \"job:up:sum\", time: 2m,\n        exp: {__name__=\"job:up:sum\", job=\"a\"} 0E+00\n        got: {__name__=\"job:up:sum\", job=\"a\"} 0E+00, {__name__=\"job:up:sum\", job=\"b\"} 1E+00"]
        );
        let tolerance = case("0.1 + 0.2", "[{labels: '{}', value: 0.3}]");
        assert!(
            tolerance[0].ends_with("got: {} 3.0000000000000004E-01"),
            "{tolerance:?}"
        );
        let bad = case("sum(up", "[]");
        assert!(
            bad[0].starts_with("    expr: \"sum(up\", time: 2m, err: "),
            "{bad:?}"
        );
    }

    #[test]
    fn without_interval_every_sample_lands_at_zero() {
        let outcome = run("  - input_series:
      - series: 'up{job=\"a\",instance=\"x\"}'
        values: '1 0 0 0'
    promql_expr_test:
      - expr: up
        eval_time: 3m
        exp_samples: [{labels: 'up{job=\"a\",instance=\"x\"}', value: 1}]
      - expr: up
        eval_time: 5m1s
        exp_samples: []
");
        assert_eq!(outcome.failures, Vec::<String>::new());
    }

    #[test]
    fn a_recorded_series_that_vanishes_goes_stale() {
        // promtool 2.42.0: SUCCESS (without the stale marker the 1m sample would still show).
        let outcome = run("  - interval: 1m
    input_series:
      - series: 'up{job=\"a\",instance=\"x\"}'
        values: '1 1 stale'
    promql_expr_test:
      - expr: job:up:sum
        eval_time: 3m
        exp_samples: []
");
        assert_eq!(outcome.failures, Vec::<String>::new());
    }

    #[test]
    fn load_errors_name_the_file_and_place() {
        let e = run_text(
            "tests:\n  - intervall: 1m\n",
            &conformance(),
            "t.yml",
            Semantics::Prometheus2_42,
        )
        .unwrap_err();
        assert!(
            e.starts_with("t.yml:2:5:") && e.contains("intervall"),
            "{e}"
        );
        let e = run_text(
            "group_eval_order: [a, a]\n",
            &conformance(),
            "t.yml",
            Semantics::Prometheus2_42,
        )
        .unwrap_err();
        assert!(e.contains("group name repeated"), "{e}");
        let e = run_text(
            "rule_files: [notation.test.yml]\n",
            &conformance(),
            "t.yml",
            Semantics::Prometheus2_42,
        )
        .unwrap_err();
        assert!(e.contains("notation.test.yml"), "{e}");
    }

    #[test]
    fn formatting_follows_go() {
        assert_eq!(go_float_e(3.0), "3E+00");
        assert_eq!(go_float_e(0.1 + 0.2), "3.0000000000000004E-01");
        assert_eq!(go_float_e(1e300), "1E+300");
        assert_eq!(go_float_e(f64::NEG_INFINITY), "-Inf");
        assert_eq!(model_duration(0), "0s");
        assert_eq!(model_duration(5_400_000), "1h30m");
        assert_eq!(model_duration(7 * 86_400_000), "1w");
        assert_eq!(model_duration(330_000), "5m30s");
        assert_eq!(go_duration(300_000), "5m0s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
        assert_eq!(go_duration(1_500), "1.5s");
    }

    /// Each file in `tests/conformance/` was run with Prometheus 2.42.0's `promtool test
    /// rules`; the verdicts below are the ones it gave (its exit status, and for
    /// `jobs_fail.test.yml` the four failures it printed, in the same order).
    #[test]
    fn conformance_files_get_promtools_verdicts() {
        for (file, failures) in [
            ("jobs_pass.test.yml", 0),   // promtool: SUCCESS
            ("no_interval.test.yml", 0), // promtool: SUCCESS
            ("notation.test.yml", 0),    // promtool: SUCCESS
            ("jobs_fail.test.yml", 4),   // promtool: FAILED, 4 failures
        ] {
            let outcome = run_file(&conformance().join(file), Semantics::Prometheus2_42).unwrap();
            assert_eq!(outcome.tests, 1, "{file}");
            assert_eq!(outcome.failures.len(), failures, "{file}: {outcome:?}");
        }
        let failed = run_file(
            &conformance().join("jobs_fail.test.yml"),
            Semantics::Prometheus2_42,
        )
        .unwrap();
        let heads: Vec<&str> = failed
            .failures
            .iter()
            .map(|f| f.lines().nth(1).unwrap_or(f))
            .collect();
        assert_eq!(
            heads,
            [
                "    alertname: JobDown, time: 3m, ",
                "    alertname: JobDown, time: 3m, ",
                "        exp: {} 3E-01",
                "        exp: nil",
            ]
        );
        assert!(failed.failures[0].starts_with("    name: wrong expectations,\n"));
        assert!(
            failed.failures[3].ends_with("got: {__name__=\"up\", instance=\"x\", job=\"a\"} 0E+00")
        );
    }
}
