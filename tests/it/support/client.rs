//! A TLS client that trusts the test CA and speaks HTTP/1.1 or HTTP/2, built on
//! hyper's connection API so requests go out exactly as written (no path
//! normalisation, duplicate headers allowed, bodies streamed by the test).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject as _;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

/// HTTP version to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.1 (ALPN http/1.1).
    H1,
    /// HTTP/2 (ALPN h2).
    H2,
}

/// A client for one gate.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    authority: String,
    h1: TlsConnector,
    h2: TlsConnector,
}

/// A response with its body read.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Answer {
    /// Every value of a header, as text.
    pub fn all(&self, name: &str) -> Vec<String> {
        super::header_values(&self.headers, name)
    }

    /// The one value of a header; panics when there is not exactly one.
    pub fn one(&self, name: &str) -> String {
        let all = self.all(name);
        assert_eq!(all.len(), 1, "header {name}: {all:?}");
        all.into_iter().next().expect("one value")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A streaming request body the test feeds frame by frame.
pub type Streamed = StreamBody<tokio_stream_shim::Receiver<Result<Frame<Bytes>, std::io::Error>>>;

/// Feeds a [`Streamed`] body.
pub type BodyTx = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

/// A channel-backed body: send `Ok(Frame::data(..))`, drop the sender to end
/// cleanly, or send `Err(..)` to abort the connection mid-body.
pub fn streamed() -> (BodyTx, Streamed) {
    let (tx, rx) = mpsc::channel(4);
    (tx, StreamBody::new(tokio_stream_shim::Receiver(rx)))
}

/// `Authorization: Basic` for a user and password.
pub fn basic(user: &str, password: &str) -> HeaderValue {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    HeaderValue::from_str(&format!("Basic {token}")).expect("valid header")
}

/// The one way the tests build a TLS client: a rustls config (ring) that trusts every
/// certificate in `ca_pem`, speaks `versions` (`rustls::DEFAULT_VERSIONS` for the defaults)
/// and offers the ALPN protocols `alpn`, in order.
pub fn client_config(
    ca_pem: &str,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("CA PEM parses"))
            .expect("CA is usable");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// [`client_config`] as a connector.
pub fn connector(
    ca_pem: &str,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    TlsConnector::from(Arc::new(client_config(ca_pem, alpn, versions)))
}

impl Client {
    /// A client for the gate at `addr` trusting `ca_pem`; `authority` is what it
    /// puts in `Host` / `:authority`.
    pub fn new(addr: SocketAddr, ca_pem: &str, authority: &str) -> Client {
        Client {
            addr,
            authority: authority.to_owned(),
            h1: connector(ca_pem, &[b"http/1.1"], rustls::DEFAULT_VERSIONS),
            h2: connector(ca_pem, &[b"h2"], rustls::DEFAULT_VERSIONS),
        }
    }

    /// A request builder for `path` (raw, as sent), with `Host` for HTTP/1.1 and an
    /// absolute URI (`:authority`) for HTTP/2.
    pub fn request(&self, proto: Proto, method: &str, path: &str) -> http::request::Builder {
        let builder = Request::builder().method(method);
        match proto {
            Proto::H1 => builder.uri(path).header("host", &self.authority),
            Proto::H2 => builder
                .uri(format!("https://{}{path}", self.authority))
                .version(http::Version::HTTP_2),
        }
    }

    /// [`request`](Self::request) with `Authorization: Basic` for `user` / `password`.
    pub fn request_as(
        &self,
        proto: Proto,
        method: &str,
        path: &str,
        user: &str,
        password: &str,
    ) -> http::request::Builder {
        self.request(proto, method, path)
            .header("authorization", basic(user, password))
    }

    /// The status of `req` sent with no body, on a new connection.
    pub async fn status_of(&self, proto: Proto, req: http::request::Builder) -> u16 {
        self.send_empty(proto, req).await.status.as_u16()
    }

    /// Sends a request with no body on a new connection and reads the answer.
    pub async fn send_empty(&self, proto: Proto, req: http::request::Builder) -> Answer {
        let req = req.body(Empty::<Bytes>::new()).expect("valid request");
        read(self.send(proto, req).await.expect("response")).await
    }

    /// Sends a request with a body on a new connection and reads the answer.
    pub async fn send_bytes(
        &self,
        proto: Proto,
        req: http::request::Builder,
        body: &[u8],
    ) -> Answer {
        let req = req
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("valid request");
        read(self.send(proto, req).await.expect("response")).await
    }

    /// A raw TLS connection (ALPN http/1.1) for writing requests byte by byte.
    pub async fn connect_raw(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        self.connect_tls(&self.h1).await
    }

    /// A raw TLS connection with ALPN h2, for an HTTP/2 client driven by the test.
    pub async fn connect_raw_h2(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        self.connect_tls(&self.h2).await
    }

    async fn connect_tls(
        &self,
        connector: &TlsConnector,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect to the gate");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("server name");
        connector
            .connect(name, tcp)
            .await
            .expect("TLS handshake with the gate")
    }

    /// POSTs `form` (`application/x-www-form-urlencoded`) to `path` over HTTP/1.1: the status,
    /// and the body as JSON (`Null` if it is none).
    pub async fn post_form(&self, path: &str, form: &str) -> (u16, serde_json::Value) {
        let req = self
            .request(Proto::H1, "POST", path)
            .header("content-type", "application/x-www-form-urlencoded");
        let answer = self.send_bytes(Proto::H1, req, form.as_bytes()).await;
        let body = serde_json::from_str(&answer.text()).unwrap_or(serde_json::Value::Null);
        (answer.status.as_u16(), body)
    }

    /// The authority the client sends.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Sends `req` on a new connection in a spawned task, with a body the test streams through
    /// the returned sender; the task yields the response.
    pub fn spawn_streamed(
        &self,
        proto: Proto,
        req: http::request::Builder,
    ) -> (
        BodyTx,
        tokio::task::JoinHandle<Result<Response<Incoming>, hyper::Error>>,
    ) {
        let (tx, body) = streamed();
        let req = req.body(body).expect("request");
        let client = self.clone();
        (
            tx,
            tokio::spawn(async move { client.send(proto, req).await }),
        )
    }

    /// Sends any request on a new connection; the error is hyper's.
    pub async fn send<B>(
        &self,
        proto: Proto,
        req: Request<B>,
    ) -> Result<Response<Incoming>, hyper::Error>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect to the gate");
        self.send_over(tcp, proto, req).await
    }

    /// Sends a request over an already connected TCP stream (on which, say, a PROXY
    /// protocol header was written first): TLS handshake, then HTTP.
    pub async fn send_over<B>(
        &self,
        tcp: tokio::net::TcpStream,
        proto: Proto,
        req: Request<B>,
    ) -> Result<Response<Incoming>, hyper::Error>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("server name");
        let connector = match proto {
            Proto::H1 => &self.h1,
            Proto::H2 => &self.h2,
        };
        let tls = connector
            .connect(name, tcp)
            .await
            .expect("TLS handshake with the gate");
        let io = TokioIo::new(tls);
        match proto {
            Proto::H1 => {
                let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .expect("HTTP/1.1 handshake");
                tokio::spawn(conn);
                sender.send_request(req).await
            }
            Proto::H2 => {
                let (mut sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .expect("HTTP/2 handshake");
                tokio::spawn(conn);
                sender.send_request(req).await
            }
        }
    }
}

/// Reads a whole response.
pub async fn read(response: Response<Incoming>) -> Answer {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .expect("response body reads to its end")
        .to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A minimal `Stream` over an mpsc receiver (to avoid a tokio-stream dependency).
pub mod tokio_stream_shim {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Wraps an mpsc receiver as a stream.
    pub struct Receiver<T>(pub tokio::sync::mpsc::Receiver<T>);

    impl<T> futures_core::Stream for Receiver<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}

/// One HTTP/1.1 keep-alive connection to the gate, reused for every request: a request
/// on it fails if the gate closed it, so an answer proves the same connection served it.
pub struct KeptConnection {
    authority: String,
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl Client {
    /// Opens a [`KeptConnection`] (TLS, ALPN http/1.1).
    pub async fn keep_alive(&self) -> KeptConnection {
        let tls = self.connect_tls(&self.h1).await;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(conn);
        KeptConnection {
            authority: self.authority.clone(),
            sender,
        }
    }
}

impl KeptConnection {
    /// `GET path` with `authorization` on this connection; panics if it was closed.
    pub async fn get(&mut self, path: &str, authorization: HeaderValue) -> Answer {
        let req = Request::builder()
            .method("GET")
            .uri(path)
            .header("host", &self.authority)
            .header("authorization", authorization)
            .body(Empty::<Bytes>::new())
            .expect("valid request");
        self.sender
            .ready()
            .await
            .expect("the kept connection is still open");
        let response = self
            .sender
            .send_request(req)
            .await
            .expect("an answer on the kept connection");
        read(response).await
    }
}

/// `a` is the registry-style JSON error a client shows: `status`, `application/json`, and
/// first the error `code`; `what` names the case in the failure message.
pub fn assert_json_error(a: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text());
    assert_eq!(a.one("content-type"), "application/json", "{what}");
    let text = a.text();
    assert!(
        text.starts_with(&format!(r#"{{"errors":[{{"code":"{code}""#)),
        "{what}: {text}"
    );
}
