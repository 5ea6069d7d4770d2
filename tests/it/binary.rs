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
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "proxy.toml: ok (1 users, 0 trusted proxy networks, 1 user-agent patterns)\n"
    );
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

#[test]
fn unusable_htpasswd_lines_fail_check_config_but_not_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_valid_setup(dir.path());
    let good = std::fs::read_to_string(dir.path().join("htpasswd")).expect("htpasswd");
    std::fs::write(
        dir.path().join("htpasswd"),
        format!("{good}bob:{{SMD5}}abc\n"),
    )
    .expect("write");
    let o = gate(&["check-config"], dir.path());
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("htpasswd:2: unsupported hash scheme \"{SMD5}\""),
        "{}",
        stderr(&o)
    );

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
