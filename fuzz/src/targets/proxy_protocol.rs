//! `proxy_protocol::parse` on arbitrary connection starts.

use std::net::SocketAddr;

use registry_gate::server::proxy_protocol::{parse, Header, Parsed, V1_MAX_LEN};

const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// One input of the `proxy_protocol` target; panics on a failed check.
pub fn run(data: &[u8]) {
    // As the buffer grows one byte at a time the answer is Incomplete, then one answer for
    // good: `read_header` relies on this to consume the bytes of an Incomplete buffer.
    let mut settled = None;
    for end in 0..=data.len() {
        if let Some((at, _)) = settled {
            // Past the answer `parse` reads no further: a few more lengths and the last do.
            if end > at + 32 && end < data.len() {
                continue;
            }
        }
        let answer = parse(&data[..end]).map_err(|_| ());
        match settled {
            None if answer == Ok(Parsed::Incomplete) => {}
            None => {
                if let Ok(Parsed::Complete { len, .. }) = answer {
                    assert_eq!(len, end, "a header is complete when its last byte arrives");
                }
                settled = Some((end, answer));
            }
            Some((_, first)) => assert_eq!(answer, first, "end={end} data={data:?}"),
        }
    }
    let Ok(Parsed::Complete { header, len }) = parse(data) else {
        return;
    };
    assert!(len <= data.len());
    let bytes = &data[..len];
    assert_eq!(parse(bytes).ok(), Some(Parsed::Complete { header, len }));
    if data[0] == b'P' {
        check_v1(bytes, header);
    } else {
        check_v2(bytes, header);
    }
}

fn check_v1(line: &[u8], header: Header) {
    assert!(
        line.ends_with(b"\r\n") && line.len() <= V1_MAX_LEN,
        "line={line:?}"
    );
    match header {
        Header::Unknown => assert!(
            line.starts_with(b"PROXY UNKNOWN ") || line == b"PROXY UNKNOWN\r\n",
            "line={line:?}"
        ),
        // An IPv4 line has exactly one spelling: the canonical one.
        Header::Proxied {
            source: SocketAddr::V4(s),
            destination: SocketAddr::V4(d),
        } => {
            let canonical = format!(
                "PROXY TCP4 {} {} {} {}\r\n",
                s.ip(),
                d.ip(),
                s.port(),
                d.port()
            );
            assert_eq!(line, canonical.as_bytes());
        }
        Header::Proxied {
            source: SocketAddr::V6(s),
            destination: SocketAddr::V6(d),
        } => {
            assert!(line.starts_with(b"PROXY TCP6 "), "line={line:?}");
            let ports = format!(" {} {}\r\n", s.port(), d.port());
            assert!(line.ends_with(ports.as_bytes()), "line={line:?}");
        }
        Header::Proxied { .. } => panic!("mixed families: {line:?}"),
    }
}

fn check_v2(bytes: &[u8], header: Header) {
    assert!(bytes.starts_with(V2_SIGNATURE), "bytes={bytes:?}");
    assert_eq!(
        bytes.len(),
        16 + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]))
    );
    let Header::Proxied {
        source,
        destination,
    } = header
    else {
        return;
    };
    assert_eq!(bytes[12], 0x21, "only PROXY carries addresses");
    let block = &bytes[16..];
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    match (bytes[13], source, destination) {
        (0x11, SocketAddr::V4(s), SocketAddr::V4(d)) => {
            assert_eq!(s.ip().octets(), block[0..4]);
            assert_eq!(d.ip().octets(), block[4..8]);
            assert_eq!((s.port(), d.port()), (port(8), port(10)));
        }
        (0x21, SocketAddr::V6(s), SocketAddr::V6(d)) => {
            assert_eq!(s.ip().octets(), block[0..16]);
            assert_eq!(d.ip().octets(), block[16..32]);
            assert_eq!((s.port(), d.port()), (port(32), port(34)));
        }
        (family, ..) => panic!("family {family:#04x} gave {header:?}"),
    }
}
