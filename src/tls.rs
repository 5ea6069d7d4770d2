//! TLS material: PEM files to the server's rustls configuration (here), client
//! configurations ([`client_config`]) and certificate generation ([`generate`]).
//!
//! The server speaks TLS 1.2 and 1.3 only, with rustls' AEAD-only suites over the
//! `ring` provider, and offers ALPN `h2` and `http/1.1`. Sessions resume only
//! through tickets whose keys rotate ([`tickets`]); client certificates are
//! verified against `tls.client_ca` and name a user ([`client_cert`]); an OCSP
//! response from a file is stapled ([`ocsp`]). Every error names the file and what
//! is wrong with it, since a bad path or key is the most common start-up failure.

pub(crate) mod certificate;
mod client;
pub mod client_cert;
pub(crate) mod der;
mod generate;
pub(crate) mod ocsp;
pub(crate) mod tickets;

pub use client::{client_config, client_config_with_roots};
pub use generate::{generate, Ca, GeneratedCerts, ServerCert, SERVER_CERT_DAYS};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::NoServerSessionStorage;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ClientAuth, TlsConfig};

/// Errors loading or generating TLS material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The certificate file could not be read or holds no valid PEM certificate.
    #[error("certificate file {}: {reason}", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file could not be read or holds no usable private key.
    #[error("key file {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (for example, the key does not match the certificate).
    #[error("certificate {} with key {}: {error}", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        error: rustls::Error,
    },
    /// `tls.ocsp`: the file could not be read or is not a usable OCSP response.
    #[error("ocsp file {}: {reason}", path.display())]
    Ocsp {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `tls.client_ca`: the file could not be read or holds no usable CA.
    #[error("client_ca file {}: {reason}", path.display())]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The system's random source failed while making a session-ticket key.
    #[error("session tickets: no randomness for a ticket key")]
    Random,
    /// Building a client configuration failed.
    #[error("upstream TLS: {0}")]
    Client(String),
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Generate(rcgen::Error),
    /// A CA kept by `certs generate` cannot sign server certificates.
    #[error("CA certificate {}: {reason}", path.display())]
    Ca {
        /// The CA certificate file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key of a CA kept by `certs generate` is unusable.
    #[error("CA key file {}: {reason}", path.display())]
    CaKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's suites, in the order it picks them (`ignore_client_order`): AEAD
/// only, AES-128-GCM first (hardware AES makes it the fastest here; see
/// docs/benchmark.md), then AES-256-GCM, then ChaCha20-Poly1305. A server order of
/// its own is what TLS scanners ask for (testssl.sh rates "no cipher order" HIGH);
/// with only AEAD suites on offer no order can reach a weak one either way.
const SERVER_SUITES: &[rustls::CipherSuite] = &[
    rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The provider with its suites in [`SERVER_SUITES`]' order (and only those).
fn server_provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = SERVER_SUITES
        .iter()
        .filter_map(|wanted| {
            provider
                .cipher_suites
                .iter()
                .find(|s| s.suite() == *wanted)
                .copied()
        })
        .collect();
    Arc::new(provider)
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Reads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let cert_err = |reason: String| Error::Cert {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| cert_err(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(cert_err("no \"BEGIN CERTIFICATE\" block found".into()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#1, PKCS#8 or SEC1) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let key_err = |reason: String| Error::Key {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| key_err(e.to_string()))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            key_err("no PEM private key found (PKCS#1, PKCS#8 or SEC1)".into())
        }
        other => key_err(format!("invalid PEM: {other}")),
    })
}

/// The session ticketer of a server configuration, with what it was made for, so
/// that a reload can keep it (and every client's ticket) when that has not changed.
#[derive(Clone, Debug)]
pub struct Tickets {
    binding: Binding,
    ticketer: Option<Arc<tickets::RotatingTicketer>>,
}

/// What issued tickets depend on. A resumed session skips certificate exchange
/// and verification, so a ticket made under one of these must not outlive it:
/// after a new server certificate, clients must see it on their next connection
/// (not a session authenticated by the old one), and after a new client CA bundle
/// or mode, an identity verified under the old trust must not come back.
#[derive(Clone, Debug, PartialEq)]
struct Binding {
    /// Seconds each key seals for; `None`: no resumption.
    lifetime: Option<u32>,
    /// The server's chain (DER).
    chain: Vec<CertificateDer<'static>>,
    /// The client CAs (DER, in file order) and the mode.
    client_trust: Option<(Vec<CertificateDer<'static>>, ClientAuth)>,
}

impl Tickets {
    /// Whether session tickets are issued.
    pub fn enabled(&self) -> bool {
        self.ticketer.is_some()
    }
}

/// Builds a server configuration from a PEM chain and key, every other `[tls]` key
/// at its default (as test servers and tools need).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, Error> {
    server(&TlsConfig::pair(cert, key), None).map(|(config, _)| config)
}

/// Builds the server configuration from `[tls]`: the certificate chain and key,
/// the OCSP staple, the client-certificate verifier and the session ticketer. The
/// ticketer of `previous` is kept when the ticket lifetime, the certificate chain
/// and the client trust are unchanged, so that the frequent reloads (users, groups,
/// rules, a new OCSP staple) void no session; a new certificate or client CA does.
pub fn server(
    config: &TlsConfig,
    previous: Option<&Tickets>,
) -> Result<(Arc<rustls::ServerConfig>, Tickets), Error> {
    let (cert, key) = (config.cert.as_path(), config.key.as_path());
    let chain = load_certs(cert)?;
    let private = load_key(key)?;
    let ocsp = config.ocsp.as_deref().map(ocsp::load).transpose()?;
    let client_trust = match &config.client_ca {
        Some(ca) => Some((
            load_certs(ca).map_err(|e| Error::ClientCa {
                path: ca.clone(),
                reason: e.to_string(),
            })?,
            config.client_auth,
        )),
        None => None,
    };
    let builder = rustls::ServerConfig::builder_with_provider(server_provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|error| pair_err(cert, key, error))?;
    let builder = match (&config.client_ca, &client_trust) {
        (Some(ca), Some((certs, mode))) => {
            builder.with_client_cert_verifier(client_cert::verifier(ca, certs, *mode, provider())?)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut server = builder
        .with_single_cert_with_ocsp(chain.clone(), private, ocsp.unwrap_or_default())
        .map_err(|error| pair_err(cert, key, error))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    server.ignore_client_order = true;
    let binding = Binding {
        lifetime: config.session_ticket_lifetime.seconds(),
        chain,
        client_trust,
    };
    let tickets = tickets_for(binding, previous)?;
    // No server-side session cache: TLS 1.2 session IDs would resume for as long as
    // the cache keeps them, beyond any lifetime. Tickets are the one way to resume.
    server.session_storage = Arc::new(NoServerSessionStorage {});
    match &tickets.ticketer {
        Some(ticketer) => {
            server.ticketer = ticketer.clone();
            // One ticket per TLS 1.3 handshake (rustls sends two by default): a
            // client keeps one per server (Go's, so docker's and skopeo's, does), and
            // each ticket costs both sides a seal, a message and a session object.
            server.send_tls13_tickets = 1;
        }
        None => server.send_tls13_tickets = 0,
    }
    Ok((Arc::new(server), tickets))
}

/// The previous ticketer if it was made for the same [`Binding`], else a new one
/// (or none, for a zero lifetime).
fn tickets_for(binding: Binding, previous: Option<&Tickets>) -> Result<Tickets, Error> {
    if let Some(p) = previous.filter(|p| p.binding == binding) {
        return Ok(p.clone());
    }
    let ticketer = match binding.lifetime {
        Some(seconds) => Some(Arc::new(
            tickets::RotatingTicketer::new(seconds).ok_or(Error::Random)?,
        )),
        None => None,
    };
    Ok(Tickets { binding, ticketer })
}

fn pair_err(cert: &Path, key: &Path, error: rustls::Error) -> Error {
    Error::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write test file");
        p
    }

    #[test]
    fn generated_pair_loads_and_offers_h2() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = generate(&["localhost".into(), "127.0.0.1".into()]).expect("generate");
        let cert = write(dir.path(), "c.pem", &g.server_cert);
        let key = write(dir.path(), "k.pem", &g.server_key);
        let config = server_config(&cert, &key).expect("loads");
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let ca = write(dir.path(), "ca.pem", &g.ca_cert);
        client_config(Some(&ca)).expect("CA loads");
    }

    pub(super) fn openssl(args: &[&str], dir: &Path) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (apt-get install -y openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn pkcs1_and_sec1_keys_made_by_openssl_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        openssl(&["genrsa", "-traditional", "-out", "rsa.key", "2048"], d);
        openssl(
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "ec.key",
            ],
            d,
        );
        for (key, header) in [
            ("rsa.key", "BEGIN RSA PRIVATE KEY"),
            ("ec.key", "BEGIN EC PRIVATE KEY"),
        ] {
            let text = std::fs::read_to_string(d.join(key)).expect("key written");
            assert!(text.contains(header), "{key} is {header}: {text}");
            let crt = format!("{key}.crt");
            openssl(
                &[
                    "req",
                    "-new",
                    "-x509",
                    "-key",
                    key,
                    "-out",
                    &crt,
                    "-days",
                    "1",
                    "-subj",
                    "/CN=localhost",
                ],
                d,
            );
            server_config(&d.join(&crt), &d.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = generate(&["localhost".into()]).expect("generate");
        let other = generate(&["localhost".into()]).expect("generate");
        let cert = write(dir.path(), "c.pem", &g.server_cert);
        let key = write(dir.path(), "k.pem", &g.server_key);
        let wrong_key = write(dir.path(), "wrong.pem", &other.server_key);
        let empty = write(dir.path(), "empty.pem", "");
        let missing = dir.path().join("missing.pem");

        let cases: Vec<(PathBuf, PathBuf, &str)> = vec![
            (missing.clone(), key.clone(), "certificate file"),
            (
                empty.clone(),
                key.clone(),
                "no \"BEGIN CERTIFICATE\" block found",
            ),
            (cert.clone(), missing.clone(), "No such file"),
            (cert.clone(), empty.clone(), "no PEM private key found"),
            (
                key.clone(),
                key.clone(),
                "no \"BEGIN CERTIFICATE\" block found",
            ),
            (cert.clone(), wrong_key.clone(), "wrong.pem"),
        ];
        for (c, k, want) in cases {
            let e = server_config(&c, &k).expect_err("must fail").to_string();
            assert!(e.contains(want), "cert={c:?} key={k:?} error={e}");
        }
    }

    #[test]
    fn a_reload_keeps_the_ticketer_unless_lifetime_certificate_or_client_trust_changed() {
        let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM");
        let (g, other) = (
            generate(&["localhost".into()]).expect("generate"),
            generate(&["localhost".into()]).expect("generate"),
        );
        let binding = |lifetime, chain: &str, ca: Option<(&str, ClientAuth)>| Binding {
            lifetime,
            chain: vec![der(chain)],
            client_trust: ca.map(|(ca, mode)| (vec![der(ca)], mode)),
        };
        let optional = Some((g.ca_cert.as_str(), ClientAuth::Optional));
        let first = tickets_for(binding(Some(60), &g.server_cert, optional), None).expect("new");
        let same = |t: &Tickets| match (&first.ticketer, &t.ticketer) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        let kept = tickets_for(binding(Some(60), &g.server_cert, optional), Some(&first));
        assert!(same(&kept.expect("kept")), "nothing changed: kept");
        let cases = [
            (binding(Some(61), &g.server_cert, optional), "lifetime"),
            (
                binding(Some(60), &other.server_cert, optional),
                "certificate",
            ),
            (
                binding(
                    Some(60),
                    &g.server_cert,
                    Some((&other.ca_cert, ClientAuth::Optional)),
                ),
                "client CA",
            ),
            (
                binding(
                    Some(60),
                    &g.server_cert,
                    Some((&g.ca_cert, ClientAuth::Required)),
                ),
                "client_auth",
            ),
            (binding(Some(60), &g.server_cert, None), "client_ca removed"),
        ];
        for (changed, why) in cases {
            let t = tickets_for(changed, Some(&first)).expect("new");
            assert!(t.enabled() && !same(&t), "{why} changed: a new ticketer");
        }
        let off = tickets_for(binding(None, &g.server_cert, None), Some(&first)).expect("off");
        assert!(!off.enabled(), "a zero lifetime: no ticketer");
    }
}
