//! The gate's own answers: 401 challenge, UA block, refused paths, upstream
//! failures; each registry-style JSON with exactly one API-version header.

use std::time::Duration;

use crate::support::client::assert_json_error;
use crate::support::client::{basic, Proto};
use crate::support::proxy::TestProxy;
use crate::support::upstream::{Reply, TestUpstream};

#[tokio::test]
async fn missing_or_wrong_credentials_get_the_challenge() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::builder(upstream.url())
        .user("alice", "pw")
        .auth_keys("realm = \"Corp registry\"")
        .start()
        .await;
    let client = proxy.client();
    let cases: Vec<(&str, Option<http::HeaderValue>)> = vec![
        ("none", None),
        ("wrong password", Some(basic("alice", "nope"))),
        ("unknown user", Some(basic("mallory", "pw"))),
        ("user case differs", Some(basic("Alice", "pw"))),
        ("bearer", Some(http::HeaderValue::from_static("Bearer abc"))),
        (
            "bad base64",
            Some(http::HeaderValue::from_static("Basic !!!")),
        ),
    ];
    for proto in [Proto::H1, Proto::H2] {
        for (what, auth) in &cases {
            let mut req = client.request(proto, "GET", "/v2/");
            if let Some(v) = auth {
                req = req.header("authorization", v.clone());
            }
            let a = client.send_empty(proto, req).await;
            assert_json_error(&a, 401, "UNAUTHORIZED", what);
            assert_eq!(
                a.one("www-authenticate"),
                "Basic realm=\"Corp registry\"",
                "{what}"
            );
            assert_eq!(
                a.one("docker-distribution-api-version"),
                "registry/2.0",
                "{what}"
            );
        }
    }
    assert!(upstream.is_quiet().await, "nothing reached the registry");
}

#[tokio::test]
async fn ambiguous_or_unsafe_requests_get_400() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    let twice = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("alice", "pw"))
        .header("authorization", basic("alice", "pw"));
    let a = client.send_empty(Proto::H1, twice).await;
    assert_json_error(&a, 400, "UNAUTHORIZED", "two Authorization headers");
    assert_eq!(a.one("docker-distribution-api-version"), "registry/2.0");

    for path in [
        "/x/../v2/",
        "/v2/../v2/",
        "/v2/%2e%2e/secret/manifests/x",
        "/v2/a%2F..%2Fb/tags/list",
    ] {
        let req = client
            .request(Proto::H1, "GET", path)
            .header("authorization", basic("alice", "pw"));
        let a = client.send_empty(Proto::H1, req).await;
        assert_json_error(&a, 400, "UNSUPPORTED", path);
    }
    assert!(upstream.is_quiet().await, "nothing reached the registry");
}

#[tokio::test]
async fn paths_outside_v2_are_not_found_without_the_api_header() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    for path in ["/", "/v1/_ping", "/metrics", "/v2x/"] {
        let req = client
            .request(Proto::H1, "GET", path)
            .header("authorization", basic("alice", "pw"));
        let a = client.send_empty(Proto::H1, req).await;
        assert_json_error(&a, 404, "UNSUPPORTED", path);
        assert!(
            a.all("docker-distribution-api-version").is_empty(),
            "{path}"
        );
    }
    assert!(upstream.is_quiet().await, "nothing reached the registry");
}

#[tokio::test]
async fn v2_without_the_slash_is_redirected_like_nginx_does() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    for proto in [Proto::H1, Proto::H2] {
        let a = client
            .send_empty(proto, client.request(proto, "GET", "/v2"))
            .await;
        assert_eq!(a.status, 301, "{proto:?}");
        assert_eq!(
            a.one("location"),
            format!("https://{}/v2/", proxy.authority())
        );
        assert_eq!(a.one("docker-distribution-api-version"), "registry/2.0");
    }
    assert!(upstream.is_quiet().await);
}

#[tokio::test]
async fn old_docker_clients_get_404_before_the_password_check() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    let cases: &[(Option<&str>, bool)] = &[
        (
            Some("docker/1.5.0 go/go1.4.1 git-commit/a8a31ef kernel/3.13"),
            true,
        ),
        (Some("docker/1.3.2"), true),
        (Some("Go 1.1 package http"), true),
        (Some("docker/1.5.0-dev"), false),
        (Some("docker/1.6.0"), false),
        (Some("docker/1.10.0"), false),
        (Some("Go-http-client/1.1"), false),
        (None, false),
    ];
    for (ua, blocked) in cases {
        for auth in [None, Some(basic("alice", "pw"))] {
            let mut req = client.request(Proto::H1, "GET", "/v2/");
            if let Some(ua) = ua {
                req = req.header("user-agent", *ua);
            }
            let with_auth = auth.is_some();
            if let Some(v) = auth {
                req = req.header("authorization", v);
            }
            let a = client.send_empty(Proto::H1, req).await;
            let want = match (blocked, with_auth) {
                (true, _) => 404,
                (false, true) => 200,
                (false, false) => 401,
            };
            assert_eq!(a.status, want, "ua={ua:?} auth={with_auth}");
            assert_eq!(
                a.all("docker-distribution-api-version"),
                ["registry/2.0"],
                "ua={ua:?}"
            );
            if with_auth && !blocked {
                upstream.next_request().await;
            }
        }
    }
    assert!(
        upstream.is_quiet().await,
        "blocked clients never reached the registry"
    );
}

#[tokio::test]
async fn api_version_header_is_never_doubled() {
    let upstream = TestUpstream::start_with(|parts| Reply {
        headers: if parts.uri.path() == "/v2/with/tags/list" {
            vec![(
                "docker-distribution-api-version".into(),
                "registry/2.0".into(),
            )]
        } else {
            vec![]
        },
        ..Reply::default()
    })
    .await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    for path in ["/v2/with/tags/list", "/v2/without/tags/list"] {
        let req = client
            .request(Proto::H2, "GET", path)
            .header("authorization", basic("alice", "pw"));
        let a = client.send_empty(Proto::H2, req).await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(
            a.all("docker-distribution-api-version"),
            ["registry/2.0"],
            "{path}"
        );
    }
}

#[tokio::test]
async fn unreachable_registry_is_a_json_502() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let proxy = TestProxy::alice(format!("http://127.0.0.1:{port}")).await;
    let client = proxy.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("alice", "pw"));
    let a = client.send_empty(Proto::H1, req).await;
    assert_json_error(&a, 502, "UNAVAILABLE", "registry down");
    assert_eq!(a.one("docker-distribution-api-version"), "registry/2.0");
}

#[tokio::test]
async fn slow_registry_is_a_json_504() {
    let upstream = TestUpstream::start_with(|_| Reply {
        delay: Duration::from_secs(5),
        ..Reply::default()
    })
    .await;
    let proxy = TestProxy::builder(upstream.url())
        .user("alice", "pw")
        .upstream_keys("read_timeout = \"300ms\"")
        .start()
        .await;
    let client = proxy.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("alice", "pw"));
    // A 504 (not the registry's 200) shows the gate gave up before the registry answered.
    let a = client.send_empty(Proto::H1, req).await;
    assert_json_error(&a, 504, "UNAVAILABLE", "registry slow");
    assert_eq!(a.one("docker-distribution-api-version"), "registry/2.0");
}

#[tokio::test]
async fn repeated_failures_are_throttled_but_good_logins_never_count() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::builder(upstream.url())
        .user("alice", "pw")
        .user("bob", "pw2")
        .toml("[throttle]\nwindow = \"1h\"\nmax_failures_per_user = 3")
        .start()
        .await;
    let client = proxy.client();
    let get =
        |user: &str, password: &str| client.request_as(Proto::H1, "GET", "/v2/", user, password);
    // Parallel good logins, far more than any limit: never counted.
    let good: Vec<_> = (0..30)
        .map(|_| {
            let client = client.clone();
            let req = get("bob", "pw2");
            tokio::spawn(async move { client.send_empty(Proto::H1, req).await.status })
        })
        .collect();
    for g in good {
        assert_eq!(g.await.expect("task"), 200);
    }
    for _ in 0..30 {
        upstream.next_request().await;
    }
    for i in 0..3 {
        let a = client
            .send_empty(Proto::H1, get("alice", &format!("guess{i}")))
            .await;
        assert_eq!(a.status, 401, "failure {i} is still a plain 401");
    }
    let verifications = proxy.state_tx.borrow().authenticator.verifications();
    for password in ["guess3", "pw"] {
        let a = client.send_empty(Proto::H1, get("alice", password)).await;
        assert_json_error(&a, 429, "TOOMANYREQUESTS", password);
        let retry: u64 = a
            .one("retry-after")
            .parse()
            .expect("Retry-After in seconds");
        assert!((3500..=3600).contains(&retry), "retry-after {retry}");
        assert_eq!(a.one("docker-distribution-api-version"), "registry/2.0");
    }
    assert_eq!(
        proxy.state_tx.borrow().authenticator.verifications(),
        verifications,
        "a throttled attempt costs no password check"
    );
    let a = client.send_empty(Proto::H1, get("bob", "pw2")).await;
    assert_eq!(
        a.status, 200,
        "another user from the same address still logs in"
    );
    upstream.next_request().await;
    assert!(
        upstream.is_quiet().await,
        "throttled requests never reached the registry"
    );
}

#[tokio::test]
async fn oversized_request_heads_get_431() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    let huge = "x".repeat(100 * 1024);
    for proto in [Proto::H1, Proto::H2] {
        let req = client
            .request(proto, "GET", "/v2/")
            .header("authorization", basic("alice", "pw"))
            .header("x-padding", huge.as_str());
        match client
            .send(
                proto,
                req.body(http_body_util::Empty::<bytes::Bytes>::new())
                    .expect("request"),
            )
            .await
        {
            Ok(response) => assert_eq!(response.status(), 431, "{proto:?}"),
            Err(e) => panic!("{proto:?}: expected a 431 answer, got {e}"),
        }
        let many = (0..150).fold(client.request(proto, "GET", "/v2/"), |r, i| {
            r.header(format!("x-h{i}"), "1")
        });
        let a = client.send_empty(proto, many).await;
        // HTTP/1.1 limits the count of fields; HTTP/2 limits their total size,
        // which 150 small fields stay under (so: no credentials, 401).
        let want = if proto == Proto::H1 { 431 } else { 401 };
        assert_eq!(a.status, want, "{proto:?}: 150 header fields");
    }
    assert!(upstream.is_quiet().await);
}

#[tokio::test]
async fn http1_header_names_are_title_case_like_the_registry_and_nginx() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let client = proxy.client();
    let mut tls = client.connect_raw().await;
    let request = format!(
        "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        client.authority()
    );
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw);
    // Seed 004's script greps `^Www-Authenticate` case-sensitively.
    for line in [
        "\r\nWww-Authenticate: Basic realm=\"Registry realm\"\r\n",
        "\r\nDocker-Distribution-Api-Version: registry/2.0\r\n",
        "\r\nContent-Type: application/json\r\n",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
}
