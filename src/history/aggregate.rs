//! Aggregation of a series' points over a time range and a step: `avg min max sum count last`
//! for any series, `rate` and `increase` for counters (a drop is a reset: the new value counts
//! as the increase), and the cluster summaries (per node and cluster-wide avg, min, max,
//! current) of the `ipfs_sentinel_cluster_node_*{node_id}` series.
//!
//! Pure functions over points; no store, no clock. Buckets are aligned on `start`: bucket `k`
//! holds the points with `start + k*step <= t < start + (k+1)*step` (the last one closed at
//! `end`), and is reported at its start time. Empty buckets are left out. Unlike Prometheus,
//! `rate` and `increase` do not extrapolate to the bucket's edges: they sum the increases
//! between consecutive samples whose later sample falls in the bucket.

use std::str::FromStr;

use serde::Serialize;

use super::Points;

/// An aggregation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// Mean of the values.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Sum of the values ("daily totals" of a gauge).
    Sum,
    /// Number of samples.
    Count,
    /// The latest value.
    Last,
    /// Counter increase per second.
    Rate,
    /// Counter increase.
    Increase,
}

impl FromStr for Function {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "avg" => Function::Avg,
            "min" => Function::Min,
            "max" => Function::Max,
            "sum" => Function::Sum,
            "count" => Function::Count,
            "last" => Function::Last,
            "rate" => Function::Rate,
            "increase" => Function::Increase,
            other => {
                return Err(format!(
                "unknown function {other:?}: use avg, min, max, sum, count, last, rate or increase"
            ))
            }
        })
    }
}

/// Aggregates `points` (oldest first) into buckets of `step_ms` from `start_ms` to `end_ms`.
pub fn aggregate(points: &Points, start_ms: i64, end_ms: i64, step_ms: i64, f: Function) -> Points {
    let step_ms = step_ms.max(1);
    let mut out = Vec::new();
    let mut i = points.partition_point(|p| p.0 < start_ms);
    let mut bucket_start = start_ms;
    while bucket_start <= end_ms {
        let bucket_end = bucket_start.saturating_add(step_ms);
        let from = i;
        while i < points.len() && points[i].0 < bucket_end && points[i].0 <= end_ms {
            i += 1;
        }
        let previous = from.checked_sub(1).map(|p| points[p].1);
        if let Some(v) = reduce(&points[from..i], previous, step_ms, f) {
            out.push((bucket_start, v));
        }
        if i >= points.len() || bucket_end > end_ms {
            break;
        }
        bucket_start = bucket_end;
    }
    out
}

/// Increase from `previous` (the sample before the bucket, if any) through `values`.
fn increase(values: impl Iterator<Item = f64>, mut previous: Option<f64>) -> f64 {
    let mut total = 0.0;
    for v in values {
        if let Some(p) = previous {
            total += if v >= p { v - p } else { v };
        }
        previous = Some(v);
    }
    total
}

fn reduce(bucket: &[(i64, f64)], previous: Option<f64>, step_ms: i64, f: Function) -> Option<f64> {
    if bucket.is_empty() {
        return None;
    }
    let values = bucket.iter().map(|p| p.1);
    Some(match f {
        Function::Avg => values.sum::<f64>() / bucket.len() as f64,
        Function::Min => values.fold(f64::INFINITY, f64::min),
        Function::Max => values.fold(f64::NEG_INFINITY, f64::max),
        Function::Sum => values.sum(),
        Function::Count => bucket.len() as f64,
        Function::Last => bucket[bucket.len() - 1].1,
        Function::Increase => increase(values, previous),
        Function::Rate => increase(values, previous) / (step_ms as f64 / 1000.0),
    })
}

/// avg, min, max and current of some points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Mean.
    pub avg: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// The latest value (cluster-wide: the mean of each node's latest).
    pub current: f64,
}

/// Summarises one series; `None` when it has no points.
pub fn summarize(points: &Points) -> Option<Summary> {
    let last = points.last()?.1;
    Some(Summary {
        avg: points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64,
        min: points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
        max: points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
        current: last,
    })
}

/// Summarises several nodes' series as one cluster: avg, min and max over every sample,
/// current as the mean of each node's latest value.
pub fn summarize_cluster<'a>(per_node: impl IntoIterator<Item = &'a Points>) -> Option<Summary> {
    let (mut n, mut sum, mut min, mut max) = (0usize, 0.0, f64::INFINITY, f64::NEG_INFINITY);
    let mut currents = Vec::new();
    for points in per_node {
        for p in points {
            n += 1;
            sum += p.1;
            min = min.min(p.1);
            max = max.max(p.1);
        }
        if let Some(last) = points.last() {
            currents.push(last.1);
        }
    }
    (n > 0).then(|| Summary {
        avg: sum / n as f64,
        min,
        max,
        current: currents.iter().sum::<f64>() / currents.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, computed the slow way: filter each bucket's points from scratch.
    fn naive(points: &Points, start: i64, end: i64, step: i64, f: Function) -> Points {
        let mut out = Vec::new();
        let mut b = start;
        while b <= end {
            let inside: Vec<(usize, f64)> = points
                .iter()
                .enumerate()
                .filter(|(_, p)| p.0 >= b && p.0 < b + step && p.0 <= end)
                .map(|(i, p)| (i, p.1))
                .collect();
            if !inside.is_empty() {
                let vals: Vec<f64> = inside.iter().map(|x| x.1).collect();
                let mut inc = 0.0;
                for &(i, v) in &inside {
                    if i > 0 {
                        let p = points[i - 1].1;
                        inc += if v >= p { v - p } else { v };
                    }
                }
                let v = match f {
                    Function::Avg => vals.iter().sum::<f64>() / vals.len() as f64,
                    Function::Min => vals.iter().cloned().fold(f64::INFINITY, f64::min),
                    Function::Max => vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                    Function::Sum => vals.iter().sum(),
                    Function::Count => vals.len() as f64,
                    Function::Last => *vals.last().unwrap(),
                    Function::Increase => inc,
                    Function::Rate => inc / (step as f64 / 1000.0),
                };
                out.push((b, v));
            }
            b += step;
        }
        out
    }

    fn close(a: f64, b: f64) -> bool {
        a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    const FUNCTIONS: [Function; 8] = [
        Function::Avg,
        Function::Min,
        Function::Max,
        Function::Sum,
        Function::Count,
        Function::Last,
        Function::Rate,
        Function::Increase,
    ];

    proptest! {
        #[test]
        fn every_function_equals_the_naive_computation(
            gaps in prop::collection::vec(1i64..5_000, 0..300),
            values in prop::collection::vec(-1e6f64..1e6, 300),
            start_off in -10_000i64..10_000,
            span in 0i64..2_000_000,
            step in 1i64..100_000,
            fi in 0usize..8,
        ) {
            let mut t = 0;
            let points: Points = gaps.iter().zip(&values).map(|(g, v)| { t += g; (t, *v) }).collect();
            let (start, end) = (start_off, start_off + span);
            let f = FUNCTIONS[fi];
            let got = aggregate(&points, start, end, step, f);
            let want = naive(&points, start, end, step, f);
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                prop_assert_eq!(g.0, w.0);
                prop_assert!(close(g.1, w.1), "{:?}: {} vs {}", f, g.1, w.1);
            }
        }
    }

    #[test]
    fn counter_resets_count_the_new_value() {
        let points = vec![(0, 10.0), (1000, 15.0), (2000, 3.0), (3000, 5.0)];
        assert_eq!(
            aggregate(&points, 0, 3000, 4000, Function::Increase),
            vec![(0, 5.0 + 3.0 + 2.0)]
        );
        assert_eq!(
            aggregate(&points, 0, 3999, 2000, Function::Rate),
            vec![(0, 2.5), (2000, 2.5)]
        );
    }

    #[test]
    fn hourly_averages_and_daily_totals_are_one_call_each() {
        let hour = 3_600_000;
        let points: Points = (0..96).map(|i| (i * 15 * 60_000, (i % 4) as f64)).collect();
        let hourly = aggregate(&points, 0, 24 * hour - 1, hour, Function::Avg);
        assert_eq!(hourly.len(), 24);
        assert!(hourly.iter().all(|p| p.1 == 1.5));
        assert_eq!(
            aggregate(&points, 0, 24 * hour - 1, 24 * hour, Function::Sum),
            vec![(0, 144.0)]
        );
    }

    #[test]
    fn cluster_summaries() {
        let a = vec![(0, 1.0), (1, 3.0)];
        let b = vec![(0, 10.0)];
        let s = summarize_cluster([&a, &b]).unwrap();
        assert_eq!(
            (s.avg, s.min, s.max, s.current),
            (14.0 / 3.0, 1.0, 10.0, 6.5)
        );
        assert_eq!(summarize(&a).unwrap().current, 3.0);
        assert!(summarize(&vec![]).is_none());
    }
}
