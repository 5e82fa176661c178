//! The local history as a source for the PromQL evaluator: selects series by matchers and
//! reads their points, so rules evaluate over what this node recorded.
//!
//! Owns the translation between the history's series keys and PromQL's labels, and staleness:
//! every tick records every series the collection had, so a series missing from a tick after
//! one it had a value in has gone (an unplugged disk, a peer removed). Such a tick gets
//! Prometheus's stale marker, as a scrape that no longer finds a series does, so the series
//! drops out of instant vectors at once instead of lingering for the 5-minute lookback.

use promql_parser::label::Matcher;

use super::promql::{EvalError, Labels, Queryable, RangeSeries, NAME};
use crate::history::History;

impl Queryable for History {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        let ticks = self.ticks(start_ms, end_ms);
        let keep = |k: &crate::history::SeriesKey| {
            matchers
                .iter()
                .all(|m| m.is_match(k.label(&m.name).unwrap_or("")))
        };
        let named = matchers
            .iter()
            .find(|m| m.name == NAME && matches!(m.op, promql_parser::label::MatchOp::Equal));
        match named {
            Some(m) => self.series_named(&m.value, keep),
            None => self.series(keep),
        }
        .into_iter()
        .map(|key| {
            let points = self
                .points(&key, start_ms, end_ms)
                .map_err(|e| EvalError(format!("history unreadable: {e}")))?;
            let points = with_stale_markers(points, &ticks);
            let mut labels: Labels = key.labels.iter().cloned().collect();
            labels.insert(NAME.to_owned(), key.name.clone());
            Ok(RangeSeries { labels, points })
        })
        .filter(|r| r.as_ref().map_or(true, |s| !s.points.is_empty()))
        .collect()
    }
}

/// Adds a stale marker at each tick where the series had no value right after one where it did.
fn with_stale_markers(points: Vec<(i64, f64)>, ticks: &[i64]) -> Vec<(i64, f64)> {
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut next = points.iter().peekable();
    let mut had_value = false;
    for &t in ticks {
        match next.peek() {
            Some(&&(pt, v)) if pt == t => {
                out.push((pt, v));
                next.next();
                had_value = true;
            }
            _ => {
                if had_value {
                    out.push((t, super::promql::STALE_NAN));
                }
                had_value = false;
            }
        }
    }
    // Points at times that are not ticks (none are written so) are kept as they are.
    out.extend(next.copied());
    out
}

#[cfg(test)]
mod tests {
    use crate::history::{History, SeriesKey};
    use crate::rules::promql::{parse, Evaluator, Value};

    #[test]
    fn rules_read_the_history() {
        let mut h = History::new(i64::MAX / 4, 4);
        let key = h.intern(SeriesKey {
            name: "ipfs_sentinel_node_disk_usage_ratio".into(),
            labels: vec![("mountpoint".into(), "/".into())],
        });
        for i in 0..10 {
            h.append(i * 15_000, &[(key.clone(), 0.5 + i as f64 * 0.05)]);
            h.take_full_block();
        }
        let expr =
            parse("100 * max without (mountpoint) (ipfs_sentinel_node_disk_usage_ratio) >= 90")
                .unwrap();
        let Value::Vector(v) = Evaluator::new(&h, 9 * 15_000).eval(&expr).unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 1);
        assert!(
            (v[0].value - 95.0).abs() < 1e-9 && v[0].labels.is_empty(),
            "{v:?}"
        );
        let Value::Vector(v) = Evaluator::new(&h, 5 * 15_000).eval(&expr).unwrap() else {
            panic!()
        };
        assert!(v.is_empty(), "75 % does not fire");
    }

    #[test]
    fn a_series_gone_from_a_tick_is_stale_at_once() {
        let mut h = History::new(i64::MAX / 4, 100);
        let disk = h.intern(SeriesKey {
            name: "disk".into(),
            labels: vec![],
        });
        let other = h.intern(SeriesKey {
            name: "other".into(),
            labels: vec![],
        });
        h.append(0, &[(disk.clone(), 1.0), (other.clone(), 1.0)]);
        h.append(15_000, &[(other.clone(), 1.0)]);
        let eval = |expr: &str, at: i64| {
            let Value::Vector(v) = Evaluator::new(&h, at).eval(&parse(expr).unwrap()).unwrap()
            else {
                panic!("{expr} is a vector")
            };
            v
        };
        assert_eq!(eval("disk", 14_000).len(), 1);
        assert!(
            eval("disk", 15_000).is_empty(),
            "gone at the first tick without it, not 5 minutes later"
        );
        assert_eq!(
            eval("count_over_time(disk[1m])", 15_000)[0].value,
            1.0,
            "stale markers are not samples"
        );
        assert_eq!(eval("other", 15_000).len(), 1);
    }
}
