//! A token signing key's private half: parsed from PEM into ring's form, its
//! public half, and signing in the JWS form.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;

use super::{der, PublicKey, MIN_RSA_BITS};

/// The private half of a key pair.
pub(super) enum Private {
    /// ECDSA on P-256, signing with fixed-size `r || s` as JWS wants.
    P256(EcdsaKeyPair),
    /// RSA of at least [`MIN_RSA_BITS`].
    Rsa(RsaKeyPair),
}

impl Private {
    /// Parses a private key into ring's form, or says why it cannot be used.
    pub(super) fn parse(key: &PrivateKeyDer<'_>, rng: &SystemRandom) -> Result<Self, String> {
        let rejected = |e: ring::error::KeyRejected| rejected_reason(&e.to_string());
        let expected = |der::Invalid(what)| format!("expected {what}");
        match key {
            PrivateKeyDer::Pkcs8(pkcs8) => {
                let der = pkcs8.secret_pkcs8_der();
                match der::pkcs8_kind(der).map_err(expected)? {
                    der::Kind::P256 => EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        der,
                        rng,
                    )
                    .map(Private::P256)
                    .map_err(rejected),
                    der::Kind::Rsa => rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected)?),
                }
            }
            PrivateKeyDer::Sec1(sec1) => {
                let (scalar, point) = der::sec1_p256(sec1.secret_sec1_der()).map_err(expected)?;
                EcdsaKeyPair::from_private_key_and_public_key(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    scalar,
                    point,
                    rng,
                )
                .map(Private::P256)
                .map_err(rejected)
            }
            PrivateKeyDer::Pkcs1(pkcs1) => {
                rsa(RsaKeyPair::from_der(pkcs1.secret_pkcs1_der()).map_err(rejected)?)
            }
            _ => Err("unsupported private key format".into()),
        }
    }

    /// The public key ring derives from the private key.
    pub(super) fn public(&self) -> PublicKey {
        match self {
            Private::P256(pair) => PublicKey::P256(pair.public_key().as_ref().to_vec()),
            Private::Rsa(pair) => {
                let parts: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
                let strip = |v: Vec<u8>| {
                    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
                    v[start..].to_vec()
                };
                PublicKey::Rsa {
                    n: strip(parts.n),
                    e: strip(parts.e),
                }
            }
        }
    }

    /// The JWS signature of `message`: `r || s` (64 bytes) for ES256, the PKCS#1
    /// v1.5 signature (the modulus' length) for RS256.
    pub(super) fn sign(
        &self,
        rng: &SystemRandom,
        message: &[u8],
    ) -> Result<Vec<u8>, ring::error::Unspecified> {
        match self {
            Private::P256(pair) => pair.sign(rng, message).map(|sig| sig.as_ref().to_vec()),
            Private::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, rng, message, &mut sig)?;
                Ok(sig)
            }
        }
    }
}

/// ring's reason for refusing a key, in words.
fn rejected_reason(ring: &str) -> String {
    let words = match ring {
        "TooSmall" => "RSA key smaller than 2048 bits",
        "TooLarge" => "RSA key larger than 8192 bits",
        "PrivateModulusLenNotMultipleOf512Bits" => "RSA key size not a multiple of 512 bits",
        "InconsistentComponents" => "the private and public parts of the key do not match",
        "PublicKeyIsMissing" => "the EC key does not include its public key",
        "InvalidEncoding" => "the key is not valid DER",
        other => return format!("key refused ({other})"),
    };
    words.to_string()
}

/// Accepts an RSA key of at least [`MIN_RSA_BITS`] (ring already refuses smaller).
fn rsa(pair: RsaKeyPair) -> Result<Private, String> {
    let bits = pair.public().modulus_len() * 8;
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    Ok(Private::Rsa(pair))
}
