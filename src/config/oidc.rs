//! `[[oidc]]`: the issuers whose ID tokens log CI jobs in (GitHub Actions, GitLab
//! CI, Kubernetes service accounts). Each value is checked as it is read, so an
//! error names its line and column; [`check_issuers`] checks what spans tables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HumanDuration;
use crate::auth::oidc::ClaimRule;
use crate::auth::robots::USER_PREFIX;

/// The user name a client sends with a token as its password, by default.
const DEFAULT_USERNAME: &str = "oidc";
/// The longest token lifetime accepted by default: Kubernetes' projected
/// service-account tokens last an hour; GitHub's and GitLab's minutes.
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// The longest `max_lifetime` that can be set: a day. A longer-lived token is a
/// stored secret by another name.
const MAX_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// One `[[oidc]]` table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The exact `iss` of the tokens, an `https://` URL; discovery is
    /// `{issuer}/.well-known/openid-configuration` unless `jwks_file` is set.
    pub issuer: IssuerUrl,
    /// What the token's `aud` must contain.
    pub audience: NonEmpty,
    /// The issuer's key set as a file (air-gapped sites): no discovery, watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// PEM CA bundle for the issuer's HTTPS certificate; the system roots when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// The user name a client logs in with, the token being its password.
    #[serde(default = "default_username")]
    pub username: OidcUsername,
    /// The longest `exp - iat` accepted.
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime: MaxLifetime,
    /// Claim rules, first match wins; no match is refused.
    pub rules: Vec<ClaimRuleConfig>,
}

fn default_username() -> OidcUsername {
    OidcUsername(DEFAULT_USERNAME.into())
}

fn default_max_lifetime() -> MaxLifetime {
    MaxLifetime(DEFAULT_MAX_LIFETIME)
}

/// An `https://` issuer URL.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct IssuerUrl(pub String);

impl From<IssuerUrl> for String {
    fn from(u: IssuerUrl) -> String {
        u.0
    }
}

impl TryFrom<String> for IssuerUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let uri: Option<http::Uri> = s.parse().ok();
        let ok = uri.as_ref().is_some_and(|u| {
            u.scheme_str() == Some("https")
                && u.host().is_some_and(|h| !h.is_empty())
                && u.query().is_none()
        });
        if ok && !s.contains('#') {
            Ok(IssuerUrl(s))
        } else {
            Err(format!(
                "{s:?} is not an https:// issuer URL (the exact `iss` of the tokens, such as \
                 \"https://token.actions.githubusercontent.com\")"
            ))
        }
    }
}

/// A string that is not blank.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct NonEmpty(pub String);

impl From<NonEmpty> for String {
    fn from(n: NonEmpty) -> String {
        n.0
    }
}

impl TryFrom<String> for NonEmpty {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.trim().is_empty() || s.chars().any(char::is_control) {
            Err("must not be empty or hold control characters".into())
        } else {
            Ok(NonEmpty(s))
        }
    }
}

/// The user name of token logins: a Basic user name that is not a robot's.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct OidcUsername(pub String);

impl From<OidcUsername> for String {
    fn from(n: OidcUsername) -> String {
        n.0
    }
}

impl TryFrom<String> for OidcUsername {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.contains(':') || s.chars().any(char::is_control) {
            Err(format!(
                "{s:?}: a user name is not empty and has no `:` or control characters"
            ))
        } else if s.starts_with(USER_PREFIX) {
            Err(format!("{s:?}: `{USER_PREFIX}` names are robots'"))
        } else {
            Ok(OidcUsername(s))
        }
    }
}

/// `max_lifetime`: from 1 s to a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "HumanDuration", into = "HumanDuration")]
pub struct MaxLifetime(pub Duration);

impl From<MaxLifetime> for HumanDuration {
    fn from(m: MaxLifetime) -> HumanDuration {
        HumanDuration(m.0)
    }
}

impl TryFrom<HumanDuration> for MaxLifetime {
    type Error = String;
    fn try_from(d: HumanDuration) -> Result<Self, String> {
        if d.0 < Duration::from_secs(1) || d.0 > MAX_MAX_LIFETIME {
            Err("must be from \"1s\" to \"24h\"".into())
        } else {
            Ok(MaxLifetime(d.0))
        }
    }
}

/// One claim rule: `{ claims = { NAME = "GLOB", ... }, user = "...", groups = [...] }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub struct ClaimRuleConfig {
    raw: RawRule,
    /// The compiled rule.
    pub compiled: ClaimRule,
}

/// A claim rule as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    claims: BTreeMap<String, String>,
    user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
}

impl From<ClaimRuleConfig> for RawRule {
    fn from(r: ClaimRuleConfig) -> RawRule {
        r.raw
    }
}

impl TryFrom<RawRule> for ClaimRuleConfig {
    type Error = String;
    fn try_from(raw: RawRule) -> Result<Self, String> {
        let claims: Vec<(String, String)> = raw
            .claims
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let compiled = ClaimRule::compile(&claims, &raw.user, &raw.groups)?;
        Ok(ClaimRuleConfig { raw, compiled })
    }
}

/// What spans the tables: one table per issuer, and every issuer with a rule.
pub fn check_issuers(issuers: &[OidcConfig]) -> Result<(), String> {
    for (i, issuer) in issuers.iter().enumerate() {
        if issuer.rules.is_empty() {
            return Err(format!(
                "issuer {} has no rules: no token of it could log in; add \
                 `rules = [{{ claims = {{ ... }}, user = \"...\" }}]`",
                issuer.issuer.0
            ));
        }
        if issuers[..i].iter().any(|o| o.issuer == issuer.issuer) {
            return Err(format!(
                "issuer {} has two [[oidc]] tables; merge their rules into one",
                issuer.issuer.0
            ));
        }
        if issuer.jwks_file.is_some() && issuer.ca.is_some() {
            return Err(format!(
                "issuer {}: `ca` is for discovery over HTTPS, and `jwks_file` turns discovery off; set one",
                issuer.issuer.0
            ));
        }
    }
    Ok(())
}

/// Where the claim rule that fails with `message` begins in `text`, if one does.
///
/// toml names the whole `rules = [` array when one of its inline tables is refused,
/// so with several rules the user could not tell which: this reads the rules again,
/// each with its own span, and finds the first that fails the same way.
pub(super) fn bad_rule_at(text: &str, message: &str) -> Option<usize> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        oidc: Vec<Issuer>,
    }
    #[derive(Deserialize)]
    struct Issuer {
        #[serde(default)]
        rules: Vec<toml::Spanned<toml::Value>>,
    }
    let file: File = toml::from_str(text).ok()?;
    let message = message.trim();
    file.oidc
        .iter()
        .flat_map(|issuer| &issuer.rules)
        .find(
            |rule| match rule.get_ref().clone().try_into::<ClaimRuleConfig>() {
                Err(e) => e.message().trim() == message,
                Ok(_) => false,
            },
        )
        .map(|rule| rule.span().start)
}
