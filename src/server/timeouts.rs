//! The connection timeouts hyper lacks: how long a keep-alive connection may sit
//! idle (`listen.idle_timeout`), how long a request head may take from its first
//! byte to its last (`listen.header_timeout`), and how long a client may leave the
//! gate's writes waiting (`listen.send_timeout`, nginx's `send_timeout`).
//!
//! [`Activity`] is shared by the three parts of a connection that see it: the
//! socket ([`Watched`], which notes each read), the service (which holds an
//! [`InFlight`] guard per request until its response body is done), and the
//! clock that [`Watched`] keeps. While a request is in flight no connection
//! clock runs: its body has `listen.body_timeout`, the registry its own
//! timeouts. Otherwise the connection is idle until a byte of the next request
//! arrives (HTTP/1.1), and from then on the head has `listen.header_timeout`.
//! HTTP/2 sends frames of its own (PING, SETTINGS, WINDOW_UPDATE), so there a
//! connection is idle for as long as no stream is open; a head that never
//! completes leaves no stream open either.
//!
//! A timeout is seen by hyper as the socket's read: end of stream for an idle
//! connection (closed as if the client left), an error for a head cut short.
//! The send clock runs whenever a write waits, request in flight or not, and
//! restarts with every byte the client takes: a slow but steady download lives.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long an HTTP/1.1 connection waits idle before it may be parked
/// (`server::keepalive`): a client's next request usually comes sooner (a pull's
/// requests follow one another), so a busy connection pays nothing for parking.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

/// No head has started.
const NONE: u64 = u64::MAX;
/// `Activity::expired` values.
const RUNNING: u8 = 0;
const IDLE: u8 = 1;
const HEADER: u8 = 2;
const SEND: u8 = 3;

/// The connection timeouts.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// `listen.idle_timeout`.
    pub idle: Duration,
    /// `listen.header_timeout`.
    pub header: Duration,
    /// `listen.send_timeout`.
    pub send: Duration,
}

/// Which clock ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expired {
    /// No request came within `listen.idle_timeout`.
    Idle,
    /// A request head did not complete within `listen.header_timeout`.
    Header,
    /// The client took none of the gate's bytes for `listen.send_timeout`.
    Send,
}

impl Expired {
    fn code(self) -> u8 {
        match self {
            Expired::Idle => IDLE,
            Expired::Header => HEADER,
            Expired::Send => SEND,
        }
    }
}

/// What one connection is doing, in milliseconds since it was accepted.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    idle_since: AtomicU64,
    head_started: AtomicU64,
    expired: AtomicU8,
    // The connection has waited idle for `PARK_AFTER` (HTTP/1.1 only); cleared by
    // the next byte or request.
    park_due: AtomicBool,
    // How many times the connection was parked (`server::keepalive`).
    parks: AtomicU64,
    // The socket's last write or flush waited for the client.
    write_waits: AtomicBool,
    // The task reading the socket, woken when the last request ends so that the
    // idle clock starts even if no byte arrives.
    reader: Mutex<Option<Waker>>,
}

impl Activity {
    /// A connection accepted now, idle until its first request.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            expired: AtomicU8::new(RUNNING),
            park_due: AtomicBool::new(false),
            parks: AtomicU64::new(0),
            write_waits: AtomicBool::new(false),
            reader: Mutex::new(None),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// Which clock ended the connection, if one did.
    pub fn expired(&self) -> Option<Expired> {
        match self.expired.load(Ordering::Acquire) {
            IDLE => Some(Expired::Idle),
            HEADER => Some(Expired::Header),
            SEND => Some(Expired::Send),
            _ => None,
        }
    }

    /// Whether an HTTP/1.1 connection is idle between requests as the socket sees
    /// it: its reads have waited [`PARK_AFTER`] with no request in flight and no
    /// byte of a head read, and its last write or flush completed, so nothing
    /// waits to be sent.
    pub fn parkable(&self) -> bool {
        self.park_due.load(Ordering::Acquire)
            && !self.write_waits.load(Ordering::Acquire)
            && self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == NONE
            && self.expired.load(Ordering::Acquire) == RUNNING
    }

    /// Counts a park of the connection.
    pub fn parked(&self) {
        self.parks.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times the connection was parked.
    #[cfg(test)]
    pub fn parks(&self) -> u64 {
        self.parks.load(Ordering::Relaxed)
    }

    /// When the last request ended (or the connection was accepted).
    fn idle_since(&self) -> Instant {
        self.at(self.idle_since.load(Ordering::Acquire))
    }

    /// A request reached the service; the guard ends it when dropped.
    pub fn begin(self: &Arc<Activity>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.park_due.store(false, Ordering::Release);
        self.head_started.store(NONE, Ordering::Release);
        InFlight(self.clone())
    }

    /// Bytes arrived. With nothing in flight on HTTP/1.1, they start a head.
    fn read(&self, starts_head: bool) {
        self.park_due.store(false, Ordering::Release);
        if starts_head
            && self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == NONE
        {
            self.head_started.store(self.now_ms(), Ordering::Release);
        }
    }

    /// When the connection's clock runs out, and which; `None` while a request is
    /// in flight.
    fn deadline(&self, timeouts: Timeouts) -> Option<(Instant, Expired)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.head_started.load(Ordering::Acquire) {
            NONE => Some((
                self.at(self.idle_since.load(Ordering::Acquire)) + timeouts.idle,
                Expired::Idle,
            )),
            started => Some((self.at(started) + timeouts.header, Expired::Header)),
        }
    }
}

/// One request in flight on a connection, until its response body is done.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since
            .store(activity.now_ms(), Ordering::Release);
        activity.park_due.store(false, Ordering::Release);
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(waker) = activity.reader.lock().take() {
                waker.wake();
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its request's [`InFlight`] when it is dropped.
    pub struct Guarded<B> {
        #[pin]
        inner: B,
        _request: InFlight,
    }
}

impl<B> Guarded<B> {
    /// `inner`, holding `request` in flight while it lives.
    pub fn new(inner: B, request: InFlight) -> Self {
        Guarded {
            inner,
            _request: request,
        }
    }
}

impl<B: Body<Data = Bytes>> Body for Guarded<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The client's socket, with the connection's clock on its reads.
    pub struct Watched<T> {
        #[pin]
        inner: T,
        activity: Arc<Activity>,
        timeouts: Timeouts,
        // Armed while a write waits for the client; made at the first such wait.
        send_clock: Option<Pin<Box<Sleep>>>,
        send_waiting: bool,
        // HTTP/1.1: bytes with nothing in flight start a head.
        heads_from_bytes: bool,
        clock: Pin<Box<Sleep>>,
    }
}

impl<T> Watched<T> {
    /// Watches `inner`; `http1` says whether bytes between requests start a head.
    pub fn new(inner: T, activity: Arc<Activity>, timeouts: Timeouts, http1: bool) -> Self {
        Watched {
            inner,
            activity,
            timeouts,
            heads_from_bytes: http1,
            clock: Box::pin(tokio::time::sleep(timeouts.idle)),
            send_clock: None,
            send_waiting: false,
        }
    }
}

impl<T: AsyncRead> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if this.activity.expired().is_some() {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match this.inner.poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.activity.read(*this.heads_from_bytes);
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let mut reader = this.activity.reader.lock();
        if !reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *reader = Some(cx.waker().clone());
        }
        drop(reader);
        let Some((deadline, which)) = this.activity.deadline(*this.timeouts) else {
            return Poll::Pending;
        };
        // While an HTTP/1.1 connection waits idle, the clock rings first when it may
        // be parked, then at the idle deadline.
        if which == Expired::Idle
            && *this.heads_from_bytes
            && !this.activity.park_due.load(Ordering::Acquire)
        {
            let park_at = this.activity.idle_since() + PARK_AFTER;
            if park_at < deadline {
                if this.clock.deadline() != park_at {
                    this.clock.as_mut().reset(park_at);
                }
                if this.clock.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.activity.park_due.store(true, Ordering::Release);
            }
        }
        if this.clock.deadline() != deadline {
            this.clock.as_mut().reset(deadline);
        }
        if this.clock.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.activity.expired.store(which.code(), Ordering::Release);
        match which {
            // As if the client had closed: hyper ends an idle connection quietly.
            Expired::Idle => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not complete within listen.header_timeout",
            ))),
        }
    }
}

/// A write's outcome seen by the send clock: progress stops it, a wait starts it (once),
/// and a wait past `listen.send_timeout` ends the connection.
fn send_clock<R>(
    clock: &mut Option<Pin<Box<Sleep>>>,
    waiting: &mut bool,
    activity: &Activity,
    timeout: Duration,
    cx: &mut Context<'_>,
    poll: Poll<io::Result<R>>,
) -> Poll<io::Result<R>> {
    activity
        .write_waits
        .store(poll.is_pending(), Ordering::Release);
    if poll.is_ready() {
        *waiting = false;
        return poll;
    }
    let deadline = Instant::now() + timeout;
    let clock = clock.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    if !*waiting {
        *waiting = true;
        clock.as_mut().reset(deadline);
    }
    if clock.as_mut().poll(cx).is_pending() {
        return Poll::Pending;
    }
    activity.expired.store(SEND, Ordering::Release);
    Poll::Ready(Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "client took nothing for listen.send_timeout",
    )))
}

impl<T: AsyncWrite> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.inner.poll_write(cx, buf);
        let timeout = this.timeouts.send;
        send_clock(
            this.send_clock,
            this.send_waiting,
            this.activity,
            timeout,
            cx,
            poll,
        )
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.inner.poll_write_vectored(cx, bufs);
        let timeout = this.timeouts.send;
        send_clock(
            this.send_clock,
            this.send_waiting,
            this.activity,
            timeout,
            cx,
            poll,
        )
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let poll = this.inner.poll_flush(cx);
        let timeout = this.timeouts.send;
        send_clock(
            this.send_clock,
            this.send_waiting,
            this.activity,
            timeout,
            cx,
            poll,
        )
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
