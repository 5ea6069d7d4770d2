//! Behind a load balancer (the recipe's ELB note): a tiny fake ELB terminates TLS on
//! 127.0.0.1 with the gate's certificate and forwards every request to the gate over TLS from
//! 127.0.0.2, streaming bodies both ways, keeping the client's `Host` and setting
//! `X-Forwarded-Proto: https`, `X-Forwarded-Port: <its port>` and appending the client to
//! `X-Forwarded-For`, as AWS's ELB does. With the ELB in `forwarding.trusted_proxies`, skopeo
//! pushes through it and every upload URL it follows is the ELB's; from an untrusted peer,
//! client-sent forwarding headers do not reach the registry's upload URLs.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::support::client::{basic, Client, Proto};
use crate::support::oci;
use crate::support::proxy::TestProxy;
use crate::support::registry::Registry;
use crate::support::skopeo;

/// The address the ELB connects to the gate from.
const ELB_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// How long the registry may take to log a request it has answered.
const LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// Headers that describe one connection only (RFC 9110 §7.6.1), not forwarded by the ELB.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

type ElbBody = BoxBody<Bytes, hyper::Error>;

/// A running fake ELB. Stops accepting on drop.
struct FakeElb {
    addr: SocketAddr,
    /// `METHOD path` of every request it forwarded, in order.
    forwarded: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

/// What every connection of the ELB shares.
struct Forwarder {
    gate: SocketAddr,
    port: u16,
    tls: tokio_rustls::TlsConnector,
    forwarded: Arc<Mutex<Vec<String>>>,
}

impl FakeElb {
    /// Listens on 127.0.0.1 with `proxy`'s certificate and forwards to `proxy`.
    async fn start(proxy: &TestProxy) -> FakeElb {
        let config =
            registry_gate::tls::server_config(&proxy.path("server.crt"), &proxy.path("server.key"))
                .expect("ELB TLS config");
        let mut config = (*config).clone();
        // A classic ELB's HTTPS listener speaks HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the ELB");
        let addr = listener.local_addr().expect("ELB address");
        let forwarded = Arc::new(Mutex::new(Vec::new()));
        let forwarder = Arc::new(Forwarder {
            gate: proxy.addr,
            port: addr.port(),
            tls: gate_connector(&proxy.ca_pem),
            forwarded: forwarded.clone(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, client)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, forwarder) = (acceptor.clone(), forwarder.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let forwarder = forwarder.clone();
                        async move { Ok::<_, Infallible>(forwarder.forward(client, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        FakeElb {
            addr,
            forwarded,
            task,
        }
    }

    /// `localhost:PORT`, the external authority clients use.
    fn authority(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    fn forwarded(&self) -> Vec<String> {
        self.forwarded.lock().expect("ELB record lock").clone()
    }
}

impl Drop for FakeElb {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Forwarder {
    /// Forwards one request to the gate; a failure to reach it is the ELB's 502.
    async fn forward(&self, client: SocketAddr, req: Request<Incoming>) -> Response<ElbBody> {
        self.forwarded
            .lock()
            .expect("ELB record lock")
            .push(format!("{} {}", req.method(), req.uri()));
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let headers = &mut parts.headers;
        let xff = match headers.get("x-forwarded-for").map(|v| v.to_str()) {
            Some(Ok(prior)) => format!("{prior}, {}", client.ip()),
            _ => client.ip().to_string(),
        };
        headers.insert(header("x-forwarded-for"), value(&xff));
        headers.insert(header("x-forwarded-proto"), value("https"));
        headers.insert(header("x-forwarded-port"), value(&self.port.to_string()));
        match self.send(Request::from_parts(parts, body)).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Err(e) => {
                let body = Full::new(Bytes::from(format!("ELB: gate unreachable: {e}")));
                let mut response = Response::new(body.map_err(|never| match never {}).boxed());
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response
            }
        }
    }

    /// One TLS connection to the gate from [`ELB_SOURCE`], per request.
    async fn send(&self, req: Request<Incoming>) -> Result<Response<Incoming>, String> {
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        socket
            .bind(SocketAddr::new(ELB_SOURCE, 0))
            .map_err(|e| format!("bind {ELB_SOURCE}: {e}"))?;
        let tcp = socket
            .connect(self.gate)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("valid name");
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
        tokio::spawn(conn);
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("request: {e}"))
    }
}

fn gate_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    crate::support::client::connector(ca_pem, &[b"http/1.1"], rustls::DEFAULT_VERSIONS)
}

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

fn header(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("ASCII header value")
}

async fn registry_and_gate(trusted: &str) -> (Registry, TestProxy) {
    let registry = tokio::task::spawn_blocking(Registry::start)
        .await
        .expect("registry starts");
    let proxy = TestProxy::builder(registry.url())
        .user("alice", "pw")
        .toml(&format!("[forwarding]\ntrusted_proxies = [{trusted}]"))
        .start()
        .await;
    (registry, proxy)
}

/// POSTs a blob upload with `headers` and user agent `ua` and returns the upload `Location`.
async fn start_upload(client: &Client, ua: &str, headers: &[(&str, &str)]) -> String {
    let mut req = client
        .request(Proto::H1, "POST", "/v2/elb/app/blobs/uploads/")
        .header("authorization", basic("alice", "pw"))
        .header("user-agent", ua);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let answer = client.send_empty(Proto::H1, req).await;
    assert_eq!(answer.status, 202, "ua={ua}: {}", answer.text());
    answer.one("location")
}

/// The client address the registry logged for the request with user agent `ua`.
async fn registry_saw_client(registry: &Registry, ua: &str) -> String {
    let marker = format!("http.request.useragent={ua} ");
    let limit = LOG_TIMEOUT;
    crate::support::eventually(
        &format!("a registry log line with {marker:?}"),
        limit,
        || {
            let log = registry.log();
            let addr = log
                .lines()
                .find(|l| l.contains(&marker))
                .and_then(|line| line.split("http.request.remoteaddr=").nth(1))
                .and_then(|addr| addr.split_whitespace().next())
                .map(str::to_owned);
            std::future::ready(addr)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_pushes_through_a_trusted_elb_and_follows_its_upload_urls() {
    let (registry, proxy) = registry_and_gate("\"127.0.0.2/32\"").await;
    let elb = FakeElb::start(&proxy).await;
    let client = Client::new(elb.addr, &proxy.ca_pem, &elb.authority());

    let location = start_upload(&client, "elb-test/trusted", &[]).await;
    let external = format!("https://{}/v2/elb/app/blobs/uploads/", elb.authority());
    assert!(
        location.starts_with(&external),
        "upload URL {location} must be the ELB's {external}..."
    );
    assert_eq!(
        registry_saw_client(&registry, "elb-test/trusted").await,
        "127.0.0.1",
        "the registry sees the client the trusted ELB reports, not the ELB"
    );

    let dest = format!("docker://{}/elb/app:v1", elb.authority());
    let trust = proxy.trust_dir();
    let (image, pushed) = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = oci::build_image(&dir.path().join("src"), "v1", &[1500, 64 * 1024, 3], 21);
        let creds = ["--dest-creds", "alice:pw", "--dest-cert-dir", &trust];
        let mut args = creds.to_vec();
        args.push("--preserve-digests");
        skopeo::copy(&image.reference(), &dest, &args).expect_success();
        let inspect = ["--creds", "alice:pw", "--cert-dir", &trust];
        let manifest = skopeo::inspect_raw(&dest, &inspect).expect_success();
        (image, manifest.stdout)
    })
    .await
    .expect("skopeo push and inspect through the ELB");
    assert_eq!(
        oci::sha256_digest(pushed.as_bytes()),
        image.manifest_digest,
        "the manifest read back through the ELB is the one pushed"
    );

    // Every blob went up through the ELB: skopeo followed the registry's upload URLs, and
    // those named the ELB, not the gate behind it (which skopeo could reach as well).
    let forwarded = elb.forwarded();
    let finished = forwarded
        .iter()
        .filter(|r| r.starts_with("PUT /v2/elb/app/blobs/uploads/") && r.contains("digest="))
        .count();
    let blobs = image.layer_digests.len() + 1;
    assert_eq!(
        finished, blobs,
        "one finishing PUT per blob (layers + config) through the ELB: {forwarded:#?}"
    );
    assert!(
        forwarded
            .iter()
            .any(|r| r.starts_with("PATCH /v2/elb/app/blobs/uploads/")),
        "blob bodies went through the ELB: {forwarded:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_peers_cannot_steer_upload_urls() {
    let (registry, proxy) = registry_and_gate("").await;
    let elb = FakeElb::start(&proxy).await;
    let hostile = [
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "http"),
        ("forwarded", "proto=http;host=evil.example"),
    ];

    // Through the ELB, which the gate does not trust: the client's Host still counts, its
    // X-Forwarded-Host and Forwarded do not.
    let via_elb = Client::new(elb.addr, &proxy.ca_pem, &elb.authority());
    let location = start_upload(&via_elb, "elb-test/untrusted", &hostile).await;
    let external = format!("https://{}/v2/elb/app/blobs/uploads/", elb.authority());
    assert!(
        location.starts_with(&external),
        "upload URL {location} must be {external}..."
    );
    assert_eq!(
        registry_saw_client(&registry, "elb-test/untrusted").await,
        ELB_SOURCE.to_string(),
        "an untrusted peer's X-Forwarded-For is replaced by the peer itself"
    );

    // Straight to the gate, with the ELB's headers and the hostile ones.
    let direct = proxy.client();
    let mut headers = hostile.to_vec();
    headers.extend([
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-port", "80"),
    ]);
    let location = start_upload(&direct, "elb-test/direct", &headers).await;
    let own = format!("https://{}/v2/elb/app/blobs/uploads/", proxy.authority());
    assert!(
        location.starts_with(&own),
        "upload URL {location} must be {own}..."
    );
    assert_eq!(
        registry_saw_client(&registry, "elb-test/direct").await,
        "127.0.0.1"
    );
}
