//! The built, immutable form of the configuration: what a request needs, ready to use.
//!
//! [`State::build`] turns a [`Config`] into loaded certificates, users, patterns and
//! an upstream pool. It is the unit of reload: [`State::rebuild`] makes a new one
//! that is swapped in whole. The htpasswd and group files mean the same at start
//! and on reload: their usable lines apply, and each unusable line is ignored (with
//! a warning) at the cost of its own user or membership only. A part that cannot be
//! built on reload keeps its running value ([`fallback`]), so the user sources apply
//! whatever else is wrong.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::auth::directory::DirectoryLogins;
use crate::auth::groups::{self, Groups};
use crate::auth::htpasswd::{self, Htpasswd};
use crate::auth::ldap::Directory;
use crate::auth::robots::{self, Robots};
use crate::auth::throttle::{Limits, Throttle};
use crate::auth::Authenticator;
use crate::authz::rules::{self, Rules};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::proxy::headers::TrustedProxies;
use crate::proxy::ua::UaBlocklist;
use crate::proxy::upstream::Upstream;
use crate::tls;

mod fallback;

use fallback::Fallback;
pub use fallback::KeptPart;

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
    /// `[[oidc]]`: an issuer's key file or HTTPS client could not be set up.
    #[error("oidc issuer {issuer}: {error}")]
    Oidc {
        /// The issuer.
        issuer: String,
        /// Why.
        error: String,
    },
    /// `[auth] robots` could not be read.
    #[error("auth.robots {}: {error}", .path.display())]
    Robots {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// `[authz]`.
    #[error("{0}")]
    Rules(#[source] rules::Error),
    /// `[authz] rules_file` holds no rule.
    #[error("authz.rules_file {} has no rules (refused: it would allow every user everything)", .0.display())]
    EmptyRulesFile(std::path::PathBuf),
    /// `[authz] rules_file` could not be read or parsed.
    #[error("authz.rules_file")]
    RulesFile(#[source] crate::config::Error),
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

/// A line of the htpasswd or group file that a build ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IgnoredLine {
    /// An htpasswd line: its user cannot log in (or, for a duplicate, its first
    /// line decides).
    Htpasswd(htpasswd::Warning),
    /// A group file line: the memberships it would give do not count.
    Groups(groups::Warning),
    /// A robots file line: its robot cannot log in.
    Robots(PathBuf, robots::Warning),
}

impl IgnoredLine {
    /// Logs the line at WARN (`file:line: reason`; never a hash).
    pub fn log(&self) {
        match self {
            IgnoredLine::Htpasswd(warning) => tracing::warn!(%warning, "htpasswd line ignored"),
            IgnoredLine::Groups(warning) => tracing::warn!(%warning, "group file line ignored"),
            IgnoredLine::Robots(..) => {
                tracing::warn!(warning = %self, "robots file line ignored")
            }
        }
    }
}

impl std::fmt::Display for IgnoredLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoredLine::Htpasswd(w) => w.fmt(f),
            IgnoredLine::Groups(w) => w.fmt(f),
            IgnoredLine::Robots(path, w) => write!(f, "{}: {w}", path.display()),
        }
    }
}

/// What [`State::rebuild`] made: the new state and the parts of it that kept their
/// running value because they could not be built.
#[derive(Debug)]
pub struct Rebuilt {
    /// The state to swap in.
    pub state: State,
    /// The parts that kept their running value, with why.
    pub kept: Vec<KeptPart>,
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
    /// The robot accounts (`auth.robots`; none without it).
    pub robots: Arc<Robots>,
    /// The `[[oidc]]` issuers, with their keys (a fetched key cache is kept across
    /// reloads that keep the issuer and its CA).
    pub oidc: Arc<Vec<crate::auth::oidc::Trusted>>,
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
    /// The lines of the htpasswd and group files this build ignored (logged by
    /// whoever built it: `serve`, the reload, `check-config`).
    pub ignored_lines: Vec<IgnoredLine>,
    /// The htpasswd users, kept for a reload that cannot read the file.
    users: Htpasswd,
    /// The group file's groups alone, kept for a reload that cannot read the file.
    group_file: Groups,
}

impl State {
    /// Loads every file the config names and builds the runtime objects; any part
    /// that cannot be built is an error. Unusable lines of the htpasswd and group
    /// files are not: they are listed in [`State::ignored_lines`] and cost only
    /// their own user (or membership). A duplicate user keeps its first line.
    pub fn build(config: &Config) -> Result<State, Error> {
        State::assemble(config, None).map(|rebuilt| rebuilt.state)
    }

    /// [`State::build`] for a reload: the files are read as at start, and a part
    /// that cannot be built (a bad certificate, rules file or token key, an
    /// unreadable htpasswd file, ...) keeps `previous`'s value, listed in
    /// [`Rebuilt::kept`]. The metrics and failed-login counters of `previous` are
    /// kept, and so is its directory client (with its connections and login caches)
    /// when `[ldap]` and the bind password are unchanged. A new login cache starts
    /// empty, so a removed or changed user is refused at once.
    pub fn rebuild(config: &Config, previous: &State) -> Rebuilt {
        match State::assemble(config, Some(previous)) {
            Ok(rebuilt) => rebuilt,
            // Every part falls back on `previous`; this arm is for the compiler.
            Err(error) => unreachable!("a rebuild with a previous state never fails: {error}"),
        }
    }

    fn assemble(config: &Config, previous: Option<&State>) -> Result<Rebuilt, Error> {
        let mut fallback = Fallback::new(previous);
        let (tls, tickets) = fallback.part(
            tls::server(&config.tls, previous.map(|p| &p.tickets)).map_err(Error::Tls),
            |p| (p.tls.clone(), p.tickets.clone()),
        )?;
        let upstream = fallback.part(
            config
                .upstream
                .as_ref()
                .map(|u| Upstream::build(u).map_err(Error::Upstream))
                .transpose(),
            |p| p.upstream.clone(),
        )?;
        let metrics = previous.map_or_else(|| Arc::new(Metrics::new()), |p| p.metrics.clone());
        let directory = fallback.part(
            config
                .ldap
                .as_ref()
                .map(|ldap| directory(config, ldap, previous, &metrics))
                .transpose(),
            |p| p.authenticator.directory().cloned(),
        )?;
        let mut ignored_lines = Vec::new();
        let users = load_users(config, &mut fallback, &metrics, &mut ignored_lines)?;
        if let (Some(path), true, None) = (&config.auth.htpasswd, users.is_empty(), &directory) {
            tracing::warn!(
                path = %path.display(),
                "htpasswd file has no usable user: every request will get 401"
            );
        }
        let mut authenticator = Authenticator::new(
            users.clone(),
            config.auth.cache_ttl.0,
            config.auth.cache_size.0,
        )
        .with_check_counter(metrics.password_checks().clone());
        if let Some(directory) = directory {
            authenticator = authenticator.with_directory(directory);
        }
        let group_file = load_group_file(config, &mut fallback, &metrics, &mut ignored_lines)?;
        let robots = load_robots(config, &mut fallback, &mut ignored_lines)?;
        let oidc = fallback.part(oidc_issuers(config, previous).map(Arc::new), |p| {
            p.oidc.clone()
        })?;
        for issuer in oidc.iter() {
            let name = &issuer.issuer.username;
            if users.users().any(|u| u == name) {
                tracing::warn!(
                    user = %name,
                    issuer = %issuer.issuer.issuer,
                    "an htpasswd user has the name of an [[oidc]] username: its password no longer logs in (a token does); rename one"
                );
            }
            let people = issuer.issuer.rules.iter().filter_map(|r| r.literal_user());
            for user in people.filter(|u| users.users().any(|p| p == *u)) {
                tracing::warn!(
                    user = %user,
                    issuer = %issuer.issuer.issuer,
                    "an [[oidc]] claim rule gives the name of an htpasswd user: its tokens get that person's groups and rules; give the rule a user no person has"
                );
            }
        }
        let mut groups = group_file.clone();
        for (group, members) in &config.authz.groups {
            groups.add(group, members.iter().map(String::as_str));
        }
        let token = fallback.part(
            config
                .token
                .as_ref()
                .map(|t| {
                    crate::token::service::TokenService::load(t)
                        .map(Arc::new)
                        .map_err(|e| Error::Token(Box::new(e)))
                })
                .transpose(),
            |p| p.token.clone(),
        )?;
        let rules = fallback.part(
            authz_config(config).and_then(|authz| Rules::compile(&authz).map_err(Error::Rules)),
            |p| p.rules.clone(),
        )?;
        let challenge =
            HeaderValue::from_str(&format!("Basic realm=\"{}\"", config.auth.realm.as_str()))
                .expect("Realm is validated to be printable ASCII without quotes");
        let state = State {
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
            robots,
            oidc,
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
                config.auth.robots.as_ref(),
                config.authz.rules_file.as_ref(),
                config.upstream.as_ref().and_then(|u| u.ca.as_ref()),
            ]
            .into_iter()
            .flatten()
            .chain(config.token.iter().flat_map(|t| &t.previous_certs))
            .chain(config.oidc.iter().filter_map(|o| o.jwks_file.as_ref()))
            .chain(config.oidc.iter().filter_map(|o| o.ca.as_ref()))
            .cloned()
            .collect(),
            ignored_lines,
            users,
            group_file,
        };
        Ok(Rebuilt {
            state,
            kept: fallback.into_kept(),
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
        let mut users = users;
        if !self.robots.is_empty() {
            users.push_str(&format!(", {} robots", self.robots.len()));
        }
        if !self.oidc.is_empty() {
            users.push_str(&format!(", {} OIDC issuers", self.oidc.len()));
        }
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

/// The htpasswd users (none without `auth.htpasswd`); the ignored lines go to
/// `ignored` and their count to the metrics. A file that cannot be read at all
/// keeps the running users on reload.
fn load_users(
    config: &Config,
    fallback: &mut Fallback<'_, State>,
    metrics: &Metrics,
    ignored: &mut Vec<IgnoredLine>,
) -> Result<Htpasswd, Error> {
    let Some(path) = &config.auth.htpasswd else {
        metrics.htpasswd_ignored_lines(0);
        return Ok(Htpasswd::default());
    };
    let loaded = Htpasswd::load(path).map(|(users, warnings)| {
        metrics.htpasswd_ignored_lines(warnings.len());
        ignored.extend(warnings.into_iter().map(IgnoredLine::Htpasswd));
        users
    });
    fallback.part(loaded.map_err(Error::Htpasswd), |p| p.users.clone())
}

/// The group file's groups (none without `auth.groups`), as [`load_users`] does.
fn load_group_file(
    config: &Config,
    fallback: &mut Fallback<'_, State>,
    metrics: &Metrics,
    ignored: &mut Vec<IgnoredLine>,
) -> Result<Groups, Error> {
    let Some(path) = &config.auth.groups else {
        metrics.groups_ignored_lines(0);
        return Ok(Groups::default());
    };
    let loaded = Groups::load(path).map(|(groups, warnings)| {
        metrics.groups_ignored_lines(warnings.len());
        ignored.extend(warnings.into_iter().map(IgnoredLine::Groups));
        groups
    });
    fallback.part(loaded.map_err(Error::Groups), |p| p.group_file.clone())
}

/// The robot accounts (none without `auth.robots`), read as the htpasswd file is:
/// each unusable line costs its own robot, at start and on reload alike. A file
/// that does not exist yet holds no robot (the first `robot create` makes it); one
/// that cannot be read keeps the running robots on reload.
fn load_robots(
    config: &Config,
    fallback: &mut Fallback<'_, State>,
    ignored: &mut Vec<IgnoredLine>,
) -> Result<Arc<Robots>, Error> {
    let Some(path) = &config.auth.robots else {
        return Ok(Arc::default());
    };
    let loaded = match std::fs::read_to_string(path) {
        Ok(text) => {
            let (robots, warnings) = Robots::parse(&text);
            ignored.extend(
                warnings
                    .into_iter()
                    .map(|w| IgnoredLine::Robots(path.clone(), w)),
            );
            Ok(Arc::new(robots))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "robots file does not exist yet: no robot can log in");
            Ok(Arc::default())
        }
        Err(e) => Err(Error::Robots {
            path: path.clone(),
            error: e.to_string(),
        }),
    };
    fallback.part(loaded, |p| p.robots.clone())
}

/// How long one fetch of an issuer's discovery document or keys may take.
const OIDC_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The `[[oidc]]` issuers: a `jwks_file` read now, else discovery, whose cache is
/// `previous`'s when the issuer and its CA are unchanged (a reload during an issuer
/// outage keeps the keys it had).
fn oidc_issuers(
    config: &Config,
    previous: Option<&State>,
) -> Result<Vec<crate::auth::oidc::Trusted>, Error> {
    use crate::auth::oidc::fetch::Fetcher;
    use crate::auth::oidc::jwks::Jwks;
    use crate::auth::oidc::keys::{Discovered, IssuerKeys};
    use crate::auth::oidc::{Issuer, Trusted};
    let mut issuers = Vec::new();
    for c in &config.oidc {
        let name = c.issuer.0.clone();
        let failed = |error: String| Error::Oidc {
            issuer: name.clone(),
            error,
        };
        let keys = match &c.jwks_file {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| failed(format!("jwks_file {}: {e}", path.display())))?;
                let jwks = Jwks::parse(&bytes)
                    .map_err(|e| failed(format!("jwks_file {}: {e}", path.display())))?;
                for skipped in &jwks.skipped {
                    tracing::warn!(issuer = %name, key = %skipped, "OIDC issuer key skipped");
                }
                IssuerKeys::Fixed(Arc::new(jwks))
            }
            None => {
                let kept = previous.and_then(|p| {
                    p.oidc.iter().find_map(|t| match &t.keys {
                        IssuerKeys::Discovered(d) if t.issuer.issuer == name && t.ca == c.ca => {
                            Some(d.clone())
                        }
                        _ => None,
                    })
                });
                match kept {
                    Some(discovered) => IssuerKeys::Discovered(discovered),
                    None => {
                        let fetcher = Fetcher::new(&name, c.ca.as_deref(), OIDC_FETCH_TIMEOUT)
                            .map_err(|e| failed(e.to_string()))?;
                        IssuerKeys::Discovered(Arc::new(Discovered::new(fetcher)))
                    }
                }
            }
        };
        issuers.push(Trusted {
            issuer: Issuer {
                issuer: name.clone(),
                audience: c.audience.0.clone(),
                username: c.username.0.clone(),
                max_lifetime: c.max_lifetime.0,
                rules: c.rules.iter().map(|r| r.compiled.clone()).collect(),
            },
            keys,
            ca: c.ca.clone(),
        });
    }
    Ok(issuers)
}

fn throttle_limits(config: &Config) -> Limits {
    let t = &config.throttle;
    Limits {
        enabled: t.enabled,
        window: t.window.0,
        per_address: t.max_failures_per_address,
        per_user: t.max_failures_per_user,
        ipv6_prefix: t.ipv6_prefix.get(),
    }
}

#[cfg(test)]
mod tests;
