//! The local history as a source for the PromQL evaluator: selects series by matchers and
//! reads their points, so rules evaluate over what this node recorded.
//!
//! Owns only the translation between the history's series keys and PromQL's labels.

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
        self.series(|k| {
            matchers
                .iter()
                .all(|m| m.is_match(k.label(&m.name).unwrap_or("")))
        })
        .into_iter()
        .map(|key| {
            let points = self
                .points(&key, start_ms, end_ms)
                .map_err(|e| EvalError(format!("history unreadable: {e}")))?;
            let mut labels: Labels = key.labels.iter().cloned().collect();
            labels.insert(NAME.to_owned(), key.name.clone());
            Ok(RangeSeries { labels, points })
        })
        .filter(|r| r.as_ref().map_or(true, |s| !s.points.is_empty()))
        .collect()
    }
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
}
