//! Test certificates written field by field, for what rcgen will not make: any
//! encoding of the validity times, and subjects that are not well-formed. The
//! signature is junk; nothing that reads these checks it.

use rcgen::PublicKeyData as _;

use crate::tls::der::{BIT_STRING, CONTEXT_0, INTEGER, OID, SEQUENCE, SET, UTF8_STRING};

/// 1.2.840.10045.4.3.2, ecdsa-with-SHA256.
const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// The two time forms of RFC 5280 §4.1.2.5.
pub(crate) const UTC_TIME: u8 = 0x17;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;
/// 2.5.4.3, id-at-commonName.
pub(crate) const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// One DER element: `tag`, the definite length, `contents`.
pub(crate) fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = vec![tag];
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        Ok(one) => out.extend([0x81, one]),
        Err(_) => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(contents);
    out
}

/// An AttributeTypeAndValue: `SEQUENCE { type OID, value }`, with `value` a whole
/// element (tag included).
pub(crate) fn attribute(oid: &[u8], value: &[u8]) -> Vec<u8> {
    tlv(SEQUENCE, &[tlv(OID, oid), value.to_vec()].concat())
}

/// A Name of one RDN per attribute.
pub(crate) fn name(attributes: &[Vec<u8>]) -> Vec<u8> {
    let rdns: Vec<u8> = attributes.iter().flat_map(|a| tlv(SET, a)).collect();
    tlv(SEQUENCE, &rdns)
}

/// The fields of a test certificate, each a whole DER element.
pub(crate) struct Parts {
    pub(crate) not_before: Vec<u8>,
    pub(crate) not_after: Vec<u8>,
    pub(crate) subject: Vec<u8>,
    pub(crate) spki: Vec<u8>,
}

impl Parts {
    /// 2024-01-01 to 2034-01-01 as UTCTime, `CN=alice`, a fresh P-256 key.
    pub(crate) fn new() -> Parts {
        let key = rcgen::KeyPair::generate().expect("key");
        Parts {
            not_before: tlv(UTC_TIME, b"240101000000Z"),
            not_after: tlv(UTC_TIME, b"340101000000Z"),
            subject: name(&[attribute(COMMON_NAME, &tlv(UTF8_STRING, b"alice"))]),
            spki: key.subject_public_key_info(),
        }
    }

    /// The DER certificate: v3, serial 1, issuer `CN=test CA`, no extensions.
    pub(crate) fn der(&self) -> Vec<u8> {
        let algorithm = tlv(SEQUENCE, &tlv(OID, ECDSA_SHA256));
        let issuer = name(&[attribute(COMMON_NAME, &tlv(UTF8_STRING, b"test CA"))]);
        let validity = tlv(SEQUENCE, &[&self.not_before[..], &self.not_after].concat());
        let tbs = [
            tlv(CONTEXT_0, &tlv(INTEGER, &[2])),
            tlv(INTEGER, &[1]),
            algorithm.clone(),
            issuer,
            validity,
            self.subject.clone(),
            self.spki.clone(),
        ]
        .concat();
        let signature = tlv(BIT_STRING, &[0, 0]);
        tlv(
            SEQUENCE,
            &[tlv(SEQUENCE, &tbs), algorithm, signature].concat(),
        )
    }
}
