//! PromQL functions as Prometheus 2.42 computes them: the counter and gauge range functions
//! (`rate`, `increase`, `delta` with `extrapolatedRate`; `irate`, `idelta`, `deriv`,
//! `predict_linear`, `resets`, `changes`, `holt_winters`), the `*_over_time` family, the
//! element-wise maths, `absent`, `time`, `timestamp`, `vector`, `scalar`, `label_replace`,
//! `label_join`, `sort` and `sort_desc`.
//!
//! Owns each function's arithmetic and which labels its result keeps (most drop `__name__`).
//! Pure, like the rest of the evaluator.

use promql_parser::parser::{Call, Expr};

use super::{EvalError, Evaluator, Labels, RangeSeries, Sample, Value, NAME};

/// Every function [`call`] evaluates (`double_exponential_smoothing` is 2.42's `holt_winters`).
pub const SUPPORTED: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
    "double_exponential_smoothing",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "last_over_time",
    "present_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "quantile_over_time",
    "absent",
    "absent_over_time",
    "abs",
    "ceil",
    "floor",
    "exp",
    "sqrt",
    "ln",
    "log2",
    "log10",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "time",
    "timestamp",
    "vector",
    "scalar",
    "sort",
    "sort_desc",
    "label_replace",
    "label_join",
];

fn arg(call: &Call, i: usize) -> Result<&Expr, EvalError> {
    call.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| EvalError(format!("{}: missing argument {}", call.func.name, i + 1)))
}

fn matrix(ev: &Evaluator<'_>, e: &Expr) -> Result<(Vec<RangeSeries>, i64), EvalError> {
    let Some((_, _, range_ms)) = ev.window(e) else {
        return Err(EvalError(
            "expected a range vector selector such as x[5m]".into(),
        ));
    };
    match ev.eval(e)? {
        Value::Matrix(m) => Ok((m, range_ms)),
        other => Err(EvalError(format!(
            "expected a range vector, got {}",
            super::type_name(&other)
        ))),
    }
}

fn without_name(mut labels: Labels) -> Labels {
    labels.remove(NAME);
    labels
}

/// Applies `f` to every series of a range vector; series for which it gives `None` are left
/// out. The result drops `__name__` unless `keep_name`.
fn over_series(
    ev: &Evaluator<'_>,
    e: &Expr,
    keep_name: bool,
    f: impl Fn(&[(i64, f64)], i64) -> Option<f64>,
) -> Result<Value, EvalError> {
    let (series, range_ms) = matrix(ev, e)?;
    Ok(Value::Vector(
        series
            .into_iter()
            .filter_map(|s| {
                let value = f(&s.points, range_ms)?;
                let labels = if keep_name {
                    s.labels
                } else {
                    without_name(s.labels)
                };
                Some(Sample {
                    labels,
                    value,
                    at_ms: ev.at_ms(),
                })
            })
            .collect(),
    ))
}

/// Prometheus's `extrapolatedRate` (rate, increase, delta).
fn extrapolated_rate(
    points: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    counter: bool,
    rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.1 - first.1;
    if counter {
        let mut previous = 0.0;
        for &(_, v) in points {
            if v < previous {
                result += previous;
            }
            previous = v;
        }
    }
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let average_gap = sampled / (points.len() - 1) as f64;
    if counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_gap * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average_gap / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average_gap / 2.0
    };
    result *= interval / sampled;
    if rate {
        result /= range_ms as f64 / 1000.0;
    }
    Some(result)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(points: &[(i64, f64)], rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (previous, last) = (points[points.len() - 2], points[points.len() - 1]);
    let mut result = last.1 - previous.1;
    if rate && last.1 < previous.1 {
        result = last.1;
    }
    let interval = last.0 - previous.0;
    if interval == 0 {
        return None;
    }
    if rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept, x in seconds from `intercept_ms`.
fn linear_regression(points: &[(i64, f64)], intercept_ms: i64) -> (f64, f64) {
    let first = points[0].1;
    if points.iter().all(|p| p.1 == first) {
        return if first.is_infinite() {
            (f64::NAN, f64::NAN)
        } else {
            (0.0, first)
        };
    }
    let n = points.len() as f64;
    let (mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0);
    for &(t, v) in points {
        let x = (t - intercept_ms) as f64 / 1000.0;
        sx += x;
        sy += v;
        sxy += x * v;
        sx2 += x * x;
    }
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Population variance, as Prometheus's `stdvar_over_time` (Welford).
fn variance(values: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for v in values {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        m2 += delta * (v - mean);
    }
    m2 / count
}

/// The φ-quantile of values, as Prometheus's `quantile` (linear interpolation).
pub fn quantile(phi: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let rank = phi * (n - 1.0);
    let lower = rank.floor().max(0.0) as usize;
    let upper = (rank.floor() + 1.0).min(n - 1.0) as usize;
    let weight = rank - rank.floor();
    values[lower] * (1.0 - weight) + values[upper] * weight
}

fn holt_winters(points: &[(i64, f64)], sf: f64, tf: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let trend = |i: usize, s0: f64, s1: f64, b: f64| {
        if i == 0 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        }
    };
    let (mut s0, mut s1) = (0.0, points[0].1);
    let mut b = points[1].1 - points[0].1;
    for (i, &(_, v)) in points.iter().enumerate().skip(1) {
        let x = sf * v;
        b = trend(i - 1, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// Applies `f` to every sample's value, dropping `__name__`.
fn element_wise(ev: &Evaluator<'_>, e: &Expr, f: impl Fn(f64) -> f64) -> Result<Value, EvalError> {
    Ok(Value::Vector(
        ev.vector(e)?
            .into_iter()
            .map(|s| Sample {
                labels: without_name(s.labels),
                value: f(s.value),
                at_ms: s.at_ms,
            })
            .collect(),
    ))
}

/// The labels `absent()` gives: the selector's equality matchers (not the name), unless one
/// label is matched twice.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    let mut labels = Labels::new();
    let mut twice = std::collections::HashSet::new();
    for m in &vs.matchers.matchers {
        if m.name == NAME || !matches!(m.op, promql_parser::label::MatchOp::Equal) {
            continue;
        }
        if labels.insert(m.name.clone(), m.value.clone()).is_some() {
            twice.insert(m.name.clone());
        }
    }
    for name in twice {
        labels.remove(&name);
    }
    labels
}

fn string_arg(ev: &Evaluator<'_>, call: &Call, i: usize) -> Result<String, EvalError> {
    match ev.eval(arg(call, i)?)? {
        Value::String(s) => Ok(s),
        other => Err(EvalError(format!(
            "{}: argument {} must be a string, got {}",
            call.func.name,
            i + 1,
            super::type_name(&other)
        ))),
    }
}

fn check_label_name(name: &str) -> Result<(), EvalError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(EvalError(format!(
            "invalid destination label name in label_replace(): {name}"
        )))
    }
}

fn label_replace(ev: &Evaluator<'_>, call: &Call) -> Result<Value, EvalError> {
    let v = ev.vector(arg(call, 0)?)?;
    let (dst, replacement, src, pattern) = (
        string_arg(ev, call, 1)?,
        string_arg(ev, call, 2)?,
        string_arg(ev, call, 3)?,
        string_arg(ev, call, 4)?,
    );
    let re = regex::Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| {
        EvalError(format!(
            "invalid regular expression in label_replace(): {pattern}: {e}"
        ))
    })?;
    check_label_name(&dst)?;
    let out: Vec<Sample> = v
        .into_iter()
        .map(|mut s| {
            let value = s.labels.get(&src).cloned().unwrap_or_default();
            if let Some(caps) = re.captures(&value) {
                let mut expanded = String::new();
                caps.expand(&replacement, &mut expanded);
                if expanded.is_empty() {
                    s.labels.remove(&dst);
                } else {
                    s.labels.insert(dst.clone(), expanded);
                }
            }
            s
        })
        .collect();
    super::check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn label_join(ev: &Evaluator<'_>, call: &Call) -> Result<Value, EvalError> {
    let v = ev.vector(arg(call, 0)?)?;
    let (dst, sep) = (string_arg(ev, call, 1)?, string_arg(ev, call, 2)?);
    check_label_name(&dst)?;
    let sources = (3..call.args.args.len())
        .map(|i| string_arg(ev, call, i))
        .collect::<Result<Vec<_>, _>>()?;
    let out: Vec<Sample> = v
        .into_iter()
        .map(|mut s| {
            let joined: Vec<String> = sources
                .iter()
                .map(|l| s.labels.get(l).cloned().unwrap_or_default())
                .collect();
            let joined = joined.join(&sep);
            if joined.is_empty() {
                s.labels.remove(&dst);
            } else {
                s.labels.insert(dst.clone(), joined);
            }
            s
        })
        .collect();
    super::check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// Evaluates a function call.
pub fn call(ev: &Evaluator<'_>, call: &Call) -> Result<Value, EvalError> {
    let name = call.func.name;
    let at = ev.at_ms();
    let range_bounds = |e: &Expr| -> (i64, i64) { ev.window(e).map_or((at, at), |w| (w.0, w.1)) };
    let scalar = |i: usize| -> Result<f64, EvalError> { ev.scalar(arg(call, i)?) };
    match name {
        "rate" | "increase" | "delta" => {
            let e = arg(call, 0)?;
            let (start, end) = range_bounds(e);
            let counter = name != "delta";
            over_series(ev, e, false, |p, r| {
                extrapolated_rate(p, start, end, r, counter, name == "rate")
            })
        }
        "irate" => over_series(ev, arg(call, 0)?, false, |p, _| instant_value(p, true)),
        "idelta" => over_series(ev, arg(call, 0)?, false, |p, _| instant_value(p, false)),
        "deriv" => over_series(ev, arg(call, 0)?, false, |p, _| {
            (p.len() >= 2).then(|| linear_regression(p, p[0].0).0)
        }),
        "predict_linear" => {
            let seconds = scalar(1)?;
            over_series(ev, arg(call, 0)?, false, |p, _| {
                (p.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(p, at);
                    slope * seconds + intercept
                })
            })
        }
        "resets" => over_series(ev, arg(call, 0)?, false, |p, _| {
            Some(p.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64)
        }),
        "changes" => over_series(ev, arg(call, 0)?, false, |p, _| {
            Some(
                p.windows(2)
                    .filter(|w| w[1].1 != w[0].1 && !(w[1].1.is_nan() && w[0].1.is_nan()))
                    .count() as f64,
            )
        }),
        "double_exponential_smoothing" => {
            let (sf, tf) = (scalar(1)?, scalar(2)?);
            if sf <= 0.0 || sf >= 1.0 {
                return Err(EvalError(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
                )));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return Err(EvalError(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
                )));
            }
            over_series(ev, arg(call, 0)?, false, |p, _| holt_winters(p, sf, tf))
        }
        "avg_over_time" => over_series(ev, arg(call, 0)?, false, |p, _| {
            Some(p.iter().map(|x| x.1).sum::<f64>() / p.len() as f64)
        }),
        "sum_over_time" => over_series(ev, arg(call, 0)?, false, |p, _| {
            Some(p.iter().map(|x| x.1).sum())
        }),
        "count_over_time" => over_series(ev, arg(call, 0)?, false, |p, _| Some(p.len() as f64)),
        "min_over_time" => over_series(ev, arg(call, 0)?, false, |p, _| {
            Some(
                p.iter()
                    .map(|x| x.1)
                    .fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
            )
        }),
        "max_over_time" => over_series(ev, arg(call, 0)?, false, |p, _| {
            Some(
                p.iter()
                    .map(|x| x.1)
                    .fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
            )
        }),
        "last_over_time" => over_series(ev, arg(call, 0)?, true, |p, _| p.last().map(|x| x.1)),
        "present_over_time" => over_series(ev, arg(call, 0)?, false, |_, _| Some(1.0)),
        "stdvar_over_time" => over_series(ev, arg(call, 0)?, false, |p, _| {
            Some(variance(p.iter().map(|x| x.1)))
        }),
        "stddev_over_time" => over_series(ev, arg(call, 0)?, false, |p, _| {
            Some(variance(p.iter().map(|x| x.1)).sqrt())
        }),
        "quantile_over_time" => {
            let phi = scalar(0)?;
            over_series(ev, arg(call, 1)?, false, |p, _| {
                Some(quantile(phi, p.iter().map(|x| x.1).collect()))
            })
        }
        "absent" | "absent_over_time" => {
            let e = arg(call, 0)?;
            let empty = match ev.eval(e)? {
                Value::Vector(v) => v.is_empty(),
                Value::Matrix(m) => m.is_empty(),
                _ => return Err(EvalError(format!("{name}: expected a vector"))),
            };
            Ok(Value::Vector(if empty {
                vec![Sample {
                    labels: absent_labels(e),
                    value: 1.0,
                    at_ms: at,
                }]
            } else {
                Vec::new()
            }))
        }
        "abs" => element_wise(ev, arg(call, 0)?, f64::abs),
        "ceil" => element_wise(ev, arg(call, 0)?, f64::ceil),
        "floor" => element_wise(ev, arg(call, 0)?, f64::floor),
        "exp" => element_wise(ev, arg(call, 0)?, f64::exp),
        "sqrt" => element_wise(ev, arg(call, 0)?, f64::sqrt),
        "ln" => element_wise(ev, arg(call, 0)?, f64::ln),
        "log2" => element_wise(ev, arg(call, 0)?, f64::log2),
        "log10" => element_wise(ev, arg(call, 0)?, f64::log10),
        "round" => {
            let to = if call.args.args.len() > 1 {
                scalar(1)?
            } else {
                1.0
            };
            let inverse = 1.0 / to;
            element_wise(ev, arg(call, 0)?, |v| (v * inverse + 0.5).floor() / inverse)
        }
        "clamp" => {
            let (lo, hi) = (scalar(1)?, scalar(2)?);
            if hi < lo {
                return Ok(Value::Vector(Vec::new()));
            }
            element_wise(ev, arg(call, 0)?, |v| v.max(lo).min(hi))
        }
        "clamp_min" => {
            let lo = scalar(1)?;
            element_wise(ev, arg(call, 0)?, |v| v.max(lo))
        }
        "clamp_max" => {
            let hi = scalar(1)?;
            element_wise(ev, arg(call, 0)?, |v| v.min(hi))
        }
        "time" => Ok(Value::Scalar(at as f64 / 1000.0)),
        "timestamp" => Ok(Value::Vector(
            ev.vector(arg(call, 0)?)?
                .into_iter()
                .map(|s| Sample {
                    labels: without_name(s.labels),
                    value: s.at_ms as f64 / 1000.0,
                    at_ms: at,
                })
                .collect(),
        )),
        "vector" => Ok(Value::Vector(vec![Sample {
            labels: Labels::new(),
            value: scalar(0)?,
            at_ms: at,
        }])),
        "scalar" => {
            let v = ev.vector(arg(call, 0)?)?;
            Ok(Value::Scalar(if v.len() == 1 {
                v[0].value
            } else {
                f64::NAN
            }))
        }
        "sort" | "sort_desc" => {
            let mut v = ev.vector(arg(call, 0)?)?;
            v.sort_by(|a, b| a.value.total_cmp(&b.value));
            if name == "sort_desc" {
                v.reverse();
            }
            Ok(Value::Vector(v))
        }
        "label_replace" => label_replace(ev, call),
        "label_join" => label_join(ev, call),
        other => Err(EvalError(format!(
            "function {other}() is not supported by ipfs-sentinel's evaluator"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(super::quantile(0.5, vec![1.0, 2.0, 3.0, 4.0]), 2.5);
        assert_eq!(super::quantile(0.0, vec![3.0, 1.0]), 1.0);
        assert!(super::quantile(0.5, vec![]).is_nan());
    }

    #[test]
    fn label_replace_and_join() {
        let src = Fixed::from(
            &[("up{instance=\"host:9100\",job=\"n\"}", vec![1.0])],
            15_000,
        );
        let got = eval(
            &src,
            "label_replace(up, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
            0,
        )
        .unwrap();
        assert_eq!(
            got[0].0,
            "{__name__=\"up\",host=\"host\",instance=\"host:9100\",job=\"n\"}"
        );
        let got = eval(
            &src,
            "label_join(up, \"both\", \"-\", \"job\", \"instance\")",
            0,
        )
        .unwrap();
        assert!(got[0].0.contains("both=\"n-host:9100\""));
        assert!(eval(
            &src,
            "label_replace(up, \"1x\", \"$1\", \"instance\", \"(.*)\")",
            0
        )
        .is_err());
    }

    #[test]
    fn absent_takes_the_equality_matchers() {
        let src = Fixed::from(&[("up{job=\"a\"}", vec![1.0])], 15_000);
        assert!(eval(&src, "absent(up{job=\"a\"})", 0).unwrap().is_empty());
        let got = eval(&src, "absent(nothing{job=\"b\",instance=~\"x.*\"})", 0).unwrap();
        assert_eq!(got, vec![("{job=\"b\"}".to_owned(), 1.0)]);
    }
}
