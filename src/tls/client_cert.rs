//! Client certificates (mTLS) for CI robots: the trusted CAs, and the user a
//! verified certificate names.
//!
//! rustls verifies the chain against `tls.client_ca` (signatures, validity dates,
//! the `clientAuth` extended key usage) during the handshake; a certificate that
//! does not chain there fails the handshake in either mode. This module then
//! reads the leaf's subject common name (CN) as the user name: CI certificates are
//! issued per robot with `CN=<robot>`, and the CN is what every CA tool asks for.
//! A certificate whose subject has no CN, more than one, or one that is not a
//! plain name (empty, over 255 bytes, control characters, `:`, or a string type
//! other than UTF8String, PrintableString or IA5String) identifies nobody: the
//! connection goes on as if no certificate had been sent, and a warning says why.
//! So does one that x509-parser cannot parse whole ([`crate::tls::certificate::parse`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::CertificateDer;

use crate::config::ClientAuth;
use crate::tls::certificate;
use crate::tls::der::{
    self, Invalid, Reader, IA5_STRING, OID, PRINTABLE_STRING, SEQUENCE, SET, UTF8_STRING,
};

/// 2.5.4.3, id-at-commonName.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// Longest accepted user name, in bytes.
const MAX_NAME_LEN: usize = 255;

/// The user a verified client certificate names; put on each request of the
/// connection as an extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertUser(pub String);

/// The verifier for the certificates of `tls.client_ca` (read from `ca`, named in
/// errors) in the given mode.
pub fn verifier(
    ca: &Path,
    certs: &[CertificateDer<'static>],
    mode: ClientAuth,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, super::Error> {
    let fail = |reason: String| super::Error::ClientCa {
        path: ca.to_path_buf(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs.iter().cloned() {
        roots
            .add(cert)
            .map_err(|e| fail(format!("not a usable CA certificate: {e}")))?;
    }
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if mode == ClientAuth::Optional {
        builder = builder.allow_unauthenticated();
    }
    builder.build().map_err(|e| fail(e.to_string()))
}

/// The user of the connection's verified client certificate, if it sent one
/// with a usable name; a certificate without one is logged and ignored.
pub fn user(conn: &rustls::ServerConnection, peer: SocketAddr) -> Option<ClientCertUser> {
    let leaf = conn.peer_certificates()?.first()?;
    match common_name(leaf) {
        Ok(name) => Some(ClientCertUser(name)),
        Err(Invalid(expected)) => {
            tracing::warn!(
                client.addr = %peer,
                expected,
                "client certificate verified but names no usable user: ignored"
            );
            None
        }
    }
}

/// The user a DER certificate names (its one subject CN, checked to be a plain
/// name), as [`user`] reads it; `None` when it names nobody. For the fuzz target:
/// the gate reads certificates through [`user`].
pub fn certificate_user(cert: &[u8]) -> Option<ClientCertUser> {
    common_name(cert).ok().map(ClientCertUser)
}

/// The one common name in a certificate's subject, checked to be a plain name.
fn common_name(cert: &[u8]) -> Result<String, Invalid> {
    let certificate = certificate::parse(cert)?;
    // The subject is walked here, not through x509-parser's name iterator: that
    // ignores anything after an attribute's value (der-parser drops the rest of a
    // SEQUENCE), and a name field that says more than its type and value names nobody.
    let subject = certificate.tbs_certificate.subject.as_raw();
    let mut subject = Reader::new(der::only(subject, SEQUENCE, "a certificate subject")?);
    let mut found = None;
    while !subject.is_empty() {
        let mut rdn = Reader::new(subject.read(SET, "a subject name component")?);
        while !rdn.is_empty() {
            let mut attribute = Reader::new(rdn.read(SEQUENCE, "a subject attribute")?);
            let oid = attribute.read(OID, "a subject attribute type")?;
            let (tag, value) = attribute.any("a subject attribute value")?;
            attribute.finish("a subject attribute of type and value")?;
            if oid != OID_COMMON_NAME {
                continue;
            }
            if found.is_some() {
                return Err(Invalid("a subject with one common name (it has several)"));
            }
            found = Some((tag, value));
        }
    }
    let (tag, value) = found.ok_or(Invalid("a subject common name (CN)"))?;
    if !matches!(tag, UTF8_STRING | PRINTABLE_STRING | IA5_STRING) {
        return Err(Invalid(
            "a common name as UTF8String, PrintableString or IA5String",
        ));
    }
    let name = std::str::from_utf8(value).map_err(|_| Invalid("a common name in UTF-8"))?;
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.contains(':')
        || name.chars().any(char::is_control)
    {
        return Err(Invalid(
            "a common name of 1 to 255 bytes without ':' or control characters",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, DnValue, KeyPair};

    fn cert_with(names: &[(DnType, DnValue)]) -> Vec<u8> {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, value) in names {
            params.distinguished_name.push(ty.clone(), value.clone());
        }
        params.self_signed(&key).expect("signs").der().to_vec()
    }

    fn utf8(s: &str) -> DnValue {
        DnValue::Utf8String(s.into())
    }

    #[test]
    fn the_one_common_name_is_the_user() {
        let ok: &[(&[(DnType, DnValue)], &str)] = &[
            (&[(DnType::CommonName, utf8("ci-robot"))], "ci-robot"),
            (
                &[
                    (DnType::OrganizationName, utf8("Example")),
                    (DnType::CommonName, utf8("build-bot.example")),
                ],
                "build-bot.example",
            ),
            (
                &[(
                    DnType::CommonName,
                    DnValue::PrintableString("robot 7".try_into().expect("printable")),
                )],
                "robot 7",
            ),
            (&[(DnType::CommonName, utf8("jürgen"))], "jürgen"),
        ];
        for (names, want) in ok {
            assert_eq!(
                common_name(&cert_with(names)).as_deref(),
                Ok(*want),
                "{names:?}"
            );
        }
    }

    #[test]
    fn certificates_without_a_usable_name_are_refused_with_a_reason() {
        let long = "x".repeat(256);
        let bad: &[(&[(DnType, DnValue)], &str)] = &[
            (&[], "a subject common name"),
            (
                &[(DnType::OrganizationName, utf8("Example"))],
                "a subject common name",
            ),
            (
                &[
                    (DnType::CommonName, utf8("a")),
                    (DnType::CustomDnType(vec![2, 5, 4, 3]), utf8("b")),
                ],
                "a subject with one common name",
            ),
            (&[(DnType::CommonName, utf8(""))], "a common name of 1 to"),
            (
                &[(DnType::CommonName, utf8(&long))],
                "a common name of 1 to",
            ),
            (
                &[(DnType::CommonName, utf8("a:b"))],
                "a common name of 1 to",
            ),
            (
                &[(DnType::CommonName, utf8("a\nb"))],
                "a common name of 1 to",
            ),
            (
                &[(
                    DnType::CommonName,
                    DnValue::BmpString("a".try_into().expect("bmp")),
                )],
                "a common name as UTF8String",
            ),
        ];
        for (names, want) in bad {
            match common_name(&cert_with(names)) {
                Err(Invalid(got)) => assert!(got.starts_with(want), "{names:?}: {got}"),
                Ok(name) => panic!("{names:?}: accepted as {name:?}"),
            }
        }
        assert_eq!(
            common_name(b"not DER"),
            Err(Invalid("an X.509 certificate"))
        );
    }

    #[test]
    fn a_name_attribute_with_more_than_type_and_value_names_nobody() {
        use crate::tls::certificate::build::{attribute, name, tlv, Parts, COMMON_NAME};
        let cn = tlv(UTF8_STRING, b"alice");
        let plain = Parts {
            subject: name(&[attribute(COMMON_NAME, &cn)]),
            ..Parts::new()
        };
        assert_eq!(common_name(&plain.der()).as_deref(), Ok("alice"));
        // SEQUENCE { commonName, "alice", "mallory" }: x509-parser alone reads "alice".
        let extra = [tlv(OID, COMMON_NAME), cn, tlv(UTF8_STRING, b"mallory")].concat();
        let padded = Parts {
            subject: name(&[tlv(SEQUENCE, &extra)]),
            ..Parts::new()
        }
        .der();
        let lenient: Vec<_> = certificate::parse(&padded)
            .expect("x509-parser parses it")
            .subject()
            .iter_common_name()
            .map(|cn| cn.as_str().map(str::to_owned))
            .collect();
        assert!(
            matches!(&lenient[..], [Ok(name)] if name == "alice"),
            "{lenient:?}"
        );
        assert_eq!(
            common_name(&padded),
            Err(Invalid("a subject attribute of type and value"))
        );
    }
}
