//! The token endpoint of token mode (`[token] path`, GET and the OAuth2 POST): reads
//! the request, authenticates the client with the same users and groups as Basic
//! mode (a GET without credentials by its client certificate, if it sent one),
//! grants requested ∩ allowed with the same rules, and answers a signed token.
//! Also token mode's `/v2/` requests ([`registry_request`]): the bearer token is
//! read for the log and the filtered catalog, and passed on untouched.

use std::net::IpAddr;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use serde::Serialize;

use super::body::{Outcome, RequestBody};
use super::{log_user, login, Answer, Error};
use crate::auth::login::LoginError;
use crate::auth::Identity;
use crate::authz::access::Target;
use crate::proxy::basic;
use crate::proxy::record::Record;
use crate::state::State;
use crate::tls::client_cert::ClientCertUser;
use crate::token::request::{self, Grant, OAuthError, TokenRequest, MAX_FORM_BYTES};
use crate::token::scope;
use crate::token::service::{scope_text, Bearer, TokenService};

/// The JSON answer (token spec, plus `scope` for OAuth2 POSTs).
#[derive(Serialize)]
struct TokenResponse<'a> {
    token: &'a str,
    access_token: &'a str,
    expires_in: u64,
    issued_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// Serves one request to the token endpoint.
pub async fn serve(
    state: &State,
    service: &TokenService,
    ctx: &mut Record,
    req: Request<Incoming>,
) -> Result<Response<Answer>, Error> {
    let cert_user = req.extensions().get::<ClientCertUser>().cloned();
    let request = match *req.method() {
        Method::GET => request::from_query(req.uri().query(), basic::parse(req.headers())?),
        Method::POST => request::from_form(&read_form(state, req.into_body()).await?),
        _ => {
            return Err(Error::OAuth {
                status: StatusCode::METHOD_NOT_ALLOWED,
                refusal: OAuthError::invalid_request("use GET or POST"),
            })
        }
    }?;
    if let Some(asked) = &request.service {
        if *asked != service.config().service {
            let e = OAuthError::invalid_request(format!("unknown service {asked:?}"));
            return Err(e.into());
        }
    }
    let scopes =
        scope::parse_scopes(request.scopes.iter().map(String::as_str)).map_err(|e| OAuthError {
            error: "invalid_scope",
            description: e.to_string(),
        })?;
    let (who, presented_refresh) =
        identify(state, service, ctx.client, &request, cert_user.as_ref()).await?;
    log_user(ctx, who.as_ref().map(|i| i.user.as_str()));
    let granted = scope::grant_by(&crate::proxy::policy(state), who.as_ref(), &scopes);
    let now = SystemTime::now();
    let subject = who.as_ref().map_or("", |i| i.user.as_str());
    let oidc = matches!(&request.grant, Grant::Basic(Some(c)) | Grant::Password(c)
        if state.oidc.iter().any(|t| t.issuer.username == c.user));
    let oidc_groups = who.as_ref().filter(|_| oidc).map(|i| i.groups.as_slice());
    let issued = service
        .issue(subject, oidc_groups, &granted, now)
        .map_err(|e| Error::Internal(Box::new(e)))?;
    let granted_text = scope_text(&granted);
    // Machines (robots, OIDC sign-ins) get no refresh token: theirs would outlive the
    // robot's secret or the CI job's token; they log in again instead.
    let machine = oidc || crate::auth::robots::robot_name(subject).is_some();
    let refresh = match (request.offline, presented_refresh) {
        // A refresh grant answers with the same refresh token (OAuth2 spec of the registry).
        (_, Some(token)) => Some(token),
        (true, None) if machine => None,
        (true, None) => {
            let digest = state
                .authenticator
                .credential_generation(subject, service.generation_key());
            service
                .refresh_token(subject, TokenService::generation(digest.as_ref()), now)
                .map_err(|e| Error::Internal(Box::new(e)))?
        }
        (false, None) => None,
    };
    tracing::info!(
        target: "token",
        user = %ctx.user.as_deref().unwrap_or("-"),
        client = %ctx.client,
        // Checked to be short printable ASCII at parse time; quoted all the same.
        client_id = ?request.client_id.as_deref().unwrap_or("-"),
        asked = %request.scopes.join(" "),
        granted = %granted_text,
        jti = %issued.jti,
        refresh = refresh.is_some(),
        "token issued"
    );
    state.metrics.token_issued();
    let body = TokenResponse {
        token: &issued.token,
        access_token: &issued.token,
        expires_in: issued.expires_in,
        issued_at: &issued.issued_at,
        refresh_token: refresh.as_deref(),
        scope: request.oauth.then_some(granted_text),
    };
    let json = serde_json::to_vec(&body).map_err(|e| Error::Internal(Box::new(e)))?;
    Ok(json_response(StatusCode::OK, json).map(Either::Right))
}

/// Who the client is: a GET without credentials is the client certificate's user
/// if it sent one, else anonymous (`None`). A refresh grant also returns the
/// refresh token it presented, which the answer repeats.
async fn identify(
    state: &State,
    service: &TokenService,
    client: IpAddr,
    request: &TokenRequest,
    cert_user: Option<&ClientCertUser>,
) -> Result<(Option<Identity>, Option<String>), Error> {
    match &request.grant {
        Grant::Basic(None) => match (cert_user, &request.account) {
            (Some(user), Some(account)) if *account != user.0 => Err(Error::Unauthorized(
                "account does not match the client certificate",
            )),
            (Some(user), _) => Ok((Some(login(state).certificate(&user.0)?), None)),
            (None, _) => Ok((None, None)),
        },
        Grant::Basic(Some(credentials)) | Grant::Password(credentials) => {
            let identity = login(state).password(client, credentials).await?;
            Ok((Some(identity), None))
        }
        Grant::Refresh(token) => {
            let refused = |e: crate::token::service::Error| {
                tracing::info!(error = %e, "refresh token refused");
                Error::Unauthorized("invalid refresh token")
            };
            let refresh = service
                .check_refresh(token, SystemTime::now())
                .map_err(refused)?;
            // Still a user? Rights are computed afresh below from today's groups and rules.
            let identity = match login(state).refresh(&refresh.sub).await {
                Ok(identity) => identity,
                Err(LoginError::UnknownUser) => {
                    tracing::info!(
                        user = refresh.sub,
                        "refresh token of a user who no longer exists refused"
                    );
                    return Err(Error::Unauthorized("invalid refresh token"));
                }
                Err(e) => return Err(e.into()),
            };
            // With the password it was issued for?
            let digest = state
                .authenticator
                .credential_generation(&refresh.sub, service.generation_key());
            service
                .check_generation(&refresh, &TokenService::generation(digest.as_ref()))
                .map_err(refused)?;
            Ok((Some(identity), Some(token.clone())))
        }
    }
}

/// What a `/v2/` request's `Authorization` says in token mode.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    /// No bearer token (no `Authorization`, or another scheme).
    Nothing,
    /// One of our tokens, valid now.
    Verified(Bearer),
    /// A bearer token the gate cannot verify: forged, expired, another issuer's, or
    /// more than one `Authorization`. The registry refuses it.
    Unverified,
}

/// Reads the bearer token of a `/v2/` request.
fn presented(service: &TokenService, headers: &HeaderMap) -> Presented {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(AUTHORIZATION) {
            Presented::Unverified
        } else {
            Presented::Nothing
        };
    };
    let Some((scheme, token)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return Presented::Nothing;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Presented::Nothing;
    }
    match service.check_access(token.trim(), SystemTime::now()) {
        Ok(bearer) => Presented::Verified(bearer),
        Err(e) => {
            tracing::debug!(error = %e, "bearer token not verified");
            Presented::Unverified
        }
    }
}

/// A `/v2/` request in token mode. The registry checks the client's bearer token
/// itself, and gets it untouched. The gate verifies it too, against its own keys,
/// to log whom the request is for (`sub`, `jti`), and to answer `/v2/_catalog` with
/// the filtered walk under rules, exactly as Basic mode does: the registry would
/// list every repository to a catalog token.
pub async fn registry_request(
    state: &State,
    service: &TokenService,
    ctx: &mut Record,
    req: Request<Incoming>,
) -> Result<Response<Answer>, Error> {
    let bearer = match presented(service, req.headers()) {
        Presented::Nothing => return super::to_registry(state, ctx, req).await,
        Presented::Unverified => {
            ctx.token_id = Some("unverified".to_owned());
            return super::to_registry(state, ctx, req).await;
        }
        Presented::Verified(bearer) => bearer,
    };
    let user = (!bearer.sub.is_empty()).then(|| bearer.sub.clone());
    log_user(ctx, user.as_deref());
    ctx.token_id = Some(bearer.jti);
    if let Some(robot) = user
        .as_deref()
        .filter(|u| crate::auth::robots::robot_name(u).is_some())
    {
        // A revoked or expired robot's token stops here, not when it expires.
        login(state).refresh(robot).await?;
    }
    let catalog = matches!(&ctx.access, Some(Ok(a)) if a.target == Target::Catalog);
    let policy = crate::proxy::policy(state);
    if !(catalog && policy.has_rules()) {
        return super::to_registry(state, ctx, req).await;
    }
    let who = match (user, bearer.oidc_groups) {
        // An OIDC sign-in has no account to look up: its token carries what its
        // claim rule gave, and the gate signed it.
        (Some(user), Some(groups)) => Some(Identity { user, groups }),
        (Some(user), None) => Some(login(state).refresh(&user).await?),
        (None, _) => None,
    };
    let authorization = req.headers().get(AUTHORIZATION);
    super::catalog::list_as(
        state,
        &policy,
        who.as_ref(),
        req.uri().query(),
        authorization,
    )
    .await
}

/// How much of an oversized form is read and thrown away before the 400 is sent.
/// An HTTP/1.1 answer sent while the client is still sending, followed by a close,
/// makes the kernel reset the connection, and the client may never see the answer;
/// so the rest is drained, up to this, and only a client sending more loses it.
const DRAIN_FORM_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a POST form: at most [`MAX_FORM_BYTES`] kept (the rest of an oversized one
/// drained up to [`DRAIN_FORM_BYTES`], then refused), with at most
/// `listen.body_timeout` of silence between frames (as an upload has) and, since a
/// form is small, at most `listen.body_timeout` for the whole of it, so a client
/// dripping a byte now and then cannot hold the stream either. Anonymous clients
/// get here: nothing is checked before the form is read.
async fn read_form(state: &State, incoming: Incoming) -> Result<Bytes, Error> {
    let too_large = || -> Error {
        // An OAuth2 400 like every other unusable form (RFC 6749 §5.2).
        OAuthError::invalid_request(format!("form body larger than {MAX_FORM_BYTES} bytes")).into()
    };
    let (mut body, progress) =
        RequestBody::new(incoming, Some(DRAIN_FORM_BYTES), state.body_timeout, None);
    let read = async {
        let mut form = Vec::new();
        let mut oversized = false;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            oversized = oversized || form.len() + data.len() > MAX_FORM_BYTES;
            if !oversized {
                form.extend_from_slice(&data);
            }
        }
        Ok::<_, super::body::BoxError>((form, oversized))
    };
    match tokio::time::timeout(state.body_timeout, read).await {
        Ok(Ok((_, true))) => Err(too_large()),
        Ok(Ok((form, false))) => Ok(Bytes::from(form)),
        Ok(Err(e)) => Err(match progress.outcome() {
            Outcome::Stalled => Error::BodyTimeout,
            Outcome::TooLarge => too_large(),
            Outcome::ClientAborted | Outcome::Ok => Error::ClientAborted(e),
        }),
        Err(_elapsed) => Err(Error::BodyTimeout),
    }
}

/// A JSON answer of the token endpoint, its refusals included (`Error::OAuth`).
pub(super) fn json_response(status: StatusCode, json: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(json)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Tokens must not be cached (RFC 6749 §5.1).
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
