use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;

fn proxied(source: &str, destination: &str) -> Header {
    Header::Proxied {
        source: source.parse().expect("test source address"),
        destination: destination.parse().expect("test destination address"),
    }
}

/// `parse`'s answer with the error as its text, so that tables compare with `assert_eq!`.
fn outcome(buf: &[u8]) -> Result<Parsed, String> {
    parse(buf).map_err(|e| e.to_string())
}

/// A v2 header: signature, version 2 with `command`, `family`, `declared` length, `payload`.
fn v2(command: u8, family: u8, declared: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x20 | command, family]);
    h.extend_from_slice(&declared.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A v2 header whose declared length is its payload's.
fn v2_exact(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let declared = u16::try_from(payload.len()).expect("test payload fits a u16");
    v2(command, family, declared, payload)
}

/// 192.0.2.1:50000 → 198.51.100.2:443.
const V4_BLOCK: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 2, 0xc3, 0x50, 0x01, 0xbb];

/// [2001:db8::1]:50000 → [::1]:5043.
fn v6_block() -> Vec<u8> {
    let mut b = "2001:db8::1"
        .parse::<Ipv6Addr>()
        .expect("ip")
        .octets()
        .to_vec();
    b.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    b.extend_from_slice(&[0xc3, 0x50, 0x13, 0xb3]);
    b
}

const FULL_V6: &str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

/// Every valid header of the tests, with what it says.
fn valid_headers() -> Vec<(Vec<u8>, Header)> {
    let v1 = |line: &str, header| (line.as_bytes().to_vec(), header);
    let tlv = [0x01, 0x00, 0x02, b'h', b'2', 0x04, 0x00, 0x01, 0x00];
    let with_tlv = |block: &[u8]| [block, &tlv[..]].concat();
    vec![
        v1(
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
            proxied("192.168.0.1:56324", "192.168.0.11:443"),
        ),
        v1(
            "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
            proxied("255.255.255.255:65535", "255.255.255.255:65535"),
        ),
        v1(
            "PROXY TCP4 0.0.0.0 10.0.0.1 0 5043\r\n",
            proxied("0.0.0.0:0", "10.0.0.1:5043"),
        ),
        v1(
            "PROXY TCP6 2001:db8::1 ::1 51234 5043\r\n",
            proxied("[2001:db8::1]:51234", "[::1]:5043"),
        ),
        v1(
            &format!(
                "PROXY TCP6 {FULL_V6} {} 65535 1\r\n",
                FULL_V6.to_uppercase()
            ),
            proxied(&format!("[{FULL_V6}]:65535"), &format!("[{FULL_V6}]:1")),
        ),
        v1(
            "PROXY TCP6 ::ffff:192.0.2.1 1:2:3:4:5:6:7:8 1 2\r\n",
            proxied("[::ffff:192.0.2.1]:1", "[1:2:3:4:5:6:7:8]:2"),
        ),
        v1(
            "PROXY TCP6 :: 1:: 10 20\r\n",
            proxied("[::]:10", "[1::]:20"),
        ),
        v1("PROXY UNKNOWN\r\n", Header::Unknown),
        v1("PROXY UNKNOWN a\rb\nc d\r\n", Header::Unknown),
        // The spec's worst case: exactly 107 bytes.
        v1(
            &format!("PROXY UNKNOWN {FULL_V6} {FULL_V6} 65535 65535\r\n"),
            Header::Unknown,
        ),
        (
            v2_exact(1, 0x11, &V4_BLOCK),
            proxied("192.0.2.1:50000", "198.51.100.2:443"),
        ),
        (
            v2_exact(1, 0x11, &with_tlv(&V4_BLOCK)),
            proxied("192.0.2.1:50000", "198.51.100.2:443"),
        ),
        (
            v2_exact(1, 0x21, &v6_block()),
            proxied("[2001:db8::1]:50000", "[::1]:5043"),
        ),
        (
            v2_exact(1, 0x21, &with_tlv(&v6_block())),
            proxied("[2001:db8::1]:50000", "[::1]:5043"),
        ),
        (v2_exact(0, 0x00, &[]), Header::Unknown),
        // LOCAL ignores the family byte and skips whatever the length covers.
        (v2_exact(0, 0xff, &[1, 2, 3, 4]), Header::Unknown),
        (v2_exact(0, 0x11, &V4_BLOCK), Header::Unknown),
        (v2_exact(1, 0x00, &[]), Header::Unknown),
        (v2_exact(1, 0x00, &tlv), Header::Unknown),
        (v2_exact(1, 0x12, &V4_BLOCK), Header::Unknown),
        (v2_exact(1, 0x22, &v6_block()), Header::Unknown),
        (v2_exact(1, 0x31, &[b'/'; 216]), Header::Unknown),
        (v2_exact(1, 0x32, &[0; 220]), Header::Unknown),
        (
            v2_exact(1, 0x11, &[0; V2_MAX_PAYLOAD]),
            proxied("0.0.0.0:0", "0.0.0.0:0"),
        ),
    ]
}

#[test]
fn valid_headers_parse_and_leave_the_payload() {
    let headers = valid_headers();
    assert!(headers.len() >= 20, "the table is not empty");
    for (bytes, header) in headers {
        let len = bytes.len();
        let mut buf = bytes.clone();
        assert_eq!(
            outcome(&buf),
            Ok(Parsed::Complete { header, len }),
            "buf={buf:?}"
        );
        buf.extend_from_slice(b"\x16\x03\x01 payload\r\n");
        assert_eq!(
            outcome(&buf),
            Ok(Parsed::Complete { header, len }),
            "buf={buf:?}"
        );
    }
}

#[test]
fn every_strict_prefix_of_a_valid_header_is_incomplete() {
    let mut prefixes = 0;
    for (bytes, _) in valid_headers() {
        for i in 0..bytes.len() {
            let prefix = &bytes[..i];
            assert_eq!(outcome(prefix), Ok(Parsed::Incomplete), "prefix={prefix:?}");
            prefixes += 1;
        }
    }
    assert!(prefixes > 5000, "prefixes={prefixes}");
}

#[test]
fn v1_errors() {
    let too_long = format!("PROXY UNKNOWN {FULL_V6} {FULL_V6} 65535 655356\r\n");
    assert_eq!(too_long.len(), 108);
    let cases: &[(&str, &str)] = &[
        ("PROXY TCP4 ::1 ::1 1 2\r\n", "bad source address"),
        ("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "bad source address"),
        ("PROXY TCP4 1.2.3.4 ::1 1 2\r\n", "bad destination address"),
        ("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "bad source address"),
        ("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "bad source address"),
        ("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "bad source address"),
        ("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "bad source address"),
        ("PROXY TCP6 [::1] ::1 1 2\r\n", "bad source address"),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "bad source port"),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "bad source port"),
        (
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            "bad destination port",
        ),
        (
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n",
            "bad destination port",
        ),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "bad destination port"),
        (
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
            "bad destination port",
        ),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "bad destination port"),
        (
            "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            "empty field (fields are separated by one space)",
        ),
        ("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "bad protocol family"),
        (
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            "data after the destination port",
        ),
        (
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            "data after the destination port",
        ),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "too few fields"),
        ("PROXY TCP4\r\n", "too few fields"),
        ("PROXY TCP4 1.2.3.4\r", "too few fields"),
        ("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "bad protocol family"),
        ("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "bad protocol family"),
        ("PROXY UNKNOWNX\r\n", "bad protocol family"),
        ("PROXY TCP9", "bad protocol family"),
        // Not yet terminated, but already wrong.
        ("PROXY TCP4 256", "bad source address"),
        ("PROXY TCP6 1:2:3:4:5:6:7:8:", "bad source address"),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 65536", "bad source port"),
    ];
    for (line, message) in cases {
        let want = format!("proxy protocol v1 header: {message}");
        assert_eq!(outcome(line.as_bytes()), Err(want), "line={line:?}");
    }
    let x = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200]].concat();
    let cr = [b"PROXY UNKNOWN ".as_slice(), &[b'\r'; 200]].concat();
    for line in [too_long.as_bytes(), &x, &cr] {
        let want = "proxy protocol v1 header: no CRLF in the first 107 bytes";
        assert_eq!(outcome(line), Err(want.into()), "line={line:?}");
    }
}

#[test]
fn v1_lines_missing_their_end_are_incomplete_until_107_bytes() {
    let cases: &[&str] = &[
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r",
        "PROXY TCP6 2001:db8:",
        "PROXY TCP6 ::ffff:1.2.",
        "PROXY UNKNOWN",
        "PROXY UNK",
    ];
    for line in cases {
        assert_eq!(
            outcome(line.as_bytes()),
            Ok(Parsed::Incomplete),
            "line={line:?}"
        );
    }
    // 105 bytes and a CR can still end in time; 106 bytes cannot.
    let line = format!("PROXY UNKNOWN {}", "x".repeat(91));
    assert_eq!(line.len(), 105);
    assert_eq!(
        outcome(format!("{line}\r").as_bytes()),
        Ok(Parsed::Incomplete)
    );
    let want = Err("proxy protocol v1 header: no CRLF in the first 107 bytes".into());
    assert_eq!(outcome(format!("{line}x").as_bytes()), want);
}

#[test]
fn address_prefixes_are_viable_exactly_when_they_can_grow_into_an_address() {
    let v6 = [
        "::",
        "::1",
        "1::",
        "1::2:3",
        "2001:db8::1",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7::",
        "::1:2:3:4:5:6:7",
        "1:2:3:4:5:6:1.2.3.4",
        "::ffff:255.255.255.255",
        "1::2:3.4.5.6",
        "ABCD:ef01::",
    ];
    for address in v6 {
        for i in 0..=address.len() {
            let prefix = &address.as_bytes()[..i];
            assert!(v1_ip_viable(prefix, true), "prefix={:?}", &address[..i]);
        }
    }
    for address in ["255.255.255.255", "0.0.0.0", "10.200.3.45"] {
        for i in 0..=address.len() {
            let prefix = &address.as_bytes()[..i];
            assert!(v1_ip_viable(prefix, false), "prefix={:?}", &address[..i]);
        }
    }
    let dead_v6 = [
        "1:2:3:4:5:6:7:8:",
        "12345",
        ":::",
        "1::2::",
        "1:2:3:4:5:6:7:1.",
        "::1.2.3.4:",
        "::1.2.3.4.",
        "::01.",
        "g",
    ];
    for text in dead_v6 {
        assert!(!v1_ip_viable(text.as_bytes(), true), "text={text:?}");
    }
    for text in ["256", "01", "1.2.3.4.", "1..", "1.2.3.4.5", ":"] {
        assert!(!v1_ip_viable(text.as_bytes(), false), "text={text:?}");
    }
}

#[test]
fn v2_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (v2(0x10, 0x11, 12, &V4_BLOCK), "unsupported version 3"),
        ([V2_SIGNATURE, &[0x11]].concat(), "unsupported version 1"),
        ([V2_SIGNATURE, &[0x01]].concat(), "unsupported version 0"),
        (v2(2, 0x11, 12, &V4_BLOCK), "unsupported command 2"),
        (v2(0x0f, 0x11, 12, &V4_BLOCK), "unsupported command 15"),
        (
            v2(1, 0x13, 12, &V4_BLOCK),
            "unknown address family and transport 0x13",
        ),
        (
            v2(1, 0x41, 12, &V4_BLOCK),
            "unknown address family and transport 0x41",
        ),
        (
            v2(1, 0x10, 12, &V4_BLOCK),
            "unknown address family and transport 0x10",
        ),
        (
            v2(1, 0x01, 0, &[]),
            "unknown address family and transport 0x01",
        ),
        (
            v2(1, 0x11, 11, &V4_BLOCK[..11]),
            "declared length shorter than the address block",
        ),
        (
            v2(1, 0x21, 12, &V4_BLOCK),
            "declared length shorter than the address block",
        ),
        (
            v2(1, 0x31, 108, &[0; 108]),
            "declared length shorter than the address block",
        ),
        (
            v2(1, 0x11, 4097, &[]),
            "declared length 4097 is over the limit of 4096",
        ),
        (
            v2(0, 0x00, 65535, &[]),
            "declared length 65535 is over the limit of 4096",
        ),
    ];
    for (buf, message) in cases {
        let want = format!("proxy protocol v2 header: {message}");
        assert_eq!(outcome(&buf), Err(want), "buf={buf:?}");
    }
}

#[test]
fn v2_errors_come_as_soon_as_the_bad_byte_arrives() {
    // Only the fixed 16 bytes: the address block has not arrived yet.
    let short = v2(1, 0x21, 12, &[]);
    assert_eq!(short.len(), 16);
    assert!(
        matches!(parse(&short), Err(Error::MalformedV2(_))),
        "{short:?}"
    );
    let bad_version = [V2_SIGNATURE, &[0x31]].concat();
    assert!(matches!(
        parse(&bad_version),
        Err(Error::UnsupportedVersion(3))
    ));
    let bad_family = [V2_SIGNATURE, &[0x21, 0x23]].concat();
    assert!(matches!(
        parse(&bad_family),
        Err(Error::UnknownFamily(0x23))
    ));
    let too_long = v2(1, 0x11, 5000, &[]);
    assert!(matches!(parse(&too_long), Err(Error::V2TooLong(5000))));
    // A whole v2 header needs all of its declared bytes, TLVs included.
    let waiting = v2(1, 0x11, 20, &V4_BLOCK);
    assert_eq!(outcome(&waiting), Ok(Parsed::Incomplete));
}

#[test]
fn other_protocols_are_refused_on_their_first_bytes() {
    let not_proxy = Err(
        "no proxy protocol header: the first bytes match neither the v1 nor the v2 signature"
            .to_string(),
    );
    // The start of a TLS 1.2/1.3 ClientHello record.
    let client_hello: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];
    for i in 1..=client_hello.len() {
        assert_eq!(outcome(&client_hello[..i]), not_proxy, "i={i}");
    }
    let cases: &[&[u8]] = &[
        b"GET /v2/ HTTP/1.1\r\n",
        b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXYTCP4",
        b"PROXY\r\n",
        b"PRX",
        b"\r\n\r\n\x01",
        b"\r\n\r\n\0\r\nQUIT\r",
        b"\n",
    ];
    for buf in cases {
        assert_eq!(outcome(buf), not_proxy, "buf={buf:?}");
    }
}

#[test]
fn client_addr_falls_back_to_the_peer() {
    let peer: SocketAddr = "10.0.0.7:40000".parse().expect("peer");
    let header = proxied("192.0.2.1:50000", "198.51.100.2:443");
    assert_eq!(
        header.client_addr(peer),
        "192.0.2.1:50000".parse().expect("ip")
    );
    assert_eq!(Header::Unknown.client_addr(peer), peer);
}

/// A connected loopback pair: (client side, server side).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let client = client.expect("connect");
    client.set_nodelay(true).expect("nodelay");
    (client, server.expect("accept").0)
}

/// Sends `first`, pauses so that it arrives as a segment of its own, sends `rest`, closes.
async fn send_in_two_parts(mut client: TcpStream, first: Vec<u8>, rest: Vec<u8>) {
    client.write_all(&first).await.expect("write first part");
    client.flush().await.expect("flush");
    // The pause is the scenario under test: the header split across segments.
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.write_all(&rest).await.expect("write rest");
}

#[tokio::test]
async fn read_header_takes_a_split_header_and_leaves_the_payload() {
    let payload: Vec<u8> = (0..=255).cycle().take(3000).collect();
    let cases = [
        (
            b"PROXY TCP6 2001:db8::1 ::1 51234 5043\r\n".to_vec(),
            18,
            proxied("[2001:db8::1]:51234", "[::1]:5043"),
        ),
        (
            v2_exact(
                1,
                0x11,
                &[&V4_BLOCK[..], &[0x04, 0x00, 0x01, 0x00]].concat(),
            ),
            10,
            proxied("192.0.2.1:50000", "198.51.100.2:443"),
        ),
    ];
    for (header_bytes, split, want) in cases {
        let (client, mut server) = pair().await;
        let (first, second) = header_bytes.split_at(split);
        let rest = [second, &payload[..]].concat();
        let sender = tokio::spawn(send_in_two_parts(client, first.to_vec(), rest));
        let header = read_header(&mut server).await.expect("header");
        assert_eq!(header, want, "header={header_bytes:?}");
        let mut after = Vec::new();
        server.read_to_end(&mut after).await.expect("read payload");
        assert_eq!(after, payload, "header={header_bytes:?}");
        sender.await.expect("sender task");
    }
}

#[tokio::test]
async fn read_header_reports_a_close_mid_header() {
    let (mut client, mut server) = pair().await;
    client
        .write_all(b"PROXY TCP4 1.2.3.4 ")
        .await
        .expect("write");
    client.shutdown().await.expect("shutdown");
    let result = tokio::time::timeout(Duration::from_secs(5), read_header(&mut server))
        .await
        .expect("returns without waiting for more");
    assert!(matches!(result, Err(Error::Eof)), "result={result:?}");
}

#[tokio::test]
async fn read_header_refuses_tls_without_a_header_at_once() {
    let (mut client, mut server) = pair().await;
    client
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .expect("write");
    // The client keeps the connection open: the refusal must not wait for more bytes.
    let result = tokio::time::timeout(Duration::from_secs(5), read_header(&mut server))
        .await
        .expect("returns without waiting for more");
    assert!(
        matches!(result, Err(Error::NotProxyProtocol)),
        "result={result:?}"
    );
    drop(client);
}
