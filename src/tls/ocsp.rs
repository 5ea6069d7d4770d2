//! OCSP stapling from a file: the DER `OCSPResponse` that `openssl ocsp -respout`
//! (or a CA's responder, fetched by cron) writes, sent with every handshake.
//!
//! The gate does not fetch responses itself: the file is the interface, and a
//! changed file is picked up by the reload watcher like the certificate. At load
//! the response is checked as far as it can be without the issuer: one DER
//! `OCSPResponse` filling the file, with status `successful` and a basic response
//! inside ([RFC 6960 §4.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.1)).
//! Its signature and dates are the client's to check; a staple that is wrong in
//! those ways makes strict clients fail, so the operator should replace it before
//! `nextUpdate`.
//!
//! Why no crate: x509-parser has no OCSP, and the shape check is 20 lines on
//! [`crate::tls::der`].

use std::path::Path;

use crate::tls::der::{self, Invalid, Reader, CONTEXT_0, ENUMERATED, OCTET_STRING, OID, SEQUENCE};

/// 1.3.6.1.5.5.7.48.1.1, id-pkix-ocsp-basic.
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// Reads and checks the OCSP response in `path`.
pub fn load(path: &Path) -> Result<Vec<u8>, super::Error> {
    let fail = |reason: String| super::Error::Ocsp {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    if bytes.is_empty() {
        return Err(fail("empty".into()));
    }
    check(&bytes).map_err(|Invalid(expected)| {
        fail(format!(
            "not {expected} (expected a DER OCSP response, as `openssl ocsp -respout` writes)"
        ))
    })?;
    Ok(bytes)
}

/// Checks the shape of an `OCSPResponse`:
///
/// ```text
/// OCSPResponse ::= SEQUENCE {
///    responseStatus  ENUMERATED { successful (0), ... },
///    responseBytes   [0] EXPLICIT SEQUENCE { responseType OID, response OCTET STRING } OPTIONAL }
/// ```
fn check(bytes: &[u8]) -> Result<(), Invalid> {
    let mut response = Reader::new(der::only(bytes, SEQUENCE, "one DER SEQUENCE")?);
    let status = response.read(ENUMERATED, "an OCSP response status")?;
    if status != [0] {
        return Err(Invalid(
            "a successful OCSP response (its status is an error: nothing to staple)",
        ));
    }
    let wrapped = response.read(CONTEXT_0, "an OCSP response with responseBytes")?;
    response.finish("an OCSP response with nothing after responseBytes")?;
    let mut inner = Reader::new(der::only(wrapped, SEQUENCE, "OCSP responseBytes")?);
    if inner.read(OID, "an OCSP response type")? != OID_OCSP_BASIC {
        return Err(Invalid("a basic OCSP response (id-pkix-ocsp-basic)"));
    }
    let basic = inner.read(OCTET_STRING, "an OCSP response body")?;
    inner.finish("OCSP responseBytes of two fields")?;
    der::only(basic, SEQUENCE, "a BasicOCSPResponse")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed response around a (content-free) BasicOCSPResponse.
    fn response(status: u8, response_type: &[u8]) -> Vec<u8> {
        let basic = [0x30, 0x00];
        let octets = [&[OCTET_STRING, basic.len() as u8][..], &basic].concat();
        let oid = [&[OID, response_type.len() as u8][..], response_type].concat();
        let seq = [
            &[SEQUENCE, (oid.len() + octets.len()) as u8][..],
            &oid,
            &octets,
        ]
        .concat();
        let bytes = [&[CONTEXT_0, seq.len() as u8][..], &seq].concat();
        let body = [&[ENUMERATED, 1, status][..], &bytes].concat();
        [&[SEQUENCE, body.len() as u8][..], &body].concat()
    }

    #[test]
    fn shapes_are_checked() {
        let good = response(0, OID_OCSP_BASIC);
        assert_eq!(check(&good), Ok(()));
        let trailing = [&good[..], &[0]].concat();
        let unauthorized = [SEQUENCE, 3, ENUMERATED, 1, 6];
        let cases: &[(&[u8], &str)] = &[
            (b"-----BEGIN", "one DER SEQUENCE"),
            (&good[..good.len() - 1], "one DER SEQUENCE"),
            (&trailing, "one DER SEQUENCE"),
            (&unauthorized, "a successful OCSP response"),
            (&response(1, OID_OCSP_BASIC), "a successful OCSP response"),
            (&response(0, &[0x2b, 0x06]), "a basic OCSP response"),
        ];
        for (input, want) in cases {
            match check(input) {
                Err(Invalid(got)) => assert!(got.starts_with(want), "{input:02x?}: {got}"),
                Ok(()) => panic!("{input:02x?} accepted"),
            }
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.der");
        std::fs::write(&empty, b"").expect("write");
        let pem = dir.path().join("staple.pem");
        std::fs::write(&pem, b"-----BEGIN OCSP RESPONSE-----\n").expect("write");
        let good = dir.path().join("good.der");
        std::fs::write(&good, response(0, OID_OCSP_BASIC)).expect("write");
        for (path, want) in [
            (dir.path().join("missing.der"), "No such file"),
            (empty, "empty"),
            (pem, "not one DER SEQUENCE"),
        ] {
            let e = load(&path).expect_err("refused").to_string();
            assert!(
                e.contains(&path.display().to_string()) && e.contains(want),
                "{e}"
            );
        }
        assert_eq!(load(&good).expect("loads"), response(0, OID_OCSP_BASIC));
    }
}
