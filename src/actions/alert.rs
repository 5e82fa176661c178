//! The alert as recovery actions see it: one firing or resolved alert with everything a run
//! needs (labels, annotations, value, times, the actions it names), whether it came from this
//! sentinel's rules or from Alertmanager's webhook. Self-contained, so an outbox entry can be
//! delivered after a restart without the rule engine.
//!
//! Owns the alert's identity (Alertmanager's fingerprint) and the placeholders and
//! environment variables an alert offers to commands; it does not decide or run anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// One alert at one moment.
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

/// JSON has no NaN or infinities: write floats Go-style as strings when they are not finite.
mod float_or_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_str(&crate::number::format_value(*v))
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

    /// Alertmanager's fingerprint of the label set: FNV-1a 64 over the labels sorted by name,
    /// each name and value followed by a 0xff separator, as 16 hex digits.
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

/// Alertmanager's label-set fingerprint (`model.LabelSet.Fingerprint`).
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
    fn values_round_trip_through_json_even_when_not_finite() {
        let event = AlertEvent {
            labels: LabelSet::new(),
            annotations: LabelSet::new(),
            status: Status::Firing,
            value: f64::INFINITY,
            starts_at_ms: 1,
            ends_at_ms: 2,
            generator_url: String::new(),
            actions: vec![],
            expr: String::new(),
        };
        let text = serde_json::to_string(&event).unwrap();
        let back: AlertEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back.value, f64::INFINITY);
    }
}
