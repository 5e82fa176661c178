//! Executing a parsed template: walking the tree with dot and the variable stack, evaluating
//! pipelines, `and`/`or` short-circuiting, `range` over maps in key order, as Go's
//! `text/template` executes with `missingkey=zero`.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::functions::{call_function, calling, exact_args};
use super::parser::{Branch, Command, Node, Operand, Pipeline, Term};
use super::value::{AlertRecord, Value};
use super::{Located, TemplateData, TemplateQuery};

/// What comes after a node: the next one, or leaving or continuing the innermost `range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Next,
    Break,
    Continue,
}

/// How deeply blocks and `{{template}}` calls may nest, together. Go allows 100,000 template
/// calls; each level here takes stack, so a template calling itself stops far sooner, with
/// Go's message.
const MAX_DEPTH: usize = 300;

pub(super) struct Executor<'q> {
    pub(super) root: Rc<AlertRecord>,
    pub(super) vars: Vec<(String, Value)>,
    pub(super) output: String,
    queries: &'q dyn TemplateQuery,
    defined: &'q BTreeMap<String, Rc<Vec<Node>>>,
    eval_time_ms: i64,
    /// Blocks and templates entered and not yet left.
    depth: usize,
}

impl<'q> Executor<'q> {
    pub(super) fn new(
        data: &TemplateData,
        queries: &'q dyn TemplateQuery,
        defined: &'q BTreeMap<String, Rc<Vec<Node>>>,
    ) -> Self {
        let root = Rc::new(AlertRecord {
            labels: Rc::new(data.labels.clone()),
            external_labels: Rc::new(data.external_labels.clone()),
            external_url: data.external_url.clone(),
            value: data.value,
        });
        let vars = vec![("$".to_owned(), Value::Record(Rc::clone(&root)))];
        Executor {
            root,
            vars,
            output: String::new(),
            queries,
            defined,
            eval_time_ms: data.eval_time_ms,
            depth: 0,
        }
    }

    pub(super) fn root(&self) -> Value {
        Value::Record(Rc::clone(&self.root))
    }

    /// Runs `nodes` until one of them breaks or continues a `range`.
    pub(super) fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, Located> {
        // Every nested block and template call passes here: one bound keeps the stack safe
        // whatever mix of the two a template nests.
        if self.depth >= MAX_DEPTH {
            let line = match nodes.first() {
                Some(Node::Action { line, .. }) | Some(Node::Template { line, .. }) => *line,
                Some(Node::If(b) | Node::With(b) | Node::Range(b)) => b.line,
                _ => 0,
            };
            return Err(at(
                line,
                format!("exceeded maximum template depth ({MAX_DEPTH})"),
            ));
        }
        self.depth += 1;
        let mut flow = Ok(Flow::Next);
        for node in nodes {
            flow = self.walk_node(node, dot);
            if !matches!(flow, Ok(Flow::Next)) {
                break;
            }
        }
        self.depth -= 1;
        flow
    }

    pub(super) fn walk_node(&mut self, node: &Node, dot: &Value) -> Result<Flow, Located> {
        match node {
            Node::Text(text) => {
                self.output.push_str(text);
                Ok(Flow::Next)
            }
            Node::Action { line, pipe } => {
                let value = self.eval_pipeline(dot, pipe).map_err(|e| at(*line, e))?;
                if pipe.declarations.is_empty() {
                    self.output.push_str(&value.to_string());
                }
                Ok(Flow::Next)
            }
            Node::Break => Ok(Flow::Break),
            Node::Continue => Ok(Flow::Continue),
            Node::If(branch) => self.walk_condition(branch, dot, false),
            Node::With(branch) => self.walk_condition(branch, dot, true),
            Node::Range(branch) => self.walk_range(branch, dot),
            Node::Template { line, name, pipe } => self.walk_template(*line, name, pipe, dot),
        }
    }

    /// `{{template "name" pipeline}}`: the named body, with the pipeline's value as dot and
    /// `$`, and variables of its own.
    fn walk_template(
        &mut self,
        line: usize,
        name: &str,
        pipe: &Option<Pipeline>,
        dot: &Value,
    ) -> Result<Flow, Located> {
        let body = self
            .defined
            .get(name)
            .map(Rc::clone)
            .ok_or_else(|| at(line, format!("template {name:?} not defined")))?;
        let value = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe).map_err(|e| at(line, e))?,
            None => Value::Nil,
        };
        let outer = std::mem::replace(&mut self.vars, vec![("$".to_owned(), value.clone())]);
        let result = self.walk(&body, &value);
        self.vars = outer;
        // The parser keeps break and continue inside a definition's own ranges.
        result.map(|_| Flow::Next)
    }

    /// Runs `if` (dot unchanged) or `with` (dot becomes the pipeline's value).
    pub(super) fn walk_condition(
        &mut self,
        branch: &Branch,
        dot: &Value,
        rebind: bool,
    ) -> Result<Flow, Located> {
        let mark = self.vars.len();
        let value = self
            .eval_pipeline(dot, &branch.pipe)
            .map_err(|e| at(branch.line, e))?;
        let result = match (value.is_true(), rebind) {
            (true, true) => self.walk(&branch.body, &value),
            (true, false) => self.walk(&branch.body, dot),
            (false, _) => self.walk(&branch.otherwise, dot),
        };
        self.vars.truncate(mark);
        result
    }

    pub(super) fn walk_range(&mut self, branch: &Branch, dot: &Value) -> Result<Flow, Located> {
        let mark = self.vars.len();
        let collection = self
            .eval_pipeline(dot, &branch.pipe)
            .map_err(|e| at(branch.line, e))?;
        let entries = range_entries(&collection).map_err(|e| at(branch.line, e))?;
        if entries.is_empty() {
            let result = self.walk(&branch.otherwise, dot);
            self.vars.truncate(mark);
            return result;
        }
        for (key, element) in entries {
            self.bind_range_variables(&branch.pipe, key, element.clone())
                .map_err(|e| at(branch.line, e))?;
            let iteration_mark = self.vars.len();
            let flow = self.walk(&branch.body, &element)?;
            self.vars.truncate(iteration_mark);
            if flow == Flow::Break {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Next)
    }

    /// Sets `range $v :=` to the element, or `range $k, $v :=` to key and element.
    pub(super) fn bind_range_variables(
        &mut self,
        pipe: &Pipeline,
        key: Value,
        element: Value,
    ) -> Result<(), String> {
        let values = match pipe.declarations.len() {
            0 => return Ok(()),
            1 => vec![element],
            _ => vec![key, element],
        };
        if pipe.assigns {
            for (name, value) in pipe.declarations.iter().zip(values) {
                self.set_var(name, value)?;
            }
            return Ok(());
        }
        let first = self.vars.len().saturating_sub(values.len());
        for (slot, value) in self.vars[first..].iter_mut().zip(values) {
            slot.1 = value;
        }
        Ok(())
    }

    pub(super) fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipeline) -> Result<Value, String> {
        let mut piped = None;
        for command in &pipe.commands {
            piped = Some(self.eval_command(dot, command, piped)?);
        }
        let value = piped.ok_or("missing value for command")?;
        for name in &pipe.declarations {
            if pipe.assigns {
                self.set_var(name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    pub(super) fn set_var(&mut self, name: &str, value: Value) -> Result<(), String> {
        let slot = self
            .vars
            .iter_mut()
            .rev()
            .find(|(existing, _)| existing == name)
            .ok_or_else(|| format!("undefined variable: {name}"))?;
        slot.1 = value;
        Ok(())
    }

    pub(super) fn lookup(&self, name: &str) -> Result<Value, String> {
        self.vars
            .iter()
            .rev()
            .find(|(existing, _)| existing == name)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| format!("undefined variable: {name}"))
    }

    pub(super) fn eval_command(
        &mut self,
        dot: &Value,
        command: &Command,
        piped: Option<Value>,
    ) -> Result<Value, String> {
        let (first, arguments) = command.operands.split_first().ok_or("empty command")?;
        if let (Term::Function(name), true) = (&first.term, first.fields.is_empty()) {
            return self.call(dot, name, arguments, piped);
        }
        if !arguments.is_empty() || piped.is_some() {
            // A method taking arguments, as `(toTime $value).Format "2006"`.
            if let Some((method, receiver_fields)) = first.fields.split_last() {
                let receiver = self.eval_operand_fields(dot, first, receiver_fields.len())?;
                if receiver.has_method_with_arguments(method) {
                    let mut values = arguments
                        .iter()
                        .map(|operand| self.eval_operand(dot, operand))
                        .collect::<Result<Vec<_>, _>>()?;
                    values.extend(piped);
                    return receiver.call_method(method, values);
                }
            }
            return Err(format!("can't give argument to non-function {first}"));
        }
        self.eval_operand(dot, first)
    }

    pub(super) fn eval_operand(&mut self, dot: &Value, operand: &Operand) -> Result<Value, String> {
        self.eval_operand_fields(dot, operand, operand.fields.len())
    }

    /// The operand with only its first `count` fields applied.
    fn eval_operand_fields(
        &mut self,
        dot: &Value,
        operand: &Operand,
        count: usize,
    ) -> Result<Value, String> {
        let mut value = match &operand.term {
            Term::Dot => dot.clone(),
            Term::Variable(name) => self.lookup(name)?,
            Term::Function(name) => self.call(dot, name, &[], None)?,
            Term::Str(text) => Value::Str(text.clone()),
            Term::Int(value) => Value::Int(*value),
            Term::Float(value) => Value::Float(*value),
            Term::Bool(value) => Value::Bool(*value),
            Term::Nested(pipe) => self.eval_pipeline(dot, pipe)?,
        };
        for field in operand.fields.iter().take(count) {
            value = value.field(field)?;
        }
        Ok(value)
    }

    pub(super) fn call(
        &mut self,
        dot: &Value,
        name: &str,
        arguments: &[Operand],
        piped: Option<Value>,
    ) -> Result<Value, String> {
        if matches!(name, "and" | "or") {
            return self.call_logical(dot, name == "and", arguments, piped);
        }
        let mut values = arguments
            .iter()
            .map(|operand| self.eval_operand(dot, operand))
            .collect::<Result<Vec<_>, _>>()?;
        values.extend(piped);
        match name {
            "query" => {
                let [expr] = exact_args(name, values)?;
                let samples = self
                    .queries
                    .query(&expr.into_string()?)
                    .map_err(calling(name))?;
                Ok(Value::Samples(Rc::new(
                    samples.into_iter().map(Rc::new).collect(),
                )))
            }
            "now" => {
                let [] = exact_args(name, values)?;
                Ok(Value::Float(self.eval_time_ms as f64 / 1000.0))
            }
            "externalURL" => {
                let [] = exact_args(name, values)?;
                Ok(Value::Str(self.root.external_url.clone()))
            }
            "pathPrefix" => {
                let [] = exact_args(name, values)?;
                Ok(Value::Str(url_path(&self.root.external_url).to_owned()))
            }
            _ => call_function(name, values),
        }
    }

    /// `and` and `or` stop at the first argument that decides the result, and return it.
    pub(super) fn call_logical(
        &mut self,
        dot: &Value,
        is_and: bool,
        arguments: &[Operand],
        piped: Option<Value>,
    ) -> Result<Value, String> {
        let name = if is_and { "and" } else { "or" };
        let count = arguments.len() + usize::from(piped.is_some());
        if count == 0 {
            return Err(format!(
                "wrong number of args for {name}: want at least 1 got 0"
            ));
        }
        let mut last = None;
        for operand in arguments {
            let value = self.eval_operand(dot, operand)?;
            if value.is_true() != is_and {
                return Ok(value);
            }
            last = Some(value);
        }
        piped
            .or(last)
            .ok_or_else(|| format!("missing argument for {name}"))
    }
}

pub(super) fn at(line: usize, message: String) -> Located {
    Located { line, message }
}

/// The path of a URL as Go's `url.URL.Path` has it (`http://host:9090/prometheus?x` is
/// `/prometheus`; no path is empty).
fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_and_more = after_scheme
        .find('/')
        .map_or("", |start| &after_scheme[start..]);
    path_and_more.split(['?', '#']).next().unwrap_or_default()
}

/// What `range` visits: a map's entries in key order, a slice's elements with their index.
pub(super) fn range_entries(collection: &Value) -> Result<Vec<(Value, Value)>, String> {
    match collection {
        Value::Map(map) => Ok(map
            .iter()
            .map(|(key, value)| (Value::Str(key.clone()), Value::Str(value.clone())))
            .collect()),
        Value::Args(args) => Ok(args
            .iter()
            .map(|(key, value)| (Value::Str(key.clone()), value.clone()))
            .collect()),
        Value::Samples(samples) => Ok(samples
            .iter()
            .enumerate()
            .map(|(position, sample)| {
                let position = i64::try_from(position).unwrap_or(i64::MAX);
                (Value::Int(position), Value::Sample(Rc::clone(sample)))
            })
            .collect()),
        other => Err(format!("range can't iterate over {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::expand;
    use super::super::testing::*;

    // Go text/template docs, "Actions": if / else if / else.
    #[test]
    fn if_else_if_else() {
        let text = "{{ if eq $labels.severity \"warn\" }}W{{ else if eq $labels.severity \"page\" }}P{{ else }}N{{ end }}";
        assert_eq!(run(text), "P");
        assert_eq!(run("{{ if \"\" }}yes{{ else }}no{{ end }}"), "no");
        assert_eq!(run("{{ if $labels }}labels{{ end }}"), "labels");
    }

    // Go text/template docs, "Actions": range over a map visits keys in sorted order.
    #[test]
    fn range_over_map_sorted() {
        let text = "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}";
        assert_eq!(run(text), "instance=node-1:9100;job=ipfs;severity=page;");
        assert_eq!(
            run("{{ range .Labels }}[{{ . }}]{{ end }}"),
            "[node-1:9100][ipfs][page]"
        );
        assert_eq!(
            run("{{ range $v := .ExternalLabels }}{{ $v }}{{ end }}"),
            "eu-1"
        );
    }

    // Go text/template docs: range's else runs for an empty map; ranging a number fails.
    #[test]
    fn range_else_and_errors() {
        let mut empty = data();
        empty.external_labels.clear();
        let text = "{{ range .ExternalLabels }}x{{ else }}none{{ end }}";
        assert_eq!(expand("t", text, &empty, &StubQueries), "none");
        assert!(failure("{{ range $value }}{{ end }}").contains("range can't iterate over 95"));
    }

    // Go text/template docs, "Actions": with sets dot, else runs when empty.
    #[test]
    fn with_sets_dot() {
        assert_eq!(
            run("{{ with $labels.job }}job={{ . }}{{ end }}"),
            "job=ipfs"
        );
        assert_eq!(
            run("{{ with $labels.nope }}x{{ else }}empty{{ end }}"),
            "empty"
        );
    }

    // Go text/template docs, "Functions": not, and, or return an argument, short-circuit.
    #[test]
    fn not_and_or() {
        assert_eq!(run("{{ not true }} {{ not \"\" }}"), "false true");
        assert_eq!(
            run("{{ and 1 \"\" 2 }}|{{ and 1 2 }}|{{ or \"\" 0 \"x\" }}|{{ or \"\" 0 }}"),
            "|2|x|0"
        );
        // The failing call after a false argument is never evaluated.
        assert_eq!(run("{{ and false (len $value) }}"), "false");
    }

    // Go text/template exec.go: field access on a non-map, arguments to a non-function.
    #[test]
    fn execution_errors_name_the_template() {
        let output = failure("line\n{{ $labels.job.x }}");
        assert_eq!(output, "<error expanding template: error executing template test: template: test:2: can't evaluate field x in type string>");
        assert!(failure("{{ .Foo }}").contains("can't evaluate field Foo in type struct"));
        assert!(failure("{{ $value 1 }}").contains("can't give argument to non-function $value"));
    }

    // Go text/template docs, "Nested template definitions" and Prometheus template_test.go
    // "args": define, template with and without a pipeline, block, fresh variables.
    #[test]
    fn define_template_and_block() {
        assert_eq!(
            run("{{define \"x\"}}{{.arg0}} {{.arg1}}{{end}}{{template \"x\" (args 1 \"2\")}}"),
            "1 2"
        );
        assert_eq!(
            run("{{ define \"sev\" }}[{{ . }}]{{ end }}{{ template \"sev\" $labels.severity }}"),
            "[page]"
        );
        assert_eq!(
            run("{{ define \"n\" }}none{{ end }}{{ template \"n\" }}"),
            "none"
        );
        assert_eq!(
            run("{{ block \"b\" $labels.job }}<{{ . }}>{{ end }}/{{ template \"b\" \"x\" }}"),
            "<ipfs>/<x>"
        );
        assert_eq!(
            run("{{ define \"d\" }}{{ $ }}{{ end }}{{ template \"d\" 7 }}"),
            "7"
        );
        let undefined = failure("{{ define \"v\" }}{{ $labels }}{{ end }}");
        assert!(
            undefined.contains("undefined variable \"$labels\""),
            "{undefined}"
        );
        let missing = failure("{{ template \"nope\" }}");
        assert!(
            missing.contains("template \"nope\" not defined"),
            "{missing}"
        );
        let twice = failure("{{ define \"a\" }}1{{ end }}{{ define \"a\" }}2{{ end }}");
        assert!(
            twice.contains("multiple definition of template \"a\""),
            "{twice}"
        );
        let deep = failure("{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}");
        assert!(deep.contains("exceeded maximum template depth"), "{deep}");
    }

    // Go text/template docs (Go 1.18+, so Prometheus 2.42): break and continue in range;
    // promtool 2.42 prints "2;" for the first case.
    #[test]
    fn break_and_continue() {
        assert_eq!(
            run("{{ range $k, $v := args 1 2 3 4 }}{{ if eq $k \"arg2\" }}{{ break }}{{ end }}{{ if eq $k \"arg0\" }}{{ continue }}{{ end }}{{ $v }};{{ end }}"),
            "2;"
        );
        assert_eq!(
            run("{{ range $labels }}{{ range $externalLabels }}{{ break }}{{ end }}{{ . }},{{ end }}"),
            "node-1:9100,ipfs,page,"
        );
        assert!(failure("{{ break }}").contains("{{break}} outside {{range}}"));
        assert!(
            failure("{{ range $labels }}{{ else }}{{ continue }}{{ end }}")
                .contains("{{continue}} outside {{range}}")
        );
        assert!(
            failure("{{ range $labels }}{{ define \"x\" }}{{ end }}{{ end }}")
                .contains("unexpected <define>")
        );
        assert!(
            failure("{{ range $labels }}{{ template \"b\" }}{{ end }}{{ define \"b\" }}{{ break }}{{ end }}")
                .contains("{{break}} outside {{range}}")
        );
    }

    // A template recursing through deeply nested blocks stops with an error, well within a
    // thread's stack (tests run on 2 MiB threads, as the rule engine's blocking threads do).
    #[test]
    fn deep_recursion_through_nested_blocks_is_an_error() {
        let nested = format!(
            "{{{{ define \"r\" }}}}{}{{{{ template \"r\" . }}}}{}{{{{ end }}}}{{{{ template \"r\" 1 }}}}",
            "{{ if . }}".repeat(95),
            "{{ end }}".repeat(95)
        );
        let output = failure(&nested);
        assert!(
            output.contains("exceeded maximum template depth (300)"),
            "{output}"
        );
    }
}
