//! Reading a history request: a series selector (`name{label="x", other=~"re.*"}`, parsed with
//! `promql-parser`), times (RFC 3339 or Unix seconds), durations (`1h`, `30m`, or seconds),
//! a step, a function, and the checks on them (end before start, a step that is not positive,
//! more than 11,000 points per series, as Prometheus's query_range refuses). Also the
//! parameters of the PromQL query API (`/api/v1/query`, `/api/v1/query_range`), read as
//! Prometheus 2.42's `web/api/v1` reads them and refused with its messages.
//!
//! Owns the request's meaning; the HTTP API and the CLI both go through it, so they answer
//! bad input with the same one-line reasons.

use promql_parser::label::Matcher;
use promql_parser::parser::Expr;

use super::aggregate::Function;
use super::SeriesKey;
use crate::clock::{self, rfc3339};

/// Prometheus refuses a query_range answer of more points per series than this.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// A request that cannot be answered, with the reason to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// A parsed series selector: every matcher must hold.
#[derive(Debug, Clone)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

impl Selector {
    /// Parses `name{...}` or `{...}`; anything beyond a plain selector is refused.
    pub fn parse(text: &str) -> Result<Selector, BadRequest> {
        let expr = promql_parser::parser::parse(text).map_err(|e| {
            BadRequest(format!(
                "malformed selector {text:?}: {}",
                e.replace('\n', " ")
            ))
        })?;
        let Expr::VectorSelector(vs) = expr else {
            return Err(BadRequest(format!(
                "{text:?} is not a plain series selector such as name{{label=\"value\"}}; evaluate expressions with /api/v1/query"
            )));
        };
        if vs.offset.is_some() || vs.at.is_some() || !vs.matchers.or_matchers.is_empty() {
            return Err(BadRequest(format!(
                "{text:?}: offset, @ and `or` are not supported here"
            )));
        }
        let mut matchers = vs.matchers.matchers;
        if let Some(name) = vs.name {
            matchers.push(Matcher::new(
                promql_parser::label::MatchOp::Equal,
                "__name__",
                &name,
            ));
        }
        Ok(Selector { matchers })
    }

    /// Every series.
    pub fn all() -> Selector {
        Selector {
            matchers: Vec::new(),
        }
    }

    /// Whether a series matches (a missing label reads as empty, as in Prometheus).
    pub fn matches(&self, key: &SeriesKey) -> bool {
        self.matchers
            .iter()
            .all(|m| m.is_match(key.label(&m.name).unwrap_or("")))
    }
}

/// Reads a time as Prometheus's HTTP API does: RFC 3339 with any offset
/// (`2026-11-28T12:00:00Z`, `2026-11-28T14:00:00+02:00`) or Unix seconds (`1795867200.5`); ms.
pub fn parse_time(text: &str) -> Result<i64, BadRequest> {
    clock::parse_time(text).map_err(|e| BadRequest(e.to_string()))
}

/// Reads a duration as Prometheus's HTTP API does: Prometheus's notation (`1h30m`, `15s`,
/// `500ms`) or seconds; ms.
pub fn parse_duration(text: &str) -> Result<i64, BadRequest> {
    clock::parse_duration_or_seconds(text).map_err(|e| {
        BadRequest(format!(
            "{text:?} is not a duration ({e}): use 1h30m, 15s, 500ms (units largest first, each once) or seconds"
        ))
    })
}

/// The longest a query may run, and the default of its `timeout` parameter: Prometheus's
/// `--query.timeout` default.
pub const QUERY_TIMEOUT_MS: i64 = 2 * 60 * 1000;

/// Times are kept within this many ms of the epoch (about 73 million years), so arithmetic on
/// them cannot overflow; Prometheus's own limits are wider and no history reaches either.
const FARTHEST_MS: i64 = i64::MAX / 4;

/// The value of form parameter `name` as Go's `Request.FormValue` gives it: the first one, or
/// empty when there is none.
pub fn form_value<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn invalid_parameter(name: &str, reason: impl std::fmt::Display) -> BadRequest {
    BadRequest(format!("invalid parameter {name:?}: {reason}"))
}

/// A time parameter, or Prometheus's reason why not.
fn api_time(text: &str) -> Result<i64, String> {
    parse_time(text)
        .map(|ms| ms.clamp(-FARTHEST_MS, FARTHEST_MS))
        .map_err(|_| format!("cannot parse {text:?} to a valid timestamp"))
}

/// A duration parameter, or Prometheus's reason why not.
fn api_duration(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        if (seconds * 1e9).abs() > i64::MAX as f64 {
            return Err(format!(
                "cannot parse {text:?} to a valid duration. It overflows int64"
            ));
        }
    }
    parse_duration(text)
        .map(|ms| ms.clamp(-FARTHEST_MS, FARTHEST_MS))
        .map_err(|_| format!("cannot parse {text:?} to a valid duration"))
}

/// The `timeout` parameter (default and limit [`QUERY_TIMEOUT_MS`]), ms.
fn api_timeout(params: &[(String, String)]) -> Result<i64, BadRequest> {
    match form_value(params, "timeout") {
        "" => Ok(QUERY_TIMEOUT_MS),
        text => api_duration(text)
            .map(|ms| ms.min(QUERY_TIMEOUT_MS))
            .map_err(|e| invalid_parameter("timeout", e)),
    }
}

/// An instant query's parameters: `query`, `time` (default now), `timeout`.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantQuery {
    /// The PromQL expression, as given.
    pub query: String,
    /// When to evaluate it, ms.
    pub at_ms: i64,
    /// How long it may take, ms.
    pub timeout_ms: i64,
}

impl InstantQuery {
    /// Reads the parameters as Prometheus's `/api/v1/query` does, in its order and with its
    /// messages; `now_ms` is the default time.
    ///
    /// ```
    /// use ipfs_sentinel::history::query::InstantQuery;
    /// let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
    ///     pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    /// };
    /// let q = InstantQuery::read(&p(&[("query", "up"), ("time", "1.5")]), 9_000).unwrap();
    /// assert_eq!((q.query.as_str(), q.at_ms), ("up", 1_500));
    /// let e = InstantQuery::read(&p(&[("query", "up"), ("time", "soon")]), 0).unwrap_err();
    /// assert_eq!(e.0, "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"soon\" to a valid timestamp");
    /// ```
    pub fn read(params: &[(String, String)], now_ms: i64) -> Result<InstantQuery, BadRequest> {
        let at_ms = match form_value(params, "time") {
            "" => now_ms,
            text => api_time(text).map_err(|e| {
                invalid_parameter("time", format!("Invalid time value for 'time': {e}"))
            })?,
        };
        Ok(InstantQuery {
            timeout_ms: api_timeout(params)?,
            query: form_value(params, "query").to_owned(),
            at_ms,
        })
    }
}

/// A range query's parameters: `query`, `start`, `end`, `step`, `timeout`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    /// The PromQL expression, as given.
    pub query: String,
    /// The first step, ms.
    pub start_ms: i64,
    /// No step after this, ms.
    pub end_ms: i64,
    /// Between steps, ms (positive).
    pub step_ms: i64,
    /// How long it may take, ms.
    pub timeout_ms: i64,
}

impl RangeQuery {
    /// Reads the parameters as Prometheus's `/api/v1/query_range` does, in its order and with
    /// its messages: no more than 11,000 steps after the first.
    ///
    /// ```
    /// use ipfs_sentinel::history::query::RangeQuery;
    /// let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
    ///     pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    /// };
    /// let q = RangeQuery::read(&p(&[("query", "up"), ("start", "0"), ("end", "3600"), ("step", "15s")])).unwrap();
    /// assert_eq!((q.start_ms, q.end_ms, q.step_ms), (0, 3_600_000, 15_000));
    /// let e = RangeQuery::read(&p(&[("query", "up"), ("start", "0"), ("end", "86400"), ("step", "1")])).unwrap_err();
    /// assert!(e.0.starts_with("exceeded maximum resolution of 11,000 points per timeseries"));
    /// ```
    pub fn read(params: &[(String, String)]) -> Result<RangeQuery, BadRequest> {
        let start_ms =
            api_time(form_value(params, "start")).map_err(|e| invalid_parameter("start", e))?;
        let end_ms =
            api_time(form_value(params, "end")).map_err(|e| invalid_parameter("end", e))?;
        if end_ms < start_ms {
            return Err(invalid_parameter(
                "end",
                "end timestamp must not be before start time",
            ));
        }
        let step_ms =
            api_duration(form_value(params, "step")).map_err(|e| invalid_parameter("step", e))?;
        if step_ms <= 0 {
            return Err(invalid_parameter(
                "step",
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if (end_ms - start_ms) / step_ms > MAX_POINTS_PER_SERIES {
            return Err(BadRequest(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        Ok(RangeQuery {
            timeout_ms: api_timeout(params)?,
            query: form_value(params, "query").to_owned(),
            start_ms,
            end_ms,
            step_ms,
        })
    }

    /// The evaluation times, oldest first.
    pub fn steps(&self) -> impl Iterator<Item = i64> + '_ {
        (0..)
            .map(|i| self.start_ms + i * self.step_ms)
            .take_while(|t| *t <= self.end_ms)
    }
}

/// A checked time window with an optional step and function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// First instant, ms.
    pub start_ms: i64,
    /// Last instant, ms.
    pub end_ms: i64,
    /// Step, ms, if any.
    pub step_ms: Option<i64>,
    /// Aggregation function (with a step).
    pub function: Option<Function>,
}

/// The raw parameters of a window, as strings from a URL or the command line.
#[derive(Debug, Clone, Default)]
pub struct WindowParams<'a> {
    /// `start`: a time; default the oldest sample.
    pub start: Option<&'a str>,
    /// `end`: a time; default now.
    pub end: Option<&'a str>,
    /// `range`: a duration back from `end` (instead of `start`).
    pub range: Option<&'a str>,
    /// `step`: a duration.
    pub step: Option<&'a str>,
    /// `fn`: the aggregation function.
    pub function: Option<&'a str>,
}

impl WindowParams<'_> {
    /// Checks the parameters: `oldest_ms` and `now_ms` give the defaults.
    pub fn check(
        &self,
        oldest_ms: Option<i64>,
        now_ms: i64,
        step_required: bool,
    ) -> Result<Window, BadRequest> {
        let end_ms = self.end.map(parse_time).transpose()?.unwrap_or(now_ms);
        let start_ms = match (self.start, self.range) {
            (Some(_), Some(_)) => return Err(BadRequest("give start or range, not both".into())),
            (Some(s), None) => parse_time(s)?,
            (None, Some(r)) => end_ms - parse_duration(r)?,
            (None, None) => oldest_ms.unwrap_or(end_ms).min(end_ms),
        };
        if end_ms < start_ms {
            return Err(BadRequest(format!(
                "end ({}) is before start ({})",
                rfc3339(end_ms),
                rfc3339(start_ms)
            )));
        }
        let step_ms = self.step.map(parse_duration).transpose()?;
        if let Some(step) = step_ms {
            if step <= 0 {
                return Err(BadRequest("step must be greater than 0".into()));
            }
            let points = (end_ms - start_ms) / step + 1;
            if points > MAX_POINTS_PER_SERIES {
                return Err(BadRequest(format!(
                    "step {} gives {points} points per series, more than the {MAX_POINTS_PER_SERIES} allowed: raise the step or narrow the range",
                    self.step.unwrap_or("")
                )));
            }
        } else if step_required {
            return Err(BadRequest("step is required".into()));
        }
        let function = self
            .function
            .map(str::parse::<Function>)
            .transpose()
            .map_err(BadRequest)?;
        if function.is_some() && step_ms.is_none() {
            return Err(BadRequest("fn needs a step to aggregate over".into()));
        }
        Ok(Window {
            start_ms,
            end_ms,
            step_ms,
            function,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_like_prometheus() {
        let k = SeriesKey::new(
            "ipfs_sentinel_node_disk_usage_ratio",
            &[("mountpoint", "/data")],
        );
        assert!(Selector::parse("ipfs_sentinel_node_disk_usage_ratio")
            .unwrap()
            .matches(&k));
        assert!(Selector::parse("{mountpoint=~\"/d.*\"}")
            .unwrap()
            .matches(&k));
        assert!(
            !Selector::parse("{mountpoint=~\"/d\"}").unwrap().matches(&k),
            "regexes are anchored"
        );
        assert!(
            Selector::parse("{__name__=~\"ipfs_.*\", mountpoint!=\"/\"}")
                .unwrap()
                .matches(&k)
        );
        assert!(Selector::parse("x{missing=\"\"}")
            .unwrap()
            .matches(&SeriesKey::new("x", &[])));
        assert!(Selector::parse("rate(x[5m])")
            .unwrap_err()
            .0
            .contains("not a plain series selector"));
        assert!(Selector::parse("x{")
            .unwrap_err()
            .0
            .starts_with("malformed selector"));
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("1795867200").unwrap(), 1_795_867_200_000);
        assert_eq!(parse_time("1795867200.25").unwrap(), 1_795_867_200_250);
        assert_eq!(
            parse_time("2026-11-28T12:00:00Z").unwrap(),
            1_795_867_200_000
        );
        assert_eq!(
            parse_time("2026-11-28T14:00:00+02:00").unwrap(),
            1_795_867_200_000
        );
        assert!(parse_time("yesterday").unwrap_err().0.contains("RFC 3339"));
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        for refused in ["1m1h", "5m5m", "1 hour", "1.5h"] {
            let e = parse_duration(refused).unwrap_err().0;
            assert!(e.contains("not a duration"), "{e}");
        }
    }

    #[test]
    fn window_checks() {
        let p = |start, end, step| WindowParams {
            start,
            end,
            step,
            ..Default::default()
        };
        let w = p(None, Some("1000"), Some("1h"))
            .check(Some(0), 5_000_000, false)
            .unwrap();
        assert_eq!(
            (w.start_ms, w.end_ms, w.step_ms),
            (0, 1_000_000, Some(3_600_000))
        );
        assert!(p(Some("2000"), Some("1000"), None)
            .check(None, 0, false)
            .unwrap_err()
            .0
            .contains("before start"));
        assert!(p(Some("0"), Some("10"), Some("0"))
            .check(None, 0, false)
            .unwrap_err()
            .0
            .contains("greater than 0"));
        assert!(p(Some("0"), Some("10"), Some("-5"))
            .check(None, 0, false)
            .is_err());
        assert!(p(Some("0"), Some("86400"), Some("1s"))
            .check(None, 0, false)
            .unwrap_err()
            .0
            .contains("more than the 11000"));
        assert!(p(Some("0"), Some("10"), None)
            .check(None, 0, true)
            .unwrap_err()
            .0
            .contains("required"));
        let bad_fn = WindowParams {
            function: Some("median"),
            step: Some("1m"),
            ..Default::default()
        };
        assert!(bad_fn
            .check(None, 0, false)
            .unwrap_err()
            .0
            .contains("unknown function"));
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn query_api_parameters_are_refused_with_prometheus_messages() {
        let range = |p: &[(&str, &str)]| RangeQuery::read(&pairs(p)).map_err(|e| e.0);
        assert_eq!(
            range(&[("query", "x"), ("end", "10"), ("step", "1")]).unwrap_err(),
            "invalid parameter \"start\": cannot parse \"\" to a valid timestamp"
        );
        assert_eq!(
            range(&[("start", "10"), ("end", "5"), ("step", "1")]).unwrap_err(),
            "invalid parameter \"end\": end timestamp must not be before start time"
        );
        assert_eq!(
            range(&[("start", "0"), ("end", "5"), ("step", "often")]).unwrap_err(),
            "invalid parameter \"step\": cannot parse \"often\" to a valid duration"
        );
        assert!(range(&[("start", "0"), ("end", "5"), ("step", "-1")])
            .unwrap_err()
            .contains("zero or negative query resolution step widths"));
        assert!(range(&[("start", "0"), ("end", "5"), ("step", "1e300")])
            .unwrap_err()
            .ends_with("It overflows int64"));
        assert_eq!(
            range(&[
                ("start", "0"),
                ("end", "5"),
                ("step", "1"),
                ("timeout", "x")
            ])
            .unwrap_err(),
            "invalid parameter \"timeout\": cannot parse \"x\" to a valid duration"
        );
        // 11,000 steps after the first are allowed, one more is not.
        assert!(range(&[("start", "0"), ("end", "11000"), ("step", "1")]).is_ok());
        assert!(range(&[("start", "0"), ("end", "11001"), ("step", "1")])
            .unwrap_err()
            .starts_with("exceeded maximum resolution of 11,000 points"));
        let q = range(&[
            ("query", "up"),
            ("start", "2026-11-28T12:00:00Z"),
            ("end", "1795867230"),
            ("step", "15"),
            ("timeout", "5m"),
        ])
        .unwrap();
        assert_eq!(
            q.steps().collect::<Vec<_>>(),
            [1_795_867_200_000, 1_795_867_215_000, 1_795_867_230_000]
        );
        assert_eq!(
            q.timeout_ms, QUERY_TIMEOUT_MS,
            "never longer than the limit"
        );
        let far = range(&[("start", "-1e300"), ("end", "1e300"), ("step", "1e9")]).unwrap_err();
        assert!(far.starts_with("exceeded maximum resolution"), "{far}");
        let i = InstantQuery::read(&pairs(&[("query", "1"), ("timeout", "2s")]), 7).unwrap();
        assert_eq!((i.at_ms, i.timeout_ms), (7, 2_000));
    }
}
