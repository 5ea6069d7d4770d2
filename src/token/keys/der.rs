//! The public key in a token key's certificate, and the key kind in its private
//! key (PKCS#8 or SEC1 `ECPrivateKey`): EC on P-256 or RSA, anything else refused
//! with a phrase saying what is supported.
//!
//! The certificate is parsed by x509-parser ([`crate::tls::certificate::parse`]);
//! it is not validated here (the registry does that with Go's `crypto/x509`), only
//! its key found, which [`super::SigningKey::load`] then compares with the private
//! key's. Why the rest is hand-written on [`crate::tls::der`]: x509-parser reads no
//! private keys, and one algorithm check serves the certificate's key and PKCS#8.
//!
//! Each error is a phrase naming what was expected, for the caller to put after the
//! file name.

pub(super) use crate::tls::der::Invalid;
use crate::tls::der::{only, Reader};
use crate::tls::der::{
    BIT_STRING, CONTEXT_0, CONTEXT_1, INTEGER, NULL, OCTET_STRING, OID, SEQUENCE,
};

/// 1.2.840.10045.2.1, id-ecPublicKey ([RFC 5480 §2.1.1](https://www.rfc-editor.org/rfc/rfc5480#section-2.1.1)).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7, secp256r1 alias prime256v1 alias P-256.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// 1.2.840.113549.1.1.1, rsaEncryption ([RFC 3279 §2.3.1](https://www.rfc-editor.org/rfc/rfc3279#section-2.3.1)).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The kinds of key the token signer supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// ECDSA on P-256.
    P256,
    /// RSA.
    Rsa,
}

/// A public key as found in a SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Spki<'a> {
    /// The uncompressed point `04 || x || y`, 65 bytes.
    P256(&'a [u8]),
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// The modulus.
        n: &'a [u8],
        /// The public exponent.
        e: &'a [u8],
    },
}

/// The contents of a DER INTEGER that must be positive, without leading zeros.
fn positive<'a>(contents: &'a [u8], what: &'static str) -> Result<&'a [u8], Invalid> {
    match contents.first() {
        Some(b) if b & 0x80 != 0 => Err(Invalid(what)),
        Some(_) => {
            let start = contents.iter().position(|&b| b != 0).ok_or(Invalid(what))?;
            Ok(&contents[start..])
        }
        None => Err(Invalid(what)),
    }
}

/// What [`certificate`] reads from an X.509 certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Certificate<'a> {
    /// The validity's `notAfter`, in seconds since the Unix epoch.
    pub(super) not_after: i64,
    /// The SubjectPublicKeyInfo's key.
    pub(super) key: Spki<'a>,
}

/// Reads the validity end and the SubjectPublicKeyInfo of a certificate
/// ([RFC 5280 §4.1](https://www.rfc-editor.org/rfc/rfc5280#section-4.1)), parsed by
/// [`crate::tls::certificate::parse`].
pub(super) fn certificate(cert: &[u8]) -> Result<Certificate<'_>, Invalid> {
    let parsed = crate::tls::certificate::parse(cert)?;
    let spki = parsed.tbs_certificate.subject_pki.raw;
    Ok(Certificate {
        not_after: parsed.validity().not_after.timestamp(),
        key: subject_public_key_info(only(spki, SEQUENCE, "a certificate public key")?)?,
    })
}

/// Reads the contents of a SubjectPublicKeyInfo SEQUENCE.
fn subject_public_key_info(spki: &[u8]) -> Result<Spki<'_>, Invalid> {
    let mut reader = Reader::new(spki);
    let algorithm = reader.read(SEQUENCE, "a public key algorithm")?;
    let bits = reader.read(BIT_STRING, "a public key bit string")?;
    reader.finish("a public key with nothing after it")?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(Invalid("a public key bit string of whole bytes")),
    };
    match algorithm_kind(algorithm)? {
        Kind::P256 if key.len() == 65 && key[0] == 0x04 => Ok(Spki::P256(key)),
        Kind::P256 => Err(Invalid(
            "an uncompressed P-256 point (65 bytes, 04 || x || y)",
        )),
        Kind::Rsa => {
            let mut rsa = Reader::new(only(key, SEQUENCE, "an RSAPublicKey")?);
            let n = positive(rsa.read(INTEGER, "an RSA modulus")?, "an RSA modulus")?;
            let e = positive(rsa.read(INTEGER, "an RSA exponent")?, "an RSA exponent")?;
            rsa.finish("an RSAPublicKey of two integers")?;
            Ok(Spki::Rsa { n, e })
        }
    }
}

/// Reads an AlgorithmIdentifier's contents: EC on P-256, or RSA. Anything else
/// (other curves, Ed25519, DSA) is refused with a phrase saying what is supported.
fn algorithm_kind(algorithm: &[u8]) -> Result<Kind, Invalid> {
    let mut reader = Reader::new(algorithm);
    let oid = reader.read(OID, "a key algorithm identifier")?;
    if oid == OID_EC_PUBLIC_KEY {
        let curve = reader.read(OID, "a named EC curve")?;
        if curve != OID_P256 {
            return Err(Invalid(
                "an EC key on P-256 (other curves are not supported)",
            ));
        }
        reader.finish("an EC algorithm identifier")?;
        Ok(Kind::P256)
    } else if oid == OID_RSA {
        reader.optional(NULL, "RSA algorithm parameters")?;
        reader.finish("an RSA algorithm identifier")?;
        Ok(Kind::Rsa)
    } else {
        Err(Invalid(
            "an EC P-256 or RSA key (other key types are not supported)",
        ))
    }
}

/// The kind of key a PKCS#8 `PrivateKeyInfo` holds
/// ([RFC 5208 §5](https://www.rfc-editor.org/rfc/rfc5208#section-5)); ring parses
/// the rest.
pub(super) fn pkcs8_kind(pkcs8: &[u8]) -> Result<Kind, Invalid> {
    let mut reader = Reader::new(only(pkcs8, SEQUENCE, "a PKCS#8 private key")?);
    reader.read(INTEGER, "a PKCS#8 version")?;
    algorithm_kind(reader.read(SEQUENCE, "a PKCS#8 key algorithm")?)
}

/// The private scalar and public point of a SEC1 `ECPrivateKey`
/// ([RFC 5915 §3](https://www.rfc-editor.org/rfc/rfc5915#section-3)), which must
/// name P-256 (or no curve) and carry its public key, as OpenSSL writes it.
pub(super) fn sec1_p256(sec1: &[u8]) -> Result<(&[u8], &[u8]), Invalid> {
    let mut reader = Reader::new(only(sec1, SEQUENCE, "a SEC1 EC private key")?);
    if reader.read(INTEGER, "a SEC1 version")? != [1] {
        return Err(Invalid("SEC1 version 1"));
    }
    let private = reader.read(OCTET_STRING, "a SEC1 private key")?;
    if let Some(curve) = reader.optional(CONTEXT_0, "SEC1 curve parameters")? {
        if only(curve, OID, "a named EC curve")? != OID_P256 {
            return Err(Invalid(
                "an EC key on P-256 (other curves are not supported)",
            ));
        }
    }
    let public = reader
        .optional(CONTEXT_1, "a SEC1 public key")?
        .ok_or(Invalid("a SEC1 key that includes its public key"))?;
    match only(public, BIT_STRING, "a SEC1 public key bit string")?.split_first() {
        Some((0, point)) => Ok((private, point)),
        _ => Err(Invalid("a SEC1 public key bit string of whole bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input and what reading it must give.
    type Case = (&'static [u8], Result<&'static [u8], Invalid>);

    #[test]
    fn positive_integers_lose_their_leading_zeros_and_negatives_are_refused() {
        let cases: &[Case] = &[
            (&[0x01, 0x00, 0x01], Ok(&[0x01, 0x00, 0x01])),
            (&[0x00, 0xc5], Ok(&[0xc5])),
            (&[0x00, 0x00, 0x7f], Ok(&[0x7f])),
            (&[0x80], Err(Invalid("n"))),
            (&[0x00], Err(Invalid("n"))),
            (&[], Err(Invalid("n"))),
        ];
        for (input, want) in cases {
            assert_eq!(&positive(input, "n"), want, "input={input:02x?}");
        }
    }

    #[test]
    fn certificate_key_is_found_for_rcgen_certificates() {
        let key = rcgen::KeyPair::generate().expect("generate");
        let params = rcgen::CertificateParams::new(vec!["a.example".to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("self-signed");
        let got = certificate(cert.der()).expect("reads");
        assert_eq!(got.key, Spki::P256(key.public_key_raw()));
        // rcgen's default validity ends on 4096-01-01, a GeneralizedTime.
        assert_eq!(got.not_after, 67_090_118_400);
    }

    #[test]
    fn garbage_and_truncated_certificates_are_refused() {
        let key = rcgen::KeyPair::generate().expect("generate");
        let params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        let der = params
            .self_signed(&key)
            .expect("self-signed")
            .der()
            .to_vec();
        for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
            let got = certificate(&der[..cut]).map(|c| c.not_after);
            assert!(got.is_err(), "cut at {cut} of {}: {got:?}", der.len());
        }
        assert_eq!(
            certificate(b"not DER").map(|c| c.not_after),
            Err(Invalid("an X.509 certificate"))
        );
    }

    #[test]
    fn unsupported_algorithms_are_named() {
        // AlgorithmIdentifier contents for Ed25519 (1.3.101.112) and EC on P-384.
        let ed25519 = [0x06, 0x03, 0x2b, 0x65, 0x70];
        let p384 = [
            0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
            0x00, 0x22,
        ];
        assert_eq!(
            algorithm_kind(&ed25519),
            Err(Invalid(
                "an EC P-256 or RSA key (other key types are not supported)"
            ))
        );
        assert_eq!(
            algorithm_kind(&p384),
            Err(Invalid(
                "an EC key on P-256 (other curves are not supported)"
            ))
        );
    }

    #[test]
    fn certificate_times_are_read_in_both_forms() {
        use crate::tls::certificate::build::{tlv, Parts, GENERALIZED_TIME, UTC_TIME};
        const TIME: &str =
            "a certificate validity (UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ)";
        let cases: &[(u8, &str, Result<i64, Invalid>)] = &[
            (UTC_TIME, "700101000000Z", Ok(0)),
            (UTC_TIME, "491231235959Z", Ok(2_524_607_999)),
            (UTC_TIME, "500101000000Z", Ok(-631_152_000)),
            (GENERALIZED_TIME, "20500101000000Z", Ok(2_524_608_000)),
            (GENERALIZED_TIME, "20240229120000Z", Ok(1_709_208_000)),
            // Without seconds: X.680 allows it, RFC 5280 asks for them; x509-parser reads it
            // to the minute (the hand-written reader refused it).
            (UTC_TIME, "2402291200Z", Ok(1_709_208_000)),
            // With an offset: RFC 5280 asks for Z; x509-parser reads it as the same instant.
            (UTC_TIME, "240229120000+0100", Ok(1_709_204_400)),
            (UTC_TIME, "241329120000Z", Err(Invalid(TIME))),
            (UTC_TIME, "24022912000aZ", Err(Invalid(TIME))),
            (GENERALIZED_TIME, "240229120000Z", Err(Invalid(TIME))),
            (OCTET_STRING, "240229120000Z", Err(Invalid(TIME))),
        ];
        for (tag, text, want) in cases {
            let parts = Parts {
                not_after: tlv(*tag, text.as_bytes()),
                ..Parts::new()
            };
            let got = certificate(&parts.der()).map(|c| c.not_after);
            assert_eq!(&got, want, "{tag:#x} {text}");
        }
    }
}
