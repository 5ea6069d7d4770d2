//! What a client asks the token endpoint for, from a GET query (token spec) or a
//! POST form (OAuth2, RFC 6749, as containerd and buildkit send it), before any
//! credential is checked. Malformed requests become [`OAuthError`]s (400).

use crate::auth::{Credentials, Password};

/// Largest POST form the endpoint reads. A real OAuth2 form (grant type, user name,
/// password, service, a few scopes, client id) is well under 4 KiB; a refresh token
/// of ours is under 1 KiB. 16 KiB leaves room for [`super::scope::MAX_SCOPE_LEN`]-long
/// scopes and long passwords, and keeps what an unauthenticated client can make the
/// gate hold per stream small (the body is read before any credential is checked).
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Longest `client_id` accepted, in bytes. Clients send short names (`docker`,
/// `containerd-client`, a CI robot's name).
pub const MAX_CLIENT_ID_LEN: usize = 200;

/// How the client proves who it is.
#[derive(Debug)]
pub enum Grant {
    /// Basic credentials (GET), or none: an anonymous client.
    Basic(Option<Credentials>),
    /// `grant_type=password` with `username` and `password` (POST).
    Password(Credentials),
    /// `grant_type=refresh_token` with the refresh token (POST).
    Refresh(String),
}

/// A token request.
#[derive(Debug)]
pub struct TokenRequest {
    /// Who the client says it is, and how it proves it.
    pub grant: Grant,
    /// The `service` asked for (must be ours when given).
    pub service: Option<String>,
    /// Every `scope` value, each possibly holding several space-separated scopes.
    pub scopes: Vec<String>,
    /// `account` (GET): must be the Basic user when both are given.
    pub account: Option<String>,
    /// `client_id`, for the audit line.
    pub client_id: Option<String>,
    /// `offline_token=true` (GET) or `access_type=offline` (POST): a refresh token is wanted.
    pub offline: bool,
    /// Whether it came as an OAuth2 POST (the answer then carries `scope`).
    pub oauth: bool,
}

/// An OAuth2 error answer (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// `invalid_request`, `unsupported_grant_type`, `invalid_scope`, `invalid_grant`.
    pub error: &'static str,
    /// Human-readable detail.
    pub description: String,
}

impl OAuthError {
    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError {
            error: "invalid_request",
            description: description.into(),
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

/// A GET request: its query string and the Basic credentials it carried, if any.
pub fn from_query(
    query: Option<&str>,
    basic: Option<Credentials>,
) -> Result<TokenRequest, OAuthError> {
    let mut request = TokenRequest {
        grant: Grant::Basic(basic),
        service: None,
        scopes: Vec::new(),
        account: None,
        client_id: None,
        offline: false,
        oauth: false,
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "service" => set_once(&mut request.service, "service", value.into_owned())?,
            "scope" => request.scopes.push(value.into_owned()),
            "account" => set_once(&mut request.account, "account", value.into_owned())?,
            "client_id" => set_once(&mut request.client_id, "client_id", client_id(&value)?)?,
            "offline_token" => request.offline = value == "true",
            _ => {} // unknown parameters are ignored (RFC 6749 §3.1)
        }
    }
    if let (Grant::Basic(Some(c)), Some(account)) = (&request.grant, &request.account) {
        if c.user != *account {
            return Err(OAuthError::invalid_request(
                "account does not match the authenticated user",
            ));
        }
    }
    Ok(request)
}

/// A POST form body (`application/x-www-form-urlencoded`).
pub fn from_form(body: &[u8]) -> Result<TokenRequest, OAuthError> {
    let mut grant_type = None;
    let mut username = None;
    let mut password = None;
    let mut refresh = None;
    let mut service = None;
    let mut scopes = Vec::new();
    let mut client_id = None;
    let mut access_type = None;
    for (key, value) in form_urlencoded::parse(body) {
        let value = value.into_owned();
        match key.as_ref() {
            "grant_type" => set_once(&mut grant_type, "grant_type", value)?,
            "username" => set_once(&mut username, "username", value)?,
            "password" => set_once(&mut password, "password", value)?,
            "refresh_token" => set_once(&mut refresh, "refresh_token", value)?,
            "service" => set_once(&mut service, "service", value)?,
            "scope" => scopes.push(value),
            "client_id" => set_once(&mut client_id, "client_id", self::client_id(&value)?)?,
            "access_type" => set_once(&mut access_type, "access_type", value)?,
            _ => {}
        }
    }
    let grant = match grant_type.as_deref() {
        Some("password") => match (username, password) {
            (Some(user), Some(password)) if !user.is_empty() => Grant::Password(Credentials {
                user,
                password: Password::new(password.into_bytes()),
            }),
            _ => {
                return Err(OAuthError::invalid_request(
                    "grant_type=password needs username and password",
                ))
            }
        },
        Some("refresh_token") => match refresh {
            Some(token) if !token.is_empty() => Grant::Refresh(token),
            _ => {
                return Err(OAuthError::invalid_request(
                    "grant_type=refresh_token needs refresh_token",
                ))
            }
        },
        Some(other) => {
            return Err(OAuthError {
                error: "unsupported_grant_type",
                description: format!(
                    "grant_type {other:?} is not supported (password, refresh_token)"
                ),
            })
        }
        None => return Err(OAuthError::invalid_request("grant_type is missing")),
    };
    let offline = access_type.as_deref() == Some("offline");
    Ok(TokenRequest {
        grant,
        service,
        scopes,
        account: None,
        client_id,
        offline,
        oauth: true,
    })
}

/// A `client_id` as it may go into the log: at most [`MAX_CLIENT_ID_LEN`] bytes of
/// printable ASCII, spaces included (RFC 6749 §A.1 allows `%x20-7E`). Anything else
/// (a newline or an escape sequence forging log lines, say) is refused.
fn client_id(value: &str) -> Result<String, OAuthError> {
    if value.len() > MAX_CLIENT_ID_LEN {
        return Err(OAuthError::invalid_request(format!(
            "client_id is longer than {MAX_CLIENT_ID_LEN} bytes"
        )));
    }
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(OAuthError::invalid_request(
            "client_id must be printable ASCII",
        ));
    }
    Ok(value.to_owned())
}

fn set_once(slot: &mut Option<String>, name: &str, value: String) -> Result<(), OAuthError> {
    if slot.is_some() {
        return Err(OAuthError::invalid_request(format!("{name} given twice")));
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: Password::new(b"pw".to_vec()),
        }
    }

    #[test]
    fn get_collects_every_scope_and_checks_the_account() {
        let r = from_query(
            Some("service=reg&scope=repository:a/b:pull&scope=repository:c:push%20registry:catalog:*&account=alice&client_id=docker&offline_token=true"),
            Some(creds("alice")),
        )
        .expect("valid");
        assert_eq!(r.service.as_deref(), Some("reg"));
        assert_eq!(
            r.scopes,
            [
                "repository:a/b:pull",
                "repository:c:push registry:catalog:*"
            ]
        );
        assert!(r.offline && !r.oauth);
        assert_eq!(r.client_id.as_deref(), Some("docker"));
        let err = from_query(Some("account=bob"), Some(creds("alice"))).expect_err("mismatch");
        assert_eq!(err.error, "invalid_request");
        assert!(from_query(Some("service=a&service=b"), None).is_err());
        let anonymous = from_query(None, None).expect("anonymous");
        assert!(matches!(anonymous.grant, Grant::Basic(None)));
    }

    #[test]
    fn client_ids_that_could_forge_log_lines_are_refused() {
        let forged = "docker%0A2026-12-07T04:00:00Z%20%20INFO%20access:%20user=%22admin%22%1b[2K";
        let long = "x".repeat(MAX_CLIENT_ID_LEN + 1);
        for bad in [forged, "a%0Db", "%C3%A9", "tab%09", long.as_str()] {
            let err = from_query(Some(&format!("client_id={bad}")), None).expect_err("refused");
            assert_eq!(err.error, "invalid_request", "{bad}");
            let form = format!("grant_type=refresh_token&refresh_token=t&client_id={bad}");
            let err = from_form(form.as_bytes()).expect_err("refused");
            assert_eq!(err.error, "invalid_request", "{bad}");
        }
        let ok = "x".repeat(MAX_CLIENT_ID_LEN);
        for good in [
            "docker",
            "containerd-client",
            "CI%20robot%20%237",
            ok.as_str(),
        ] {
            let r = from_query(Some(&format!("client_id={good}")), None).expect(good);
            assert!(r.client_id.is_some(), "{good}");
        }
    }

    #[test]
    fn post_forms_carry_password_and_refresh_grants() {
        let r = from_form(b"grant_type=password&username=alice&password=p%26w&service=reg&client_id=containerd&access_type=offline&scope=repository%3Aa%3Apull")
            .expect("valid");
        match &r.grant {
            Grant::Password(c) => {
                assert_eq!(c.user, "alice");
                assert_eq!(c.password.expose(), b"p&w");
            }
            other => panic!("{other:?}"),
        }
        assert!(r.offline && r.oauth);
        let r =
            from_form(b"grant_type=refresh_token&refresh_token=abc&service=reg").expect("valid");
        assert!(matches!(r.grant, Grant::Refresh(ref t) if t == "abc"));
        for (body, error) in [
            (&b"username=a&password=b"[..], "invalid_request"),
            (b"grant_type=password&username=a", "invalid_request"),
            (b"grant_type=refresh_token", "invalid_request"),
            (
                b"grant_type=authorization_code&code=x",
                "unsupported_grant_type",
            ),
            (
                b"grant_type=password&grant_type=password&username=a&password=b",
                "invalid_request",
            ),
        ] {
            assert_eq!(
                from_form(body).expect_err("refused").error,
                error,
                "{body:?}"
            );
        }
    }
}
