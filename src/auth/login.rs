//! One login flow for every front door: the gate's `/v2/` requests and the token
//! endpoint both turn what a client presented into an [`Identity`] here, or into a
//! [`LoginError`] that the HTTP layer maps to a status in one place.
//!
//! A login is: the throttle (for secrets that can be guessed), the verification,
//! the user's groups from every source (the directory's, then the group file's and
//! the config's, merged), and the login metrics. Knows nothing of HTTP: callers
//! hand it plain strings.
//!
//! One method per credential kind, not one method taking an enum of credentials:
//! the kinds differ in what they need (only a guessable secret needs the client
//! address, for the throttle) and in how they run (a certificate is already proven
//! by the TLS handshake, so its login is synchronous), and a method each keeps
//! every signature exact. A new kind is one more method: a robot secret is
//! [`password`](Login::password)'s throttled check against its own store, an OIDC
//! token is [`refresh`](Login::refresh)'s "verified elsewhere, is the subject
//! still a user" plus [`with_groups`](Login::with_groups).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::groups::Groups;
use super::{Authenticator, Credentials, Error, Identity, Verified};
use crate::auth::throttle::Throttle;
use crate::metrics::{AuthResult, Metrics};

/// Why a login did not give an identity.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong secret (deliberately not told apart).
    #[error("invalid credentials")]
    Invalid,
    /// Too many failed logins from this client (or checks under way): retry after
    /// this long. No secret was checked.
    #[error("throttled after too many failed logins")]
    Throttled(Duration),
    /// The user a token names is no longer in any user database.
    #[error("the user no longer exists")]
    UnknownUser,
    /// The directory cannot be asked now; the client should retry later.
    #[error("directory unavailable: {reason}")]
    Unavailable {
        /// What went wrong (logged, not shown to clients).
        reason: String,
        /// How long clients are told to wait.
        retry_after: Duration,
    },
    /// The backend failed otherwise (a directory configuration error, a bug).
    #[error(transparent)]
    Backend(Error),
}

impl From<Error> for LoginError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidCredentials => LoginError::Invalid,
            Error::Unavailable {
                reason,
                retry_after,
            } => LoginError::Unavailable {
                reason,
                retry_after,
            },
            e => LoginError::Backend(e),
        }
    }
}

/// The login flow over one snapshot of the user databases, groups and throttle.
#[derive(Clone, Copy, Debug)]
pub struct Login<'a> {
    authenticator: &'a Authenticator,
    throttle: &'a Throttle,
    groups: &'a Groups,
    metrics: &'a Arc<Metrics>,
}

impl<'a> Login<'a> {
    /// A login over these parts (the current `State`'s).
    pub fn new(
        authenticator: &'a Authenticator,
        throttle: &'a Throttle,
        groups: &'a Groups,
        metrics: &'a Arc<Metrics>,
    ) -> Self {
        Login {
            authenticator,
            throttle,
            groups,
            metrics,
        }
    }

    /// A user name and password (Basic, or the token endpoint's password grant) from
    /// `client`.
    ///
    /// Credentials that are a fresh login-cache hit pass without the throttle: they
    /// were proven, so a blocked address (a NAT full of honest users and one guesser)
    /// keeps its logged-in users. Any other attempt joins the same credentials'
    /// attempt from the same address, or first takes a throttle reservation, counted
    /// as a failure until it resolves, and is verified in a detached task whose
    /// outcome updates the throttle and the metrics even when the client goes away
    /// before the answer. So the cap on checks in flight per address counts distinct
    /// credentials, not requests: a first push's parallel uploads share one check.
    pub async fn password(
        &self,
        client: IpAddr,
        credentials: &Credentials,
    ) -> Result<Identity, LoginError> {
        let (user, password) = (&credentials.user, &credentials.password);
        if self.authenticator.is_cached(user, password) {
            let result = self.authenticator.verify(user, password).await;
            count(self.metrics, &result);
            if let Ok(verified) = &result {
                self.throttle
                    .record_success(client, &verified.identity.user);
            }
            return self.answer(result);
        }
        let throttle = self.throttle.clone();
        let metrics = self.metrics.clone();
        let attempt = self.authenticator.attempt(
            client,
            user,
            password,
            || throttle.reserve(client, user),
            move |reservation, result| {
                count(&metrics, result);
                match result {
                    Ok(_) => reservation.succeed(),
                    Err(Error::InvalidCredentials) => reservation.fail(),
                    Err(_) => reservation.release(),
                }
            },
        );
        let attempt = match attempt {
            Ok(attempt) => attempt,
            Err(refusal) => {
                self.metrics.throttled();
                return Err(LoginError::Throttled(refusal.retry_after()));
            }
        };
        let joined = attempt.joined;
        let result = attempt.outcome().await;
        if joined {
            count(self.metrics, &result);
        }
        self.answer(result)
    }

    /// The user a verified client certificate names: a login like a password one
    /// (same metrics, groups and rules), without a throttle check, since there is
    /// no secret to guess.
    pub fn certificate(&self, user: &str) -> Identity {
        self.metrics.auth(AuthResult::success);
        self.with_groups(Identity {
            user: user.to_owned(),
            groups: Vec::new(),
        })
    }

    /// The user a token the gate signed names (a refresh grant, or the bearer of an
    /// access token), its signature already checked by the caller: still a user,
    /// with today's groups, or [`LoginError::UnknownUser`]. No password, so no
    /// throttle and no login metric.
    pub async fn refresh(&self, user: &str) -> Result<Identity, LoginError> {
        match self.authenticator.current_groups(user).await? {
            Some(groups) => Ok(self.with_groups(Identity {
                user: user.to_owned(),
                groups,
            })),
            None => Err(LoginError::UnknownUser),
        }
    }

    /// `identity` with the groups of the group file and config added to those its
    /// backend gave (the directory's), sorted and without repeats.
    pub fn with_groups(&self, mut identity: Identity) -> Identity {
        identity.groups.extend(self.groups.of(&identity.user));
        identity.groups.sort();
        identity.groups.dedup();
        identity
    }

    /// A verification's result as an identity with all its groups, or the error.
    fn answer(&self, result: Result<Verified, Error>) -> Result<Identity, LoginError> {
        Ok(self.with_groups(result?.identity))
    }
}

/// Counts a password check's result in `registry_gate_auth_total`.
fn count(metrics: &Metrics, result: &Result<Verified, Error>) {
    match result {
        Ok(verified) if verified.from_cache => metrics.auth(AuthResult::cache_hit),
        Ok(_) => metrics.auth(AuthResult::success),
        Err(Error::InvalidCredentials) => metrics.auth(AuthResult::failure),
        Err(Error::Unavailable { .. }) => metrics.auth(AuthResult::unavailable),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests;
