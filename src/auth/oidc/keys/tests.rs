//! The fetcher and the cache against an issuer on loopback: HTTPS with a CA the test
//! makes, discovery and a key set the test can change, and a request count.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::auth::oidc::fetch::FetchError;

/// An EC P-256 public JWK (any point on the curve would do; this one is ring's).
fn jwk(kid: &str) -> serde_json::Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    json!({"kty": "EC", "crv": "P-256", "kid": kid,
           "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])})
}

struct Issuer {
    url: String,
    ca: PathBuf,
    /// The key set served, as JSON text; `None`: answer 503.
    keys: Arc<Mutex<Option<String>>>,
    /// The `issuer` the discovery document claims.
    claims: Arc<Mutex<String>>,
    jwks_requests: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Issuer {
    async fn start(kids: &[&str]) -> Issuer {
        let dir = tempfile::tempdir().unwrap();
        let certs = crate::tls::generate(&["localhost".into()]).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca = write("ca.pem", &certs.ca_cert);
        let cert = write("cert.pem", &certs.server_cert);
        let key = write("key.pem", &certs.server_key);
        let mut config = (*crate::tls::server_config(&cert, &key).unwrap()).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        let set = json!({"keys": kids.iter().map(|k| jwk(k)).collect::<Vec<_>>()});
        let keys = Arc::new(Mutex::new(Some(set.to_string())));
        let claims = Arc::new(Mutex::new(url.clone()));
        let jwks_requests = Arc::new(AtomicUsize::new(0));
        let (k, c, n, u) = (
            keys.clone(),
            claims.clone(),
            jwks_requests.clone(),
            url.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let (k, c, n, u) = (k.clone(), c.clone(), n.clone(), u.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<Incoming>| {
                        let answer = match req.uri().path() {
                            "/.well-known/openid-configuration" => Some(
                                json!({"issuer": *c.lock(), "jwks_uri": format!("{u}/keys")})
                                    .to_string(),
                            ),
                            "/keys" => {
                                n.fetch_add(1, Ordering::SeqCst);
                                k.lock().clone()
                            }
                            _ => None,
                        };
                        let response = match answer {
                            Some(body) => Response::new(Full::new(Bytes::from(body))),
                            None => {
                                let mut r = Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                                r
                            }
                        };
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Issuer {
            url,
            ca,
            keys,
            claims,
            jwks_requests,
            _dir: dir,
        }
    }

    fn fetcher(&self) -> Fetcher {
        Fetcher::new(&self.url, Some(&self.ca), Duration::from_secs(5)).unwrap()
    }

    fn serve(&self, kids: &[&str]) {
        let set = json!({"keys": kids.iter().map(|k| jwk(k)).collect::<Vec<_>>()});
        *self.keys.lock() = Some(set.to_string());
    }

    fn fetches(&self) -> usize {
        self.jwks_requests.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn discovery_then_keys_and_a_forged_kid_flood_costs_no_fetch() {
    let issuer = Issuer::start(&["k1"]).await;
    let keys = IssuerKeys::Discovered(Arc::new(Discovered::new(issuer.fetcher())));
    let jwks = keys.for_kid("k1").await.expect("fetched");
    assert!(jwks.get("k1").is_some());
    assert_eq!(issuer.fetches(), 1);
    let flood: Vec<_> = (0..50)
        .map(|i| keys.for_kid_owned(format!("forged-{i}")))
        .collect();
    for found in futures_join(flood).await {
        assert!(found.expect("the cached set").get("k1").is_some());
    }
    assert_eq!(issuer.fetches(), 1, "no fetch within the refresh interval");
    assert!(keys.for_kid("k1").await.is_some());
    assert_eq!(issuer.fetches(), 1, "a cached kid never fetches");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_the_interval_passed_and_an_outage_keeps_the_cache() {
    let issuer = Issuer::start(&["k1"]).await;
    let interval = Duration::from_millis(200);
    let discovered = Discovered::with_interval(issuer.fetcher(), interval);
    let keys = IssuerKeys::Discovered(Arc::new(discovered));
    assert!(keys.for_kid("k1").await.is_some());
    issuer.serve(&["k1", "k2"]);
    let early = keys.for_kid("k2").await.expect("cached");
    assert!(early.get("k2").is_none(), "within the interval: no fetch");
    tokio::time::sleep(interval).await; // the point: the interval passing
    let rotated = keys.for_kid("k2").await.expect("refreshed");
    assert!(rotated.get("k2").is_some());
    assert_eq!(issuer.fetches(), 2);
    // The issuer goes down: tokens with cached keys keep working.
    *issuer.keys.lock() = None;
    tokio::time::sleep(interval).await;
    let during = keys.for_kid("k3").await.expect("the cached set stays");
    assert!(during.get("k1").is_some() && during.get("k2").is_some());
    assert_eq!(issuer.fetches(), 3);
    let IssuerKeys::Discovered(d) = &keys else {
        unreachable!()
    };
    tokio::time::sleep(interval).await;
    let err = d.refresh().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}/keys: answered 503 Service Unavailable", issuer.url)
    );
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_and_plain_http_are_refused() {
    let issuer = Issuer::start(&["k1"]).await;
    *issuer.claims.lock() = "https://evil.example".into();
    let err = issuer.fetcher().keys().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{0}/.well-known/openid-configuration: the document is for issuer \"https://evil.example\", not \"{0}\"",
            issuer.url
        )
    );
    assert_eq!(issuer.fetches(), 0);
    let plain = Fetcher::new("http://localhost:1", None, Duration::from_secs(1)).unwrap();
    assert!(matches!(
        plain.keys().await.unwrap_err(),
        FetchError::NotHttps(_)
    ));
}

#[tokio::test]
async fn a_key_set_over_the_limit_is_refused() {
    let issuer = Issuer::start(&["k1"]).await;
    *issuer.keys.lock() = Some(format!(
        "{{\"keys\":[],\"pad\":\"{}\"}}",
        "x".repeat(300 * 1024)
    ));
    let err = issuer.fetcher().keys().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}/keys: the answer is over 262144 bytes", issuer.url)
    );
}

impl IssuerKeys {
    async fn for_kid_owned(&self, kid: String) -> Option<Arc<Jwks>> {
        self.for_kid(&kid).await
    }
}

/// Runs the futures concurrently on this task and returns their outputs in order.
async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("ready")).collect()
}
