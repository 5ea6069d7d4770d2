//! A public key in the two forms tokens need: JWK members and a signature check.
//! Also its key ID, the thumbprint described in the [`super`] module doc.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents};
use serde_json::Value;

use super::{der, Algorithm, MIN_RSA_BITS};

/// A public key, in the form both the JWK and the verifier need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum PublicKey {
    /// The uncompressed point `04 || x || y`: always 65 bytes, as both sources
    /// (the DER walk and ring) guarantee.
    P256(Vec<u8>),
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl PublicKey {
    pub(super) fn from_spki(spki: der::Spki<'_>) -> Result<Self, String> {
        match spki {
            der::Spki::P256(point) => Ok(PublicKey::P256(point.to_vec())),
            der::Spki::Rsa { n, e } => {
                let top = n.first().map_or(8, |b| b.leading_zeros() as usize);
                let bits = (n.len() * 8).saturating_sub(top);
                if bits < MIN_RSA_BITS {
                    return Err(format!(
                        "RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"
                    ));
                }
                Ok(PublicKey::Rsa {
                    n: n.to_vec(),
                    e: e.to_vec(),
                })
            }
        }
    }

    pub(super) fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::P256(_) => Algorithm::Es256,
            PublicKey::Rsa { .. } => Algorithm::Rs256,
        }
    }

    /// The coordinates x and y, 32 bytes each.
    fn coordinates(point: &[u8]) -> (&[u8], &[u8]) {
        point[1..].split_at(32)
    }

    /// The key ID: registry 3's JWK thumbprint (see the module doc).
    pub(super) fn thumbprint(&self) -> String {
        fn b64(bytes: &[u8]) -> String {
            let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
            URL_SAFE_NO_PAD.encode(&bytes[start..])
        }
        let canonical = match self {
            PublicKey::P256(point) => {
                let (x, y) = Self::coordinates(point);
                format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    b64(x),
                    b64(y)
                )
            }
            PublicKey::Rsa { n, e } => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n))
            }
        };
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    /// The key's own JWK members ([RFC 7518 §6](https://www.rfc-editor.org/rfc/rfc7518#section-6)).
    pub(super) fn jwk_members(&self) -> serde_json::Map<String, Value> {
        let members = match self {
            PublicKey::P256(point) => {
                let (x, y) = Self::coordinates(point);
                vec![
                    ("kty", "EC".to_string()),
                    ("crv", "P-256".to_string()),
                    ("x", URL_SAFE_NO_PAD.encode(x)),
                    ("y", URL_SAFE_NO_PAD.encode(y)),
                ]
            }
            PublicKey::Rsa { n, e } => vec![
                ("kty", "RSA".to_string()),
                ("n", URL_SAFE_NO_PAD.encode(n)),
                ("e", URL_SAFE_NO_PAD.encode(e)),
            ],
        };
        members
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect()
    }

    pub(super) fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::P256(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            PublicKey::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
        }
    }
}
