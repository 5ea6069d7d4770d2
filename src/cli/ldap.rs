//! `ldap test USER`: one login against the `[ldap]` directory, step by step, as the
//! gate would do it.

use std::path::Path;

use anyhow::Context as _;

use super::load::{build, source};
use super::stdout::{out, outln};
use super::Failure;
use crate::auth::htpasswd::edit as htpasswd_edit;

/// Runs `ldap test`: the directory's login steps for one user.
pub(super) fn test(path: &Path, user: &str) -> Result<(), Failure> {
    let (_, config) = source(path)?;
    let Some(ldap) = &config.ldap else {
        return Err(Failure::Config(anyhow::anyhow!(
            "{}: no [ldap] section",
            path.display()
        )));
    };
    let state = build(&config, path)?;
    state
        .ignored_lines
        .iter()
        .for_each(crate::state::IgnoredLine::log);
    let Some(logins) = state.authenticator.directory() else {
        return Err(Failure::Config(anyhow::anyhow!("[ldap] is not in use")));
    };
    let password = htpasswd_edit::read_password(false)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    outln!("directory: {}", ldap.url.list().join(", "))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(Failure::Runtime)?;
    let report = runtime.block_on(crate::auth::ldap::diagnose::login(
        logins.directory(),
        user,
        password.expose(),
    ));
    out!("{report}")?;
    if state.authenticator.has_htpasswd_user(user) {
        outln!(
            "note: {user} is in auth.htpasswd, so the gate decides it there, not in the directory"
        )?;
    }
    // The identity is the entry's account name, whatever spelling was typed.
    let account = report.account.as_deref().unwrap_or(user);
    if account != user {
        outln!(
            "note: {user:?} signs in as the directory's account name {account:?} \
             (rules, groups, logs and tokens use that)"
        )?;
    }
    if report.accepted && account != user && state.authenticator.has_htpasswd_user(account) {
        outln!("note: {account} is an auth.htpasswd user, so this directory login is refused")?;
        Err(Failure::Runtime(anyhow::anyhow!("{user} may not sign in")))
    } else if report.accepted {
        outln!("result: {account} may sign in")?;
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!("{user} may not sign in")))
    }
}
