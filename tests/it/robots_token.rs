//! Robots in token mode, end to end: the real binary issues the registry's bearer
//! tokens (`auth.token` of the real registry), skopeo pushes with a robot through the
//! token flow inside its scope and is refused outside it, a robot gets no refresh
//! token, and a revoked robot's still-unexpired bearer token is refused within 2 s.

use std::path::Path;

use serde_json::{json, Value};

use crate::oidc::{access_of, point_at};
use crate::reload::WITHIN;
use crate::support::blocking;
use crate::support::client::{basic, Proto};
use crate::support::eventually;
use crate::support::gate::{run, GateProcess};
use crate::support::oci;
use crate::support::registry::Registry;
use crate::support::skopeo;
use crate::token::{write_token_gate, SERVICE};

/// `registry-gate robot ARGS... --file robots.jsonl [--json]` in `dir`: its stdout.
fn robot(dir: &Path, args: &[&str]) -> Vec<u8> {
    let mut all = vec!["robot"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--file", "robots.jsonl"]);
    let out = run(&all, dir);
    assert!(
        out.status.success(),
        "robot {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_robot_in_token_mode_pushes_in_scope_gets_no_refresh_token_and_revoke_ends_its_bearer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let placeholder = "http://127.0.0.1:9";
    write_token_gate(
        dir.path(),
        Some(placeholder),
        "",
        "[throttle]\nenabled = false\n",
    );
    let config = dir.path().join("proxy.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        "htpasswd = \"htpasswd\"\n",
        "htpasswd = \"htpasswd\"\nrobots = \"robots.jsonl\"\n",
    );
    assert!(text.contains("robots = "), "[auth] names the robots file");
    std::fs::write(&config, text).expect("write config");
    let issued: Value = serde_json::from_slice(&robot(
        dir.path(),
        &[
            "create",
            "ci",
            "--repo",
            "team/*",
            "--actions",
            "pull,push",
            "--json",
        ],
    ))
    .expect("one JSON object");
    let (user, secret) = (
        issued["user"].as_str().expect("user").to_owned(),
        issued["secret"].as_str().expect("secret").to_owned(),
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

    let (host, trust) = (
        format!("localhost:{}", gate.addr.port()),
        dir.path().join("certs/trust").display().to_string(),
    );
    let creds = format!("{user}:{secret}");
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
        push("team/app").expect_success();
        let refused = push("other/app").expect_failure();
        // The registry refuses the bearer token the gate gave for nothing.
        assert!(
            refused
                .stderr
                .contains("denied: requested access to the resource is denied"),
            "{}",
            refused.stderr
        );
        skopeo::inspect_raw(
            &format!("docker://{host}/team/app:v1"),
            &["--creds", &creds, "--cert-dir", &trust],
        )
        .expect_success();
        registry
    })
    .await;

    let client = gate.client();
    let grant = client
        .request(
            Proto::H1,
            "GET",
            &format!(
                "/auth?service={SERVICE}&scope=repository:team/app:pull,push&offline_token=true"
            ),
        )
        .header("authorization", basic(&user, &secret));
    let answer = client.send_empty(Proto::H1, grant).await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    let body: Value = serde_json::from_str(&answer.text()).expect("JSON");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token: {body}"
    );
    let bearer = body["token"].as_str().expect("a token").to_owned();
    assert_eq!(
        access_of(&bearer),
        json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]),
    );
    let tags = |bearer: String| {
        let client = client.clone();
        async move {
            let req = client
                .request(Proto::H1, "GET", "/v2/team/app/tags/list")
                .header("authorization", format!("Bearer {bearer}"));
            client.status_of(Proto::H1, req).await
        }
    };
    assert_eq!(
        tags(bearer.clone()).await,
        200,
        "the bearer works before revoke"
    );

    // The token audit line and the access line of the push name the robot.
    gate.wait_for_log(
        &[
            "token issued",
            "user=robot$ci",
            "granted=repository:team/app:pull,push",
        ],
        WITHIN,
    );
    gate.wait_for_log(
        &[
            "access",
            "method=PUT",
            "path=\"/v2/team/app/manifests/v1\"",
            "status=201",
            "user=\"robot$ci\"",
        ],
        WITHIN,
    );

    robot(dir.path(), &["revoke", "ci"]);
    eventually(
        "the revoked robot's bearer token to get 401",
        WITHIN,
        || {
            let answer = tags(bearer.clone());
            async move {
                let got = answer.await;
                (got == 401).then_some(()).ok_or(format!("still {got}"))
            }
        },
    )
    .await;

    // A robot that expires: its bearer token and its logins stop at once, not when
    // the token would have expired (`token.expiration` is minutes).
    let issued: Value = serde_json::from_slice(&robot(
        dir.path(),
        &[
            "create",
            "short",
            "--repo",
            "team/*",
            "--actions",
            "pull",
            "--expires",
            "3s",
            "--json",
        ],
    ))
    .expect("one JSON object");
    let short = issued["secret"].as_str().expect("secret").to_owned();
    let login = |secret: String| {
        let client = client.clone();
        async move {
            let req = client
                .request(
                    Proto::H1,
                    "GET",
                    &format!("/auth?service={SERVICE}&scope=repository:team/app:pull"),
                )
                .header("authorization", basic("robot$short", &secret));
            client.send_empty(Proto::H1, req).await
        }
    };
    let bearer = eventually("the new robot to log in", WITHIN, || {
        let answer = login(short.clone());
        async move {
            let answer = answer.await;
            if answer.status != 200 {
                return Err(format!("still {}", answer.status));
            }
            let body: Value = serde_json::from_str(&answer.text()).map_err(|e| e.to_string())?;
            body["token"]
                .as_str()
                .map(str::to_owned)
                .ok_or(format!("no token: {body}"))
        }
    })
    .await;
    assert_eq!(
        tags(bearer.clone()).await,
        200,
        "the bearer works before expiry"
    );
    eventually(
        "the expired robot's bearer token to get 401",
        std::time::Duration::from_secs(3) + WITHIN,
        || {
            let answer = tags(bearer.clone());
            async move {
                let got = answer.await;
                (got == 401).then_some(()).ok_or(format!("still {got}"))
            }
        },
    )
    .await;
    assert_eq!(
        login(short).await.status,
        401,
        "an expired robot cannot log in"
    );
    drop(registry);
}
