//! `acl explain USER REPOSITORY ACTION`: what the access policy decides for one
//! user, repository and action, printed with the user's groups and the deciding
//! rule (or the built-in reason). It prints the [`Decision`] the proxy and the token
//! endpoint get; it does not decide anything itself.

use std::path::Path;

use anyhow::Context as _;

use super::load::{build, source};
use super::stdout::outln;
use super::Failure;
use crate::auth::Identity;
use crate::authz::policy::{Basis, Decision, Policy};
use crate::authz::rules::{Request, Rights};
use crate::state::{IgnoredLine, State};

/// The user name that stands for a client without credentials.
const ANONYMOUS: &str = "anonymous";

/// Runs `acl explain` on the config at `path`: exit 0 if allowed, 1 if denied, 64
/// for an unknown action.
pub(super) fn explain(
    path: &Path,
    user: &str,
    repository: &str,
    action: &str,
) -> Result<(), Failure> {
    let (_, config) = source(path)?;
    let state = build(&config, path)?;
    state.ignored_lines.iter().for_each(IgnoredLine::log);
    let policy = crate::proxy::policy(&state);
    let who = identity(&state, &policy, user)?;
    let (request, asked) = ask(repository, action)?;
    let decision = policy.decide(who.as_ref(), request, asked);
    print_decision(&policy, who.as_ref(), user, &decision)?;
    let subject = match request {
        Request::Catalog => "the catalog",
        Request::Repository(name) => name,
    };
    match (decision.allowed(), decision.basis) {
        (true, Basis::NoRules) => Ok(()),
        (true, _) => Ok(outln!("allowed: {user} may {action} {subject}")?),
        (false, Basis::NoRules) => Err(Failure::Runtime(anyhow::anyhow!(
            "denied: anonymous clients need a rule naming them"
        ))),
        (false, _) => Err(Failure::Runtime(anyhow::anyhow!(
            "denied: {user} may not {action} {subject}"
        ))),
    }
}

/// `None` for `anonymous`; else the user with its groups (from the group file, and
/// from the directory for a user it holds), read only when rules can use them.
fn identity(state: &State, policy: &Policy<'_>, user: &str) -> Result<Option<Identity>, Failure> {
    if user == ANONYMOUS {
        return Ok(None);
    }
    let identity = Identity {
        user: user.to_string(),
        groups: Vec::new(),
    };
    if !policy.has_rules() {
        return Ok(Some(identity));
    }
    let mut from_directory = identity;
    if let Some(logins) = state.authenticator.directory() {
        if !state.authenticator.has_htpasswd_user(user) {
            from_directory.groups = directory_groups(logins.directory(), user)?;
        }
    }
    // The group file's and the config's added as every front door adds them.
    Ok(Some(crate::proxy::login(state).with_groups(from_directory)))
}

/// The resource and the rights an ACTION word asks for.
fn ask<'a>(repository: &'a str, action: &str) -> Result<(Request<'a>, Rights), Failure> {
    let one = |rights: Rights| Ok((Request::Repository(repository), rights));
    match action {
        "pull" => one(Rights::PULL),
        "push" => one(Rights {
            push: true,
            ..Rights::NONE
        }),
        "delete" => one(Rights {
            delete: true,
            ..Rights::NONE
        }),
        "catalog" => Ok((Request::Catalog, Rights::CATALOG)),
        other => Err(Failure::Config(anyhow::anyhow!(
            "unknown action {other:?}: use pull, push, delete or catalog"
        ))),
    }
}

/// Who the user is and what decided, before the verdict.
fn print_decision(
    policy: &Policy<'_>,
    who: Option<&Identity>,
    user: &str,
    decision: &Decision,
) -> Result<(), Failure> {
    if decision.basis == Basis::NoRules {
        return outln!("no [authz] rules: every authenticated user may do everything");
    }
    match who {
        Some(i) if i.groups.is_empty() => outln!("{user}: in no group")?,
        Some(i) => outln!("{user}: in groups {}", i.groups.join(", "))?,
        None => outln!("anonymous: a client without credentials")?,
    }
    match decision.basis {
        Basis::Rule(index) => outln!("decided by {}", policy.describe(index))?,
        Basis::NoRuleApplies | Basis::NoRules => outln!("no rule matches: denied")?,
        Basis::RobotScope => outln!("a robot: its own scope decides, never [authz] rules")?,
    }
    outln!("grants: {}", decision.held)?;
    if !decision.withheld.is_empty() {
        outln!(
            "withheld: {} (anonymous clients only ever pull)",
            decision.withheld
        )?;
    }
    Ok(())
}

/// A directory user's groups (no password: found by search).
fn directory_groups(
    directory: &crate::auth::ldap::Directory,
    user: &str,
) -> Result<Vec<String>, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(Failure::Runtime)?;
    match runtime.block_on(directory.lookup_groups(user)) {
        Ok(Some(groups)) => Ok(groups),
        Ok(None) => {
            outln!("{user}: not found in the directory")?;
            Ok(Vec::new())
        }
        Err(e) => Err(Failure::Runtime(anyhow::anyhow!(
            "reading {user}'s groups from the directory: {e}"
        ))),
    }
}
