//! Duration expressions, Prometheus 3.5's experimental `promql-duration-expr` feature:
//! arithmetic where a duration goes (`x[26m+4m]`, `x[1h:20*500ms]`, `x offset (2 * 2)`).
//!
//! Owns rewriting each such expression to the duration literal it computes (in ms) before the
//! text reaches `promql-parser`, which reads literals only. Operators `+ - * / % ^` and
//! parentheses over numbers (seconds) and durations, with PromQL's precedence (`^` binds
//! tighter than a unary minus and is right-associative).

use super::ParseError;

/// Rewrites every duration expression of `text` (inside `[...]` and after `offset`) to a
/// literal.
///
/// ```
/// use ipfs_sentinel::rules::promql::duration_expr::expand;
/// assert_eq!(expand("rate(x[26m+4m])").unwrap(), "rate(x[1800000ms])");
/// assert_eq!(expand("x[30s:2*5s] offset -(1m/2)").unwrap(), "x[30s:10000ms] offset -30000ms");
/// assert_eq!(expand("x[5m] offset 1m").unwrap(), "x[5m] offset 1m");
/// ```
pub fn expand(text: &str) -> Result<String, ParseError> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'\'' | b'`' => {
                let end = string_end(text, i);
                out.push_str(&text[i..end]);
                i = end;
            }
            b'[' => {
                let close = text[i..]
                    .find(']')
                    .map(|n| i + n)
                    .ok_or_else(|| ParseError("unclosed [ in the expression".into()))?;
                let inside = &text[i + 1..close];
                let parts: Vec<String> = inside
                    .split(':')
                    .map(|p| {
                        if is_expression(p) {
                            literal(p)
                        } else {
                            Ok(p.to_owned())
                        }
                    })
                    .collect::<Result<_, _>>()?;
                out.push('[');
                out.push_str(&parts.join(":"));
                out.push(']');
                i = close + 1;
            }
            _ if starts_keyword(text, i, "offset") => {
                out.push_str(&text[i..i + 6]);
                i += 6;
                let ws = text[i..].len() - text[i..].trim_start().len();
                out.push_str(&text[i..i + ws]);
                i += ws;
                let rest = &text[i..];
                let sign = usize::from(rest.starts_with('-'));
                if rest[sign..].trim_start().starts_with('(') {
                    let open = i + sign + (rest[sign..].len() - rest[sign..].trim_start().len());
                    let close = matching_paren(text, open)?;
                    let value = evaluate(&text[open..=close])?;
                    let value = if sign == 1 { -value } else { value };
                    out.push_str(&format_ms(value));
                    i = close + 1;
                }
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    Ok(out)
}

fn string_end(text: &str, start: usize) -> usize {
    let quote = text.as_bytes()[start];
    let mut i = start + 1;
    while i < text.len() {
        let c = text.as_bytes()[i];
        if c == b'\\' && quote != b'`' {
            i += 2;
            continue;
        }
        if c == quote {
            return i + 1;
        }
        i += 1;
    }
    text.len()
}

fn starts_keyword(text: &str, i: usize, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    text[i..]
        .get(..word.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(word))
        && !text[..i].chars().next_back().is_some_and(ident)
        && !text[i + word.len()..].chars().next().is_some_and(ident)
}

fn matching_paren(text: &str, open: usize) -> Result<usize, ParseError> {
    let mut depth = 0;
    for (n, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(open + n);
                }
            }
            _ => {}
        }
    }
    Err(ParseError("unclosed ( in a duration expression".into()))
}

/// Whether a range or step is an expression rather than a literal.
fn is_expression(part: &str) -> bool {
    part.trim()
        .chars()
        .skip(1)
        .any(|c| matches!(c, '+' | '-' | '*' | '/' | '%' | '^' | '(' | ')'))
        || part.trim().starts_with(['(', '+'])
        || (part.trim().starts_with('-') && part.trim().len() > 1)
}

fn literal(part: &str) -> Result<String, ParseError> {
    Ok(format_ms(evaluate(part)?))
}

fn format_ms(seconds: f64) -> String {
    format!("{}ms", (seconds * 1000.0).round() as i64)
}

/// Evaluates a duration expression, in seconds.
fn evaluate(text: &str) -> Result<f64, ParseError> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, at: 0 };
    let v = p.sum()?;
    if p.at != p.tokens.len() {
        return Err(ParseError(format!(
            "unexpected {:?} in duration expression {text:?}",
            p.tokens[p.at]
        )));
    }
    Ok(v)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Op(char),
}

fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while let Some(c) = rest.chars().next() {
        if "+-*/%^()".contains(c) {
            out.push(Token::Op(c));
            rest = rest[1..].trim_start();
            continue;
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(ParseError(format!(
                "unexpected {c:?} in duration expression {text:?}"
            )));
        }
        let word = &rest[..len];
        let seconds = if word.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            word.parse::<f64>().ok()
        } else {
            duration_seconds(word)
        }
        .ok_or_else(|| ParseError(format!("bad duration {word:?} in {text:?}")))?;
        out.push(Token::Number(seconds));
        rest = rest[len..].trim_start();
    }
    Ok(out)
}

/// A duration literal such as `1h30m`, `500ms` or `0s`, in seconds.
fn duration_seconds(word: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = word;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[unit_len..];
    }
    Some(total)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn op(&mut self, ops: &str) -> Option<char> {
        match self.peek() {
            Some(Token::Op(c)) if ops.contains(*c) => {
                let c = *c;
                self.at += 1;
                Some(c)
            }
            _ => None,
        }
    }

    fn sum(&mut self) -> Result<f64, ParseError> {
        let mut v = self.product()?;
        while let Some(op) = self.op("+-") {
            let r = self.product()?;
            v = if op == '+' { v + r } else { v - r };
        }
        Ok(v)
    }

    fn product(&mut self) -> Result<f64, ParseError> {
        let mut v = self.unary()?;
        while let Some(op) = self.op("*/%") {
            let r = self.unary()?;
            v = match op {
                '*' => v * r,
                '/' => v / r,
                _ => v % r,
            };
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<f64, ParseError> {
        match self.op("+-") {
            Some('-') => Ok(-self.unary()?),
            Some(_) => self.unary(),
            None => self.power(),
        }
    }

    fn power(&mut self) -> Result<f64, ParseError> {
        let base = self.atom()?;
        if self.op("^").is_some() {
            let exponent = self.unary()?;
            return Ok(base.powf(exponent));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, ParseError> {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Number(v)) => {
                self.at += 1;
                Ok(v)
            }
            Some(Token::Op('(')) => {
                self.at += 1;
                let v = self.sum()?;
                if self.op(")").is_none() {
                    return Err(ParseError("unclosed ( in a duration expression".into()));
                }
                Ok(v)
            }
            other => Err(ParseError(format!(
                "expected a number or a duration, got {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suites_expressions() {
        for (text, seconds) in [
            ("26m+4m", 1800.0),
            ("60*30", 1800.0),
            ("2m*(10+5)", 1800.0),
            ("24m+((1.5*2m)+2m)", 1740.0),
            ("-5m+35m", 1800.0),
            ("1h/2", 1800.0),
            ("1h30m % 1h", 1800.0),
            ("30m1s-30m1s % 1m", 1800.0),
            ("((((8 - 2) / 3) * 7s) % 4) + 8000ms", 10.0),
            ("(-2 ^ 2)", -4.0),
            ("30m+0s", 1800.0),
            ("2 ^ 3 ^ 2", 512.0),
        ] {
            assert_eq!(evaluate(text).unwrap(), seconds, "{text}");
        }
        assert!(evaluate("1m +").is_err());
        assert!(evaluate("(1m").is_err());
    }

    #[test]
    fn strings_and_label_matchers_are_left_alone() {
        assert_eq!(
            expand(r#"x{a="[1+1]"} offset 5m"#).unwrap(),
            r#"x{a="[1+1]"} offset 5m"#
        );
        assert_eq!(expand("x offset (100 + 2)").unwrap(), "x offset 102000ms");
        assert_eq!(expand("my_offset_total").unwrap(), "my_offset_total");
    }
}
