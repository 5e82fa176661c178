//! Parsing tokens into Go's `text/template` tree: text, actions, pipelines with variable
//! declarations and assignments, `if`/`with`/`range` with `else`, parenthesised pipelines,
//! checked against the function map as `template.Parse` checks it.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use super::lexer::{Token, TokenKind};
use super::number::format_float;
use super::{Located, MAX_NESTING};

#[derive(Debug)]
pub(super) enum Node {
    Text(String),
    Action {
        line: usize,
        pipe: Pipeline,
    },
    If(Branch),
    With(Branch),
    Range(Branch),
    /// `{{break}}`: leaves the innermost `range`.
    Break,
    /// `{{continue}}`: goes on with the innermost `range`'s next element.
    Continue,
    /// `{{template "name" pipeline}}` (and the call half of `{{block}}`).
    Template {
        line: usize,
        name: String,
        pipe: Option<Pipeline>,
    },
}

/// A parsed template: its body and the templates it defines by name (`define`, `block`).
#[derive(Debug, Default)]
pub(super) struct Tree {
    pub(super) root: Vec<Node>,
    pub(super) defined: BTreeMap<String, Rc<Vec<Node>>>,
}

/// An `if`, `with` or `range` block: its pipeline, body and `else` part.
#[derive(Debug)]
pub(super) struct Branch {
    pub(super) line: usize,
    pub(super) pipe: Pipeline,
    pub(super) body: Vec<Node>,
    pub(super) otherwise: Vec<Node>,
}

#[derive(Debug, Default)]
pub(super) struct Pipeline {
    pub(super) declarations: Vec<String>,
    pub(super) assigns: bool,
    pub(super) commands: Vec<Command>,
}

#[derive(Debug)]
pub(super) struct Command {
    pub(super) operands: Vec<Operand>,
}

#[derive(Debug)]
pub(super) struct Operand {
    pub(super) term: Term,
    pub(super) fields: Vec<String>,
}

#[derive(Debug)]
pub(super) enum Term {
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
pub(super) enum Context {
    Command,
    If,
    With,
    Range,
    Parenthesized,
}

impl Context {
    pub(super) fn name(self) -> &'static str {
        match self {
            Context::Command => "command",
            Context::If => "if",
            Context::With => "with",
            Context::Range => "range",
            Context::Parenthesized => "parenthesized pipeline",
        }
    }
}

pub(super) enum Stop {
    Eof,
    End,
    Else,
}

pub(super) enum Step {
    Node(Node),
    Stop(Stop),
}

pub(super) const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// Functions a template may call: Go's builtins and Prometheus's additions.
pub(super) const FUNCTIONS: &[&str] = &[
    // Go's text/template builtins.
    "and",
    "call",
    "html",
    "index",
    "js",
    "len",
    "not",
    "or",
    "print",
    "printf",
    "println",
    "slice",
    "urlquery",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    // Prometheus's template map (template/template.go, 2.42 to 3.5).
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    // Added by Prometheus 3.6.
    "now",
    "toDuration",
    "urlQueryEscape",
];

pub(super) struct Parser {
    pub(super) tokens: Vec<Token>,
    pub(super) pos: usize,
    pub(super) scope: Vec<String>,
    pub(super) depth: usize,
    pub(super) defined: BTreeMap<String, Rc<Vec<Node>>>,
    /// How many `range` bodies the parser is in, where `break` and `continue` may stand.
    pub(super) range_depth: usize,
}

impl Parser {
    pub(super) fn new(tokens: Vec<Token>) -> Self {
        Parser {
            tokens,
            pos: 0,
            scope: vec!["$".to_owned()],
            depth: 0,
            defined: BTreeMap::new(),
            range_depth: 0,
        }
    }

    pub(super) fn parse_template(mut self) -> Result<Tree, Located> {
        let (nodes, stop) = self.parse_list()?;
        match stop {
            Stop::Eof => Ok(Tree {
                root: nodes,
                defined: self.defined,
            }),
            Stop::End => Err(self.error("unexpected {{end}}")),
            Stop::Else => Err(self.error("unexpected {{else}}")),
        }
    }

    pub(super) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    pub(super) fn peek_kind(&self) -> Option<&TokenKind> {
        self.peek().map(|token| &token.kind)
    }

    pub(super) fn peek_word(&self) -> Option<String> {
        match self.peek_kind() {
            Some(TokenKind::Word(word)) => Some(word.clone()),
            _ => None,
        }
    }

    pub(super) fn advance_token(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += usize::from(token.is_some());
        token
    }

    pub(super) fn line(&self) -> usize {
        self.peek()
            .or_else(|| self.tokens.last())
            .map_or(1, |token| token.line)
    }

    pub(super) fn error(&self, message: impl Into<String>) -> Located {
        Located {
            line: self.line(),
            message: message.into(),
        }
    }

    pub(super) fn enter(&mut self) -> Result<(), Located> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error("template nested too deeply"));
        }
        Ok(())
    }

    pub(super) fn parse_list(&mut self) -> Result<(Vec<Node>, Stop), Located> {
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

    pub(super) fn parse_action(&mut self, line: usize) -> Result<Step, Located> {
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
            Some("define") if self.depth == 0 => {
                self.pos += 1;
                let name = self.template_name("define clause")?;
                self.expect_close("define clause")?;
                self.parse_definition(name)?;
                return Ok(Step::Node(Node::Text(String::new())));
            }
            Some(keyword @ ("template" | "block")) => {
                self.pos += 1;
                let context = format!("{keyword} clause");
                let name = self.template_name(&context)?;
                let pipe = match self.peek_kind() {
                    Some(TokenKind::Close) => {
                        self.pos += 1;
                        None
                    }
                    _ => Some(self.parse_pipeline(Context::Command)?),
                };
                if keyword == "block" {
                    self.parse_definition(name.clone())?;
                }
                return Ok(Step::Node(Node::Template { line, name, pipe }));
            }
            Some(keyword @ ("break" | "continue")) => {
                if self.range_depth == 0 {
                    return Err(self.error(format!("{{{{{keyword}}}}} outside {{{{range}}}}")));
                }
                self.pos += 1;
                self.expect_close(&format!("{{{{{keyword}}}}}"))?;
                return Ok(Step::Node(if keyword == "break" {
                    Node::Break
                } else {
                    Node::Continue
                }));
            }
            Some(keyword @ "define") => {
                return Err(self.error(format!("unexpected <{keyword}> in command")));
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

    /// The quoted name after `define`, `template` or `block`.
    fn template_name(&mut self, context: &str) -> Result<String, Located> {
        match self.advance_token() {
            Some(Token {
                kind: TokenKind::Str(name),
                ..
            }) => Ok(name),
            Some(token) => Err(self.error(format!("unexpected {} in {context}", token.kind))),
            None => Err(self.error("unexpected EOF")),
        }
    }

    /// A `define` or `block` body up to its `{{end}}`, with variables of its own (`$` is the
    /// dot it is called with), registered under `name`.
    fn parse_definition(&mut self, name: String) -> Result<(), Located> {
        self.enter()?;
        let outer_scope = std::mem::replace(&mut self.scope, vec!["$".to_owned()]);
        let outer_range_depth = std::mem::replace(&mut self.range_depth, 0);
        let (body, stop) = self.parse_list()?;
        self.range_depth = outer_range_depth;
        self.scope = outer_scope;
        self.depth -= 1;
        match stop {
            Stop::End => {}
            Stop::Else => return Err(self.error("unexpected {{else}}")),
            Stop::Eof => return Err(self.error("unexpected EOF")),
        }
        let non_empty = |nodes: &[Node]| {
            nodes
                .iter()
                .any(|node| !matches!(node, Node::Text(text) if text.trim().is_empty()))
        };
        if let Some(existing) = self.defined.get(&name) {
            if non_empty(existing) && non_empty(&body) {
                return Err(self.error(format!(
                    "template: multiple definition of template {name:?}"
                )));
            }
            if !non_empty(&body) {
                return Ok(());
            }
        }
        self.defined.insert(name, Rc::new(body));
        Ok(())
    }

    pub(super) fn expect_close(&mut self, context: &str) -> Result<(), Located> {
        match self.advance_token() {
            Some(Token {
                kind: TokenKind::Close,
                ..
            }) => Ok(()),
            Some(token) => Err(self.error(format!("unexpected {} in {context}", token.kind))),
            None => Err(self.error("unexpected EOF")),
        }
    }

    pub(super) fn parse_branch(
        &mut self,
        control: Context,
        line: usize,
    ) -> Result<Branch, Located> {
        self.enter()?;
        let scope_mark = self.scope.len();
        let pipe = self.parse_pipeline(control)?;
        let in_range = usize::from(control == Context::Range);
        self.range_depth += in_range;
        let body = self.parse_list();
        self.range_depth -= in_range;
        let (body, stop) = body?;
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

    pub(super) fn parse_else(&mut self, control: Context) -> Result<Vec<Node>, Located> {
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

    pub(super) fn parse_pipeline(&mut self, context: Context) -> Result<Pipeline, Located> {
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

    pub(super) fn parse_declarations(
        &mut self,
        pipe: &mut Pipeline,
        context: Context,
    ) -> Result<(), Located> {
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
    pub(super) fn require_no_pending_declaration(&self, pipe: &Pipeline) -> Result<(), Located> {
        if pipe.declarations.is_empty() {
            Ok(())
        } else {
            Err(self.error("range can only initialize variables"))
        }
    }

    pub(super) fn parse_command(&mut self) -> Result<Command, Located> {
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

    pub(super) fn parse_operand(&mut self) -> Result<Operand, Located> {
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

    pub(super) fn word_term(&self, word: &str) -> Result<Term, Located> {
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
pub(super) fn check_executable_stages(pipe: &Pipeline) -> Result<(), String> {
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
pub(super) fn parse_number(text: &str) -> Result<Term, String> {
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

#[cfg(test)]
mod tests {
    use super::super::check;
    use super::super::testing::*;

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
}
