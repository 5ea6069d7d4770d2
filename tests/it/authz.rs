//! Authorization end to end, with the real registry and skopeo: the recipe's promised
//! push group, per-repository rules with a filtered catalog, and anonymous pull.

use serde_json::Value;

use crate::support::blocking;
use crate::support::client::assert_json_error;
use crate::support::client::{basic, Proto};
use crate::support::oci::{self, OciImage};
use crate::support::process::Run;
use crate::support::proxy::TestProxy;
use crate::support::registry::Registry;
use crate::support::skopeo;

/// Pushes an image straight into the registry (plain HTTP, no gate).
fn seed(registry: &Registry, image: &OciImage, repo: &str) {
    let dest = format!("docker://{}/{repo}:{}", registry.host(), image.tag);
    skopeo::copy(
        &image.reference(),
        &dest,
        &["--dest-tls-verify=false", "--preserve-digests"],
    )
    .expect_success();
}

/// `skopeo copy` to the gate as `user:password`.
fn push(proxy_host: &str, trust: &str, image: &OciImage, repo: &str, creds: &str) -> Run {
    let dest = format!("docker://{proxy_host}/{repo}:{}", image.tag);
    skopeo::copy(
        &image.reference(),
        &dest,
        &[
            "--dest-creds",
            creds,
            "--dest-cert-dir",
            trust,
            "--preserve-digests",
        ],
    )
}

/// The registry (2.8) answers an OCI manifest only to a client that accepts it.
const ACCEPT_OCI: &str = "application/vnd.oci.image.manifest.v1+json";

fn manifest_status(registry: &Registry, repo: &str, tag: &str) -> u16 {
    crate::support::registry::request_head(
        registry.addr,
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Accept", ACCEPT_OCI)],
    )
    .expect("registry answers")
    .status
}

async fn setup(toml: &str, files: &[(&str, &str)], auth_keys: &str) -> (Registry, TestProxy) {
    let registry = blocking(Registry::start).await;
    let proxy = TestProxy::builder(registry.url())
        .user("alice", "pw-a")
        .user("bob", "pw-b")
        .user("carol", "pw-c")
        .auth_keys(auth_keys)
        .toml(toml)
        .start_with_files(files)
        .await;
    (registry, proxy)
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_push_group_pushes_and_everyone_pulls() {
    let (registry, proxy) = setup(
        "[authz]\npush_group = \"pushers\"\n",
        &[("groups", "pushers: alice\n")],
        "groups = \"groups\"",
    )
    .await;
    let (host, trust) = (proxy.authority(), proxy.trust_dir());
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    let registry = blocking(move || {
        let image = oci::build_image(&root.join("src"), "v1", &[64 * 1024], 7);
        // bob is not a pusher: refused with the registry's "denied" error, nothing stored.
        let refused = push(&host, &trust, &image, "team/app", "bob:pw-b").expect_failure();
        assert!(
            refused.stderr.contains("denied") || refused.stderr.contains("DENIED"),
            "{}",
            refused.stderr
        );
        assert_eq!(
            manifest_status(&registry, "team/app", "v1"),
            404,
            "no manifest left"
        );
        // alice is: stored.
        push(&host, &trust, &image, "team/app", "alice:pw-a").expect_success();
        assert_eq!(manifest_status(&registry, "team/app", "v1"), 200);
        // bob pulls it.
        let pulled = root.join("pulled");
        skopeo::copy(
            &format!("docker://{host}/team/app:v1"),
            &format!("oci:{}:v1", pulled.display()),
            &["--src-creds", "bob:pw-b", "--src-cert-dir", &trust],
        )
        .expect_success();
        registry
    })
    .await;
    drop(registry);

    // The same decisions at the HTTP level: 403 with the registry's DENIED error and the
    // API-version header, not 401 (so clients do not loop on credentials).
    let client = proxy.client();
    let req = client
        .request(Proto::H1, "DELETE", "/v2/team/app/manifests/v1")
        .header("authorization", basic("bob", "pw-b"));
    let answer = client.send_empty(Proto::H1, req).await;
    assert_json_error(&answer, 403, "DENIED", "bob deletes a manifest");
    assert_eq!(
        answer.one("docker-distribution-api-version"),
        "registry/2.0"
    );
    // Unknown /v2/ paths are denied under rules.
    let req = client
        .request(Proto::H1, "GET", "/v2/team/app/nonsense")
        .header("authorization", basic("alice", "pw-a"));
    assert_eq!(client.send_empty(Proto::H1, req).await.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_filter_the_catalog_and_open_a_repository_to_anonymous_pulls() {
    let rules = r#"
[[authz.rules]]
account = "carol"
name = "team-a/**"
actions = ["pull", "push"]
[[authz.rules]]
account = "carol"
actions = ["catalog"]
[[authz.rules]]
account = "anonymous"
name = "public/*"
actions = ["pull"]
[[authz.rules]]
account = "alice"
actions = ["*"]
"#;
    let (registry, proxy) = setup(rules, &[], "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    let registry = blocking(move || {
        let image = oci::build_image(&root.join("src"), "v1", &[32 * 1024], 9);
        for repo in [
            "team-a/app",
            "team-a/tools/lint",
            "team-b/app",
            "public/base",
        ] {
            seed(&registry, &image, repo);
        }
        registry
    })
    .await;

    let client = proxy.client();
    let catalog = |user: &'static str, password: &'static str, query: &'static str| {
        let client = client.clone();
        async move {
            let req = client
                .request(Proto::H1, "GET", &format!("/v2/_catalog{query}"))
                .header("authorization", basic(user, password));
            client.send_empty(Proto::H1, req).await
        }
    };
    let names = |text: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(text).expect("catalog JSON");
        v["repositories"]
            .as_array()
            .expect("repositories")
            .iter()
            .map(|s| s.as_str().expect("name").to_string())
            .collect()
    };
    let carol = catalog("carol", "pw-c", "").await;
    assert_eq!(carol.status, 200, "{}", carol.text());
    assert_eq!(names(&carol.text()), ["team-a/app", "team-a/tools/lint"]);
    let alice = catalog("alice", "pw-a", "").await;
    assert_eq!(
        names(&alice.text()),
        [
            "public/base",
            "team-a/app",
            "team-a/tools/lint",
            "team-b/app"
        ]
    );
    // Pages of one, with a Link to the next, as the registry paginates.
    let first = catalog("carol", "pw-c", "?n=1").await;
    assert_eq!(names(&first.text()), ["team-a/app"]);
    let link = first.one("link");
    assert_eq!(link, "</v2/_catalog?last=team-a%2Fapp&n=1>; rel=\"next\"");
    let second = catalog("carol", "pw-c", "?n=1&last=team-a%2Fapp").await;
    assert_eq!(names(&second.text()), ["team-a/tools/lint"]);
    assert!(second.headers.get("link").is_none(), "last page");
    // bob has no rule at all: no catalog.
    assert_eq!(catalog("bob", "pw-b", "").await.status, 403);

    // carol: team-a/** only; `*` does not cross `/`, `**` does.
    let status =
        |user: &'static str, password: &'static str, method: &'static str, path: &'static str| {
            let client = client.clone();
            async move {
                let req = client
                    .request(Proto::H1, method, path)
                    .header("accept", ACCEPT_OCI)
                    .header("authorization", basic(user, password));
                client.send_empty(Proto::H1, req).await.status.as_u16()
            }
        };
    assert_eq!(
        status("carol", "pw-c", "GET", "/v2/team-a/tools/lint/manifests/v1").await,
        200
    );
    assert_eq!(
        status("carol", "pw-c", "GET", "/v2/team-b/app/manifests/v1").await,
        403
    );
    assert_eq!(
        status("carol", "pw-c", "DELETE", "/v2/team-a/app/manifests/v1").await,
        403
    );

    // A cross-repository mount needs pull on the source too.
    let layer = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let mount = |from: &'static str| {
        let client = client.clone();
        async move {
            let path = format!("/v2/team-a/app/blobs/uploads/?mount={layer}&from={from}");
            let req = client
                .request(Proto::H1, "POST", &path)
                .header("authorization", basic("carol", "pw-c"));
            client.send_empty(Proto::H1, req).await.status.as_u16()
        }
    };
    assert_eq!(mount("team-b%2Fapp").await, 403);
    assert_eq!(mount("team-b/app").await, 403);
    // Allowed: the registry then answers (202, starting an upload, as the blob is unknown).
    assert_eq!(mount("team-a/tools/lint").await, 202);

    // Anonymous: /v2/ still challenges (docker decides from it whether to send
    // credentials), public/* pulls without credentials, anything else is 401.
    let anonymous = |method: &'static str, path: &'static str| {
        let client = client.clone();
        async move {
            let req = client
                .request(Proto::H1, method, path)
                .header("accept", ACCEPT_OCI);
            client.send_empty(Proto::H1, req).await
        }
    };
    let ping = anonymous("GET", "/v2/").await;
    assert_eq!(ping.status, 401);
    assert!(ping.one("www-authenticate").starts_with("Basic realm="));
    assert_eq!(
        anonymous("GET", "/v2/public/base/manifests/v1")
            .await
            .status,
        200
    );
    assert_eq!(
        anonymous("GET", "/v2/team-a/app/manifests/v1").await.status,
        401
    );
    assert_eq!(anonymous("GET", "/v2/_catalog").await.status, 401);
    assert_eq!(
        anonymous("DELETE", "/v2/public/base/manifests/v1")
            .await
            .status,
        401
    );
    let (host, trust) = (proxy.authority(), proxy.trust_dir());
    let root = dir.path().to_owned();
    blocking(move || {
        let pulled = root.join("anon");
        skopeo::copy(
            &format!("docker://{host}/public/base:v1"),
            &format!("oci:{}:v1", pulled.display()),
            &["--src-no-creds", "--src-cert-dir", &trust],
        )
        .expect_success();
        let refused = skopeo::copy(
            &format!("docker://{host}/team-b/app:v1"),
            &format!("oci:{}:v1", root.join("anon2").display()),
            &["--src-no-creds", "--src-cert-dir", &trust],
        )
        .expect_failure();
        assert!(
            refused.stderr.contains("401")
                || refused.stderr.to_lowercase().contains("unauthorized")
                || refused.stderr.contains("authentication required"),
            "{}",
            refused.stderr
        );
    })
    .await;
    drop(registry);
}

#[tokio::test(flavor = "multi_thread")]
async fn group_file_changes_apply_without_a_restart() {
    use crate::support::gate::{replace_file, write_setup, GateProcess};
    use crate::support::upstream::TestUpstream;
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        &upstream.url(),
        "[authz]\npush_group = \"pushers\"",
    );
    let config = dir.path().join("proxy.toml");
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(
        &config,
        text.replace(
            "htpasswd = \"htpasswd\"",
            "htpasswd = \"htpasswd\"\ngroups = \"groups\"",
        ),
    )
    .expect("write");
    std::fs::write(dir.path().join("groups"), "pushers: nobody\n").expect("groups");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let put = || {
        let client = client.clone();
        async move {
            let req = client
                .request(Proto::H1, "PUT", "/v2/team/app/manifests/v1")
                .header("authorization", basic("alice", "pw"));
            client
                .send_bytes(Proto::H1, req, b"{}")
                .await
                .status
                .as_u16()
        }
    };
    assert_eq!(put().await, 403);
    replace_file(&dir.path().join("groups"), "pushers: nobody alice\n");
    crate::support::eventually(
        "alice's PUT to be let in once she is a pusher",
        std::time::Duration::from_secs(3),
        || async {
            let status = put().await;
            (status == 200)
                .then_some(())
                .ok_or_else(|| format!("still {status}:\n{}", gate.log()))
        },
    )
    .await;
    // A broken group line is ignored, as at start: the membership it
    // held no longer counts, and the warning names the line.
    replace_file(&dir.path().join("groups"), "pushers alice\n");
    let line = gate.wait_for_log(
        &["group file line ignored", "groups:1"],
        std::time::Duration::from_secs(3),
    );
    assert!(line.contains("no ':'"), "{line}");
    assert_eq!(put().await, 403, "alice is no longer a pusher");
}
