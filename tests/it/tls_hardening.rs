//! TLS hardening, against the real binary and real clients: OCSP stapling
//! from a file (`openssl s_client -status`), session tickets with rotating keys
//! (`openssl s_client -sess_out/-sess_in`), and client certificates for CI robots
//! (`skopeo copy` with `--dest-cert-dir`, `curl --cert`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use crate::support::gate::{generate_certs, replace_file, run, write_setup, Certs, GateProcess};

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
    // As written, like tls.cert: the printed config is valid next to the original.
    assert_eq!(tls["ocsp"].as_str(), Some("certs/ocsp.der"), "{tls:?}");
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

/// Waits for one more "configuration reloaded" line than `before`.
async fn next_reload(gate: &GateProcess, before: usize) {
    crate::support::eventually(
        &format!("reload number {}", before + 1),
        Duration::from_secs(5),
        || {
            let reloads = gate.log().matches("configuration reloaded").count();
            std::future::ready(
                (reloads > before)
                    .then_some(())
                    .ok_or(format!("{reloads} reloads")),
            )
        },
    )
    .await;
}

const SESSIONS: [(&str, &str); 2] = [("-tls1_3", "s13.pem"), ("-tls1_2", "s12.pem")];

#[tokio::test(flavor = "multi_thread")]
async fn tls_sessions_resume_across_a_users_reload_but_not_a_new_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path(), "http://127.0.0.1:9", "", "");
    let gate = GateProcess::start(dir.path());
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    tokio::task::spawn_blocking(move || {
        for (version, file) in SESSIONS {
            let first = new_session(&d, addr, version, file);
            assert!(
                first.contains("TLS session ticket lifetime hint: 3600 (seconds)"),
                "{version}: the default hint is one hour:\n{first}"
            );
            if version == "-tls1_3" {
                assert_eq!(
                    first
                        .matches("Post-Handshake New Session Ticket arrived")
                        .count(),
                    1,
                    "one ticket per TLS 1.3 handshake (rustls' default is two):\n{first}"
                );
            }
            assert!(resumes(&d, addr, version, file), "{version} resumes");
        }
    })
    .await
    .expect("s_client");

    // A reload for new users keeps the ticket keys: sessions still resume.
    let before = gate.log().matches("configuration reloaded").count();
    crate::support::gate::write_users(dir.path(), &[("alice", "pw"), ("bob", "pw2")]);
    next_reload(&gate, before).await;
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    tokio::task::spawn_blocking(move || {
        for (version, file) in SESSIONS {
            assert!(
                resumes(&d, addr, version, file),
                "{version} after a users reload"
            );
        }
    })
    .await
    .expect("s_client");

    // A new certificate voids them: the next handshake is a full one that presents
    // it, and sessions made from then on resume again.
    generate_certs(dir.path(), "certs2", Certs::Tls);
    let before = gate.log().matches("configuration reloaded").count();
    for name in ["server.key", "server.crt"] {
        std::fs::rename(
            dir.path().join("certs2").join(name),
            dir.path().join("certs").join(name),
        )
        .expect("rename");
    }
    next_reload(&gate, before).await;
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    tokio::task::spawn_blocking(move || {
        let new_cert = std::fs::read_to_string(d.join("certs/server.crt")).expect("cert");
        let new_cert = new_cert.trim();
        for (version, file) in SESSIONS {
            let out = s_client(&d, addr, &[version, "-sess_in", file, "-sess_out", file]);
            assert!(
                out.contains("\nNew, ") && out.contains(new_cert),
                "{version}: a full handshake with the new certificate:\n{out}"
            );
            assert!(
                resumes(&d, addr, version, file),
                "{version}: a new ticket resumes"
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
        for (version, file) in SESSIONS {
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
                // Ticket expiry is the point: the loop measures when it happens.
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
        for (version, file) in SESSIONS {
            let first = new_session(&d, addr, version, file);
            assert!(first.contains("HTTP/1.1 401"), "{version}:\n{first}");
            assert!(!first.contains("lifetime hint"), "{version}:\n{first}");
            assert!(!d.join(file).exists(), "{version}: a session was saved");
        }
    })
    .await
    .expect("s_client");
}

// --- Client certificates (mTLS) --------------------------------------------------

/// A CA for CI robots, made with rcgen.
struct RobotCa {
    cert: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl RobotCa {
    fn new(name: &str) -> RobotCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA cert");
        RobotCa {
            cert,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// Writes `DIR/NAME.cert` and `DIR/NAME.key`, a client certificate with
    /// subject `CN=cn` (no subject at all for `None`).
    fn client(&self, dir: &Path, name: &str, cn: Option<&str>) {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).expect("client cert");
        std::fs::create_dir_all(dir).expect("dir");
        std::fs::write(dir.join(format!("{name}.cert")), cert.pem()).expect("cert");
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("key");
    }
}

/// The robots' rules: `ci-robot` pushes to `ci/**` through the `robots` group,
/// `reader-bot` only pulls, alice (password) pushes anywhere.
const ROBOT_RULES: &str = r#"[authz]
groups = { robots = ["ci-robot"] }
rules = [
  { group = "robots", name = "ci/**", actions = ["pull", "push"] },
  { account = "reader-bot", name = "ci/**", actions = ["pull"] },
  { account = "alice", name = "**", actions = ["pull", "push"] },
]
[log]
format = "json"
"#;

/// A gate (JSON log) trusting a robot CA for client certificates in `mode`, and
/// skopeo cert dirs: `ci-robot/`, `reader-bot/`, `nameless/` (no subject) and
/// `intruder/` (CN ci-robot, from another CA), each the gate's CA plus one pair,
/// and `no-cert/` with the gate's CA alone.
fn robot_gate(dir: &Path, upstream: &str, mode: &str) -> (RobotCa, GateProcess) {
    setup(
        dir,
        upstream,
        &format!("client_ca = \"ci-ca.crt\"\nclient_auth = \"{mode}\""),
        ROBOT_RULES,
    );
    let ca = RobotCa::new("CI robots CA");
    std::fs::write(dir.join("ci-ca.crt"), ca.cert.pem()).expect("ci-ca.crt");
    let gate_ca = std::fs::read_to_string(dir.join("certs/ca.crt")).expect("gate CA");
    let intruder = RobotCa::new("CI robots CA");
    for (name, cn, signer) in [
        ("ci-robot", Some("ci-robot"), &ca),
        ("reader-bot", Some("reader-bot"), &ca),
        ("nameless", None, &ca),
        ("intruder", Some("ci-robot"), &intruder),
    ] {
        let cert_dir = dir.join(name);
        signer.client(&cert_dir, name, cn);
        std::fs::write(cert_dir.join("ca.crt"), &gate_ca).expect("ca.crt");
    }
    std::fs::create_dir(dir.join("no-cert")).expect("no-cert dir");
    std::fs::write(dir.join("no-cert/ca.crt"), &gate_ca).expect("ca.crt");
    let gate = GateProcess::start(dir);
    (ca, gate)
}

/// `curl` to `path` on the gate with the client pair in `DIR/NAME/` (if any) and
/// Basic credentials (if any): the HTTP status, or `Err(curl's exit code, stderr)`
/// when no HTTP answer came (a refused handshake).
fn curl(
    dir: &Path,
    addr: SocketAddr,
    pair: Option<&str>,
    creds: Option<&str>,
    path: &str,
) -> Result<u16, (i32, String)> {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(dir.join("certs/ca.crt"))
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", addr.port()));
    if let Some(name) = pair {
        let base = dir.join(name).join(name);
        command
            .arg("--cert")
            .arg(base.with_extension("cert"))
            .arg("--key")
            .arg(base.with_extension("key"));
    }
    if let Some(creds) = creds {
        command.args(["-u", creds]);
    }
    command.arg(format!("https://localhost:{}{path}", addr.port()));
    let out = command
        .output()
        .expect("curl runs (apt-get install -y curl)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match (out.status.code(), stdout.parse::<u16>()) {
        (Some(0), Ok(status)) => Ok(status),
        (code, _) => Err((
            code.unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )),
    }
}

/// curl's exit codes for a connection the gate ends during or just after the handshake:
/// 35 (TLS handshake failed), 55 (send failed), 56 (receive failed, e.g. "tlsv13 alert
/// certificate required"). Which one curl reports depends on timing: under TLS 1.3 the gate
/// judges the client certificate after curl has finished its side of the handshake.
const REFUSED_IN_HANDSHAKE: [i32; 3] = [35, 55, 56];

/// `result` is the gate refusing the TLS connection: no HTTP status, and a curl exit code of
/// [`REFUSED_IN_HANDSHAKE`] (not, say, 7 "couldn't connect" or 77 "bad CA file").
fn assert_refused(result: Result<u16, (i32, String)>, why: &str) {
    match result {
        Err((code, _)) if REFUSED_IN_HANDSHAKE.contains(&code) => {}
        other => panic!("{why}: expected a refused TLS connection, got {other:?}"),
    }
}

/// Waits (at most 5 s) until the gate has logged at least `n` access lines of
/// `user` with `status` (a line is written when its response body ends, which
/// may be just after the client has read it); returns how many there are.
fn wait_for_access(gate: &GateProcess, user: &str, status: u16, n: usize) -> usize {
    let count = || {
        access_lines(gate)
            .iter()
            .filter(|v| v["user"] == user && v["status"] == status)
            .count()
    };
    crate::support::process::poll(Duration::from_secs(5), Duration::from_millis(20), || {
        let found = count();
        (found >= n).then_some(found)
    })
    .unwrap_or_else(|| panic!("fewer than {n} {status} lines of {user}:\n{}", gate.log()))
}

/// The gate's JSON access lines.
fn access_lines(gate: &GateProcess) -> Vec<serde_json::Value> {
    gate.log()
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "access")
        .collect()
}

fn skopeo_push(
    dir: &Path,
    gate: &GateProcess,
    cert_dir: &str,
    repo: &str,
    extra: &[&str],
) -> crate::support::process::Run {
    let layout = dir.join(format!("layout-{cert_dir}-{}", repo.replace('/', "-")));
    let image = crate::support::oci::build_image(&layout, "v1", &[4096], 3);
    let dest = format!("docker://localhost:{}/{repo}:v1", gate.addr.port());
    let certs = dir.join(cert_dir);
    let mut args = vec!["--dest-cert-dir", certs.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    crate::support::skopeo::copy(&image.reference(), &dest, &args)
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_skopeo_pushes_with_a_client_certificate_as_its_cn_user() {
    let registry = tokio::task::spawn_blocking(crate::support::registry::Registry::start)
        .await
        .expect("registry");
    let dir = tempfile::tempdir().expect("tempdir");
    let (_ca, gate) = robot_gate(dir.path(), &registry.url(), "optional");
    let d = dir.path().to_path_buf();
    let gate = tokio::task::spawn_blocking(move || {
        // The robot's certificate, no credentials: pushed, as ci-robot (via its group).
        skopeo_push(&d, &gate, "ci-robot", "ci/app", &[]).expect_success();
        wait_for_access(&gate, "ci-robot", 201, 1);
        let lines = access_lines(&gate);
        let manifest = lines
            .iter()
            .find(|v| v["method"] == "PUT" && v["path"] == "/v2/ci/app/manifests/v1")
            .unwrap_or_else(|| panic!("no manifest PUT in:\n{}", gate.log()));
        assert_eq!(manifest["status"], 201, "{manifest}");
        assert_eq!(manifest["user"], "ci-robot", "{manifest}");
        assert_eq!(manifest["action"], "push", "{manifest}");

        // No certificate and no credentials: the usual challenge.
        let run = skopeo_push(&d, &gate, "no-cert", "ci/app", &[]).expect_failure();
        assert!(
            run.stderr.contains("authentication required") || run.stderr.contains("401"),
            "{}",
            run.stderr
        );

        // A certificate with the right CN (and issuer name) from another CA: the
        // gate refuses the handshake (the signature does not verify).
        let run = skopeo_push(&d, &gate, "intruder", "ci/app", &[]).expect_failure();
        assert!(run.stderr.contains("remote error: tls: "), "{}", run.stderr);

        // A robot the rules only let pull: 403 on push, and its pull works.
        let run = skopeo_push(&d, &gate, "reader-bot", "ci/other", &[]).expect_failure();
        assert!(
            run.stderr.contains("denied") || run.stderr.contains("403"),
            "{}",
            run.stderr
        );
        let inspect = crate::support::skopeo::inspect_raw(
            &format!("docker://localhost:{}/ci/app:v1", gate.addr.port()),
            &["--cert-dir", d.join("reader-bot").to_str().expect("utf-8")],
        )
        .expect_success();
        assert!(
            inspect.stdout.contains("schemaVersion"),
            "{}",
            inspect.stdout
        );
        gate
    })
    .await
    .expect("skopeo");
    wait_for_access(&gate, "reader-bot", 403, 1);
    assert!(
        access_lines(&gate)
            .iter()
            .any(|v| v["user"] == "reader-bot" && v["status"] == 403 && v["action"] == "push"),
        "a 403 push line for reader-bot:\n{}",
        gate.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_credentials_win_over_the_certificate_and_the_client_ca_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = crate::support::upstream::TestUpstream::start().await;
    let (_ca, gate) = robot_gate(dir.path(), &upstream.url(), "optional");
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    let gate = tokio::task::spawn_blocking(move || {
        let robot = Some("ci-robot");
        assert_eq!(
            curl(&d, addr, robot, None, "/v2/"),
            Ok(200),
            "certificate alone"
        );
        assert_eq!(
            curl(&d, addr, robot, Some("alice:wrong"), "/v2/"),
            Ok(401),
            "a wrong password stays 401 with a good certificate"
        );
        assert_eq!(curl(&d, addr, robot, Some("alice:pw"), "/v2/"), Ok(200));
        assert_eq!(
            curl(&d, addr, None, Some("alice:pw"), "/v2/"),
            Ok(200),
            "password alone"
        );
        assert_eq!(curl(&d, addr, None, None, "/v2/"), Ok(401), "neither");
        // A verified certificate without a CN names nobody: logged, then 401.
        assert_eq!(curl(&d, addr, Some("nameless"), None, "/v2/"), Ok(401));
        gate.wait_for_log(&["names no usable user"], Duration::from_secs(5));
        assert_refused(curl(&d, addr, Some("intruder"), None, "/v2/"), "another CA");

        // client_ca is watched: a new CA file trusts the intruder and no longer the robot.
        let intruder_ca = {
            // The intruder's CA is not on disk; trust a fresh CA and check the old robot
            // is refused from then on.
            RobotCa::new("replacement CA")
        };
        std::fs::write(d.join("ci-ca.new"), intruder_ca.cert.pem()).expect("write");
        std::fs::rename(d.join("ci-ca.new"), d.join("ci-ca.crt")).expect("rename");
        gate.wait_for_log(&["configuration reloaded"], Duration::from_secs(5));
        let refused = curl(&d, addr, robot, None, "/v2/");
        assert_refused(refused, "old CA no longer trusted");
        intruder_ca.client(&d.join("new-robot"), "new-robot", Some("ci-robot"));
        assert_eq!(curl(&d, addr, Some("new-robot"), None, "/v2/"), Ok(200));
        gate
    })
    .await
    .expect("curl");
    // The first robot, then the new CA's robot.
    wait_for_access(&gate, "ci-robot", 200, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_client_auth_required_refuses_the_handshake_without_a_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = crate::support::upstream::TestUpstream::start().await;
    let (_ca, gate) = robot_gate(dir.path(), &upstream.url(), "required");
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    tokio::task::spawn_blocking(move || {
        assert_eq!(curl(&d, addr, Some("ci-robot"), None, "/v2/"), Ok(200));
        for creds in [None, Some("alice:pw")] {
            let refused = curl(&d, addr, None, creds, "/v2/");
            assert_refused(refused, "no HTTP answer without a certificate");
        }
        // What the client is told: the certificate_required alert (RFC 8446
        // §4.4.2.4), which rustls sends on TLS 1.2 as well.
        for version in ["-tls1_3", "-tls1_2"] {
            let out = s_client(&d, addr, &[version]);
            assert!(
                out.contains("alert certificate required") && !out.contains("HTTP/1.1"),
                "{version}:\n{out}"
            );
        }
        assert_refused(curl(&d, addr, Some("intruder"), None, "/v2/"), "another CA");
    })
    .await
    .expect("curl");
}

#[test]
fn tls_check_config_names_a_bad_client_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(
        dir.path(),
        "http://127.0.0.1:9",
        "client_ca = \"ci-ca.crt\"",
        "",
    );
    for (content, want) in [
        (None, "No such file"),
        (Some("junk\n"), "BEGIN CERTIFICATE"),
    ] {
        if let Some(text) = content {
            std::fs::write(dir.path().join("ci-ca.crt"), text).expect("write");
        }
        let o = run(&["check-config"], dir.path());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(64), "{stderr}");
        assert!(
            stderr.contains("tls: client_ca file")
                && stderr.contains("ci-ca.crt")
                && stderr.contains(want),
            "{want}: {stderr}"
        );
    }
}

/// The claims of the token in a token endpoint's JSON answer.
fn token_claims(answer: &str) -> serde_json::Value {
    use base64::Engine as _;
    let json: serde_json::Value =
        serde_json::from_str(answer).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"));
    let token = json["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {answer}"));
    let payload = token.split('.').nth(1).expect("a JWS has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_the_token_endpoint_takes_the_certificate_as_the_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key =
        registry_gate::token::keys::generate_es256("registry-gate test token").expect("token key");
    std::fs::create_dir_all(dir.path()).expect("dir");
    // `extra` follows `[auth]`, so its first line is an `[auth]` key.
    let extra = format!(
        "mode = \"token\"\n[token]\nservice = \"registry.test\"\nkey = \"token.key\"\n\
         cert = \"token.crt\"\n{ROBOT_RULES}"
    );
    setup(
        dir.path(),
        "http://127.0.0.1:9",
        "client_ca = \"ci-ca.crt\"",
        &extra,
    );
    std::fs::write(dir.path().join("token.key"), &key.key_pem).expect("token.key");
    std::fs::write(dir.path().join("token.crt"), &key.cert_pem).expect("token.crt");
    let ca = RobotCa::new("CI robots CA");
    std::fs::write(dir.path().join("ci-ca.crt"), ca.cert.pem()).expect("ci-ca.crt");
    ca.client(&dir.path().join("ci-robot"), "ci-robot", Some("ci-robot"));
    let gate = GateProcess::start(dir.path());
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    tokio::task::spawn_blocking(move || {
        let get = |pair: Option<&str>, query: &str| {
            let mut command = Command::new("curl");
            command
                .args(["-sS", "--cacert"])
                .arg(d.join("certs/ca.crt"))
                .arg("--resolve")
                .arg(format!("localhost:{}:127.0.0.1", addr.port()));
            if let Some(name) = pair {
                let base = d.join(name).join(name);
                command
                    .arg("--cert")
                    .arg(base.with_extension("cert"))
                    .arg("--key")
                    .arg(base.with_extension("key"));
            }
            let url = format!("https://localhost:{}/auth?service=registry.test&{query}", addr.port());
            let out = command.arg(url).output().expect("curl runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let scope = "scope=repository:ci/app:pull,push";
        let claims = token_claims(&get(Some("ci-robot"), scope));
        assert_eq!(claims["sub"], "ci-robot", "{claims}");
        assert_eq!(
            claims["access"],
            serde_json::json!([{"type": "repository", "name": "ci/app", "actions": ["pull", "push"]}]),
            "{claims}"
        );
        // Without the certificate: anonymous, granted nothing.
        let claims = token_claims(&get(None, scope));
        assert_eq!(claims["sub"], "", "{claims}");
        assert_eq!(
            claims["access"],
            serde_json::json!([{"type": "repository", "name": "ci/app", "actions": []}]),
            "{claims}"
        );
        // An `account` that is not the certificate's user is refused.
        let answer = get(Some("ci-robot"), &format!("{scope}&account=alice"));
        assert!(!answer.contains("\"token\""), "{answer}");
    })
    .await
    .expect("curl");
    gate.wait_for_log(&["token issued", "ci-robot"], Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_a_resumed_session_keeps_its_certificate_user_until_the_client_ca_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = crate::support::upstream::TestUpstream::start().await;
    let (_ca, gate) = robot_gate(dir.path(), &upstream.url(), "optional");
    let (d, addr) = (dir.path().to_path_buf(), gate.addr);
    let gate = tokio::task::spawn_blocking(move || {
        let pair = [
            "-cert",
            "ci-robot/ci-robot.cert",
            "-key",
            "ci-robot/ci-robot.key",
        ];
        let first = s_client(&d, addr, &[&pair[..], &["-sess_out", "s.pem"]].concat());
        assert!(first.contains("HTTP/1.1 200"), "{first}");
        // Resumed without sending the certificate again: the ticket carries it.
        let resumed = s_client(&d, addr, &["-sess_in", "s.pem"]);
        assert!(
            resumed.contains("\nReused, ") && resumed.contains("HTTP/1.1 200"),
            "{resumed}"
        );
        // A new client CA voids the tickets made under the old one.
        std::fs::write(
            d.join("ci-ca.new"),
            RobotCa::new("replacement CA").cert.pem(),
        )
        .expect("write");
        std::fs::rename(d.join("ci-ca.new"), d.join("ci-ca.crt")).expect("rename");
        gate.wait_for_log(&["configuration reloaded"], Duration::from_secs(5));
        let after = s_client(&d, addr, &["-sess_in", "s.pem"]);
        assert!(
            after.contains("\nNew, ") && after.contains("HTTP/1.1 401"),
            "{after}"
        );
        gate
    })
    .await
    .expect("s_client");
    assert_eq!(
        wait_for_access(&gate, "ci-robot", 200, 2),
        2,
        "the full and the resumed handshake's requests:\n{}",
        gate.log()
    );
}
