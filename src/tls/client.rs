//! Client configurations: towards an `https://` registry (its CA bundle or the
//! system roots) and towards an LDAP server, over the same provider and versions as
//! the server.

use std::path::Path;

use super::{load_certs, provider, Error, VERSIONS};

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
