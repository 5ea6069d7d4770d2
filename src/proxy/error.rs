//! The request path's one error type, and the one function that turns it into a
//! response.
//!
//! Every error says whose fault it is ([`Source`]); the status follows from it:
//! client → 4xx, upstream → 502 (504 on timeout), internal → 500. The client gets a
//! terse registry-style JSON body, never HTML (the token endpoint's refusals: an
//! OAuth2 one); the log gets the whole chain.

use bytes::Bytes;
use std::time::Duration;

use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::Full;

use super::body::BoxError;
use super::{token, upstream};
use crate::auth::login::LoginError;
use crate::proxy::{basic, route};
use crate::token::request::OAuthError;

/// Whose fault an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The client sent something the gate refuses.
    Client,
    /// The registry failed or did not answer.
    Upstream,
    /// A bug or resource failure in the gate.
    Internal,
}

/// Everything that stops a request before the registry's answer reaches the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path the gate cannot check safely.
    #[error("refused path: {0}")]
    BadPath(#[from] route::Error),
    /// A path outside `/v2/`.
    #[error("not found")]
    NotFound,
    /// A pre-1.6 docker client.
    #[error("blocked user agent")]
    BlockedUserAgent,
    /// No, malformed or wrong credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// A credential that is known but may not log in now (an expired robot), or
    /// that cannot name who it claims; the reason is for the log.
    #[error("unauthorized: {0}")]
    LoginRefused(String),
    /// Ambiguous `Authorization`.
    #[error("bad authorization: {0}")]
    BadAuthorization(basic::Error),
    /// No usable `Host`.
    #[error("bad host: {0}")]
    BadHost(&'static str),
    /// Too many failed logins: try again after this long.
    #[error("throttled after too many failed logins")]
    Throttled(Duration),
    /// The body is over `limits.max_body_size`.
    #[error("request body too large")]
    BodyTooLarge,
    /// The client sent no body bytes for `listen.body_timeout`.
    #[error("request body stalled")]
    BodyTimeout,
    /// The client's connection broke while its body was streaming.
    #[error("client aborted the request body")]
    ClientAborted(#[source] BoxError),
    /// The rules do not grant what the request needs (the text says what was asked).
    #[error("denied: {0}")]
    Denied(String),
    /// The sign-in directory cannot be asked now; retry after this long.
    #[error("sign-in directory unavailable: {1}")]
    DirectoryUnavailable(Duration, String),
    /// The registry could not be reached.
    #[error("registry unreachable")]
    UpstreamConnect(#[source] BoxError),
    /// The registry did not answer within `upstream.read_timeout`.
    #[error("registry did not answer in time")]
    UpstreamTimeout,
    /// The registry broke the exchange.
    #[error("registry failed")]
    Upstream(#[source] BoxError),
    /// The gate failed.
    #[error("internal error")]
    Internal(#[source] BoxError),
    /// The token endpoint refuses the request with an OAuth2 error (RFC 6749 §5.2):
    /// its JSON body, not the registry's.
    #[error("oauth {refusal}")]
    OAuth {
        /// 400, or 405 for a method other than GET and POST.
        status: StatusCode,
        /// The OAuth2 error code and description the client gets.
        refusal: OAuthError,
    },
}

impl Error {
    /// Whose fault it is.
    pub fn source_kind(&self) -> Source {
        match self {
            Error::UpstreamConnect(_)
            | Error::UpstreamTimeout
            | Error::Upstream(_)
            | Error::DirectoryUnavailable(..) => Source::Upstream,
            Error::Internal(_) => Source::Internal,
            _ => Source::Client,
        }
    }

    /// Whether the registry itself failed (502 or 504), so that the log line names
    /// it; the sign-in directory's failures name theirs.
    pub fn is_registry_failure(&self) -> bool {
        matches!(
            self,
            Error::UpstreamConnect(_) | Error::UpstreamTimeout | Error::Upstream(_)
        )
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadPath(_) | Error::BadAuthorization(_) | Error::BadHost(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::ClientAborted(_) => StatusCode::BAD_REQUEST,
            Error::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::NotFound | Error::BlockedUserAgent => StatusCode::NOT_FOUND,
            Error::Unauthorized(_) | Error::LoginRefused(_) => StatusCode::UNAUTHORIZED,
            Error::Denied(_) => StatusCode::FORBIDDEN,
            Error::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Error::UpstreamConnect(_) | Error::Upstream(_) => StatusCode::BAD_GATEWAY,
            Error::DirectoryUnavailable(..) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::OAuth { status, .. } => *status,
        }
    }

    /// The registry error code and message for the JSON body.
    fn code_and_message(&self) -> (&'static str, &'static str) {
        match self {
            Error::BadPath(_) => (
                "UNSUPPORTED",
                "path with dot-segments or encoded separators",
            ),
            Error::NotFound => ("UNSUPPORTED", "not found"),
            Error::BlockedUserAgent => ("UNSUPPORTED", "client version not supported"),
            Error::Unauthorized(_) | Error::LoginRefused(_) => {
                ("UNAUTHORIZED", "authentication required")
            }
            Error::BadAuthorization(_) => ("UNAUTHORIZED", "malformed authorization"),
            Error::Denied(_) => ("DENIED", "requested access to the resource is denied"),
            Error::BadHost(_) => ("UNSUPPORTED", "missing or ambiguous host"),
            Error::BodyTooLarge => ("SIZE_INVALID", "request body too large"),
            Error::Throttled(_) => ("TOOMANYREQUESTS", "too many failed logins"),
            Error::ClientAborted(_) => ("UNKNOWN", "request body incomplete"),
            Error::BodyTimeout => ("UNKNOWN", "request body timed out"),
            Error::UpstreamConnect(_) | Error::Upstream(_) => {
                ("UNAVAILABLE", "registry unavailable")
            }
            Error::UpstreamTimeout => ("UNAVAILABLE", "registry timed out"),
            Error::DirectoryUnavailable(..) => {
                ("UNAVAILABLE", "sign-in directory unavailable; retry later")
            }
            Error::Internal(_) => ("UNKNOWN", "internal error"),
            // Answered with its OAuth2 body by `to_response`; never a registry body.
            Error::OAuth { .. } => ("UNSUPPORTED", "token request refused"),
        }
    }

    /// The response for this error; `challenge` is the `WWW-Authenticate` value.
    pub fn to_response(&self, challenge: &HeaderValue) -> Response<Full<Bytes>> {
        if let Error::OAuth { status, refusal } = self {
            let body = serde_json::json!({
                "error": refusal.error,
                "error_description": refusal.description,
            });
            return token::json_response(*status, body.to_string().into_bytes());
        }
        let (code, message) = self.code_and_message();
        let body =
            format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#);
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            CONTENT_LENGTH,
            HeaderValue::from(response_len(code, message)),
        );
        if self.status() == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, challenge.clone());
        }
        if let Error::Throttled(left) | Error::DirectoryUnavailable(left, _) = self {
            // Whole seconds, rounded up, at least 1 (RFC 9110 §10.2.3).
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// An unusable `Authorization: Basic`: a malformed one is a failed login (401, so
/// the client asks for credentials again), two of them are ambiguous (400).
impl From<basic::Error> for Error {
    fn from(e: basic::Error) -> Self {
        match e {
            basic::Error::Malformed => Error::Unauthorized("malformed credentials"),
            basic::Error::Duplicate => Error::BadAuthorization(e),
        }
    }
}

/// A malformed token request: OAuth2's 400 (RFC 6749 §5.2).
impl From<OAuthError> for Error {
    fn from(refusal: OAuthError) -> Self {
        Error::OAuth {
            status: StatusCode::BAD_REQUEST,
            refusal,
        }
    }
}

/// A failed request of the gate's own to the registry (a catalog page): the same
/// statuses as a forwarded request's failures (504 on timeout, else 502).
impl From<upstream::Error> for Error {
    fn from(e: upstream::Error) -> Self {
        match e {
            upstream::Error::Timeout(_) => Error::UpstreamTimeout,
            upstream::Error::Connect(e) => Error::UpstreamConnect(Box::new(e)),
            upstream::Error::Http(e) => Error::Upstream(Box::new(e)),
            e @ (upstream::Error::Body(_) | upstream::Error::TooLarge(_)) => {
                Error::Upstream(Box::new(e))
            }
            e @ upstream::Error::Request(_) => Error::Internal(Box::new(e)),
        }
    }
}

/// A refused login, for the proxy and the token endpoint alike. An unreachable
/// directory is a 503 with `Retry-After`, never a 401 that would make clients ask
/// for a new password.
impl From<LoginError> for Error {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Invalid => Error::Unauthorized("invalid credentials"),
            LoginError::Throttled(retry_after) => Error::Throttled(retry_after),
            LoginError::UnknownUser => Error::Unauthorized("the token's user no longer exists"),
            LoginError::Unavailable {
                reason,
                retry_after,
            } => Error::DirectoryUnavailable(retry_after, reason),
            LoginError::Refused(reason) => Error::LoginRefused(reason),
            LoginError::Backend(e) => Error::Internal(Box::new(e)),
        }
    }
}

fn response_len(code: &str, message: &str) -> usize {
    r#"{"errors":[{"code":"","message":"","detail":null}]}"#.len() + code.len() + message.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn login_and_basic_refusals_map_once_for_both_front_doors() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (
                LoginError::Invalid.into(),
                401,
                "unauthorized: invalid credentials",
            ),
            (
                LoginError::UnknownUser.into(),
                401,
                "unauthorized: the token's user no longer exists",
            ),
            (
                LoginError::Throttled(Duration::from_secs(3)).into(),
                429,
                "throttled after too many failed logins",
            ),
            (
                LoginError::Unavailable {
                    reason: "connection refused".into(),
                    retry_after: Duration::from_secs(7),
                }
                .into(),
                503,
                "sign-in directory unavailable: connection refused",
            ),
            (
                LoginError::Backend(crate::auth::Error::Directory("bad base".into())).into(),
                500,
                "internal error",
            ),
            (
                basic::Error::Malformed.into(),
                401,
                "unauthorized: malformed credentials",
            ),
            (
                basic::Error::Duplicate.into(),
                400,
                "bad authorization: more than one Authorization header",
            ),
        ];
        for (error, status, text) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.to_string(), text, "{error:?}");
        }
        let throttled = Error::from(LoginError::Throttled(Duration::from_secs(3)));
        let response = throttled.to_response(&HeaderValue::from_static("Basic"));
        assert_eq!(response.headers()[RETRY_AFTER], "3");
        let backend = Error::from(LoginError::Backend(crate::auth::Error::Internal(
            "x".into(),
        )));
        let chain = std::error::Error::source(&backend).map(ToString::to_string);
        assert_eq!(
            chain.as_deref(),
            Some("password verification failed: x"),
            "the log keeps the backend's error"
        );
    }

    #[tokio::test]
    async fn oauth_refusals_answer_their_json_body() {
        let challenge = HeaderValue::from_static("Bearer realm=\"r\"");
        let cases: Vec<(Error, u16, &str)> = vec![
            (
                OAuthError::invalid_request("grant_type is missing").into(),
                400,
                r#"{"error":"invalid_request","error_description":"grant_type is missing"}"#,
            ),
            (
                Error::OAuth {
                    status: StatusCode::METHOD_NOT_ALLOWED,
                    refusal: OAuthError::invalid_request("use GET or POST"),
                },
                405,
                r#"{"error":"invalid_request","error_description":"use GET or POST"}"#,
            ),
            (
                OAuthError {
                    error: "invalid_scope",
                    description: "bad \"x\"".into(),
                }
                .into(),
                400,
                r#"{"error":"invalid_scope","error_description":"bad \"x\""}"#,
            ),
        ];
        for (error, status, json) in cases {
            assert_eq!(error.source_kind(), Source::Client, "{error:?}");
            let response = error.to_response(&challenge);
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            let headers = response.headers();
            assert_eq!(headers[CONTENT_TYPE], "application/json", "{error:?}");
            assert_eq!(
                headers[http::header::CACHE_CONTROL],
                "no-store",
                "{error:?}"
            );
            assert!(headers.get(WWW_AUTHENTICATE).is_none(), "{error:?}");
            let body = response.into_body().collect().await.expect("body");
            assert_eq!(body.to_bytes(), json.as_bytes(), "{error:?}");
        }
        let logged = Error::from(OAuthError::invalid_request("use GET or POST")).to_string();
        assert_eq!(logged, "oauth invalid_request: use GET or POST");
    }

    #[test]
    fn upstream_failures_of_the_gates_own_requests_map_like_forwarded_ones() {
        let cases: Vec<(upstream::Error, u16, &str)> = vec![
            (
                upstream::Error::Timeout(Duration::from_secs(1)),
                504,
                "registry did not answer in time",
            ),
            (
                upstream::Error::Body("reset".into()),
                502,
                "registry failed: response body: reset",
            ),
            (
                upstream::Error::TooLarge(16),
                502,
                "registry failed: response body larger than 16 bytes",
            ),
            (
                http::Uri::try_from("\u{0}")
                    .map_err(http::Error::from)
                    .expect_err("bad")
                    .into(),
                500,
                "internal error: unusable request: invalid uri character",
            ),
        ];
        for (error, status, logged) in cases {
            let error = Error::from(error);
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(crate::chain::error_chain(&error), logged, "{error:?}");
        }
    }

    #[tokio::test]
    async fn statuses_codes_and_bodies() {
        let challenge = HeaderValue::from_static("Basic realm=\"r\"");
        let cases: Vec<(Error, u16, Source, &str)> = vec![
            (
                Error::BadPath(route::Error::DotSegment),
                400,
                Source::Client,
                "UNSUPPORTED",
            ),
            (Error::NotFound, 404, Source::Client, "UNSUPPORTED"),
            (Error::BlockedUserAgent, 404, Source::Client, "UNSUPPORTED"),
            (
                Error::Unauthorized("no credentials"),
                401,
                Source::Client,
                "UNAUTHORIZED",
            ),
            (
                Error::BadAuthorization(basic::Error::Duplicate),
                400,
                Source::Client,
                "UNAUTHORIZED",
            ),
            (Error::BodyTooLarge, 413, Source::Client, "SIZE_INVALID"),
            (Error::BodyTimeout, 408, Source::Client, "UNKNOWN"),
            (
                Error::DirectoryUnavailable(Duration::from_secs(30), "timeout".into()),
                503,
                Source::Upstream,
                "UNAVAILABLE",
            ),
            (
                Error::Denied("push on team-b/app".into()),
                403,
                Source::Client,
                "DENIED",
            ),
            (
                Error::Throttled(Duration::from_millis(1500)),
                429,
                Source::Client,
                "TOOMANYREQUESTS",
            ),
            (
                Error::UpstreamConnect("refused".into()),
                502,
                Source::Upstream,
                "UNAVAILABLE",
            ),
            (Error::UpstreamTimeout, 504, Source::Upstream, "UNAVAILABLE"),
            (
                Error::Upstream("reset".into()),
                502,
                Source::Upstream,
                "UNAVAILABLE",
            ),
            (
                Error::Internal("bug".into()),
                500,
                Source::Internal,
                "UNKNOWN",
            ),
        ];
        for (error, status, source, code) in cases {
            let response = error.to_response(&challenge);
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            assert_eq!(error.source_kind(), source, "{error:?}");
            assert_eq!(
                error.is_registry_failure(),
                status == 502 || status == 504,
                "{error:?}"
            );
            assert_eq!(
                response.headers().get(WWW_AUTHENTICATE).is_some(),
                status == 401,
                "{error:?}"
            );
            if status == 429 {
                assert_eq!(response.headers()[RETRY_AFTER], "2", "rounded up");
            }
            let declared: usize = response.headers()[CONTENT_LENGTH]
                .to_str()
                .expect("text")
                .parse()
                .expect("number");
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            assert_eq!(declared, body.len(), "{error:?}");
            let text = std::str::from_utf8(&body).expect("utf-8");
            assert!(
                text.starts_with(&format!(r#"{{"errors":[{{"code":"{code}""#)),
                "{text}"
            );
        }
    }
}
