//! An issuer's keys over HTTPS: the discovery document
//! (`{issuer}/.well-known/openid-configuration`, OpenID Connect Discovery 1.0 §4)
//! names `jwks_uri`, which is the key set. HTTPS only, with the system roots or a
//! named CA; every request bounded in time and size; the discovery document's
//! `issuer` must be the configured one (§4.3), so a misconfigured URL or a redirect
//! cannot hand over another issuer's keys.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;

use super::jwks::{self, Jwks, MAX_JWKS_BYTES};
use crate::tls;

/// The largest discovery document read.
const MAX_DISCOVERY_BYTES: usize = 64 * 1024;
/// The path of the discovery document under the issuer.
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Fetches one issuer's key set.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: Client<Connector, Empty<Bytes>>,
    issuer: String,
    timeout: Duration,
}

/// Why the keys could not be fetched. Each names the URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A URL that is not `https://host/...`.
    #[error("{0:?} is not an https:// URL")]
    NotHttps(String),
    /// No answer within the timeout.
    #[error("{url}: no answer within {secs} s")]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout.
        secs: u64,
    },
    /// Could not connect, or the connection failed.
    #[error("{url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// What failed, with its sources.
        reason: String,
    },
    /// An answer other than 200.
    #[error("{url}: answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
    },
    /// A body over the limit.
    #[error("{url}: the answer is over {limit} bytes")]
    TooBig {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The discovery document is not usable.
    #[error("{url}: {reason}")]
    Discovery {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The key set is not usable.
    #[error("{url}: {source}")]
    Jwks {
        /// The URL.
        url: String,
        /// What is wrong.
        source: jwks::Error,
    },
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Fetcher {
    /// The issuer whose keys it fetches.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A fetcher for `issuer`'s keys, trusting `ca` (a PEM bundle) or the system roots.
    pub fn new(issuer: &str, ca: Option<&Path>, timeout: Duration) -> Result<Fetcher, tls::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls::client_config(ca)?)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_max_idle_per_host(1)
            .build(connector);
        Ok(Fetcher {
            client,
            issuer: issuer.to_owned(),
            timeout,
        })
    }

    /// Discovery, then the key set it names.
    pub async fn keys(&self) -> Result<Jwks, FetchError> {
        let url = format!("{}{DISCOVERY_PATH}", self.issuer.trim_end_matches('/'));
        let body = self.get(&url, MAX_DISCOVERY_BYTES).await?;
        let discovery: Discovery =
            serde_json::from_slice(&body).map_err(|e| FetchError::Discovery {
                url: url.clone(),
                reason: format!("not a discovery document with issuer and jwks_uri: {e}"),
            })?;
        if discovery.issuer != self.issuer {
            return Err(FetchError::Discovery {
                url,
                reason: format!(
                    "the document is for issuer {:?}, not {:?}",
                    discovery.issuer, self.issuer
                ),
            });
        }
        let body = self.get(&discovery.jwks_uri, MAX_JWKS_BYTES).await?;
        Jwks::parse(&body).map_err(|source| FetchError::Jwks {
            url: discovery.jwks_uri,
            source,
        })
    }

    /// One bounded GET; only 200 counts, redirects are not followed.
    async fn get(&self, url: &str, limit: usize) -> Result<Bytes, FetchError> {
        let uri: Uri = url
            .parse()
            .ok()
            .filter(|u: &Uri| u.scheme_str() == Some("https") && u.host().is_some())
            .ok_or_else(|| FetchError::NotHttps(url.to_owned()))?;
        let request = Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("registry-gate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|e| FetchError::NotHttps(format!("{url}: {e}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Connect {
                    url: url.to_owned(),
                    reason: crate::chain::error_chain(&e),
                })?;
            if response.status() != StatusCode::OK {
                return Err(FetchError::Status {
                    url: url.to_owned(),
                    status: response.status(),
                });
            }
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::TooBig {
                            url: url.to_owned(),
                            limit,
                        }
                    } else {
                        FetchError::Connect {
                            url: url.to_owned(),
                            reason: e.to_string(),
                        }
                    }
                })?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout {
                url: url.to_owned(),
                secs: self.timeout.as_secs(),
            })?
    }
}
