//! `auth::oidc::{claimed_issuer, kid, verify, identify}` on tokens, against a fixed issuer
//! and a key set parsed once.
//!
//! Input: the first byte picks the mode. Even: the rest, as UTF-8, is the token as a
//! client sends it; the seeds' RS256 tokens are signed with the gate's test key
//! (`src/auth/oidc/testdata/rsa2048.der`), which is in the key set. Odd: the rest is
//! `HEADER \0 CLAIMS` (raw bytes), which the target base64url-encodes and signs, with
//! the key set's ES256 key if bit 1 is clear and the RS256 key if it is set; an empty
//! header is that key's `{"alg":...,"kid":...}`. Signing here lets the fuzzer reach the
//! claim checks behind the signature, which it could never forge.
//!
//! Nothing may panic. A token `verify` accepts must carry the issuer's `iss`, an `aud`
//! holding the audience, an `exp` after the clock and within the lifetime and clock skew,
//! the `kid` of a key in the set, and the unverified readers must agree with it. A
//! token the target signed must not fail on its signature, and one with integer times is
//! accepted exactly when a reference reading of the claims says so. A refusal's message
//! never holds the token.
//!
//! `fuzz/corpus/make-oidc-token-seeds` writes the seeds; the tests below check that each
//! still reaches what it is named for.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use registry_gate::auth::oidc::{
    claimed_issuer, identify, kid, verify, ClaimRule, Issuer, Jwks, Mapped, Refusal, Verified,
};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
    ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde_json::{Map, Value};

/// The gate's RSA test key (PKCS#1 DER), also used by `src/auth/oidc/tests.rs`.
const RSA_PKCS1: &[u8] = include_bytes!("../../../src/auth/oidc/testdata/rsa2048.der");
/// The issuer every token is checked against.
const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The audience it must name.
const AUDIENCE: &str = "https://gate.example";
/// The `kid` of the ES256 key, made at start (ECDSA signatures are random anyway).
const ES_KID: &str = "fuzz-es";
/// The `kid` of the RS256 test key.
const RS_KID: &str = "fuzz-rs";
/// The clock, in seconds since 1970 (2023-11-14).
const NOW: u64 = 1_700_000_000;
/// The issuer's `max_lifetime`.
const MAX_LIFETIME: u64 = 3600;
/// How far `iat` and `nbf` may be ahead of the clock: the gate's `CLOCK_SKEW`, which
/// `token::service` does not export.
const CLOCK_SKEW: u64 = 60;
/// The longest token `verify` reads (`auth::oidc`'s private `MAX_TOKEN_LEN`).
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Shorter tokens may appear in a refusal's fixed text by chance.
const LEAK_MIN_LEN: usize = 32;

/// What the gate makes of a token: refused by `verify`, or verified and then mapped by
/// `identify` or not.
type Outcome = Result<(Verified, Result<Mapped, Refusal>), Refusal>;

/// A key of the fixture's set, with what signs for it.
enum Signer {
    Es(EcdsaKeyPair),
    Rs(RsaKeyPair),
}

/// The fixed issuer, its key set, and the private keys of that set.
struct Fixture {
    issuer: Issuer,
    jwks: Jwks,
    es: Signer,
    rs: Signer,
    rng: SystemRandom,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("the system random generator works in a fuzz run");
        let es = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("a key pair just generated parses");
        let rs = RsaKeyPair::from_der(RSA_PKCS1).expect("the gate's test key parses");
        // The EC public key is the uncompressed point 04 || x || y.
        let point = es.public_key().as_ref();
        let rsa = RsaPublicKeyComponents::<Vec<u8>>::from(rs.public());
        let set = serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": ES_KID, "alg": "ES256", "use": "sig",
             "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])},
            {"kty": "RSA", "kid": RS_KID, "alg": "RS256", "use": "sig",
             "n": URL_SAFE_NO_PAD.encode(&rsa.n), "e": URL_SAFE_NO_PAD.encode(&rsa.e)},
        ]});
        let jwks = Jwks::parse(set.to_string().as_bytes()).expect("the fixture's key set parses");
        assert_eq!(jwks.len(), 2, "both fixture keys are usable");
        let rule = ClaimRule::compile(
            &[("repository".to_owned(), "octo-org/*".to_owned())],
            "ci-${claim.repository}",
            &["ci".to_owned()],
        )
        .expect("the fixture's rule compiles");
        let issuer = Issuer {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            username: "oidc".to_owned(),
            max_lifetime: Duration::from_secs(MAX_LIFETIME),
            rules: vec![rule],
        };
        Fixture {
            issuer,
            jwks,
            es: Signer::Es(es),
            rs: Signer::Rs(rs),
            rng,
        }
    })
}

/// One input of the `oidc_token` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let _ = outcome(data);
}

/// What the gate makes of one input: `None` if it is no token (not UTF-8), else the
/// verification and, if it passed, the mapping.
fn outcome(data: &[u8]) -> Option<Outcome> {
    let (&mode, rest) = data.split_first()?;
    if mode % 2 == 0 {
        let token = std::str::from_utf8(rest).ok()?;
        return Some(check(token, None));
    }
    let fixture = fixture();
    let signer = if mode & 2 == 0 {
        (&fixture.es, ES_KID)
    } else {
        (&fixture.rs, RS_KID)
    };
    let (header, claims) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&b""[..], rest),
    };
    let token = signed(signer, header, claims);
    let result = check(&token, Some(signer.1));
    let parsed = serde_json::from_slice::<Map<String, Value>>(claims).ok();
    if header.is_empty() && token.len() <= MAX_TOKEN_LEN {
        // The header is the key's own and the token not too long: only the claims decide.
        if let Some(want) = parsed.as_ref().and_then(reference) {
            assert_eq!(
                result.is_ok(),
                want,
                "{result:?}, claims={:?}",
                String::from_utf8_lossy(claims)
            );
        }
    }
    if let Ok((verified, _)) = &result {
        assert_eq!(Some(&verified.claims), parsed.as_ref(), "token={token:?}");
    }
    Some(result)
}

/// `HEADER.CLAIMS.SIGNATURE`, base64url, signed by `signer`; an empty header is its own.
fn signed((signer, kid): (&Signer, &str), header: &[u8], claims: &[u8]) -> String {
    let fixture = fixture();
    let own = match signer {
        Signer::Es(_) => format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#),
        Signer::Rs(_) => format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#),
    };
    let header = if header.is_empty() {
        own.as_bytes()
    } else {
        header
    };
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = match signer {
        Signer::Es(key) => key
            .sign(&fixture.rng, message.as_bytes())
            .expect("signing with a valid key and a working generator succeeds")
            .as_ref()
            .to_vec(),
        Signer::Rs(key) => {
            let mut signature = vec![0; key.public().modulus_len()];
            key.sign(
                &RSA_PKCS1_SHA256,
                &fixture.rng,
                message.as_bytes(),
                &mut signature,
            )
            .expect("signing with a valid key into a modulus-sized buffer succeeds");
            signature
        }
    };
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// `token` through the gate's readers and `verify`, and `identify` if it verified; the
/// checks every token must pass. `signed_by` is the `kid` of the key that signed it, if
/// the target did.
fn check(token: &str, signed_by: Option<&str>) -> Outcome {
    let fixture = fixture();
    let claimed = claimed_issuer(token);
    let named = kid(token);
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let verified = match verify(&fixture.issuer, &fixture.jwks, token, now) {
        Ok(verified) => verified,
        Err(refusal) => {
            let message = refusal.to_string();
            assert!(
                token.len() < LEAK_MIN_LEN || !message.contains(token),
                "the refusal {message:?} holds the token"
            );
            if let Refusal::Signature(kid) = &refusal {
                assert_ne!(
                    Some(kid.as_str()),
                    signed_by,
                    "a signature by the key itself refused: token={token:?}"
                );
            }
            return Err(refusal);
        }
    };
    accepted(token, &verified, now);
    assert_eq!(
        named.as_deref(),
        Some(verified.kid.as_str()),
        "token={token:?}"
    );
    assert_eq!(claimed.as_deref(), Some(ISSUER), "token={token:?}");
    if let Some(kid) = signed_by {
        assert_eq!(verified.kid, kid, "token={token:?}");
    }
    let mapped = identify(&fixture.issuer, &verified);
    if let Ok(mapped) = &mapped {
        mapped_by_the_rule(token, &verified, mapped);
    }
    Ok((verified, mapped))
}

/// What a token `verify` accepted must carry.
fn accepted(token: &str, verified: &Verified, now: SystemTime) {
    let claims = &verified.claims;
    assert_eq!(
        claims.get("iss").and_then(Value::as_str),
        Some(ISSUER),
        "token={token:?}"
    );
    let audience = match claims.get("aud") {
        Some(Value::String(aud)) => aud == AUDIENCE,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(AUDIENCE)),
        _ => false,
    };
    assert!(audience, "token={token:?}");
    let exp = claims.get("exp").and_then(Value::as_f64);
    assert!(exp.is_some_and(|e| e > NOW as f64), "token={token:?}");
    assert!(verified.expires > now, "token={token:?}");
    assert!(
        verified.expires <= UNIX_EPOCH + Duration::from_secs(NOW + CLOCK_SKEW + MAX_LIFETIME),
        "token={token:?}: accepted beyond max_lifetime and the clock skew"
    );
    assert!(
        fixture().jwks.get(&verified.kid).is_some(),
        "token={token:?}"
    );
}

/// The fixture's one rule: `repository = "octo-org/*"` gives `ci-${claim.repository}`.
fn mapped_by_the_rule(token: &str, verified: &Verified, mapped: &Mapped) {
    let repository = verified.claims.get("repository").and_then(Value::as_str);
    assert!(
        repository.is_some_and(|r| r.starts_with("octo-org/") && r.matches('/').count() == 1),
        "token={token:?}"
    );
    assert_eq!(
        Some(mapped.user.as_str()),
        repository.map(|r| format!("ci-{r}")).as_deref(),
        "token={token:?}"
    );
    assert_eq!(mapped.groups, ["ci"], "token={token:?}");
    assert_eq!(mapped.rule, 0, "token={token:?}");
}

/// Whether the issuer accepts `claims`, read from the module docs of `auth::oidc`, when
/// every time is an integer (or absent); `None` when one is not, to leave fractions alone.
fn reference(claims: &Map<String, Value>) -> Option<bool> {
    let time = |name: &str| match claims.get(name) {
        None => Some(None),
        Some(v) => v.as_u64().map(Some),
    };
    let (exp, iat, nbf) = (time("exp")?, time("iat")?, time("nbf")?);
    let iss = claims.get("iss").and_then(Value::as_str) == Some(ISSUER);
    let aud = match claims.get("aud") {
        Some(Value::String(aud)) => aud == AUDIENCE,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(AUDIENCE)),
        _ => false,
    };
    let (Some(exp), Some(iat)) = (exp, iat) else {
        return Some(false);
    };
    let fresh = exp > NOW
        && iat <= NOW + CLOCK_SKEW
        && nbf.is_none_or(|nbf| nbf <= NOW + CLOCK_SKEW)
        && exp.saturating_sub(iat) <= MAX_LIFETIME;
    Some(iss && aud && fresh)
}

#[cfg(test)]
mod tests;
