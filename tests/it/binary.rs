//! The real binary: `check-config` errors and exit codes, `certs generate`, and a
//! `serve` smoke test that ends with SIGTERM.

use std::path::Path;
use std::time::Duration;

use crate::support::client::Proto;
use crate::support::gate::{run as gate, write_setup, GateProcess};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_valid_setup(dir: &Path) {
    write_setup(dir, "http://127.0.0.1:9", "");
}

#[test]
fn check_config_accepts_a_valid_setup() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_valid_setup(dir.path());
    let o = gate(&["check-config"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().next(),
        Some("# proxy.toml: ok (1 users, 0 groups, no authorization rules (every user may push), 0 trusted proxy networks, 1 user-agent patterns)")
    );
    // The rest is the resolved config, defaults included, itself a valid config.
    let resolved: toml::Table = toml::from_str(&out).expect("check-config prints TOML");
    assert_eq!(
        resolved["upstream"]["url"].as_str(),
        Some("http://127.0.0.1:9")
    );
    assert_eq!(resolved["auth"]["cache_ttl"].as_str(), Some("5m"));
    assert_eq!(resolved["throttle"]["enabled"].as_bool(), Some(true));
}

fn check_config_with_env(dir: &Path, env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(crate::support::gate::BIN)
        .arg("check-config")
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run check-config")
}

#[test]
fn environment_overrides_any_key_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_valid_setup(dir.path());
    let o = check_config_with_env(
        dir.path(),
        &[
            ("REGISTRY_GATE_UPSTREAM_URL", "http://registry:5000"),
            ("REGISTRY_GATE_THROTTLE_ENABLED", "false"),
            (
                "REGISTRY_GATE_FORWARDING_TRUSTED_PROXIES",
                "[\"10.0.0.0/8\"]",
            ),
            ("REGISTRY_GATE_SHUTDOWN_GRACE_PERIOD", "2m"),
            ("REGISTRY_GATE_LOG_FORMAT", "json"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("# environment overrides: REGISTRY_GATE_FORWARDING_TRUSTED_PROXIES, REGISTRY_GATE_LOG_FORMAT, REGISTRY_GATE_SHUTDOWN_GRACE_PERIOD, REGISTRY_GATE_THROTTLE_ENABLED, REGISTRY_GATE_UPSTREAM_URL"), "{out}");
    let resolved: toml::Table = toml::from_str(&out).expect("TOML");
    assert_eq!(
        resolved["upstream"]["url"].as_str(),
        Some("http://registry:5000")
    );
    assert_eq!(resolved["throttle"]["enabled"].as_bool(), Some(false));
    assert_eq!(resolved["shutdown"]["grace_period"].as_str(), Some("2m"));
    assert_eq!(resolved["log"]["format"].as_str(), Some("json"));
    assert_eq!(
        resolved["forwarding"]["trusted_proxies"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let cases = [
        (
            ("REGISTRY_GATE_UPSTREAM_URL", "ftp://x"),
            "REGISTRY_GATE_UPSTREAM_URL: invalid upstream URL",
        ),
        (
            ("REGISTRY_GATE_UPSTRAEM_URL", "http://x"),
            "REGISTRY_GATE_UPSTRAEM_URL: names no config key",
        ),
        (
            ("REGISTRY_GATE_UPSTREAM_URLS", "http://x"),
            "unknown field `urls`",
        ),
    ];
    for ((var, value), want) in cases {
        let o = check_config_with_env(dir.path(), &[(var, value)]);
        assert_eq!(o.status.code(), Some(64), "{var}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{var}: {}", stderr(&o));
    }
    // An error in the file keeps its line even when overrides are set.
    let text = std::fs::read_to_string(dir.path().join("proxy.toml")).expect("read");
    std::fs::write(
        dir.path().join("proxy.toml"),
        format!("{text}[shutdown]\ngrace_period = \"soon\"\n"),
    )
    .expect("write");
    let o = check_config_with_env(dir.path(), &[("REGISTRY_GATE_THROTTLE_ENABLED", "false")]);
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("shutdown.grace_period: invalid duration"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("line "), "{}", stderr(&o));
}

#[test]
fn bad_config_exits_64_with_one_line_naming_key_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_valid_setup(dir.path());
    let cases: &[(&str, &str)] = &[
        (
            "[listen]\naddr = \"127.0.0.1:0\"\nhandshake_timeout = \"forever\"\n",
            "line 3, column 21: listen.handshake_timeout: invalid duration \"forever\"",
        ),
        (
            "[tls]\ncert = \"a\"\nkye = \"b\"\n",
            "line 3, column 1: tls.kye: unknown field `kye`",
        ),
        ("[upstream\n", "line 1"),
    ];
    for (text, want) in cases {
        std::fs::write(dir.path().join("bad.toml"), text).expect("write");
        let o = gate(&["check-config", "--config", "bad.toml"], dir.path());
        assert_eq!(o.status.code(), Some(64), "{text:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(err.starts_with("registry-gate: error: bad.toml: "), "{err}");
    }
}

#[test]
fn unusable_files_exit_64_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_valid_setup(dir.path());
    let original = std::fs::read_to_string(dir.path().join("proxy.toml")).expect("read");
    let cases = [
        (
            "certs/server.crt",
            "certs/missing.crt",
            "certificate file certs/missing.crt: No such file",
        ),
        (
            "certs/server.key",
            "certs/server.crt",
            "key file certs/server.crt: no PEM private key found",
        ),
        (
            "htpasswd\"",
            "nope\"",
            "auth.htpasswd: failed to read htpasswd file nope: No such file",
        ),
    ];
    for (from, to, want) in cases {
        std::fs::write(dir.path().join("proxy.toml"), original.replace(from, to)).expect("write");
        for command in ["check-config", "serve"] {
            let o = gate(&[command], dir.path());
            assert_eq!(o.status.code(), Some(64), "{command} {to}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(err.contains(want), "{command} {to}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        }
    }
}

#[test]
fn certs_generate_writes_keys_private_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    write_valid_setup(dir.path());
    for (file, mode) in [
        ("certs/ca.key", 0o600),
        ("certs/server.key", 0o600),
        ("certs/server.crt", 0o644),
        ("certs/trust/ca.crt", 0o644),
    ] {
        let meta = std::fs::metadata(dir.path().join(file)).expect(file);
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    let o = gate(
        &["certs", "generate", "--san", "localhost", "--out", "certs"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("already exists; pass --force"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn serve_logs_the_bound_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_valid_setup(dir.path());
    let mut gate = GateProcess::start(dir.path());
    assert_ne!(gate.addr.port(), 0);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = gate.client();
    let answer = rt.block_on(async {
        let req = client.request(Proto::H1, "GET", "/v2/");
        client.send_empty(Proto::H1, req).await
    });
    assert_eq!(answer.status, 401);

    gate.signal("TERM");
    let status = gate.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

/// check-config says what serve would do with unusable lines: each is a
/// warning naming file:line, and the check passes.
#[test]
fn unusable_htpasswd_lines_are_warnings_in_check_config_as_in_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_valid_setup(dir.path());
    let good = std::fs::read_to_string(dir.path().join("htpasswd")).expect("htpasswd");
    std::fs::write(
        dir.path().join("htpasswd"),
        format!("{good}bob:{{SMD5}}abc\nno colon\n"),
    )
    .expect("write");
    let o = gate(&["check-config"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let warnings: Vec<_> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings[0].contains("htpasswd:2: unsupported hash scheme \"{SMD5}\""),
        "{err}"
    );
    assert!(
        warnings[1].contains("htpasswd:3: missing ':' between user name and hash"),
        "{err}"
    );
    assert!(!err.contains("abc"), "never the hash: {err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("# proxy.toml: ok (1 users,"), "{out}");

    // serve starts anyway: alice can log in, bob's line is a logged warning.
    let gate = GateProcess::start(dir.path());
    gate.wait_for_log(
        &["htpasswd line ignored", "htpasswd:2"],
        Duration::from_secs(5),
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = gate.client();
    let status = rt.block_on(async {
        let req = client.request(Proto::H1, "GET", "/v2/").header(
            "authorization",
            crate::support::client::basic("alice", "pw"),
        );
        client.send_empty(Proto::H1, req).await.status
    });
    // The upstream (port 9) is down: 502 proves alice got past authentication.
    assert_eq!(status, 502);
}

#[test]
fn acl_explain_names_the_deciding_rule_and_exits_by_the_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        "http://127.0.0.1:9",
        "[authz]\nrules = [\n  { account = \"bob\", name = \"team-b/*\", actions = [\"pull\"], comment = \"read-only\" },\n  { group = \"pushers\", name = \"**\", actions = [\"pull\", \"push\"] },\n  { account = \"anonymous\", name = \"public/**\", actions = [\"pull\"] },\n]\n",
    );
    let text = std::fs::read_to_string(dir.path().join("proxy.toml")).expect("read");
    std::fs::write(
        dir.path().join("proxy.toml"),
        text.replace(
            "htpasswd = \"htpasswd\"",
            "htpasswd = \"htpasswd\"\ngroups = \"groups\"",
        ),
    )
    .expect("write");
    std::fs::write(dir.path().join("groups"), "pushers: alice\n").expect("groups");
    let explain = |args: &[&str]| {
        let mut all = vec!["acl", "explain"];
        all.extend_from_slice(args);
        gate(&all, dir.path())
    };
    let o = explain(&["alice", "team-a/app", "push"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("alice: in groups pushers"), "{out}");
    assert!(out.contains("decided by authz.rules[2]"), "{out}");
    assert!(out.contains("allowed: alice may push team-a/app"), "{out}");

    let o = explain(&["bob", "team-b/app", "push"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("decided by authz.rules[1]") && out.contains("# read-only"),
        "{out}"
    );
    assert!(out.contains("grants: pull"), "{out}");
    assert!(
        stderr(&o).contains("denied: bob may not push team-b/app"),
        "{}",
        stderr(&o)
    );

    // `*` stays within a segment: bob's rule does not reach team-b/x/y.
    let o = explain(&["bob", "team-b/x/y", "pull"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no rule matches: denied"));

    assert!(explain(&["anonymous", "public/base", "pull"])
        .status
        .success());
    assert_eq!(
        explain(&["anonymous", "team-a/app", "pull"]).status.code(),
        Some(1)
    );
    assert_eq!(
        explain(&["alice", "team-a/app", "fly"]).status.code(),
        Some(64)
    );
}

#[test]
fn a_rules_file_is_checked_like_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        "http://127.0.0.1:9",
        "[authz]\nrules_file = \"acl.toml\"\n",
    );
    let rules = dir.path().join("acl.toml");
    std::fs::write(
        &rules,
        "[[rules]]\naccount = \"alice\"\nname = \"team-a/**\"\nactions = [\"pull\", \"push\"]\n",
    )
    .expect("rules");
    let o = gate(&["acl", "explain", "alice", "team-a/x", "push"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        gate(&["acl", "explain", "alice", "team-b/x", "pull"], dir.path())
            .status
            .code(),
        Some(1)
    );
    // A bad line: exit 64 naming the file, line and key.
    std::fs::write(
        &rules,
        "[[rules]]\naccount = \"alice\"\nactoins = [\"pull\"]\n",
    )
    .expect("rules");
    let o = gate(&["check-config"], dir.path());
    assert_eq!(o.status.code(), Some(64));
    assert!(
        stderr(&o).contains("acl.toml: line 3, column 1: rules.actoins: unknown field"),
        "{}",
        stderr(&o)
    );
    // An empty file would open everything: refused.
    std::fs::write(&rules, "# nothing yet\n").expect("rules");
    let o = gate(&["check-config"], dir.path());
    assert_eq!(o.status.code(), Some(64));
    assert!(stderr(&o).contains("has no rules"), "{}", stderr(&o));
}

#[test]
fn logs_to_a_pipe_or_file_carry_no_colour_codes() {
    use std::io::{BufRead as _, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    write_valid_setup(dir.path());
    // As a container runtime or `serve 2> gate.log` runs it: stderr is not a
    // terminal, and NO_COLOR is not set.
    let mut child = std::process::Command::new(crate::support::gate::BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().expect("a log line").expect("utf-8");
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains("listening"), "{first}");
    assert!(!first.contains('\u{1b}'), "escape codes in {first:?}");
}
