//! A newcomer's first hour, configuration: `check-config` on the real
//! binary, with environment overrides for every section, and mistakes a newcomer
//! makes (a type, a bare number for a duration, a table written twice, an address)
//! answered with exit 64 and a message that names the key, line and value.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::gate::{generate_certs, run, write_setup, Certs, BIN};

/// The exit code of a config error (EX_USAGE).
const CONFIG_ERROR: i32 = 64;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `check-config` in `dir` with `env` set (and no other `REGISTRY_GATE_*` variable).
fn check_config(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("check-config")
        .current_dir(dir)
        .env("RUST_LOG", "warn");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REGISTRY_GATE_") {
            command.env_remove(name);
        }
    }
    command
        .envs(env.iter().copied())
        .output()
        .expect("run check-config")
}

/// The resolved config `check-config` printed; panics (with stderr) unless it passed.
fn resolved(o: &Output) -> toml::Table {
    assert!(o.status.success(), "check-config failed: {}", stderr(o));
    toml::from_str(&String::from_utf8_lossy(&o.stdout)).expect("check-config prints TOML")
}

/// A working setup (certificates, htpasswd, proxy.toml) plus `extra` sections.
fn setup(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), "http://127.0.0.1:9", extra);
    dir
}

/// Asserts that `text` as the config fails with exit 64 and every one of `wants`
/// in the one error line.
fn assert_refused(text: &str, wants: &[&str]) {
    let dir = setup("");
    std::fs::write(dir.path().join("bad.toml"), text).expect("write bad.toml");
    let o = run(&["check-config", "--config", "bad.toml"], dir.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(CONFIG_ERROR), "{text:?}: {err}");
    assert!(
        err.starts_with("registry-gate: error: bad.toml: "),
        "{text:?}: {err}"
    );
    for want in wants {
        assert!(err.contains(want), "{text:?}: want {want:?} in {err}");
    }
}

/// The head of a valid config, 8 lines; a case's own lines start at line 9.
const HEAD: &str = "[tls]\ncert = \"certs/server.crt\"\nkey = \"certs/server.key\"\n\
                    [upstream]\nurl = \"http://127.0.0.1:9\"\n\
                    [auth]\nhtpasswd = \"htpasswd\"\n\n";

#[test]
fn ldap_url_headers_and_authz_are_set_from_the_environment() {
    let dir = setup("[ldap]\nbase = \"dc=example,dc=org\"\n");
    let o = check_config(
        dir.path(),
        &[
            ("REGISTRY_GATE_LDAP_URL", "ldaps://dc1.corp.example:636"),
            (
                "REGISTRY_GATE_LDAP_GROUP_BASE",
                "ou=groups,dc=example,dc=org",
            ),
            (
                "REGISTRY_GATE_HEADERS_STRICT_TRANSPORT_SECURITY",
                "max-age=60",
            ),
            ("REGISTRY_GATE_AUTHZ_PUSH_GROUP", "ci"),
            ("REGISTRY_GATE_AUTHZ_GROUPS", "{ ci = [\"alice\"] }"),
            ("REGISTRY_GATE_TLS_SESSION_TICKET_LIFETIME", "0s"),
            ("REGISTRY_GATE_AUTH_REALM", "Corp registry"),
        ],
    );
    let c = resolved(&o);
    assert_eq!(
        c["ldap"]["url"].as_str(),
        Some("ldaps://dc1.corp.example:636")
    );
    assert_eq!(
        c["ldap"]["group_base"].as_str(),
        Some("ou=groups,dc=example,dc=org")
    );
    assert_eq!(
        c["headers"]["strict_transport_security"].as_str(),
        Some("max-age=60")
    );
    assert_eq!(c["authz"]["push_group"].as_str(), Some("ci"));
    assert_eq!(c["authz"]["groups"]["ci"][0].as_str(), Some("alice"));
    assert_eq!(c["tls"]["session_ticket_lifetime"].as_str(), Some("0s"));
    assert_eq!(c["auth"]["realm"].as_str(), Some("Corp registry"));
}

#[test]
fn a_token_server_is_configured_from_the_environment_alone() {
    let dir = setup("");
    generate_certs(dir.path(), "tok", Certs::WithToken);
    let o = check_config(
        dir.path(),
        &[
            ("REGISTRY_GATE_AUTH_MODE", "token"),
            ("REGISTRY_GATE_TOKEN_SERVICE", "registry.example.com"),
            ("REGISTRY_GATE_TOKEN_KEY", "tok/token.key"),
            ("REGISTRY_GATE_TOKEN_CERT", "tok/token.crt"),
            ("REGISTRY_GATE_TOKEN_EXPIRATION", "10m"),
        ],
    );
    let c = resolved(&o);
    assert_eq!(c["auth"]["mode"].as_str(), Some("token"));
    assert_eq!(c["token"]["service"].as_str(), Some("registry.example.com"));
    assert_eq!(c["token"]["expiration"].as_str(), Some("10m"));
}

#[test]
fn keys_the_environment_cannot_set_are_refused_with_what_it_can() {
    let dir = setup("");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "REGISTRY_GATE_AUTHZ_RULES",
            "[{ actions = [\"pull\"] }]",
            &[
                "REGISTRY_GATE_AUTHZ_RULES: authz.rules cannot be set from the environment",
                "REGISTRY_GATE_AUTHZ_RULES_FILE",
            ],
        ),
        (
            "REGISTRY_GATE_LDAP_URLS",
            "ldaps://dc1",
            &[
                "REGISTRY_GATE_LDAP_URLS: unknown field `urls` in [ldap]",
                "REGISTRY_GATE_LDAP_URL,",
            ],
        ),
        (
            "REGISTRY_GATE_AUTHZ_GROUPS_CI",
            "[\"alice\"]",
            &[
                "REGISTRY_GATE_AUTHZ_GROUPS_CI: ",
                "REGISTRY_GATE_AUTHZ_GROUPS='{ ci = [\"alice\"] }'",
            ],
        ),
    ];
    for (var, value, wants) in cases {
        let o = check_config(dir.path(), &[(var, value)]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(CONFIG_ERROR), "{var}: {err}");
        for want in *wants {
            assert!(err.contains(want), "{var}: want {want:?} in {err}");
        }
    }
}

#[test]
fn type_errors_are_in_plain_words_with_file_line_and_key() {
    assert_refused(
        &format!("{HEAD}[listen]\nmax_connections = \"many\"\n"),
        &["line 10, column 19: listen.max_connections: must be a whole number from 0 to 18446744073709551615, not the string \"many\""],
    );
    assert_refused(
        &HEAD.replace("htpasswd = \"htpasswd\"", "htpasswd = \"htpasswd\"\ncache_size = -1"),
        &["line 8, column 14: auth.cache_size: must be a whole number from 0 to 18446744073709551615, not -1"],
    );
    assert_refused(
        &format!("{HEAD}[listen]\nproxy_protocol = \"yes\"\n"),
        &["line 10, column 18: listen.proxy_protocol: must be true or false, not the string \"yes\""],
    );
    assert_refused(
        &format!("{HEAD}[forwarding]\ntrusted_proxies = \"10.0.0.0/8\"\n"),
        &[
            "forwarding.trusted_proxies: must be a list, not the string \"10.0.0.0/8\"",
            "write it in brackets: [\"10.0.0.0/8\"]",
        ],
    );
    let o = check_config(
        setup("").path(),
        &[("REGISTRY_GATE_THROTTLE_MAX_FAILURES_PER_USER", "lots")],
    );
    assert_eq!(o.status.code(), Some(CONFIG_ERROR), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("REGISTRY_GATE_THROTTLE_MAX_FAILURES_PER_USER: must be a whole number from 0 to 4294967295, not the string \"lots\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_duration_written_as_a_number_is_told_its_unit() {
    assert_refused(
        &HEAD.replace(
            "url = \"http://127.0.0.1:9\"",
            "url = \"http://127.0.0.1:9\"\nread_timeout = 900",
        ),
        &["line 6, column 16: upstream.read_timeout: invalid duration 900 (a number without a unit); write it with a unit, like \"900s\""],
    );
    assert_refused(
        &format!("{HEAD}[shutdown]\ngrace_period = 30\n"),
        &[
            "shutdown.grace_period: ",
            "write it with a unit, like \"30s\"",
        ],
    );
    let o = check_config(
        setup("").path(),
        &[("REGISTRY_GATE_LISTEN_IDLE_TIMEOUT", "75")],
    );
    assert_eq!(o.status.code(), Some(CONFIG_ERROR), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("REGISTRY_GATE_LISTEN_IDLE_TIMEOUT: invalid duration 75 (a number without a unit); write it with a unit, like \"75s\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_table_written_twice_is_named_with_both_lines() {
    assert_refused(
        &format!("{HEAD}[tls]\nsession_ticket_lifetime = \"1h\"\n"),
        &["line 9, column 2: duplicate table [tls] (at line 1 and line 9): write all its keys under one [tls]"],
    );
    assert_refused(
        &HEAD.replace("key = ", "cert = \"other.crt\"\nkey = "),
        &["line 3, column 1: tls.cert: duplicate key (at line 2 and line 3): keep one of them"],
    );
}

#[test]
fn an_invalid_address_is_echoed_with_its_key_and_line() {
    assert_refused(
        &format!("{HEAD}[listen]\naddr = \"0.0.0.0:99999\"\n"),
        &["line 10, column 8: listen.addr: invalid address \"0.0.0.0:99999\": port 99999 is over 65535"],
    );
    assert_refused(
        &format!("{HEAD}[admin]\naddr = \"localhost\"\n"),
        &[
            "line 10, column 8: admin.addr: invalid address \"localhost\"",
            "not an IP address",
            "like \"127.0.0.1:9143\"",
        ],
    );
    let o = check_config(
        setup("").path(),
        &[("REGISTRY_GATE_LISTEN_ADDR", "localhost:443")],
    );
    assert_eq!(o.status.code(), Some(CONFIG_ERROR), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("REGISTRY_GATE_LISTEN_ADDR: invalid address \"localhost:443\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn trusted_proxies_take_single_addresses_and_echo_a_bad_network() {
    assert_refused(
        &format!("{HEAD}[forwarding]\ntrusted_proxies = [\"10.0.0.0/8\", \"lb.internal\"]\n"),
        &[
            "line 10, column 19: forwarding.trusted_proxies: invalid network \"lb.internal\"",
            "host names are not looked up",
        ],
    );
    let dir = setup("[forwarding]\ntrusted_proxies = [\"10.0.0.5\", \"fd00::/8\"]");
    let o = check_config(dir.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        resolved(&o)["forwarding"]["trusted_proxies"],
        toml::Value::Array(vec!["10.0.0.5/32".into(), "fd00::/8".into()])
    );
}
