//! An OIDC issuer on loopback for the gate's `[[oidc]]` tests: HTTPS with its own CA
//! (`ca`), the discovery document at `{url}/.well-known/openid-configuration`, a key
//! set at `{url}/keys` that the test can change (rotation) or turn into 503 answers
//! (an outage), and a count of key-set requests. [`Signer`] makes ES256 and RS256
//! keys and signs GitHub-Actions-shaped and GitLab-shaped tokens; [`forge`],
//! [`unsigned`] and [`hs256`] make the tokens an attacker would send.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A 2048-bit RSA key made once with `openssl genpkey` (PKCS#1 DER; ring cannot make
/// RSA keys), shared with the unit tests.
const RSA_PKCS1: &[u8] = include_bytes!("../../../src/auth/oidc/testdata/rsa2048.der");

/// What the gate's `audience` is in these tests.
pub const AUDIENCE: &str = "registry.test";

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// Seconds since 1970, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

enum Key {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A signing key with its `kid`.
pub struct Signer {
    /// The key's id, in the token header and the key set.
    pub kid: String,
    key: Key,
}

impl Signer {
    /// A fresh P-256 key (ES256).
    pub fn es256(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("ring makes a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("ring reads the key it made");
        Signer {
            kid: kid.into(),
            key: Key::Ec(pair),
        }
    }

    /// The test RSA key (RS256).
    pub fn rs256(kid: &str) -> Signer {
        Signer {
            kid: kid.into(),
            key: Key::Rsa(RsaKeyPair::from_der(RSA_PKCS1).expect("the committed test key")),
        }
    }

    /// The `alg` this key signs with.
    pub fn alg(&self) -> &'static str {
        match self.key {
            Key::Ec(_) => "ES256",
            Key::Rsa(_) => "RS256",
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        match &self.key {
            Key::Rsa(k) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
                       "n": b64(&c.n), "e": b64(&c.e)})
            }
            Key::Ec(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "kid": self.kid, "crv": "P-256", "use": "sig",
                       "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
        }
    }

    /// `claims` signed, with the header `{alg, kid, typ}`.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(
            &json!({"alg": self.alg(), "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }

    /// `header` and `claims`, signed with this key whatever the header says.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let signature = match &self.key {
            Key::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut sig)
                    .expect("RSA signing");
                sig
            }
            Key::Ec(k) => k
                .sign(&rng, signed.as_bytes())
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
        };
        format!("{signed}.{}", b64(&signature))
    }
}

/// A key set (`{"keys": [...]}`) of `signers`' public keys.
pub fn jwks(signers: &[&Signer]) -> String {
    json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()}).to_string()
}

/// `token` with its claims changed but the old signature kept: a forgery.
pub fn forge(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let header = parts.next().expect("a header");
    let signature = parts.nth(1).expect("a signature");
    format!(
        "{header}.{}.{signature}",
        b64(claims.to_string().as_bytes())
    )
}

/// `{"alg": "none"}` and `claims` with an empty signature.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "kid": kid, "typ": "JWT"});
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// `claims` with HS256 under `secret` (an attacker uses the public key's bytes).
pub fn hs256(kid: &str, secret: &[u8], claims: &Value) -> String {
    let header = json!({"alg": "HS256", "kid": kid, "typ": "JWT"});
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, signed.as_bytes());
    format!("{signed}.{}", b64(tag.as_ref()))
}

/// A GitHub Actions ID token's claims for `repository` on `refs/heads/main`,
/// issued now and valid for five minutes.
pub fn github_claims(iss: &str, repository: &str) -> Value {
    let now = now();
    let owner = repository.split('/').next().unwrap_or(repository);
    json!({
        "iss": iss,
        "aud": AUDIENCE,
        "sub": format!("repo:{repository}:ref:refs/heads/main"),
        "repository": repository,
        "repository_owner": owner,
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "workflow": "build",
        "run_id": "1234567",
        "jti": format!("{now}-{repository}"),
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 300,
    })
}

/// A GitLab CI ID token's claims for `project_path` on `main`.
pub fn gitlab_claims(iss: &str, project_path: &str) -> Value {
    let now = now();
    let namespace = project_path.split('/').next().unwrap_or(project_path);
    json!({
        "iss": iss,
        "aud": AUDIENCE,
        "sub": format!("project_path:{project_path}:ref_type:branch:ref:main"),
        "namespace_path": namespace,
        "project_path": project_path,
        "ref": "main",
        "ref_type": "branch",
        "pipeline_source": "push",
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 300,
    })
}

/// `claims` with `name` set to `value`.
pub fn with(claims: &Value, name: &str, value: Value) -> Value {
    let mut c = claims.clone();
    c[name] = value;
    c
}

/// What the issuer serves at `/keys`: a key set, or `None` for 503 (an outage).
type Served = Arc<Mutex<Option<String>>>;

/// The issuer on `127.0.0.1`, stopped on drop.
pub struct Issuer {
    /// `https://localhost:PORT`: its `iss` and its discovery base.
    pub url: String,
    /// The PEM CA its certificate is signed by (the gate's `ca`).
    pub ca: PathBuf,
    served: Served,
    jwks_requests: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Issuer {
    /// Starts serving `signers`' public keys.
    pub async fn start(signers: &[&Signer]) -> Issuer {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs =
            registry_gate::tls::generate(&["localhost".into()]).expect("generate the issuer's CA");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write a certificate file");
            path
        };
        let ca = write("issuer-ca.pem", &certs.ca_cert);
        let cert = write("issuer.crt", &certs.server_cert);
        let key = write("issuer.key", &certs.server_key);
        let mut config =
            (*registry_gate::tls::server_config(&cert, &key).expect("issuer TLS")).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let url = format!("https://localhost:{port}");
        let served: Served = Arc::new(Mutex::new(Some(jwks(signers))));
        let jwks_requests = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(serve(
            listener,
            acceptor,
            url.clone(),
            served.clone(),
            jwks_requests.clone(),
        ));
        Issuer {
            url,
            ca,
            served,
            jwks_requests,
            accept,
            _dir: dir,
        }
    }

    /// Serves `signers`' public keys from now on (a key rotation).
    pub fn set_keys(&self, signers: &[&Signer]) {
        *self.served.lock() = Some(jwks(signers));
    }

    /// Answers 503 to every key-set request from now on (an outage).
    pub fn go_down(&self) {
        *self.served.lock() = None;
    }

    /// How many times `/keys` was asked for.
    pub fn jwks_requests(&self) -> usize {
        self.jwks_requests.load(Ordering::SeqCst)
    }

    /// An `[[oidc]]` table for this issuer (discovery, with its CA) and `rules`.
    pub fn oidc_table(&self, rules: &str) -> String {
        oidc_table(
            &self.url,
            &format!("ca = {:?}", self.ca.display().to_string()),
            rules,
        )
    }
}

/// An `[[oidc]]` table for `issuer` with `source` (`ca = ...` or `jwks_file = ...`)
/// and `rules` (the TOML array's items).
pub fn oidc_table(issuer: &str, source: &str, rules: &str) -> String {
    format!(
        "\n[[oidc]]\nissuer = \"{issuer}\"\naudience = \"{AUDIENCE}\"\n{source}\nrules = [\n{rules}\n]\n"
    )
}

/// Writes `signers`' key set to `path` (for `jwks_file`).
pub fn write_jwks(path: &Path, signers: &[&Signer]) {
    std::fs::write(path, jwks(signers)).expect("write the key set");
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    url: String,
    served: Served,
    jwks_requests: Arc<AtomicUsize>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let (url, served, count) = (url.clone(), served.clone(), jwks_requests.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |req: Request<Incoming>| {
                let answer = match req.uri().path() {
                    "/.well-known/openid-configuration" => {
                        Some(json!({"issuer": url, "jwks_uri": format!("{url}/keys")}).to_string())
                    }
                    "/keys" => {
                        count.fetch_add(1, Ordering::SeqCst);
                        served.lock().clone()
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
}
