//! The audit log keeps writes whose client went away before the answer: the
//! registry carried the write out, so the line must be
//! there, with status 499 as nginx logs it, even though no response was ever sent.

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;

use crate::support::client::basic;
use crate::support::gate::{write_setup, GateProcess};
use crate::support::upstream::{Reply, TestUpstream};

/// How long the upstream sits on every request: far longer than the test waits
/// for the log line, so the line cannot come from an answer.
const UPSTREAM_DELAY: Duration = Duration::from_secs(20);

async fn slow_upstream() -> TestUpstream {
    TestUpstream::start_with(|_| Reply {
        delay: UPSTREAM_DELAY,
        ..Reply::default()
    })
    .await
}

#[tokio::test]
async fn an_http1_write_whose_client_closes_before_the_answer_is_logged() {
    let upstream = slow_upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &upstream.url(), "");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let mut tls = client.connect_raw().await;
    let manifest = br#"{"schemaVersion":2}"#;
    let head = format!(
        "PUT /v2/alice/app/manifests/gone HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\n\r\n",
        client.authority(),
        basic("alice", "pw").to_str().expect("ASCII"),
        manifest.len()
    );
    tls.write_all(head.as_bytes()).await.expect("send head");
    tls.write_all(manifest).await.expect("send body");
    tls.flush().await.expect("flush");
    let forwarded = upstream.next_request().await;
    assert_eq!(forwarded.target, "/v2/alice/app/manifests/gone");
    assert_eq!(forwarded.body, manifest, "the registry got the whole write");
    drop(tls);
    let line = gate.wait_for_log(
        &["access:", "status=499", "manifests/gone"],
        Duration::from_secs(5),
    );
    for field in [
        "user=\"alice\"",
        "method=PUT",
        "action=\"push\"",
        "bytes_in=19",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    assert!(line.contains("client went away"), "{line}");
}

// Multi-threaded: the log wait below blocks its thread, and the connection task
// must still run to send the reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_write_whose_stream_is_reset_before_the_answer_is_logged() {
    let upstream = slow_upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &upstream.url(), "");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    // A raw HTTP/2 client, to reset the stream itself (RST_STREAM CANCEL) once the
    // gate has forwarded the request, while the connection stays open.
    let tls = client.connect_raw_h2().await;
    let (mut h2, connection) = h2::client::handshake(tls).await.expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    let req = http::Request::delete(format!(
        "https://{}/v2/alice/app/manifests/sha256:0123",
        client.authority()
    ))
    .header("authorization", basic("alice", "pw"))
    .body(())
    .expect("request");
    let (_response, mut stream) = h2.send_request(req, true).expect("send the request");
    let forwarded = upstream.next_request().await;
    assert_eq!(forwarded.method, http::Method::DELETE);
    stream.send_reset(h2::Reason::CANCEL);
    let line = gate.wait_for_log(
        &["access:", "status=499", "manifests/sha256:0123"],
        Duration::from_secs(5),
    );
    for field in ["user=\"alice\"", "method=DELETE", "action=\"delete\""] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    assert!(!connection.is_finished(), "only the stream was reset");
}
