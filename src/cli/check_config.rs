//! `check-config`: loads a configuration with every rule it names and prints a summary (node,
//! collection, alerts with their PromQL, recovery actions, rule files) and its warnings, or the
//! error. Warnings fail the check only with `--strict`.
//!
//! Owns the summary's wording only; loading and validation are the library's.

use std::path::Path;
use std::process::ExitCode;

use ipfs_sentinel::config::{Config, Threshold};
use ipfs_sentinel::dotted;
use ipfs_sentinel::rules::load::{Group, SHORT_FORM_GROUP};
use ipfs_sentinel::rules::reload::ConfigSource;

/// Checks `file`: exit 0 and the summary (warnings on standard error), or 1 and the error;
/// with `strict`, warnings exit 1 too.
pub fn run(file: &Path, strict: bool) -> ExitCode {
    let source = ConfigSource {
        path: Some(file.to_path_buf()),
    };
    match source.load() {
        Ok((config, groups)) => {
            print!("{}", summary(file, &config));
            let files: Vec<&Group> = groups
                .iter()
                .filter(|g| g.name != SHORT_FORM_GROUP)
                .collect();
            println!(
                "  {} rule group(s) with {} rule(s) from rule_files",
                files.len(),
                files.iter().map(|g| g.rules.len()).sum::<usize>()
            );
            let warnings = config.warnings(&file.display().to_string());
            for warning in &warnings {
                eprintln!("{warning}");
            }
            if strict && !warnings.is_empty() {
                eprintln!(
                    "{}: {} warning(s), and --strict makes them fail the check",
                    file.display(),
                    warnings.len()
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", super::describe(e));
            ExitCode::FAILURE
        }
    }
}

/// The human summary of a valid configuration.
fn summary(file: &Path, config: &Config) -> String {
    let m = &config.cluster.monitoring;
    let mut out = format!(
        "{}: valid\n  node {} ({}), IPFS API {}\n  collection every {}s (collector timeout {}s), history {}h, monitoring {}\n",
        file.display(),
        config.cluster.node_id,
        config.cluster.role.as_str(),
        config.ipfs.api_url,
        m.collection_interval_seconds.0,
        m.collector_timeout_seconds.0,
        m.metrics_history_duration_hours.0,
        if m.enabled { "enabled" } else { "disabled" },
    );
    let added: Vec<String> = config
        .alert_external_labels()
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    out += &format!(
        "  labels added to every alert that lacks them: {}\n",
        if added.is_empty() {
            "none".to_owned()
        } else {
            added.join(", ")
        }
    );
    out += &format!("  {} alert(s):\n", m.alerts.len());
    for alert in &m.alerts {
        let threshold = match &alert.threshold.value {
            Threshold::Number(n) => n.to_string(),
            Threshold::State(s) => s.clone(),
        };
        // The metric was checked against the table when the file was loaded.
        let condition = dotted::lookup(&alert.metric.value)
            .map(|d| d.condition(alert.operator.as_str(), &threshold))
            .unwrap_or_default();
        let actions: Vec<&str> = alert.action_names().map(|a| a.value.as_str()).collect();
        out += &format!(
            "    {} {} {} ({}{}){}: {}\n",
            alert.metric.value,
            alert.operator.as_str(),
            threshold,
            alert.severity.as_str(),
            if alert.duration_minutes.0 > 0.0 {
                format!(", for {}m", alert.duration_minutes.0)
            } else {
                String::new()
            },
            if actions.is_empty() {
                String::new()
            } else {
                format!(" -> {}", actions.join(", "))
            },
            condition,
        );
    }
    out += &format!("  {} recovery action(s):\n", m.recovery_actions.len());
    for (name, action) in &m.recovery_actions {
        out += &format!("    {name}: {}\n", action.describe());
    }
    out
}
