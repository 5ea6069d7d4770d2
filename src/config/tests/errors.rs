//! Error messages: plain words for type errors, unit hints, duplicates, addresses,
//! overrides and range checks, each at its line and column.

use super::*;

/// Issue 18: type errors in plain words, keeping file, line, column and key.
#[test]
fn type_errors_are_plain_words_at_their_line() {
    let max = usize::MAX;
    let cases = [
        (
            "[listen]\nmax_connections = \"many\"",
            format!(
                "line 13, column 19: listen.max_connections: must be a whole number from 0 to \
                 {max}, not the string \"many\""
            ),
        ),
        (
            "[throttle]\nmax_failures_per_user = -1",
            "line 13, column 25: throttle.max_failures_per_user: must be a whole number from 0 \
             to 4294967295, not -1"
                .into(),
        ),
        (
            "[throttle]\nipv6_prefix = \"48\"",
            "line 13, column 15: throttle.ipv6_prefix: must be a whole number, not the string \
             \"48\"; write it without quotes: 48"
                .into(),
        ),
        (
            "[admin]\nenabled = \"no\"",
            "line 13, column 11: admin.enabled: must be true or false, not the string \"no\""
                .into(),
        ),
        (
            "[user_agent]\nblock = \"^curl\"",
            "line 13, column 9: user_agent.block: must be a list, not the string \"^curl\"; \
             write it in brackets: [\"^curl\"]"
                .into(),
        ),
        (
            "[authz]\ngroups = 5",
            "line 13, column 10: authz.groups: must be a table, not 5".into(),
        ),
        (
            "[log]\nformat = 1",
            "line 13, column 10: log.format: must be one of the names this key takes, as a \
             string in quotes"
                .into(),
        ),
        (
            "[ldap]\nurl = 5\nbase = \"dc=x\"",
            "line 13, column 7: ldap.url: must be a URL in quotes, or a list of them".into(),
        ),
    ];
    for (fragment, want) in cases {
        let e = parse_err(&format!("{MINIMAL}\n{fragment}\n"));
        assert!(
            e.contains(&want),
            "fragment={fragment:?}\nwant={want}\ngot={e}"
        );
    }
    // The same words for an override, which names the variable.
    let bad = env::overrides([("REGISTRY_GATE_AUTH_CACHE_SIZE", "-1")]).expect("name");
    let e = Config::from_toml_str_with(MINIMAL, &bad)
        .expect_err("negative")
        .to_string();
    assert_eq!(
        e,
        format!("REGISTRY_GATE_AUTH_CACHE_SIZE: must be a whole number from 0 to {max}, not -1")
    );
}

/// Issue 18: a duration written as a bare number is told to take a unit, for every
/// duration key (each is a `HumanDuration` or a `TicketLifetime`).
#[test]
fn durations_written_as_numbers_get_a_unit_hint() {
    let keys = [
        ("listen", "handshake_timeout"),
        ("listen", "header_timeout"),
        ("listen", "idle_timeout"),
        ("listen", "body_timeout"),
        ("listen", "send_timeout"),
        ("upstream", "read_timeout"),
        ("upstream", "connect_timeout"),
        ("upstream", "pool_idle_timeout"),
        ("auth", "cache_ttl"),
        ("shutdown", "grace_period"),
        ("throttle", "window"),
        ("reload", "watch_interval"),
        ("tls", "session_ticket_lifetime"),
        ("ldap", "connect_timeout"),
        ("ldap", "timeout"),
        ("ldap", "group_cache_ttl"),
        ("ldap", "outage_grace"),
        ("ldap", "retry_after"),
        ("token", "expiration"),
        ("token", "refresh_expiration"),
    ];
    for (section, key) in keys {
        let vars = [(
            format!("REGISTRY_GATE_{section}_{key}").to_ascii_uppercase(),
            "900".to_string(),
        )];
        let overrides = env::overrides(vars).expect("names");
        let e = Config::from_toml_str_with(MINIMAL, &overrides)
            .expect_err("a bare number")
            .to_string();
        assert!(
            e.ends_with(
                "invalid duration 900 (a number without a unit); write it with a unit, like \"900s\""
            ),
            "{section}.{key}: {e}"
        );
    }
    let file = |value: &str| format!("[upstream]\nurl = \"http://x\"\nread_timeout = {value}\n");
    let cases = [
        (
            "900",
            "line 3, column 16: upstream.read_timeout: invalid duration 900 (a number \
                 without a unit); write it with a unit, like \"900s\"",
        ),
        (
            "-5",
            "upstream.read_timeout: invalid duration -5: must not be negative",
        ),
        (
            "1.5",
            "upstream.read_timeout: invalid duration 1.5 (a number without a unit); write \
                 it with a unit, like \"30s\" or \"1500ms\"",
        ),
        (
            "true",
            "upstream.read_timeout: invalid duration true: must be a string like \"30s\"",
        ),
    ];
    let base = MINIMAL.replace("[upstream]\nurl = \"http://127.0.0.1:5000\"\n", "");
    for (value, want) in cases {
        let e = parse_err(&format!("{}{base}", file(value)));
        assert!(e.contains(want), "value={value}: {e}");
    }
    // Sizes have no such trap: a bare number is a number of bytes, as in nginx.
    let c = Config::from_toml_str(&format!("{MINIMAL}\n[limits]\nmax_body_size = 1000\n"))
        .expect("a size in bytes");
    assert_eq!(c.limits.max_body_size, Some(ByteSize(1000)));
    let e = parse_err(&with_tls("session_ticket_lifetime = 3600"));
    assert!(
        e.contains("line 5, column 27: tls.session_ticket_lifetime: invalid duration 3600"),
        "{e}"
    );
}

/// Issue 18: a table or key written twice names itself and both lines.
#[test]
fn duplicates_name_the_table_or_key_and_both_lines() {
    let e = parse_err(&format!("{MINIMAL}\n[tls]\nocsp = \"staple.der\"\n"));
    assert_eq!(
        e,
        "line 12, column 2: duplicate table [tls] (at line 2 and line 12): write all its keys \
         under one [tls]"
    );
    let e = parse_err(&with_tls("cert = \"other.crt\""));
    assert_eq!(
        e,
        "line 5, column 1: tls.cert: duplicate key (at line 3 and line 5): keep one of them"
    );
}

/// Issue 18: an invalid address is echoed with its key and line (or variable).
#[test]
fn invalid_addresses_are_echoed_with_key_and_line() {
    let e = parse_err(&format!("[listen]\naddr = \"0.0.0.0:99999\"\n{MINIMAL}"));
    assert!(
        e.starts_with(
            "line 2, column 8: listen.addr: invalid address \"0.0.0.0:99999\": port 99999 is \
             over 65535; write an IP address and a port, like \"0.0.0.0:5043\""
        ),
        "{e}"
    );
    let e = parse_err(&format!("{MINIMAL}\n[admin]\naddr = \"localhost\"\n"));
    assert!(
        e.starts_with(
            "line 13, column 8: admin.addr: invalid address \"localhost\": \"localhost\" is not \
             an IP address (host names are not looked up), and no port; write an IP address \
             and a port, like \"127.0.0.1:9143\""
        ),
        "{e}"
    );
    let e = parse_err(&format!("{MINIMAL}\n[admin]\naddr = 9143\n"));
    assert!(
        e.contains("admin.addr: must be a string, not 9143; put it in quotes: \"9143\""),
        "{e}"
    );
    let bad = env::overrides([("REGISTRY_GATE_LISTEN_ADDR", "localhost:443")]).expect("name");
    let e = Config::from_toml_str_with(MINIMAL, &bad)
        .expect_err("a host name")
        .to_string();
    assert!(
        e.starts_with("REGISTRY_GATE_LISTEN_ADDR: invalid address \"localhost:443\""),
        "{e}"
    );
}

/// An override's bad value is blamed on that variable alone, not on every one set.
#[test]
fn a_bad_override_is_named_alone_among_others() {
    let vars = [
        ("REGISTRY_GATE_ADMIN_ENABLED", "false"),
        ("REGISTRY_GATE_UPSTREAM_READ_TIMEOUT", "900"),
        ("REGISTRY_GATE_LOG_FORMAT", "json"),
    ];
    let overrides = env::overrides(vars).expect("names");
    let e = Config::from_toml_str_with(MINIMAL, &overrides)
        .expect_err("a bare number")
        .to_string();
    assert_eq!(
        e,
        "REGISTRY_GATE_UPSTREAM_READ_TIMEOUT: invalid duration 900 (a number without a unit); \
         write it with a unit, like \"900s\""
    );
}

/// Range checks live in the value types, so their errors carry line and column
/// like type errors do (and keep the words `validate` used to give them).
#[test]
fn range_errors_name_their_line_and_column() {
    let cases = [
        (
            "[listen]\nmax_connections = 0",
            "line 13, column 19: listen.max_connections: must be at least 1",
        ),
        (
            "[listen]\nidle_timeout = \"0s\"",
            "line 13, column 16: listen.idle_timeout: must be more than 0s",
        ),
        (
            "[limits]\nmax_header_bytes = 8191",
            "line 13, column 20: limits.max_header_bytes: must be between 8192 and 1048576 \
             bytes (8KiB to 1MiB)",
        ),
        (
            "[limits]\nmax_headers = 10001",
            "line 13, column 15: limits.max_headers: must be between 1 and 10000",
        ),
    ];
    for (fragment, want) in cases {
        let e = parse_err(&format!("{MINIMAL}\n{fragment}\n"));
        assert!(
            e.contains(want),
            "fragment={fragment:?}\nwant={want}\ngot={e}"
        );
    }
}
