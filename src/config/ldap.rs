//! `[ldap]`: sign-in against an LDAP directory or Active Directory.
//!
//! Checked at start-up so that a typo in a filter or URL is an error naming the key,
//! not a 401 for every user later.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Count, HumanDuration};
use crate::auth::ldap::filter;

/// The AD matching rule that follows nested group membership (LDAP_MATCHING_RULE_IN_CHAIN).
pub const IN_CHAIN_RULE: &str = "1.2.840.113556.1.4.1941";

const DEFAULT_FILTER: &str = "(uid=${account})";
const DEFAULT_GROUP_FILTER: &str = "(member=${dn})";

/// `[ldap]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]`; a list is tried in order (failover).
    pub url: LdapUrls,
    /// Upgrade `ldap://` connections with StartTLS before anything is sent.
    #[serde(default)]
    pub starttls: bool,
    /// PEM CA bundle for the directory's certificate; the system roots when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// The DN the gate searches as; anonymous searches when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// The file holding `bind_dn`'s password (one trailing newline is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched (subtree).
    pub base: String,
    /// The user search filter; `${account}` is the user name, escaped.
    #[serde(default = "default_filter")]
    pub filter: String,
    /// The user entry's attribute that is the account name the gate uses as the
    /// identity (rules, groups, logs, tokens), whatever spelling the directory
    /// matched; derived from `filter`'s `(ATTR=${account})` term when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_attribute: Option<String>,
    /// Where groups are searched (subtree); no group search when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_base: Option<String>,
    /// The group search filter; `${dn}` (the user's DN) and `${account}`, escaped.
    /// Default `(member=${dn})`, or the AD in-chain rule when `nested_groups` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// The attribute of a group entry that is its name.
    #[serde(default = "default_group_name_attribute")]
    pub group_name_attribute: String,
    /// A user attribute listing the user's groups: group DNs (`memberOf`), each
    /// DN's first RDN value (its CN) being a group name, or names as they are (see
    /// `group_attribute_holds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_attribute: Option<String>,
    /// What `group_attribute`'s values are: `"dns"` (the default) or `"names"`
    /// (taken as they are, such as a `gidNumber`). Only with `group_attribute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_attribute_holds: Option<GroupValues>,
    /// Active Directory: the group search follows nested groups
    /// (`(member:1.2.840.113556.1.4.1941:=${dn})`).
    #[serde(default)]
    pub nested_groups: bool,
    /// Longest wait for a TCP connection plus TLS handshake to the directory.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Longest wait for one LDAP operation (bind or search).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// How many connections may be open for searches, and as many for user binds.
    #[serde(default = "default_pool_size")]
    pub pool_size: Count,
    /// How long group memberships are reused before they are searched again.
    #[serde(default = "default_group_cache_ttl")]
    pub group_cache_ttl: HumanDuration,
    /// While the directory is unreachable, a user verified within this period keeps
    /// working with the groups last seen; `"0s"` turns it off.
    #[serde(default = "default_outage_grace")]
    pub outage_grace: HumanDuration,
    /// The `Retry-After` of the 503 answered while the directory is unreachable.
    #[serde(default = "default_retry_after")]
    pub retry_after: HumanDuration,
}

/// What the values of `group_attribute` are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupValues {
    /// Group DNs (`memberOf`): the group name is the value of each DN's first RDN
    /// when that is a CN; other values are skipped.
    #[default]
    Dns,
    /// Group names as they are (`gidNumber`, `title`, ...), like docker_auth's
    /// labels without `parse_cn`.
    Names,
}

/// One URL or several, in order of preference.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LdapUrls {
    /// `url = "ldaps://..."`.
    One(String),
    /// `url = ["ldaps://a", "ldaps://b"]`.
    Several(Vec<String>),
}

impl LdapUrls {
    /// The URLs in order.
    pub fn list(&self) -> Vec<&str> {
        match self {
            LdapUrls::One(u) => vec![u.as_str()],
            LdapUrls::Several(us) => us.iter().map(String::as_str).collect(),
        }
    }
}

fn default_filter() -> String {
    DEFAULT_FILTER.into()
}
fn default_group_name_attribute() -> String {
    "cn".into()
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn default_pool_size() -> Count {
    Count(4)
}
fn default_group_cache_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_outage_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}
fn default_retry_after() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// A parsed directory URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapUrl {
    /// `ldaps://`: TLS from the first byte.
    pub tls: bool,
    /// The host name or address, as written (the name checked in the certificate).
    pub host: String,
    /// The port (389 or 636 when not written).
    pub port: u16,
}

impl LdapUrl {
    /// Parses `ldap[s]://host[:port][/]`.
    pub fn parse(url: &str) -> Result<LdapUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("ldaps://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("ldap://") {
            (false, r)
        } else {
            return Err(format!("{url:?}: must start with ldap:// or ldaps://"));
        };
        let hostport = rest.strip_suffix('/').unwrap_or(rest);
        if hostport.contains(['/', '?', '@']) {
            return Err(format!(
                "{url:?}: only ldap[s]://host[:port] (base and filter have their own keys)"
            ));
        }
        let default_port = if tls { 636 } else { 389 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(url, p)?,
                None if after.is_empty() => default_port,
                None => return Err(format!("{url:?}: junk after the address")),
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(url, p)?),
                None => (hostport.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(LdapUrl { tls, host, port })
    }

    /// Whether the host is a loopback name or address (plain LDAP there is not a leak).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl std::fmt::Display for LdapUrl {
    /// The URL as the client library takes it: scheme, host (IPv6 in brackets), port.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "ldaps" } else { "ldap" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

fn parse_port(url: &str, p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{url:?}: invalid port {p:?}"))
}

impl LdapConfig {
    /// The group search filter in effect.
    pub fn effective_group_filter(&self) -> String {
        match &self.group_filter {
            Some(f) => f.clone(),
            None if self.nested_groups => format!("(member:{IN_CHAIN_RULE}:=${{dn}})"),
            None => DEFAULT_GROUP_FILTER.into(),
        }
    }

    /// The attribute holding the account name: `account_attribute`, or the one the
    /// filter compares `${account}` with (valid once [`LdapConfig::validate`] passed).
    pub fn effective_account_attribute(&self) -> Result<String, String> {
        if let Some(attribute) = &self.account_attribute {
            return if filter::is_attribute_name(attribute) {
                Ok(attribute.clone())
            } else {
                Err(format!(
                    "{attribute:?} is not an attribute name (letters, digits and '-', or an OID)"
                ))
            };
        }
        filter::equality_attribute(&self.filter, "account")
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "missing: ldap.filter {:?} does not say which attribute holds the account \
                     name (no single (ATTR=${{account}}) term); set it, e.g. \"uid\" or \
                     \"sAMAccountName\"",
                    self.filter
                )
            })
    }

    /// The URLs, parsed (valid once [`LdapConfig::validate`] passed).
    pub fn urls(&self) -> Result<Vec<LdapUrl>, String> {
        self.url.list().into_iter().map(LdapUrl::parse).collect()
    }

    /// Checks every key; errors name it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let urls = self.urls().map_err(|m| ("ldap.url", m))?;
        if urls.is_empty() {
            return Err(("ldap.url", "no URL given".into()));
        }
        if self.starttls && urls.iter().any(|u| u.tls) {
            return Err((
                "ldap.starttls",
                "StartTLS is for ldap:// URLs; ldaps:// is TLS already".into(),
            ));
        }
        if self.ca.is_some() && !self.starttls && urls.iter().all(|u| !u.tls) {
            return Err((
                "ldap.ca",
                "set, but no URL is ldaps:// and starttls is off".into(),
            ));
        }
        if self.bind_dn.is_some() != self.bind_password_file.is_some() {
            return Err((
                "ldap.bind_dn",
                "bind_dn and bind_password_file go together".into(),
            ));
        }
        if self.base.trim().is_empty() {
            return Err(("ldap.base", "must not be empty".into()));
        }
        check_filter("ldap.filter", &self.filter, &["account"], true)?;
        self.effective_account_attribute()
            .map_err(|m| ("ldap.account_attribute", m))?;
        if self.nested_groups && self.group_filter.is_some() {
            return Err((
                "ldap.nested_groups",
                "set either nested_groups or group_filter (write the in-chain rule in the filter)"
                    .into(),
            ));
        }
        if self.group_base.is_some() {
            check_filter(
                "ldap.group_filter",
                &self.effective_group_filter(),
                &["account", "dn"],
                false,
            )?;
        } else if self.group_filter.is_some() || self.nested_groups {
            return Err((
                "ldap.group_base",
                "missing: group_filter and nested_groups need a group_base to search".into(),
            ));
        }
        if self.group_attribute_holds.is_some() && self.group_attribute.is_none() {
            return Err((
                "ldap.group_attribute_holds",
                "set, but group_attribute is not".into(),
            ));
        }
        if self.group_name_attribute.trim().is_empty() {
            return Err(("ldap.group_name_attribute", "must not be empty".into()));
        }
        if self.pool_size.0 == 0 {
            return Err(("ldap.pool_size", "must be at least 1".into()));
        }
        if self.timeout.0.is_zero() || self.connect_timeout.0.is_zero() {
            return Err((
                "ldap.timeout",
                "timeout and connect_timeout must be more than zero".into(),
            ));
        }
        Ok(())
    }
}

/// A filter template: parenthesised, balanced, known placeholders only (and
/// `${account}` when `needs_account`), and valid LDAP filter syntax once filled.
fn check_filter(
    key: &'static str,
    template: &str,
    known: &[&str],
    needs_account: bool,
) -> Result<(), (&'static str, String)> {
    let names = filter::placeholders(template);
    if let Some(unknown) = names.iter().find(|n| !known.contains(n)) {
        return Err((
            key,
            format!(
                "unknown placeholder ${{{unknown}}}; use {}",
                known
                    .iter()
                    .map(|k| format!("${{{k}}}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ));
    }
    if needs_account && !names.contains(&"account") {
        return Err((key, "must contain ${account} (the user name)".into()));
    }
    if template.contains("${") && names.is_empty() {
        return Err((key, "unclosed ${".into()));
    }
    let sample = filter::fill(template, &[("account", "user"), ("dn", "cn=user,dc=x")]);
    if !filter::is_valid(&sample) {
        return Err((
            key,
            format!(
                "{template:?} is not a valid LDAP filter (RFC 4515), e.g. \"(uid=${{account}})\""
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<LdapConfig, String> {
        let text = format!("url = \"ldaps://dc1.example:636\"\nbase = \"dc=example\"\n{extra}");
        let c: LdapConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        c.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(c)
    }

    #[test]
    fn urls_parse_with_default_ports() {
        assert_eq!(
            LdapUrl::parse("ldaps://dc1.corp:1636").unwrap(),
            LdapUrl {
                tls: true,
                host: "dc1.corp".into(),
                port: 1636
            }
        );
        assert_eq!(LdapUrl::parse("ldap://h/").unwrap().port, 389);
        assert_eq!(LdapUrl::parse("ldaps://[::1]").unwrap().host, "::1");
        assert!(LdapUrl::parse("ldaps://[::1]").unwrap().is_loopback());
        for bad in [
            "http://h",
            "ldap://",
            "ldap://h:0",
            "ldap://h:x",
            "ldap://h/dc=x",
            "ldap://u@h",
        ] {
            assert!(LdapUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_and_several_urls() {
        let c = config("url = [\"ldaps://a\", \"ldaps://b\"]").err();
        assert!(c.unwrap().contains("duplicate key"), "url given twice");
        let text = "url = [\"ldaps://a\", \"ldap://b:389\"]\nbase = \"dc=x\"\nca = \"ca.pem\"";
        let c: LdapConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.urls().unwrap().len(), 2);
        assert_eq!(c.filter, "(uid=${account})");
        assert_eq!(c.effective_account_attribute().unwrap(), "uid");
        assert_eq!(c.effective_group_filter(), "(member=${dn})");
        assert_eq!(c.pool_size.0, 4);
    }

    #[test]
    fn mistakes_name_their_key() {
        let cases = [
            ("starttls = true", "ldap.starttls"),
            (
                "filter = \"(uid=user)\"",
                "ldap.filter: must contain ${account}",
            ),
            (
                "filter = \"(uid=${user})\"",
                "ldap.filter: unknown placeholder ${user}",
            ),
            (
                "filter = \"uid=${account}\"",
                "ldap.filter: \"uid=${account}\" is not a valid",
            ),
            ("filter = \"(&(uid=${account})\"", "is not a valid"),
            ("bind_dn = \"cn=r\"", "ldap.bind_dn"),
            ("group_filter = \"(member=${dn})\"", "ldap.group_base"),
            (
                "group_base = \"ou=g\"\ngroup_filter = \"(member=${uid})\"",
                "ldap.group_filter",
            ),
            (
                "group_base = \"ou=g\"\nnested_groups = true\ngroup_filter = \"(member=${dn})\"",
                "ldap.nested_groups",
            ),
            ("pool_size = 0", "ldap.pool_size"),
            (
                "group_attribute_holds = \"names\"",
                "ldap.group_attribute_holds: set, but group_attribute is not",
            ),
            (
                "group_attribute = \"gidNumber\"\ngroup_attribute_holds = \"gids\"",
                "unknown variant",
            ),
            ("base = \" \"", "duplicate key"),
        ];
        for (extra, expected) in cases {
            let err = config(extra).expect_err(extra);
            assert!(err.contains(expected), "{extra}: {err}");
        }
        let plain = "url = \"ldap://h\"\nbase = \"dc=x\"\nca = \"ca.pem\"";
        let c: LdapConfig = toml::from_str(plain).unwrap();
        assert_eq!(c.validate().unwrap_err().0, "ldap.ca");
    }

    #[test]
    fn the_account_attribute_comes_from_the_filter_or_its_key() {
        let cases = [
            ("", "uid"),
            (
                "filter = \"(&(objectClass=user)(sAMAccountName=${account}))\"",
                "sAMAccountName",
            ),
            (
                "filter = \"(|(mail=${account})(uid=${account}))\"\naccount_attribute = \"uid\"",
                "uid",
            ),
            ("account_attribute = \"cn\"", "cn"),
            (
                "account_attribute = \"0.9.2342.19200300.100.1.1\"",
                "0.9.2342.19200300.100.1.1",
            ),
        ];
        for (extra, want) in cases {
            let c = config(extra).unwrap_or_else(|e| panic!("{extra}: {e}"));
            assert_eq!(
                c.effective_account_attribute().as_deref(),
                Ok(want),
                "{extra}"
            );
        }
        let refused = [
            "filter = \"(|(mail=${account})(uid=${account}))\"",
            "filter = \"(uid=${account}*)\"",
            "filter = \"(uid:caseExactMatch:=${account})\"",
            "account_attribute = \"\"",
            "account_attribute = \"uid;lang-en\"",
            "account_attribute = \"(uid)\"",
        ];
        for extra in refused {
            let err = config(extra).expect_err(extra);
            assert!(
                err.starts_with("ldap.account_attribute: "),
                "{extra}: {err}"
            );
        }
    }

    #[test]
    fn nested_groups_use_the_in_chain_rule() {
        let c = config("group_base = \"ou=g\"\nnested_groups = true").unwrap();
        assert_eq!(
            c.effective_group_filter(),
            "(member:1.2.840.113556.1.4.1941:=${dn})"
        );
    }
}
