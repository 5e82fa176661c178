//! Alert templates: the part of Go's `text/template` that Prometheus 2.42 uses to expand
//! alerting-rule labels and annotations, with Prometheus's template functions.
//!
//! This module owns the whole path from template text to expanded string: lexing (`{{ }}`
//! actions, trim markers, comments), parsing (pipelines, variables, `if`/`range`/`with`),
//! execution against [`TemplateData`], Go `fmt`-compatible value printing and `printf`, and
//! the `humanize*` family with Prometheus's exact number formats. As in Prometheus, every
//! template runs behind `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}`
//! `{{$externalURL := .ExternalURL}}{{$value := .Value}}`, a missing label expands to the
//! empty string (`missingkey=zero`), and a failure expands to
//! `<error expanding template: ...>` instead of aborting the rule.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

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
}

/// Expands `text`; on any parse or execution error returns Prometheus's text
/// `<error expanding template: ERROR>` (ERROR being a one-line description naming the
/// template `name`), never panics.
pub fn expand(name: &str, text: &str, data: &TemplateData) -> String {
    // Text without an action is its own expansion: most rule labels (`severity: warning`).
    if !text.contains("{{") {
        return text.to_owned();
    }
    match render(name, text, data) {
        Ok(output) => output,
        Err(error) => format!("<error expanding template: {}>", one_line(&error)),
    }
}

/// Parses a template without running it, for load-time checks: Err(one-line reason).
pub fn check(name: &str, text: &str) -> Result<(), String> {
    parse_alert_template(name, text)
        .map(|_| ())
        .map_err(|error| one_line(&error))
}

/// The variable definitions Prometheus puts in front of every alert template.
const ALERT_DEFINITIONS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}\
{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Why queries cannot run: this engine evaluates templates without a PromQL engine.
const QUERIES_UNSUPPORTED: &str = "queries in templates are not supported";

/// How deeply parentheses and control structures may nest before parsing gives up.
const MAX_NESTING: usize = 100;

/// The characters Go's template lexer treats as space.
const SPACE_CHARS: &[char] = &[' ', '\t', '\r', '\n'];

fn render(name: &str, text: &str, data: &TemplateData) -> Result<String, String> {
    let tree = parse_alert_template(name, text)?;
    let mut executor = Executor::new(data);
    let root = executor.root();
    executor.walk(&tree, &root).map_err(|error| {
        format!(
            "error executing template {name}: template: {name}:{}: {}",
            error.line, error.message
        )
    })?;
    Ok(executor.output)
}

fn parse_alert_template(name: &str, text: &str) -> Result<Vec<Node>, String> {
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

// ---------------------------------------------------------------------------------------
// Lexing
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
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
struct Token {
    kind: TokenKind,
    line: usize,
    /// Whether space separates this token from the previous one inside an action.
    spaced: bool,
}

fn lex(source: &str) -> Result<Vec<Token>, Located> {
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

struct Lexer<'s> {
    source: &'s str,
    pos: usize,
    line: usize,
    token_line: usize,
    spaced: bool,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn run(&mut self) -> Result<(), Located> {
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

    fn rest(&self) -> &str {
        &self.source[self.pos..]
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn advance(&mut self, bytes: usize) {
        let end = (self.pos + bytes).min(self.source.len());
        self.line += self.source[self.pos..end].matches('\n').count();
        self.pos = end;
    }

    fn push(&mut self, kind: TokenKind) {
        self.tokens.push(Token {
            kind,
            line: self.token_line,
            spaced: self.spaced,
        });
        self.spaced = false;
    }

    fn error(&self, message: impl Into<String>) -> Located {
        Located {
            line: self.line,
            message: message.into(),
        }
    }

    /// Whether the input is at `}}`, and whether that closing delimiter trims.
    fn at_close(&self) -> Option<bool> {
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
    fn lex_action(&mut self) -> Result<bool, Located> {
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

    fn lex_action_token(&mut self, next: char) -> Result<(), Located> {
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

    fn lex_symbol(&mut self, kind: TokenKind, width: usize) {
        self.push(kind);
        self.advance(width);
    }

    /// Skips `skip` bytes, then takes the identifier characters that follow.
    fn take_identifier(&mut self, skip: usize) -> String {
        self.advance(skip);
        let length = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        let identifier = self.rest()[..length].to_owned();
        self.advance(length);
        identifier
    }

    fn lex_number(&mut self) -> Result<(), Located> {
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
    fn quoted_end(&self, quote: char, unterminated: &str) -> Result<usize, Located> {
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

    fn lex_quoted(&mut self) -> Result<(), Located> {
        let end = self.quoted_end('"', "unterminated quoted string")?;
        let text = unescape(&self.rest()[1..end], '"').map_err(|e| self.error(e))?;
        self.push(TokenKind::Str(text));
        self.advance(end + 1);
        Ok(())
    }

    fn lex_raw_quoted(&mut self) -> Result<(), Located> {
        let end = self.rest()[1..]
            .find('`')
            .ok_or_else(|| self.error("unterminated raw quoted string"))?;
        let text = self.rest()[1..=end].replace('\r', "");
        self.push(TokenKind::Str(text));
        self.advance(end + 2);
        Ok(())
    }

    fn lex_char(&mut self) -> Result<(), Located> {
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

    fn lex_comment(&mut self) -> Result<bool, Located> {
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

fn has_left_trim_marker(at_open: &str) -> bool {
    at_open.starts_with("{{-") && at_open[3..].starts_with(SPACE_CHARS)
}

fn has_right_trim_marker(rest: &str) -> bool {
    rest.starts_with(SPACE_CHARS) && rest[1..].starts_with("-}}")
}

/// Resolves Go escape sequences inside a `"..."` string or `'...'` character literal.
fn unescape(body: &str, quote: char) -> Result<String, String> {
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

fn code_point(
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

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
enum Node {
    Text(String),
    Action { line: usize, pipe: Pipeline },
    If(Branch),
    With(Branch),
    Range(Branch),
}

/// An `if`, `with` or `range` block: its pipeline, body and `else` part.
#[derive(Debug)]
struct Branch {
    line: usize,
    pipe: Pipeline,
    body: Vec<Node>,
    otherwise: Vec<Node>,
}

#[derive(Debug, Default)]
struct Pipeline {
    declarations: Vec<String>,
    assigns: bool,
    commands: Vec<Command>,
}

#[derive(Debug)]
struct Command {
    operands: Vec<Operand>,
}

#[derive(Debug)]
struct Operand {
    term: Term,
    fields: Vec<String>,
}

#[derive(Debug)]
enum Term {
    Dot,
    Variable(String),
    Function(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nested(Pipeline),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.term {
            Term::Dot if self.fields.is_empty() => f.write_str(".")?,
            Term::Dot => {}
            Term::Variable(name) | Term::Function(name) => f.write_str(name)?,
            Term::Str(text) => write!(f, "{text:?}")?,
            Term::Int(value) => write!(f, "{value}")?,
            Term::Float(value) => write!(f, "{}", format_float(*value))?,
            Term::Bool(value) => write!(f, "{value}")?,
            Term::Nested(_) => f.write_str("(...)")?,
        }
        self.fields
            .iter()
            .try_for_each(|field| write!(f, ".{field}"))
    }
}

/// Where a pipeline appears, which decides how it ends and how errors name it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Context {
    Command,
    If,
    With,
    Range,
    Parenthesized,
}

impl Context {
    fn name(self) -> &'static str {
        match self {
            Context::Command => "command",
            Context::If => "if",
            Context::With => "with",
            Context::Range => "range",
            Context::Parenthesized => "parenthesized pipeline",
        }
    }
}

enum Stop {
    Eof,
    End,
    Else,
}

enum Step {
    Node(Node),
    Stop(Stop),
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// Functions a template may call: Go's builtins and Prometheus's additions.
const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "title",
    "toUpper",
    "toLower",
    "reReplaceAll",
    "match",
    "stripPort",
    "stripDomain",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
];

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    scope: Vec<String>,
    depth: usize,
}

impl Parser {
    fn new(tokens: Vec<Token>) -> Self {
        Parser {
            tokens,
            pos: 0,
            scope: vec!["$".to_owned()],
            depth: 0,
        }
    }

    fn parse_template(mut self) -> Result<Vec<Node>, Located> {
        let (nodes, stop) = self.parse_list()?;
        match stop {
            Stop::Eof => Ok(nodes),
            Stop::End => Err(self.error("unexpected {{end}}")),
            Stop::Else => Err(self.error("unexpected {{else}}")),
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_kind(&self) -> Option<&TokenKind> {
        self.peek().map(|token| &token.kind)
    }

    fn peek_word(&self) -> Option<String> {
        match self.peek_kind() {
            Some(TokenKind::Word(word)) => Some(word.clone()),
            _ => None,
        }
    }

    fn advance_token(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += usize::from(token.is_some());
        token
    }

    fn line(&self) -> usize {
        self.peek()
            .or_else(|| self.tokens.last())
            .map_or(1, |token| token.line)
    }

    fn error(&self, message: impl Into<String>) -> Located {
        Located {
            line: self.line(),
            message: message.into(),
        }
    }

    fn enter(&mut self) -> Result<(), Located> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error("template nested too deeply"));
        }
        Ok(())
    }

    fn parse_list(&mut self) -> Result<(Vec<Node>, Stop), Located> {
        let mut nodes = Vec::new();
        while let Some(token) = self.advance_token() {
            match token.kind {
                TokenKind::Text(text) => nodes.push(Node::Text(text)),
                TokenKind::Open => match self.parse_action(token.line)? {
                    Step::Node(node) => nodes.push(node),
                    Step::Stop(stop) => return Ok((nodes, stop)),
                },
                other => return Err(self.error(format!("unexpected {other}"))),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn parse_action(&mut self, line: usize) -> Result<Step, Located> {
        let word = self.peek_word();
        let control = match word.as_deref() {
            Some("end") => {
                self.pos += 1;
                self.expect_close("end")?;
                return Ok(Step::Stop(Stop::End));
            }
            Some("else") => {
                self.pos += 1;
                return Ok(Step::Stop(Stop::Else));
            }
            Some("if") => Context::If,
            Some("with") => Context::With,
            Some("range") => Context::Range,
            Some(keyword @ ("define" | "template" | "block" | "break" | "continue")) => {
                return Err(self.error(format!("{{{{{keyword}}}}} is not supported")));
            }
            _ => {
                let pipe = self.parse_pipeline(Context::Command)?;
                return Ok(Step::Node(Node::Action { line, pipe }));
            }
        };
        self.pos += 1;
        let branch = self.parse_branch(control, line)?;
        Ok(Step::Node(match control {
            Context::With => Node::With(branch),
            Context::Range => Node::Range(branch),
            _ => Node::If(branch),
        }))
    }

    fn expect_close(&mut self, context: &str) -> Result<(), Located> {
        match self.advance_token() {
            Some(Token {
                kind: TokenKind::Close,
                ..
            }) => Ok(()),
            Some(token) => Err(self.error(format!("unexpected {} in {context}", token.kind))),
            None => Err(self.error("unexpected EOF")),
        }
    }

    fn parse_branch(&mut self, control: Context, line: usize) -> Result<Branch, Located> {
        self.enter()?;
        let scope_mark = self.scope.len();
        let pipe = self.parse_pipeline(control)?;
        let (body, stop) = self.parse_list()?;
        let otherwise = match stop {
            Stop::End => Vec::new(),
            Stop::Else => self.parse_else(control)?,
            Stop::Eof => return Err(self.error("unexpected EOF")),
        };
        self.scope.truncate(scope_mark);
        self.depth -= 1;
        Ok(Branch {
            line,
            pipe,
            body,
            otherwise,
        })
    }

    fn parse_else(&mut self, control: Context) -> Result<Vec<Node>, Located> {
        if control == Context::If && self.peek_word().as_deref() == Some("if") {
            let line = self.line();
            self.pos += 1;
            return Ok(vec![Node::If(self.parse_branch(Context::If, line)?)]);
        }
        self.expect_close("else")?;
        match self.parse_list()? {
            (nodes, Stop::End) => Ok(nodes),
            (_, Stop::Else) => Err(self.error("expected end; found {{else}}")),
            (_, Stop::Eof) => Err(self.error("unexpected EOF")),
        }
    }

    fn parse_pipeline(&mut self, context: Context) -> Result<Pipeline, Located> {
        self.enter()?;
        let mut pipe = Pipeline::default();
        self.parse_declarations(&mut pipe, context)?;
        let end = if context == Context::Parenthesized {
            TokenKind::RightParen
        } else {
            TokenKind::Close
        };
        loop {
            match self.peek_kind() {
                Some(kind) if *kind == end => {
                    self.pos += 1;
                    break;
                }
                Some(_) => pipe.commands.push(self.parse_command()?),
                None => return Err(self.error("unclosed action")),
            }
        }
        if pipe.commands.is_empty() {
            return Err(self.error(format!("missing value for {}", context.name())));
        }
        check_executable_stages(&pipe).map_err(|message| self.error(message))?;
        self.depth -= 1;
        Ok(pipe)
    }

    fn parse_declarations(&mut self, pipe: &mut Pipeline, context: Context) -> Result<(), Located> {
        loop {
            let name = match self.peek_kind() {
                Some(TokenKind::Variable(name)) => name.clone(),
                _ => return self.require_no_pending_declaration(pipe),
            };
            let after = self.tokens.get(self.pos + 1).map(|token| &token.kind);
            match after {
                Some(TokenKind::Declare | TokenKind::Assign) => {
                    pipe.assigns = after == Some(&TokenKind::Assign);
                    self.pos += 2;
                    pipe.declarations.push(name.clone());
                    self.scope.push(name);
                    return Ok(());
                }
                Some(TokenKind::Comma)
                    if context == Context::Range && pipe.declarations.is_empty() =>
                {
                    self.pos += 2;
                    pipe.declarations.push(name.clone());
                    self.scope.push(name);
                }
                Some(TokenKind::Comma) => {
                    return Err(self.error(format!("too many declarations in {}", context.name())))
                }
                _ => return self.require_no_pending_declaration(pipe),
            }
        }
    }

    /// After `range $k,` another variable and `:=` must follow.
    fn require_no_pending_declaration(&self, pipe: &Pipeline) -> Result<(), Located> {
        if pipe.declarations.is_empty() {
            Ok(())
        } else {
            Err(self.error("range can only initialize variables"))
        }
    }

    fn parse_command(&mut self) -> Result<Command, Located> {
        let mut operands = Vec::new();
        loop {
            operands.push(self.parse_operand()?);
            match self.peek() {
                Some(Token {
                    kind: TokenKind::Pipe,
                    ..
                }) => {
                    self.pos += 1;
                    if matches!(
                        self.peek_kind(),
                        Some(TokenKind::Close | TokenKind::RightParen)
                    ) {
                        return Err(self.error("missing value for command"));
                    }
                    break;
                }
                Some(Token {
                    kind: TokenKind::Close | TokenKind::RightParen,
                    ..
                }) => break,
                Some(token) if token.spaced => {}
                Some(token) => {
                    return Err(self.error(format!("unexpected {} in operand", token.kind)))
                }
                None => return Err(self.error("unclosed action")),
            }
        }
        Ok(Command { operands })
    }

    fn parse_operand(&mut self) -> Result<Operand, Located> {
        let token = self
            .advance_token()
            .ok_or_else(|| self.error("unclosed action"))?;
        let (term, mut fields) = match token.kind {
            TokenKind::Field(name) => (Term::Dot, vec![name]),
            TokenKind::Dot => (Term::Dot, Vec::new()),
            TokenKind::Variable(name) if self.scope.contains(&name) => {
                (Term::Variable(name), Vec::new())
            }
            TokenKind::Variable(name) => {
                return Err(self.error(format!("undefined variable {name:?}")))
            }
            TokenKind::Word(word) => (self.word_term(&word)?, Vec::new()),
            TokenKind::Str(text) => (Term::Str(text), Vec::new()),
            TokenKind::Char(code) => (Term::Int(code), Vec::new()),
            TokenKind::Number(text) => {
                (parse_number(&text).map_err(|e| self.error(e))?, Vec::new())
            }
            TokenKind::LeftParen => (
                Term::Nested(self.parse_pipeline(Context::Parenthesized)?),
                Vec::new(),
            ),
            other => return Err(self.error(format!("unexpected {other} in operand"))),
        };
        while let Some(Token {
            kind: TokenKind::Field(name),
            spaced: false,
            ..
        }) = self.peek()
        {
            fields.push(name.clone());
            self.pos += 1;
        }
        let literal = matches!(
            term,
            Term::Str(_) | Term::Int(_) | Term::Float(_) | Term::Bool(_)
        );
        if literal && !fields.is_empty() {
            return Err(self.error("unexpected . after term"));
        }
        Ok(Operand { term, fields })
    }

    fn word_term(&self, word: &str) -> Result<Term, Located> {
        match word {
            "true" => Ok(Term::Bool(true)),
            "false" => Ok(Term::Bool(false)),
            "nil" => Err(self.error("nil is not supported")),
            _ if KEYWORDS.contains(&word) => {
                Err(self.error(format!("unexpected <{word}> in command")))
            }
            _ if FUNCTIONS.contains(&word) => Ok(Term::Function(word.to_owned())),
            _ => Err(self.error(format!("function {word:?} not defined"))),
        }
    }
}

/// Only the first command of a pipeline may start with a constant or `.`.
fn check_executable_stages(pipe: &Pipeline) -> Result<(), String> {
    for (index, command) in pipe.commands.iter().enumerate().skip(1) {
        let first = command.operands.first().map(|operand| &operand.term);
        if matches!(
            first,
            Some(Term::Dot | Term::Str(_) | Term::Int(_) | Term::Float(_) | Term::Bool(_))
        ) {
            return Err(format!(
                "non executable command in pipeline stage {}",
                index + 1
            ));
        }
    }
    Ok(())
}

/// Turns a number literal into the constant Go would make of it: an `int` unless it is
/// written with a fraction or exponent, then a `float64`.
fn parse_number(text: &str) -> Result<Term, String> {
    let bad = || format!("bad number syntax: {text:?}");
    let clean = text.replace('_', "");
    let (negative, body) = match clean.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let radix = match body.get(..2) {
        Some("0x" | "0X") => Some((16, &body[2..])),
        Some("0o" | "0O") => Some((8, &body[2..])),
        Some("0b" | "0B") => Some((2, &body[2..])),
        _ if body.len() > 1
            && body.starts_with('0')
            && body.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some((8, &body[1..]))
        }
        _ => None,
    };
    if let Some((radix, digits)) = radix {
        let magnitude = i64::from_str_radix(digits, radix).map_err(|_| bad())?;
        return Ok(Term::Int(if negative { -magnitude } else { magnitude }));
    }
    if body.contains(['.', 'e', 'E']) {
        let value: f64 = body.parse().map_err(|_| bad())?;
        return Ok(Term::Float(if negative { -value } else { value }));
    }
    if !body.bytes().all(|b| b.is_ascii_digit()) || body.is_empty() {
        return Err(bad());
    }
    let signed = if negative {
        format!("-{body}")
    } else {
        body.to_owned()
    };
    signed
        .parse()
        .map(Term::Int)
        .map_err(|_| format!("{text} overflows int"))
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

type LabelMap = BTreeMap<String, String>;

/// The alert data as the template's root value (Go's anonymous struct).
#[derive(Debug)]
struct AlertRecord {
    labels: Rc<LabelMap>,
    external_labels: Rc<LabelMap>,
    external_url: String,
    value: f64,
}

/// A value during execution, standing in for the Go types Prometheus templates meet.
#[derive(Debug, Clone)]
enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Map(Rc<LabelMap>),
    Record(Rc<AlertRecord>),
}

const RECORD_TYPE: &str = "struct { Labels map[string]string; ExternalLabels map[string]string; \
ExternalURL string; Value float64 }";

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Map(_) => "map[string]string",
            Value::Record(_) => RECORD_TYPE,
        }
    }

    /// Go's notion of truth for `if`, `with`, `and`, `or` and `not`.
    fn is_true(&self) -> bool {
        match self {
            Value::Str(text) => !text.is_empty(),
            Value::Int(value) => *value != 0,
            Value::Float(value) => *value != 0.0,
            Value::Bool(value) => *value,
            Value::Map(map) => !map.is_empty(),
            Value::Record(_) => true,
        }
    }

    fn field(&self, name: &str) -> Result<Value, String> {
        match self {
            Value::Map(map) => Ok(Value::Str(map.get(name).cloned().unwrap_or_default())),
            Value::Record(record) => record.field(name),
            _ => Err(format!(
                "can't evaluate field {name} in type {}",
                self.type_name()
            )),
        }
    }

    fn into_string(self) -> Result<String, String> {
        match self {
            Value::Str(text) => Ok(text),
            other => Err(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            )),
        }
    }
}

impl AlertRecord {
    fn field(&self, name: &str) -> Result<Value, String> {
        match name {
            "Labels" => Ok(Value::Map(Rc::clone(&self.labels))),
            "ExternalLabels" => Ok(Value::Map(Rc::clone(&self.external_labels))),
            "ExternalURL" => Ok(Value::Str(self.external_url.clone())),
            "Value" => Ok(Value::Float(self.value)),
            _ => Err(format!("can't evaluate field {name} in type {RECORD_TYPE}")),
        }
    }
}

/// Go's `%v`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(text) => f.write_str(text),
            Value::Int(value) => write!(f, "{value}"),
            Value::Float(value) => f.write_str(&format_float(*value)),
            Value::Bool(value) => write!(f, "{value}"),
            Value::Map(map) => write_map(f, map),
            Value::Record(record) => {
                f.write_str("{")?;
                write_map(f, &record.labels)?;
                f.write_str(" ")?;
                write_map(f, &record.external_labels)?;
                write!(
                    f,
                    " {} {}}}",
                    record.external_url,
                    format_float(record.value)
                )
            }
        }
    }
}

fn write_map(f: &mut fmt::Formatter<'_>, map: &LabelMap) -> fmt::Result {
    f.write_str("map[")?;
    for (index, (key, value)) in map.iter().enumerate() {
        let separator = if index == 0 { "" } else { " " };
        write!(f, "{separator}{key}:{value}")?;
    }
    f.write_str("]")
}

// ---------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------

struct Executor {
    root: Rc<AlertRecord>,
    vars: Vec<(String, Value)>,
    output: String,
}

impl Executor {
    fn new(data: &TemplateData) -> Self {
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
        }
    }

    fn root(&self) -> Value {
        Value::Record(Rc::clone(&self.root))
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), Located> {
        nodes.iter().try_for_each(|node| self.walk_node(node, dot))
    }

    fn walk_node(&mut self, node: &Node, dot: &Value) -> Result<(), Located> {
        match node {
            Node::Text(text) => {
                self.output.push_str(text);
                Ok(())
            }
            Node::Action { line, pipe } => {
                let value = self.eval_pipeline(dot, pipe).map_err(|e| at(*line, e))?;
                if pipe.declarations.is_empty() {
                    self.output.push_str(&value.to_string());
                }
                Ok(())
            }
            Node::If(branch) => self.walk_condition(branch, dot, false),
            Node::With(branch) => self.walk_condition(branch, dot, true),
            Node::Range(branch) => self.walk_range(branch, dot),
        }
    }

    /// Runs `if` (dot unchanged) or `with` (dot becomes the pipeline's value).
    fn walk_condition(
        &mut self,
        branch: &Branch,
        dot: &Value,
        rebind: bool,
    ) -> Result<(), Located> {
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

    fn walk_range(&mut self, branch: &Branch, dot: &Value) -> Result<(), Located> {
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
            self.walk(&branch.body, &element)?;
            self.vars.truncate(iteration_mark);
        }
        self.vars.truncate(mark);
        Ok(())
    }

    /// Sets `range $v :=` to the element, or `range $k, $v :=` to key and element.
    fn bind_range_variables(
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

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipeline) -> Result<Value, String> {
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

    fn set_var(&mut self, name: &str, value: Value) -> Result<(), String> {
        let slot = self
            .vars
            .iter_mut()
            .rev()
            .find(|(existing, _)| existing == name)
            .ok_or_else(|| format!("undefined variable: {name}"))?;
        slot.1 = value;
        Ok(())
    }

    fn lookup(&self, name: &str) -> Result<Value, String> {
        self.vars
            .iter()
            .rev()
            .find(|(existing, _)| existing == name)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| format!("undefined variable: {name}"))
    }

    fn eval_command(
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
            return Err(format!("can't give argument to non-function {first}"));
        }
        self.eval_operand(dot, first)
    }

    fn eval_operand(&mut self, dot: &Value, operand: &Operand) -> Result<Value, String> {
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
        for field in &operand.fields {
            value = value.field(field)?;
        }
        Ok(value)
    }

    fn call(
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
        call_function(name, values)
    }

    /// `and` and `or` stop at the first argument that decides the result, and return it.
    fn call_logical(
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

fn at(line: usize, message: String) -> Located {
    Located { line, message }
}

/// What `range` visits: a map's entries in key order.
fn range_entries(collection: &Value) -> Result<Vec<(Value, Value)>, String> {
    match collection {
        Value::Map(map) => Ok(map
            .iter()
            .map(|(key, value)| (Value::Str(key.clone()), Value::Str(value.clone())))
            .collect()),
        other => Err(format!("range can't iterate over {other}")),
    }
}

// ---------------------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------------------

fn call_function(name: &str, args: Vec<Value>) -> Result<Value, String> {
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

fn call_prometheus_function(name: &str, args: Vec<Value>) -> Result<Value, String> {
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

fn calling(name: &str) -> impl Fn(String) -> String + '_ {
    move |error| format!("error calling {name}: {error}")
}

fn exact_args<const N: usize>(name: &str, args: Vec<Value>) -> Result<[Value; N], String> {
    args.try_into().map_err(|args: Vec<Value>| {
        format!(
            "wrong number of args for {name}: want {N} got {}",
            args.len()
        )
    })
}

fn length(value: &Value) -> Result<Value, String> {
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
fn index(args: Vec<Value>) -> Result<Value, String> {
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

fn sprint(args: &[Value]) -> String {
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
fn compare(name: &str, args: Vec<Value>) -> Result<Value, String> {
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

const INCOMPATIBLE_TYPES: &str = "incompatible types for comparison";

fn equal(left: &Value, right: &Value) -> Result<bool, String> {
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

fn less(left: &Value, right: &Value) -> Result<bool, String> {
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

fn less_or_equal(left: &Value, right: &Value) -> Result<bool, String> {
    Ok(less(left, right)? || equal(left, right)?)
}

fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern)
        .map_err(|error| format!("error parsing regexp: {error}: `{pattern}`"))
}

fn transform_text(name: &str, text: &str) -> String {
    match name {
        "title" => title(text),
        "toUpper" => map_chars(text, char::to_uppercase),
        "toLower" => map_chars(text, char::to_lowercase),
        "stripPort" => strip_port(text),
        _ => strip_domain(text),
    }
}

/// Applies a case mapping per character.
fn map_chars<I: Iterator<Item = char>>(text: &str, mapping: impl Fn(char) -> I) -> String {
    text.chars().map(|c| simple_case(c, &mapping)).collect()
}

/// Go's simple case mapping: a character whose mapping is not a single character (`ß` to
/// upper case, for example) stays as it is.
fn simple_case<I: Iterator<Item = char>>(c: char, mapping: impl Fn(char) -> I) -> char {
    let mut mapped = mapping(c);
    match (mapped.next(), mapped.next()) {
        (Some(single), None) => single,
        _ => c,
    }
}

/// Go's deprecated `strings.Title`: upper-cases the first letter of every word.
fn title(text: &str) -> String {
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

fn is_word_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

/// Go's `net.SplitHostPort`, without its error details.
fn split_host_port(address: &str) -> Option<(&str, &str)> {
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

fn strip_port(address: &str) -> String {
    split_host_port(address)
        .map_or(address, |(host, _)| host)
        .to_owned()
}

fn strip_domain(address: &str) -> String {
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

// ---------------------------------------------------------------------------------------
// The humanize family
// ---------------------------------------------------------------------------------------

fn humanize_value(name: &str, value: Value) -> Result<String, String> {
    let number = to_float(value)?;
    match name {
        "humanize" => Ok(humanize(number)),
        "humanize1024" => Ok(humanize_1024(number)),
        "humanizeDuration" => Ok(humanize_duration(number)),
        "humanizePercentage" => Ok(format!("{}%", format_g4(number * 100.0))),
        _ => humanize_timestamp(number),
    }
}

/// Prometheus's `convertToFloat`: numbers as they are, strings through `ParseFloat`.
fn to_float(value: Value) -> Result<f64, String> {
    match value {
        Value::Float(number) => Ok(number),
        // Go converts int64 to float64 the same lossy way.
        Value::Int(number) => Ok(number as f64),
        Value::Str(text) => parse_float(&text),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

/// Go's `strconv.ParseFloat(text, 64)` for decimal input.
fn parse_float(text: &str) -> Result<f64, String> {
    let parsed: f64 = text
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {text:?}: invalid syntax"))?;
    if parsed.is_infinite() && !text.to_ascii_lowercase().contains("inf") {
        return Err(format!(
            "strconv.ParseFloat: parsing {text:?}: value out of range"
        ));
    }
    Ok(parsed)
}

const SMALL_PREFIXES: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

fn humanize(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format_g4(value);
    }
    if value.abs() >= 1.0 {
        let prefixes = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
        return scale_down(value, 1000.0, &prefixes);
    }
    scale_up(value, "")
}

fn humanize_1024(value: f64) -> String {
    if value.abs() <= 1.0 || !value.is_finite() {
        return format_g4(value);
    }
    let prefixes = ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];
    scale_down(value, 1024.0, &prefixes)
}

/// Divides by `base` while the value is at least `base`, naming the scale reached.
fn scale_down(mut value: f64, base: f64, prefixes: &[&str]) -> String {
    let mut prefix = "";
    for candidate in prefixes {
        if value.abs() < base {
            break;
        }
        prefix = candidate;
        value /= base;
    }
    format!("{}{prefix}", format_g4(value))
}

/// Multiplies by 1000 while the value is below one, naming the sub-unit reached.
fn scale_up(mut value: f64, unit: &str) -> String {
    let mut prefix = "";
    for candidate in SMALL_PREFIXES {
        if value.abs() >= 1.0 {
            break;
        }
        prefix = candidate;
        value *= 1000.0;
    }
    format!("{}{prefix}{unit}", format_g4(value))
}

fn humanize_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return format_g4(seconds);
    }
    if seconds == 0.0 {
        return format!("{}s", format_g4(seconds));
    }
    if seconds.abs() < 1.0 {
        return scale_up(seconds, "s");
    }
    let sign = if seconds < 0.0 { "-" } else { "" };
    let magnitude = seconds.abs();
    // Go's int64 conversion truncates toward zero, as this cast does.
    let whole = magnitude as i64;
    let (days, hours) = (whole / 86_400, whole / 3_600 % 24);
    let (minutes, secs) = (whole / 60 % 60, whole % 60);
    if days != 0 {
        format!("{sign}{days}d {hours}h {minutes}m {secs}s")
    } else if hours != 0 {
        format!("{sign}{hours}h {minutes}m {secs}s")
    } else if minutes != 0 {
        format!("{sign}{minutes}m {secs}s")
    } else {
        format!("{sign}{}s", format_g4(magnitude))
    }
}

/// Prometheus's `humanizeTimestamp`: Unix seconds to Go's `time.Time` text in UTC, at the
/// millisecond precision of Prometheus's `model.Time`.
fn humanize_timestamp(seconds: f64) -> Result<String, String> {
    if !seconds.is_finite() {
        return Ok(format_g4(seconds));
    }
    let nanos = seconds * 1e9;
    // i64::MIN and i64::MAX as f64 are ±2^63, the bounds Go compares against.
    let (low, high) = (i64::MIN as f64, i64::MAX as f64);
    if nanos > high || nanos < low {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float(seconds)
        ));
    }
    // Truncating toward zero, as Go's int64 conversion and division do.
    let millis = nanos as i64 / 1_000_000;
    Ok(format_utc_millis(millis))
}

/// Formats milliseconds since the epoch as Go prints a UTC `time.Time`.
fn format_utc_millis(millis: i64) -> String {
    let (secs, milli) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let fraction = if milli == 0 {
        String::new()
    } else {
        format!(".{milli:03}").trim_end_matches('0').to_owned()
    };
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}{fraction} +0000 UTC",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------------------
// Go fmt: number formatting and printf
// ---------------------------------------------------------------------------------------

/// Go's `%v` for a float64.
fn format_float(value: f64) -> String {
    format_g(value, None)
}

/// Go's `%.4g`, the format of the humanize family.
fn format_g4(value: f64) -> String {
    format_g(value, Some(4))
}

/// Go's `%g` (shortest digits when `precision` is None), sign included.
fn format_g(value: f64, precision: Option<usize>) -> String {
    if let Some(special) = special_float(value) {
        return special;
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    format!("{sign}{}", format_g_magnitude(value.abs(), precision))
}

fn special_float(value: f64) -> Option<String> {
    if value.is_nan() {
        Some("NaN".to_owned())
    } else if value.is_infinite() {
        Some(if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned())
    } else {
        None
    }
}

/// Decimal digits of a finite, non-negative value (trailing zeros dropped) and the position
/// of the decimal point, rounded to `significant` digits or shortest round-trip when None.
fn decimal_digits(magnitude: f64, significant: Option<usize>) -> (Vec<u8>, i32) {
    if magnitude == 0.0 {
        return (Vec::new(), 0);
    }
    let text = match significant {
        Some(digits) => format!("{:.*e}", digits.saturating_sub(1), magnitude),
        None => format!("{magnitude:e}"),
    };
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exponent + 1)
}

fn digit_count(digits: &[u8]) -> i32 {
    i32::try_from(digits.len()).unwrap_or(i32::MAX)
}

fn format_g_magnitude(magnitude: f64, precision: Option<usize>) -> String {
    let precision = precision.map(|p| p.max(1));
    let (digits, point) = decimal_digits(magnitude, precision);
    let count = digit_count(&digits);
    let (precision, exponent_limit) = match precision {
        None => (count, 6),
        Some(p) => {
            let p = i32::try_from(p).unwrap_or(i32::MAX);
            let limit = if p > count && count >= point {
                count
            } else {
                p
            };
            (p, limit)
        }
    };
    let exponent = point - 1;
    if exponent < -4 || exponent >= exponent_limit {
        return exponent_form(&digits, point, (precision.min(count) - 1).max(0));
    }
    let precision = if precision > point { count } else { precision };
    fixed_form(&digits, point, (precision - point).max(0))
}

fn digit_at(digits: &[u8], position: i32) -> char {
    usize::try_from(position)
        .ok()
        .and_then(|position| digits.get(position))
        .map_or('0', |digit| char::from(*digit))
}

/// `d.ddde±XX` with `decimals` digits after the point.
fn exponent_form(digits: &[u8], point: i32, decimals: i32) -> String {
    let mut text = String::from(digit_at(digits, 0));
    if decimals > 0 {
        text.push('.');
        (1..=decimals).for_each(|position| text.push(digit_at(digits, position)));
    }
    let exponent = if digits.is_empty() { 0 } else { point - 1 };
    let sign = if exponent < 0 { '-' } else { '+' };
    text.push_str(&format!("e{sign}{:02}", exponent.abs()));
    text
}

/// `ddd.ddd` with `decimals` digits after the point.
fn fixed_form(digits: &[u8], point: i32, decimals: i32) -> String {
    let mut text = String::new();
    if point > 0 {
        (0..point).for_each(|position| text.push(digit_at(digits, position)));
    } else {
        text.push('0');
    }
    if decimals > 0 {
        text.push('.');
        (0..decimals).for_each(|offset| text.push(digit_at(digits, point + offset)));
    }
    text
}

/// A parsed `%` directive: flags, width and precision.
#[derive(Debug, Default)]
struct Directive {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs templates use.
fn sprintf(format: &str, args: &[Value]) -> String {
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

fn parse_directive(chars: &[char], position: &mut usize) -> (Directive, Option<char>) {
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

fn take_digits(chars: &[char], position: &mut usize) -> Option<usize> {
    let start = *position;
    while chars.get(*position).is_some_and(char::is_ascii_digit) {
        *position += 1;
    }
    let digits: String = chars[start..*position].iter().collect();
    digits.parse().ok()
}

fn format_argument(directive: &Directive, verb: char, arg: &Value) -> String {
    if verb == 'T' {
        return pad(directive, arg.type_name());
    }
    let formatted = match arg {
        Value::Str(text) => format_string(directive, verb, text),
        Value::Int(number) => format_integer(directive, verb, *number),
        Value::Float(number) => format_float_verb(directive, verb, *number),
        Value::Bool(flag) if matches!(verb, 'v' | 't') => Some(pad(directive, &flag.to_string())),
        Value::Map(_) | Value::Record(_) if matches!(verb, 'v' | 's') => {
            Some(pad(directive, &arg.to_string()))
        }
        _ => None,
    };
    formatted.unwrap_or_else(|| format!("%!{verb}({}={arg})", arg.type_name()))
}

fn format_string(directive: &Directive, verb: char, text: &str) -> Option<String> {
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

fn format_integer(directive: &Directive, verb: char, number: i64) -> Option<String> {
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

fn format_float_verb(directive: &Directive, verb: char, number: f64) -> Option<String> {
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
fn pad(directive: &Directive, text: &str) -> String {
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
fn pad_number(directive: &Directive, negative: bool, digits: &str) -> String {
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
fn go_quote(text: &str, quote: char) -> String {
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
    use super::*;

    fn data() -> TemplateData {
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
        }
    }

    fn run(text: &str) -> String {
        expand("test", text, &data())
    }

    fn run_with_value(text: &str, value: f64) -> String {
        let mut data = data();
        data.value = value;
        expand("test", text, &data)
    }

    fn failure(text: &str) -> String {
        let output = run(text);
        assert!(
            output.starts_with("<error expanding template: "),
            "expected an error for {text:?}, got {output:?}"
        );
        output
    }

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

    // Go fmt %v for float64 (strconv 'g', shortest, %e from exponent 6 or below -4); the
    // Prometheus test "HumanizeTimestamp - uint with error" shows 1.8446744073709552e+19.
    #[test]
    fn floats_print_like_go_v() {
        let cases = [
            (95.0, "95"),
            (0.5, "0.5"),
            (1e21, "1e+21"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123_456.0, "123456"),
            (1_234_567.0, "1.234567e+06"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (-2.5, "-2.5"),
        ];
        for (value, expected) in cases {
            assert_eq!(run_with_value("{{ $value }}", value), expected, "{value}");
        }
    }

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

    // Go text/template docs, "Pipelines": the piped value is the last argument.
    #[test]
    fn pipelines_pass_last_argument() {
        assert_eq!(run("{{ \"b\" | printf \"%s-%s\" \"a\" }}"), "a-b");
        assert_eq!(
            run("{{ $labels.job | toUpper | printf \"<%s>\" }}"),
            "<IPFS>"
        );
    }

    // Go text/template docs, "Arguments": parenthesised pipelines and field chains on them.
    #[test]
    fn parenthesised_pipelines() {
        assert_eq!(
            run("{{ printf \"%s/%s\" (index $labels \"job\") (toUpper \"x\") }}"),
            "ipfs/X"
        );
        assert_eq!(run("{{ (.Labels).severity }}"), "page");
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

    // Go text/template docs, "Variables": := declares, = assigns, declarations print nothing.
    #[test]
    fn variables_declare_and_assign() {
        assert_eq!(run("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
        assert_eq!(
            run("{{ $x := \"a\" }}{{ if true }}{{ $x = \"b\" }}{{ end }}{{ $x }}"),
            "b"
        );
    }

    // Go text/template docs, "Variables": scope ends at the control structure's end.
    #[test]
    fn variable_scope_ends_with_block() {
        let error = check("t", "{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}").unwrap_err();
        assert!(error.contains("undefined variable \"$y\""), "{error}");
    }

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
        assert_eq!(expand("t", text, &empty), "none");
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

    // Go fmt.Sprint: spaces only between operands when neither is a string.
    #[test]
    fn print_spacing() {
        assert_eq!(run("{{ print 1 2 \"a\" \"b\" 3 }}"), "1 2ab3");
    }

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

    // Prometheus template_test.go "Humanize - float64" and "Humanize - int".
    #[test]
    fn humanize_values() {
        let text =
            "{{ humanize 0.0 }}:{{ humanize 1.0 }}:{{ humanize 1234567.0 }}:{{ humanize .12 }}";
        assert_eq!(run(text), "0:1:1.235M:120m");
        assert_eq!(
            run("{{ humanize -1 }}:{{ humanize 9223372036854775807 }}"),
            "-1:9.223E"
        );
        assert_eq!(run("{{ humanize 0.00012 }}"), "120u");
    }

    // Prometheus template_test.go "Humanize - string" and "Humanize - string with error".
    #[test]
    fn humanize_parses_strings() {
        assert_eq!(run("{{ humanize \"1234567.0\" }}"), "1.235M");
        let output = failure("{{ humanize \"one\" }}");
        assert!(
            output.contains(
                "error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax"
            ),
            "{output}"
        );
        assert!(failure("{{ humanize true }}").contains("can't convert bool to float"));
    }

    // Prometheus template_test.go "Humanize1024 - float64" and "Humanize1024 - int".
    #[test]
    fn humanize_1024_values() {
        let text = "{{ humanize1024 0.0 }}:{{ humanize1024 1.0 }}:{{ humanize1024 1048576.0 }}:{{ humanize1024 .12 }}";
        assert_eq!(run(text), "0:1:1Mi:0.12");
        assert_eq!(
            run("{{ humanize1024 1234567 }}:{{ humanize1024 9223372036854775807 }}"),
            "1.177Mi:8Ei"
        );
    }

    // Prometheus template_test.go "HumanizeDuration - seconds - float64" and "- int".
    #[test]
    fn humanize_duration_seconds() {
        let text = "{{ humanizeDuration 0 }}:{{ humanizeDuration 1 }}:{{ humanizeDuration 60 }}:{{ humanizeDuration 3600 }}:{{ humanizeDuration 86400 }}:{{ humanizeDuration 90000 }}:{{ humanizeDuration -183845 }}:{{ humanizeDuration 899.99 }}";
        assert_eq!(
            run(text),
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s"
        );
        assert_eq!(
            run("{{ humanizeDuration 90061 }}:{{ humanizeDuration 1234567 }}"),
            "1d 1h 1m 1s:14d 6h 56m 7s"
        );
    }

    // Prometheus template_test.go "HumanizeDuration - subsecond and fractional seconds".
    #[test]
    fn humanize_duration_fractions() {
        let text = "{{ humanizeDuration .1 }}:{{ humanizeDuration .0001 }}:{{ humanizeDuration .12345 }}:{{ humanizeDuration 60.1 }}:{{ humanizeDuration 1.2345 }}:{{ humanizeDuration 12.345 }}:{{ humanizeDuration 0.25 }}";
        assert_eq!(run(text), "100ms:100us:123.5ms:1m 0s:1.234s:12.35s:250ms");
    }

    // Prometheus template_test.go "HumanizePercentage - model.SampleValue input - float64".
    #[test]
    fn humanize_percentage_values() {
        let text = "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}";
        assert_eq!(run(text), "-22.22%:0%:12.35%:123.5%");
        assert_eq!(
            run("{{ 0.8765 | humanizePercentage }}:{{ 1234567 | humanizePercentage }}"),
            "87.65%:1.235e+08%"
        );
    }

    // Prometheus template_test.go "HumanizeTimestamp - int" and "- model.SampleValue input".
    #[test]
    fn humanize_timestamp_values() {
        assert_eq!(
            run("{{ humanizeTimestamp 1435065584 }}"),
            "2015-06-23 13:19:44 +0000 UTC"
        );
        assert_eq!(
            run("{{ 1435065584.128 | humanizeTimestamp }}"),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            run("{{ humanizeTimestamp -1 }}:{{ humanizeTimestamp 9223372036 }}"),
            "1969-12-31 23:59:59 +0000 UTC:2262-04-11 23:47:16 +0000 UTC"
        );
    }

    // Prometheus template_test.go "HumanizeTimestamp - int with error".
    #[test]
    fn humanize_timestamp_overflow() {
        let output = failure("{{ humanizeTimestamp -9223372036854775807 }}");
        assert!(output.contains("error calling humanizeTimestamp: -9.223372036854776e+18 cannot be represented as a nanoseconds timestamp since it overflows int64"), "{output}");
    }

    // Prometheus template_test.go "Humanize* Inf and NaN - float64".
    #[test]
    fn humanize_infinities_and_nan() {
        let text = "{{ humanize $value }}:{{ humanize1024 $value }}:{{ humanizeDuration $value }}:{{ humanizeTimestamp $value }}";
        for (value, expected) in [
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(run_with_value(text, value), [expected; 4].join(":"));
        }
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

    // Queries need a PromQL engine, which templates here do not have.
    #[test]
    fn query_is_unsupported() {
        let output = failure("{{ query \"up\" | first | value }}");
        assert!(
            output.contains("error calling query: queries in templates are not supported"),
            "{output}"
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

    // Go text/template exec.go: field access on a non-map, arguments to a non-function.
    #[test]
    fn execution_errors_name_the_template() {
        let output = failure("line\n{{ $labels.job.x }}");
        assert_eq!(output, "<error expanding template: error executing template test: template: test:2: can't evaluate field x in type string>");
        assert!(failure("{{ .Foo }}").contains("can't evaluate field Foo in type struct"));
        assert!(failure("{{ $value 1 }}").contains("can't give argument to non-function $value"));
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
        assert_eq!(
            error,
            "error parsing template t: template: t:1: undefined variable \"$undefined\""
        );
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
            "{{ define \"x\" }}{{ end }}",
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
