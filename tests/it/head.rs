//! A HEAD answer never has a body (RFC 9110 §9.3.2), over HTTP/1.1
//! and HTTP/2, whoever made it. Over HTTP/2 the gate's own answers (401, 403, 404,
//! its filtered catalog, the token endpoint's JSON) used to go out with DATA frames,
//! which clients refuse: curl reports `PROTOCOL_ERROR`, hyper's client an error.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;

use crate::support::client::{basic, Answer, Client, Proto};
use crate::support::gate::{write_setup, GateProcess};
use crate::support::process::run_bounded;
use crate::support::proxy::TestProxy;
use crate::support::upstream::{Reply, TestUpstream};

/// Bound on one curl run (curl's own `--max-time` is lower).
const CURL_TIMEOUT: Duration = Duration::from_secs(30);

const RULES: &str = "[authz]\nrules = [\n\
                     { account = \"alice\", name = \"mine/**\", actions = [\"pull\", \"catalog\"] },\n]\n";

/// The same request as GET and as HEAD over `proto`; checks the HEAD answer has no
/// body (and, when its status is the GET's, the GET's Content-Length or none).
async fn get_and_head(
    client: &Client,
    proto: Proto,
    path: &str,
    headers: &[(&str, http::HeaderValue)],
) -> (Answer, Answer) {
    let mut answers = Vec::new();
    for method in ["GET", "HEAD"] {
        let mut req = client.request(proto, method, path);
        for (name, value) in headers {
            req = req.header(*name, value.clone());
        }
        let req = req
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        let response = client
            .send(proto, req)
            .await
            .unwrap_or_else(|e| panic!("{proto:?} {method} {path}: {e}"));
        let (parts, body) = response.into_parts();
        let body = http_body_util::BodyExt::collect(body)
            .await
            .unwrap_or_else(|e| panic!("{proto:?} {method} {path}: body: {e:?}"))
            .to_bytes();
        answers.push(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        });
    }
    let head = answers.pop().expect("HEAD answer");
    let get = answers.pop().expect("GET answer");
    let what = format!("{proto:?} HEAD {path}");
    assert!(head.body.is_empty(), "{what}: body {:?}", head.text());
    assert!(
        !get.body.is_empty(),
        "{what}: the GET has a body to leave out"
    );
    if head.status == get.status {
        // The Content-Length a GET would get, or none.
        let lengths = head.all("content-length");
        assert!(
            lengths.is_empty() || lengths == [get.body.len().to_string()],
            "{what}: content-length {lengths:?}, GET body {} bytes",
            get.body.len()
        );
    }
    (get, head)
}

#[tokio::test]
async fn head_answers_of_the_gate_have_no_body_over_http1_and_http2() {
    let upstream = TestUpstream::start_with(|parts| {
        let mut reply = Reply::default();
        if parts.uri.path() == "/v2/_catalog" {
            reply.body = Bytes::from_static(br#"{"repositories":["mine/app","theirs/app"]}"#);
        } else {
            reply.body = Bytes::from_static(br#"{"schemaVersion":2}"#);
        }
        reply
    })
    .await;
    let proxy = TestProxy::builder(upstream.url())
        .user("alice", "pw")
        .toml(RULES)
        .start()
        .await;
    let client = proxy.client();
    let alice = [("authorization", basic("alice", "pw"))];
    let old_docker = [(
        "user-agent",
        http::HeaderValue::from_static("docker/1.5.0 go/go1.4"),
    )];
    for proto in [Proto::H1, Proto::H2] {
        let (_, head) = get_and_head(&client, proto, "/v2/", &[]).await;
        assert_eq!(head.status, 401, "{proto:?}");
        assert_eq!(head.one("content-type"), "application/json");
        assert_eq!(
            head.one("www-authenticate"),
            "Basic realm=\"Registry realm\""
        );
        assert_eq!(head.one("docker-distribution-api-version"), "registry/2.0");

        let (_, head) = get_and_head(&client, proto, "/v2/", &old_docker).await;
        assert_eq!(head.status, 404, "{proto:?} blocked user agent");
        assert_eq!(head.one("docker-distribution-api-version"), "registry/2.0");

        let denied = "/v2/theirs/app/manifests/v1";
        let (_, head) = get_and_head(&client, proto, denied, &alice).await;
        assert_eq!(head.status, 403, "{proto:?} denied pull");
        assert_eq!(head.one("docker-distribution-api-version"), "registry/2.0");

        let (_, head) = get_and_head(&client, proto, "/elsewhere", &[]).await;
        assert_eq!(head.status, 404, "{proto:?} outside /v2/");

        // The filtered catalog is the gate's answer to GET; HEAD is not a catalog
        // read to the rules (the registry routes only GET there): refused, bodiless.
        let (get, head) = get_and_head(&client, proto, "/v2/_catalog", &alice).await;
        assert_eq!(get.text(), r#"{"repositories":["mine/app"]}"#, "filtered");
        assert_eq!(head.status, 403, "{proto:?} catalog");

        // The registry's own answer to HEAD was never the problem, and stays bodiless.
        let allowed = "/v2/mine/app/manifests/v1";
        let (get, head) = get_and_head(&client, proto, allowed, &alice).await;
        assert_eq!(
            (get.status.as_u16(), head.status.as_u16()),
            (200, 200),
            "{proto:?} allowed pull"
        );
    }
}

#[tokio::test]
async fn the_token_endpoint_answers_head_without_a_body() {
    let proxy = TestProxy::builder("http://127.0.0.1:9")
        .user("alice", "pw")
        .token("head-test", "")
        .start()
        .await;
    let client = proxy.client();
    let alice = [("authorization", basic("alice", "pw"))];
    for proto in [Proto::H1, Proto::H2] {
        // The endpoint takes GET and POST; HEAD gets its JSON error, without the JSON.
        let (get, head) = get_and_head(&client, proto, "/auth?service=head-test", &alice).await;
        assert_eq!(get.status, 200, "{proto:?}: {}", get.text());
        assert_eq!(head.status, 405, "{proto:?}");
        assert_eq!(head.one("content-type"), "application/json");
    }
}

/// `curl -q -sS -I --max-time 20 <proto> --cacert CA [args] URL`: its exit status,
/// status line and headers.
fn curl_head(ca: &Path, proto: &str, args: &[&str], url: &str) -> (i32, String) {
    let mut command = Command::new("curl");
    command
        .args(["-q", "-sS", "-I", "--max-time", "20", proto, "--cacert"])
        .arg(ca)
        .args(args)
        .arg(url);
    let run = run_bounded(command, "curl", CURL_TIMEOUT);
    let code = run.status.code().unwrap_or(-1);
    (code, format!("{}{}", run.stdout, run.stderr))
}

/// Regression: the real binary and curl, the client that reported `PROTOCOL_ERROR`.
#[tokio::test(flavor = "multi_thread")]
async fn regression_curl_head_gets_a_clean_answer_over_http2_and_http1() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &upstream.url(), RULES);
    let gate = GateProcess::start(dir.path());
    let base = format!("https://localhost:{}", gate.addr.port());
    let ca = dir.path().join("certs/ca.crt");
    tokio::task::spawn_blocking(move || {
        for (proto, version) in [("--http2", "HTTP/2"), ("--http1.1", "HTTP/1.1")] {
            let cases: [(&[&str], &str, u16); 3] = [
                (&[], "/v2/", 401),
                (&["-A", "docker/1.5.0 go/go1.4"], "/v2/", 404),
                (&["-u", "alice:pw"], "/v2/theirs/app/manifests/v1", 403),
            ];
            for (args, path, status) in cases {
                let (code, out) = curl_head(&ca, proto, args, &format!("{base}{path}"));
                let what = format!("curl {proto} -I {args:?} {path}");
                assert_eq!(code, 0, "{what}: {out}");
                let first = out.lines().next().unwrap_or_default();
                assert!(
                    first.starts_with(&format!("{version} {status}")),
                    "{what}: {out}"
                );
                assert!(
                    out.to_ascii_lowercase()
                        .contains("docker-distribution-api-version: registry/2.0"),
                    "{what}: {out}"
                );
            }
        }
    })
    .await
    .expect("curl runs");
    drop(gate);
}
