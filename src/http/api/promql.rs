//! The PromQL query API: `/api/v1/query` and `/api/v1/query_range` evaluate any expression
//! the rule engine evaluates, over the local history, and answer in Prometheus 2.42's JSON:
//! `resultType` vector, matrix, scalar or string, `[<seconds>, "<value>"]` points, and its
//! errors (`bad_data` 400 for a bad parameter or expression, `execution` 422 when evaluation
//! fails, `timeout` 503 past the query's `timeout`).
//!
//! Owns evaluating a request and writing the answer's bytes; parameters are read by
//! [`crate::history::query`], the evaluation is [`crate::rules::promql`]'s, the JSON pieces
//! [`crate::history::export`]'s. Pure apart from the lock: the handlers in [`super`] give it the
//! parameters, the history and the time. The history's lock is held for one evaluation step at
//! a time, so the recorder can append between steps of a long range query.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use promql_parser::label::Matcher;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::Expr;

use crate::history::export::{go_json_string, prometheus_timestamp};
use crate::history::query::{InstantQuery, RangeQuery};
use crate::history::recorder::{read, SharedHistory};
use crate::history::History;
use crate::model::Semantics;
use crate::number::api_value;
use crate::rules::promql::{self, EvalError, Evaluator, Labels, Queryable, RangeSeries, Value};

/// Prometheus's `--query.max-samples` default: a range query may answer this many points.
pub const MAX_POINTS: usize = 50_000_000;

/// Prometheus's kinds of API error (`errorType`), each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// A parameter or the expression is wrong: 400.
    BadData,
    /// Evaluation failed: 422.
    Execution,
    /// The query ran past its timeout: 503.
    Timeout,
}

impl ErrorType {
    /// The `errorType` text.
    pub fn name(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
        }
    }

    /// The HTTP status Prometheus answers it with.
    pub fn status(self) -> u16 {
        match self {
            ErrorType::BadData => 400,
            ErrorType::Execution => 422,
            ErrorType::Timeout => 503,
        }
    }
}

/// Why a query got no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// Which kind, for `errorType` and the status.
    pub kind: ErrorType,
    /// The `error` text.
    pub message: String,
}

impl QueryError {
    fn bad_data(message: impl Into<String>) -> QueryError {
        QueryError {
            kind: ErrorType::BadData,
            message: message.into(),
        }
    }

    fn execution(e: EvalError) -> QueryError {
        QueryError {
            kind: ErrorType::Execution,
            message: e.0,
        }
    }

    fn timeout() -> QueryError {
        QueryError {
            kind: ErrorType::Timeout,
            message: "query timed out in expression evaluation".into(),
        }
    }
}

/// An HTTP answer: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body, exactly as Prometheus would write it.
    pub body: String,
}

impl Answer {
    fn of(result: Result<String, QueryError>) -> Answer {
        match result {
            Ok(data) => Answer {
                status: 200,
                body: format!("{{\"status\":\"success\",\"data\":{data}}}"),
            },
            Err(e) => Answer {
                status: e.kind.status(),
                body: format!(
                    "{{\"status\":\"error\",\"errorType\":\"{}\",\"error\":{}}}",
                    e.kind.name(),
                    go_json_string(&e.message)
                ),
            },
        }
    }
}

/// Parses and checks an expression as a rule's is checked.
fn parse(text: &str, semantics: Semantics) -> Result<Expr, String> {
    let expr = promql::parse_as(text, semantics).map_err(|e| e.0)?;
    promql::check_supported(&expr).map_err(|e| e.0)?;
    Ok(expr)
}

/// `/api/v1/query`: `params` as the request gave them, `now_ms` the default `time`.
/// Evaluated with `semantics` over a read view of the history, with no lock held.
pub fn instant(
    history: &SharedHistory,
    params: &[(String, String)],
    now_ms: i64,
    semantics: Semantics,
) -> Answer {
    Answer::of(run_instant(history, params, now_ms, semantics))
}

fn run_instant(
    history: &SharedHistory,
    params: &[(String, String)],
    now_ms: i64,
    semantics: Semantics,
) -> Result<String, QueryError> {
    let begun = Instant::now();
    let q = InstantQuery::read(params, now_ms).map_err(|e| QueryError::bad_data(e.0))?;
    let expr = parse(&q.query, semantics)
        .map_err(|e| QueryError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    let view = read(history).view();
    let value = Evaluator::new(&view, q.at_ms)
        .with_semantics(semantics)
        .eval(&expr)
        .map_err(QueryError::execution)?;
    if begun.elapsed() > timeout(q.timeout_ms) {
        return Err(QueryError::timeout());
    }
    let t = q.at_ms;
    let mut out = String::new();
    match value {
        Value::Scalar(v) => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            point(&mut out, t, &api_value(v));
        }
        Value::String(s) => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            out.push_str(&prometheus_timestamp(t));
            out.push(',');
            out.push_str(&go_json_string(&s));
            out.push(']');
        }
        Value::Vector(samples) => {
            promql::check_unique(&samples).map_err(QueryError::execution)?;
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                labels(&mut out, &s.labels);
                out.push_str(",\"value\":");
                point(&mut out, t, &api_value(s.value));
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                matrix_series(&mut out, &s.labels, &s.points);
            }
            out.push(']');
        }
    }
    out.push('}');
    Ok(out)
}

/// `/api/v1/query_range`: `params` as the request gave them.
/// Evaluated with `semantics` over a read view of the history, with no lock held.
pub fn range(history: &SharedHistory, params: &[(String, String)], semantics: Semantics) -> Answer {
    Answer::of(run_range(history, params, semantics))
}

fn run_range(
    history: &SharedHistory,
    params: &[(String, String)],
    semantics: Semantics,
) -> Result<String, QueryError> {
    let begun = Instant::now();
    let q = RangeQuery::read(params).map_err(|e| QueryError::bad_data(e.0))?;
    let expr = parse(&q.query, semantics).map_err(QueryError::bad_data)?;
    let kind = expr.value_type();
    if !matches!(kind, ValueType::Vector | ValueType::Scalar) {
        let documented = match kind {
            ValueType::Matrix => "range vector",
            _ => "string",
        };
        return Err(QueryError::bad_data(format!(
            "invalid expression type \"{documented}\" for range query, must be Scalar or instant Vector"
        )));
    }
    let limit = timeout(q.timeout_ms);
    let reads = Reads::new(q.end_ms);
    // Sorted by labels as Prometheus sorts a range query's matrix (BTreeMap order is its
    // labels.Compare: name, then value, pair by pair, the shorter set first).
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let mut total = 0usize;
    let view = read(history).view();
    for t in q.steps() {
        if begun.elapsed() > limit {
            return Err(QueryError::timeout());
        }
        let source = StepSource {
            history: &view,
            reads: &reads,
            at_ms: t,
        };
        let value = Evaluator::new(&source, t)
            .with_semantics(semantics)
            .with_query_range(q.start_ms, q.end_ms)
            .eval(&expr)
            .map_err(QueryError::execution)?;
        match value {
            Value::Scalar(v) => {
                series.entry(Labels::new()).or_default().push((t, v));
                total += 1;
            }
            Value::Vector(samples) => {
                promql::check_unique(&samples).map_err(QueryError::execution)?;
                total += samples.len();
                for s in samples {
                    series.entry(s.labels).or_default().push((t, s.value));
                }
            }
            other => {
                return Err(QueryError::execution(EvalError(format!(
                    "a range query's steps must be instant vectors or scalars, got {}",
                    promql::type_name(&other)
                ))))
            }
        }
        if total > MAX_POINTS {
            return Err(QueryError::execution(EvalError(
                "query processing would load too many samples into memory in query execution"
                    .into(),
            )));
        }
    }
    if begun.elapsed() > limit {
        return Err(QueryError::timeout());
    }
    let mut out = String::from("{\"resultType\":\"matrix\",\"result\":[");
    for (i, (l, points)) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        matrix_series(&mut out, l, points);
    }
    out.push_str("]}");
    Ok(out)
}

fn timeout(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0).unsigned_abs())
}

/// `[<seconds>,"<value>"]`.
fn point(out: &mut String, t: i64, value: &str) {
    let _ = write!(out, "[{},\"{value}\"]", prometheus_timestamp(t));
}

/// A label set as a JSON object, in label order.
fn labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&go_json_string(k));
        out.push(':');
        out.push_str(&go_json_string(v));
    }
    out.push('}');
}

/// `{"metric":{...},"values":[[t,"v"],...]}`.
fn matrix_series(out: &mut String, l: &Labels, points: &[(i64, f64)]) {
    out.push_str("{\"metric\":");
    labels(out, l);
    out.push_str(",\"values\":[");
    for (i, (t, v)) in points.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        point(out, *t, &api_value(*v));
    }
    out.push_str("]}");
}

/// What a range query has read from the history: each selector's series from its window at the
/// first step it was evaluated at through the same window moved to the last step, so the
/// following steps take slices instead of decoding the same blocks again. A selector may have
/// several reads (the same metric with and without `offset`); any read that covers a window
/// serves it, so a window that does not move with the step (`@`) is read once too.
struct Reads {
    last_step_ms: i64,
    by_selector: RefCell<HashMap<String, Vec<Read>>>,
}

struct Read {
    start_ms: i64,
    end_ms: i64,
    series: Vec<RangeSeries>,
}

impl Reads {
    fn new(last_step_ms: i64) -> Reads {
        Reads {
            last_step_ms,
            by_selector: RefCell::new(HashMap::new()),
        }
    }
}

/// The history as one step of a range query sees it.
struct StepSource<'a> {
    history: &'a History,
    reads: &'a Reads,
    at_ms: i64,
}

impl Queryable for StepSource<'_> {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        let mut by_selector = self.reads.by_selector.borrow_mut();
        let reads = by_selector.entry(format!("{matchers:?}")).or_default();
        let covering = reads
            .iter()
            .position(|r| r.start_ms <= start_ms && end_ms <= r.end_ms);
        let at = match covering {
            Some(at) => at,
            None => {
                let until =
                    end_ms.saturating_add(self.reads.last_step_ms.saturating_sub(self.at_ms));
                reads.push(Read {
                    start_ms,
                    end_ms: until,
                    series: self.history.select(matchers, start_ms, until)?,
                });
                reads.len() - 1
            }
        };
        Ok(reads[at]
            .series
            .iter()
            .filter_map(|s| {
                let from = s.points.partition_point(|p| p.0 < start_ms);
                let to = s.points.partition_point(|p| p.0 <= end_ms);
                (from < to).then(|| RangeSeries {
                    labels: s.labels.clone(),
                    points: s.points[from..to].to_vec(),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, RwLock};

    use super::*;
    use crate::history::SeriesKey;

    /// `up{job="a"}` 1 and `up{job="b"}` 0 every 15 s for 10 minutes, `late` from 5 minutes on,
    /// `gone` until 2 minutes, and a counter.
    fn history() -> SharedHistory {
        let mut h = History::new(i64::MAX / 4, 8);
        let key = |h: &mut History, name: &str, labels: &[(&str, &str)]| {
            h.intern(SeriesKey {
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            })
        };
        let a = key(&mut h, "up", &[("job", "a")]);
        let b = key(&mut h, "up", &[("job", "b")]);
        let late = key(&mut h, "late", &[]);
        let gone = key(&mut h, "gone", &[]);
        let c = key(&mut h, "c_total", &[("job", "a")]);
        for i in 0..=40_i64 {
            let t = i * 15_000;
            let mut samples = vec![(a.clone(), 1.0), (b.clone(), 0.0), (c.clone(), i as f64)];
            if t >= 300_000 {
                samples.push((late.clone(), 7.0));
            }
            if t <= 120_000 {
                samples.push((gone.clone(), 3.0));
            }
            h.append(t, &samples);
            h.take_full_block();
        }
        Arc::new(RwLock::new(h))
    }

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn json(a: &Answer) -> serde_json::Value {
        serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{e}: {}", a.body))
    }

    #[test]
    fn instant_results_in_each_type() {
        let h = history();
        let q = |expr: &str| {
            instant(
                &h,
                &params(&[("query", expr), ("time", "600")]),
                0,
                Semantics::Prometheus2_42,
            )
        };
        let a = q("sum by (job) (rate(c_total[1m]))");
        assert_eq!(
            a.body,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[600,"0.06666666666666667"]}]}}"#
        );
        let a = q("1 / 8");
        assert_eq!(
            a.body,
            r#"{"status":"success","data":{"resultType":"scalar","result":[600,"0.125"]}}"#
        );
        let a = q("\"a<b\"");
        assert_eq!(
            a.body,
            r#"{"status":"success","data":{"resultType":"string","result":[600,"a\u003cb"]}}"#
        );
        let a = q("up{job=\"a\"}[30s]");
        assert_eq!(
            a.body,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[570,"1"],[585,"1"],[600,"1"]]}]}}"#
        );
    }

    #[test]
    fn range_results_are_the_instant_results_at_each_step_sorted_by_labels() {
        let h = history();
        let r = |expr: &str, start: &str, end: &str, step: &str| {
            range(
                &h,
                &params(&[
                    ("query", expr),
                    ("start", start),
                    ("end", end),
                    ("step", step),
                ]),
                Semantics::Prometheus2_42,
            )
        };
        let a = r("up", "0", "30", "15");
        assert_eq!(
            a.body,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[0,"1"],[15,"1"],[30,"1"]]},{"metric":{"__name__":"up","job":"b"},"values":[[0,"0"],[15,"0"],[30,"0"]]}]}}"#
        );
        // Series come and go: `late` from 300 s, `gone` stale at once after 120 s.
        let a = json(&r("late or gone", "100", "400", "100"));
        let result = &a["data"]["result"];
        assert_eq!(result[0]["metric"]["__name__"], "gone");
        assert_eq!(result[0]["values"], serde_json::json!([[100, "3"]]));
        assert_eq!(
            result[1]["values"],
            serde_json::json!([[300, "7"], [400, "7"]])
        );
        // Each step is the instant query at that time (which reads the history directly, not
        // through the range query's reads), offsets and windows of several lengths included.
        for expr in [
            "rate(c_total[1m]) * 2",
            "c_total offset 1m - c_total offset 2m + up",
            "increase(c_total[2m] offset 30s) + count_over_time(c_total[1m])",
            "late or gone or c_total offset 5m",
        ] {
            let whole = json(&r(expr, "0", "600", "45"));
            let mut from_range = BTreeMap::new();
            for s in whole["data"]["result"].as_array().unwrap() {
                for p in s["values"].as_array().unwrap() {
                    from_range.insert((s["metric"].to_string(), p[0].to_string()), p[1].clone());
                }
            }
            let mut from_instants = BTreeMap::new();
            for t in (0..=600).step_by(45) {
                let at = t.to_string();
                let one = json(&instant(
                    &h,
                    &params(&[("query", expr), ("time", &at)]),
                    0,
                    Semantics::Prometheus2_42,
                ));
                for s in one["data"]["result"].as_array().unwrap() {
                    from_instants.insert(
                        (s["metric"].to_string(), s["value"][0].to_string()),
                        s["value"][1].clone(),
                    );
                }
            }
            assert!(!from_range.is_empty(), "{expr}");
            assert_eq!(from_range, from_instants, "{expr}");
        }
        let a = json(&r("time()", "0", "30", "15.5"));
        assert_eq!(
            a["data"]["result"],
            serde_json::json!([{"metric": {}, "values": [[0, "0"], [15.5, "15.5"]]}])
        );
    }

    #[test]
    fn errors_have_prometheus_shape_and_status() {
        let h = history();
        let a = instant(
            &h,
            &params(&[("query", "sum(up")]),
            0,
            Semantics::Prometheus2_42,
        );
        assert_eq!(a.status, 400);
        let body = json(&a);
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], "bad_data");
        assert!(body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"query\": "));
        let a = instant(
            &h,
            &params(&[("query", "no_such_function(up)")]),
            0,
            Semantics::Prometheus2_42,
        );
        assert_eq!(
            (a.status, json(&a)["errorType"].clone()),
            (400, "bad_data".into())
        );
        assert!(a.body.contains("no_such_function"), "{}", a.body);
        let a = range(
            &h,
            &params(&[
                ("query", "up"),
                ("start", "0"),
                ("end", "86400"),
                ("step", "1"),
            ]),
            Semantics::Prometheus2_42,
        );
        assert_eq!(a.status, 400);
        assert_eq!(
            a.body,
            r#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}"#
        );
        let a = range(
            &h,
            &params(&[
                ("query", "up[5m]"),
                ("start", "0"),
                ("end", "1"),
                ("step", "1"),
            ]),
            Semantics::Prometheus2_42,
        );
        assert_eq!(
            json(&a)["error"],
            "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
        );
        // Two series made the same by dropping the name: an evaluation error.
        let a = range(
            &h,
            &params(&[
                ("query", "abs({job=\"a\"})"),
                ("start", "0"),
                ("end", "600"),
                ("step", "15"),
            ]),
            Semantics::Prometheus2_42,
        );
        assert_eq!(a.status, 422, "{}", a.body);
        assert_eq!(json(&a)["errorType"], "execution");
        let a = range(
            &h,
            &params(&[
                ("query", "up"),
                ("start", "0"),
                ("end", "600"),
                ("step", "1"),
                ("timeout", "0s"),
            ]),
            Semantics::Prometheus2_42,
        );
        assert_eq!(a.status, 503);
        assert_eq!(
            a.body,
            r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Whatever the parameters, an answer in Prometheus's shape and no panic.
        #[test]
        fn any_parameters_get_an_answer(
            query in "(up|c_total|rate\\(c_total\\[1m\\]\\)|sum by \\(job\\) \\(up\\)|time\\(\\)|\\(|1e308 \\* 1e308|\"s\"|up\\[5m\\]|[a-z(){}\\[\\]\"=~ 0-9.+*/-]{0,24})",
            time in "(-?[0-9]{1,20}(\\.[0-9]{1,4})?|[0-9]{1,3}[smhdwy]|NaN|Inf|-Inf|2026-11-28T12:00:00Z|.{0,8})",
            start in "(-?[0-9]{1,20}(\\.[0-9]{1,4})?|NaN|.{0,6})",
            end in "(-?[0-9]{1,20}(\\.[0-9]{1,4})?|1e300|.{0,6})",
            step in "(-?[0-9]{1,20}(\\.[0-9]{1,6})?|[0-9]{1,3}(ms|s|m|h|d|w|y)|1e300|.{0,6})",
            timeout in "(|[0-9]{1,3}(ms|s|m)|-1s|.{0,4})",
        ) {
            let h = history();
            let p = params(&[
                ("query", &query),
                ("time", &time),
                ("start", &start),
                ("end", &end),
                ("step", &step),
                ("timeout", &timeout),
            ]);
            for a in [instant(&h, &p, 600_000, Semantics::Prometheus2_42), range(&h, &p, Semantics::Prometheus2_42)] {
                let body = json(&a);
                let ok = body["status"] == "success";
                proptest::prop_assert_eq!(ok, a.status == 200, "{}", a.body);
                proptest::prop_assert!(ok || [400, 422, 503].contains(&a.status), "{}", a.body);
            }
        }
    }
}
