//! `listen.addr` and `admin.addr`: an IP address and a port. std's parser only says
//! "invalid socket address syntax"; these errors echo the value and say what is wrong.
//! `forwarding.trusted_proxies` likewise: networks, where a bare address is one host
//! (as nginx's `set_real_ip_from` takes it).

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

/// `listen.addr`, with its example.
pub fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    read(d, "0.0.0.0:5043")
}

/// `admin.addr`, with its example.
pub fn admin<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    read(d, "127.0.0.1:9143")
}

/// `forwarding.trusted_proxies`: CIDRs or bare addresses (a /32 or /128).
pub fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| parse_network(text))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

/// `text` as a network, or an error that quotes it and says why.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net);
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let reason = match text.split_once('/') {
        _ if text.trim() != text => "spaces around it".to_string(),
        Some((addr, len)) => match (addr.parse::<IpAddr>(), len.parse::<u8>()) {
            (Err(_), _) => format!("{addr:?} is not an IP address (host names are not looked up)"),
            (Ok(ip), Ok(n)) => format!(
                "prefix length {n} is over {}",
                if ip.is_ipv4() { 32 } else { 128 }
            ),
            (Ok(_), Err(_)) => format!("{len:?} is not a prefix length"),
        },
        None => format!("{text:?} is not an IP address (host names are not looked up)"),
    };
    Err(format!(
        "invalid network {text:?}: {reason}; write a CIDR like \"10.0.0.0/8\" or \"fd00::/8\", \
         or one address like \"10.0.0.5\""
    ))
}

fn read<'de, D: Deserializer<'de>>(d: D, example: &str) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text, example).map_err(serde::de::Error::custom)
}

/// `text` as a socket address, or an error that quotes it, says why, and shows `example`.
pub fn parse(text: &str, example: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let t = text.trim();
    let reason = if t != text {
        "spaces around it".to_string()
    } else {
        match t.rsplit_once(':') {
            Some((host, _)) if host.contains(':') && !host.starts_with('[') => {
                "an IPv6 address goes in brackets, like \"[::1]:5043\"".to_string()
            }
            Some((host, port)) => [host_problem(host), port_problem(port)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", and "),
            None => [host_problem(t), Some("no port".to_string())]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", and "),
        }
    };
    Err(format!(
        "invalid address {text:?}: {reason}; write an IP address and a port, like \
         \"{example}\" (or \"[::]:{}\" for IPv6)",
        example.rsplit_once(':').map_or("5043", |(_, p)| p)
    ))
}

fn host_problem(host: &str) -> Option<String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(_) => None,
        Err(_) if bare.is_empty() => Some("no IP address (0.0.0.0 is every interface)".into()),
        Err(_) if bare.chars().all(|c| c.is_ascii_digit()) => {
            Some(format!("{bare:?} is not an IP address"))
        }
        Err(_) => Some(format!(
            "{bare:?} is not an IP address (host names are not looked up)"
        )),
    }
}

fn port_problem(port: &str) -> Option<String> {
    if port.parse::<u16>().is_ok() {
        return None;
    }
    Some(
        if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) {
            format!("port {port} is over 65535")
        } else {
            format!("{port:?} is not a port (0 to 65535)")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{parse, parse_network};

    #[test]
    fn networks_take_cidrs_and_bare_addresses_and_echo_what_is_wrong() {
        let ok = |t: &str| parse_network(t).map(|n| n.to_string());
        assert_eq!(ok("10.0.0.0/8"), Ok("10.0.0.0/8".into()));
        assert_eq!(ok("10.0.0.5"), Ok("10.0.0.5/32".into()));
        assert_eq!(ok("fd00::1"), Ok("fd00::1/128".into()));
        for (text, says) in [
            ("10.0.0.0/33", "prefix length 33 is over 32"),
            ("fd00::/129", "prefix length 129 is over 128"),
            ("10.0.0.0/x", "\"x\" is not a prefix length"),
            ("lb.internal", "\"lb.internal\" is not an IP address"),
            ("lb/24", "\"lb\" is not an IP address"),
            (" 10.0.0.1", "spaces around it"),
        ] {
            let e = parse_network(text).expect_err(text);
            assert!(
                e.starts_with(&format!("invalid network {text:?}: {says}")),
                "{e}"
            );
        }
    }

    #[test]
    fn errors_echo_the_value_and_say_why() {
        let tail =
            "; write an IP address and a port, like \"0.0.0.0:5043\" (or \"[::]:5043\" for IPv6)";
        let cases = [
            ("0.0.0.0:99999", "port 99999 is over 65535"),
            (
                "localhost",
                "\"localhost\" is not an IP address (host names are not looked up), and no port",
            ),
            (
                "localhost:443",
                "\"localhost\" is not an IP address (host names are not looked up)",
            ),
            ("0.0.0.0", "no port"),
            (":5043", "no IP address (0.0.0.0 is every interface)"),
            ("5043", "\"5043\" is not an IP address, and no port"),
            (
                "::1:5043",
                "an IPv6 address goes in brackets, like \"[::1]:5043\"",
            ),
            ("10.0.0.1:https", "\"https\" is not a port (0 to 65535)"),
            (" 0.0.0.0:5043", "spaces around it"),
        ];
        for (text, reason) in cases {
            assert_eq!(
                parse(text, "0.0.0.0:5043"),
                Err(format!("invalid address {text:?}: {reason}{tail}")),
                "text={text:?}"
            );
        }
        for good in ["0.0.0.0:443", "[::]:5043", "127.0.0.1:0"] {
            assert_eq!(parse(good, "x").map(|a| a.to_string()), Ok(good.into()));
        }
    }
}
