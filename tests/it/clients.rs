//! Real clients through the gate, as the nginx recipe serves them: skopeo's registry commands,
//! podman's login, push and pull of an image with a 100 MiB layer, and curl walking the API by hand as in the
//! tutorials. The real registry, the gate (in-process) and the clients all run on loopback; the
//! clients are bounded child processes with no state outside their temp dirs.
//!
//! A wrong password must end every command at once with an auth error in its own words, never
//! with a hang or a retry loop: each refused run is also timed against [`REFUSAL_BOUND`].

use std::fs;
use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::support::blocking;
use crate::support::client::{basic, Proto};
use crate::support::oci::{self, sha256_digest, OciImage};
use crate::support::podman::{self, Podman};
use crate::support::process::{run_bounded, Run};
use crate::support::proxy::TestProxy;
use crate::support::registry::Registry;
use crate::support::skopeo;

const MIB: usize = 1 << 20;
const USER: &str = "alice";
/// A space and a colon: `user:password` splits at the first colon only.
const PASSWORD: &str = "pa ss:w0rd";
const WRONG: &str = "alice:not-the-password";
/// Longest a refused command may take. A refusal is a round trip or two on loopback; the bound
/// catches a client that retries or hangs.
const REFUSAL_BOUND: Duration = Duration::from_secs(20);
/// Bound on each curl run (curl's own `--max-time` is lower).
const CURL_TIMEOUT: Duration = Duration::from_secs(30);

/// The real registry with the gate in front, user [`USER`] / [`PASSWORD`]. `throttle_off` stops
/// the brute-force throttle from turning the many refusals of one test into `429`s.
async fn gate_with_registry(throttle_off: bool) -> (Registry, TestProxy) {
    let registry = blocking(Registry::start).await;
    let mut builder = TestProxy::builder(registry.url()).user(USER, PASSWORD);
    if throttle_off {
        builder = builder.toml("[throttle]\nenabled = false\n");
    }
    (registry, builder.start().await)
}

/// Awaits `run` (a refused command) and checks it took less than [`REFUSAL_BOUND`].
async fn refused_quickly(what: &str, run: impl Future<Output = Run>) -> Run {
    let start = tokio::time::Instant::now();
    let run = run.await.expect_failure();
    let took = start.elapsed();
    assert!(
        took < REFUSAL_BOUND,
        "{what}: a refusal took {took:?}\n--- stderr ---\n{}",
        run.stderr
    );
    run
}

fn credentials() -> String {
    format!("{USER}:{PASSWORD}")
}

fn json(text: &str, what: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {text}"))
}

/// A JSON array of strings as a sorted `Vec`.
fn sorted_strings(value: &Value, what: &str) -> Vec<String> {
    let mut strings: Vec<String> = value
        .as_array()
        .unwrap_or_else(|| panic!("{what} is not an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("array of strings").to_owned())
        .collect();
    strings.sort();
    strings
}

/// The auth entry a login wrote for `host`: `auths.HOST.auth`, decoded.
fn stored_login(auth_file: &Path, host: &str) -> String {
    let text = fs::read_to_string(auth_file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", auth_file.display()));
    let entry = &json(&text, "the auth file")["auths"][host]["auth"];
    let encoded = entry
        .as_str()
        .unwrap_or_else(|| panic!("no login for {host} in {text}"));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("auth entry is base64");
    String::from_utf8(decoded).expect("auth entry is UTF-8")
}

// ---------------------------------------------------------------------------------------------
// skopeo

/// Everything a skopeo command needs to reach the gate with the stored login.
struct Skopeo {
    auth: String,
    trust: String,
    repo: String,
}

impl Skopeo {
    fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repo)
    }

    /// `skopeo CMD --retry-times 0 --authfile A --cert-dir T ARGS`.
    fn run(&self, cmd: &str, args: &[&str]) -> Run {
        let mut all = vec![
            cmd,
            "--retry-times",
            "0",
            "--authfile",
            &self.auth,
            "--cert-dir",
            &self.trust,
        ];
        all.extend_from_slice(args);
        skopeo::run(&all)
    }

    fn push(&self, image: &OciImage) {
        let args = [
            "--dest-authfile",
            &self.auth,
            "--dest-cert-dir",
            &self.trust,
            "--preserve-digests",
        ];
        skopeo::copy(&image.reference(), &self.image(&image.tag), &args).expect_success();
    }

    fn tags(&self) -> Vec<String> {
        let run = self.run("list-tags", &[&self.repo]).expect_success();
        sorted_strings(&json(&run.stdout, "list-tags output")["Tags"], "Tags")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_login_push_inspect_list_tags_pull_and_delete_through_the_gate() {
    let (_registry, proxy) = gate_with_registry(false).await;
    let host = proxy.authority();
    let dir = tempfile::tempdir().expect("tempdir");
    let sk = Skopeo {
        auth: dir.path().join("auth.json").display().to_string(),
        trust: proxy.trust_dir(),
        repo: format!("docker://{host}/team/app"),
    };
    let root = dir.path().to_owned();
    blocking(move || {
        let v1 = oci::build_image(&root.join("src"), "v1", &[2000, 256 * 1024, 300], 41);
        let v2 = oci::build_image(&root.join("src"), "v2", &[5000], 43);

        let login = skopeo::run(&[
            "login",
            "--authfile",
            &sk.auth,
            "--cert-dir",
            &sk.trust,
            "-u",
            USER,
            "-p",
            PASSWORD,
            &host,
        ])
        .expect_success();
        assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);
        assert_eq!(stored_login(Path::new(&sk.auth), &host), credentials());

        // Every command from here on authenticates with the stored login only.
        sk.push(&v1);
        sk.push(&v2);

        let inspect = sk.run("inspect", &[&sk.image("v1")]).expect_success();
        let inspect = json(&inspect.stdout, "skopeo inspect output");
        assert_eq!(inspect["Name"], format!("{host}/team/app"));
        assert_eq!(inspect["Digest"], v1.manifest_digest.as_str(), "{inspect}");
        assert_eq!(
            sorted_strings(&inspect["RepoTags"], "RepoTags"),
            ["v1", "v2"]
        );
        assert_eq!(inspect["Layers"], serde_json::json!(v1.layer_digests));

        assert_eq!(sk.tags(), ["v1", "v2"]);

        let pulled_dir = root.join("pulled");
        skopeo::copy(
            &sk.image("v1"),
            &format!("oci:{}:v1", pulled_dir.display()),
            &[
                "--src-authfile",
                &sk.auth,
                "--src-cert-dir",
                &sk.trust,
                "--dest-oci-accept-uncompressed-layers",
            ],
        )
        .expect_success();
        let pulled = oci::read_layout(&pulled_dir, "v1");
        assert_eq!(pulled.manifest_digest, v1.manifest_digest);
        assert_eq!(pulled.layer_digests, v1.layer_digests);
        pulled.verify_blobs();

        sk.run("delete", &[&sk.image("v2")]).expect_success();
        let gone = sk.run("inspect", &[&sk.image("v2")]).expect_failure();
        assert!(
            gone.stderr.contains("manifest unknown"),
            "inspect after delete: {}",
            gone.stderr
        );
        assert_eq!(sk.tags(), ["v1"], "v1 survives the delete of v2");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_with_wrong_credentials_fails_fast_with_an_auth_error() {
    let (_registry, proxy) = gate_with_registry(true).await;
    let host = proxy.authority();
    let trust = proxy.trust_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let image = oci::build_image(&dir.path().join("src"), "v1", &[1000, 3000], 51);
    let repo = format!("docker://{host}/team/app");
    let (v1, nope) = (format!("{repo}:v1"), format!("{repo}:nope"));
    {
        let (src, v1, trust) = (image.reference(), v1.clone(), trust.clone());
        let creds = credentials();
        blocking(move || {
            skopeo::copy(
                &src,
                &v1,
                &["--dest-creds", &creds, "--dest-cert-dir", &trust],
            )
            .expect_success()
        })
        .await;
    }
    let pulled = format!("oci:{}:v1", dir.path().join("pulled").display());
    let src = image.reference();
    let bob = format!("bob:{PASSWORD}");
    let cases: [(&str, &[&str], &str); 8] = [
        (
            "login, wrong password",
            &[
                "login",
                "--cert-dir",
                &trust,
                "-u",
                USER,
                "-p",
                "not-the-password",
                &host,
            ],
            "invalid username/password",
        ),
        (
            "login, unknown user",
            &[
                "login",
                "--cert-dir",
                &trust,
                "-u",
                "bob",
                "-p",
                PASSWORD,
                &host,
            ],
            "invalid username/password",
        ),
        (
            "inspect",
            &["inspect", "--cert-dir", &trust, "--creds", WRONG, &v1],
            "unauthorized",
        ),
        (
            "inspect, unknown user",
            &["inspect", "--cert-dir", &trust, "--creds", &bob, &v1],
            "unauthorized",
        ),
        (
            "list-tags",
            &["list-tags", "--cert-dir", &trust, "--creds", WRONG, &repo],
            "unauthorized",
        ),
        (
            "delete",
            &["delete", "--cert-dir", &trust, "--creds", WRONG, &v1],
            "authentication required",
        ),
        (
            "copy (pull)",
            &[
                "copy",
                "--src-cert-dir",
                &trust,
                "--src-creds",
                WRONG,
                &v1,
                &pulled,
            ],
            "unauthorized",
        ),
        (
            "copy (push)",
            &[
                "copy",
                "--dest-cert-dir",
                &trust,
                "--dest-creds",
                WRONG,
                &src,
                &nope,
            ],
            "authentication required",
        ),
    ];
    for (what, args, expected) in cases {
        // No retries: a refusal must show at once (`login` has no such flag).
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if args[0] != "login" {
            args.splice(1..1, ["--retry-times".to_owned(), "0".to_owned()]);
        }
        let run = refused_quickly(
            what,
            blocking(move || skopeo::run(&args.iter().map(String::as_str).collect::<Vec<_>>())),
        )
        .await;
        assert!(
            run.stderr.contains(expected),
            "{what}: stderr lacks {expected:?}: {}",
            run.stderr
        );
    }

    // The refused delete and push changed nothing.
    let creds = credentials();
    let tags = blocking(move || {
        let args = [
            "list-tags",
            "--retry-times",
            "0",
            "--cert-dir",
            &trust,
            "--creds",
            &creds,
            &repo,
        ];
        let run = skopeo::run(&args).expect_success();
        sorted_strings(&json(&run.stdout, "list-tags output")["Tags"], "Tags")
    })
    .await;
    assert_eq!(tags, ["v1"]);
}

// ---------------------------------------------------------------------------------------------
// podman

/// The image ID `podman pull` prints as its last line of stdout.
fn pulled_id(run: &Run) -> String {
    let id = run.stdout.lines().last().unwrap_or_default().trim();
    assert_eq!(
        id.len(),
        64,
        "no image ID in `{}` stdout: {}",
        run.command,
        run.stdout
    );
    id.to_owned()
}

/// `podman image inspect NAME`, the one image's JSON object.
fn podman_inspect(podman: &Podman, name: &str) -> Value {
    let run = podman.run(&["image", "inspect", name]).expect_success();
    json(&run.stdout, "podman image inspect output")[0].clone()
}

/// Imports `image` from its OCI layout and returns the image ID.
fn podman_import(podman: &Podman, image: &OciImage) -> String {
    pulled_id(
        &podman
            .import_oci(&image.layout, &image.tag)
            .expect_success(),
    )
}

/// Podman recompresses on push: the OCI layout's uncompressed layers go up gzipped, so the
/// manifest in the registry has other layer digests (and another digest itself) than the one
/// imported. What stays comparable: the config (its digest is the image ID) with its `diff_ids`,
/// which are the uncompressed layer digests and which podman checks on pull; and the manifest
/// the registry serves, whose digest `push --digestfile` reports and the pulled image records.
#[tokio::test(flavor = "multi_thread")]
async fn podman_logs_in_pushes_and_pulls_a_100_mib_image_through_the_gate() {
    let (_registry, proxy) = gate_with_registry(false).await;
    let host = proxy.authority();
    let trust = proxy.trust_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    blocking(move || {
        let image = oci::build_image(&root.join("src"), "v1", &[3000, 100 * MIB, 12 * 1024], 61);
        let podman = Podman::new();
        let policy = podman.policy();

        let login = podman
            .run_with_stdin(
                &[
                    "login",
                    "--cert-dir",
                    &trust,
                    "-u",
                    USER,
                    "--password-stdin",
                    &host,
                ],
                &format!("{PASSWORD}\n"),
                podman::TIMEOUT,
            )
            .expect_success();
        assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);
        assert_eq!(stored_login(&podman.auth_file(), &host), credentials());

        let id = podman_import(&podman, &image);
        assert_eq!(
            format!("sha256:{id}"),
            image.config_digest,
            "image ID = config digest"
        );
        let name = format!("{host}/team/app:v1");
        podman.run(&["tag", &id, &name]).expect_success();
        let digest_file = root.join("pushed-digest");
        podman
            .run(&[
                "push",
                "--signature-policy",
                &policy,
                "--cert-dir",
                &trust,
                "--digestfile",
                &digest_file.display().to_string(),
                &name,
            ])
            .expect_success();
        let pushed = fs::read_to_string(&digest_file).expect("push writes the digest file");

        podman.run(&["rmi", "--force", &id]).expect_success();
        let left = podman.run(&["images", "--quiet"]).expect_success();
        assert_eq!(
            left.stdout.trim(),
            "",
            "the local store is empty before the pull"
        );

        let pull = [
            "pull",
            "--signature-policy",
            &policy,
            "--cert-dir",
            &trust,
            &name,
        ];
        assert_eq!(pulled_id(&podman.run(&pull).expect_success()), id);
        let pulled = podman_inspect(&podman, &name);
        assert_eq!(
            pulled["RootFS"]["Layers"],
            serde_json::json!(image.layer_digests)
        );
        assert_eq!(pulled["Digest"], pushed.trim(), "pulled = pushed manifest");
        assert_eq!(pulled["RepoTags"], serde_json::json!([name]));

        // The manifest as the registry serves it, through the gate.
        let creds = credentials();
        let raw = skopeo::inspect_raw(
            &format!("docker://{name}"),
            &["--creds", &creds, "--cert-dir", &trust],
        )
        .expect_success();
        assert_eq!(sha256_digest(raw.stdout.as_bytes()), pushed.trim());
        let manifest = json(&raw.stdout, "the pushed manifest");
        assert_eq!(manifest["config"]["digest"], image.config_digest.as_str());
        let layers = manifest["layers"].as_array().expect("manifest has layers");
        assert_eq!(layers.len(), 3, "{manifest}");
        // Gzipped, the random 100 MiB layer shrinks only by its tar padding (some KiB).
        let big = layers[1]["size"].as_u64().expect("layer size");
        assert!(
            big > 99 * MIB as u64,
            "the big layer went up whole: {big} bytes"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn podman_with_wrong_credentials_fails_cleanly() {
    let (_registry, proxy) = gate_with_registry(true).await;
    let host = proxy.authority();
    let trust = proxy.trust_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let image = oci::build_image(&dir.path().join("src"), "v1", &[1000, 3000], 71);
    let podman = std::sync::Arc::new(Podman::new());
    let name = format!("{host}/team/app:v1");
    {
        let (podman, image, name) = (podman.clone(), image.clone(), name.clone());
        blocking(move || {
            let id = podman_import(&podman, &image);
            podman.run(&["tag", &id, &name]).expect_success();
        })
        .await;
    }

    let login = {
        let (podman, trust, host) = (podman.clone(), trust.clone(), host.clone());
        refused_quickly(
            "podman login",
            blocking(move || {
                podman.run_with_stdin(
                    &[
                        "login",
                        "--cert-dir",
                        &trust,
                        "-u",
                        USER,
                        "--password-stdin",
                        &host,
                    ],
                    "not-the-password\n",
                    REFUSAL_BOUND,
                )
            }),
        )
        .await
    };
    assert!(
        login.stderr.contains("invalid username/password"),
        "{}",
        login.stderr
    );
    let auth = fs::read_to_string(podman.auth_file()).expect("reading the auth file");
    assert!(
        !auth.contains(&host),
        "a refused login stores nothing: {auth}"
    );

    for (what, verb, expected) in [
        (
            "podman push",
            "push",
            "unauthorized: authentication required",
        ),
        ("podman pull", "pull", "unauthorized"),
    ] {
        let (podman, trust, name) = (podman.clone(), trust.clone(), name.clone());
        let run = refused_quickly(
            what,
            blocking(move || {
                let policy = podman.policy();
                let args = [
                    verb,
                    "--signature-policy",
                    &policy,
                    "--cert-dir",
                    &trust,
                    "--creds",
                    WRONG,
                    &name,
                ];
                run_bounded(podman.command(&args), "podman", REFUSAL_BOUND)
            }),
        )
        .await;
        assert!(run.stderr.contains(expected), "{what}: {}", run.stderr);
        assert_eq!(
            run.status.code(),
            Some(125),
            "{what}: podman's exit code for errors"
        );
    }

    // The refused push left nothing in the registry.
    let client = proxy.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/team/app/tags/list")
        .header("authorization", basic(USER, PASSWORD));
    assert_eq!(client.send_empty(Proto::H1, req).await.status, 404);
}

// ---------------------------------------------------------------------------------------------
// curl

/// One `curl -i` response.
#[derive(Debug)]
struct CurlResponse {
    /// `HTTP/1.1` or `HTTP/2`.
    version: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl CurlResponse {
    /// The values of header `name` (case-insensitive, as HTTP field names are).
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses `curl -i` output: the status line, header lines, a blank line, the body.
fn parse_curl(stdout: &str) -> CurlResponse {
    let (head, body) = stdout
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in curl output: {stdout:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default().to_owned();
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
        .collect();
    CurlResponse {
        version,
        status,
        headers,
        body: body.to_owned(),
    }
}

/// `curl -q -sS -i --cacert CA <proto> [-u USER:PASSWORD] URL`, bounded.
fn curl(ca: &Path, proto: &str, user: Option<&str>, url: &str) -> CurlResponse {
    let mut command = Command::new("curl");
    command
        // `-q` first: no ~/.curlrc.
        .args(["-q", "-sS", "-i", "--max-time", "20", proto, "--cacert"])
        .arg(ca);
    if let Some(user) = user {
        command.args(["-u", user]);
    }
    command.arg(url);
    parse_curl(
        &run_bounded(command, "curl", CURL_TIMEOUT)
            .expect_success()
            .stdout,
    )
}

/// The token-less flow of the tutorials' curl script (seed 004), with Basic auth instead of a
/// token: ask, get the challenge, answer it, list the catalog.
#[tokio::test(flavor = "multi_thread")]
async fn curl_walks_the_api_with_basic_auth() {
    let (_registry, proxy) = gate_with_registry(false).await;
    let host = proxy.authority();
    let dir = tempfile::tempdir().expect("tempdir");
    let image = oci::build_image(&dir.path().join("src"), "v1", &[1000], 81);
    let (src, dest) = (image.reference(), format!("docker://{host}/team/app:v1"));
    let (creds, trust) = (credentials(), proxy.trust_dir());
    blocking(move || {
        skopeo::copy(
            &src,
            &dest,
            &["--dest-creds", &creds, "--dest-cert-dir", &trust],
        )
        .expect_success()
    })
    .await;

    let ca = proxy.path("ca.crt");
    let base = format!("https://{host}");
    blocking(move || {
        let creds = credentials();
        for (proto, version) in [("--http1.1", "HTTP/1.1"), ("--http2", "HTTP/2")] {
            let get = |user: Option<&str>, path: &str| {
                let r = curl(&ca, proto, user, &format!("{base}{path}"));
                assert_eq!(r.version, version, "{proto} {path}");
                r
            };
            for (what, user) in [("no credentials", None), ("wrong password", Some(WRONG))] {
                let r = get(user, "/v2/");
                assert_eq!(r.status, 401, "{proto} {what}: {r:?}");
                assert_eq!(
                    r.header("www-authenticate"),
                    [r#"Basic realm="Registry realm""#]
                );
                assert_eq!(
                    r.header("docker-distribution-api-version"),
                    ["registry/2.0"]
                );
                let body = json(&r.body, "the 401 body");
                assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{proto} {what}");
            }

            let r = get(Some(&creds), "/v2/");
            assert_eq!((r.status, r.body.as_str()), (200, "{}"), "{proto}: {r:?}");
            assert_eq!(
                r.header("docker-distribution-api-version"),
                ["registry/2.0"]
            );

            let r = get(Some(&creds), "/v2/_catalog");
            assert_eq!(r.status, 200, "{proto}: {r:?}");
            let catalog = json(&r.body, "the catalog");
            assert_eq!(catalog["repositories"], serde_json::json!(["team/app"]));

            let r = get(Some(&creds), "/v2/team/app/tags/list");
            assert_eq!(r.status, 200, "{proto}: {r:?}");
            let tags = json(&r.body, "the tag list");
            assert_eq!(
                tags,
                serde_json::json!({"name": "team/app", "tags": ["v1"]})
            );
        }
    })
    .await;
}
