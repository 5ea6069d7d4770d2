//! Bodies stream: the registry sees the first bytes of an upload before the client
//! has sent the rest, an aborted upload reaches the registry as an aborted body
//! (never as a complete one), and an optional size limit holds.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Frame;

use crate::support::client::{basic, read, Proto};
use crate::support::proxy::TestProxy;
use crate::support::upstream::{Event, TestUpstream};

#[tokio::test]
async fn upload_reaches_the_registry_while_the_client_is_still_sending() {
    for proto in [Proto::H1, Proto::H2] {
        let upstream = TestUpstream::start().await;
        let proxy = TestProxy::alice(upstream.url()).await;
        let client = proxy.client();
        let req = client
            .request(proto, "PATCH", "/v2/x/blobs/uploads/u1?_state=s")
            .header("authorization", basic("alice", "pw"))
            .header("content-type", "application/octet-stream");
        let (tx, sending) = client.spawn_streamed(proto, req);
        tx.send(Ok(Frame::data(Bytes::from_static(b"first chunk;"))))
            .await
            .expect("send first chunk");
        let Event::Head { headers, .. } = upstream.next_event().await else {
            panic!("expected the request head first ({proto:?})");
        };
        assert!(
            headers.get("content-length").is_none(),
            "stays chunked ({proto:?})"
        );
        // The second chunk is not sent until the registry has the first one.
        let mut got = Vec::new();
        while got.len() < b"first chunk;".len() {
            match upstream.next_event().await {
                Event::Data(b) => got.extend_from_slice(&b),
                other => panic!("expected body bytes, got {other:?} ({proto:?})"),
            }
        }
        assert_eq!(got, b"first chunk;", "{proto:?}");
        tx.send(Ok(Frame::data(Bytes::from_static(b"second chunk"))))
            .await
            .expect("send second chunk");
        drop(tx);
        let mut rest = Vec::new();
        loop {
            match upstream.next_event().await {
                Event::Data(b) => rest.extend_from_slice(&b),
                Event::End => break,
                other => panic!("expected the rest of the body, got {other:?} ({proto:?})"),
            }
        }
        assert_eq!(rest, b"second chunk", "{proto:?}");
        let response = sending.await.expect("task").expect("response");
        assert_eq!(read(response).await.status, 200, "{proto:?}");
    }
}

#[tokio::test]
async fn client_abort_mid_upload_aborts_the_registry_request() {
    for proto in [Proto::H1, Proto::H2] {
        let upstream = TestUpstream::start().await;
        let proxy = TestProxy::alice(upstream.url()).await;
        let client = proxy.client();
        let req = client
            .request(proto, "PUT", "/v2/x/blobs/uploads/u1?digest=sha256:abc")
            .header("authorization", basic("alice", "pw"));
        let (tx, sending) = client.spawn_streamed(proto, req);
        tx.send(Ok(Frame::data(Bytes::from(vec![7u8; 64 * 1024]))))
            .await
            .expect("send");
        let Event::Head { .. } = upstream.next_event().await else {
            panic!("expected the request head first");
        };
        let Event::Data(_) = upstream.next_event().await else {
            panic!("expected body bytes");
        };
        // The client's connection breaks mid-body.
        tx.send(Err(std::io::Error::other("client went away")))
            .await
            .expect("send abort");
        let outcome = loop {
            match upstream.next_event().await {
                Event::Data(_) => continue,
                other => break other,
            }
        };
        assert!(
            matches!(outcome, Event::BodyError(_)),
            "the registry must see a broken body, not a complete one ({proto:?}): {outcome:?}"
        );
        assert!(sending.await.expect("task").is_err(), "{proto:?}");
    }
}

#[tokio::test]
async fn size_limit_refuses_declared_and_streamed_bodies() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::builder(upstream.url())
        .user("alice", "pw")
        .toml("[limits]\nmax_body_size = \"1KiB\"")
        .start()
        .await;
    let client = proxy.client();

    // Declared too large: refused before a byte goes upstream.
    let req = client
        .request(Proto::H1, "PUT", "/v2/x/blobs/uploads/u?digest=sha256:a")
        .header("authorization", basic("alice", "pw"))
        .body(Full::new(Bytes::from(vec![0u8; 2048])))
        .expect("request");
    let a = read(client.send(Proto::H1, req).await.expect("response")).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.one("docker-distribution-api-version"), "registry/2.0");
    assert!(upstream.is_quiet().await);

    // Streamed (chunked) past the limit: the registry's request is aborted.
    let req = client
        .request(Proto::H1, "PATCH", "/v2/x/blobs/uploads/u")
        .header("authorization", basic("alice", "pw"));
    let (tx, sending) = client.spawn_streamed(Proto::H1, req);
    for _ in 0..3 {
        if tx
            .send(Ok(Frame::data(Bytes::from(vec![1u8; 512]))))
            .await
            .is_err()
        {
            break;
        }
    }
    drop(tx);
    let seen = upstream.next_request().await;
    assert!(!seen.complete, "registry saw a complete over-limit body");
    assert!(seen.body.len() <= 1024, "passed {} bytes", seen.body.len());
    let a = read(sending.await.expect("task").expect("response")).await;
    assert_eq!(a.status, 413);

    // Within the limit: passes.
    let req = client
        .request(Proto::H1, "PATCH", "/v2/x/blobs/uploads/u")
        .header("authorization", basic("alice", "pw"))
        .body(Full::new(Bytes::from(vec![2u8; 1024])))
        .expect("request");
    let a = read(client.send(Proto::H1, req).await.expect("response")).await;
    assert_eq!(a.status, 200);
    assert_eq!(upstream.next_request().await.body.len(), 1024);
}
