//! Reload's rule for a part of the configuration that cannot be built: that part
//! keeps its running value and everything else is swapped in.
//!
//! A reload used to be all or nothing, so a broken certificate, rules file or token
//! key also kept every removed user active. Now each part of [`State`](super::State)
//! (the TLS configuration, the upstream client, the directory, the token keys, the
//! rules, an htpasswd or group file that cannot be read at all) falls back on its
//! own, with its error recorded under the config key it comes from. The user
//! sources that can be read always apply. At start there is no running value: any
//! failure is an error.

use super::Error;
use crate::tls;

/// A part of the new state that could not be built on reload, so the running value
/// stayed.
#[derive(Debug)]
pub struct KeptPart {
    /// The config key the part comes from, such as `tls.cert` or `authz.rules_file`.
    pub key: &'static str,
    /// Why it could not be built.
    pub error: Error,
}

/// Builds the parts of one state: on error, the running value of `previous` (when
/// there is one) stands in, and the error is recorded.
#[derive(Debug)]
pub(super) struct Fallback<'a, P> {
    previous: Option<&'a P>,
    kept: Vec<KeptPart>,
}

impl<'a, P> Fallback<'a, P> {
    /// For a build with (reload) or without (start) a running value to fall back on.
    pub(super) fn new(previous: Option<&'a P>) -> Self {
        Fallback {
            previous,
            kept: Vec::new(),
        }
    }

    /// `built`, or when it failed, `running` taken from the previous value (the
    /// error is recorded); without a previous value, the error.
    pub(super) fn part<T>(
        &mut self,
        built: Result<T, Error>,
        running: impl FnOnce(&P) -> T,
    ) -> Result<T, Error> {
        match (built, self.previous) {
            (Ok(value), _) => Ok(value),
            (Err(error), Some(previous)) => {
                self.kept.push(KeptPart {
                    key: error.key(),
                    error,
                });
                Ok(running(previous))
            }
            (Err(error), None) => Err(error),
        }
    }

    /// The parts that kept their running value, in build order.
    pub(super) fn into_kept(self) -> Vec<KeptPart> {
        self.kept
    }
}

impl Error {
    /// The config key whose value caused the error.
    pub fn key(&self) -> &'static str {
        match self {
            Error::Tls(e) => match e {
                tls::Error::Cert { .. } => "tls.cert",
                tls::Error::Key { .. } => "tls.key",
                tls::Error::Pair { .. } => "tls.cert/tls.key",
                tls::Error::Ocsp { .. } => "tls.ocsp",
                tls::Error::ClientCa { .. } => "tls.client_ca",
                _ => "tls",
            },
            Error::Upstream(_) => "upstream.ca",
            Error::Htpasswd(_) => "auth.htpasswd",
            Error::Groups(_) => "auth.groups",
            Error::Robots { .. } => "auth.robots",
            Error::Oidc { .. } => "oidc",
            Error::Rules(_) => "authz.rules",
            Error::EmptyRulesFile(_) | Error::RulesFile(_) => "authz.rules_file",
            Error::BindPassword { .. } => "ldap.bind_password_file",
            Error::Token(_) => "token",
            Error::Ldap(_) => "ldap",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn cert_error() -> Error {
        Error::Tls(tls::Error::Cert {
            path: PathBuf::from("server.crt"),
            reason: "no PEM certificate found".into(),
        })
    }

    /// A stand-in for the running state: two parts.
    struct Running {
        tls: &'static str,
        users: &'static str,
    }

    #[test]
    fn a_failed_part_keeps_its_running_value_and_the_others_are_new() {
        let running = Running {
            tls: "old cert",
            users: "alice bob",
        };
        let mut fallback = Fallback::new(Some(&running));
        let tls = fallback.part(Err(cert_error()), |r| r.tls);
        let users = fallback.part(Ok("alice"), |r| r.users);
        assert_eq!((tls.ok(), users.ok()), (Some("old cert"), Some("alice")));
        let kept = fallback.into_kept();
        let shown: Vec<_> = kept.iter().map(|k| (k.key, k.error.to_string())).collect();
        assert_eq!(
            shown,
            [(
                "tls.cert",
                "tls: certificate file server.crt: no PEM certificate found".to_string()
            )]
        );
    }

    #[test]
    fn without_a_running_value_a_failure_is_an_error() {
        let mut fallback = Fallback::<Running>::new(None);
        let got = fallback.part(Err(cert_error()), |r| r.tls);
        assert_eq!(got.map_err(|e| e.key()), Err("tls.cert"));
        assert!(fallback.into_kept().is_empty());
        let mut fallback = Fallback::<Running>::new(None);
        assert_eq!(fallback.part(Ok("new"), |r| r.tls).ok(), Some("new"));
    }

    #[test]
    fn keys_name_the_config_key() {
        let cases = [
            (
                Error::EmptyRulesFile(PathBuf::from("rules.toml")),
                "authz.rules_file",
            ),
            (
                Error::BindPassword {
                    path: PathBuf::from("pw"),
                    error: "empty".into(),
                },
                "ldap.bind_password_file",
            ),
            (
                Error::Tls(tls::Error::ClientCa {
                    path: PathBuf::from("ca.crt"),
                    reason: "no PEM certificate found".into(),
                }),
                "tls.client_ca",
            ),
        ];
        for (error, key) in cases {
            assert_eq!(error.key(), key, "{error}");
        }
    }
}
