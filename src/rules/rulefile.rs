//! Writing loaded rules back out as a Prometheus rule file (`ipfs-sentinel rules export`), the
//! short-form alerts included, so the same alerts can run in Prometheus.
//!
//! Owns the output shape and Prometheus's duration spelling; nothing here evaluates.

use std::collections::BTreeMap;

use serde::Serialize;

use super::load::{Group, Rule, RuleKind};

#[derive(Serialize)]
struct FileOut<'a> {
    groups: Vec<GroupOut<'a>>,
}

#[derive(Serialize)]
struct GroupOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_offset: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    limit: usize,
    rules: Vec<RuleOut<'a>>,
}

#[derive(Serialize)]
struct RuleOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a str>,
    expr: &'a str,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_for: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'a str, String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Milliseconds as Prometheus writes a duration: `1h30m`, `5m`, `500ms`, `0s`.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut rest = ms;
    let mut out = String::new();
    for (unit, size) in [
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

fn rule_out(r: &Rule) -> RuleOut<'_> {
    let labels = r
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match &r.kind {
        RuleKind::Alert {
            name,
            for_ms,
            keep_firing_for_ms,
            annotations,
        } => {
            let mut annotations: BTreeMap<&str, String> = annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            // The actions travel with the alert, so Alertmanager can route it back to a
            // sentinel's webhook receiver.
            if !r.actions.is_empty() && !r.labels.contains_key("action") {
                annotations
                    .entry("actions")
                    .or_insert_with(|| r.actions.join(", "));
            }
            RuleOut {
                alert: Some(name),
                record: None,
                expr: &r.expr_text,
                for_: (*for_ms > 0).then(|| format_duration(*for_ms)),
                keep_firing_for: (*keep_firing_for_ms > 0)
                    .then(|| format_duration(*keep_firing_for_ms)),
                labels,
                annotations,
            }
        }
        RuleKind::Record { name } => RuleOut {
            alert: None,
            record: Some(name),
            expr: &r.expr_text,
            for_: None,
            keep_firing_for: None,
            labels,
            annotations: BTreeMap::new(),
        },
    }
}

/// The groups as a Prometheus rule file. `default_interval_ms` is written for groups that use
/// the collection interval, so Prometheus evaluates them as often as the sentinel does.
pub fn to_yaml(groups: &[Group], default_interval_ms: i64) -> Result<String, String> {
    let file = FileOut {
        groups: groups
            .iter()
            .filter(|g| !g.rules.is_empty())
            .map(|g| GroupOut {
                name: &g.name,
                interval: Some(format_duration(
                    g.interval_ms.unwrap_or(default_interval_ms),
                )),
                query_offset: g.query_offset_ms.map(format_duration),
                limit: g.limit,
                rules: g.rules.iter().map(rule_out).collect(),
            })
            .collect(),
    };
    serde_saphyr::to_string(&file).map_err(|e| format!("cannot write the rules as YAML: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::Semantics;
    use crate::rules::load::{parse_file, short_form_group};

    #[test]
    fn durations() {
        assert_eq!(format_duration(300_000), "5m");
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(500), "500ms");
        assert_eq!(format_duration(0), "0s");
    }

    #[test]
    fn the_short_form_alerts_export_and_load_back_the_same() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/config/short-form.yaml"
        ))
        .unwrap();
        let config = Config::parse(&text, "short-form.yaml").unwrap();
        let groups = vec![short_form_group(&config, "short-form.yaml")];
        let yaml = to_yaml(&groups, 60_000).unwrap();
        let back = parse_file(&yaml, "exported.yml", Semantics::default()).unwrap();
        assert_eq!(back[0].rules.len(), 3);
        for (a, b) in groups[0].rules.iter().zip(&back[0].rules) {
            assert_eq!(
                a.actions, b.actions,
                "actions travel as the actions annotation"
            );
            assert_eq!(a.name(), b.name());
            assert_eq!(a.expr_text, b.expr_text);
            assert_eq!(a.labels, b.labels);
        }
        assert_eq!(back[0].interval_ms, Some(60_000));
    }
}
