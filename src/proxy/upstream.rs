//! The connection pool to the registry: HTTP/1.1 keep-alive over plain TCP or TLS.

pub(crate) mod probe;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, LengthLimitError, Limited};

use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::UpstreamConfig;
use crate::proxy::body::{BoxError, RequestBody, ResponseBody, UpstreamStalled};
use crate::tls;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The `User-Agent` of the start-up and reload probe ([`Upstream::announced_probe`]),
/// so that the registry's log (and a test's recording registry) can tell it from
/// clients' requests.
pub const PROBE_USER_AGENT: &str = concat!(
    "registry-gate/",
    env!("CARGO_PKG_VERSION"),
    " (upstream probe)"
);

/// Why a request of the gate's own to the registry failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer (or no more body bytes) within this long.
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The registry could not be reached.
    #[error(transparent)]
    Connect(hyper_util::client::legacy::Error),
    /// The exchange broke after the connection was made.
    #[error(transparent)]
    Http(hyper_util::client::legacy::Error),
    /// The response body broke off.
    #[error("response body: {0}")]
    Body(BoxError),
    /// The response body is over this many bytes.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// The gate built an unusable request (a bug).
    #[error("unusable request")]
    Request(#[from] http::Error),
}

impl Error {
    /// Sorts a pooled client's failure: reaching the registry, or the exchange after.
    pub fn from_client(e: hyper_util::client::legacy::Error) -> Error {
        if e.is_connect() {
            Error::Connect(e)
        } else {
            Error::Http(e)
        }
    }
}

/// The registry behind the gate.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// One pool per worker thread ([`crate::server::workers`]), so that a request's
    /// registry connection is driven by the thread that serves the request.
    clients: std::sync::Arc<[Client<Connector, RequestBody>]>,
    /// A separate small pool for the gate's own requests (readiness probes,
    /// catalog pages), which have no client body.
    own_client: Client<Connector, Empty<Bytes>>,
    scheme: Scheme,
    authority: Authority,
    /// Longest silence from the registry: before its answer (counted from the last
    /// request-body byte) and between two reads of its response body.
    pub read_timeout: Duration,
    /// `upstream.connect_timeout`, which also bounds the start-up probe.
    pub connect_timeout: Duration,
    /// `scheme://host:port`, for logs ([`Upstream::origin`]).
    origin: std::sync::Arc<str>,
}

impl Upstream {
    /// Builds the pool; fails only on unusable TLS material.
    pub fn build(config: &UpstreamConfig) -> Result<Upstream, tls::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout.0));
        http.set_nodelay(true);
        // The system roots are read only for an https registry: a reload of a
        // plain-HTTP setup need not scan /etc/ssl/certs.
        let tls = if config.url.scheme() == "https" {
            tls::client_config(config.ca.as_deref())?
        } else {
            tls::client_config_with_roots(rustls::RootCertStore::empty())?
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let clients = (0..crate::server::workers::count())
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .timer(TokioTimer::new())
                    .pool_idle_timeout(config.pool_idle_timeout.0)
                    .build(connector.clone())
            })
            .collect();
        let own_client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_max_idle_per_host(4)
            .build(connector);
        let uri = config.url.uri();
        Ok(Upstream {
            origin: origin(uri).into(),
            connect_timeout: config.connect_timeout.0,
            clients,
            own_client,
            scheme: uri.scheme().cloned().unwrap_or(Scheme::HTTP),
            authority: uri
                .authority()
                .cloned()
                .expect("UpstreamUrl always has an authority"),
            read_timeout: config.read_timeout.0,
        })
    }

    /// The registry URI for a request's path and query, bytes unchanged.
    pub fn uri_for(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(
                path_and_query
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/")),
            )
            .build()
    }

    /// Asks the registry for `GET /v2/` and returns its status (any status means it
    /// is up: 200 without auth, 401 with); an error says, as one line for the log
    /// and the readiness answer, why it could not be reached.
    pub async fn probe(&self, timeout: Duration) -> Result<http::StatusCode, String> {
        self.ask_v2(timeout, None).await
    }

    /// [`Upstream::probe`], with [`PROBE_USER_AGENT`] as its `User-Agent`.
    pub async fn announced_probe(&self, timeout: Duration) -> Result<http::StatusCode, String> {
        self.ask_v2(timeout, Some(PROBE_USER_AGENT)).await
    }

    async fn ask_v2(
        &self,
        timeout: Duration,
        user_agent: Option<&'static str>,
    ) -> Result<http::StatusCode, String> {
        let asked = async {
            let uri = self.uri_for(Some(&PathAndQuery::from_static("/v2/")))?;
            let mut req = http::Request::get(uri);
            if let Some(ua) = user_agent {
                req = req.header(http::header::USER_AGENT, ua);
            }
            let req = req.body(Empty::new())?;
            match tokio::time::timeout(timeout, self.own_client.request(req)).await {
                Ok(Ok(response)) => Ok(response.status()),
                Ok(Err(e)) => Err(Error::from_client(e)),
                Err(_) => Err(Error::Timeout(timeout)),
            }
        };
        asked.await.map_err(|e| crate::chain::error_chain(&e))
    }

    /// A body-less request of the gate's own (such as a catalog page), with the
    /// given headers: the whole answer, at most `max_bytes` of body, with at most
    /// `upstream.read_timeout` of silence before the head and between body reads.
    pub async fn get(
        &self,
        path_and_query: &str,
        headers: http::HeaderMap,
        max_bytes: usize,
    ) -> Result<http::Response<Bytes>, Error> {
        let pq: PathAndQuery = path_and_query.parse().map_err(http::Error::from)?;
        let mut req = http::Request::get(self.uri_for(Some(&pq))?).body(Empty::new())?;
        *req.headers_mut() = headers;
        let response = tokio::time::timeout(self.read_timeout, self.own_client.request(req))
            .await
            .map_err(|_| Error::Timeout(self.read_timeout))?
            .map_err(Error::from_client)?;
        let (parts, incoming) = response.into_parts();
        let body = Limited::new(ResponseBody::new(incoming, self.read_timeout), max_bytes)
            .collect()
            .await
            .map_err(|e| match e {
                e if e.is::<UpstreamStalled>() => Error::Timeout(self.read_timeout),
                e if e.is::<LengthLimitError>() => Error::TooLarge(max_bytes),
                e => Error::Body(e),
            })?;
        Ok(http::Response::from_parts(parts, body.to_bytes()))
    }

    /// The registry as `scheme://host:port` (the port written out even when it is
    /// the scheme's default), for log lines. `upstream.url` holds no credentials.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The pooled client of this worker thread (the first one's off the workers).
    pub fn client(&self) -> &Client<Connector, RequestBody> {
        let i = crate::server::workers::current().unwrap_or(0);
        &self.clients[i % self.clients.len()]
    }
}

/// `scheme://host:port` of a URI with an authority; any userinfo is left out.
fn origin(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("-");
    let default = if scheme == "https" { 443 } else { 80 };
    let port = uri.port_u16().unwrap_or(default);
    format!("{scheme}://{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_name_scheme_host_and_port() {
        let cases = [
            ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
            ("http://registry/", "http://registry:80"),
            ("https://registry.example/", "https://registry.example:443"),
            ("https://[::1]:5443/", "https://[::1]:5443"),
            ("http://user:secret@registry:5000/", "http://registry:5000"),
        ];
        for (uri, expected) in cases {
            let uri: Uri = uri.parse().expect("test URI");
            assert_eq!(origin(&uri), expected, "uri={uri}");
        }
    }
}
