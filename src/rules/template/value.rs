//! The values a template meets at execution, standing in for the Go types Prometheus's
//! templates see (strings, numbers, label maps, the alert record, query results), and Go's
//! `%v` printing of each.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use super::humanize::{format_go_duration, format_go_time, format_utc_millis};
use super::number::format_float;
use super::QuerySample;

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
    /// A query result (`queryResult`, a slice of samples).
    Samples(Rc<Vec<Rc<QuerySample>>>),
    /// One sample of a query result (`*sample`).
    Sample(Rc<QuerySample>),
    /// What `args` returns (`map[string]interface{}`).
    Args(Rc<BTreeMap<String, Value>>),
    /// A `*time.Time` from `toTime`, milliseconds since the epoch (Prometheus's
    /// `model.Time` precision).
    Time(i64),
    /// A `*time.Duration` from `toDuration`, nanoseconds.
    Duration(i64),
    /// An interface holding nothing, as a missing `args` key gives.
    Nil,
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
            Value::Samples(_) => "template.queryResult",
            Value::Sample(_) => "*template.sample",
            Value::Args(_) => "map[string]interface {}",
            Value::Time(_) => "*time.Time",
            Value::Duration(_) => "*time.Duration",
            Value::Nil => "<nil>",
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
            Value::Record(_) | Value::Sample(_) | Value::Time(_) | Value::Duration(_) => true,
            Value::Samples(samples) => !samples.is_empty(),
            Value::Args(args) => !args.is_empty(),
            Value::Nil => false,
        }
    }

    pub(super) fn field(&self, name: &str) -> Result<Value, String> {
        match self {
            Value::Map(map) => Ok(Value::Str(map.get(name).cloned().unwrap_or_default())),
            Value::Record(record) => record.field(name),
            Value::Sample(sample) => match name {
                "Labels" => Ok(Value::Map(Rc::new(sample.labels.clone()))),
                "Value" => Ok(Value::Float(sample.value)),
                _ => Err(format!(
                    "can't evaluate field {name} in type {}",
                    self.type_name()
                )),
            },
            // missingkey=zero on an interface map gives a nil interface.
            Value::Args(args) => Ok(args.get(name).cloned().unwrap_or(Value::Nil)),
            Value::Time(millis) => time_method(*millis, name),
            Value::Duration(nanos) => duration_method(*nanos, name),
            _ => Err(format!(
                "can't evaluate field {name} in type {}",
                self.type_name()
            )),
        }
    }

    /// Whether `name` is a method of this value's Go type that takes arguments.
    pub(super) fn has_method_with_arguments(&self, name: &str) -> bool {
        matches!((self, name), (Value::Time(_), "Format"))
    }

    /// Calls a method that takes arguments (see [`Value::has_method_with_arguments`]).
    pub(super) fn call_method(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        match (self, name) {
            (Value::Time(millis), "Format") => {
                let [layout]: [Value; 1] = args.try_into().map_err(|args: Vec<Value>| {
                    format!("wrong number of args for Format: want 1 got {}", args.len())
                })?;
                Ok(Value::Str(format_go_time(*millis, &layout.into_string()?)))
            }
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
            Value::Samples(samples) => {
                // Go prints the slice's pointers; their targets say more and are stable.
                f.write_str("[")?;
                for (index, sample) in samples.iter().enumerate() {
                    let separator = if index == 0 { "" } else { " " };
                    write!(f, "{separator}")?;
                    write_sample(f, sample)?;
                }
                f.write_str("]")
            }
            Value::Sample(sample) => write_sample(f, sample),
            Value::Args(args) => {
                f.write_str("map[")?;
                for (index, (key, value)) in args.iter().enumerate() {
                    let separator = if index == 0 { "" } else { " " };
                    write!(f, "{separator}{key}:{value}")?;
                }
                f.write_str("]")
            }
            Value::Time(millis) => f.write_str(&format_utc_millis(*millis)),
            Value::Duration(nanos) => f.write_str(&format_go_duration(*nanos)),
            Value::Nil => f.write_str("<no value>"),
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

/// A `*sample` as text/template prints it: the pointer followed, `{map[...] value}`.
fn write_sample(f: &mut fmt::Formatter<'_>, sample: &QuerySample) -> fmt::Result {
    f.write_str("{")?;
    write_map(f, &sample.labels)?;
    write!(f, " {}}}", format_float(sample.value))
}

/// The methods of `time.Time` a template calls without arguments.
fn time_method(millis: i64, name: &str) -> Result<Value, String> {
    match name {
        "Unix" => Ok(Value::Int(millis.div_euclid(1000))),
        "UnixMilli" => Ok(Value::Int(millis)),
        "UnixNano" => Ok(Value::Int(millis.saturating_mul(1_000_000))),
        "UTC" | "Local" => Ok(Value::Time(millis)),
        _ => Err(format!("can't evaluate field {name} in type *time.Time")),
    }
}

/// The methods of `time.Duration` a template calls without arguments.
fn duration_method(nanos: i64, name: &str) -> Result<Value, String> {
    // Go computes these from the integer parts, as here.
    let seconds = |unit: i64| (nanos / unit) as f64 + (nanos % unit) as f64 / unit as f64;
    match name {
        "Hours" => Ok(Value::Float(seconds(3_600_000_000_000))),
        "Minutes" => Ok(Value::Float(seconds(60_000_000_000))),
        "Seconds" => Ok(Value::Float(seconds(1_000_000_000))),
        "Milliseconds" => Ok(Value::Int(nanos / 1_000_000)),
        "Microseconds" => Ok(Value::Int(nanos / 1_000)),
        "Nanoseconds" => Ok(Value::Int(nanos)),
        "String" => Ok(Value::Str(format_go_duration(nanos))),
        _ => Err(format!(
            "can't evaluate field {name} in type *time.Duration"
        )),
    }
}
