//! End to end with the real registry (`docker-registry`) behind the gate and real
//! clients: skopeo pushes and pulls a multi-layer image over TLS, the API's
//! chunked upload gets `https://` upload URLs, refusals carry the challenge, and
//! an aborted upload leaves no blob.

use bytes::Bytes;
use hyper::body::Frame;

use crate::support::client::{basic, read, streamed, Answer, Client, Proto};
use crate::support::oci::{self, sha256_digest};
use crate::support::proxy::TestProxy;
use crate::support::registry::Registry;
use crate::support::skopeo;

const MIB: usize = 1 << 20;

async fn gate_with_registry() -> (Registry, TestProxy, Client) {
    let registry = tokio::task::spawn_blocking(Registry::start)
        .await
        .expect("registry starts");
    let proxy = TestProxy::builder(registry.url())
        .user("alice", "s3cret:with colon")
        .start()
        .await;
    let client = proxy.client();
    (registry, proxy, client)
}

fn creds() -> http::HeaderValue {
    basic("alice", "s3cret:with colon")
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_pushes_and_pulls_a_multi_layer_image_through_the_gate() {
    let (_registry, proxy, _client) = gate_with_registry().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("src");
    let image = tokio::task::spawn_blocking(move || {
        oci::build_image(&layout, "v1", &[3 * 1000, 100 * MIB, 12 * 1024], 7)
    })
    .await
    .expect("image builds");
    let dest = format!("docker://{}/team/app:v1", proxy.authority());
    let trust = proxy.trust_dir();
    let creds = "alice:s3cret:with colon".to_string();
    let pulled_dir = dir.path().join("pulled");
    let (src, pulled_ref) = (
        image.reference(),
        format!("oci:{}:v1", pulled_dir.display()),
    );
    let (dest2, trust2, creds2) = (dest, trust.clone(), creds.clone());
    tokio::task::spawn_blocking(move || {
        skopeo::copy(
            &src,
            &dest2,
            &[
                "--dest-creds",
                &creds2,
                "--dest-cert-dir",
                &trust2,
                "--preserve-digests",
            ],
        )
        .expect_success();
        skopeo::copy(
            &dest2,
            &pulled_ref,
            &[
                "--src-creds",
                &creds2,
                "--src-cert-dir",
                &trust2,
                "--dest-oci-accept-uncompressed-layers",
            ],
        )
        .expect_success();
    })
    .await
    .expect("skopeo round trip");
    let pulled = oci::read_layout(&pulled_dir, "v1");
    assert_eq!(pulled.layer_digests, image.layer_digests);
    assert_eq!(pulled.config_digest, image.config_digest);
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
    pulled.verify_blobs();

    // A push that compresses on the fly sends its layers as chunked PATCH bodies.
    let src = image.reference();
    let gz = format!("docker://{}/team/app:gz", proxy.authority());
    let refused = tokio::task::spawn_blocking(move || {
        skopeo::copy(
            &src,
            &gz,
            &["--dest-creds", &creds, "--dest-cert-dir", &trust],
        )
        .expect_success();
        skopeo::inspect_raw(&gz, &["--creds", &creds, "--cert-dir", &trust]).expect_success();
        let nope = gz.replace(":gz", ":nope");
        skopeo::copy(
            &src,
            &nope,
            &["--dest-creds", "alice:wrong", "--dest-cert-dir", &trust],
        )
        .expect_failure()
    })
    .await
    .expect("skopeo runs");
    assert!(
        refused.stderr.contains("authentication required")
            || refused.stderr.contains("unauthorized"),
        "wrong password must be a clean auth error: {}",
        refused.stderr
    );
}

/// POST, then the upload URL the registry hands out, exactly as a client follows it.
fn upload_path(answer: &Answer, proxy: &TestProxy) -> String {
    assert_eq!(answer.status, 202, "{}", answer.text());
    let location = answer.one("location");
    let prefix = format!("https://{}/", proxy.authority());
    assert!(
        location.starts_with(&prefix),
        "upload URL {location} must start with {prefix}"
    );
    location[prefix.len() - 1..].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_api_upload_gets_https_upload_urls() {
    let (_registry, proxy, client) = gate_with_registry().await;
    for proto in [Proto::H1, Proto::H2] {
        let blob: Vec<u8> = (0..3 * MIB + 17).map(|i| (i * 31 % 256) as u8).collect();
        let digest = sha256_digest(&blob);
        let post = client
            .request(proto, "POST", "/v2/api/test/blobs/uploads/")
            .header("authorization", creds());
        let path = upload_path(&client.send_empty(proto, post).await, &proxy);

        let (tx, body) = streamed();
        let patch = client
            .request(proto, "PATCH", &path)
            .header("authorization", creds())
            .header("content-type", "application/octet-stream")
            .body(body)
            .expect("request");
        let sending = {
            let client = client.clone();
            tokio::spawn(async move { client.send(proto, patch).await })
        };
        for chunk in blob.chunks(256 * 1024) {
            tx.send(Ok(Frame::data(Bytes::copy_from_slice(chunk))))
                .await
                .expect("send chunk");
        }
        drop(tx);
        let patched = read(sending.await.expect("task").expect("response")).await;
        assert_eq!(
            patched.one("range"),
            format!("0-{}", blob.len() - 1),
            "{proto:?}"
        );
        let path = upload_path(&patched, &proxy);

        let sep = if path.contains('?') { '&' } else { '?' };
        let put = client
            .request(proto, "PUT", &format!("{path}{sep}digest={digest}"))
            .header("authorization", creds());
        let put = client.send_empty(proto, put).await;
        assert_eq!(put.status, 201, "{proto:?}: {}", put.text());
        assert_eq!(put.one("docker-content-digest"), digest, "{proto:?}");
        assert!(put
            .one("location")
            .starts_with(&format!("https://{}/", proxy.authority())));

        let head = client
            .request(proto, "HEAD", &format!("/v2/api/test/blobs/{digest}"))
            .header("authorization", creds());
        let head = client.send_empty(proto, head).await;
        assert_eq!(head.status, 200, "{proto:?}");
        assert_eq!(
            head.one("content-length"),
            blob.len().to_string(),
            "{proto:?}"
        );
        assert_eq!(head.one("docker-content-digest"), digest, "{proto:?}");
        assert_eq!(head.one("docker-distribution-api-version"), "registry/2.0");

        let get = client
            .request(proto, "GET", &format!("/v2/api/test/blobs/{digest}"))
            .header("authorization", creds())
            .header("range", "bytes=10-19");
        let get = client.send_empty(proto, get).await;
        assert_eq!(get.status, 206, "{proto:?}");
        assert_eq!(&get.body[..], &blob[10..20], "{proto:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_carry_one_challenge_and_one_api_version() {
    let (_registry, _proxy, client) = gate_with_registry().await;
    let cases = [
        ("no credentials", None),
        ("wrong password", Some(basic("alice", "s3cret"))),
        ("unknown user", Some(basic("bob", "s3cret:with colon"))),
    ];
    for (what, auth) in cases {
        for path in ["/v2/", "/v2/team/app/manifests/v1", "/v2/_catalog"] {
            let mut req = client.request(Proto::H1, "GET", path);
            if let Some(v) = auth.clone() {
                req = req.header("authorization", v);
            }
            let a = client.send_empty(Proto::H1, req).await;
            assert_eq!(a.status, 401, "{what} {path}");
            assert_eq!(
                a.one("www-authenticate"),
                "Basic realm=\"Registry realm\"",
                "{what}"
            );
            assert_eq!(
                a.one("docker-distribution-api-version"),
                "registry/2.0",
                "{what}"
            );
        }
    }
    let ok = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", creds());
    let a = client.send_empty(Proto::H1, ok).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.one("docker-distribution-api-version"),
        "registry/2.0",
        "registry's own, not doubled"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn old_clients_are_turned_away_from_the_real_registry() {
    let (_registry, _proxy, client) = gate_with_registry().await;
    let cases = [
        ("docker/1.5.0 go/go1.4.1", 404),
        ("Go 1.1 package http", 404),
        ("docker/1.5.0-dev", 200),
        ("docker/1.6.0", 200),
        ("docker/1.10.0", 200),
        ("Go-http-client/1.1", 200),
        ("", 200),
    ];
    for (ua, want) in cases {
        let req = client
            .request(Proto::H1, "GET", "/v2/")
            .header("authorization", creds())
            .header("user-agent", ua);
        let a = client.send_empty(Proto::H1, req).await;
        assert_eq!(a.status, want, "ua={ua:?}");
        assert_eq!(
            a.one("docker-distribution-api-version"),
            "registry/2.0",
            "ua={ua:?}"
        );
    }
}

/// Sends a monolithic, chunked `PUT ?digest=` of `blob` byte by byte on a raw TLS
/// connection, then either ends the body or closes the connection just before
/// the final CRLF of the chunked body (TCP delivers every byte before the close).
/// Returns the digest.
async fn put_blob(client: &Client, proxy: &TestProxy, blob: &[u8], abort: bool) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let digest = sha256_digest(blob);
    let post = client
        .request(Proto::H1, "POST", "/v2/abort/test/blobs/uploads/")
        .header("authorization", creds());
    let path = upload_path(&client.send_empty(Proto::H1, post).await, proxy);
    let mut tls = client.connect_raw().await;
    let head = format!(
        "PUT {path}&digest={digest} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        client.authority(),
        creds().to_str().expect("ascii"),
    );
    tls.write_all(head.as_bytes()).await.expect("write head");
    for chunk in blob.chunks(64 * 1024) {
        tls.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .expect("write");
        tls.write_all(chunk).await.expect("write chunk");
        tls.write_all(b"\r\n").await.expect("write");
    }
    // The last-chunk line; only the final CRLF that ends the chunked body is left.
    tls.write_all(b"0\r\n").await.expect("write last chunk");
    tls.flush().await.expect("flush");
    if abort {
        drop(tls);
    } else {
        tls.write_all(b"\r\n").await.expect("write end of body");
        let mut response = vec![0u8; 12];
        tls.read_exact(&mut response)
            .await
            .expect("read status line");
        assert_eq!(
            &response,
            b"HTTP/1.1 201",
            "{}",
            String::from_utf8_lossy(&response)
        );
    }
    digest
}

#[tokio::test(flavor = "multi_thread")]
async fn aborted_upload_leaves_no_blob() {
    let (registry, proxy, client) = gate_with_registry().await;
    let head = |digest: String| {
        let client = client.clone();
        async move {
            let req = client
                .request(Proto::H1, "HEAD", &format!("/v2/abort/test/blobs/{digest}"))
                .header("authorization", creds());
            client.send_empty(Proto::H1, req).await.status
        }
    };
    let aborted: Vec<u8> = (0..2 * MIB).map(|i| (i % 253) as u8).collect();
    let digest = put_blob(&client, &proxy, &aborted, true).await;
    // The gate has aborted the registry's request; give the registry a moment to
    // process the broken connection, then make sure it committed nothing.
    crate::support::eventually(
        "the registry to log the aborted PUT",
        std::time::Duration::from_secs(5),
        || {
            std::future::ready(
                registry
                    .log()
                    .contains("PUT /v2/abort/test/blobs/uploads/")
                    .then_some(()),
            )
        },
    )
    .await;
    assert_eq!(
        head(digest).await,
        404,
        "an aborted upload must not become a blob"
    );

    // Control: the same upload, finished, does become a blob.
    let finished: Vec<u8> = (0..2 * MIB).map(|i| (i % 251) as u8).collect();
    let digest = put_blob(&client, &proxy, &finished, false).await;
    assert_eq!(head(digest).await, 200);
}
