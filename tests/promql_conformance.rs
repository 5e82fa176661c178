//! Prometheus's own PromQL test suite, run against ipfs-sentinel's engine.
//!
//! Owns the reading of the promqltest format (`load`, `clear`, `eval instant at`, `eval range
//! from ... to ... step ...`, `eval_fail`, `eval_ordered`, `eval_warn`, `eval_info`, `expect`
//! and `expected_fail_*` lines, the expanding series notation) and the verdict on each case,
//! judged as promqltest judges it (relative tolerance 1e-6, NaN equal to NaN, the stale marker
//! only to itself). The files under `tests/promqltest/v2.42.0` run with
//! `Semantics::Prometheus2_42`, those under `v3.5.0` with `Semantics::Prometheus3` and the
//! experimental functions on, as promqltest 3.5 turns them on.
//!
//! Cases over native histograms are skipped (the history holds floats). The test fails when a
//! case listed in `tests/promqltest/passing.txt` fails; `PROMQL_CONFORMANCE_WRITE=1` rewrites
//! that list and `docs/promql-conformance.md` from the run.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ipfs_sentinel::model::Semantics;
use ipfs_sentinel::rules::promql::{
    eval_range, is_stale, parse_with, EvalError, Evaluator, Labels, Queryable, RangeSeries, Value,
    NAME, STALE_NAN,
};
use promql_parser::label::Matcher;
use promql_parser::parser::{AtModifier, Expr};

/// The suite's relative tolerance (promqltest's `defaultEpsilon`).
const EPSILON: f64 = 0.000001;

/// Why a case was not run.
const NATIVE_HISTOGRAMS: &str = "native histograms: the history holds floats";

/// Why the cases of [`DELAYED_NAME_REMOVAL_CASES`] were not run.
const DELAYED_NAME_REMOVAL: &str = "promql-delayed-name-removal: experimental, off in a default Prometheus 3.5 (its test engine turns it on)";

/// The v3.5.0 cases whose expected result is that of delayed `__name__` removal
/// (`--enable-feature=promql-delayed-name-removal`), which promqltest 3.5's engine turns on
/// (`EnableDelayedNameRemoval: true` in `NewTestEngine`) and a default Prometheus 3.5 does not:
/// without it, the name is dropped where the function or operator runs, as here, and these
/// expressions give a duplicate-series error or keep a name the feature drops later.
const DELAYED_NAME_REMOVAL_CASES: &[&str] = &[
    "v3.5.0/name_label_dropping.test:51",
    "v3.5.0/name_label_dropping.test:56",
    "v3.5.0/name_label_dropping.test:61",
    "v3.5.0/name_label_dropping.test:66",
    "v3.5.0/name_label_dropping.test:80",
    "v3.5.0/type_and_unit.test:77",
    "v3.5.0/type_and_unit.test:92",
    "v3.5.0/type_and_unit.test:222",
    "v3.5.0/type_and_unit.test:237",
];

/// promqltest's float comparison (`almost.Equal` in 3.5, `almostEqual` in 2.42; they agree
/// except on the stale marker, which 3.5 equals only to itself).
fn almost_equal(a: f64, b: f64) -> bool {
    if is_stale(a) || is_stale(b) {
        return is_stale(a) && is_stale(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::MIN_POSITIVE;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < EPSILON * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

// ---------------------------------------------------------------------------------------------
// The format

/// One value of a series description: a number, or omitted (`_`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Float(f64),
    Omitted,
}

/// A series line: its labels, its values, and whether it has native histogram values.
#[derive(Debug, Clone, PartialEq)]
struct SeriesLine {
    labels: Labels,
    items: Vec<Item>,
    histogram: bool,
}

/// A Go/Prometheus number: decimal, hex, `Inf`, `NaN`, with a sign.
fn parse_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let v = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if lower == "nan" {
        f64::NAN
    } else if let Some(hex) = lower.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()? as f64
    } else if lower.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        lower.parse::<f64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// A duration as `model.ParseDuration` reads it (`1h30m`, `0`, `100ms`), in ms.
fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let mut total = 0i64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Reads a quoted string (`"..."`, `'...'` or `` `...` ``) at the start of `s`: its value and
/// the rest.
fn quoted(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next()?;
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((out, &s[1 + i + 1..]));
        }
        if c == '\\' && quote != '`' {
            let (_, e) = chars.next()?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'x' => {
                    let h: String = (0..2).filter_map(|_| chars.next().map(|p| p.1)).collect();
                    out.push(char::from(u8::from_str_radix(&h, 16).ok()?));
                }
                'u' => {
                    let h: String = (0..4).filter_map(|_| chars.next().map(|p| p.1)).collect();
                    out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Reads `name{label="value", ...}` at the start of a line: the labels and the rest.
fn parse_metric(line: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    let mut rest = line.trim_start();
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    if name_len > 0 {
        labels.insert(NAME.into(), rest[..name_len].into());
        rest = &rest[name_len..];
    }
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            inner = inner.trim_start().trim_start_matches(',').trim_start();
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (name, after) = if inner.starts_with(['"', '\'', '`']) {
                quoted(inner).ok_or_else(|| format!("bad label name in {line:?}"))?
            } else {
                let n = inner
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .ok_or_else(|| format!("bad labels in {line:?}"))?;
                (inner[..n].to_owned(), &inner[n..])
            };
            let after = after
                .trim_start()
                .strip_prefix('=')
                .ok_or_else(|| format!("expected = in {line:?}"))?
                .trim_start();
            let (value, after) =
                quoted(after).ok_or_else(|| format!("bad label value in {line:?}"))?;
            labels.insert(name, value);
            inner = after;
        }
    } else if name_len == 0 {
        return Err(format!("no metric in {line:?}"));
    }
    Ok((labels, rest))
}

/// Expands one value item: `_`, `_x3`, `stale`, `1`, `1x3`, `1+2x3`, `1-2x3`.
fn expand(item: &str, out: &mut Vec<Item>) -> Result<(), String> {
    let bad = || format!("bad series value {item:?}");
    if item == "_" {
        out.push(Item::Omitted);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| bad())?;
        out.extend(std::iter::repeat_n(Item::Omitted, n));
        return Ok(());
    }
    let value = |s: &str| {
        if s == "stale" {
            Some(STALE_NAN)
        } else {
            parse_number(s)
        }
    };
    // `x` followed by digits is always the repetition (`0x59` is 0 sixty times, not hex).
    let repeated = item.rsplit_once('x').is_some_and(|(head, n)| {
        !head.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    });
    if !repeated {
        out.push(Item::Float(value(item).ok_or_else(bad)?));
        return Ok(());
    }
    let (head, times) = item.rsplit_once('x').ok_or_else(bad)?;
    let times: u64 = times.parse().map_err(|_| bad())?;
    // `a+bxn` / `a-bxn`: the sign after the first character splits start and increment.
    let split = head
        .char_indices()
        .skip(1)
        .find(|&(i, c)| (c == '+' || c == '-') && !head[..i].ends_with(['e', 'E']))
        .map(|(i, _)| i);
    let (start, inc) = match split {
        Some(i) => (
            value(&head[..i]).ok_or_else(bad)?,
            parse_number(&head[i..]).ok_or_else(bad)?,
        ),
        None => (value(head).ok_or_else(bad)?, 0.0),
    };
    let mut v = start;
    for _ in 0..=times {
        out.push(Item::Float(v));
        v += inc;
    }
    Ok(())
}

/// A series line of a `load` block or an expected result.
fn parse_series(line: &str) -> Result<SeriesLine, String> {
    let (labels, rest) = parse_metric(line)?;
    let mut items = Vec::new();
    let histogram = rest.contains("{{");
    if !histogram {
        for word in rest.split_whitespace() {
            expand(word, &mut items)?;
        }
    }
    Ok(SeriesLine {
        labels,
        items,
        histogram,
    })
}

/// What an `eval` expects.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    /// A scalar.
    Scalar(f64),
    /// Series (one value each for an instant query).
    Series(Vec<SeriesLine>),
}

/// The kind of query.
#[derive(Debug, Clone, PartialEq)]
enum Query {
    Instant {
        at_ms: i64,
    },
    Range {
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    },
}

/// One `eval` command.
#[derive(Debug, Clone)]
struct Case {
    line: usize,
    expr: String,
    query: Query,
    fail: bool,
    ordered: bool,
    /// `eval_warn`, `eval_info` or `expect warn|info` lines: annotations this engine does not
    /// produce, so they are not checked.
    annotations: bool,
    fail_message: Option<String>,
    fail_regexp: Option<regex::Regex>,
    expected: Expected,
}

/// A command of a test file.
#[derive(Debug)]
enum Command {
    Clear,
    Load {
        step_ms: i64,
        series: Vec<SeriesLine>,
        native_histograms: bool,
    },
    Eval(Box<Case>),
}

fn parse_file(text: &str) -> Result<Vec<Command>, String> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                ""
            } else {
                l
            }
        })
        .collect();
    let load = regex::Regex::new(r"^load(?:_(with_nhcb))?\s+(.+?)$").unwrap();
    let instant = regex::Regex::new(
        r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$",
    )
    .unwrap();
    let range = regex::Regex::new(
        r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
    )
    .unwrap();
    let expect = regex::Regex::new(
        r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$",
    )
    .unwrap();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let at = |what: String| format!("line {}: {what}", i + 1);
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l.split_whitespace().next().unwrap_or("").to_lowercase();
        if word == "clear" {
            out.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let caps = load
                .captures(l)
                .ok_or_else(|| at(format!("bad load {l:?}")))?;
            let step_ms = parse_duration_ms(&caps[2]).ok_or_else(|| at("bad load step".into()))?;
            let mut series = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                series.push(parse_series(lines[i]).map_err(|e| format!("line {}: {e}", i + 1))?);
                i += 1;
            }
            out.push(Command::Load {
                step_ms,
                native_histograms: caps.get(1).is_some(),
                series,
            });
        } else if word.starts_with("eval") {
            let line = i + 1;
            let (modifier, expr, query) = if let Some(c) = instant.captures(l) {
                let at_ms = match c.get(2) {
                    Some(t) => parse_duration_ms(t.as_str())
                        .ok_or_else(|| at(format!("bad time {:?}", t.as_str())))?,
                    None => 0,
                };
                (
                    c.get(1).map(|m| m.as_str().to_owned()),
                    c[3].to_owned(),
                    Query::Instant { at_ms },
                )
            } else if let Some(c) = range.captures(l) {
                let d = |s: &str| parse_duration_ms(s).ok_or_else(|| at(format!("bad time {s:?}")));
                (
                    c.get(1).map(|m| m.as_str().to_owned()),
                    c[5].to_owned(),
                    Query::Range {
                        start_ms: d(&c[2])?,
                        end_ms: d(&c[3])?,
                        step_ms: d(&c[4])?,
                    },
                )
            } else {
                return Err(at(format!("bad eval {l:?}")));
            };
            let mut case = Case {
                line,
                expr,
                query,
                fail: modifier.as_deref() == Some("fail"),
                ordered: modifier.as_deref() == Some("ordered"),
                annotations: matches!(modifier.as_deref(), Some("warn" | "info")),
                fail_message: None,
                fail_regexp: None,
                expected: Expected::Series(Vec::new()),
            };
            let mut series = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let d = lines[i];
                if let Some(m) = d.strip_prefix("expected_fail_message") {
                    case.fail_message = Some(m.trim().to_owned());
                } else if let Some(r) = d.strip_prefix("expected_fail_regexp") {
                    case.fail_regexp = Some(
                        regex::Regex::new(r.trim()).map_err(|e| format!("line {}: {e}", i + 1))?,
                    );
                } else if d.split(' ').next() == Some("expect") {
                    let c = expect
                        .captures(d)
                        .ok_or_else(|| format!("line {}: bad expect {d:?}", i + 1))?;
                    match &c[1] {
                        "ordered" => case.ordered = true,
                        "fail" => {
                            case.fail = true;
                            match c.get(2).map(|m| m.as_str()) {
                                Some("msg") => case.fail_message = Some(c[3].trim().to_owned()),
                                Some(_) => {
                                    case.fail_regexp = Some(
                                        regex::Regex::new(c[3].trim())
                                            .map_err(|e| format!("line {}: {e}", i + 1))?,
                                    )
                                }
                                None => {}
                            }
                        }
                        "warn" | "info" => case.annotations = true,
                        _ => {}
                    }
                } else if let Some(v) = parse_number(d) {
                    case.expected = Expected::Scalar(v);
                } else {
                    series.push(parse_series(d).map_err(|e| format!("line {}: {e}", i + 1))?);
                }
                i += 1;
            }
            if !matches!(case.expected, Expected::Scalar(_)) {
                case.expected = Expected::Series(series);
            }
            out.push(Command::Eval(Box::new(case)));
        } else {
            return Err(at(format!("unknown command {l:?}")));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The store

/// The loaded series; remembers whether an evaluation touched a native histogram series.
#[derive(Default)]
struct Store {
    series: BTreeMap<Labels, (Vec<(i64, f64)>, bool)>,
    touched_histograms: Cell<bool>,
}

impl Store {
    fn load(&mut self, step_ms: i64, lines: &[SeriesLine], native_histograms: bool) {
        if native_histograms {
            // `load_with_nhcb` also makes a native histogram series of each classic one, named
            // without `_bucket`, `_sum` or `_count` and without `le`: stand-ins, so a case that
            // selects one is known to need native histograms.
            for l in lines {
                let Some(name) = l.labels.get(NAME) else {
                    continue;
                };
                let Some(base) = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                else {
                    continue;
                };
                let mut labels = l.labels.clone();
                labels.remove("le");
                labels.insert(NAME.into(), base.to_owned());
                self.series.entry(labels).or_default().1 = true;
            }
        }
        for l in lines {
            let entry = self.series.entry(l.labels.clone()).or_default();
            // The classic series stay floats (promqltest's loadCmd.append stores them as such
            // beside the converted native histograms, which the stand-ins above mark).
            entry.1 |= l.histogram;
            for (i, item) in l.items.iter().enumerate() {
                if let Item::Float(v) = item {
                    let t = i as i64 * step_ms;
                    match entry.0.binary_search_by_key(&t, |p| p.0) {
                        Ok(at) => entry.0[at].1 = *v,
                        Err(at) => entry.0.insert(at, (t, *v)),
                    }
                }
            }
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
        let mut out = Vec::new();
        for (labels, (points, histogram)) in &self.series {
            if !matchers
                .iter()
                .all(|m| m.is_match(labels.get(&m.name).map_or("", String::as_str)))
            {
                continue;
            }
            if *histogram {
                self.touched_histograms.set(true);
            }
            out.push(RangeSeries {
                labels: labels.clone(),
                points: points
                    .iter()
                    .copied()
                    .filter(|p| p.0 >= start_ms && p.0 <= end_ms)
                    .collect(),
            });
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Running

/// A case's verdict.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Passed,
    Failed(String),
    Skipped(&'static str),
}

fn render(labels: &Labels) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Compares an instant result with what the case expects.
fn compare_instant(case: &Case, got: &Value) -> Result<(), String> {
    match (&case.expected, got) {
        (Expected::Scalar(want), Value::Scalar(v)) => {
            if almost_equal(*want, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {want} but got {v}"))
            }
        }
        (Expected::Series(want), Value::Vector(samples)) => {
            let expected: BTreeMap<&Labels, (usize, &SeriesLine)> = want
                .iter()
                .enumerate()
                .map(|(i, s)| (&s.labels, (i, s)))
                .collect();
            let mut seen = BTreeSet::new();
            for (pos, s) in samples.iter().enumerate() {
                let Some((i, line)) = expected.get(&s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result, has value {}",
                        render(&s.labels),
                        s.value
                    ));
                };
                if case.ordered && *i != pos {
                    return Err(format!(
                        "expected metric {} at position {} but was at {}",
                        render(&s.labels),
                        i + 1,
                        pos + 1
                    ));
                }
                let Some(Item::Float(w)) = line.items.first() else {
                    return Err(format!("no expected value for {}", render(&s.labels)));
                };
                if !almost_equal(*w, s.value) {
                    return Err(format!(
                        "expected {w} for {} but got {}",
                        render(&s.labels),
                        s.value
                    ));
                }
                seen.insert(&s.labels);
            }
            for w in want {
                if !seen.contains(&w.labels) {
                    return Err(format!("expected metric {} not found", render(&w.labels)));
                }
            }
            Ok(())
        }
        (Expected::Scalar(_), other) => Err(format!("expected a scalar, got {other:?}")),
        (Expected::Series(_), other) => Err(format!("expected a vector, got {other:?}")),
    }
}

/// Compares a range result with what the case expects.
fn compare_range(
    case: &Case,
    got: &[RangeSeries],
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<(), String> {
    let want: Vec<SeriesLine> = match &case.expected {
        Expected::Series(s) => s.clone(),
        Expected::Scalar(v) => {
            return Err(format!("expected scalar {v}, but got a matrix"));
        }
    };
    for w in got.windows(2) {
        if w[0].labels > w[1].labels {
            return Err("matrix results should always be sorted by labels".into());
        }
    }
    let expected: BTreeMap<&Labels, &SeriesLine> = want.iter().map(|s| (&s.labels, s)).collect();
    for s in got {
        let Some(line) = expected.get(&s.labels) else {
            return Err(format!(
                "unexpected metric {} in result, has {:?}",
                render(&s.labels),
                s.points
            ));
        };
        let mut points = Vec::new();
        for (i, item) in line.items.iter().enumerate() {
            let t = start_ms + i as i64 * step_ms;
            if t > end_ms {
                return Err(format!(
                    "expected {} points for {}, but query time range cannot return this many points",
                    line.items.len(),
                    render(&s.labels)
                ));
            }
            if let Item::Float(v) = item {
                points.push((t, *v));
            }
        }
        if points.len() != s.points.len() {
            return Err(format!(
                "expected {} points for {}, but got {:?}",
                points.len(),
                render(&s.labels),
                s.points
            ));
        }
        for (w, g) in points.iter().zip(&s.points) {
            if w.0 != g.0 || !almost_equal(w.1, g.1) {
                return Err(format!(
                    "expected {w:?} for {} but got {g:?} (result has {:?})",
                    render(&s.labels),
                    s.points
                ));
            }
        }
    }
    for w in &want {
        if !got.iter().any(|s| s.labels == w.labels) {
            return Err(format!("expected metric {} not found", render(&w.labels)));
        }
    }
    Ok(())
}

fn check_failure(case: &Case, err: &str) -> Result<(), String> {
    if let Some(m) = &case.fail_message {
        if m != err {
            return Err(format!("expected error {m:?}, but got: {err}"));
        }
    }
    if let Some(r) = &case.fail_regexp {
        if !r.is_match(err) {
            return Err(format!("expected error matching {r}, but got: {err}"));
        }
    }
    Ok(())
}

/// Functions defined over native histograms only.
const HISTOGRAM_FUNCTIONS: &[&str] = &[
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_fraction",
    "histogram_stddev",
    "histogram_stdvar",
];

/// Whether `expr` calls `name(`.
fn calls(expr: &str, name: &str) -> bool {
    expr.match_indices(name).any(|(i, _)| {
        let before = expr[..i].chars().next_back();
        let after = expr[i + name.len()..].trim_start().chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') && after == Some('(')
    })
}

fn run_case(store: &Store, case: &Case, semantics: Semantics) -> Verdict {
    if HISTOGRAM_FUNCTIONS.iter().any(|f| calls(&case.expr, f)) {
        return Verdict::Skipped(NATIVE_HISTOGRAMS);
    }
    let expects_histograms =
        matches!(&case.expected, Expected::Series(s) if s.iter().any(|l| l.histogram));
    if expects_histograms {
        return Verdict::Skipped(NATIVE_HISTOGRAMS);
    }
    store.touched_histograms.set(false);
    let outcome = evaluate(store, case, semantics);
    if store.touched_histograms.get() {
        return Verdict::Skipped(NATIVE_HISTOGRAMS);
    }
    match outcome {
        Ok(()) => Verdict::Passed,
        Err(e) => Verdict::Failed(e),
    }
}

/// Functions whose result changes with the evaluation time even when their arguments do not
/// (Prometheus's `AtModifierUnsafeFunctions`).
const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

fn at_time(ms: i64) -> AtModifier {
    let d = std::time::Duration::from_millis(ms.unsigned_abs());
    AtModifier::At(if ms >= 0 {
        std::time::UNIX_EPOCH + d
    } else {
        std::time::UNIX_EPOCH - d
    })
}

/// Pins `@ ms` on every selector and subquery that has no `@`, leaving the inside of
/// subqueries alone, as promqltest does; false when the expression calls a function that is
/// unsafe with `@` (then promqltest skips the pinned runs).
fn pin_at(e: &mut Expr, ms: i64) -> bool {
    match e {
        Expr::VectorSelector(vs) => {
            vs.at.get_or_insert_with(|| at_time(ms));
            true
        }
        Expr::MatrixSelector(m) => {
            m.vs.at.get_or_insert_with(|| at_time(ms));
            true
        }
        Expr::Subquery(sq) => {
            if sq.at.is_none() {
                sq.at = Some(at_time(ms));
            }
            // promqltest leaves the inside of a pinned subquery as it is, but still looks
            // for unsafe functions there.
            unsafe_free(&sq.expr)
        }
        Expr::Aggregate(a) => {
            let mut ok = pin_at(&mut a.expr, ms);
            if let Some(p) = a.param.as_deref_mut() {
                ok &= pin_at(p, ms);
            }
            ok
        }
        Expr::Unary(u) => pin_at(&mut u.expr, ms),
        Expr::Paren(p) => pin_at(&mut p.expr, ms),
        Expr::Binary(b) => pin_at(&mut b.lhs, ms) & pin_at(&mut b.rhs, ms),
        Expr::Call(c) => {
            let mut ok = !AT_UNSAFE.contains(&c.func.name);
            for a in &mut c.args.args {
                ok &= pin_at(a, ms);
            }
            ok
        }
        _ => true,
    }
}

/// Whether `e` calls no function unsafe with `@`.
fn unsafe_free(e: &Expr) -> bool {
    let mut copy = e.clone();
    pin_at(&mut copy, 0)
}

/// Runs one instant query (the case's own, or one with `@` pinned) and compares it, and the
/// same query in range mode around the instant, with what the case expects.
fn instant_run(
    store: &Store,
    case: &Case,
    expr: &Expr,
    at_ms: i64,
    semantics: Semantics,
) -> Result<(), String> {
    let got = Evaluator::new(store, at_ms)
        .with_semantics(semantics)
        .eval(expr);
    let got = match (got, case.fail) {
        (Err(e), true) => return check_failure(case, &e.0),
        (Err(e), false) => return Err(format!("error evaluating at {at_ms} ms: {e}")),
        (Ok(_), true) => return Err("expected an error, got none".into()),
        (Ok(v), false) => v,
    };
    compare_instant(case, &got).map_err(|e| format!("at {at_ms} ms: {e}"))?;
    if case.ordered {
        return Ok(());
    }
    // As promqltest does: the same query in range mode around the instant must agree.
    let m = eval_range(
        store,
        expr,
        at_ms - 60_000,
        at_ms + 60_000,
        60_000,
        semantics,
    )
    .map_err(|e| format!("error in range mode: {e}"))?;
    let middle: Value = if matches!(got, Value::Scalar(_)) {
        Value::Scalar(
            m.iter()
                .flat_map(|s| s.points.iter())
                .find(|p| p.0 == at_ms)
                .map_or(f64::NAN, |p| p.1),
        )
    } else {
        Value::Vector(
            m.iter()
                .filter_map(|s| {
                    let p = s.points.iter().find(|p| p.0 == at_ms)?;
                    Some(ipfs_sentinel::rules::promql::Sample {
                        labels: s.labels.clone(),
                        value: p.1,
                        at_ms,
                    })
                })
                .collect(),
        )
    };
    compare_instant(case, &middle).map_err(|e| format!("range mode at {at_ms} ms: {e}"))
}

fn evaluate(store: &Store, case: &Case, semantics: Semantics) -> Result<(), String> {
    let parsed = parse_with(&case.expr, semantics, semantics == Semantics::Prometheus3);
    let expr = match parsed {
        Ok(e) => e,
        Err(e) => {
            return if case.fail {
                check_failure(case, &e.0)
            } else {
                Err(format!("parse error: {e}"))
            }
        }
    };
    match case.query {
        Query::Instant { at_ms } => {
            instant_run(store, case, &expr, at_ms, semantics)?;
            // promqltest's extra runs: `@ at` pinned on every selector, evaluated at other
            // times, must give the same result.
            let mut pinned = expr.clone();
            if !pin_at(&mut pinned, at_ms) {
                return Ok(());
            }
            let times = if at_ms == 0 {
                vec![-1000, 0, 1000]
            } else {
                vec![-10 * at_ms, 0, at_ms / 5, at_ms, 10 * at_ms]
            };
            for t in times {
                instant_run(store, case, &pinned, t, semantics)
                    .map_err(|e| format!("with @ {at_ms} ms pinned: {e}"))?;
            }
            Ok(())
        }
        Query::Range {
            start_ms,
            end_ms,
            step_ms,
        } => match (
            eval_range(store, &expr, start_ms, end_ms, step_ms, semantics),
            case.fail,
        ) {
            (Err(e), true) => check_failure(case, &e.to_string()),
            (Err(e), false) => Err(format!("error evaluating: {e}")),
            (Ok(_), true) => Err("expected an error, got none".into()),
            (Ok(m), false) => compare_range(case, &m, start_ms, end_ms, step_ms),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The table

/// The verdicts on one file.
struct FileReport {
    /// `v3.5.0/functions.test`.
    name: String,
    semantics: Semantics,
    /// (case id, expression, verdict).
    cases: Vec<(String, String, Verdict)>,
}

fn run_file(dir: &str, path: &Path, semantics: Semantics) -> FileReport {
    let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
    let text = std::fs::read_to_string(path).unwrap();
    let commands = parse_file(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut store = Store::default();
    let mut cases = Vec::new();
    for c in commands {
        match c {
            Command::Clear => store = Store::default(),
            Command::Load {
                step_ms,
                series,
                native_histograms,
            } => store.load(step_ms, &series, native_histograms),
            Command::Eval(case) => {
                let id = format!("{name}:{}", case.line);
                let verdict = if DELAYED_NAME_REMOVAL_CASES.contains(&id.as_str()) {
                    Verdict::Skipped(DELAYED_NAME_REMOVAL)
                } else {
                    run_case(&store, &case, semantics)
                };
                cases.push((id, case.expr.clone(), verdict));
            }
        }
    }
    FileReport {
        name,
        semantics,
        cases,
    }
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promqltest")
}

fn run_suite() -> Vec<FileReport> {
    let mut reports = Vec::new();
    for (dir, semantics) in [
        ("v2.42.0", Semantics::Prometheus2_42),
        ("v3.5.0", Semantics::Prometheus3),
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(suite_dir().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "test"))
            .collect();
        files.sort();
        for f in files {
            reports.push(run_file(dir, &f, semantics));
        }
    }
    reports
}

fn table(reports: &[FileReport]) -> String {
    let mut out = String::new();
    let mut current = None;
    let mut totals = (0, 0, 0, 0);
    let flush = |out: &mut String, totals: &mut (usize, usize, usize, usize)| {
        let (c, p, f, s) = *totals;
        let _ = writeln!(
            out,
            "| **all** | **{c}** | **{p}** | **{f}** | **{s}** | |\n"
        );
        *totals = (0, 0, 0, 0);
    };
    for r in reports {
        if current != Some(r.semantics) {
            if current.is_some() {
                flush(&mut out, &mut totals);
            }
            current = Some(r.semantics);
            let _ = writeln!(
                out,
                "### `{}` files, run with `{}`\n\n| file | cases | passed | failed | skipped | skipped because |\n|---|---:|---:|---:|---:|---|",
                r.name.split('/').next().unwrap_or(""),
                r.semantics
            );
        }
        let passed = r.cases.iter().filter(|c| c.2 == Verdict::Passed).count();
        let failed = r
            .cases
            .iter()
            .filter(|c| matches!(c.2, Verdict::Failed(_)))
            .count();
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &r.cases {
            if let Verdict::Skipped(why) = c.2 {
                *reasons.entry(why).or_default() += 1;
            }
        }
        let skipped: usize = reasons.values().sum();
        let why: Vec<String> = reasons.iter().map(|(w, n)| format!("{w} ({n})")).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {passed} | {failed} | {skipped} | {} |",
            r.name.split('/').nth(1).unwrap_or(""),
            r.cases.len(),
            why.join("; ")
        );
        totals.0 += r.cases.len();
        totals.1 += passed;
        totals.2 += failed;
        totals.3 += skipped;
    }
    flush(&mut out, &mut totals);
    out
}

/// The failing cases counted by cause: a function the engine lacks, or anything else.
fn causes(reports: &[FileReport]) -> String {
    let mut by_cause: BTreeMap<String, usize> = BTreeMap::new();
    for r in reports {
        for (_, _, v) in &r.cases {
            if let Verdict::Failed(why) = v {
                let cause = match why.find("function ") {
                    Some(i) if why.contains("is not supported") => {
                        let name: String = why[i + 9..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        format!("{} `{name}` not implemented", r.semantics)
                    }
                    _ if why.starts_with("parse error") => format!("{} parse error", r.semantics),
                    _ => format!("{} wrong result or error", r.semantics),
                };
                *by_cause.entry(cause).or_default() += 1;
            }
        }
    }
    let mut out = String::from("| cause | cases |\n|---|---:|\n");
    for (cause, n) in by_cause {
        let _ = writeln!(out, "| {cause} | {n} |");
    }
    out
}

fn failures(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for r in reports {
        for (id, expr, v) in &r.cases {
            if let Verdict::Failed(why) = v {
                let why: String = why.chars().take(300).collect();
                let _ = writeln!(out, "- `{id}` `{expr}`: {why}");
            }
        }
    }
    out
}

const DOC_HEAD: &str = "# PromQL conformance

Prometheus's own PromQL test suite (its `promqltest` files at tags v2.42.0 and v3.5.0, copied
under `tests/promqltest/` with Prometheus's LICENSE and a NOTICE) run against ipfs-sentinel's
engine by `tests/promql_conformance.rs`: the v2.42.0 files with `--promql prometheus-2.42`
semantics, the v3.5.0 files with `prometheus-3` and the experimental functions on (promqltest
3.5 turns them on). A case passes when the engine's result matches the expected one with the
suite's own tolerance (relative 1e-6, NaN equal to NaN, the stale marker only to itself), and,
for an instant query, the same expression evaluated as a range query around the instant gives
the same result (as promqltest checks). `eval_fail` cases pass when the engine refuses the
expression (with the expected message, when the case gives one).

Each instant query is also run as promqltest runs it: with `@ <its time>` pinned on every
selector and subquery and evaluated at other times (unless it calls a function that depends on
the evaluation time), and each of those in range mode too.

Not checked: annotations (`eval_warn`, `eval_info`, `expect warn|info`: the engine produces no
warnings or info notes, so those cases are judged on their result alone).

Skipped besides native histograms: Prometheus 3.5's test engine turns on delayed `__name__`
removal (`promql-delayed-name-removal`, experimental and off in a default 3.5), which this engine
does not do (it drops the name where a default 3.5 drops it). The nine cases whose expected result
is the feature's (in `name_label_dropping.test` and the set-operator cases of
`type_and_unit.test`) are listed in the runner and skipped with that reason.

3.5's experimental functions (`double_exponential_smoothing`, `limitk`, `sort_by_label`, ...)
are run because promqltest 3.5 turns them on; in the sentinel's `prometheus-3` mode they are
refused with an error naming the function, as a default Prometheus 3.5 refuses them.

One case fails, `functions.test:477`: `label_replace` with the destination label written as the
byte escape `\\xff` must fail, because the byte 0xff alone is not UTF-8 and so no label name. promql-parser reads the escape as the
character `ÿ` (U+00FF), a valid name in 3.x, and strings here are UTF-8 text that cannot hold the
lone byte Prometheus keeps.

Regenerate with `PROMQL_CONFORMANCE_WRITE=1 cargo test --test promql_conformance`; that also
rewrites `tests/promqltest/passing.txt`, the cases a later run must not fail.

";

#[test]
fn prometheus_promql_suite() {
    let reports = run_suite();
    let table = table(&reports);
    println!("{table}");
    let baseline_path = suite_dir().join("passing.txt");
    let passing: BTreeSet<String> = reports
        .iter()
        .flat_map(|r| r.cases.iter())
        .filter(|c| c.2 == Verdict::Passed)
        .map(|c| c.0.clone())
        .collect();
    if std::env::var_os("PROMQL_CONFORMANCE_WRITE").is_some() {
        let mut list: String = passing.iter().map(|id| format!("{id}\n")).collect();
        if list.is_empty() {
            list.push('\n');
        }
        std::fs::write(&baseline_path, list).unwrap();
        let doc = format!(
            "{DOC_HEAD}## Results\n\n{table}## Failing cases by cause\n\n{}\n## Failing cases\n\n{}",
            causes(&reports),
            failures(&reports)
        );
        std::fs::write(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/promql-conformance.md"),
            doc,
        )
        .unwrap();
    }
    let baseline = std::fs::read_to_string(&baseline_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with PROMQL_CONFORMANCE_WRITE=1 cargo test --test promql_conformance",
            baseline_path.display()
        )
    });
    let verdicts: BTreeMap<&str, &Verdict> = reports
        .iter()
        .flat_map(|r| r.cases.iter())
        .map(|c| (c.0.as_str(), &c.2))
        .collect();
    let regressed: Vec<String> = baseline
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|id| !passing.contains(*id))
        .map(|id| format!("{id}: {:?}", verdicts.get(id)))
        .collect();
    assert!(
        regressed.is_empty(),
        "{} case(s) listed in tests/promqltest/passing.txt no longer pass:\n{}",
        regressed.len(),
        regressed.join("\n")
    );
}

#[test]
fn series_notation_expands_as_promqltest_does() {
    let s = parse_series(r#"m{a="x y", b='q'} 1+2x2 _ _x2 stale 5x1 -1-1x1 Inf"#).unwrap();
    assert_eq!(s.labels.get(NAME).map(String::as_str), Some("m"));
    assert_eq!(s.labels.get("a").map(String::as_str), Some("x y"));
    let f = |v: f64| Item::Float(v);
    assert_eq!(
        s.items[..6],
        [
            f(1.0),
            f(3.0),
            f(5.0),
            Item::Omitted,
            Item::Omitted,
            Item::Omitted
        ]
    );
    assert_eq!(s.items[7..9], [f(5.0), f(5.0)]);
    assert!(matches!(s.items[6], Item::Float(v) if is_stale(v)));
    assert_eq!(s.items[9..], [f(-1.0), f(-2.0), f(f64::INFINITY)]);
    assert!(parse_series("m 1+x").is_err());
    let zeros = parse_series("{} 0x59 60").unwrap();
    assert_eq!(zeros.items.len(), 61);
    assert_eq!(zeros.items[59..], [f(0.0), f(60.0)]);
    assert!(
        parse_series(r#"{__name__="h"} {{schema:0 sum:1 count:1}}"#)
            .unwrap()
            .histogram
    );
}

#[test]
fn tolerance_is_the_suites() {
    assert!(almost_equal(1.0, 1.0 + 1e-7));
    assert!(!almost_equal(1.0, 1.0 + 1e-5));
    assert!(almost_equal(f64::NAN, f64::NAN));
    assert!(!almost_equal(STALE_NAN, f64::NAN));
    assert!(!almost_equal(0.0, 1e-300));
    assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
    assert_eq!(parse_duration_ms("0"), Some(0));
    assert_eq!(parse_duration_ms("x"), None);
}

#[test]
fn a_wrong_expectation_fails() {
    let commands = parse_file("load 1m\n  m 1 2 3\n\neval instant at 2m m\n  m 4\n").unwrap();
    let mut store = Store::default();
    let Command::Load {
        step_ms, series, ..
    } = &commands[0]
    else {
        panic!()
    };
    store.load(*step_ms, series, false);
    let Command::Eval(case) = &commands[1] else {
        panic!()
    };
    assert!(matches!(
        run_case(&store, case, Semantics::Prometheus3),
        Verdict::Failed(_)
    ));
}

#[test]
fn at_is_pinned_as_promqltest_pins_it() {
    let mut e =
        promql_parser::parser::parse("sum(rate(x[5m])) + sum_over_time(y[10m:1m])").unwrap();
    assert!(pin_at(&mut e, 60_000));
    let text = e.to_string();
    assert!(text.contains("x[5m] @ 60"), "{text}");
    assert!(text.contains("[10m:1m] @ 60"), "{text}");
    assert!(
        !text.contains("y @"),
        "the inside of a subquery stays: {text}"
    );
    let mut unsafe_call = promql_parser::parser::parse("timestamp(x)").unwrap();
    assert!(!pin_at(&mut unsafe_call, 60_000));
}
