//! The rule engine: Prometheus alerting and recording rules evaluated on the node, over its
//! own history ([`source`]) with a PromQL evaluator of Prometheus 2.42's semantics
//! ([`promql`]), or over a remote query API ([`remote`]): rules are read by [`load`], alert
//! states kept by [`alerting`], templates expanded by [`template`], evaluations and reports
//! made by [`manager`], run group by group on their own timers by [`task`], kept across
//! restarts and reloads by [`reload`]; rule unit tests in promtool's format are run by
//! [`promtool_test`].
//!
//! Data comes in from the history (read views) and goes out as recorded samples (back to the
//! history) and alert sightings (to the recovery actions, over a channel whose item type is the
//! shared model's): this module never imports `actions/`.
pub mod alerting;
pub mod load;
pub mod manager;
pub mod promql;
pub mod promtool_test;
pub mod reload;
pub mod remote;
pub mod rulefile;
pub mod source;
pub mod task;
pub mod template;

use std::path::Path;

use crate::config::Config;
use load::{Group, RuleError};

/// Every rule of a configuration: its short-form alerts, then each rule file its
/// `rule_files` globs name (relative to `config_dir`), in sorted order.
pub fn load_all(
    config: &Config,
    config_file: &str,
    config_dir: &Path,
) -> Result<Vec<Group>, RuleError> {
    let mut groups = vec![load::short_form_group(config, config_file)];
    for pattern in &config.cluster.monitoring.rule_files {
        let full = if Path::new(pattern).is_absolute() {
            pattern.clone()
        } else {
            config_dir.join(pattern).display().to_string()
        };
        let bad = |reason: String| RuleError {
            file: config_file.into(),
            line: 0,
            column: 0,
            place: "cluster.monitoring.rule_files".into(),
            reason,
        };
        let paths = glob::glob(&full).map_err(|e| bad(format!("bad pattern {pattern:?}: {e}")))?;
        let mut files: Vec<_> = paths.filter_map(Result::ok).collect();
        files.sort();
        if files.is_empty() && !glob_has_wildcards(pattern) {
            return Err(bad(format!("{full}: no such rule file")));
        }
        for file in files {
            groups.extend(load::load_file(
                &file,
                config.cluster.monitoring.promql_semantics,
            )?);
        }
    }
    check_action_names(&groups, config)?;
    Ok(groups)
}

/// Every action a rule names (the `action` label, the `actions` annotation) must be defined
/// under `cluster.monitoring.recovery_actions`.
fn check_action_names(groups: &[Group], config: &Config) -> Result<(), RuleError> {
    let defined = &config.cluster.monitoring.recovery_actions;
    for group in groups {
        for rule in &group.rules {
            if let Some(missing) = rule.actions.iter().find(|a| !defined.contains_key(*a)) {
                return Err(RuleError {
                    file: group.file.clone(),
                    line: 0,
                    column: 0,
                    place: format!("group {:?}, rule {:?}", group.name, rule.name()),
                    reason: format!(
                        "names the recovery action {missing:?}, which cluster.monitoring.recovery_actions does not define (defined: {})",
                        if defined.is_empty() { "none".to_owned() } else { defined.keys().cloned().collect::<Vec<_>>().join(", ") }
                    ),
                });
            }
        }
    }
    Ok(())
}

fn glob_has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Exposes the engine's `ALERTS`, `ALERTS_FOR_STATE` and evaluation metrics on `/metrics`.
pub struct RulesCollector {
    engine: reload::SharedEngine,
}

impl RulesCollector {
    /// A collector reading `engine`.
    pub fn new(engine: reload::SharedEngine) -> Self {
        Self { engine }
    }
}

impl crate::collect::Collector for RulesCollector {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn collect(
        &mut self,
    ) -> futures::future::BoxFuture<
        '_,
        Result<Vec<crate::model::Family>, crate::collect::CollectError>,
    > {
        let engine = std::sync::Arc::clone(&self.engine);
        Box::pin(crate::collect::read_blocking(move || {
            reload::lock(&engine).families()
        }))
    }
}
