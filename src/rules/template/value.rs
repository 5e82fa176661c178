//! The values a template meets at execution, standing in for the Go types Prometheus's
//! templates see (strings, numbers, label maps, the alert record, query results), and Go's
//! `%v` printing of each.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use super::number::format_float;

pub(super) type LabelMap = BTreeMap<String, String>;

/// The alert data as the template's root value (Go's anonymous struct).
#[derive(Debug)]
pub(super) struct AlertRecord {
    pub(super) labels: Rc<LabelMap>,
    pub(super) external_labels: Rc<LabelMap>,
    pub(super) external_url: String,
    pub(super) value: f64,
}

/// A value during execution, standing in for the Go types Prometheus templates meet.
#[derive(Debug, Clone)]
pub(super) enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Map(Rc<LabelMap>),
    Record(Rc<AlertRecord>),
}

pub(super) const RECORD_TYPE: &str =
    "struct { Labels map[string]string; ExternalLabels map[string]string; \
ExternalURL string; Value float64 }";

impl Value {
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Map(_) => "map[string]string",
            Value::Record(_) => RECORD_TYPE,
        }
    }

    /// Go's notion of truth for `if`, `with`, `and`, `or` and `not`.
    pub(super) fn is_true(&self) -> bool {
        match self {
            Value::Str(text) => !text.is_empty(),
            Value::Int(value) => *value != 0,
            Value::Float(value) => *value != 0.0,
            Value::Bool(value) => *value,
            Value::Map(map) => !map.is_empty(),
            Value::Record(_) => true,
        }
    }

    pub(super) fn field(&self, name: &str) -> Result<Value, String> {
        match self {
            Value::Map(map) => Ok(Value::Str(map.get(name).cloned().unwrap_or_default())),
            Value::Record(record) => record.field(name),
            _ => Err(format!(
                "can't evaluate field {name} in type {}",
                self.type_name()
            )),
        }
    }

    pub(super) fn into_string(self) -> Result<String, String> {
        match self {
            Value::Str(text) => Ok(text),
            other => Err(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            )),
        }
    }
}

impl AlertRecord {
    pub(super) fn field(&self, name: &str) -> Result<Value, String> {
        match name {
            "Labels" => Ok(Value::Map(Rc::clone(&self.labels))),
            "ExternalLabels" => Ok(Value::Map(Rc::clone(&self.external_labels))),
            "ExternalURL" => Ok(Value::Str(self.external_url.clone())),
            "Value" => Ok(Value::Float(self.value)),
            _ => Err(format!("can't evaluate field {name} in type {RECORD_TYPE}")),
        }
    }
}

/// Go's `%v`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(text) => f.write_str(text),
            Value::Int(value) => write!(f, "{value}"),
            Value::Float(value) => f.write_str(&format_float(*value)),
            Value::Bool(value) => write!(f, "{value}"),
            Value::Map(map) => write_map(f, map),
            Value::Record(record) => {
                f.write_str("{")?;
                write_map(f, &record.labels)?;
                f.write_str(" ")?;
                write_map(f, &record.external_labels)?;
                write!(
                    f,
                    " {} {}}}",
                    record.external_url,
                    format_float(record.value)
                )
            }
        }
    }
}

pub(super) fn write_map(f: &mut fmt::Formatter<'_>, map: &LabelMap) -> fmt::Result {
    f.write_str("map[")?;
    for (index, (key, value)) in map.iter().enumerate() {
        let separator = if index == 0 { "" } else { " " };
        write!(f, "{separator}{key}:{value}")?;
    }
    f.write_str("]")
}
