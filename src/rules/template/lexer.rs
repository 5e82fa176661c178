//! Lexing Go template text: `{{ }}` actions with their trim markers, comments, and the
//! tokens inside actions (words, variables, fields, Go string, raw string, character and
//! number literals), each with the line it starts on.

use std::fmt;

use super::{Located, SPACE_CHARS};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    Text(String),
    Open,
    Close,
    Word(String),
    Field(String),
    Dot,
    Variable(String),
    Str(String),
    Number(String),
    Char(i64),
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    Comma,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Text(text) => write!(f, "text {text:?}"),
            TokenKind::Open => f.write_str("\"{{\""),
            TokenKind::Close => f.write_str("\"}}\""),
            TokenKind::Word(word) => write!(f, "<{word}>"),
            TokenKind::Field(field) => write!(f, "<.{field}>"),
            TokenKind::Dot => f.write_str("<.>"),
            TokenKind::Variable(name) => write!(f, "<{name}>"),
            TokenKind::Str(text) => write!(f, "{text:?}"),
            TokenKind::Number(text) => write!(f, "<{text}>"),
            TokenKind::Char(code) => write!(f, "<{code}>"),
            TokenKind::Pipe => f.write_str("<|>"),
            TokenKind::LeftParen => f.write_str("<(>"),
            TokenKind::RightParen => f.write_str("<)>"),
            TokenKind::Declare => f.write_str("<:=>"),
            TokenKind::Assign => f.write_str("<=>"),
            TokenKind::Comma => f.write_str("<,>"),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    pub(super) line: usize,
    /// Whether space separates this token from the previous one inside an action.
    pub(super) spaced: bool,
}

pub(super) fn lex(source: &str) -> Result<Vec<Token>, Located> {
    let mut lexer = Lexer {
        source,
        pos: 0,
        line: 1,
        token_line: 1,
        spaced: false,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

pub(super) struct Lexer<'s> {
    pub(super) source: &'s str,
    pub(super) pos: usize,
    pub(super) line: usize,
    pub(super) token_line: usize,
    pub(super) spaced: bool,
    pub(super) tokens: Vec<Token>,
}

impl Lexer<'_> {
    pub(super) fn run(&mut self) -> Result<(), Located> {
        let mut trim_leading = false;
        while self.pos < self.source.len() {
            let rest = &self.source[self.pos..];
            let text_end = rest.find("{{").unwrap_or(rest.len());
            let trim_trailing = has_left_trim_marker(&rest[text_end..]);
            let mut text = &rest[..text_end];
            if trim_leading {
                text = text.trim_start_matches(SPACE_CHARS);
            }
            if trim_trailing {
                text = text.trim_end_matches(SPACE_CHARS);
            }
            self.token_line = self.line;
            if !text.is_empty() {
                self.push(TokenKind::Text(text.to_owned()));
            }
            self.advance(text_end);
            if self.pos >= self.source.len() {
                break;
            }
            self.advance(if trim_trailing { 4 } else { 2 });
            trim_leading = self.lex_action()?;
        }
        Ok(())
    }

    pub(super) fn rest(&self) -> &str {
        &self.source[self.pos..]
    }

    pub(super) fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(super) fn advance(&mut self, bytes: usize) {
        let end = (self.pos + bytes).min(self.source.len());
        self.line += self.source[self.pos..end].matches('\n').count();
        self.pos = end;
    }

    pub(super) fn push(&mut self, kind: TokenKind) {
        self.tokens.push(Token {
            kind,
            line: self.token_line,
            spaced: self.spaced,
        });
        self.spaced = false;
    }

    pub(super) fn error(&self, message: impl Into<String>) -> Located {
        Located {
            line: self.line,
            message: message.into(),
        }
    }

    /// Whether the input is at `}}`, and whether that closing delimiter trims.
    pub(super) fn at_close(&self) -> Option<bool> {
        let rest = self.rest();
        if rest.starts_with("}}") {
            Some(false)
        } else if has_right_trim_marker(rest) {
            Some(true)
        } else {
            None
        }
    }

    /// Lexes one action after its `{{`; returns whether the following text is trimmed.
    pub(super) fn lex_action(&mut self) -> Result<bool, Located> {
        if self.rest().starts_with("/*") {
            return self.lex_comment();
        }
        self.token_line = self.line;
        self.push(TokenKind::Open);
        let mut paren_depth = 0usize;
        loop {
            if let Some(trim) = self.at_close() {
                if paren_depth > 0 {
                    return Err(self.error("unclosed left paren"));
                }
                self.token_line = self.line;
                self.push(TokenKind::Close);
                self.advance(if trim { 4 } else { 2 });
                return Ok(trim);
            }
            let next = self
                .peek_char()
                .ok_or_else(|| self.error("unclosed action"))?;
            self.token_line = self.line;
            match next {
                ' ' | '\t' | '\r' | '\n' => {
                    self.advance(1);
                    self.spaced = true;
                }
                '(' => {
                    paren_depth += 1;
                    self.lex_symbol(TokenKind::LeftParen, 1);
                }
                ')' => {
                    paren_depth = paren_depth
                        .checked_sub(1)
                        .ok_or_else(|| self.error("unexpected right paren"))?;
                    self.lex_symbol(TokenKind::RightParen, 1);
                }
                _ => self.lex_action_token(next)?,
            }
        }
    }

    pub(super) fn lex_action_token(&mut self, next: char) -> Result<(), Located> {
        match next {
            '|' => self.lex_symbol(TokenKind::Pipe, 1),
            ',' => self.lex_symbol(TokenKind::Comma, 1),
            '=' => self.lex_symbol(TokenKind::Assign, 1),
            ':' if self.rest().starts_with(":=") => self.lex_symbol(TokenKind::Declare, 2),
            ':' => return Err(self.error("expected :=")),
            '"' => self.lex_quoted()?,
            '`' => self.lex_raw_quoted()?,
            '\'' => self.lex_char()?,
            '$' => {
                let name = self.take_identifier(1);
                self.push(TokenKind::Variable(format!("${name}")));
            }
            '.' if self.rest()[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                self.lex_number()?;
            }
            '.' => {
                let name = self.take_identifier(1);
                let kind = if name.is_empty() {
                    TokenKind::Dot
                } else {
                    TokenKind::Field(name)
                };
                self.push(kind);
            }
            '+' | '-' | '0'..='9' => self.lex_number()?,
            c if c.is_alphabetic() || c == '_' => {
                let word = self.take_identifier(0);
                self.push(TokenKind::Word(word));
            }
            c => {
                return Err(self.error(format!(
                    "unrecognized character in action: U+{:04X}",
                    u32::from(c)
                )))
            }
        }
        Ok(())
    }

    pub(super) fn lex_symbol(&mut self, kind: TokenKind, width: usize) {
        self.push(kind);
        self.advance(width);
    }

    /// Skips `skip` bytes, then takes the identifier characters that follow.
    pub(super) fn take_identifier(&mut self, skip: usize) -> String {
        self.advance(skip);
        let length = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        let identifier = self.rest()[..length].to_owned();
        self.advance(length);
        identifier
    }

    pub(super) fn lex_number(&mut self) -> Result<(), Located> {
        let rest = self.rest();
        let mut end = 0;
        let mut previous = ' ';
        for (index, c) in rest.char_indices() {
            let sign_allowed = index == 0 || matches!(previous, 'e' | 'E' | 'p' | 'P');
            let accepted = c.is_ascii_alphanumeric() || c == '_' || c == '.';
            if !(accepted || (matches!(c, '+' | '-') && sign_allowed)) {
                break;
            }
            previous = c;
            end = index + c.len_utf8();
        }
        let text = rest[..end].to_owned();
        self.push(TokenKind::Number(text));
        self.advance(end);
        Ok(())
    }

    /// Finds the end of a quoted literal starting at the current position.
    pub(super) fn quoted_end(&self, quote: char, unterminated: &str) -> Result<usize, Located> {
        let mut escaped = false;
        for (index, c) in self.rest().char_indices().skip(1) {
            match c {
                '\n' => break,
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == quote => return Ok(index),
                _ => {}
            }
        }
        Err(self.error(unterminated))
    }

    pub(super) fn lex_quoted(&mut self) -> Result<(), Located> {
        let end = self.quoted_end('"', "unterminated quoted string")?;
        let text = unescape(&self.rest()[1..end], '"').map_err(|e| self.error(e))?;
        self.push(TokenKind::Str(text));
        self.advance(end + 1);
        Ok(())
    }

    pub(super) fn lex_raw_quoted(&mut self) -> Result<(), Located> {
        let end = self.rest()[1..]
            .find('`')
            .ok_or_else(|| self.error("unterminated raw quoted string"))?;
        let text = self.rest()[1..=end].replace('\r', "");
        self.push(TokenKind::Str(text));
        self.advance(end + 2);
        Ok(())
    }

    pub(super) fn lex_char(&mut self) -> Result<(), Located> {
        let end = self.quoted_end('\'', "unterminated character constant")?;
        let text = unescape(&self.rest()[1..end], '\'').map_err(|e| self.error(e))?;
        let mut chars = text.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => i64::from(u32::from(c)),
            _ => return Err(self.error("malformed character constant")),
        };
        self.push(TokenKind::Char(code));
        self.advance(end + 1);
        Ok(())
    }

    pub(super) fn lex_comment(&mut self) -> Result<bool, Located> {
        let end = self
            .rest()
            .find("*/")
            .ok_or_else(|| self.error("unclosed comment"))?;
        self.advance(end + 2);
        let trim = self
            .at_close()
            .ok_or_else(|| self.error("comment ends before closing delimiter"))?;
        self.advance(if trim { 4 } else { 2 });
        Ok(trim)
    }
}

pub(super) fn has_left_trim_marker(at_open: &str) -> bool {
    at_open.starts_with("{{-") && at_open[3..].starts_with(SPACE_CHARS)
}

pub(super) fn has_right_trim_marker(rest: &str) -> bool {
    rest.starts_with(SPACE_CHARS) && rest[1..].starts_with("-}}")
}

/// Resolves Go escape sequences inside a `"..."` string or `'...'` character literal.
pub(super) fn unescape(body: &str, quote: char) -> Result<String, String> {
    let mut output = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            output.push(c);
            continue;
        }
        let escape = chars.next().ok_or("invalid syntax")?;
        let resolved = match escape {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' => '\\',
            _ if escape == quote => quote,
            'x' => code_point(&mut chars, 2, 16, None)?,
            'u' => code_point(&mut chars, 4, 16, None)?,
            'U' => code_point(&mut chars, 8, 16, None)?,
            '0'..='7' => code_point(&mut chars, 2, 8, Some(escape))?,
            _ => return Err("invalid syntax".to_owned()),
        };
        output.push(resolved);
    }
    Ok(output)
}

pub(super) fn code_point(
    chars: &mut std::str::Chars<'_>,
    count: usize,
    radix: u32,
    first: Option<char>,
) -> Result<char, String> {
    let digits: String = first.into_iter().chain(chars.take(count)).collect();
    u32::from_str_radix(&digits, radix)
        .ok()
        .filter(|_| digits.len() == count + usize::from(first.is_some()))
        .and_then(char::from_u32)
        .ok_or_else(|| "invalid syntax".to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    // Go text/template docs, "Text and spaces": trim markers eat adjacent white space.
    #[test]
    fn trim_markers_remove_adjacent_space() {
        assert_eq!(run("{{23 -}} < {{- 45}}"), "23<45");
        assert_eq!(run("a \n {{- \"b\" -}} \n c"), "abc");
        assert_eq!(run("{{-3}}"), "-3");
    }

    // Go text/template docs, "Actions": comments, optionally with trim markers.
    #[test]
    fn comments_produce_nothing() {
        assert_eq!(run("a{{/* a comment */}}b"), "ab");
        assert_eq!(run("a {{- /* trimmed */ -}} b"), "ab");
        assert!(failure("{{/* x */ 1}}").contains("comment ends before closing delimiter"));
    }

    // Go spec string literals as used by text/template: escapes, raw strings, characters.
    #[test]
    fn string_and_char_literals() {
        assert_eq!(run(r#"{{ "a\tb\x41\u00e9\"" }}"#), "a\tbAé\"");
        assert_eq!(run("{{ `raw \\n text` }}"), "raw \\n text");
        assert_eq!(run("{{ 'a' }}"), "97");
    }

    // Go text/template docs, "Arguments": number constants keep Go's int/float64 split.
    #[test]
    fn number_literals() {
        assert_eq!(
            run("{{ 0x1F }} {{ 1.50 }} {{ 1e3 }} {{ -7 }} {{ .5 }}"),
            "31 1.5 1000 -7 0.5"
        );
        assert_eq!(
            run("{{ printf \"%T %T %T\" 1 1.0 $labels }}"),
            "int float64 map[string]string"
        );
    }
}
