//! Per-repository authorization rules: who may pull, push, delete and list
//! the catalog, modelled on cesanta/docker_auth's ACL.
//!
//! [`Rules::compile`] turns `[authz]` into [`Rules`]; [`Rules::decide`] takes an
//! [`Identity`] (or none, for a client without credentials) and a [`Request`] and
//! returns the [`Rights`] granted and which rule decided. Pure functions: no I/O, no
//! HTTP types. The front doors do not call it directly: they ask
//! [`crate::authz::policy::Policy`], which adds the built-in rules (no `[authz]`,
//! anonymous clients) around it.
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

use std::fmt;

use fancy_regex::Regex;

use super::access::Action;
use crate::auth::Identity;
pub use crate::authz::glob::Glob;
use crate::authz::glob::{matches_tokens, push_name_tokens, Token};
use crate::config::{AuthzConfig, RuleConfig};

/// The account pattern that matches clients without credentials, and only them.
const ANONYMOUS: &str = "anonymous";

/// What the rule for a `name` using substitution is checked with at compile time.
const PROBE: &str = "a";

/// A set of rights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights {
    /// Read manifests, blobs, tags and referrers.
    pub pull: bool,
    /// Write manifests and blobs.
    pub push: bool,
    /// Delete manifests and blobs.
    pub delete: bool,
    /// List `/v2/_catalog`.
    pub catalog: bool,
}

impl Rights {
    /// No rights at all.
    pub const NONE: Rights = Rights {
        pull: false,
        push: false,
        delete: false,
        catalog: false,
    };

    /// Pull alone.
    pub const PULL: Rights = Rights {
        pull: true,
        ..Rights::NONE
    };

    /// The catalog alone.
    pub const CATALOG: Rights = Rights {
        catalog: true,
        ..Rights::NONE
    };

    /// Every right (the action `*`).
    pub const ALL: Rights = Rights {
        pull: true,
        push: true,
        delete: true,
        catalog: true,
    };

    /// Whether the set holds the right to `action` on a repository.
    pub fn allows(&self, action: Action) -> bool {
        match action {
            Action::Pull => self.pull,
            Action::Push => self.push,
            Action::Delete => self.delete,
        }
    }

    /// Whether the set holds every one of `actions`.
    pub fn allows_all(&self, actions: &[Action]) -> bool {
        actions.iter().all(|&action| self.allows(action))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        *self == Rights::NONE
    }

    /// The rights to every one of `actions`.
    pub fn of(actions: &[Action]) -> Rights {
        let mut rights = Rights::NONE;
        for action in actions {
            match action {
                Action::Pull => rights.pull = true,
                Action::Push => rights.push = true,
                Action::Delete => rights.delete = true,
            }
        }
        rights
    }

    /// The rights held in both sets.
    pub fn intersection(self, other: Rights) -> Rights {
        Rights {
            pull: self.pull && other.pull,
            push: self.push && other.push,
            delete: self.delete && other.delete,
            catalog: self.catalog && other.catalog,
        }
    }

    /// The rights held in either set.
    pub fn union(self, other: Rights) -> Rights {
        Rights {
            pull: self.pull || other.pull,
            push: self.push || other.push,
            delete: self.delete || other.delete,
            catalog: self.catalog || other.catalog,
        }
    }

    /// The rights of `self` that `other` lacks.
    pub fn without(self, other: Rights) -> Rights {
        Rights {
            pull: self.pull && !other.pull,
            push: self.push && !other.push,
            delete: self.delete && !other.delete,
            catalog: self.catalog && !other.catalog,
        }
    }

    /// Whether every right in `other` is held.
    pub fn contains(self, other: Rights) -> bool {
        self.intersection(other) == other
    }

    /// The rights an `actions` list names; `Err` gives the first unknown word.
    fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Rights, &'a str> {
        let mut rights = Rights::NONE;
        for word in words {
            match word {
                "pull" => rights.pull = true,
                "push" => rights.push = true,
                "delete" => rights.delete = true,
                "catalog" => rights.catalog = true,
                "*" => rights = Rights::ALL,
                other => return Err(other),
            }
        }
        Ok(rights)
    }
}

/// `pull,push,delete,catalog` (those held, in that order), or `nothing`.
impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = [
            (self.pull, "pull"),
            (self.push, "push"),
            (self.delete, "delete"),
            (self.catalog, "catalog"),
        ];
        let mut words = held.iter().filter(|(on, _)| *on).map(|(_, word)| *word);
        match words.next() {
            None => f.write_str("nothing"),
            Some(first) => {
                f.write_str(first)?;
                words.try_for_each(|word| write!(f, ",{word}"))
            }
        }
    }
}

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

/// Why `[authz]` could not be compiled. Rules are counted from 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Both the shorthand and explicit rules are set.
    #[error("authz.push_group: set either push_group or rules, not both")]
    Both,
    /// `push_group = ""`.
    #[error("authz.push_group: empty group name")]
    EmptyPushGroup,
    /// A pattern that is `""` or `//`.
    #[error("authz.rules[{rule}].{field}: empty pattern {pattern:?}")]
    Empty {
        /// The rule, from 1.
        rule: usize,
        /// `account`, `group` or `name`.
        field: &'static str,
        /// The pattern as written.
        pattern: String,
    },
    /// A word in `actions` that is not an action.
    #[error(
        "authz.rules[{rule}].actions: unknown action {action:?} \
         (expected pull, push, delete, catalog or *)"
    )]
    Action {
        /// The rule, from 1.
        rule: usize,
        /// The unknown word.
        action: String,
    },
    /// `${...}` naming neither `account` nor `group`.
    #[error(
        "authz.rules[{rule}].name: unknown substitution {substitution:?} in {pattern:?} \
         (expected ${{account}} or ${{group}})"
    )]
    Substitution {
        /// The rule, from 1.
        rule: usize,
        /// The unknown `${...}`.
        substitution: String,
        /// The pattern as written.
        pattern: String,
    },
    /// `${` without a closing `}`.
    #[error("authz.rules[{rule}].name: unclosed substitution in {pattern:?}")]
    Unclosed {
        /// The rule, from 1.
        rule: usize,
        /// The pattern as written.
        pattern: String,
    },
    /// `${...}` in `account` or `group`.
    #[error("authz.rules[{rule}].{field}: substitution is only allowed in name: {pattern:?}")]
    NotInName {
        /// The rule, from 1.
        rule: usize,
        /// `account` or `group`.
        field: &'static str,
        /// The pattern as written.
        pattern: String,
    },
    /// A `/regex/` that does not compile.
    #[error("authz.rules[{rule}].{field}: invalid regex {pattern:?}")]
    Regex {
        /// The rule, from 1.
        rule: usize,
        /// `account`, `group` or `name`.
        field: &'static str,
        /// The pattern as written.
        pattern: String,
        /// What the regex compiler said.
        #[source]
        source: Box<fancy_regex::Error>,
    },
    /// A name glob holding a character no repository name can hold.
    #[error(
        "authz.rules[{rule}].name: {character:?} cannot occur in a repository name \
         (only a-z, 0-9, '.', '_', '-', '/'), so {pattern:?} never matches"
    )]
    NameCharacter {
        /// The rule, from 1.
        rule: usize,
        /// The offending character.
        character: char,
        /// The pattern as written.
        pattern: String,
    },
    /// A rule that can never apply to anyone.
    #[error("authz.rules[{rule}]: never applies: {reason}")]
    Unreachable {
        /// The rule, from 1.
        rule: usize,
        /// Why.
        reason: &'static str,
    },
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
    /// Compiles `[authz]`: the `push_group` shorthand or `rules`. `Ok(None)` when it
    /// sets neither (every authenticated user may then do everything; the caller
    /// handles that). Errors name the rule, from 1, as `authz.rules[N]`, and the field.
    pub fn compile(config: &AuthzConfig) -> Result<Option<Rules>, Error> {
        match (&config.push_group, config.rules.is_empty()) {
            (Some(_), false) => Err(Error::Both),
            (Some(group), true) => Self::push_group(group).map(Some),
            (None, true) => Ok(None),
            (None, false) => {
                let rules = config
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(index, rule)| compile_rule(index + 1, rule))
                    .collect::<Result<_, _>>()?;
                Ok(Some(Rules {
                    rules,
                    origin: Origin::Rules,
                }))
            }
        }
    }

    /// The two rules `push_group = "G"` stands for.
    fn push_group(group: &str) -> Result<Rules, Error> {
        if group.is_empty() {
            return Err(Error::EmptyPushGroup);
        }
        let config = |account: Option<&str>, group: Option<&str>, actions: &[&str]| RuleConfig {
            account: account.map(str::to_owned),
            group: group.map(str::to_owned),
            name: None,
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            comment: None,
        };
        let members = Rule {
            account: Account::Authenticated,
            group: Some(Matcher::Glob(Glob::literal(group))),
            name: Name::Any,
            uses_account: false,
            uses_group: false,
            rights: Rights::ALL,
            config: config(None, Some(group), &["pull", "push", "delete", "catalog"]),
        };
        let everyone = Rule {
            account: Account::Pattern(Matcher::Glob(Glob::account("*"))),
            group: None,
            name: Name::Any,
            uses_account: false,
            uses_group: false,
            rights: Rights {
                pull: true,
                catalog: true,
                ..Rights::NONE
            },
            config: config(Some("*"), None, &["pull", "catalog"]),
        };
        Ok(Rules {
            rules: vec![members, everyone],
            origin: Origin::PushGroup(group.to_owned()),
        })
    }

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

    /// The rule at `index` (from 0, as [`Match::rule`]) as the config has it, for
    /// `acl explain`: `authz.rules[3]: { group = "pushers", actions = ["pull"] } # comment`
    /// (counting from 1). A rule synthesized from `push_group` says so.
    pub fn describe(&self, index: usize) -> String {
        let Some(rule) = self.rules.get(index) else {
            return format!("authz.rules[{}]: no such rule", index + 1);
        };
        let table = inline_table(&rule.config);
        match &self.origin {
            Origin::Rules => {
                let comment = rule.config.comment.as_deref().map_or(String::new(), |c| {
                    format!(" # {}", c.replace(['\n', '\r'], " "))
                });
                format!("authz.rules[{}]: {table}{comment}", index + 1)
            }
            Origin::PushGroup(group) => {
                let why = if index == 0 {
                    "members of the push group pull, push, delete and list the catalog"
                } else {
                    "every authenticated user pulls and lists the catalog"
                };
                format!(
                    "authz.push_group = {} (rule {} of {}): {table} # {why}",
                    toml_string(group),
                    index + 1,
                    self.rules.len()
                )
            }
        }
    }
}

/// `{ account = "..", group = "..", name = "..", actions = [..] }`.
fn inline_table(rule: &RuleConfig) -> String {
    let fields = [
        ("account", &rule.account),
        ("group", &rule.group),
        ("name", &rule.name),
    ];
    let mut out = String::from("{ ");
    for (key, value) in fields {
        if let Some(value) = value {
            out.push_str(&format!("{key} = {}, ", toml_string(value)));
        }
    }
    let actions: Vec<String> = rule.actions.iter().map(|a| toml_string(a)).collect();
    out.push_str(&format!("actions = [{}] }}", actions.join(", ")));
    out
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Compiles rule number `n` (from 1).
fn compile_rule(n: usize, config: &RuleConfig) -> Result<Rule, Error> {
    let rights = Rights::parse(config.actions.iter().map(String::as_str)).map_err(|action| {
        Error::Action {
            rule: n,
            action: action.to_owned(),
        }
    })?;
    let account = match config.account.as_deref() {
        None => Account::Authenticated,
        Some(ANONYMOUS) => Account::Anonymous,
        Some(pattern) => Account::Pattern(compile_matcher(n, "account", pattern)?),
    };
    let group = config
        .group
        .as_deref()
        .map(|pattern| compile_matcher(n, "group", pattern))
        .transpose()?;
    let name = match config.name.as_deref() {
        None => Name::Any,
        Some(pattern) => compile_name(n, pattern)?,
    };
    let (uses_account, uses_group) = (name.uses(Var::Account), name.uses(Var::Group));
    if matches!(account, Account::Anonymous) {
        if group.is_some() {
            return Err(Error::Unreachable {
                rule: n,
                reason: "account = \"anonymous\" with a group (anonymous clients have no groups)",
            });
        }
        if uses_account || uses_group {
            return Err(Error::Unreachable {
                rule: n,
                reason: "account = \"anonymous\" with ${account} or ${group} in name \
                         (anonymous clients have neither)",
            });
        }
    }
    Ok(Rule {
        account,
        group,
        name,
        uses_account,
        uses_group,
        rights,
        config: config.clone(),
    })
}

/// An `account` or `group` pattern: a glob or a `/regex/`.
fn compile_matcher(n: usize, field: &'static str, pattern: &str) -> Result<Matcher, Error> {
    let owned = || pattern.to_owned();
    if pattern.contains("${") {
        return Err(Error::NotInName {
            rule: n,
            field,
            pattern: owned(),
        });
    }
    if pattern.is_empty() {
        return Err(empty(n, field, pattern));
    }
    match regex_body(pattern) {
        Some("") => Err(empty(n, field, pattern)),
        Some(body) => anchored(body)
            .map(Matcher::Regex)
            .map_err(|source| regex_error(n, field, pattern, source)),
        None => Ok(Matcher::Glob(Glob::account(pattern))),
    }
}

/// A `name` pattern: a glob or a `/regex/`, either with substitutions.
fn compile_name(n: usize, pattern: &str) -> Result<Name, Error> {
    const FIELD: &str = "name";
    let body = regex_body(pattern);
    if pattern.is_empty() || body == Some("") {
        return Err(empty(n, FIELD, pattern));
    }
    let parts = split_vars(body.unwrap_or(pattern)).map_err(|problem| match problem {
        VarError::Unclosed => Error::Unclosed {
            rule: n,
            pattern: pattern.to_owned(),
        },
        VarError::Unknown(substitution) => Error::Substitution {
            rule: n,
            substitution,
            pattern: pattern.to_owned(),
        },
    })?;
    let templated = parts.iter().any(|part| matches!(part, Part::Var(_)));
    if body.is_some() {
        let probe: String = parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => text,
                Part::Var(_) => PROBE,
            })
            .collect();
        let regex = anchored(&probe).map_err(|source| regex_error(n, FIELD, pattern, source))?;
        if !templated {
            return Ok(Name::Regex(regex));
        }
        let parts = parts.into_iter().map(|part| match part {
            Part::Text(text) => Part::Text(text.to_owned()),
            Part::Var(var) => Part::Var(var),
        });
        return Ok(Name::RegexTemplate(parts.collect()));
    }
    let bad = parts.iter().find_map(|part| match part {
        Part::Text(text) => text.chars().find(|&c| !is_name_glob_char(c)),
        Part::Var(_) => None,
    });
    if let Some(character) = bad {
        return Err(Error::NameCharacter {
            rule: n,
            character,
            pattern: pattern.to_owned(),
        });
    }
    if !templated {
        return Ok(Name::Glob(Glob::name(pattern)));
    }
    let parts = parts.into_iter().map(|part| match part {
        Part::Text(text) => {
            let mut tokens = Vec::new();
            push_name_tokens(text, &mut tokens);
            Part::Text(tokens)
        }
        Part::Var(var) => Part::Var(var),
    });
    Ok(Name::GlobTemplate(parts.collect()))
}

/// Whether `c` may appear in a name glob: a repository-name character or a wildcard.
fn is_name_glob_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/' | '*' | '?')
}

/// The regex inside `/.../`, or `None` for a glob.
fn regex_body(pattern: &str) -> Option<&str> {
    pattern
        .strip_prefix('/')
        .and_then(|rest| rest.strip_suffix('/'))
}

/// Compiles `body` to match whole strings. The body is compiled alone first, so that
/// one like `a)|(b` cannot escape the anchoring group.
fn anchored(body: &str) -> Result<Regex, fancy_regex::Error> {
    Regex::new(body)?;
    Regex::new(&whole(body))
}

/// A regex source that matches what `body` matches, and only whole strings.
fn whole(body: &str) -> String {
    format!("^(?:{body})$")
}

/// Why a `${...}` could not be read.
enum VarError {
    Unclosed,
    Unknown(String),
}

/// Splits a pattern at its `${account}` and `${group}`.
fn split_vars(pattern: &str) -> Result<Vec<Part<&str>>, VarError> {
    let mut parts = Vec::new();
    let mut rest = pattern;
    while let Some((before, after)) = rest.split_once("${") {
        if !before.is_empty() {
            parts.push(Part::Text(before));
        }
        let (var, after) = after.split_once('}').ok_or(VarError::Unclosed)?;
        parts.push(Part::Var(match var {
            "account" => Var::Account,
            "group" => Var::Group,
            other => return Err(VarError::Unknown(format!("${{{other}}}"))),
        }));
        rest = after;
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

fn empty(n: usize, field: &'static str, pattern: &str) -> Error {
    Error::Empty {
        rule: n,
        field,
        pattern: pattern.to_owned(),
    }
}

fn regex_error(n: usize, field: &'static str, pattern: &str, source: fancy_regex::Error) -> Error {
    Error::Regex {
        rule: n,
        field,
        pattern: pattern.to_owned(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests;
