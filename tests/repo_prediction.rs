//! The repo's growth rate and time-to-full, as the `ipfs` collector computes them from the
//! sizes it saw, against the crate's own PromQL engine running `deriv` and `predict_linear`
//! over the same samples (the engine is checked against Prometheus's test data in
//! `promql_conformance.rs`).

use ipfs_sentinel::collect::ipfs::{RepoGrowth, GROWTH_WINDOW_MS};
use ipfs_sentinel::rules::promql::{
    parse, EvalError, Evaluator, Labels, Queryable, RangeSeries, Value,
};
use promql_parser::label::Matcher;

/// `repo` sampled at the given points.
struct Repo(Vec<(i64, f64)>);

impl Queryable for Repo {
    fn select(&self, _: &[Matcher], start: i64, end: i64) -> Result<Vec<RangeSeries>, EvalError> {
        let labels: Labels = [("__name__".to_owned(), "repo".to_owned())].into();
        let points = self
            .0
            .iter()
            .copied()
            .filter(|(t, _)| *t >= start && *t <= end)
            .collect();
        Ok(vec![RangeSeries { labels, points }])
    }
}

fn scalar_of(source: &Repo, at_ms: i64, query: &str) -> f64 {
    match Evaluator::new(source, at_ms)
        .eval(&parse(query).unwrap())
        .unwrap()
    {
        Value::Vector(v) if v.len() == 1 => v[0].value,
        other => panic!("{query} at {at_ms}: {other:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn growth_and_time_to_full_match_deriv_and_predict_linear() {
    // Two hours of sizes every 45 to 75 s, growing faster and faster, with GC dips.
    let mut samples = Vec::new();
    let (mut t, mut size) = (1_796_000_000_000_i64, 5.0e9);
    for i in 0..150_u32 {
        t += 45_000 + i64::from(i * 7919 % 30) * 1000;
        size += 2.0e5 * f64::from(i) + if i % 37 == 0 { -4.0e7 } else { 1.5e6 };
        samples.push((t, size));
    }
    let source = Repo(samples.clone());
    let mut growth = RepoGrowth::new(GROWTH_WINDOW_MS);
    let mut compared = 0;
    for (i, &(at, bytes)) in samples.iter().enumerate() {
        growth.observe(at, bytes);
        let Some(trend) = growth.trend() else {
            assert_eq!(i, 0, "two sizes give a trend");
            continue;
        };
        let deriv = scalar_of(&source, at, "deriv(repo[1h])");
        assert!(
            close(trend.bytes_per_second, deriv),
            "at {i}: {} vs deriv {deriv}",
            trend.bytes_per_second
        );
        let now = scalar_of(&source, at, "predict_linear(repo[1h], 0)");
        assert!(
            close(trend.fitted_bytes, now),
            "at {i}: {} vs {now}",
            trend.fitted_bytes
        );
        let storage_max = bytes + 3.0e9;
        if let Some(seconds) = trend.seconds_until(storage_max) {
            let there = scalar_of(&source, at, &format!("predict_linear(repo[1h], {seconds})"));
            assert!(
                (there - storage_max).abs() < 1e-3,
                "at {i}: predict_linear(repo[1h], {seconds}) = {there}, not {storage_max}"
            );
            compared += 1;
        } else {
            assert!(
                deriv <= 0.0,
                "at {i}: absent only when not growing ({deriv})"
            );
        }
    }
    assert!(compared > 100, "{compared} predictions compared");
}
