//! Output formats of the history: CSV and JSON exports (written series by series, so a long
//! export streams and memory stays flat), and Prometheus's `query_range` matrix shape.
//!
//! Owns the bytes of each format, nothing else: what to read comes from the store, which window
//! from [`super::query`].
//!
//! CSV: a header `timestamp,metric,<one column per label name, sorted>,value`, one row per
//! (series, timestamp), RFC 3339 timestamps, quoting by the `csv` crate.
//! JSON: `{"start": RFC 3339, "end": ..., "step_seconds": number or null, "function": name or
//! null, "series": [{"metric": name, "labels": {...}, "points": [[RFC 3339, value], ...]}]}`;
//! values are JSON numbers, or the strings `"NaN"`, `"+Inf"`, `"-Inf"`.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};

use super::aggregate::{aggregate, Function};
use super::codec::DecodeError;
use super::query::Window;
use super::{History, Points, SeriesKey};
use crate::clock::rfc3339;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values.
    Csv,
    /// JSON.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown format {other:?}: use csv or json")),
        }
    }
}

impl Format {
    /// The Content-Type of an export in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// How a value is written where text is needed (CSV, Prometheus JSON): the shortest text that
/// reads back to the same number, and Prometheus's spellings of the non-finite ones.
pub fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

fn value_json(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        json!(value_text(v))
    }
}

/// An export being written: the series chosen, then one chunk of bytes per series.
#[derive(Debug)]
pub struct Export {
    format: Format,
    window: Window,
    keys: Vec<Arc<SeriesKey>>,
    label_names: Vec<String>,
}

impl Export {
    /// Plans an export of `keys` over `window`.
    pub fn new(format: Format, window: Window, keys: Vec<Arc<SeriesKey>>) -> Export {
        let label_names: BTreeSet<String> = keys
            .iter()
            .flat_map(|k| k.labels.iter().map(|(n, _)| n.clone()))
            .collect();
        Export {
            format,
            window,
            keys,
            label_names: label_names.into_iter().collect(),
        }
    }

    /// The series, in export order.
    pub fn keys(&self) -> &[Arc<SeriesKey>] {
        &self.keys
    }

    /// The points of series `i`: raw, or aggregated when the window has a step and a function.
    pub fn points(&self, history: &History, i: usize) -> Result<Points, DecodeError> {
        let w = self.window;
        let raw = history.points(&self.keys[i], w.start_ms, w.end_ms)?;
        Ok(match (w.step_ms, w.function) {
            (Some(step), Some(f)) => aggregate(&raw, w.start_ms, w.end_ms, step, f),
            (Some(step), None) => aggregate(&raw, w.start_ms, w.end_ms, step, Function::Last),
            _ => raw,
        })
    }

    /// The bytes before the first series.
    pub fn header(&self) -> Vec<u8> {
        match self.format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                let mut row = vec!["timestamp", "metric"];
                row.extend(self.label_names.iter().map(String::as_str));
                row.push("value");
                let _ = w.write_record(&row);
                w.into_inner().unwrap_or_default()
            }
            Format::Json => {
                let w = self.window;
                let head = json!({
                    "start": rfc3339(w.start_ms),
                    "end": rfc3339(w.end_ms),
                    "step_seconds": w.step_ms.map(|s| s as f64 / 1000.0),
                    "function": w.function.map(|f| format!("{f:?}").to_lowercase()),
                });
                let mut text = head.to_string();
                text.pop();
                text.push_str(",\"series\":[");
                text.into_bytes()
            }
        }
    }

    /// The bytes of series `i` with its points.
    pub fn series(&self, i: usize, points: &Points) -> Vec<u8> {
        let key = &self.keys[i];
        match self.format {
            Format::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::new());
                for (t, v) in points {
                    let mut row = vec![rfc3339(*t), key.name.clone()];
                    row.extend(
                        self.label_names
                            .iter()
                            .map(|n| key.label(n).unwrap_or("").to_owned()),
                    );
                    row.push(value_text(*v));
                    let _ = w.write_record(&row);
                }
                w.into_inner().unwrap_or_default()
            }
            Format::Json => {
                let labels: serde_json::Map<String, Value> = key
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                let points: Vec<Value> = points
                    .iter()
                    .map(|(t, v)| json!([rfc3339(*t), value_json(*v)]))
                    .collect();
                let item = json!({"metric": key.name, "labels": labels, "points": points});
                let mut text = if i == 0 {
                    String::new()
                } else {
                    ",".to_owned()
                };
                text.push_str(&item.to_string());
                text.into_bytes()
            }
        }
    }

    /// The bytes after the last series.
    pub fn footer(&self) -> Vec<u8> {
        match self.format {
            Format::Csv => Vec::new(),
            Format::Json => b"]}\n".to_vec(),
        }
    }

    /// Writes the whole export, series by series; `progress` is told after each.
    pub fn write_all(
        &self,
        history: &History,
        out: &mut dyn std::io::Write,
        mut progress: impl FnMut(usize),
    ) -> std::io::Result<()> {
        out.write_all(&self.header())?;
        for i in 0..self.keys.len() {
            let points = self.points(history, i).map_err(std::io::Error::other)?;
            out.write_all(&self.series(i, &points))?;
            progress(i + 1);
        }
        out.write_all(&self.footer())
    }
}

/// Prometheus's lookback: a sample stands for this long at most.
const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// The value of a series at each step from `start` to `end`, as Prometheus evaluates a plain
/// selector: the newest sample no older than five minutes.
pub fn at_steps(points: &Points, start_ms: i64, end_ms: i64, step_ms: i64) -> Points {
    let mut out = Vec::new();
    let mut t = start_ms;
    let mut i = 0;
    while t <= end_ms {
        while i < points.len() && points[i].0 <= t {
            i += 1;
        }
        if let Some(&(ts, v)) = i.checked_sub(1).map(|j| &points[j]) {
            if ts > t - LOOKBACK_MS {
                out.push((t, v));
            }
        }
        t += step_ms.max(1);
    }
    out
}

/// A series' labels as Prometheus's API writes a `metric` object, `__name__` included.
pub fn metric_json(key: &SeriesKey) -> Value {
    let mut metric = serde_json::Map::new();
    metric.insert("__name__".into(), json!(key.name));
    for (k, v) in &key.labels {
        metric.insert(k.clone(), json!(v));
    }
    Value::Object(metric)
}

/// The matrix of a `query_range` answer, in Prometheus's HTTP API shape.
pub fn prometheus_matrix(series: &[(Arc<SeriesKey>, Points)]) -> Value {
    let result: Vec<Value> = series
        .iter()
        .filter(|(_, points)| !points.is_empty())
        .map(|(key, points)| {
            let metric = metric_json(key);
            let values: Vec<Value> = points
                .iter()
                .map(|(t, v)| json!([*t as f64 / 1000.0, prometheus_value(*v)]))
                .collect();
            json!({"metric": metric, "values": values})
        })
        .collect();
    json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
}

/// A value as Prometheus's API writes it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`).
fn prometheus_value(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        value_text(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Arc<SeriesKey> {
        Arc::new(SeriesKey {
            name: "m".into(),
            labels: vec![("note".into(), "a,\"b\"\nc".into())],
        })
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let w = Window {
            start_ms: 0,
            end_ms: 10,
            step_ms: None,
            function: None,
        };
        let e = Export::new(Format::Csv, w, vec![key()]);
        let mut bytes = e.header();
        bytes.extend(e.series(0, &vec![(1000, 0.5), (2000, f64::INFINITY)]));
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "timestamp,metric,note,value\n1970-01-01T00:00:01.000Z,m,\"a,\"\"b\"\"\nc\",0.5\n1970-01-01T00:00:02.000Z,m,\"a,\"\"b\"\"\nc\",+Inf\n"
        );
    }

    #[test]
    fn json_export_is_valid_json() {
        let w = Window {
            start_ms: 0,
            end_ms: 10,
            step_ms: Some(5),
            function: Some(Function::Avg),
        };
        let e = Export::new(Format::Json, w, vec![key(), key()]);
        let mut bytes = e.header();
        bytes.extend(e.series(0, &vec![(0, f64::NAN)]));
        bytes.extend(e.series(1, &vec![(5, 1.0)]));
        bytes.extend(e.footer());
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["function"], "avg");
        assert_eq!(v["step_seconds"], 0.005);
        assert_eq!(v["series"][0]["points"][0][1], "NaN");
        assert_eq!(
            v["series"][1]["points"][0],
            json!(["1970-01-01T00:00:00.005Z", 1.0])
        );
    }

    #[test]
    fn steps_follow_prometheus_lookback() {
        let points = vec![(0, 1.0), (60_000, 2.0)];
        let got = at_steps(&points, 0, 600_000, 120_000);
        assert_eq!(
            got,
            vec![(0, 1.0), (120_000, 2.0), (240_000, 2.0)],
            "stale after 5 minutes"
        );
        let m = prometheus_matrix(&[(key(), got)]);
        assert_eq!(m["data"]["result"][0]["values"][1], json!([120.0, "2"]));
        assert_eq!(m["data"]["result"][0]["metric"]["__name__"], "m");
    }
}
