//! The authorize phase: the rights a request needs ([`access`]) against what the
//! policy grants the identity ([`Policy`], the same answer the token endpoint and
//! `acl explain` get).
//!
//! With no `[authz]` rules, the policy lets an authenticated user do everything:
//! any `/v2/` request goes on, registry API or not. An anonymous client then holds
//! nothing and gets 401. Under rules:
//! - `/v2/` is open to every authenticated user (clients ping it to log in);
//! - a path the registry API does not define is denied;
//! - a repository request needs every action the registry itself would record
//!   (push needs pull too), and `?from=REPO` (cross-repository mount) also needs
//!   pull on REPO;
//! - a body the registry would read as a form is refused on repository routes,
//!   since Go's `FormValue` would take `from`/`mount` from it unseen;
//! - an anonymous client that is refused gets 401 with the challenge, not 403, so
//!   a client holding credentials sends them.

use http::{HeaderMap, Method};

use super::Error;
use crate::auth::Identity;
use crate::authz::access::{self, Access, Action, Target};
use crate::authz::policy::Policy;
use crate::authz::rules::{Request, Rights};

/// Checks the request against the policy, as [`Policy::decide`] answers.
pub fn check(
    policy: &Policy<'_>,
    who: Option<&Identity>,
    access: &Result<Access, access::Error>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), Error> {
    if policy.unrestricted(who) {
        return Ok(());
    }
    let refuse = |what: String| match who {
        Some(_) => Error::Denied(what),
        // No rule could let this client in without credentials: ask for them.
        None if !policy.admits_anonymous() => Error::Unauthorized("no credentials"),
        None => Error::Unauthorized("anonymous access denied"),
    };
    let access = match access {
        Ok(a) => a,
        Err(e) => return Err(refuse(format!("not a registry API request: {e}"))),
    };
    let decide = |resource, asked| policy.decide(who, resource, asked);
    match (&access.target, &access.repository) {
        (Target::Base, _) if who.is_some() => Ok(()),
        (Target::Base, _) => Err(refuse("the API base".to_string())),
        (Target::Catalog, _) if decide(Request::Catalog, Rights::CATALOG).allowed() => Ok(()),
        (Target::Catalog, _) => Err(refuse("catalog".to_string())),
        (_, None) => Err(refuse("no repository".to_string())),
        (_, Some(repository)) => {
            if access::reads_form_body(method, headers) {
                return Err(refuse(format!(
                    "a form body on {repository} (the registry would read parameters from it)"
                )));
            }
            let asked = Rights::of(&access.actions);
            let granted = decide(Request::Repository(repository), asked).granted;
            if let Some(action) = access.actions.iter().find(|a| !granted.allows(**a)) {
                return Err(refuse(format!("{action} on {repository}")));
            }
            if let Some(from) = &access.mount_from {
                let pull = Rights::of(&[Action::Pull]);
                if !decide(Request::Repository(from), pull).allowed() {
                    return Err(refuse(format!("pull on {from} (mount source)")));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::rules::Rules;
    use crate::config::{AuthzConfig, RuleConfig};

    fn rules() -> Rules {
        let rule = |account: &str, name: Option<&str>, actions: &[&str]| RuleConfig {
            account: Some(account.into()),
            name: name.map(Into::into),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            ..RuleConfig::default()
        };
        let config = AuthzConfig {
            rules: vec![
                rule("alice", Some("team-a/**"), &["pull", "push"]),
                rule("alice", Some("shared/*"), &["pull"]),
                rule("anonymous", Some("public/*"), &["pull"]),
            ],
            ..AuthzConfig::default()
        };
        Rules::compile(&config).expect("valid").expect("rules set")
    }

    /// Who, method, path, query, headers, and the refusal's status (None: allowed).
    type Case<'a> = (
        Option<Identity>,
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a HeaderMap,
        Option<u16>,
    );

    fn alice() -> Identity {
        Identity {
            user: "alice".into(),
            groups: vec![],
        }
    }

    #[test]
    fn requests_against_rules() {
        let rules = rules();
        let form = {
            let mut h = HeaderMap::new();
            h.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            h
        };
        let none = HeaderMap::new();
        let cases: &[Case<'_>] = &[
            (Some(alice()), "GET", "/v2/", None, &none, None),
            (
                Some(alice()),
                "PUT",
                "/v2/team-a/x/manifests/v1",
                None,
                &none,
                None,
            ),
            (
                Some(alice()),
                "DELETE",
                "/v2/team-a/x/manifests/v1",
                None,
                &none,
                Some(403),
            ),
            (
                Some(alice()),
                "PUT",
                "/v2/shared/x/manifests/v1",
                None,
                &none,
                Some(403),
            ),
            (
                Some(alice()),
                "GET",
                "/v2/shared/x/manifests/v1",
                None,
                &none,
                None,
            ),
            // Mount: pull on the source is needed as well.
            (
                Some(alice()),
                "POST",
                "/v2/team-a/x/blobs/uploads/",
                Some("mount=sha256:ab&from=shared/y"),
                &none,
                None,
            ),
            (
                Some(alice()),
                "POST",
                "/v2/team-a/x/blobs/uploads/",
                Some("mount=sha256:ab&from=secret/y"),
                &none,
                Some(403),
            ),
            // A form body could carry `from` unseen.
            (
                Some(alice()),
                "POST",
                "/v2/team-a/x/blobs/uploads/",
                None,
                &form,
                Some(403),
            ),
            (
                Some(alice()),
                "GET",
                "/v2/team-a/x/bogus",
                None,
                &none,
                Some(403),
            ),
            (Some(alice()), "GET", "/v2/_catalog", None, &none, Some(403)),
            // Anonymous refusals are 401, so that clients send their credentials.
            (
                None,
                "GET",
                "/v2/public/base/manifests/v1",
                None,
                &none,
                None,
            ),
            (
                None,
                "HEAD",
                "/v2/public/base/manifests/v1",
                None,
                &none,
                None,
            ),
            (
                None,
                "GET",
                "/v2/team-a/x/manifests/v1",
                None,
                &none,
                Some(401),
            ),
            // Anonymous clients only read repositories: no writes even where a
            // rule opens the repository, and `/v2/` always challenges.
            (
                None,
                "PUT",
                "/v2/public/base/manifests/v1",
                None,
                &none,
                Some(401),
            ),
            (None, "GET", "/v2/", None, &none, Some(401)),
            (None, "GET", "/v2/_catalog", None, &none, Some(401)),
            (None, "GET", "/v2/public/base/bogus", None, &none, Some(401)),
        ];
        let policy = Policy::new(Some(&rules));
        for (who, method, path, query, headers, want) in cases {
            let method: Method = method.parse().expect("method");
            let access = access::classify(&method, path, *query);
            let got = check(&policy, who.as_ref(), &access, &method, headers)
                .err()
                .map(|e| e.status().as_u16());
            assert_eq!(got, *want, "{method} {path} {query:?} as {who:?}");
        }
    }

    /// With no `[authz]` rules, an authenticated user's every `/v2/` request goes
    /// on (the registry API's or not, form body or not), and an anonymous client's
    /// every request is challenged.
    #[test]
    fn without_rules_authenticated_users_do_everything_and_anonymous_nothing() {
        let form = {
            let mut h = HeaderMap::new();
            h.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            h
        };
        let none = HeaderMap::new();
        let requests: &[(&str, &str, &HeaderMap)] = &[
            ("GET", "/v2/", &none),
            ("GET", "/v2/_catalog", &none),
            ("GET", "/v2/team-a/x/manifests/v1", &none),
            ("DELETE", "/v2/team-a/x/manifests/v1", &none),
            ("POST", "/v2/team-a/x/blobs/uploads/", &form),
            ("GET", "/v2/team-a/x/bogus", &none),
            ("GET", "/v2/a%2Fb/tags/list", &none),
        ];
        let policy = Policy::new(None);
        for (method, path, headers) in requests {
            let method: Method = method.parse().expect("method");
            let access = access::classify(&method, path, None);
            let alice = check(&policy, Some(&alice()), &access, &method, headers);
            assert!(alice.is_ok(), "{method} {path} as alice: {alice:?}");
            let anonymous = check(&policy, None, &access, &method, headers)
                .err()
                .map(|e| e.to_string());
            assert_eq!(
                anonymous.as_deref(),
                Some("unauthorized: no credentials"),
                "{method} {path} as anonymous"
            );
        }
    }
}
