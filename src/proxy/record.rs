//! The one access/audit-log line and the one set of metric updates per request.
//!
//! A [`Record`] is started when the request arrives, learns the user and the
//! status on the way, and travels inside the response body ([`Logged`]). The
//! line is written when that body ends, fails, or is dropped (client gone, HEAD,
//! connection closed), so it carries the bytes actually sent each way and the
//! whole duration, and it is written exactly once. Nothing secret goes in it: no
//! `Authorization`, no query string (upload URLs carry the registry's state).

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use super::body::{BoxError, Progress};
use super::error::{Error, Source};
use crate::authz::access::{self, Access, Action, Target};
use crate::chain::error_chain;
use crate::metrics::Metrics;

/// What is known of a request so far.
#[derive(Debug)]
pub struct Record {
    metrics: Arc<Metrics>,
    started: Instant,
    /// The TCP peer (or the PROXY protocol's client).
    pub peer: SocketAddr,
    /// The client, through trusted proxies.
    pub client: IpAddr,
    /// The verified user.
    pub user: Option<String>,
    /// Token mode: the `jti` of the verified bearer token, or `unverified`.
    pub token_id: Option<String>,
    /// What the request touches, once classified (by the pipeline, or here at the end).
    pub access: Option<Result<Access, access::Error>>,
    method: Method,
    /// The request target, for its path (logged) and query (only classified: never
    /// logged). A clone shares the request head's buffer, where owned copies of the
    /// path and query would be two allocations per request.
    uri: http::Uri,
    status: StatusCode,
    error: Option<(Source, String)>,
    received: Option<Arc<Progress>>,
    /// Whether the line has been written (by [`Record::finish`], or by `Drop`).
    written: bool,
}

impl Record {
    /// Starts the record of a request.
    pub fn start<B>(
        metrics: Arc<Metrics>,
        peer: SocketAddr,
        client: IpAddr,
        req: &http::Request<B>,
    ) -> Record {
        Record {
            metrics,
            started: Instant::now(),
            peer,
            client,
            user: None,
            token_id: None,
            access: None,
            method: req.method().clone(),
            uri: req.uri().clone(),
            status: StatusCode::OK,
            error: None,
            received: None,
            written: false,
        }
    }

    /// Whether the request is under `/v2`.
    pub fn under_v2(&self) -> bool {
        let path = self.uri.path();
        path.starts_with("/v2/") || path == "/v2"
    }

    /// The request body's progress, for the bytes received.
    pub fn track_body(&mut self, progress: Arc<Progress>) {
        self.received = Some(progress);
    }

    /// The answer: its status and, if the gate refused or failed, why. When the
    /// registry failed, `upstream` (`scheme://host:port`) leads the error text.
    pub fn respond(&mut self, status: StatusCode, error: Option<&Error>, upstream: Option<&str>) {
        self.status = status;
        self.error = error.map(|e| {
            let chain = error_chain(e);
            let text = match upstream {
                Some(url) if e.is_registry_failure() => format!("upstream {url}: {chain}"),
                _ => chain,
            };
            (e.source_kind(), text)
        });
    }

    /// Writes the line and updates the metrics.
    fn finish(mut self, sent: u64, outcome: BodyOutcome) {
        self.write(sent, outcome);
    }

    /// Writes the line and updates the metrics, once.
    fn write(&mut self, sent: u64, outcome: BodyOutcome) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        if matches!(outcome, BodyOutcome::Unanswered) {
            self.status = CLIENT_CLOSED_REQUEST;
        }
        let received = self.received.as_ref().map_or(0, |p| p.bytes());
        self.metrics.request(&self.method, self.status);
        self.metrics.bytes(received, sent);
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let access = self
            .access
            .take()
            .unwrap_or_else(|| access::classify(&self.method, self.uri.path(), self.uri.query()));
        let audit = Audit::of(access);
        let user = self.user.as_deref().unwrap_or("-");
        let token_id = self.token_id.as_deref().unwrap_or("-");
        let (client, peer, method, path) = (self.client, self.peer, &self.method, self.uri.path());
        let status = self.status.as_u16();
        let (repository, action, reference) = (
            audit.repository.as_deref().unwrap_or("-"),
            audit.action,
            audit.reference.as_deref().unwrap_or("-"),
        );
        macro_rules! line {
            ($level:ident, $message:literal $(, $extra:tt)*) => {
                tracing::$level!(
                    target: "access",
                    %client, %peer, user, token_id, %method, path, repository, action, reference,
                    status, bytes_in = received, bytes_out = sent, duration_ms
                    $(, $extra)*,
                    $message
                )
            };
        }
        match (&self.error, outcome) {
            (None, BodyOutcome::Unanswered) => {
                line!(
                    info,
                    "request abandoned: the client went away before the answer"
                )
            }
            (None, BodyOutcome::Complete) => line!(info, "request"),
            (None, BodyOutcome::Aborted) => line!(info, "request (response cut short)"),
            (None, BodyOutcome::Failed(e)) => {
                let error = e.as_str();
                line!(warn, "request failed mid-response", error)
            }
            (Some((Source::Client, error)), _) => {
                let error = error.as_str();
                line!(info, "request refused", error)
            }
            (Some((_, error)), _) => {
                let error = error.as_str();
                line!(warn, "request failed", error)
            }
        }
    }
}

/// A request the client gave up on before the gate answered (the request future
/// was dropped: stream reset, connection closed): nginx's status for it. What the
/// gate had already forwarded is in the line (bytes in, repository, action).
const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(status) => status,
    Err(_) => panic!("499 is within 100..=999"),
};

impl Drop for Record {
    /// The request future was dropped before its answer was built (the client reset
    /// the stream or closed the connection): the line is still written, so a write
    /// the registry carried out is never missing from the audit log.
    fn drop(&mut self) {
        self.write(0, BodyOutcome::Unanswered);
    }
}

/// How a response body ended.
enum BodyOutcome {
    Complete,
    Aborted,
    Failed(String),
    /// There was no response: the client went away first.
    Unanswered,
}

/// The registry-level view of a request, for the log.
struct Audit {
    repository: Option<String>,
    action: &'static str,
    reference: Option<String>,
}

impl Audit {
    fn of(access: Result<Access, access::Error>) -> Audit {
        match access {
            Ok(a) => Audit::from_access(a),
            Err(_) => Audit {
                repository: None,
                action: "-",
                reference: None,
            },
        }
    }

    fn from_access(a: Access) -> Audit {
        let action = match a.target {
            Target::Catalog => "catalog",
            Target::Base => "ping",
            _ => a.primary_action().map_or("-", Action::as_str),
        };
        Audit {
            reference: a.target.object().map(str::to_owned),
            repository: a.repository,
            action,
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that writes its request's [`Record`] when it ends or is dropped.
    pub struct Logged<B>
    where
        B: Body,
    {
        #[pin]
        inner: B,
        record: Option<Record>,
        sent: u64,
    }

    impl<B> PinnedDrop for Logged<B>
    where
        B: Body,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(record) = this.record.take() {
                // hyper stops polling once a body says it has ended.
                let outcome = if this.inner.is_end_stream() {
                    BodyOutcome::Complete
                } else {
                    BodyOutcome::Aborted
                };
                record.finish(*this.sent, outcome);
            }
        }
    }
}

impl<B: Body> Logged<B> {
    /// Wraps a response body.
    pub fn new(inner: B, record: Record) -> Self {
        Logged {
            inner,
            record: Some(record),
            sent: 0,
        }
    }
}

impl<B> Body for Logged<B>
where
    B: Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    *this.sent += data.len() as u64;
                }
            }
            Some(Err(e)) => {
                if let Some(record) = this.record.take() {
                    record.finish(*this.sent, BodyOutcome::Failed(error_chain(e.as_ref())));
                }
            }
            None => {
                if let Some(record) = this.record.take() {
                    record.finish(*this.sent, BodyOutcome::Complete);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
