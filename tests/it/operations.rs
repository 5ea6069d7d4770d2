//! Operations, on the real binary in front of the real registry: metrics that move,
//! `/readyz` that follows the registry, the audit line of a skopeo push, a drain on
//! SIGTERM that lets an upload finish, and a certificate rotated under load.

use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use rustls_pki_types::pem::PemObject as _;
use sha2::{Digest, Sha256};

use crate::support::blob::{assert_stored, pattern, start_upload};
use crate::support::client::{basic, read, streamed, BodyTx, Client, Proto};
use crate::support::eventually;
use crate::support::gate::{generate_certs, replace_file, write_setup, Certs, GateProcess};
use crate::support::oci;
use crate::support::registry::Registry;
use crate::support::skopeo;
use crate::support::upstream::TestUpstream;

const MIB: usize = 1 << 20;

/// The value of one series (`name{labels}`) in a metrics text, 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{series}: {v:?}"))
        })
}

async fn get(client: &Client, path: &str, password: &str) -> u16 {
    let req = client
        .request(Proto::H1, "GET", path)
        .header("authorization", basic("alice", password));
    client.send_empty(Proto::H1, req).await.status.as_u16()
}

/// Polls `/readyz` until it answers `want` (at most 10 s); returns the body.
async fn readyz_becomes(gate: &GateProcess, want: u16) -> String {
    eventually(
        &format!("/readyz to answer {want}"),
        Duration::from_secs(10),
        || {
            let (status, body) = gate.admin_get("/readyz");
            let seen = format!("{status} {body}\n{}", gate.log());
            std::future::ready((status == want).then_some(body).ok_or(seen))
        },
    )
    .await
}

/// Polls `/metrics` until `series` reaches at least `want` (at most `limit`); returns its value.
async fn metric_reaches(gate: &GateProcess, series: &str, want: f64, limit: Duration) -> f64 {
    eventually(&format!("{series} >= {want}"), limit, || {
        let (_, text) = gate.admin_get("/metrics");
        let n = metric(&text, series);
        std::future::ready((n >= want).then_some(n).ok_or(format!("{n}")))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_with_requests_and_readyz_follows_the_registry() {
    let mut registry = tokio::task::spawn_blocking(Registry::start)
        .await
        .expect("registry");
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &registry.url(), "");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();

    assert_eq!(gate.admin_get("/healthz"), (200, "ok\n".to_string()));
    let body = readyz_becomes(&gate, 200).await;
    assert!(body.contains("the registry answered 200"), "{body}");
    let (status, before) = gate.admin_get("/metrics");
    assert_eq!(status, 200);

    for _ in 0..3 {
        assert_eq!(get(&client, "/v2/", "pw").await, 200);
    }
    assert_eq!(get(&client, "/v2/", "wrong").await, 401);
    // A small blob upload: its bytes count as received.
    let blob = vec![7u8; 100_000];
    let path = start_upload(&client, "metrics").await;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&blob)));
    let put = client
        .request(Proto::H1, "PUT", &format!("{path}&digest={digest}"))
        .header("authorization", basic("alice", "pw"))
        .header("content-type", "application/octet-stream");
    assert_eq!(client.send_bytes(Proto::H1, put, &blob).await.status, 201);
    // A client that is not TLS at all.
    {
        use std::io::Write as _;
        let mut tcp = std::net::TcpStream::connect(gate.addr).expect("connect");
        tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    }

    let (_, after) = gate.admin_get("/metrics");
    let delta = |series: &str| metric(&after, series) - metric(&before, series);
    assert_eq!(
        delta("registry_gate_requests_total{method=\"GET\",status=\"2xx\"}"),
        3.0,
        "{after}"
    );
    assert_eq!(
        delta("registry_gate_requests_total{method=\"GET\",status=\"4xx\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta("registry_gate_requests_total{method=\"PUT\",status=\"2xx\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta("registry_gate_auth_total{result=\"success\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta("registry_gate_auth_total{result=\"cache_hit\"}"),
        4.0,
        "{after}"
    );
    assert_eq!(
        delta("registry_gate_auth_total{result=\"failure\"}"),
        1.0,
        "{after}"
    );
    assert!(
        delta("registry_gate_received_bytes_total") >= blob.len() as f64,
        "{after}"
    );
    assert!(delta("registry_gate_sent_bytes_total") > 0.0, "{after}");
    assert_eq!(
        delta("registry_gate_upstream_duration_seconds_count"),
        5.0,
        "{after}"
    );
    assert_eq!(
        metric(&after, "registry_gate_active_uploads"),
        0.0,
        "{after}"
    );
    let handshakes = metric_reaches(
        &gate,
        "registry_gate_tls_handshake_failures_total{reason=\"plain_http\"}",
        1.0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        handshakes, 1.0,
        "the plain-HTTP client is one failed handshake, answered 400"
    );
    // No label holds a user, path or address.
    assert!(
        !after.contains("alice") && !after.contains("/v2/") && !after.contains("127.0.0.1"),
        "{after}"
    );

    // The registry goes away: not ready, and says why. It comes back: ready.
    registry.stop();
    let body = readyz_becomes(&gate, 503).await;
    assert!(body.contains("the registry is unreachable"), "{body}");
    assert_eq!(gate.admin_get("/healthz").0, 200, "alive all the same");
    let _registry = tokio::task::spawn_blocking(move || {
        registry.restart();
        registry
    })
    .await
    .expect("restart");
    readyz_becomes(&gate, 200).await;

    // A reload, good then bad, shows in the reload metrics.
    gate.signal("HUP");
    gate.wait_for_log(&["configuration reloaded"], Duration::from_secs(5));
    let (_, text) = gate.admin_get("/metrics");
    assert_eq!(
        metric(&text, "registry_gate_reloads_total{result=\"success\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "registry_gate_last_reload_success"),
        1.0,
        "{text}"
    );
    // A certificate that cannot be read fails the reload (the rest still applies).
    replace_file(&dir.path().join("certs/server.crt"), "garbage\n");
    gate.wait_for_log(&["reload failed", "tls.cert"], Duration::from_secs(5));
    let (_, text) = gate.admin_get("/metrics");
    assert_eq!(
        metric(&text, "registry_gate_reloads_total{result=\"failure\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "registry_gate_last_reload_success"),
        0.0,
        "{text}"
    );
    assert_eq!(gate.admin_get("/nope").0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_skopeo_push_leaves_json_audit_lines_with_user_repository_action_and_digest() {
    let registry = tokio::task::spawn_blocking(Registry::start)
        .await
        .expect("registry");
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &registry.url(), "[log]\nformat = \"json\"");
    let gate = GateProcess::start(dir.path());
    let layout = dir.path().join("layout");
    let image = oci::build_image(&layout, "v1", &[2 * MIB], 11);
    let dest = format!("docker://localhost:{}/team/app:v1", gate.addr.port());
    let trust = dir.path().join("certs/trust");
    let trust = trust.to_str().expect("utf-8 path").to_string();
    let reference = image.reference();
    tokio::task::spawn_blocking(move || {
        skopeo::copy(
            &reference,
            &dest,
            &[
                "--preserve-digests",
                "--dest-creds",
                "alice:pw",
                "--dest-cert-dir",
                &trust,
            ],
        )
        .expect_success()
    })
    .await
    .expect("skopeo");

    let lines: Vec<serde_json::Value> = gate
        .log()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v["target"] == "access").collect();
    assert!(!access.is_empty(), "no access lines in:\n{}", gate.log());
    let layer = &image.layer_digests[0];
    // skopeo sends each blob in one PATCH, then an empty `PUT ?digest=`.
    let blob_put = access
        .iter()
        .find(|v| v["method"] == "PATCH" && v["bytes_in"].as_u64() >= Some((2 * MIB) as u64))
        .unwrap_or_else(|| panic!("no PATCH line with the layer's bytes in {access:#?}"));
    assert_eq!(blob_put["status"], 202, "{blob_put}");
    assert_eq!(blob_put["user"], "alice", "{blob_put}");
    assert_eq!(blob_put["repository"], "team/app", "{blob_put}");
    assert_eq!(blob_put["action"], "push", "{blob_put}");
    let manifest = access
        .iter()
        .find(|v| v["method"] == "PUT" && v["path"] == "/v2/team/app/manifests/v1")
        .unwrap_or_else(|| panic!("no manifest PUT line in {access:#?}"));
    assert_eq!(manifest["status"], 201, "{manifest}");
    assert_eq!(manifest["reference"], "v1", "{manifest}");
    assert_eq!(manifest["action"], "push", "{manifest}");
    let head = access
        .iter()
        .find(|v| v["method"] == "HEAD" && v["reference"] == layer.as_str())
        .unwrap_or_else(|| panic!("no HEAD line for the layer {layer} in {access:#?}"));
    assert_eq!(head["action"], "pull", "{head}");
    for line in &access {
        for key in [
            "timestamp",
            "client",
            "user",
            "method",
            "repository",
            "action",
            "status",
            "bytes_in",
            "bytes_out",
            "duration_ms",
        ] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
    }
    assert!(
        !gate.log().contains("Basic ") && !gate.log().contains(":pw"),
        "credentials in the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_streaming_upload_finish_while_new_connections_are_refused() {
    let registry = tokio::task::spawn_blocking(Registry::start)
        .await
        .expect("registry");
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        &registry.url(),
        "[shutdown]\ngrace_period = \"30s\"",
    );
    let mut gate = GateProcess::start(dir.path());
    let client = gate.client();
    let path = start_upload(&client, "drain/test").await;
    let data = pattern(32 * MIB);
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
    let req = client
        .request(Proto::H1, "PUT", &format!("{path}&digest={digest}"))
        .header("authorization", basic("alice", "pw"))
        .header("content-type", "application/octet-stream");
    let (tx, sending) = client.spawn_streamed(Proto::H1, req);
    let chunks: Vec<Bytes> = data
        .chunks(256 * 1024)
        .map(Bytes::copy_from_slice)
        .collect();
    let (first, rest) = chunks.split_at(chunks.len() / 4);
    for chunk in first {
        tx.send(Ok(Frame::data(chunk.clone()))).await.expect("feed");
    }
    gate.signal("TERM");
    gate.wait_for_log(&["shutting down"], Duration::from_secs(5));
    // New connections are refused while the upload is still streaming.
    let refused = eventually(
        "the listener to refuse connections",
        Duration::from_secs(5),
        || std::future::ready(std::net::TcpStream::connect(gate.addr).err()),
    )
    .await;
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "the listener is closed once draining starts"
    );
    let (_, readyz) = gate.admin_get("/readyz");
    assert!(readyz.contains("shutting down"), "{readyz}");
    for chunk in rest {
        tx.send(Ok(Frame::data(chunk.clone()))).await.expect("feed");
    }
    drop(tx);
    let answer = read(sending.await.expect("task").expect("response")).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    // Byte for byte in the registry.
    assert_stored(&registry, "drain/test", &digest, data.len());
    let status = gate.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}\n{}", gate.log());
}

/// A gate (the real binary) with `grace_period`, and an upload through it that has
/// sent some bytes and then stalls: the sender is kept alive by the caller, and so
/// are the gate's directory and the upstream.
async fn stalled_upload(
    grace_period: &str,
) -> (GateProcess, BodyTx, TestUpstream, tempfile::TempDir) {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        &upstream.url(),
        &format!("[shutdown]\ngrace_period = \"{grace_period}\""),
    );
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let (tx, body) = streamed();
    let req = client
        .request(Proto::H1, "PATCH", "/v2/stall/blobs/uploads/u1")
        .header("authorization", basic("alice", "pw"))
        .body(body)
        .expect("request");
    tokio::spawn(async move { client.send(Proto::H1, req).await });
    tx.send(Ok(Frame::data(Bytes::from(vec![1u8; MIB]))))
        .await
        .expect("feed");
    // The upload has reached the gate once it counts as active.
    metric_reaches(
        &gate,
        "registry_gate_active_uploads",
        1.0,
        Duration::from_secs(5),
    )
    .await;
    (gate, tx, upstream, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_upload_does_not_hold_the_exit_past_the_grace_period() {
    let (mut gate, tx, _upstream, _dir) = stalled_upload("1s").await;
    let signalled = std::time::SystemTime::now();
    gate.signal("TERM");
    let status = gate.wait_exit(Duration::from_secs(6));
    let took = signalled.elapsed().unwrap_or_default();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took >= Duration::from_millis(900),
        "left before the grace period: {took:?}"
    );
    gate.wait_for_log(&["grace period over"], Duration::from_secs(1));
    drop(tx);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_exits_at_once_without_waiting_for_the_drain() {
    let (mut gate, tx, _upstream, _dir) = stalled_upload("60s").await;
    gate.signal("TERM");
    gate.wait_for_log(&["shutting down"], Duration::from_secs(5));
    gate.signal("INT");
    let status = gate.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{}", gate.log());
    assert!(
        gate.log().contains("second shutdown signal"),
        "{}",
        gate.log()
    );
    drop(tx);
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_rotates_under_load_without_a_failed_request() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &upstream.url(), "");
    generate_certs(dir.path(), "certs2", Certs::Tls);
    let gate = GateProcess::start(dir.path());
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).expect("read");
    // The client trusts both CAs, so that either certificate is fine and any failure is real.
    let cas = format!("{}{}", read("certs/ca.crt"), read("certs2/ca.crt"));
    let client = Client::new(gate.addr, &cas, &format!("localhost:{}", gate.addr.port()));
    let leaf = |pem: &str| {
        rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .expect("a certificate")
            .expect("PEM")
            .to_vec()
    };
    let (old, new) = (
        leaf(&read("certs/server.crt")),
        leaf(&read("certs2/server.crt")),
    );
    let presented = |client: Client| async move {
        let tls = client.connect_raw().await;
        tls.get_ref().1.peer_certificates().expect("certificates")[0].to_vec()
    };
    assert_eq!(presented(client.clone()).await, old);

    let load = {
        let client = client.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let until = tokio::time::Instant::now() + Duration::from_secs(6);
            while tokio::time::Instant::now() < until && ok + (failed.len() as u32) < 3000 {
                let req = client
                    .request(Proto::H1, "GET", "/v2/")
                    .header("authorization", basic("alice", "pw"))
                    .body(http_body_util::Empty::<Bytes>::new())
                    .expect("request");
                match client.send(Proto::H1, req).await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };
    // The load is running once the gate has answered some of it.
    metric_reaches(
        &gate,
        "registry_gate_requests_total{method=\"GET\",status=\"2xx\"}",
        20.0,
        Duration::from_secs(5),
    )
    .await;
    // Key first, then certificate, as a deploy tool would: in between, the pair does not
    // match, and that reload must fail and keep the old pair.
    replace_file(
        &dir.path().join("certs/server.key"),
        &read("certs2/server.key"),
    );
    gate.wait_for_log(&["reload failed"], Duration::from_secs(5));
    replace_file(
        &dir.path().join("certs/server.crt"),
        &read("certs2/server.crt"),
    );
    gate.wait_for_log(&["configuration reloaded"], Duration::from_secs(5));
    let (ok, failed) = load.await.expect("load task");
    assert!(
        failed.is_empty(),
        "{} failed of {}: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 50, "only {ok} requests in the loop");
    assert_eq!(
        presented(client).await,
        new,
        "new handshakes present the new certificate"
    );
    assert!(
        gate.log().contains("reload failed"),
        "the mismatched pair was refused:\n{}",
        gate.log()
    );
}

/// A PROXY protocol v2 header for a TCP/IPv6 client, with one TLV after the addresses.
fn proxy_v2_ipv6(source: std::net::SocketAddrV6, destination: std::net::SocketAddrV6) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    h.push(0x21); // AF_INET6, STREAM
    let tlv = [0x04u8, 0x00, 0x02, b'h', b'i']; // PP2_TYPE_NOOP, 2 bytes
    h.extend_from_slice(&((36 + tlv.len()) as u16).to_be_bytes());
    h.extend_from_slice(&source.ip().octets());
    h.extend_from_slice(&destination.ip().octets());
    h.extend_from_slice(&source.port().to_be_bytes());
    h.extend_from_slice(&destination.port().to_be_bytes());
    h.extend_from_slice(&tlv);
    h
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_protocol_v1_and_v2_carry_the_client_address_to_the_registry_and_the_log() {
    use tokio::io::AsyncWriteExt as _;
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &upstream.url(), "");
    // Set from the environment, as a container would.
    let gate = GateProcess::start_with_env(
        dir.path(),
        &[("REGISTRY_GATE_LISTEN_PROXY_PROTOCOL", "true")],
    );
    let client = gate.client();
    let v2_source: std::net::SocketAddrV6 = "[2001:db8::7]:40002".parse().expect("addr");
    let v2_destination: std::net::SocketAddrV6 = "[2001:db8::1]:443".parse().expect("addr");
    let headers: [(Vec<u8>, &str, &str); 3] = [
        (
            b"PROXY TCP4 203.0.113.7 127.0.0.1 40001 443\r\n".to_vec(),
            "203.0.113.7",
            "peer=203.0.113.7:40001",
        ),
        (
            proxy_v2_ipv6(v2_source, v2_destination),
            "2001:db8::7",
            "peer=[2001:db8::7]:40002",
        ),
        // A load balancer's health check: no address, the TCP peer is used.
        (
            b"PROXY UNKNOWN\r\n".to_vec(),
            "127.0.0.1",
            "peer=127.0.0.1:",
        ),
    ];
    for (header, client_ip, peer) in headers {
        let mut tcp = tokio::net::TcpStream::connect(gate.addr)
            .await
            .expect("connect");
        tcp.write_all(&header).await.expect("PROXY header");
        let req = client
            .request(Proto::H1, "GET", "/v2/")
            .header("authorization", basic("alice", "pw"))
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        let answer = read(
            client
                .send_over(tcp, Proto::H1, req)
                .await
                .expect("response"),
        )
        .await;
        assert_eq!(answer.status, 200, "{client_ip}");
        let seen = upstream.next_request().await;
        assert_eq!(
            seen.all("x-forwarded-for"),
            vec![client_ip.to_string()],
            "{client_ip}"
        );
        assert_eq!(
            seen.all("x-real-ip"),
            vec![client_ip.to_string()],
            "{client_ip}"
        );
        gate.wait_for_log(
            &["access", &format!("client={client_ip} "), peer],
            Duration::from_secs(5),
        );
    }
    // Without the header (a client that bypassed the balancer): a TLS ClientHello is
    // refused at its first byte and the connection closed.
    {
        use tokio::io::AsyncReadExt as _;
        let mut tcp = tokio::net::TcpStream::connect(gate.addr)
            .await
            .expect("connect");
        tcp.write_all(b"\x16\x03\x01\x00\x05hello")
            .await
            .expect("write");
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("closed within 5 s");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    gate.wait_for_log(&["PROXY protocol header refused"], Duration::from_secs(5));
    let (_, metrics) = gate.admin_get("/metrics");
    assert_eq!(
        metric(
            &metrics,
            "registry_gate_tls_handshake_failures_total{reason=\"proxy_protocol\"}"
        ),
        1.0,
        "{metrics}"
    );
}
