//! Reading a history request: a series selector (`name{label="x", other=~"re.*"}`, parsed with
//! `promql-parser`), times (RFC 3339 or Unix seconds), durations (`1h`, `30m`, or seconds),
//! a step, a function, and the checks on them (end before start, a step that is not positive,
//! more than 11,000 points per series, as Prometheus's query_range refuses).
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
                "{text:?} is not a plain series selector such as name{{label=\"value\"}}; expressions are for the rule engine"
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

    fn key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(a, b)| ((*a).into(), (*b).into()))
                .collect(),
        }
    }

    #[test]
    fn selectors_match_like_prometheus() {
        let k = key(
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
            .matches(&key("x", &[])));
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
}
