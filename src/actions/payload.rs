//! The JSON bodies recovery actions send, built as pure functions of the alerts and a time:
//! Alertmanager's webhook payload (version 4, what its `webhook_configs` receivers get) and
//! the alerts of Alertmanager's `POST /api/v2/alerts` (what Prometheus pushes).
//!
//! Owns the wire shapes only; sending is [`super::webhook`]'s and [`super::alertmanager`]'s.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::clock::{rfc3339_or_zero, GO_ZERO_TIME};
use crate::model::{AlertEvent, LabelSet, Status};

/// The labels every alert shares (Alertmanager's `commonLabels`).
fn common(sets: &[&LabelSet]) -> LabelSet {
    let Some((first, rest)) = sets.split_first() else {
        return LabelSet::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|s| s.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Alertmanager's webhook payload for `alerts`, sent to `receiver`. The group is the alert
/// name, as a route `group_by: [alertname]` makes it.
pub fn webhook(receiver: &str, alerts: &[AlertEvent], external_url: &str) -> Value {
    let firing = alerts.iter().any(|a| a.status == Status::Firing);
    let labels: Vec<&LabelSet> = alerts.iter().map(|a| &a.labels).collect();
    let annotations: Vec<&LabelSet> = alerts.iter().map(|a| &a.annotations).collect();
    let mut group_labels = BTreeMap::new();
    if let Some(name) = alerts.first().map(AlertEvent::alertname) {
        group_labels.insert("alertname".to_owned(), name.to_owned());
    }
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common(&labels),
        "commonAnnotations": common(&annotations),
        "externalURL": external_url,
        "alerts": alerts.iter().map(|a| json!({
            "status": a.status.as_str(),
            "labels": a.labels,
            "annotations": a.annotations,
            "startsAt": rfc3339_or_zero(a.starts_at_ms),
            "endsAt": if a.status == Status::Resolved { rfc3339_or_zero(a.ends_at_ms) } else { GO_ZERO_TIME.to_owned() },
            "generatorURL": a.generator_url,
            "fingerprint": a.fingerprint(),
        })).collect::<Vec<_>>(),
    })
}

/// The body of Alertmanager's `POST /api/v2/alerts`: each alert in full, `endsAt` the
/// resolve time of a resolved alert and the validity of a firing one.
pub fn alertmanager_alerts(alerts: &[AlertEvent]) -> Value {
    Value::Array(
        alerts
            .iter()
            .map(|a| {
                json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339_or_zero(a.starts_at_ms),
                    "endsAt": rfc3339_or_zero(a.ends_at_ms),
                    "generatorURL": a.generator_url,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(node: &str, status: Status) -> AlertEvent {
        AlertEvent {
            labels: [
                ("alertname".to_owned(), "DiskFull".to_owned()),
                ("node_id".to_owned(), node.to_owned()),
                ("severity".to_owned(), "warning".to_owned()),
            ]
            .into(),
            annotations: [("summary".to_owned(), format!("disk full on {node}"))].into(),
            status,
            value: 1.0,
            starts_at_ms: 1_764_324_000_000,
            ends_at_ms: 1_764_324_240_000,
            generator_url: "http://s:9401/graph".into(),
            actions: vec![],
            expr: String::new(),
        }
    }

    #[test]
    fn the_webhook_payload_has_alertmanagers_shape() {
        let p = webhook(
            "page",
            &[alert("a", Status::Firing), alert("b", Status::Resolved)],
            "http://s:9401",
        );
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "firing");
        assert_eq!(p["receiver"], "page");
        assert_eq!(p["groupKey"], "{}:{alertname=\"DiskFull\"}");
        assert_eq!(
            p["commonLabels"],
            json!({"alertname": "DiskFull", "severity": "warning"})
        );
        assert_eq!(p["commonAnnotations"], json!({}));
        assert_eq!(p["alerts"][0]["startsAt"], "2025-11-28T10:00:00.000Z");
        assert_eq!(p["alerts"][0]["endsAt"], GO_ZERO_TIME);
        assert_eq!(p["alerts"][1]["endsAt"], "2025-11-28T10:04:00.000Z");
        assert_eq!(p["alerts"][1]["status"], "resolved");
        assert_eq!(p["alerts"][0]["fingerprint"].as_str().unwrap().len(), 16);
        assert_eq!(p["truncatedAlerts"], 0);
    }

    #[test]
    fn alertmanager_alerts_carry_their_validity() {
        let body = alertmanager_alerts(&[alert("a", Status::Firing)]);
        assert_eq!(body[0]["endsAt"], "2025-11-28T10:04:00.000Z");
        assert_eq!(body[0]["labels"]["node_id"], "a");
        assert!(body[0].get("status").is_none());
    }
}
