//! The function map: Go's `text/template` builtins and Prometheus's template functions
//! (`template/template.go`), dispatched by name with Go's argument-count and type errors.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::humanize::{humanize_value, parse_duration_seconds, to_duration, to_float, to_time};
use super::printf::sprintf;
use super::value::Value;
use super::QuerySample;

pub(super) fn call_function(name: &str, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "print" => Ok(Value::Str(sprint(&args))),
        "println" => Ok(Value::Str(sprintln(&args))),
        "html" => Ok(Value::Str(html_escape(&escaper_text(&args)))),
        "js" => Ok(Value::Str(js_escape(&escaper_text(&args)))),
        "urlquery" => Ok(Value::Str(query_escape(&escaper_text(&args)))),
        "slice" => slice(args).map_err(calling(name)),
        "call" => {
            let callee = args.first().map_or("nil", Value::type_name);
            Err(format!("error calling call: non-function of type {callee}"))
        }
        "printf" => {
            let (format, rest) = args
                .split_first()
                .ok_or("wrong number of args for printf: want at least 1 got 0")?;
            let format = format.clone().into_string()?;
            Ok(Value::Str(sprintf(&format, rest)))
        }
        "len" => {
            let [value] = exact_args(name, args)?;
            length(&value).map_err(calling(name))
        }
        "index" => index(args).map_err(calling(name)),
        "not" => {
            let [value] = exact_args(name, args)?;
            Ok(Value::Bool(!value.is_true()))
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => compare(name, args),
        _ => call_prometheus_function(name, args),
    }
}

pub(super) fn call_prometheus_function(name: &str, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
        | "humanizeTimestamp" => {
            let [value] = exact_args(name, args)?;
            humanize_value(name, value)
                .map(Value::Str)
                .map_err(calling(name))
        }
        "title" | "toUpper" | "toLower" | "stripPort" | "stripDomain" => {
            let [value] = exact_args(name, args)?;
            Ok(Value::Str(transform_text(name, &value.into_string()?)))
        }
        "reReplaceAll" => {
            let [pattern, replacement, text] = exact_args(name, args)?;
            let (pattern, replacement) = (pattern.into_string()?, replacement.into_string()?);
            let regex = compile_regex(&pattern).map_err(calling(name))?;
            let text = text.into_string()?;
            Ok(Value::Str(
                regex.replace_all(&text, replacement.as_str()).into_owned(),
            ))
        }
        "match" => {
            let [pattern, text] = exact_args(name, args)?;
            let regex = compile_regex(&pattern.into_string()?).map_err(calling(name))?;
            Ok(Value::Bool(regex.is_match(&text.into_string()?)))
        }
        _ => call_query_function(name, args),
    }
}

/// The rest of Prometheus's map: query results, links, `args`, durations and times.
pub(super) fn call_query_function(name: &str, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "first" => {
            let [samples] = exact_args(name, args)?;
            into_samples(samples)?
                .first()
                .map(|sample| Value::Sample(Rc::clone(sample)))
                .ok_or_else(|| {
                    "error calling first: first() called on vector with no elements".to_owned()
                })
        }
        "label" => {
            let [label, sample] = exact_args(name, args)?;
            let (label, sample) = (label.into_string()?, into_sample(sample)?);
            Ok(Value::Str(
                sample.labels.get(&label).cloned().unwrap_or_default(),
            ))
        }
        "value" => {
            let [sample] = exact_args(name, args)?;
            Ok(Value::Float(into_sample(sample)?.value))
        }
        "strvalue" => {
            let [sample] = exact_args(name, args)?;
            let sample = into_sample(sample)?;
            Ok(Value::Str(
                sample.labels.get("__value__").cloned().unwrap_or_default(),
            ))
        }
        "sortByLabel" => {
            let [label, samples] = exact_args(name, args)?;
            let label = label.into_string()?;
            let mut sorted = into_samples(samples)?.as_ref().clone();
            // A stable sort, as Prometheus's sort.Stable: ties keep the query's order.
            sorted.sort_by(|a, b| label_of(a, &label).cmp(label_of(b, &label)));
            Ok(Value::Samples(Rc::new(sorted)))
        }
        "args" => Ok(Value::Args(Rc::new(
            args.into_iter()
                .enumerate()
                .map(|(position, value)| (format!("arg{position}"), value))
                .collect::<BTreeMap<_, _>>(),
        ))),
        "safeHtml" => {
            let [text] = exact_args(name, args)?;
            Ok(Value::Str(text.into_string()?))
        }
        "graphLink" | "tableLink" => {
            let [expr] = exact_args(name, args)?;
            let tab = if name == "graphLink" { 0 } else { 1 };
            Ok(Value::Str(format!(
                "/graph?g0.expr={}&g0.tab={tab}",
                query_escape(&expr.into_string()?)
            )))
        }
        "urlQueryEscape" => {
            let [text] = exact_args(name, args)?;
            Ok(Value::Str(query_escape(&text.into_string()?)))
        }
        "parseDuration" => {
            let [text] = exact_args(name, args)?;
            parse_duration_seconds(&text.into_string()?)
                .map(Value::Float)
                .map_err(calling(name))
        }
        "toTime" => {
            let [value] = exact_args(name, args)?;
            to_float(value)
                .and_then(to_time)
                .map(Value::Time)
                .map_err(calling(name))
        }
        "toDuration" => {
            let [value] = exact_args(name, args)?;
            to_float(value)
                .map(|seconds| Value::Duration(to_duration(seconds)))
                .map_err(calling(name))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

fn label_of<'s>(sample: &'s QuerySample, label: &str) -> &'s str {
    sample.labels.get(label).map_or("", String::as_str)
}

/// A query result, or Go's reflection error for anything else.
fn into_samples(value: Value) -> Result<Rc<Vec<Rc<QuerySample>>>, String> {
    match value {
        Value::Samples(samples) => Ok(samples),
        other => Err(format!(
            "wrong type for value; expected template.queryResult; got {}",
            other.type_name()
        )),
    }
}

/// One sample of a query result, or Go's reflection error for anything else.
fn into_sample(value: Value) -> Result<Rc<QuerySample>, String> {
    match value {
        Value::Sample(sample) => Ok(sample),
        other => Err(format!(
            "wrong type for value; expected *template.sample; got {}",
            other.type_name()
        )),
    }
}

/// Go's `evalArgs` for `html`, `js` and `urlquery`: one string as it is, anything else as
/// `fmt.Sprint` prints it.
fn escaper_text(args: &[Value]) -> String {
    match args {
        [Value::Str(text)] => text.clone(),
        _ => sprint(args),
    }
}

/// Go's `template.HTMLEscapeString`.
///
/// Not the `html` crate's escaping: Go writes `&#34;` and `&#39;` and replaces NUL.
pub(super) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            _ => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(super) fn js_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if c < ' ' || (!c.is_ascii() && c.is_control()) => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`: unreserved bytes as they are, space as `+`, the rest `%XX`.
pub(super) fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Go's `slice`: `slice x 1 2` is `x[1:2]`, on strings (bytes) and query results.
fn slice(args: Vec<Value>) -> Result<Value, String> {
    let mut args = args.into_iter();
    let item = args
        .next()
        .ok_or("wrong number of args for slice: want at least 1 got 0")?;
    let indexes = args
        .map(|index| match index {
            Value::Int(position) => {
                usize::try_from(position).map_err(|_| format!("index out of range: {position}"))
            }
            other => Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let length = match &item {
        Value::Str(text) => text.len(),
        Value::Samples(samples) => samples.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    if indexes.len() > 3 || (indexes.len() == 3 && matches!(item, Value::Str(_))) {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let low = indexes.first().copied().unwrap_or(0);
    let high = indexes.get(1).copied().unwrap_or(length);
    if let Some(bad) = indexes.iter().find(|position| **position > length) {
        return Err(format!("index out of range: {bad}"));
    }
    if low > high {
        return Err(format!("invalid slice index: {low} > {high}"));
    }
    match item {
        Value::Str(text) => Ok(Value::Str(
            String::from_utf8_lossy(&text.as_bytes()[low..high]).into_owned(),
        )),
        Value::Samples(samples) => Ok(Value::Samples(Rc::new(samples[low..high].to_vec()))),
        other => Err(format!("can't slice item of type {}", other.type_name())),
    }
}

/// Go's `fmt.Sprintln`: spaces between every operand, and a newline.
pub(super) fn sprintln(args: &[Value]) -> String {
    let mut output = args
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    output.push('\n');
    output
}

pub(super) fn calling(name: &str) -> impl Fn(String) -> String + '_ {
    move |error| format!("error calling {name}: {error}")
}

pub(super) fn exact_args<const N: usize>(
    name: &str,
    args: Vec<Value>,
) -> Result<[Value; N], String> {
    args.try_into().map_err(|args: Vec<Value>| {
        format!(
            "wrong number of args for {name}: want {N} got {}",
            args.len()
        )
    })
}

pub(super) fn length(value: &Value) -> Result<Value, String> {
    let length = match value {
        Value::Str(text) => text.len(),
        Value::Map(map) => map.len(),
        Value::Args(args) => args.len(),
        Value::Samples(samples) => samples.len(),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    i64::try_from(length)
        .map(Value::Int)
        .map_err(|_| "length overflows int".to_owned())
}

/// Go's `index`: map lookups (a missing key gives the zero value) and string bytes.
pub(super) fn index(args: Vec<Value>) -> Result<Value, String> {
    let mut args = args.into_iter();
    let mut item = args
        .next()
        .ok_or("wrong number of args for index: want at least 1 got 0")?;
    for key in args {
        item = match (&item, key) {
            (Value::Map(map), Value::Str(key)) => {
                Value::Str(map.get(&key).cloned().unwrap_or_default())
            }
            (Value::Map(_), key) => {
                return Err(format!(
                    "value has type {}; should be string",
                    key.type_name()
                ))
            }
            (Value::Str(text), Value::Int(position)) => usize::try_from(position)
                .ok()
                .and_then(|position| text.as_bytes().get(position))
                .map(|byte| Value::Int(i64::from(*byte)))
                .ok_or_else(|| format!("index out of range: {position}"))?,
            (Value::Args(args), Value::Str(key)) => args.get(&key).cloned().unwrap_or(Value::Nil),
            (Value::Samples(samples), Value::Int(position)) => usize::try_from(position)
                .ok()
                .and_then(|position| samples.get(position))
                .map(|sample| Value::Sample(Rc::clone(sample)))
                .ok_or_else(|| format!("index out of range: {position}"))?,
            (other, _) => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

pub(super) fn sprint(args: &[Value]) -> String {
    let mut output = String::new();
    for (position, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        let previous_is_string = position > 0 && matches!(args[position - 1], Value::Str(_));
        if position > 0 && !is_string && !previous_is_string {
            output.push(' ');
        }
        output.push_str(&arg.to_string());
    }
    output
}

/// The comparison functions, with Go's rules: operands must have the same basic kind.
pub(super) fn compare(name: &str, args: Vec<Value>) -> Result<Value, String> {
    if name == "eq" {
        let (first, others) = args
            .split_first()
            .ok_or("wrong number of args for eq: want at least 1 got 0")?;
        if others.is_empty() {
            return Err("error calling eq: missing argument for comparison".to_owned());
        }
        for other in others {
            if equal(first, other).map_err(calling(name))? {
                return Ok(Value::Bool(true));
            }
        }
        return Ok(Value::Bool(false));
    }
    let [left, right] = exact_args(name, args)?;
    let truth = match name {
        "ne" => equal(&left, &right).map(|equal| !equal),
        "lt" => less(&left, &right),
        "le" => less_or_equal(&left, &right),
        "gt" => less_or_equal(&left, &right).map(|le| !le),
        _ => less(&left, &right).map(|lt| !lt),
    };
    truth.map(Value::Bool).map_err(calling(name))
}

pub(super) const INCOMPATIBLE_TYPES: &str = "incompatible types for comparison";

pub(super) fn equal(left: &Value, right: &Value) -> Result<bool, String> {
    match (left, right) {
        (Value::Bool(a), Value::Bool(b)) => Ok(a == b),
        (Value::Int(a), Value::Int(b)) => Ok(a == b),
        (Value::Float(a), Value::Float(b)) => Ok(a == b),
        (Value::Str(a), Value::Str(b)) => Ok(a == b),
        (Value::Map(_), Value::Map(_))
        | (Value::Record(_), Value::Record(_))
        | (Value::Map(_), Value::Record(_))
        | (Value::Record(_), Value::Map(_)) => {
            Err(format!("non-comparable type {}", left.type_name()))
        }
        _ => Err(INCOMPATIBLE_TYPES.to_owned()),
    }
}

pub(super) fn less(left: &Value, right: &Value) -> Result<bool, String> {
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => Ok(a < b),
        (Value::Float(a), Value::Float(b)) => Ok(a < b),
        (Value::Str(a), Value::Str(b)) => Ok(a < b),
        (Value::Map(_) | Value::Record(_), _) | (_, Value::Map(_) | Value::Record(_)) => {
            Err("invalid type for comparison".to_owned())
        }
        (Value::Bool(_), Value::Bool(_)) => Err("invalid type for comparison".to_owned()),
        _ => Err(INCOMPATIBLE_TYPES.to_owned()),
    }
}

pub(super) fn less_or_equal(left: &Value, right: &Value) -> Result<bool, String> {
    Ok(less(left, right)? || equal(left, right)?)
}

pub(super) fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern)
        .map_err(|error| format!("error parsing regexp: {error}: `{pattern}`"))
}

pub(super) fn transform_text(name: &str, text: &str) -> String {
    match name {
        "title" => title(text),
        "toUpper" => map_chars(text, char::to_uppercase),
        "toLower" => map_chars(text, char::to_lowercase),
        "stripPort" => strip_port(text),
        _ => strip_domain(text),
    }
}

/// Applies a case mapping per character.
pub(super) fn map_chars<I: Iterator<Item = char>>(
    text: &str,
    mapping: impl Fn(char) -> I,
) -> String {
    text.chars().map(|c| simple_case(c, &mapping)).collect()
}

/// Go's simple case mapping: a character whose mapping is not a single character (`ß` to
/// upper case, for example) stays as it is.
pub(super) fn simple_case<I: Iterator<Item = char>>(c: char, mapping: impl Fn(char) -> I) -> char {
    let mut mapped = mapping(c);
    match (mapped.next(), mapped.next()) {
        (Some(single), None) => single,
        _ => c,
    }
}

/// Go's deprecated `strings.Title`: upper-cases the first letter of every word.
pub(super) fn title(text: &str) -> String {
    let mut previous_is_separator = true;
    text.chars()
        .map(|c| {
            let mapped = if previous_is_separator {
                simple_case(c, char::to_uppercase)
            } else {
                c
            };
            previous_is_separator = is_word_separator(c);
            mapped
        })
        .collect()
}

pub(super) fn is_word_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

/// Go's `net.SplitHostPort`, without its error details.
pub(super) fn split_host_port(address: &str) -> Option<(&str, &str)> {
    let colon = address.rfind(':')?;
    let (host, search_from) = if let Some(bracketed) = address.strip_prefix('[') {
        let end = bracketed.find(']')? + 1;
        if end + 1 != colon {
            return None;
        }
        (&address[1..end], (1, end + 1))
    } else {
        let host = &address[..colon];
        if host.contains(':') {
            return None;
        }
        (host, (0, 0))
    };
    if address[search_from.0..].contains('[') || address[search_from.1..].contains(']') {
        return None;
    }
    Some((host, &address[colon + 1..]))
}

pub(super) fn strip_port(address: &str) -> String {
    split_host_port(address)
        .map_or(address, |(host, _)| host)
        .to_owned()
}

pub(super) fn strip_domain(address: &str) -> String {
    let (host, port) = split_host_port(address).unwrap_or((address, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return address.to_owned();
    }
    let short = host.split('.').next().unwrap_or(host);
    match (port.is_empty(), short.contains(':')) {
        (true, _) => short.to_owned(),
        (false, true) => format!("[{short}]:{port}"),
        (false, false) => format!("{short}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::expand;
    use super::super::testing::*;

    // Go text/template docs, "Functions": len and index.
    #[test]
    fn len_and_index() {
        assert_eq!(run("{{ len $labels }} {{ len \"abc\" }}"), "3 3");
        assert_eq!(
            run("{{ index $labels \"job\" }} {{ index \"abc\" 1 }}"),
            "ipfs 98"
        );
        assert!(failure("{{ len $value }}").contains("error calling len: len of type float64"));
    }

    // Go text/template docs, "Functions": eq ne lt le gt ge on like-typed basics.
    #[test]
    fn comparisons() {
        assert_eq!(run("{{ eq 1 1 }} {{ ne \"a\" \"b\" }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt 1.5 2.5 }} {{ ge \"b\" \"a\" }}"), "true true true true false true");
        assert_eq!(run("{{ eq $labels.job \"x\" \"ipfs\" }}"), "true");
        assert_eq!(run("{{ gt $value 90.0 }}"), "true");
    }

    // Go text/template funcs.go: an int constant and a float64 are incompatible types.
    #[test]
    fn comparison_of_mixed_kinds_fails() {
        let output = failure("{{ gt $value 90 }}");
        assert!(
            output.contains("error calling gt: incompatible types for comparison"),
            "{output}"
        );
        assert!(failure("{{ eq $labels $labels }}").contains("non-comparable type"));
    }

    // Prometheus template_test.go "Title", "toUpper", "toLower".
    #[test]
    fn case_functions() {
        assert_eq!(run("{{ \"aa bb CC\" | title }}"), "Aa Bb CC");
        assert_eq!(run("{{ \"aa bb CC\" | toUpper }}"), "AA BB CC");
        assert_eq!(run("{{ \"aA bB CC\" | toLower }}"), "aa bb cc");
        assert!(failure("{{ $value | toUpper }}")
            .contains("wrong type for value; expected string; got float64"));
    }

    // Prometheus template_test.go "Regex replacement" and "Match".
    #[test]
    fn regex_functions() {
        assert_eq!(run("{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}"), "xa");
        assert_eq!(
            run("{{ reReplaceAll \":[0-9]+$\" \"\" $labels.instance }}"),
            "node-1"
        );
        assert_eq!(
            run("{{ match \"a+\" \"aa\" }} {{ match \"a+\" \"b\" }}"),
            "true false"
        );
        let output = failure("{{ match \"(\" \"a\" }}");
        assert!(
            output.contains("error calling match: error parsing regexp") && !output.contains('\n'),
            "{output}"
        );
    }

    // Prometheus template_test.go stripPort cases.
    #[test]
    fn strip_port_cases() {
        let cases = [
            ("foo.example.com", "foo.example.com"),
            ("foo.example.com:12345", "foo.example.com"),
            ("192.0.2.1:12345", "192.0.2.1"),
            ("2001:0DB8::1", "2001:0DB8::1"),
            ("[2001:0DB8::1]:12345", "2001:0DB8::1"),
            ("[2001:0DB8::1]::12345", "[2001:0DB8::1]::12345"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                run(&format!("{{{{ {input:?} | stripPort }}}}")),
                expected,
                "{input}"
            );
        }
    }

    // Prometheus template_test.go stripDomain cases.
    #[test]
    fn strip_domain_cases() {
        let cases = [
            ("foo.example.com", "foo"),
            ("foo.example.com:12345", "foo:12345"),
            ("192.0.2.1", "192.0.2.1"),
            ("192.0.2.1:12345", "192.0.2.1:12345"),
            ("2001:0DB8::1", "2001:0DB8::1"),
            ("[2001:0DB8::1]:12345", "[2001:0DB8::1]:12345"),
            ("[2001:0DB8::1]::12345", "[2001:0DB8::1]::12345"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                run(&format!("{{{{ {input:?} | stripDomain }}}}")),
                expected,
                "{input}"
            );
        }
    }

    // Prometheus template_test.go "safeHtml", "graphLink", "tableLink", "parseDuration".
    #[test]
    fn prometheus_links_html_and_durations() {
        assert_eq!(run("{{ \"<b>\" | safeHtml }}"), "<b>");
        assert_eq!(run("{{ graphLink \"up\" }}"), "/graph?g0.expr=up&g0.tab=0");
        assert_eq!(
            run("{{ tableLink \"rate(x[5m]) > 0\" }}"),
            "/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+0&g0.tab=1"
        );
        assert_eq!(
            run("{{ printf \"%0.2f\" (parseDuration \"1h2m10ms\") }}"),
            "3720.01"
        );
        assert!(failure("{{ parseDuration \"1m1h\" }}")
            .contains("error calling parseDuration: not a valid duration string: \"1m1h\""));
        assert_eq!(run("{{ urlQueryEscape \"a b&c\" }}"), "a+b%26c");
    }

    // Prometheus template_test.go "pathPrefix" and "externalURL".
    #[test]
    fn path_prefix_and_external_url() {
        let mut data = data();
        data.external_url = "http://testhost:9090/path/prefix".to_owned();
        let run = |text: &str| expand("t", text, &data, &StubQueries);
        assert_eq!(run("{{ pathPrefix }}"), "/path/prefix");
        assert_eq!(run("{{ externalURL }}"), "http://testhost:9090/path/prefix");
        data.external_url = "http://sentinel:9090".to_owned();
        assert_eq!(expand("t", "[{{ pathPrefix }}]", &data, &StubQueries), "[]");
    }

    // Prometheus template.go "args": arg0, arg1, ... in a map; a missing key is nil.
    #[test]
    fn args_builds_a_map() {
        assert_eq!(
            run("{{ with args 1 \"2\" }}{{ .arg0 }} {{ .arg1 }}{{ end }}"),
            "1 2"
        );
        assert_eq!(run("{{ args 1 \"x\" }}"), "map[arg0:1 arg1:x]");
        assert_eq!(run("{{ (args 1).arg5 }}"), "<no value>");
        assert_eq!(run("{{ len (args 1 2 3) }}"), "3");
        assert_eq!(run("{{ index (args \"a\") \"arg0\" }}"), "a");
    }

    // Prometheus template.go "toTime", and "toDuration" from 3.6: Go's time printing.
    #[test]
    fn times_and_durations() {
        assert_eq!(
            run("{{ 1435065584.128 | toTime }}"),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            run("{{ (\"1435065584.128\" | toTime).Unix }}"),
            "1435065584"
        );
        assert!(
            failure("{{ toTime \"NaN\" }}").contains("error calling toTime: value is NaN or Inf")
        );
        assert_eq!(run("{{ 3723.5 | toDuration }}"), "1h2m3.5s");
        // Prometheus 3.6's now: the evaluation time in seconds.
        assert_eq!(run("{{ now }}"), "1.435065584128e+09");
        assert_eq!(
            run("{{ (now | toTime).Format \"2006-01-02\" }}"),
            "2015-06-23"
        );
        assert_eq!(run("{{ (90 | toDuration).Minutes }}"), "1.5");
        assert_eq!(run("{{ 0.0015 | toDuration }}"), "1.5ms");
    }

    // Go text/template docs, "Functions": html, js, urlquery, println, slice, call.
    #[test]
    fn go_escapers_and_slices() {
        assert_eq!(
            run("{{ html \"<a href='x'>&\\\"</a>\" }}"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"
        );
        assert_eq!(
            run("{{ js \"it's <b>\\\"x\\\"=1\\n\" }}"),
            "it\\'s \\u003Cb\\u003E\\\"x\\\"\\u003D1\\u000A"
        );
        assert_eq!(run("{{ urlquery \"a b\" \"/c\" }}"), "a+b%2Fc");
        assert_eq!(run("{{ println 1 \"a\" 2 }}"), "1 a 2\n");
        assert_eq!(run("{{ slice \"abcdef\" 1 3 }}"), "bc");
        assert_eq!(run("{{ slice \"abcdef\" 4 }}"), "ef");
        assert_eq!(run("{{ len (slice (query \"up\") 1) }}"), "1");
        assert!(failure("{{ slice \"abc\" 2 1 }}").contains("invalid slice index: 2 > 1"));
        assert!(failure("{{ slice \"abc\" 5 }}").contains("index out of range: 5"));
        assert!(failure("{{ call 1 }}").contains("error calling call: non-function of type int"));
    }

    // Prometheus template.go: label, value, strvalue and sortByLabel want samples.
    #[test]
    fn sample_functions_refuse_other_types() {
        assert!(failure("{{ value 1 }}")
            .contains("wrong type for value; expected *template.sample; got int"));
        assert!(failure("{{ first \"x\" }}")
            .contains("wrong type for value; expected template.queryResult; got string"));
        assert_eq!(
            run("{{ range sortByLabel \"instance\" (query \"up\") }}{{ label \"instance\" . }} {{ end }}"),
            "a:9100 b:9100 "
        );
    }
}
