//! The accept loop: TLS handshake with a timeout (plain HTTP on the port gets a
//! 400 that says so, [`plain_http`]), HTTP/1.1 or HTTP/2 per ALPN,
//! a connection limit, idle and head timeouts ([`timeouts`]), idle HTTP/1.1
//! connections parked without HTTP state ([`keepalive`]), and graceful shutdown.
//!
//! [`run`] takes an already bound listener, so `main` and the tests share it. On
//! shutdown the listener is dropped first (new connections are refused), then
//! every connection is told to stop (an idle one ends at once, a busy one after
//! its request) and they get up to the grace period to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::metrics::{ConnectionTimeout, HandshakeFailure, Tracked};
use crate::proxy;
use crate::state::State;
use proxy_protocol::Header;

pub(crate) mod admin;
mod keepalive;
mod plain_http;
pub mod proxy_protocol;
mod timeouts;
pub(crate) mod workers;

use timeouts::{Activity, Expired, Guarded, Timeouts, Watched};

/// Pause after a failed `accept` (such as too many open files), so the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Serves connections until `shutdown` completes, then drains them.
pub async fn run(
    listener: TcpListener,
    state: watch::Receiver<Arc<State>>,
    shutdown: impl Future<Output = ()>,
) {
    // Every connection holds a permit and a receiver of `stop`; draining is
    // saying stop and then taking back every permit.
    let (stop, stopped) = watch::channel(false);
    let mut builders = Builders::for_state(state.borrow().clone());
    let max_connections = state.borrow().max_connections;
    let limit = Arc::new(Semaphore::new(max_connections));
    tokio::pin!(shutdown);
    let mut at_limit = false;
    let mut workers = match workers::Workers::start() {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "worker threads did not start: serving on the main runtime");
            None
        }
    };
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => {
                permit.expect("the connection semaphore is never closed")
            }
            () = &mut shutdown => break,
        };
        // Say so once each time the limit is reached, not once per connection.
        let full = limit.available_permits() == 0;
        if full && !at_limit {
            tracing::warn!(
                max_connections = state.borrow().max_connections,
                "connection limit reached (listen.max_connections): new connections wait \
                 in the kernel's backlog until one closes"
            );
        }
        at_limit = full;
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if !Arc::ptr_eq(&builders.state, &state.borrow()) {
            builders = Builders::for_state(state.borrow().clone());
        }
        let conn = Connection {
            state: state.clone(),
            builders: builders.clone(),
            stop: stopped.clone(),
            _permit: permit,
        };
        hand(workers.as_mut(), conn, tcp, peer);
    }
    drop(listener);
    let grace = state.borrow().grace_period;
    let open = max_connections - limit.available_permits();
    tracing::info!(open_connections = open, grace = ?grace, "shutting down: draining connections");
    let _ = stop.send(true);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = limit.acquire_many(all) => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace = ?grace, "grace period over: closing remaining connections");
        }
    }
    if let Some(workers) = workers {
        workers.stop().await;
    }
}

/// Serves `conn` on the next worker ([`workers`]), or here if there are none.
fn hand(
    workers: Option<&mut workers::Workers>,
    conn: Connection,
    tcp: TcpStream,
    peer: SocketAddr,
) {
    let Some(workers) = workers else {
        tokio::spawn(conn.serve(tcp, peer));
        return;
    };
    // The socket leaves this runtime's reactor and joins the worker's.
    let std = match tcp.into_std() {
        Ok(std) => std,
        Err(e) => {
            tracing::warn!(client.addr = %peer, error = %e, "could not hand a connection to a worker");
            return;
        }
    };
    let job: workers::Job = Box::new(move || match TcpStream::from_std(std) {
        Ok(tcp) => {
            tokio::spawn(conn.serve(tcp, peer));
        }
        Err(e) => {
            tracing::warn!(client.addr = %peer, error = %e, "a worker could not take a connection")
        }
    });
    if let Err(job) = workers.hand(job) {
        // Every worker is gone (only a panic could end one): serve it here.
        tracing::warn!(client.addr = %peer, "no worker takes connections: served on the main runtime");
        job();
    }
}

/// The HTTP/1.1 and HTTP/2 connection settings of one state (the head limits are
/// configurable), shared by every connection accepted under it.
#[derive(Clone)]
struct Builders {
    state: Arc<State>,
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
}

impl Builders {
    fn for_state(state: Arc<State>) -> Builders {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            // `listen.header_timeout` and `listen.idle_timeout` run in `timeouts`:
            // hyper's clock would start at the end of the previous response, so
            // it could not tell an idle connection from a slow head.
            .header_read_timeout(None)
            .max_buf_size(state.max_header_bytes)
            // max_buf_size alone is checked only while a head is incomplete, so a head
            // that arrives whole in one large read would slip past it.
            .max_header_size(state.max_header_bytes)
            .max_headers(state.max_headers)
            // Header names as the registry (Go) and nginx write them (`Www-Authenticate`),
            // for scripts that grep them case-sensitively; HTTP/2 is lower case by rule.
            .title_case_headers(true)
            .keep_alive(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            // Validated to at most 1 MiB.
            .max_header_list_size(u32::try_from(state.max_header_bytes).unwrap_or(u32::MAX))
            .adaptive_window(true);
        Builders {
            state,
            http1,
            http2,
        }
    }
}

/// One accepted TCP connection and what it needs.
struct Connection {
    state: watch::Receiver<Arc<State>>,
    builders: Builders,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, mut tcp: TcpStream, mut peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let snapshot = self.state.borrow().clone();
        let metrics = snapshot.metrics.clone();
        let _open = Tracked::new(metrics.open_connections());
        let deadline = tokio::time::Instant::now() + snapshot.handshake_timeout;
        if snapshot.proxy_protocol {
            // Boxed: its 4 KiB header buffer would otherwise enlarge every
            // connection's task, PROXY protocol or not, for its whole life.
            let header = Box::pin(proxy_protocol::read_header(&mut tcp));
            match tokio::time::timeout_at(deadline, header).await {
                Ok(Ok(Header::Proxied { source, .. })) => peer = source,
                Ok(Ok(Header::Unknown)) => {}
                Ok(Err(e)) => {
                    metrics.handshake_failure(HandshakeFailure::proxy_protocol);
                    tracing::warn!(peer = %peer, error = %e, "PROXY protocol header refused");
                    return;
                }
                Err(_) => {
                    metrics.handshake_failure(HandshakeFailure::timeout);
                    tracing::debug!(peer = %peer, "no PROXY protocol header in time");
                    return;
                }
            }
        }
        // Only peeked at: a ClientHello reaches the handshake untouched.
        match tokio::time::timeout_at(deadline, plain_http::sniff(&tcp)).await {
            Ok(false) => {}
            Ok(true) => {
                metrics.handshake_failure(HandshakeFailure::plain_http);
                tracing::debug!(client.addr = %peer, "plain HTTP on the TLS port: answered 400");
                drop(snapshot);
                // Boxed: its buffers are needed only on this rare path.
                Box::pin(plain_http::refuse(tcp, deadline)).await;
                return;
            }
            Err(_) => {
                metrics.handshake_failure(HandshakeFailure::timeout);
                tracing::debug!(client.addr = %peer, "tls handshake timed out");
                return;
            }
        }
        let acceptor = TlsAcceptor::from(snapshot.tls.clone());
        // Boxed: the handshake's state (1.2 KiB) is needed only while it runs.
        let handshake = Box::pin(acceptor.accept(tcp));
        let timeouts = Timeouts {
            idle: snapshot.idle_timeout,
            header: snapshot.header_timeout,
            send: snapshot.send_timeout,
        };
        drop(snapshot);
        // The stream goes straight into its box: a local holding it across the awaits
        // below would keep a slot of its size (1.2 KiB) in the connection's task.
        let (io, activity, alpn_h2, cert_user) =
            match tokio::time::timeout_at(deadline, handshake).await {
                Ok(Ok(stream)) => {
                    let alpn_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    let cert_user = crate::tls::client_cert::user(stream.get_ref().1, peer);
                    let activity = Activity::new();
                    let io = Box::new(Watched::new(stream, activity.clone(), timeouts, !alpn_h2));
                    (io, activity, alpn_h2, cert_user)
                }
                Ok(Err(e)) => {
                    metrics.handshake_failure(HandshakeFailure::error);
                    tracing::debug!(client.addr = %peer, error = %e, "tls handshake failed");
                    return;
                }
                Err(_) => {
                    metrics.handshake_failure(HandshakeFailure::timeout);
                    tracing::debug!(client.addr = %peer, "tls handshake timed out");
                    return;
                }
            };
        let state = self.state;
        let requests = activity.clone();
        let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            // The client certificate's user (read once per connection) goes with
            // every request, for `proxy::authenticate` to use without a password.
            if let Some(user) = &cert_user {
                req.extensions_mut().insert(user.clone());
            }
            // Each request sees the newest state, so a reload applies to
            // keep-alive connections too.
            let current = state.borrow().clone();
            let request = requests.begin();
            // Boxed: the request's state machine (~8 KiB) lives on the heap only
            // while a request is in flight, not in a slot of every connection.
            Box::pin(async move {
                let response = proxy::handle(current, peer, req).await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| Guarded::new(body, request)))
            })
        });
        // The protocol is the one ALPN agreed on (HTTP/2 over TLS requires ALPN,
        // RFC 9113 §3.2). HTTP/1.1 connections, nearly all of them, hold no HTTP
        // state while idle ([`keepalive`]); an HTTP/2 connection's state is boxed,
        // so that it does not enlarge every HTTP/1.1 connection's task.
        let mut stop = self.stop;
        let served = if alpn_h2 {
            let mut conn = Box::pin(
                self.builders
                    .http2
                    .serve_connection(TokioIo::new(io), service),
            );
            let mut stopping = false;
            loop {
                tokio::select! {
                    served = conn.as_mut() => break served,
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        } else {
            keepalive::serve(&self.builders.http1, io, service, &activity, &mut stop).await
        };
        if let Some(expired) = activity.expired() {
            let (timeout, key) = match expired {
                Expired::Idle => (ConnectionTimeout::idle, "listen.idle_timeout"),
                Expired::Header => (ConnectionTimeout::header, "listen.header_timeout"),
                Expired::Send => (ConnectionTimeout::send, "listen.send_timeout"),
            };
            metrics.connection_timeout(timeout);
            tracing::debug!(client.addr = %peer, timeout = key, "connection closed: timed out");
        } else if let Err(e) = served {
            tracing::debug!(client.addr = %peer, error = %e, "connection ended with an error");
        }
    }
}
