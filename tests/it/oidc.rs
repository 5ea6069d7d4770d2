//! CI sign-in with OIDC tokens, end to end: the real binary trusts an issuer fixture
//! (HTTPS discovery and JWKS on loopback, `support::issuer`), skopeo pushes into the
//! real registry with a GitHub-shaped token as its password, and every bad token is
//! refused with 401 and a log line that says why, never the token.

use std::time::Duration;

use serde_json::json;

use crate::support::blocking;
use crate::support::client::{assert_json_error, basic, Proto};
use crate::support::gate::{run, write_setup, GateProcess};
use crate::support::issuer::{
    self, forge, github_claims, gitlab_claims, hs256, now, oidc_table, unsigned, with, Issuer,
    Signer,
};
use crate::support::oci;
use crate::support::registry::Registry;
use crate::support::skopeo;
use crate::support::upstream::TestUpstream;

/// GitHub: each `octo-org` repository's main branch is a pusher.
const GITHUB_RULE: &str = r#"{ claims = { repository = "octo-org/*", ref = "refs/heads/main" }, user = "ci-${claim.repository}", groups = ["pushers"] }"#;
/// GitLab: each `group` project's main branch is a pusher.
const GITLAB_RULE: &str = r#"{ claims = { project_path = "group/*", ref = "main" }, user = "gl-${claim.project_path}", groups = ["pushers"] }"#;
/// Pushers push under `octo-org/` only; no throttle, so a flood of refusals stays 401.
const AUTHZ: &str = r#"
[throttle]
enabled = false
[authz]
rules = [
  { account = "alice", actions = ["*"] },
  { group = "pushers", name = "octo-org/**", actions = ["pull", "push"] },
]
"#;

/// How long a refusal's log line may take to show.
const LOG_WAIT: Duration = Duration::from_secs(5);

/// The gate in front of `upstream` with [`AUTHZ`] and the `[[oidc]]` `tables`.
fn oidc_gate(upstream: &str, tables: &str) -> (tempfile::TempDir, GateProcess) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), upstream, &format!("{AUTHZ}{tables}"));
    let gate = GateProcess::start(dir.path());
    (dir, gate)
}

/// `GET /v2/` with Basic `oidc:TOKEN`: the status.
async fn login(gate: &GateProcess, token: &str) -> u16 {
    let client = gate.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("oidc", token));
    client.status_of(Proto::H1, req).await
}

/// Asserts that neither the token nor its signature is anywhere in the gate's log.
fn assert_not_logged(gate: &GateProcess, token: &str, what: &str) {
    let log = gate.log();
    assert!(
        !log.contains(token),
        "{what}: the token is in the log:\n{log}"
    );
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(
        signature.len() < 16 || !log.contains(signature),
        "{what}: the token's signature is in the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_pushes_with_a_github_token_where_the_rule_maps_it_and_is_denied_elsewhere() {
    let key = Signer::es256("gh-1");
    let issuer = Issuer::start(&[&key]).await;
    let registry = blocking(Registry::start).await;
    let (dir, gate) = oidc_gate(&registry.url(), &issuer.oidc_table(GITHUB_RULE));
    let token = key.token(&github_claims(&issuer.url, "octo-org/app"));
    let (host, trust) = (
        format!("localhost:{}", gate.addr.port()),
        dir.path().join("certs/trust").display().to_string(),
    );
    let creds = format!("oidc:{token}");
    let root = dir.path().to_owned();
    let registry = blocking(move || {
        let image = oci::build_image(&root.join("src"), "v1", &[64 * 1024], 3);
        let push = |repo: &str| {
            skopeo::copy(
                &image.reference(),
                &format!("docker://{host}/{repo}:v1"),
                &[
                    "--dest-creds",
                    &creds,
                    "--dest-cert-dir",
                    &trust,
                    "--preserve-digests",
                ],
            )
        };
        push("octo-org/app").expect_success();
        let refused = push("other/app").expect_failure();
        assert!(
            refused.stderr.contains("403 (Forbidden)") || refused.stderr.contains("denied"),
            "{}",
            refused.stderr
        );
        registry
    })
    .await;
    let status = |repo: &str| {
        crate::support::registry::request_head(
            registry.addr,
            "GET",
            &format!("/v2/{repo}/manifests/v1"),
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        )
        .expect("registry answers")
        .status
    };
    assert_eq!(status("octo-org/app"), 200, "the push is stored");
    assert_eq!(status("other/app"), 404, "nothing stored outside the rule");
    let client = gate.client();
    let upload = client
        .request(Proto::H1, "POST", "/v2/other/app/blobs/uploads/")
        .header("authorization", basic("oidc", &token));
    let upload = client.send_empty(Proto::H1, upload).await;
    assert_json_error(&upload, 403, "DENIED", "a push outside the rule");
    let denied = gate.wait_for_log(
        &["user=\"ci-octo-org/app\"", "status=403", "other/app"],
        LOG_WAIT,
    );
    assert!(
        denied.contains("DENIED") || denied.contains("denied"),
        "{denied}"
    );
    gate.wait_for_log(&["user=\"ci-octo-org/app\"", "status=201"], LOG_WAIT);
    assert_not_logged(&gate, &token, "push");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tokens_are_refused_with_401_and_a_reason_never_the_token() {
    let gh = Signer::es256("gh-1");
    let gl = Signer::rs256("gl-1");
    let github = Issuer::start(&[&gh]).await;
    let gitlab = Issuer::start(&[&gl]).await;
    let upstream = TestUpstream::start().await;
    let tables = format!(
        "{}{}",
        github.oidc_table(GITHUB_RULE),
        gitlab.oidc_table(GITLAB_RULE)
    );
    let (_dir, gate) = oidc_gate(&upstream.url(), &tables);
    let good = github_claims(&github.url, "octo-org/app");
    assert_eq!(login(&gate, &gh.token(&good)).await, 200, "a good token");
    let now = now();
    let expired = with(
        &with(
            &with(&good, "iat", json!(now - 600)),
            "nbf",
            json!(now - 600),
        ),
        "exp",
        json!(now - 60),
    );
    let secret = gh.jwk().to_string();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "forged signature",
            forge(
                &gh.token(&good),
                &with(&good, "repository", json!("octo-org/other")),
            ),
            vec!["signature does not verify"],
        ),
        (
            "wrong iss",
            gh.token(&with(&good, "iss", json!("https://evil.example"))),
            vec!["evil.example", "is not an [[oidc]] issuer"],
        ),
        (
            "wrong aud",
            gh.token(&with(&good, "aud", json!("someone-else"))),
            vec!["token audience does not include"],
        ),
        ("expired", gh.token(&expired), vec!["token expired"]),
        (
            "alg none",
            unsigned("gh-1", &good),
            vec!["token algorithm", "none", "is not accepted"],
        ),
        (
            "alg HS256",
            hs256("gh-1", secret.as_bytes(), &good),
            vec!["token algorithm", "HS256", "is not accepted"],
        ),
        (
            "no rule",
            gh.token(&github_claims(&github.url, "other-org/app")),
            vec!["no claim rule matches the token"],
        ),
        (
            "a GitLab token with GitHub's iss",
            gl.token(&gitlab_claims(&github.url, "group/project")),
            vec!["no key", "gl-1"],
        ),
    ];
    for (what, token, reason) in &cases {
        assert_eq!(login(&gate, token).await, 401, "{what}");
        let mut needles = vec!["status=401", "unauthorized: oidc:"];
        needles.extend(reason.iter().copied());
        gate.wait_for_log(&needles, LOG_WAIT);
        assert_not_logged(&gate, token, what);
    }
    let gitlab_token = gl.token(&gitlab_claims(&gitlab.url, "group/project"));
    assert_eq!(
        login(&gate, &gitlab_token).await,
        200,
        "the GitLab token with its own issuer"
    );
    gate.wait_for_log(&["user=\"gl-group/project\"", "status=200"], LOG_WAIT);
    assert_not_logged(&gate, &gitlab_token, "gitlab");
    let (_, metrics) = gate.admin_get("/metrics");
    for (result, count) in [("success", 2), ("failure", cases.len())] {
        let line = format!(
            "registry_gate_machine_logins_total{{kind=\"oidc\",result=\"{result}\"}} {count}"
        );
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_unknown_kids_costs_the_issuer_at_most_one_fetch() {
    let key = Signer::es256("gh-1");
    let issuer = Issuer::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let (_dir, gate) = oidc_gate(&upstream.url(), &issuer.oidc_table(GITHUB_RULE));
    let claims = github_claims(&issuer.url, "octo-org/app");
    assert_eq!(login(&gate, &key.token(&claims)).await, 200);
    let after_first = issuer.jwks_requests();
    assert_eq!(after_first, 1, "the first login fetched the keys once");
    let attacker = Signer::es256("unused");
    let mut flood = Vec::new();
    for i in 0..50u32 {
        let kid = format!("forged-{i}-{}", now());
        let token = attacker.sign(&json!({"alg": "ES256", "kid": kid, "typ": "JWT"}), &claims);
        assert_eq!(login(&gate, &token).await, 401, "kid {kid}");
        flood.push(token);
    }
    gate.wait_for_log(&["status=401", "no key", "forged-49-"], LOG_WAIT);
    for token in &flood {
        assert_not_logged(&gate, token, "flood");
    }
    let grown = issuer.jwks_requests() - after_first;
    assert!(grown <= 1, "50 unknown kids made {grown} key-set requests");
}

/// Rotation as "the first login after the rotation": the gate fetches on first use,
/// so the new key, published before any login, is in the set it fetches; the old
/// one, still published, keeps working.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_key_rotation_the_new_kid_and_the_still_published_old_one_log_in() {
    let old = Signer::es256("old");
    let new = Signer::rs256("new");
    let issuer = Issuer::start(&[&old]).await;
    let upstream = TestUpstream::start().await;
    let (_dir, gate) = oidc_gate(&upstream.url(), &issuer.oidc_table(GITHUB_RULE));
    assert_eq!(issuer.jwks_requests(), 0, "no fetch before the first login");
    issuer.set_keys(&[&old, &new]);
    let claims = github_claims(&issuer.url, "octo-org/app");
    assert_eq!(login(&gate, &new.token(&claims)).await, 200, "the new kid");
    assert_eq!(login(&gate, &old.token(&claims)).await, 200, "the old kid");
    assert_eq!(issuer.jwks_requests(), 1, "one fetch served both");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_issuer_outage_breaks_no_token_whose_key_is_cached() {
    let key = Signer::es256("gh-1");
    let issuer = Issuer::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let (_dir, gate) = oidc_gate(&upstream.url(), &issuer.oidc_table(GITHUB_RULE));
    let claims = github_claims(&issuer.url, "octo-org/app");
    assert_eq!(login(&gate, &key.token(&claims)).await, 200, "before");
    issuer.go_down();
    let later = with(&claims, "jti", json!("a-later-job"));
    assert_eq!(
        login(&gate, &key.token(&later)).await,
        200,
        "a new token with the cached kid during the outage"
    );
    let other = Signer::es256("gh-2");
    assert_eq!(
        login(&gate, &other.token(&later)).await,
        401,
        "an unknown kid"
    );
    gate.wait_for_log(&["status=401", "no key", "gh-2"], LOG_WAIT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jwks_file_needs_no_issuer_on_the_network() {
    let key = Signer::es256("gh-1");
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    issuer::write_jwks(&dir.path().join("jwks.json"), &[&key]);
    // An issuer no one serves: a fetch would fail.
    let iss = "https://localhost:9";
    write_setup(
        dir.path(),
        &upstream.url(),
        &format!(
            "{AUTHZ}{}",
            oidc_table(iss, "jwks_file = \"jwks.json\"", GITHUB_RULE)
        ),
    );
    let gate = GateProcess::start(dir.path());
    let token = key.token(&github_claims(iss, "octo-org/app"));
    assert_eq!(login(&gate, &token).await, 200);
    gate.wait_for_log(&["user=\"ci-octo-org/app\"", "status=200"], LOG_WAIT);
    let forged = forge(&token, &github_claims(iss, "octo-org/evil"));
    assert_eq!(
        login(&gate, &forged).await,
        401,
        "the file's keys still check"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_mode_grants_what_the_rules_give_and_the_registry_takes_the_push() {
    use crate::token::SERVICE;
    let key = Signer::es256("gh-1");
    let issuer = Issuer::start(&[&key]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let placeholder = "http://127.0.0.1:9";
    // Pushers may also list the catalog, which the gate filters to what they may pull.
    let authz = AUTHZ.replace(
        "actions = [\"pull\", \"push\"] },",
        "actions = [\"pull\", \"push\"] },\n  { group = \"pushers\", actions = [\"catalog\"] },",
    );
    assert_ne!(authz, AUTHZ);
    crate::token::write_token_gate(
        dir.path(),
        Some(placeholder),
        "",
        &format!("{authz}{}", issuer.oidc_table(GITHUB_RULE)),
    );
    let gate = GateProcess::start(dir.path());
    let realm = format!("https://localhost:{}/auth", gate.addr.port());
    let bundle = dir.path().join("certs/token.crt");
    let registry = blocking(move || {
        Registry::builder()
            .token_auth(&realm, SERVICE, &bundle)
            .start()
    })
    .await;
    point_at(&gate, placeholder, &registry.url());
    let token = key.token(&github_claims(&issuer.url, "octo-org/app"));
    let client = gate.client();
    let grant = |scope: &str| {
        client
            .request(
                Proto::H1,
                "GET",
                &format!("/auth?service={SERVICE}&scope={scope}&offline_token=true"),
            )
            .header("authorization", basic("oidc", &token))
    };
    let answer = client
        .send_empty(Proto::H1, grant("repository:octo-org/app:pull,push"))
        .await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    let body: serde_json::Value = serde_json::from_str(&answer.text()).expect("JSON");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token: {body}"
    );
    let granted = access_of(body["token"].as_str().expect("a token"));
    assert_eq!(
        granted,
        json!([{"type": "repository", "name": "octo-org/app", "actions": ["pull", "push"]}]),
    );
    let outside = client
        .send_empty(Proto::H1, grant("repository:other/app:pull,push"))
        .await;
    assert_eq!(outside.status.as_u16(), 200, "{}", outside.text());
    let body: serde_json::Value = serde_json::from_str(&outside.text()).expect("JSON");
    let none = access_of(body["token"].as_str().expect("a token"));
    assert!(
        none.as_array().is_none_or(|a| a
            .iter()
            .all(|e| e["actions"].as_array().is_none_or(|x| x.is_empty()))),
        "nothing granted outside the rule: {none}"
    );
    let (host, trust) = (
        format!("localhost:{}", gate.addr.port()),
        dir.path().join("certs/trust").display().to_string(),
    );
    let root = dir.path().to_owned();
    let creds = format!("oidc:{token}");
    let registry = blocking(move || {
        let image = oci::build_image(&root.join("src"), "v1", &[64 * 1024], 3);
        skopeo::copy(
            &image.reference(),
            &format!("docker://{host}/octo-org/app:v1"),
            &[
                "--dest-creds",
                &creds,
                "--dest-cert-dir",
                &trust,
                "--preserve-digests",
            ],
        )
        .expect_success();
        let refused = skopeo::copy(
            &image.reference(),
            &format!("docker://{host}/other/app:v1"),
            &["--dest-creds", &creds, "--dest-cert-dir", &trust],
        )
        .expect_failure();
        assert!(
            refused
                .stderr
                .contains("denied: requested access to the resource is denied"),
            "{}",
            refused.stderr
        );
        // A person may push there, so the catalog holds a repository the job must not see.
        skopeo::copy(
            &image.reference(),
            &format!("docker://{host}/other/app:v1"),
            &["--dest-creds", "alice:pw-a", "--dest-cert-dir", &trust],
        )
        .expect_success();
        skopeo::inspect_raw(
            &format!("docker://{host}/octo-org/app:v1"),
            &["--creds", &creds, "--cert-dir", &trust],
        )
        .expect_success();
        registry
    })
    .await;
    let direct = crate::support::registry::request_head(
        registry.addr,
        "GET",
        "/v2/octo-org/app/manifests/v1",
        &[],
    )
    .expect("registry answers")
    .status;
    assert_eq!(
        direct, 401,
        "the registry itself wants a token: it is token_auth"
    );
    gate.wait_for_log(&["user=\"ci-octo-org/app\"", "status=201"], LOG_WAIT);

    // The job's catalog token lists what its rule's groups may pull: the gate reads
    // them from its own token, since there is no account to look the job up in.
    let catalog = |authorization: String| {
        let req = client
            .request(Proto::H1, "GET", "/v2/_catalog")
            .header("authorization", authorization);
        client.send_empty(Proto::H1, req)
    };
    let answer = client
        .send_empty(Proto::H1, grant("registry:catalog:*"))
        .await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    let body: serde_json::Value = serde_json::from_str(&answer.text()).expect("JSON");
    let bearer = body["token"].as_str().expect("a token").to_owned();
    let listed = catalog(format!("Bearer {bearer}")).await;
    assert_eq!(listed.status.as_u16(), 200, "{}", listed.text());
    let names: serde_json::Value = serde_json::from_str(&listed.text()).expect("JSON");
    assert_eq!(names["repositories"], json!(["octo-org/app"]), "{names}");
    gate.wait_for_log(
        &[
            "path=\"/v2/_catalog\"",
            "status=200",
            "user=\"ci-octo-org/app\"",
        ],
        LOG_WAIT,
    );
}

/// Points the gate's upstream from `from` to `to` and reloads it.
pub(crate) fn point_at(gate: &GateProcess, from: &str, to: &str) {
    let path = gate.dir.join("proxy.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    crate::support::gate::replace_file(&path, &text.replace(from, to));
    gate.signal("HUP");
    gate.wait_for_log(&["configuration reloaded"], LOG_WAIT);
}

/// The `access` claim of the gate's bearer token (its signature is the registry's
/// business; the test reads what was granted).
pub(crate) fn access_of(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let claims = jwt.split('.').nth(1).expect("a JWT");
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .expect("base64url claims");
    let claims: serde_json::Value = serde_json::from_slice(&claims).expect("JSON claims");
    claims["access"].clone()
}

/// `check-config` on `rules` (the items of an `[[oidc]]` table's `rules`): its exit
/// code, its stderr and the config's text.
fn check_claim_rules(rules: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        "http://127.0.0.1:9",
        &oidc_table("https://token.actions.githubusercontent.com", "", rules),
    );
    let text = std::fs::read_to_string(dir.path().join("proxy.toml")).expect("config");
    let out = run(&["check-config", "--config", "proxy.toml"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr, text)
}

/// The 1-based line of `text` that first contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
        + 1
}

#[test]
fn check_config_refuses_account_in_a_claim_rule_and_names_the_line() {
    let (code, stderr, text) =
        check_claim_rules(r#"{ claims = { repository = "octo-org/*" }, user = "ci-${account}" },"#);
    assert_eq!(code, Some(64), "{stderr}");
    let rule = line_of(&text, "${account}");
    assert!(
        stderr.contains(&format!("line {rule},")) && stderr.contains("oidc.rules: "),
        "line {rule}: {stderr}"
    );
    assert!(stderr.contains("${account}"), "{stderr}");
    assert!(stderr.contains("claim.NAME"), "{stderr}");
}

/// A bad claim rule among several is named by its own line, not the `rules = [`
/// line (toml's span of the whole array), so with many rules the user can tell
/// which is wrong.
#[test]
fn a_bad_claim_rule_is_named_by_its_own_line_not_the_arrays() {
    let (code, stderr, text) = check_claim_rules(
        "{ claims = { repository = \"octo-org/app\" }, user = \"ci-app\" },\n\
         { claims = { repository = \"octo-org/*\" }, user = \"ci-${account}\" },",
    );
    assert_eq!(code, Some(64), "{stderr}");
    let rule = line_of(&text, "${account}");
    assert!(
        stderr.contains(&format!("line {rule},")),
        "the bad rule is on line {rule}:\n{stderr}\nin:\n{text}"
    );
}

/// A claim rule whose user is a person's name (htpasswd `alice`) is warned about at
/// start: the job's tokens would share that person's groups and rules.
#[tokio::test(flavor = "multi_thread")]
async fn a_claim_rule_that_gives_a_persons_name_is_warned_about() {
    let key = Signer::es256("gh-1");
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    issuer::write_jwks(&dir.path().join("jwks.json"), &[&key]);
    let iss = "https://localhost:9";
    let rules = format!(
        "{},\n{}",
        r#"{ claims = { repository = "octo-org/app" }, user = "alice" }"#, GITHUB_RULE
    );
    write_setup(
        dir.path(),
        &upstream.url(),
        &format!(
            "{AUTHZ}{}",
            oidc_table(iss, "jwks_file = \"jwks.json\"", &rules)
        ),
    );
    let gate = GateProcess::start(dir.path());
    let line = gate.wait_for_log(
        &[
            "WARN",
            "an [[oidc]] claim rule gives the name of an htpasswd user",
        ],
        LOG_WAIT,
    );
    assert!(line.contains("user=alice") && line.contains(iss), "{line}");
    let log = gate.log();
    assert_eq!(
        log.matches("claim rule gives the name of an htpasswd user")
            .count(),
        1,
        "only the rule with a literal person's name, not the templated one:\n{log}"
    );
}
