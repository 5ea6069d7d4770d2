//! `import docker-auth`: cesanta/docker_auth's `auth_config.yml` → a token-mode
//! `proxy.toml` plus an htpasswd file, keeping docker_auth's decisions.
//!
//! What maps where (`docs/migrating-from-docker_auth.md` has the table):
//!
//! - `server.addr` → `listen.addr` (`":5001"` → `"0.0.0.0:5001"`),
//!   `server.certificate`/`key` → `[tls]`, `server.path_prefix` + `/auth` → `token.path`.
//! - `token.issuer`, `token.expiration` (seconds) → `[token]`; `token.certificate`/`key`,
//!   or the server's pair when they are absent (docker_auth signs with that) →
//!   `token.cert`/`key`. docker_auth has no service name: `token.service` is
//!   `--service`, or a placeholder listed among the notes.
//! - `users` → the htpasswd file (bcrypt hashes as they are); the `""` user is not a
//!   user but docker_auth letting anonymous clients in, which the gate expresses by
//!   rules naming `anonymous` alone. User labels on the group label → `[authz] groups`.
//! - `ldap_auth` → `[ldap]`; the one label that becomes groups → `group_attribute`.
//! - `acl` → `[authz] rules` ([`acl`]).
//!
//! Anything not carried over, or carried over with a different meaning, is a note:
//! printed by the command and written at the top of `proxy.toml`. Where carrying on
//! could grant more than docker_auth did, the import is refused instead ([`Error`]).

mod acl;
mod ldap;
mod pattern;
mod render;
mod settings;
mod users;
mod yaml;

use std::collections::BTreeSet;

use self::acl::{Anonymous, Context};
use self::render::{LdapSection, Output, TokenSection};
use self::settings::{PLACEHOLDER_CERT, PLACEHOLDER_KEY};
use self::users::Users;
use self::yaml::{AuthConfig, Ignored};
use crate::config::Config;

/// The placeholder written for `token.service` without `--service`.
pub const SERVICE_PLACEHOLDER: &str = "CHANGE-ME";

/// Choices the file cannot make.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The registry's `auth.token.service`, for `token.service` and `service` matches.
    pub service: Option<String>,
}

/// The import: the files to write and what needs attention.
#[derive(Clone, Debug)]
pub struct Import {
    /// `proxy.toml`, notes at its top as comments.
    pub proxy_toml: String,
    /// The htpasswd file, when docker_auth had `users` (it may be empty).
    pub htpasswd: Option<String>,
    /// What needs attention or was not carried over, one line each.
    pub notes: Vec<String>,
    /// The registry's `auth.token` settings that go with the gate.
    pub registry: RegistrySettings,
}

/// What the registry's `auth.token` section should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `token.path`: the realm is `https://HOST:PORT` + this.
    pub path: String,
    /// `auth.token.issuer`.
    pub issuer: String,
    /// `auth.token.service`.
    pub service: String,
    /// `auth.token.rootcertbundle`: the token certificate, as written in `proxy.toml`.
    pub rootcertbundle: String,
}

/// Why the file cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not YAML, or a value of the wrong type.
    #[error("line {line}, column {column}: {message}")]
    Yaml {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// Something docker_auth would refuse, or that the gate could only carry over
    /// with more access than docker_auth gave.
    #[error("{key}: {message}")]
    Refused {
        /// The docker_auth key, such as `acl[3]` (entries from 1) or `token.issuer`.
        key: String,
        /// Why, and what to do.
        message: String,
    },
    /// The translation is not a valid `proxy.toml` (a value the gate checks more
    /// strictly, such as an LDAP filter).
    #[error("the translated proxy.toml does not pass the gate's checks: {0}")]
    Check(String),
}

fn refused(key: &str, message: impl Into<String>) -> Error {
    Error::Refused {
        key: key.into(),
        message: message.into(),
    }
}

/// Translates the text of an `auth_config.yml`.
pub fn import(text: &str, options: &Options) -> Result<Import, Error> {
    let (config, ignored) = yaml::parse(text)?;
    let mut notes = Vec::new();
    ignored_keys(&config, &ignored, &mut notes)?;
    let listen_addr = settings::listen_addr(&config.server, &mut notes)?;
    let tls = settings::tls_files(&config.server, &mut notes)?;
    let token = settings::token_section(&config, options, &mut notes)?;
    let sign_in = sign_in(&config, &mut notes)?;
    let Some(entries) = &config.acl else {
        return Err(refused(
            "acl",
            "missing: docker_auth does not start without an ACL (acl: [] denies everything)",
        ));
    };
    let only_users = match (
        &sign_in.users,
        &sign_in.ldap,
        config.other_authn().is_empty(),
    ) {
        (Some(u), None, true) => Some(&u.names),
        _ => None,
    };
    let ctx = Context {
        group_label: sign_in.group_label.as_deref(),
        group_lower_case: sign_in.lower_case,
        service: options.service.as_deref(),
        anonymous: sign_in
            .users
            .as_ref()
            .map_or(Anonymous::Refused, |u| u.anonymous),
        only_users,
    };
    let translated = acl::translate(entries, &ctx)?;
    notes.extend(translated.notes);
    relative_paths_note(&tls, &token, sign_in.ldap.as_ref(), &mut notes);
    let registry = RegistrySettings {
        path: token.path.clone(),
        issuer: token.issuer.clone(),
        service: token.service.clone(),
        rootcertbundle: token.cert.clone(),
    };
    let output = Output {
        listen_addr,
        tls,
        htpasswd: sign_in.users.is_some(),
        token,
        groups: sign_in
            .users
            .as_ref()
            .map(|u| u.groups.clone())
            .unwrap_or_default(),
        ldap: sign_in.ldap,
        rules: translated.rules,
    };
    let proxy_toml = render::proxy_toml(&output, &notes);
    Config::from_toml_str(&proxy_toml).map_err(|e| Error::Check(e.to_string()))?;
    Ok(Import {
        proxy_toml,
        htpasswd: sign_in.users.map(|u| u.htpasswd),
        notes,
        registry,
    })
}

/// Keys docker_auth would ignore: noted, or refused inside a `match`.
fn ignored_keys(
    config: &AuthConfig,
    ignored: &[Ignored],
    notes: &mut Vec<String>,
) -> Result<(), Error> {
    for key in ignored {
        if let Some(n) = key.in_match {
            return Err(unknown_condition(config, n, &key.path));
        }
        notes.push(format!(
            "{}: unknown key, ignored (docker_auth ignores it too)",
            key.path
        ));
    }
    Ok(())
}

/// Who can sign in: the static users and the directory, with the group label.
struct SignIn {
    users: Option<Users>,
    ldap: Option<LdapSection>,
    group_label: Option<String>,
    /// docker_auth lower-cased the group label's values.
    lower_case: bool,
}

fn sign_in(config: &AuthConfig, notes: &mut Vec<String>) -> Result<SignIn, Error> {
    let group_label = users::group_label(config, notes);
    let label = group_label.as_deref();
    let users = config
        .users
        .as_ref()
        .map(|u| users::users(u, label, config.ldap_auth.is_some(), notes))
        .transpose()?;
    let (ldap, lower_case) = match &config.ldap_auth {
        Some(l) => {
            let (section, lower_case) = ldap::ldap_section(l, label, notes)?;
            (Some(section), lower_case)
        }
        None => (None, false),
    };
    backends(config, users.is_some() || ldap.is_some(), notes)?;
    Ok(SignIn {
        users,
        ldap,
        group_label,
        lower_case,
    })
}

/// An unknown key in an entry's `match`: docker_auth drops it silently, so the entry
/// matches more than it says. The import will not guess either way.
fn unknown_condition(config: &AuthConfig, n: usize, path: &str) -> Error {
    let key = path.rsplit('.').next().unwrap_or(path);
    let label = config.ldap_auth.as_ref().and_then(|l| {
        l.labels
            .iter()
            .find(|(_, m)| m.attribute.as_deref() == Some(key))
            .map(|(label, _)| label.clone())
    });
    let hint = match label {
        Some(label) => format!(
            "to match the LDAP attribute {key:?} (ldap_auth.labels.{label}), write \
             `labels: {{{label}: VALUE}}` in the match"
        ),
        None => "to match a label, write `labels: {NAME: VALUE}` in the match".into(),
    };
    refused(
        &format!("acl[{n}].match"),
        format!(
            "unknown condition {key:?}: docker_auth ignores it, so the entry applies to every \
             request its other conditions allow, which is likely not what was meant. To keep \
             docker_auth's behaviour remove the key; {hint}. Then import again"
        ),
    )
}

/// Other backends: notes, or a refusal when nothing is left to sign users in.
fn backends(config: &AuthConfig, has_users: bool, notes: &mut Vec<String>) -> Result<(), Error> {
    for key in config.other_authn() {
        notes.push(format!(
            "{key}: not carried over (the gate has no such backend); its users cannot sign in"
        ));
    }
    if !has_users {
        return Err(refused(
            "users, ldap_auth",
            "neither is set: the gate signs users in from an htpasswd file or LDAP only",
        ));
    }
    for key in config.other_authz() {
        if config.acl.is_none() {
            return Err(refused(
                key,
                "the gate cannot import this authorizer, and there is no acl to import instead",
            ));
        }
        notes.push(format!(
            "{key}: not carried over: requests no acl entry matched went there; the gate denies them"
        ));
    }
    Ok(())
}

fn relative_paths_note(
    tls: &(String, String),
    token: &TokenSection,
    ldap: Option<&LdapSection>,
    notes: &mut Vec<String>,
) {
    let mut paths = vec![&tls.0, &tls.1, &token.cert, &token.key];
    if let Some(l) = ldap {
        paths.extend(l.ca.iter().chain(&l.bind_password_file));
    }
    let relative: BTreeSet<&str> = paths
        .into_iter()
        .map(String::as_str)
        .filter(|p| !p.starts_with('/') && *p != PLACEHOLDER_CERT && *p != PLACEHOLDER_KEY)
        .collect();
    if !relative.is_empty() {
        notes.push(format!(
            "relative paths ({}) are now relative to the directory of proxy.toml, not to \
             docker_auth's working directory",
            relative.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
}

#[cfg(test)]
mod tests;
