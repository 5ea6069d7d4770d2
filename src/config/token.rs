//! `[token]`: the token server of token mode (`[auth] mode = "token"`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// `[token]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The token endpoint's path on the gate's own listener (the registry's
    /// `auth.token.realm` is `https://HOST:PORT` + this).
    #[serde(default = "default_path")]
    pub path: String,
    /// The `iss` claim; the registry's `auth.token.issuer`.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// The `aud` claim; the registry's `auth.token.service`.
    pub service: String,
    /// PEM private key that signs tokens: ECDSA P-256 (ES256) or RSA (RS256).
    pub key: PathBuf,
    /// PEM certificate (chain) of `key`; the registry's `auth.token.rootcertbundle`.
    pub cert: PathBuf,
    /// Certificates of earlier keys, newest first: listed in the JWKS and still
    /// accepted for refresh tokens while clients move to the new key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_certs: Vec<PathBuf>,
    /// Whether tokens carry the certificate chain (`x5c`): needed by registry 2.8 and
    /// by registry 3 with a `rootcertbundle`. `false` sends the `kid` alone, for a
    /// registry 3 configured with `auth.token.jwks` only (it refuses an `x5c` it cannot
    /// verify against its empty root pool).
    #[serde(default = "default_true")]
    pub x5c: bool,
    /// How long an access token is valid.
    #[serde(default = "default_expiration")]
    pub expiration: HumanDuration,
    /// How long a refresh token (asked with `offline_token=true` or
    /// `access_type=offline`) is valid; `"0s"` issues none.
    #[serde(default = "default_refresh_expiration")]
    pub refresh_expiration: HumanDuration,
}

fn default_true() -> bool {
    true
}
fn default_path() -> String {
    "/auth".into()
}
fn default_issuer() -> String {
    "registry-gate".into()
}
fn default_expiration() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_refresh_expiration() -> HumanDuration {
    HumanDuration(Duration::from_secs(30 * 24 * 3600))
}

impl TokenConfig {
    /// Checks every key; errors name it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.path.starts_with('/')
            || self.path.starts_with("/v2")
            || self.path.contains(['?', '#'])
        {
            return Err((
                "token.path",
                format!(
                    "{:?}: must be an absolute path outside /v2/, without ? or #",
                    self.path
                ),
            ));
        }
        if self.issuer.trim().is_empty() {
            return Err(("token.issuer", "must not be empty".into()));
        }
        if self.service.trim().is_empty() {
            return Err(("token.service", "must not be empty".into()));
        }
        if self.expiration.0 < Duration::from_secs(60) {
            // Clients treat anything under 60 s as 60 s (token spec).
            return Err(("token.expiration", "must be at least 60s".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<TokenConfig, String> {
        let text = format!("service = \"registry.example\"\nkey = \"k\"\ncert = \"c\"\n{extra}");
        let c: TokenConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        c.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(c)
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = config("").expect("valid");
        assert_eq!(c.path, "/auth");
        assert_eq!(c.issuer, "registry-gate");
        assert_eq!(c.expiration.0, Duration::from_secs(300));
        assert!(c.x5c);
    }

    #[test]
    fn mistakes_name_their_key() {
        for (extra, key) in [
            ("path = \"auth\"", "token.path"),
            ("path = \"/v2/token\"", "token.path"),
            ("issuer = \" \"", "token.issuer"),
            ("expiration = \"30s\"", "token.expiration"),
        ] {
            let err = config(extra).expect_err(extra);
            assert!(err.starts_with(key), "{extra}: {err}");
        }
    }
}
