//! LDAP sign-in against a real OpenLDAP `slapd` (started by the test on loopback):
//! logins, refusals, filter injection, TLS, groups feeding the rules with a real
//! skopeo push, caching counted in slapd's own log, and a directory outage.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::blocking;
use crate::support::client::assert_json_error;
use crate::support::client::{basic, Proto};
use crate::support::gate::{write_setup, GateProcess, BIN};
use crate::support::oci;
use crate::support::proxy::TestProxy;
use crate::support::registry::Registry;
use crate::support::skopeo;
use crate::support::slapd::{self, Slapd};
use crate::support::upstream::TestUpstream;

const ALICE_DN: &str = "uid=alice,ou=people,dc=example,dc=org";
const BOB_DN: &str = "uid=bob,ou=people,dc=example,dc=org";
/// What slapd logs for a search under the groups.
const GROUP_SEARCH: &str = "SRCH base=\"ou=groups,dc=example,dc=org\"";

/// The `[ldap]` section for `slapd` at `url`, searching as the reader; `extra` lines appended.
fn ldap_section(dir: &std::path::Path, url: &str, extra: &str) -> String {
    std::fs::write(
        dir.join("ldap-bind"),
        format!("{}\n", slapd::READER_PASSWORD),
    )
    .expect("write bind password");
    format!(
        "[ldap]\nurl = \"{url}\"\nbind_dn = \"{}\"\nbind_password_file = \"{}\"\n\
         base = \"{}\"\nfilter = \"(&(uid=${{account}})(objectClass=inetOrgPerson))\"\n{extra}\n",
        slapd::READER_DN,
        dir.join("ldap-bind").display(),
        slapd::PEOPLE,
    )
}

/// A gate in front of `upstream` with `[ldap]` for `url`, plus htpasswd user `hank`.
async fn gate(upstream: String, url: &str, ldap_extra: &str, toml: &str) -> TestProxy {
    let files = tempfile::tempdir().expect("tempdir");
    let section = ldap_section(files.path(), url, ldap_extra);
    let proxy = TestProxy::builder(upstream)
        .user("hank", "hank-pw")
        .toml(&format!("{section}\n{toml}"))
        .start()
        .await;
    // The bind password file is read at start; the temp dir may go.
    drop(files);
    proxy
}

async fn status(proxy: &TestProxy, method: &str, path: &str, user: &str, password: &str) -> u16 {
    let client = proxy.client();
    let req = client.request_as(Proto::H1, method, path, user, password);
    client.status_of(Proto::H1, req).await
}

/// `BIND` attempts (successful or not) for `dn` in slapd's log.
fn bind_attempts(slapd: &Slapd, dn: &str) -> usize {
    let needle = format!("BIND dn=\"{dn}\" method=128");
    slapd.log().lines().filter(|l| l.contains(&needle)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_users_sign_in_and_everything_else_is_refused() {
    let directory = blocking(Slapd::start).await;
    let upstream = TestUpstream::start().await;
    let proxy = gate(upstream.url(), &directory.ldap_url(), "", "").await;

    assert_eq!(
        status(&proxy, "GET", "/v2/", "alice", "alice-pw").await,
        200
    );
    assert_eq!(status(&proxy, "GET", "/v2/", "alice", "wrong").await, 401);
    assert_eq!(
        status(&proxy, "GET", "/v2/", "nobody", "alice-pw").await,
        401
    );
    // The htpasswd user is decided by the file, never asked of the directory.
    assert_eq!(status(&proxy, "GET", "/v2/", "hank", "hank-pw").await, 200);
    assert_eq!(status(&proxy, "GET", "/v2/", "hank", "wrong").await, 401);
    assert!(!directory.log().contains("uid=hank"), "hank was searched");

    // An empty password never reaches a bind (it would be an unauthenticated bind).
    let before = bind_attempts(&directory, BOB_DN);
    assert_eq!(status(&proxy, "GET", "/v2/", "bob", "").await, 401);
    assert_eq!(bind_attempts(&directory, BOB_DN), before);

    // Filter metacharacters are escaped: they match no entry, whatever the password.
    for name in ["*", "a*", ")(uid=*", "*)(|(uid=*", "alice)(uid=*", "\\2a"] {
        assert_eq!(
            status(&proxy, "GET", "/v2/", name, "alice-pw").await,
            401,
            "{name}"
        );
    }
    let log = directory.log();
    assert!(
        log.contains("(uid=\\2A)") || log.contains("(uid=\\2a)"),
        "escaped star searched:\n{log}"
    );
    assert!(
        !log.contains("(uid=*)"),
        "a raw wildcard reached the directory"
    );

    // Two entries for one name: refused even with the right password.
    assert_eq!(status(&proxy, "GET", "/v2/", "twin", "twin-pw").await, 401);
    assert!(
        !directory.log().contains("BIND dn=\"uid=twin"),
        "an ambiguous user was bound"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_requests_cost_one_user_bind_and_a_password_loop_stops_at_the_throttle() {
    let directory = blocking(Slapd::start).await;
    let upstream = TestUpstream::start().await;
    let proxy = gate(upstream.url(), &directory.ldap_url(), "", "").await;
    for _ in 0..50 {
        assert_eq!(
            status(&proxy, "GET", "/v2/", "alice", "alice-pw").await,
            200
        );
    }
    assert_eq!(directory.count_binds(ALICE_DN), 1, "{}", directory.log());
    // The search connection binds once (pooled), not once per request.
    let reader = directory.count_binds(slapd::READER_DN);
    assert!((1..=4).contains(&reader), "reader binds: {reader}");

    // A broken CI job retrying a wrong password: the throttle (10 per user by default)
    // answers 429 before the directory sees more than that.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(status(&proxy, "GET", "/v2/", "bob", "stale-password").await);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let attempts = bind_attempts(&directory, BOB_DN);
    assert!((1..=10).contains(&attempts), "bob's binds: {attempts}");
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_and_ldaps_verify_the_directory_certificate() {
    let directory = blocking(Slapd::start).await;
    let upstream = TestUpstream::start().await;
    let ca = directory.ca_pem_path();
    let starttls = gate(
        upstream.url(),
        &directory.ldap_url_localhost(),
        &format!("starttls = true\nca = \"{}\"", ca.display()),
        "",
    )
    .await;
    assert_eq!(
        status(&starttls, "GET", "/v2/", "alice", "alice-pw").await,
        200
    );
    assert_eq!(status(&starttls, "GET", "/v2/", "alice", "nope").await, 401);

    let ldaps = gate(
        upstream.url(),
        &directory.ldaps_url(),
        &format!("ca = \"{}\"", ca.display()),
        "",
    )
    .await;
    assert_eq!(
        status(&ldaps, "GET", "/v2/", "carol", "carol-pw").await,
        200
    );

    // Without the test CA the certificate is not trusted: no password is sent, and the
    // client is told to retry (503), not that its password is wrong.
    let untrusted = gate(upstream.url(), &directory.ldaps_url(), "", "").await;
    let client = untrusted.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("carol", "carol-pw"));
    let answer = client.send_empty(Proto::H1, req).await;
    assert_json_error(
        &answer,
        503,
        "UNAVAILABLE",
        "untrusted directory certificate",
    );
    assert_eq!(answer.one("retry-after"), "30");
    assert_eq!(
        answer.one("docker-distribution-api-version"),
        "registry/2.0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_groups_decide_who_pushes_with_a_real_skopeo() {
    let directory = blocking(Slapd::start).await;
    let registry = blocking(Registry::start).await;
    let proxy = gate(
        registry.url(),
        &directory.ldap_url(),
        &format!("group_base = \"{}\"", slapd::GROUPS),
        "[authz]\npush_group = \"pushers\"\n",
    )
    .await;
    let (host, trust) = (proxy.authority(), proxy.trust_dir());
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    blocking(move || {
        let image = oci::build_image(&root.join("src"), "v1", &[64 * 1024], 11);
        let push = |creds: &str| {
            skopeo::copy(
                &image.reference(),
                &format!("docker://{host}/team/app:v1"),
                &[
                    "--dest-creds",
                    creds,
                    "--dest-cert-dir",
                    &trust,
                    "--preserve-digests",
                ],
            )
        };
        // carol is in devs, not pushers: denied.
        let refused = push("carol:carol-pw").expect_failure();
        assert!(
            refused.stderr.contains("denied") || refused.stderr.contains("DENIED"),
            "{}",
            refused.stderr
        );
        // alice is in pushers (found by the group search): stored.
        push("alice:alice-pw").expect_success();
        // carol pulls it.
        skopeo::copy(
            &format!("docker://{host}/team/app:v1"),
            &format!("oci:{}:v1", root.join("pulled").display()),
            &["--src-creds", "carol:carol-pw", "--src-cert-dir", &trust],
        )
        .expect_success();
    })
    .await;
    assert!(
        directory.log().contains(GROUP_SEARCH),
        "no group search ran"
    );
    // The same refusal at the HTTP level: 403 with the registry's JSON error.
    let client = proxy.client();
    let req = client
        .request(Proto::H1, "DELETE", "/v2/team/app/manifests/v1")
        .header("authorization", basic("carol", "carol-pw"));
    let answer = client.send_empty(Proto::H1, req).await;
    assert_json_error(&answer, 403, "DENIED", "carol deletes a manifest");
}

#[tokio::test(flavor = "multi_thread")]
async fn member_of_attribute_supplies_groups_without_a_group_search() {
    let directory = blocking(Slapd::start).await;
    let upstream = TestUpstream::start().await;
    let rules = "[authz]\nrules = [\n\
                 { group = \"devs\", name = \"**\", actions = [\"pull\"] },\n]\n";
    let proxy = gate(
        upstream.url(),
        &directory.ldap_url(),
        "group_attribute = \"memberOf\"",
        rules,
    )
    .await;
    assert_eq!(
        status(&proxy, "GET", "/v2/app/manifests/v1", "carol", "carol-pw").await,
        200
    );
    assert_eq!(
        status(&proxy, "GET", "/v2/app/manifests/v1", "bob", "bob-pw").await,
        403
    );
    assert_eq!(
        status(&proxy, "PUT", "/v2/app/manifests/v1", "carol", "carol-pw").await,
        403
    );
    assert!(
        !directory.log().contains(GROUP_SEARCH),
        "a group search ran"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn group_attribute_holding_names_takes_its_values_as_they_are() {
    // docker_auth's labels without parse_cn, such as seed 004's gidNumber: here the
    // surname, which is no DN (so "dns" would find no group in it).
    let directory = blocking(Slapd::start).await;
    let upstream = TestUpstream::start().await;
    let rules = "[authz]\nrules = [\n\
                 { group = \"Carol\", name = \"**\", actions = [\"pull\"] },\n]\n";
    let proxy = gate(
        upstream.url(),
        &directory.ldap_url(),
        "group_attribute = \"sn\"\ngroup_attribute_holds = \"names\"",
        rules,
    )
    .await;
    assert_eq!(
        status(&proxy, "GET", "/v2/app/manifests/v1", "carol", "carol-pw").await,
        200
    );
    assert_eq!(
        status(&proxy, "GET", "/v2/app/manifests/v1", "bob", "bob-pw").await,
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_outage_keeps_cached_users_and_answers_503_to_the_rest() {
    let mut directory = blocking(Slapd::start).await;
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::builder(upstream.url())
        .auth_keys("cache_ttl = \"1s\"")
        .toml(&ldap_section(
            &tempfile::tempdir().expect("tempdir").keep(),
            &directory.ldap_url(),
            &format!(
                "group_base = \"{}\"\noutage_grace = \"1h\"\nretry_after = \"7s\"",
                slapd::GROUPS
            ),
        ))
        .start()
        .await;
    assert_eq!(
        status(&proxy, "GET", "/v2/", "alice", "alice-pw").await,
        200
    );

    directory = blocking(move || {
        directory.stop();
        directory
    })
    .await;
    // alice's login is cached: served while the directory is down.
    assert_eq!(
        status(&proxy, "GET", "/v2/", "alice", "alice-pw").await,
        200
    );
    // Past the cache TTL, within the outage grace: still served. Wall-clock time, as the
    // passage of the 1 s TTL is the point and a real slapd rules out paused time.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        status(&proxy, "GET", "/v2/", "alice", "alice-pw").await,
        200
    );
    // bob was never verified: 503 with Retry-After, not 401 (no password prompt).
    let client = proxy.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("bob", "bob-pw"));
    let answer = client.send_empty(Proto::H1, req).await;
    assert_json_error(
        &answer,
        503,
        "UNAVAILABLE",
        "bob while the directory is down",
    );
    assert_eq!(answer.one("retry-after"), "7");
    // A wrong password for alice is not let in by the grace.
    assert_eq!(status(&proxy, "GET", "/v2/", "alice", "wrong").await, 503);

    let directory = blocking(move || {
        directory.restart();
        directory
    })
    .await;
    assert_eq!(status(&proxy, "GET", "/v2/", "bob", "bob-pw").await, 200);
    assert_eq!(status(&proxy, "GET", "/v2/", "alice", "wrong").await, 401);
    drop(directory);
}

#[tokio::test(flavor = "multi_thread")]
async fn ldap_test_command_shows_the_steps_and_metrics_count_operations() {
    let directory = blocking(Slapd::start).await;
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let section = ldap_section(
        dir.path(),
        &directory.ldap_url(),
        &format!("group_base = \"{}\"", slapd::GROUPS),
    );
    write_setup(dir.path(), &upstream.url(), &section);

    let workdir = dir.path().to_path_buf();
    let ldap_test = move |user: &str, password: &str| {
        let mut child = Command::new(BIN)
            .args(["ldap", "test", user])
            .current_dir(&workdir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ldap test");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write password");
        child.wait_with_output().expect("ldap test output")
    };
    let ok = blocking({
        let ldap_test = ldap_test.clone();
        move || ldap_test("alice", "alice-pw")
    })
    .await;
    let out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains(&format!("found {ALICE_DN}")), "{out}");
    assert!(out.contains("password accepted"), "{out}");
    assert!(out.contains("devs, pushers"), "{out}");
    assert!(out.contains(" ms "), "timings: {out}");

    // Another spelling finds the same entry and signs in under its account name.
    let variant = blocking({
        let ldap_test = ldap_test.clone();
        move || ldap_test("CAROL", "carol-pw")
    })
    .await;
    let out = String::from_utf8_lossy(&variant.stdout).into_owned();
    assert!(variant.status.success(), "{out}");
    assert!(out.contains("(uid \"carol\")"), "{out}");
    assert!(out.contains("account name \"carol\""), "{out}");
    assert!(out.contains("result: carol may sign in"), "{out}");
    // `ALICE` finds the directory's alice, but alice is an htpasswd user (write_setup):
    // a directory login never takes an htpasswd user's name.
    let shadowed = blocking({
        let ldap_test = ldap_test.clone();
        move || ldap_test("ALICE", "alice-pw")
    })
    .await;
    let out = String::from_utf8_lossy(&shadowed.stdout).into_owned();
    assert_eq!(shadowed.status.code(), Some(1), "{out}");
    assert!(out.contains("alice is an auth.htpasswd user"), "{out}");

    let bad = blocking(move || ldap_test("alice", "wrong")).await;
    let out = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(out.contains("refused"), "{out}");

    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("carol", "carol-pw"));
    assert_eq!(client.send_empty(Proto::H1, req).await.status, 200);
    let (code, metrics) = gate.admin_get("/metrics");
    assert_eq!(code, 200);
    for needle in [
        "registry_gate_ldap_operations_total{op=\"bind\",result=\"ok\"} 1",
        "registry_gate_ldap_operations_total{op=\"search\",result=\"ok\"} 2",
        "registry_gate_ldap_duration_seconds_count{op=\"search\"} 2",
    ] {
        assert!(metrics.contains(needle), "{needle} missing:\n{metrics}");
    }
    drop(directory);
}

#[tokio::test(flavor = "multi_thread")]
async fn ldap_alone_without_htpasswd_and_its_section_reloads() {
    let directory = blocking(Slapd::start).await;
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &upstream.url(), "");
    // No [auth] section and no htpasswd at all, and first a filter no user matches.
    let text = std::fs::read_to_string(dir.path().join("proxy.toml")).expect("config");
    let head = text.split("[auth]").next().expect("sections").to_string();
    let config = |filter: &str| {
        let section = ldap_section(dir.path(), &directory.ldap_url(), "")
            .replace("(&(uid=${account})(objectClass=inetOrgPerson))", filter);
        format!("{head}\n{section}")
    };
    std::fs::write(
        dir.path().join("proxy.toml"),
        config("(&(uid=${account})(objectClass=posixAccount))"),
    )
    .expect("write config");
    let checked = crate::support::gate::run(&["check-config"], dir.path());
    let printed = String::from_utf8_lossy(&checked.stdout).into_owned();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        printed.contains("[ldap]") && printed.contains("outage_grace"),
        "{printed}"
    );
    assert!(
        !printed.contains(slapd::READER_PASSWORD),
        "the bind password was printed"
    );

    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let get = |user: &'static str, password: &'static str| {
        let client = client.clone();
        async move {
            let req = client
                .request(Proto::H1, "GET", "/v2/")
                .header("authorization", basic(user, password));
            client.send_empty(Proto::H1, req).await.status.as_u16()
        }
    };
    assert_eq!(
        get("alice", "alice-pw").await,
        401,
        "posixAccount matches nobody"
    );
    crate::support::gate::replace_file(
        &dir.path().join("proxy.toml"),
        &config("(&(uid=${account})(objectClass=inetOrgPerson))"),
    );
    gate.wait_for_log(&["configuration reloaded"], Duration::from_secs(5));
    assert_eq!(get("alice", "alice-pw").await, 200);

    // A broken [ldap] keeps the running one and names the key.
    crate::support::gate::replace_file(&dir.path().join("proxy.toml"), &config("(uid=${user})"));
    gate.wait_for_log(&["reload failed", "ldap.filter"], Duration::from_secs(5));
    assert_eq!(get("alice", "alice-pw").await, 200);
    drop(directory);
}

/// Account names as the directory spells them: the directory matches `uid` ignoring case and
/// surrounding spaces, so the identity must be the entry's account name, not the
/// spelling typed; else `MALLORY` escapes a deny rule for `mallory` while keeping
/// mallory's groups (`devs`, which may pull `secret/**`).
#[tokio::test(flavor = "multi_thread")]
async fn regression_name_variants_are_the_directory_account() {
    let directory = blocking(Slapd::start).await;
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let section = ldap_section(
        dir.path(),
        &directory.ldap_url(),
        &format!("group_base = \"{}\"", slapd::GROUPS),
    );
    let rules = "[authz]\nrules = [\n\
                 { account = \"mallory\", actions = [] },\n\
                 { group = \"devs\", name = \"secret/**\", actions = [\"pull\"] },\n]\n";
    write_setup(dir.path(), &upstream.url(), &format!("{section}\n{rules}"));
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let pull = |user: &str, password: &str, tag: &str| {
        let client = client.clone();
        let req = client
            .request(Proto::H1, "GET", &format!("/v2/secret/app/manifests/{tag}"))
            .header("authorization", basic(user, password));
        async move { client.send_empty(Proto::H1, req).await.status.as_u16() }
    };
    // The group rule does let devs pull: carol (in devs) gets the manifest.
    assert_eq!(pull("carol", "carol-pw", "control").await, 200);

    for (i, name) in ["mallory", "MALLORY", " mallory", "mallory ", "MaLlOrY"]
        .into_iter()
        .enumerate()
    {
        let tag = format!("variant{i}");
        assert_eq!(pull(name, "mallory-pw", &tag).await, 403, "{name:?}");
        let line = gate.wait_for_log(
            &[&format!("path=\"/v2/secret/app/manifests/{tag}\"")],
            Duration::from_secs(5),
        );
        assert!(line.contains("user=\"mallory\""), "{name:?}: {line}");
        assert!(line.contains("status=403"), "{name:?}: {line}");
        // A second request with the same spelling is a cached login: still mallory.
        let again = format!("again{i}");
        assert_eq!(
            pull(name, "mallory-pw", &again).await,
            403,
            "{name:?} cached"
        );
        let line = gate.wait_for_log(
            &[&format!("path=\"/v2/secret/app/manifests/{again}\"")],
            Duration::from_secs(5),
        );
        assert!(line.contains("user=\"mallory\""), "{name:?} cached: {line}");
    }
    // A wrong password stays 401 whatever the spelling.
    assert_eq!(pull("MALLORY", "wrong", "wrong").await, 401);

    // An entry with two account names (uid: dana, uid: dana.alt) has no identity.
    assert_eq!(pull("dana", "dana-pw", "dana").await, 401);
    gate.wait_for_log(
        &["not exactly one account name", "uid=dana"],
        Duration::from_secs(5),
    );
    drop(directory);
}

/// The same for tokens: a token issued to `MALLORY` names `mallory` (`sub`), so the rules
/// for mallory apply to it, and its refresh grant (which looks the account up again,
/// accepting only the entry's own account name) keeps working.
#[tokio::test(flavor = "multi_thread")]
async fn regression_tokens_carry_the_directory_account() {
    use base64::Engine as _;
    let directory = blocking(Slapd::start).await;
    let keep = tempfile::tempdir().expect("tempdir");
    let section = ldap_section(
        keep.path(),
        &directory.ldap_url(),
        &format!("group_base = \"{}\"", slapd::GROUPS),
    );
    let rules = "[authz]\nrules = [\n\
                 { account = \"mallory\", actions = [] },\n\
                 { group = \"devs\", name = \"secret/**\", actions = [\"pull\"] },\n]\n";
    let proxy = TestProxy::builder("http://127.0.0.1:9")
        .token("lab", &format!("{section}\n{rules}"))
        .start()
        .await;
    let client = proxy.client();
    let post = |form: String| {
        let client = client.clone();
        async move { client.post_form("/auth", &form).await }
    };
    let payload = |token: &str| -> serde_json::Value {
        let part = token.split('.').nth(1).expect("JWT payload");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON claims")
    };
    let scope = "scope=repository%3Asecret%2Fapp%3Apull";
    for (typed, password) in [("carol", "carol-pw"), ("MALLORY", "mallory-pw")] {
        let (status, body) = post(format!(
            "grant_type=password&username={typed}&password={password}&service=lab&client_id=t&access_type=offline&{scope}"
        ))
        .await;
        assert_eq!(status, 200, "{typed}: {body}");
        let claims = payload(body["access_token"].as_str().expect("access token"));
        let pulls = claims["access"].to_string().contains("pull");
        if typed == "carol" {
            assert_eq!(claims["sub"], "carol");
            assert!(pulls, "devs pull secret/**: {claims}");
            continue;
        }
        assert_eq!(claims["sub"], "mallory", "{claims}");
        assert!(!pulls, "mallory is denied: {claims}");
        let refresh = body["refresh_token"].as_str().expect("refresh token");
        assert_eq!(payload(refresh)["sub"], "mallory");
        let (status, body) = post(format!(
            "grant_type=refresh_token&refresh_token={refresh}&service=lab&client_id=t&{scope}"
        ))
        .await;
        assert_eq!(status, 200, "refresh: {body}");
        let claims = payload(body["access_token"].as_str().expect("access token"));
        assert_eq!(claims["sub"], "mallory", "{claims}");
        assert!(!claims["access"].to_string().contains("pull"), "{claims}");
    }
    drop(directory);
}
