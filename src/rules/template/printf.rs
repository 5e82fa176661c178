//! Go's `fmt.Sprintf` for the verbs templates use (`%s %d %f %g %e %v %q %x %%`, widths,
//! flags, precision) and Go's error texts for wrong operands.

use super::number::{decimal_digits, exponent_form, format_g_magnitude};
use super::value::Value;

/// A parsed `%` directive: flags, width and precision.
#[derive(Debug, Default)]
pub(super) struct Directive {
    pub(super) minus: bool,
    pub(super) plus: bool,
    pub(super) space: bool,
    pub(super) zero: bool,
    pub(super) width: Option<usize>,
    pub(super) precision: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs templates use.
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let chars: Vec<char> = format.chars().collect();
    let mut output = String::new();
    let mut position = 0;
    let mut next_arg = 0;
    while position < chars.len() {
        let c = chars[position];
        position += 1;
        if c != '%' {
            output.push(c);
            continue;
        }
        let (directive, verb) = parse_directive(&chars, &mut position);
        match (verb, args.get(next_arg)) {
            (None, _) => output.push_str("%!(NOVERB)"),
            (Some('%'), _) => output.push('%'),
            (Some(verb), None) => output.push_str(&format!("%!{verb}(MISSING)")),
            (Some(verb), Some(arg)) => {
                next_arg += 1;
                output.push_str(&format_argument(&directive, verb, arg));
            }
        }
    }
    if let Some(extra) = args.get(next_arg..).filter(|extra| !extra.is_empty()) {
        let listed: Vec<String> = extra
            .iter()
            .map(|arg| format!("{}={arg}", arg.type_name()))
            .collect();
        output.push_str(&format!("%!(EXTRA {})", listed.join(", ")));
    }
    output
}

pub(super) fn parse_directive(chars: &[char], position: &mut usize) -> (Directive, Option<char>) {
    let mut directive = Directive::default();
    while let Some(flag) = chars.get(*position) {
        match flag {
            '-' => directive.minus = true,
            '+' => directive.plus = true,
            ' ' => directive.space = true,
            '0' => directive.zero = true,
            '#' => {}
            _ => break,
        }
        *position += 1;
    }
    directive.width = take_digits(chars, position);
    if chars.get(*position) == Some(&'.') {
        *position += 1;
        directive.precision = Some(take_digits(chars, position).unwrap_or(0));
    }
    let verb = chars.get(*position).copied();
    *position += usize::from(verb.is_some());
    (directive, verb)
}

pub(super) fn take_digits(chars: &[char], position: &mut usize) -> Option<usize> {
    let start = *position;
    while chars.get(*position).is_some_and(char::is_ascii_digit) {
        *position += 1;
    }
    let digits: String = chars[start..*position].iter().collect();
    digits.parse().ok()
}

/// A map as fmt prints it under any verb: `map[k:v ...]`, the verb applied to each part.
fn format_map(
    directive: &Directive,
    verb: char,
    entries: impl Iterator<Item = (Value, Value)>,
) -> String {
    let parts: Vec<String> = entries
        .map(|(key, value)| {
            format!(
                "{}:{}",
                format_argument(directive, verb, &key),
                format_argument(directive, verb, &value)
            )
        })
        .collect();
    format!("map[{}]", parts.join(" "))
}

pub(super) fn format_argument(directive: &Directive, verb: char, arg: &Value) -> String {
    if verb == 'T' {
        return pad(directive, arg.type_name());
    }
    let formatted = match arg {
        Value::Str(text) => format_string(directive, verb, text),
        Value::Int(number) => format_integer(directive, verb, *number),
        Value::Float(number) => format_float_verb(directive, verb, *number),
        Value::Bool(flag) if matches!(verb, 'v' | 't') => Some(pad(directive, &flag.to_string())),
        Value::Time(_) | Value::Duration(_) if matches!(verb, 'v' | 's') => {
            Some(pad(directive, &arg.to_string()))
        }
        // fmt applies the verb to every key and element of a map or struct.
        Value::Map(map) => Some(format_map(
            directive,
            verb,
            map.iter()
                .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone()))),
        )),
        Value::Args(args) => Some(format_map(
            directive,
            verb,
            args.iter().map(|(k, v)| (Value::Str(k.clone()), v.clone())),
        )),
        Value::Record(record) => {
            let fields = [
                Value::Map(std::rc::Rc::clone(&record.labels)),
                Value::Map(std::rc::Rc::clone(&record.external_labels)),
                Value::Str(record.external_url.clone()),
                Value::Float(record.value),
            ];
            let parts: Vec<String> = fields
                .iter()
                .map(|field| format_argument(directive, verb, field))
                .collect();
            Some(format!("{{{}}}", parts.join(" ")))
        }
        Value::Samples(_) if verb == 'v' => Some(pad(directive, &arg.to_string())),
        // fmt prints a pointer to a struct as & and the struct.
        Value::Sample(sample) => {
            let labels = Value::Map(std::rc::Rc::new(sample.labels.clone()));
            Some(format!(
                "&{{{} {}}}",
                format_argument(directive, verb, &labels),
                format_argument(directive, verb, &Value::Float(sample.value))
            ))
        }
        Value::Nil if verb == 'v' => Some(pad(directive, "<nil>")),
        _ => None,
    };
    formatted.unwrap_or_else(|| match arg {
        Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={arg})", arg.type_name()),
    })
}

pub(super) fn format_string(directive: &Directive, verb: char, text: &str) -> Option<String> {
    let shown = match verb {
        's' | 'v' => match directive.precision {
            Some(limit) => text.chars().take(limit).collect(),
            None => text.to_owned(),
        },
        'q' => go_quote(text, '"'),
        'x' => text.bytes().map(|byte| format!("{byte:02x}")).collect(),
        'X' => text.bytes().map(|byte| format!("{byte:02X}")).collect(),
        _ => return None,
    };
    Some(pad(directive, &shown))
}

pub(super) fn format_integer(directive: &Directive, verb: char, number: i64) -> Option<String> {
    let magnitude = number.unsigned_abs();
    let mut digits = match verb {
        'd' | 'v' => magnitude.to_string(),
        'x' => format!("{magnitude:x}"),
        'X' => format!("{magnitude:X}"),
        'o' => format!("{magnitude:o}"),
        'b' => format!("{magnitude:b}"),
        'c' | 'q' => {
            let character = u32::try_from(number)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            let text = if verb == 'c' {
                character.to_string()
            } else {
                go_quote(&character.to_string(), '\'')
            };
            return Some(pad(directive, &text));
        }
        _ => return None,
    };
    if let Some(minimum) = directive.precision {
        digits = format!("{digits:0>minimum$}");
    }
    Some(pad_number(directive, number < 0, &digits))
}

pub(super) fn format_float_verb(directive: &Directive, verb: char, number: f64) -> Option<String> {
    if !matches!(verb, 'v' | 'g' | 'G' | 'e' | 'E' | 'f' | 'F') {
        return None;
    }
    if number.is_nan() {
        let sign = if directive.plus { "+" } else { "" };
        return Some(pad(directive, &format!("{sign}NaN")));
    }
    if number.is_infinite() {
        let sign = if number > 0.0 { "+" } else { "-" };
        return Some(pad(directive, &format!("{sign}Inf")));
    }
    let magnitude = number.abs();
    let digits = match verb {
        'v' | 'g' => format_g_magnitude(magnitude, directive.precision),
        'G' => format_g_magnitude(magnitude, directive.precision).to_uppercase(),
        'e' | 'E' => {
            let decimals = directive.precision.unwrap_or(6);
            let (digits, point) = decimal_digits(magnitude, Some(decimals + 1));
            let decimals = i32::try_from(decimals).unwrap_or(i32::MAX);
            let text = exponent_form(&digits, point, decimals);
            if verb == 'E' {
                text.to_uppercase()
            } else {
                text
            }
        }
        _ => format!("{magnitude:.*}", directive.precision.unwrap_or(6)),
    };
    Some(pad_number(directive, number.is_sign_negative(), &digits))
}

/// Pads to the directive's width with spaces, left or right.
pub(super) fn pad(directive: &Directive, text: &str) -> String {
    let width = directive.width.unwrap_or(0);
    let length = text.chars().count();
    if length >= width {
        return text.to_owned();
    }
    let fill = if directive.zero && !directive.minus {
        '0'
    } else {
        ' '
    };
    let padding: String = std::iter::repeat_n(fill, width - length).collect();
    if directive.minus {
        format!("{text}{padding}")
    } else {
        format!("{padding}{text}")
    }
}

/// Pads a number, putting its sign before any zero padding as Go does.
pub(super) fn pad_number(directive: &Directive, negative: bool, digits: &str) -> String {
    let sign = match (negative, directive.plus, directive.space) {
        (true, _, _) => "-",
        (false, true, _) => "+",
        (false, false, true) => " ",
        _ => "",
    };
    let width = directive.width.unwrap_or(0);
    let length = sign.len() + digits.chars().count();
    if directive.zero && !directive.minus && width > length {
        let zeros = "0".repeat(width - length);
        return format!("{sign}{zeros}{digits}");
    }
    pad(
        &Directive {
            zero: false,
            ..*directive
        },
        &format!("{sign}{digits}"),
    )
}

/// Go's `strconv.Quote` (or `QuoteRune` with `'`).
pub(super) fn go_quote(text: &str, quote: char) -> String {
    let mut quoted = String::from(quote);
    for c in text.chars() {
        match c {
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{b}' => quoted.push_str("\\v"),
            '\\' => quoted.push_str("\\\\"),
            _ if c == quote => {
                quoted.push('\\');
                quoted.push(c);
            }
            _ if c == ' ' || !(c.is_control() || c.is_whitespace()) => quoted.push(c),
            _ if u32::from(c) < 0x80 => quoted.push_str(&format!("\\x{:02x}", u32::from(c))),
            _ if u32::from(c) <= 0xFFFF => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            _ => quoted.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    quoted.push(quote);
    quoted
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    // Go fmt docs: verbs %s %d %f %.Nf %g %v %q %x %%.
    #[test]
    fn printf_verbs() {
        assert_eq!(
            run("{{ printf \"%s|%d|%f|%.2f|%g\" \"a\" 42 1.5 3.14159 0.000012 }}"),
            "a|42|1.500000|3.14|1.2e-05"
        );
        assert_eq!(
            run("{{ printf \"%v|%q|%x|%X|100%%\" $value \"hi\" 255 \"hi\" }}"),
            "95|\"hi\"|ff|6869|100%"
        );
        assert_eq!(
            run("{{ printf \"%.3g|%e|%.1e\" 1234.5678 1234.5678 0.0 }}"),
            "1.23e+03|1.234568e+03|0.0e+00"
        );
    }

    // Go fmt docs, "Other flags": widths, '-' and '0' padding with the sign first.
    #[test]
    fn printf_widths_and_flags() {
        assert_eq!(
            run("{{ printf \"[%5d][%-5d][%05d][%+d]\" 42 42 -42 42 }}"),
            "[   42][42   ][-0042][+42]"
        );
        assert_eq!(
            run("{{ printf \"[%8.2f][%-6s][%6s]\" 3.14159 \"ab\" \"ab\" }}"),
            "[    3.14][ab    ][    ab]"
        );
    }

    // Go fmt docs, "Format errors": wrong type, missing and extra operands.
    #[test]
    fn printf_format_errors() {
        assert_eq!(run("{{ printf \"%d\" 3.5 }}"), "%!d(float64=3.5)");
        assert_eq!(run("{{ printf \"%s %s\" \"a\" }}"), "a %!s(MISSING)");
        assert_eq!(run("{{ printf \"%s\" \"a\" 1 }}"), "a%!(EXTRA int=1)");
    }

    // Go fmt on the values Prometheus's functions return: maps, times, *sample, nil.
    #[test]
    fn printf_on_function_results() {
        assert_eq!(run("{{ printf \"%v\" (args 1) }}"), "map[arg0:1]");
        assert_eq!(
            run("{{ printf \"%s|%v\" (toTime 0) (toDuration 90) }}"),
            "1970-01-01 00:00:00 +0000 UTC|1m30s"
        );
        assert_eq!(
            run("{{ printf \"%v\" (query \"scalar\" | first) }}"),
            "&{map[] 42}"
        );
        assert_eq!(
            run("{{ printf \"%v|%d\" (args).x (args).x }}"),
            "<nil>|%!d(<nil>)"
        );
        // Prometheus 2.42 (promtool) prints these exactly so: the verb applies to each part.
        assert_eq!(
            run("{{ printf \"%d\" (args 1) }}"),
            "map[%!d(string=arg0):1]"
        );
        assert_eq!(
            run("{{ printf \"%d\" $labels }}"),
            "map[%!d(string=instance):%!d(string=node-1:9100) %!d(string=job):%!d(string=ipfs) \
             %!d(string=severity):%!d(string=page)]"
        );
    }

    // Go fmt.Sprint: spaces only between operands when neither is a string.
    #[test]
    fn print_spacing() {
        assert_eq!(run("{{ print 1 2 \"a\" \"b\" 3 }}"), "1 2ab3");
    }
}
