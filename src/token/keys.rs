//! Token signing keys: the private key and certificate the token server signs with,
//! the public keys a registry checks tokens against, and their JWK form.
//!
//! Two algorithms, because they are the two every registry accepts: ES256 (ECDSA
//! on P-256) and RS256 (RSA PKCS#1 v1.5 with SHA-256, keys of 2048 bits or more).
//! Registry 2.8 verifies with libtrust, which knows ES256/384/512 and RS256/384/512
//! only; registry 3 uses go-jose and accepts more, but not fewer.
//!
//! # The certificate must hold the key
//!
//! Registry 2.8 finds the key only through the token's `x5c` header (the signing
//! certificate and its chain, checked against `rootcertbundle`). A key file that
//! does not belong to the certificate file would make every token fail there, so
//! [`SigningKey::load`] refuses the pair at start-up: it reads the public key out of
//! the certificate's SubjectPublicKeyInfo (parsed with x509-parser, see `keys/der.rs`) and
//! requires it to equal, field by field, the public key ring derives from the
//! private key. An expired certificate is refused too, for the same reason.
//!
//! # Key IDs
//!
//! The `kid` is the [RFC 7638](https://www.rfc-editor.org/rfc/rfc7638) JWK
//! thumbprint, base64url of SHA-256, computed exactly as registry 3 computes the IDs
//! it trusts for the certificates in its `rootcertbundle`
//! (`registry/auth/token/util.go`, `getJWKThumbprint`, called from
//! `newAccessController` in `accesscontroller.go`):
//!
//! ```go
//! e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pubkey.E)).Bytes())
//! n := base64.RawURLEncoding.EncodeToString(pubkey.N.Bytes())
//! return hashAndEncode(fmt.Sprintf(`{"e":"%s","kty":"RSA","n":"%s"}`, e, n))
//! // and for EC:
//! x := base64.RawURLEncoding.EncodeToString(pubkey.X.Bytes())
//! y := base64.RawURLEncoding.EncodeToString(pubkey.Y.Bytes())
//! return hashAndEncode(fmt.Sprintf(`{"crv":"%s","kty":"EC","x":"%s","y":"%s"}`, crv, x, y))
//! ```
//!
//! Go's `big.Int.Bytes` drops leading zero bytes, while RFC 7518 §6.2.1.2 wants EC
//! coordinates at their full 32 bytes. So for one P-256 key in about 128 (x or y
//! starting with a zero byte) registry 3's ID differs from a strict RFC 7638
//! thumbprint; we follow the registry, since it is the party that must find the key
//! (the JWK itself keeps full-width coordinates, as go-jose requires).
//! [`generate_es256`] never makes such a key, so its IDs are the same either way.
//! Registry 3.0.0 had a bug (it hashed the curve's generator point, so every P-256
//! certificate got the same ID); fixed in 3.1.0. With an `x5c` header, which is
//! what [`super::jwt::KeyHint::Chain`] sends, no registry looks at the `kid`.

mod der;
mod private;
mod public;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::rand::SystemRandom;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

use self::private::Private;
use self::public::PublicKey;
use crate::tls;

/// How long a certificate made by [`generate_es256`] is valid: ten years.
const GENERATED_VALIDITY: Duration = Duration::from_secs(3_652 * 24 * 60 * 60);
/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// Errors loading or generating token keys.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, or holds no PEM key or certificate.
    #[error(transparent)]
    Read(#[from] tls::Error),
    /// The key file holds a key we cannot sign tokens with.
    #[error("token key file {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate in the file is not one we can read a supported key from.
    #[error("token certificate file {}: {reason}", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate file's first certificate holds another key.
    #[error(
        "token key file {} does not match certificate file {}: the first certificate \
         must be the one issued for this key",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// Generating a key or certificate failed.
    #[error("generating the token signing key: {0}")]
    Generate(String),
    /// ring could not sign (it reports no reason; not expected with a loaded key).
    #[error("signing a token with key {kid} failed")]
    Sign {
        /// The key's ID.
        kid: String,
    },
}

/// A JWS signature algorithm ([RFC 7518 §3.1](https://www.rfc-editor.org/rfc/rfc7518#section-3.1)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256; the signature is `r || s`, 32 bytes each.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The `alg` header value: `"ES256"` or `"RS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public key that tokens are checked against: the current signing key's, or a
/// previous one kept (through its certificate) while its tokens may still be alive.
#[derive(Clone)]
pub struct VerifyingKey {
    public: PublicKey,
    /// The thumbprint of `public`; computed once.
    kid: String,
    /// When the leaf certificate expires; registries refuse its tokens after that.
    not_after: SystemTime,
    /// The certificate chain, leaf first; the leaf holds `public`.
    chain: Vec<CertificateDer<'static>>,
}

impl VerifyingKey {
    /// Reads a PEM certificate file (leaf first, then any intermediates); the key is
    /// the leaf's.
    pub fn from_cert(path: &Path) -> Result<Self, Error> {
        let chain = tls::load_certs(path)?;
        Self::from_chain(chain).map_err(|reason| Error::Cert {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Builds the key from a chain, leaf first; checks that every certificate is
    /// readable and returns the problem otherwise.
    fn from_chain(chain: Vec<CertificateDer<'static>>) -> Result<Self, String> {
        let mut leaf = None;
        for (i, cert) in chain.iter().enumerate() {
            let read = der::certificate(cert).map_err(|der::Invalid(expected)| {
                format!(
                    "certificate {} of {}: expected {expected}",
                    i + 1,
                    chain.len()
                )
            })?;
            leaf.get_or_insert(read);
        }
        let leaf = leaf.ok_or_else(|| "no certificate".to_string())?;
        let public = PublicKey::from_spki(leaf.key)?;
        let not_after = unix_time(leaf.not_after)
            .ok_or_else(|| format!("certificate end time {} is out of range", leaf.not_after))?;
        Ok(VerifyingKey {
            kid: public.thumbprint(),
            public,
            not_after,
            chain,
        })
    }

    /// The key ID, as registry 3 computes it (see the module doc).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    /// When the leaf certificate expires (its `notAfter`). Registries verify the
    /// chain of every token, so none signed with this key is accepted after that.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The certificate chain, leaf first, as DER.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The chain as the `x5c` member of a JWS header or JWK: standard base64 (with
    /// padding, not base64url) of each DER certificate
    /// ([RFC 7515 §4.1.6](https://www.rfc-editor.org/rfc/rfc7515#section-4.1.6)).
    pub fn x5c(&self) -> Vec<String> {
        use base64::engine::general_purpose::STANDARD;
        self.chain.iter().map(|c| STANDARD.encode(c)).collect()
    }

    /// The public JWK: the key's members plus `kid`, `alg`, `use: "sig"` and `x5c`.
    pub fn jwk(&self) -> Value {
        let mut jwk = self.public.jwk_members();
        jwk.insert("kid".into(), self.kid.clone().into());
        jwk.insert("alg".into(), self.algorithm().as_str().into());
        jwk.insert("use".into(), "sig".into());
        jwk.insert("x5c".into(), self.x5c().into());
        Value::Object(jwk)
    }

    /// Whether `signature` is this key's JWS signature of `message` (for ES256, the
    /// 64-byte `r || s`).
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        self.public.verify(message, signature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm())
            .field(
                "not_after",
                &format_args!("{}", humantime::format_rfc3339_seconds(self.not_after)),
            )
            .field("chain_len", &self.chain.len())
            .finish()
    }
}

/// The key the token server signs with, with its certificate chain.
pub struct SigningKey {
    private: Private,
    /// SHA-256 of a label and the private key's DER: a secret every replica holding
    /// the same key file derives alike, for keys that are not signatures (refresh
    /// token generations). Never shown.
    derived: [u8; 32],
    /// The public half; its key equals `private`'s (checked at load).
    public: VerifyingKey,
    rng: SystemRandom,
}

impl SigningKey {
    /// Reads a PEM private key and the PEM certificate chain issued for it (leaf
    /// first). Keys: EC P-256 as PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC
    /// PRIVATE KEY`); RSA of at least 2048 bits as PKCS#8 or PKCS#1 (`BEGIN RSA
    /// PRIVATE KEY`). Fails if the leaf certificate holds another key or has
    /// expired.
    pub fn load(key: &Path, cert: &Path) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let der = tls::load_key(key)?;
        let derived = derive(&der);
        let private = Private::parse(&der, &rng).map_err(|reason| Error::Key {
            path: key.to_path_buf(),
            reason,
        })?;
        let public = VerifyingKey::from_cert(cert)?;
        if private.public() != public.public {
            return Err(Error::Mismatch {
                key: key.to_path_buf(),
                cert: cert.to_path_buf(),
            });
        }
        if public.not_after < SystemTime::now() {
            let at = humantime::format_rfc3339_seconds(public.not_after);
            return Err(Error::Cert {
                path: cert.to_path_buf(),
                reason: format!(
                    "the certificate expired at {at}; registries would refuse its tokens"
                ),
            });
        }
        Ok(SigningKey {
            private,
            derived,
            public,
            rng,
        })
    }

    /// The key ID (see the module doc).
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    /// The public JWK, as [`VerifyingKey::jwk`].
    pub fn jwk(&self) -> Value {
        self.public.jwk()
    }

    /// A secret derived from the private key (see the field), for HMAC keys.
    pub fn derived_secret(&self) -> &[u8; 32] {
        &self.derived
    }

    /// The public half, to verify with or to publish in a JWKS.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The JWS signature of `message`: `r || s` (64 bytes) for ES256, the PKCS#1
    /// v1.5 signature (the modulus' length) for RS256.
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.private
            .sign(&self.rng, message)
            .map_err(|_| Error::Sign {
                kid: self.kid().to_string(),
            })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key.
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a fixed label and the private key's DER.
fn derive(der: &rustls_pki_types::PrivateKeyDer<'_>) -> [u8; 32] {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(b"registry-gate token key derived secret v1\0");
    digest.update(der.secret_der());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.finish().as_ref());
    out
}

/// `secs` seconds after (or before) the Unix epoch, if the platform can hold it.
fn unix_time(secs: i64) -> Option<SystemTime> {
    let offset = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    }
}

/// A generated key and its self-signed certificate, as PEM text.
pub struct GeneratedKey {
    /// The EC P-256 private key, PKCS#8.
    pub key_pem: String,
    /// The self-signed certificate: the token server's `cert`, and what the registry's
    /// `rootcertbundle` must hold.
    pub cert_pem: String,
}

/// Generates an EC P-256 key and a self-signed certificate for it, valid from now
/// for ten years, with `common_name` as subject (for `certs generate --token`).
///
/// Keys whose x or y starts with a zero byte are drawn again (see the module doc),
/// so the key ID is the strict RFC 7638 thumbprint too.
pub fn generate_es256(common_name: &str) -> Result<GeneratedKey, Error> {
    use rcgen::{CertificateParams, DnType, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256};

    let generate = |e: rcgen::Error| Error::Generate(e.to_string());
    let key = (0..16)
        .map(|_| KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256))
        .find(|pair| match pair {
            Ok(pair) => {
                pair.public_key_raw().get(1) != Some(&0)
                    && pair.public_key_raw().get(33) != Some(&0)
            }
            Err(_) => true,
        })
        .ok_or_else(|| Error::Generate("16 keys in a row had a zero leading byte".into()))?
        .map_err(generate)?;

    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Error::Generate(format!("system clock before 1970: {e}")))?;
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(now.as_secs());
    params.not_after = params.not_before + GENERATED_VALIDITY;
    let cert = params.self_signed(&key).map_err(generate)?;
    Ok(GeneratedKey {
        key_pem: key.serialize_pem(),
        cert_pem: cert.pem(),
    })
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
