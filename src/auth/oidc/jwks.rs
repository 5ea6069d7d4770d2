//! An issuer's JSON Web Key Set ([RFC 7517](https://www.rfc-editor.org/rfc/rfc7517)):
//! the public keys its tokens are signed with. Only what CI issuers use and what is
//! safe: RSA keys of 2048 to 8192 bits for RS256, P-256 keys for ES256. Other keys
//! (encryption keys, other curves, symmetric keys) are skipped, never trusted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

/// The most keys a set may have: issuers publish a handful (the current key and the
/// next or previous); a bigger set is a mistake or an attack on memory.
const MAX_KEYS: usize = 64;
/// The largest JWKS document read, in bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A signature algorithm an OIDC token may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256, `r || s`.
    Es256,
}

impl Alg {
    /// From a JOSE `alg`; `None` for every other (`none`, `HS256`, `PS256`, ...).
    pub fn from_jose(alg: &str) -> Option<Alg> {
        match alg {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
}

/// One usable public key.
#[derive(Clone, Debug)]
pub struct Key {
    /// The key ID the token header names.
    pub kid: String,
    /// The one algorithm this key verifies.
    pub alg: Alg,
    public: Public,
}

#[derive(Clone, Debug)]
enum Public {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point, `04 || x || y`.
    Ec(Vec<u8>),
}

impl Key {
    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.public {
            Public::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
            Public::Ec(point) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok(),
        }
    }
}

/// A key set.
#[derive(Clone, Debug, Default)]
pub struct Jwks {
    keys: Vec<Key>,
    /// Keys that were skipped, and why (for the log).
    pub skipped: Vec<String>,
}

/// Why a key set could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not JSON, or not `{"keys": [...]}`.
    #[error("not a JWK set ({{\"keys\": [...]}}): {0}")]
    Json(String),
    /// Too big.
    #[error("the JWK set is over {MAX_JWKS_BYTES} bytes")]
    TooBig,
    /// Too many keys.
    #[error("the JWK set has more than {MAX_KEYS} keys")]
    TooMany,
    /// No key is usable.
    #[error("the JWK set has no RS256 or ES256 signing key with a kid{}", skipped_note(.0))]
    NoKeys(Vec<String>),
}

fn skipped_note(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!(" (skipped: {})", skipped.join("; "))
    }
}

/// The members read from a JWK; others are ignored.
#[derive(Deserialize)]
struct RawKey {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    /// Reads a JWK set. Unusable keys are skipped (and listed in [`Jwks::skipped`]);
    /// a set with no usable key is an error.
    pub fn parse(bytes: &[u8]) -> Result<Jwks, Error> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(Error::TooBig);
        }
        let set: RawSet = serde_json::from_slice(bytes).map_err(|e| Error::Json(e.to_string()))?;
        if set.keys.len() > MAX_KEYS {
            return Err(Error::TooMany);
        }
        let mut jwks = Jwks::default();
        for (i, value) in set.keys.into_iter().enumerate() {
            let key = serde_json::from_value::<RawKey>(value)
                .map_err(|e| format!("key {}: {e}", i + 1))
                .and_then(|raw| {
                    let kid = raw.kid.clone();
                    read_key(raw).map_err(|why| match kid {
                        Some(kid) => format!("key {kid:?}: {why}"),
                        None => format!("key {}: {why}", i + 1),
                    })
                });
            match key {
                Ok(key) if jwks.keys.iter().any(|k| k.kid == key.kid) => jwks
                    .skipped
                    .push(format!("key {:?}: a second key with this kid", key.kid)),
                Ok(key) => jwks.keys.push(key),
                Err(why) => jwks.skipped.push(why),
            }
        }
        if jwks.keys.is_empty() {
            return Err(Error::NoKeys(jwks.skipped));
        }
        Ok(jwks)
    }

    /// The key with this ID.
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// How many keys are usable.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn read_key(raw: RawKey) -> Result<Key, String> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("not a signing key (`use` is not \"sig\")".into());
    }
    let kid = raw.kid.filter(|k| !k.is_empty()).ok_or("no kid")?;
    let b64 = |what: &str, v: Option<String>| -> Result<Vec<u8>, String> {
        let v = v.ok_or_else(|| format!("no `{what}`"))?;
        URL_SAFE_NO_PAD
            .decode(v.trim_end_matches('='))
            .map_err(|_| format!("`{what}` is not base64url"))
    };
    let (alg, public) = match raw.kty.as_deref() {
        Some("RSA") => {
            let n = strip_zeros(b64("n", raw.n)?);
            let e = strip_zeros(b64("e", raw.e)?);
            let bits = n.len() * 8;
            if !(2048..=8192).contains(&bits) {
                return Err(format!(
                    "an RSA key of {bits} bits (2048 to 8192 are accepted)"
                ));
            }
            (Alg::Rs256, Public::Rsa { n, e })
        }
        Some("EC") => {
            if raw.crv.as_deref() != Some("P-256") {
                return Err(format!(
                    "curve {:?} (only P-256)",
                    raw.crv.unwrap_or_default()
                ));
            }
            let (x, y) = (b64("x", raw.x)?, b64("y", raw.y)?);
            if x.len() != 32 || y.len() != 32 {
                return Err("a P-256 point needs 32-byte x and y".into());
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (Alg::Es256, Public::Ec(point))
        }
        other => {
            return Err(format!(
                "key type {:?} (only RSA and EC)",
                other.unwrap_or("")
            ))
        }
    };
    if let Some(declared) = raw.alg.as_deref() {
        if declared != alg.as_str() {
            return Err(format!(
                "alg {declared:?} (only {} for this key)",
                alg.as_str()
            ));
        }
    }
    Ok(Key { kid, alg, public })
}

/// Big-endian integers may carry leading zero bytes; the size is the rest.
fn strip_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}
