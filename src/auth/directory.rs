//! Logins against the directory ([`super::ldap`]), with the caching and the outage
//! policy that make it usable on every request of a push.
//!
//! - A successful login is remembered for `auth.cache_ttl` (keyed fingerprint, as for
//!   htpasswd users); concurrent logins with the same credentials make one round trip.
//! - Group memberships are remembered per user for `ldap.group_cache_ttl`; when they
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

use super::cache::CredentialCache;
use super::ldap::pool::Failure;
use super::ldap::{Bind, Directory, Found};
use super::{Error, Identity, Password, Verified};
use crate::config::ldap::LdapConfig;

/// The directory with its caches; carried over a reload that leaves `[ldap]` as it was.
#[derive(Debug)]
pub struct DirectoryLogins {
    directory: Directory,
    logins: CredentialCache,
    groups: GroupCache,
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
            groups: GroupCache::new(config.group_cache_ttl.0, cache_size),
            outage_grace: config.outage_grace.0,
            retry_after: config.retry_after.0,
        }
    }

    /// The directory client (for `ldap test` and reload comparisons).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Checks a user name and password against the directory.
    pub async fn verify(&self, user: &str, password: &Password) -> Result<Verified, Error> {
        if password.expose().is_empty() {
            // An empty password would be an unauthenticated bind, which succeeds.
            return Err(Error::InvalidCredentials);
        }
        let fp = self.logins.fingerprint(user, password.expose());
        if self.logins.is_fresh(&fp) {
            return match self.current_groups(user).await {
                Ok(groups) => Ok(verified(user, groups, true)),
                Err(e @ Error::InvalidCredentials) => {
                    self.logins.remove(&fp);
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
        self.logins.finish(&fp, &in_flight);
        match result {
            Ok(true) => {
                self.logins.insert(fp);
                let groups = self.groups.any(user).unwrap_or_default();
                Ok(verified(user, groups, false))
            }
            Ok(false) => Err(Error::InvalidCredentials),
            Err(Error::Unavailable { reason, .. })
                if self.logins.verified_within(&fp, self.outage_grace) =>
            {
                tracing::warn!(user, %reason, "directory unreachable; user verified within ldap.outage_grace let in");
                let groups = self.groups.any(user).unwrap_or_default();
                Ok(verified(user, groups, true))
            }
            Err(e) => Err(e),
        }
    }

    /// A user's groups without a password: cached, or searched; `None` when the
    /// user is not (or no longer) in the directory.
    pub async fn lookup(&self, user: &str) -> Result<Option<Vec<String>>, Error> {
        if let Some(groups) = self.groups.fresh(user) {
            return Ok(Some(groups));
        }
        match self.directory.lookup_groups(user).await {
            Ok(Some(groups)) => {
                self.groups.put(user, groups.clone());
                Ok(Some(groups))
            }
            Ok(None) => {
                self.groups.forget(user);
                Ok(None)
            }
            Err(f) if f.is_unreachable() => match self.groups.any(user) {
                Some(groups) => Ok(Some(groups)),
                None => Err(self.error(f)),
            },
            Err(f) => Err(self.error(f)),
        }
    }

    /// One full login: search, bind, groups.
    async fn login(&self, user: &str, password: &Password) -> Result<bool, Error> {
        let entry = match self
            .directory
            .find_user(user)
            .await
            .map_err(|f| self.error(f))?
        {
            Found::One(entry) => entry,
            Found::Nobody | Found::Several(_) => return Ok(false),
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
        match self.directory.groups(user, &entry).await {
            Ok(groups) => self.groups.put(user, groups),
            Err(f) if f.is_unreachable() && self.groups.any(user).is_some() => {
                tracing::warn!(user, error = %f, "LDAP group search failed; using the groups last seen");
            }
            Err(f) => return Err(self.error(f)),
        }
        Ok(true)
    }

    /// The user's groups: cached, or searched again once due. A user no longer found
    /// is refused; an unreachable directory leaves the groups last seen.
    async fn current_groups(&self, user: &str) -> Result<Vec<String>, Error> {
        if let Some(groups) = self.groups.fresh(user) {
            return Ok(groups);
        }
        let refreshed = match self.directory.find_user(user).await {
            Ok(Found::One(entry)) => self.directory.groups(user, &entry).await,
            Ok(Found::Nobody | Found::Several(_)) => {
                tracing::info!(
                    user,
                    "user no longer found in the directory; cached login dropped"
                );
                self.groups.forget(user);
                return Err(Error::InvalidCredentials);
            }
            Err(f) => Err(f),
        };
        match refreshed {
            Ok(groups) => {
                self.groups.put(user, groups.clone());
                Ok(groups)
            }
            Err(f) if f.is_unreachable() => {
                tracing::warn!(user, error = %f, "LDAP group refresh failed; using the groups last seen");
                Ok(self.groups.any(user).unwrap_or_default())
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

/// Group memberships per user, with the time they were read.
#[derive(Debug)]
struct GroupCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Vec<String>, Instant)>>,
}

impl GroupCache {
    fn new(ttl: Duration, capacity: usize) -> GroupCache {
        GroupCache {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, user: &str) -> Option<Vec<String>> {
        let entries = self.entries.lock();
        let (groups, at) = entries.get(user)?;
        (*at + self.ttl > Instant::now()).then(|| groups.clone())
    }

    fn any(&self, user: &str) -> Option<Vec<String>> {
        self.entries.lock().get(user).map(|(g, _)| g.clone())
    }

    fn put(&self, user: &str, groups: Vec<String>) {
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity && !entries.contains_key(user) {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(user.to_owned(), (groups, Instant::now()));
    }

    fn forget(&self, user: &str) {
        self.entries.lock().remove(user);
    }
}
