//! Per-repository authorization rules: who may pull, push, delete and list
//! the catalog, modelled on cesanta/docker_auth's ACL.
//!
//! [`Rules::compile`] turns `[authz]` into [`Rules`]; [`Rules::decide`] takes an
//! [`Identity`] (or none, for a client without credentials) and a [`Request`] and
//! returns the [`Rights`] granted and which rule decided. Pure functions: no I/O, no
//! HTTP types. The front doors do not call it directly: they ask
//! [`crate::authz::policy::Policy`], which adds the built-in rules (no `[authz]`,
//! anonymous clients) around it. Compiling lives in `compile`, the text `acl explain`
//! prints for a rule in `explain`, the [`Rights`] set in `rights`; this file holds the
//! matching and the decision.
//!
//! # Rules
//!
//! `[[authz.rules]]` is an ordered list. The first rule that applies to a request
//! decides; a request that no rule applies to is denied. A rule applies when its
//! `account`, `group` and `name` all match:
//!
//! - `account`: a glob over the whole user name (`*` is any run of characters, `?` one
//!   character, everything else literal) or a `/regex/` that must match the whole
//!   name. Absent: any authenticated user. Exactly `anonymous`: clients that sent no
//!   credentials, and only them (a user who logs in with the name `anonymous` is not
//!   matched by it). No other pattern matches a client without credentials: `*`
//!   means any *authenticated* user.
//! - `group`: a glob or `/regex/` as for `account`; matches when any of the user's
//!   groups does. A rule with a `group` never applies to anonymous clients.
//! - `name`: the repository, see below. Absent: any repository.
//! - `actions`: what the rule grants: `pull`, `push`, `delete`, `catalog`, or `*` for
//!   all four. An empty list grants nothing: an explicit deny that ends the search.
//! - `comment`: free text, shown by `acl explain`.
//!
//! # Repository names
//!
//! A `name` is a glob unless it starts and ends with `/`:
//!
//! - `*` matches any run of characters within one path segment (never a `/`), `**`
//!   any run including `/` (or none), `?` one character other than `/`. Everything
//!   else is literal. `library/*` matches `library/alpine` but not `library/a/b`;
//!   `library/**` matches both. `library/**` does **not** match `library` itself, as
//!   `team-a/**` should not hand out the repository `team-a`: write a second rule for
//!   it (or the regex `/library(/.*)?/`). Likewise `**/alpine` does not match
//!   `alpine`. Repository names only hold `[a-z0-9._/-]`, so a glob holding any other
//!   character (an upper-case letter, say) could never match and is refused.
//! - `/regex/` (at least three characters): a regular expression (fancy-regex syntax)
//!   that must match the whole name; it is anchored for you.
//!
//! Unlike docker_auth, whose `path.Match` keeps `*` within a segment and has no `**`,
//! a rule here can cover a whole namespace with one glob.
//!
//! # Substitution
//!
//! In `name` (and only there), `${account}` stands for the user name and `${group}`
//! for each of the user's groups in turn: the rule applies if the name matches for
//! any of them. When the rule also has a `group` pattern, `${group}` only takes the
//! groups that match it, so `{ group = "team-*", name = "${group}/**" }` opens
//! `team-a/...` to members of `team-a` but not `admins/...` to members of `admins`.
//! The substituted text is always literal: a `*` in a user name is not a wildcard,
//! and in a `/regex/` it is escaped. A rule using `${account}` never applies to
//! anonymous clients, and one using `${group}` never applies to a user without
//! (matching) groups. Any other `${...}` is an error.
//!
//! # The catalog
//!
//! For `/v2/_catalog` the first rule whose `account` and `group` match *and* whose
//! actions include `catalog` (or `*`) decides; its `name` is ignored, but a rule
//! using `${account}` or `${group}` still needs a user (and a group) to substitute.
//! Rules without `catalog` are skipped, so an empty-actions deny rule does not hide
//! the catalog: the caller filters the listed repositories by pull rights, so a user
//! only ever sees repositories they may pull.
//!
//! # `push_group`
//!
//! `push_group = "G"` is shorthand for exactly these two rules (the group name is
//! literal, not a pattern):
//!
//! ```toml
//! rules = [
//!   { group = "G", actions = ["pull", "push", "delete", "catalog"] },
//!   { account = "*", actions = ["pull", "catalog"] },
//! ]
//! ```
//!
//! Any authenticated user pulls and lists the catalog, members of `G` also push and
//! delete, and anonymous clients get nothing.
//!
//! # Errors
//!
//! [`Rules::compile`] refuses an unknown action, an unknown or unclosed
//! substitution, substitution outside `name`, an invalid regex, an empty pattern (`""`
//! or `//`), a name glob with a character no repository name holds, and rules that
//! can never apply (`account = "anonymous"` with a `group` or with a substitution).
//! Messages name the rule as `authz.rules[N]`, counting from 1.
//!
//! # Cost
//!
//! Globs are matched by simulating all positions in the pattern at once, so a match
//! costs at most (name length + 1) × (pattern length + 1) steps, whatever the
//! pattern (`**a**a**a**b` included); no glob backtracks. Regexes are the operator's
//! own and run under fancy-regex's backtracking limit; a regex that errors at match
//! time does not match. Regexes using substitution are compiled per request.

use fancy_regex::Regex;

use crate::auth::Identity;
pub use crate::authz::glob::Glob;
use crate::authz::glob::{matches_tokens, Token};
use crate::config::RuleConfig;

mod compile;
mod explain;
mod rights;

pub use compile::Error;
pub use rights::Rights;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Something on one repository (a valid repository name).
    Repository(&'a str),
    /// The list of repositories, `/v2/_catalog`.
    Catalog,
}

/// The outcome of [`Rules::decide`]: the deciding rule and its rights. The front
/// doors ask [`crate::authz::policy::Policy`], which adds the built-in rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    /// The rights granted: the deciding rule's actions, or nothing.
    pub rights: Rights,
    /// The index (from 0) of the deciding rule; `None` when no rule applied (deny).
    pub rule: Option<usize>,
}

/// A `${...}` in a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    /// `${account}`.
    Account,
    /// `${group}`.
    Group,
}

/// A piece of a name pattern with substitutions.
#[derive(Clone, Debug)]
enum Part<T> {
    /// Pattern text (glob tokens, or regex source).
    Text(T),
    /// A substitution, always literal.
    Var(Var),
}

/// What one substitution puts in for `${account}` and `${group}`.
#[derive(Clone, Copy, Debug)]
struct Bindings<'a> {
    account: &'a str,
    group: &'a str,
}

impl Bindings<'_> {
    fn get(&self, var: Var) -> &str {
        match var {
            Var::Account => self.account,
            Var::Group => self.group,
        }
    }
}

/// An account or group pattern.
#[derive(Clone, Debug)]
enum Matcher {
    Glob(Glob),
    Regex(Regex),
}

impl Matcher {
    fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Glob(glob) => glob.matches(text),
            Matcher::Regex(regex) => regex.is_match(text).unwrap_or(false),
        }
    }
}

/// Who a rule is for.
#[derive(Clone, Debug)]
enum Account {
    /// No `account`: any authenticated user.
    Authenticated,
    /// `account = "anonymous"`: clients without credentials.
    Anonymous,
    /// Authenticated users whose name matches.
    Pattern(Matcher),
}

/// A compiled `name`.
#[derive(Clone, Debug)]
enum Name {
    /// No `name`: any repository.
    Any,
    Glob(Glob),
    Regex(Regex),
    GlobTemplate(Vec<Part<Vec<Token>>>),
    RegexTemplate(Vec<Part<String>>),
}

impl Name {
    fn matches(&self, name: &str, bindings: Bindings<'_>) -> bool {
        match self {
            Name::Any => true,
            Name::Glob(glob) => glob.matches(name),
            Name::Regex(regex) => regex.is_match(name).unwrap_or(false),
            Name::GlobTemplate(parts) => {
                let mut tokens = Vec::new();
                for part in parts {
                    match part {
                        Part::Text(text) => tokens.extend_from_slice(text),
                        Part::Var(var) => {
                            tokens.extend(bindings.get(*var).chars().map(Token::Char))
                        }
                    }
                }
                matches_tokens(&tokens, name)
            }
            Name::RegexTemplate(parts) => {
                let source: String = parts
                    .iter()
                    .map(|part| match part {
                        Part::Text(text) => text.as_str().into(),
                        Part::Var(var) => fancy_regex::escape(bindings.get(*var)),
                    })
                    .collect();
                // Escaped text cannot unbalance a source that compiled with the probe,
                // so the wrapped form suffices here.
                Regex::new(&whole(&source)).is_ok_and(|regex| regex.is_match(name).unwrap_or(false))
            }
        }
    }

    fn uses(&self, var: Var) -> bool {
        match self {
            Name::GlobTemplate(parts) => uses(parts, var),
            Name::RegexTemplate(parts) => uses(parts, var),
            Name::Any | Name::Glob(_) | Name::Regex(_) => false,
        }
    }
}

/// Whether `parts` hold `var`.
fn uses<T>(parts: &[Part<T>], var: Var) -> bool {
    parts
        .iter()
        .any(|part| matches!(part, Part::Var(v) if *v == var))
}

/// One compiled rule.
#[derive(Clone, Debug)]
struct Rule {
    account: Account,
    group: Option<Matcher>,
    name: Name,
    /// Whether `name` uses `${account}` / `${group}`.
    uses_account: bool,
    uses_group: bool,
    rights: Rights,
    /// The rule as written (or synthesized), for [`Rules::describe`].
    config: RuleConfig,
}

impl Rule {
    fn applies(&self, who: Option<&Identity>, request: Request<'_>) -> bool {
        let account = match (&self.account, who) {
            (Account::Anonymous, None) | (Account::Authenticated, Some(_)) => true,
            (Account::Pattern(pattern), Some(identity)) => pattern.matches(&identity.user),
            (Account::Anonymous, Some(_)) | (_, None) => false,
        };
        if !account {
            return false;
        }
        if let Some(group) = &self.group {
            let groups = who.map_or(&[][..], |identity| &identity.groups[..]);
            if !groups.iter().any(|g| group.matches(g)) {
                return false;
            }
        }
        let account = match who {
            Some(identity) => identity.user.as_str(),
            None if self.uses_account => return false,
            None => "",
        };
        let mut groups = self.substituted_groups(who);
        match request {
            Request::Catalog => {
                self.rights.catalog && (!self.uses_group || groups.next().is_some())
            }
            Request::Repository(name) if self.uses_group => {
                groups.any(|group| self.name.matches(name, Bindings { account, group }))
            }
            Request::Repository(name) => self.name.matches(name, Bindings { account, group: "" }),
        }
    }

    /// The groups `${group}` takes: the user's, or only those matching `group` if set.
    fn substituted_groups<'a>(
        &'a self,
        who: Option<&'a Identity>,
    ) -> impl Iterator<Item = &'a str> {
        let groups = who.map_or(&[][..], |identity| &identity.groups[..]);
        groups
            .iter()
            .map(String::as_str)
            .filter(|g| self.group.as_ref().is_none_or(|pattern| pattern.matches(g)))
    }
}

/// Where a compiled rule came from.
#[derive(Clone, Debug)]
enum Origin {
    /// `authz.rules`.
    Rules,
    /// `authz.push_group`, holding the group name.
    PushGroup(String),
}

/// Compiled `[authz]` rules; see the module documentation for their meaning.
#[derive(Clone, Debug)]
pub struct Rules {
    rules: Vec<Rule>,
    origin: Origin,
}

impl Rules {
    /// The first rule that applies decides: for a repository, the first whose
    /// account, group and name match; for the catalog, the first whose account and
    /// group match and whose actions include `catalog`. `who` is `None` for a client
    /// without credentials. No rule: nothing is granted.
    pub fn decide(&self, who: Option<&Identity>, request: Request<'_>) -> Match {
        let deciding = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.applies(who, request));
        match deciding {
            Some((index, rule)) => Match {
                rights: rule.rights,
                rule: Some(index),
            },
            None => Match {
                rights: Rights::NONE,
                rule: None,
            },
        }
    }

    /// Whether some rule grants anything to clients without credentials (a rule with
    /// `account = "anonymous"` and a non-empty `actions`), so that the proxy knows
    /// whether to serve requests without credentials at all.
    pub fn allows_anonymous(&self) -> bool {
        self.rules
            .iter()
            .any(|rule| matches!(rule.account, Account::Anonymous) && !rule.rights.is_empty())
    }

    /// How many rules there are (two for `push_group`).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules (never, for compiled `[authz]`).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// A regex source that matches what `body` matches, and only whole strings.
fn whole(body: &str) -> String {
    format!("^(?:{body})$")
}

#[cfg(test)]
mod tests;
