//! Token scopes: the `scope` parameters a client sends to the token endpoint, and the
//! [`Access`] entries granted for them. Pure functions: no HTTP types, no I/O.
//!
//! # Grammar
//!
//! From the distribution spec, `docs/content/spec/auth/scope.md`, "Resource Scope
//! Grammar" (<https://distribution.github.io/distribution/spec/auth/scope/>):
//!
//! ```text
//! scope                   := resourcescope [ ' ' resourcescope ]*
//! resourcescope           := resourcetype  ":" resourcename  ":" action [ ',' action ]*
//! resourcetype            := resourcetypevalue [ '(' resourcetypevalue ')' ]
//! resourcetypevalue       := /[a-z0-9]+/
//! resourcename            := [ hostname '/' ] component [ '/' component ]*
//! action                  := /[a-z]*/
//! ```
//!
//! > Note that the `resourcename` may contain one `:` due to a possible port number in
//! > the hostname component of the `resourcename`, so a naive implementation that
//! > interprets the first three `:`-delimited tokens of a `scope` to be the
//! > `resourcetype`, `resourcename`, and a list of `action` would be insufficient.
//!
//! So the type ends at the first `:` and the actions start after the *last* one;
//! the name is everything between. What [`Scope::parse`] accepts:
//!
//! - the type and its optional class exactly as the grammar has them, `[a-z0-9]+`;
//! - a non-empty name of printable ASCII (no spaces, no control characters). The
//!   name is not held to the grammar here: whether it names something is a question
//!   of authorization, answered by granting nothing, never an error (`token.md`: "it
//!   must not be considered an error");
//! - one or more actions, each `[a-z]+` or `*`. The grammar's `[a-z]*` would admit an
//!   empty action, which names nothing and is refused; `*` is outside the grammar but
//!   is what the registry itself asks for on the catalog (`registry:catalog:*`,
//!   `registry/handlers/app.go`, `appendCatalogAccessRecord`). Unknown words are kept,
//!   to be granted nothing.
//!
//! One `scope` parameter may hold several scopes separated by spaces (the spec's
//! `POST` form), and a request may carry several `scope` parameters (its `GET` form);
//! [`parse_scopes`] takes both. Empty pieces between spaces are skipped. At most
//! [`MAX_SCOPES`] scopes of at most [`MAX_SCOPE_LEN`] bytes each are read.
//!
//! # Granting
//!
//! [`grant`] gives the intersection of what was asked and what the policy allows,
//! the same [`crate::authz::policy::Policy::decide`] the proxy uses for Basic
//! requests, so both front doors answer alike. Per `token.md`: "If the client only has a subset of the requested
//! access **it must not be considered an error**", and "If the client has no access
//! to the repository then the intersected set would be empty, `[]`. It is this
//! intersected set of access which is placed in the returned token." So every
//! requested resource gets an [`Access`] entry, with empty `actions` when nothing is
//! granted (as cesanta/docker_auth does: `auth_server/server/server.go`, `CreateToken`,
//! `if ra.Actions == nil { ra.Actions = []string{} }`).
//!
//! - Requests for the same type and name are merged first (union of actions, in the
//!   order first asked), giving one entry each, in the order first asked. The class is
//!   ignored: the spec (since distribution commit ca1b875) says "Resource Class is
//!   deprecated and ignored. `repository` and `repository(plugin)` are considered
//!   equal when authorizing a token. Authorization services should no longer return
//!   scopes with a resource class", and the registry's token check keys access by
//!   type and name only (`registry/auth/token/token.go`, `accessSet`, v2.8.3 and
//!   main). So [`Access`] has no `class` field.
//! - `repository` (any class): the name must be a repository name as the proxy
//!   accepts it ([`check_name`]): path components only, no `host:port/` in front.
//!   The registry's own challenges and access checks name the repository as its URL
//!   path does (`app.go`, `appendAccessRecords`: `Name: repo`), without a host, so a
//!   host-prefixed name never matches a request; such a name is granted nothing
//!   rather than stripped, so that `evil.example/team/app` can never stand for
//!   `team/app`. `pull`, `push` and `delete` are granted when the rules allow them.
//! - `*` on a repository is granted only with pull, push **and** delete: the registry
//!   reads a granted `*` as every action (`registry/auth/token/util.go`, `actionSet.
//!   contains`: `s.stringSet.contains("*") || s.stringSet.contains(action)`), and
//!   those three are all it ever checks on a repository. A user with less gets nothing
//!   for `*`, not the subset: `*` is a word like any other, matched or not (as in
//!   docker_auth's intersection). Clients do not send `*` on repositories in practice.
//! - `registry:catalog:*`: `*` is granted with the `catalog` right; any other action on
//!   it, and any other `registry` name, is granted nothing.
//! - Any other resource type: nothing.
//! - No `[authz]` (`rules` is `None`), and anonymous clients (`who` is `None`): the
//!   policy's built-in rules, as in Basic mode (every authenticated user may do
//!   everything; anonymous clients only ever get `pull`).

use std::fmt;

use serde::Serialize;

use crate::auth::Identity;
use crate::authz::access::{check_name, Action};
use crate::authz::policy::Policy;
use crate::authz::rules::{Request, Rights, Rules};

/// Most scopes read from one request, over all its `scope` parameters.
pub const MAX_SCOPES: usize = 64;

/// Longest scope read, in bytes. A repository name is at most 255 bytes; this leaves
/// room for a host, the type and every action word.
pub const MAX_SCOPE_LEN: usize = 512;

/// How much of an overlong scope its error quotes, in characters.
const QUOTED_PREFIX: usize = 40;

/// The resource type of a repository.
const REPOSITORY: &str = "repository";
/// The resource type of registry-wide resources, such as the catalog.
const REGISTRY: &str = "registry";
/// The `registry` resource that is the catalog.
const CATALOG: &str = "catalog";
/// The action standing for every action.
const WILDCARD: &str = "*";

/// One resource scope: `type[(class)]:name:action[,action...]`.
///
/// Every value [`Scope::parse`] returns displays as text that parses back to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// `[a-z0-9]+`, such as `repository` or `registry`.
    pub resource_type: String,
    /// The class in parentheses, `[a-z0-9]+` (`plugin` in `repository(plugin)`).
    /// Deprecated by the spec and ignored when granting.
    pub resource_class: Option<String>,
    /// Non-empty printable ASCII without spaces; may hold `:` (a registry port).
    pub name: String,
    /// At least one; each `[a-z]+` or `*`, as the client wrote them (repeats kept).
    pub actions: Vec<String>,
}

/// One entry of a token's `access` claim: what is granted on one resource.
/// Serialises as the spec's `{"type": .., "name": .., "actions": [..]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Access {
    /// The resource type, as requested.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The resource name, as requested.
    pub name: String,
    /// The granted actions, each requested; empty when nothing is granted.
    pub actions: Vec<String>,
}

/// Why the `scope` parameters could not be read. The endpoint answers 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// More than [`MAX_SCOPES`] scopes in one request.
    #[error("more than {MAX_SCOPES} scopes")]
    TooMany,
    /// A scope longer than [`MAX_SCOPE_LEN`] bytes.
    #[error("scope {start:?}... is {len} bytes, more than {MAX_SCOPE_LEN}")]
    TooLong {
        /// The scope's first characters.
        start: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A scope outside the grammar.
    #[error("invalid scope {scope:?}: {problem}")]
    Invalid {
        /// The scope as sent.
        scope: String,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// What is wrong with a scope.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Fewer than two `:`.
    #[error("expected type:name:actions")]
    Shape,
    /// A type or class outside `[a-z0-9]+`, or a malformed `(class)`.
    #[error("resource type {0:?} is not [a-z0-9]+ with an optional ([a-z0-9]+) class")]
    Type(String),
    /// Nothing between the type and the actions.
    #[error("empty resource name")]
    EmptyName,
    /// A name holding a control character or one outside ASCII.
    #[error("resource name has {0:?}, outside printable ASCII")]
    NameCharacter(char),
    /// `pull,,push`, a trailing comma, or no actions at all.
    #[error("empty action")]
    EmptyAction,
    /// An action that is neither `[a-z]+` nor `*`.
    #[error("action {0:?} is neither lowercase letters nor *")]
    Action(String),
}

impl Scope {
    /// Parses one scope; see the module documentation for what is accepted.
    pub fn parse(text: &str) -> Result<Scope, Error> {
        if text.len() > MAX_SCOPE_LEN {
            return Err(Error::TooLong {
                start: text.chars().take(QUOTED_PREFIX).collect(),
                len: text.len(),
            });
        }
        Self::parse_parts(text).map_err(|problem| Error::Invalid {
            scope: text.to_owned(),
            problem,
        })
    }

    fn parse_parts(text: &str) -> Result<Scope, Problem> {
        let (resource_type, rest) = text.split_once(':').ok_or(Problem::Shape)?;
        let (name, actions) = rest.rsplit_once(':').ok_or(Problem::Shape)?;
        let (resource_type, resource_class) = parse_type(resource_type)?;
        if name.is_empty() {
            return Err(Problem::EmptyName);
        }
        if let Some(c) = name.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(Problem::NameCharacter(c));
        }
        let actions = actions
            .split(',')
            .map(parse_action)
            .collect::<Result<_, _>>()?;
        Ok(Scope {
            resource_type: resource_type.to_owned(),
            resource_class: resource_class.map(str::to_owned),
            name: name.to_owned(),
            actions,
        })
    }
}

/// `repository(plugin):samalba/my-plugin:pull,push`.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource_type)?;
        if let Some(class) = &self.resource_class {
            write!(f, "({class})")?;
        }
        write!(f, ":{}:{}", self.name, self.actions.join(","))
    }
}

/// `type` or `type(class)`, each `[a-z0-9]+`.
fn parse_type(text: &str) -> Result<(&str, Option<&str>), Problem> {
    let (value, class) = match text.strip_suffix(')') {
        Some(rest) => match rest.split_once('(') {
            Some((value, class)) => (value, Some(class)),
            None => return Err(Problem::Type(text.to_owned())),
        },
        None => (text, None),
    };
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if word(value) && class.is_none_or(word) {
        Ok((value, class))
    } else {
        Err(Problem::Type(text.to_owned()))
    }
}

/// `[a-z]+` or `*`.
fn parse_action(word: &str) -> Result<String, Problem> {
    if word.is_empty() {
        Err(Problem::EmptyAction)
    } else if word == WILDCARD || word.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(word.to_owned())
    } else {
        Err(Problem::Action(word.to_owned()))
    }
}

/// Parses every scope in the `scope` parameters: each splits at ASCII spaces, and
/// empty pieces are skipped. Fails on the first scope that does not parse, or past
/// [`MAX_SCOPES`] (without reading further).
pub fn parse_scopes<'a>(params: impl IntoIterator<Item = &'a str>) -> Result<Vec<Scope>, Error> {
    let mut scopes = Vec::new();
    let pieces = params
        .into_iter()
        .flat_map(|param| param.split(' '))
        .filter(|piece| !piece.is_empty());
    for piece in pieces {
        if scopes.len() == MAX_SCOPES {
            return Err(Error::TooMany);
        }
        scopes.push(Scope::parse(piece)?);
    }
    Ok(scopes)
}

/// What a scope's type and name refer to.
#[derive(Clone, Copy, Debug)]
enum Resource<'a> {
    /// A valid repository name.
    Repository(&'a str),
    /// `registry:catalog`.
    Catalog,
    /// Anything else; never granted.
    Unknown,
}

impl<'a> Resource<'a> {
    fn of(resource_type: &str, name: &'a str) -> Resource<'a> {
        match resource_type {
            REPOSITORY if check_name(name).is_ok() => Resource::Repository(name),
            REGISTRY if name == CATALOG => Resource::Catalog,
            _ => Resource::Unknown,
        }
    }

    /// What [`crate::authz::policy`] decides on; `None` for a resource never granted.
    fn request(self) -> Option<Request<'a>> {
        match self {
            Resource::Repository(name) => Some(Request::Repository(name)),
            Resource::Catalog => Some(Request::Catalog),
            Resource::Unknown => None,
        }
    }

    /// The rights the requested `action` needs on this resource; `None`: it names
    /// nothing that can be granted.
    fn needs(self, action: &str) -> Option<Rights> {
        match self {
            Resource::Repository(_) if action == WILDCARD => {
                Some(Rights::of(&[Action::Pull, Action::Push, Action::Delete]))
            }
            Resource::Repository(_) => [Action::Pull, Action::Push, Action::Delete]
                .into_iter()
                .find(|a| a.as_str() == action)
                .map(|a| Rights::of(&[a])),
            Resource::Catalog if action == WILDCARD => Some(Rights::CATALOG),
            Resource::Catalog | Resource::Unknown => None,
        }
    }
}

/// Grants the requested scopes: one [`Access`] per requested type and name, holding
/// the requested actions that the policy of `rules` grants `who` (`None`: no
/// credentials). `rules` is `None` without `[authz]`. Never fails; see the module
/// documentation.
pub fn grant(rules: Option<&Rules>, who: Option<&Identity>, requested: &[Scope]) -> Vec<Access> {
    grant_by(&Policy::new(rules), who, requested)
}

/// [`grant`] under a whole policy (rules and robots), as the token endpoint asks.
pub(crate) fn grant_by(
    policy: &Policy<'_>,
    who: Option<&Identity>,
    requested: &[Scope],
) -> Vec<Access> {
    merge(requested)
        .into_iter()
        .map(|mut access| {
            let resource = Resource::of(&access.resource_type, &access.name);
            let granted = match resource.request() {
                Some(request) => {
                    let asked = access
                        .actions
                        .iter()
                        .filter_map(|action| resource.needs(action))
                        .fold(Rights::NONE, Rights::union);
                    policy.decide(who, request, asked).granted
                }
                None => Rights::NONE,
            };
            access.actions.retain(|action| {
                resource
                    .needs(action)
                    .is_some_and(|needed| granted.contains(needed))
            });
            access
        })
        .collect()
}

/// One entry per type and name, in the order first asked, with the union of the
/// actions asked for it, each once, in the order first asked.
fn merge(requested: &[Scope]) -> Vec<Access> {
    let mut merged: Vec<Access> = Vec::new();
    for scope in requested {
        let found = merged
            .iter()
            .position(|a| a.resource_type == scope.resource_type && a.name == scope.name);
        let index = found.unwrap_or_else(|| {
            merged.push(Access {
                resource_type: scope.resource_type.clone(),
                name: scope.name.clone(),
                actions: Vec::new(),
            });
            merged.len() - 1
        });
        let entry = &mut merged[index];
        for action in &scope.actions {
            if !entry.actions.contains(action) {
                entry.actions.push(action.clone());
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests;
