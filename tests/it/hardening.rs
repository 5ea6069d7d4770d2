//! Hardening: security headers on every response of the gate's listener, added only
//! where the registry did not set them.

use crate::support::client::{basic, Proto};
use crate::support::proxy::TestProxy;
use crate::support::upstream::{Reply, TestUpstream};

async fn upstream() -> TestUpstream {
    TestUpstream::start_with(|parts| {
        let mut reply = Reply::default();
        if parts.uri.path().contains("/manifests/") {
            reply
                .headers
                .push(("x-content-type-options".into(), "nosniff".into()));
            reply
                .headers
                .push(("strict-transport-security".into(), "max-age=5".into()));
        }
        reply
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_carries_hsts_and_nosniff_once_and_the_registry_s_own_win() {
    let upstream = upstream().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    for proto in [Proto::H1, Proto::H2] {
        let cases = [
            ("/v2/", true, "max-age=63072000"),        // the registry's answer
            ("/v2/a/manifests/x", true, "max-age=5"),  // its own headers kept
            ("/v2/", false, "max-age=63072000"),       // the gate's 401
            ("/elsewhere", false, "max-age=63072000"), // the gate's 404
        ];
        for (path, authenticated, hsts) in cases {
            let mut req = client.request(proto, "GET", path);
            if authenticated {
                req = req.header("authorization", basic("alice", "pw"));
            }
            let answer = client.send_empty(proto, req).await;
            assert_eq!(
                answer.all("strict-transport-security"),
                [hsts],
                "{path} {proto:?}"
            );
            assert_eq!(
                answer.all("x-content-type-options"),
                ["nosniff"],
                "{path} {proto:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hsts_can_be_turned_off_but_nosniff_stays() {
    let upstream = upstream().await;
    let proxy = TestProxy::builder(upstream.url())
        .user("alice", "pw")
        .toml("[headers]\nstrict_transport_security = \"\"")
        .start()
        .await;
    let client = proxy.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("alice", "pw"));
    let answer = client.send_empty(Proto::H1, req).await;
    assert!(answer.all("strict-transport-security").is_empty());
    assert_eq!(answer.all("x-content-type-options"), ["nosniff"]);
}

/// A client without valid credentials announcing a huge upload gets its 401 at once,
/// and the connection is closed instead of the gate reading (or waiting for) the body.
#[tokio::test(flavor = "multi_thread")]
async fn an_unauthenticated_upload_is_refused_without_reading_its_body() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let upstream = upstream().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    for authorization in ["", "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n"] {
        let mut tls = client.connect_raw().await;
        let head = format!(
            "POST /v2/team/app/blobs/uploads/ HTTP/1.1\r\nHost: {}\r\n{authorization}\
             Content-Length: 1073741824\r\n\r\n",
            client.authority()
        );
        tls.write_all(head.as_bytes()).await.expect("send head");
        tls.write_all(&[0u8; 4096])
            .await
            .expect("send a little body");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tls.read_to_end(&mut answer),
        )
        .await;
        let text = String::from_utf8_lossy(&answer);
        assert!(read.is_ok(), "the connection stayed open: {text}");
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }
    assert_eq!(upstream.connections(), 0, "nothing reached the registry");
}

/// The same over HTTP/2: the 401 comes at once and the stream is reset, so the
/// client stops sending after at most a flow-control window or so, and the
/// connection is not held for the body.
#[tokio::test(flavor = "multi_thread")]
async fn over_http2_a_refused_upload_s_stream_is_reset_without_reading_its_body() {
    use bytes::Bytes;
    use hyper::body::Frame;

    use crate::support::client::streamed;

    const CHUNK: usize = 64 * 1024;
    // Far below the 1 GiB announced: what the client managed to hand over before
    // the stream ended, windows and buffers included.
    const MOST_SENT: usize = 16 * 1024 * 1024;

    let upstream = upstream().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    for authorization in [None, Some(basic("alice", "wrong"))] {
        let (tx, body) = streamed();
        let mut req = client
            .request(Proto::H2, "POST", "/v2/team/app/blobs/uploads/")
            .header("content-length", "1073741824");
        if let Some(value) = &authorization {
            req = req.header("authorization", value.clone());
        }
        let req = req.body(body).expect("request");
        let sending = {
            let client = client.clone();
            tokio::spawn(async move { client.send(Proto::H2, req).await })
        };
        let response = tokio::time::timeout(std::time::Duration::from_secs(5), sending)
            .await
            .expect("the 401 comes before the body")
            .expect("task")
            .expect("response");
        assert_eq!(response.status(), 401);
        let mut sent = 0;
        let ended = loop {
            let chunk = Frame::data(Bytes::from(vec![0u8; CHUNK]));
            let send = tokio::time::timeout(std::time::Duration::from_secs(5), tx.send(Ok(chunk)));
            match send.await {
                Ok(Ok(())) => sent += CHUNK,
                Ok(Err(_)) => break true,
                Err(_) => break false,
            }
            if sent > MOST_SENT {
                break false;
            }
        };
        assert!(ended, "the stream still took the body after {sent} bytes");
    }
    assert_eq!(upstream.connections(), 0, "nothing reached the registry");
}
