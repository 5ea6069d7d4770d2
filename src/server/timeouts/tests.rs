use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

const TIMEOUTS: Timeouts = Timeouts {
    idle: Duration::from_secs(60),
    header: Duration::from_secs(10),
    send: Duration::from_secs(20),
};

fn watched(http1: bool) -> (Watched<DuplexStream>, DuplexStream, Arc<Activity>) {
    let (server, client) = tokio::io::duplex(1024);
    let activity = Activity::new();
    (
        Watched::new(server, activity.clone(), TIMEOUTS, http1),
        client,
        activity,
    )
}

/// Reads once, giving up after `within` (virtual time): `None` if still waiting.
async fn read_within(
    io: &mut Watched<DuplexStream>,
    within: Duration,
) -> Option<io::Result<usize>> {
    let mut buf = [0u8; 64];
    tokio::time::timeout(within, io.read(&mut buf)).await.ok()
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_ends_as_if_closed_after_the_idle_timeout() {
    let (mut io, _client, activity) = watched(true);
    assert!(read_within(&mut io, Duration::from_secs(59))
        .await
        .is_none());
    let read = read_within(&mut io, Duration::from_secs(2)).await;
    assert_eq!(read.map(|r| r.ok()), Some(Some(0)), "end of stream");
    assert_eq!(activity.expired(), Some(Expired::Idle));
}

#[tokio::test(start_paused = true)]
async fn a_head_started_has_the_header_timeout_from_its_first_byte() {
    let (mut io, mut client, activity) = watched(true);
    tokio::time::sleep(Duration::from_secs(30)).await;
    client.write_all(b"GET /v2/ HTTP/1.1\r\n").await.unwrap();
    assert_eq!(
        read_within(&mut io, Duration::from_secs(1))
            .await
            .map(|r| r.ok()),
        Some(Some(19))
    );
    // More bytes do not restart the clock: the head as a whole has 10 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    client.write_all(b"Host: x\r\n").await.unwrap();
    assert!(read_within(&mut io, Duration::from_secs(1)).await.is_some());
    assert!(read_within(&mut io, Duration::from_secs(3)).await.is_none());
    let read = read_within(&mut io, Duration::from_secs(2)).await;
    let error = read.and_then(|r| r.err()).expect("a timeout error");
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert_eq!(activity.expired(), Some(Expired::Header));
}

#[tokio::test(start_paused = true)]
async fn no_clock_runs_while_a_request_is_in_flight_and_idle_starts_when_it_ends() {
    let (mut io, mut client, activity) = watched(true);
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(read_within(&mut io, Duration::from_secs(1)).await.is_some());
    let request = activity.begin();
    assert!(read_within(&mut io, Duration::from_secs(3600))
        .await
        .is_none());
    // A slow body's bytes do not start a head while the request is in flight.
    client.write_all(b"body").await.unwrap();
    assert!(read_within(&mut io, Duration::from_secs(1)).await.is_some());
    assert!(read_within(&mut io, Duration::from_secs(3600))
        .await
        .is_none());
    drop(request);
    assert!(read_within(&mut io, Duration::from_secs(59))
        .await
        .is_none());
    let read = read_within(&mut io, Duration::from_secs(2)).await;
    assert_eq!(read.map(|r| r.ok()), Some(Some(0)));
    assert_eq!(activity.expired(), Some(Expired::Idle));
}

#[tokio::test(start_paused = true)]
async fn the_end_of_the_last_request_wakes_a_reader_that_waits_with_no_clock() {
    let (io, _client, activity) = watched(true);
    let request = activity.begin();
    let reader = tokio::spawn(async move {
        let mut io = io;
        let mut buf = [0u8; 8];
        io.read(&mut buf).await.map_err(|e| e.kind())
    });
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(!reader.is_finished());
    drop(request);
    let start = Instant::now();
    assert_eq!(reader.await.unwrap(), Ok(0));
    assert_eq!(start.elapsed(), TIMEOUTS.idle);
}

#[tokio::test(start_paused = true)]
async fn on_http2_frames_between_requests_keep_the_idle_clock() {
    let (mut io, mut client, activity) = watched(false);
    tokio::time::sleep(Duration::from_secs(30)).await;
    client.write_all(b"PING frame").await.unwrap();
    assert!(read_within(&mut io, Duration::from_secs(1)).await.is_some());
    // Past the header timeout, but a frame is not a head: still open until idle ends.
    assert!(read_within(&mut io, Duration::from_secs(28))
        .await
        .is_none());
    let read = read_within(&mut io, Duration::from_secs(2)).await;
    assert_eq!(read.map(|r| r.ok()), Some(Some(0)));
    assert_eq!(activity.expired(), Some(Expired::Idle));
}

#[tokio::test(start_paused = true)]
async fn a_write_the_client_never_takes_ends_after_the_send_timeout() {
    let (mut io, mut client, activity) = watched(true);
    let request = activity.begin();
    // The duplex holds 1024 bytes: a client that takes 4 KiB every 15 s (under the
    // 20 s send timeout) keeps the connection however long it takes.
    let data = vec![1u8; 64 * 1024];
    for _ in 0..10 {
        let write = io.write_all(&data[..4096]);
        let drain = async {
            tokio::time::sleep(Duration::from_secs(15)).await;
            let mut taken = [0u8; 4096];
            client.read_exact(&mut taken).await.map(|_| ())
        };
        let (written, drained) = tokio::join!(write, drain);
        assert!(
            written.is_ok() && drained.is_ok(),
            "a slow reader is served"
        );
    }
    assert_eq!(activity.expired(), None);
    // Now the client stops taking anything.
    let start = Instant::now();
    let error = io.write_all(&data).await.expect_err("the write gives up");
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert_eq!(start.elapsed(), TIMEOUTS.send);
    assert_eq!(activity.expired(), Some(Expired::Send));
    drop(request);
}
