//! The `proxy.toml` file: serde structs, value newtypes, defaults and validation.
//!
//! This module reads one file and nothing else. Every value is checked inside its
//! newtype while it is deserialised, so that the toml parser attaches the line and
//! column of the offending value to the error. Checks that involve two keys live in
//! [`Config::validate`] and name the key path. Relative paths are resolved against
//! the directory of the config file by [`Config::load`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod addr;
mod authz;
mod duplicate;
pub mod env;
mod error;
pub mod ldap;
mod load;
pub mod oidc;
pub mod token;
mod values;
#[cfg(test)]
use self::values::parse_byte_size;
mod words;
pub use self::authz::{load_rules_file, AuthzConfig, RuleConfig};
pub use self::env::Override;
pub use self::error::Error;
pub use self::values::{
    AtLeastOne, Bounded, ByteSize, Count, HeadBytes, HeaderCount, HeaderText, HumanDuration,
    Ipv6Prefix, Realm, TicketLifetime, Timeout, UaPattern, UpstreamUrl, MAX_TICKET_LIFETIME,
};

/// The recipe's user-agent pattern: docker 1.3 to 1.5 (but not 1.5.x-dev) and bare `Go ` clients.
pub const DEFAULT_UA_BLOCK: &str = r"^(docker\/1\.(3|4|5(?!\.[0-9]-dev))|Go ).*$";
const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:5043";
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Session-ticket keys rotate hourly: a stolen key (or a memory dump) opens at most
/// two hours of resumed sessions, and clients resume well within a CI job.
const DEFAULT_SESSION_TICKET_LIFETIME: Duration = Duration::from_secs(3600);
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_HEADER_BYTES: u64 = 64 * 1024;
const DEFAULT_MAX_HEADERS: usize = 100;
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(900);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const DEFAULT_REALM: &str = "Registry realm";
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Two years, the value hstspreload.org asks for; no `includeSubDomains`, which is the
/// operator's decision for their domain.
const DEFAULT_HSTS: &str = "max-age=63072000";
const DEFAULT_CACHE_SIZE: usize = 10_000;
const DEFAULT_THROTTLE_WINDOW: Duration = Duration::from_secs(300);
const DEFAULT_MAX_FAILURES_PER_ADDRESS: u32 = 100;
const DEFAULT_MAX_FAILURES_PER_USER: u32 = 10;
const DEFAULT_IPV6_PREFIX: u8 = 64;
const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9143";

/// The whole configuration.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[listen]`: where the gate accepts TLS connections.
    #[serde(default)]
    pub listen: ListenConfig,
    /// `[tls]`: the server certificate.
    pub tls: TlsConfig,
    /// `[upstream]`: the registry behind the gate (optional in token mode: a token
    /// server alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamConfig>,
    /// `[auth]`: who may use the registry (may be left out when `[ldap]` is set).
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[forwarding]`: which peers' `X-Forwarded-*` headers are believed.
    #[serde(default)]
    pub forwarding: ForwardingConfig,
    /// `[user_agent]`: clients refused with 404 before authentication.
    #[serde(default)]
    pub user_agent: UserAgentConfig,
    /// `[limits]`: optional request limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[shutdown]`: how long in-flight requests may run after SIGTERM.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// `[throttle]`: brute-force protection.
    #[serde(default)]
    pub throttle: ThrottleConfig,
    /// `[reload]`: watching the files for changes.
    #[serde(default)]
    pub reload: ReloadConfig,
    /// `[admin]`: the plain-HTTP listener for metrics and health checks.
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[log]`: the format of log and access-log lines.
    #[serde(default)]
    pub log: LogConfig,
    /// `[authz]`: who may pull, push and delete which repositories.
    #[serde(default)]
    pub authz: AuthzConfig,
    /// `[headers]`: security headers on every response.
    #[serde(default)]
    pub headers: HeadersConfig,
    /// `[ldap]`: users (and groups) from an LDAP directory or Active Directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<ldap::LdapConfig>,
    /// `[token]`: the token server of `auth.mode = "token"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<token::TokenConfig>,
    /// `[[oidc]]`: issuers whose ID tokens log CI jobs in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oidc: Vec<oidc::OidcConfig>,
}

/// `[listen]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// Socket address to bind, such as `0.0.0.0:443`.
    #[serde(deserialize_with = "addr::listen")]
    pub addr: SocketAddr,
    /// Time a client has to finish the TLS handshake.
    pub handshake_timeout: Timeout,
    /// Time a request head (request line and headers) has from its first byte to
    /// its last (nginx's `client_header_timeout`).
    pub header_timeout: Timeout,
    /// How long a keep-alive connection may wait for its next request (nginx's
    /// `keepalive_timeout`); an HTTP/2 connection is idle while no stream is open.
    pub idle_timeout: Timeout,
    /// Longest silence in a request body while the gate waits for it (nginx's
    /// `client_body_timeout`): progress, not total time, so a slow upload lives.
    pub body_timeout: Timeout,
    /// Longest a write to the client may wait for it to take bytes (nginx's
    /// `send_timeout`): progress, not total time, so a slow download lives.
    pub send_timeout: Timeout,
    /// Connections served at once; further connections wait in the kernel backlog.
    pub max_connections: AtLeastOne,
    /// Every connection starts with a PROXY protocol v1 or v2 header (from an AWS
    /// NLB, an ELB in TCP mode or HAProxy), whose client address the gate then uses.
    pub proxy_protocol: bool,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            addr: DEFAULT_LISTEN_ADDR
                .parse()
                .expect("DEFAULT_LISTEN_ADDR is a valid socket address"),
            handshake_timeout: Timeout(DEFAULT_HANDSHAKE_TIMEOUT),
            header_timeout: Timeout(DEFAULT_HEADER_TIMEOUT),
            idle_timeout: Timeout(DEFAULT_IDLE_TIMEOUT),
            body_timeout: Timeout(DEFAULT_BODY_TIMEOUT),
            send_timeout: Timeout(DEFAULT_SEND_TIMEOUT),
            max_connections: Bounded(DEFAULT_MAX_CONNECTIONS),
            proxy_protocol: false,
        }
    }
}

/// `[tls]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key: PKCS#1, PKCS#8 or SEC1.
    pub key: PathBuf,
    /// How long a session ticket's key is used to seal new tickets, and the lifetime
    /// hint sent with each ticket; `"0s"` turns session resumption off.
    #[serde(default = "default_session_ticket_lifetime")]
    pub session_ticket_lifetime: TicketLifetime,
    /// PEM bundle of the CAs whose client certificates identify a user (mTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// Whether a client must present a certificate (needs `client_ca`).
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// A DER OCSP response for the certificate, stapled to every handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp: Option<PathBuf>,
}

impl TlsConfig {
    /// A certificate and key with every other `[tls]` key at its default.
    pub fn pair(cert: &Path, key: &Path) -> TlsConfig {
        TlsConfig {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            session_ticket_lifetime: default_session_ticket_lifetime(),
            client_ca: None,
            client_auth: ClientAuth::default(),
            ocsp: None,
        }
    }
}

/// `tls.client_auth`: what a client without a certificate gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// The handshake goes on; the client logs in with a password (or is anonymous).
    #[default]
    Optional,
    /// The handshake fails.
    Required,
}

/// `[upstream]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The registry's base URL, `http://host:port` or `https://host:port`.
    pub url: UpstreamUrl,
    /// Longest wait for the registry's answer after the last request byte was sent,
    /// and between two reads of its response body (nginx's `proxy_read_timeout`).
    #[serde(default = "default_read_timeout")]
    pub read_timeout: HumanDuration,
    /// Longest wait for a TCP connection to the registry.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// How long an idle keep-alive connection to the registry is kept.
    #[serde(default = "default_pool_idle_timeout")]
    pub pool_idle_timeout: HumanDuration,
    /// PEM CA bundle that signs an `https://` registry's certificate; the
    /// system roots when absent.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

/// How clients prove who they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// The gate checks Basic credentials on every `/v2/` request itself.
    #[default]
    Basic,
    /// The gate issues tokens at `[token] path`; the registry checks them.
    Token,
}

/// `[auth]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `"basic"` (the default) or `"token"`.
    pub mode: AuthMode,
    /// The htpasswd file; optional when `[ldap]` is set (its users are asked first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub htpasswd: Option<PathBuf>,
    /// The realm in the `WWW-Authenticate: Basic` challenge.
    pub realm: Realm,
    /// How long a successful verification is remembered; `"0s"` turns the cache off.
    pub cache_ttl: HumanDuration,
    /// How many successful verifications are remembered at most.
    pub cache_size: Count,
    /// An Apache-style group file (`group: user1 user2`), for `[authz]` rules.
    pub groups: Option<PathBuf>,
    /// The robots file (`registry-gate robot create`): machine accounts that log in
    /// as `robot$NAME`, each with its own scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robots: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Basic,
            htpasswd: None,
            realm: Realm::default(),
            cache_ttl: HumanDuration(DEFAULT_CACHE_TTL),
            cache_size: Count(DEFAULT_CACHE_SIZE),
            groups: None,
            robots: None,
        }
    }
}

/// `[forwarding]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardingConfig {
    /// Peers (load balancers) whose `X-Forwarded-*`, `Forwarded` and `X-Real-IP` are kept.
    #[serde(default, deserialize_with = "addr::networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// `[user_agent]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserAgentConfig {
    /// Patterns (with look-around) whose match on `User-Agent` gets a 404 under `/v2/`.
    pub block: Vec<UaPattern>,
}

impl Default for UserAgentConfig {
    fn default() -> Self {
        UserAgentConfig {
            block: vec![UaPattern::try_from(DEFAULT_UA_BLOCK.to_string())
                .expect("DEFAULT_UA_BLOCK is a valid pattern")],
        }
    }
}

/// `[limits]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body in bytes; no limit when absent (nginx's `client_max_body_size 0`).
    pub max_body_size: Option<ByteSize>,
    /// Largest request head (request line and headers, or an HTTP/2 header list);
    /// larger heads get 431.
    pub max_header_bytes: HeadBytes,
    /// Most header fields in one HTTP/1.1 request; more get 431.
    pub max_headers: HeaderCount,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_size: None,
            max_header_bytes: HeadBytes(DEFAULT_MAX_HEADER_BYTES),
            max_headers: Bounded(DEFAULT_MAX_HEADERS),
        }
    }
}

/// `[shutdown]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight requests may continue after SIGTERM before connections are closed.
    pub grace_period: HumanDuration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace_period: HumanDuration(DEFAULT_GRACE),
        }
    }
}

/// `[throttle]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Whether failed logins are throttled.
    pub enabled: bool,
    /// How long failures are counted; a blocked client waits out the rest of it.
    pub window: HumanDuration,
    /// Failed logins allowed per client address within the window.
    pub max_failures_per_address: u32,
    /// Failed logins allowed per user from one client address within the window.
    pub max_failures_per_user: u32,
    /// IPv6 clients are counted per network of this prefix length.
    pub ipv6_prefix: Ipv6Prefix,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: true,
            window: HumanDuration(DEFAULT_THROTTLE_WINDOW),
            max_failures_per_address: DEFAULT_MAX_FAILURES_PER_ADDRESS,
            max_failures_per_user: DEFAULT_MAX_FAILURES_PER_USER,
            ipv6_prefix: Ipv6Prefix::default(),
        }
    }
}

/// `[reload]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReloadConfig {
    /// How often the config, certificate, key and htpasswd files are checked for
    /// changes; `"0s"` turns watching off (SIGHUP still reloads).
    pub watch_interval: HumanDuration,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            watch_interval: HumanDuration(DEFAULT_WATCH_INTERVAL),
        }
    }
}

/// `[admin]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Whether the admin listener runs.
    pub enabled: bool,
    /// Plain-HTTP address of `/metrics`, `/healthz` and `/readyz`; keep it off the internet.
    #[serde(deserialize_with = "addr::admin")]
    pub addr: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            addr: DEFAULT_ADMIN_ADDR
                .parse()
                .expect("DEFAULT_ADMIN_ADDR is a valid socket address"),
        }
    }
}

/// `[headers]`: security headers added to every response of the gate's listener.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadersConfig {
    /// The `Strict-Transport-Security` value added when a response has none; `""`
    /// turns it off. (`X-Content-Type-Options: nosniff` is always added when missing.)
    pub strict_transport_security: HeaderText,
}

impl Default for HeadersConfig {
    fn default() -> Self {
        HeadersConfig {
            strict_transport_security: HeaderText(Some(http::HeaderValue::from_static(
                DEFAULT_HSTS,
            ))),
        }
    }
}

/// `[log]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `"text"` (the default) or `"json"`, one object per line.
    #[serde(default)]
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable `key=value` lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

fn default_session_ticket_lifetime() -> TicketLifetime {
    TicketLifetime(DEFAULT_SESSION_TICKET_LIFETIME)
}
fn default_read_timeout() -> HumanDuration {
    HumanDuration(DEFAULT_READ_TIMEOUT)
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration(DEFAULT_CONNECT_TIMEOUT)
}
fn default_pool_idle_timeout() -> HumanDuration {
    HumanDuration(DEFAULT_POOL_IDLE_TIMEOUT)
}

#[cfg(test)]
mod tests;
