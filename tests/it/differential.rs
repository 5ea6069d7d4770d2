//! The gate and the nginx recipe side by side, the gate as its drop-in replacement: one table of requests, each sent to
//! the real nginx running the recipe and to the gate, both in front of one real registry and
//! both with the same certificate and htpasswd file. Every part of the two answers that a client
//! acts on must be equal (status, `Docker-Distribution-Api-Version` count and value,
//! `WWW-Authenticate`, the shape of `Location`, digests, `Range`, bodies), except where the gate
//! is deliberately different: [`EXCEPTIONS`] lists those, and their rows assert the documented
//! difference on each side instead.
//!
//! All rows run, then the test fails once, listing every row that did not hold with the request
//! and both answers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject as _;
use tokio::time::Instant;

use crate::support::client::{basic, read, streamed, Answer, BodyTx};
use crate::support::nginx::{Nginx, RecipeFiles};
use crate::support::oci;
use crate::support::proxy::TestProxy;
use crate::support::registry::Registry;
use crate::support::skopeo;
use crate::support::within;

/// The one user, in the htpasswd file both proxies read.
const USER: &str = "alice";
const PASSWORD: &str = "pw";
/// The repository the image is pushed to and the uploads go to.
const REPO: &str = "diff/app";
/// The first PATCH of each side's blob; the second (held) one carries the rest. Both are over
/// nginx's 16 KiB `client_body_buffer_size`.
const FIRST_CHUNK: usize = 300_000;
/// Bytes of the second chunk sent before the body is held and the proxies watched. The
/// registry writes what it receives to the upload's data file behind buffers of its own; by
/// experiment 64 KiB already show there behind the gate, so 1 MiB is a wide margin.
const HOLD_AT: usize = 1 << 20;
/// Each side's blob.
const BLOB_LEN: usize = FIRST_CHUNK + HOLD_AT + 100_000;
/// Bound on the whole table (it takes about a second), on one exchange, and on watching a held
/// body or the registry's log.
const TABLE_TIMEOUT: Duration = Duration::from_secs(120);
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);
const WATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The user agent of the row that reads the registry's access log.
const PROBE_UA: &str = "registry-gate-differential/upstream-probe";

/// A way the gate deliberately answers differently from the recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exception {
    JsonErrors,
    Streaming,
    ModernTls,
    ForwardingHeaders,
    DotSegments,
    KeepAliveUpstream,
    ApiVersionEverywhere,
}

/// The deliberate differences (README, "Deliberate differences"): which parts of the answers
/// each one exempts from the equality check, and why.
const EXCEPTIONS: &[(Exception, &[Part], &str)] = &[
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

/// A part of an answer compared between the two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Handshake,
    Protocol,
    Status,
    ApiVersion,
    Challenge,
    Location,
    Digest,
    Range,
    /// `Content-Type`, `Content-Length` and the body bytes.
    Body,
    /// The HTTP version the registry saw (from its access log), on rows that probe it.
    UpstreamProtocol,
    /// Where a held request body was while the client held it, on rows that hold one.
    Buffering,
}

#[derive(Clone, Copy, Debug)]
enum Auth {
    None,
    Right,
    WrongPassword,
    /// `Basic` with a token that is not base64.
    Malformed,
    /// The right credentials, twice.
    Twice,
}

#[derive(Clone, Copy, Debug)]
enum Body {
    Empty,
    /// The first chunk of the side's blob, `Transfer-Encoding: chunked`.
    FirstChunk,
    /// The rest of the blob, chunked, held after [`HOLD_AT`] bytes while the proxies are watched.
    RestHeld,
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    /// TLS 1.2 or 1.3, ALPN `http/1.1`.
    Default,
    /// ALPN `h2, http/1.1`.
    OfferH2,
    /// TLS 1.3 only.
    Tls13Only,
}

/// Where a held request body was while the client held the rest back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Buffering {
    /// The registry had written bytes of the held body to its upload file.
    Streamed,
    /// The proxy logged buffering to a temp file, and the registry had none of the bytes.
    ToDisk,
    /// Neither within [`WATCH_TIMEOUT`].
    Neither,
}

/// What a refusal's body is.
#[derive(Clone, Copy, Debug)]
enum Page {
    Html,
    /// A registry-style JSON error with this code.
    Json(&'static str),
}

/// What one side must answer; `None` fields are not checked.
#[derive(Clone, Copy, Debug)]
struct Want {
    refused: bool,
    protocol: Option<Version>,
    status: Option<u16>,
    /// Normalised (see [`Side::normalise`]).
    location: Option<&'static str>,
    /// Normalised.
    digest: Option<&'static str>,
    page: Option<Page>,
    upstream: Option<&'static str>,
    buffering: Option<Buffering>,
}

const fn status(code: u16) -> Want {
    Want {
        refused: false,
        protocol: None,
        status: Some(code),
        location: None,
        digest: None,
        page: None,
        upstream: None,
        buffering: None,
    }
}

const fn refused() -> Want {
    Want {
        refused: true,
        status: None,
        ..status(0)
    }
}

impl Want {
    const fn location(self, shape: &'static str) -> Want {
        Want {
            location: Some(shape),
            ..self
        }
    }
    const fn digest(self, shape: &'static str) -> Want {
        Want {
            digest: Some(shape),
            ..self
        }
    }
    const fn page(self, page: Page) -> Want {
        Want {
            page: Some(page),
            ..self
        }
    }
    const fn protocol(self, version: Version) -> Want {
        Want {
            protocol: Some(version),
            ..self
        }
    }
    const fn upstream(self, version: &'static str) -> Want {
        Want {
            upstream: Some(version),
            ..self
        }
    }
    const fn buffering(self, buffering: Buffering) -> Want {
        Want {
            buffering: Some(buffering),
            ..self
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Both answers are equal, and each is this.
    Same(Want),
    /// A deliberate difference: the exempted parts are checked against each side's want.
    Differs {
        why: Exception,
        nginx: Want,
        gate: Want,
    },
}

/// One request, sent to both sides. `path` may hold `{upload}` (the side's current upload URL
/// path, with its query) and `{blob}` (the digest of the side's own blob).
#[derive(Clone, Copy, Debug)]
struct Row {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    auth: Auth,
    user_agent: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    body: Body,
    transport: Transport,
    expect: Expect,
}

const fn row(name: &'static str, method: &'static str, path: &'static str, expect: Expect) -> Row {
    Row {
        name,
        method,
        path,
        auth: Auth::Right,
        user_agent: None,
        headers: &[],
        body: Body::Empty,
        transport: Transport::Default,
        expect,
    }
}

impl Row {
    const fn auth(self, auth: Auth) -> Row {
        Row { auth, ..self }
    }
    const fn user_agent(self, ua: &'static str) -> Row {
        Row {
            user_agent: Some(ua),
            ..self
        }
    }
    const fn headers(self, headers: &'static [(&'static str, &'static str)]) -> Row {
        Row { headers, ..self }
    }
    const fn body(self, body: Body) -> Row {
        Row { body, ..self }
    }
    const fn transport(self, transport: Transport) -> Row {
        Row { transport, ..self }
    }
}

const fn same(want: Want) -> Expect {
    Expect::Same(want)
}

/// nginx's HTML page and the gate's JSON error for the same refusal.
const fn html_vs_json(code: u16, json: &'static str) -> Expect {
    Expect::Differs {
        why: Exception::JsonErrors,
        nginx: status(code).page(Page::Html),
        gate: status(code).page(Page::Json(json)),
    }
}

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
    let registry = tokio::task::spawn_blocking(Registry::start)
        .await
        .expect("registry starts");
    let proxy = TestProxy::builder(registry.url())
        .user(USER, PASSWORD)
        .start()
        .await;
    let (files, upstream) = (RecipeFiles::of(&proxy), registry.addr);
    let nginx = tokio::task::spawn_blocking(move || Nginx::start(upstream, &files))
        .await
        .expect("nginx starts");
    let manifest = push_image(&proxy).await;

    let mut sides = [
        Side::new(
            "nginx",
            nginx.addr,
            &proxy.ca_pem,
            Some(&nginx),
            1,
            &manifest,
        ),
        Side::new("gate", proxy.addr, &proxy.ca_pem, None, 2, &manifest),
    ];
    let mut failures = Vec::new();
    let deadline = Instant::now() + TABLE_TIMEOUT;
    for row in ROWS {
        assert!(
            Instant::now() < deadline,
            "the table did not finish within {TABLE_TIMEOUT:?}; failures so far:\n{}",
            failures.join("\n\n")
        );
        let mut seen = Vec::new();
        for side in &mut sides {
            seen.push(side.exchange(row, &registry).await);
        }
        let problems = judge(row, &sides, &seen);
        if !problems.is_empty() {
            failures.push(report(row, &problems, &seen));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ from the recipe in ways not listed as deliberate:\n\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n\n")
    );
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

/// Builds a small image and pushes it through the gate with its digests kept, so both sides
/// see the same repository; returns the manifest digest.
async fn push_image(proxy: &TestProxy) -> String {
    let dest = format!("docker://{}/{REPO}:v1", proxy.authority());
    let trust = proxy.trust_dir();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = oci::build_image(&dir.path().join("src"), "v1", &[2048, 40 * 1024, 7], 4);
        let creds = format!("{USER}:{PASSWORD}");
        let args = [
            "--dest-creds",
            &creds,
            "--dest-cert-dir",
            &trust,
            "--preserve-digests",
        ];
        skopeo::copy(&image.reference(), &dest, &args).expect_success();
        image.manifest_digest
    })
    .await
    .expect("skopeo pushes the image")
}

/// One of the two proxies, and what the table has done with it so far.
struct Side<'a> {
    name: &'static str,
    addr: std::net::SocketAddr,
    authority: String,
    ca_pem: &'a str,
    nginx: Option<&'a Nginx>,
    manifest: &'a str,
    blob: Vec<u8>,
    digest: String,
    /// Path and query of the latest upload URL the side handed out.
    upload: Option<String>,
}

/// What a side did with one request.
#[derive(Debug)]
struct Seen {
    outcome: Outcome,
    upstream: Option<String>,
    buffering: Option<Buffering>,
}

#[derive(Debug)]
enum Outcome {
    Refused(String),
    NoAnswer(String),
    Answered(Version, Answer),
}

impl<'a> Side<'a> {
    fn new(
        name: &'static str,
        addr: std::net::SocketAddr,
        ca_pem: &'a str,
        nginx: Option<&'a Nginx>,
        seed: usize,
        manifest: &'a str,
    ) -> Side<'a> {
        let blob: Vec<u8> = (0..BLOB_LEN)
            .map(|i| ((i * 31 + seed * 7) % 251) as u8)
            .collect();
        Side {
            name,
            addr,
            authority: format!("localhost:{}", addr.port()),
            ca_pem,
            nginx,
            manifest,
            digest: oci::sha256_digest(&blob),
            blob,
            upload: None,
        }
    }

    fn path(&self, row: &Row) -> String {
        let mut path = row.path.replace("{blob}", &self.digest);
        path = path.replace("{manifest}", self.manifest);
        if path.contains("{upload}") {
            let upload = self.upload.as_deref().unwrap_or_else(|| {
                panic!(
                    "row {:?} needs an upload that an earlier row started",
                    row.name
                )
            });
            path = path.replace("{upload}", upload);
        }
        path
    }

    /// Replaces what differs by construction: `https://` + the side's own authority, its
    /// blob's digest, the manifest digest, upload UUIDs and `_state` tokens.
    fn normalise(&self, text: &str) -> String {
        let text = text
            .replace(&format!("https://{}", self.authority), "https://{self}")
            .replace(&self.digest, "{blob}")
            .replace(self.manifest, "{manifest}");
        let text = replace_after(&text, "/blobs/uploads/", &['?', '/', '"'], "{uuid}");
        replace_after(&text, "_state=", &['&', '"'], "{state}")
    }

    async fn exchange(&mut self, row: &Row, registry: &Registry) -> Seen {
        let path = self.path(row);
        let log_start = registry.log().len();
        let mut seen = Seen {
            outcome: Outcome::NoAnswer(String::new()),
            upstream: None,
            buffering: None,
        };
        let sending = self.send(row, &path, registry, &mut seen.buffering);
        seen.outcome = match tokio::time::timeout(EXCHANGE_TIMEOUT, sending).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::NoAnswer(format!("no answer within {EXCHANGE_TIMEOUT:?}")),
        };
        if let Outcome::Answered(_, answer) = &seen.outcome {
            if let Some(location) = answer.all("location").first() {
                if answer.status == 202 && location.contains("/blobs/uploads/") {
                    let start = location.find("/v2/").expect("upload URLs have a /v2/ path");
                    self.upload = Some(location[start..].to_owned());
                }
            }
            if row.user_agent == Some(PROBE_UA) {
                seen.upstream = upstream_protocol(registry, log_start, row.method, &path).await;
            }
        }
        seen
    }

    async fn send(
        &self,
        row: &Row,
        path: &str,
        registry: &Registry,
        buffering: &mut Option<Buffering>,
    ) -> Outcome {
        let (conn, version) = match self.connect(row.transport).await {
            Ok(c) => c,
            Err(e) => return Outcome::Refused(e),
        };
        let mut req = Request::builder().method(row.method);
        req = if version == Version::HTTP_2 {
            let uri = format!("https://{}{path}", self.authority);
            req.uri(uri).version(Version::HTTP_2)
        } else {
            req.uri(path).header("host", &self.authority)
        };
        for value in credentials(row.auth) {
            req = req.header("authorization", value);
        }
        if let Some(ua) = row.user_agent {
            req = req.header("user-agent", ua);
        }
        for (name, value) in row.headers {
            req = req.header(*name, *value);
        }
        let (data, hold): (&[u8], Option<usize>) = match row.body {
            Body::Empty => (&[], None),
            Body::FirstChunk => (&self.blob[..FIRST_CHUNK], None),
            Body::RestHeld => (&self.blob[FIRST_CHUNK..], Some(HOLD_AT)),
        };
        if matches!(row.body, Body::Empty) {
            let body = Empty::new().map_err(|never| match never {}).boxed();
            let req = req.body(body).expect("valid request");
            return answer(conn.send(req).await, version).await;
        }
        let (tx, body) = streamed();
        let req = req.body(body.boxed()).expect("valid request");
        let response = tokio::spawn(conn.send(req));
        let split = hold.unwrap_or(data.len());
        feed(&tx, &data[..split]).await;
        if hold.is_some() {
            *buffering = Some(self.watch_held_body(registry, path).await);
        }
        feed(&tx, &data[split..]).await;
        drop(tx);
        match response.await {
            Ok(result) => answer(result, version).await,
            Err(e) => Outcome::NoAnswer(format!("sending task failed: {e}")),
        }
    }

    /// A new connection with the row's TLS versions and ALPN; the HTTP version negotiated.
    async fn connect(&self, transport: Transport) -> Result<(Conn, Version), String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let connector =
            tokio_rustls::TlsConnector::from(Arc::new(tls_config(self.ca_pem, transport)));
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("valid name");
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        if h2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
            tokio::spawn(conn);
            Ok((Conn::H2(sender), Version::HTTP_2))
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
            tokio::spawn(conn);
            Ok((Conn::H1(sender), Version::HTTP_11))
        }
    }

    /// While the client holds the rest of a PATCH body back: did the registry get the bytes
    /// sent so far, or did the proxy buffer them to a temp file?
    async fn watch_held_body(&self, registry: &Registry, path: &str) -> Buffering {
        let uuid = upload_uuid(path);
        let data = registry
            .root
            .join("storage/docker/registry/v2/repositories")
            .join(REPO)
            .join("_uploads")
            .join(uuid)
            .join("data");
        let before = FIRST_CHUNK as u64;
        let request_line = format!("PATCH {path} HTTP/1.1");
        // Neither, if the watch runs out of time before either sign shows.
        within(WATCH_TIMEOUT, || {
            let size = file_len(&data);
            let buffered = self.nginx.is_some_and(|nginx| {
                nginx.error_log().lines().any(|l| {
                    l.contains("a client request body is buffered to a temporary file")
                        && l.contains(&request_line)
                })
            });
            std::future::ready(if size > before {
                Some(Buffering::Streamed)
            } else if buffered {
                Some(if size == before {
                    Buffering::ToDisk
                } else {
                    Buffering::Neither
                })
            } else {
                None
            })
        })
        .await
        .unwrap_or(Buffering::Neither)
    }
}

enum Conn {
    H1(hyper::client::conn::http1::SendRequest<ReqBody>),
    H2(hyper::client::conn::http2::SendRequest<ReqBody>),
}

type ReqBody = BoxBody<Bytes, std::io::Error>;

impl Conn {
    async fn send(self, req: Request<ReqBody>) -> Result<Response<Incoming>, hyper::Error> {
        match self {
            Conn::H1(mut sender) => sender.send_request(req).await,
            Conn::H2(mut sender) => sender.send_request(req).await,
        }
    }
}

fn tls_config(ca_pem: &str, transport: Transport) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("CA PEM parses"))
            .expect("CA is usable");
    }
    let versions = match transport {
        Transport::Tls13Only => &[&rustls::version::TLS13][..],
        Transport::Default | Transport::OfferH2 => rustls::DEFAULT_VERSIONS,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = match transport {
        Transport::OfferH2 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Transport::Default | Transport::Tls13Only => vec![b"http/1.1".to_vec()],
    };
    config
}

fn credentials(auth: Auth) -> Vec<http::HeaderValue> {
    match auth {
        Auth::None => vec![],
        Auth::Right => vec![basic(USER, PASSWORD)],
        Auth::WrongPassword => vec![basic(USER, "wrong")],
        Auth::Malformed => vec![http::HeaderValue::from_static("Basic !!not-base64!!")],
        Auth::Twice => vec![basic(USER, PASSWORD), basic(USER, PASSWORD)],
    }
}

/// Sends `data` as body frames of 64 KiB; stops quietly if the request has already failed
/// (the failure shows in the answer).
async fn feed(tx: &BodyTx, data: &[u8]) {
    for chunk in data.chunks(64 * 1024) {
        if tx
            .send(Ok(Frame::data(Bytes::copy_from_slice(chunk))))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn answer(result: Result<Response<Incoming>, hyper::Error>, version: Version) -> Outcome {
    match result {
        Ok(response) => Outcome::Answered(version, read(response).await),
        Err(e) => Outcome::NoAnswer(format!("request failed: {e}")),
    }
}

/// The HTTP version in the registry's access-log line for this request (`"GET /v2/ HTTP/1.0"`),
/// logged after `log_start`.
async fn upstream_protocol(
    registry: &Registry,
    log_start: usize,
    method: &str,
    path: &str,
) -> Option<String> {
    let needle = format!("\"{method} {path} ");
    within(WATCH_TIMEOUT, || {
        let log = registry.log();
        let found = log.get(log_start..).and_then(|new| {
            new.lines()
                .filter(|l| l.contains(PROBE_UA))
                .find_map(|l| l.split(&needle).nth(1)?.split('"').next())
                .map(str::to_owned)
        });
        std::future::ready(found)
    })
    .await
    .ok()
}

/// The upload UUID in an upload URL path.
fn upload_uuid(path: &str) -> &str {
    let rest = path
        .split("/blobs/uploads/")
        .nth(1)
        .unwrap_or_else(|| panic!("{path:?} is not an upload URL"));
    rest.split(['?', '/']).next().unwrap_or(rest)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Replaces every run of characters after `marker` up to one of `ends` (or the end) with
/// `placeholder`.
fn replace_after(text: &str, marker: &str, ends: &[char], placeholder: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let (head, tail) = rest.split_at(at + marker.len());
        out.push_str(head);
        let end = tail.find(ends).unwrap_or(tail.len());
        if end > 0 {
            out.push_str(placeholder);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The compared parts of one side's answer, normalised.
fn parts(side: &Side<'_>, seen: &Seen) -> Vec<(Part, String)> {
    let mut parts = Vec::new();
    match &seen.outcome {
        Outcome::Refused(_) => parts.push((Part::Handshake, "refused".to_owned())),
        Outcome::NoAnswer(e) => {
            parts.push((Part::Handshake, "completed".to_owned()));
            parts.push((Part::Status, format!("no answer: {e}")));
        }
        Outcome::Answered(version, a) => {
            parts.push((Part::Handshake, "completed".to_owned()));
            parts.push((Part::Protocol, format!("{version:?}")));
            parts.push((Part::Status, a.status.as_u16().to_string()));
            let header = |name: &str| side.normalise(&format!("{:?}", a.all(name)));
            parts.push((Part::ApiVersion, header("docker-distribution-api-version")));
            parts.push((Part::Challenge, header("www-authenticate")));
            parts.push((Part::Location, header("location")));
            parts.push((Part::Digest, header("docker-content-digest")));
            parts.push((Part::Range, header("range")));
            let body = format!(
                "content-type {} content-length {} body {:?}",
                header("content-type"),
                header("content-length"),
                side.normalise(&a.text())
            );
            parts.push((Part::Body, body));
        }
    }
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    parts.push((Part::UpstreamProtocol, or_dash(seen.upstream.clone())));
    parts.push((
        Part::Buffering,
        or_dash(seen.buffering.map(|b| format!("{b:?}"))),
    ));
    parts
}

/// Every way the row did not hold: a want not met, or a part that differs without an exception.
fn judge(row: &Row, sides: &[Side<'_>; 2], seen: &[Seen]) -> Vec<String> {
    let (wants, exempt): ([Want; 2], &[Part]) = match row.expect {
        Expect::Same(want) => ([want, want], &[]),
        Expect::Differs { why, nginx, gate } => {
            let (_, parts, _) = EXCEPTIONS
                .iter()
                .find(|(w, ..)| *w == why)
                .expect("every exception is listed");
            ([nginx, gate], parts)
        }
    };
    let mut problems = Vec::new();
    for ((side, seen), want) in sides.iter().zip(seen).zip(wants) {
        for miss in misses(&want, side, seen) {
            problems.push(format!("{}: {miss}", side.name));
        }
    }
    let (a, b) = (parts(&sides[0], &seen[0]), parts(&sides[1], &seen[1]));
    for (part, left) in &a {
        let right = b.iter().find(|(p, _)| p == part).map(|(_, v)| v.as_str());
        if right != Some(left.as_str()) && !exempt.contains(part) {
            problems.push(format!(
                "{part:?} differs: nginx {left} | gate {}",
                right.unwrap_or("(none)")
            ));
        }
    }
    problems
}

/// How `seen` falls short of `want`.
fn misses(want: &Want, side: &Side<'_>, seen: &Seen) -> Vec<String> {
    let mut misses = Vec::new();
    let answer = match (&seen.outcome, want.refused) {
        (Outcome::Refused(_), true) => return misses,
        (Outcome::Refused(e), false) => return vec![format!("refused: {e}")],
        (_, true) => return vec!["completed a handshake it should refuse".to_owned()],
        (Outcome::NoAnswer(e), false) => return vec![e.clone()],
        (Outcome::Answered(version, answer), false) => {
            if want.protocol.is_some_and(|v| v != *version) {
                misses.push(format!("spoke {version:?}, want {:?}", want.protocol));
            }
            answer
        }
    };
    if want.status.is_some_and(|s| s != answer.status.as_u16()) {
        misses.push(format!("status {}, want {:?}", answer.status, want.status));
    }
    let first = |name: &str| answer.all(name).first().map(|v| side.normalise(v));
    if let Some(shape) = want.location {
        if first("location").as_deref() != Some(shape) {
            misses.push(format!("location {:?}, want {shape:?}", first("location")));
        }
    }
    if let Some(shape) = want.digest {
        if first("docker-content-digest").as_deref() != Some(shape) {
            misses.push(format!(
                "digest {:?}, want {shape:?}",
                first("docker-content-digest")
            ));
        }
    }
    if let Some(page) = want.page {
        if let Err(e) = check_page(page, answer) {
            misses.push(e);
        }
    }
    if want.upstream.is_some() && seen.upstream.as_deref() != want.upstream {
        misses.push(format!(
            "registry saw {:?}, want {:?}",
            seen.upstream, want.upstream
        ));
    }
    if want.buffering.is_some() && seen.buffering != want.buffering {
        misses.push(format!(
            "held body {:?}, want {:?}",
            seen.buffering, want.buffering
        ));
    }
    misses
}

fn check_page(page: Page, answer: &Answer) -> Result<(), String> {
    let content_type = answer.all("content-type").join(", ");
    match page {
        Page::Html if content_type.starts_with("text/html") && answer.text().contains("<html>") => {
            Ok(())
        }
        Page::Json(code) if content_type.starts_with("application/json") => {
            let json: serde_json::Value = serde_json::from_slice(&answer.body)
                .map_err(|e| format!("body is not JSON ({e}): {}", answer.text()))?;
            let got = &json["errors"][0]["code"];
            (got == code)
                .then_some(())
                .ok_or_else(|| format!("error code {got}, want {code}"))
        }
        _ => Err(format!(
            "{content_type:?} body {:?}, want {page:?}",
            answer.text()
        )),
    }
}

fn report(row: &Row, problems: &[String], seen: &[Seen]) -> String {
    let mut text = format!(
        "row {:?}: {} {} (auth {:?}, user agent {:?}, headers {:?}, body {:?}, {:?})\n",
        row.name,
        row.method,
        row.path,
        row.auth,
        row.user_agent,
        row.headers,
        row.body,
        row.transport
    );
    for problem in problems {
        text.push_str(&format!("  - {problem}\n"));
    }
    for (name, seen) in ["nginx", "gate"].iter().zip(seen) {
        text.push_str(&format!("  {name} answered: {}\n", describe(seen)));
    }
    text
}

fn describe(seen: &Seen) -> String {
    match &seen.outcome {
        Outcome::Refused(e) | Outcome::NoAnswer(e) => e.clone(),
        Outcome::Answered(version, a) => {
            let headers: Vec<String> = a
                .headers
                .iter()
                .filter(|(n, _)| *n != "date")
                .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            format!(
                "{version:?} {} [{}] {:?}",
                a.status,
                headers.join("; "),
                a.text()
            )
        }
    }
}
