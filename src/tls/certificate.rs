//! The one place the gate parses an X.509 certificate ([RFC 5280 §4.1]), with
//! x509-parser: [`parse`] (used for a token key's certificate and a client
//! certificate's subject too) and the few facts [`read`] takes from it for
//! messages and for `certs generate` to keep a CA: when it expires, whether it is a
//! CA, and its public key. The signature is not checked here (rustls checks chains).
//!
//! [RFC 5280 §4.1]: https://www.rfc-editor.org/rfc/rfc5280#section-4.1

use std::time::{Duration, SystemTime};

use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::nom;
use x509_parser::oid_registry::OID_X509_EXT_BASIC_CONSTRAINTS;
use x509_parser::prelude::FromDer;

use crate::tls::der::{self, Invalid, Reader, SEQUENCE};

const BOOLEAN: u8 = 0x01;

/// What [`read`] found in a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The end of the validity period (`notAfter`).
    pub not_after: SystemTime,
    /// Whether basicConstraints says `cA: TRUE`.
    pub is_ca: bool,
    /// The subjectPublicKey's bits: an EC point, an Ed25519 key, or an RSAPublicKey.
    pub public_key: Vec<u8>,
}

/// Reads `der`, one DER certificate.
pub fn read(der: &[u8]) -> Result<Facts, Invalid> {
    let cert = parse(der)?;
    // Before 1970 cannot be a SystemTime everywhere, and no certificate the gate
    // meets expires then.
    let not_after = u64::try_from(cert.validity().not_after.timestamp())
        .map(|seconds| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
        .map_err(|_| Invalid("notAfter (UTCTime or GeneralizedTime, in UTC, after 1970)"))?;
    let is_ca = match cert.get_extension_unique(&OID_X509_EXT_BASIC_CONSTRAINTS) {
        Ok(Some(extension)) => ca_is_true(extension.value)?,
        Ok(None) => false,
        Err(_) => return Err(Invalid("extensions with at most one basicConstraints")),
    };
    let key = &cert.public_key().subject_public_key;
    if key.unused_bits != 0 {
        return Err(Invalid("subjectPublicKey (whole bytes)"));
    }
    Ok(Facts {
        not_after,
        is_ca,
        public_key: key.data.to_vec(),
    })
}

/// Whether basicConstraints (the extension's value) says `cA: TRUE` in DER, 0xff.
/// Read by hand because x509-parser takes any non-zero BOOLEAN (BER) as TRUE.
fn ca_is_true(value: &[u8]) -> Result<bool, Invalid> {
    let mut constraints = Reader::new(der::only(value, SEQUENCE, "basicConstraints")?);
    Ok(constraints.optional(BOOLEAN, "basicConstraints cA")? == Some(&[0xff]))
}

/// Parses `der`, which must be exactly one DER certificate; the error names the
/// part that is wrong.
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Invalid> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(Invalid("an X.509 certificate with nothing after it")),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(Invalid(expected(&e))),
        Err(nom::Err::Incomplete(_)) => Err(Invalid("an X.509 certificate")),
    }
}

/// What x509-parser's error says was expected, as a phrase for "expected ...".
fn expected(error: &X509Error) -> &'static str {
    match error {
        X509Error::InvalidVersion => "a certificate version (v1, v2 or v3)",
        X509Error::InvalidSerial => "a certificate serial number",
        X509Error::InvalidAlgorithmIdentifier => "a certificate signature algorithm",
        X509Error::InvalidX509Name => "a certificate issuer and subject (X.509 names)",
        X509Error::InvalidDate => {
            "a certificate validity (UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ)"
        }
        X509Error::InvalidSPKI => "a certificate public key",
        X509Error::InvalidSubjectUID | X509Error::InvalidIssuerUID => {
            "certificate unique identifiers"
        }
        X509Error::InvalidExtensions | X509Error::DuplicateExtensions => {
            "certificate extensions (each at most once)"
        }
        _ => "an X.509 certificate",
    }
}

#[cfg(test)]
pub(crate) mod build;
#[cfg(test)]
mod tests;
