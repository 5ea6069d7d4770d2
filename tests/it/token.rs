//! Token mode end to end: the real registry (2.8) runs with `auth.token` pointing at the
//! gate's `/auth`, and real clients (skopeo, podman, a curl-like script) go through
//! the whole dance: 401 Bearer challenge, token request, token on the registry.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use registry_gate::config::Config;
use registry_gate::state::State;
use serde_json::Value;

use crate::support::blocking;
use crate::support::client::{basic, Proto};
use crate::support::oci;
use crate::support::podman::{self, Podman};
use crate::support::proxy::TestProxy;
use crate::support::registry::Registry;
use crate::support::skopeo;

pub(crate) const SERVICE: &str = "registry.test";

const RULES: &str = r#"
[authz]
rules = [
  { account = "admin", actions = ["*"] },
  { account = "anonymous", name = "public/**", actions = ["pull"] },
  { account = "alice", name = "**", actions = ["pull", "push"] },
  { account = "bob", name = "**", actions = ["pull"] },
]
"#;

/// The gate in token mode in front of a registry that trusts its token certificate.
async fn token_setup(extra_token_keys: &str) -> (Registry, TestProxy) {
    // The registry's address is not known yet: start with a placeholder upstream,
    // then point the gate at the registry once it runs (as a reload would).
    let proxy = TestProxy::builder("http://127.0.0.1:9")
        .user("alice", "pw-a")
        .user("bob", "pw-b")
        .user("admin", "pw-admin")
        .token(SERVICE, &format!("{extra_token_keys}\n{RULES}"))
        .start()
        .await;
    let realm = format!("https://{}/auth", proxy.authority());
    let bundle = proxy.path("token.crt");
    let registry = blocking(move || {
        Registry::builder()
            .token_auth(&realm, SERVICE, &bundle)
            .start()
    })
    .await;
    let config_path = proxy.path("proxy.toml");
    let text = std::fs::read_to_string(&config_path)
        .expect("config")
        .replace("http://127.0.0.1:9", &registry.url());
    std::fs::write(&config_path, text).expect("rewrite config");
    reload(&proxy);
    (registry, proxy)
}

/// Rebuilds the gate's state from its files, as a reload does.
fn reload(proxy: &TestProxy) {
    let config = Config::load(&proxy.path("proxy.toml")).expect("config");
    let state = State::build(&config).expect("state");
    proxy.state_tx.send_replace(Arc::new(state));
}

/// `WWW-Authenticate: Bearer realm="..",service="..",scope=".."` as a map.
fn challenge_params(value: &str) -> std::collections::HashMap<String, String> {
    let rest = value.strip_prefix("Bearer ").expect("a Bearer challenge");
    let mut params = std::collections::HashMap::new();
    let mut chars = rest;
    while let Some((key, after)) = chars.split_once("=\"") {
        let Some((val, tail)) = after.split_once('"') else {
            break;
        };
        params.insert(
            key.trim_start_matches(',').trim().to_string(),
            val.to_string(),
        );
        chars = tail;
    }
    params
}

pub(crate) fn claims(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let decode = |p: Option<&str>| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p.expect("part")).expect("base64url"))
            .expect("json")
    };
    (decode(parts.next()), decode(parts.next()))
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_and_podman_push_and_pull_with_tokens_the_registry_checks() {
    let (registry, proxy) = token_setup("").await;
    let (host, trust) = (proxy.authority(), proxy.trust_dir());
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    blocking(move || {
        let image = oci::build_image(&root.join("src"), "v1", &[64 * 1024, 3000], 21);
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
        push("team/app", "alice:pw-a").expect_success();
        push("public/base", "alice:pw-a").expect_success();
        // bob may only pull: the registry refuses his push (his token grants pull only).
        let refused = push("team/bob", "bob:pw-b").expect_failure();
        assert!(
            refused.stderr.to_lowercase().contains("denied")
                || refused.stderr.contains("unauthorized"),
            "{}",
            refused.stderr
        );
        let wrong = push("team/app", "alice:wrong").expect_failure();
        assert!(
            wrong.stderr.contains("401") || wrong.stderr.to_lowercase().contains("unauthorized"),
            "{}",
            wrong.stderr
        );
        // bob pulls; an anonymous client pulls the open repository only.
        skopeo::copy(
            &format!("docker://{host}/team/app:v1"),
            &format!("oci:{}:v1", root.join("bob").display()),
            &["--src-creds", "bob:pw-b", "--src-cert-dir", &trust],
        )
        .expect_success();
        skopeo::copy(
            &format!("docker://{host}/public/base:v1"),
            &format!("oci:{}:v1", root.join("anon").display()),
            &["--src-no-creds", "--src-cert-dir", &trust],
        )
        .expect_success();
        skopeo::copy(
            &format!("docker://{host}/team/app:v1"),
            &format!("oci:{}:v1", root.join("anon2").display()),
            &["--src-no-creds", "--src-cert-dir", &trust],
        )
        .expect_failure();

        // podman: login (which asks the realm for a token) and push.
        let podman = Podman::new();
        let login = podman
            .run_with_stdin(
                &[
                    "login",
                    "--cert-dir",
                    &trust,
                    "-u",
                    "alice",
                    "--password-stdin",
                    &host,
                ],
                "pw-a\n",
                podman::TIMEOUT,
            )
            .expect_success();
        assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);
        let id = podman
            .import_oci(&image.layout, &image.tag)
            .expect_success()
            .stdout
            .trim()
            .to_string();
        let name = format!("{host}/team/podman:v1");
        podman.run(&["tag", &id, &name]).expect_success();
        podman
            .run(&[
                "push",
                "--signature-policy",
                &podman.policy(),
                "--cert-dir",
                &trust,
                &name,
            ])
            .expect_success();
    })
    .await;
    assert!(
        registry.log().contains("team/podman"),
        "podman's push reached the registry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_curl_script_reads_the_challenge_asks_the_realm_and_lists_the_catalog() {
    let (_registry, proxy) = token_setup("").await;
    let client = proxy.client();
    // Step 1: the registry's challenge, passed through the gate.
    let answer = client
        .send_empty(Proto::H1, client.request(Proto::H1, "GET", "/v2/_catalog"))
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    let params = challenge_params(&answer.one("www-authenticate"));
    assert_eq!(
        params["realm"],
        format!("https://{}/auth", proxy.authority())
    );
    assert_eq!(params["service"], SERVICE);
    assert_eq!(params["scope"], "registry:catalog:*");
    // Step 2: the realm, with Basic credentials.
    let path = format!(
        "/auth?service={}&scope={}",
        params["service"], params["scope"]
    );
    let req = client
        .request(Proto::H1, "GET", &path)
        .header("authorization", basic("admin", "pw-admin"));
    let answer = client.send_empty(Proto::H1, req).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.one("cache-control"), "no-store");
    let body: Value = serde_json::from_str(&answer.text()).expect("json");
    let token = body["token"].as_str().expect("token").to_string();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"]
        .as_str()
        .expect("issued_at")
        .ends_with('Z'));
    assert!(body.get("refresh_token").is_none());
    // Every claim, and the kid against the JWKS.
    let (header, claims) = claims(&token);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert!(
        header["x5c"].as_array().is_some_and(|c| c.len() == 1),
        "{header}"
    );
    let jwks = proxy
        .state_tx
        .borrow()
        .token
        .as_ref()
        .expect("token mode")
        .jwks();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"], "{jwks}");
    assert_eq!(claims["iss"], "registry-gate");
    assert_eq!(claims["sub"], "admin");
    assert_eq!(claims["aud"], SERVICE);
    let (iat, nbf, exp) = (
        claims["iat"].as_u64().expect("iat"),
        claims["nbf"].as_u64().expect("nbf"),
        claims["exp"].as_u64().expect("exp"),
    );
    assert_eq!(exp, iat + 300);
    assert!(nbf < iat, "nbf backdated");
    assert_eq!(claims["jti"].as_str().map(str::len), Some(32));
    assert_eq!(
        claims["access"],
        serde_json::json!([{ "type": "registry", "name": "catalog", "actions": ["*"] }])
    );
    // Step 3: the token on the catalog.
    let req = client
        .request(Proto::H1, "GET", "/v2/_catalog")
        .header("authorization", format!("Bearer {token}"));
    let answer = client.send_empty(Proto::H1, req).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer.text().contains("\"repositories\""),
        "{}",
        answer.text()
    );

    // Wrong credentials: 401 with a Basic challenge; malformed scope: 400 OAuth error.
    let req = client
        .request(Proto::H1, "GET", "/auth?service=registry.test")
        .header("authorization", basic("admin", "nope"));
    let answer = client.send_empty(Proto::H1, req).await;
    assert_eq!(answer.status, 401);
    assert!(answer.one("www-authenticate").starts_with("Basic "));
    let answer = client
        .send_empty(
            Proto::H1,
            client.request(Proto::H1, "GET", "/auth?scope=repository:x"),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("invalid_scope"), "{}", answer.text());
    // bob asking pull and push on a repository gets pull only, without an error.
    let req = client
        .request(
            Proto::H1,
            "GET",
            "/auth?service=registry.test&scope=repository:team/app:pull,push",
        )
        .header("authorization", basic("bob", "pw-b"));
    let answer = client.send_empty(Proto::H1, req).await;
    let body: Value = serde_json::from_str(&answer.text()).expect("json");
    let (_, claims) = self::claims(body["token"].as_str().expect("token"));
    assert_eq!(
        claims["access"],
        serde_json::json!([{ "type": "repository", "name": "team/app", "actions": ["pull"] }])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_post_password_and_refresh_grants() {
    let (_registry, proxy) = token_setup("").await;
    let client = proxy.client();
    let post = |form: String| {
        let client = client.clone();
        async move { client.post_form("/auth", &form).await }
    };
    let (status, body) = post(format!(
        "grant_type=password&username=alice&password=pw-a&service={SERVICE}&client_id=containerd&access_type=offline&scope=repository%3Ateam%2Fapp%3Apull%2Cpush"
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "repository:team/app:pull,push");
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    // The refresh token is no access token for the registry.
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", format!("Bearer {refresh}"));
    assert_eq!(client.send_empty(Proto::H1, req).await.status, 401);

    let (status, body) = post(format!(
        "grant_type=refresh_token&refresh_token={refresh}&service={SERVICE}&client_id=containerd&scope=repository%3Ateam%2Fapp%3Apull"
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["refresh_token"],
        refresh.as_str(),
        "the same refresh token comes back"
    );
    let token = body["access_token"].as_str().expect("access token");
    let req = client
        .request(Proto::H1, "GET", "/v2/team/app/tags/list")
        .header("authorization", format!("Bearer {token}"));
    let answer = client.send_empty(Proto::H1, req).await;
    assert_ne!(answer.status, 401, "{}", answer.text());

    // A forged refresh token, an unknown grant, a missing password.
    let (status, _) = post(format!("grant_type=refresh_token&refresh_token={refresh}x")).await;
    assert_eq!(status, 401);
    let (status, body) = post("grant_type=authorization_code&code=x".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, _) = post("grant_type=password&username=alice".into()).await;
    assert_eq!(status, 400);

    // Once alice is removed from the user file, her refresh token is refused.
    let htpasswd: String = [("bob", "pw-b"), ("admin", "pw-admin")]
        .iter()
        .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("hash")))
        .collect();
    std::fs::write(proxy.path("htpasswd"), htpasswd).expect("rewrite htpasswd");
    reload(&proxy);
    let (status, _) = post(format!(
        "grant_type=refresh_token&refresh_token={refresh}&service={SERVICE}&client_id=containerd"
    ))
    .await;
    assert_eq!(status, 401, "a removed user's refresh token");

    // GET with offline_token=true also hands out a refresh token.
    let req = client
        .request(
            Proto::H1,
            "GET",
            &format!("/auth?service={SERVICE}&offline_token=true&client_id=docker"),
        )
        .header("authorization", basic("bob", "pw-b"));
    let body: Value =
        serde_json::from_str(&client.send_empty(Proto::H1, req).await.text()).expect("json");
    assert!(body["refresh_token"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_server_alone_logs_each_token_and_prints_its_jwks() {
    use crate::support::gate::{generate_certs, run, write_users, Certs, GateProcess};
    let dir = tempfile::tempdir().expect("tempdir");
    generate_certs(dir.path(), "certs", Certs::WithToken);
    for file in ["server.crt", "server.key", "token.key", "token.crt"] {
        assert!(dir.path().join("certs").join(file).exists(), "{file}");
    }
    let mode = |f: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(dir.path().join("certs").join(f))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("token.key"), 0o600);
    write_users(dir.path(), &[("alice", "pw")]);
    std::fs::write(
        dir.path().join("proxy.toml"),
        format!(
            "[listen]\naddr = \"127.0.0.1:0\"\n[admin]\naddr = \"127.0.0.1:0\"\n\
             [tls]\ncert = \"certs/server.crt\"\nkey = \"certs/server.key\"\n\
             [auth]\nmode = \"token\"\nhtpasswd = \"htpasswd\"\n\
             [token]\nservice = \"{SERVICE}\"\nkey = \"certs/token.key\"\ncert = \"certs/token.crt\"\n"
        ),
    )
    .expect("config");
    let jwks_run = run(&["token", "jwks"], dir.path());
    assert!(
        jwks_run.status.success(),
        "{}",
        String::from_utf8_lossy(&jwks_run.stderr)
    );
    let jwks: Value = serde_json::from_slice(&jwks_run.stdout).expect("JWKS JSON");
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");

    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let req = client
        .request(
            Proto::H1,
            "GET",
            &format!("/auth?service={SERVICE}&scope=repository:team/app:pull&client_id=ci-robot"),
        )
        .header("authorization", basic("alice", "pw"));
    let answer = client.send_empty(Proto::H1, req).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body: Value = serde_json::from_str(&answer.text()).expect("json");
    let (header, _) = claims(body["token"].as_str().expect("token"));
    assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    let line = gate.wait_for_log(
        &["token issued", "ci-robot"],
        std::time::Duration::from_secs(5),
    );
    for field in [
        "user=alice",
        "granted=repository:team/app:pull",
        "asked=repository:team/app:pull",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    // No registry behind a token server: /v2/ is not found, and it is ready anyway.
    let answer = client
        .send_empty(Proto::H1, client.request(Proto::H1, "GET", "/v2/"))
        .await;
    assert_eq!(answer.status, 404);
    let (code, text) = gate.admin_get("/readyz");
    assert_eq!(code, 200, "{text}");
    let (_, metrics) = gate.admin_get("/metrics");
    assert!(
        metrics.contains("registry_gate_tokens_issued_total 1"),
        "{metrics}"
    );
}

/// Seed 004's script, as published but for its first three assignments: read the
/// registry's challenge with curl, ask the realm for a token, list the catalog.
const SEED_004_SCRIPT: &str = r#"
auth=$(curl --include -sk $URL |grep ^Www-Authenticate)

realm=$(echo $auth | grep -o '\(realm\)="[^"]*"' | cut -d '"' -f 2)
service=$(echo $auth | grep -o '\(service\)="[^"]*"' | cut -d '"' -f 2|sed 's, ,%20,')
scope=$(echo $auth | grep -o '\(scope\)="[^"]*' | cut -d '"' -f 2)
authurl="$realm?service=$service&scope=$scope"

token=$(curl --user "$user:$password" -s -k "$authurl" |jq -r .token)

curl -sk -H "Authorization: Bearer $token" $URL
"#;

/// The script greps `^Www-Authenticate`: a header name as HTTP/1.1 servers write it,
/// from 2017, when curl spoke HTTP/1.1 over TLS by default. curl ≥ 7.62 negotiates
/// HTTP/2, whose header names are lower case by definition (RFC 9113 §8.2.1), so with
/// any HTTP/2 server, the registry itself included, the grep finds nothing. The script
/// runs unchanged; curl is told the 2017 default through its config file (`CURL_HOME`).
#[tokio::test(flavor = "multi_thread")]
async fn seed_004_curl_script_works_unchanged() {
    let (_registry, proxy) = token_setup("").await;
    let script = format!(
        "user='admin'\npassword='pw-admin'\nURL=\"https://{}/v2/_catalog\"\n{SEED_004_SCRIPT}",
        proxy.authority()
    );
    let curl_home = tempfile::tempdir().expect("tempdir");
    std::fs::write(curl_home.path().join(".curlrc"), "http1.1\n").expect("curlrc");
    let home = curl_home.path().to_owned();
    let out = blocking(move || {
        let mut command = std::process::Command::new("bash");
        command.arg("-c").arg(script).env("CURL_HOME", home);
        crate::support::process::run_bounded(command, "bash", std::time::Duration::from_secs(30))
    })
    .await
    .expect_success();
    assert_eq!(
        out.stdout.trim(),
        r#"{"repositories":[]}"#,
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_x5c_registry_2_8_refuses_the_token_which_is_why_it_is_on_by_default() {
    let (_registry, proxy) = token_setup("x5c = false").await;
    let client = proxy.client();
    let req = client
        .request(
            Proto::H1,
            "GET",
            &format!("/auth?service={SERVICE}&scope=registry:catalog:*"),
        )
        .header("authorization", basic("admin", "pw-admin"));
    let body: Value =
        serde_json::from_str(&client.send_empty(Proto::H1, req).await.text()).expect("json");
    let token = body["token"].as_str().expect("token");
    let (header, _) = claims(token);
    assert!(header.get("x5c").is_none(), "{header}");
    assert!(header["kid"].is_string(), "{header}");
    // Registry 2.8 looks a bare kid up among libtrust key IDs only: refused.
    let req = client
        .request(Proto::H1, "GET", "/v2/_catalog")
        .header("authorization", format!("Bearer {token}"));
    assert_eq!(client.send_empty(Proto::H1, req).await.status, 401);
}

/// Writes a token-mode gate's files into `dir`: certificates with a token key
/// (`certs generate --token`), users alice/pw-a and bob/pw-b, and a `proxy.toml` with
/// `upstream` (none: a token server alone), `listen` keys and `extra` TOML.
pub(crate) fn write_token_gate(
    dir: &std::path::Path,
    upstream: Option<&str>,
    listen: &str,
    extra: &str,
) {
    use crate::support::gate::{generate_certs, write_users, Certs};
    generate_certs(dir, "certs", Certs::WithToken);
    write_users(dir, &[("alice", "pw-a"), ("bob", "pw-b")]);
    let upstream = upstream.map_or(String::new(), |u| format!("[upstream]\nurl = \"{u}\"\n"));
    std::fs::write(
        dir.join("proxy.toml"),
        format!(
            "[listen]\naddr = \"127.0.0.1:0\"\n{listen}\n[admin]\naddr = \"127.0.0.1:0\"\n\
             [tls]\ncert = \"certs/server.crt\"\nkey = \"certs/server.key\"\n{upstream}\
             [auth]\nmode = \"token\"\nhtpasswd = \"htpasswd\"\n\
             [token]\nservice = \"{SERVICE}\"\nkey = \"certs/token.key\"\ncert = \"certs/token.crt\"\n\
             {extra}\n"
        ),
    )
    .expect("config");
}

/// A token POST that declares more body than it sends and
/// then goes quiet is answered 408 within `listen.body_timeout` (plus slack), over
/// HTTP/1.1 and HTTP/2, instead of holding the stream and its buffer for ever.
#[tokio::test(flavor = "multi_thread")]
async fn regression_a_stalled_token_post_is_answered_within_body_timeout() {
    use std::time::Duration;

    use crate::support::client::{read, streamed};
    use crate::support::gate::GateProcess;
    use bytes::Bytes;
    use hyper::body::Frame;

    let dir = tempfile::tempdir().expect("tempdir");
    write_token_gate(dir.path(), None, "body_timeout = \"1s\"", "");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    for proto in [Proto::H1, Proto::H2] {
        let (tx, body) = streamed();
        let req = client
            .request(proto, "POST", "/auth")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", "1000")
            .body(body)
            .expect("request");
        let started = tokio::time::Instant::now();
        let sending = {
            let client = client.clone();
            tokio::spawn(async move { client.send(proto, req).await })
        };
        tx.send(Ok(Frame::data(Bytes::from_static(b"grant_type=password&"))))
            .await
            .expect("first bytes go out");
        // Then silence: `tx` stays open until the answer is in.
        let response = tokio::time::timeout(Duration::from_secs(10), sending)
            .await
            .unwrap_or_else(|_| panic!("{proto:?}: no answer 10 s into a stalled token POST"))
            .expect("send task")
            .expect("an answer, not a broken connection");
        let waited = started.elapsed();
        let answer = read(response).await;
        drop(tx);
        assert_eq!(answer.status, 408, "{proto:?}: {}", answer.text());
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "{proto:?}: answered after {waited:?}, body_timeout is 1s"
        );
        if proto == Proto::H1 {
            assert_eq!(answer.one("connection"), "close", "{proto:?}");
        }
    }
    let (_, metrics) = gate.admin_get("/metrics");
    assert!(
        metrics.contains("registry_gate_client_timeouts_total{timeout=\"body\"} 2"),
        "{metrics}"
    );
    gate.wait_for_log(
        &["access", "path=\"/auth\"", "status=408"],
        Duration::from_secs(5),
    );
}

/// Per-repository rules for the two-user tests: each user pulls and pushes its own
/// namespace, and everyone holds the catalog right.
const OWN_NAMESPACES: &str = r#"
[authz]
rules = [
  { account = "alice", name = "alice/**", actions = ["pull", "push"] },
  { account = "bob", name = "bob/**", actions = ["pull", "push"] },
  { account = "*", actions = ["catalog"] },
]
"#;

/// `GET /auth` as `user` for `scope`: the token.
async fn token_for(
    client: &crate::support::client::Client,
    user: &str,
    pw: &str,
    scope: &str,
) -> String {
    let req = client
        .request(
            Proto::H1,
            "GET",
            &format!("/auth?service={SERVICE}&scope={scope}"),
        )
        .header("authorization", basic(user, pw));
    let answer = client.send_empty(Proto::H1, req).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body: Value = serde_json::from_str(&answer.text()).expect("token JSON");
    body["token"].as_str().expect("token").to_owned()
}

/// `GET /v2/_catalog` with `token`: the status and the names.
async fn catalog_with(
    client: &crate::support::client::Client,
    token: &str,
    query: &str,
) -> (u16, Vec<String>, Vec<String>) {
    let req = client
        .request(Proto::H1, "GET", &format!("/v2/_catalog{query}"))
        .header("authorization", format!("Bearer {token}"));
    let answer = client.send_empty(Proto::H1, req).await;
    let names = serde_json::from_str::<Value>(&answer.text())
        .ok()
        .and_then(|v| v["repositories"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    (answer.status.as_u16(), names, answer.all("link"))
}

/// Token mode against the real registry with per-repository
/// rules. alice and bob push with skopeo to their own repositories; each lists the
/// catalog with its own catalog token and sees only what it may pull (the registry
/// alone would list both), and the access line of a push's manifest PUT names the
/// user and the token's `jti`. A token the gate cannot verify passes through and is
/// logged as unverified.
#[tokio::test(flavor = "multi_thread")]
async fn regression_token_mode_names_the_user_and_filters_the_catalog() {
    use std::time::Duration;

    use crate::support::gate::GateProcess;

    let dir = tempfile::tempdir().expect("tempdir");
    let placeholder = "http://127.0.0.1:9";
    write_token_gate(dir.path(), Some(placeholder), "", OWN_NAMESPACES);
    let gate = GateProcess::start(dir.path());
    let host = format!("localhost:{}", gate.addr.port());
    let realm = format!("https://{host}/auth");
    let bundle = dir.path().join("certs/token.crt");
    let registry = blocking(move || {
        Registry::builder()
            .token_auth(&realm, SERVICE, &bundle)
            .start()
    })
    .await;
    let config = dir.path().join("proxy.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace(placeholder, &registry.url())).expect("config");
    gate.signal("HUP");
    gate.wait_for_log(&["configuration reloaded"], Duration::from_secs(10));

    let trust = dir.path().join("trust");
    std::fs::create_dir(&trust).expect("trust dir");
    std::fs::copy(dir.path().join("certs/ca.crt"), trust.join("ca.crt")).expect("CA");
    let src = dir.path().join("src");
    let push_host = host.clone();
    blocking(move || {
        let image = oci::build_image(&src, "v1", &[16 * 1024], 31);
        let trust = trust.to_string_lossy().into_owned();
        for (repo, creds) in [("alice/app", "alice:pw-a"), ("bob/app", "bob:pw-b")] {
            skopeo::copy(
                &image.reference(),
                &format!("docker://{push_host}/{repo}:v1"),
                &[
                    "--dest-creds",
                    creds,
                    "--dest-cert-dir",
                    &trust,
                    "--preserve-digests",
                ],
            )
            .expect_success();
        }
    })
    .await;

    let client = gate.client();
    for (user, pw, mine) in [("alice", "pw-a", "alice/app"), ("bob", "pw-b", "bob/app")] {
        let token = token_for(&client, user, pw, "registry:catalog:*").await;
        let (status, names, _) = catalog_with(&client, &token, "").await;
        assert_eq!((status, names), (200, vec![mine.to_owned()]), "{user}");
    }

    // The manifest PUT of alice's push: her name and the jti of a token issued to her.
    let put = gate.wait_for_log(
        &[
            "access",
            "method=PUT",
            "path=\"/v2/alice/app/manifests/v1\"",
            "status=201",
        ],
        Duration::from_secs(5),
    );
    assert!(put.contains("user=\"alice\""), "{put}");
    let jti = put
        .split("token_id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no token_id in {put}"));
    assert!(
        jti.len() == 32 && jti.bytes().all(|b| b.is_ascii_hexdigit()),
        "token_id {jti:?}: {put}"
    );
    gate.wait_for_log(
        &["token issued", "user=alice", &format!("jti={jti}")],
        Duration::from_secs(5),
    );

    // A token the gate cannot verify goes to the registry untouched (which refuses it).
    let forged = format!(
        "{}x",
        token_for(&client, "bob", "pw-b", "registry:catalog:*").await
    );
    let (status, names, _) = catalog_with(&client, &forged, "").await;
    assert_eq!((status, names.len()), (401, 0));
    let line = gate.wait_for_log(
        &["access", "path=\"/v2/_catalog\"", "status=401"],
        Duration::from_secs(5),
    );
    assert!(
        line.contains("user=\"-\"") && line.contains("token_id=\"unverified\""),
        "{line}"
    );
}

/// One filtered catalog request reads at most 10 registry pages. A user
/// whose repositories come after 25 000 hidden names gets an empty page with a `Link`
/// continuing from where the gate's walk stopped, and by following `Link`s sees
/// exactly its repositories, each request costing the registry at most 10 pages. The
/// page requests carry the client's catalog token (token mode).
#[tokio::test(flavor = "multi_thread")]
async fn regression_one_catalog_request_reads_at_most_ten_registry_pages() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::support::upstream::{Reply, TestUpstream};

    let mut names: Vec<String> = (0..25_000).map(|i| format!("a-hidden/{i:05}")).collect();
    names.extend(["alice/app".to_owned(), "alice/tool".to_owned()]);
    let pages = Arc::new(AtomicUsize::new(0));
    let bearer_pages = Arc::new(AtomicUsize::new(0));
    let (counted, with_token) = (pages.clone(), bearer_pages.clone());
    let upstream = TestUpstream::start_with(move |head| {
        counted.fetch_add(1, Ordering::SeqCst);
        let auth = head
            .headers
            .get("authorization")
            .map(|v| v.as_bytes().to_vec());
        if auth.is_some_and(|a| a.starts_with(b"Bearer ")) {
            with_token.fetch_add(1, Ordering::SeqCst);
        }
        let query = head.uri.query().unwrap_or("");
        let last = query
            .split('&')
            .find_map(|p| p.strip_prefix("last="))
            .map(|l| l.replace("%2F", "/"));
        let start = last.map_or(0, |l| names.partition_point(|n| *n <= l));
        let end = (start + 1000).min(names.len());
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if end < names.len() {
            let link = format!(
                "</v2/_catalog?last={}&n=1000>; rel=\"next\"",
                names[end - 1]
            );
            headers.push(("link".to_owned(), link));
        }
        let body = serde_json::json!({ "repositories": &names[start..end] }).to_string();
        Reply {
            headers,
            body: body.into(),
            ..Reply::default()
        }
    })
    .await;
    let proxy = TestProxy::builder(upstream.url())
        .user("alice", "pw-a")
        .token(SERVICE, OWN_NAMESPACES)
        .start()
        .await;
    let client = proxy.client();
    let token = token_for(&client, "alice", "pw-a", "registry:catalog:*").await;

    let (status, first, link) = catalog_with(&client, &token, "?n=5").await;
    assert_eq!((status, first.len()), (200, 0));
    assert_eq!(
        pages.load(Ordering::SeqCst),
        10,
        "registry pages for one request"
    );
    assert_eq!(
        link,
        ["</v2/_catalog?last=a-hidden%2F09999&n=5>; rel=\"next\""]
    );
    let mut seen = Vec::new();
    let mut next = link.into_iter().next();
    for _ in 0..5 {
        let Some(link) = next.take() else { break };
        let query = link
            .strip_prefix("</v2/_catalog")
            .and_then(|l| l.split_once('>'))
            .map(|(q, _)| q.to_owned())
            .expect("a catalog Link");
        let before = pages.load(Ordering::SeqCst);
        let (status, names, link) = catalog_with(&client, &token, &query).await;
        assert_eq!(status, 200);
        assert!(pages.load(Ordering::SeqCst) - before <= 10, "{query}");
        seen.extend(names);
        next = link.into_iter().next();
    }
    assert!(next.is_none(), "the walk ends within 5 links");
    assert_eq!(seen, ["alice/app", "alice/tool"]);
    assert_eq!(
        pages.load(Ordering::SeqCst),
        26,
        "every registry page read once"
    );
    assert_eq!(
        bearer_pages.load(Ordering::SeqCst),
        26,
        "the client's token on each"
    );
}

/// A refresh token is bound to the password it was issued for. Once
/// alice's password is changed (and the gate reloads its users), her refresh token is
/// refused with 401, while bob's, whose password is unchanged, still works.
#[tokio::test(flavor = "multi_thread")]
async fn regression_a_password_change_voids_the_users_refresh_tokens() {
    let proxy = TestProxy::builder("http://127.0.0.1:9")
        .user("alice", "pw-a")
        .user("bob", "pw-b")
        .token(SERVICE, OWN_NAMESPACES)
        .start()
        .await;
    let client = proxy.client();
    let post = |form: String| {
        let client = client.clone();
        async move { client.post_form("/auth", &form).await }
    };
    let login = |user: &str, pw: &str| {
        format!("grant_type=password&username={user}&password={pw}&service={SERVICE}&access_type=offline")
    };
    let refresh_form =
        |token: &str| format!("grant_type=refresh_token&refresh_token={token}&service={SERVICE}");
    let mut refresh = Vec::new();
    for (user, pw) in [("alice", "pw-a"), ("bob", "pw-b")] {
        let (status, body) = post(login(user, pw)).await;
        assert_eq!(status, 200, "{body}");
        let token = body["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_owned();
        assert_eq!(post(refresh_form(&token)).await.0, 200, "{user} before");
        refresh.push(token);
    }
    // alice's password is changed (bob's line stays as it is); the gate reloads.
    let text = std::fs::read_to_string(proxy.path("htpasswd")).expect("htpasswd");
    let alice = format!("alice:{}", bcrypt::hash("new-pw-a", 4).expect("hash"));
    let htpasswd = text
        .lines()
        .map(|l| {
            if l.starts_with("alice:") {
                alice.as_str()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(proxy.path("htpasswd"), htpasswd + "\n").expect("htpasswd");
    reload(&proxy);
    let (status, body) = post(refresh_form(&refresh[0])).await;
    assert_eq!(
        status, 401,
        "alice's old refresh token after the change: {body}"
    );
    assert_eq!(
        post(refresh_form(&refresh[1])).await.0,
        200,
        "bob's, unchanged"
    );
    // With the new password she gets a new refresh token, which works.
    let (status, body) = post(login("alice", "new-pw-a")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["refresh_token"].as_str().expect("refresh token");
    assert_eq!(post(refresh_form(token)).await.0, 200, "alice's new one");
}
