//! Every refusal goes through the gate's one error type: the token endpoint's
//! OAuth2 answers carry `error=` in their access-log line like every other
//! refusal, an oversized token form gets an OAuth2 answer (not a dropped
//! connection), and a registry that never answers a catalog page is a 504 like
//! every other upstream timeout. All against the real binary.

use std::time::Duration;

use serde_json::Value;

use crate::support::client::{basic, Proto};
use crate::support::gate::{write_setup, GateProcess};
use crate::token::write_token_gate;

const LOG_WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_refusals_are_logged_with_their_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_token_gate(dir.path(), None, "", "");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();

    let req = client
        .request(Proto::H1, "POST", "/auth")
        .header("content-type", "application/x-www-form-urlencoded");
    let answer = client
        .send_bytes(Proto::H1, req, b"grant_type=authorization_code&code=x")
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.one("content-type"), "application/json");
    assert_eq!(answer.one("cache-control"), "no-store");
    assert_eq!(
        answer.text(),
        r#"{"error":"unsupported_grant_type","error_description":"grant_type \"authorization_code\" is not supported (password, refresh_token)"}"#
    );
    let line = gate.wait_for_log(
        &["access", "method=POST", "path=\"/auth\"", "status=400"],
        LOG_WAIT,
    );
    assert!(
        line.contains("error=\"oauth unsupported_grant_type: grant_type \\\"authorization_code\\\" is not supported (password, refresh_token)\""),
        "{line}"
    );

    let answer = client
        .send_empty(Proto::H1, client.request(Proto::H1, "PUT", "/auth"))
        .await;
    assert_eq!(answer.status, 405, "{}", answer.text());
    assert_eq!(
        answer.text(),
        r#"{"error":"invalid_request","error_description":"use GET or POST"}"#
    );
    let line = gate.wait_for_log(&["access", "method=PUT", "status=405"], LOG_WAIT);
    assert!(
        line.contains("error=\"oauth invalid_request: use GET or POST\""),
        "{line}"
    );

    let answer = client
        .send_empty(
            Proto::H1,
            client.request(Proto::H1, "GET", "/auth?service=elsewhere"),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let line = gate.wait_for_log(&["access", "method=GET", "status=400"], LOG_WAIT);
    assert!(
        line.contains("error=\"oauth invalid_request: unknown service"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_token_form_is_an_oauth_invalid_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_token_gate(dir.path(), None, "", "");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    // `token::request::MAX_FORM_BYTES` is 16 KiB: one byte more is refused, and so
    // are megabytes, which the gate reads to the end (up to 4 MiB) and throws away,
    // so that the client, still sending, is not reset before it reads the answer.
    for size in [16 * 1024 + 1, 1024 * 1024, 3 * 1024 * 1024] {
        let mut form = b"grant_type=password&username=alice&password=pw-a&scope=".to_vec();
        form.resize(size, b'x');
        for proto in [Proto::H1, Proto::H2] {
            let req = client
                .request(proto, "POST", "/auth")
                .header("content-type", "application/x-www-form-urlencoded");
            let answer = client.send_bytes(proto, req, &form).await;
            assert_eq!(answer.status, 400, "{proto:?} {size}: {}", answer.text());
            let body: Value = serde_json::from_slice(&answer.body).expect("JSON body");
            assert_eq!(body["error"], "invalid_request", "{proto:?} {size}: {body}");
            assert_eq!(
                body["error_description"], "form body larger than 16384 bytes",
                "{proto:?} {size}: {body}"
            );
        }
    }
    let line = gate.wait_for_log(&["access", "path=\"/auth\"", "status=400"], LOG_WAIT);
    assert!(
        line.contains("error=\"oauth invalid_request: form body larger than 16384 bytes"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_registry_catalog_is_a_gateway_timeout() {
    // A registry that accepts connections and never answers: the listener's
    // backlog takes them, and nothing is ever read or written.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let upstream = format!("http://{}", silent.local_addr().expect("address"));
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        &upstream,
        "[authz]\nrules = [{ account = \"alice\", actions = [\"pull\", \"catalog\"] }]\n",
    );
    let config = dir.path().join("proxy.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        "[upstream]\n",
        "[upstream]\nread_timeout = \"1s\"\nconnect_timeout = \"1s\"\n",
    );
    std::fs::write(&config, text).expect("config");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/_catalog")
        .header("authorization", basic("alice", "pw"));
    let started = tokio::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), client.send_empty(Proto::H1, req))
        .await
        .expect("an answer within 10 s");
    assert_eq!(answer.status, 504, "{}", answer.text());
    assert!(
        answer.text().contains("registry timed out"),
        "{}",
        answer.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}, read_timeout is 1s",
        started.elapsed()
    );
    let line = gate.wait_for_log(&["access", "path=\"/v2/_catalog\"", "status=504"], LOG_WAIT);
    assert!(
        line.contains("error=\"upstream ") && line.contains("registry did not answer in time"),
        "{line}"
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_page_whose_body_stalls_is_a_gateway_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // A registry that answers a catalog page's head, one byte of its body, then
    // nothing (the connection stays open until the test ends).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let upstream = format!("http://{}", listener.local_addr().expect("address"));
    let registry = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..4 {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let mut head = [0u8; 4096];
            let n = tcp.read(&mut head).await.unwrap_or(0);
            let text = String::from_utf8_lossy(&head[..n]).into_owned();
            if text.starts_with("GET /v2/_catalog") {
                let page = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            content-length: 100\r\n\r\n{";
                let _ = tcp.write_all(page.as_bytes()).await;
            } else {
                // The start-up probe; closed, so the catalog request gets a
                // connection of its own.
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                continue;
            }
            held.push(tcp);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        &upstream,
        "[authz]\nrules = [{ account = \"alice\", actions = [\"pull\", \"catalog\"] }]\n",
    );
    let config = dir.path().join("proxy.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace("[upstream]\n", "[upstream]\nread_timeout = \"1s\"\n");
    std::fs::write(&config, text).expect("config");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/_catalog")
        .header("authorization", basic("alice", "pw"));
    let answer = tokio::time::timeout(Duration::from_secs(10), client.send_empty(Proto::H1, req))
        .await
        .expect("an answer within 10 s, not a wait for the stalled body");
    assert_eq!(answer.status, 504, "{}", answer.text());
    gate.wait_for_log(&["access", "path=\"/v2/_catalog\"", "status=504"], LOG_WAIT);
    gate.wait_for_log(&["upstream reachable", "status=200"], LOG_WAIT);
    registry.abort();
}
