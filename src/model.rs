//! Shared types that flow from one stage to the next: a metric [`Family`] with its
//! [`Sample`]s, the [`Snapshot`] one collection round produced, and the [`AlertEvent`] the rules
//! (or Alertmanager's webhook) hand to the recovery actions as [`Sighting`]s.
//!
//! This module owns only plain data: no I/O, no encoding, no clocks. Collectors build
//! snapshots; exposition, history and rules read them. The rules build sightings; the actions
//! read them. Keeping the alert types here is what lets `rules/` hand alerts on without
//! importing `actions/`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Label pairs of one sample, in the order they are exposed.
pub type Labels = Vec<(String, String)>;

/// The Prometheus type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A value that goes up and down.
    Gauge,
    /// A monotonically increasing total; its name ends in `_total`.
    Counter,
}

/// One labelled value of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label pairs, without the metric name.
    pub labels: Labels,
    /// The value.
    pub value: f64,
}

/// A metric family: one name, one help text, one type, any number of samples.
///
/// The name and help text are nearly always literals: they are borrowed then, so building,
/// copying and dropping the families of a collection every second allocates nothing for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Full metric name, e.g. `ipfs_sentinel_ipfs_up` (counters end in `_total`).
    pub name: Cow<'static, str>,
    /// The `# HELP` text.
    pub help: Cow<'static, str>,
    /// Gauge or counter.
    pub kind: MetricKind,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl Family {
    /// A gauge family with no samples yet (a `&'static str` is borrowed, a `String` taken).
    pub fn gauge(name: impl Into<Cow<'static, str>>, help: impl Into<Cow<'static, str>>) -> Self {
        Self::new(name.into(), help.into(), MetricKind::Gauge)
    }

    /// A counter family with no samples yet; `name` must end in `_total`.
    pub fn counter(name: impl Into<Cow<'static, str>>, help: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        debug_assert!(
            name.ends_with("_total"),
            "counter {name} must end in _total"
        );
        Self::new(name, help.into(), MetricKind::Counter)
    }

    fn new(name: Cow<'static, str>, help: Cow<'static, str>, kind: MetricKind) -> Self {
        Self {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample with the given labels (builder style).
    pub fn with(mut self, labels: &[(&str, &str)], value: f64) -> Self {
        self.push(labels, value);
        self
    }

    /// Adds a sample with the given labels.
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        self.samples.push(Sample {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        });
    }

    /// A gauge family holding one unlabelled value.
    pub fn single_gauge(
        name: impl Into<Cow<'static, str>>,
        help: impl Into<Cow<'static, str>>,
        value: f64,
    ) -> Self {
        Self::gauge(name, help).with(&[], value)
    }
}

/// Everything one collection round produced, in a stable order.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the round finished.
    pub taken_at: SystemTime,
    /// All families, sorted by name.
    pub families: Vec<Family>,
}

impl Snapshot {
    /// Builds a snapshot, sorting families by name so output is deterministic.
    pub fn new(taken_at: SystemTime, mut families: Vec<Family>) -> Self {
        families.sort_by(|a, b| a.name.cmp(&b.name));
        Self { taken_at, families }
    }

    /// The family with this name, if any.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

/// A node's state in the cluster view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeStatus {
    /// Answers, IPFS up, every collector healthy.
    Online,
    /// Answers but IPFS is down or a collector fails, or unreachable for less than
    /// `offline_after_seconds`.
    Degraded,
    /// Unreachable for `offline_after_seconds` or longer.
    Offline,
}

impl NodeStatus {
    /// Every state, in the order the state-set series are exposed.
    pub const ALL: [NodeStatus; 3] = [
        NodeStatus::Online,
        NodeStatus::Degraded,
        NodeStatus::Offline,
    ];

    /// The state's name, as in the `status` label.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Online => "Online",
            NodeStatus::Degraded => "Degraded",
            NodeStatus::Offline => "Offline",
        }
    }

    /// The state named `s`, if any.
    pub fn parse(s: &str) -> Option<NodeStatus> {
        NodeStatus::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

impl Family {
    /// The value of the first sample whose labels include all of `labels`.
    pub fn value(&self, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
    }

    /// The value of label `key` on a sample.
    pub fn label<'a>(sample: &'a Sample, key: &str) -> Option<&'a str> {
        sample
            .labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Snapshot {
    /// The value of `name{labels}`, if the snapshot has it.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.family(name)?.value(labels)
    }
}

/// Label names to values.
pub type LabelSet = BTreeMap<String, String>;

/// Whether an alert is firing or has resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The condition holds (past its `for`).
    Firing,
    /// The condition no longer holds.
    Resolved,
}

impl Status {
    /// `firing` or `resolved`, as Alertmanager writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert at one moment, as the recovery actions see it: everything a run needs (labels,
/// annotations, value, times, the actions it names), whether it came from this sentinel's rules
/// or from Alertmanager's webhook. Self-contained, so an outbox entry can be delivered after a
/// restart without the rule engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Identifying labels (`alertname` among them; external labels included).
    pub labels: LabelSet,
    /// Annotations, expanded.
    pub annotations: LabelSet,
    /// Firing or resolved.
    pub status: Status,
    /// The expression's value at the last evaluation (NaN when unknown).
    #[serde(with = "float_or_string")]
    pub value: f64,
    /// When it started firing, in milliseconds since the Unix epoch.
    pub starts_at_ms: i64,
    /// When it resolved, or until when a firing alert is valid (0: unknown).
    pub ends_at_ms: i64,
    /// A link to the expression that produced it.
    pub generator_url: String,
    /// The recovery actions it names.
    pub actions: Vec<String>,
    /// The rule's expression (empty for alerts received from Alertmanager).
    #[serde(default)]
    pub expr: String,
}

/// JSON has no NaN or infinities: write floats Go-style (`NaN`, `+Inf`, `-Inf`) as strings
/// when they are not finite.
mod float_or_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(f64),
            Text(String),
        }
        Ok(match Either::deserialize(d)? {
            Either::Number(n) => n,
            Either::Text(t) => t.parse().unwrap_or(f64::NAN),
        })
    }
}

impl AlertEvent {
    /// The alert's name.
    pub fn alertname(&self) -> &str {
        self.label("alertname")
    }

    /// A label's value, or "" when absent.
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    /// Alertmanager's fingerprint of the label set (see [`fingerprint`]).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.labels)
    }

    /// The node the alert is about: its `node_id` label, else `here`.
    pub fn node_id<'a>(&'a self, here: &'a str) -> &'a str {
        match self.label("node_id") {
            "" => here,
            id => id,
        }
    }
}

/// Alertmanager's label-set fingerprint (`model.LabelSet.Fingerprint`): FNV-1a 64 over the
/// labels sorted by name, each name and value followed by a 0xff separator, as 16 hex digits.
///
/// ```
/// use ipfs_sentinel::model::{fingerprint, LabelSet};
/// assert_eq!(fingerprint(&LabelSet::new()), "cbf29ce484222325");
/// ```
pub fn fingerprint(labels: &LabelSet) -> String {
    const OFFSET: u64 = 0xcbf29ce484222325;
    const PRIME: u64 = 0x100000001b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    // BTreeMap iterates in name order, as Alertmanager sorts.
    for (name, value) in labels {
        feed(name.as_bytes());
        feed(&[0xff]);
        feed(value.as_bytes());
        feed(&[0xff]);
    }
    format!("{hash:016x}")
}

/// One alert as seen at one rule evaluation or in one notification: what the rules task sends
/// the recovery actions over their channel.
#[derive(Debug, Clone)]
pub struct Sighting {
    /// The alert.
    pub alert: AlertEvent,
    /// Whether the alert state machine marked it for sending to Alertmanager now.
    pub due_for_sending: bool,
}

/// Which Prometheus release's PromQL semantics the engine follows.
///
/// Written in configuration as `prometheus-3` (the default: Prometheus 3.5 LTS) or
/// `prometheus-2.42`. The differences the engine honours: range windows and the lookback are
/// left-open `(t - range, t]` in 3.x and closed `[t - range, t]` in 2.42; regex matchers'
/// `.` matches a newline in 3.x; 2.42 knows `holt_winters`, 3.x calls it
/// `double_exponential_smoothing` and, like 3.5, gates it and the other experimental functions
/// behind the experimental functions
/// (`crate::rules::promql::parse_with`'s `experimental`).
///
/// ```
/// use ipfs_sentinel::model::Semantics;
/// assert_eq!(Semantics::default(), Semantics::Prometheus3);
/// assert_eq!("prometheus-2.42".parse::<Semantics>(), Ok(Semantics::Prometheus2_42));
/// assert_eq!(Semantics::Prometheus3.to_string(), "prometheus-3");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Hash, serde::Deserialize, serde::Serialize,
)]
pub enum Semantics {
    /// Prometheus 3.5 LTS (`prometheus-3`).
    #[default]
    #[serde(rename = "prometheus-3")]
    Prometheus3,
    /// Prometheus 2.42 (`prometheus-2.42`), as `promtool` 2.42 evaluates rule unit tests.
    #[serde(rename = "prometheus-2.42")]
    Prometheus2_42,
}

impl Semantics {
    /// Every setting with its name, for listing in help and errors.
    pub const ALL: [Semantics; 2] = [Semantics::Prometheus3, Semantics::Prometheus2_42];

    /// The name a user writes: `prometheus-3` or `prometheus-2.42`.
    pub fn name(self) -> &'static str {
        match self {
            Semantics::Prometheus3 => "prometheus-3",
            Semantics::Prometheus2_42 => "prometheus-2.42",
        }
    }
}

impl std::fmt::Display for Semantics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A PromQL semantics name that is neither `prometheus-3` nor `prometheus-2.42`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown PromQL semantics {0:?}: write prometheus-3 (Prometheus 3.5 LTS, the default) or prometheus-2.42")]
pub struct UnknownSemantics(pub String);

impl std::str::FromStr for Semantics {
    type Err = UnknownSemantics;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Semantics::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownSemantics(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_alertmanager() {
        // Values computed with prometheus/common's model.LabelSet.Fingerprint().
        assert_eq!(fingerprint(&LabelSet::new()), "cbf29ce484222325");
        let labels: LabelSet = [("alertname".to_owned(), "Test".to_owned())].into();
        let ours = fingerprint(&labels);
        assert_eq!(ours.len(), 16);
        let more: LabelSet = [
            ("alertname".to_owned(), "Test".to_owned()),
            ("node_id".to_owned(), "a".to_owned()),
        ]
        .into();
        assert_ne!(fingerprint(&more), ours);
    }

    #[test]
    fn alert_values_round_trip_through_json_even_when_not_finite() {
        for value in [f64::INFINITY, f64::NEG_INFINITY, 1.5] {
            let event = AlertEvent {
                labels: LabelSet::new(),
                annotations: LabelSet::new(),
                status: Status::Firing,
                value,
                starts_at_ms: 1,
                ends_at_ms: 2,
                generator_url: String::new(),
                actions: vec![],
                expr: String::new(),
            };
            let text = serde_json::to_string(&event).unwrap();
            let back: AlertEvent = serde_json::from_str(&text).unwrap();
            assert_eq!(back.value, value, "{text}");
        }
    }
}
