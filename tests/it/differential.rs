//! The gate and the nginx recipe side by side, the gate as its drop-in replacement: one table
//! of requests, each sent to the real nginx running the recipe and to the gate, both in front
//! of one real registry and both with the same certificate and htpasswd file. Every part of the two answers that a client
//! acts on must be equal (status, `Docker-Distribution-Api-Version` count and value,
//! `WWW-Authenticate`, the shape of `Location`, digests, `Range`, bodies), except where the gate
//! is deliberately different: [`EXCEPTIONS`] lists those, and their rows assert the documented
//! difference on each side instead.
//!
//! All rows run, then the test fails once, listing every row that did not hold with the request
//! and both answers.
//!
//! The engine that runs both sides and compares them is `support/differential.rs`.

use http::Version;

use crate::support::differential::{
    html_vs_json, refused, row, same, status, Auth, Body, Buffering, Exception, Exceptions, Expect,
    Page, Part, Row, Transport, PROBE_UA,
};
use crate::support::oci;

/// The deliberate differences (README, "Deliberate differences"): which parts of the answers
/// each one exempts from the equality check, and why.
const EXCEPTIONS: &Exceptions = &[
    (
        Exception::JsonErrors,
        &[Part::Body],
        "the gate's own refusals have registry-style JSON bodies, which clients parse and show, \
         instead of nginx's HTML pages (and its `/v2` redirect an empty body)",
    ),
    (
        Exception::Streaming,
        &[Part::Buffering],
        "upload bodies stream to the registry as they arrive, instead of being buffered to a \
         temp file on disk until the client has sent the last byte",
    ),
    (
        Exception::ModernTls,
        &[Part::Handshake, Part::Protocol],
        "TLS 1.3 and HTTP/2 (ALPN h2) are offered; the recipe allows TLS 1.1-1.2 (1.2 only under \
         OpenSSL 3) and HTTP/1.1",
    ),
    (
        Exception::ForwardingHeaders,
        &[Part::Location],
        "client-sent `Forwarded` and `X-Forwarded-Host` are not passed on from untrusted peers, \
         so a client cannot steer the upload URLs the registry hands out",
    ),
    (
        Exception::DotSegments,
        &[Part::Status, Part::ApiVersion, Part::Location, Part::Body],
        "paths with dot-segments are refused: nginx checks the normalised path but forwards the \
         raw one, so what it checked is not what the registry routes",
    ),
    (
        Exception::ApiVersionEverywhere,
        &[Part::ApiVersion, Part::Body],
        "every answer under /v2/ carries one `Docker-Distribution-Api-Version`, the gate's 400 \
         for a doubled `Authorization` too; nginx refuses that request while reading the head, \
         before its `location /v2/` and `add_header` apply",
    ),
    (
        Exception::KeepAliveUpstream,
        &[Part::UpstreamProtocol],
        "HTTP/1.1 keep-alive connections to the registry instead of one HTTP/1.0 connection per \
         request",
    ),
];

const MANIFEST: &str = "/v2/diff/app/manifests/v1";
const BLOB: &str = "/v2/diff/app/blobs/{blob}";
const UPLOADS: &str = "/v2/diff/app/blobs/uploads/";
const UPLOAD_URL: &str = "https://{self}/v2/diff/app/blobs/uploads/{uuid}?_state={state}";
const EVIL_HTTPS_UPLOAD_URL: &str =
    "https://evil.example/v2/diff/app/blobs/uploads/{uuid}?_state={state}";
const EVIL_HTTP_UPLOAD_URL: &str =
    "http://evil.example/v2/diff/app/blobs/uploads/{uuid}?_state={state}";
const OCI: &[(&str, &str)] = &[("accept", oci::MANIFEST_MEDIA_TYPE)];
const OCTETS: &[(&str, &str)] = &[("content-type", "application/octet-stream")];
const DOCKER_1_5: &str = "docker/1.5.0 go/go1.4.1 kernel/3.16";

/// The table. Each row runs on nginx, then on the gate; rows that change state (uploads) come
/// after the rows that read it.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    // Authentication, on `/v2/`.
    row("no credentials", "GET", "/v2/", html_vs_json(401, "UNAUTHORIZED")).auth(Auth::None),
    row("wrong password", "GET", "/v2/", html_vs_json(401, "UNAUTHORIZED"))
        .auth(Auth::WrongPassword),
    row("malformed Authorization", "GET", "/v2/", html_vs_json(401, "UNAUTHORIZED"))
        .auth(Auth::Malformed),
    row("two Authorization headers", "GET", "/v2/", Expect::Differs {
        why: Exception::ApiVersionEverywhere,
        nginx: status(400).page(Page::Html),
        gate: status(400).page(Page::Json("UNAUTHORIZED")),
    })
    .auth(Auth::Twice),
    row("right password", "GET", "/v2/", same(status(200))),
    // User agents: the recipe's `if` block, which runs before the password check.
    row("docker/1.5.0", "GET", "/v2/", html_vs_json(404, "UNSUPPORTED")).user_agent(DOCKER_1_5),
    row("docker/1.5.0, no credentials", "GET", "/v2/", html_vs_json(404, "UNSUPPORTED"))
        .user_agent(DOCKER_1_5)
        .auth(Auth::None),
    row("Go 1.1 package http", "GET", "/v2/", html_vs_json(404, "UNSUPPORTED"))
        .user_agent("Go 1.1 package http"),
    row("docker/1.5.0-dev (look-ahead)", "GET", "/v2/", same(status(200)))
        .user_agent("docker/1.5.0-dev"),
    row("docker/1.6.0", "GET", "/v2/", same(status(200))).user_agent("docker/1.6.0"),
    row("empty user agent", "GET", "/v2/", same(status(200))).user_agent(""),
    // The image pushed before the table runs.
    row("HEAD manifest", "HEAD", MANIFEST, same(status(200).digest("{manifest}"))).headers(OCI),
    row("GET manifest", "GET", MANIFEST, same(status(200).digest("{manifest}"))).headers(OCI),
    row("GET manifest by digest", "GET", "/v2/diff/app/manifests/{manifest}", same(status(200)))
        .headers(OCI),
    // The registry's own JSON errors pass both untouched.
    row("GET OCI manifest, no Accept", "GET", MANIFEST, same(status(404))),
    row("HEAD unknown tag", "HEAD", "/v2/diff/app/manifests/nope", same(status(404))).headers(OCI),
    row("tags", "GET", "/v2/diff/app/tags/list", same(status(200))),
    row("catalog", "GET", "/v2/_catalog", same(status(200))),
    // Paths.
    row("outside /v2/: /", "GET", "/", html_vs_json(404, "UNSUPPORTED")),
    row("outside /v2/: /v1/_ping", "GET", "/v1/_ping", html_vs_json(404, "UNSUPPORTED")),
    // nginx redirects `/v2` to `https://<host>/v2/` (as for any prefix location with
    // `proxy_pass`), with an HTML body; the gate's redirect has an empty one.
    row("/v2 without the slash", "GET", "/v2", Expect::Differs {
        why: Exception::JsonErrors,
        nginx: status(301).location("https://{self}/v2/").page(Page::Html),
        gate: status(301).location("https://{self}/v2/"),
    }),
    // nginx checks the normalised path, forwards the raw one, and the registry redirects.
    row("dot-segments: /v2/../v2/", "GET", "/v2/../v2/", Expect::Differs {
        why: Exception::DotSegments,
        nginx: status(301).location("/v2/"),
        gate: status(400).page(Page::Json("UNSUPPORTED")),
    }),
    row("dot-segments: /x/../v2/", "GET", "/x/../v2/", Expect::Differs {
        why: Exception::DotSegments,
        nginx: status(301).location("/v2/"),
        gate: status(400).page(Page::Json("UNSUPPORTED")),
    }),
    // Forwarding headers a client sends itself.
    row("client-sent X-Forwarded-Host", "POST", UPLOADS, Expect::Differs {
        why: Exception::ForwardingHeaders,
        nginx: status(202).location(EVIL_HTTPS_UPLOAD_URL),
        gate: status(202).location(UPLOAD_URL),
    })
    .headers(&[("x-forwarded-host", "evil.example")]),
    row("client-sent Forwarded", "POST", UPLOADS, Expect::Differs {
        why: Exception::ForwardingHeaders,
        nginx: status(202).location(EVIL_HTTP_UPLOAD_URL),
        gate: status(202).location(UPLOAD_URL),
    })
    .headers(&[("forwarded", "proto=http;host=evil.example")]),
    // Both replace the client's X-Forwarded-Proto with the scheme they serve.
    row("client-sent X-Forwarded-Proto", "POST", UPLOADS, same(status(202).location(UPLOAD_URL)))
        .headers(&[("x-forwarded-proto", "http")]),
    // A blob upload in two chunks; each side uploads a blob of its own.
    row("HEAD blob before upload", "HEAD", BLOB, same(status(404))),
    row("POST upload", "POST", UPLOADS, same(status(202).location(UPLOAD_URL))),
    row("PATCH chunked", "PATCH", "{upload}", same(status(202).location(UPLOAD_URL)))
        .headers(OCTETS)
        .body(Body::FirstChunk),
    row("PATCH chunked, held", "PATCH", "{upload}", Expect::Differs {
        why: Exception::Streaming,
        nginx: status(202).location(UPLOAD_URL).buffering(Buffering::ToDisk),
        gate: status(202).location(UPLOAD_URL).buffering(Buffering::Streamed),
    })
    .headers(OCTETS)
    .body(Body::RestHeld),
    row("PUT ?digest=", "PUT", "{upload}&digest={blob}", same(
        status(201).location("https://{self}/v2/diff/app/blobs/{blob}").digest("{blob}"),
    )),
    row("HEAD blob after upload", "HEAD", BLOB, same(status(200).digest("{blob}"))),
    // Transport.
    row("HTTP/2 offered", "GET", "/v2/", Expect::Differs {
        why: Exception::ModernTls,
        nginx: status(200).protocol(Version::HTTP_11),
        gate: status(200).protocol(Version::HTTP_2),
    })
    .transport(Transport::OfferH2),
    row("TLS 1.3 only", "GET", "/v2/", Expect::Differs {
        why: Exception::ModernTls,
        nginx: refused(),
        gate: status(200),
    })
    .transport(Transport::Tls13Only),
    row("HTTP version to the registry", "GET", "/v2/", Expect::Differs {
        why: Exception::KeepAliveUpstream,
        nginx: status(200).upstream("HTTP/1.0"),
        gate: status(200).upstream("HTTP/1.1"),
    })
    .user_agent(PROBE_UA),
];

#[tokio::test(flavor = "multi_thread")]
async fn nginx_recipe_and_gate_answer_alike_but_for_the_listed_exceptions() {
    crate::support::differential::run(ROWS, EXCEPTIONS).await;
}

#[test]
fn every_exception_is_listed_once_and_has_a_row() {
    for (why, parts, reason) in EXCEPTIONS {
        assert!(!parts.is_empty() && !reason.is_empty(), "{why:?}");
        let listed = EXCEPTIONS.iter().filter(|(w, ..)| w == why).count();
        assert_eq!(listed, 1, "{why:?} listed {listed} times");
        let rows = ROWS
            .iter()
            .filter(|r| matches!(r.expect, Expect::Differs { why: w, .. } if w == *why))
            .count();
        assert!(rows > 0, "no row shows {why:?}");
    }
}
