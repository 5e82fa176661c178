//! Loading rules: Prometheus rule files (`groups[].rules[]` with `alert` or `record`) and the
//! short-form alerts under `cluster.monitoring.alerts`, both into one [`Group`] /
//! [`Rule`] type, checked as Prometheus 2.42 checks them (`promtool check rules`).
//!
//! Owns reading and validation only. Every error names the file, the line and column where
//! known, the group and the rule. Expressions are parsed here, so a rule that loads can be
//! evaluated; anything outside the evaluator's subset is refused now, not at evaluation.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use promql_parser::parser::Expr;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::promql;
use crate::clock::parse_duration;
use crate::config::{AlertConfig, Config, Threshold};
use crate::dotted;
use crate::model::Semantics;

/// The group short-form alerts are loaded into.
pub const SHORT_FORM_GROUP: &str = "ipfs-sentinel";

/// A rule that cannot be loaded, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {place}: {reason}")]
pub struct RuleError {
    /// The file (or the configuration file for short-form alerts).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// Group and rule, e.g. `group "ipfs", rule 2 (alert IpfsDown)`.
    pub place: String,
    /// What is wrong.
    pub reason: String,
}

/// What a rule does with its result.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// Raise alerts.
    Alert {
        /// The alert name.
        name: String,
        /// How long the condition must hold, ms.
        for_ms: i64,
        /// How long an alert keeps firing after the condition stops, ms.
        keep_firing_for_ms: i64,
        /// Annotation templates.
        annotations: BTreeMap<String, String>,
    },
    /// Record the result as a new series.
    Record {
        /// The new metric name.
        name: String,
    },
}

/// One rule, from either form.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Alert or record.
    pub kind: RuleKind,
    /// The expression as written.
    pub expr_text: String,
    /// The parsed expression.
    pub expr: Expr,
    /// Labels added to its results (templates for alerts).
    pub labels: BTreeMap<String, String>,
    /// Recovery actions it names (short form: `action`/`actions`; rule files: the `action`
    /// label or the `actions` annotation, comma-separated).
    pub actions: Vec<String>,
}

impl Rule {
    /// The alert or record name.
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Alert { name, .. } | RuleKind::Record { name } => name,
        }
    }
}

/// A group of rules evaluated together.
#[derive(Debug, Clone)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// Evaluation interval, ms (None: the collection interval).
    pub interval_ms: Option<i64>,
    /// How far back its rules query, ms (None: `cluster.monitoring.rule_query_offset_seconds`),
    /// as Prometheus 2.53+'s `query_offset`.
    pub query_offset_ms: Option<i64>,
    /// Most alerts (or recorded series) a rule may produce; 0 is no limit.
    pub limit: usize,
    /// Its rules, in order.
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    groups: Vec<GroupSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    name: Spanned<String>,
    #[serde(default)]
    interval: Option<Spanned<String>>,
    #[serde(default)]
    query_offset: Option<Spanned<String>>,
    #[serde(default)]
    limit: usize,
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(default)]
    record: Option<Spanned<String>>,
    #[serde(default)]
    alert: Option<Spanned<String>>,
    #[serde(default)]
    expr: Option<Spanned<String>>,
    #[serde(default, rename = "for")]
    for_: Option<Spanned<String>>,
    #[serde(default)]
    keep_firing_for: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, Spanned<String>>>,
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn actions_of(
    labels: &BTreeMap<String, String>,
    annotations: Option<&BTreeMap<String, String>>,
) -> Vec<String> {
    let from_label = labels.get("action").map(String::as_str);
    let from_annotation = annotations
        .and_then(|a| a.get("actions"))
        .map(String::as_str);
    from_label
        .into_iter()
        .chain(from_annotation)
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads and checks one rule file, its expressions parsed as `semantics` reads them; the first
/// error (see [`check_file`] for all of them).
pub fn load_file(path: &Path, semantics: Semantics) -> Result<Vec<Group>, RuleError> {
    check_file(path, semantics).map_err(first_error)
}

/// Reads and checks one rule file, reporting every error in it (every group, every rule), as
/// `promtool check rules` does.
pub fn check_file(path: &Path, semantics: Semantics) -> Result<Vec<Group>, Vec<RuleError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![RuleError {
            file: file.clone(),
            line: 0,
            column: 0,
            place: "file".into(),
            reason: format!("cannot read: {e}"),
        }]
    })?;
    check_text(&text, &file, semantics)
}

/// Reads and checks rule file text; `file` names it in errors. The first error.
pub fn parse_file(text: &str, file: &str, semantics: Semantics) -> Result<Vec<Group>, RuleError> {
    check_text(text, file, semantics).map_err(first_error)
}

fn first_error(mut errors: Vec<RuleError>) -> RuleError {
    // check_text never fails with an empty list.
    errors.swap_remove(0)
}

/// Reads and checks rule file text, every error in file order.
pub fn check_text(
    text: &str,
    file: &str,
    semantics: Semantics,
) -> Result<Vec<Group>, Vec<RuleError>> {
    let mut path = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, Option<RuleFile>>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    let spec = match parsed {
        Ok(spec) => spec.unwrap_or(RuleFile { groups: Vec::new() }),
        Err(e) => {
            // A file that is not YAML of the right shape has one error, as in promtool.
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let reason = e.without_snippet().to_string();
            let reason = reason.lines().next().unwrap_or("").to_owned();
            return Err(vec![RuleError {
                file: file.into(),
                line,
                column,
                place: if path.is_empty() { "file".into() } else { path },
                reason,
            }]);
        }
    };
    let mut names = HashSet::new();
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for g in spec.groups {
        let group_place = format!("group {:?}", g.name.value);
        let mut report = |s: &serde_saphyr::Location, place: &str, reason: String| {
            errors.push(RuleError {
                file: file.into(),
                line: s.line(),
                column: s.column(),
                place: place.to_owned(),
                reason,
            })
        };
        if g.name.value.is_empty() {
            report(
                &g.name.referenced,
                &group_place,
                "groupname must not be empty".into(),
            );
        } else if !names.insert(g.name.value.clone()) {
            report(
                &g.name.referenced,
                &group_place,
                format!("groupname: {:?} is repeated in the same file", g.name.value),
            );
        }
        let mut group_duration = |field: &str, d: &Option<Spanned<String>>| match d {
            Some(d) => parse_duration(&d.value)
                .map(Some)
                .map_err(|r| report(&d.referenced, &group_place, format!("{field}: {r}")))
                .ok()
                .flatten(),
            None => None,
        };
        let interval_ms = group_duration("interval", &g.interval);
        let query_offset_ms = group_duration("query_offset", &g.query_offset);
        let mut rules = Vec::new();
        for (i, r) in g.rules.into_iter().enumerate() {
            match check_rule(r, i, &group_place, g.name.referenced, file, semantics) {
                Ok(rule) => rules.push(rule),
                Err(mut found) => errors.append(&mut found),
            }
        }
        groups.push(Group {
            name: g.name.value,
            file: file.into(),
            interval_ms,
            query_offset_ms,
            limit: g.limit,
            rules,
        });
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Checks one rule of a file: the rule, or every error in it.
fn check_rule(
    r: RuleSpec,
    index: usize,
    group_place: &str,
    group_location: serde_saphyr::Location,
    file: &str,
    semantics: Semantics,
) -> Result<Rule, Vec<RuleError>> {
    let label = r
        .alert
        .as_ref()
        .or(r.record.as_ref())
        .map(|n| n.value.clone())
        .unwrap_or_default();
    let place = format!("{group_place}, rule {} ({label})", index + 1);
    let anchor = r
        .expr
        .as_ref()
        .map(|e| e.referenced)
        .or(r.alert.as_ref().map(|a| a.referenced))
        .or(r.record.as_ref().map(|a| a.referenced))
        .unwrap_or(group_location);
    let mut errors = Vec::new();
    let mut fail = |loc: &serde_saphyr::Location, reason: String| {
        errors.push(RuleError {
            file: file.into(),
            line: loc.line(),
            column: loc.column(),
            place: place.clone(),
            reason,
        })
    };
    let expr = match &r.expr {
        None => {
            fail(&anchor, "field 'expr' must be set in rule".into());
            None
        }
        Some(spec) => match promql::parse_as(&spec.value, semantics) {
            Err(e) => {
                fail(
                    &spec.referenced,
                    format!("could not parse expression: {}", e.0),
                );
                None
            }
            Ok(expr) => match promql::check_supported(&expr) {
                Err(e) => {
                    fail(&spec.referenced, format!("expr: {}", e.0));
                    None
                }
                Ok(()) => Some(expr),
            },
        },
    };
    for (name, value) in &r.labels {
        if !is_label_name(name) || name == promql::NAME {
            fail(&value.referenced, format!("invalid label name: {name}"));
        }
    }
    let labels: BTreeMap<String, String> = r
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    let annotations: Option<BTreeMap<String, String>> = r.annotations.as_ref().map(|a| {
        a.iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    });
    let kind = match (&r.alert, &r.record) {
        (Some(_), Some(_)) => {
            fail(
                &anchor,
                "only one of 'record' and 'alert' must be set".into(),
            );
            None
        }
        (None, None) => {
            fail(&anchor, "one of 'record' or 'alert' must be set".into());
            None
        }
        (None, Some(record)) => {
            if !is_metric_name(&record.value) {
                fail(
                    &record.referenced,
                    format!("invalid recording rule name: {}", record.value),
                );
            }
            let fields = [
                ("for", r.for_.as_ref().map(|f| f.referenced)),
                (
                    "keep_firing_for",
                    r.keep_firing_for.as_ref().map(|f| f.referenced),
                ),
                (
                    "annotations",
                    r.annotations
                        .as_ref()
                        .map(|a| a.values().next().map_or(anchor, |v| v.referenced)),
                ),
            ];
            for (field, loc) in fields.iter().filter_map(|(f, l)| l.map(|l| (f, l))) {
                fail(&loc, format!("invalid field '{field}' in recording rule"));
            }
            Some(RuleKind::Record {
                name: record.value.clone(),
            })
        }
        (Some(alert), None) => {
            if alert.value.is_empty() {
                fail(&alert.referenced, "invalid alert name: empty".into());
            }
            let mut duration = |field: &str, d: &Option<Spanned<String>>| match d {
                Some(s) => parse_duration(&s.value).unwrap_or_else(|reason| {
                    fail(&s.referenced, format!("{field}: {reason}"));
                    0
                }),
                None => 0,
            };
            let for_ms = duration("for", &r.for_);
            let keep_firing_for_ms = duration("keep_firing_for", &r.keep_firing_for);
            for (name, value) in r.annotations.iter().flatten() {
                if !is_label_name(name) {
                    fail(
                        &value.referenced,
                        format!("invalid annotation name: {name}"),
                    );
                }
            }
            // promtool checks templates too: a broken one is a load error.
            for (field, map) in [
                ("labels", Some(&r.labels)),
                ("annotations", r.annotations.as_ref()),
            ] {
                for (name, text) in map.into_iter().flatten() {
                    let template_name = super::template::alert_template_name(&alert.value);
                    if let Err(e) = super::template::check(&template_name, &text.value) {
                        fail(&text.referenced, format!("{field}.{name}: {e}"));
                    }
                }
            }
            Some(RuleKind::Alert {
                name: alert.value.clone(),
                for_ms,
                keep_firing_for_ms,
                annotations: annotations.clone().unwrap_or_default(),
            })
        }
    };
    match (kind, expr, r.expr) {
        (Some(kind), Some(expr), Some(text)) if errors.is_empty() => Ok(Rule {
            actions: actions_of(&labels, annotations.as_ref()),
            kind,
            expr_text: text.value,
            expr,
            labels,
        }),
        _ => Err(errors),
    }
}

/// The name a short-form alert gets when it has none: the metric in CamelCase, then `High`
/// (`>`, `>=`), `Low` (`<`, `<=`), the state (`==`), `Not` and the state (`!=`), or
/// `Equals`/`NotEquals` for numbers: `node.disk_usage_percent >= 90` is
/// `NodeDiskUsagePercentHigh`, `node.status == Offline` is `NodeStatusOffline`.
pub fn derived_alert_name(alert: &AlertConfig) -> String {
    let camel: String = alert
        .metric
        .value
        .split(['.', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    use crate::config::Operator::*;
    let suffix = match (&alert.operator, &alert.threshold.value) {
        (Gt | Ge, _) => "High".to_owned(),
        (Lt | Le, _) => "Low".to_owned(),
        (Eq, Threshold::State(s)) => s.clone(),
        (Ne, Threshold::State(s)) => format!("Not{s}"),
        (Eq, Threshold::Number(_)) => "Equals".to_owned(),
        (Ne, Threshold::Number(_)) => "NotEquals".to_owned(),
    };
    camel + &suffix
}

/// The default `summary` of a short-form alert: a template naming the node and the thing in
/// words, its value put through Prometheus's humanize functions. `node` is this sentinel's
/// `cluster.node_id`; `node.status` alerts name the node they are about instead.
///
/// ```
/// use ipfs_sentinel::rules::load::default_summary;
///
/// assert_eq!(
///     default_summary("node.disk_usage_percent", ">=", "90", "node-b"),
///     "disk {{ $labels.mountpoint }} on node-b is {{ $value | humanize }} % full"
/// );
/// assert_eq!(
///     default_summary("node.status", "==", "Offline", "node-a"),
///     "node {{ $labels.node_id }} is Offline (seen from node-a)"
/// );
/// ```
pub fn default_summary(metric: &str, operator: &str, threshold: &str, node: &str) -> String {
    // The node id is text, never template code.
    let node = node.replace("{{", "{{ \"{{\" }}");
    let value = "{{ $value | humanize }}";
    let bytes = "{{ $value | humanize1024 }}B";
    match metric {
        "node.cpu_usage_percent" => format!("CPU on {node} is {value} % busy"),
        "node.memory_usage_percent" => format!("memory on {node} is {value} % used"),
        "node.disk_usage_percent" => {
            format!("disk {{{{ $labels.mountpoint }}}} on {node} is {value} % full")
        }
        "node.load1" => format!("load on {node} is {value} (1-minute average)"),
        "node.status" => {
            let not = if operator == "!=" { "not " } else { "" };
            format!("node {{{{ $labels.node_id }}}} is {not}{threshold} (seen from {node})")
        }
        "ipfs.up" => format!(
            "the Kubo RPC API on {node} {{{{ if eq $value 0.0 }}}}does not answer{{{{ else }}}}answers{{{{ end }}}} (ipfs.up is {value})"
        ),
        "ipfs.repo_size" => format!("the IPFS repo on {node} holds {bytes}"),
        "ipfs.repo_usage_percent" => {
            format!("the IPFS repo on {node} is at {value} % of its StorageMax")
        }
        "ipfs.repo_objects" => format!("the IPFS repo on {node} holds {value} blocks"),
        "ipfs.peers_connected" => format!("{node} has {value} swarm peers connected"),
        "ipfs.pins_total" => format!("{node} has {value} pins"),
        "ipfs.bandwidth_in_rate" => format!("{node} receives {bytes}/s"),
        "ipfs.bandwidth_out_rate" => format!("{node} sends {bytes}/s"),
        "cache.hit_ratio_percent" => format!("the block cache on {node} hits {value} % of lookups"),
        "actions.awaiting_approval" => format!(
            "recovery action {{{{ $labels.action }}}} for {{{{ $labels.node_id }}}} awaits approval on {node} (proposal {{{{ $labels.proposal }}}}: {{{{ $labels.would_run }}}})"
        ),
        "actions.circuit_open" => {
            format!("recovery actions on {node} are stopped: the circuit breaker is open")
        }
        _ => format!("{metric} on {node} is {value}"),
    }
}

/// The default `description`: the summary, then the condition that raised it.
fn default_description(summary: &str, alert: &AlertConfig, threshold: &str) -> String {
    let minutes = alert.duration_minutes.0;
    let held = if minutes > 0.0 {
        format!(
            " for {minutes} minute{}",
            if minutes == 1.0 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    format!(
        "{summary} (alert: {} {} {threshold}{held})",
        alert.metric.value,
        alert.operator.as_str()
    )
}

/// The short-form alerts of a configuration, as one group evaluated every collection.
///
/// ```
/// use ipfs_sentinel::config::Config;
/// use ipfs_sentinel::rules::load::{short_form_group, RuleKind, SHORT_FORM_GROUP};
///
/// let yaml = "
/// cluster:
///   node_id: node-a
///   monitoring:
///     alerts:
///       - {metric: node.disk_usage_percent, threshold: 90, operator: '>=', severity: warning}
///       - {metric: node.status, threshold: Offline, operator: '==', severity: critical, duration_minutes: 5}
/// ";
/// let config = Config::parse(yaml, "sentinel.yaml").unwrap();
/// let group = short_form_group(&config, "sentinel.yaml");
/// assert_eq!(group.name, SHORT_FORM_GROUP);
/// let (disk, offline) = (&group.rules[0], &group.rules[1]);
/// assert_eq!(disk.name(), "NodeDiskUsagePercentHigh");
/// assert_eq!(
///     disk.expr_text,
///     "100 * ipfs_sentinel_node_disk_usage_ratio >= 90"
/// );
/// assert_eq!(disk.labels["severity"], "warning");
/// assert_eq!(offline.name(), "NodeStatusOffline");
/// assert_eq!(offline.expr_text, "ipfs_sentinel_cluster_node_status{status=\"Offline\"} == 1");
/// let RuleKind::Alert { for_ms, annotations, .. } = &offline.kind else { unreachable!() };
/// assert_eq!(*for_ms, 5 * 60_000);
/// assert_eq!(
///     annotations["summary"],
///     "node {{ $labels.node_id }} is Offline (seen from node-a)"
/// );
/// assert_eq!(
///     annotations["description"],
///     "node {{ $labels.node_id }} is Offline (seen from node-a) (alert: node.status == Offline for 5 minutes)"
/// );
/// ```
pub fn short_form_group(config: &Config, file: &str) -> Group {
    let rules = config
        .cluster
        .monitoring
        .alerts
        .iter()
        .filter_map(|a| {
            // The configuration checked the metric against the table when it loaded.
            let metric = dotted::lookup(&a.metric.value)?;
            let threshold = match &a.threshold.value {
                Threshold::Number(n) => format!("{n}"),
                Threshold::State(s) => s.clone(),
            };
            let expr_text = metric.condition(a.operator.as_str(), &threshold);
            let expr = promql::parse(&expr_text).ok()?;
            let mut labels = a.labels.clone();
            labels.insert("severity".into(), a.severity.as_str().into());
            let mut annotations = a.annotations.clone();
            let node = &config.cluster.node_id;
            let summary = default_summary(metric.name, a.operator.as_str(), &threshold, node);
            annotations
                .entry("description".into())
                .or_insert_with(|| default_description(&summary, a, &threshold));
            annotations.entry("summary".into()).or_insert(summary);
            Some(Rule {
                kind: RuleKind::Alert {
                    name: a.name.clone().unwrap_or_else(|| derived_alert_name(a)),
                    for_ms: (a.duration_minutes.0 * 60_000.0) as i64,
                    keep_firing_for_ms: 0,
                    annotations,
                },
                expr_text,
                expr,
                labels,
                actions: a.action_names().map(|s| s.value.clone()).collect(),
            })
        })
        .collect();
    Group {
        name: SHORT_FORM_GROUP.into(),
        file: file.into(),
        interval_ms: None,
        query_offset_ms: None,
        limit: 0,
        rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_file(text, "r.yml", Semantics::Prometheus3)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_file_loads_both_kinds() {
        let groups = parse_file(
            "groups:\n  - name: ipfs\n    interval: 30s\n    rules:\n      - alert: IpfsDown\n        expr: ipfs_sentinel_ipfs_up == 0\n        for: 5m\n        keep_firing_for: 1m\n        labels: {severity: critical, action: run_gc}\n        annotations: {summary: 'IPFS down on {{ $labels.instance }}'}\n      - record: job:up:sum\n        expr: sum by (job) (up)\n",
            "r.yml",
            Semantics::Prometheus3,
        )
        .unwrap();
        assert_eq!(groups[0].interval_ms, Some(30_000));
        let alert = &groups[0].rules[0];
        assert_eq!(
            alert.kind,
            RuleKind::Alert {
                name: "IpfsDown".into(),
                for_ms: 300_000,
                keep_firing_for_ms: 60_000,
                annotations: [(
                    "summary".to_owned(),
                    "IPFS down on {{ $labels.instance }}".to_owned()
                )]
                .into()
            }
        );
        assert_eq!(alert.actions, vec!["run_gc"]);
        assert_eq!(groups[0].rules[1].name(), "job:up:sum");
    }

    #[test]
    fn errors_name_file_line_group_and_rule() {
        let e = err("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: up\n        for: 5m\n");
        assert!(
            e.starts_with(
                "r.yml:6:14: group \"g\", rule 1 (x): invalid field 'for' in recording rule"
            ),
            "{e}"
        );
        let e = err("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(up\n");
        assert!(
            e.starts_with("r.yml:5:15: group \"g\", rule 1 (A): could not parse expression"),
            "{e}"
        );
        let e = err("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5 minutes\n");
        assert!(e.contains("not a valid duration string"), "{e}");
        let e = err("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations: {summary: '{{ $value '}\n");
        assert!(
            e.contains("annotations.summary: template: __alert_A:1: unclosed action"),
            "{e}"
        );
        let e = err("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        severity: x\n");
        assert!(e.contains("unknown field `severity`"), "{e}");
        assert!(err("groups:\n  - name: g\n  - name: g\n").contains("is repeated"));
        assert!(err("groups:\n  - name: g\n    rules:\n      - expr: up\n")
            .contains("one of 'record' or 'alert' must be set"));
        assert!(err(
            "groups:\n  - name: g\n    rules:\n      - record: 'bad name'\n        expr: up\n"
        )
        .contains("invalid recording rule name"));
        let limitk =
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: limitk(1, up)\n";
        assert!(
            err(limitk).contains("experimental in Prometheus 3.5"),
            "{}",
            err(limitk)
        );
        let in_2_42 = parse_file(limitk, "r.yml", Semantics::Prometheus2_42).unwrap_err();
        assert!(
            in_2_42.to_string().contains("not in Prometheus 2.42"),
            "{in_2_42}"
        );
    }

    #[test]
    fn every_error_of_every_group_and_rule_is_listed() {
        let errors = check_text(
            "groups:\n  - name: g\n    query_offset: soon\n    limit: 3\n    rules:\n      - alert: A\n        expr: up\n        keep_firing_for: x\n        labels: {'a-b': c}\n      - record: r\n        expr: up\n  - name: h\n    rules:\n      - expr: up\n",
            "r.yml",
            Semantics::Prometheus3,
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "r.yml:3:19: group \"g\": query_offset: not a valid duration string: \"soon\"",
                "r.yml:9:25: group \"g\", rule 1 (A): invalid label name: a-b",
                "r.yml:8:26: group \"g\", rule 1 (A): keep_firing_for: not a valid duration string: \"x\"",
                "r.yml:14:15: group \"h\", rule 1 (): one of 'record' or 'alert' must be set",
            ]
        );
        let groups = parse_file(
            "groups:\n  - name: g\n    query_offset: 1m\n    limit: 3\n    rules: []\n",
            "r.yml",
            Semantics::Prometheus3,
        )
        .unwrap();
        assert_eq!(
            (groups[0].query_offset_ms, groups[0].limit),
            (Some(60_000), 3)
        );
    }

    #[test]
    fn durations_as_prometheus_writes_them() {
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("1d").unwrap(), 86_400_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500);
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("").is_err());
    }

    /// Each short-form metric kind's default summary, expanded as the engine expands it: the
    /// node and the thing named, the value humanized.
    #[test]
    fn default_summaries_say_what_and_where_in_words() {
        use super::super::template::{expand, NoQueries, TemplateData};
        let cases: &[(&str, &str, &str, f64, &str)] = &[
            (
                "node.disk_usage_percent",
                ">=",
                "90",
                93.2012345,
                "disk /data on node-b is 93.2 % full",
            ),
            (
                "node.cpu_usage_percent",
                ">",
                "80",
                8.730171848302648,
                "CPU on node-b is 8.73 % busy",
            ),
            (
                "node.memory_usage_percent",
                ">=",
                "95",
                97.0,
                "memory on node-b is 97 % used",
            ),
            (
                "node.load1",
                ">",
                "4",
                6.125,
                "load on node-b is 6.125 (1-minute average)",
            ),
            (
                "node.status",
                "==",
                "Offline",
                1.0,
                "node node-c is Offline (seen from node-b)",
            ),
            (
                "node.status",
                "!=",
                "Online",
                0.0,
                "node node-c is not Online (seen from node-b)",
            ),
            (
                "ipfs.up",
                "==",
                "0",
                0.0,
                "the Kubo RPC API on node-b does not answer (ipfs.up is 0)",
            ),
            (
                "ipfs.repo_size",
                ">",
                "1e9",
                5_368_709_120.0,
                "the IPFS repo on node-b holds 5GiB",
            ),
            (
                "ipfs.repo_usage_percent",
                ">=",
                "90",
                91.25,
                "the IPFS repo on node-b is at 91.25 % of its StorageMax",
            ),
            (
                "ipfs.repo_objects",
                ">",
                "1e6",
                2_500_000.0,
                "the IPFS repo on node-b holds 2.5M blocks",
            ),
            (
                "ipfs.peers_connected",
                "<",
                "5",
                3.0,
                "node-b has 3 swarm peers connected",
            ),
            (
                "ipfs.pins_total",
                ">",
                "1e5",
                123_456.0,
                "node-b has 123.5k pins",
            ),
            (
                "ipfs.bandwidth_in_rate",
                ">",
                "1e7",
                12_582_912.0,
                "node-b receives 12MiB/s",
            ),
            (
                "ipfs.bandwidth_out_rate",
                ">",
                "1e7",
                1536.0,
                "node-b sends 1.5kiB/s",
            ),
            (
                "cache.hit_ratio_percent",
                "<",
                "50",
                42.123,
                "the block cache on node-b hits 42.12 % of lookups",
            ),
            (
                "actions.awaiting_approval",
                ">",
                "0",
                1.0,
                "recovery action run_gc for node-c awaits approval on node-b (proposal p-1: ipfs repo gc)",
            ),
            (
                "actions.circuit_open",
                ">",
                "0",
                1.0,
                "recovery actions on node-b are stopped: the circuit breaker is open",
            ),
        ];
        for name in crate::dotted::names() {
            assert!(
                cases.iter().any(|c| c.0 == name),
                "no case for the short-form metric {name}"
            );
        }
        let labels: BTreeMap<String, String> = [
            ("mountpoint".to_owned(), "/data".to_owned()),
            ("node_id".to_owned(), "node-c".to_owned()),
            ("action".to_owned(), "run_gc".to_owned()),
            ("proposal".to_owned(), "p-1".to_owned()),
            ("would_run".to_owned(), "ipfs repo gc".to_owned()),
        ]
        .into();
        for (metric, operator, threshold, value, want) in cases {
            let text = default_summary(metric, operator, threshold, "node-b");
            let data = TemplateData {
                labels: labels.clone(),
                value: *value,
                ..TemplateData::default()
            };
            assert_eq!(
                expand("summary", &text, &data, &NoQueries("none")),
                *want,
                "{metric} {operator} {threshold}"
            );
        }
    }

    #[test]
    fn a_node_id_is_text_in_a_summary_never_template_code() {
        use super::super::template::{expand, NoQueries, TemplateData};
        let text = default_summary("node.load1", ">", "1", "odd{{ node");
        let data = TemplateData {
            value: 2.0,
            ..TemplateData::default()
        };
        assert_eq!(
            expand("summary", &text, &data, &NoQueries("none")),
            "load on odd{{ node is 2 (1-minute average)"
        );
    }

    #[test]
    fn the_short_form_alerts_compile_with_derived_names() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/config/short-form.yaml"
        ))
        .unwrap();
        let config = Config::parse(&text, "short-form.yaml").unwrap();
        let g = short_form_group(&config, "short-form.yaml");
        let names: Vec<&str> = g.rules.iter().map(Rule::name).collect();
        assert_eq!(
            names,
            vec![
                "NodeDiskUsagePercentHigh",
                "NodeMemoryUsagePercentHigh",
                "NodeStatusOffline"
            ]
        );
        assert_eq!(
            g.rules[2].expr_text,
            "ipfs_sentinel_cluster_node_status{status=\"Offline\"} == 1"
        );
        assert!(matches!(
            g.rules[2].kind,
            RuleKind::Alert {
                for_ms: 300_000,
                ..
            }
        ));
        assert_eq!(g.rules[0].labels["severity"], "warning");
        assert_eq!(g.rules[0].actions, vec!["run_gc"]);
    }
}
