//! Turns an action's command line and an alert into the argv and environment of a process.
//!
//! A command given as one string is split with POSIX shell-word rules (quotes, backslashes)
//! by `shell-words`, but never run by a shell. Placeholders are expanded inside each argv item
//! after splitting, so whatever an alert's labels hold (`x; rm -rf /`, quotes, spaces) stays
//! inside the one argument it was placed in. Owns nothing else: running is [`super::command`]'s.

use super::policy::Trigger;
use crate::config::{CommandLine, RecoveryActionConfig};
use crate::model::AlertEvent;

/// Why a command line could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ArgvError {
    /// Unbalanced quotes and the like.
    #[error("cannot split the command line {line:?}: {reason}")]
    Split {
        /// The line as configured.
        line: String,
        /// What shell-words said.
        reason: String,
    },
    /// Nothing to run.
    #[error("the command is empty")]
    Empty,
    /// The action is not a command or script.
    #[error("the action runs no command")]
    NotACommand,
}

/// The argv an action's configuration names, before expansion.
pub fn template(action: &RecoveryActionConfig) -> Result<Vec<String>, ArgvError> {
    let argv = match (&action.command, &action.script) {
        (Some(CommandLine::Line(line)), _) => {
            shell_words::split(line).map_err(|e| ArgvError::Split {
                line: line.clone(),
                reason: e.to_string(),
            })?
        }
        (Some(CommandLine::Argv(argv)), _) => argv.clone(),
        (None, Some(script)) => std::iter::once(script.clone())
            .chain(action.args.iter().cloned())
            .collect(),
        (None, None) => return Err(ArgvError::NotACommand),
    };
    if argv.first().is_none_or(|a| a.is_empty()) {
        return Err(ArgvError::Empty);
    }
    Ok(argv)
}

/// What one run knows about itself besides the alert.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// The action's name.
    pub action: &'a str,
    /// Why it runs.
    pub trigger: Trigger,
    /// The node it runs for.
    pub node_id: &'a str,
}

/// The value of a placeholder name, if the alert has one. Well-known names first, then the
/// alert's labels, then its annotations.
fn placeholder(name: &str, alert: &AlertEvent, run: &RunContext<'_>) -> Option<String> {
    let annotation = |n: &str| alert.annotations.get(n).cloned();
    Some(match name {
        "node_id" => run.node_id.to_owned(),
        "alertname" => alert.alertname().to_owned(),
        "severity" => alert.label("severity").to_owned(),
        "status" => alert.status.as_str().to_owned(),
        "value" => crate::number::format_value(alert.value),
        "summary" => annotation("summary").unwrap_or_default(),
        "details" => details(alert, run.node_id),
        "metric" => annotation("metric").unwrap_or_default(),
        "threshold" => annotation("threshold").unwrap_or_default(),
        "action" => run.action.to_owned(),
        "trigger" => run.trigger.as_str().to_owned(),
        "fingerprint" => alert.fingerprint(),
        _ => return alert.labels.get(name).cloned().or_else(|| annotation(name)),
    })
}

/// One line saying what happened: the `description` annotation, else `summary`, else the
/// alert's name, node and value.
pub fn details(alert: &AlertEvent, node_id: &str) -> String {
    alert
        .annotations
        .get("description")
        .or_else(|| alert.annotations.get("summary"))
        .cloned()
        .unwrap_or_else(|| {
            format!(
                "{} is {} on {node_id} (value {})",
                alert.alertname(),
                alert.status.as_str(),
                crate::number::format_value(alert.value)
            )
        })
}

/// Expands `{name}` placeholders in one argument. Braces around anything that is not a
/// known name (JSON, say) are left as they are.
pub fn expand(arg: &str, alert: &AlertEvent, run: &RunContext<'_>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_end];
        let closed = after[name_end..].starts_with('}');
        match (closed && !name.is_empty())
            .then(|| placeholder(name, alert, run))
            .flatten()
        {
            Some(value) => {
                out.push_str(&value);
                rest = &after[name_end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The argv of one run: the template with each item expanded.
pub fn argv(template: &[String], alert: &AlertEvent, run: &RunContext<'_>) -> Vec<String> {
    template.iter().map(|a| expand(a, alert, run)).collect()
}

/// `SENTINEL_LABEL_NODE_ID`-style variable names: upper case, anything but letters, digits
/// and `_` turned into `_`.
fn env_name(prefix: &str, name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{cleaned}")
}

/// The environment variables describing the alert and the run, added to the sentinel's own
/// environment (less its `IPFS_SENTINEL_*` variables, which may name secrets).
pub fn environment(alert: &AlertEvent, run: &RunContext<'_>) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "SENTINEL_ALERTNAME".to_owned(),
            alert.alertname().to_owned(),
        ),
        (
            "SENTINEL_STATUS".to_owned(),
            alert.status.as_str().to_owned(),
        ),
        (
            "SENTINEL_SEVERITY".to_owned(),
            alert.label("severity").to_owned(),
        ),
        ("SENTINEL_NODE_ID".to_owned(), run.node_id.to_owned()),
        (
            "SENTINEL_VALUE".to_owned(),
            crate::number::format_value(alert.value),
        ),
        ("SENTINEL_DETAILS".to_owned(), details(alert, run.node_id)),
        ("SENTINEL_FINGERPRINT".to_owned(), alert.fingerprint()),
        (
            "SENTINEL_STARTS_AT".to_owned(),
            crate::clock::rfc3339_or_zero(alert.starts_at_ms),
        ),
        ("SENTINEL_ACTION".to_owned(), run.action.to_owned()),
        (
            "SENTINEL_TRIGGER".to_owned(),
            run.trigger.as_str().to_owned(),
        ),
        (
            "SENTINEL_GENERATOR_URL".to_owned(),
            alert.generator_url.clone(),
        ),
    ];
    for (name, value) in &alert.labels {
        env.push((env_name("SENTINEL_LABEL_", name), value.clone()));
    }
    for (name, value) in &alert.annotations {
        env.push((env_name("SENTINEL_ANNOTATION_", name), value.clone()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LabelSet, Status};

    fn alert() -> AlertEvent {
        let labels: LabelSet = [
            ("alertname".to_owned(), "DiskFull".to_owned()),
            ("node_id".to_owned(), "x; rm -rf /".to_owned()),
            ("severity".to_owned(), "warning".to_owned()),
            ("mountpoint".to_owned(), "/data dir".to_owned()),
        ]
        .into();
        let annotations: LabelSet = [("summary".to_owned(), "disk at 95%".to_owned())].into();
        AlertEvent {
            labels,
            annotations,
            status: Status::Firing,
            value: 95.5,
            starts_at_ms: 0,
            ends_at_ms: 0,
            generator_url: String::new(),
            actions: vec![],
            expr: String::new(),
        }
    }

    fn run<'a>(node: &'a str) -> RunContext<'a> {
        RunContext {
            action: "gc",
            trigger: Trigger::Firing,
            node_id: node,
        }
    }

    #[test]
    fn placeholders_stay_inside_their_argument() {
        let a = alert();
        let cmd = RecoveryActionConfig {
            command: Some(CommandLine::Line(
                "/bin/notify --node={node_id} '{summary} now' {value} {mountpoint} {\"k\": 1} {nope}"
                    .into(),
            )),
            ..Default::default()
        };
        let t = template(&cmd).unwrap();
        let node = a.node_id("here").to_owned();
        let argv = argv(&t, &a, &run(&node));
        assert_eq!(
            argv,
            vec![
                "/bin/notify",
                "--node=x; rm -rf /",
                "disk at 95% now",
                "95.5",
                "/data dir",
                "{k:",
                "1}",
                "{nope}"
            ]
        );
    }

    #[test]
    fn scripts_take_args_and_lists_are_not_split() {
        let script = RecoveryActionConfig {
            script: Some("/path/to/notify_script.sh".into()),
            args: vec!["{node_id}".into(), "{details}".into()],
            ..Default::default()
        };
        let a = alert();
        let argv = argv(&template(&script).unwrap(), &a, &run("node-a"));
        assert_eq!(
            argv,
            vec!["/path/to/notify_script.sh", "node-a", "disk at 95%"]
        );
        let list = RecoveryActionConfig {
            command: Some(CommandLine::Argv(vec!["/bin/echo".into(), "a b".into()])),
            ..Default::default()
        };
        assert_eq!(template(&list).unwrap(), vec!["/bin/echo", "a b"]);
    }

    #[test]
    fn bad_lines_are_errors() {
        let unbalanced = RecoveryActionConfig {
            command: Some(CommandLine::Line("echo 'oops".into())),
            ..Default::default()
        };
        assert!(matches!(
            template(&unbalanced),
            Err(ArgvError::Split { .. })
        ));
        let empty = RecoveryActionConfig {
            command: Some(CommandLine::Line("  ".into())),
            ..Default::default()
        };
        assert!(matches!(template(&empty), Err(ArgvError::Empty)));
    }

    #[test]
    fn the_environment_carries_labels_and_annotations() {
        let env = environment(&alert(), &run("node-a"));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("SENTINEL_ALERTNAME"), Some("DiskFull"));
        assert_eq!(get("SENTINEL_LABEL_MOUNTPOINT"), Some("/data dir"));
        assert_eq!(get("SENTINEL_LABEL_NODE_ID"), Some("x; rm -rf /"));
        assert_eq!(get("SENTINEL_ANNOTATION_SUMMARY"), Some("disk at 95%"));
        assert_eq!(get("SENTINEL_NODE_ID"), Some("node-a"));
    }
}
