//! The request pipeline, as named phases:
//!
//! ```text
//! route → block_user_agent → authenticate → authorize → rewrite_request → forward → rewrite_response → record
//! ```
//!
//! [`handle`] runs them in order; any phase may stop the request with an
//! [`Error`], which becomes the response in one place. `authorize` asks the one
//! access policy ([`Policy`]: with no `[authz]` rules, every authenticated user may
//! do everything and anonymous clients nothing), and under rules answers
//! `/v2/_catalog` itself (filtered). In token mode,
//! `[token] path` is the token endpoint (`token`), and `/v2/` requests skip
//! `authenticate` and `authorize` and keep their `Authorization`: the registry checks
//! the bearer token itself (the gate verifies it too, to log its user and `jti` and
//! to answer `/v2/_catalog` filtered: `token::registry_request`). Every response
//! under `/v2/`, the gate's own included, carries exactly one
//! `Docker-Distribution-Api-Version`, and [`record`] writes exactly one
//! access-log line and one set of metric updates per request.

mod authorize;
pub mod basic;
pub(crate) mod body;
mod catalog;
pub(crate) mod error;
pub mod headers;
pub(crate) mod record;
pub mod route;
mod token;
pub mod ua;
pub mod upstream;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, EXPECT, HOST};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::time::Instant;

use self::body::{Outcome, Progress, RequestBody, ResponseBody};
pub use self::error::{Error, Source};
use self::record::{Logged, Record};
use crate::auth::login::Login;
use crate::auth::Identity;
use crate::authz::access;
use crate::authz::policy::Policy;
use crate::metrics::{ConnectionTimeout, Tracked};
use crate::state::State;
use crate::tls::client_cert::ClientCertUser;
use route::Route;

/// The body of a response before it is wrapped for the log.
type Answer = Either<ResponseBody, Full<Bytes>>;
/// The body of every response the gate sends. Boxed: hyper keeps a response body's
/// slot in every connection's state, idle ones included, so a pointer there keeps
/// idle keep-alive connections small (the body with its log record is ~0.5 KiB).
pub type ProxyBody = std::pin::Pin<Box<Logged<Answer>>>;

/// Serves one request. `peer` is the TCP peer, or the client a PROXY protocol
/// header named.
pub async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let client = headers::client_address(req.headers(), peer.ip(), &state.trusted_proxies);
    let mut ctx = Record::start(state.metrics.clone(), peer, client, &req);
    let sends_body = req.version() < Version::HTTP_2 && !req.body().is_end_stream();
    let head = req.method() == Method::HEAD;
    let (mut response, error) = match pipeline(&state, &mut ctx, req).await {
        Ok(response) => (response, None),
        Err(e) => (e.to_response(&state.challenge).map(Either::Right), Some(e)),
    };
    drop_head_body(head, &mut response);
    if matches!(error, Some(Error::BodyTimeout)) {
        state.metrics.connection_timeout(ConnectionTimeout::body);
    }
    if error.is_some() && sends_body {
        // A refused request's body is never read (a slow or huge one must not hold the
        // gate): hyper closes the connection after the answer, and the client is told.
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if ctx.under_v2() {
        headers::ensure_api_version(response.headers_mut());
    }
    headers::add_security_headers(response.headers_mut(), state.hsts.as_ref());
    let upstream = state.upstream.as_ref().map(|u| u.origin());
    record(&mut ctx, response.status(), error.as_ref(), upstream);
    Ok(response.map(|body| Box::pin(Logged::new(body, ctx))))
}

async fn pipeline(
    state: &State,
    ctx: &mut Record,
    req: Request<Incoming>,
) -> Result<Response<Answer>, Error> {
    if let Some(service) = &state.token {
        if req.uri().path() == service.config().path {
            return token::serve(state, service, ctx, req).await;
        }
    }
    match route::classify(req.uri().path())? {
        Route::Registry => {}
        Route::RegistryNoSlash => return redirect_to_v2(&req),
        Route::Other => return Err(Error::NotFound),
    }
    block_user_agent(state, &req)?;
    // Classified once: for the policy here, and for the audit line at the end.
    let uri = req.uri();
    let access = access::classify(req.method(), uri.path(), uri.query());
    if let Some(service) = &state.token {
        // Token mode: the registry checks the client's bearer token itself; the gate
        // reads it for the log and answers the catalog filtered.
        ctx.access = Some(access);
        return token::registry_request(state, service, ctx, req).await;
    }
    let who = authenticate(state, ctx.client, &req).await?;
    if let Some(identity) = &who {
        log_user(ctx, Some(&identity.user)); // named in the log even when denied
    }
    let policy = policy(state);
    authorize::check(&policy, who.as_ref(), &access, req.method(), req.headers())?;
    let catalog = matches!(&access, Ok(a) if a.target == access::Target::Catalog);
    ctx.access = Some(access);
    if who.is_none() {
        log_user(ctx, None); // anonymous, once admitted
    }
    if catalog && policy.has_rules() {
        return catalog::list(state, &policy, who.as_ref(), req.uri().query()).await;
    }
    to_registry(state, ctx, req).await
}

/// rewrite_request → forward → rewrite_response.
async fn to_registry(
    state: &State,
    ctx: &mut Record,
    req: Request<Incoming>,
) -> Result<Response<Answer>, Error> {
    let upstream = registry(state)?;
    let (upstream_req, progress) = rewrite_request(state, upstream, ctx, req)?;
    ctx.track_body(progress.clone());
    let response = forward(state, upstream, upstream_req, &progress).await?;
    Ok(rewrite_response(upstream, response))
}

/// `/v2` → `301 Location: https://HOST/v2/`, before any check, as nginx answers
/// for the recipe's `location /v2/`.
fn redirect_to_v2(req: &Request<Incoming>) -> Result<Response<Answer>, Error> {
    let host = client_host(req)?;
    let host = host.to_str().map_err(|_| Error::BadHost("not text"))?;
    let location = HeaderValue::from_str(&format!("https://{host}/v2/"))
        .map_err(|_| Error::BadHost("invalid"))?;
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    response
        .headers_mut()
        .insert(http::header::LOCATION, location);
    Ok(response)
}

/// Refuses pre-1.6 docker clients with a 404, before any password check.
fn block_user_agent(state: &State, req: &Request<Incoming>) -> Result<(), Error> {
    if state
        .user_agents
        .is_blocked(req.headers().get(http::header::USER_AGENT))
    {
        return Err(Error::BlockedUserAgent);
    }
    Ok(())
}

/// Checks Basic credentials against the user database, unless the client is
/// throttled for too many failures. Without credentials, a verified client
/// certificate's user is the identity (`Authorization` wins when both are sent, so
/// a wrong password stays 401). `None`: no credentials and no client certificate,
/// an anonymous client, on whom the authorize phase decides. The identity carries
/// the user's groups.
async fn authenticate(
    state: &State,
    client: IpAddr,
    req: &Request<Incoming>,
) -> Result<Option<Identity>, Error> {
    match basic::parse(req.headers())? {
        Some(credentials) => Ok(Some(login(state).password(client, &credentials).await?)),
        None => match req.extensions().get::<ClientCertUser>() {
            Some(user) => Ok(Some(login(state).certificate(&user.0)?)),
            None => Ok(None),
        },
    }
}

/// The login flow over this state's user databases, groups, throttle and metrics;
/// the one way in for both front doors.
pub(crate) fn login(state: &State) -> Login<'_> {
    Login::new(
        &state.authenticator,
        &state.throttle,
        &state.groups,
        &state.metrics,
    )
    .with_robots(&state.robots)
    .with_oidc(&state.oidc)
}

/// The access policy of this state: its rules and its robots' scopes; the one
/// answer for every front door.
pub(crate) fn policy(state: &State) -> Policy<'_> {
    Policy::new(state.rules.as_ref()).with_robots(&state.robots)
}

/// Names the request's user in the access log: `anonymous` when there is none.
fn log_user(ctx: &mut Record, user: Option<&str>) {
    ctx.user = Some(user.unwrap_or("anonymous").to_owned());
}

/// Turns the client's request into the registry's: same method, path, query and
/// body; forwarding headers set; hop-by-hop headers and the gate's own
/// credentials removed.
fn rewrite_request(
    state: &State,
    upstream: &crate::proxy::upstream::Upstream,
    ctx: &Record,
    req: Request<Incoming>,
) -> Result<(Request<RequestBody>, Arc<Progress>), Error> {
    let host = client_host(&req)?;
    let (mut parts, incoming) = req.into_parts();
    if let (Some(limit), Some(declared)) = (state.max_body_size, content_length(&parts.headers)) {
        if declared > limit {
            return Err(Error::BodyTooLarge);
        }
    }
    parts.uri = upstream
        .uri_for(parts.uri.path_and_query())
        .map_err(|e| Error::Internal(Box::new(e)))?;
    parts.version = Version::HTTP_11;
    headers::strip_hop_by_hop(&mut parts.headers);
    if state.token.is_none() {
        // Basic mode: the credentials were for the gate. Token mode: the bearer
        // token is for the registry.
        parts.headers.remove(AUTHORIZATION);
    }
    // The gate answers `Expect: 100-continue` itself when it starts reading the body.
    parts.headers.remove(EXPECT);
    headers::set_forwarding(
        &mut parts.headers,
        ctx.peer.ip(),
        ctx.client,
        host,
        &state.trusted_proxies,
    );
    let upload = (matches!(parts.method, Method::POST | Method::PUT | Method::PATCH)
        && !incoming.is_end_stream())
    .then(|| Tracked::new(state.metrics.active_uploads()));
    let (body, progress) =
        RequestBody::new(incoming, state.max_body_size, state.body_timeout, upload);
    Ok((Request::from_parts(parts, body), progress))
}

/// The authority the client asked for, port included: the request target's
/// authority (HTTP/2 `:authority`, absolute-form HTTP/1.1) or the one `Host`.
fn client_host<B>(req: &Request<B>) -> Result<HeaderValue, Error> {
    if let Some(authority) = req.uri().authority() {
        return HeaderValue::from_str(authority.as_str()).map_err(|_| Error::BadHost("invalid"));
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(host), None) if !host.is_empty() => Ok(host.clone()),
        (Some(_), Some(_)) => Err(Error::BadHost("more than one Host header")),
        _ => Err(Error::BadHost("no Host header")),
    }
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The registry behind the gate; a token server alone has none (404 under `/v2/`).
fn registry(state: &State) -> Result<&crate::proxy::upstream::Upstream, Error> {
    state.upstream.as_ref().ok_or(Error::NotFound)
}

/// Sends the request to the registry and waits for its answer, for at most
/// `upstream.read_timeout` after the last body byte went out.
async fn forward(
    state: &State,
    upstream: &crate::proxy::upstream::Upstream,
    req: Request<RequestBody>,
    progress: &Progress,
) -> Result<Response<Incoming>, Error> {
    let timeout = upstream.read_timeout;
    let sent = Instant::now();
    let call = async {
        let result = upstream.client().request(req).await;
        state.metrics.upstream_latency(sent.elapsed());
        result
    };
    tokio::pin!(call);
    // The registry is to blame only for silence after the body's last byte went
    // out; while the body waits for the client, `listen.body_timeout` runs instead.
    let blame_from = || {
        if progress.waiting_on_client() {
            Instant::now()
        } else {
            progress.last_activity()
        }
    };
    loop {
        tokio::select! {
            result = &mut call => {
                return result.map_err(|e| upstream_error(e, progress));
            }
            () = tokio::time::sleep_until(blame_from() + timeout) => {
                if blame_from() + timeout <= Instant::now() {
                    return Err(Error::UpstreamTimeout);
                }
            }
        }
    }
}

/// Says whose fault a failed registry call was: the body tells when the client
/// broke off or went over the limit.
fn upstream_error(e: hyper_util::client::legacy::Error, progress: &Progress) -> Error {
    match progress.outcome() {
        Outcome::ClientAborted => Error::ClientAborted(Box::new(e)),
        Outcome::TooLarge => Error::BodyTooLarge,
        Outcome::Stalled => Error::BodyTimeout,
        Outcome::Ok => upstream::Error::from_client(e).into(),
    }
}

/// Passes the registry's answer on: status, headers and body untouched but for
/// hop-by-hop headers.
fn rewrite_response(
    upstream: &crate::proxy::upstream::Upstream,
    response: Response<Incoming>,
) -> Response<Answer> {
    let (mut parts, incoming) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    let body = ResponseBody::new(incoming, upstream.read_timeout);
    Response::from_parts(parts, Either::Left(body))
}

/// A HEAD answer has no body, whoever made it (RFC 9110 §9.3.2; RFC 9113 §8.1.1:
/// over HTTP/2 a response to HEAD ends with its HEADERS frame). hyper leaves the
/// body unsent over HTTP/1.1 but sends it as DATA over HTTP/2, which clients
/// refuse (`PROTOCOL_ERROR`); the gate's own answers (errors, catalog, token
/// endpoint) carry one. The `Content-Length` stays the one a GET would get.
fn drop_head_body(head: bool, response: &mut Response<Answer>) {
    if !head || response.body().is_end_stream() {
        return;
    }
    let empty = Either::Right(Full::new(Bytes::new()));
    let body = std::mem::replace(response.body_mut(), empty);
    if let Some(len) = body.size_hint().exact() {
        response
            .headers_mut()
            .entry(CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(len));
    }
}

/// Notes the answer in the request's record; the line itself is written when
/// the response body ends (see [`record`]).
fn record(ctx: &mut Record, status: StatusCode, error: Option<&Error>, upstream: Option<&str>) {
    ctx.respond(status, error, upstream);
}
