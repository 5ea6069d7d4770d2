//! Slow and hostile clients, on the real binary in front of the real
//! registry: hundreds of connections that idle, trickle a head or stall a body are
//! shed within `listen.idle_timeout`, `listen.header_timeout` and
//! `listen.body_timeout` while curl keeps getting 200s; a slow but steady upload that
//! outlasts every timeout succeeds; a download the client stops reading is ended by
//! `listen.send_timeout` while a slow steady one completes; the connection limit
//! says so in the log; and an HTTP/1.1 connection parked between its requests
//! (`server::keepalive`) carries a whole blob push.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use crate::support::blob::{assert_stored, digest, pattern, start_upload, upload_path};
use crate::support::client::{basic, read, streamed, Client, Proto};
use crate::support::gate::{write_setup, GateProcess};
use crate::support::install_hint;
use crate::support::registry::Registry;

const HANDSHAKE: Duration = Duration::from_secs(2);
const HEADER: Duration = Duration::from_secs(2);
const IDLE: Duration = Duration::from_secs(3);
const BODY: Duration = Duration::from_secs(2);
const SEND: Duration = Duration::from_secs(2);
/// Scheduling slack on a loaded 2-core machine, on top of a timeout.
const SLACK: Duration = Duration::from_secs(3);
/// Longest any single slow connection is kept by the test itself.
const BOUND: Duration = Duration::from_secs(20);

const SLOW_HEADS: usize = 200;
const STALLED_BODIES: usize = 100;
const IDLE_CONNECTIONS: usize = 100;

fn env() -> Vec<(&'static str, String)> {
    let secs = |d: Duration| format!("{}s", d.as_secs());
    vec![
        ("REGISTRY_GATE_LISTEN_HANDSHAKE_TIMEOUT", secs(HANDSHAKE)),
        ("REGISTRY_GATE_LISTEN_HEADER_TIMEOUT", secs(HEADER)),
        ("REGISTRY_GATE_LISTEN_IDLE_TIMEOUT", secs(IDLE)),
        ("REGISTRY_GATE_LISTEN_BODY_TIMEOUT", secs(BODY)),
        ("REGISTRY_GATE_LISTEN_SEND_TIMEOUT", secs(SEND)),
    ]
}

async fn start(extra_env: &[(&'static str, String)]) -> (Registry, tempfile::TempDir, GateProcess) {
    let registry = tokio::task::spawn_blocking(Registry::start)
        .await
        .expect("registry");
    let dir = tempfile::tempdir().expect("tempdir");
    // No throttle: hundreds of logins from one address are the point here.
    write_setup(dir.path(), &registry.url(), "[throttle]\nenabled = false");
    let mut vars = env();
    vars.extend_from_slice(extra_env);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gate = GateProcess::start_with_env(dir.path(), &vars);
    (registry, dir, gate)
}

/// How a slow connection ended: after how long, and what the gate wrote.
struct Shed {
    after: Duration,
    answer: String,
}

/// Reads until the gate closes the connection (or errors), for at most [`BOUND`].
async fn until_closed<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, since: Instant) -> Shed {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(BOUND, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the gate kept the connection for {BOUND:?}");
    Shed {
        after: since.elapsed(),
        answer: String::from_utf8_lossy(&answer).into_owned(),
    }
}

/// A head that never ends: a byte of a header line every 250 ms.
async fn slow_head(client: Client) -> Shed {
    let tls = client.connect_raw().await;
    let (mut rx, mut tx) = tokio::io::split(tls);
    let since = Instant::now();
    let head = format!(
        "GET /v2/ HTTP/1.1\r\nHost: {}\r\nX-Slow: ",
        client.authority()
    );
    tx.write_all(head.as_bytes()).await.expect("first bytes");
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        while started.elapsed() < BOUND {
            // The pace of the trickle is the point: a byte every 250 ms.
            tokio::time::sleep(Duration::from_millis(250)).await;
            if tx.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    let shed = until_closed(&mut rx, since).await;
    trickle.abort();
    shed
}

/// A PATCH announcing 1 MiB that sends 1 KiB and then nothing.
async fn stalled_body(client: Client, path: String) -> Shed {
    let mut tls = client.connect_raw().await;
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n",
        client.authority(),
        basic("alice", "pw").to_str().expect("ascii"),
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    tls.write_all(&[7u8; 1024]).await.expect("some body");
    let since = Instant::now();
    until_closed(&mut tls, since).await
}

/// A connection that completes its handshake and never sends a request.
async fn idle(client: Client) -> Shed {
    let mut tls = client.connect_raw().await;
    let since = Instant::now();
    until_closed(&mut tls, since).await
}

/// `GET /v2/` with curl, the real client: its status code.
fn curl_v2(dir: &Path, authority: &str, port: u16) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(["--http1.1", "-u", "alice:pw", "--cacert"])
        .arg(dir.join("certs/ca.crt"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://{authority}/v2/"))
        .output()
        .unwrap_or_else(|e| panic!("{e}: {}", install_hint("curl", "curl")));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn assert_within(what: &str, shed: &[Shed], timeout: Duration) {
    for s in shed {
        assert!(
            s.after + Duration::from_millis(200) >= timeout && s.after <= timeout + SLACK,
            "{what}: closed after {:?}, timeout {timeout:?}",
            s.after
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hundreds_of_slow_clients_are_shed_on_time_while_curl_keeps_getting_200s() {
    let (_registry, dir, gate) = start(&[]).await;
    let client = gate.client();
    let authority = client.authority().to_owned();
    let mut uploads = Vec::new();
    for _ in 0..STALLED_BODIES {
        uploads.push(start_upload(&client, "slow/bodies").await);
    }

    let heads: Vec<_> = (0..SLOW_HEADS)
        .map(|_| tokio::spawn(slow_head(client.clone())))
        .collect();
    let bodies: Vec<_> = uploads
        .into_iter()
        .map(|path| tokio::spawn(stalled_body(client.clone(), path)))
        .collect();
    let idles: Vec<_> = (0..IDLE_CONNECTIONS)
        .map(|_| tokio::spawn(idle(client.clone())))
        .collect();

    // The real client, all the while: every answer a 200.
    let curl = {
        let dir = dir.path().to_owned();
        let port = gate.addr.port();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut codes = Vec::new();
            while started.elapsed() < IDLE + SLACK {
                codes.push(curl_v2(&dir, &authority, port));
                // A request every 100 ms for the whole idle period: the pace is the point.
                std::thread::sleep(Duration::from_millis(100));
            }
            codes
        })
    };

    let shed = |tasks: Vec<tokio::task::JoinHandle<Shed>>| async move {
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.expect("slow client task"));
        }
        all
    };
    let heads = shed(heads).await;
    let bodies = shed(bodies).await;
    let idles = shed(idles).await;
    let codes = curl.await.expect("curl loop");

    assert!(codes.len() >= 10, "curl ran {} times", codes.len());
    assert!(codes.iter().all(|c| c == "200"), "curl answers: {codes:?}");
    assert_within("slow head", &heads, HEADER);
    assert_within("idle", &idles, IDLE);
    assert_within("stalled body", &bodies, BODY);
    for b in &bodies {
        assert!(b.answer.starts_with("HTTP/1.1 408"), "{}", b.answer);
        assert!(
            b.answer.to_ascii_lowercase().contains("connection: close"),
            "{}",
            b.answer
        );
    }
    // A head cut short gets no answer (as nginx); an idle connection just ends.
    assert!(heads.iter().all(|h| h.answer.is_empty()));
    assert!(idles.iter().all(|i| i.answer.is_empty()));

    let (_, metrics) = gate.admin_get("/metrics");
    let count = |t: &str| {
        metric(
            &metrics,
            &format!("registry_gate_client_timeouts_total{{timeout=\"{t}\"}}"),
        )
    };
    assert!(count("header") >= SLOW_HEADS as f64, "{metrics}");
    assert!(count("body") >= STALLED_BODIES as f64, "{metrics}");
    // curl's own keep-alive connections are not idle long enough to count.
    assert!(count("idle") >= IDLE_CONNECTIONS as f64, "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_steady_upload_outlives_every_timeout_and_arrives_whole() {
    let (registry, _dir, gate) = start(&[]).await;
    let client = gate.client();
    for proto in [Proto::H1, Proto::H2] {
        let path = start_upload(&client, "slow/steady").await;
        // 16 KiB every 500 ms for 12 s: longer than all the timeouts together,
        // never silent for as long as one.
        let data = pattern(16 * 1024 * 24);
        let total = IDLE + HEADER + BODY + HANDSHAKE + SEND;
        let digest = digest(&data);
        let req = client
            .request(proto, "PUT", &format!("{path}&digest={digest}"))
            .header("authorization", basic("alice", "pw"))
            .header("content-type", "application/octet-stream");
        let (tx, sending) = client.spawn_streamed(proto, req);
        let started = Instant::now();
        for chunk in data.chunks(16 * 1024) {
            // Slow but steady is the point: 16 KiB every 500 ms.
            tokio::time::sleep(Duration::from_millis(500)).await;
            tx.send(Ok(Frame::data(Bytes::copy_from_slice(chunk))))
                .await
                .expect("the gate still reads the upload");
        }
        drop(tx);
        let answer = read(sending.await.expect("task").expect("response")).await;
        assert!(started.elapsed() >= total, "{:?}", started.elapsed());
        assert_eq!(answer.status, 201, "{proto:?}: {}", answer.text());
        assert_stored(&registry, "slow/steady", &digest, data.len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn over_http2_an_idle_connection_ends_and_a_stalled_body_gets_408() {
    let (_registry, _dir, gate) = start(&[]).await;
    let client = gate.client();

    let path = start_upload(&client, "slow/h2").await;
    let (tx, body) = streamed();
    let req = client
        .request(Proto::H2, "PATCH", &path)
        .header("authorization", basic("alice", "pw"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .expect("request");
    let since = Instant::now();
    let sending = {
        let client = client.clone();
        tokio::spawn(async move { client.send(Proto::H2, req).await })
    };
    tx.send(Ok(Frame::data(Bytes::from_static(&[1u8; 1024]))))
        .await
        .expect("some body");
    let answer = tokio::time::timeout(BOUND, sending)
        .await
        .expect("an answer within the bound")
        .expect("task")
        .expect("response");
    assert_eq!(answer.status(), 408);
    let after = since.elapsed();
    assert!(after >= BODY && after <= BODY + SLACK, "{after:?}");
    drop(tx);

    // An HTTP/2 connection with no stream open, pings or not, is idle.
    let tls = client.connect_raw_h2().await;
    let io = hyper_util::rt::TokioIo::new(tls);
    let (_sender, conn) =
        hyper::client::conn::http2::handshake::<_, _, http_body_util::Empty<Bytes>>(
            hyper_util::rt::TokioExecutor::new(),
            io,
        )
        .await
        .expect("HTTP/2 handshake");
    let since = Instant::now();
    let ended = tokio::time::timeout(BOUND, conn).await;
    assert!(ended.is_ok(), "the idle HTTP/2 connection stayed open");
    let after = since.elapsed();
    assert!(
        after + Duration::from_millis(200) >= IDLE && after <= IDLE + SLACK,
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_limit_the_log_says_so_and_idle_connections_make_room() {
    const LIMIT: usize = 20;
    let (_registry, dir, gate) =
        start(&[("REGISTRY_GATE_LISTEN_MAX_CONNECTIONS", LIMIT.to_string())]).await;
    let client = gate.client();
    let idles: Vec<_> = (0..LIMIT)
        .map(|_| tokio::spawn(idle(client.clone())))
        .collect();
    gate.wait_for_log(
        &["connection limit reached", "listen.max_connections"],
        HEADER,
    );
    // curl waits in the backlog until the idle ones are shed, then gets its 200.
    let since = Instant::now();
    let code = {
        let dir = dir.path().to_owned();
        let authority = client.authority().to_owned();
        let port = gate.addr.port();
        tokio::task::spawn_blocking(move || curl_v2(&dir, &authority, port))
            .await
            .expect("curl")
    };
    assert_eq!(code, "200");
    assert!(since.elapsed() <= IDLE + SLACK, "{:?}", since.elapsed());
    for t in idles {
        t.await.expect("idle task");
    }
}

/// Sends `GET` for a blob on a raw connection and returns it unread.
async fn get_blob_raw(
    client: &Client,
    repo: &str,
    digest: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut tls = client.connect_raw().await;
    let head = format!(
        "GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
        client.authority(),
        basic("alice", "pw").to_str().expect("ascii"),
    );
    tls.write_all(head.as_bytes()).await.expect("request");
    tls
}

#[tokio::test(flavor = "multi_thread")]
async fn a_download_nobody_reads_is_ended_but_a_slow_steady_one_completes() {
    const BLOB: usize = 32 << 20;
    let (_registry, _dir, gate) = start(&[]).await;
    let client = gate.client();
    let data = pattern(BLOB);
    let digest = digest(&data);
    let path = start_upload(&client, "slow/read").await;
    let put = client
        .request(Proto::H1, "PUT", &format!("{path}&digest={digest}"))
        .header("authorization", basic("alice", "pw"));
    let put = client.send_bytes(Proto::H1, put, &data).await;
    assert_eq!(put.status, 201, "{}", put.text());

    // Takes the first bytes, then nothing: the gate gives up after the send timeout
    // and what is left to read ends well short of the blob.
    let mut stalled = get_blob_raw(&client, "slow/read", &digest).await;
    let mut first = vec![0u8; 64 * 1024];
    stalled.read_exact(&mut first).await.expect("first bytes");
    // The gate has given up on it once it counts a send timeout.
    let send_timeouts = "registry_gate_client_timeouts_total{timeout=\"send\"}";
    crate::support::eventually(&format!("{send_timeouts} >= 1"), SEND + SLACK, || {
        let (_, metrics) = gate.admin_get("/metrics");
        let sends = metric(&metrics, send_timeouts);
        std::future::ready((sends >= 1.0).then_some(()).ok_or(format!("{sends}")))
    })
    .await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(BOUND, stalled.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the stalled download was kept open");
    assert!(
        first.len() + rest.len() < BLOB,
        "all {} bytes arrived: the gate never gave up",
        first.len() + rest.len()
    );
    let (_, metrics) = gate.admin_get("/metrics");
    let sends = metric(
        &metrics,
        "registry_gate_client_timeouts_total{timeout=\"send\"}",
    );
    assert!(sends >= 1.0, "{metrics}");

    // 256 KiB every 100 ms: far longer than the send timeout in all, never a
    // wait as long as it.
    let mut steady = get_blob_raw(&client, "slow/read", &digest).await;
    let started = Instant::now();
    let mut received = Vec::with_capacity(BLOB + 1024);
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        // The reader's pace is the point: one read every 100 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = tokio::time::timeout(BOUND, steady.read(&mut chunk))
            .await
            .expect("bytes within the bound")
            .expect("the steady download is served");
        received.extend_from_slice(&chunk[..n]);
        let head_end = received.windows(4).position(|w| w == b"\r\n\r\n");
        if n == 0 || head_end.is_some_and(|h| received.len() - (h + 4) >= BLOB) {
            break;
        }
    }
    assert!(started.elapsed() > SEND * 2, "{:?}", started.elapsed());
    let head_end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    assert!(received.starts_with(b"HTTP/1.1 200"));
    assert_eq!(&received[head_end + 4..], &data[..], "the blob, whole");
}

/// One HTTP/1.1 connection with pauses between its requests longer than the gate's
/// park time (100 ms, `server::keepalive`): each pause ends the gate's HTTP state for
/// the connection, and the next request wakes it. A whole blob push (POST, PATCH of
/// 1 MiB, PUT) on that one connection must reach the registry intact.
#[tokio::test(flavor = "multi_thread")]
async fn a_keep_alive_connection_parked_between_requests_serves_a_whole_push() {
    let (registry, _dir, gate) = start(&[]).await;
    let client = gate.client();
    let tls = client.connect_raw().await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("HTTP/1.1 handshake");
    let connection = tokio::spawn(conn);
    // The connection parked idle between requests is the point of the test.
    let pause = || tokio::time::sleep(Duration::from_millis(300));
    let request = |method: &str, path: &str, body: Bytes| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", client.authority())
            .header("authorization", basic("alice", "pw"))
            .header("content-type", "application/octet-stream")
            .body(http_body_util::Full::new(body))
            .expect("request")
    };

    let ping = sender
        .send_request(request("GET", "/v2/", Bytes::new()))
        .await
        .expect("GET /v2/ on the connection");
    assert_eq!(read(ping).await.status, 200);

    pause().await;
    let posted = sender
        .send_request(request(
            "POST",
            "/v2/park/blob/blobs/uploads/",
            Bytes::new(),
        ))
        .await
        .expect("POST after a pause, on the same connection");
    let posted = read(posted).await;
    assert_eq!(posted.status, 202, "{}", posted.text());
    let path = upload_path(&client, &posted.one("location"));

    pause().await;
    let data = pattern(1024 * 1024);
    let patched = sender
        .send_request(request("PATCH", &path, Bytes::from(data.clone())))
        .await
        .expect("PATCH after a pause, on the same connection");
    let patched = read(patched).await;
    assert_eq!(patched.status, 202, "{}", patched.text());
    let path = upload_path(&client, &patched.one("location"));

    pause().await;
    let digest = digest(&data);
    let put = sender
        .send_request(request(
            "PUT",
            &format!("{path}&digest={digest}"),
            Bytes::new(),
        ))
        .await
        .expect("PUT after a pause, on the same connection");
    let put = read(put).await;
    assert_eq!(put.status, 201, "{}", put.text());
    assert_stored(&registry, "park/blob", &digest, data.len());
    assert!(
        !connection.is_finished(),
        "the gate kept the connection open throughout"
    );
}
