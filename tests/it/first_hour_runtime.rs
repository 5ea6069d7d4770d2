//! A newcomer's first hour, the running gate, on the real binary:
//! plain HTTP on the TLS port gets a 400 that says so, the registry is probed at
//! start and after a reload, a 502 or 504 line names the registry, and `/metrics`
//! has its known series and `build_info` from the start.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::support::client::{basic, Proto};
use crate::support::gate::{replace_file, write_setup, GateProcess};
use crate::support::process::run_bounded;
use crate::support::upstream::{Reply, TestUpstream};

/// Long enough for a loaded machine; every wait ends as soon as its line shows.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// A loopback port nothing listens on: bound, read and released.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The value of one series (`name{labels}`) in a metrics text.
fn series(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_on_the_tls_port_gets_a_400_naming_https() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &upstream.url(), "");
    let gate = GateProcess::start(dir.path());
    let port = gate.addr.port();

    // curl, as a newcomer types it.
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-i", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/v2/"));
    let out = run_bounded(curl, "curl", Duration::from_secs(20));
    assert!(
        out.stdout.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{}: {}{}",
        out.command,
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.ends_with(&format!(
            "\r\n\r\nThis is a TLS port: use https://127.0.0.1:{port}/\n"
        )),
        "{}",
        out.stdout
    );
    assert!(out.status.success(), "{}", out.stderr);

    // A raw request, with a host name: the answer names it, and the gate closes.
    let answer = plain_400(
        gate.addr,
        format!(
            "POST /v2/x/blobs/uploads/ HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
    );
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    assert!(
        answer.ends_with(&format!("use https://localhost:{port}/\n")),
        "{answer}"
    );

    // TLS on the same port is untouched.
    let client = gate.client();
    let req = client.request(Proto::H1, "GET", "/v2/");
    assert_eq!(client.send_empty(Proto::H1, req).await.status, 401);

    let (status, metrics) = gate.admin_get("/metrics");
    assert_eq!(status, 200);
    let name = "registry_gate_tls_handshake_failures_total";
    assert_eq!(
        series(&metrics, &format!("{name}{{reason=\"plain_http\"}}")).as_deref(),
        Some("2"),
        "{metrics}"
    );
    assert_eq!(
        series(&metrics, &format!("{name}{{reason=\"error\"}}")).as_deref(),
        Some("0"),
        "{metrics}"
    );
}

/// Sends `bytes` over plain TCP and returns everything up to the gate's close,
/// which must be the plain-HTTP 400.
fn plain_400(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    tcp.write_all(bytes).expect("send");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer)
        .expect("the answer, then the close");
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    answer
}

/// Behind a PROXY protocol load balancer the header comes first; the request after
/// it is the one answered (here typed by hand, with bare LFs, as `nc` sends it).
#[test]
fn plain_http_after_a_proxy_header_gets_the_400_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &format!("http://127.0.0.1:{}", dead_port()), "");
    let gate = GateProcess::start_with_env(
        dir.path(),
        &[("REGISTRY_GATE_LISTEN_PROXY_PROTOCOL", "true")],
    );
    let answer = plain_400(
        gate.addr,
        b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\nGET /v2/ HTTP/1.1\nHost: gate.example\n\n",
    );
    assert!(
        answer.ends_with("This is a TLS port: use https://gate.example:80/\n"),
        "{answer}"
    );
    let (_, metrics) = gate.admin_get("/metrics");
    assert_eq!(
        series(
            &metrics,
            "registry_gate_tls_handshake_failures_total{reason=\"plain_http\"}"
        )
        .as_deref(),
        Some("1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_down_at_start_is_named_in_a_warning_and_found_after_a_reload() {
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &dead, "");
    // Start-up does not wait for the probe: the gate is listening already.
    let gate = GateProcess::start(dir.path());
    let warning = gate.wait_for_log(&["upstream not reachable", &dead], LOG_WAIT);
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("upstream.url"),
        "says what to check: {warning}"
    );
    assert!(warning.contains("refused"), "says why: {warning}");

    let upstream = TestUpstream::start().await;
    let config = dir.path().join("proxy.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    replace_file(&config, &text.replace(&dead, &upstream.url()));
    gate.signal("HUP");
    let live = upstream.url();
    let found = gate.wait_for_log(
        &["upstream reachable", live.trim_end_matches('/')],
        LOG_WAIT,
    );
    assert!(found.contains("INFO"), "{found}");
    assert!(found.contains("status=200"), "{found}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_502_line_names_the_registry() {
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &dead, "");
    let gate = GateProcess::start(dir.path());
    let client = gate.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("alice", "pw"));
    assert_eq!(client.send_empty(Proto::H1, req).await.status, 502);
    let line = gate.wait_for_log(&["access:", "status=502"], LOG_WAIT);
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains(&format!("error=\"upstream {dead}: registry unreachable")),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_504_line_names_the_registry() {
    let upstream = TestUpstream::start_with(|_| Reply {
        delay: Duration::from_secs(20),
        ..Reply::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &upstream.url(), "");
    let gate = GateProcess::start_with_env(
        dir.path(),
        &[("REGISTRY_GATE_UPSTREAM_READ_TIMEOUT", "300ms")],
    );
    let client = gate.client();
    let req = client
        .request(Proto::H1, "GET", "/v2/alice/app/tags/list")
        .header("authorization", basic("alice", "pw"));
    assert_eq!(client.send_empty(Proto::H1, req).await.status, 504);
    let line = gate.wait_for_log(&["access:", "status=504"], LOG_WAIT);
    let origin = upstream.url();
    let origin = origin.trim_end_matches('/');
    assert!(
        line.contains(&format!(
            "error=\"upstream {origin}: registry did not answer in time"
        )),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_gate_shows_build_info_and_known_series_at_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(dir.path(), &format!("http://127.0.0.1:{}", dead_port()), "");
    let gate = GateProcess::start(dir.path());
    let (status, metrics) = gate.admin_get("/metrics");
    assert_eq!(status, 200);
    let info = metrics
        .lines()
        .find(|l| l.starts_with("registry_gate_build_info{"))
        .unwrap_or_else(|| panic!("no build_info in\n{metrics}"));
    assert!(
        info.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    assert!(info.ends_with("} 1"), "{info}");
    for name in [
        "registry_gate_auth_total{result=\"success\"}",
        "registry_gate_auth_total{result=\"failure\"}",
        "registry_gate_auth_total{result=\"cache_hit\"}",
        "registry_gate_auth_total{result=\"unavailable\"}",
        "registry_gate_tls_handshake_failures_total{reason=\"timeout\"}",
        "registry_gate_tls_handshake_failures_total{reason=\"plain_http\"}",
        "registry_gate_reloads_total{result=\"success\"}",
        "registry_gate_reloads_total{result=\"failure\"}",
        "registry_gate_client_timeouts_total{timeout=\"idle\"}",
        "registry_gate_client_timeouts_total{timeout=\"body\"}",
        "registry_gate_ldap_operations_total{op=\"bind\",result=\"error\"}",
        "registry_gate_ldap_operations_total{op=\"search\",result=\"ok\"}",
    ] {
        assert_eq!(
            series(&metrics, name).as_deref(),
            Some("0"),
            "{name} in\n{metrics}"
        );
    }
}
