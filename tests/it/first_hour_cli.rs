//! A newcomer's first hour: the command line as a new user meets it, on
//! the real binary.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::gate::BIN;
use crate::support::process::{run_bounded_with_stdin, Run};

/// Longest a one-shot command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the binary with `args` in `dir`, `stdin` as its input, and a bound.
fn gate(args: &[&str], dir: &Path, stdin: Option<&str>) -> Run {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("REGISTRY_GATE_CONFIG");
    run_bounded_with_stdin(command, "registry-gate", stdin, COMMAND_TIMEOUT)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The README's second command, verbatim, on a fresh clone: `auth/` does not exist.
#[test]
fn htpasswd_add_creates_the_missing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let add = ["htpasswd", "add", "--file", "auth/htpasswd", "alice"];
    let run = gate(&add, dir.path(), Some("s3cret\n")).expect_success();
    assert_eq!(
        run.stderr,
        "created directory auth/ (mode 0700)\nadded user \"alice\" to auth/htpasswd\n"
    );
    assert_eq!(mode(&dir.path().join("auth")), 0o700);
    assert_eq!(mode(&dir.path().join("auth/htpasswd")), 0o600);
    let verify = ["htpasswd", "verify", "--file", "auth/htpasswd", "alice"];
    let run = gate(&verify, dir.path(), Some("s3cret\n")).expect_success();
    assert_eq!(run.stdout, "password ok for \"alice\"\n");

    std::fs::write(dir.path().join("notes"), "a file").expect("write");
    let below = ["htpasswd", "add", "--file", "notes/htpasswd", "alice"];
    let run = gate(&below, dir.path(), Some("s3cret\n")).expect_failure();
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "registry-gate: error: htpasswd file notes/htpasswd: notes is not a directory; \
         name a file in a directory\n"
    );
}

/// `openssl verify -CAfile CA CERT` in `dir` succeeds.
fn openssl_verifies(dir: &Path, ca: &str, cert: &str) -> bool {
    let mut command = Command::new("openssl");
    command
        .args(["verify", "-CAfile", ca, cert])
        .current_dir(dir);
    crate::support::process::run_bounded(command, "openssl", COMMAND_TIMEOUT)
        .status
        .success()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Renewal as the printed advice says keeps the CA that clients trust; a new CA
/// needs `--new-ca` and says that clients must trust it; a kept CA is checked.
#[test]
fn certs_generate_force_keeps_the_ca_and_new_ca_replaces_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let generate = ["certs", "generate", "--san", "localhost", "--out", "certs"];
    let first = gate(&generate, d, None).expect_success();
    assert!(
        first.stdout.contains(
            "server.crt is valid for 825 days: before then run this again with --force, \
             which keeps the CA and issues only a new server.crt"
        ),
        "{}",
        first.stdout
    );
    let (ca, server) = (
        read(&d.join("certs/ca.crt")),
        read(&d.join("certs/server.crt")),
    );

    let again = gate(&generate, d, None).expect_failure();
    assert_eq!(
        again.stderr,
        "registry-gate: error: certs/server.crt already exists; pass --force to issue a new \
         server certificate (the CA in certs/ca.crt is kept, so clients need no change)\n"
    );

    let force = [&generate[..], &["--force"]].concat();
    let renewed = gate(&force, d, None).expect_success();
    assert!(
        renewed.stdout.starts_with(
            "kept the CA in certs/ca.crt; issued a new server.crt valid for 825 days for localhost\n"
        ),
        "{}",
        renewed.stdout
    );
    assert_eq!(renewed.stderr, "");
    assert_eq!(read(&d.join("certs/ca.crt")), ca, "the CA is kept");
    assert_eq!(read(&d.join("certs/trust/ca.crt")), ca);
    assert_ne!(
        read(&d.join("certs/server.crt")),
        server,
        "a new server.crt"
    );
    assert!(openssl_verifies(d, "certs/ca.crt", "certs/server.crt"));

    let new_ca = [&generate[..], &["--new-ca"]].concat();
    let refused = gate(&new_ca, d, None).expect_failure();
    assert!(
        refused.stderr.contains("certs/server.crt already exists"),
        "{}",
        refused.stderr
    );
    let new_ca = [&force[..], &["--new-ca"]].concat();
    let replaced = gate(&new_ca, d, None).expect_success();
    assert_eq!(
        replaced.stderr,
        "warning: replaced the CA in certs/ca.crt: every client that trusted the old CA \
         refuses this gate until it trusts the new certs/ca.crt\n"
    );
    assert_ne!(read(&d.join("certs/ca.crt")), ca, "a new CA");
    assert!(openssl_verifies(d, "certs/ca.crt", "certs/server.crt"));

    // A CA whose key is not its own is refused, and nothing is written.
    std::fs::copy(d.join("certs/server.key"), d.join("certs/ca.key")).expect("copy");
    let server = read(&d.join("certs/server.crt"));
    let mismatch = gate(&force, d, None).expect_failure();
    assert_eq!(mismatch.status.code(), Some(1));
    assert_eq!(
        mismatch.stderr,
        "registry-gate: error: CA key file certs/ca.key: is not the key of the CA certificate \
         certs/ca.crt; or pass --new-ca --force\n"
    );
    assert_eq!(read(&d.join("certs/server.crt")), server);
    // A server certificate in ca.crt is not a CA.
    std::fs::copy(d.join("certs/server.crt"), d.join("certs/ca.crt")).expect("copy");
    let not_ca = gate(&force, d, None).expect_failure();
    assert!(
        not_ca
            .stderr
            .contains("CA certificate certs/ca.crt: is not a CA certificate"),
        "{}",
        not_ca.stderr
    );
}

/// Each subcommand's help shows `--config` only where it reads one, and says what for.
#[test]
fn help_shows_config_only_where_it_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    #[rustfmt::skip]
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["certs", "generate"], None),
        (&["certs"], None),
        (&["htpasswd", "add"], None),
        (&["htpasswd", "verify"], None),
        (&["import", "docker-auth"], None),
        (&["serve"], Some("The config file to serve")),
        (&["check-config"], Some("The config file to check")),
        (&["acl", "explain"], Some("The config file whose [authz] rules")),
        (&["ldap", "test"], Some("The config file whose [ldap] directory")),
        (&["token", "jwks"], Some("The config file whose [token] keys")),
    ];
    for (command, config) in cases {
        let args = [*command, &["--help"]].concat();
        let help = gate(&args, dir.path(), None).expect_success().stdout;
        assert!(
            !help.contains("for `serve` and `check-config`"),
            "{command:?}:\n{help}"
        );
        match config {
            None => assert!(!help.contains("--config"), "{command:?}:\n{help}"),
            Some(what) => {
                assert!(help.contains("-c, --config <FILE>"), "{command:?}:\n{help}");
                assert!(help.contains(what), "{command:?}:\n{help}");
            }
        }
    }
    let top = gate(&["--help"], dir.path(), None).expect_success().stdout;
    assert!(top.contains("-c, --config <FILE>"), "{top}");
}

/// The forms in the README, docs, examples and scripts keep working.
#[test]
fn config_is_taken_before_or_after_the_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::gate::write_setup(dir.path(), "http://127.0.0.1:9", "");
    std::fs::rename(dir.path().join("proxy.toml"), dir.path().join("gate.toml")).expect("rename");
    let explain = ["acl", "explain", "alice", "team/app", "pull"];
    #[rustfmt::skip]
    let forms: &[Vec<&str>] = &[
        vec!["check-config", "--config", "gate.toml"],
        vec!["check-config", "-c", "gate.toml"],
        vec!["--config", "gate.toml", "check-config"],
        vec!["-c", "gate.toml", "check-config"],
        vec!["--config", "missing.toml", "check-config", "--config", "gate.toml"],
        [&["--config", "gate.toml"][..], &explain].concat(),
        [&explain[..], &["--config", "gate.toml"]].concat(),
    ];
    for args in forms {
        let run = gate(args, dir.path(), None);
        assert!(run.status.success(), "{args:?}: {}", run.stderr);
    }
    let mut command = Command::new(BIN);
    command
        .arg("check-config")
        .current_dir(dir.path())
        .env("REGISTRY_GATE_CONFIG", "gate.toml");
    let run = crate::support::process::run_bounded(command, "registry-gate", COMMAND_TIMEOUT);
    assert!(run.status.success(), "REGISTRY_GATE_CONFIG: {}", run.stderr);
    // Without a config the default is proxy.toml, which is not there.
    let run = gate(&["check-config"], dir.path(), None).expect_failure();
    assert!(run.stderr.contains("proxy.toml"), "{}", run.stderr);
}

/// Waits (bounded) for `child` to exit, killing it past the bound.
fn wait_bounded(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = crate::support::process::poll(COMMAND_TIMEOUT, Duration::from_millis(10), || {
        child.try_wait().expect("try_wait")
    });
    status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("no exit within {COMMAND_TIMEOUT:?}")
    })
}

/// `check-config | head -1`: stdout closes while the command still prints. Its
/// output is larger than a pipe holds, so it meets the closed pipe whatever the
/// timing; it must end quietly (141, as a SIGPIPE'd `cat`), not panic (101).
#[test]
fn a_closed_stdout_is_a_quiet_exit() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("tempdir");
    let rules: String = (0..1500)
        .map(|i| {
            format!(
                "[[authz.rules]]\naccount = \"user{i}\"\nname = \"team-{i}/**\"\n\
                 actions = [\"pull\"]\ncomment = \"rule {i} of many, to fill the pipe\"\n"
            )
        })
        .collect();
    crate::support::gate::write_setup(dir.path(), "http://127.0.0.1:9", &rules);
    let mut child = Command::new(BIN)
        .args(["check-config", "--config", "proxy.toml"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut head = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    head.read_line(&mut first).expect("the first line");
    assert!(first.starts_with("# proxy.toml: ok"), "{first}");
    drop(head);
    let status = wait_bounded(&mut child);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!((status.code(), stderr.as_str()), (Some(141), ""));

    // A command that prints after reading stdin: the pipe is closed before it prints.
    let o = gate(
        &[
            "htpasswd", "add", "--file", "htpasswd", "--cost", "4", "bob",
        ],
        dir.path(),
        Some("pw\n"),
    );
    assert!(o.status.success(), "{}", o.stderr);
    let mut child = Command::new(BIN)
        .args(["htpasswd", "verify", "--file", "htpasswd", "bob"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, b"pw\n").expect("password");
    drop(stdin);
    let status = wait_bounded(&mut child);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!((status.code(), stderr.as_str()), (Some(141), ""));
}

/// A free loopback port (bound and released; the OS does not hand it out again at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs a second `serve` in `dir` with `env`, which must fail: its stderr.
fn second_gate(dir: &Path, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied());
    let run = crate::support::process::run_bounded(command, "registry-gate", COMMAND_TIMEOUT)
        .expect_failure();
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    run.stderr
}

/// Two gates on one host: the second one's error names the key and address, says it
/// is in use and what to set instead.
#[test]
fn a_second_gate_on_the_same_ports_says_what_to_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::gate::write_setup(dir.path(), "http://127.0.0.1:9", "");
    let admin = format!("127.0.0.1:{}", free_port());
    let env = [("REGISTRY_GATE_ADMIN_ADDR", admin.as_str())];
    let first = crate::support::gate::GateProcess::start_with_env(dir.path(), &env);
    assert_eq!(first.admin_addr().to_string(), admin);

    let stderr = second_gate(dir.path(), &env);
    assert_eq!(
        stderr,
        format!(
            "registry-gate: error: admin.addr {admin} is in use (another registry-gate on this \
             host, or another program, listens there): set [admin] addr (or \
             REGISTRY_GATE_ADMIN_ADDR) to a free port, or turn the admin listener off with \
             [admin] enabled = false\n"
        )
    );
    let listen = first.addr.to_string();
    let stderr = second_gate(
        dir.path(),
        &[("REGISTRY_GATE_LISTEN_ADDR", listen.as_str())],
    );
    assert_eq!(
        stderr,
        format!(
            "registry-gate: error: listen.addr {listen} is in use (another registry-gate on \
             this host, or another program, listens there): set [listen] addr (or \
             REGISTRY_GATE_LISTEN_ADDR) to a free port\n"
        )
    );
    assert_eq!(
        first.admin_get("/healthz").0,
        200,
        "the first gate serves on"
    );
}

/// The start line names the config file, the version and the certificate's expiry,
/// and keeps `addr=` (which the harness parses).
#[test]
fn the_start_line_names_config_version_and_certificate_expiry() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::gate::write_setup(dir.path(), "http://127.0.0.1:9", "");
    let config = dir.path().join("proxy.toml");
    let config = config.to_str().expect("UTF-8 temp path");
    let mut command = Command::new("openssl");
    command
        .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
        .arg(dir.path().join("certs/server.crt"));
    let end = crate::support::process::run_bounded(command, "openssl", COMMAND_TIMEOUT)
        .expect_success()
        .stdout;
    // `notAfter=2029-03-12 10:00:00Z` as RFC 3339.
    let not_after = end
        .trim()
        .strip_prefix("notAfter=")
        .unwrap_or_else(|| panic!("{end}"))
        .replace(' ', "T");
    let gate = crate::support::gate::GateProcess::start_with_env(
        dir.path(),
        &[("REGISTRY_GATE_CONFIG", config)],
    );
    let line = gate.wait_for_log(&["listening"], Duration::from_secs(5));
    for field in [
        format!("addr={}", gate.addr),
        format!("config={config}"),
        format!("version={}", env!("CARGO_PKG_VERSION")),
        format!("cert_not_after={not_after}"),
        "cert_days_left=824".to_string(),
    ] {
        assert!(line.contains(&field), "{field} in {line}");
    }
    assert!(!gate.log().contains("expires soon"), "{}", gate.log());
}
