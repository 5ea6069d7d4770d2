use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::service::service_fn;
use tokio::io::DuplexStream;
use tokio::sync::oneshot;

use super::*;
use crate::server::timeouts::{Expired, Guarded, Timeouts, Watched, PARK_AFTER};

const TIMEOUTS: Timeouts = Timeouts {
    idle: Duration::from_secs(60),
    header: Duration::from_secs(10),
    send: Duration::from_secs(20),
};

const REQUEST: &[u8] = b"GET /v2/ HTTP/1.1\r\nHost: gate\r\n\r\n";

/// A connection served by [`serve`] over an in-memory socket, answering every
/// request with `ok` (after `hold` resolves, for the first request given one).
struct Served {
    client: DuplexStream,
    activity: Arc<Activity>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), hyper::Error>>,
}

fn start(hold: Option<oneshot::Receiver<()>>) -> Served {
    let (server, client) = tokio::io::duplex(64 * 1024);
    let activity = Activity::new();
    let io = Box::new(Watched::new(server, activity.clone(), TIMEOUTS, true));
    let (stop, mut stopped) = watch::channel(false);
    let hold = Arc::new(parking_lot::Mutex::new(hold));
    let requests = activity.clone();
    let service = service_fn(move |_req| {
        let request = requests.begin();
        let hold = hold.lock().take();
        Box::pin(async move {
            if let Some(hold) = hold {
                let _ = hold.await;
            }
            let body = Guarded::new(Full::new(Bytes::from_static(b"ok")), request);
            Ok::<_, Infallible>(hyper::Response::new(body))
        })
    });
    let served = activity.clone();
    let task = tokio::spawn(async move {
        let mut builder = http1::Builder::new();
        builder.timer(hyper_util::rt::TokioTimer::new());
        serve(&builder, io, service, &served, &mut stopped).await
    });
    Served {
        client,
        activity,
        stop,
        task,
    }
}

/// Reads one whole `ok` response (its head and two-byte body).
async fn response(client: &mut DuplexStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut byte))
            .await
            .expect("a response in time")
            .expect("a readable socket");
        assert_eq!(n, 1, "the connection ended within a response: {got:?}");
        got.push(byte[0]);
    }
    String::from_utf8(got).expect("a text response")
}

/// Whether the server ends the connection (end of stream) within `within`.
async fn ends_within(client: &mut DuplexStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, client.read(&mut byte)).await,
        Ok(Ok(0))
    )
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_parked_and_serves_the_next_request_on_the_same_socket() {
    let mut c = start(None);
    c.client.write_all(REQUEST).await.unwrap();
    assert!(response(&mut c.client).await.starts_with("HTTP/1.1 200 OK"));
    tokio::time::sleep(PARK_AFTER / 2).await;
    assert_eq!(
        c.activity.parks(),
        0,
        "a busy connection is not parked at once"
    );
    tokio::time::sleep(PARK_AFTER).await;
    assert_eq!(c.activity.parks(), 1, "idle for PARK_AFTER: parked");
    // The next request, and two pipelined ones, on the same socket.
    c.client.write_all(REQUEST).await.unwrap();
    assert!(response(&mut c.client).await.starts_with("HTTP/1.1 200 OK"));
    tokio::time::sleep(PARK_AFTER * 2).await;
    assert_eq!(c.activity.parks(), 2);
    c.client
        .write_all(&[REQUEST, REQUEST].concat())
        .await
        .unwrap();
    assert!(response(&mut c.client).await.starts_with("HTTP/1.1 200 OK"));
    assert!(response(&mut c.client).await.starts_with("HTTP/1.1 200 OK"));
    // A head split across a park: its first bytes wake the connection.
    tokio::time::sleep(PARK_AFTER * 2).await;
    c.client.write_all(&REQUEST[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    c.client.write_all(&REQUEST[5..]).await.unwrap();
    assert!(response(&mut c.client).await.starts_with("HTTP/1.1 200 OK"));
    drop(c.client);
    assert!(c.task.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_parked_connection_ends_after_the_idle_timeout() {
    let mut c = start(None);
    c.client.write_all(REQUEST).await.unwrap();
    response(&mut c.client).await;
    assert!(!ends_within(&mut c.client, TIMEOUTS.idle - Duration::from_secs(1)).await);
    assert_eq!(c.activity.parks(), 1);
    assert!(ends_within(&mut c.client, Duration::from_secs(2)).await);
    assert_eq!(c.activity.expired(), Some(Expired::Idle));
    assert!(c.task.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_head_begun_before_parking_has_the_header_timeout() {
    let mut c = start(None);
    c.client.write_all(REQUEST).await.unwrap();
    response(&mut c.client).await;
    tokio::time::sleep(PARK_AFTER * 2).await;
    c.client.write_all(b"GET /v2/ HTTP/1.1\r\n").await.unwrap();
    assert!(!ends_within(&mut c.client, TIMEOUTS.header - Duration::from_secs(1)).await);
    assert!(ends_within(&mut c.client, Duration::from_secs(2)).await);
    assert_eq!(c.activity.expired(), Some(Expired::Header));
}

#[tokio::test(start_paused = true)]
async fn connection_close_ends_the_connection_without_parking() {
    let mut c = start(None);
    c.client
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(response(&mut c.client)
        .await
        .to_ascii_lowercase()
        .contains("connection: close"));
    assert!(ends_within(&mut c.client, PARK_AFTER / 10).await);
    assert_eq!(c.activity.parks(), 0);
}

#[tokio::test(start_paused = true)]
async fn stopping_ends_a_parked_connection_at_once() {
    let mut c = start(None);
    c.client.write_all(REQUEST).await.unwrap();
    response(&mut c.client).await;
    tokio::time::sleep(PARK_AFTER * 2).await;
    assert_eq!(c.activity.parks(), 1);
    c.stop.send(true).unwrap();
    assert!(ends_within(&mut c.client, Duration::from_millis(10)).await);
    assert!(c.task.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn stopping_finishes_the_request_in_flight_then_closes() {
    let (release, hold) = oneshot::channel();
    let mut c = start(Some(hold));
    c.client.write_all(REQUEST).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    c.stop.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    release.send(()).unwrap();
    let answer = response(&mut c.client).await.to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200 ok"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(ends_within(&mut c.client, Duration::from_millis(10)).await);
    assert_eq!(c.activity.parks(), 0);
}

#[tokio::test]
async fn prefixed_reads_the_prefix_then_the_socket() {
    let (mut client, server) = tokio::io::duplex(64);
    let mut io = Prefixed::new(server);
    io.prefix = Bytes::from_static(b"GE");
    client.write_all(b"T /v2/").await.unwrap();
    drop(client);
    let mut all = Vec::new();
    io.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, b"GET /v2/");
}

#[tokio::test]
async fn prefixed_hands_out_a_long_prefix_in_pieces() {
    let (_client, server) = tokio::io::duplex(64);
    let mut io = Prefixed::new(server);
    io.prefix = Bytes::from_static(b"0123456789");
    let mut piece = [0u8; 4];
    assert_eq!(io.read(&mut piece).await.unwrap(), 4);
    assert_eq!(&piece, b"0123");
    assert_eq!(io.read(&mut piece).await.unwrap(), 4);
    assert_eq!(&piece, b"4567");
    assert_eq!(io.read(&mut piece).await.unwrap(), 2);
    assert_eq!(&piece[..2], b"89");
}
