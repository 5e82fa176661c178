//! PromQL binary operators as Prometheus 3.5 and 2.42 apply them: arithmetic, comparisons
//! (filtering, or 0/1 with `bool`), and the set operators `and or unless`, between scalars and
//! vectors, with one-to-one and `group_left`/`group_right` matching `on` or `ignoring` labels.
//!
//! Owns vector matching and the result labels (arithmetic and `bool` drop `__name__`, in 3.x
//! with `__type__` and `__unit__` and through `atan2` too; `on` keeps only the matching labels
//! one-to-one; `group_x` copies the listed labels from the "one" side), and Prometheus's
//! matching errors, raised after comparisons have filtered, as Prometheus raises them.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::token;
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::{
    check_unique, drop_metric_name, EvalError, Evaluator, Labels, Sample, Semantics, Value, NAME,
};

fn is_comparison(op: u16) -> bool {
    matches!(
        op,
        token::T_EQLC | token::T_NEQ | token::T_GTR | token::T_LSS | token::T_GTE | token::T_LTE
    )
}

/// `lhs op rhs` for two numbers: the value, and for comparisons whether it holds.
fn apply(op: u16, l: f64, r: f64) -> Result<(f64, bool), EvalError> {
    Ok(match op {
        token::T_ADD => (l + r, true),
        token::T_SUB => (l - r, true),
        token::T_MUL => (l * r, true),
        token::T_DIV => (l / r, true),
        token::T_POW => (l.powf(r), true),
        token::T_MOD => (l % r, true),
        token::T_ATAN2 => (l.atan2(r), true),
        token::T_EQLC => (l, l == r),
        token::T_NEQ => (l, l != r),
        token::T_GTR => (l, l > r),
        token::T_LSS => (l, l < r),
        token::T_GTE => (l, l >= r),
        token::T_LTE => (l, l <= r),
        other => {
            return Err(EvalError(format!(
                "operator {} is not defined between numbers",
                promql_parser::parser::token::TokenType::new(other)
            )))
        }
    })
}

/// Whether the operator's result drops the metric name: arithmetic does (and, in 3.x, `atan2`;
/// 2.42 keeps the name through `atan2`).
fn drops_name(op: u16, semantics: Semantics) -> bool {
    matches!(
        op,
        token::T_ADD | token::T_SUB | token::T_MUL | token::T_DIV | token::T_POW | token::T_MOD
    ) || (op == token::T_ATAN2 && semantics == Semantics::Prometheus3)
}

fn op_id(b: &BinaryExpr) -> u16 {
    b.op.id()
}

/// Evaluates a binary expression.
pub fn binary(ev: &Evaluator<'_>, b: &BinaryExpr) -> Result<Value, EvalError> {
    let op = op_id(b);
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs)?;
    let rhs = ev.eval(&b.rhs)?;
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (v, holds) = apply(op, l, r)?;
            if is_comparison(op) {
                if !return_bool {
                    return Err(EvalError(
                        "comparisons between scalars must use the bool modifier".into(),
                    ));
                }
                return Ok(Value::Scalar(if holds { 1.0 } else { 0.0 }));
            }
            Ok(Value::Scalar(v))
        }
        (Value::Vector(v), Value::Scalar(s)) => {
            vector_scalar(op, v, s, false, return_bool, ev.semantics())
        }
        (Value::Scalar(s), Value::Vector(v)) => {
            vector_scalar(op, v, s, true, return_bool, ev.semantics())
        }
        (Value::Vector(l), Value::Vector(r)) => {
            vector_vector(op, l, r, b.modifier.as_ref(), return_bool, ev.semantics())
        }
        (l, r) => Err(EvalError(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            super::type_name(&l),
            super::type_name(&r)
        ))),
    }
}

fn vector_scalar(
    op: u16,
    v: Vec<Sample>,
    s: f64,
    scalar_left: bool,
    return_bool: bool,
    semantics: Semantics,
) -> Result<Value, EvalError> {
    if matches!(op, token::T_LAND | token::T_LOR | token::T_LUNLESS) {
        return Err(EvalError(
            "set operators are only defined between instant vectors".into(),
        ));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut sample in v {
        let (l, r) = if scalar_left {
            (s, sample.value)
        } else {
            (sample.value, s)
        };
        let (value, holds) = apply(op, l, r)?;
        if is_comparison(op) {
            if return_bool {
                sample.value = if holds { 1.0 } else { 0.0 };
                drop_metric_name(&mut sample.labels, semantics);
            } else if holds {
                // A filter keeps the vector's own value.
                sample.value = if scalar_left { r } else { l };
            } else {
                continue;
            }
        } else {
            sample.value = value;
            if drops_name(op, semantics) {
                drop_metric_name(&mut sample.labels, semantics);
            }
        }
        out.push(sample);
    }
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// The signature two samples must share to match.
fn signature(labels: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => labels
            .iter()
            .filter(|(k, _)| on.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(ignoring)) => labels
            .iter()
            .filter(|(k, _)| *k != NAME && !ignoring.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => labels
            .iter()
            .filter(|(k, _)| *k != NAME)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn set_operation(
    op: u16,
    l: Vec<Sample>,
    r: Vec<Sample>,
    matching: Option<&LabelModifier>,
) -> Vec<Sample> {
    let right: HashSet<Labels> = r.iter().map(|s| signature(&s.labels, matching)).collect();
    match op {
        token::T_LAND => l
            .into_iter()
            .filter(|s| right.contains(&signature(&s.labels, matching)))
            .collect(),
        token::T_LUNLESS => l
            .into_iter()
            .filter(|s| !right.contains(&signature(&s.labels, matching)))
            .collect(),
        _ => {
            let left: HashSet<Labels> = l.iter().map(|s| signature(&s.labels, matching)).collect();
            let mut out = l;
            out.extend(
                r.into_iter()
                    .filter(|s| !left.contains(&signature(&s.labels, matching))),
            );
            out
        }
    }
}

fn result_labels(
    op: u16,
    lhs: &Labels,
    one_side: &Labels,
    modifier: Option<&BinModifier>,
    return_bool: bool,
    semantics: Semantics,
) -> Labels {
    let mut labels = lhs.clone();
    if drops_name(op, semantics) || return_bool {
        drop_metric_name(&mut labels, semantics);
    }
    let card = modifier.map(|m| &m.card);
    let matching = modifier.and_then(|m| m.matching.as_ref());
    if matches!(card, None | Some(VectorMatchCardinality::OneToOne)) {
        match matching {
            Some(LabelModifier::Include(on)) => {
                labels.retain(|k, _| on.labels.iter().any(|l| l == k))
            }
            Some(LabelModifier::Exclude(ignoring)) => {
                labels.retain(|k, _| !ignoring.labels.iter().any(|l| l == k))
            }
            None => {}
        }
    }
    if let Some(include) = card.and_then(|c| c.labels()) {
        for name in &include.labels {
            match one_side.get(name) {
                Some(v) if !v.is_empty() => {
                    labels.insert(name.clone(), v.clone());
                }
                _ => {
                    labels.remove(name);
                }
            }
        }
    }
    labels
}

fn vector_vector(
    op: u16,
    l: Vec<Sample>,
    r: Vec<Sample>,
    modifier: Option<&BinModifier>,
    return_bool: bool,
    semantics: Semantics,
) -> Result<Value, EvalError> {
    let matching = modifier.and_then(|m| m.matching.as_ref());
    if matches!(op, token::T_LAND | token::T_LOR | token::T_LUNLESS) {
        return Ok(Value::Vector(set_operation(op, l, r, matching)));
    }
    let card = modifier
        .map(|m| m.card.clone())
        .unwrap_or(VectorMatchCardinality::OneToOne);
    // The "many" side is iterated; the "one" side is looked up by signature.
    let (many, one, swapped) = match card {
        VectorMatchCardinality::OneToMany(_) => (r, l, true),
        _ => (l, r, false),
    };
    let mut by_signature: HashMap<Labels, Sample> = HashMap::new();
    for s in one {
        let sig = signature(&s.labels, matching);
        if let Some(earlier) = by_signature.get(&sig) {
            let side = if swapped { "left" } else { "right" };
            let matched = match matching {
                Some(LabelModifier::Include(_)) => sig.clone(),
                _ => {
                    // Prometheus names the labels matched on: all but the ignored ones.
                    let mut l = s.labels.clone();
                    if let Some(LabelModifier::Exclude(ignoring)) = matching {
                        l.retain(|k, _| !ignoring.labels.iter().any(|i| i == k));
                    }
                    l.remove(NAME);
                    l
                }
            };
            return Err(EvalError(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                render(&matched),
                render(&s.labels),
                render(&earlier.labels)
            )));
        }
        by_signature.insert(sig, s);
    }
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let mut matched_left: HashSet<Labels> = HashSet::new();
    let mut inserted: HashSet<(Labels, Labels)> = HashSet::new();
    let mut out = Vec::new();
    for s in many {
        let sig = signature(&s.labels, matching);
        let Some(other) = by_signature.get(&sig) else {
            continue;
        };
        let (lv, rv) = if swapped {
            (other.value, s.value)
        } else {
            (s.value, other.value)
        };
        let (value, holds) = apply(op, lv, rv)?;
        let value = if is_comparison(op) {
            if return_bool {
                if holds {
                    1.0
                } else {
                    0.0
                }
            } else if holds {
                lv
            } else {
                continue;
            }
        } else {
            value
        };
        let labels = result_labels(
            op,
            &s.labels,
            &other.labels,
            modifier,
            return_bool,
            semantics,
        );
        if one_to_one {
            if !matched_left.insert(sig.clone()) {
                return Err(EvalError(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
        } else if !inserted.insert((sig.clone(), labels.clone())) {
            return Err(EvalError(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            ));
        }
        out.push(Sample {
            labels,
            value,
            at_ms: s.at_ms,
        });
    }
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn render(labels: &Labels) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    fn src() -> Fixed {
        Fixed::from(
            &[
                ("used{instance=\"a\",mount=\"/\"}", vec![50.0]),
                ("used{instance=\"a\",mount=\"/data\"}", vec![90.0]),
                ("size{instance=\"a\",mount=\"/\"}", vec![100.0]),
                ("size{instance=\"a\",mount=\"/data\"}", vec![100.0]),
                ("info{instance=\"a\",version=\"1.2\"}", vec![1.0]),
            ],
            15_000,
        )
    }

    #[test]
    fn arithmetic_and_comparison() {
        let s = src();
        assert_eq!(
            eval(&s, "used / size", 0).unwrap(),
            vec![
                ("{instance=\"a\",mount=\"/\"}".into(), 0.5),
                ("{instance=\"a\",mount=\"/data\"}".into(), 0.9)
            ]
        );
        assert_eq!(
            eval(&s, "used > 60", 0).unwrap(),
            vec![(
                "{__name__=\"used\",instance=\"a\",mount=\"/data\"}".into(),
                90.0
            )]
        );
        assert_eq!(
            eval(&s, "used > bool 60", 0)
                .unwrap()
                .iter()
                .map(|x| x.1)
                .collect::<Vec<_>>(),
            vec![0.0, 1.0]
        );
        assert_eq!(
            eval(&s, "1 + 2 * 3", 0).unwrap(),
            vec![("scalar".into(), 7.0)]
        );
        assert!(eval(&s, "1 > 2", 0).is_err());
        assert_eq!(eval(&s, "2 > bool 1", 0).unwrap()[0].1, 1.0);
    }

    #[test]
    fn matching_on_ignoring_and_group_left() {
        let s = src();
        assert_eq!(
            eval(&s, "used / on(instance, mount) size", 0)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            eval(
                &s,
                "sum by (instance) (used) / on(instance) sum by (instance) (size)",
                0
            )
            .unwrap(),
            vec![("{instance=\"a\"}".into(), 0.7)]
        );
        let joined = eval(&s, "used * on(instance) group_left(version) info", 0).unwrap();
        assert_eq!(
            joined[1].0,
            "{instance=\"a\",mount=\"/data\",version=\"1.2\"}"
        );
        let err = eval(&s, "used * on(instance) info + on(instance) used", 0).unwrap_err();
        assert!(
            err.contains("many-to-many") || err.contains("multiple matches"),
            "{err}"
        );
    }

    #[test]
    fn set_operators() {
        let s = src();
        assert_eq!(
            eval(&s, "used and on(mount) used > 60", 0).unwrap().len(),
            1
        );
        assert_eq!(
            eval(&s, "used unless on(mount) used > 60", 0)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            eval(&s, "used or size", 0).unwrap().len(),
            2,
            "size matches used's label sets"
        );
        assert_eq!(eval(&s, "used or info", 0).unwrap().len(), 3);
    }
}
