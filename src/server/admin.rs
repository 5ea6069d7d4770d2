//! The admin listener: plain HTTP on `[admin] addr` (loopback by default), for
//! Prometheus and orchestrators.
//!
//! - `GET /metrics`: [`Metrics::render`](crate::metrics::Metrics::render).
//! - `GET /healthz`: 200 while the process serves (liveness).
//! - `GET /readyz`: 200 when the registry answers `GET /v2/` (any status), 503
//!   when it cannot be reached or once a shutdown has begun (readiness: a load
//!   balancer stops sending new clients while in-flight uploads drain).
//!
//! It carries no credentials and changes nothing, but `/metrics` tells how busy
//! the registry is: keep it off the internet (the default binds 127.0.0.1).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics;
use crate::state::State;

/// How long `/readyz` waits for the registry.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// Admin requests are tiny; a client that does not send one in this time is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the admin endpoints until the process ends. `draining` turns true when
/// a shutdown begins.
pub async fn run(
    listener: TcpListener,
    state: watch::Receiver<Arc<State>>,
    draining: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (state, draining) = (state.clone(), draining.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let current = state.borrow().clone();
                let draining = *draining.borrow();
                answer(current, draining, req)
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(peer = %peer, error = %e, "admin connection ended with an error");
            }
        });
    }
}

async fn answer(
    state: Arc<State>,
    draining: bool,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n"));
    }
    Ok(match req.uri().path() {
        "/metrics" => {
            let mut r = text(StatusCode::OK, state.metrics.render());
            r.headers_mut().insert(
                CONTENT_TYPE,
                http::HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            r
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => ready(&state, draining).await,
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n",
        ),
    })
}

async fn ready(state: &State, draining: bool) -> Response<Full<Bytes>> {
    if draining {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n",
        );
    }
    let Some(upstream) = &state.upstream else {
        return text(
            StatusCode::OK,
            "ready: token server (no registry behind it)\n",
        );
    };
    match upstream.probe(READY_TIMEOUT).await {
        Ok(status) => text(
            StatusCode::OK,
            format!("ready: the registry answered {}\n", status.as_u16()),
        ),
        Err(reason) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the registry is unreachable: {reason}\n"),
        ),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    r
}
