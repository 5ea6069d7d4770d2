//! The real binary: `check-config` errors and exit codes, `certs generate`, and a
//! `serve` smoke test that ends with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_registry-gate");

fn gate(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run registry-gate")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_valid_setup(dir: &Path) {
    let o = gate(
        &["certs", "generate", "--san", "localhost", "--out", "certs"],
        dir,
    );
    assert!(o.status.success(), "certs generate: {}", stderr(&o));
    let hash = bcrypt::hash("pw", 4).expect("hash");
    std::fs::write(dir.join("htpasswd"), format!("alice:{hash}\n")).expect("htpasswd");
    std::fs::write(
        dir.join("proxy.toml"),
        "[listen]\naddr = \"127.0.0.1:0\"\n\
         [tls]\ncert = \"certs/server.crt\"\nkey = \"certs/server.key\"\n\
         [upstream]\nurl = \"http://127.0.0.1:9\"\n\
         [auth]\nhtpasswd = \"htpasswd\"\n",
    )
    .expect("config");
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
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve printed a listening line before exiting")
            .expect("read stderr");
        if let Some(rest) = line.split("addr=").nth(1) {
            if line.contains("listening") {
                break rest.split_whitespace().next().expect("address").to_string();
            }
        }
    };
    let addr: std::net::SocketAddr = addr.parse().expect("bound address parses");
    assert_ne!(addr.port(), 0);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ca = std::fs::read_to_string(dir.path().join("certs/ca.crt")).expect("ca");
    let answer = rt.block_on(async {
        let client =
            crate::support::client::Client::new(addr, &ca, &format!("localhost:{}", addr.port()));
        let req = client.request(crate::support::client::Proto::H1, "GET", "/v2/");
        client
            .send_empty(crate::support::client::Proto::H1, req)
            .await
    });
    assert_eq!(answer.status, 401);

    let pid = child.id().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status =
        crate::support::process::poll(Duration::from_secs(10), Duration::from_millis(20), || {
            child.try_wait().expect("wait")
        })
        .expect("serve stops within 10 s of SIGTERM");
    assert_eq!(status.code(), Some(0));
}
