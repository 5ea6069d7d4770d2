//! A recording upstream: a plain-HTTP hyper server on 127.0.0.1:0 that reports
//! every request head, body frame and body end as it happens, then answers with
//! a configurable reply.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, Mutex};

/// Something the upstream saw.
#[derive(Debug)]
pub enum Event {
    /// A request arrived.
    Head {
        /// Method.
        method: http::Method,
        /// Request target exactly as received.
        target: String,
        /// Headers.
        headers: HeaderMap,
    },
    /// A body frame.
    Data(Bytes),
    /// The body ended cleanly.
    End,
    /// The body broke off.
    // The text is shown only through `Debug` in assertion messages.
    BodyError(#[allow(dead_code)] String),
}

/// A whole recorded request.
#[derive(Debug)]
pub struct Recorded {
    /// Method.
    pub method: http::Method,
    /// Request target exactly as received.
    pub target: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes received.
    pub body: Vec<u8>,
    /// Whether the body ended cleanly (false: it broke off).
    pub complete: bool,
}

impl Recorded {
    /// Every value of a header, as text.
    pub fn all(&self, name: &str) -> Vec<String> {
        super::header_values(&self.headers, name)
    }
}

/// What the upstream answers.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, in order (repeats allowed).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
    /// Wait this long after the request body ended before answering.
    pub delay: Duration,
}

impl Default for Reply {
    fn default() -> Self {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(b"{}"),
            delay: Duration::ZERO,
        }
    }
}

type ReplyFn = Arc<dyn Fn(&http::request::Parts) -> Reply + Send + Sync>;

/// A running recording upstream.
pub struct TestUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    events: Mutex<mpsc::UnboundedReceiver<Event>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestUpstream {
    /// Starts an upstream that answers every request with `Reply::default()`.
    pub async fn start() -> TestUpstream {
        Self::start_with(|_| Reply::default()).await
    }

    /// Starts an upstream whose answer depends on the request head.
    pub async fn start_with(
        reply: impl Fn(&http::request::Parts) -> Reply + Send + Sync + 'static,
    ) -> TestUpstream {
        Self::spawn(Arc::new(reply), None).await
    }

    /// Starts an HTTPS upstream (certificate for `localhost`); returns it and the
    /// PEM of the CA that signed its certificate.
    pub async fn start_tls() -> (TestUpstream, String) {
        let certs = registry_gate::tls::generate(&["localhost".into()]).expect("upstream certs");
        let dir = tempfile::tempdir().expect("tempdir");
        let (crt, key) = (dir.path().join("u.crt"), dir.path().join("u.key"));
        std::fs::write(&crt, &certs.server_cert).expect("write cert");
        std::fs::write(&key, &certs.server_key).expect("write key");
        let config = registry_gate::tls::server_config(&crt, &key).expect("upstream TLS config");
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let reply: ReplyFn = Arc::new(|_: &http::request::Parts| Reply::default());
        (Self::spawn(reply, Some(acceptor)).await, certs.ca_cert)
    }

    async fn spawn(reply: ReplyFn, tls: Option<tokio_rustls::TlsAcceptor>) -> TestUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream address");
        let (tx, rx) = mpsc::unbounded_channel();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let tx = tx.clone();
                let reply = reply.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        serve(req, tx.clone(), reply.clone())
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        TestUpstream {
            addr,
            events: Mutex::new(rx),
            connections,
            task,
        }
    }

    /// How many TCP connections the upstream has accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The base URL for the gate's `[upstream] url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next event, waiting at most 10 s.
    pub async fn next_event(&self) -> Event {
        let mut events = self.events.lock().await;
        tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("upstream event within 10 s")
            .expect("upstream still running")
    }

    /// The next whole request (head, body, end), waiting at most 10 s per event.
    pub async fn next_request(&self) -> Recorded {
        let Event::Head {
            method,
            target,
            headers,
        } = self.next_event().await
        else {
            panic!("expected a request head first");
        };
        let mut body = Vec::new();
        loop {
            match self.next_event().await {
                Event::Data(b) => body.extend_from_slice(&b),
                Event::End => {
                    return Recorded {
                        method,
                        target,
                        headers,
                        body,
                        complete: true,
                    }
                }
                Event::BodyError(_) => {
                    return Recorded {
                        method,
                        target,
                        headers,
                        body,
                        complete: false,
                    }
                }
                Event::Head { .. } => panic!("request head before the previous body ended"),
            }
        }
    }

    /// Whether no event is waiting.
    pub async fn is_quiet(&self) -> bool {
        self.events.lock().await.is_empty()
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    req: Request<Incoming>,
    tx: mpsc::UnboundedSender<Event>,
    reply: ReplyFn,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, mut body) = req.into_parts();
    // The gate's start-up and reload probe is answered, not recorded: tests see
    // the clients' requests only, whenever the probe comes.
    if parts.headers.get(http::header::USER_AGENT)
        == Some(&http::HeaderValue::from_static(
            registry_gate::proxy::upstream::PROBE_USER_AGENT,
        ))
    {
        return Ok(Response::new(Full::new(Bytes::from_static(b"{}"))));
    }
    let _ = tx.send(Event::Head {
        method: parts.method.clone(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts.headers.clone(),
    });
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let _ = tx.send(Event::Data(data));
                }
            }
            Some(Err(e)) => {
                let _ = tx.send(Event::BodyError(e.to_string()));
                break;
            }
            None => {
                let _ = tx.send(Event::End);
                break;
            }
        }
    }
    let r = reply(&parts);
    tokio::time::sleep(r.delay).await;
    let mut response = Response::new(Full::new(r.body));
    *response.status_mut() = http::StatusCode::from_u16(r.status).expect("valid status");
    for (k, v) in r.headers {
        response.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(&v).expect("header value"),
        );
    }
    Ok(response)
}
