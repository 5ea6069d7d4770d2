//! The TLS listener: handshake timeout, protocol versions, ALPN.

use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use crate::support::client::{basic, Proto};
use crate::support::proxy::TestProxy;
use crate::support::upstream::TestUpstream;

#[tokio::test]
async fn silent_clients_are_dropped_after_the_handshake_timeout() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::builder(upstream.url())
        .user("alice", "pw")
        .listen_keys("handshake_timeout = \"200ms\"")
        .start()
        .await;
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr)
        .await
        .expect("connect");
    let mut buf = [0u8; 16];
    // The bound only keeps a broken gate from hanging the test; EOF is the assertion.
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("the gate closed the silent connection");
    assert_eq!(read.expect("read"), 0, "connection closed without a byte");

    // The listener still serves others.
    let client = proxy.client();
    let req = client
        .request(Proto::H2, "GET", "/v2/")
        .header("authorization", basic("alice", "pw"));
    assert_eq!(client.send_empty(Proto::H2, req).await.status, 200);
}

fn s_client(addr: std::net::SocketAddr, args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
        ])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs (apt-get install -y openssl)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The server picks the suite by its own order (AES-128-GCM first), whatever the
/// client prefers: a scanner's "cipher order" check, on both versions.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_s_suite_order_wins_over_the_client_s() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let addr = proxy.addr;
    let [tls13, tls12] = tokio::task::spawn_blocking(move || {
        [
            s_client(
                addr,
                &[
                    "-tls1_3",
                    "-ciphersuites",
                    "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256",
                ],
            ),
            s_client(
                addr,
                &[
                    "-tls1_2",
                    "-cipher",
                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
                     ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
                     ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
                ],
            ),
        ]
    })
    .await
    .expect("openssl runs");
    assert!(
        tls13.contains("Cipher is TLS_AES_128_GCM_SHA256"),
        "{tls13}"
    );
    assert!(
        tls12.contains("AES128-GCM-SHA256") && tls12.contains("TLSv1.2"),
        "{tls12}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_tls_1_2_and_1_3_with_alpn() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::alice(upstream.url()).await;
    let addr = proxy.addr;
    let results = tokio::task::spawn_blocking(move || {
        [
            s_client(addr, &["-tls1_3", "-alpn", "h2"]),
            s_client(addr, &["-tls1_2", "-alpn", "http/1.1"]),
            s_client(addr, &["-tls1_1"]),
            s_client(addr, &["-tls1_2", "-cipher", "AES128-SHA"]),
        ]
    })
    .await
    .expect("openssl runs");
    assert!(
        results[0].contains("Protocol  : TLSv1.3") || results[0].contains("TLSv1.3"),
        "{}",
        results[0]
    );
    assert!(results[0].contains("ALPN protocol: h2"), "{}", results[0]);
    assert!(results[1].contains("TLSv1.2"), "{}", results[1]);
    assert!(
        results[1].contains("ALPN protocol: http/1.1"),
        "{}",
        results[1]
    );
    assert!(
        results[2].contains("Cipher is (NONE)") || results[2].contains("alert"),
        "TLS 1.1 refused: {}",
        results[2]
    );
    assert!(
        results[3].contains("Cipher is (NONE)") || results[3].contains("alert"),
        "CBC refused: {}",
        results[3]
    );
}
