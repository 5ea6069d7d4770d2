//! Header rewriting: hop-by-hop removal, forwarding headers, the API-version header.
//!
//! Pure functions on [`HeaderMap`]s, so each rule is tested on its own.
//!
//! The registry builds absolute upload URLs (`Location`) from, in order, `Forwarded`,
//! `X-Forwarded-Proto`/`X-Forwarded-Host`, and `Host`. A client that could set them
//! could make the registry hand out URLs of its choosing, so from a peer that is not
//! a trusted proxy they are replaced or removed. From a trusted proxy (a load
//! balancer that already set them) they are kept, and the peer is appended to
//! `X-Forwarded-For`.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// `Docker-Distribution-Api-Version`.
pub static API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
/// The only value the gate ever sends for [`API_VERSION`].
pub static API_VERSION_VALUE: HeaderValue = HeaderValue::from_static("registry/2.0");

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static HTTPS: HeaderValue = HeaderValue::from_static("https");

/// Peers whose forwarding headers are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Wraps the configured networks.
    pub fn new(nets: Vec<ipnet::IpNet>) -> Self {
        TrustedProxies(nets)
    }

    /// How many networks are trusted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no network is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is inside one of the networks (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Removes hop-by-hop headers: those of [RFC 9110 §7.6.1] and any that `Connection`
/// names. They describe one connection, never the next one.
///
/// [RFC 9110 §7.6.1]: https://www.rfc-editor.org/rfc/rfc9110#section-7.6.1
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most requests and answers carry none: one pass over the names they have is
    // cheaper than a hashed lookup for each of the seven.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(&name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The hop-by-hop headers of [RFC 9110 §7.6.1] (and the older `Keep-Alive` and
/// `Proxy-Connection`); any others are named by `Connection`, itself one of these.
///
/// [RFC 9110 §7.6.1]: https://www.rfc-editor.org/rfc/rfc9110#section-7.6.1
static HOP_BY_HOP: [&HeaderName; 7] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::TE,
    &header::TRAILER,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
];

/// The client's address: the peer, or behind trusted proxies the right-most
/// untrusted address of `X-Forwarded-For`. Computed once per request, before
/// authentication, for the throttle and the access log.
pub fn client_address(headers: &HeaderMap, peer: IpAddr, trusted: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer);
    if trusted.contains(peer) {
        client_behind(headers, peer, trusted)
    } else {
        peer
    }
}

/// Sets the forwarding headers of a request about to go upstream.
///
/// `host` is the authority the client used (`Host`, or `:authority` on HTTP/2),
/// port included; `client` is what [`client_address`] found.
pub fn set_forwarding(
    headers: &mut HeaderMap,
    peer: IpAddr,
    client: IpAddr,
    host: HeaderValue,
    trusted: &TrustedProxies,
) {
    let peer = canonical(peer);
    headers.insert(header::HOST, host);
    let peer_value = ip_value(peer);
    if !trusted.contains(peer) {
        for name in [&FORWARDED, &X_FORWARDED_HOST, &X_FORWARDED_PORT] {
            headers.remove(name);
        }
        headers.insert(X_FORWARDED_FOR.clone(), peer_value.clone());
        headers.insert(X_FORWARDED_PROTO.clone(), HTTPS.clone());
        headers.insert(X_REAL_IP.clone(), peer_value);
        return;
    }
    let appended = match joined(headers, &X_FORWARDED_FOR) {
        Some(prior) => HeaderValue::from_maybe_shared(format!("{prior}, {peer}"))
            .unwrap_or_else(|_| peer_value.clone()),
        None => peer_value,
    };
    headers.insert(X_FORWARDED_FOR.clone(), appended);
    // The registry uses X-Forwarded-Proto verbatim, so "https, http" from a chain
    // of proxies would become a broken URL: keep the first (client-facing) value.
    let proto = match joined(headers, &X_FORWARDED_PROTO)
        .as_deref()
        .map(first_token)
    {
        Some(p) if p.eq_ignore_ascii_case("http") => HeaderValue::from_static("http"),
        _ => HTTPS.clone(),
    };
    headers.insert(X_FORWARDED_PROTO.clone(), proto);
    headers.insert(X_REAL_IP.clone(), ip_value(client));
}

/// The right-most address of `X-Forwarded-For` that is not a trusted proxy, as
/// nginx's `real_ip_recursive on` finds it; the peer when there is none.
fn client_behind(headers: &HeaderMap, peer: IpAddr, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer;
    let Some(list) = joined(headers, &X_FORWARDED_FOR) else {
        return client;
    };
    for item in list.rsplit(',') {
        match item.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !trusted.contains(client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// All values of a header joined by ", " (RFC 9110 §5.3), if any are valid text.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let parts: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn first_token(list: &str) -> &str {
    list.split(',').next().unwrap_or("").trim()
}

fn ip_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_maybe_shared(ip.to_string())
        .expect("an IP address's text is a valid header value")
}

/// Adds `Docker-Distribution-Api-Version: registry/2.0` unless one is present.
pub fn ensure_api_version(headers: &mut HeaderMap) {
    if !headers.contains_key(&API_VERSION) {
        headers.insert(API_VERSION.clone(), API_VERSION_VALUE.clone());
    }
}

/// Adds `Strict-Transport-Security` (when `hsts` is set) and
/// `X-Content-Type-Options: nosniff` to a response, each only when it does not carry
/// that header already (the registry may set its own); nothing else is touched.
pub fn add_security_headers(headers: &mut HeaderMap, hsts: Option<&HeaderValue>) {
    if let Some(value) = hsts {
        if !headers.contains_key(http::header::STRICT_TRANSPORT_SECURITY) {
            headers.insert(http::header::STRICT_TRANSPORT_SECURITY, value.clone());
        }
    }
    if !headers.contains_key(http::header::X_CONTENT_TYPE_OPTIONS) {
        headers.insert(
            http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
}

#[cfg(test)]
mod tests;
