//! Whom you remove is out, whatever else is wrong with the files. The real
//! binary, an htpasswd file with unusable lines from the start, users added and
//! removed while it runs: each change is in force within 2 s on fresh connections and
//! on a keep-alive connection that had been let in (its login cache included), also
//! when the same reload meets a garbage certificate or a broken proxy.toml.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::client::{basic, Client, KeptConnection};
use crate::support::eventually;
use crate::support::gate::{replace_file, write_setup, GateProcess, BIN};
use crate::support::upstream::TestUpstream;
// The spec's 2 s bound and the fresh-connection polling are reload.rs's.
use crate::reload::{becomes, status, WITHIN};

/// Two lines the gate cannot use: a scheme it does not read, and no colon.
const UNUSABLE: &str = "old:{SMD5}abcdefgh\nstray line without a colon\n";

/// `user:bcrypt(password)` lines (cost 4).
fn lines(users: &[(&str, &str)]) -> String {
    users
        .iter()
        .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("hash")))
        .collect()
}

/// Replaces the htpasswd file (atomically): the unusable lines, then `users`.
fn write_users_with_unusable_lines(dir: &Path, users: &[(&str, &str)]) {
    replace_file(
        &dir.join("htpasswd"),
        &format!("{UNUSABLE}{}", lines(users)),
    );
}

/// A gate in front of a recording upstream, throttle off (the polls below fail
/// logins on purpose), whose htpasswd file has the two unusable lines, alice and bob.
async fn start() -> (tempfile::TempDir, GateProcess, TestUpstream) {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &upstream.url(), "[throttle]\nenabled = false");
    write_users_with_unusable_lines(dir.path(), &[("alice", "pw-a"), ("bob", "pw-b")]);
    let gate = GateProcess::start(dir.path());
    (dir, gate, upstream)
}

/// [`becomes`] on one kept connection.
async fn becomes_on(conn: &mut KeptConnection, user: &str, password: &str, want: u16) {
    let what = format!("{user} on the kept connection to get {want} after the change");
    let conn = tokio::sync::Mutex::new(conn);
    eventually(&what, WITHIN, || async {
        let got = conn
            .lock()
            .await
            .get("/v2/", basic(user, password))
            .await
            .status
            .as_u16();
        (got == want).then_some(()).ok_or(format!("still {got}"))
    })
    .await;
}

/// `registry-gate htpasswd add --file FILE USER` with the password on stdin.
fn htpasswd_add(file: &Path, user: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["htpasswd", "add", "--cost", "4", "--file"])
        .arg(file)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run registry-gate htpasswd add");
    let mut stdin = child.stdin.take().expect("piped stdin");
    writeln!(stdin, "{password}").expect("write the password");
    drop(stdin);
    child.wait_with_output().expect("wait for htpasswd add")
}

/// The value of a metric line in the admin listener's `/metrics`.
fn metric(gate: &GateProcess, name: &str) -> String {
    let (_, text) = gate.admin_get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn users_added_and_removed_apply_within_two_seconds_despite_unusable_lines() {
    let (dir, gate, _upstream) = start().await;
    for line in [
        "htpasswd:1: unsupported hash scheme",
        "htpasswd:2: missing ':'",
    ] {
        let logged = gate.wait_for_log(&["htpasswd line ignored", line], WITHIN);
        assert!(logged.contains("WARN"), "{logged}");
        assert!(!logged.contains("abcdefgh"), "never the hash: {logged}");
    }
    assert_eq!(metric(&gate, "registry_gate_htpasswd_ignored_lines"), "2");
    let client = gate.client();
    assert_eq!(status(&client, "alice", "pw-a").await, 200);

    // bob's keep-alive connection: let in, then from the login cache.
    let mut kept = client.keep_alive().await;
    for _ in 0..2 {
        let answer = kept.get("/v2/", basic("bob", "pw-b")).await;
        assert_eq!(answer.status, 200);
    }

    // A user added by the gate's own command, into the file with the bad lines.
    let o = htpasswd_add(&dir.path().join("htpasswd"), "carol", "pw-c");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("added user \"carol\""), "{stderr}");
    assert!(
        stderr.contains("htpasswd:1: unsupported hash scheme"),
        "{stderr}"
    );
    assert!(stderr.contains("htpasswd:2: missing ':'"), "{stderr}");
    becomes(&client, "carol", "pw-c", 200).await;

    // bob removed (the unusable lines stay): out on a fresh connection and on his
    // open one, whose next request takes the new state and its empty login cache.
    let text = std::fs::read_to_string(dir.path().join("htpasswd")).expect("read");
    let without_bob: String = text
        .lines()
        .filter(|l| !l.starts_with("bob:"))
        .map(|l| format!("{l}\n"))
        .collect();
    replace_file(&dir.path().join("htpasswd"), &without_bob);
    becomes(&client, "bob", "pw-b", 401).await;
    becomes_on(&mut kept, "bob", "pw-b", 401).await;
    // The same connection still serves the users who remain.
    assert_eq!(kept.get("/v2/", basic("alice", "pw-a")).await.status, 200);
    assert_eq!(status(&client, "carol", "pw-c").await, 200);
    assert!(!gate.log().contains("reload failed"), "{}", gate.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garbage_certificate_does_not_keep_a_removed_user() {
    let (dir, gate, _upstream) = start().await;
    let client = gate.client();
    let served_before = presented_certificate(&client).await;
    assert_eq!(status(&client, "bob", "pw-b").await, 200);
    let mut kept = client.keep_alive().await;
    assert_eq!(kept.get("/v2/", basic("bob", "pw-b")).await.status, 200);

    replace_file(&dir.path().join("certs/server.crt"), "garbage\n");
    write_users_with_unusable_lines(dir.path(), &[("alice", "pw-a")]);
    becomes(&client, "bob", "pw-b", 401).await;
    becomes_on(&mut kept, "bob", "pw-b", 401).await;
    let line = gate.wait_for_log(&["reload failed", "key=\"tls.cert\""], WITHIN);
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("server.crt"), "{line}");
    // Still serving, with the certificate it had.
    assert_eq!(status(&client, "alice", "pw-a").await, 200);
    assert_eq!(presented_certificate(&client).await, served_before);
    assert_eq!(metric(&gate, "registry_gate_last_reload_success"), "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_config_file_does_not_keep_a_removed_user() {
    let (dir, gate, _upstream) = start().await;
    let client = gate.client();
    assert_eq!(status(&client, "bob", "pw-b").await, 200);

    let config = dir.path().join("proxy.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    replace_file(&config, &format!("{text}\n[auth]\nrealm = 7\n"));
    write_users_with_unusable_lines(dir.path(), &[("alice", "pw-a")]);
    becomes(&client, "bob", "pw-b", 401).await;
    let line = gate.wait_for_log(&["reload failed", "proxy.toml"], WITHIN);
    assert!(line.contains("ERROR"), "{line}");
    assert_eq!(status(&client, "alice", "pw-a").await, 200);
}

/// The DER certificate the gate presents to a new connection.
async fn presented_certificate(client: &Client) -> Vec<u8> {
    let tls = client.connect_raw().await;
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .expect("the gate presents a certificate");
    certs[0].as_ref().to_vec()
}
