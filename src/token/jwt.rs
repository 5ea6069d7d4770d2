//! Bearer tokens as compact JWS ([RFC 7515 §7.1](https://www.rfc-editor.org/rfc/rfc7515#section-7.1)):
//! signing, verifying our own tokens, and the JWKS a registry can be given.
//!
//! The claims are the caller's (any `Serialize`); this module only wraps them. What
//! the registry checks in the header (distribution `registry/auth/token/token.go`):
//!
//! - `alg` must be the key's algorithm (`ES256` for P-256, `RS256` for RSA); the
//!   ES256 signature is `r || s`, 32 bytes each, as libtrust (registry 2.8) and
//!   go-jose (registry 3) both require;
//! - the key is found through `x5c` first (the chain, verified against the
//!   registry's `rootcertbundle` with any key usage), else through `kid`
//!   (registry 3 only: its `jwks` file, or the thumbprints of its `rootcertbundle`
//!   certificates, see [`super::keys`]);
//! - `typ` is not checked; we send `JWT`.
//!
//! Which of `x5c` and `kid` to send depends on the registry's configuration, so the
//! caller chooses with [`KeyHint`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::keys::{self, SigningKey, VerifyingKey};

/// The longest token [`verify`] reads. Ours are well under: a header with an RSA
/// 4096 chain of three certificates is about 8 KiB.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Errors signing or verifying a token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key could not sign.
    #[error(transparent)]
    Key(#[from] keys::Error),
    /// The claims could not be serialised.
    #[error("serialising token claims: {0}")]
    Serialize(serde_json::Error),
    /// The token is not three base64url parts with a JSON header.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm we do not verify (`none`, `HS256`, ...).
    #[error("token algorithm {0:?} is not accepted (only ES256 and RS256)")]
    Algorithm(String),
    /// No known key has the header's `kid`.
    #[error("token key {0:?} is not one of ours")]
    UnknownKey(String),
    /// The header's `alg` is not the algorithm of the key its `kid` names.
    #[error("token algorithm {alg:?} does not match key {kid}, which is {expected}")]
    AlgorithmMismatch {
        /// The header's `alg`.
        alg: String,
        /// The key's ID.
        kid: String,
        /// The key's algorithm.
        expected: keys::Algorithm,
    },
    /// The signature does not verify.
    #[error("token signature does not verify with key {0}")]
    Signature(String),
    /// The signature verified but the claims are not the expected JSON.
    #[error("token claims: {0}")]
    Claims(serde_json::Error),
}

/// How a token names its signing key to the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyHint {
    /// `kid` and `x5c`, the certificate chain. Registry 2.8 needs the chain (its
    /// `kid` lookup wants libtrust key IDs); registry 3 with a `rootcertbundle`
    /// verifies the chain and never reads the `kid`.
    Chain,
    /// `kid` only. For registry 3 configured with `jwks` and no `rootcertbundle`: it
    /// verifies any `x5c` it sees against its (then empty) root pool and refuses the
    /// token, before looking at the `kid`. Registry 3.1+ also finds a `kid`-only
    /// token's key among its `rootcertbundle` certificates by thumbprint.
    KidOnly,
}

/// The JOSE header we send, members in this order.
#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    kid: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    x5c: Vec<String>,
}

/// The header members [`verify`] reads; others are ignored.
#[derive(Deserialize)]
struct ReceivedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Signs `claims` as a compact JWS: `base64url(header).base64url(claims).base64url(signature)`.
pub fn sign(key: &SigningKey, claims: &impl Serialize, hint: KeyHint) -> Result<String, Error> {
    let header = Header {
        typ: "JWT",
        alg: key.algorithm().as_str(),
        kid: key.kid(),
        x5c: match hint {
            KeyHint::Chain => key.verifying_key().x5c(),
            KeyHint::KidOnly => Vec::new(),
        },
    };
    let header = serde_json::to_vec(&header).map_err(Error::Serialize)?;
    let claims = serde_json::to_vec(claims).map_err(Error::Serialize)?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let signature = key.sign_bytes(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// Checks a token signed by one of `keys` and returns its claims.
///
/// The key is the one whose ID is the header's `kid`; the header's `alg` must be
/// that key's algorithm, so `none`, `HS256` and an RSA key's ID with `ES256` are all
/// refused. No time or audience checks: the caller does `exp`, `nbf` and `aud`.
pub fn verify<T: DeserializeOwned>(token: &str, keys: &[VerifyingKey]) -> Result<T, Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::Malformed("longer than 64 KiB"));
    }
    let (signed, signature) = token
        .rsplit_once('.')
        .ok_or(Error::Malformed("not three dot-separated parts"))?;
    let (header, claims) = signed
        .split_once('.')
        .filter(|(_, claims)| !claims.contains('.'))
        .ok_or(Error::Malformed("not three dot-separated parts"))?;
    let decode = |part: &str, what| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| Error::Malformed(what))
    };
    let header: ReceivedHeader =
        serde_json::from_slice(&decode(header, "header is not base64url")?)
            .map_err(|_| Error::Malformed("header is not a JSON object with an alg"))?;
    let signature = decode(signature, "signature is not base64url")?;

    if !matches!(header.alg.as_str(), "ES256" | "RS256") {
        return Err(Error::Algorithm(header.alg));
    }
    let kid = header.kid.ok_or(Error::Malformed("header has no kid"))?;
    let key = keys
        .iter()
        .find(|k| k.kid() == kid)
        .ok_or_else(|| Error::UnknownKey(kid.clone()))?;
    if key.algorithm().as_str() != header.alg {
        return Err(Error::AlgorithmMismatch {
            alg: header.alg,
            kid,
            expected: key.algorithm(),
        });
    }
    if !key.verify_signature(signed.as_bytes(), &signature) {
        return Err(Error::Signature(kid));
    }
    serde_json::from_slice(&decode(claims, "claims are not base64url")?).map_err(Error::Claims)
}

/// A JWK Set of `keys` ([RFC 7517 §5](https://www.rfc-editor.org/rfc/rfc7517#section-5)):
/// `{"keys": [...]}`, for registry 3's `jwks` option.
pub fn jwks(keys: &[VerifyingKey]) -> Value {
    serde_json::json!({ "keys": keys.iter().map(VerifyingKey::jwk).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests;
