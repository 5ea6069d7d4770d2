//! docker_auth's patterns in the gate's rule syntax, and evaluated on fixed text.
//!
//! docker_auth matches `account`, `type`, `name`, `service` and label values with one
//! function (`authz/acl.go`, `matchString`). Text between slashes (`/re/`, more than two
//! characters) is a Go regular expression searched *anywhere* in the value
//! (`regexp.Match`, unanchored). Anything else is a `path.Match` glob over the whole
//! value: `*` is a run and `?` one character, neither ever matching `/`; `[...]` is a
//! character class (`[^...]` negated) that may match `/`; `\` escapes; a malformed glob
//! matches nothing. Placeholders (`${account}`, `${labels:NAME}`, ...) are replaced
//! before matching by their value escaped with `regexp.QuoteMeta`, so they are literal
//! text, in a glob too.
//!
//! The gate's patterns differ (`authz/rules.rs`): regexes are anchored, account and
//! group globs let `*` cross `/`, name globs keep `*` and `?` within a segment (as
//! docker_auth does) but read `**` as crossing `/`, and a name glob may only hold
//! repository-name characters. So:
//!
//! - `/re/` becomes `/(?s:.*)(?:re)(?s:.*)/`, which matches a whole value exactly when
//!   `re` matches somewhere in it; `/^...$/` without `|` or flags, `/.*/` and `/.+/` are
//!   kept readable. Go's ASCII-only `\d`, `\w`, `\s` (and their negations) are spelled
//!   as ASCII classes, since the gate's are Unicode.
//! - An account or group glob without wildcards stays literal (as a regex when the gate
//!   would read it otherwise: `anonymous`, `*`, `/x/`); one with wildcards becomes an
//!   anchored regex with `*` → `[^/]*` and `?` → `[^/]`.
//! - A name glob stays a glob, runs of `*` collapsing to one; with a character class
//!   it becomes a regex. A name glob that needs a character no repository name holds,
//!   or that starts with `/`, can never match a request: [`Translation::Never`].

use fancy_regex::Regex;

/// Which field of a gate rule a pattern goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `account`: a glob's `*` crosses `/`.
    Account,
    /// `group`: as `account`.
    Group,
    /// `name`: a glob's `*` stays within a segment.
    Name,
}

/// A piece of a docker_auth pattern once its placeholders are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Pattern source, as written (a glob or the inside of a regex).
    Source(String),
    /// A value docker_auth substitutes escaped: literal text.
    Literal(String),
    /// `${account}`, left for the gate to substitute (in a name only).
    Account,
    /// `${labels:<the group label>}`, left for the gate as `${group}` (in a name only).
    Group,
}

impl Piece {
    /// Whether the gate substitutes it.
    pub fn is_variable(&self) -> bool {
        matches!(self, Piece::Account | Piece::Group)
    }

    /// The fewest characters it stands for (a variable: a user name or group, at least
    /// one).
    pub fn min_len(&self) -> usize {
        match self {
            Piece::Source(s) | Piece::Literal(s) => s.chars().count(),
            Piece::Account | Piece::Group => 1,
        }
    }

    /// Its first character; `None` for a variable (or empty text).
    pub fn first_char(&self) -> Option<char> {
        match self {
            Piece::Source(s) | Piece::Literal(s) => s.chars().next(),
            Piece::Account | Piece::Group => None,
        }
    }

    /// Its last character; `None` for a variable (or empty text).
    pub fn last_char(&self) -> Option<char> {
        match self {
            Piece::Source(s) | Piece::Literal(s) => s.chars().next_back(),
            Piece::Account | Piece::Group => None,
        }
    }
}

/// Removes the slashes around a regex: the first character of the first piece and the
/// last of the last (text pieces both, as the caller checked).
pub fn strip_slashes(pieces: &mut Vec<Piece>) {
    if let Some(Piece::Source(s) | Piece::Literal(s)) = pieces.first_mut() {
        s.remove(0);
    }
    if let Some(Piece::Source(s) | Piece::Literal(s)) = pieces.last_mut() {
        s.pop();
    }
    pieces.retain(|p| p.min_len() > 0);
}

/// A docker_auth pattern in the gate's syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Translation {
    /// This pattern matches what docker_auth's does.
    Pattern(String),
    /// docker_auth's pattern matches every value that can reach it.
    Any,
    /// docker_auth's pattern matches no value that can reach it.
    Never,
    /// The gate's rules cannot say it; the reason.
    Inexpressible(String),
}

/// A `${...}` in a docker_auth pattern (`acl.go`, `Matches`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder<'a> {
    /// `${account}`.
    Account,
    /// `${type}`.
    Type,
    /// `${name}`.
    Name,
    /// `${service}`.
    Service,
    /// `${labels:NAME}`, one permutation of the label's values at a time.
    Label(&'a str),
    /// `${field:N}`: a capture group of another field's regex.
    Capture,
}

/// A part of a pattern as written: text, or a placeholder docker_auth replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part<'a> {
    /// Pattern text, including any `${...}` docker_auth leaves as it is.
    Text(&'a str),
    /// A placeholder, with its text as written.
    Placeholder(Placeholder<'a>, &'a str),
}

/// Splits `pattern` at the placeholders docker_auth replaces.
pub fn parts(pattern: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut rest = pattern;
    let mut text_start = 0;
    let mut offset = 0;
    while let Some(open) = rest.find("${") {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let raw = &rest[open..open + close + 1];
        let inner = &raw[2..raw.len() - 1];
        let kind = match inner {
            "account" => Some(Placeholder::Account),
            "type" => Some(Placeholder::Type),
            "name" => Some(Placeholder::Name),
            "service" => Some(Placeholder::Service),
            _ => match inner.split_once(':') {
                Some(("labels", label)) => Some(Placeholder::Label(label)),
                Some((field, n)) if !field.is_empty() && is_digits(n) => Some(Placeholder::Capture),
                _ => None,
            },
        };
        let start = offset + open;
        let end = start + raw.len();
        if let Some(kind) = kind {
            if text_start < start {
                parts.push(Part::Text(&pattern[text_start..start]));
            }
            parts.push(Part::Placeholder(kind, raw));
            text_start = end;
        }
        offset = end;
        rest = &pattern[end..];
    }
    if text_start < pattern.len() {
        parts.push(Part::Text(&pattern[text_start..]));
    }
    parts
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether docker_auth reads `pattern` (as written) as a regex.
pub fn is_regex(pattern: &str) -> bool {
    pattern.len() > 2 && pattern.starts_with('/') && pattern.ends_with('/')
}

/// Translates a pattern for `field`. `regex` is whether docker_auth reads it as one;
/// `pieces` hold the source without the slashes of a regex.
pub fn translate(pieces: &[Piece], regex: bool, field: Field) -> Translation {
    let has_vars = pieces
        .iter()
        .any(|p| matches!(p, Piece::Account | Piece::Group));
    if has_vars && field != Field::Name {
        return Translation::Inexpressible(
            "a placeholder outside name (the gate substitutes only in name)".into(),
        );
    }
    if regex {
        translate_regex(pieces)
    } else {
        translate_glob(pieces, field)
    }
}

/// Whether docker_auth's pattern, with its placeholders resolved to `pieces` (no
/// variables left), matches `text`.
pub fn matches(pieces: &[Piece], regex: bool, text: &str) -> bool {
    if regex {
        let source = regex_source(pieces);
        return Regex::new(&source).is_ok_and(|re| re.is_match(text).unwrap_or(false));
    }
    let Some(tokens) = glob_tokens(pieces) else {
        return false;
    };
    let source = format!("^(?:{})$", tokens_regex(&tokens));
    Regex::new(&source).is_ok_and(|re| re.is_match(text).unwrap_or(false))
}

fn translate_regex(pieces: &[Piece]) -> Translation {
    let source = regex_source(pieces);
    if let [Piece::Source(only)] = pieces {
        if only == ".*" || only == ".+" {
            return Translation::Any;
        }
    }
    let probe = source.replace("${account}", "a").replace("${group}", "a");
    if let Err(e) = Regex::new(&probe) {
        return Translation::Inexpressible(format!("its regex does not compile here: {e}"));
    }
    let anchored = source.starts_with('^')
        && source.ends_with('$')
        && !source.ends_with("\\$")
        && !source.contains('|')
        && !source.contains("(?");
    if anchored {
        Translation::Pattern(format!("/{source}/"))
    } else {
        Translation::Pattern(format!("/(?s:.*)(?:{source})(?s:.*)/"))
    }
}

/// The regex source of the pieces: source rewritten to Go's meaning, literals
/// escaped, variables as the gate writes them.
fn regex_source(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Source(s) => go_regex(s),
            Piece::Literal(s) => fancy_regex::escape(s).into_owned(),
            Piece::Account => "${account}".into(),
            Piece::Group => "${group}".into(),
        })
        .collect()
}

/// Go's `\d`, `\w`, `\s` and their negations are ASCII-only; spelled out so that the
/// gate's Unicode-aware engine means the same. Nested classes are fine inside `[...]`.
fn go_regex(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('s') => out.push_str("[\\t\\n\\f\\r ]"),
            Some('S') => out.push_str("[^\\t\\n\\f\\r ]"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A token of a Go `path.Match` glob.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `*`: any run without `/`.
    Star,
    /// `?`: one character other than `/`.
    Quest,
    /// `[...]`: ranges, possibly negated; may match `/`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Account,
    Group,
}

/// The glob's tokens, or `None` when a source piece is malformed (then docker_auth's
/// `path.Match` fails and the pattern matches nothing).
fn glob_tokens(pieces: &[Piece]) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Source(s) => tokens.extend(parse_glob(s)?),
            Piece::Literal(s) => tokens.extend(s.chars().map(Token::Lit)),
            Piece::Account => tokens.push(Token::Account),
            Piece::Group => tokens.push(Token::Group),
        }
    }
    Some(tokens)
}

/// Go's `path.Match` grammar; `None` for a pattern it refuses (`ErrBadPattern`).
fn parse_glob(glob: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::Star,
            '?' => Token::Quest,
            '\\' => Token::Lit(chars.next()?),
            '[' => {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                loop {
                    if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
                        break;
                    }
                    let lo = class_char(&mut chars)?;
                    let hi = if chars.next_if_eq(&'-').is_some() {
                        class_char(&mut chars)?
                    } else {
                        lo
                    };
                    if hi < lo {
                        return None;
                    }
                    ranges.push((lo, hi));
                }
                Token::Class { negated, ranges }
            }
            c => Token::Lit(c),
        });
    }
    Some(tokens)
}

/// One character of a class range (Go's `getEsc`): not `-` or `]` unescaped, and
/// something must follow it.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<char> {
    let c = match chars.next()? {
        '-' | ']' => return None,
        '\\' => chars.next()?,
        c => c,
    };
    chars.peek()?;
    Some(c)
}

/// The regex for glob tokens (not anchored); variables as the gate writes them.
fn tokens_regex(tokens: &[Token]) -> String {
    let mut out = String::new();
    for token in tokens {
        match token {
            Token::Lit(c) => out.push_str(&fancy_regex::escape(&c.to_string())),
            Token::Star => out.push_str("[^/]*"),
            Token::Quest => out.push_str("[^/]"),
            Token::Class { negated, ranges } => {
                out.push('[');
                if *negated {
                    out.push('^');
                }
                for (lo, hi) in ranges {
                    class_member(&mut out, *lo);
                    if hi != lo {
                        out.push('-');
                        class_member(&mut out, *hi);
                    }
                }
                out.push(']');
            }
            Token::Account => out.push_str("${account}"),
            Token::Group => out.push_str("${group}"),
        }
    }
    out
}

/// A character inside a regex class: ASCII punctuation escaped (`-`, `]`, `^`, `\\`,
/// `[`, `&`, `~` all mean something there), anything else as it is.
fn class_member(out: &mut String, c: char) {
    if c.is_ascii_punctuation() {
        out.push('\\');
    }
    out.push(c);
}

fn translate_glob(pieces: &[Piece], field: Field) -> Translation {
    let Some(tokens) = glob_tokens(pieces) else {
        return if pieces.len() == 1 {
            Translation::Never
        } else {
            Translation::Inexpressible("a glob that is malformed around a placeholder".into())
        };
    };
    match field {
        Field::Name => name_glob(&tokens),
        Field::Account | Field::Group => account_glob(&tokens, field),
    }
}

fn name_glob(tokens: &[Token]) -> Translation {
    let outside = |c: &char| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/'))
    };
    let impossible = tokens.first() == Some(&Token::Lit('/'))
        || tokens
            .iter()
            .any(|t| matches!(t, Token::Lit(c) if outside(c)));
    if impossible || tokens.is_empty() {
        return Translation::Never;
    }
    if tokens.iter().any(|t| matches!(t, Token::Class { .. })) {
        return Translation::Pattern(format!("/{}/", tokens_regex(tokens)));
    }
    let mut out = String::new();
    let mut previous_star = false;
    for token in tokens {
        let star = *token == Token::Star;
        match token {
            Token::Star if previous_star => {}
            Token::Star => out.push('*'),
            Token::Quest => out.push('?'),
            Token::Lit(c) => out.push(*c),
            Token::Account => out.push_str("${account}"),
            Token::Group => out.push_str("${group}"),
            Token::Class { .. } => unreachable!("classes go to a regex above"),
        }
        previous_star = star;
    }
    Translation::Pattern(out)
}

fn account_glob(tokens: &[Token], field: Field) -> Translation {
    let literal: Option<String> = tokens
        .iter()
        .map(|t| match t {
            Token::Lit(c) => Some(*c),
            _ => None,
        })
        .collect();
    match literal {
        Some(text) if text.is_empty() => Translation::Never,
        Some(text) if reads_as_literal(&text, field) => Translation::Pattern(text),
        _ => Translation::Pattern(format!("/{}/", tokens_regex(tokens))),
    }
}

/// Whether the gate reads `text`, as an account or group pattern, as that literal.
fn reads_as_literal(text: &str, field: Field) -> bool {
    !(text.contains(['*', '?'])
        || text.contains("${")
        || (text.len() >= 2 && text.starts_with('/') && text.ends_with('/'))
        || (field == Field::Account && text == "anonymous"))
}

#[cfg(test)]
mod tests;
