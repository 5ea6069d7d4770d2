//! The few facts the gate reads from an X.509 certificate ([RFC 5280 §4.1]): when
//! it expires, whether it is a CA, and its public key. Read with [`crate::tls::der`]; the
//! signature is not checked here (rustls checks chains; this is for messages and
//! for `certs generate` to keep a CA).
//!
//! [RFC 5280 §4.1]: https://www.rfc-editor.org/rfc/rfc5280#section-4.1

use std::time::{Duration, SystemTime};

use crate::tls::der::{self, Invalid, Reader, BIT_STRING, GENERALIZED_TIME, OCTET_STRING, OID};
use crate::tls::der::{CONTEXT_0, INTEGER, SEQUENCE, UTC_TIME};

const BOOLEAN: u8 = 0x01;
/// `[3]`, constructed: a certificate's extensions.
const CONTEXT_3: u8 = 0xa3;
/// `[1]` and `[2]`, primitive: the unique identifiers (before the extensions).
const ISSUER_UID: u8 = 0x81;
const SUBJECT_UID: u8 = 0x82;
/// id-ce-basicConstraints, 2.5.29.19.
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

/// What [`read`] found in a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    /// The end of the validity period (`notAfter`).
    pub not_after: SystemTime,
    /// Whether basicConstraints says `cA: TRUE`.
    pub is_ca: bool,
    /// The subjectPublicKey's bits: an EC point, an Ed25519 key, or an RSAPublicKey.
    pub public_key: &'a [u8],
}

/// Reads `der`, one DER certificate.
pub fn read(der: &[u8]) -> Result<Facts<'_>, Invalid> {
    let certificate = der::only(der, SEQUENCE, "a certificate (SEQUENCE)")?;
    let tbs = Reader::new(certificate).read(SEQUENCE, "tbsCertificate")?;
    let mut tbs = Reader::new(tbs);
    tbs.optional(CONTEXT_0, "version")?;
    tbs.read(INTEGER, "serialNumber")?;
    tbs.read(SEQUENCE, "signature algorithm")?;
    tbs.read(SEQUENCE, "issuer")?;
    let mut validity = Reader::new(tbs.read(SEQUENCE, "validity")?);
    validity.any("notBefore")?;
    let not_after = time(validity.any("notAfter")?)?;
    tbs.read(SEQUENCE, "subject")?;
    let mut spki = Reader::new(tbs.read(SEQUENCE, "subjectPublicKeyInfo")?);
    spki.read(SEQUENCE, "public key algorithm")?;
    let public_key = match spki.read(BIT_STRING, "subjectPublicKey")? {
        [0, key @ ..] => key,
        _ => return Err(Invalid("subjectPublicKey (whole bytes)")),
    };
    tbs.optional(ISSUER_UID, "issuerUniqueID")?;
    tbs.optional(SUBJECT_UID, "subjectUniqueID")?;
    let is_ca = match tbs.optional(CONTEXT_3, "extensions")? {
        Some(extensions) => basic_constraints_ca(der::only(extensions, SEQUENCE, "extensions")?)?,
        None => false,
    };
    Ok(Facts {
        not_after,
        is_ca,
        public_key,
    })
}

/// Whether the extensions hold basicConstraints with `cA: TRUE`.
fn basic_constraints_ca(extensions: &[u8]) -> Result<bool, Invalid> {
    let mut extensions = Reader::new(extensions);
    while !extensions.is_empty() {
        let mut extension = Reader::new(extensions.read(SEQUENCE, "extension")?);
        let id = extension.read(OID, "extnID")?;
        extension.optional(BOOLEAN, "critical")?;
        let value = extension.read(OCTET_STRING, "extnValue")?;
        if id == BASIC_CONSTRAINTS {
            let mut constraints = Reader::new(der::only(value, SEQUENCE, "basicConstraints")?);
            return Ok(constraints.optional(BOOLEAN, "cA")? == Some(&[0xff]));
        }
    }
    Ok(false)
}

/// A UTCTime (`YYMMDDHHMMSSZ`, 1950 to 2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`),
/// the two forms RFC 5280 §4.1.2.5 allows.
fn time((tag, text): (u8, &[u8])) -> Result<SystemTime, Invalid> {
    let bad = Invalid("notAfter (UTCTime or GeneralizedTime, in UTC)");
    let digits = match (tag, text) {
        (UTC_TIME | GENERALIZED_TIME, [digits @ .., b'Z']) => digits,
        _ => return Err(bad),
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    let number = |d: &[u8]| d.iter().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = number(&digits[..2]);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (number(&digits[..4]), &digits[4..]),
        _ => return Err(bad),
    };
    let [month, day, hour, minute, second] = [0, 2, 4, 6, 8].map(|i| number(&rest[i..i + 2]));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad);
    }
    let days = days_since_epoch(year, month, day).ok_or(bad)?;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Days from 1970-01-01 to the date (proleptic Gregorian), or `None` before 1970
/// (no certificate the gate meets expires then).
fn days_since_epoch(year: u64, month: u64, day: u64) -> Option<u64> {
    // Howard Hinnant's days_from_civil, on years counted from March.
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).checked_sub(719_468)
}

#[cfg(test)]
mod tests;
