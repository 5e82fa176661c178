//! The function map: Go's `text/template` builtins and Prometheus's template functions
//! (`template/template.go`), dispatched by name with Go's argument-count and type errors.

use super::humanize::humanize_value;
use super::printf::sprintf;
use super::value::Value;
use super::QUERIES_UNSUPPORTED;

pub(super) fn call_function(name: &str, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "print" => Ok(Value::Str(sprint(&args))),
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
        _ => Err(format!("error calling {name}: {QUERIES_UNSUPPORTED}")),
    }
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
}
