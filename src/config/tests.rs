use super::*;

const MINIMAL: &str = r#"
[tls]
cert = "certs/server.crt"
key = "certs/server.key"

[upstream]
url = "http://127.0.0.1:5000"

[auth]
htpasswd = "auth/htpasswd"
"#;

fn parse_err(text: &str) -> String {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("expected an error for {text:?}, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = Config::from_toml_str(MINIMAL).expect("minimal config parses");
    assert_eq!(c.listen.addr, "0.0.0.0:5043".parse().expect("addr"));
    assert_eq!(c.listen.handshake_timeout.0, Duration::from_secs(10));
    assert_eq!(c.listen.header_timeout.0, Duration::from_secs(30));
    assert_eq!(c.listen.idle_timeout.0, Duration::from_secs(60));
    assert_eq!(c.listen.body_timeout.0, Duration::from_secs(60));
    assert_eq!(c.listen.send_timeout.0, Duration::from_secs(60));
    assert_eq!(c.limits.max_header_bytes.0, 64 * 1024);
    assert_eq!(c.limits.max_headers.0, 100);
    assert_eq!(
        c.upstream.as_ref().expect("upstream").read_timeout.0,
        Duration::from_secs(900)
    );
    assert_eq!(
        c.upstream.as_ref().expect("upstream").url.uri().to_string(),
        "http://127.0.0.1:5000/"
    );
    assert_eq!(c.auth.realm.as_str(), "Registry realm");
    assert_eq!(c.auth.cache_ttl.0, Duration::from_secs(300));
    assert_eq!(c.auth.cache_size.0, 10_000);
    assert!(c.forwarding.trusted_proxies.is_empty());
    assert_eq!(c.user_agent.block.len(), 1);
    assert_eq!(c.user_agent.block[0].0.as_str(), DEFAULT_UA_BLOCK);
    assert_eq!(c.limits.max_body_size, None);
    assert_eq!(c.shutdown.grace_period.0, Duration::from_secs(30));
    assert!(c.throttle.enabled);
    assert_eq!(c.throttle.window.0, Duration::from_secs(300));
    assert_eq!(c.throttle.max_failures_per_address, 100);
    assert_eq!(c.throttle.max_failures_per_user, 10);
    assert_eq!(c.throttle.ipv6_prefix.get(), 64);
    assert_eq!(c.reload.watch_interval.0, Duration::from_secs(1));
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = format!("{MINIMAL}\n[forwarding]\ntrusted_proxy = [\"10.0.0.0/8\"]\n");
    let e = parse_err(&text);
    assert!(e.contains("line 13"), "{e}");
    assert!(e.contains("unknown field `trusted_proxy`"), "{e}");
}

#[test]
fn bad_values_name_their_line() {
    let cases = [
        (
            "[upstream]\nurl = \"ftp://x\"",
            "scheme must be http or https",
        ),
        (
            "[upstream]\nurl = \"http://x:5000/sub\"",
            "must be at the root",
        ),
        (
            "[upstream]\nurl = \"http://u:p@x:5000\"",
            "credentials are not allowed",
        ),
        (
            "[upstream]\nurl = \"http://x\"\nread_timeout = \"soon\"",
            "invalid duration \"soon\"",
        ),
        (
            "[forwarding]\ntrusted_proxies = [\"10.0.0.0/33\"]",
            "invalid network \"10.0.0.0/33\": prefix length 33 is over 32",
        ),
        (
            "[user_agent]\nblock = [\"(\"]",
            "invalid user-agent pattern",
        ),
        ("[limits]\nmax_body_size = \"12 parsecs\"", "unknown unit"),
        ("[limits]\nmax_body_size = -1", "must not be negative"),
    ];
    for (fragment, want) in cases {
        // Replace the section the fragment redefines, keep the rest of MINIMAL.
        let base = MINIMAL.replace("[upstream]\nurl = \"http://127.0.0.1:5000\"\n", "");
        let text = if fragment.starts_with("[upstream]") {
            format!("{base}\n{fragment}\n")
        } else {
            format!("{MINIMAL}\n{fragment}\n")
        };
        let e = parse_err(&text);
        assert!(e.contains(want), "fragment={fragment:?} error={e}");
        assert!(e.contains("line "), "fragment={fragment:?} error={e}");
    }
}

#[test]
fn realm_must_fit_a_quoted_string() {
    for (realm, ok) in [
        ("Registry realm", true),
        ("a\"b", false),
        ("", false),
        ("tab\there", false),
    ] {
        assert_eq!(
            Realm::try_from(realm.to_string()).is_ok(),
            ok,
            "realm={realm:?}"
        );
    }
}

#[test]
fn byte_sizes() {
    let cases = [
        ("0", Ok(0)),
        ("4k", Ok(4_000)),
        ("10GiB", Ok(10 << 30)),
        ("500 MB", Ok(500_000_000)),
        ("1tib", Ok(1 << 40)),
        ("x", Err(())),
        ("99999999999999999999", Err(())),
        ("18446744073709551615 GiB", Err(())),
    ];
    for (text, want) in cases {
        assert_eq!(parse_byte_size(text).map_err(|_| ()), want, "text={text:?}");
    }
}

#[test]
fn upstream_ca_needs_https() {
    let text = MINIMAL.replace(
        "url = \"http://127.0.0.1:5000\"",
        "url = \"http://127.0.0.1:5000\"\nca = \"ca.pem\"",
    );
    let e = parse_err(&text);
    assert_eq!(e, "upstream.ca: set, but upstream.url is not https");
}

#[test]
fn load_resolves_relative_paths_and_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, MINIMAL).expect("write config");
    let c = Config::load(&path).expect("loads");
    assert_eq!(c.tls.cert, dir.path().join("certs/server.crt"));
    assert_eq!(c.auth.htpasswd, Some(dir.path().join("auth/htpasswd")));

    std::fs::write(&path, format!("{MINIMAL}\nbogus = 1\n")).expect("write config");
    let e = Config::load(&path).expect_err("unknown key").to_string();
    assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");

    let missing = dir.path().join("nope.toml");
    let e = Config::load(&missing)
        .expect_err("missing file")
        .to_string();
    assert!(
        e.contains("cannot read config file") && e.contains("nope.toml"),
        "{e}"
    );
}

#[test]
fn shipped_proxy_toml_parses_and_matches_the_defaults() {
    let shipped =
        Config::from_toml_str(include_str!("../../proxy.toml")).expect("proxy.toml is valid");
    let minimal = Config::from_toml_str(MINIMAL).expect("minimal config parses");
    // proxy.toml documents every default (and the same required values as MINIMAL):
    // resolved, the two are the same config, key for key.
    let text = |c: &Config| toml::to_string(c).expect("serialises");
    assert_eq!(text(&shipped), text(&minimal));
    // And it shows every key: commented-out ones are the optional keys without default.
    let resolved: toml::Table = toml::from_str(&text(&minimal)).expect("TOML");
    let shipped_text = include_str!("../../proxy.toml");
    for (section, keys) in &resolved {
        assert!(
            shipped_text.contains(&format!("[{section}]")),
            "proxy.toml lacks [{section}]"
        );
        for key in keys.as_table().expect("section").keys() {
            assert!(
                shipped_text.contains(&format!("\n{key} = ")),
                "proxy.toml lacks {section}.{key}"
            );
        }
    }
}

#[test]
fn resolved_config_round_trips() {
    let text = format!(
        "{MINIMAL}\n[limits]\nmax_body_size = \"1GiB\"\n[log]\nformat = \"json\"\n\
         [admin]\nenabled = false\n[listen]\nproxy_protocol = true\n"
    );
    let c = Config::from_toml_str(&text).expect("valid");
    let printed = toml::to_string(&c).expect("serialises");
    let again = Config::from_toml_str(&printed).expect("printed config parses");
    assert_eq!(toml::to_string(&again).expect("serialises"), printed);
    assert_eq!(again.limits.max_body_size, Some(ByteSize(1 << 30)));
    assert_eq!(again.log.format, LogFormat::Json);
    assert!(!again.admin.enabled && again.listen.proxy_protocol);
}

#[test]
fn overrides_set_keys_and_their_errors_name_the_variable() {
    let vars = [
        ("REGISTRY_GATE_UPSTREAM_URL", "http://registry:5000"),
        ("REGISTRY_GATE_ADMIN_ADDR", "0.0.0.0:9143"),
        ("REGISTRY_GATE_LIMITS_MAX_BODY_SIZE", "20GiB"),
    ];
    let overrides = env::overrides(vars).expect("valid names");
    let c = Config::from_toml_str_with(MINIMAL, &overrides).expect("valid");
    assert_eq!(
        c.upstream.as_ref().expect("upstream").url.uri().to_string(),
        "http://registry:5000/"
    );
    assert_eq!(c.admin.addr, "0.0.0.0:9143".parse().expect("addr"));
    assert_eq!(c.limits.max_body_size, Some(ByteSize(20 << 30)));
    // A required key may come from the environment alone.
    let without_url = MINIMAL.replace("url = \"http://127.0.0.1:5000\"", "");
    Config::from_toml_str_with(&without_url, &overrides).expect("url from the environment");
    let bad = env::overrides([("REGISTRY_GATE_LISTEN_HANDSHAKE_TIMEOUT", "soon")]).expect("name");
    let e = Config::from_toml_str_with(MINIMAL, &bad)
        .expect_err("bad duration")
        .to_string();
    assert!(
        e.starts_with("REGISTRY_GATE_LISTEN_HANDSHAKE_TIMEOUT: invalid duration"),
        "{e}"
    );
}

#[test]
fn errors_after_non_ascii_text_point_at_the_right_column() {
    let text = format!("# Grüße, Zürich\n{MINIMAL}\n[auth2]\n");
    let e = parse_err(&text);
    assert!(
        e.contains("line 13, column 2: unknown field `auth2`"),
        "{e}"
    );
    let e =
        parse_err("[listen]\n# é\nhandshake_timeout = \"é\"\n[tls]\ncert = \"a\"\nkey = \"b\"\n");
    assert!(
        e.contains("line 3, column 21: listen.handshake_timeout: invalid duration"),
        "{e}"
    );
}

#[test]
fn throttle_ipv6_prefix_is_1_to_128_and_errors_name_the_line() {
    for (value, ok) in [
        ("1", true),
        ("48", true),
        ("128", true),
        ("0", false),
        ("129", false),
        ("-64", false),
        ("300", false),
    ] {
        let text = format!("{MINIMAL}\n[throttle]\nipv6_prefix = {value}\n");
        match Config::from_toml_str(&text) {
            Ok(c) => {
                assert!(ok, "value={value} accepted");
                assert_eq!(c.throttle.ipv6_prefix.get().to_string(), value);
            }
            Err(e) => {
                let e = e.to_string();
                assert!(!ok, "value={value}: {e}");
                assert!(e.contains("line 13, column 15"), "value={value}: {e}");
                assert!(e.contains("must be from 1 to 128"), "value={value}: {e}");
            }
        }
    }
    let text = format!("{MINIMAL}\n[throttle]\nipv6_prefix = \"64\"\n");
    assert!(
        parse_err(&text).contains("line 13"),
        "a string is refused with its line"
    );
}

#[test]
fn throttle_limits_of_zero_are_refused_unless_disabled() {
    let on = format!("{MINIMAL}\n[throttle]\nmax_failures_per_user = 0\n");
    assert!(
        parse_err(&on).starts_with("throttle: "),
        "{}",
        parse_err(&on)
    );
    let off = format!("{MINIMAL}\n[throttle]\nenabled = false\nmax_failures_per_user = 0\n");
    Config::from_toml_str(&off).expect("a disabled throttle may have any limits");
}

#[test]
fn connection_timeouts_and_head_limits_are_checked_and_named() {
    for key in [
        "handshake_timeout",
        "header_timeout",
        "idle_timeout",
        "body_timeout",
        "send_timeout",
    ] {
        let text = format!("[listen]\n{key} = \"0s\"\n{MINIMAL}");
        let e = parse_err(&text);
        assert!(e.contains(&format!("listen.{key}")), "{e}");
        assert!(e.contains("more than 0s"), "{e}");
    }
    for (keys, ok) in [
        ("max_header_bytes = \"8KiB\"", true),
        ("max_header_bytes = \"1MiB\"", true),
        ("max_header_bytes = 8191", false),
        ("max_header_bytes = \"2MiB\"", false),
        ("max_headers = 1", true),
        ("max_headers = 0", false),
        ("max_headers = 10001", false),
    ] {
        let text = format!("{MINIMAL}\n[limits]\n{keys}\n");
        match Config::from_toml_str(&text) {
            Ok(_) => assert!(ok, "{keys} accepted"),
            Err(e) => {
                assert!(!ok, "{keys}: {e}");
                let key = keys.split(' ').next().unwrap_or_default();
                assert!(e.to_string().contains(&format!("limits.{key}")), "{e}");
            }
        }
    }
}

#[test]
fn hsts_is_a_header_value_or_empty_and_a_bad_one_names_its_line() {
    let off = format!("{MINIMAL}\n[headers]\nstrict_transport_security = \"\"\n");
    let c = Config::from_toml_str(&off).expect("empty turns it off");
    assert_eq!(c.headers.strict_transport_security.value(), None);
    let c = Config::from_toml_str(MINIMAL).expect("default");
    assert_eq!(
        c.headers.strict_transport_security.value(),
        Some(&http::HeaderValue::from_static("max-age=63072000"))
    );
    let bad = format!("{MINIMAL}\n[headers]\nstrict_transport_security = \"a\\nb\"\n");
    let e = parse_err(&bad);
    assert!(e.contains("line 13, column 29"), "{e}");
    assert!(
        e.contains("headers.strict_transport_security: \"a\\nb\" is not a valid header value"),
        "{e}"
    );
}

/// `MINIMAL` with these lines added to its `[tls]` section.
fn with_tls(keys: &str) -> String {
    MINIMAL.replacen(
        "key = \"certs/server.key\"\n",
        &format!("key = \"certs/server.key\"\n{keys}\n"),
        1,
    )
}

#[test]
fn tls_hardening_keys_default_to_an_hour_of_tickets_and_no_client_certificates() {
    let c = Config::from_toml_str(MINIMAL).expect("minimal config parses");
    assert_eq!(c.tls.session_ticket_lifetime.seconds(), Some(3600));
    assert_eq!(c.tls.client_ca, None);
    assert_eq!(c.tls.client_auth, ClientAuth::Optional);
    assert_eq!(c.tls.ocsp, None);
}

#[test]
fn session_ticket_lifetimes_are_whole_seconds_up_to_seven_days() {
    let cases: &[(&str, Result<Option<u32>, &str>)] = &[
        ("\"0s\"", Ok(None)),
        ("\"1s\"", Ok(Some(1))),
        ("\"2h\"", Ok(Some(7200))),
        ("\"7days\"", Ok(Some(604_800))),
        ("\"1500ms\"", Err("must be whole seconds")),
        ("\"8days\"", Err("at most 7 days")),
        ("\"soon\"", Err("invalid duration")),
    ];
    for (value, want) in cases {
        let text = with_tls(&format!("session_ticket_lifetime = {value}"));
        match (Config::from_toml_str(&text), want) {
            (Ok(c), Ok(seconds)) => {
                assert_eq!(c.tls.session_ticket_lifetime.seconds(), *seconds, "{value}")
            }
            (Err(e), Err(needle)) => {
                let e = e.to_string();
                assert!(e.contains(needle), "{value}: {e}");
                assert!(e.contains("tls.session_ticket_lifetime"), "{value}: {e}");
                assert!(e.contains("line 5"), "{value}: {e}");
            }
            (got, _) => panic!("{value}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn client_auth_required_needs_a_client_ca() {
    let e = parse_err(&with_tls("client_auth = \"required\""));
    assert!(e.contains("tls.client_auth"), "{e}");
    assert!(e.contains("needs tls.client_ca"), "{e}");
    let e = parse_err(&with_tls("client_auth = \"sometimes\""));
    assert!(e.contains("tls.client_auth") && e.contains("line 5"), "{e}");
    let c = Config::from_toml_str(&with_tls(
        "client_ca = \"ci-ca.pem\"\nclient_auth = \"required\"\nocsp = \"staple.der\"",
    ))
    .expect("parses");
    assert_eq!(c.tls.client_ca, Some(PathBuf::from("ci-ca.pem")));
    assert_eq!(c.tls.client_auth, ClientAuth::Required);
    assert_eq!(c.tls.ocsp, Some(PathBuf::from("staple.der")));
}

#[test]
fn load_resolves_the_tls_client_ca_and_ocsp_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("proxy.toml");
    let text = with_tls("client_ca = \"ci/ca.pem\"\nocsp = \"staple.der\"");
    std::fs::write(&path, text).expect("write config");
    let c = Config::load(&path).expect("loads");
    assert_eq!(c.tls.client_ca, Some(dir.path().join("ci/ca.pem")));
    assert_eq!(c.tls.ocsp, Some(dir.path().join("staple.der")));
}

/// Issue 18: `REGISTRY_GATE_<SECTION>_<KEY>` reaches every section, those the file
/// leaves out included.
#[test]
fn overrides_reach_every_section() {
    let vars = [
        ("REGISTRY_GATE_LISTEN_PROXY_PROTOCOL", "true"),
        ("REGISTRY_GATE_TLS_CLIENT_AUTH", "required"),
        ("REGISTRY_GATE_TLS_CLIENT_CA", "ci-ca.pem"),
        ("REGISTRY_GATE_UPSTREAM_CONNECT_TIMEOUT", "3s"),
        ("REGISTRY_GATE_AUTH_MODE", "token"),
        ("REGISTRY_GATE_AUTH_CACHE_SIZE", "7"),
        (
            "REGISTRY_GATE_FORWARDING_TRUSTED_PROXIES",
            "[\"10.0.0.0/8\"]",
        ),
        ("REGISTRY_GATE_USER_AGENT_BLOCK", "[]"),
        ("REGISTRY_GATE_LIMITS_MAX_HEADERS", "50"),
        ("REGISTRY_GATE_SHUTDOWN_GRACE_PERIOD", "2m"),
        ("REGISTRY_GATE_THROTTLE_WINDOW", "1m"),
        ("REGISTRY_GATE_RELOAD_WATCH_INTERVAL", "0s"),
        ("REGISTRY_GATE_ADMIN_ENABLED", "false"),
        ("REGISTRY_GATE_LOG_FORMAT", "json"),
        ("REGISTRY_GATE_AUTHZ_PUSH_GROUP", "ci"),
        ("REGISTRY_GATE_AUTHZ_GROUPS", "{ ci = [\"alice\"] }"),
        ("REGISTRY_GATE_HEADERS_STRICT_TRANSPORT_SECURITY", ""),
        ("REGISTRY_GATE_LDAP_URL", "ldaps://dc1.corp.example"),
        ("REGISTRY_GATE_LDAP_BASE", "dc=corp,dc=example"),
        ("REGISTRY_GATE_TOKEN_SERVICE", "registry.example.com"),
        ("REGISTRY_GATE_TOKEN_KEY", "token.key"),
        ("REGISTRY_GATE_TOKEN_CERT", "token.crt"),
    ];
    let overrides = env::overrides(vars).expect("valid names");
    let c = Config::from_toml_str_with(MINIMAL, &overrides).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.listen.proxy_protocol);
    assert_eq!(c.tls.client_auth, ClientAuth::Required);
    assert_eq!(
        c.upstream.as_ref().map(|u| u.connect_timeout.0),
        Some(Duration::from_secs(3))
    );
    assert_eq!((c.auth.mode, c.auth.cache_size.0), (AuthMode::Token, 7));
    assert_eq!(c.forwarding.trusted_proxies.len(), 1);
    assert!(c.user_agent.block.is_empty());
    assert_eq!(c.limits.max_headers.0, 50);
    assert_eq!(c.shutdown.grace_period.0, Duration::from_secs(120));
    assert_eq!(c.throttle.window.0, Duration::from_secs(60));
    assert!(c.reload.watch_interval.0.is_zero());
    assert!(!c.admin.enabled);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.authz.push_group.as_deref(), Some("ci"));
    assert_eq!(c.authz.groups["ci"], ["alice"]);
    assert_eq!(c.headers.strict_transport_security.value(), None);
    let ldap = c.ldap.as_ref().expect("[ldap] from the environment");
    assert_eq!(ldap.url.list(), ["ldaps://dc1.corp.example"]);
    let token = c.token.as_ref().expect("[token] from the environment");
    assert_eq!(token.service, "registry.example.com");
    // An override wins over the file's value of the same key.
    let file = format!("{MINIMAL}\n[token]\nservice = \"file\"\nkey = \"k\"\ncert = \"c\"\n");
    let one = env::overrides([("REGISTRY_GATE_TOKEN_SERVICE", "env")]).expect("name");
    let mode = env::overrides([("REGISTRY_GATE_AUTH_MODE", "token")]).expect("name");
    let both: Vec<_> = one.into_iter().chain(mode).collect();
    let c = Config::from_toml_str_with(&file, &both).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.token.map(|t| t.service).as_deref(), Some("env"));
}

mod errors;
mod oidc;
