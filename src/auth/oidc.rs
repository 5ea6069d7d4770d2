//! CI sign-in with OIDC tokens (GitHub Actions, GitLab CI, Kubernetes service-account
//! tokens): a job logs in with its short-lived, issuer-signed ID token as the
//! password, and claim rules ([`rules`]) make it an identity. No secret is stored in
//! CI or here.
//!
//! [`verify`] checks a token against one issuer's keys ([`jwks`]), strictly:
//! compact JWS only, `alg` RS256 or ES256 and the one its `kid`'s key is for (never
//! `none` or HMAC), no `crit` header, `iss` exactly the issuer, `aud` containing the
//! audience, `exp` in the future (no leeway, so a replay after `exp` fails), `nbf` and
//! `iat` not ahead of the clock by more than [`CLOCK_SKEW`] (the leeway of the
//! gate's own tokens), and `exp - iat` within the issuer's maximum lifetime.
//!
//! Knows no HTTP and no files: the caller fetches and caches the key set.

pub mod fetch;
pub mod jwks;
pub mod keys;
pub mod rules;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

pub use self::jwks::{Alg, Jwks};
pub use self::rules::{ClaimRule, Mapped};
use crate::token::service::CLOCK_SKEW;

/// The longest token read. CI ID tokens are 1 to 2 KiB.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// One trusted issuer, compiled from an `[[oidc]]` table.
#[derive(Clone, Debug)]
pub struct Issuer {
    /// The exact `iss`.
    pub issuer: String,
    /// What `aud` must contain.
    pub audience: String,
    /// The user name clients log in with, the token being the password.
    pub username: String,
    /// The longest `exp - iat` accepted.
    pub max_lifetime: Duration,
    /// The claim rules, first match wins.
    pub rules: Vec<ClaimRule>,
}

/// An issuer the gate trusts, with its keys: what `[[oidc]]` builds to.
#[derive(Debug)]
pub struct Trusted {
    /// The issuer's checks and rules.
    pub issuer: Issuer,
    /// Its keys.
    pub keys: keys::IssuerKeys,
    /// The CA its discovery is fetched with, to tell whether a reload may keep the
    /// cached keys.
    pub ca: Option<std::path::PathBuf>,
}

/// The `iss` a token claims, unverified: only to pick which issuer's keys check it.
pub fn claimed_issuer(token: &str) -> Option<String> {
    let claims = token.split('.').nth(1)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// Why a token was refused. The messages name what is wrong, never the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a compact JWS with JSON parts.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not RS256 or ES256.
    #[error("token algorithm {0:?} is not accepted (only RS256 and ES256)")]
    Algorithm(String),
    /// A `crit` header: extensions we do not understand must be refused (RFC 7515 §4.1.11).
    #[error("token header has `crit` extensions, which are not supported")]
    Critical,
    /// No `kid` in the header.
    #[error("token header has no kid")]
    NoKid,
    /// No key with the header's `kid` (the caller may refresh the keys once).
    #[error("no key {0:?} in the issuer's key set")]
    UnknownKey(String),
    /// The `kid`'s key is for another algorithm.
    #[error("token algorithm {alg} does not match key {kid:?}, which is {expected}")]
    AlgorithmMismatch {
        /// The header's `alg`.
        alg: &'static str,
        /// The key.
        kid: String,
        /// The key's algorithm.
        expected: &'static str,
    },
    /// The signature does not verify.
    #[error("token signature does not verify with key {0:?}")]
    Signature(String),
    /// The claims are not what an ID token has.
    #[error("token claims: {0}")]
    Claims(String),
    /// `iss` is another issuer.
    #[error("token issuer {got:?} is not {want:?}")]
    Issuer {
        /// The token's `iss`.
        got: String,
        /// The configured issuer.
        want: String,
    },
    /// `aud` does not contain the audience.
    #[error("token audience does not include {0:?}")]
    Audience(String),
    /// `exp` has passed.
    #[error("token expired {0} s ago")]
    Expired(u64),
    /// `nbf` or `iat` is ahead of the clock.
    #[error("token is not valid yet (`{0}` is {1} s ahead)")]
    NotYet(&'static str, u64),
    /// `exp - iat` is over the maximum.
    #[error("token lifetime {0} s is over the issuer's maximum of {1} s (`max_lifetime`)")]
    Lifetime(u64, u64),
    /// No claim rule maps the token to a user.
    #[error("{0}")]
    NoRule(String),
}

/// A verified token's claims.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Every claim.
    pub claims: Map<String, Value>,
    /// The key that signed it.
    pub kid: String,
    /// When it expires.
    pub expires: SystemTime,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// The `kid` a token's header names, if it can be read (to pick the issuer's keys
/// or decide on a refresh before verifying).
pub fn kid(token: &str) -> Option<String> {
    let (header, _) = token.split_once('.')?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    header.kid
}

/// Checks `token` against `issuer` and its keys at `now` (see the module docs).
pub fn verify(
    issuer: &Issuer,
    keys: &Jwks,
    token: &str,
    now: SystemTime,
) -> Result<Verified, Refusal> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refusal::Malformed("longer than 16 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed("not three dot-separated parts"));
    };
    let decode = |part: &str, what| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| Refusal::Malformed(what))
    };
    let head: Header = serde_json::from_slice(&decode(header, "header is not base64url")?)
        .map_err(|_| Refusal::Malformed("header is not a JSON object with an alg"))?;
    let alg = Alg::from_jose(&head.alg).ok_or_else(|| Refusal::Algorithm(head.alg.clone()))?;
    if head.crit.is_some() {
        return Err(Refusal::Critical);
    }
    let kid = head.kid.ok_or(Refusal::NoKid)?;
    let key = keys
        .get(&kid)
        .ok_or_else(|| Refusal::UnknownKey(kid.clone()))?;
    if key.alg != alg {
        return Err(Refusal::AlgorithmMismatch {
            alg: alg.as_str(),
            kid,
            expected: key.alg.as_str(),
        });
    }
    let signature = decode(signature, "signature is not base64url")?;
    let signed = &token[..header.len() + 1 + claims.len()];
    if !key.verify(signed.as_bytes(), &signature) {
        return Err(Refusal::Signature(kid));
    }
    let claims: Map<String, Value> =
        serde_json::from_slice(&decode(claims, "claims are not base64url")?)
            .map_err(|_| Refusal::Claims("not a JSON object".into()))?;
    let expires = check_claims(issuer, &claims, now)?;
    Ok(Verified {
        claims,
        kid,
        expires,
    })
}

/// The identity a verified token maps to under the issuer's rules.
pub fn identify(issuer: &Issuer, verified: &Verified) -> Result<Mapped, Refusal> {
    rules::decide(&issuer.rules, &verified.claims).map_err(Refusal::NoRule)
}

/// `iss`, `aud`, `exp`, `nbf`, `iat` and the lifetime; returns `exp`.
fn check_claims(
    issuer: &Issuer,
    claims: &Map<String, Value>,
    now: SystemTime,
) -> Result<SystemTime, Refusal> {
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == issuer.issuer => {}
        Some(Value::String(iss)) => {
            return Err(Refusal::Issuer {
                got: iss.clone(),
                want: issuer.issuer.clone(),
            })
        }
        _ => return Err(Refusal::Claims("no `iss` string".into())),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == issuer.audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&issuer.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(Refusal::Audience(issuer.audience.clone()));
    }
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Refusal::Claims("the clock is before 1970".into()))?
        .as_secs();
    let time = |name: &'static str| -> Result<Option<u64>, Refusal> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| *f >= 0.0 && f.is_finite())
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or_else(|| Refusal::Claims(format!("`{name}` is not a time"))),
        }
    };
    let exp = time("exp")?.ok_or_else(|| Refusal::Claims("no `exp`".into()))?;
    let iat = time("iat")?.ok_or_else(|| Refusal::Claims("no `iat`".into()))?;
    if exp <= now {
        return Err(Refusal::Expired(now - exp));
    }
    let skew = CLOCK_SKEW.as_secs();
    if let Some(nbf) = time("nbf")? {
        if nbf > now + skew {
            return Err(Refusal::NotYet("nbf", nbf - now));
        }
    }
    if iat > now + skew {
        return Err(Refusal::NotYet("iat", iat - now));
    }
    let lifetime = exp.saturating_sub(iat);
    if lifetime > issuer.max_lifetime.as_secs() {
        return Err(Refusal::Lifetime(lifetime, issuer.max_lifetime.as_secs()));
    }
    Ok(UNIX_EPOCH + Duration::from_secs(exp))
}

#[cfg(test)]
mod tests;
