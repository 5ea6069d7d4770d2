//! What the registry receives, and what the client gets back: forwarding headers
//! for trusted and untrusted peers, hop-by-hop removal, bytes passed untouched.

use crate::support::client::{basic, Client, Proto};
use crate::support::proxy::TestProxy;
use crate::support::upstream::{Reply, TestUpstream};

const HOSTILE: &[(&str, &str)] = &[
    ("x-forwarded-for", "6.6.6.6"),
    ("x-forwarded-proto", "http"),
    ("x-forwarded-host", "evil.example"),
    ("x-forwarded-port", "80"),
    ("x-real-ip", "6.6.6.6"),
    ("forwarded", "for=6.6.6.6;proto=http;host=evil.example"),
];

async fn setup(trusted: bool) -> (TestUpstream, TestProxy, Client) {
    let upstream = TestUpstream::start().await;
    let mut builder = TestProxy::builder(upstream.url()).user("alice", "pw");
    if trusted {
        builder = builder.toml("[forwarding]\ntrusted_proxies = [\"127.0.0.0/8\"]");
    }
    let proxy = builder.start().await;
    let client = proxy.client();
    (upstream, proxy, client)
}

#[tokio::test]
async fn untrusted_peer_cannot_steer_upload_urls() {
    for proto in [Proto::H1, Proto::H2] {
        let (upstream, proxy, client) = setup(false).await;
        let mut req = client
            .request(proto, "GET", "/v2/")
            .header("authorization", basic("alice", "pw"));
        for (k, v) in HOSTILE {
            req = req.header(*k, *v);
        }
        let answer = client.send_empty(proto, req).await;
        assert_eq!(answer.status, 200, "{proto:?}");
        let seen = upstream.next_request().await;
        assert_eq!(seen.all("host"), [proxy.authority()], "{proto:?}");
        assert_eq!(seen.all("x-forwarded-proto"), ["https"], "{proto:?}");
        assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"], "{proto:?}");
        assert_eq!(seen.all("x-real-ip"), ["127.0.0.1"], "{proto:?}");
        for gone in [
            "x-forwarded-host",
            "x-forwarded-port",
            "forwarded",
            "authorization",
        ] {
            assert!(
                seen.all(gone).is_empty(),
                "{proto:?}: {gone} forwarded: {:?}",
                seen.all(gone)
            );
        }
    }
}

#[tokio::test]
async fn trusted_peer_keeps_elb_headers() {
    let (upstream, _proxy, client) = setup(true).await;
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("alice", "pw"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "registry.example.com")
        .header("x-forwarded-port", "443");
    let answer = client.send_empty(Proto::H1, req).await;
    assert_eq!(answer.status, 200);
    let seen = upstream.next_request().await;
    assert_eq!(seen.all("x-forwarded-for"), ["203.0.113.9, 127.0.0.1"]);
    assert_eq!(seen.all("x-forwarded-proto"), ["https"]);
    assert_eq!(seen.all("x-forwarded-host"), ["registry.example.com"]);
    assert_eq!(seen.all("x-forwarded-port"), ["443"]);
    assert_eq!(seen.all("x-real-ip"), ["203.0.113.9"]);
}

#[tokio::test]
async fn hop_by_hop_headers_stay_behind_and_bytes_pass_untouched() {
    let (upstream, _proxy, client) = setup(false).await;
    let target = "/v2/a/b/c/blobs/uploads/6f1c?_state=AbC-_x%3D%3D&digest=sha256%3Aabc";
    let req = client
        .request(Proto::H1, "PATCH", target)
        .header("authorization", basic("alice", "pw"))
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("proxy-connection", "keep-alive")
        .header("content-range", "0-4")
        .header("content-type", "application/octet-stream")
        .header("accept-encoding", "gzip");
    let answer = client.send_bytes(Proto::H1, req, b"hello").await;
    assert_eq!(answer.status, 200);
    let seen = upstream.next_request().await;
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.target, target);
    assert_eq!(seen.body, b"hello");
    assert!(seen.complete);
    assert_eq!(seen.all("content-length"), ["5"]);
    assert_eq!(seen.all("content-range"), ["0-4"]);
    assert_eq!(seen.all("accept-encoding"), ["gzip"]);
    for gone in [
        "connection",
        "x-hop",
        "keep-alive",
        "te",
        "proxy-connection",
    ] {
        assert!(seen.all(gone).is_empty(), "{gone} was forwarded");
    }
}

#[tokio::test]
async fn registry_answers_pass_untouched() {
    let location = "/v2/x/blobs/uploads/u1?_state=q%3D%3D";
    let upstream = TestUpstream::start_with(move |parts| match parts.uri.path() {
        "/v2/x/blobs/uploads/" => Reply {
            status: 202,
            headers: vec![
                ("location".into(), format!("https://localhost:1{location}")),
                ("range".into(), "0-0".into()),
                ("docker-upload-uuid".into(), "u1".into()),
                (
                    "docker-distribution-api-version".into(),
                    "registry/2.0".into(),
                ),
                ("connection".into(), "x-upstream-hop".into()),
                ("x-upstream-hop".into(), "1".into()),
            ],
            body: bytes::Bytes::new(),
            ..Reply::default()
        },
        "/v2/x/blobs/sha256:abc" => Reply {
            status: 200,
            headers: vec![
                ("content-length".into(), "1234".into()),
                ("docker-content-digest".into(), "sha256:abc".into()),
            ],
            body: bytes::Bytes::new(),
            ..Reply::default()
        },
        _ => Reply {
            status: 307,
            headers: vec![(
                "location".into(),
                "http://storage.example/blob?sig=a%2Fb".into(),
            )],
            body: bytes::Bytes::new(),
            ..Reply::default()
        },
    })
    .await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    for proto in [Proto::H1, Proto::H2] {
        let post = client
            .request(proto, "POST", "/v2/x/blobs/uploads/")
            .header("authorization", basic("alice", "pw"));
        let a = client.send_empty(proto, post).await;
        assert_eq!(a.status, 202, "{proto:?}");
        assert_eq!(
            a.one("location"),
            format!("https://localhost:1{location}"),
            "{proto:?}"
        );
        assert_eq!(a.one("range"), "0-0", "{proto:?}");
        assert_eq!(
            a.one("docker-distribution-api-version"),
            "registry/2.0",
            "{proto:?}"
        );
        assert!(a.all("x-upstream-hop").is_empty(), "{proto:?}");

        let head = client
            .request(proto, "HEAD", "/v2/x/blobs/sha256:abc")
            .header("authorization", basic("alice", "pw"));
        let a = client.send_empty(proto, head).await;
        assert_eq!(a.status, 200, "{proto:?}");
        assert_eq!(a.one("content-length"), "1234", "{proto:?}");
        assert_eq!(a.one("docker-content-digest"), "sha256:abc", "{proto:?}");
        assert_eq!(
            a.one("docker-distribution-api-version"),
            "registry/2.0",
            "{proto:?}"
        );
        assert!(a.body.is_empty(), "{proto:?}");

        let get = client
            .request(proto, "GET", "/v2/x/blobs/sha256:def")
            .header("authorization", basic("alice", "pw"));
        let a = client.send_empty(proto, get).await;
        assert_eq!(
            a.status, 307,
            "redirects are passed on, not followed ({proto:?})"
        );
        assert_eq!(
            a.one("location"),
            "http://storage.example/blob?sig=a%2Fb",
            "{proto:?}"
        );
    }
}

#[tokio::test]
async fn large_response_streams_through_unchanged() {
    let body: bytes::Bytes = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let served = body.clone();
    let upstream = TestUpstream::start_with(move |_| Reply {
        body: served.clone(),
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        ..Reply::default()
    })
    .await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    for proto in [Proto::H1, Proto::H2] {
        let req = client
            .request(proto, "GET", "/v2/x/blobs/sha256:big")
            .header("authorization", basic("alice", "pw"))
            .header("accept-encoding", "gzip, br");
        let a = client.send_empty(proto, req).await;
        assert_eq!(a.status, 200);
        assert!(
            a.all("content-encoding").is_empty(),
            "no compression ({proto:?})"
        );
        assert_eq!(a.one("content-length"), body.len().to_string(), "{proto:?}");
        assert!(a.body == body, "body differs ({proto:?})");
    }
}

#[tokio::test]
async fn registry_connections_are_kept_alive_and_reused() {
    let (upstream, proxy, client) = setup(false).await;
    // The gate hands connections to its workers (one per CPU) in turn, each with its own
    // registry pool: two requests per worker, one after the other, must share each
    // worker's one registry connection.
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 64);
    let requests = 2 * workers;
    for i in 0..requests {
        let req = client
            .request(Proto::H1, "GET", &format!("/v2/r/manifests/{i}"))
            .header("authorization", basic("alice", "pw"));
        assert_eq!(client.send_empty(Proto::H1, req).await.status, 200);
        let seen = upstream.next_request().await;
        assert_eq!(seen.target, format!("/v2/r/manifests/{i}"));
    }
    assert_eq!(
        upstream.connections(),
        workers,
        "{requests} requests, one pooled registry connection per worker ({workers})"
    );
    let verifications = proxy.state_tx.borrow().authenticator.verifications();
    assert_eq!(
        verifications, 1,
        "{requests} logins, one bcrypt check (the rest from the cache)"
    );
}

#[tokio::test]
async fn https_registry_is_reached_with_the_configured_ca() {
    let (upstream, ca) = TestUpstream::start_tls().await;
    let url = format!("https://localhost:{}", upstream.addr.port());
    let trusting = TestProxy::builder(url.clone())
        .user("alice", "pw")
        .upstream_keys("ca = \"upstream-ca.pem\"")
        .start_with_files(&[("upstream-ca.pem", &ca)])
        .await;
    let client = trusting.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("alice", "pw"));
    assert_eq!(client.send_empty(Proto::H1, req).await.status, 200);
    assert_eq!(upstream.next_request().await.target, "/v2/");

    // Without the CA the registry's certificate is not trusted: a JSON 502.
    let untrusting = TestProxy::alice(url).await;
    let client = untrusting.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("alice", "pw"));
    let a = client.send_empty(Proto::H1, req).await;
    assert_eq!(a.status, 502);
    assert!(a.text().contains("UNAVAILABLE"), "{}", a.text());
}
