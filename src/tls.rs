//! TLS material: PEM files to rustls configs, and certificate generation.
//!
//! The server speaks TLS 1.2 and 1.3 only, with rustls' AEAD-only suites over the
//! `ring` provider, and offers ALPN `h2` and `http/1.1`. Sessions resume only
//! through tickets whose keys rotate ([`tickets`]); client certificates are
//! verified against `tls.client_ca` and name a user ([`client_cert`]); an OCSP
//! response from a file is stapled ([`ocsp`]). Every error names the file and what
//! is wrong with it, since a bad path or key is the most common start-up failure.

pub(crate) mod certificate;
pub mod client_cert;
pub(crate) mod der;
pub(crate) mod ocsp;
pub(crate) mod tickets;

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

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Generate(e)
    }
}

/// Builds the client configuration used towards an `https://` registry: the given
/// CA bundle, or the system roots.
pub fn client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|e| Error::Cert {
                    path: path.to_path_buf(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A broken system certificate must not stop the gate; skip it.
                let _ = roots.add(cert);
            }
        }
    }
    client_config_with_roots(roots)
}

/// A client configuration trusting exactly `roots` (empty for a plain-HTTP
/// registry, where it is never used).
pub fn client_config_with_roots(
    roots: rustls::RootCertStore,
) -> Result<rustls::ClientConfig, Error> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// A CA and a server certificate signed by it, as PEM text.
pub struct GeneratedCerts {
    /// The CA certificate: what clients must trust.
    pub ca_cert: String,
    /// The CA's private key.
    pub ca_key: String,
    /// The server certificate, followed by nothing (the CA is the trust anchor).
    pub server_cert: String,
    /// The server's private key (PKCS#8).
    pub server_key: String,
}

/// A server certificate and its key, as PEM text.
pub struct ServerCert {
    /// The server certificate, followed by nothing (the CA is the trust anchor).
    pub cert: String,
    /// The server's private key (PKCS#8).
    pub key: String,
    /// Whole days from now until it expires.
    pub days: u64,
}

/// A CA read from files, checked for signing server certificates: its certificate
/// is a CA's, its key is that certificate's, and it has not expired.
pub struct Ca {
    cert: CertificateDer<'static>,
    key: rcgen::KeyPair,
    not_after: std::time::SystemTime,
}

/// How long a generated server certificate is valid: the longest that TLS
/// scanners accept without a finding (testssl.sh: over 825 days is MEDIUM).
pub const SERVER_CERT_DAYS: u32 = 825;
/// How long the generated CA is valid (it signs renewed server certificates).
const CA_DAYS: u32 = 3650;
const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Generated certificates start this long ago, for clocks a little behind.
const CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(3600);

/// Generates a CA and a server certificate for the given DNS names and IP addresses,
/// valid from an hour ago (clock skew) for [`CA_DAYS`] and [`SERVER_CERT_DAYS`] in all.
pub fn generate(sans: &[String]) -> Result<GeneratedCerts, Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

    let start = std::time::SystemTime::now() - CLOCK_SKEW;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.not_before = start.into();
    ca_params.not_after = (start + DAY * CA_DAYS).into();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "registry-gate development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca = Ca {
        cert: ca_cert.der().clone(),
        key: ca_key,
        not_after: start + DAY * CA_DAYS,
    };
    let server = ca.issue(sans)?;
    Ok(GeneratedCerts {
        server_cert: server.cert,
        server_key: server.key,
        ca_cert: ca_cert.pem(),
        ca_key: ca.key.serialize_pem(),
    })
}

impl Ca {
    /// Reads a CA's certificate (the first in `cert`) and its PKCS#8 key, and checks
    /// that the certificate is a CA's, that the key is its key, and that it has not
    /// expired. Errors name the file and say what to do.
    pub fn load(cert: &Path, key: &Path) -> Result<Ca, Error> {
        let ca_err = |reason: String| Error::Ca {
            path: cert.to_path_buf(),
            reason,
        };
        let der = load_certs(cert)?.swap_remove(0);
        let facts = certificate::read(&der)
            .map_err(|e| ca_err(format!("not a readable X.509 certificate ({})", e.0)))?;
        if !facts.is_ca {
            return Err(ca_err(
                "is not a CA certificate (no basicConstraints cA)".into(),
            ));
        }
        let key_err = |reason: String| Error::CaKey {
            path: key.to_path_buf(),
            reason,
        };
        let key_pem = std::fs::read_to_string(key).map_err(|e| key_err(e.to_string()))?;
        let key_pair = rcgen::KeyPair::from_pem(&key_pem)
            .map_err(|e| key_err(format!("not a usable PKCS#8 private key ({e})")))?;
        if key_pair.public_key_raw() != facts.public_key {
            return Err(key_err(format!(
                "is not the key of the CA certificate {}",
                cert.display()
            )));
        }
        if facts.not_after <= std::time::SystemTime::now() {
            return Err(ca_err(format!(
                "expired on {}",
                humantime::format_rfc3339_seconds(facts.not_after)
            )));
        }
        let not_after = facts.not_after;
        Ok(Ca {
            cert: der,
            key: key_pair,
            not_after,
        })
    }

    /// Issues a server certificate for the given DNS names and IP addresses, valid
    /// from an hour ago for [`SERVER_CERT_DAYS`], or until the CA expires if sooner.
    pub fn issue(&self, sans: &[String]) -> Result<ServerCert, Error> {
        use rcgen::{CertificateParams, DnType, KeyPair};

        let now = std::time::SystemTime::now();
        let start = now - CLOCK_SKEW;
        let not_after = (start + DAY * SERVER_CERT_DAYS).min(self.not_after);
        let issuer = rcgen::Issuer::from_ca_cert_der(&self.cert, &self.key)?;
        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans.to_vec())?;
        let cn = sans.first().map(String::as_str).unwrap_or("registry-gate");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = start.into();
        params.not_after = not_after.into();
        let cert = params.signed_by(&server_key, &issuer)?;
        // Counted from the start of validity, as "valid for N days" is usually meant.
        let days = not_after
            .duration_since(start)
            .map_or(0, |valid| valid.as_secs() / DAY.as_secs());
        Ok(ServerCert {
            cert: cert.pem(),
            key: server_key.serialize_pem(),
            days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
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

    /// `openssl verify -CAfile ca server`: whether openssl builds the chain (names and
    /// key identifiers) and checks its signature.
    fn openssl_verifies(dir: &Path, ca: &str, server: &str) -> bool {
        std::process::Command::new("openssl")
            .args(["verify", "-CAfile", ca, server])
            .current_dir(dir)
            .output()
            .expect("openssl runs (apt-get install -y openssl)")
            .status
            .success()
    }

    #[test]
    fn a_kept_ca_issues_server_certificates_that_verify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = generate(&["localhost".into()]).expect("generate");
        let ca_cert = write(dir.path(), "ca.crt", &g.ca_cert);
        let ca_key = write(dir.path(), "ca.key", &g.ca_key);
        let issued = Ca::load(&ca_cert, &ca_key)
            .and_then(|ca| ca.issue(&["registry.example".into()]))
            .expect("issue");
        assert_eq!(issued.days, u64::from(SERVER_CERT_DAYS));
        write(dir.path(), "server.crt", &issued.cert);
        write(dir.path(), "server.key", &issued.key);
        assert!(openssl_verifies(dir.path(), "ca.crt", "server.crt"));
        server_config(
            &dir.path().join("server.crt"),
            &dir.path().join("server.key"),
        )
        .expect("the new pair loads");

        // A CA made by openssl (RSA, SHA-1 key identifiers) is kept as well.
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=ops CA",
                "-keyout",
                "ops.key",
                "-out",
                "ops.crt",
            ],
            dir.path(),
        );
        let ops = Ca::load(&dir.path().join("ops.crt"), &dir.path().join("ops.key"))
            .expect("an openssl CA loads");
        let issued = ops.issue(&["localhost".into()]).expect("issue");
        assert_eq!(
            issued.days, 30,
            "capped at the CA's notAfter, 30 days and an hour from its start"
        );
        write(dir.path(), "ops-server.crt", &issued.cert);
        assert!(openssl_verifies(dir.path(), "ops.crt", "ops-server.crt"));
        assert!(!openssl_verifies(dir.path(), "ca.crt", "ops-server.crt"));
    }

    #[test]
    fn a_kept_ca_must_be_a_ca_with_its_own_key_and_not_expired() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = tempfile::tempdir().expect("tempdir");
        let g = generate(&["localhost".into()]).expect("generate");
        write(dir.path(), "ca.crt", &g.ca_cert);
        write(dir.path(), "ca.key", &g.ca_key);
        write(dir.path(), "server.crt", &g.server_cert);
        write(dir.path(), "server.key", &g.server_key);
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = (std::time::SystemTime::now() - DAY * 10).into();
        params.not_after = (std::time::SystemTime::now() - DAY).into();
        write(
            dir.path(),
            "old.crt",
            &params.self_signed(&key).expect("old CA").pem(),
        );
        write(dir.path(), "old.key", &key.serialize_pem());
        let d = dir.path().display();
        #[rustfmt::skip]
        let cases = [
            ("server.crt", "server.key", format!("CA certificate {d}/server.crt: is not a CA certificate (no basicConstraints cA)")),
            ("ca.crt", "server.key", format!("CA key file {d}/server.key: is not the key of the CA certificate {d}/ca.crt")),
            ("ca.crt", "ca.crt", format!("CA key file {d}/ca.crt: not a usable PKCS#8 private key (")),
            ("ca.crt", "missing.key", format!("CA key file {d}/missing.key: No such file")),
            ("old.crt", "old.key", format!("CA certificate {d}/old.crt: expired on ")),
        ];
        for (cert, key, want) in cases {
            let err = Ca::load(&dir.path().join(cert), &dir.path().join(key))
                .err()
                .unwrap_or_else(|| panic!("{cert} with {key} is refused"));
            assert!(err.to_string().starts_with(&want), "{cert} {key}: {err}");
        }
    }

    #[test]
    fn generated_server_certificate_lives_825_days_and_the_ca_ten_years() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = generate(&["localhost".into()]).expect("generate");
        write(dir.path(), "server.pem", &g.server_cert);
        write(dir.path(), "ca.pem", &g.ca_cert);
        // `-checkend N`: exit 0 when the certificate is still valid N seconds from now.
        let valid_in = |file: &str, days: u32| {
            std::process::Command::new("openssl")
                .args(["x509", "-noout", "-in", file, "-checkend"])
                .arg((u64::from(days) * 86_400).to_string())
                .current_dir(dir.path())
                .status()
                .expect("openssl runs (apt-get install -y openssl)")
                .success()
        };
        assert!(valid_in("server.pem", 0));
        assert!(valid_in("server.pem", SERVER_CERT_DAYS - 1));
        assert!(!valid_in("server.pem", SERVER_CERT_DAYS + 1));
        assert!(valid_in("ca.pem", CA_DAYS - 1));
        assert!(!valid_in("ca.pem", CA_DAYS + 1));
    }

    fn openssl(args: &[&str], dir: &Path) {
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
