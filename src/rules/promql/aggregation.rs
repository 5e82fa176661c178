//! PromQL aggregations as Prometheus 2.42 computes them: `sum avg min max count stddev stdvar
//! group topk bottomk quantile count_values`, grouped `by` or `without` labels.
//!
//! Owns grouping and each operator's arithmetic; `without` also drops `__name__`, `by` keeps
//! only the listed labels; `topk`/`bottomk` keep their samples' full labels.

use std::collections::BTreeMap;

use promql_parser::parser::token::{self, TokenType};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::functions::quantile;
use super::{EvalError, Evaluator, Labels, Sample, Value, NAME};

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

/// Evaluates an aggregation.
pub fn aggregate(ev: &Evaluator<'_>, agg: &AggregateExpr) -> Result<Value, EvalError> {
    let samples = ev.vector(&agg.expr)?;
    let op = agg.op.id();
    let at = ev.at_ms();
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
        let mut counts: BTreeMap<Labels, f64> = BTreeMap::new();
        for s in &samples {
            let mut l = group_labels(&s.labels, &agg.modifier);
            l.insert(label.clone(), crate::number::format_value(s.value));
            *counts.entry(l).or_default() += 1.0;
        }
        return Ok(Value::Vector(
            counts
                .into_iter()
                .map(|(labels, value)| Sample {
                    labels,
                    value,
                    at_ms: at,
                })
                .collect(),
        ));
    }
    let mut groups: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        groups
            .entry(group_labels(&s.labels, &agg.modifier))
            .or_default()
            .push(s);
    }
    if op == token::T_TOPK || op == token::T_BOTTOMK {
        let k = ev.scalar(param("topk/bottomk")?)?;
        let k = if k.is_nan() || k < 1.0 { 0 } else { k as usize };
        let mut out = Vec::new();
        for (_, mut members) in groups {
            members.sort_by(|a, b| {
                let (x, y) = (a.value, b.value);
                // NaN sorts last either way, as in Prometheus.
                match (x.is_nan(), y.is_nan()) {
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if op == token::T_TOPK => y.total_cmp(&x),
                    _ => x.total_cmp(&y),
                }
            });
            out.extend(members.into_iter().take(k));
        }
        return Ok(Value::Vector(out));
    }
    let phi = if op == token::T_QUANTILE {
        Some(ev.scalar(param("quantile")?)?)
    } else {
        None
    };
    let mut out = Vec::with_capacity(groups.len());
    for (labels, members) in groups {
        let values: Vec<f64> = members.iter().map(|s| s.value).collect();
        let n = values.len() as f64;
        let value = match op {
            token::T_SUM => values.iter().sum(),
            token::T_AVG => values.iter().sum::<f64>() / n,
            token::T_MIN => {
                values
                    .iter()
                    .copied()
                    .fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m })
            }
            token::T_MAX => {
                values
                    .iter()
                    .copied()
                    .fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m })
            }
            token::T_COUNT => n,
            token::T_GROUP => 1.0,
            token::T_STDVAR | token::T_STDDEV => {
                let mean = values.iter().sum::<f64>() / n;
                let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
                if op == token::T_STDDEV {
                    var.sqrt()
                } else {
                    var
                }
            }
            token::T_QUANTILE => quantile(phi.unwrap_or(f64::NAN), values),
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;

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
        assert_eq!(eval(&s, "count(http)", 0).unwrap()[0].1, 3.0);
        assert_eq!(
            eval(&s, "topk(1, http)", 0).unwrap()[0].0,
            "{__name__=\"http\",instance=\"1\",job=\"b\"}"
        );
        assert_eq!(eval(&s, "bottomk by (job) (1, http)", 0).unwrap().len(), 2);
        assert_eq!(eval(&s, "quantile(0.5, http)", 0).unwrap()[0].1, 3.0);
        assert_eq!(eval(&s, "stddev(http{job=\"a\"})", 0).unwrap()[0].1, 1.0);
        assert_eq!(eval(&s, "count_values(\"v\", http)", 0).unwrap().len(), 3);
        assert_eq!(eval(&s, "group by (job) (http)", 0).unwrap().len(), 2);
    }
}
