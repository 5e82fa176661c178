//! Alert templates: Go's `text/template` as Prometheus runs it to expand alerting-rule labels
//! and annotations, with every function of Prometheus's template map.
//!
//! This module owns the whole path from template text to expanded string, one stage a file:
//! `lexer.rs` (`{{ }}` actions, trim markers, comments, literals), `parser.rs` (pipelines,
//! variables, `if`/`range`/`with`, checked against the function map), `exec.rs` (walking the
//! tree against [`TemplateData`]), `value.rs` (the Go values a template meets and their `%v`
//! printing), `functions.rs` (Go's builtins and Prometheus's functions), `humanize.rs`
//! (Prometheus's number and time formats), `number.rs` (Go's float formatting) and `printf.rs`
//! (Go's `Sprintf`). As in Prometheus, every template runs behind
//! `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}`
//! `{{$externalURL := .ExternalURL}}{{$value := .Value}}`, a missing label expands to the
//! empty string (`missingkey=zero`), and a failure expands to
//! `<error expanding template: ...>` instead of aborting the rule.
//!
//! The engine is written by hand on purpose: the Go-template crates that exist (gtmpl and
//! its kin) print `<no value>` for a missing label where Prometheus prints nothing, format
//! floats unlike Go's `%v`, and have no hook for Prometheus's functions with Go's error texts;
//! a rule that expands differently here than in Prometheus would page differently.
//! Nothing here evaluates PromQL itself: `query` goes through the [`TemplateQuery`] the
//! caller passes.

mod exec;
mod functions;
pub mod humanize;
mod lexer;
pub mod number;
mod parser;
mod printf;
mod value;

use std::collections::BTreeMap;

use exec::Executor;
use lexer::lex;
use parser::{Parser, Tree};

/// What a template sees.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateData {
    /// The alert's labels: `.Labels` and `$labels`.
    pub labels: BTreeMap<String, String>,
    /// The server's external labels: `.ExternalLabels` and `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// The server's external URL: `.ExternalURL` and `$externalURL`.
    pub external_url: String,
    /// The sample value that made the alert fire: `.Value` and `$value`.
    pub value: f64,
    /// The evaluation time, ms since the epoch: what `now` returns (in seconds).
    pub eval_time_ms: i64,
}

/// One sample of a query's result as a template sees it: `.Labels` and `.Value`, or
/// `label`, `value` and `strvalue`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuerySample {
    /// The series' labels, `__name__` included when the result keeps it.
    pub labels: BTreeMap<String, String>,
    /// The sample's value.
    pub value: f64,
}

/// How the `query` function runs PromQL: Prometheus evaluates it as an instant query at the
/// rule's evaluation time against the same storage the rule reads. The caller (the rule
/// engine, the promtool test runner) implements it over its data; the template engine only
/// converts the result.
pub trait TemplateQuery {
    /// Evaluates `expr`; a vector as its samples, a scalar as one sample without labels,
    /// anything else or a failure as the error text the template reports.
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String>;
}

/// No query engine: `query` fails with the reason given.
#[derive(Debug, Clone)]
pub struct NoQueries(pub &'static str);

impl TemplateQuery for NoQueries {
    fn query(&self, _expr: &str) -> Result<Vec<QuerySample>, String> {
        Err(self.0.to_owned())
    }
}

/// Expands `text`, running `query` calls through `queries`; on any parse or execution error
/// returns Prometheus's text `<error expanding template: ERROR>` (ERROR being a one-line
/// description naming the template `name`), never panics.
pub fn expand(name: &str, text: &str, data: &TemplateData, queries: &dyn TemplateQuery) -> String {
    // Text without an action is its own expansion: most rule labels (`severity: warning`).
    if !text.contains("{{") {
        return text.to_owned();
    }
    match render(name, text, data, queries) {
        Ok(output) => output,
        Err(error) => format!("<error expanding template: {}>", one_line(&error)),
    }
}

/// Parses a template without running it, for load-time checks: Err(one-line reason, as
/// Go's parser words it: `template: NAME:LINE: ...`).
pub fn check(name: &str, text: &str) -> Result<(), String> {
    parse_alert_template(name, text)
        .map(|_| ())
        .map_err(|error| {
            let reason = one_line(&error);
            let prefix = format!("error parsing template {name}: ");
            reason
                .strip_prefix(&prefix)
                .map_or(reason.clone(), str::to_owned)
        })
}

/// The name Prometheus gives an alerting rule's templates, which their errors show.
pub fn alert_template_name(alert: &str) -> String {
    format!("__alert_{alert}")
}

/// The variable definitions Prometheus puts in front of every alert template.
const ALERT_DEFINITIONS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}\
{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// How deeply parentheses and control structures may nest before parsing gives up.
const MAX_NESTING: usize = 100;

/// The characters Go's template lexer treats as space.
const SPACE_CHARS: &[char] = &[' ', '\t', '\r', '\n'];

fn render(
    name: &str,
    text: &str,
    data: &TemplateData,
    queries: &dyn TemplateQuery,
) -> Result<String, String> {
    let tree = parse_alert_template(name, text)?;
    let mut executor = Executor::new(data, queries, &tree.defined);
    let root = executor.root();
    executor.walk(&tree.root, &root).map_err(|error| {
        format!(
            "error executing template {name}: template: {name}:{}: {}",
            error.line, error.message
        )
    })?;
    Ok(executor.output)
}

fn parse_alert_template(name: &str, text: &str) -> Result<Tree, String> {
    let source = format!("{ALERT_DEFINITIONS}{text}");
    lex(&source)
        .and_then(|tokens| Parser::new(tokens).parse_template())
        .map_err(|error| {
            format!(
                "error parsing template {name}: template: {name}:{}: {}",
                error.line, error.message
            )
        })
}

/// Joins a possibly multi-line message (regex errors span lines) into one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An error with the template line it happened on.
#[derive(Debug)]
struct Located {
    line: usize,
    message: String,
}

#[cfg(test)]
mod testing {
    use super::*;

    pub(super) fn data() -> TemplateData {
        TemplateData {
            labels: [
                ("instance", "node-1:9100"),
                ("job", "ipfs"),
                ("severity", "page"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            external_labels: [("cluster".to_owned(), "eu-1".to_owned())].into(),
            external_url: "http://sentinel:9090".to_owned(),
            value: 95.0,
            eval_time_ms: 1_435_065_584_128,
        }
    }

    /// Answers `up` with two series (b before a, to show sorting), `nothing` with an empty
    /// vector, `scalar` with one unlabelled sample, and fails anything else.
    pub(super) struct StubQueries;

    impl TemplateQuery for StubQueries {
        fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
            let sample = |instance: &str, value: f64| QuerySample {
                labels: [("__name__", "up"), ("instance", instance), ("job", "ipfs")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                value,
            };
            match expr {
                "up" => Ok(vec![sample("b:9100", 0.0), sample("a:9100", 1.0)]),
                "nothing" => Ok(Vec::new()),
                "scalar" => Ok(vec![QuerySample {
                    labels: BTreeMap::new(),
                    value: 42.0,
                }]),
                _ => Err(format!("could not parse expression {expr:?}")),
            }
        }
    }

    pub(super) fn run(text: &str) -> String {
        expand("test", text, &data(), &StubQueries)
    }

    pub(super) fn run_with_value(text: &str, value: f64) -> String {
        let mut data = data();
        data.value = value;
        expand("test", text, &data, &StubQueries)
    }

    pub(super) fn failure(text: &str) -> String {
        let output = run(text);
        assert!(
            output.starts_with("<error expanding template: "),
            "expected an error for {text:?}, got {output:?}"
        );
        output
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    // Prometheus template_test.go "No template".
    #[test]
    fn plain_text_passes_through() {
        assert_eq!(run("plain text"), "plain text");
    }

    // Prometheus template_test.go "Simple value": an integer constant prints as an int.
    #[test]
    fn integer_constant_prints() {
        assert_eq!(run("{{ 1 }}"), "1");
    }

    // Prometheus rules/alerting.go defs: $labels, $value and the fields behind them.
    #[test]
    fn alert_variables_and_fields() {
        let text = "{{ $labels.instance }} {{ .Labels.job }} {{ $value }} {{ .Value }}";
        assert_eq!(run(text), "node-1:9100 ipfs 95 95");
        assert_eq!(
            run("{{ $externalLabels.cluster }} {{ $externalURL }} {{ .ExternalURL }}"),
            "eu-1 http://sentinel:9090 http://sentinel:9090"
        );
    }

    // Prometheus template_test.go "Missing label is empty when not using label function":
    // Prometheus runs with missingkey=zero, so a missing map key gives "".
    #[test]
    fn missing_label_is_empty() {
        assert_eq!(run("[{{ $labels.nope }}]"), "[]");
        assert_eq!(run("[{{ index $labels \"nope\" }}]"), "[]");
    }

    // Prometheus template_test.go "Query with labels", "first", "sortByLabel", "Scalar"
    // and "Error in query" cases, over a stub engine.
    #[test]
    fn query_results_through_the_engine() {
        assert_eq!(run("{{ query \"up\" | first | value }}"), "0");
        assert_eq!(
            run("{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}"),
            "b:9100"
        );
        assert_eq!(
            run("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}={{ .Value }} {{ end }}"),
            "a:9100=1 b:9100=0 "
        );
        assert_eq!(run("{{ query \"scalar\" | first | value }}"), "42");
        assert_eq!(run("{{ len (query \"up\") }}"), "2");
        assert_eq!(
            run("{{ (index (query \"up\") 1).Labels.instance }}"),
            "a:9100"
        );
        assert_eq!(run("{{ query \"up\" | first | strvalue }}"), "");
        assert_eq!(
            run("{{ range $i, $s := query \"up\" }}{{ $i }}:{{ $s.Value }};{{ end }}"),
            "0:0;1:1;"
        );
        assert_eq!(
            run("{{ if query \"nothing\" }}some{{ else }}none{{ end }}"),
            "none"
        );
        assert!(failure("{{ query \"nothing\" | first | value }}")
            .contains("error calling first: first() called on vector with no elements"));
        assert!(failure("{{ query \"bad(\" }}")
            .contains("error calling query: could not parse expression"));
        let none = expand(
            "t",
            "{{ query \"up\" }}",
            &data(),
            &NoQueries("no engine here"),
        );
        assert!(
            none.contains("error calling query: no engine here"),
            "{none}"
        );
        assert!(check("t", "{{ query \"up\" | first | value }}").is_ok());
    }

    // Prometheus template_test.go "Unparsable template" and the non-ASCII space case.
    #[test]
    fn parse_errors_name_the_template() {
        assert_eq!(run("{{"), "<error expanding template: error parsing template test: template: test:1: unclosed action>");
        assert!(failure("{{\u{a0}}}").contains("unrecognized character in action: U+00A0"));
        assert!(failure("{{ if true }}x").contains("unexpected EOF"));
        assert!(failure("{{ end }}").contains("unexpected {{end}}"));
        assert!(failure("{{ nosuch 1 }}").contains("function \"nosuch\" not defined"));
    }

    // rulefmt.go testTemplateParsing: check parses behind the same variable definitions.
    #[test]
    fn check_reports_parse_errors_only() {
        assert_eq!(
            check("t", "{{ $labels.instance }} is {{ $value | humanize }}"),
            Ok(())
        );
        assert_eq!(check("t", "{{ humanize \"one\" }}"), Ok(()));
        let error = check("t", "{{ $undefined }}").unwrap_err();
        assert_eq!(error, "template: t:1: undefined variable \"$undefined\"");
    }

    // Malformed input of every kind comes back as error text, never as a panic.
    #[test]
    fn malformed_templates_never_panic() {
        let inputs = [
            "{{",
            "{{)}}",
            "{{(}}",
            "{{ \"abc }}",
            "{{ `abc }}",
            "{{ 'ab' }}",
            "{{ 1 | }}",
            "{{ | 1 }}",
            "{{ $x := }}",
            "{{ range $a, $b, $c := . }}{{end}}",
            "{{ 1 | 2 }}",
            "{{ else }}",
            "{{/* x",
            "{{ 99999999999999999999 }}",
            "{{ \"\\q\" }}",
            "{{ .a.b.c }}",
            "{{ index }}",
            "{{ printf }}",
            "{{ printf 1 }}",
            "{{ template \"missing\" }}",
            "{{ define \"x\" }}{{ template \"x\" }}{{ end }}{{ template \"x\" }}",
            "{{ if true }}{{ define \"x\" }}{{ end }}{{ end }}",
            &format!("{{{{{}1{}}}}}", "(".repeat(500), ")".repeat(500)),
        ];
        for input in inputs {
            let output = run(input);
            assert!(
                output.starts_with("<error expanding template: error "),
                "{input:?} gave {output:?}"
            );
            assert!(!output.contains('\n'), "{input:?} gave {output:?}");
        }
        // Text without actions is just text, whatever it looks like.
        assert_eq!(run("}} (( ))"), "}} (( ))");
    }
}
