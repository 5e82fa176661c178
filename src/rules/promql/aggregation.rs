//! PromQL aggregations as Prometheus 2.42 and 3.x compute them: `sum avg min max count stddev
//! stdvar group topk bottomk quantile count_values`, and 3.x's experimental `limitk` and
//! `limit_ratio`, grouped `by` or `without` labels.
//!
//! Owns grouping and each operator's arithmetic: `without` also drops `__name__`, `by` keeps
//! only the listed labels (`__name__` too when listed); `topk`, `bottomk` and the `limit`s keep
//! their samples' full labels. Groups come out in the order their first sample came in.
//! Numerics follow each release: 2.42 sums plainly and averages incrementally; 3.x sums with
//! Kahan compensation and averages by Kahan sum, switching to an incremental mean only on
//! overflow; both take the variance by Welford's algorithm (so equal values give exactly 0).

use std::collections::HashMap;

use promql_parser::parser::token::{self, TokenType};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::numeric::{self, Version};
use super::{EvalError, Evaluator, Labels, Sample, Value, NAME};

/// The arithmetic the evaluator follows.
fn version(ev: &Evaluator<'_>) -> Version {
    Version::of(ev.semantics())
}

/// The labels of a sample's group.
fn group_labels(labels: &Labels, modifier: &Option<LabelModifier>) -> Labels {
    match modifier {
        None => Labels::new(),
        Some(LabelModifier::Include(keep)) => labels
            .iter()
            .filter(|(k, _)| keep.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(drop)) => labels
            .iter()
            .filter(|(k, _)| *k != NAME && !drop.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Splits samples into groups, in the order each group's first sample came.
fn groups(samples: Vec<Sample>, modifier: &Option<LabelModifier>) -> Vec<(Labels, Vec<Sample>)> {
    let mut out: Vec<(Labels, Vec<Sample>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for s in samples {
        let key = group_labels(&s.labels, modifier);
        match index.get(&key) {
            Some(&i) => out[i].1.push(s),
            None => {
                index.insert(key.clone(), out.len());
                out.push((key, vec![s]));
            }
        }
    }
    out
}

/// Go's `container/heap` over a slice, with Prometheus's orderings: a heap of the k samples
/// kept so far whose root is the one to evict next. Reproducing it keeps ties resolved as
/// Prometheus resolves them.
mod go_heap {
    pub fn push<T>(h: &mut Vec<T>, x: T, less: &impl Fn(&T, &T) -> bool) {
        h.push(x);
        let last = h.len() - 1;
        up(h, last, less);
    }

    pub fn pop<T>(h: &mut Vec<T>, less: &impl Fn(&T, &T) -> bool) -> Option<T> {
        let n = h.len().checked_sub(1)?;
        h.swap(0, n);
        down(h, 0, n, less);
        h.pop()
    }

    pub fn fix<T>(h: &mut [T], i: usize, less: &impl Fn(&T, &T) -> bool) {
        if !down(h, i, h.len(), less) {
            up(h, i, less);
        }
    }

    fn up<T>(h: &mut [T], mut j: usize, less: &impl Fn(&T, &T) -> bool) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !less(&h[j], &h[i]) {
                break;
            }
            h.swap(i, j);
            j = i;
        }
    }

    fn down<T>(h: &mut [T], i0: usize, n: usize, less: &impl Fn(&T, &T) -> bool) -> bool {
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            let j2 = j1 + 1;
            if j2 < n && less(&h[j2], &h[j1]) {
                j = j2;
            }
            if !less(&h[j], &h[i]) {
                break;
            }
            h.swap(i, j);
            i = j;
        }
        i > i0
    }
}

/// Prometheus's `vectorByValueHeap` order: NaN first, then ascending.
fn by_value(a: &Sample, b: &Sample) -> bool {
    a.value.is_nan() || a.value < b.value
}

/// Prometheus's `vectorByReverseValueHeap` order: NaN first, then descending.
fn by_reverse_value(a: &Sample, b: &Sample) -> bool {
    a.value.is_nan() || a.value > b.value
}

/// Go's `sort.Sort(sort.Reverse(h))`: [`numeric::go_sort`] with the reverse order.
fn go_sort_reverse(v: &mut [Sample], less: impl Fn(&Sample, &Sample) -> bool) {
    numeric::go_sort(v, |a, b| less(b, a));
}

/// Go's check that a float converts to an int64.
fn k_param(k: f64) -> Result<i64, EvalError> {
    numeric::to_int64(k)
        .ok_or_else(|| EvalError(format!("Scalar value {} overflows int64", go_float(k))))
}

/// A float as Go's `%v` prints it in error messages.
fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v != 0.0 && (v.abs() >= 1e21 || v.abs() < 1e-4) {
        format!("{v:e}").replace('e', "e+").replace("e+-", "e-")
    } else {
        format!("{v}")
    }
}

/// `topk`/`bottomk` of one group: the samples Prometheus's heap keeps, in its output order.
fn top_k(members: Vec<Sample>, k: usize, top: bool, version: Version) -> Vec<Sample> {
    let heap_less = if top { by_value } else { by_reverse_value };
    // The sample the heap's root should give way to.
    let beats = |root: &Sample, s: &Sample| {
        if top {
            root.value < s.value || (root.value.is_nan() && !s.value.is_nan())
        } else {
            root.value > s.value || (root.value.is_nan() && !s.value.is_nan())
        }
    };
    let mut heap: Vec<Sample> = Vec::with_capacity(k);
    for (i, s) in members.into_iter().enumerate() {
        if i == 0 {
            heap.push(s);
            continue;
        }
        match version {
            Version::V2_42 => {
                // 2.42 also lets any sample replace a NaN root.
                let root_nan = heap[0].value.is_nan();
                if heap.len() < k
                    || (top && heap[0].value < s.value)
                    || (!top && heap[0].value > s.value)
                    || root_nan
                {
                    if heap.len() == k {
                        if k == 1 {
                            heap[0] = s;
                            continue;
                        }
                        go_heap::pop(&mut heap, &heap_less);
                    }
                    go_heap::push(&mut heap, s, &heap_less);
                }
            }
            Version::V3 => {
                if heap.len() < k {
                    go_heap::push(&mut heap, s, &heap_less);
                } else if beats(&heap[0], &s) {
                    heap[0] = s;
                    if k > 1 {
                        go_heap::fix(&mut heap, 0, &heap_less);
                    }
                }
            }
        }
    }
    go_sort_reverse(&mut heap, heap_less);
    heap
}

/// Where `limit_ratio` places a series in [0, 1): a hash of its labels. Prometheus uses its
/// label set's xxhash, whose input depends on its build's label encoding; any well-spread hash
/// gives the same guarantees (a ratio and its complement split the series exactly).
fn ratio_offset(labels: &Labels) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // Mix the high bits down so that short label sets spread over the whole range.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash as f64 / u64::MAX as f64
}

/// Evaluates an aggregation.
pub fn aggregate(ev: &Evaluator<'_>, agg: &AggregateExpr) -> Result<Value, EvalError> {
    let op = agg.op.id();
    let at = ev.at_ms();
    let version = version(ev);
    let param = |what: &str| -> Result<&promql_parser::parser::Expr, EvalError> {
        agg.param
            .as_deref()
            .ok_or_else(|| EvalError(format!("{what} needs a parameter")))
    };
    if op == token::T_COUNT_VALUES {
        let label = match ev.eval(param("count_values")?)? {
            Value::String(s) => s,
            _ => {
                return Err(EvalError(
                    "count_values: the parameter must be a string".into(),
                ))
            }
        };
        if label.is_empty()
            || (version == Version::V2_42
                && !label.chars().enumerate().all(|(i, c)| {
                    c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
                }))
        {
            return Err(EvalError(format!("invalid label name {label:?}")));
        }
        let samples = ev.vector(&agg.expr)?;
        let modifier = match &agg.modifier {
            Some(LabelModifier::Include(by)) => {
                let mut by = by.clone();
                by.labels.push(label.clone());
                Some(LabelModifier::Include(by))
            }
            other => other.clone(),
        };
        let with_value: Vec<Sample> = samples
            .into_iter()
            .map(|mut s| {
                s.labels
                    .insert(label.clone(), crate::number::format_value(s.value));
                s
            })
            .collect();
        let modifier = modifier.or_else(|| {
            Some(LabelModifier::Include(promql_parser::label::Labels {
                labels: vec![label.clone()],
            }))
        });
        return Ok(Value::Vector(
            groups(with_value, &modifier)
                .into_iter()
                .map(|(labels, members)| Sample {
                    labels,
                    value: members.len() as f64,
                    at_ms: at,
                })
                .collect(),
        ));
    }
    if matches!(op, token::T_TOPK | token::T_BOTTOMK | token::T_LIMITK) {
        let k = k_param(ev.scalar(param("topk/bottomk/limitk")?)?)?;
        let samples = ev.vector(&agg.expr)?;
        if k < 1 {
            return Ok(Value::Vector(Vec::new()));
        }
        let k = usize::try_from(k)
            .unwrap_or(usize::MAX)
            .min(samples.len().max(1));
        let mut out = Vec::new();
        for (_, members) in groups(samples, &agg.modifier) {
            if op == token::T_LIMITK {
                let mut heap = Vec::with_capacity(k);
                for s in members.into_iter().take(k) {
                    go_heap::push(&mut heap, s, &by_value);
                }
                out.extend(heap);
            } else {
                out.extend(top_k(members, k, op == token::T_TOPK, version));
            }
        }
        return Ok(Value::Vector(out));
    }
    if op == token::T_LIMIT_RATIO {
        let r = ev.scalar(param("limit_ratio")?)?;
        if r.is_nan() {
            return Err(EvalError(format!("Ratio value {} is NaN", go_float(r))));
        }
        let samples = ev.vector(&agg.expr)?;
        if r == 0.0 {
            return Ok(Value::Vector(Vec::new()));
        }
        let r = r.clamp(-1.0, 1.0);
        let mut out = Vec::new();
        for (_, members) in groups(samples, &agg.modifier) {
            let mut heap = Vec::new();
            for s in members {
                let offset = ratio_offset(&s.labels);
                if (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r) {
                    go_heap::push(&mut heap, s, &by_value);
                }
            }
            out.extend(heap);
        }
        return Ok(Value::Vector(out));
    }
    let phi = if op == token::T_QUANTILE {
        Some(ev.scalar(param("quantile")?)?)
    } else {
        None
    };
    let samples = ev.vector(&agg.expr)?;
    let mut out = Vec::new();
    for (labels, members) in groups(samples, &agg.modifier) {
        let values: Vec<f64> = members.iter().map(|s| s.value).collect();
        let value = match op {
            token::T_SUM => sum(&values, version),
            token::T_AVG => avg(&values, version),
            token::T_MIN => fold_first(&values, |m, v| m > v),
            token::T_MAX => fold_first(&values, |m, v| m < v),
            token::T_COUNT => values.len() as f64,
            token::T_GROUP => 1.0,
            token::T_STDVAR => variance(&values, version),
            token::T_STDDEV => variance(&values, version).sqrt(),
            token::T_QUANTILE => numeric::quantile(phi.unwrap_or(f64::NAN), values),
            _ => {
                return Err(EvalError(format!(
                    "aggregation {} is not supported",
                    TokenType::new(op)
                )))
            }
        };
        out.push(Sample {
            labels,
            value,
            at_ms: at,
        });
    }
    Ok(Value::Vector(out))
}

/// `min`/`max`: starts from the first value; a later value replaces the current one when
/// `replace(current, value)` holds or the current one is NaN.
fn fold_first(values: &[f64], replace: impl Fn(f64, f64) -> bool) -> f64 {
    let mut it = values.iter().copied();
    let Some(mut m) = it.next() else {
        return f64::NAN;
    };
    for v in it {
        if replace(m, v) || m.is_nan() {
            m = v;
        }
    }
    m
}

/// `sum`: plain addition in 2.42, Kahan-compensated in 3.x.
fn sum(values: &[f64], version: Version) -> f64 {
    let Some((&first, rest)) = values.split_first() else {
        return f64::NAN;
    };
    match version {
        Version::V2_42 => rest.iter().fold(first, |s, v| s + v),
        Version::V3 => {
            let (mut s, mut c) = (first, 0.0);
            for &v in rest {
                (s, c) = numeric::kahan_inc(v, s, c, version);
            }
            s + c
        }
    }
}

/// `avg`: 2.42's incremental mean (which skips finite values once the mean is infinite), or
/// 3.x's Kahan sum that turns incremental on overflow.
fn avg(values: &[f64], version: Version) -> f64 {
    let Some((&first, rest)) = values.split_first() else {
        return f64::NAN;
    };
    match version {
        Version::V2_42 => {
            let (mut mean, mut count) = (first, 1.0);
            for &v in rest {
                count += 1.0;
                if mean.is_infinite() {
                    if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                mean += v / count - mean / count;
            }
            mean
        }
        Version::V3 => {
            let mut mean = numeric::MeanV3::new(first);
            for &v in rest {
                mean.add(v);
            }
            mean.value()
        }
    }
}

/// `stdvar`: Welford's running variance, as Prometheus updates it sample by sample. 3.x makes
/// a group whose first value is NaN or infinite NaN; 2.42 starts it at 0.
fn variance(values: &[f64], version: Version) -> f64 {
    let Some((&first, rest)) = values.split_first() else {
        return f64::NAN;
    };
    let (mut mean, mut m2, mut count) = (first, 0.0, 1.0);
    if version == Version::V3 && !first.is_finite() {
        m2 = f64::NAN;
    }
    for &v in rest {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        m2 += delta * (v - mean);
    }
    m2 / count
}

#[cfg(test)]
mod tests {
    /// The large value of the test files, written as they write it (its digits are more than an
    /// f64 holds).
    fn big_value() -> f64 {
        "9.988465674311579e+307".parse().unwrap()
    }
    use super::super::testing::*;
    use super::*;

    fn src() -> Fixed {
        Fixed::from(
            &[
                ("http{job=\"a\",instance=\"1\"}", vec![1.0]),
                ("http{job=\"a\",instance=\"2\"}", vec![3.0]),
                ("http{job=\"b\",instance=\"1\"}", vec![10.0]),
            ],
            15_000,
        )
    }

    #[test]
    fn by_without_and_friends() {
        let s = src();
        assert_eq!(eval(&s, "sum(http)", 0).unwrap(), vec![("{}".into(), 14.0)]);
        assert_eq!(
            eval(&s, "sum by (job) (http)", 0).unwrap(),
            vec![("{job=\"a\"}".into(), 4.0), ("{job=\"b\"}".into(), 10.0)]
        );
        assert_eq!(
            eval(&s, "max without (instance) (http)", 0).unwrap(),
            vec![("{job=\"a\"}".into(), 3.0), ("{job=\"b\"}".into(), 10.0)]
        );
        assert_eq!(
            eval(&s, "sum by (__name__) (http)", 0).unwrap(),
            vec![("{__name__=\"http\"}".into(), 14.0)]
        );
        assert_eq!(eval(&s, "count(http)", 0).unwrap()[0].1, 3.0);
        assert_eq!(
            eval(&s, "topk(1, http)", 0).unwrap()[0].0,
            "{__name__=\"http\",instance=\"1\",job=\"b\"}"
        );
        assert_eq!(eval(&s, "bottomk by (job) (1, http)", 0).unwrap().len(), 2);
        assert_eq!(eval(&s, "quantile(0.5, http)", 0).unwrap()[0].1, 3.0);
        assert_eq!(eval(&s, "stddev(http{job=\"a\"})", 0).unwrap()[0].1, 1.0);
        assert_eq!(eval(&s, "group by (job) (http)", 0).unwrap().len(), 2);
        assert!(eval(&s, "topk(NaN, http)", 0)
            .unwrap_err()
            .contains("Scalar value NaN overflows int64"));
    }

    #[test]
    fn count_values_groups_by_the_value() {
        let s = Fixed::from(
            &[
                ("v{job=\"a\",i=\"1\"}", vec![1.0]),
                ("v{job=\"a\",i=\"2\"}", vec![1.0]),
                ("v{job=\"b\",i=\"1\"}", vec![2.0]),
            ],
            15_000,
        );
        assert_eq!(
            eval(&s, "count_values(\"value\", v)", 0).unwrap(),
            vec![("{value=\"1\"}".into(), 2.0), ("{value=\"2\"}".into(), 1.0)]
        );
        assert_eq!(
            eval(&s, "count_values without (i) (\"value\", v)", 0).unwrap(),
            vec![
                ("{job=\"a\",value=\"1\"}".into(), 2.0),
                ("{job=\"b\",value=\"2\"}".into(), 1.0)
            ]
        );
        assert!(eval(&s, "count_values(\"a-b\", v)", 0)
            .unwrap_err()
            .contains("invalid label name \"a-b\""));
    }

    #[test]
    fn numerics_follow_each_release() {
        // aggregators.test: the mean of four 9.988465674311579e+307 does not overflow.
        let big = [big_value(); 4];
        assert_eq!(avg(&big, Version::V3), big_value());
        assert_eq!(avg(&big, Version::V2_42), big_value());
        let bigzero = [-big_value(), -big_value(), big_value(), big_value()];
        assert_eq!(avg(&bigzero, Version::V3), 0.0);
        // aggregators.test: sum of 2, 8, 1e100, -1e100 is 10 with Kahan (3.x), 0 without.
        let ten = [2.0, 8.0, 1e100, -1e100];
        assert_eq!(sum(&ten, Version::V3), 10.0);
        assert_eq!(sum(&ten, Version::V2_42), 0.0);
        // Equal values have exactly zero variance.
        assert_eq!(variance(&[0.1; 5], Version::V2_42), 0.0);
        assert_eq!(variance(&[1.0, 3.0], Version::V3), 1.0);
        assert!(variance(&[f64::INFINITY], Version::V3).is_nan());
        assert_eq!(variance(&[f64::INFINITY], Version::V2_42), 0.0);
    }

    #[test]
    fn topk_keeps_non_nan_and_orders_like_prometheus() {
        let s = |v: f64, i: usize| Sample {
            labels: [("i".to_owned(), i.to_string())].into(),
            value: v,
            at_ms: 0,
        };
        let input = vec![s(f64::NAN, 0), s(1.0, 1), s(5.0, 2), s(3.0, 3)];
        for version in [Version::V2_42, Version::V3] {
            let got: Vec<f64> = top_k(input.clone(), 2, true, version)
                .iter()
                .map(|s| s.value)
                .collect();
            assert_eq!(got, vec![5.0, 3.0], "{version:?}");
            let got: Vec<f64> = top_k(input.clone(), 2, false, version)
                .iter()
                .map(|s| s.value)
                .collect();
            assert_eq!(got, vec![1.0, 3.0], "{version:?}");
        }
        // With fewer numbers than k, the NaN comes last.
        let got = top_k(vec![s(f64::NAN, 0), s(1.0, 1)], 3, true, Version::V3);
        assert_eq!(got[0].value, 1.0);
        assert!(got[1].value.is_nan());
    }

    #[test]
    fn limit_ratio_complements_split_exactly() {
        let labels: Vec<Labels> = (0..50)
            .map(|i| [("i".to_owned(), i.to_string())].into())
            .collect();
        let kept = |r: f64| {
            labels
                .iter()
                .filter(|l| {
                    let o = ratio_offset(l);
                    (r >= 0.0 && o < r) || (r < 0.0 && o >= 1.0 + r)
                })
                .count()
        };
        assert_eq!(kept(0.3) + kept(-0.7), 50);
        assert!((15..=35).contains(&kept(0.5)), "{}", kept(0.5));
    }
}
