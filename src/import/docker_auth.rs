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
mod pattern;
mod render;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use self::acl::{Anonymous, Context};
use self::render::{LdapSection, Output, TokenSection};
use self::yaml::{AuthConfig, LdapAuth, Server, User};
use crate::config::Config;

/// The placeholder written for `token.service` without `--service`.
pub const SERVICE_PLACEHOLDER: &str = "CHANGE-ME";
/// The gate's shortest token lifetime, in seconds (clients round shorter ones up).
const MIN_EXPIRATION: i64 = 60;
/// Where the placeholder TLS files go when docker_auth served plain HTTP.
const PLACEHOLDER_CERT: &str = "certs/server.crt";
const PLACEHOLDER_KEY: &str = "certs/server.key";

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
    for key in &ignored {
        if let Some(n) = key.in_match {
            return Err(unknown_condition(&config, n, &key.path));
        }
        notes.push(format!(
            "{}: unknown key, ignored (docker_auth ignores it too)",
            key.path
        ));
    }
    let listen_addr = listen_addr(&config.server, &mut notes)?;
    let tls = tls_files(&config.server, &mut notes)?;
    let token = token_section(&config, options, &mut notes)?;
    let group_label = group_label(&config, &mut notes);
    let users = config
        .users
        .as_ref()
        .map(|u| {
            users(
                u,
                group_label.as_deref(),
                config.ldap_auth.is_some(),
                &mut notes,
            )
        })
        .transpose()?;
    let (ldap, lower_case) = match &config.ldap_auth {
        Some(l) => {
            let (section, lower) = ldap_section(l, group_label.as_deref(), &mut notes)?;
            (Some(section), lower)
        }
        None => (None, false),
    };
    backends(&config, users.is_some() || ldap.is_some(), &mut notes)?;
    let Some(entries) = &config.acl else {
        return Err(refused(
            "acl",
            "missing: docker_auth does not start without an ACL (acl: [] denies everything)",
        ));
    };
    let only_users = match (&users, &ldap, config.other_authn().is_empty()) {
        (Some(u), None, true) => Some(&u.names),
        _ => None,
    };
    let ctx = Context {
        group_label: group_label.as_deref(),
        group_lower_case: lower_case,
        service: options.service.as_deref(),
        anonymous: users.as_ref().map_or(Anonymous::Refused, |u| u.anonymous),
        only_users,
    };
    let translated = acl::translate(entries, &ctx)?;
    notes.extend(translated.notes);
    relative_paths_note(&tls, &token, ldap.as_ref(), &mut notes);
    let registry = RegistrySettings {
        path: token.path.clone(),
        issuer: token.issuer.clone(),
        service: token.service.clone(),
        rootcertbundle: token.cert.clone(),
    };
    let output = Output {
        listen_addr,
        tls,
        htpasswd: users.is_some(),
        token,
        ldap,
        groups: users.as_ref().map(|u| u.groups.clone()).unwrap_or_default(),
        rules: translated.rules,
    };
    let proxy_toml = render::proxy_toml(&output, &notes);
    Config::from_toml_str(&proxy_toml).map_err(|e| Error::Check(e.to_string()))?;
    Ok(Import {
        proxy_toml,
        htpasswd: users.map(|u| u.htpasswd),
        notes,
        registry,
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

fn listen_addr(server: &Server, notes: &mut Vec<String>) -> Result<String, Error> {
    match server.net.as_deref() {
        None | Some("" | "tcp") => {}
        Some("unix") => {
            return Err(refused(
                "server.net",
                "unix: the gate listens on TCP only; set net: tcp and an addr to import",
            ))
        }
        Some(other) => {
            return Err(refused(
                "server.net",
                format!("{other:?}: docker_auth accepts only tcp or unix"),
            ))
        }
    }
    let addr = server
        .addr
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| refused("server.addr", "missing (docker_auth requires it)"))?;
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return Ok(socket.to_string());
    }
    let port = addr
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)));
    match port {
        Some(("", port)) => Ok(format!("0.0.0.0:{port}")),
        Some(("localhost", port)) => Ok(format!("127.0.0.1:{port}")),
        Some((host, port)) => {
            notes.push(format!(
                "server.addr: {host:?} is a name; listen.addr is 127.0.0.1:{port} until you \
                 set it to the address {host} stands for"
            ));
            Ok(format!("127.0.0.1:{port}"))
        }
        None => Err(refused(
            "server.addr",
            format!("{addr:?}: expected \":PORT\" or \"HOST:PORT\""),
        )),
    }
}

fn tls_files(server: &Server, notes: &mut Vec<String>) -> Result<(String, String), Error> {
    for key in server.other_keys() {
        notes.push(format!(
            "server.{key}: not carried over (the gate has no such setting; its TLS is 1.2 and \
             1.3 with AEAD suites only)"
        ));
    }
    match (&server.certificate, &server.key) {
        (Some(cert), Some(key)) => Ok((cert.clone(), key.clone())),
        (None, None) => {
            notes.push(format!(
                "server: no certificate: docker_auth served plain HTTP (or Let's Encrypt), the \
                 gate always serves TLS; create {PLACEHOLDER_CERT} and {PLACEHOLDER_KEY} \
                 (`registry-gate certs generate --san HOST --out certs`) or point [tls] at yours"
            ));
            Ok((PLACEHOLDER_CERT.into(), PLACEHOLDER_KEY.into()))
        }
        _ => Err(refused(
            "server",
            "certificate and key go together (docker_auth refuses one without the other)",
        )),
    }
}

fn token_section(
    config: &AuthConfig,
    options: &Options,
    notes: &mut Vec<String>,
) -> Result<TokenSection, Error> {
    let token = &config.token;
    let issuer = token
        .issuer
        .clone()
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| refused("token.issuer", "missing (docker_auth requires it)"))?;
    let mut expiration = match token.expiration {
        Some(seconds) if seconds > 0 => seconds,
        _ => {
            return Err(refused(
                "token.expiration",
                "missing or not positive (docker_auth requires seconds above zero)",
            ))
        }
    };
    if expiration < MIN_EXPIRATION {
        notes.push(format!(
            "token.expiration: {expiration}s raised to {MIN_EXPIRATION}s, the gate's minimum \
             (clients treat shorter tokens as {MIN_EXPIRATION}s anyway)"
        ));
        expiration = MIN_EXPIRATION;
    }
    let server = &config.server;
    let (cert, key) = match (&token.certificate, &token.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => match (&server.certificate, &server.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => {
                return Err(refused(
                    "token",
                    "no certificate and key, nor a server pair to sign with: docker_auth does \
                     not start like this",
                ))
            }
        },
        _ => {
            return Err(refused(
                "token",
                "certificate and key go together (docker_auth refuses one without the other)",
            ))
        }
    };
    if token.disable_legacy_key_id.is_some() {
        notes.push(
            "token.disable_legacy_key_id: not carried over; the gate chooses its tokens' key \
             IDs itself"
                .into(),
        );
    }
    let service = match &options.service {
        Some(service) => service.clone(),
        None => {
            notes.push(format!(
                "token.service = {SERVICE_PLACEHOLDER:?}: docker_auth has no such setting; set it \
                 to the registry's auth.token.service (REGISTRY_AUTH_TOKEN_SERVICE), or import \
                 with --service"
            ));
            SERVICE_PLACEHOLDER.into()
        }
    };
    let prefix = server.path_prefix.as_deref().unwrap_or("");
    if !prefix.is_empty() && !prefix.starts_with('/') {
        return Err(refused(
            "server.path_prefix",
            "must be an absolute path (docker_auth refuses it too)",
        ));
    }
    Ok(TokenSection {
        path: format!("{}/auth", prefix.trim_end_matches('/')),
        issuer,
        service,
        key,
        cert,
        expiration_seconds: expiration,
    })
}

/// The one label that becomes the gate's groups: the only one defined, or the only
/// one of several that the ACL uses.
fn group_label(config: &AuthConfig, notes: &mut Vec<String>) -> Option<String> {
    let mut defined = BTreeSet::new();
    if let Some(ldap) = &config.ldap_auth {
        defined.extend(ldap.labels.keys().cloned());
    }
    for user in config.users.iter().flat_map(|u| u.values()).flatten() {
        defined.extend(user.labels.keys().cloned());
    }
    let chosen = if defined.len() == 1 {
        defined.first().cloned()
    } else {
        let used: BTreeSet<String> = acl_labels(config).intersection(&defined).cloned().collect();
        (used.len() == 1).then(|| used.into_iter().next()).flatten()
    };
    for other in defined.iter().filter(|l| Some(*l) != chosen.as_ref()) {
        let why = match &chosen {
            Some(c) => format!("the gate has one kind of group, and {c:?} became it"),
            None => "several labels, and the ACL does not single one out".into(),
        };
        notes.push(format!(
            "label {other:?}: not carried over ({why}); ACL entries using it are left out or refused"
        ));
    }
    chosen
}

/// Labels the ACL matches on or substitutes.
fn acl_labels(config: &AuthConfig) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    for c in config
        .acl
        .iter()
        .flatten()
        .filter_map(|e| e.conditions.as_ref())
    {
        labels.extend(c.labels.keys().cloned());
        for p in [&c.account, &c.name, &c.kind, &c.service]
            .into_iter()
            .flatten()
        {
            for part in pattern::parts(p) {
                if let pattern::Part::Placeholder(pattern::Placeholder::Label(l), _) = part {
                    labels.insert(l.to_string());
                }
            }
        }
    }
    labels
}

/// The static users, as the gate takes them.
struct Users {
    htpasswd: String,
    /// Every name docker_auth had a user entry for (but `""`).
    names: BTreeSet<String>,
    groups: BTreeMap<String, Vec<String>>,
    anonymous: Anonymous,
}

fn users(
    map: &BTreeMap<String, Option<User>>,
    group_label: Option<&str>,
    ldap: bool,
    notes: &mut Vec<String>,
) -> Result<Users, Error> {
    let mut out = Users {
        htpasswd: String::new(),
        names: BTreeSet::new(),
        groups: BTreeMap::new(),
        anonymous: Anonymous::Refused,
    };
    for (name, user) in map {
        let Some(user) = user else {
            notes.push(format!(
                "users[{name:?}]: empty entry: docker_auth skips it (as if absent)"
            ));
            continue;
        };
        if name.is_empty() {
            out.anonymous = anonymous_user(user, notes);
            continue;
        }
        out.names.insert(name.clone());
        if let Err(why) = usable_user(name, user) {
            let key = format!("users[{name:?}]");
            if ldap && matches!(why, Unusable::NotBcrypt) {
                return Err(refused(
                    &key,
                    format!(
                        "{why}; docker_auth let no one sign in as {name:?}, but the gate would ask \
                         the directory: remove the entry or give it a bcrypt password"
                    ),
                ));
            }
            notes.push(format!("{key}: not carried over: {why}"));
            continue;
        }
        let hash = user.password.as_deref().unwrap_or_default();
        out.htpasswd.push_str(&format!("{name}:{hash}\n"));
        for (label, values) in &user.labels {
            if Some(label.as_str()) == group_label {
                for group in values {
                    out.groups
                        .entry(group.clone())
                        .or_default()
                        .push(name.clone());
                }
            }
        }
    }
    Ok(out)
}

fn anonymous_user(user: &User, notes: &mut Vec<String>) -> Anonymous {
    if user.password.is_some() {
        notes.push(
            "users[\"\"]: has a password, so docker_auth let no anonymous client in; nor will \
             the gate"
                .into(),
        );
        return Anonymous::Refused;
    }
    if !user.labels.is_empty() {
        notes.push(
            "users[\"\"]: its labels are not carried over (the gate's anonymous clients have \
             no groups)"
                .into(),
        );
    }
    Anonymous::Allowed {
        labels: !user.labels.is_empty(),
    }
}

/// Why a static user cannot go into the htpasswd file.
enum Unusable {
    AnyPassword,
    NotBcrypt,
    BadName,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unusable::AnyPassword => {
                "no password: docker_auth accepted any; give the user one with \
                 `registry-gate htpasswd add`"
            }
            Unusable::NotBcrypt => "the password is not a bcrypt hash, which docker_auth needs",
            Unusable::BadName => "the name holds ':' or a control character",
        })
    }
}

fn usable_user(name: &str, user: &User) -> Result<(), Unusable> {
    if name.contains(':') || name.chars().any(char::is_control) {
        return Err(Unusable::BadName);
    }
    let Some(hash) = &user.password else {
        return Err(Unusable::AnyPassword);
    };
    let bcrypt = hash.len() == 60 && ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
    if !bcrypt {
        return Err(Unusable::NotBcrypt);
    }
    Ok(())
}

/// `[ldap]`, and whether the group label was lower-cased.
fn ldap_section(
    l: &LdapAuth,
    group_label: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<(LdapSection, bool), Error> {
    if l.initial_bind_as_user {
        return Err(refused(
            "ldap_auth.initial_bind_as_user",
            "not supported: the gate searches for the user as bind_dn, then binds as the DN found",
        ));
    }
    let addr = l
        .addr
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| refused("ldap_auth.addr", "missing"))?;
    let tls = match l.tls.as_deref() {
        None | Some("") if addr.ends_with(":636") => "always",
        None | Some("") => "none",
        Some(t @ ("none" | "always" | "starttls")) => t,
        Some(other) => {
            return Err(refused(
                "ldap_auth.tls",
                format!("{other:?}: expected none, always or starttls"),
            ))
        }
    };
    let url = match tls {
        "always" => format!("ldaps://{addr}"),
        _ => format!("ldap://{addr}"),
    };
    if l.insecure_tls_skip_verify {
        notes.push(
            "ldap_auth.insecure_tls_skip_verify: not carried over: the gate always verifies the \
             directory's certificate; set ldap.ca to the CA that signed it"
                .into(),
        );
    }
    let ca = match (&l.ca_certificate, tls) {
        (Some(_), "none") => {
            notes.push("ldap_auth.ca_certificate: left out: tls is none, so it was unused".into());
            None
        }
        (ca, _) => ca.clone(),
    };
    let (bind_dn, bind_password_file) = match (&l.bind_dn, &l.bind_password_file) {
        (Some(dn), Some(file)) => (Some(dn.clone()), Some(file.clone())),
        (Some(_), None) => {
            return Err(refused(
                "ldap_auth.bind_dn",
                "set without bind_password_file: docker_auth cannot read a password either",
            ))
        }
        (None, Some(_)) => {
            notes.push(
                "ldap_auth.bind_password_file: left out: without bind_dn docker_auth searched \
                 anonymously"
                    .into(),
            );
            (None, None)
        }
        (None, None) => (None, None),
    };
    let base = l
        .base
        .clone()
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| refused("ldap_auth.base", "missing: the gate needs a search base"))?;
    let filter = l.filter.clone().filter(|f| !f.is_empty()).ok_or_else(|| {
        refused(
            "ldap_auth.filter",
            "missing: docker_auth cannot search without one, so no one signed in through it",
        )
    })?;
    let (mut group_attribute, mut names, mut lower_case) = (None, false, false);
    if let Some(label) = group_label {
        if let Some(map) = l.labels.get(label) {
            let attribute = map
                .attribute
                .clone()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| {
                    refused(
                        &format!("ldap_auth.labels.{label}.attribute"),
                        "missing: docker_auth fails every LDAP sign-in like this",
                    )
                })?;
            if map.parse_cn {
                notes.push(format!(
                    "ldap_auth.labels.{label}.parse_cn: the gate takes the CN of DN values when \
                     it is their first RDN and skips other values; docker_auth took the first CN \
                     anywhere in the DN, or the whole value"
                ));
            }
            names = !map.parse_cn;
            lower_case = map.lower_case;
            group_attribute = Some(attribute);
        }
    }
    if lower_case {
        notes.push(
            "ldap_auth.labels: lower_case is not carried over: the gate keeps group names as the \
             directory has them"
                .into(),
        );
    }
    Ok((
        LdapSection {
            url,
            starttls: tls == "starttls",
            ca,
            bind_dn,
            bind_password_file,
            base,
            filter,
            group_attribute,
            group_attribute_holds_names: names,
        },
        lower_case,
    ))
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
