//! `server` and `token`: the listener, the TLS files and `[token]`.

use std::net::SocketAddr;

use super::render::TokenSection;
use super::yaml::{AuthConfig, Server};
use super::{refused, Error, Options, SERVICE_PLACEHOLDER};

/// The gate's shortest token lifetime, in seconds (clients round shorter ones up).
const MIN_EXPIRATION: i64 = 60;
/// Where the placeholder TLS files go when docker_auth served plain HTTP.
pub const PLACEHOLDER_CERT: &str = "certs/server.crt";
/// The placeholder key beside [`PLACEHOLDER_CERT`].
pub const PLACEHOLDER_KEY: &str = "certs/server.key";

/// `listen.addr` from `server.addr` (and `server.net`).
pub fn listen_addr(server: &Server, notes: &mut Vec<String>) -> Result<String, Error> {
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

/// `[tls]` from the server's pair, or placeholders (noted).
pub fn tls_files(server: &Server, notes: &mut Vec<String>) -> Result<(String, String), Error> {
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

/// `[token]`.
pub fn token_section(
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
    let expiration_seconds = expiration(token.expiration, notes)?;
    let (cert, key) = signing_pair(config)?;
    if token.disable_legacy_key_id.is_some() {
        notes.push(
            "token.disable_legacy_key_id: not carried over; the gate chooses its tokens' key \
             IDs itself"
                .into(),
        );
    }
    let prefix = config.server.path_prefix.as_deref().unwrap_or("");
    if !prefix.is_empty() && !prefix.starts_with('/') {
        return Err(refused(
            "server.path_prefix",
            "must be an absolute path (docker_auth refuses it too)",
        ));
    }
    Ok(TokenSection {
        path: format!("{}/auth", prefix.trim_end_matches('/')),
        issuer,
        service: service(options, notes),
        key,
        cert,
        expiration_seconds,
    })
}

/// `token.expiration`, at least the gate's minimum.
fn expiration(seconds: Option<i64>, notes: &mut Vec<String>) -> Result<i64, Error> {
    match seconds {
        Some(s) if s >= MIN_EXPIRATION => Ok(s),
        Some(s) if s > 0 => {
            notes.push(format!(
                "token.expiration: {s}s raised to {MIN_EXPIRATION}s, the gate's minimum \
                 (clients treat shorter tokens as {MIN_EXPIRATION}s anyway)"
            ));
            Ok(MIN_EXPIRATION)
        }
        _ => Err(refused(
            "token.expiration",
            "missing or not positive (docker_auth requires seconds above zero)",
        )),
    }
}

/// `(cert, key)` docker_auth signs with: the token's pair, else the server's.
fn signing_pair(config: &AuthConfig) -> Result<(String, String), Error> {
    let (token, server) = (&config.token, &config.server);
    match (&token.certificate, &token.key) {
        (Some(c), Some(k)) => Ok((c.clone(), k.clone())),
        (None, None) => match (&server.certificate, &server.key) {
            (Some(c), Some(k)) => Ok((c.clone(), k.clone())),
            _ => Err(refused(
                "token",
                "no certificate and key, nor a server pair to sign with: docker_auth does not \
                 start like this",
            )),
        },
        _ => Err(refused(
            "token",
            "certificate and key go together (docker_auth refuses one without the other)",
        )),
    }
}

/// `--service`, or the placeholder with a note.
fn service(options: &Options, notes: &mut Vec<String>) -> String {
    if let Some(service) = &options.service {
        return service.clone();
    }
    notes.push(format!(
        "token.service = {SERVICE_PLACEHOLDER:?}: docker_auth has no such setting; set it to \
         the registry's auth.token.service (REGISTRY_AUTH_TOKEN_SERVICE), or import with \
         --service"
    ));
    SERVICE_PLACEHOLDER.into()
}
