//! The LDAP / Active Directory backend: find the user's entry as `bind_dn`, bind as
//! that entry with the password, then read the user's groups.
//!
//! Knows nothing of HTTP or caching ([`super::Authenticator`] caches and decides what
//! an outage means). Every operation has a timeout, and every value that comes from
//! the client is escaped before it enters a filter ([`filter`]).

pub(crate) mod diagnose;
pub(crate) mod filter;
pub(crate) mod pool;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::time::Instant;

use ldap3::{Scope, SearchEntry};

use self::pool::{Connector, Failure, Lease, Pool, Role};
use crate::config::ldap::{GroupValues, LdapConfig};
use crate::metrics::{LdapMetrics, LdapOp, LdapOutcome};

/// The user entry a search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEntry {
    /// Its distinguished name, which the password bind uses.
    pub dn: String,
    /// Its account name: the one value of the account attribute, as the directory
    /// holds it. The identity of a login, whatever spelling the search matched (the
    /// directory compares `uid` and `sAMAccountName` ignoring case and spaces).
    pub account: String,
    /// Group names read from `group_attribute` (e.g. `memberOf`), if configured.
    pub attribute_groups: Vec<String>,
}

/// What a user search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// No entry: an unknown user.
    Nobody,
    /// Exactly one entry.
    One(UserEntry),
    /// Several entries: ambiguous, refused (the filter is too loose).
    Several(usize),
    /// One entry, without exactly one value of the account attribute: it has no
    /// name the gate could use, refused.
    Unnamed {
        /// The entry.
        dn: String,
        /// How many values of the account attribute it has (0, or more than 1).
        values: usize,
    },
}

/// The result of a password bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    /// The password is right.
    Accepted,
    /// The directory refused it (wrong password, locked or expired account, ...).
    Refused,
}

/// A directory and the connections to it.
#[derive(Debug)]
pub struct Directory {
    config: LdapConfig,
    connector: Connector,
    searchers: Pool,
    binders: Pool,
    group_filter: String,
    account_attribute: String,
    metrics: LdapMetrics,
}

/// Why a directory cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `ldap.ca` or the system roots could not be loaded.
    #[error("ldap.ca: {0}")]
    Tls(#[source] crate::tls::Error),
    /// `ldap.url` is not usable.
    #[error("ldap.url: {0}")]
    Url(String),
    /// `ldap.account_attribute` is not usable or cannot be derived from the filter.
    #[error("ldap.account_attribute: {0}")]
    AccountAttribute(String),
}

impl Directory {
    /// Prepares the client; nothing is connected until the first login.
    pub fn new(
        config: &LdapConfig,
        bind_password: Option<String>,
        metrics: LdapMetrics,
    ) -> Result<Directory, BuildError> {
        let urls = config.urls().map_err(BuildError::Url)?;
        let account_attribute = config
            .effective_account_attribute()
            .map_err(BuildError::AccountAttribute)?;
        let tls = crate::tls::client_config(config.ca.as_deref()).map_err(BuildError::Tls)?;
        let connector = Connector {
            urls,
            starttls: config.starttls,
            tls: Arc::new(tls),
            connect_timeout: config.connect_timeout.0,
            timeout: config.timeout.0,
            bind: config.bind_dn.clone().zip(bind_password),
        };
        Ok(Directory {
            group_filter: config.effective_group_filter(),
            account_attribute,
            config: config.clone(),
            connector,
            searchers: Pool::new(Role::Search, config.pool_size.0),
            binders: Pool::new(Role::Bind, config.pool_size.0),
            metrics,
        })
    }

    /// The configuration this directory was built from (a reload with the same
    /// config and password keeps the directory, its connections and caches).
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    /// Whether the search identity is the same as `bind_password` gives.
    pub fn same_password(&self, bind_password: Option<&str>) -> bool {
        self.connector.bind.as_ref().map(|(_, p)| p.as_str()) == bind_password
    }

    /// The attribute whose value is a user's account name.
    pub fn account_attribute(&self) -> &str {
        &self.account_attribute
    }

    /// Searches the user entry for `account` under `base` with `filter`, reading its
    /// account name (and `group_attribute`).
    pub async fn find_user(&self, account: &str) -> Result<Found, Failure> {
        let filter = filter::fill(&self.config.filter, &[("account", account)]);
        let mut attrs = vec![self.account_attribute.clone()];
        attrs.extend(self.config.group_attribute.iter().cloned());
        let entries = self.search(&self.config.base, &filter, attrs).await?;
        let count = entries.len();
        let mut entries = entries.into_iter();
        Ok(match (entries.next(), count) {
            (None, _) => Found::Nobody,
            (Some(entry), 1) => match account_name(&entry, &self.account_attribute) {
                Ok(name) => {
                    let attribute_groups = match &self.config.group_attribute {
                        Some(a) => group_names(&entry, a, self.config.group_attribute_holds),
                        None => Vec::new(),
                    };
                    Found::One(UserEntry {
                        dn: entry.dn,
                        account: name,
                        attribute_groups,
                    })
                }
                Err(values) => {
                    tracing::warn!(dn = %entry.dn, attribute = %self.account_attribute, values, "LDAP user entry has not exactly one account name; login refused (set ldap.account_attribute to a single-valued attribute)");
                    Found::Unnamed {
                        dn: entry.dn,
                        values,
                    }
                }
            },
            (Some(_), n) => {
                tracing::warn!(account, entries = n, filter, "LDAP user search found several entries; login refused (make ldap.filter or ldap.base narrower)");
                Found::Several(n)
            }
        })
    }

    /// Binds as `dn` with `password` on a connection kept for user binds. The caller
    /// has refused an empty password already; this refuses it again, since an
    /// empty-password bind is an unauthenticated bind that succeeds (RFC 4513 §5.1.2).
    pub async fn bind_user(&self, dn: &str, password: &[u8]) -> Result<Bind, Failure> {
        if password.is_empty() || dn.is_empty() {
            return Ok(Bind::Refused);
        }
        let Ok(password) = std::str::from_utf8(password) else {
            // The client library takes text; a non-UTF-8 password cannot be sent.
            return Ok(Bind::Refused);
        };
        let mut lease = self.binders.take(&self.connector).await?;
        let mut retried = false;
        loop {
            let started = Instant::now();
            let result = lease
                .ldap
                .with_timeout(self.connector.timeout)
                .simple_bind(dn, password)
                .await
                .and_then(|r| r.success());
            let outcome = match result {
                Ok(_) => Ok(Bind::Accepted),
                Err(e) => Err(Failure::from_ldap(e)),
            };
            self.record(LdapOp::bind, &outcome, started);
            match outcome {
                Ok(bind) => {
                    self.binders.put(lease);
                    return Ok(bind);
                }
                Err(Failure::Answer { rc, text }) => {
                    // The connection is fine; the directory said no.
                    self.binders.put(lease);
                    if rc != 49 {
                        tracing::warn!(dn, rc, %text, "LDAP bind refused");
                    }
                    return Ok(Bind::Refused);
                }
                Err(e) if lease.reused && !retried => {
                    tracing::debug!(error = %e, "pooled LDAP connection failed; retrying on a new one");
                    lease = self.binders.take_fresh(&self.connector, lease).await?;
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The user's groups: those of the user attribute plus, with `group_base`, the
    /// names of the groups a group search finds (`${account}` is the entry's account
    /// name, not the spelling typed); sorted, without duplicates.
    pub async fn groups(&self, user: &UserEntry) -> Result<Vec<String>, Failure> {
        let mut groups = user.attribute_groups.clone();
        if let Some(base) = &self.config.group_base {
            let filter = filter::fill(
                &self.group_filter,
                &[("account", &user.account), ("dn", &user.dn)],
            );
            let attr = self.config.group_name_attribute.clone();
            for entry in self.search(base, &filter, vec![attr.clone()]).await? {
                let name = entry
                    .attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&attr))
                    .and_then(|(_, v)| v.first().cloned());
                match name {
                    Some(n) => groups.push(n),
                    None => {
                        tracing::debug!(dn = %entry.dn, attribute = %attr, "LDAP group without a name attribute skipped")
                    }
                }
            }
        }
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    /// The groups of `account` without checking a password (for refresh tokens and
    /// `acl explain`); `None` when the search finds no single entry, or one whose
    /// account name is not `account` byte for byte (a variant spelling such as
    /// `MALLORY` names no identity).
    pub async fn lookup_groups(&self, account: &str) -> Result<Option<Vec<String>>, Failure> {
        match self.find_user(account).await? {
            Found::One(entry) if entry.account == account => self.groups(&entry).await.map(Some),
            Found::One(_) | Found::Nobody | Found::Several(_) | Found::Unnamed { .. } => Ok(None),
        }
    }

    async fn search(
        &self,
        base: &str,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, Failure> {
        let mut lease = self.searchers.take(&self.connector).await?;
        let mut retried = false;
        loop {
            let started = Instant::now();
            let result = self.search_on(&mut lease, base, filter, &attrs).await;
            self.record(LdapOp::search, &result, started);
            match result {
                Ok(entries) => {
                    self.searchers.put(lease);
                    return Ok(entries);
                }
                Err(e @ Failure::Answer { .. }) => {
                    self.searchers.put(lease);
                    return Err(e);
                }
                Err(e) if lease.reused && !retried => {
                    tracing::debug!(error = %e, "pooled LDAP connection failed; retrying on a new one");
                    lease = self.searchers.take_fresh(&self.connector, lease).await?;
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn search_on(
        &self,
        lease: &mut Lease,
        base: &str,
        filter: &str,
        attrs: &[String],
    ) -> Result<Vec<SearchEntry>, Failure> {
        let (entries, _) = lease
            .ldap
            .with_timeout(self.connector.timeout)
            .search(base, Scope::Subtree, filter, attrs)
            .await
            .and_then(|r| r.non_error())
            .map_err(Failure::from_ldap)?;
        let mut found = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.is_ref() || entry.is_intermediate() {
                continue; // referrals (AD's) are not followed
            }
            // The client library panics on an entry it cannot take apart; a hostile or
            // broken directory must not take a request task down with it.
            match std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(entry))) {
                Ok(e) => found.push(e),
                Err(_) => {
                    return Err(Failure::Unreachable(
                        "the directory sent a malformed search entry".into(),
                    ))
                }
            }
        }
        Ok(found)
    }

    fn record<T>(&self, op: LdapOp, result: &Result<T, Failure>, started: Instant) {
        let outcome = match result {
            Ok(_) => LdapOutcome::ok,
            Err(Failure::Answer { .. }) => LdapOutcome::refused,
            Err(Failure::Unreachable(_)) => LdapOutcome::error,
        };
        self.metrics.record(op, outcome, started.elapsed());
    }
}

/// The one value of `attribute` in `entry` (names compared ignoring case, options
/// such as `;lang-en` not taken); `Err(n)` when it has `n` ≠ 1 values, or one that
/// is empty or not text.
fn account_name(entry: &SearchEntry, attribute: &str) -> Result<String, usize> {
    let text: Vec<&String> = entry
        .attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, values)| values.iter())
        .collect();
    let binary: usize = entry
        .bin_attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .map(|(_, values)| values.len())
        .sum();
    match (text.as_slice(), binary) {
        ([name], 0) if !name.is_empty() => Ok((*name).clone()),
        ([_], 0) => Err(0),
        (values, binary) => Err(values.len() + binary),
    }
}

/// Group names from the user's `attribute`: of DN values (`memberOf`), each DN's
/// first RDN value when it is a CN, other DNs skipped; of name values, each as it is
/// (empty ones skipped).
fn group_names(entry: &SearchEntry, attribute: &str, holds: Option<GroupValues>) -> Vec<String> {
    let values = entry
        .attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, values)| values.iter());
    match holds.unwrap_or_default() {
        GroupValues::Dns => values
            .filter_map(|dn| filter::first_rdn_value(dn, "cn"))
            .collect(),
        GroupValues::Names => values.filter(|v| !v.is_empty()).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn entry(attribute: &str, values: &[&str]) -> SearchEntry {
        SearchEntry {
            dn: "uid=alice,ou=people,dc=example".into(),
            attrs: HashMap::from([(
                attribute.to_string(),
                values.iter().map(|v| (*v).to_string()).collect(),
            )]),
            bin_attrs: HashMap::new(),
        }
    }

    #[test]
    fn the_account_name_is_the_one_value_of_its_attribute() {
        assert_eq!(
            account_name(&entry("uid", &["alice"]), "UID"),
            Ok("alice".into())
        );
        assert_eq!(
            account_name(&entry("uid", &["Alice "]), "uid"),
            Ok("Alice ".into())
        );
        assert_eq!(account_name(&entry("uid", &["a", "b"]), "uid"), Err(2));
        assert_eq!(account_name(&entry("uid", &[]), "uid"), Err(0));
        assert_eq!(account_name(&entry("uid", &[""]), "uid"), Err(0));
        assert_eq!(account_name(&entry("cn", &["alice"]), "uid"), Err(0));
        assert_eq!(
            account_name(&entry("uid;lang-en", &["alice"]), "uid"),
            Err(0),
            "an option is another attribute description"
        );
        let mut binary = entry("uid", &[]);
        binary.bin_attrs.insert("uid".into(), vec![vec![0xff]]);
        assert_eq!(account_name(&binary, "uid"), Err(1), "not text");
    }

    #[test]
    fn group_attribute_values_are_dns_or_names() {
        let member_of = entry(
            "memberOf",
            &["cn=ops,ou=groups,dc=example", "ou=teams,dc=example"],
        );
        assert_eq!(group_names(&member_of, "memberof", None), ["ops"]);
        let gid = entry("gidNumber", &["6000", ""]);
        assert_eq!(
            group_names(&gid, "gidNumber", Some(GroupValues::Dns)),
            Vec::<String>::new(),
            "a gidNumber is no DN"
        );
        assert_eq!(
            group_names(&gid, "gidNumber", Some(GroupValues::Names)),
            ["6000"]
        );
    }
}
