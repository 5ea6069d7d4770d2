//! Streaming bodies: the client's request body on its way to the registry, and
//! the registry's response body on its way back.
//!
//! Nothing is collected or written to disk: each frame is handed on as it
//! arrives, so memory is bounded by hyper's buffers and backpressure. The request
//! body records its progress (for the upstream read timeout) and why it ended
//! early (client abort, size limit), because the registry call only sees "body
//! error" and the gate must answer with the right status.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::metrics::Tracked;

/// The error type of both bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

const OK: u8 = 0;
const CLIENT_ABORTED: u8 = 1;
const TOO_LARGE: u8 = 2;
const STALLED: u8 = 3;

/// How a request body ended, shared between the body and the request phase.
#[derive(Debug)]
pub struct Progress {
    start: Instant,
    last_ms: AtomicU64,
    outcome: AtomicU8,
    bytes: AtomicU64,
    waiting_on_client: AtomicBool,
}

/// Why a request body stopped before its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still streaming, or ended normally.
    Ok,
    /// The client's connection broke mid-body.
    ClientAborted,
    /// The body passed `limits.max_body_size`.
    TooLarge,
    /// The client sent nothing for `listen.body_timeout` while the gate waited.
    Stalled,
}

impl Progress {
    fn new() -> Arc<Progress> {
        Arc::new(Progress {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            outcome: AtomicU8::new(OK),
            bytes: AtomicU64::new(0),
            waiting_on_client: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When the body last moved (or the request started).
    pub fn last_activity(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// How the body ended.
    pub fn outcome(&self) -> Outcome {
        match self.outcome.load(Ordering::Relaxed) {
            CLIENT_ABORTED => Outcome::ClientAborted,
            TOO_LARGE => Outcome::TooLarge,
            STALLED => Outcome::Stalled,
            _ => Outcome::Ok,
        }
    }

    /// Whether the body is waiting for the client's next bytes (then a quiet
    /// registry is not to blame; `listen.body_timeout` runs instead).
    pub fn waiting_on_client(&self) -> bool {
        self.waiting_on_client.load(Ordering::Relaxed)
    }

    /// Bytes of body passed on so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

pin_project_lite::pin_project! {
    /// The client's body, passed through frame by frame.
    pub struct RequestBody {
        #[pin]
        inner: Incoming,
        progress: Arc<Progress>,
        limit: Option<u64>,
        // Holds the active-uploads gauge up while the body streams.
        upload: Option<Tracked>,
        // Runs only while the gate waits for the client, never while the registry
        // keeps the gate from asking for more. Made at the first wait: most bodies
        // arrive whole.
        silence: Option<Pin<Box<Sleep>>>,
        timeout: Duration,
    }
}

impl RequestBody {
    /// Wraps a client body, with an optional size limit in bytes, the longest
    /// silence allowed while the gate waits for it, and a gauge guard that is
    /// released when the body is dropped.
    pub fn new(
        inner: Incoming,
        limit: Option<u64>,
        timeout: Duration,
        upload: Option<Tracked>,
    ) -> (RequestBody, Arc<Progress>) {
        let progress = Progress::new();
        let body = RequestBody {
            inner,
            progress: progress.clone(),
            limit,
            upload,
            silence: None,
            timeout,
        };
        (body, progress)
    }
}

/// The client sent no body bytes for `listen.body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("client sent no body bytes for {}", humantime::format_duration(*.0))]
pub struct BodyStalled(pub Duration);

/// The body passed the configured limit.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than limits.max_body_size ({0} bytes)")]
pub struct TooLarge(pub u64);

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                let progress = &this.progress;
                let deadline = Instant::now() + *this.timeout;
                let silence = this
                    .silence
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !progress.waiting_on_client.swap(true, Ordering::Relaxed) {
                    silence.as_mut().reset(deadline);
                }
                ready!(silence.as_mut().poll(cx));
                progress.outcome.store(STALLED, Ordering::Relaxed);
                return Poll::Ready(Some(Err(Box::new(BodyStalled(*this.timeout)))));
            }
        };
        this.progress
            .waiting_on_client
            .store(false, Ordering::Relaxed);
        this.progress.touch();
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let total = this
                        .progress
                        .bytes
                        .fetch_add(data.len() as u64, Ordering::Relaxed)
                        + data.len() as u64;
                    if let Some(limit) = *this.limit {
                        if total > limit {
                            this.progress.outcome.store(TOO_LARGE, Ordering::Relaxed);
                            return Poll::Ready(Some(Err(Box::new(TooLarge(limit)))));
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                this.progress
                    .outcome
                    .store(CLIENT_ABORTED, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(e))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The registry's response body, with a limit on the silence between two frames.
    pub struct ResponseBody {
        #[pin]
        inner: Incoming,
        #[pin]
        idle: Sleep,
        timeout: Duration,
        waiting: bool,
    }
}

impl ResponseBody {
    /// Wraps an upstream body; it fails if no frame arrives for `timeout`.
    pub fn new(inner: Incoming, timeout: Duration) -> Self {
        ResponseBody {
            inner,
            idle: tokio::time::sleep(timeout),
            timeout,
            waiting: false,
        }
    }
}

/// The registry stopped sending its response body.
#[derive(Debug, thiserror::Error)]
#[error("registry sent nothing for {}", humantime::format_duration(*.0))]
pub struct UpstreamStalled(pub Duration);

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.waiting = false;
                Poll::Ready(frame.map(|r| r.map_err(|e| Box::new(e) as BoxError)))
            }
            Poll::Pending => {
                // The clock runs only while the gate waits on the registry, not
                // while a slow client keeps the gate from asking for more.
                if !*this.waiting {
                    *this.waiting = true;
                    this.idle.as_mut().reset(Instant::now() + *this.timeout);
                }
                ready!(this.idle.poll(cx));
                Poll::Ready(Some(Err(Box::new(UpstreamStalled(*this.timeout)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
