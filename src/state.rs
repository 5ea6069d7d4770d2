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

use crate::auth::groups::{self, Groups};
use crate::auth::htpasswd::{self, Htpasswd};
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
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long in-flight requests may run after SIGTERM.
    pub grace_period: Duration,
    /// The registry.
    pub upstream: Upstream,
    /// The credential checker.
    pub authenticator: Authenticator,
    /// Group membership (file and config).
    pub groups: Groups,
    /// The authorization rules; `None`: every authenticated user may do everything.
    pub rules: Option<Rules>,
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
        let tls = tls::server_config(&config.tls.cert, &config.tls.key).map_err(Error::Tls)?;
        let upstream = Upstream::build(&config.upstream).map_err(Error::Upstream)?;
        let (users, warnings) = Htpasswd::load(&config.auth.htpasswd).map_err(Error::Htpasswd)?;
        let (duplicates, unusable): (Vec<_>, Vec<_>) = warnings
            .into_iter()
            .partition(|w| matches!(w.reason, htpasswd::Reason::Duplicate { .. }));
        if strictness == Strictness::Strict && !unusable.is_empty() {
            return Err(Error::HtpasswdLines(unusable));
        }
        for warning in duplicates.iter().chain(&unusable) {
            tracing::warn!(%warning, "htpasswd line ignored");
        }
        if users.is_empty() {
            tracing::warn!(
                path = %config.auth.htpasswd.display(),
                "htpasswd file has no usable user: every request will get 401"
            );
        }
        let groups = load_groups(config, strictness)?;
        let rules = Rules::compile(&authz_config(config)?).map_err(Error::Rules)?;
        let challenge =
            HeaderValue::from_str(&format!("Basic realm=\"{}\"", config.auth.realm.as_str()))
                .expect("Realm is validated to be printable ASCII without quotes");
        Ok(State {
            listen_addr: config.listen.addr,
            proxy_protocol: config.listen.proxy_protocol,
            admin_addr: config.admin.enabled.then_some(config.admin.addr),
            log_format: config.log.format,
            metrics: Arc::new(Metrics::new()),
            tls,
            handshake_timeout: config.listen.handshake_timeout.0,
            max_connections: config.listen.max_connections.0,
            grace_period: config.shutdown.grace_period.0,
            upstream,
            authenticator: Authenticator::new(
                users,
                config.auth.cache_ttl.0,
                config.auth.cache_size.0,
            ),
            groups,
            rules,
            challenge,
            trusted_proxies: TrustedProxies::new(config.forwarding.trusted_proxies.clone()),
            user_agents: UaBlocklist::new(config.user_agent.block.clone()),
            max_body_size: config.limits.max_body_size.map(|b| b.0),
            throttle: Throttle::new(throttle_limits(config)),
            watch_interval: config.reload.watch_interval.0,
            watched_files: [
                Some(&config.tls.cert),
                Some(&config.tls.key),
                Some(&config.auth.htpasswd),
                config.auth.groups.as_ref(),
                config.authz.rules_file.as_ref(),
                config.upstream.ca.as_ref(),
            ]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
        })
    }

    /// Keeps what must outlive a reload from the state being replaced: the
    /// failed-login counters and the metrics.
    pub fn carry_over_from(&mut self, old: &State) {
        self.throttle = old.throttle.carry_over(self.throttle.limits());
        self.metrics = old.metrics.clone();
    }

    /// A one-line summary for the log after start or reload.
    pub fn summary(&self) -> String {
        let rules = match &self.rules {
            Some(r) => format!("{} authorization rules", r.len()),
            None => "no authorization rules (every user may push)".to_string(),
        };
        format!(
            "{} users, {} groups, {rules}, {} trusted proxy networks, {} user-agent patterns",
            self.authenticator.user_count(),
            self.groups.group_count(),
            self.trusted_proxies.len(),
            self.user_agents.len(),
        )
    }
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
