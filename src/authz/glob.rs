//! Globs without backtracking: repository-name globs (`*` and `?` within one path
//! segment, `**` across `/`) and account/group globs (`*` any run, `?` any one
//! character). A match simulates every position in the pattern at once, so it costs
//! at most (text length + 1) × (pattern length + 1) steps whatever the pattern;
//! there is no regex engine and no ReDoS.

/// A compiled glob. Name globs ([`Glob::name`]) keep `*` and `?` within one path
/// segment and let `**` cross `/`; account globs ([`Glob::account`]) let `*` (and
/// `**`) match anything. Every other character is literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

/// One element of a glob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// This character.
    Char(char),
    /// Any one character but `/` (`?` in a name).
    SegmentChar,
    /// Any one character (`?` in an account).
    AnyChar,
    /// Any run of characters without `/` (`*` in a name).
    SegmentRun,
    /// Any run of characters (`**`, and `*` in an account).
    AnyRun,
}

impl Token {
    /// Whether the token can match nothing.
    fn is_run(self) -> bool {
        matches!(self, Token::SegmentRun | Token::AnyRun)
    }

    /// Where `c` takes the token at `i`: `i` (a run), `i + 1` (one character), or nowhere.
    fn step(self, i: usize, c: char) -> Option<usize> {
        match self {
            Token::Char(t) if t == c => Some(i + 1),
            Token::SegmentChar if c != '/' => Some(i + 1),
            Token::AnyChar => Some(i + 1),
            Token::SegmentRun if c != '/' => Some(i),
            Token::AnyRun => Some(i),
            _ => None,
        }
    }
}

impl Glob {
    /// A repository-name glob: `*` within a segment, `**` across, `?` one non-`/`.
    pub fn name(pattern: &str) -> Glob {
        let mut tokens = Vec::new();
        push_name_tokens(pattern, &mut tokens);
        Glob { tokens }
    }

    /// An account or group glob: `*` any run of characters, `?` any one.
    pub fn account(pattern: &str) -> Glob {
        let tokens = pattern
            .chars()
            .map(|c| match c {
                '*' => Token::AnyRun,
                '?' => Token::AnyChar,
                c => Token::Char(c),
            })
            .collect();
        Glob { tokens }
    }

    /// A glob matching exactly `text`.
    pub(crate) fn literal(text: &str) -> Glob {
        Glob {
            tokens: text.chars().map(Token::Char).collect(),
        }
    }

    /// Whether the glob matches the whole of `text`, in O(len(text) × len(pattern)).
    pub fn matches(&self, text: &str) -> bool {
        matches_tokens(&self.tokens, text)
    }
}

/// Appends the tokens of a name glob.
pub(crate) fn push_name_tokens(pattern: &str, tokens: &mut Vec<Token>) {
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' if chars.next_if_eq(&'*').is_some() => Token::AnyRun,
            '*' => Token::SegmentRun,
            '?' => Token::SegmentChar,
            c => Token::Char(c),
        });
    }
}

/// Runs the glob as an automaton whose states are the positions in `tokens`: after
/// each character of `text`, `active[i]` says whether `tokens[..i]` can match what was
/// read so far. No backtracking, so the cost is bounded by the product of the lengths.
pub(crate) fn matches_tokens(tokens: &[Token], text: &str) -> bool {
    let mut active = vec![false; tokens.len() + 1];
    let mut next = active.clone();
    active[0] = true;
    skip_runs(tokens, &mut active);
    for c in text.chars() {
        next.fill(false);
        for (i, token) in tokens.iter().enumerate() {
            if !active[i] {
                continue;
            }
            if let Some(to) = token.step(i, c) {
                next[to] = true;
            }
        }
        std::mem::swap(&mut active, &mut next);
        skip_runs(tokens, &mut active);
        if !active.contains(&true) {
            return false;
        }
    }
    active[tokens.len()]
}

/// A run can match nothing: where it is active, so is the position after it.
fn skip_runs(tokens: &[Token], active: &mut [bool]) {
    for (i, token) in tokens.iter().enumerate() {
        if active[i] && token.is_run() {
            active[i + 1] = true;
        }
    }
}
