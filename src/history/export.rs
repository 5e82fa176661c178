//! Output formats of the history: CSV, JSON and OpenMetrics exports (written series by series,
//! so a long export streams and memory stays flat), and the pieces of Prometheus's HTTP API JSON
//! (timestamps, values, strings and label sets written exactly as Prometheus writes them).
//!
//! Owns the bytes of each format, nothing else: what to read comes from the store, which window
//! from [`super::query`].
//!
//! CSV: a header `timestamp,metric,<one column per label name, sorted>,value`, one row per
//! (series, timestamp), RFC 3339 timestamps, quoting by the `csv` crate.
//! JSON: `{"start": RFC 3339, "end": ..., "step_seconds": number or null, "function": name or
//! null, "series": [{"metric": name, "labels": {...}, "points": [[RFC 3339, value], ...]}]}`;
//! values are JSON numbers, or the strings `"NaN"`, `"+Inf"`, `"-Inf"`.
//! OpenMetrics: Prometheus's backfill input (`promtool tsdb create-blocks-from openmetrics`):
//! one `# TYPE` line per family, its samples contiguous (series are exported sorted by name),
//! `name{labels} value timestamp` with the timestamp in seconds, and `# EOF` at the end.
//! A family is a `counter` (named without its `_total`) or a `gauge` when the exporting side
//! knows it (the sentinel's current families), else a name ending in `_total` is a counter (the
//! sentinel's counters all end so) and anything else, recorded rules included, is `unknown`.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{json, Value};

use super::aggregate::{aggregate, Function};
use super::codec::DecodeError;
use super::query::Window;
use super::{History, Points, SeriesKey};
use crate::clock::rfc3339;
use crate::model::MetricKind;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values.
    Csv,
    /// JSON.
    Json,
    /// OpenMetrics text, as `promtool tsdb create-blocks-from openmetrics` reads it.
    OpenMetrics,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "openmetrics" => Ok(Format::OpenMetrics),
            other => Err(format!(
                "unknown format {other:?}: use csv, json or openmetrics"
            )),
        }
    }
}

impl Format {
    /// The Content-Type of an export in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
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
    /// OpenMetrics: each metric name's family name and type.
    families: HashMap<String, (String, &'static str)>,
}

impl Export {
    /// Plans an export of `keys` over `window`.
    pub fn new(format: Format, window: Window, keys: Vec<Arc<SeriesKey>>) -> Export {
        let label_names: BTreeSet<String> = keys
            .iter()
            .flat_map(|k| k.labels.iter().map(|(n, _)| n.clone()))
            .collect();
        let mut export = Export {
            format,
            window,
            keys,
            label_names: label_names.into_iter().collect(),
            families: HashMap::new(),
        };
        export.families = families(&export.keys, &HashMap::new());
        export
    }

    /// Uses these types (by metric name, as the sentinel exposes them) for OpenMetrics'
    /// `# TYPE` lines instead of the naming convention alone.
    pub fn with_kinds(mut self, kinds: &HashMap<String, MetricKind>) -> Export {
        self.families = families(&self.keys, kinds);
        self
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
            Format::OpenMetrics => Vec::new(),
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
            Format::OpenMetrics => {
                let mut text = String::new();
                let (family, kind) = self
                    .families
                    .get(&key.name)
                    .map_or((key.name.as_str(), "unknown"), |(f, k)| (f.as_str(), *k));
                let first_of_family = i == 0 || self.keys[i - 1].name != key.name;
                if first_of_family {
                    let _ = writeln!(text, "# TYPE {family} {kind}");
                }
                let mut series = key.name.clone();
                if !key.labels.is_empty() {
                    series.push('{');
                    for (n, (k, v)) in key.labels.iter().enumerate() {
                        if n > 0 {
                            series.push(',');
                        }
                        let _ = write!(series, "{k}=\"{}\"", openmetrics_escape(v));
                    }
                    series.push('}');
                }
                for (t, v) in points {
                    let _ = writeln!(
                        text,
                        "{series} {} {}",
                        value_text(*v),
                        openmetrics_timestamp(*t)
                    );
                }
                text.into_bytes()
            }
        }
    }

    /// The bytes after the last series.
    pub fn footer(&self) -> Vec<u8> {
        match self.format {
            Format::Csv => Vec::new(),
            Format::Json => b"]}\n".to_vec(),
            Format::OpenMetrics => b"# EOF\n".to_vec(),
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

/// Each metric name's OpenMetrics family name and type. A counter's family is its name without
/// `_total`, unless another exported metric has that name (then the counter is `unknown`, as
/// one family's samples must stay together).
fn families(
    keys: &[Arc<SeriesKey>],
    kinds: &HashMap<String, MetricKind>,
) -> HashMap<String, (String, &'static str)> {
    let names: BTreeSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    names
        .iter()
        .map(|&name| {
            let kind = kinds
                .get(name)
                .copied()
                .or_else(|| name.ends_with("_total").then_some(MetricKind::Counter));
            let family = match kind {
                Some(MetricKind::Gauge) => (name.to_owned(), "gauge"),
                Some(MetricKind::Counter) => match name.strip_suffix("_total") {
                    Some(family) if !family.is_empty() && !names.contains(family) => {
                        (family.to_owned(), "counter")
                    }
                    _ => (name.to_owned(), "unknown"),
                },
                None => (name.to_owned(), "unknown"),
            };
            (name.to_owned(), family)
        })
        .collect()
}

/// A label value escaped as OpenMetrics text wants it (backslash, double quote, newline).
fn openmetrics_escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A timestamp in seconds that Prometheus's OpenMetrics parser reads back as `ms` exactly.
/// It multiplies the seconds by 1000 and truncates, so `1.001` would come back as 1000 ms (the
/// product is a hair below 1001): the nearest double whose product truncates to `ms` is
/// written instead, in its shortest form (`1.0010000000000001`).
///
/// ```
/// use ipfs_sentinel::history::export::openmetrics_timestamp;
/// let text = openmetrics_timestamp(1_795_870_506_301);
/// assert_eq!((text.parse::<f64>().unwrap() * 1000.0) as i64, 1_795_870_506_301);
/// assert_eq!(openmetrics_timestamp(1_795_870_506_000), "1795870506");
/// ```
pub fn openmetrics_timestamp(ms: i64) -> String {
    let exact = ms as f64 / 1000.0;
    let reads_back = |s: f64| (s * 1000.0) as i64 == ms;
    let mut candidate = exact;
    for _ in 0..64 {
        if reads_back(candidate) {
            break;
        }
        // Truncation is toward zero: move away from it.
        candidate = if ms >= 0 {
            candidate.next_up()
        } else {
            candidate.next_down()
        };
    }
    if !reads_back(candidate) {
        candidate = exact;
    }
    if candidate.fract() == 0.0 && candidate.abs() < 1e15 {
        format!("{}", candidate as i64)
    } else {
        format!("{candidate:?}")
    }
}

/// A timestamp as Prometheus's HTTP API writes one: seconds, and a fraction of up to three
/// digits only when there are milliseconds (`1795870506.301`, `1795870506`, `1795870506.05`).
///
/// ```
/// use ipfs_sentinel::history::export::prometheus_timestamp;
/// assert_eq!(prometheus_timestamp(1_795_870_506_301), "1795870506.301");
/// assert_eq!(prometheus_timestamp(1_795_870_506_000), "1795870506");
/// assert_eq!(prometheus_timestamp(-1_500), "-1.5");
/// ```
pub fn prometheus_timestamp(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let (seconds, fraction) = (abs / 1000, abs % 1000);
    if fraction == 0 {
        format!("{sign}{seconds}")
    } else {
        let digits = format!("{fraction:03}");
        format!("{sign}{seconds}.{}", digits.trim_end_matches('0'))
    }
}

/// A string as Go's `encoding/json` writes it: also `<`, `>`, `&`, U+2028 and U+2029 escaped.
pub fn go_json_string(s: &str) -> String {
    let text = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    if !text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return text;
    }
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
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
    fn openmetrics_export_has_one_type_line_per_family_and_ends_with_eof() {
        let w = Window {
            start_ms: 0,
            end_ms: 10_000,
            step_ms: None,
            function: None,
        };
        let key = |name: &str, labels: &[(&str, &str)]| {
            Arc::new(SeriesKey {
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            })
        };
        let keys = vec![
            key("a_total", &[("x", "1")]),
            key("a_total", &[("x", "2")]),
            key("g", &[("note", "a\"b\\c\nd")]),
            key("job:a:rate1m", &[]),
            key("x", &[]),
            key("x_total", &[]),
        ];
        let kinds = HashMap::from([("g".to_owned(), MetricKind::Gauge)]);
        let e = Export::new(Format::OpenMetrics, w, keys).with_kinds(&kinds);
        let mut bytes = e.header();
        for i in 0..e.keys().len() {
            bytes.extend(e.series(i, &vec![(1_500, 0.5), (2_000, f64::NAN)]));
        }
        bytes.extend(e.footer());
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "# TYPE a counter\n\
             a_total{x=\"1\"} 0.5 1.5\na_total{x=\"1\"} NaN 2\n\
             a_total{x=\"2\"} 0.5 1.5\na_total{x=\"2\"} NaN 2\n\
             # TYPE g gauge\n\
             g{note=\"a\\\"b\\\\c\\nd\"} 0.5 1.5\ng{note=\"a\\\"b\\\\c\\nd\"} NaN 2\n\
             # TYPE job:a:rate1m unknown\n\
             job:a:rate1m 0.5 1.5\njob:a:rate1m NaN 2\n\
             # TYPE x unknown\nx 0.5 1.5\nx NaN 2\n\
             # TYPE x_total unknown\nx_total 0.5 1.5\nx_total NaN 2\n\
             # EOF\n"
        );
    }

    #[test]
    fn openmetrics_timestamps_read_back_to_the_same_millisecond() {
        for ms in [
            0,
            1,
            999,
            1001,
            1003,
            1_795_870_506_301,
            1_795_870_521_333,
            1_795_877_734_859,
            -1_301,
        ] {
            let text = openmetrics_timestamp(ms);
            assert_eq!((text.parse::<f64>().unwrap() * 1000.0) as i64, ms, "{text}");
        }
        let misread = (1.001_f64 * 1000.0) as i64;
        assert_eq!(misread, 1000, "the case this guards against");
        assert_eq!(openmetrics_timestamp(1001), "1.0010000000000001");
    }

    #[test]
    fn api_pieces_are_written_as_prometheus_writes_them() {
        assert_eq!(prometheus_timestamp(5), "0.005");
        assert_eq!(prometheus_timestamp(120_000), "120");
        assert_eq!(
            go_json_string("a<b>&\"c"),
            "\"a\\u003cb\\u003e\\u0026\\\"c\""
        );
        assert_eq!(metric_json(&key())["__name__"], "m");
    }
}
