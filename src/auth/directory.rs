//! Logins against the directory ([`super::ldap`]), with the caching and the outage
//! policy that make it usable on every request of a push.
//!
//! - A successful login is remembered for `auth.cache_ttl` (keyed fingerprint, as for
//!   htpasswd users); concurrent logins with the same credentials make one round trip.
//! - The identity is the entry's account name ([`UserEntry::account`]), not the name
//!   as typed: the directory matches `MALLORY` and ` mallory` to `mallory`'s entry,
//!   and rules, groups, logs, tokens and the group cache all take `mallory`. A cached
//!   login remembers the account name its verification found (keyed by the same
//!   fingerprint of the typed name and password).
//! - Group memberships are remembered per account for `ldap.group_cache_ttl`; when they
//!   are due while the login is still cached, only a search runs (no user bind), and
//!   a user who is gone from the directory loses access then.
//! - Failures are never cached. An empty password is refused before any bind.
//! - While the directory is unreachable, a user whose password was verified within
//!   `ldap.outage_grace` keeps working with the groups last seen; everyone else gets
//!   [`Error::Unavailable`] (a 503, never a 401 that would make clients ask for a new
//!   password).

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::cache::{CredentialCache, Fingerprint};
use super::ldap::pool::Failure;
use super::ldap::{Bind, Directory, Found, UserEntry};
use super::{Error, Identity, Password, Verified};
use crate::config::ldap::LdapConfig;

/// The directory with its caches; carried over a reload that leaves `[ldap]` as it was.
#[derive(Debug)]
pub struct DirectoryLogins {
    directory: Directory,
    logins: CredentialCache,
    /// The account name each cached login's verification found.
    accounts: Recent<Fingerprint, String>,
    /// Group memberships per account name (never per typed spelling).
    groups: Recent<String, Vec<String>>,
    group_cache_ttl: Duration,
    outage_grace: Duration,
    retry_after: Duration,
}

impl DirectoryLogins {
    /// Wraps a directory; successes are cached for `cache_ttl` (at most `cache_size`).
    pub fn new(
        directory: Directory,
        config: &LdapConfig,
        cache_ttl: Duration,
        cache_size: usize,
    ) -> DirectoryLogins {
        DirectoryLogins {
            directory,
            logins: CredentialCache::with_grace(cache_ttl, config.outage_grace.0, cache_size),
            accounts: Recent::new(cache_size),
            groups: Recent::new(cache_size),
            group_cache_ttl: config.group_cache_ttl.0,
            outage_grace: config.outage_grace.0,
            retry_after: config.retry_after.0,
        }
    }

    /// Whether these credentials are a fresh cache hit: [`verify`](Self::verify)
    /// would take them without a bind (the same check it starts with).
    pub fn is_cached(&self, user: &str, password: &Password) -> bool {
        !password.expose().is_empty()
            && self
                .logins
                .is_fresh(&self.logins.fingerprint(user, password.expose()))
    }

    /// The directory client (for `ldap test` and reload comparisons).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Checks a user name and password against the directory; the identity is the
    /// account name of the entry found.
    pub async fn verify(&self, user: &str, password: &Password) -> Result<Verified, Error> {
        if password.expose().is_empty() {
            // An empty password would be an unauthenticated bind, which succeeds.
            return Err(Error::InvalidCredentials);
        }
        let fp = self.logins.fingerprint(user, password.expose());
        if let Some(account) = self.cached_account(&fp) {
            return match self.current_groups(&account).await {
                Ok(groups) => Ok(verified(&account, groups, true)),
                Err(e @ Error::InvalidCredentials) => {
                    self.logins.remove(&fp);
                    self.accounts.forget(&fp);
                    Err(e)
                }
                Err(e) => Err(e),
            };
        }
        let in_flight = self.logins.join(fp);
        let result = in_flight
            .get_or_try_init(|| self.login(user, password))
            .await
            .copied();
        drop(in_flight); // Also dropped, and the cell forgotten, if this future is.
        match result {
            Ok(true) => {
                let account = self.verified_account(user, &fp).await?;
                self.logins.insert(fp);
                let groups = self.groups.any(&account).unwrap_or_default();
                Ok(verified(&account, groups, false))
            }
            Ok(false) => Err(Error::InvalidCredentials),
            Err(Error::Unavailable { reason, .. })
                if self.logins.verified_within(&fp, self.outage_grace) =>
            {
                // Only a login whose account name is remembered: no name, no identity.
                let account = self.accounts.any(&fp).ok_or_else(|| Error::Unavailable {
                    reason: reason.clone(),
                    retry_after: self.retry_after,
                })?;
                tracing::warn!(user = account.as_str(), %reason, "directory unreachable; user verified within ldap.outage_grace let in");
                let groups = self.groups.any(&account).unwrap_or_default();
                Ok(verified(&account, groups, true))
            }
            Err(e) => Err(e),
        }
    }

    /// The account name of a fresh cached login; `None` sends it to a full login.
    fn cached_account(&self, fp: &Fingerprint) -> Option<String> {
        if !self.logins.is_fresh(fp) {
            return None;
        }
        self.accounts.any(fp)
    }

    /// The account name the verification of `fp` found; searched again in the rare
    /// case it was pushed out of the bounded map since (the password was verified
    /// for the entry `user` finds).
    async fn verified_account(&self, user: &str, fp: &Fingerprint) -> Result<String, Error> {
        if let Some(account) = self.accounts.any(fp) {
            return Ok(account);
        }
        match self.directory.find_user(user).await {
            Ok(Found::One(entry)) => {
                self.accounts.put(*fp, entry.account.clone());
                Ok(entry.account)
            }
            Ok(_) => Err(Error::InvalidCredentials),
            Err(f) => Err(self.error(f)),
        }
    }

    /// An account's groups without a password (refresh tokens): cached, or searched;
    /// `None` when `account` is not (or no longer) an entry's account name, byte for
    /// byte (a variant spelling that the directory would match is no identity).
    pub async fn lookup(&self, account: &str) -> Result<Option<Vec<String>>, Error> {
        if let Some(groups) = self.groups.fresh(account, self.group_cache_ttl) {
            return Ok(Some(groups));
        }
        match self.directory.lookup_groups(account).await {
            Ok(Some(groups)) => {
                self.groups.put(account.to_owned(), groups.clone());
                Ok(Some(groups))
            }
            Ok(None) => {
                self.groups.forget(account);
                Ok(None)
            }
            Err(f) if f.is_unreachable() => match self.groups.any(account) {
                Some(groups) => Ok(Some(groups)),
                None => Err(self.error(f)),
            },
            Err(f) => Err(self.error(f)),
        }
    }

    /// One full login: search, bind, groups; remembers the entry's account name
    /// under the credentials' fingerprint.
    async fn login(&self, user: &str, password: &Password) -> Result<bool, Error> {
        let entry = match self
            .directory
            .find_user(user)
            .await
            .map_err(|f| self.error(f))?
        {
            Found::One(entry) => entry,
            Found::Nobody | Found::Several(_) | Found::Unnamed { .. } => return Ok(false),
        };
        match self
            .directory
            .bind_user(&entry.dn, password.expose())
            .await
            .map_err(|f| self.error(f))?
        {
            Bind::Refused => return Ok(false),
            Bind::Accepted => {}
        }
        let account = &entry.account;
        if account != user {
            tracing::debug!(typed = ?user, user = account.as_str(), "directory login under the entry's account name");
        }
        match self.directory.groups(&entry).await {
            Ok(groups) => self.groups.put(account.clone(), groups),
            Err(f) if f.is_unreachable() && self.groups.any(account).is_some() => {
                tracing::warn!(user = account.as_str(), error = %f, "LDAP group search failed; using the groups last seen");
            }
            Err(f) => return Err(self.error(f)),
        }
        let fp = self.logins.fingerprint(user, password.expose());
        self.accounts.put(fp, entry.account);
        Ok(true)
    }

    /// An account's groups: cached, or searched again once due. An account no longer
    /// found (or now another entry's spelling) is refused; an unreachable directory
    /// leaves the groups last seen.
    async fn current_groups(&self, account: &str) -> Result<Vec<String>, Error> {
        if let Some(groups) = self.groups.fresh(account, self.group_cache_ttl) {
            return Ok(groups);
        }
        let refreshed = match self.directory.find_user(account).await {
            Ok(Found::One(entry)) if entry.account == account => {
                self.directory.groups(&entry).await
            }
            Ok(found) => {
                tracing::info!(
                    user = account,
                    found = found_kind(&found),
                    "user no longer found in the directory; cached login dropped"
                );
                self.groups.forget(account);
                return Err(Error::InvalidCredentials);
            }
            Err(f) => Err(f),
        };
        match refreshed {
            Ok(groups) => {
                self.groups.put(account.to_owned(), groups.clone());
                Ok(groups)
            }
            Err(f) if f.is_unreachable() => {
                tracing::warn!(user = account, error = %f, "LDAP group refresh failed; using the groups last seen");
                Ok(self.groups.any(account).unwrap_or_default())
            }
            Err(f) => Err(self.error(f)),
        }
    }

    fn error(&self, failure: Failure) -> Error {
        match failure {
            Failure::Unreachable(reason) => Error::Unavailable {
                reason,
                retry_after: self.retry_after,
            },
            Failure::Answer { text, .. } => Error::Directory(text),
        }
    }
}

fn verified(user: &str, groups: Vec<String>, from_cache: bool) -> Verified {
    Verified {
        identity: Identity {
            user: user.to_owned(),
            groups,
        },
        from_cache,
    }
}

/// What a search found, for the log.
fn found_kind(found: &Found) -> &'static str {
    match found {
        Found::One(UserEntry { .. }) => "an entry with another account name",
        Found::Nobody => "no entry",
        Found::Several(_) => "several entries",
        Found::Unnamed { .. } => "an entry without one account name",
    }
}

/// Values with the time they were stored, at most `capacity` (the oldest goes).
#[derive(Debug)]
struct Recent<K, V> {
    capacity: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Recent<K, V> {
    fn new(capacity: usize) -> Recent<K, V> {
        Recent {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value if stored less than `ttl` ago.
    fn fresh<Q>(&self, key: &Q, ttl: Duration) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock();
        let (value, at) = entries.get(key)?;
        (*at + ttl > Instant::now()).then(|| value.clone())
    }

    /// The value, however old.
    fn any<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.entries.lock().get(key).map(|(v, _)| v.clone())
    }

    fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    fn forget<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.entries.lock().remove(key);
    }
}
