//! Shared types that flow from the collectors to everything downstream: a metric [`Family`]
//! with its [`Sample`]s, and the [`Snapshot`] one collection round produced.
//!
//! This module owns only plain data: no I/O, no encoding, no clocks. Collectors build these
//! values; exposition, history and rules read them.

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
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Full metric name, e.g. `ipfs_sentinel_ipfs_up` (counters end in `_total`).
    pub name: String,
    /// The `# HELP` text.
    pub help: String,
    /// Gauge or counter.
    pub kind: MetricKind,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl Family {
    /// A gauge family with no samples yet.
    pub fn gauge(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricKind::Gauge)
    }

    /// A counter family with no samples yet; `name` must end in `_total`.
    pub fn counter(name: &str, help: &str) -> Self {
        debug_assert!(
            name.ends_with("_total"),
            "counter {name} must end in _total"
        );
        Self::new(name, help, MetricKind::Counter)
    }

    fn new(name: &str, help: &str, kind: MetricKind) -> Self {
        Self {
            name: name.to_owned(),
            help: help.to_owned(),
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
    pub fn single_gauge(name: &str, help: &str, value: f64) -> Self {
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
