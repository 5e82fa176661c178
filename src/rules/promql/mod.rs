//! A PromQL evaluator over any [`Queryable`] source (the local history, or a remote
//! Prometheus-compatible API), with the semantics of Prometheus 3.5 LTS or of 2.42
//! ([`Semantics`]). Expressions are parsed with `promql-parser`, which follows Prometheus 3.x;
//! [`parse_as`] adds what each release accepts (2.42's `holt_winters`, 3.5's experimental
//! functions behind a flag).
//!
//! Owns evaluation at one instant and over a range ([`eval_range`]): selectors with the
//! 5-minute lookback ended early by stale markers, range selectors (left-open
//! `(t - range, t]` windows in 3.x, closed in 2.42), subqueries with Prometheus's step
//! alignment, `@` with `start()` and `end()`, offsets, and the dispatch to [`functions`],
//! [`aggregation`] and [`binary`]. Pure: the time is an argument, data comes only through
//! [`Queryable`]. Judged by Prometheus's own test suite: `tests/promql_conformance.rs`.

pub mod aggregation;
pub mod binary;
pub mod duration_expr;
pub mod functions;
pub mod numeric;

use std::collections::BTreeMap;
use std::time::Duration;

use promql_parser::label::MatchOp;
use promql_parser::label::Matcher;

use crate::model::Semantics;
use promql_parser::parser::{AtModifier, Expr, Offset, SubqueryExpr, VectorSelector};

/// Label names and values of a series, `__name__` included.
pub type Labels = BTreeMap<String, String>;

/// The metric name label.
pub const NAME: &str = "__name__";

/// Prometheus's stale marker: a NaN with this exact bit pattern says the series ended here.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// Whether a value is the stale marker (and not any other NaN).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN.to_bits()
}

/// How far back a selector looks for a sample.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
    /// When the sample was taken, ms (for `timestamp()`).
    pub at_ms: i64,
}

/// One series of a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Its labels.
    pub labels: Labels,
    /// Its points in the window, oldest first.
    pub points: Vec<(i64, f64)>,
}

/// What an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// A string.
    String(String),
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector.
    Matrix(Vec<RangeSeries>),
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// Why an expression could not be parsed or is outside what Prometheus 2.42 supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// A source of series.
pub trait Queryable {
    /// The series matching every matcher, each with its points in `[start_ms, end_ms]`.
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<RangeSeries>, EvalError>;
}

/// Functions Prometheus 3.5 keeps behind `--enable-feature=promql-experimental-functions`.
const EXPERIMENTAL_IN_3: &[&str] = &[
    "double_exponential_smoothing",
    "info",
    "limitk",
    "limit_ratio",
    "sort_by_label",
    "sort_by_label_desc",
    "mad_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "ts_of_last_over_time",
    "first_over_time",
    "ts_of_first_over_time",
];

/// Parses an expression with the default [`Semantics`] (Prometheus 3.5), experimental
/// functions off as 3.5 has them.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    parse_as(text, Semantics::default())
}

/// Parses an expression as the given Prometheus release would, with its experimental functions
/// off (as both releases ship).
pub fn parse_as(text: &str, semantics: Semantics) -> Result<Expr, ParseError> {
    parse_with(text, semantics, false)
}

/// Parses an expression as the given Prometheus release would. In 2.42, `holt_winters` is
/// accepted (3.x renamed it `double_exponential_smoothing`) and functions newer than 2.42 are
/// refused. In 3.x, `holt_winters` is unknown; with `experimental` set, what Prometheus 3.5
/// keeps behind `--enable-feature=promql-experimental-functions,promql-duration-expr` is
/// accepted (the functions `double_exponential_smoothing`, `limitk`, `mad_over_time`, ...;
/// [`duration_expr`]essions such as `x[26m+4m]`), as Prometheus's own test suite runs.
pub fn parse_with(
    text: &str,
    semantics: Semantics,
    experimental: bool,
) -> Result<Expr, ParseError> {
    let text = match semantics {
        Semantics::Prometheus2_42 => {
            // Every function 3.x added is one 3.5 keeps experimental.
            for name in EXPERIMENTAL_IN_3 {
                if calls(text, name) {
                    return Err(ParseError(format!(
                        "function {name:?} is not in Prometheus 2.42"
                    )));
                }
            }
            rename_calls(text, "holt_winters", "double_exponential_smoothing")
        }
        Semantics::Prometheus3 => {
            if calls(text, "holt_winters") {
                return Err(ParseError(
                    "unknown function with name \"holt_winters\": Prometheus 3 renamed it double_exponential_smoothing (an experimental function)".into(),
                ));
            }
            if !experimental {
                for name in EXPERIMENTAL_IN_3 {
                    if calls(text, name) {
                        return Err(ParseError(format!(
                            "function {name:?} is experimental in Prometheus 3.5 and not enabled"
                        )));
                    }
                }
                text.to_owned()
            } else {
                duration_expr::expand(text)?
            }
        }
    };
    check_durations(&text)?;
    let mut expr =
        promql_parser::parser::parse(&text).map_err(|e| ParseError(e.replace('\n', " ")))?;
    if semantics == Semantics::Prometheus3 {
        dot_matches_newline(&mut expr);
    }
    Ok(expr)
}

/// Recompiles every regex matcher of `expr` so that `.` also matches a newline, as Prometheus 3
/// compiles them (`^(?s:...)$`); 2.42's `.` stops at a newline, as `promql-parser`'s does.
fn dot_matches_newline(expr: &mut Expr) {
    fn fix(vs: &mut VectorSelector) {
        let all = vs
            .matchers
            .matchers
            .iter_mut()
            .chain(vs.matchers.or_matchers.iter_mut().flatten());
        for m in all {
            let Ok(re) = regex::Regex::new(&format!("^(?s:{})$", m.value)) else {
                continue;
            };
            match m.op {
                MatchOp::Re(_) => m.op = MatchOp::Re(re),
                MatchOp::NotRe(_) => m.op = MatchOp::NotRe(re),
                _ => {}
            }
        }
    }
    match expr {
        Expr::VectorSelector(vs) => fix(vs),
        Expr::MatrixSelector(ms) => fix(&mut ms.vs),
        Expr::Subquery(sq) => dot_matches_newline(&mut sq.expr),
        Expr::Paren(p) => dot_matches_newline(&mut p.expr),
        Expr::Unary(u) => dot_matches_newline(&mut u.expr),
        Expr::Binary(b) => {
            dot_matches_newline(&mut b.lhs);
            dot_matches_newline(&mut b.rhs);
        }
        Expr::Aggregate(a) => {
            dot_matches_newline(&mut a.expr);
            if let Some(p) = a.param.as_deref_mut() {
                dot_matches_newline(p);
            }
        }
        Expr::Call(c) => c.args.args.iter_mut().for_each(|a| dot_matches_newline(a)),
        _ => {}
    }
}

/// The longest duration Prometheus accepts: what fits in a Go `time.Duration` (int64 ns).
const MAX_DURATION_SECONDS: f64 = i64::MAX as f64 / 1e9;

/// Refuses durations Prometheus refuses as out of range: a number of seconds used as a duration
/// (`x[1e30]`, `offset Inf`, `[5m:NaN]`) that is negative, not finite or too long, and a unit
/// duration longer than about 292 years. promql-parser 0.11 panics on the first kind
/// (`Duration::from_secs_f64`), and the second would overflow the evaluator's millisecond
/// arithmetic. Lexing errors are left to the parser, which reports them.
fn check_durations(text: &str) -> Result<(), ParseError> {
    use lrpar::{Lexeme, Lexer, NonStreamingLexer};
    use promql_parser::parser::token::{
        T_ADD, T_COLON, T_DURATION, T_LEFT_BRACKET, T_NUMBER, T_OFFSET, T_SUB,
    };
    let Ok(lexer) = promql_parser::parser::lexer(text) else {
        return Ok(());
    };
    // The two tokens before the current one: a number is a duration after `[`, after the `:`
    // of a subquery, and after `offset` (with or without a sign).
    let mut before = (None, None);
    for lexeme in lexer.iter().flatten() {
        let id = lexeme.tok_id();
        let word = lexer.span_str(lexeme.span());
        let seconds = match (id, before) {
            (T_DURATION, _) => promql_parser::util::parse_duration(word)
                .map(|d| d.as_secs_f64())
                .ok(),
            (T_NUMBER, (Some(T_LEFT_BRACKET | T_COLON | T_OFFSET), _))
            | (T_NUMBER, (Some(T_SUB | T_ADD), Some(T_OFFSET))) => {
                Some(promql_parser::util::parse_str_radix(word).unwrap_or(f64::NAN))
            }
            _ => None,
        };
        if seconds.is_some_and(|s| !(0.0..=MAX_DURATION_SECONDS).contains(&s)) {
            return Err(ParseError(format!("duration out of range: {word}")));
        }
        before = (Some(id), before.0);
    }
    Ok(())
}

/// Whether `text` calls `name(` as an identifier (not inside a longer name).
fn calls(text: &str, name: &str) -> bool {
    find_calls(text, name).next().is_some()
}

fn find_calls<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(name).map(|(i, _)| i).filter(move |&i| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].trim_start().chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') && after == Some('(')
    })
}

fn rename_calls(text: &str, from: &str, to: &str) -> String {
    let positions: Vec<usize> = find_calls(text, from).collect();
    let mut out = String::with_capacity(text.len() + positions.len() * 16);
    let mut last = 0;
    for i in positions {
        out.push_str(&text[last..i]);
        out.push_str(to);
        last = i + from.len();
    }
    out.push_str(&text[last..]);
    out
}

/// The farthest from the epoch an `@` time is taken, ms (about 73 million years): far enough
/// for any data, near enough that adding a range or a lookback cannot overflow.
const MAX_AT_MS: i64 = i64::MAX / 4;

fn clamp_ms(ms: u128) -> i64 {
    ms.min(MAX_AT_MS as u128) as i64
}

fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

fn millis(d: &Duration) -> i64 {
    d.as_millis() as i64
}

/// The matchers of a selector, the name as a matcher too.
fn matchers(vs: &VectorSelector) -> Vec<Matcher> {
    let mut m = vs.matchers.matchers.clone();
    if let Some(name) = &vs.name {
        m.push(Matcher::new(
            promql_parser::label::MatchOp::Equal,
            NAME,
            name,
        ));
    }
    m
}

/// Evaluates expressions at one instant against a source.
///
/// ```
/// use ipfs_sentinel::model::Semantics;
/// use ipfs_sentinel::rules::promql::{
///     parse, EvalError, Evaluator, Labels, Queryable, RangeSeries, Value,
/// };
/// use promql_parser::label::Matcher;
///
/// /// Two counters sampled every minute: `requests{job="a"}` and `requests{job="b"}`.
/// struct Requests;
/// impl Queryable for Requests {
///     fn select(&self, m: &[Matcher], start: i64, end: i64) -> Result<Vec<RangeSeries>, EvalError> {
///         let series = ["a", "b"].map(|job| {
///             let labels: Labels = [("__name__", "requests"), ("job", job)]
///                 .map(|(k, v)| (k.to_owned(), v.to_owned()))
///                 .into();
///             let per_minute = if job == "a" { 60.0 } else { 120.0 };
///             let points = (0..=10)
///                 .map(|i| (i * 60_000, i as f64 * per_minute))
///                 .filter(|p| p.0 >= start && p.0 <= end)
///                 .collect();
///             RangeSeries { labels, points }
///         });
///         Ok(series
///             .into_iter()
///             .filter(|s| m.iter().all(|m| m.is_match(s.labels.get(&m.name).map_or("", |v| v))))
///             .collect())
///     }
/// }
///
/// // At 10 minutes, the per-second rate over 5 minutes, summed: 1/s + 2/s.
/// let expr = parse("sum(rate(requests[5m]))").unwrap();
/// let at_10m = Evaluator::new(&Requests, 600_000);
/// let Value::Vector(v) = at_10m.eval(&expr).unwrap() else { panic!() };
/// assert_eq!(v[0].value, 3.0);
///
/// // The 3.x window (5m, 10m] holds 5 samples, 2.42's closed [5m, 10m] holds 6.
/// let count = parse("count_over_time(requests{job=\"a\"}[5m])").unwrap();
/// let Value::Vector(v3) = at_10m.eval(&count).unwrap() else { panic!() };
/// let v2 = Evaluator::new(&Requests, 600_000).with_semantics(Semantics::Prometheus2_42);
/// let Value::Vector(v2) = v2.eval(&count).unwrap() else { panic!() };
/// assert_eq!((v3[0].value, v2[0].value), (5.0, 6.0));
/// ```
pub struct Evaluator<'a> {
    source: &'a dyn Queryable,
    at_ms: i64,
    semantics: Semantics,
    /// The query's first and last evaluation times, ms: what `@ start()` and `@ end()` mean.
    query_range: (i64, i64),
    /// Subquery steps this evaluation may still take, shared with the evaluators of its
    /// subqueries, so that `x[1y:1ms]` is refused rather than run for hours.
    steps_left: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// How many subquery steps one evaluation may take in all (nested subqueries multiply):
/// Prometheus bounds the same work by its 50 million sample limit; a million steps is a year at 30 s.
pub const MAX_SUBQUERY_STEPS: u64 = 1_000_000;

impl<'a> Evaluator<'a> {
    /// An evaluator at `at_ms` over `source`, with the default [`Semantics`].
    pub fn new(source: &'a dyn Queryable, at_ms: i64) -> Self {
        Self {
            source,
            at_ms,
            semantics: Semantics::default(),
            query_range: (at_ms, at_ms),
            steps_left: std::sync::Arc::new(MAX_SUBQUERY_STEPS.into()),
        }
    }

    /// The same evaluator as one step of a range query from `start_ms` to `end_ms`: `@ start()`
    /// and `@ end()` mean those (at an instant query both are the evaluation time).
    pub fn with_query_range(mut self, start_ms: i64, end_ms: i64) -> Self {
        self.query_range = (start_ms, end_ms);
        self
    }

    /// The same evaluator following `semantics`.
    pub fn with_semantics(mut self, semantics: Semantics) -> Self {
        self.semantics = semantics;
        self
    }

    /// The semantics it follows.
    pub fn semantics(&self) -> Semantics {
        self.semantics
    }

    /// The evaluation time, ms.
    pub fn at_ms(&self) -> i64 {
        self.at_ms
    }

    /// Evaluates `expr`.
    pub fn eval(&self, expr: &Expr) -> Result<Value, EvalError> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(samples) => {
                    let out: Vec<Sample> = samples
                        .into_iter()
                        .map(|mut s| {
                            drop_metric_name(&mut s.labels, self.semantics);
                            s.value = -s.value;
                            s
                        })
                        .collect();
                    check_unique(&out)?;
                    Ok(Value::Vector(out))
                }
                other => Err(EvalError(format!("unary minus on {}", type_name(&other)))),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.instant(vs)?)),
            Expr::MatrixSelector(ms) => Ok(Value::Matrix(self.range(&ms.vs, millis(&ms.range))?)),
            Expr::Call(call) => functions::call(self, call),
            Expr::Aggregate(agg) => aggregation::aggregate(self, agg),
            Expr::Binary(b) => binary::binary(self, b),
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(sq)?)),
            Expr::Extension(_) => Err(EvalError("extension expressions are not supported".into())),
        }
    }

    /// The query's first and last evaluation times, ms (`@ start()` and `@ end()`).
    pub fn query_range(&self) -> (i64, i64) {
        self.query_range
    }

    /// The time an `@` modifier pins, ms, if there is one.
    pub fn at_modifier_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_range.0),
            Some(AtModifier::End) => Some(self.query_range.1),
            Some(AtModifier::At(t)) => Some(match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => clamp_ms(d.as_millis()),
                Err(e) => -clamp_ms(e.duration().as_millis()),
            }),
        }
    }

    /// The time a selector or subquery reads at: its `@` time (or the evaluation time) minus
    /// its offset.
    fn read_time(&self, at: &Option<AtModifier>, offset: &Option<Offset>) -> i64 {
        self.at_modifier_ms(at)
            .unwrap_or(self.at_ms)
            .saturating_sub(offset_ms(offset))
    }

    /// The window a range-vector expression covers at the evaluation time, as
    /// `(start, end, range)` in ms: `x[5m]`, `(x[5m])` and subqueries, with their `@` and
    /// offset. In 3.x the window is `(start, end]`, in 2.42 `[start, end]`; `rate` and friends
    /// extrapolate to its edges.
    pub fn window(&self, e: &Expr) -> Option<(i64, i64, i64)> {
        let (range, end) = match e {
            Expr::Paren(p) => return self.window(&p.expr),
            Expr::MatrixSelector(ms) => {
                (millis(&ms.range), self.read_time(&ms.vs.at, &ms.vs.offset))
            }
            Expr::Subquery(sq) => (millis(&sq.range), self.read_time(&sq.at, &sq.offset)),
            _ => return None,
        };
        Some((end.saturating_sub(range), end, range))
    }

    /// Whether a point at `t` lies in a window ending at `end`: `(end - range, end]` in 3.x,
    /// `[end - range, end]` in 2.42.
    fn in_window(&self, t: i64, end: i64, range: i64) -> bool {
        let start = end.saturating_sub(range);
        t <= end
            && match self.semantics {
                Semantics::Prometheus3 => t > start,
                Semantics::Prometheus2_42 => t >= start,
            }
    }

    /// The series matching a selector with points in `[start_ms, end_ms]`.
    fn select(
        &self,
        vs: &VectorSelector,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        let m = matchers(vs);
        self.source.select(&m, start_ms, end_ms)
    }

    /// The newest sample of each matching series within the lookback (`(t - 5m, t]` in 3.x,
    /// `[t - 5m, t]` in 2.42), unless that sample is a stale marker.
    pub fn instant(&self, vs: &VectorSelector) -> Result<Vec<Sample>, EvalError> {
        let t = self.read_time(&vs.at, &vs.offset);
        let series = self.select(vs, t.saturating_sub(LOOKBACK_MS), t)?;
        Ok(series
            .into_iter()
            .filter_map(|s| {
                let &(at_ms, value) = s
                    .points
                    .iter()
                    .rev()
                    .find(|p| self.in_window(p.0, t, LOOKBACK_MS))?;
                // The newest point being a stale marker means the series has ended.
                (!is_stale(value)).then_some(Sample {
                    labels: s.labels,
                    value,
                    at_ms,
                })
            })
            .collect())
    }

    /// Each matching series' points in the window (`(t - range, t]` in 3.x, `[t - range, t]`
    /// in 2.42), stale markers left out; series with no point are left out.
    pub fn range(&self, vs: &VectorSelector, range_ms: i64) -> Result<Vec<RangeSeries>, EvalError> {
        let t = self.read_time(&vs.at, &vs.offset);
        let mut series = self.select(vs, t.saturating_sub(range_ms), t)?;
        for s in &mut series {
            s.points
                .retain(|p| self.in_window(p.0, t, range_ms) && !is_stale(p.1));
        }
        series.retain(|s| !s.points.is_empty());
        Ok(series)
    }

    /// A subquery: the inner expression evaluated at every multiple of the step (from the
    /// epoch) inside the window, as Prometheus aligns them; without a step, every minute
    /// (Prometheus's default evaluation interval).
    pub fn subquery(&self, sq: &SubqueryExpr) -> Result<Vec<RangeSeries>, EvalError> {
        let step = sq.step.as_ref().map_or(60_000, millis);
        if step <= 0 {
            return Err(EvalError("subquery step must be positive".into()));
        }
        let end = self.read_time(&sq.at, &sq.offset);
        let start = end.saturating_sub(millis(&sq.range));
        // The first multiple of the step after the window's start (at it too, in 2.42). Go's
        // integer division truncates towards zero, as Rust's does.
        let mut t = step * (start / step);
        let skip_start = match self.semantics {
            Semantics::Prometheus3 => t <= start,
            Semantics::Prometheus2_42 => t < start,
        };
        if skip_start {
            t = t.saturating_add(step);
        }
        let steps = if t <= end {
            ((end - t) / step + 1) as u64
        } else {
            0
        };
        let left = self
            .steps_left
            .fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |left| left.checked_sub(steps),
            )
            .is_ok();
        if !left {
            return Err(EvalError(format!(
                "query processing would take more than {MAX_SUBQUERY_STEPS} subquery steps: use a coarser subquery step or a shorter range"
            )));
        }
        let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        while t <= end {
            let inner = Evaluator {
                source: self.source,
                at_ms: t,
                semantics: self.semantics,
                query_range: self.query_range,
                steps_left: self.steps_left.clone(),
            };
            match inner.eval(&sq.expr)? {
                Value::Scalar(v) => series.entry(Labels::new()).or_default().push((t, v)),
                Value::Vector(samples) => {
                    for s in samples {
                        series.entry(s.labels).or_default().push((t, s.value));
                    }
                }
                other => {
                    return Err(EvalError(format!(
                        "subquery is only allowed on instant vector, got {}",
                        type_name(&other)
                    )))
                }
            }
            match t.checked_add(step) {
                Some(next) => t = next,
                None => break,
            }
        }
        Ok(series
            .into_iter()
            .map(|(labels, points)| RangeSeries { labels, points })
            .collect())
    }

    /// Evaluates `expr`, which must give an instant vector.
    pub fn vector(&self, expr: &Expr) -> Result<Vec<Sample>, EvalError> {
        match self.eval(expr)? {
            Value::Vector(v) => Ok(v),
            other => Err(EvalError(format!(
                "expected an instant vector, got {}",
                type_name(&other)
            ))),
        }
    }

    /// Evaluates `expr`, which must give a scalar.
    pub fn scalar(&self, expr: &Expr) -> Result<f64, EvalError> {
        match self.eval(expr)? {
            Value::Scalar(v) => Ok(v),
            other => Err(EvalError(format!(
                "expected a scalar, got {}",
                type_name(&other)
            ))),
        }
    }
}

/// Why a range query was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeQueryError {
    /// The step is not positive, or the end is before the start.
    #[error("invalid range query: {0}")]
    Bad(String),
    /// The expression does not give a scalar or an instant vector.
    #[error("invalid expression type {0:?} for range query, must be Scalar or instant Vector")]
    Type(&'static str),
    /// Evaluating one step failed.
    #[error("{0}")]
    Eval(#[from] EvalError),
}

/// The most points a range query may give a series, as Prometheus's query API allows.
pub const MAX_RANGE_POINTS: i64 = 11_000;

/// Evaluates `expr` as a range query: at `start_ms`, then every `step_ms` up to and including
/// `end_ms`, over `source`. The result holds one series per label set (a scalar gives one
/// series with no labels), sorted by labels, each with its points oldest first.
///
/// ```
/// use ipfs_sentinel::model::Semantics;
/// use ipfs_sentinel::rules::promql::{eval_range, parse, RangeSeries};
/// struct Nothing;
/// impl ipfs_sentinel::rules::promql::Queryable for Nothing {
///     fn select(
///         &self,
///         _: &[promql_parser::label::Matcher],
///         _: i64,
///         _: i64,
///     ) -> Result<Vec<RangeSeries>, ipfs_sentinel::rules::promql::EvalError> {
///         Ok(vec![])
///     }
/// }
/// let expr = parse("time() * 2").unwrap();
/// let m = eval_range(&Nothing, &expr, 0, 120_000, 60_000, Semantics::Prometheus3).unwrap();
/// assert_eq!(m[0].points, vec![(0, 0.0), (60_000, 120.0), (120_000, 240.0)]);
/// // Too fine a step is refused, as Prometheus refuses it.
/// assert!(eval_range(&Nothing, &expr, 0, 86_400_000, 1, Semantics::Prometheus3).is_err());
/// assert!(eval_range(&Nothing, &expr, i64::MIN, i64::MAX, 1, Semantics::Prometheus3).is_err());
/// let last = eval_range(&Nothing, &expr, i64::MAX - 1, i64::MAX, 1, Semantics::Prometheus3);
/// assert_eq!(last.unwrap()[0].points.len(), 2);
/// ```
pub fn eval_range(
    source: &dyn Queryable,
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    semantics: Semantics,
) -> Result<Vec<RangeSeries>, RangeQueryError> {
    if step_ms <= 0 {
        return Err(RangeQueryError::Bad(format!(
            "zero or negative query resolution step widths are not accepted, got {step_ms} ms"
        )));
    }
    if end_ms < start_ms {
        return Err(RangeQueryError::Bad(
            "end timestamp must not be before start time".into(),
        ));
    }
    if end_ms
        .checked_sub(start_ms)
        .is_none_or(|d| d / step_ms > MAX_RANGE_POINTS)
    {
        return Err(RangeQueryError::Bad(format!(
            "exceeded maximum resolution of {MAX_RANGE_POINTS} points per timeseries. Try decreasing the query resolution (?step=XX)"
        )));
    }
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let mut t = start_ms;
    while t <= end_ms {
        let ev = Evaluator::new(source, t)
            .with_semantics(semantics)
            .with_query_range(start_ms, end_ms);
        match ev.eval(expr)? {
            Value::Scalar(v) => series.entry(Labels::new()).or_default().push((t, v)),
            Value::Vector(samples) => {
                for s in samples {
                    series.entry(s.labels).or_default().push((t, s.value));
                }
            }
            other => return Err(RangeQueryError::Type(type_name(&other))),
        }
        match t.checked_add(step_ms) {
            Some(next) => t = next,
            None => break,
        }
    }
    Ok(series
        .into_iter()
        .map(|(labels, points)| RangeSeries { labels, points })
        .collect())
}

/// Refuses, at load time, what the evaluator cannot run: functions it does not implement,
/// naming the construct.
pub fn check_supported(expr: &Expr) -> Result<(), ParseError> {
    let refuse = |what: String| Err(ParseError(what));
    match expr {
        Expr::Subquery(sq) => check_supported(&sq.expr),
        Expr::Call(c) => {
            if let Some(reason) = functions::unsupported_reason(c.func.name) {
                return refuse(reason);
            }
            c.args.args.iter().try_for_each(|a| check_supported(a))
        }
        Expr::Aggregate(a) => {
            check_supported(&a.expr)?;
            a.param.as_deref().map_or(Ok(()), check_supported)
        }
        Expr::Binary(b) => {
            check_supported(&b.lhs)?;
            check_supported(&b.rhs)
        }
        Expr::Paren(p) => check_supported(&p.expr),
        Expr::Unary(u) => check_supported(&u.expr),
        _ => Ok(()),
    }
}

/// The labels Prometheus 3 drops with the metric name (its metadata labels).
const METADATA_LABELS: [&str; 3] = [NAME, "__type__", "__unit__"];

/// Drops the metric name from a result's labels, as arithmetic and most functions do: in 3.x
/// with the other metadata labels (`__type__`, `__unit__`), in 2.42 alone.
///
/// ```
/// use ipfs_sentinel::model::Semantics;
/// use ipfs_sentinel::rules::promql::{drop_metric_name, Labels};
/// let mut l: Labels = [("__name__", "x"), ("__unit__", "bytes"), ("job", "a")]
///     .map(|(k, v)| (k.to_owned(), v.to_owned()))
///     .into();
/// drop_metric_name(&mut l, Semantics::Prometheus2_42);
/// assert_eq!(l.len(), 2);
/// drop_metric_name(&mut l, Semantics::Prometheus3);
/// assert_eq!(l.keys().collect::<Vec<_>>(), ["job"]);
/// ```
pub fn drop_metric_name(labels: &mut Labels, semantics: Semantics) {
    match semantics {
        Semantics::Prometheus3 => {
            for name in METADATA_LABELS {
                labels.remove(name);
            }
        }
        Semantics::Prometheus2_42 => {
            labels.remove(NAME);
        }
    }
}

/// The PromQL name of a value's type.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Scalar(_) => "scalar",
        Value::String(_) => "string",
        Value::Vector(_) => "instant vector",
        Value::Matrix(_) => "range vector",
    }
}

/// Fails when two samples of a vector have the same labels, as Prometheus does.
pub fn check_unique(samples: &[Sample]) -> Result<(), EvalError> {
    let mut seen = std::collections::HashSet::with_capacity(samples.len());
    for s in samples {
        if !seen.insert(&s.labels) {
            return Err(EvalError(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    //! A source of series written as Prometheus's test notation, for evaluator tests.
    use super::*;

    /// Series given as (selector text, points).
    pub struct Fixed(pub Vec<RangeSeries>);

    impl Fixed {
        /// `series` like `("metric{a=\"1\"}", "0+10x10")` sampled every `step_ms` from 0.
        pub fn from(series: &[(&str, Vec<f64>)], step_ms: i64) -> Fixed {
            Fixed(
                series
                    .iter()
                    .map(|(sel, values)| {
                        let Expr::VectorSelector(vs) = promql_parser::parser::parse(sel).unwrap()
                        else {
                            panic!()
                        };
                        let mut labels: Labels = vs
                            .matchers
                            .matchers
                            .iter()
                            .map(|m| (m.name.clone(), m.value.clone()))
                            .collect();
                        if let Some(n) = vs.name {
                            labels.insert(NAME.into(), n);
                        }
                        RangeSeries {
                            labels,
                            points: values
                                .iter()
                                .enumerate()
                                .filter(|(_, v)| !v.is_nan())
                                .map(|(i, v)| (i as i64 * step_ms, *v))
                                .collect(),
                        }
                    })
                    .collect(),
            )
        }
    }

    impl Queryable for Fixed {
        fn select(
            &self,
            matchers: &[Matcher],
            start_ms: i64,
            end_ms: i64,
        ) -> Result<Vec<RangeSeries>, EvalError> {
            Ok(self
                .0
                .iter()
                .filter(|s| {
                    matchers
                        .iter()
                        .all(|m| m.is_match(s.labels.get(&m.name).map_or("", String::as_str)))
                })
                .map(|s| RangeSeries {
                    labels: s.labels.clone(),
                    points: s
                        .points
                        .iter()
                        .copied()
                        .filter(|p| p.0 >= start_ms && p.0 <= end_ms)
                        .collect(),
                })
                .collect())
        }
    }

    /// Evaluates `expr` at `at_ms` with Prometheus 2.42's semantics (the expected values of the
    /// tests using it were printed by promtool 2.42) and returns (labels rendered, value), sorted.
    pub fn eval(src: &Fixed, expr: &str, at_ms: i64) -> Result<Vec<(String, f64)>, String> {
        eval_as(src, expr, at_ms, Semantics::Prometheus2_42)
    }

    /// [`eval`] with the given semantics.
    pub fn eval_as(
        src: &Fixed,
        expr: &str,
        at_ms: i64,
        semantics: Semantics,
    ) -> Result<Vec<(String, f64)>, String> {
        let e = parse_as(expr, semantics).map_err(|e| e.0)?;
        let v = Evaluator::new(src, at_ms)
            .with_semantics(semantics)
            .eval(&e)
            .map_err(|e| e.0)?;
        rendered(v)
    }

    /// An instant result as (labels rendered, value), sorted; an error for other types.
    pub fn rendered(v: Value) -> Result<Vec<(String, f64)>, String> {
        let mut out = match v {
            Value::Scalar(x) => vec![("scalar".to_owned(), x)],
            Value::Vector(s) => s
                .into_iter()
                .map(|s| {
                    let l: Vec<String> = s
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{v}\""))
                        .collect();
                    (format!("{{{}}}", l.join(",")), s.value)
                })
                .collect(),
            other => return Err(format!("unexpected {other:?}")),
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn parse_accepts_2_42_and_refuses_newer() {
        let v2 = |t| parse_as(t, Semantics::Prometheus2_42);
        assert!(v2("holt_winters(x[10m], 0.5, 0.5)").is_ok());
        assert!(v2("my_holt_winters_total").is_ok());
        assert!(v2("double_exponential_smoothing(x[5m], 0.5, 0.5)")
            .unwrap_err()
            .0
            .contains("not in Prometheus 2.42"));
        assert!(v2("limitk(2, x)").is_err());
        assert!(v2("sum(x").is_err());
    }

    #[test]
    fn parse_in_3_gates_experimental_functions_and_drops_holt_winters() {
        assert!(parse("holt_winters(x[10m], 0.5, 0.5)")
            .unwrap_err()
            .0
            .contains("double_exponential_smoothing"));
        let des = "double_exponential_smoothing(x[5m], 0.5, 0.5)";
        assert!(parse(des).unwrap_err().0.contains("experimental"));
        assert!(parse_with(des, Semantics::Prometheus3, true).is_ok());
        assert!(parse("rate(x[5m])").is_ok());
    }

    #[test]
    fn subqueries_align_to_the_step_and_are_bounded() {
        let src = promtool_input();
        // Steps at 2m, 4m, 6m (aligned from the epoch) in (1m, 7m]; 2.42 also takes the
        // window's start when it is aligned.
        for (semantics, expr, want) in [
            (Semantics::Prometheus3, "count_over_time(g[6m:2m])", 3.0),
            (Semantics::Prometheus2_42, "count_over_time(g[6m:2m])", 3.0),
            (
                Semantics::Prometheus3,
                "count_over_time(g[6m:2m] offset 1m)",
                3.0,
            ),
            (
                Semantics::Prometheus2_42,
                "count_over_time(g[6m:2m] offset 1m)",
                4.0,
            ),
            (
                Semantics::Prometheus3,
                "sum_over_time(g[3m:1m] @ 180)",
                2.0 + 5.0 + 3.0,
            ),
        ] {
            let got = eval_as(&src, expr, 7 * 60_000, semantics).unwrap();
            assert_eq!(got[0].1, want, "{expr} in {semantics}");
        }
        let err = eval_as(&src, "max_over_time(g[1y:1ms])", 0, Semantics::Prometheus3);
        assert!(err.unwrap_err().contains("subquery steps"));
        let nested = "max_over_time(max_over_time(g[1h:1s])[1h:1s])";
        let err = eval_as(&src, nested, 0, Semantics::Prometheus3);
        assert!(
            err.unwrap_err().contains("subquery steps"),
            "3600 x 3600 steps"
        );
    }

    #[test]
    fn regex_dot_matches_newline_in_3_only() {
        let src = Fixed::from(&[("m{a=\"x\\ny\"}", vec![1.0])], 60_000);
        let found = |s| eval_as(&src, "m{a=~\"x.y\"}", 0, s).unwrap().len();
        assert_eq!(found(Semantics::Prometheus3), 1);
        assert_eq!(found(Semantics::Prometheus2_42), 0);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let src = promtool_input();
        for expr in [
            "g @ 1e18",
            "g @ -1e18 offset 292y",
            "max_over_time(g[5m:1m] @ 1e18)",
            "max_over_time(g[5m:1m] @ -1e18 offset -292y)",
            "rate(g[292y] @ -1e18)",
        ] {
            for at in [0, i64::MAX, i64::MIN] {
                for semantics in Semantics::ALL {
                    let _ = eval_as(&src, expr, at, semantics);
                }
            }
        }
    }

    #[test]
    fn semantics_names_round_trip() {
        for s in Semantics::ALL {
            assert_eq!(s.name().parse::<Semantics>(), Ok(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<Semantics>(&json).unwrap(), s);
        }
        assert!("3"
            .parse::<Semantics>()
            .unwrap_err()
            .to_string()
            .contains("prometheus-2.42"));
    }

    #[test]
    fn durations_out_of_range_are_refused_not_a_panic() {
        for expr in [
            "x offset 1e30",
            "x offset -Inf",
            "x offset NaN",
            "rate(x[1e30])",
            "x[5m:0xffffffffffffffff]",
            "x[5m:1e300]",
            "x offset 999999999y",
        ] {
            let err = parse(expr).expect_err(expr);
            assert!(err.0.starts_with("duration out of range"), "{expr}: {err}");
        }
        for expr in [
            "x offset 90",
            "x offset -1.5",
            "rate(x[300])",
            "x[5m:30]",
            "job:x:1",
        ] {
            assert!(parse(expr).is_ok(), "{expr}");
        }
    }

    /// Every expected value below was printed by Prometheus 2.42.0's own `promtool test rules`
    /// for the same input series (1-minute samples from 0), with `promql_expr_test` cases.
    fn promtool_input() -> Fixed {
        Fixed::from(
            &[
                (
                    "c{job=\"a\"}",
                    vec![0.0, 10.0, 20.0, 5.0, 15.0, 25.0, 35.0, 45.0, 55.0, 65.0],
                ),
                (
                    "g{job=\"a\"}",
                    vec![1.0, 3.0, 2.0, 5.0, 4.0, 8.0, 7.0, 9.0, 12.0, 11.0],
                ),
                ("late{job=\"a\"}", vec![7.0]),
            ],
            60_000,
        )
    }

    fn one(expr: &str, at_ms: i64) -> f64 {
        let got = eval(&promtool_input(), expr, at_ms).unwrap();
        assert_eq!(got.len(), 1, "{expr}: {got:?}");
        assert_eq!(got[0].0, "{job=\"a\"}", "{expr} drops the metric name");
        got[0].1
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn counters_and_gauges_match_promtool_2_42() {
        let m = 60_000;
        for (expr, at, want) in [
            ("rate(c[5m])", 9 * m, 1.6666666666666669e-01),
            ("increase(c[5m])", 5 * m, 45.0), // over the reset at 3m
            ("rate(c[3m])", 4 * m, 1.388888888888889e-01),
            ("irate(c[5m])", 3 * m, 8.333333333333333e-02),
            ("delta(g[4m])", 9 * m, 3.0),
            ("deriv(g[9m])", 9 * m, 2e-02),
            ("predict_linear(g[9m], 3600)", 9 * m, 83.6),
            (
                "holt_winters(g[9m], 0.5, 0.3)",
                9 * m,
                1.1751486909765624e+01,
            ),
            ("count_over_time(g[2m])", 5 * m, 3.0), // closed window: 3m, 4m and 5m
            ("stddev_over_time(g[9m])", 9 * m, 3.6),
            ("quantile_over_time(0.3, g[9m])", 9 * m, 3.6999999999999997),
            ("resets(c[9m])", 9 * m, 1.0),
            ("changes(g[9m])", 9 * m, 9.0),
            ("idelta(g[5m])", 9 * m, -1.0),
        ] {
            let got = one(expr, at);
            assert!(
                close(got, want),
                "{expr} at {at}: got {got}, Prometheus 2.42 gives {want}"
            );
        }
    }

    #[test]
    fn lookback_is_a_closed_five_minute_window() {
        let src = promtool_input();
        assert_eq!(
            eval(&src, "late", 5 * 60_000).unwrap().len(),
            1,
            "promtool: still there at 5m"
        );
        assert!(
            eval(&src, "late", 5 * 60_000 + 1000).unwrap().is_empty(),
            "promtool: gone at 5m1s"
        );
        assert_eq!(eval(&src, "late offset 1m", 6 * 60_000).unwrap().len(), 1);
    }

    #[test]
    fn matching_errors_read_as_prometheus_writes_them() {
        let src = Fixed::from(
            &[
                ("used{instance=\"a\",mount=\"/\"}", vec![50.0]),
                ("used{instance=\"a\",mount=\"/data\"}", vec![90.0]),
                ("info{instance=\"a\",version=\"1.2\"}", vec![1.0]),
            ],
            60_000,
        );
        let err = eval(&src, "used * on(instance) info", 0).unwrap_err();
        assert_eq!(err, "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
    }
}
