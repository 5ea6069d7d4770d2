//! Certificate generation for `certs generate` and the tests: a development CA and
//! a server certificate signed by it, or a server certificate from a CA kept on disk.

use std::path::Path;

use rustls_pki_types::CertificateDer;

use super::{certificate, load_certs, Error};

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Generate(e)
    }
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
mod tests;
