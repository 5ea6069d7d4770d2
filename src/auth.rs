//! The identity core: (user, password) → [`Identity`].
//!
//! Knows nothing of HTTP. The gate's request path and the token endpoint hand it
//! plain strings and get an identity or a reason back, through one login flow
//! ([`login`]: throttle, verification, groups, metrics). Backends live in
//! their own files: [`htpasswd`] reads the file format, [`hash`] verifies every
//! hash scheme users bring, [`ldap`] talks to a directory and [`directory`] caches
//! its answers. A user of the htpasswd file is decided there; any other user goes to
//! the directory when one is configured.
//!
//! Successful verifications are cached ([`cache`]) and concurrent checks of the
//! same credentials are merged, so a push's many requests cost one hash check.
//! Hash verification costs milliseconds (bcrypt) and never runs on the async
//! reactor threads: it goes to tokio's blocking pool, at most
//! [`Authenticator::verify_concurrency`] at a time, so a storm of wrong passwords
//! queues behind that limit instead of stalling every connection.
//!
//! [`Authenticator::attempt`] runs a verification in its own task, merged with the
//! same credentials' attempt from the same address, so its outcome is still
//! recorded (throttle, metrics, cache) when the request that asked for it is
//! dropped; [`Authenticator::is_cached`] tells proven credentials apart
//! before any throttle check.

pub(crate) mod attempts;
pub mod cache;
pub(crate) mod directory;
pub(crate) mod groups;
pub mod hash;
pub mod htpasswd;
pub(crate) mod ldap;
pub(crate) mod login;
pub mod oidc;
pub(crate) mod replace;
pub mod robots;
pub(crate) mod throttle;

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::Semaphore;

use self::attempts::{Attempts, Begun, Waiter};
use self::cache::CredentialCache;
use self::directory::DirectoryLogins;
use self::htpasswd::Htpasswd;

/// Who a request is, once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user name, exactly as in the user database.
    pub user: String,
    /// The groups the user belongs to: from its backend (the directory) and, once
    /// [`login`] has merged them, the group file and config, sorted.
    pub groups: Vec<String>,
}

/// A successful verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Who the credentials belong to.
    pub identity: Identity,
    /// Whether they were found in the login cache rather than checked by hashing.
    pub from_cache: bool,
}

/// A password: bytes whose `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wraps password bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Password(bytes)
    }
    /// The bytes, for a hash function.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// A user name and password, as a client presented them.
#[derive(Debug)]
pub struct Credentials {
    /// The user name (UTF-8, case-sensitive).
    pub user: String,
    /// The password bytes.
    pub password: Password,
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Why credentials were not accepted.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// Unknown user or wrong password (deliberately not told apart).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The directory cannot be asked now; the client should retry later.
    #[error("directory unavailable: {reason}")]
    Unavailable {
        /// What went wrong (logged, not shown to clients).
        reason: String,
        /// How long clients are told to wait.
        retry_after: Duration,
    },
    /// The directory refused a search (a configuration error: base, filter, rights).
    #[error("directory error: {0}")]
    Directory(String),
    /// The verification task failed (a bug, never the client's fault).
    #[error("password verification failed: {0}")]
    Internal(String),
}

/// A login attempt begun by [`Authenticator::attempt`].
#[derive(Debug)]
pub struct Attempt {
    /// Whether it joined an attempt already under way (and so reserved nothing and
    /// records nothing itself).
    pub joined: bool,
    waiter: Waiter,
}

impl Attempt {
    /// The attempt's result.
    pub async fn outcome(self) -> Result<Verified, Error> {
        self.waiter.outcome().await
    }
}

/// Verifies credentials against the user database. A clone is a handle to the same
/// authenticator (same caches, verifiers and counters).
#[derive(Clone, Debug)]
pub struct Authenticator {
    users: Arc<Htpasswd>,
    directory: Option<Arc<DirectoryLogins>>,
    verifiers: Arc<Semaphore>,
    cache: Arc<CredentialCache>,
    /// Unproven login attempts under way, merged per client address.
    attempts: Arc<Attempts>,
    verifications: Arc<AtomicU64>,
    /// `registry_gate_password_checks_total`, when metrics are kept.
    checks: Option<Counter>,
}

impl Authenticator {
    /// Builds an authenticator over a loaded htpasswd file, caching successes for
    /// `cache_ttl` (at most `cache_size` of them).
    pub fn new(users: Htpasswd, cache_ttl: Duration, cache_size: usize) -> Self {
        Authenticator {
            users: Arc::new(users),
            directory: None,
            verifiers: Arc::new(Semaphore::new(Self::verify_concurrency())),
            cache: Arc::new(CredentialCache::new(cache_ttl, cache_size)),
            attempts: Arc::default(),
            verifications: Arc::default(),
            checks: None,
        }
    }

    /// Counts every hash check in `counter` too (the metric of
    /// [`verifications`](Self::verifications)).
    pub fn with_check_counter(mut self, counter: Counter) -> Self {
        self.checks = Some(counter);
        self
    }

    /// Sends users who are not in the htpasswd file to a directory.
    pub fn with_directory(mut self, directory: Arc<DirectoryLogins>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The directory, if one is configured.
    pub fn directory(&self) -> Option<&Arc<DirectoryLogins>> {
        self.directory.as_ref()
    }

    /// Whether the htpasswd file has `user` (who is then never asked of the directory).
    pub fn has_htpasswd_user(&self, user: &str) -> bool {
        self.users.get(user).is_some()
    }

    /// The groups the backends know for `user` without a password (for refresh
    /// tokens): `Some` (possibly empty) while the user exists, `None` once gone.
    pub async fn current_groups(&self, user: &str) -> Result<Option<Vec<String>>, Error> {
        if self.users.get(user).is_some() {
            return Ok(Some(Vec::new()));
        }
        match &self.directory {
            Some(directory) => directory.lookup(user).await,
            None => Ok(None),
        }
    }

    /// A keyed digest of `user`'s htpasswd hash ([`hash::PasswordHash::keyed_digest`]),
    /// which changes when the password does; `None` for a user not in the file (a
    /// directory user's password change is not visible to the gate).
    pub fn credential_generation(
        &self,
        user: &str,
        key: &ring::hmac::Key,
    ) -> Option<ring::hmac::Tag> {
        self.users.get(user).map(|hash| hash.keyed_digest(key))
    }

    /// How many hash verifications run at once: one per core.
    pub fn verify_concurrency() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }

    /// How many users the database holds.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// How many hash verifications have run (cache hits and merged waiters excluded).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Whether these credentials are a fresh login-cache hit (they succeeded within
    /// `auth.cache_ttl`): [`verify`](Self::verify) would take them without a
    /// password check. Cheap: one HMAC and a map lookup.
    pub fn is_cached(&self, user: &str, password: &Password) -> bool {
        if let Some(directory) = &self.directory {
            if self.users.get(user).is_none() {
                return directory.is_cached(user, password);
            }
        }
        self.cache
            .is_fresh(&self.cache.fingerprint(user, password.expose()))
    }

    /// One unproven login attempt from `client`: [`verify`](Self::verify) in a task
    /// of its own, merged with the same credentials' attempt from the same address
    /// if one is under way ([`attempts`]). Only a new attempt calls
    /// `reserve` (its refusal is returned as is); its task runs to the end even if
    /// every request waiting for it is dropped (the client went away), and hands
    /// what `reserve` gave, with the result, to `on_done` first, so the outcome is
    /// recorded either way. If the task dies, both are dropped and the waiters get
    /// an internal error.
    pub fn attempt<R, E, F>(
        &self,
        client: IpAddr,
        user: &str,
        password: &Password,
        reserve: impl FnOnce() -> Result<R, E>,
        on_done: F,
    ) -> Result<Attempt, E>
    where
        R: Send + 'static,
        F: FnOnce(R, &Result<Verified, Error>) + Send + 'static,
    {
        let key = (client, self.cache.fingerprint(user, password.expose()));
        match self.attempts.begin(key, reserve)? {
            Begun::Joined(waiter) => Ok(Attempt {
                joined: true,
                waiter,
            }),
            Begun::Leading(reserved, leader, waiter) => {
                let this = self.clone();
                let (user, password) = (user.to_owned(), password.clone());
                tokio::spawn(async move {
                    let result = this.verify(&user, &password).await;
                    on_done(reserved, &result);
                    leader.finish(&result);
                });
                Ok(Attempt {
                    joined: false,
                    waiter,
                })
            }
        }
    }

    /// Checks a user name and password: against the htpasswd file when the user is
    /// in it, else against the directory when there is one. Without a directory, an
    /// unknown user costs the same as a known one: the password is checked against a
    /// dummy bcrypt hash.
    pub async fn verify(&self, user: &str, password: &Password) -> Result<Verified, Error> {
        if let Some(directory) = &self.directory {
            if self.users.get(user).is_none() {
                let verified = directory.verify(user, password).await?;
                // `ADMIN` may find the directory's `admin`: never the htpasswd user's name.
                if self.users.get(&verified.identity.user).is_some() {
                    tracing::warn!(
                        user = verified.identity.user.as_str(),
                        "directory account has the name of an htpasswd user; login refused"
                    );
                    return Err(Error::InvalidCredentials);
                }
                return Ok(verified);
            }
        }
        let fp = self.cache.fingerprint(user, password.expose());
        let from_cache = self.cache.is_fresh(&fp);
        if !from_cache {
            let in_flight = self.cache.join(fp);
            let verified = in_flight
                .get_or_try_init(|| self.check(user, password))
                .await
                .copied();
            drop(in_flight); // Also dropped, and the cell forgotten, if this future is.
            if !verified? {
                return Err(Error::InvalidCredentials);
            }
            self.cache.insert(fp);
        }
        Ok(Verified {
            identity: Identity {
                user: user.to_owned(),
                groups: Vec::new(),
            },
            from_cache,
        })
    }

    /// One hash verification on the blocking pool, at most
    /// [`verify_concurrency`](Self::verify_concurrency) at a time.
    async fn check(&self, user: &str, password: &Password) -> Result<bool, Error> {
        let permit = self
            .verifiers
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        if let Some(checks) = &self.checks {
            checks.inc();
        }
        let users = self.users.clone();
        let name = user.to_owned();
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            users.verify(&name, password.expose())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
