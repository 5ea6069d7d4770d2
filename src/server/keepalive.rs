//! HTTP/1.1 connections that hold no HTTP state between requests.
//!
//! hyper keeps a connection's read and write buffers (8 KiB each) and its state
//! machine for the connection's whole life, so every idle keep-alive connection
//! costs them. Here a connection is served by one hyper connection per busy
//! spell: when hyper has waited [`PARK_AFTER`](super::timeouts::PARK_AFTER) for
//! the next request with nothing in flight, nothing buffered to write and no byte
//! of a head read, the gate ends that hyper connection (hyper's own graceful
//! shutdown, which closes an idle connection at once), takes the socket back, and
//! waits for the client's next byte with only the TLS state. That byte, and any bytes hyper had read ahead, are put back in
//! front of the socket for the next hyper connection.
//!
//! The connection's clocks ([`Watched`](super::timeouts::Watched)) run on the socket itself, so they see
//! the parked wait as they saw hyper's: `listen.idle_timeout` until the first
//! byte, `listen.header_timeout` from it.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use super::timeouts::Activity;

/// Serves HTTP/1.1 on `io` until the client leaves, a clock runs out, hyper
/// closes the connection, or `stop` says the server is shutting down (the
/// request in flight, if any, is finished first).
pub async fn serve<T, S, B>(
    builder: &http1::Builder,
    io: T,
    mut service: S,
    activity: &Activity,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<Incoming, ResBody = B> + Unpin,
    S::Future: Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut io = Prefixed::new(io);
    let mut stopping = *stop.borrow_and_update();
    loop {
        // Boxed: a parked connection's task keeps no slot for hyper's state.
        let mut conn = Box::new(builder.serve_connection(TokioIo::new(io), service));
        let mut parked = false;
        if stopping {
            Pin::new(&mut *conn).graceful_shutdown();
        }
        let served = {
            let mut stopped = std::pin::pin!(stop.changed());
            poll_fn(|cx| {
                if !stopping && stopped.as_mut().poll(cx).is_ready() {
                    stopping = true;
                    Pin::new(&mut *conn).graceful_shutdown();
                }
                loop {
                    match conn.poll_without_shutdown(cx) {
                        Poll::Pending if !parked && !stopping && activity.parkable() => {
                            // hyper is idle: close it (it returns the socket and
                            // anything it read ahead) and poll it to its end.
                            parked = true;
                            activity.parked();
                            Pin::new(&mut *conn).graceful_shutdown();
                        }
                        other => return other,
                    }
                }
            })
            .await
        };
        let parts = conn.into_parts();
        io = parts.io.into_inner();
        service = parts.service;
        served?;
        if !parked || stopping {
            // hyper ended the connection itself (the client or a response said
            // `Connection: close`, or the client left), or the server is stopping.
            let _ = io.shutdown().await;
            return Ok(());
        }
        // Bytes hyper read ahead, copied out: `read_buf` holds hyper's whole
        // read buffer, which parking is meant to free.
        if !parts.read_buf.is_empty() {
            io.prefix = Bytes::copy_from_slice(&parts.read_buf);
        }
        drop(parts.read_buf);
        if io.prefix.is_empty() {
            // Parked: wait for the next request's first byte.
            let mut first = [0u8; 1];
            let read = tokio::select! {
                read = io.inner.read(&mut first) => read,
                _ = stop.changed() => Ok(0),
            };
            match read {
                Ok(0) => {
                    // The client left, the idle clock ran out, or the server is
                    // stopping: end quietly, as hyper does with an idle connection.
                    let _ = io.shutdown().await;
                    return Ok(());
                }
                Ok(_) => io.prefix = Bytes::copy_from_slice(&first),
                Err(_) => return Ok(()),
            }
        }
        stopping = *stop.borrow();
    }
}

pin_project_lite::pin_project! {
    /// A socket with bytes already read from it put back in front.
    struct Prefixed<T> {
        prefix: Bytes,
        #[pin]
        inner: T,
    }
}

impl<T> Prefixed<T> {
    fn new(inner: T) -> Self {
        Prefixed {
            prefix: Bytes::new(),
            inner,
        }
    }
}

impl<T: AsyncRead> AsyncRead for Prefixed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if this.prefix.is_empty() {
            return this.inner.poll_read(cx, buf);
        }
        let n = this.prefix.len().min(buf.remaining());
        buf.put_slice(&this.prefix[..n]);
        this.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite> AsyncWrite for Prefixed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
