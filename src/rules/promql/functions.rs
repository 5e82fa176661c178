//! PromQL functions over float samples, as Prometheus 2.42 and 3.x compute them: the counter
//! and gauge range functions (`rate`, `increase`, `delta` with Prometheus's extrapolation;
//! `irate`, `idelta`, `deriv`, `predict_linear`, `resets`, `changes`, `holt_winters` /
//! `double_exponential_smoothing`), the `*_over_time` family, `histogram_quantile` and
//! `histogram_fraction` over classic `le` buckets, the element-wise maths (trigonometry, `sgn`,
//! `deg`, `rad`, `round`, `clamp*`), the date functions, `absent`, `time`, `timestamp`,
//! `vector`, `scalar`, `pi`, `label_replace`, `label_join` and the `sort*` family.
//!
//! Owns each function's arithmetic (kernels in [`super::numeric`]) and which labels its result
//! keeps: every function drops `__name__` except `last_over_time`, `label_*`, `sort*`, `scalar`
//! and `vector`. Native histograms are out of scope (the history holds floats): the functions
//! that exist only for them are refused by name. Pure, like the rest of the evaluator.

use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};

use super::numeric::{self, Bucket, Version};
use super::{EvalError, Evaluator, Labels, RangeSeries, Sample, Value, NAME};

/// Every function [`call`] evaluates (`double_exponential_smoothing` is also 2.42's
/// `holt_winters`).
pub const SUPPORTED: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "double_exponential_smoothing",
    "exp",
    "floor",
    "histogram_fraction",
    "histogram_quantile",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "vector",
    "year",
];

/// Functions that only read native histograms, which the history does not hold.
pub const NATIVE_HISTOGRAM_ONLY: &[&str] = &[
    "histogram_avg",
    "histogram_count",
    "histogram_sum",
    "histogram_stddev",
    "histogram_stdvar",
];

/// Why a function is not evaluated, for [`super::check_supported`]: native-histogram functions
/// and `info` (whose tests need native data and metadata series) are named as such.
pub fn unsupported_reason(name: &str) -> Option<String> {
    if SUPPORTED.contains(&name) {
        return None;
    }
    Some(if NATIVE_HISTOGRAM_ONLY.contains(&name) {
        format!(
            "function {name}() reads native histograms, which ipfs-sentinel's history does not hold (it stores float samples)"
        )
    } else if matches!(name, "first_over_time" | "ts_of_first_over_time") {
        format!(
            "function {name}() is in neither Prometheus 2.42 nor Prometheus 3.5 (it came after 3.5): use last_over_time() or min_over_time() over a window instead"
        )
    } else if name == "info" {
        "function info() is not supported by ipfs-sentinel's evaluator: it joins target-info metadata series, which the history does not keep; write the join with group_left instead".into()
    } else {
        format!("function {name}() is not supported by ipfs-sentinel's evaluator")
    })
}

/// The arithmetic the evaluator follows.
fn version(ev: &Evaluator<'_>) -> Version {
    Version::of(ev.semantics())
}

fn arg(call: &Call, i: usize) -> Result<&Expr, EvalError> {
    call.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| EvalError(format!("{}(): missing argument {}", call.func.name, i + 1)))
}

/// Strips parentheses around an expression.
fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// The window a range-vector argument covers at the evaluation time: (start, end, range), ms
/// (`x[5m]`, `(x[5m])` or a subquery, with `@` and `offset`). `rate` and friends extrapolate
/// to its edges.
fn window(ev: &Evaluator<'_>, e: &Expr) -> Result<(i64, i64, i64), EvalError> {
    ev.window(e)
        .ok_or_else(|| EvalError("expected a range vector such as x[5m] or a subquery".into()))
}

fn matrix(ev: &Evaluator<'_>, e: &Expr) -> Result<Vec<RangeSeries>, EvalError> {
    match ev.eval(e)? {
        Value::Matrix(m) => Ok(m),
        other => Err(EvalError(format!(
            "expected a range vector, got {}",
            super::type_name(&other)
        ))),
    }
}

/// Drops the metric name (in 3.x with the other metadata labels, `__type__` and `__unit__`).
fn without_name(mut labels: Labels, semantics: super::Semantics) -> Labels {
    super::drop_metric_name(&mut labels, semantics);
    labels
}

/// Applies `f` to every series of a range vector; series for which it gives `None` are left
/// out. The result drops `__name__` unless `keep_name`, and may not hold two series with the
/// same labels.
fn over_series(
    ev: &Evaluator<'_>,
    e: &Expr,
    keep_name: bool,
    f: impl Fn(&[(i64, f64)]) -> Option<f64>,
) -> Result<Value, EvalError> {
    let out: Vec<Sample> = matrix(ev, e)?
        .into_iter()
        .filter_map(|s| {
            let value = f(&s.points)?;
            let labels = if keep_name {
                s.labels
            } else {
                without_name(s.labels, ev.semantics())
            };
            Some(Sample {
                labels,
                value,
                at_ms: ev.at_ms(),
            })
        })
        .collect();
    super::check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn values(points: &[(i64, f64)]) -> impl Iterator<Item = f64> + '_ {
    points.iter().map(|p| p.1)
}

/// Prometheus's `extrapolatedRate` (rate, increase, delta): the increase between the first and
/// last sample (counter resets added back), extrapolated towards the window's edges when the
/// samples come close to them, by a factor applied once at the end (as Prometheus does).
fn extrapolated_rate(
    points: &[(i64, f64)],
    (range_start, range_end, range_ms): (i64, i64, i64),
    counter: bool,
    rate: bool,
    version: Version,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.1 - first.1;
    if counter {
        let mut previous = first.1;
        for &(_, v) in &points[1..] {
            if v < previous {
                result += previous;
            }
            previous = v;
        }
    }
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let average_gap = sampled / (points.len() - 1) as f64;
    let threshold = average_gap * 1.1;
    let mut interval = sampled;
    match version {
        Version::V2_42 => {
            if counter && result > 0.0 && first.1 >= 0.0 {
                let to_zero = sampled * (first.1 / result);
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
            interval += if to_start < threshold {
                to_start
            } else {
                average_gap / 2.0
            };
        }
        Version::V3 => {
            // 3.x limits the extrapolation to half a gap first, then to the zero point.
            if to_start >= threshold {
                to_start = average_gap / 2.0;
            }
            if counter && result > 0.0 && first.1 >= 0.0 {
                let to_zero = sampled * (first.1 / result);
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
            interval += to_start;
        }
    }
    if to_end >= threshold {
        to_end = average_gap / 2.0;
    }
    interval += to_end;
    let mut factor = interval / sampled;
    if rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(points: &[(i64, f64)], rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (previous, last) = (points[points.len() - 2], points[points.len() - 1]);
    let interval = last.0 - previous.0;
    if interval == 0 {
        return None;
    }
    let mut result = if rate && last.1 < previous.1 {
        last.1
    } else {
        last.1 - previous.1
    };
    if rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// `min_over_time`, `max_over_time` and the `ts_of_` forms: the first extreme sample (a NaN
/// is replaced by any later value; `ts_of_` takes the last of equal extremes).
fn extreme(points: &[(i64, f64)], max: bool, last_of_equal: bool) -> Option<(i64, f64)> {
    let mut best = *points.first()?;
    for &(t, v) in points {
        let better = if max { v > best.1 } else { v < best.1 };
        let equal = last_of_equal && v == best.1;
        if better || equal || best.1.is_nan() {
            best = (t, v);
        }
    }
    Some(best)
}

/// Applies `f` to every sample's value, dropping `__name__`.
fn element_wise(ev: &Evaluator<'_>, e: &Expr, f: impl Fn(f64) -> f64) -> Result<Value, EvalError> {
    let out: Vec<Sample> = ev
        .vector(e)?
        .into_iter()
        .map(|s| Sample {
            labels: without_name(s.labels, ev.semantics()),
            value: f(s.value),
            at_ms: ev.at_ms(),
        })
        .collect();
    super::check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// The labels `absent()` and `absent_over_time()` give: the selector's equality matchers (not
/// the name); any other matcher on a label, or a second equality matcher, drops it, in the
/// order written, as Prometheus's `createLabelsForAbsentFunction`.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match unparen(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    let mut labels = Labels::new();
    let mut has = std::collections::HashSet::new();
    for m in &vs.matchers.matchers {
        if m.name == NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !has.contains(&m.name) {
            // Setting an empty value deletes the label, as Prometheus's label builder does.
            if m.value.is_empty() {
                labels.remove(&m.name);
            } else {
                labels.insert(m.name.clone(), m.value.clone());
            }
            has.insert(m.name.clone());
        } else {
            labels.remove(&m.name);
        }
    }
    labels
}

fn string_arg(ev: &Evaluator<'_>, call: &Call, i: usize) -> Result<String, EvalError> {
    match ev.eval(arg(call, i)?)? {
        Value::String(s) => Ok(s),
        other => Err(EvalError(format!(
            "{}(): argument {} must be a string, got {}",
            call.func.name,
            i + 1,
            super::type_name(&other)
        ))),
    }
}

/// Whether `name` is a valid label name for the given version: 2.42 allows
/// `[a-zA-Z_][a-zA-Z0-9_]*`, 3.x any non-empty UTF-8 text.
fn valid_label_name(name: &str, version: Version) -> bool {
    match version {
        Version::V3 => !name.is_empty(),
        Version::V2_42 => {
            let mut chars = name.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
    }
}

/// Sets `name` to `value` as Prometheus's label builder does: an empty value removes it.
fn set_label(labels: &mut Labels, name: &str, value: String) {
    if value.is_empty() {
        labels.remove(name);
    } else {
        labels.insert(name.to_owned(), value);
    }
}

fn label_replace(ev: &Evaluator<'_>, call: &Call) -> Result<Value, EvalError> {
    let (dst, replacement, src, pattern) = (
        string_arg(ev, call, 1)?,
        string_arg(ev, call, 2)?,
        string_arg(ev, call, 3)?,
        string_arg(ev, call, 4)?,
    );
    let version = version(ev);
    // 3.x lets `.` match a newline here too.
    let anchored = match version {
        Version::V2_42 => format!("^(?:{pattern})$"),
        Version::V3 => format!("^(?s:{pattern})$"),
    };
    let re = regex::Regex::new(&anchored).map_err(|_| {
        EvalError(format!(
            "invalid regular expression in label_replace(): {pattern}"
        ))
    })?;
    if !valid_label_name(&dst, version) {
        return Err(EvalError(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let out: Vec<Sample> = ev
        .vector(arg(call, 0)?)?
        .into_iter()
        .map(|mut s| {
            let value = s.labels.get(&src).cloned().unwrap_or_default();
            if let Some(caps) = re.captures(&value) {
                let mut expanded = String::new();
                caps.expand(&replacement, &mut expanded);
                set_label(&mut s.labels, &dst, expanded);
            }
            s
        })
        .collect();
    super::check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn label_join(ev: &Evaluator<'_>, call: &Call) -> Result<Value, EvalError> {
    let version = version(ev);
    let (dst, sep) = (string_arg(ev, call, 1)?, string_arg(ev, call, 2)?);
    let sources = (3..call.args.args.len())
        .map(|i| string_arg(ev, call, i))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(bad) = sources.iter().find(|s| !valid_label_name(s, version)) {
        return Err(EvalError(format!(
            "invalid source label name in label_join(): {bad}"
        )));
    }
    if !valid_label_name(&dst, version) {
        return Err(EvalError(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let out: Vec<Sample> = ev
        .vector(arg(call, 0)?)?
        .into_iter()
        .map(|mut s| {
            let joined: Vec<&str> = sources
                .iter()
                .map(|l| s.labels.get(l).map_or("", String::as_str))
                .collect();
            let joined = joined.join(&sep);
            set_label(&mut s.labels, &dst, joined);
            s
        })
        .collect();
    super::check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// `sort`/`sort_desc`: by value, NaN last either way (Prometheus sorts with the reverse of its
/// "NaN first" heap orders).
fn sort_by_value(mut v: Vec<Sample>, descending: bool) -> Vec<Sample> {
    numeric::go_sort(&mut v, |a, b| {
        b.value.is_nan()
            || if descending {
                a.value > b.value
            } else {
                a.value < b.value
            }
    });
    v
}

/// Natural ordering of label values, as the `natsort` package `sort_by_label` uses: runs of
/// digits compare as numbers, everything else byte-wise.
fn natural_less(a: &str, b: &str) -> bool {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let bytes = s.as_bytes();
        let mut start = 0;
        while start < bytes.len() {
            let digit = bytes[start].is_ascii_digit();
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() == digit {
                end += 1;
            }
            out.push((digit, &s[start..end]));
            start = end;
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(cb.iter()) {
        if x.1 == y.1 {
            continue;
        }
        if x.0 && y.0 {
            let (xt, yt) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
            if xt.len() != yt.len() {
                return xt.len() < yt.len();
            }
            if xt != yt {
                return xt < yt;
            }
            return x.1.len() < y.1.len();
        }
        return x.1 < y.1;
    }
    ca.len() < cb.len()
}

fn sort_by_label(mut v: Vec<Sample>, names: &[String], descending: bool) -> Vec<Sample> {
    v.sort_by(|a, b| {
        for name in names {
            let (x, y) = (
                a.labels.get(name).map_or("", String::as_str),
                b.labels.get(name).map_or("", String::as_str),
            );
            if x == y {
                continue;
            }
            let less = natural_less(x, y);
            let ord = if less {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            };
            return if descending { ord.reverse() } else { ord };
        }
        let ord = a.labels.cmp(&b.labels);
        if descending {
            ord.reverse()
        } else {
            ord
        }
    });
    v
}

/// Groups classic histogram buckets by their labels without `le`, in first-seen order; samples
/// whose `le` does not parse as a float are skipped.
fn bucket_groups(samples: Vec<Sample>) -> Vec<(Labels, Vec<Bucket>)> {
    let mut groups: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    for s in samples {
        let Some(upper_bound) = s.labels.get("le").and_then(|le| parse_go_float(le)) else {
            continue;
        };
        let mut key = s.labels;
        key.remove("le");
        let bucket = Bucket {
            upper_bound,
            count: s.value,
        };
        match index.get(&key) {
            Some(&i) => groups[i].1.push(bucket),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![bucket]));
            }
        }
    }
    groups
}

/// Parses a float as Go's `strconv.ParseFloat` does (accepting `+Inf`, `Inf`, `NaN` in any
/// case, and hexadecimal or underscore-free decimal forms).
fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return lower.parse().ok();
    }
    if unsigned.starts_with("0x") {
        return promql_parser::util::parse_str_radix(s).ok();
    }
    s.parse().ok()
}

fn histogram_quantile(ev: &Evaluator<'_>, call: &Call) -> Result<Value, EvalError> {
    let phi = ev.scalar(arg(call, 0)?)?;
    let version = version(ev);
    let out: Vec<Sample> = bucket_groups(ev.vector(arg(call, 1)?)?)
        .into_iter()
        .map(|(labels, buckets)| Sample {
            labels: without_name(labels, ev.semantics()),
            value: numeric::bucket_quantile(phi, buckets, version).0,
            at_ms: ev.at_ms(),
        })
        .collect();
    super::check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn histogram_fraction(ev: &Evaluator<'_>, call: &Call) -> Result<Value, EvalError> {
    let (lower, upper) = (ev.scalar(arg(call, 0)?)?, ev.scalar(arg(call, 1)?)?);
    if version(ev) == Version::V2_42 {
        // 2.42 computes histogram_fraction over native histograms only.
        ev.vector(arg(call, 2)?)?;
        return Ok(Value::Vector(Vec::new()));
    }
    let out: Vec<Sample> = bucket_groups(ev.vector(arg(call, 2)?)?)
        .into_iter()
        .map(|(labels, buckets)| Sample {
            labels: without_name(labels, ev.semantics()),
            value: numeric::bucket_fraction(lower, upper, buckets),
            at_ms: ev.at_ms(),
        })
        .collect();
    super::check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// The date functions: of the evaluation time without an argument, else of each sample's value
/// taken as Unix seconds (truncated as Go's `int64()` does).
fn date(
    ev: &Evaluator<'_>,
    call: &Call,
    field: fn(numeric::Civil) -> f64,
) -> Result<Value, EvalError> {
    match call.args.args.first() {
        None => Ok(Value::Vector(vec![Sample {
            labels: Labels::new(),
            value: field(numeric::civil(ev.at_ms() / 1000)),
            at_ms: ev.at_ms(),
        }])),
        Some(e) => element_wise(ev, e, |v| {
            // Go converts NaN and out-of-range floats to i64::MIN on amd64.
            let seconds = numeric::to_int64(v).unwrap_or(i64::MIN);
            field(numeric::civil(seconds))
        }),
    }
}

/// Evaluates a function call.
pub fn call(ev: &Evaluator<'_>, call: &Call) -> Result<Value, EvalError> {
    let name = call.func.name;
    let at = ev.at_ms();
    let version = version(ev);
    let scalar = |i: usize| -> Result<f64, EvalError> { ev.scalar(arg(call, i)?) };
    let first = || arg(call, 0);
    match name {
        "rate" | "increase" | "delta" => {
            let e = first()?;
            let w = window(ev, e)?;
            let counter = name != "delta";
            over_series(ev, e, false, |p| {
                extrapolated_rate(p, w, counter, name == "rate", version)
            })
        }
        "irate" => over_series(ev, first()?, false, |p| instant_value(p, true)),
        "idelta" => over_series(ev, first()?, false, |p| instant_value(p, false)),
        "deriv" => over_series(ev, first()?, false, |p| {
            (p.len() >= 2).then(|| numeric::linear_regression(p, p[0].0, version).0)
        }),
        "predict_linear" => {
            let seconds = scalar(1)?;
            over_series(ev, first()?, false, |p| {
                (p.len() >= 2).then(|| {
                    let (slope, intercept) = numeric::linear_regression(p, at, version);
                    slope * seconds + intercept
                })
            })
        }
        "resets" => over_series(ev, first()?, false, |p| {
            Some(p.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64)
        }),
        "changes" => over_series(ev, first()?, false, |p| {
            Some(
                p.windows(2)
                    .filter(|w| w[1].1 != w[0].1 && !(w[1].1.is_nan() && w[0].1.is_nan()))
                    .count() as f64,
            )
        }),
        "double_exponential_smoothing" => {
            let (sf, tf) = (scalar(1)?, scalar(2)?);
            if sf <= 0.0 || sf >= 1.0 || sf.is_nan() {
                return Err(EvalError(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                )));
            }
            if tf <= 0.0 || tf >= 1.0 || tf.is_nan() {
                return Err(EvalError(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                )));
            }
            over_series(ev, first()?, false, |p| {
                numeric::double_exponential_smoothing(&values(p).collect::<Vec<_>>(), sf, tf)
            })
        }
        "avg_over_time" => over_series(ev, first()?, false, |p| {
            Some(numeric::mean(values(p), version))
        }),
        "sum_over_time" => over_series(ev, first()?, false, |p| {
            Some(numeric::sum(values(p), version))
        }),
        "count_over_time" => over_series(ev, first()?, false, |p| Some(p.len() as f64)),
        "min_over_time" => over_series(ev, first()?, false, |p| {
            extreme(p, false, false).map(|x| x.1)
        }),
        "max_over_time" => over_series(ev, first()?, false, |p| {
            extreme(p, true, false).map(|x| x.1)
        }),
        "ts_of_min_over_time" => over_series(ev, first()?, false, |p| {
            extreme(p, false, true).map(|x| x.0 as f64 / 1000.0)
        }),
        "ts_of_max_over_time" => over_series(ev, first()?, false, |p| {
            extreme(p, true, true).map(|x| x.0 as f64 / 1000.0)
        }),
        "last_over_time" => over_series(ev, first()?, true, |p| p.last().map(|x| x.1)),
        "ts_of_last_over_time" => over_series(ev, first()?, false, |p| {
            p.last().map(|x| x.0 as f64 / 1000.0)
        }),
        "present_over_time" => over_series(ev, first()?, false, |_| Some(1.0)),
        "stdvar_over_time" => over_series(ev, first()?, false, |p| {
            Some(numeric::variance_over_time(values(p), version))
        }),
        "stddev_over_time" => over_series(ev, first()?, false, |p| {
            Some(numeric::variance_over_time(values(p), version).sqrt())
        }),
        "mad_over_time" => over_series(ev, first()?, false, |p| {
            let median = numeric::quantile(0.5, values(p).collect());
            Some(numeric::quantile(
                0.5,
                values(p).map(|v| (v - median).abs()).collect(),
            ))
        }),
        "quantile_over_time" => {
            let phi = scalar(0)?;
            over_series(ev, arg(call, 1)?, false, |p| {
                Some(numeric::quantile(phi, values(p).collect()))
            })
        }
        "absent" | "absent_over_time" => {
            let e = first()?;
            let empty = match ev.eval(e)? {
                Value::Vector(v) => v.is_empty(),
                Value::Matrix(m) => m.iter().all(|s| s.points.is_empty()),
                other => {
                    return Err(EvalError(format!(
                        "{name}(): expected a vector, got {}",
                        super::type_name(&other)
                    )))
                }
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
        "abs" => element_wise(ev, first()?, f64::abs),
        "ceil" => element_wise(ev, first()?, f64::ceil),
        "floor" => element_wise(ev, first()?, f64::floor),
        "exp" => element_wise(ev, first()?, f64::exp),
        "sqrt" => element_wise(ev, first()?, f64::sqrt),
        "ln" => element_wise(ev, first()?, numeric::go_log),
        "log2" => element_wise(ev, first()?, numeric::go_log2),
        "log10" => element_wise(ev, first()?, numeric::go_log10),
        "sin" => element_wise(ev, first()?, numeric::go_sin),
        "cos" => element_wise(ev, first()?, numeric::go_cos),
        "tan" => element_wise(ev, first()?, numeric::go_tan),
        "asin" => element_wise(ev, first()?, numeric::go_asin),
        "acos" => element_wise(ev, first()?, numeric::go_acos),
        "atan" => element_wise(ev, first()?, numeric::go_atan),
        "sinh" => element_wise(ev, first()?, f64::sinh),
        "cosh" => element_wise(ev, first()?, f64::cosh),
        "tanh" => element_wise(ev, first()?, f64::tanh),
        "asinh" => element_wise(ev, first()?, f64::asinh),
        "acosh" => element_wise(ev, first()?, f64::acosh),
        "atanh" => element_wise(ev, first()?, f64::atanh),
        "rad" => element_wise(ev, first()?, |v| v * std::f64::consts::PI / 180.0),
        "deg" => element_wise(ev, first()?, |v| v * 180.0 / std::f64::consts::PI),
        "sgn" => element_wise(ev, first()?, |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        "pi" => Ok(Value::Scalar(std::f64::consts::PI)),
        "round" => {
            let to = if call.args.args.len() > 1 {
                scalar(1)?
            } else {
                1.0
            };
            let inverse = 1.0 / to;
            element_wise(ev, first()?, |v| (v * inverse + 0.5).floor() / inverse)
        }
        "clamp" => {
            let (lo, hi) = (scalar(1)?, scalar(2)?);
            if hi < lo {
                return Ok(Value::Vector(Vec::new()));
            }
            element_wise(ev, first()?, |v| go_max(lo, go_min(hi, v)))
        }
        "clamp_min" => {
            let lo = scalar(1)?;
            element_wise(ev, first()?, |v| go_max(lo, v))
        }
        "clamp_max" => {
            let hi = scalar(1)?;
            element_wise(ev, first()?, |v| go_min(hi, v))
        }
        "time" => Ok(Value::Scalar(at as f64 / 1000.0)),
        "timestamp" => {
            let out: Vec<Sample> = ev
                .vector(first()?)?
                .into_iter()
                .map(|s| Sample {
                    labels: without_name(s.labels, ev.semantics()),
                    value: s.at_ms as f64 / 1000.0,
                    at_ms: at,
                })
                .collect();
            super::check_unique(&out)?;
            Ok(Value::Vector(out))
        }
        "vector" => Ok(Value::Vector(vec![Sample {
            labels: Labels::new(),
            value: scalar(0)?,
            at_ms: at,
        }])),
        "scalar" => {
            let v = ev.vector(first()?)?;
            Ok(Value::Scalar(if v.len() == 1 {
                v[0].value
            } else {
                f64::NAN
            }))
        }
        "year" => date(ev, call, |c| c.year as f64),
        "month" => date(ev, call, |c| f64::from(c.month)),
        "day_of_month" => date(ev, call, |c| f64::from(c.day)),
        "day_of_week" => date(ev, call, |c| f64::from(c.weekday)),
        "day_of_year" => date(ev, call, |c| f64::from(c.day_of_year)),
        "days_in_month" => date(ev, call, |c| {
            f64::from(numeric::days_in_month(c.year, c.month))
        }),
        "hour" => date(ev, call, |c| f64::from(c.hour)),
        "minute" => date(ev, call, |c| f64::from(c.minute)),
        "sort" | "sort_desc" => Ok(Value::Vector(sort_by_value(
            ev.vector(first()?)?,
            name == "sort_desc",
        ))),
        "sort_by_label" | "sort_by_label_desc" => {
            let names = (1..call.args.args.len())
                .map(|i| string_arg(ev, call, i))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Vector(sort_by_label(
                ev.vector(first()?)?,
                &names,
                name == "sort_by_label_desc",
            )))
        }
        "histogram_quantile" => histogram_quantile(ev, call),
        "histogram_fraction" => histogram_fraction(ev, call),
        "label_replace" => label_replace(ev, call),
        "label_join" => label_join(ev, call),
        other => {
            Err(EvalError(unsupported_reason(other).unwrap_or_else(|| {
                format!("function {other}() is not supported")
            })))
        }
    }
}

/// Go's `math.Max`: NaN if either is NaN.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN if either is NaN.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

#[cfg(test)]
mod tests {
    //! Expected values are Prometheus's own, from `promql/testdata/*.test` at v2.42.0 and
    //! `promql/promqltest/testdata/*.test` at v3.5.0 (cited per test).
    use super::super::testing::*;
    use super::super::RangeSeries;

    /// Series given with every value, NaN included, every `step_ms` from 0.
    fn with_nan(series: &[(&str, Vec<f64>)], step_ms: i64) -> Fixed {
        let shape: Vec<(&str, Vec<f64>)> = series.iter().map(|(s, _)| (*s, vec![0.0])).collect();
        let Fixed(labelled) = Fixed::from(&shape, step_ms);
        Fixed(
            labelled
                .into_iter()
                .zip(series)
                .map(|(s, (_, values))| RangeSeries {
                    labels: s.labels,
                    points: values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (i as i64 * step_ms, *v))
                        .collect(),
                })
                .collect(),
        )
    }

    /// `a+bxn` as the test files write it: n+1 values.
    fn ramp(start: f64, step: f64, n: usize) -> Vec<f64> {
        (0..=n).map(|i| start + step * i as f64).collect()
    }

    const MIN: i64 = 60_000;

    /// Equal within the test files' own tolerance (relative 1e-6, as promqltest compares).
    fn close(a: f64, b: f64) -> bool {
        a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
    }

    fn assert_close(got: &[f64], want: &[f64], what: &str) {
        assert!(
            got.len() == want.len() && got.iter().zip(want).all(|(a, b)| close(*a, *b)),
            "{what}: got {got:?}, Prometheus gives {want:?}"
        );
    }

    fn values(src: &Fixed, expr: &str, at_ms: i64) -> Vec<(String, f64)> {
        eval(src, expr, at_ms).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    #[test]
    fn resets_and_changes() {
        // functions.test: "Tests for resets()" and "Tests for changes()".
        let src = Fixed::from(
            &[
                (
                    "http_requests{path=\"/foo\"}",
                    vec![1.0, 2.0, 3.0, 0.0, 1.0, 0.0, 0.0, 1.0, 2.0, 0.0],
                ),
                (
                    "http_requests{path=\"/bar\"}",
                    vec![1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                ),
            ],
            5 * MIN,
        );
        assert_eq!(
            values(&src, "resets(http_requests[30m])", 50 * MIN),
            vec![
                ("{path=\"/bar\"}".into(), 1.0),
                ("{path=\"/foo\"}".into(), 2.0)
            ]
        );
        assert_eq!(
            values(&src, "changes(http_requests[50m])", 50 * MIN),
            vec![
                ("{path=\"/bar\"}".into(), 9.0),
                ("{path=\"/foo\"}".into(), 8.0)
            ]
        );
        let nan = with_nan(
            &[
                ("x{a=\"b\"}", vec![f64::NAN; 3]),
                ("x{a=\"c\"}", vec![0.0, f64::NAN, 0.0]),
            ],
            5 * MIN,
        );
        assert_eq!(
            values(&nan, "changes(x[15m])", 15 * MIN),
            vec![("{a=\"b\"}".into(), 0.0), ("{a=\"c\"}".into(), 2.0)]
        );
    }

    #[test]
    fn rate_extrapolation_and_zero_cutoff() {
        // functions.test: "Zero cutoff for left-side extrapolation".
        let src = Fixed::from(
            &[
                ("c{start=\"0m\"}", ramp(0.0, 240.0, 10)),
                ("c{start=\"1m\"}", ramp(60.0, 240.0, 10)),
                ("c{start=\"2m\"}", ramp(120.0, 240.0, 10)),
                ("c{start=\"3m\"}", ramp(180.0, 240.0, 10)),
                ("c{start=\"4m\"}", ramp(240.0, 240.0, 10)),
                ("c{start=\"5m\"}", ramp(300.0, 240.0, 10)),
            ],
            4 * MIN,
        );
        let got: Vec<f64> = values(&src, "rate(c[20m])", 10 * MIN)
            .into_iter()
            .map(|x| x.1)
            .collect();
        assert_close(&got, &[0.5, 0.55, 0.6, 0.65, 0.7, 0.6], "rate(c[20m])");
        // Counter resets in the middle of the range, and at its end.
        let mut middle = ramp(0.0, 10.0, 4);
        middle.extend(ramp(0.0, 10.0, 5));
        let mut end = ramp(0.0, 10.0, 9);
        end.extend([0.0, 10.0]);
        let src = Fixed::from(&[("m", middle), ("e", end)], 5 * MIN);
        assert_eq!(values(&src, "rate(m[50m])", 50 * MIN)[0].1, 0.03);
        assert_eq!(values(&src, "rate(e[5m])", 50 * MIN)[0].1, 0.0);
        let src = Fixed::from(&[("w", ramp(0.0, 80.0, 10))], 5 * MIN);
        assert_eq!(
            values(&src, "rate(w[50m])", 50 * MIN)[0].1,
            0.26666666666666666
        );
        // A reset is a drop to zero: 3 2 counts as 3 0 1 2.
        let src = Fixed::from(&[("i", vec![0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0])], 5 * MIN);
        assert_eq!(values(&src, "increase(i[30m])", 30 * MIN)[0].1, 7.0);
    }

    #[test]
    fn irate_idelta_delta() {
        // functions.test: irate(), delta(), idelta().
        let mut bar = ramp(0.0, 10.0, 5);
        bar.extend(ramp(0.0, 10.0, 5));
        let src = Fixed::from(
            &[("r{p=\"foo\"}", ramp(0.0, 10.0, 10)), ("r{p=\"bar\"}", bar)],
            5 * MIN,
        );
        assert_eq!(
            values(&src, "irate(r[50m])", 30 * MIN),
            vec![
                ("{p=\"bar\"}".into(), 0.0),
                ("{p=\"foo\"}".into(), 0.03333333333333333)
            ]
        );
        let src = Fixed::from(
            &[
                ("d{p=\"foo\"}", vec![0.0, 50.0, 100.0, 150.0, 200.0]),
                ("d{p=\"bar\"}", vec![200.0, 150.0, 100.0, 50.0, 0.0]),
                ("g{p=\"bar\"}", vec![0.0, 50.0, 100.0, 50.0]),
            ],
            5 * MIN,
        );
        assert_eq!(
            values(&src, "delta(d[20m])", 20 * MIN),
            vec![
                ("{p=\"bar\"}".into(), -200.0),
                ("{p=\"foo\"}".into(), 200.0)
            ]
        );
        assert_eq!(values(&src, "idelta(g[20m])", 20 * MIN)[0].1, -50.0);
    }

    #[test]
    fn deriv_and_predict_linear() {
        // functions.test: testcounter_reset_middle 0+10x4 0+10x5.
        let mut middle = ramp(0.0, 10.0, 4);
        middle.extend(ramp(0.0, 10.0, 5));
        let src = Fixed::from(&[("m", middle)], 5 * MIN);
        assert_eq!(
            values(&src, "deriv(m[100m])", 50 * MIN)[0].1,
            0.010606060606060607
        );
        assert_eq!(
            values(&src, "predict_linear(m[100m], 3600)", 50 * MIN)[0].1,
            76.81818181818181
        );
    }

    #[test]
    fn holt_winters_follows_the_trend() {
        // functions.test (2.42): holt_winters(http_requests[1m], 0.01, 0.1) at 8000s.
        let src = Fixed::from(
            &[
                ("h{i=\"0\"}", ramp(0.0, 10.0, 1000)),
                ("h{i=\"1\"}", ramp(0.0, 20.0, 1000)),
            ],
            10_000,
        );
        assert_eq!(
            values(&src, "holt_winters(h[1m], 0.01, 0.1)", 8_000_000),
            vec![("{i=\"0\"}".into(), 8000.0), ("{i=\"1\"}".into(), 16000.0)]
        );
        assert!(eval(&src, "holt_winters(h[1m], 1, 0.1)", 8_000_000)
            .unwrap_err()
            .contains("invalid smoothing factor"));
    }

    #[test]
    fn over_time_family() {
        // functions.test: stdvar/stddev_over_time, quantile_over_time, min/max/last_over_time.
        let src = Fixed::from(
            &[
                ("m", vec![0.0, 8.0, 8.0, 2.0, 3.0]),
                ("same", vec![1.5990505637277868; 3]),
                ("q{t=\"uneven\"}", vec![0.0, 1.0, 4.0]),
            ],
            10_000,
        );
        assert_close(
            &[values(&src, "stdvar_over_time(m[1m])", MIN)[0].1],
            &[10.56],
            "stdvar_over_time",
        );
        assert_eq!(values(&src, "stddev_over_time(same[1m])", MIN)[0].1, 0.0);
        assert_eq!(values(&src, "stdvar_over_time(same[1m])", MIN)[0].1, 0.0);
        for (phi, want) in [(0.0, 0.0), (0.5, 1.0), (0.75, 2.5), (0.8, 2.8), (1.0, 4.0)] {
            let expr = format!("quantile_over_time({phi}, q[1m])");
            assert_close(&[values(&src, &expr, MIN)[0].1], &[want], &expr);
        }
        assert_eq!(
            values(&src, "quantile_over_time(2, q[1m])", MIN)[0].1,
            f64::INFINITY
        );
        let nan = f64::NAN;
        let src = with_nan(
            &[
                ("data{type=\"numbers\"}", vec![2.0, 0.0, 3.0]),
                ("data{type=\"some_nan\"}", vec![2.0, 0.0, nan]),
                ("data{type=\"some_nan2\"}", vec![2.0, nan, 1.0]),
                ("data{type=\"some_nan3\"}", vec![nan, 0.0, 1.0]),
            ],
            10_000,
        );
        let pick =
            |expr: &str| -> Vec<f64> { values(&src, expr, MIN).into_iter().map(|x| x.1).collect() };
        assert_eq!(pick("min_over_time(data[1m])"), vec![0.0, 0.0, 1.0, 0.0]);
        assert_eq!(pick("max_over_time(data[1m])"), vec![3.0, 2.0, 2.0, 1.0]);
        let last = values(&src, "last_over_time(data[1m])", MIN);
        assert_eq!(
            last[0].0, "{__name__=\"data\",type=\"numbers\"}",
            "keeps the name"
        );
        assert!(last[1].1.is_nan());
    }

    #[test]
    fn label_replace_rules() {
        // functions.test: "Tests for label_replace".
        let src = Fixed::from(
            &[
                (
                    "t{src=\"source-value-10\",dst=\"original-destination-value\"}",
                    vec![0.0],
                ),
                (
                    "t{src=\"source-value-20\",dst=\"original-destination-value\"}",
                    vec![1.0],
                ),
            ],
            5 * MIN,
        );
        let dst = |expr: &str| -> Vec<String> {
            values(&src, expr, 0).into_iter().map(|x| x.0).collect()
        };
        assert_eq!(
            dst("label_replace(t, \"dst\", \"destination-value-$1\", \"src\", \"source-value-(.*)\")"),
            vec![
                "{__name__=\"t\",dst=\"destination-value-10\",src=\"source-value-10\"}",
                "{__name__=\"t\",dst=\"destination-value-20\",src=\"source-value-20\"}"
            ]
        );
        // The regex is anchored: a partial match changes nothing.
        assert!(
            dst("label_replace(t, \"dst\", \"v-$1\", \"src\", \"value-(.*)\")")[0]
                .contains("original-destination-value")
        );
        // A missing source label is the empty string, which `(.*)` matches.
        assert!(
            dst("label_replace(t, \"dst\", \"value-$1\", \"nonexistent-src\", \"(.*)\")")[0]
                .contains("dst=\"value-\"")
        );
        // An empty replacement removes the label.
        assert_eq!(
            dst("label_replace(t, \"dst\", \"\", \"dst\", \".*\")")[0],
            "{__name__=\"t\",src=\"source-value-10\"}"
        );
        for bad in [
            "label_replace(t, \"dst\", \"value-$1\", \"src\", \"(.*\")",
            "label_replace(t, \"invalid-label-name\", \"\", \"src\", \"(.*)\")",
            "label_replace(t, \"src\", \"\", \"\", \"\")",
        ] {
            assert!(eval(&src, bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_join_rules() {
        // functions.test: "Tests for label_join".
        let src = Fixed::from(
            &[("t{src=\"a\",src1=\"b\",src2=\"c\",dst=\"orig\"}", vec![0.0])],
            5 * MIN,
        );
        let one = |expr: &str| values(&src, expr, 0).remove(0).0;
        assert!(
            one("label_join(t, \"dst\", \"-\", \"src\", \"src3\", \"src1\")")
                .contains("dst=\"a--b\"")
        );
        assert!(!one("label_join(t, \"dst\", \"\", \"e1\", \"e2\")").contains("dst"));
        assert!(!one("label_join(t, \"dst\", \", \")").contains("dst"));
    }

    #[test]
    fn clamp_sgn_round() {
        // functions.test: clamp with NaN bounds, clamp(x, 5, -5) is empty; sgn keeps NaN.
        let src = with_nan(
            &[
                ("c{s=\"a\"}", vec![-50.0]),
                ("c{s=\"b\"}", vec![0.0]),
                ("c{s=\"c\"}", vec![100.0]),
                ("n{s=\"a\"}", vec![f64::NAN]),
                ("n{s=\"b\"}", vec![f64::NEG_INFINITY]),
            ],
            5 * MIN,
        );
        let pick =
            |expr: &str| -> Vec<f64> { values(&src, expr, 0).into_iter().map(|x| x.1).collect() };
        assert_eq!(pick("clamp(c, -25, 75)"), vec![-25.0, 0.0, 75.0]);
        assert!(pick("clamp(c, 0, NaN)").iter().all(|v| v.is_nan()));
        assert!(pick("clamp(c, 5, -5)").is_empty());
        assert_eq!(
            pick("clamp_max(clamp_min(c, -20), 70)"),
            vec![-20.0, 0.0, 70.0]
        );
        let sgn = pick("sgn(n)");
        assert!(sgn[0].is_nan());
        assert_eq!(sgn[1], -1.0);
        assert_eq!(pick("round(c / 3, 5)"), vec![-15.0, 0.0, 35.0]);
    }

    #[test]
    fn trigonometry_and_constants() {
        // trig_functions.test (both versions): trig{l="x"} 10, within the suite's tolerance.
        let src = Fixed::from(&[("trig{l=\"x\"}", vec![10.0])], 5 * MIN);
        for (expr, want) in [
            ("sin(trig)", -0.5440211108893699),
            ("cos(trig)", -0.8390715290764524),
            ("tan(trig)", 0.6483608274590867),
            ("asin(trig - 10.1)", -0.10016742116155944),
            ("acos(trig - 10.1)", 1.670963747956456),
            ("atan(trig)", 1.4711276743037345),
            ("sinh(trig)", 11013.232920103324),
            ("cosh(trig)", 11013.232920103324),
            ("tanh(trig)", 0.9999999958776927),
            ("asinh(trig)", 2.99822295029797),
            ("acosh(trig)", 2.993222846126381),
            ("atanh(trig - 10.1)", -0.10033534773107522),
            ("rad(trig)", 0.17453292519943295),
            ("deg(trig)", 572.9577951308232),
        ] {
            let got = values(&src, expr, MIN);
            assert_eq!(got[0].0, "{l=\"x\"}", "{expr} drops the name");
            assert_close(&[got[0].1], &[want], expr);
        }
        assert_eq!(eval(&src, "pi()", 0).unwrap()[0].1, std::f64::consts::PI);
    }

    #[test]
    fn date_functions_with_and_without_argument() {
        // functions.test: year(), day_of_week() at 0 (a Thursday), and of vector(1136239445).
        let src = Fixed::from(&[], MIN);
        let one = |expr: &str| values(&src, expr, 0)[0].1;
        assert_eq!(one("year()"), 1970.0);
        assert_eq!(one("day_of_week()"), 4.0);
        assert_eq!(one("hour(vector(1136239445))"), 22.0);
        assert_eq!(one("day_of_year(vector(1483191420))"), 366.0);
        assert_eq!(one("days_in_month(vector(1454284800))"), 29.0);
        assert_eq!(
            one("month(vector(1456790400)) + day_of_month(vector(1456790400)) / 100"),
            3.01
        );
    }

    #[test]
    fn absent_label_rules() {
        // functions.test: "Tests for absent()" and absent_over_time().
        let src = Fixed::from(&[("http_requests{job=\"a\"}", vec![1.0])], 5 * MIN);
        let labels = |expr: &str| -> Vec<String> {
            values(&src, expr, 0).into_iter().map(|x| x.0).collect()
        };
        assert_eq!(
            labels(
                "absent(nonexistent{job=\"testjob\", instance=\"testinstance\", method=~\".x\"})"
            ),
            vec!["{instance=\"testinstance\",job=\"testjob\"}"]
        );
        assert_eq!(
            labels("absent(nonexistent{job=\"testjob\",job=\"testjob2\",foo=\"bar\"})"),
            vec!["{foo=\"bar\"}"]
        );
        assert_eq!(
            labels("absent(nonexistent{job=\"testjob\",job=~\"testjob2\",foo=\"bar\"})"),
            vec!["{foo=\"bar\"}"]
        );
        assert_eq!(labels("absent(sum(nonexistent{job=\"x\"}))"), vec!["{}"]);
        assert!(labels("absent(http_requests)").is_empty());
        assert_eq!(
            labels("absent_over_time(http_requests{handler=\"/foo\", handler=\"/bar\", instance=\"127.0.0.1\"}[5m])"),
            vec!["{instance=\"127.0.0.1\"}"]
        );
    }

    #[test]
    fn sort_puts_nan_last_both_ways() {
        // functions.test: sort() and sort_desc() with a NaN series.
        let src = with_nan(
            &[
                ("h{i=\"0\"}", vec![100.0]),
                ("h{i=\"1\"}", vec![f64::NAN]),
                ("h{i=\"2\"}", vec![300.0]),
                ("h{i=\"3\"}", vec![200.0]),
            ],
            5 * MIN,
        );
        let ordered = |expr: &str| -> Vec<f64> {
            let e = super::super::parse(expr).unwrap();
            match super::super::Evaluator::new(&src, 0).eval(&e).unwrap() {
                super::super::Value::Vector(v) => v.into_iter().map(|s| s.value).collect(),
                other => panic!("{other:?}"),
            }
        };
        let asc = ordered("sort(h)");
        assert_eq!(&asc[..3], &[100.0, 200.0, 300.0]);
        assert!(asc[3].is_nan());
        let desc = ordered("sort_desc(h)");
        assert_eq!(&desc[..3], &[300.0, 200.0, 100.0]);
        assert!(desc[3].is_nan());
    }

    #[test]
    fn histogram_quantile_over_classic_buckets() {
        // histograms.test: testhistogram_bucket at 50m (0+5x10 ... per bucket).
        let src = Fixed::from(
            &[
                ("b{le=\"0.1\", start=\"positive\"}", ramp(0.0, 5.0, 10)),
                ("b{le=\".2\", start=\"positive\"}", ramp(0.0, 7.0, 10)),
                ("b{le=\"1e0\", start=\"positive\"}", ramp(0.0, 11.0, 10)),
                ("b{le=\"+Inf\", start=\"positive\"}", ramp(0.0, 12.0, 10)),
                ("b{le=\"-.2\", start=\"negative\"}", ramp(0.0, 1.0, 10)),
                ("b{le=\"-0.1\", start=\"negative\"}", ramp(0.0, 2.0, 10)),
                ("b{le=\"0.3\", start=\"negative\"}", ramp(0.0, 2.0, 10)),
                ("b{le=\"+Inf\", start=\"negative\"}", ramp(0.0, 3.0, 10)),
            ],
            5 * MIN,
        );
        for (phi, negative, positive) in [
            ("0.2", -0.2, 0.048),
            ("0.5", -0.15, 0.15),
            ("0.8", 0.3, 0.72),
            ("1", 0.3, 1.0),
            ("-0.1", f64::NEG_INFINITY, f64::NEG_INFINITY),
            ("1.01", f64::INFINITY, f64::INFINITY),
        ] {
            let expr = format!("histogram_quantile({phi}, b)");
            let got = values(&src, &expr, 50 * MIN);
            assert_eq!(got[0].0, "{start=\"negative\"}");
            assert_eq!(got[1].0, "{start=\"positive\"}");
            assert_close(&[got[0].1, got[1].1], &[negative, positive], &expr);
            let expr = format!("histogram_quantile({phi}, rate(b[5m]))");
            assert_eq!(values(&src, &expr, 50 * MIN).len(), 2, "{expr}");
        }
        assert!(values(&src, "histogram_quantile(NaN, b)", 50 * MIN)
            .iter()
            .all(|x| x.1.is_nan()));
    }

    /// Evaluates with Prometheus 3.x's semantics and its experimental functions on, as the
    /// 3.5 test files run.
    fn values_3(src: &Fixed, expr: &str, at_ms: i64) -> Vec<(String, f64)> {
        use super::super::{parse_with, testing::rendered, Evaluator, Semantics};
        let e = parse_with(expr, Semantics::Prometheus3, true)
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let got = Evaluator::new(src, at_ms)
            .with_semantics(Semantics::Prometheus3)
            .eval(&e)
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        rendered(got).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    #[test]
    fn extrapolation_towards_zero_differs_between_releases() {
        // functions.test (3.5): "dings" starts at 10 and would reach 0 at -5m; 3.x first limits
        // the extrapolation to half a gap (2m30s), so the increase is 105; 2.42 takes the zero
        // point (5m) because it is within 1.1 gaps: promtool 2.42 prints 110.00000000000001 (and
        // compares exactly). "bumms" reaches 0 at -30s in both.
        let src = Fixed::from(
            &[
                ("r{path=\"dings\"}", ramp(10.0, 10.0, 10)),
                ("r{path=\"bumms\"}", ramp(1.0, 10.0, 10)),
            ],
            5 * MIN,
        );
        let got: Vec<f64> = values_3(&src, "increase(r[100m])", 50 * MIN)
            .into_iter()
            .map(|x| x.1)
            .collect();
        assert_close(&got, &[101.0, 105.0], "3.x increase(r[100m])");
        let got: Vec<f64> = values(&src, "increase(r[100m])", 50 * MIN)
            .into_iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(got, [101.0, 110.00000000000001], "2.42 increase(r[100m])");
    }

    #[test]
    fn experimental_functions_of_3_5() {
        // functions.test (3.5): mad_over_time, ts_of_min/max_over_time (10s53ms samples).
        let src = Fixed::from(&[("m", vec![4.0, 6.0, 2.0, 1.0, 999.0, 1.0, 2.0])], 10_000);
        assert_eq!(values_3(&src, "mad_over_time(m[70s])", 70_000)[0].1, 1.0);
        let src = Fixed::from(
            &[("m", vec![1.0, 2.0, 3.0, 0.0, 5.0, 6.0, 2.0, 1.0, 4.0])],
            10_053,
        );
        assert_eq!(
            values_3(&src, "ts_of_min_over_time(m[90s])", 90_000)[0].1,
            30.159
        );
        assert_eq!(
            values_3(&src, "ts_of_max_over_time(m[90s])", 90_000)[0].1,
            50.265
        );
        assert_eq!(
            values_3(&src, "ts_of_last_over_time(m[90s])", 90_000)[0].1,
            80.424
        );
        // double_exponential_smoothing is 2.42's holt_winters under its 3.x name.
        let src = Fixed::from(&[("h", ramp(0.0, 10.0, 1000))], 10_000);
        assert_close(
            &[values_3(
                &src,
                "double_exponential_smoothing(h[1m], 0.01, 0.1)",
                8_000_000,
            )[0]
            .1],
            &[8000.0],
            "double_exponential_smoothing",
        );
    }

    #[test]
    fn sort_by_label_is_natural() {
        // functions.test (3.5): cpu="0" < "1" < ... < "10" < "100"; ties fall back to all labels.
        let cpus = ["0", "1", "2", "3", "10", "11", "12", "20", "21", "100"];
        let series: Vec<(String, Vec<f64>)> = cpus
            .iter()
            .rev()
            .map(|c| {
                (
                    format!("cpu_time_total{{job=\"cpu\", cpu=\"{c}\"}}"),
                    vec![1.0],
                )
            })
            .collect();
        let refs: Vec<(&str, Vec<f64>)> = series
            .iter()
            .map(|(s, v)| (s.as_str(), v.clone()))
            .collect();
        let src = Fixed::from(&refs, 5 * MIN);
        let e = super::super::parse_with(
            "sort_by_label(cpu_time_total, \"cpu\")",
            super::super::Semantics::Prometheus3,
            true,
        )
        .unwrap();
        let got = match super::super::Evaluator::new(&src, 0)
            .with_semantics(super::super::Semantics::Prometheus3)
            .eval(&e)
            .unwrap()
        {
            super::super::Value::Vector(v) => v,
            other => panic!("{other:?}"),
        };
        let order: Vec<&str> = got.iter().map(|s| s.labels["cpu"].as_str()).collect();
        assert_eq!(order, cpus);
        assert!(super::natural_less("4m5", "4m600"));
        assert!(super::natural_less("1.2.3", "1.11.3"));
        assert!(!super::natural_less("1.111.3", "1.11.3"));
    }

    #[test]
    fn label_replace_dot_matches_newline_in_3_only() {
        let src = Fixed::from(&[("t{src=\"a\\nb\"}", vec![1.0])], 5 * MIN);
        let expr = "label_replace(t, \"dst\", \"$1\", \"src\", \"(.*)\")";
        assert!(values_3(&src, expr, 0)[0].0.contains("dst=\"a\nb\""));
        assert!(!values(&src, expr, 0)[0].0.contains("dst="));
    }

    #[test]
    fn histogram_fraction_over_classic_buckets_in_3() {
        // histograms.test (3.5): testhistogram3_bucket, the share of observations in (0, 0.2].
        let src = Fixed::from(
            &[
                ("b{le=\"0\"}", ramp(0.0, 0.0, 10)),
                ("b{le=\"0.1\"}", ramp(0.0, 5.0, 10)),
                ("b{le=\".2\"}", ramp(0.0, 7.0, 10)),
                ("b{le=\"1e0\"}", ramp(0.0, 11.0, 10)),
                ("b{le=\"+Inf\"}", ramp(0.0, 11.0, 10)),
            ],
            5 * MIN,
        );
        let got = values_3(&src, "histogram_fraction(0, 0.2, rate(b[10m]))", 50 * MIN);
        assert_close(&[got[0].1], &[0.6363636363636364], "histogram_fraction");
    }

    #[test]
    fn unsupported_functions_are_named_with_the_reason() {
        assert!(super::unsupported_reason("rate").is_none());
        assert!(super::unsupported_reason("histogram_count")
            .unwrap()
            .contains("native histograms"));
        assert!(super::unsupported_reason("first_over_time")
            .unwrap()
            .contains("neither Prometheus 2.42 nor Prometheus 3.5"));
        assert!(super::unsupported_reason("info")
            .unwrap()
            .contains("group_left"));
    }
}
