//! Robot accounts end to end: the real binary makes them (`robot create|rotate|revoke`),
//! the real gate serves them, skopeo pushes with them into the real registry. A robot
//! does exactly its scope, in Basic and in token mode; expiry, revocation and the end
//! of a rotation's grace are in force within 2 s on fresh and kept connections.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::reload::{becomes, WITHIN};
use crate::support::blocking;
use crate::support::client::{assert_json_error, basic, KeptConnection, Proto};
use crate::support::eventually;
use crate::support::gate::{run, write_setup, GateProcess};
use crate::support::oci;
use crate::support::registry::Registry;
use crate::support::skopeo;
use crate::support::upstream::TestUpstream;

/// `registry-gate robot ARGS... --json` in `dir`: the user and secret it printed.
fn robot(dir: &Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["robot"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--file", "robots.jsonl", "--json"]);
    let out = run(&all, dir);
    assert!(
        out.status.success(),
        "robot {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let field = |k: &str| issued[k].as_str().expect(k).to_owned();
    (field("user"), field("secret"))
}

/// `registry-gate robot revoke NAME`.
fn revoke(dir: &Path, name: &str) {
    let out = run(&["robot", "revoke", name, "--file", "robots.jsonl"], dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The registry (2.8) answers an OCI manifest only to a client that accepts it.
fn manifest_status(registry: &Registry, repo: &str) -> u16 {
    crate::support::registry::request_head(
        registry.addr,
        "GET",
        &format!("/v2/{repo}/manifests/v1"),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
    )
    .expect("registry answers")
    .status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_robot_pushes_inside_its_scope_and_is_denied_outside_it_even_without_rules() {
    let registry = blocking(Registry::start).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // No [authz]: every htpasswd user may do everything; the robot still only its scope.
    write_setup(dir.path(), &registry.url(), "robots = \"robots.jsonl\"");
    let (user, secret) = robot(
        dir.path(),
        &["create", "ci", "--repo", "team/*", "--actions", "pull,push"],
    );
    assert_eq!(user, "robot$ci");
    let gate = GateProcess::start(dir.path());
    let (host, trust) = (
        format!("localhost:{}", gate.addr.port()),
        dir.path().join("certs/trust").display().to_string(),
    );
    let creds = format!("{user}:{secret}");
    let root = dir.path().to_owned();
    let registry = blocking(move || {
        let image = oci::build_image(&root.join("src"), "v1", &[64 * 1024], 3);
        let push = |repo: &str, creds: &str| {
            skopeo::copy(
                &image.reference(),
                &format!("docker://{host}/{repo}:v1"),
                &[
                    "--dest-creds",
                    creds,
                    "--dest-cert-dir",
                    &trust,
                    "--preserve-digests",
                ],
            )
        };
        push("team/app", &creds).expect_success();
        assert_eq!(manifest_status(&registry, "team/app"), 200);
        let refused = push("other/app", &creds).expect_failure();
        assert!(
            refused.stderr.contains("403 (Forbidden)") || refused.stderr.contains("denied"),
            "{}",
            refused.stderr
        );
        assert_eq!(
            manifest_status(&registry, "other/app"),
            404,
            "nothing stored"
        );
        // alice, a person, is not bounded by the robot's scope.
        push("other/app", "alice:pw").expect_success();
        // podman pulls with the robot's secret.
        let podman = crate::support::podman::Podman::new();
        let policy = podman.policy();
        let name = format!("{host}/team/app:v1");
        podman
            .run(&[
                "pull",
                "--signature-policy",
                &policy,
                "--cert-dir",
                &trust,
                "--creds",
                &creds,
                &name,
            ])
            .expect_success();
        // A Kubernetes pull secret: `kubectl create secret docker-registry` writes this
        // `.dockerconfigjson` (username, password and `auth` = base64 of `user:secret`),
        // which the node's runtime (CRI-O reads it with containers/image, as skopeo
        // does) hands the registry as Basic credentials.
        let authfile = root.join("dockerconfig.json");
        let auth = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&creds)
        };
        let (robot_user, robot_secret) = creds.split_once(':').expect("user:secret");
        let config = serde_json::json!({"auths": {&host: {
            "username": robot_user, "password": robot_secret, "auth": auth
        }}});
        std::fs::write(&authfile, config.to_string()).expect("auth file");
        skopeo::inspect_raw(
            &format!("docker://{host}/team/app:v1"),
            &[
                "--authfile",
                &authfile.display().to_string(),
                "--cert-dir",
                &trust,
            ],
        )
        .expect_success();
        registry
    })
    .await;
    drop(registry);
    let client = gate.client();
    let as_robot = |method: &str, path: &str| {
        client
            .request(Proto::H1, method, path)
            .header("authorization", basic(&user, &secret))
    };
    let catalog = client
        .send_empty(Proto::H1, as_robot("GET", "/v2/_catalog"))
        .await;
    assert_json_error(&catalog, 403, "DENIED", "a robot lists the catalog");
    let delete = as_robot("DELETE", "/v2/team/app/manifests/v1");
    let delete = client.send_empty(Proto::H1, delete).await;
    assert_json_error(&delete, 403, "DENIED", "a robot deletes without delete");
    let log = gate.wait_for_log(&["user=\"robot$ci\"", "status=403"], Duration::from_secs(5));
    assert!(log.contains("repository=\"other/app\""), "{log}");
    let (_, metrics) = gate.admin_get("/metrics");
    assert!(
        metrics.contains("registry_gate_machine_logins_total{kind=\"robot\",result=\"success\"}"),
        "{metrics}"
    );
}

/// The gate on a recording upstream with a robots file.
async fn robot_gate() -> (tempfile::TempDir, GateProcess, TestUpstream) {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        &upstream.url(),
        "robots = \"robots.jsonl\"\n[throttle]\nenabled = false",
    );
    std::fs::write(dir.path().join("robots.jsonl"), "").expect("empty robots file");
    let gate = GateProcess::start(dir.path());
    (dir, gate, upstream)
}

/// Polls one kept connection until `user`/`secret` on `/v2/` gets `want`.
async fn kept_becomes(conn: &mut KeptConnection, user: &str, secret: &str, want: u16) {
    let what = format!("{user} on the kept connection to get {want}");
    let conn = tokio::sync::Mutex::new(conn);
    eventually(&what, WITHIN, || async {
        let got = conn
            .lock()
            .await
            .get("/v2/", basic(user, secret))
            .await
            .status
            .as_u16();
        (got == want).then_some(()).ok_or(format!("still {got}"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_rotation_grace_and_expiry_apply_within_two_seconds_on_kept_connections() {
    let (dir, gate, _upstream) = robot_gate().await;
    let client = gate.client();
    let mut kept = client.keep_alive().await;
    let create = |name: &str, more: &[&str]| {
        let mut args = vec!["create", name, "--repo", "team/*", "--actions", "pull"];
        args.extend_from_slice(more);
        robot(dir.path(), &args)
    };
    let (ci, first) = create("ci", &[]);
    becomes(&client, &ci, &first, 200).await;
    kept_becomes(&mut kept, &ci, &first, 200).await;

    // Rotation with a grace period: both secrets work, then the old one stops.
    let rotated = tokio::time::Instant::now();
    let (_, second) = robot(dir.path(), &["rotate", "ci", "--grace", "3s"]);
    becomes(&client, &ci, &second, 200).await;
    kept_becomes(&mut kept, &ci, &first, 200).await;
    // The point: the grace passing. It ends 3 s after the rotation, rounded up to the
    // second (a grace is never shorter than asked), so within 1 s of this.
    tokio::time::sleep_until(rotated + Duration::from_secs(3)).await;
    kept_becomes(&mut kept, &ci, &first, 401).await;
    becomes(&client, &ci, &first, 401).await;
    kept_becomes(&mut kept, &ci, &second, 200).await;
    // Rotation without grace: the old secret stops at once.
    let (_, third) = robot(dir.path(), &["rotate", "ci"]);
    kept_becomes(&mut kept, &ci, &second, 401).await;
    kept_becomes(&mut kept, &ci, &third, 200).await;

    // Expiry: a robot made for 2 s is refused once they are over, kept connection or not.
    let (short, short_secret) = create("short", &["--expires", "2s"]);
    becomes(&client, &short, &short_secret, 200).await;
    kept_becomes(&mut kept, &short, &short_secret, 200).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // the point: its lifetime passing
    kept_becomes(&mut kept, &short, &short_secret, 401).await;
    becomes(&client, &short, &short_secret, 401).await;

    // Revocation.
    revoke(dir.path(), "ci");
    kept_becomes(&mut kept, &ci, &third, 401).await;
    becomes(&client, &ci, &third, 401).await;
    let log = gate.log();
    assert!(
        log.contains("robot short: expired at"),
        "the log says why: {log}"
    );
    assert!(
        !log.contains(&third) && !log.contains(&first),
        "never a secret in the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_robot_line_that_cannot_be_read_costs_only_that_robot() {
    let (dir, gate, _upstream) = robot_gate().await;
    let client = gate.client();
    let (ci, secret) = robot(
        dir.path(),
        &["create", "ci", "--repo", "x", "--actions", "pull"],
    );
    becomes(&client, &ci, &secret, 200).await;
    let path = dir.path().join("robots.jsonl");
    let text = std::fs::read_to_string(&path).expect("robots file");
    crate::support::gate::replace_file(
        &path,
        &format!("{{\"name\":\"broken\",\"repos\":[]}}\n{text}"),
    );
    gate.wait_for_log(
        &["robots file line ignored", "line 1: robot broken"],
        Duration::from_secs(5),
    );
    assert_eq!(crate::reload::status(&client, &ci, &secret).await, 200);
    let out = run(&["check-config", "--config", "proxy.toml"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("line 1: robot broken"),
        "check-config names it: {stderr}"
    );
}

/// `robot create` refuses what the robots file would refuse, before it writes: exit
/// 64, a message naming the flag, and the file untouched.
#[test]
fn robot_create_refuses_a_bad_scope_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    robot(
        dir.path(),
        &["create", "ci", "--repo", "team/*", "--actions", "pull"],
    );
    let before = std::fs::read(dir.path().join("robots.jsonl")).expect("robots file");
    for (args, says) in [
        (
            ["--repo", "team/*", "--actions", "push"],
            "--actions: push and delete need pull too",
        ),
        (
            ["--repo", "team/*", "--actions", "pull,admin"],
            "--actions: action \"admin\": the actions are pull, push and delete",
        ),
        (
            ["--repo", "Team/../x", "--actions", "pull"],
            "repository pattern",
        ),
    ] {
        let mut all = vec!["robot", "create", "other"];
        all.extend_from_slice(&args);
        all.extend_from_slice(&["--file", "robots.jsonl"]);
        let out = run(&all, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: no secret printed");
        let after = std::fs::read(dir.path().join("robots.jsonl")).expect("robots file");
        assert_eq!(after, before, "{args:?}: the file is untouched");
    }
}

/// `robot list` names each robot with its scope, times and rotation, and never a
/// secret (neither a shown one nor the stored hash); the file is 0600.
#[test]
fn robot_list_shows_scope_and_times_and_never_a_secret() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().expect("tempdir");
    let (_, first) = robot(
        dir.path(),
        &[
            "create",
            "ci",
            "--repo",
            "team/*",
            "--actions",
            "pull,push",
            "--description",
            "CI of team",
        ],
    );
    let (_, k8s) = robot(
        dir.path(),
        &[
            "create",
            "k8s",
            "--repo",
            "team/app",
            "--actions",
            "pull",
            "--no-expiry",
        ],
    );
    let (_, second) = robot(dir.path(), &["rotate", "ci", "--grace", "1h"]);
    let path = dir.path().join("robots.jsonl");
    let mode = std::fs::metadata(&path)
        .expect("robots file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "robots file mode {mode:o}");
    let out = run(&["robot", "list", "--file", "robots.jsonl"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = listed.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "USER",
            "SCOPE",
            "CREATED",
            "EXPIRES",
            "ROTATED",
            "DESCRIPTION"
        ]
    );
    let ci = rows
        .iter()
        .find(|r| r[0] == "robot$ci")
        .expect("robot$ci listed");
    assert_eq!(ci[1], "pull,push on team/*", "{listed}");
    assert!(
        ci[3].starts_with("20") && ci[3] != "never",
        "a 90-day default expiry: {listed}"
    );
    assert!(ci[4].contains("(old secret until "), "{listed}");
    assert_eq!(ci[5], "CI of team", "{listed}");
    let k = rows
        .iter()
        .find(|r| r[0] == "robot$k8s")
        .expect("robot$k8s listed");
    assert_eq!(
        (k[1], k[3], k[4]),
        ("pull on team/app", "never", "-"),
        "{listed}"
    );
    let stored = std::fs::read_to_string(&path).expect("robots file");
    for secret in [&first, &k8s, &second] {
        assert!(
            !listed.contains(secret.as_str()),
            "a secret listed:\n{listed}"
        );
        assert!(
            !stored.contains(secret.as_str()),
            "a secret stored in clear:\n{stored}"
        );
    }
    assert!(!listed.contains("rgr_"), "{listed}");
    for line in stored.lines() {
        let entry: Value = serde_json::from_str(line).expect("one JSON object a line");
        let hash = entry["secret"].as_str().expect("a stored secret");
        assert!(!listed.contains(hash), "the stored hash listed:\n{listed}");
    }
}

/// With `[ldap]`, robots are still the robots file's alone: a robot logs in while the
/// directory is down (it is never asked), and a robot name is never looked up in it.
#[tokio::test(flavor = "multi_thread")]
async fn with_ldap_a_robot_logs_in_while_the_directory_is_down() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A port that nothing listens on: the directory is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    std::fs::write(dir.path().join("ldap-bind"), "reader-pw\n").expect("bind password");
    write_setup(
        dir.path(),
        &upstream.url(),
        &format!(
            "robots = \"robots.jsonl\"\n[throttle]\nenabled = false\n\
             [ldap]\nurl = \"ldap://{closed}\"\nbind_dn = \"cn=reader,dc=example,dc=org\"\n\
             bind_password_file = \"ldap-bind\"\nbase = \"ou=people,dc=example,dc=org\"\n\
             filter = \"(&(uid=${{account}})(objectClass=inetOrgPerson))\"\n"
        ),
    );
    let (user, secret) = robot(
        dir.path(),
        &["create", "ci", "--repo", "team/*", "--actions", "pull"],
    );
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let status = |user: String, password: String| {
        let client = client.clone();
        async move {
            let req = client
                .request(Proto::H1, "GET", "/v2/")
                .header("authorization", basic(&user, &password));
            client.status_of(Proto::H1, req).await
        }
    };
    assert_eq!(
        status(user.clone(), secret.clone()).await,
        200,
        "the robot, directory down"
    );
    assert_eq!(
        status(user, "rgr_wrong".into()).await,
        401,
        "a wrong secret"
    );
    // An unknown robot is refused by the robots file, not handed to the directory.
    assert_eq!(
        status("robot$nobody".into(), secret).await,
        401,
        "an unknown robot"
    );
    // A person, whom only the directory knows, gets 503 while it is down: the one
    // attempt to reach it is theirs, none was the robots'.
    let person = status("dora".into(), "pw".into()).await;
    assert_eq!(person, 503, "a directory user with the directory down");
    gate.wait_for_log(&["LDAP connection failed"], Duration::from_secs(5));
    let log = gate.log();
    let attempts = log.matches("LDAP connection failed").count();
    assert_eq!(
        attempts, 1,
        "only the person's login asked the directory:\n{log}"
    );
}
