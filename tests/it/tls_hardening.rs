//! Issue 11, the TLS part, against the real binary and real clients: OCSP stapling
//! from a file (`openssl s_client -status`), session tickets with rotating keys
//! (`openssl s_client -sess_out/-sess_in`), and client certificates for CI robots
//! (`skopeo copy` with `--dest-cert-dir`, `curl --cert`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::gate::{replace_file, run, write_setup, GateProcess};

/// Writes the usual setup (`certs/`, alice/pw, `proxy.toml`) with `tls_keys` added
/// to its `[tls]` section and `extra` sections at the end.
fn setup(dir: &Path, upstream: &str, tls_keys: &str, extra: &str) {
    write_setup(dir, upstream, extra);
    let path = dir.join("proxy.toml");
    let text = std::fs::read_to_string(&path).expect("proxy.toml");
    let anchor = "key = \"certs/server.key\"\n";
    assert!(text.contains(anchor), "{text}");
    let text = text.replacen(anchor, &format!("{anchor}{tls_keys}\n"), 1);
    std::fs::write(&path, text).expect("proxy.toml");
}

/// Runs `openssl args` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl s_client` to the gate, sending one `GET /v2/` with `Connection: close`
/// and reading to the end, so that TLS 1.3 tickets (sent after the handshake) arrive.
/// Returns stdout and stderr together.
fn s_client(dir: &Path, addr: SocketAddr, args: &[&str]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
            "-ign_eof",
        ])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs (apt-get install -y openssl)");
    let request = "GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if let Some(mut stdin) = child.stdin.take() {
        // A refused handshake may close the pipe first; the output says what happened.
        let _ = stdin.write_all(request.as_bytes());
    }
    let out = child.wait_with_output().expect("s_client ends");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// --- OCSP stapling ---------------------------------------------------------------

/// Writes `certs/<name>`: a DER OCSP response for `certs/server.crt`, signed by
/// the CA as its own responder, giving the status `flag` (`V` good, `R` revoked).
fn ocsp_response(dir: &Path, flag: char, name: &str) {
    let certs = dir.join("certs");
    let serial = openssl(&certs, &["x509", "-serial", "-noout", "-in", "server.crt"]);
    let serial = serial.trim().trim_start_matches("serial=");
    let revoked = if flag == 'R' { "240101000000Z" } else { "" };
    std::fs::write(
        certs.join("index.txt"),
        format!("{flag}\t491231235959Z\t{revoked}\t{serial}\tunknown\t/CN=localhost\n"),
    )
    .expect("index.txt");
    openssl(
        &certs,
        &[
            "ocsp",
            "-issuer",
            "ca.crt",
            "-cert",
            "server.crt",
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
    );
    openssl(
        &certs,
        &[
            "ocsp",
            "-index",
            "index.txt",
            "-rsigner",
            "ca.crt",
            "-rkey",
            "ca.key",
            "-CA",
            "ca.crt",
            "-reqin",
            "req.der",
            "-ndays",
            "1",
            "-respout",
            name,
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_ocsp_staple_is_sent_on_every_handshake_and_follows_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(
        dir.path(),
        "http://127.0.0.1:9",
        "ocsp = \"certs/ocsp.der\"",
        "",
    );
    ocsp_response(dir.path(), 'V', "ocsp.der");
    let gate = GateProcess::start(dir.path());
    let d = dir.path().to_path_buf();
    let addr = gate.addr;
    let (v13, v12) = tokio::task::spawn_blocking(move || {
        (
            s_client(&d, addr, &["-tls1_3", "-status"]),
            s_client(&d, addr, &["-tls1_2", "-status"]),
        )
    })
    .await
    .expect("s_client");
    for out in [&v13, &v12] {
        assert!(
            out.contains("OCSP Response Status: successful"),
            "no staple:\n{out}"
        );
        assert!(out.contains("Cert Status: good"), "{out}");
    }

    // A new response (here: revoked) replaces the staple without a restart.
    ocsp_response(dir.path(), 'R', "ocsp.new");
    std::fs::rename(
        dir.path().join("certs/ocsp.new"),
        dir.path().join("certs/ocsp.der"),
    )
    .expect("rename");
    gate.wait_for_log(&["configuration reloaded"], Duration::from_secs(5));
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || s_client(&d, addr, &["-status"]))
        .await
        .expect("s_client");
    assert!(out.contains("Cert Status: revoked"), "{out}");

    // A file that is not an OCSP response is refused on reload: the old staple stays.
    replace_file(&dir.path().join("certs/ocsp.der"), "-----BEGIN nonsense\n");
    let line = gate.wait_for_log(&["reload failed"], Duration::from_secs(5));
    assert!(
        line.contains("ocsp file") && line.contains("ocsp.der"),
        "{line}"
    );
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || s_client(&d, addr, &["-status"]))
        .await
        .expect("s_client");
    assert!(out.contains("Cert Status: revoked"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_without_the_ocsp_key_no_staple_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path(), "http://127.0.0.1:9", "", "");
    let gate = GateProcess::start(dir.path());
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    let out = tokio::task::spawn_blocking(move || s_client(&d, addr, &["-status"]))
        .await
        .expect("s_client");
    assert!(out.contains("OCSP response: no response sent"), "{out}");
    assert!(
        out.contains("HTTP/1.1 401"),
        "the connection worked:\n{out}"
    );
}

#[test]
fn tls_check_config_names_the_key_and_file_of_a_bad_staple() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(
        dir.path(),
        "http://127.0.0.1:9",
        "ocsp = \"certs/ocsp.der\"",
        "",
    );
    for (content, want) in [
        (None, "No such file"),
        (Some(&b""[..]), "empty"),
        (
            Some(&b"\x30\x03\x0a\x01\x01"[..]),
            "not a successful OCSP response",
        ),
    ] {
        if let Some(bytes) = content {
            std::fs::write(dir.path().join("certs/ocsp.der"), bytes).expect("write");
        }
        let o = run(&["check-config"], dir.path());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(64), "{stderr}");
        assert!(
            stderr.contains("tls: ocsp file")
                && stderr.contains("ocsp.der")
                && stderr.contains(want),
            "{want}: {stderr}"
        );
    }
    ocsp_response(dir.path(), 'V', "ocsp.der");
    let o = run(&["check-config"], dir.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let resolved: toml::Table =
        toml::from_str(&String::from_utf8_lossy(&o.stdout)).expect("check-config prints TOML");
    let tls = resolved["tls"].as_table().expect("[tls]");
    assert!(
        tls["ocsp"]
            .as_str()
            .is_some_and(|p| p.ends_with("certs/ocsp.der")),
        "{tls:?}"
    );
    assert_eq!(
        tls["session_ticket_lifetime"].as_str(),
        Some("1h"),
        "{tls:?}"
    );
    assert_eq!(tls["client_auth"].as_str(), Some("optional"), "{tls:?}");
}

// --- Session tickets -------------------------------------------------------------

/// A first connection saving its session to `file`: the output.
fn new_session(dir: &Path, addr: SocketAddr, version: &str, file: &str) -> String {
    s_client(dir, addr, &[version, "-sess_out", file])
}

/// Whether a connection offering the session in `file` resumed it (`Reused`) or
/// made a full handshake (`New`); panics on anything else.
fn resumes(dir: &Path, addr: SocketAddr, version: &str, file: &str) -> bool {
    let out = s_client(dir, addr, &[version, "-sess_in", file]);
    assert!(
        out.contains("HTTP/1.1 401"),
        "the connection worked:\n{out}"
    );
    match (out.contains("\nReused, "), out.contains("\nNew, ")) {
        (true, false) => true,
        (false, true) => false,
        _ => panic!("neither New nor Reused:\n{out}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_sessions_resume_with_the_lifetime_hint_and_survive_a_certificate_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path(), "http://127.0.0.1:9", "", "");
    let gate = GateProcess::start(dir.path());
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    tokio::task::spawn_blocking(move || {
        for (version, file) in [("-tls1_3", "s13.pem"), ("-tls1_2", "s12.pem")] {
            let first = new_session(&d, addr, version, file);
            assert!(
                first.contains("TLS session ticket lifetime hint: 3600 (seconds)"),
                "{version}: the default hint is one hour:\n{first}"
            );
            assert!(resumes(&d, addr, version, file), "{version} resumes");
        }
    })
    .await
    .expect("s_client");

    // A new certificate (from another CA, even) is picked up by the watcher; the
    // ticket keys stay, so sessions made before it still resume.
    let o = run(
        &["certs", "generate", "--san", "localhost", "--out", "certs2"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = gate.log().matches("configuration reloaded").count();
    for name in ["server.key", "server.crt"] {
        std::fs::rename(
            dir.path().join("certs2").join(name),
            dir.path().join("certs").join(name),
        )
        .expect("rename");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while gate.log().matches("configuration reloaded").count() <= before {
        assert!(Instant::now() < deadline, "no reload:\n{}", gate.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    tokio::task::spawn_blocking(move || {
        let issuer = s_client(&d, addr, &[]);
        assert!(
            issuer.contains("registry-gate development CA") && !issuer.contains("Reused"),
            "a new handshake: {issuer}"
        );
        let new_cert = openssl(
            &d,
            &["x509", "-in", "certs/server.crt", "-noout", "-serial"],
        );
        let served = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect {addr} -servername localhost </dev/null 2>/dev/null \
                 | openssl x509 -noout -serial"
            ))
            .output()
            .expect("sh");
        assert_eq!(
            String::from_utf8_lossy(&served.stdout).trim(),
            new_cert.trim(),
            "the reloaded certificate is served"
        );
        for (version, file) in [("-tls1_3", "s13.pem"), ("-tls1_2", "s12.pem")] {
            assert!(
                resumes(&d, addr, version, file),
                "{version} resumes after reload"
            );
        }
    })
    .await
    .expect("s_client");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_a_ticket_older_than_two_rotations_gets_a_full_handshake() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(
        dir.path(),
        "http://127.0.0.1:9",
        "session_ticket_lifetime = \"2s\"",
        "",
    );
    let gate = GateProcess::start(dir.path());
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    tokio::task::spawn_blocking(move || {
        for (version, file) in [("-tls1_3", "s13.pem"), ("-tls1_2", "s12.pem")] {
            let first = new_session(&d, addr, version, file);
            let issued = Instant::now();
            assert!(
                first.contains("TLS session ticket lifetime hint: 2 (seconds)"),
                "{version}:\n{first}"
            );
            assert!(resumes(&d, addr, version, file), "{version}: fresh ticket");
            // The key that sealed it seals for 2 s (whole seconds), then opens for 2 s
            // more: refused at the latest 5 s after it was issued, never before 1 s.
            let mut refused = None;
            while issued.elapsed() < Duration::from_secs(8) {
                if !resumes(&d, addr, version, file) {
                    refused = Some(issued.elapsed());
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let after = refused.unwrap_or_else(|| panic!("{version}: ticket still accepted"));
            assert!(
                after >= Duration::from_secs(1) && after <= Duration::from_secs(5),
                "{version}: refused after {after:?}"
            );
        }
    })
    .await
    .expect("s_client");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_a_zero_ticket_lifetime_turns_resumption_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(
        dir.path(),
        "http://127.0.0.1:9",
        "session_ticket_lifetime = \"0s\"",
        "",
    );
    let gate = GateProcess::start(dir.path());
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    tokio::task::spawn_blocking(move || {
        // No ticket, and (the gate keeping no session cache) an empty TLS 1.2 session
        // ID: nothing to resume, so openssl saves no session at all.
        for (version, file) in [("-tls1_3", "s13.pem"), ("-tls1_2", "s12.pem")] {
            let first = new_session(&d, addr, version, file);
            assert!(first.contains("HTTP/1.1 401"), "{version}:\n{first}");
            assert!(!first.contains("lifetime hint"), "{version}:\n{first}");
            assert!(!d.join(file).exists(), "{version}: a session was saved");
        }
    })
    .await
    .expect("s_client");
}
