//! The identity core: (user, password) → [`Identity`].
//!
//! Knows nothing of HTTP. The gate's request path (and, later, the token endpoint)
//! hands it plain strings and gets an identity or a reason back. Backends live in
//! their own files: [`htpasswd`] reads the file format, [`hash`] verifies every
//! hash scheme users bring.
//!
//! Hash verification costs milliseconds (bcrypt) and never runs on the async
//! reactor threads: it goes to tokio's blocking pool, at most
//! [`Authenticator::verify_concurrency`] at a time, so a storm of wrong passwords
//! queues behind that limit instead of stalling every connection.

pub mod hash;
pub mod htpasswd;

use std::fmt;
use std::sync::Arc;

use tokio::sync::Semaphore;

use self::htpasswd::Htpasswd;

/// Who a request is, once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user name, exactly as in the user database.
    pub user: String,
    /// The groups the user belongs to (empty until a group source is configured).
    pub groups: Vec<String>,
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

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Why credentials were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown user or wrong password (deliberately not told apart).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The verification task failed (a bug, never the client's fault).
    #[error("password verification failed: {0}")]
    Internal(String),
}

/// Verifies credentials against the user database.
#[derive(Clone, Debug)]
pub struct Authenticator {
    users: Arc<Htpasswd>,
    verifiers: Arc<Semaphore>,
}

impl Authenticator {
    /// Builds an authenticator over a loaded htpasswd file.
    pub fn new(users: Htpasswd) -> Self {
        Authenticator {
            users: Arc::new(users),
            verifiers: Arc::new(Semaphore::new(Self::verify_concurrency())),
        }
    }

    /// How many hash verifications run at once: one per core.
    pub fn verify_concurrency() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }

    /// How many users the database holds.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Checks a user name and password. An unknown user costs the same as a known
    /// one: the password is checked against a dummy bcrypt hash.
    pub async fn verify(&self, user: &str, password: &Password) -> Result<Identity, Error> {
        let permit = self
            .verifiers
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let users = self.users.clone();
        let name = user.to_owned();
        let password = password.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            users.verify(&name, password.expose())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        if ok {
            Ok(Identity {
                user: user.to_owned(),
                groups: Vec::new(),
            })
        } else {
            Err(Error::InvalidCredentials)
        }
    }
}
