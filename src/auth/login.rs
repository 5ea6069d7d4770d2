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
//! every signature exact.
//!
//! Robots (`robot$NAME`, [`super::robots`]) come in through the same door as
//! passwords, since clients send their secret as a Basic password: the name alone
//! routes the login to the robots file, never to htpasswd or the directory, and no
//! other kind of login can produce a `robot$` identity (a certificate naming one is
//! refused). A robot's secret is checked on every request (microseconds; no cache),
//! so expiry, revocation and the end of a rotation's grace period apply at once;
//! its identity has no groups, since its scope alone decides what it may do.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::groups::Groups;
use super::oidc;
use super::robots::{self, Refusal, Robots};
use super::{Authenticator, Credentials, Error, Identity, Verified};
use crate::auth::throttle::Throttle;
use crate::metrics::{AuthResult, MachineKind, MachineResult, Metrics};

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
    /// A machine credential that is known but may no longer log in (an expired
    /// robot, a rotated secret past its grace), or a credential that cannot name
    /// who it claims; the reason is logged, the client gets 401.
    #[error("{0}")]
    Refused(String),
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
    /// `None`: no robots file; every robot login is refused.
    robots: Option<&'a Robots>,
    /// The trusted OIDC issuers.
    oidc: &'a [oidc::Trusted],
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
            robots: None,
            oidc: &[],
        }
    }

    /// This login with the `[[oidc]]` issuers.
    pub fn with_oidc(self, oidc: &'a [oidc::Trusted]) -> Self {
        Login { oidc, ..self }
    }

    /// This login with the robot accounts of `auth.robots`.
    pub fn with_robots(self, robots: &'a Robots) -> Self {
        Login {
            robots: Some(robots),
            ..self
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
        if let Some(name) = robots::robot_name(user) {
            return self.robot(name, password.expose());
        }
        if self.oidc.iter().any(|t| t.issuer.username == *user) {
            let result = self.oidc_token(user, password.expose()).await;
            let counted = match &result {
                Ok(_) => MachineResult::success,
                Err(_) => MachineResult::failure,
            };
            self.metrics.machine_login(MachineKind::oidc, counted);
            self.metrics.auth(match counted {
                MachineResult::success => AuthResult::success,
                _ => AuthResult::failure,
            });
            return result;
        }
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
    pub fn certificate(&self, user: &str) -> Result<Identity, LoginError> {
        if robots::robot_name(user).is_some() {
            self.metrics.auth(AuthResult::failure);
            return Err(LoginError::Refused(format!(
                "a client certificate names {user:?}, but `{}` names are robots', which log in with their secret",
                robots::USER_PREFIX
            )));
        }
        self.metrics.auth(AuthResult::success);
        Ok(self.with_groups(Identity {
            user: user.to_owned(),
            groups: Vec::new(),
        }))
    }

    /// A CI job's OIDC token as the password of an issuer's `username`: verified
    /// against the issuer its `iss` names (among those with this user name), then
    /// mapped by that issuer's claim rules. Every refusal says why, never the token.
    async fn oidc_token(&self, user: &str, token: &[u8]) -> Result<Identity, LoginError> {
        let refused = |why: String| Err(LoginError::Refused(format!("oidc: {why}")));
        let Ok(token) = std::str::from_utf8(token) else {
            return refused("the password is not a token (not text)".into());
        };
        let Some(iss) = oidc::claimed_issuer(token) else {
            return refused("the password is not a JWT with an `iss` claim".into());
        };
        let Some(trusted) = self
            .oidc
            .iter()
            .find(|t| t.issuer.username == user && t.issuer.issuer == iss)
        else {
            return refused(format!(
                "token issuer {iss:?} is not an [[oidc]] issuer of user {user:?}"
            ));
        };
        let kid = oidc::kid(token).unwrap_or_default();
        let Some(keys) = trusted.keys.for_kid(&kid).await else {
            return refused(format!("issuer {iss}: its keys could not be fetched"));
        };
        let verified = match oidc::verify(&trusted.issuer, &keys, token, SystemTime::now()) {
            Ok(verified) => verified,
            Err(e) => return refused(format!("issuer {iss}: {e}")),
        };
        match oidc::identify(&trusted.issuer, &verified) {
            Ok(mapped) => Ok(self.with_groups(Identity {
                user: mapped.user,
                groups: mapped.groups,
            })),
            Err(e) => refused(format!("issuer {iss}: {e}")),
        }
    }

    /// A robot's secret, checked against the robots file now (see the module docs).
    fn robot(&self, name: &str, secret: &[u8]) -> Result<Identity, LoginError> {
        let found = match (self.robots, std::str::from_utf8(secret)) {
            (Some(robots), Ok(secret)) => robots.check(name, secret, SystemTime::now()),
            _ => Err(Refusal::Unknown),
        };
        let (result, answer) = match found {
            Ok(robot) => (MachineResult::success, Ok(robot_identity(robot))),
            Err(Refusal::Unknown | Refusal::Secret) => {
                (MachineResult::failure, Err(LoginError::Invalid))
            }
            Err(refusal) => (
                MachineResult::refused,
                Err(LoginError::Refused(format!("robot {name}: {refusal}"))),
            ),
        };
        self.metrics.machine_login(MachineKind::robot, result);
        self.metrics.auth(match result {
            MachineResult::success => AuthResult::success,
            _ => AuthResult::failure,
        });
        answer
    }

    /// The user a token the gate signed names (a refresh grant, or the bearer of an
    /// access token), its signature already checked by the caller: still a user,
    /// with today's groups, or [`LoginError::UnknownUser`]. No password, so no
    /// throttle and no login metric.
    pub async fn refresh(&self, user: &str) -> Result<Identity, LoginError> {
        if let Some(name) = robots::robot_name(user) {
            let robot = self.robots.and_then(|r| r.get(name));
            return match robot {
                Some(robot) => match robot.expires {
                    Some(at) if at <= SystemTime::now() => Err(LoginError::Refused(format!(
                        "robot {name}: expired at {}",
                        robots::rfc3339(at)
                    ))),
                    _ => Ok(robot_identity(robot)),
                },
                None => Err(LoginError::UnknownUser),
            };
        }
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

/// A robot's identity: its user name and no groups (its scope decides).
fn robot_identity(robot: &robots::Robot) -> Identity {
    Identity {
        user: robot.user(),
        groups: Vec::new(),
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
