//! Issuing tokens: access tokens for the registry, and refresh tokens any replica
//! can check with nothing but the public keys (no shared store).
//!
//! Knows nothing of HTTP: the endpoint (`proxy::token`) authenticates the client and
//! computes the granted access with [`super::scope::grant`]; this signs.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::jwt::{self, KeyHint};
use super::keys::{self, SigningKey, VerifyingKey};
use super::scope::Access;
use crate::config::token::TokenConfig;

/// How far `nbf` is set back, for clients and registries whose clocks run behind.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The generation of a user the gate cannot see a password of (a directory user).
const NO_GENERATION: &str = "-";
/// Bytes of the keyed digest a generation keeps (128 bits, base64url).
const GENERATION_BYTES: usize = 16;

/// The `aud` of refresh tokens: the service with a suffix, so that the registry (which
/// accepts only `aud` = its service) never takes a refresh token as an access token.
const REFRESH_AUDIENCE_SUFFIX: &str = "#refresh";

/// The claims of an access token (distribution's `ClaimSet`; `aud` a single string,
/// which registry 2.8 requires).
#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    /// `token.issuer`.
    pub iss: String,
    /// The user; empty for an anonymous client.
    pub sub: String,
    /// `token.service`.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Not before, Unix seconds (backdated by [`CLOCK_SKEW`]).
    pub nbf: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// A random ID.
    pub jti: String,
    /// What is granted.
    pub access: &'a [Access],
    /// The groups of an OIDC sign-in, which its claim rule gave. The gate cannot look
    /// such a user up again (there is no account, only the CI job's token), so it
    /// reads them back from its own token to filter the catalog. Absent for everyone
    /// else, who is looked up afresh; the registry ignores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_groups: Option<&'a [String]>,
}

/// The claims of a refresh token.
#[derive(Debug, Serialize, Deserialize)]
pub struct RefreshClaims {
    /// `token.issuer`.
    pub iss: String,
    /// The user it was issued to.
    pub sub: String,
    /// `token.service` + `#refresh`.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// A random ID.
    pub jti: String,
    /// The user's credential generation when it was issued ([`TokenService::generation`]);
    /// absent in refresh tokens from before they were bound to the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
}

/// A refresh token that verified: its user, the generation it carries, and whether
/// the current key signed it (a previous key's generation cannot be recomputed).
#[derive(Debug, PartialEq, Eq)]
pub struct Refresh {
    /// The user it was issued to.
    pub sub: String,
    /// Its `generation` claim.
    pub generation: Option<String>,
    /// Whether the current signing key signed it (else one of `previous_certs`).
    pub current_key: bool,
}

/// What the gate reads back from an access token it issued (the registry reads
/// `access`; the gate only needs who and which token).
#[derive(Debug, Deserialize)]
struct ReceivedClaims {
    iss: String,
    #[serde(default)]
    sub: String,
    aud: String,
    exp: u64,
    #[serde(default)]
    nbf: u64,
    #[serde(default)]
    jti: String,
    #[serde(default)]
    oidc_groups: Option<Vec<String>>,
}

/// A verified access token: who it was issued to and its ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bearer {
    /// The `sub`: the user, empty for an anonymous client.
    pub sub: String,
    /// The `jti`.
    pub jti: String,
    /// The groups of an OIDC sign-in ([`Claims::oidc_groups`]); `None` for a user
    /// or robot, whom the gate looks up again.
    pub oidc_groups: Option<Vec<String>>,
}

/// A signed access token and its times.
#[derive(Debug)]
pub struct Issued {
    /// The compact JWS.
    pub token: String,
    /// Seconds it is valid for.
    pub expires_in: u64,
    /// When it was issued, RFC 3339.
    pub issued_at: String,
    /// Its `jti`, which the gate's access log names for every request made with it.
    pub jti: String,
}

/// Why a token service cannot be built or a refresh token is refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `token.key` / `token.cert`.
    #[error("token.key/token.cert: {0}")]
    Key(#[source] Box<keys::Error>),
    /// One of `token.previous_certs`.
    #[error("token.previous_certs {}: {error}", .path.display())]
    PreviousCert {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        error: Box<keys::Error>,
    },
    /// Signing failed (a bug or a broken key).
    #[error("signing a token: {0}")]
    Sign(#[source] jwt::Error),
    /// The refresh token is forged, for another service, or expired.
    #[error("refresh token refused: {0}")]
    Refresh(String),
    /// The access token is forged, for another service, expired or not yet valid.
    #[error("access token not verified: {0}")]
    Access(String),
    /// The system clock is before 1970.
    #[error("system clock before the Unix epoch")]
    Clock,
}

/// Signs tokens with the newest key and checks refresh tokens against every key.
#[derive(Debug)]
pub struct TokenService {
    config: TokenConfig,
    signing: SigningKey,
    /// The signing key's public half first, then `previous_certs`.
    verifying: Vec<VerifyingKey>,
    /// Keys credential generations; derived from the signing key, so replicas agree.
    generation_key: ring::hmac::Key,
    random: SystemRandom,
}

impl TokenService {
    /// Loads the keys `config` names.
    pub fn load(config: &TokenConfig) -> Result<TokenService, Error> {
        let signing =
            SigningKey::load(&config.key, &config.cert).map_err(|e| Error::Key(Box::new(e)))?;
        let mut verifying = vec![signing.verifying_key().clone()];
        for path in &config.previous_certs {
            let key = VerifyingKey::from_cert(path).map_err(|error| Error::PreviousCert {
                path: path.clone(),
                error: Box::new(error),
            })?;
            verifying.push(key);
        }
        let generation_key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, signing.derived_secret());
        Ok(TokenService {
            config: config.clone(),
            generation_key,
            signing,
            verifying,
            random: SystemRandom::new(),
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    /// The signing key's ID.
    pub fn kid(&self) -> &str {
        self.signing.kid()
    }

    /// Every public key as a JWKS, for registry 3's `auth.token.jwks`.
    pub fn jwks(&self) -> serde_json::Value {
        jwt::jwks(&self.verifying)
    }

    /// Signs an access token for `subject` (empty: anonymous) granting `access`;
    /// `oidc_groups` for an OIDC sign-in (see [`Claims::oidc_groups`]).
    pub fn issue(
        &self,
        subject: &str,
        oidc_groups: Option<&[String]>,
        access: &[Access],
        now: SystemTime,
    ) -> Result<Issued, Error> {
        let iat = unix(now)?;
        let expires_in = self.config.expiration.0.as_secs();
        let claims = Claims {
            iss: self.config.issuer.clone(),
            sub: subject.to_owned(),
            aud: self.config.service.clone(),
            exp: iat + expires_in,
            nbf: iat.saturating_sub(CLOCK_SKEW.as_secs()),
            iat,
            jti: self.jti(),
            access,
            oidc_groups,
        };
        let jti = claims.jti.clone();
        let hint = if self.config.x5c {
            KeyHint::Chain
        } else {
            KeyHint::KidOnly
        };
        let token = jwt::sign(&self.signing, &claims, hint).map_err(Error::Sign)?;
        Ok(Issued {
            token,
            expires_in,
            issued_at: humantime::format_rfc3339_seconds(now).to_string(),
            jti,
        })
    }

    /// The key credential generations are made with
    /// ([`crate::auth::Authenticator::credential_generation`]).
    pub fn generation_key(&self) -> &ring::hmac::Key {
        &self.generation_key
    }

    /// The text of a credential generation as a refresh token carries it: the keyed
    /// digest's first 128 bits, or `-` for a user whose password the gate cannot see.
    pub fn generation(digest: Option<&ring::hmac::Tag>) -> String {
        digest.map_or_else(
            || NO_GENERATION.to_owned(),
            |tag| URL_SAFE_NO_PAD.encode(&tag.as_ref()[..GENERATION_BYTES]),
        )
    }

    /// A refresh token for `subject`, bound to its credential `generation` (see
    /// [`TokenService::generation`]), or `None` when `token.refresh_expiration` is 0.
    pub fn refresh_token(
        &self,
        subject: &str,
        generation: String,
        now: SystemTime,
    ) -> Result<Option<String>, Error> {
        let lifetime = self.config.refresh_expiration.0.as_secs();
        if lifetime == 0 || subject.is_empty() {
            return Ok(None);
        }
        let iat = unix(now)?;
        let claims = RefreshClaims {
            iss: self.config.issuer.clone(),
            sub: subject.to_owned(),
            aud: self.refresh_audience(),
            exp: iat + lifetime,
            iat,
            jti: self.jti(),
            generation: Some(generation),
        };
        jwt::sign(&self.signing, &claims, KeyHint::KidOnly)
            .map(Some)
            .map_err(Error::Sign)
    }

    /// The user a refresh token was issued to, if it is ours, for this service and
    /// not expired. Whether the user still exists, and still has the credential it
    /// was issued for ([`TokenService::check_generation`]), is the caller's question.
    pub fn check_refresh(&self, token: &str, now: SystemTime) -> Result<Refresh, Error> {
        let (claims, current_key): (RefreshClaims, bool) =
            match jwt::verify(token, &self.verifying[..1]) {
                Ok(claims) => (claims, true),
                Err(_) => (
                    jwt::verify(token, &self.verifying)
                        .map_err(|e| Error::Refresh(e.to_string()))?,
                    false,
                ),
            };
        if claims.iss != self.config.issuer || claims.aud != self.refresh_audience() {
            return Err(Error::Refresh("issued for another service".into()));
        }
        if claims.exp <= unix(now)? {
            return Err(Error::Refresh("expired".into()));
        }
        if claims.sub.is_empty() {
            return Err(Error::Refresh("no subject".into()));
        }
        Ok(Refresh {
            sub: claims.sub,
            generation: claims.generation,
            current_key,
        })
    }

    /// Whether a refresh token still belongs to its user's credential: its generation
    /// must be `current` (see [`TokenService::generation`]), so a password change
    /// voids it. A token signed by a previous key is let through: its generation was
    /// keyed with that key, which the gate no longer holds (only its certificate).
    pub fn check_generation(&self, refresh: &Refresh, current: &str) -> Result<(), Error> {
        match refresh.generation.as_deref() {
            _ if !refresh.current_key => Ok(()),
            Some(generation) if generation == current => Ok(()),
            Some(_) => Err(Error::Refresh(
                "the password changed since it was issued".into(),
            )),
            None => Err(Error::Refresh(
                "issued before refresh tokens were bound to the password".into(),
            )),
        }
    }

    /// Who an access token was issued to, if it is one of ours (signed with the
    /// current key or one of `previous_certs`), for this service (`iss`, `aud`), and
    /// valid now (`exp`, `nbf` with [`CLOCK_SKEW`]). The registry checks it again,
    /// with its grants; this tells the gate whom a request is for.
    pub fn check_access(&self, token: &str, now: SystemTime) -> Result<Bearer, Error> {
        let claims: ReceivedClaims =
            jwt::verify(token, &self.verifying).map_err(|e| Error::Access(e.to_string()))?;
        if claims.iss != self.config.issuer || claims.aud != self.config.service {
            return Err(Error::Access("issued for another service".into()));
        }
        let now = unix(now)?;
        if claims.exp <= now {
            return Err(Error::Access("expired".into()));
        }
        if claims.nbf > now + CLOCK_SKEW.as_secs() {
            return Err(Error::Access("not valid yet".into()));
        }
        Ok(Bearer {
            sub: claims.sub,
            jti: claims.jti,
            oidc_groups: claims.oidc_groups,
        })
    }

    fn refresh_audience(&self) -> String {
        format!("{}{REFRESH_AUDIENCE_SUFFIX}", self.config.service)
    }

    fn jti(&self) -> String {
        let mut bytes = [0u8; 16];
        // The system random source failing is not recoverable; a fixed ID would be
        // wrong but not unsafe (jti is informational for the registry).
        let _ = self.random.fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn unix(t: SystemTime) -> Result<u64, Error> {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::Clock)
}

/// The space-separated scope text of granted access (the OAuth2 answer's `scope`):
/// entries with no granted action are left out.
pub fn scope_text(access: &[Access]) -> String {
    access
        .iter()
        .filter(|a| !a.actions.is_empty())
        .map(|a| format!("{}:{}:{}", a.resource_type, a.name, a.actions.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::keys::fixtures::generated_pair;

    fn service(dir: &std::path::Path, name: &str, previous: &[&std::path::Path]) -> TokenService {
        let pair = generated_pair(dir, name);
        let previous = previous
            .iter()
            .map(|p| format!("{:?}", p.display().to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "service = \"reg\"\nkey = {:?}\ncert = {:?}\nprevious_certs = [{previous}]\n",
            pair.key.display().to_string(),
            pair.cert.display().to_string()
        );
        let config: TokenConfig = toml::from_str(&text).expect("config");
        TokenService::load(&config).expect("service")
    }

    /// The claims of a compact JWS, as text.
    fn claims_text(token: &str) -> String {
        use base64::Engine as _;
        let part = token.split('.').nth(1).unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url");
        String::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn access_tokens_of_ours_verify_others_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ours = service(dir.path(), "a", &[]);
        let now = SystemTime::now();
        let issued = ours.issue("alice", None, &[], now).expect("issue");
        let bearer = ours.check_access(&issued.token, now).expect("ours");
        assert_eq!(
            (bearer.sub.as_str(), bearer.jti.as_str()),
            ("alice", issued.jti.as_str())
        );
        assert_eq!(bearer.oidc_groups, None, "a person is looked up again");
        assert!(!claims_text(&issued.token).contains("oidc_groups"));
        let job = ["pushers".to_owned()];
        let issued_job = ours
            .issue("ci-octo-org/app", Some(&job), &[], now)
            .expect("issue");
        let bearer = ours.check_access(&issued_job.token, now).expect("ours");
        assert_eq!(bearer.oidc_groups, Some(vec!["pushers".to_owned()]));
        let later = now + Duration::from_secs(301);
        assert!(matches!(
            ours.check_access(&issued.token, later),
            Err(Error::Access(_))
        ));
        let other = service(dir.path(), "b", &[]);
        assert!(matches!(
            other.check_access(&issued.token, now),
            Err(Error::Access(_))
        ));
        // A refresh token is no access token (its audience differs).
        let refresh = ours
            .refresh_token("alice", "-".into(), now)
            .expect("sign")
            .expect("refresh");
        assert!(matches!(
            ours.check_access(&refresh, now),
            Err(Error::Access(_))
        ));
    }

    #[test]
    fn refresh_generations_bind_the_credential() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = service(dir.path(), "old", &[]);
        let now = SystemTime::now();
        let token = old
            .refresh_token("alice", "gen-1".into(), now)
            .expect("sign")
            .expect("refresh");
        let refresh = old.check_refresh(&token, now).expect("valid");
        assert!(refresh.current_key);
        assert!(old.check_generation(&refresh, "gen-1").is_ok());
        let changed = old
            .check_generation(&refresh, "gen-2")
            .expect_err("changed");
        assert!(
            changed.to_string().contains("password changed"),
            "{changed}"
        );
        let unbound = Refresh {
            generation: None,
            ..old.check_refresh(&token, now).expect("valid")
        };
        assert!(old.check_generation(&unbound, "gen-1").is_err());
        // After a rotation the old key's tokens still verify; their generation cannot
        // be recomputed and is let through.
        let new = service(dir.path(), "new", &[&dir.path().join("old.crt")]);
        let refresh = new.check_refresh(&token, now).expect("previous key");
        assert!(!refresh.current_key);
        assert!(new.check_generation(&refresh, "gen-2").is_ok());
    }
}
