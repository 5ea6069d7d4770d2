//! `[authz]` → [`Rules`]: the `push_group` shorthand and `rules` compiled into
//! matchers, and [`Error`], which names the rule and the field.

use fancy_regex::Regex;

use super::{whole, Account, Matcher, Name, Origin, Part, Rule, Rules, Var};
use crate::authz::glob::{push_name_tokens, Glob};
use crate::authz::rules::Rights;
use crate::config::{AuthzConfig, RuleConfig};

/// The account pattern that matches clients without credentials, and only them.
const ANONYMOUS: &str = "anonymous";

/// What the rule for a `name` using substitution is checked with at compile time.
const PROBE: &str = "a";

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
