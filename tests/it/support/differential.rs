//! The engine of the differential test (`tests/it/differential.rs` holds its table): the
//! real nginx running the recipe and the gate, both in front of one real registry and both
//! with the same certificate and htpasswd file, each sent every row; the parts of the two
//! answers that a client acts on are compared (status, `Docker-Distribution-Api-Version` count
//! and value, `WWW-Authenticate`, the shape of `Location`, digests, `Range`, bodies), and where
//! a row expects a deliberate difference, each side is checked against its own want instead.

use std::time::Duration;

use http::Version;
use tokio::time::Instant;

use super::nginx::{Nginx, RecipeFiles};
use super::proxy::TestProxy;
use super::registry::Registry;

mod judge;
mod side;

use judge::{judge, report};
use side::{push_image, Side};

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
pub const PROBE_UA: &str = "registry-gate-differential/upstream-probe";

/// A way the gate deliberately answers differently from the recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exception {
    JsonErrors,
    Streaming,
    ModernTls,
    ForwardingHeaders,
    DotSegments,
    KeepAliveUpstream,
    ApiVersionEverywhere,
}

/// The deliberate differences: which parts of the answers each one exempts from the equality
/// check, and why.
pub type Exceptions = [(Exception, &'static [Part], &'static str)];

/// A part of an answer compared between the two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
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
pub enum Auth {
    None,
    Right,
    WrongPassword,
    /// `Basic` with a token that is not base64.
    Malformed,
    /// The right credentials, twice.
    Twice,
}

#[derive(Clone, Copy, Debug)]
pub enum Body {
    Empty,
    /// The first chunk of the side's blob, `Transfer-Encoding: chunked`.
    FirstChunk,
    /// The rest of the blob, chunked, held after [`HOLD_AT`] bytes while the proxies are watched.
    RestHeld,
}

#[derive(Clone, Copy, Debug)]
pub enum Transport {
    /// TLS 1.2 or 1.3, ALPN `http/1.1`.
    Default,
    /// ALPN `h2, http/1.1`.
    OfferH2,
    /// TLS 1.3 only.
    Tls13Only,
}

/// Where a held request body was while the client held the rest back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffering {
    /// The registry had written bytes of the held body to its upload file.
    Streamed,
    /// The proxy logged buffering to a temp file, and the registry had none of the bytes.
    ToDisk,
    /// Neither within [`WATCH_TIMEOUT`].
    Neither,
}

/// What a refusal's body is.
#[derive(Clone, Copy, Debug)]
pub enum Page {
    Html,
    /// A registry-style JSON error with this code.
    Json(&'static str),
}

/// What one side must answer; `None` fields are not checked.
#[derive(Clone, Copy, Debug)]
pub struct Want {
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

pub const fn status(code: u16) -> Want {
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

pub const fn refused() -> Want {
    Want {
        refused: true,
        status: None,
        ..status(0)
    }
}

impl Want {
    pub const fn location(self, shape: &'static str) -> Want {
        Want {
            location: Some(shape),
            ..self
        }
    }
    pub const fn digest(self, shape: &'static str) -> Want {
        Want {
            digest: Some(shape),
            ..self
        }
    }
    pub const fn page(self, page: Page) -> Want {
        Want {
            page: Some(page),
            ..self
        }
    }
    pub const fn protocol(self, version: Version) -> Want {
        Want {
            protocol: Some(version),
            ..self
        }
    }
    pub const fn upstream(self, version: &'static str) -> Want {
        Want {
            upstream: Some(version),
            ..self
        }
    }
    pub const fn buffering(self, buffering: Buffering) -> Want {
        Want {
            buffering: Some(buffering),
            ..self
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Expect {
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
pub struct Row {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    auth: Auth,
    user_agent: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    body: Body,
    transport: Transport,
    /// What both sides must answer.
    pub expect: Expect,
}

pub const fn row(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    expect: Expect,
) -> Row {
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
    pub const fn auth(self, auth: Auth) -> Row {
        Row { auth, ..self }
    }
    pub const fn user_agent(self, ua: &'static str) -> Row {
        Row {
            user_agent: Some(ua),
            ..self
        }
    }
    pub const fn headers(self, headers: &'static [(&'static str, &'static str)]) -> Row {
        Row { headers, ..self }
    }
    pub const fn body(self, body: Body) -> Row {
        Row { body, ..self }
    }
    pub const fn transport(self, transport: Transport) -> Row {
        Row { transport, ..self }
    }
}

pub const fn same(want: Want) -> Expect {
    Expect::Same(want)
}

/// nginx's HTML page and the gate's JSON error for the same refusal.
pub const fn html_vs_json(code: u16, json: &'static str) -> Expect {
    Expect::Differs {
        why: Exception::JsonErrors,
        nginx: status(code).page(Page::Html),
        gate: status(code).page(Page::Json(json)),
    }
}

/// Runs every row on nginx, then on the gate, both in front of one real registry; then fails
/// once, listing every row that did not hold (a want not met, or a part that differs without
/// one of `exceptions` exempting it) with the request and both answers.
pub async fn run(rows: &[Row], exceptions: &Exceptions) {
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
    for row in rows {
        assert!(
            Instant::now() < deadline,
            "the table did not finish within {TABLE_TIMEOUT:?}; failures so far:\n{}",
            failures.join("\n\n")
        );
        let mut seen = Vec::new();
        for side in &mut sides {
            seen.push(side.exchange(row, &registry).await);
        }
        let problems = judge(row, exceptions, &sides, &seen);
        if !problems.is_empty() {
            failures.push(report(row, &problems, &seen));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ from the recipe in ways not listed as deliberate:\n\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n\n")
    );
}
