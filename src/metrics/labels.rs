//! The label values of the metric families: each a closed set, so the number of
//! series stays bounded whatever clients send.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};

/// A request method, folded to a fixed set.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
pub enum Method {
    /// `GET`.
    GET,
    /// `HEAD`.
    HEAD,
    /// `POST`.
    POST,
    /// `PUT`.
    PUT,
    /// `PATCH`.
    PATCH,
    /// `DELETE`.
    DELETE,
    /// Any other method.
    OTHER,
}

impl From<&http::Method> for Method {
    fn from(m: &http::Method) -> Method {
        match *m {
            http::Method::GET => Method::GET,
            http::Method::HEAD => Method::HEAD,
            http::Method::POST => Method::POST,
            http::Method::PUT => Method::PUT,
            http::Method::PATCH => Method::PATCH,
            http::Method::DELETE => Method::DELETE,
            _ => Method::OTHER,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub(super) method: Method,
    /// `2xx`, `4xx`, ...
    pub(super) status: &'static str,
}

/// How a login check ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum AuthResult {
    /// Valid credentials, checked by hashing.
    success,
    /// Valid credentials, found in the login cache.
    cache_hit,
    /// Unknown user or wrong password.
    failure,
    /// The sign-in directory could not be asked (answered 503).
    unavailable,
}

impl AuthResult {
    /// Every value, for the series that exist at 0 from the start.
    pub(super) const ALL: [AuthResult; 4] = [
        AuthResult::success,
        AuthResult::cache_hit,
        AuthResult::failure,
        AuthResult::unavailable,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct AuthLabels {
    pub(super) result: AuthResult,
}

/// Which kind of machine login ([`MachineLabels`]).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum MachineKind {
    /// A robot account's secret.
    robot,
    /// A CI job's OIDC token.
    oidc,
}

/// How a machine login ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum MachineResult {
    /// Logged in.
    success,
    /// Unknown robot, wrong secret, or a token that does not verify.
    failure,
    /// Known but no longer allowed: an expired robot, a rotated secret past its grace.
    refused,
}

impl MachineResult {
    pub(super) const ALL: [MachineResult; 3] = [
        MachineResult::success,
        MachineResult::failure,
        MachineResult::refused,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct MachineLabels {
    pub(super) kind: MachineKind,
    pub(super) result: MachineResult,
}

/// How a TLS handshake (or the PROXY header before it) failed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum HandshakeFailure {
    /// The TLS handshake failed.
    error,
    /// The client did not finish within `listen.handshake_timeout`.
    timeout,
    /// `listen.proxy_protocol` is on and the PROXY header was missing or malformed.
    proxy_protocol,
    /// The client spoke plain HTTP to the TLS port (answered 400).
    plain_http,
}

impl HandshakeFailure {
    /// Every value, for the series that exist at 0 from the start.
    pub(super) const ALL: [HandshakeFailure; 4] = [
        HandshakeFailure::error,
        HandshakeFailure::timeout,
        HandshakeFailure::proxy_protocol,
        HandshakeFailure::plain_http,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct HandshakeLabels {
    pub(super) reason: HandshakeFailure,
}

/// Which timeout closed a connection or ended a request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ConnectionTimeout {
    /// No request came within `listen.idle_timeout`.
    idle,
    /// A request head did not complete within `listen.header_timeout`.
    header,
    /// A request body sent nothing for `listen.body_timeout`.
    body,
    /// The client took none of the gate's bytes for `listen.send_timeout`.
    send,
}

impl ConnectionTimeout {
    /// Every value, for the series that exist at 0 from the start.
    pub(super) const ALL: [ConnectionTimeout; 4] = [
        ConnectionTimeout::idle,
        ConnectionTimeout::header,
        ConnectionTimeout::body,
        ConnectionTimeout::send,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TimeoutLabels {
    pub(super) timeout: ConnectionTimeout,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ReloadLabels {
    pub(super) result: &'static str,
}

/// The values of `registry_gate_reloads_total{result}`.
pub(super) const RELOAD_RESULTS: [&str; 2] = ["success", "failure"];

/// The crate version, and the commit when the build names one in
/// `REGISTRY_GATE_COMMIT` (there is no build script: a build outside git, from a
/// tarball or crates.io, must work, and then has no commit to give).
pub(super) fn build_labels() -> Vec<(&'static str, &'static str)> {
    let mut labels = vec![("version", env!("CARGO_PKG_VERSION"))];
    if let Some(commit) = option_env!("REGISTRY_GATE_COMMIT").filter(|c| !c.is_empty()) {
        labels.push(("commit", commit));
    }
    labels
}
