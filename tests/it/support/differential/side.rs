//! One side of the differential test (nginx or the gate): its connection, what it sends for a
//! row, and what it saw.

use std::path::Path;

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::*;
use crate::support::client::{basic, connector, read, streamed, Answer, BodyTx};
use crate::support::nginx::Nginx;
use crate::support::oci;
use crate::support::proxy::TestProxy;
use crate::support::registry::Registry;
use crate::support::skopeo;
use crate::support::within;

/// Builds a small image and pushes it through the gate with its digests kept, so both sides
/// see the same repository; returns the manifest digest.
pub(super) async fn push_image(proxy: &TestProxy) -> String {
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
pub(super) struct Side<'a> {
    pub(super) name: &'static str,
    pub(super) addr: std::net::SocketAddr,
    pub(super) authority: String,
    pub(super) ca_pem: &'a str,
    pub(super) nginx: Option<&'a Nginx>,
    pub(super) manifest: &'a str,
    pub(super) blob: Vec<u8>,
    pub(super) digest: String,
    /// Path and query of the latest upload URL the side handed out.
    pub(super) upload: Option<String>,
}

/// What a side did with one request.
#[derive(Debug)]
pub(super) struct Seen {
    pub(super) outcome: Outcome,
    pub(super) upstream: Option<String>,
    pub(super) buffering: Option<Buffering>,
}

#[derive(Debug)]
pub(super) enum Outcome {
    Refused(String),
    NoAnswer(String),
    Answered(Version, Answer),
}

impl<'a> Side<'a> {
    pub(super) fn new(
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

    pub(super) fn path(&self, row: &Row) -> String {
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
    pub(super) fn normalise(&self, text: &str) -> String {
        let text = text
            .replace(&format!("https://{}", self.authority), "https://{self}")
            .replace(&self.digest, "{blob}")
            .replace(self.manifest, "{manifest}");
        let text = replace_after(&text, "/blobs/uploads/", &['?', '/', '"'], "{uuid}");
        replace_after(&text, "_state=", &['&', '"'], "{state}")
    }

    pub(super) async fn exchange(&mut self, row: &Row, registry: &Registry) -> Seen {
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

    pub(super) async fn send(
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
    pub(super) async fn connect(&self, transport: Transport) -> Result<(Conn, Version), String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let connector = tls_connector(self.ca_pem, transport);
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
    pub(super) async fn watch_held_body(&self, registry: &Registry, path: &str) -> Buffering {
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

pub(super) enum Conn {
    H1(hyper::client::conn::http1::SendRequest<ReqBody>),
    H2(hyper::client::conn::http2::SendRequest<ReqBody>),
}

pub(super) type ReqBody = BoxBody<Bytes, std::io::Error>;

impl Conn {
    pub(super) async fn send(
        self,
        req: Request<ReqBody>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        match self {
            Conn::H1(mut sender) => sender.send_request(req).await,
            Conn::H2(mut sender) => sender.send_request(req).await,
        }
    }
}

pub(super) fn tls_connector(ca_pem: &str, transport: Transport) -> tokio_rustls::TlsConnector {
    let versions = match transport {
        Transport::Tls13Only => &[&rustls::version::TLS13][..],
        Transport::Default | Transport::OfferH2 => rustls::DEFAULT_VERSIONS,
    };
    let alpn: &[&[u8]] = match transport {
        Transport::OfferH2 => &[b"h2", b"http/1.1"],
        Transport::Default | Transport::Tls13Only => &[b"http/1.1"],
    };
    connector(ca_pem, alpn, versions)
}

pub(super) fn credentials(auth: Auth) -> Vec<http::HeaderValue> {
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
pub(super) async fn feed(tx: &BodyTx, data: &[u8]) {
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

pub(super) async fn answer(
    result: Result<Response<Incoming>, hyper::Error>,
    version: Version,
) -> Outcome {
    match result {
        Ok(response) => Outcome::Answered(version, read(response).await),
        Err(e) => Outcome::NoAnswer(format!("request failed: {e}")),
    }
}

/// The HTTP version in the registry's access-log line for this request (`"GET /v2/ HTTP/1.0"`),
/// logged after `log_start`.
pub(super) async fn upstream_protocol(
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
pub(super) fn upload_uuid(path: &str) -> &str {
    let rest = path
        .split("/blobs/uploads/")
        .nth(1)
        .unwrap_or_else(|| panic!("{path:?} is not an upload URL"));
    rest.split(['?', '/']).next().unwrap_or(rest)
}

pub(super) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Replaces every run of characters after `marker` up to one of `ends` (or the end) with
/// `placeholder`.
pub(super) fn replace_after(text: &str, marker: &str, ends: &[char], placeholder: &str) -> String {
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
