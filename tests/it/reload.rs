//! Live reload of the real binary: htpasswd changes apply within 2 s through the
//! file watcher (cache invalidated), a broken line costs only its own user and is
//! logged, and SIGHUP reloads the config when watching is off.

use std::time::Duration;

use crate::support::client::{Client, Proto};
use crate::support::eventually;
use crate::support::gate::{replace_file, write_setup, write_users, GateProcess};
use crate::support::upstream::TestUpstream;

/// The spec: a change is in force within this long.
pub(crate) const WITHIN: Duration = Duration::from_secs(2);

pub(crate) async fn status(client: &Client, user: &str, password: &str) -> u16 {
    let req = client.request_as(Proto::H1, "GET", "/v2/", user, password);
    client.status_of(Proto::H1, req).await
}

/// Polls until `user`/`password` gets `want`, for at most [`WITHIN`].
pub(crate) async fn becomes(client: &Client, user: &str, password: &str, want: u16) {
    let what = format!("{user}/{password} to get {want} after the change");
    eventually(&what, WITHIN, || async {
        let got = status(client, user, password).await;
        (got == want).then_some(()).ok_or(format!("still {got}"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn htpasswd_changes_apply_within_two_seconds() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The polling below makes many failed logins on purpose; the throttle would
    // (rightly) answer them 429.
    write_setup(dir.path(), &upstream.url(), "[throttle]\nenabled = false");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    assert_eq!(status(&client, "alice", "pw").await, 200);
    assert_eq!(status(&client, "bob", "pw2").await, 401);

    // A user added.
    write_users(dir.path(), &[("alice", "pw"), ("bob", "pw2")]);
    becomes(&client, "bob", "pw2", 200).await;

    // A password changed: the cached old one stops working.
    write_users(dir.path(), &[("alice", "new"), ("bob", "pw2")]);
    becomes(&client, "alice", "pw", 401).await;
    assert_eq!(status(&client, "alice", "new").await, 200);

    // A user removed.
    write_users(dir.path(), &[("bob", "pw2")]);
    becomes(&client, "alice", "new", 401).await;

    // A file with a broken line: as at start, the line costs only its own user
    // (bob is out), the rest applies (carol is in), and the warning names the line.
    let good = bcrypt::hash("pw3", 4).expect("hash");
    replace_file(
        &dir.path().join("htpasswd"),
        &format!("carol:{good}\nbob:$2y$05$truncated\n"),
    );
    becomes(&client, "carol", "pw3", 200).await;
    let line = gate.wait_for_log(&["htpasswd line ignored", "htpasswd:2"], WITHIN);
    assert!(line.contains("malformed bcrypt hash"), "{line}");
    assert!(line.contains("WARN"), "{line}");
    assert!(!line.contains("truncated"), "never the hash: {line}");
    assert_eq!(
        status(&client, "bob", "pw2").await,
        401,
        "bob's line is unusable"
    );
    assert!(!gate.log().contains("reload failed"), "{}", gate.log());

    // Fixed again: applies.
    write_users(dir.path(), &[("bob", "pw2")]);
    becomes(&client, "bob", "pw2", 200).await;
    assert_eq!(status(&client, "carol", "pw3").await, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_config_when_watching_is_off() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        &upstream.url(),
        "[reload]\nwatch_interval = \"0s\"",
    );
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let challenge = || async {
        let req = client.request(Proto::H1, "GET", "/v2/");
        client
            .send_empty(Proto::H1, req)
            .await
            .one("www-authenticate")
    };
    assert_eq!(challenge().await, "Basic realm=\"Registry realm\"");

    let config = dir.path().join("proxy.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let renamed = text.replace(
        "htpasswd = \"htpasswd\"",
        "htpasswd = \"htpasswd\"\nrealm = \"Renamed\"",
    );
    replace_file(&config, &renamed);
    gate.signal("HUP");
    gate.wait_for_log(&["configuration reloaded"], Duration::from_secs(10));
    assert_eq!(challenge().await, "Basic realm=\"Renamed\"");

    // A broken config on SIGHUP: the error names the line; the last good config
    // applies again.
    replace_file(&config, &format!("{renamed}\n[auth]\nrealm = 7\n"));
    gate.signal("HUP");
    let line = gate.wait_for_log(&["reload failed", "line "], Duration::from_secs(10));
    assert!(line.contains("proxy.toml"), "{line}");
    assert_eq!(challenge().await, "Basic realm=\"Renamed\"");
}
