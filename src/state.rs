//! The built, immutable form of the configuration: what a request needs, ready to use.
//!
//! [`State::build`] turns a [`Config`] into loaded certificates, users, patterns and
//! an upstream pool. It is the unit of reload: a new `State` is built whole and
//! swapped in, or the old one stays.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::auth::directory::DirectoryLogins;
use crate::auth::groups::{self, Groups};
use crate::auth::htpasswd::{self, Htpasswd};
use crate::auth::ldap::Directory;
use crate::auth::Authenticator;
use crate::authz::rules::{self, Rules};
use crate::config::Config;
use crate::headers::TrustedProxies;
use crate::metrics::Metrics;
use crate::throttle::{Limits, Throttle};
use crate::tls;
use crate::ua::UaBlocklist;
use crate::upstream::Upstream;

/// Why a configuration could not be put to use.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `[tls]`: the server certificate or key.
    #[error("tls: {0}")]
    Tls(tls::Error),
    /// `[upstream]`: the client TLS material.
    #[error("upstream: {0}")]
    Upstream(tls::Error),
    /// `[auth] htpasswd`.
    #[error("auth.htpasswd")]
    Htpasswd(#[source] htpasswd::Error),
    /// `[auth] groups`.
    #[error("auth.groups")]
    Groups(#[source] groups::Error),
    /// `[auth] groups` has lines that cannot be used (strict builds only).
    #[error("auth.groups has unusable lines: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    GroupLines(Vec<groups::Warning>),
    /// `[authz]`.
    #[error("{0}")]
    Rules(#[source] rules::Error),
    /// `[authz] rules_file` holds no rule.
    #[error("authz.rules_file {} has no rules (refused: it would allow every user everything)", .0.display())]
    EmptyRulesFile(std::path::PathBuf),
    /// `[authz] rules_file` could not be read or parsed.
    #[error("authz.rules_file")]
    RulesFile(#[source] crate::config::Error),
    /// `[auth] htpasswd` has lines that cannot be used (strict builds only).
    #[error("auth.htpasswd has unusable lines: {}", join(.0))]
    HtpasswdLines(Vec<htpasswd::Warning>),
    /// `[ldap] bind_password_file` could not be read.
    #[error("ldap.bind_password_file {}: {error}", .path.display())]
    BindPassword {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// `[token]`: the signing key or a certificate.
    #[error("{0}")]
    Token(#[source] Box<crate::token::service::Error>),
    /// `[ldap]`: the client could not be set up.
    #[error("{0}")]
    Ldap(#[source] crate::auth::ldap::BuildError),
}

fn join(warnings: &[htpasswd::Warning]) -> String {
    warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// How [`State::build`] treats unusable htpasswd lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    /// At start: log them and serve everyone else.
    Lenient,
    /// On reload and in `check-config`: refuse the file, so a half-written or
    /// broken file never replaces working users.
    Strict,
}

/// Everything the server and the request path read, immutable once built.
#[derive(Debug)]
pub struct State {
    /// The configured listen address (changing it needs a restart).
    pub listen_addr: SocketAddr,
    /// Whether connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// The admin listener's address, if it runs (changing it needs a restart).
    pub admin_addr: Option<SocketAddr>,
    /// The log format (changing it needs a restart).
    pub log_format: crate::config::LogFormat,
    /// The counters behind `/metrics` (carried over across reloads).
    pub metrics: Arc<Metrics>,
    /// The TLS server configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// Its session ticketer, kept across reloads that leave `tls.session_ticket_lifetime`,
    /// the certificate and the client CAs unchanged (a change of users keeps every ticket).
    pub tickets: tls::Tickets,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time a request head has from its first byte to its last.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Longest silence in a request body while the gate waits for it.
    pub body_timeout: Duration,
    /// Longest a write may wait for the client to take bytes.
    pub send_timeout: Duration,
    /// Largest request head in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// Most header fields in one HTTP/1.1 request (431 beyond).
    pub max_headers: usize,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long in-flight requests may run after SIGTERM.
    pub grace_period: Duration,
    /// The registry.
    pub upstream: Option<Upstream>,
    /// The credential checker.
    pub authenticator: Authenticator,
    /// Group membership (file and config).
    pub groups: Groups,
    /// The authorization rules; `None`: every authenticated user may do everything.
    pub rules: Option<Rules>,
    /// Token mode's token server; `None` in Basic mode.
    pub token: Option<Arc<crate::token::service::TokenService>>,
    /// `Strict-Transport-Security` for responses that lack one; `None`: off.
    pub hsts: Option<HeaderValue>,
    /// `WWW-Authenticate` value for 401 answers.
    pub challenge: HeaderValue,
    /// Peers whose forwarding headers are kept.
    pub trusted_proxies: TrustedProxies,
    /// User agents refused with 404.
    pub user_agents: UaBlocklist,
    /// Largest request body, if limited.
    pub max_body_size: Option<u64>,
    /// Failed-login counters (carried over across reloads).
    pub throttle: Throttle,
    /// How often the files below are checked for changes (zero: never).
    pub watch_interval: Duration,
    /// The files a change of which triggers a reload (the config file itself is
    /// added by the watcher).
    pub watched_files: Vec<PathBuf>,
}

impl State {
    /// Loads every file the config names and builds the runtime objects.
    /// Unusable htpasswd lines are logged (those users cannot log in) or, when
    /// `strictness` is [`Strictness::Strict`], an error. A duplicate user is
    /// only ever a warning: the first line wins.
    pub fn build(config: &Config, strictness: Strictness) -> Result<State, Error> {
        State::build_from(config, strictness, None)
    }

    /// [`State::build`] for a reload: the metrics and failed-login counters of
    /// `previous` are kept, and so is its directory client (with its connections
    /// and login caches) when `[ldap]` and the bind password are unchanged.
    pub fn build_from(
        config: &Config,
        strictness: Strictness,
        previous: Option<&State>,
    ) -> Result<State, Error> {
        let (tls, tickets) =
            tls::server(&config.tls, previous.map(|p| &p.tickets)).map_err(Error::Tls)?;
        let upstream = match &config.upstream {
            Some(u) => Some(Upstream::build(u).map_err(Error::Upstream)?),
            None => None,
        };
        let metrics = previous.map_or_else(|| Arc::new(Metrics::new()), |p| p.metrics.clone());
        let directory = match &config.ldap {
            Some(ldap) => Some(directory(config, ldap, previous, &metrics)?),
            None => None,
        };
        let (users, warnings) = match &config.auth.htpasswd {
            Some(path) => Htpasswd::load(path).map_err(Error::Htpasswd)?,
            None => (Htpasswd::default(), Vec::new()),
        };
        let (duplicates, unusable): (Vec<_>, Vec<_>) = warnings
            .into_iter()
            .partition(|w| matches!(w.reason, htpasswd::Reason::Duplicate { .. }));
        if strictness == Strictness::Strict && !unusable.is_empty() {
            return Err(Error::HtpasswdLines(unusable));
        }
        for warning in duplicates.iter().chain(&unusable) {
            tracing::warn!(%warning, "htpasswd line ignored");
        }
        if let (Some(path), true, None) = (&config.auth.htpasswd, users.is_empty(), &directory) {
            tracing::warn!(
                path = %path.display(),
                "htpasswd file has no usable user: every request will get 401"
            );
        }
        let mut authenticator =
            Authenticator::new(users, config.auth.cache_ttl.0, config.auth.cache_size.0);
        if let Some(directory) = directory {
            authenticator = authenticator.with_directory(directory);
        }
        let groups = load_groups(config, strictness)?;
        let token = match &config.token {
            Some(t) => Some(Arc::new(
                crate::token::service::TokenService::load(t)
                    .map_err(|e| Error::Token(Box::new(e)))?,
            )),
            None => None,
        };
        let rules = Rules::compile(&authz_config(config)?).map_err(Error::Rules)?;
        let challenge =
            HeaderValue::from_str(&format!("Basic realm=\"{}\"", config.auth.realm.as_str()))
                .expect("Realm is validated to be printable ASCII without quotes");
        Ok(State {
            listen_addr: config.listen.addr,
            proxy_protocol: config.listen.proxy_protocol,
            admin_addr: config.admin.enabled.then_some(config.admin.addr),
            log_format: config.log.format,
            metrics,
            tls,
            tickets,
            handshake_timeout: config.listen.handshake_timeout.0,
            header_timeout: config.listen.header_timeout.0,
            idle_timeout: config.listen.idle_timeout.0,
            body_timeout: config.listen.body_timeout.0,
            send_timeout: config.listen.send_timeout.0,
            // Validated to at most 1 MiB.
            max_header_bytes: usize::try_from(config.limits.max_header_bytes.0)
                .unwrap_or(usize::MAX),
            max_headers: config.limits.max_headers.0,
            max_connections: config.listen.max_connections.0,
            grace_period: config.shutdown.grace_period.0,
            upstream,
            authenticator,
            groups,
            rules,
            token,
            challenge,
            hsts: config.headers.strict_transport_security.value().cloned(),
            trusted_proxies: TrustedProxies::new(config.forwarding.trusted_proxies.clone()),
            user_agents: UaBlocklist::new(config.user_agent.block.clone()),
            max_body_size: config.limits.max_body_size.map(|b| b.0),
            throttle: Throttle::new(throttle_limits(config)),
            watch_interval: config.reload.watch_interval.0,
            watched_files: [
                Some(&config.tls.cert),
                Some(&config.tls.key),
                config.tls.client_ca.as_ref(),
                config.tls.ocsp.as_ref(),
                config.auth.htpasswd.as_ref(),
                config.token.as_ref().map(|t| &t.key),
                config.token.as_ref().map(|t| &t.cert),
                config
                    .ldap
                    .as_ref()
                    .and_then(|l| l.bind_password_file.as_ref()),
                config.ldap.as_ref().and_then(|l| l.ca.as_ref()),
                config.auth.groups.as_ref(),
                config.authz.rules_file.as_ref(),
                config.upstream.as_ref().and_then(|u| u.ca.as_ref()),
            ]
            .into_iter()
            .flatten()
            .chain(config.token.iter().flat_map(|t| &t.previous_certs))
            .cloned()
            .collect(),
        })
    }

    /// Keeps the failed-login counters of the state being replaced.
    pub fn carry_over_from(&mut self, old: &State) {
        self.throttle = old.throttle.carry_over(self.throttle.limits());
    }

    /// A one-line summary for the log after start or reload.
    pub fn summary(&self) -> String {
        let rules = match &self.rules {
            Some(r) => format!("{} authorization rules", r.len()),
            None => "no authorization rules (every user may push)".to_string(),
        };
        let users = match self.authenticator.directory() {
            Some(d) => format!(
                "{} htpasswd users then LDAP ({})",
                self.authenticator.user_count(),
                d.directory().config().url.list().join(", ")
            ),
            None => format!("{} users", self.authenticator.user_count()),
        };
        format!(
            "{users}, {} groups, {rules}, {} trusted proxy networks, {} user-agent patterns",
            self.groups.group_count(),
            self.trusted_proxies.len(),
            self.user_agents.len(),
        )
    }
}

/// The directory client: the previous one when nothing about it changed, else new.
fn directory(
    config: &Config,
    ldap: &crate::config::ldap::LdapConfig,
    previous: Option<&State>,
    metrics: &Metrics,
) -> Result<Arc<DirectoryLogins>, Error> {
    let password = match &ldap.bind_password_file {
        Some(path) => Some(read_secret(path)?),
        None => None,
    };
    let kept = previous
        .and_then(|p| p.authenticator.directory())
        .filter(|d| {
            d.directory().config() == ldap && d.directory().same_password(password.as_deref())
        });
    if let Some(kept) = kept {
        return Ok(kept.clone());
    }
    let directory = Directory::new(ldap, password, metrics.ldap.clone()).map_err(Error::Ldap)?;
    Ok(Arc::new(DirectoryLogins::new(
        directory,
        ldap,
        config.auth.cache_ttl.0,
        config.auth.cache_size.0,
    )))
}

/// A secret from a file: the whole content, less one trailing newline.
fn read_secret(path: &std::path::Path) -> Result<String, Error> {
    let fail = |error: String| Error::BindPassword {
        path: path.to_path_buf(),
        error,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let secret = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if secret.is_empty() {
        // An empty password makes the search bind an unauthenticated one (RFC 4513).
        return Err(fail("empty".into()));
    }
    Ok(secret.to_string())
}

/// `[authz]` with the rules of `rules_file` in place, if it names one.
fn authz_config(config: &Config) -> Result<crate::config::AuthzConfig, Error> {
    let mut authz = config.authz.clone();
    if let Some(path) = &config.authz.rules_file {
        authz.rules = crate::config::load_rules_file(path).map_err(Error::RulesFile)?;
        if authz.rules.is_empty() {
            // No rules would mean no [authz] at all: every user allowed everything.
            return Err(Error::EmptyRulesFile(path.clone()));
        }
    }
    Ok(authz)
}

/// The group file (if any) plus the groups written in `[authz] groups`.
fn load_groups(config: &Config, strictness: Strictness) -> Result<Groups, Error> {
    let mut groups = match &config.auth.groups {
        Some(path) => {
            let (groups, warnings) = Groups::load(path).map_err(Error::Groups)?;
            if strictness == Strictness::Strict && !warnings.is_empty() {
                return Err(Error::GroupLines(warnings));
            }
            for warning in &warnings {
                tracing::warn!(%warning, "group file line ignored");
            }
            groups
        }
        None => Groups::default(),
    };
    for (group, members) in &config.authz.groups {
        groups.add(group, members.iter().map(String::as_str));
    }
    Ok(groups)
}

fn throttle_limits(config: &Config) -> Limits {
    let t = &config.throttle;
    Limits {
        enabled: t.enabled,
        window: t.window.0,
        per_address: t.max_failures_per_address,
        per_user: t.max_failures_per_user,
    }
}
