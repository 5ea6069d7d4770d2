//! Plain HTTP sent to the TLS port (`curl http://` instead of `https://`).
//!
//! A TLS handshake would answer such a client with an alert, which curl reports as
//! "Received HTTP/0.9 when not allowed". Like nginx, the gate answers a clear
//! `400 Bad Request` instead, naming the `https://` URL to use, and closes the
//! connection. The first bytes are only peeked at ([`sniff`]), so a TLS client's
//! ClientHello (first byte `0x16`) reaches the handshake untouched.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The request lines a plain-HTTP client starts with. None of them can begin a TLS
/// record (content types are 20 to 24) or an SSLv2 hello (high bit set); `PROXY `
/// is left out on purpose: it is a PROXY protocol header, not a request.
const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"PATCH ",
    b"OPTIONS ",
    b"CONNECT ",
    b"TRACE ",
];

/// The longest entry of [`METHODS`].
const LONGEST_METHOD: usize = 8;

/// How often to peek again when the bytes so far are only the start of a method
/// (a client that sent `GE` and then paused): bounded, and within the handshake
/// deadline the caller sets.
const MAX_PEEKS: usize = 20;
const PEEK_PAUSE: Duration = Duration::from_millis(10);

/// How much of the request head is read for its `Host` header.
const MAX_HEAD: usize = 8 * 1024;

/// Time to send the answer and let the client read it before the close.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of what the client sends after its head (a body) is read and dropped
/// before the close, so that the close does not reset the connection (and the
/// answer with it) while unread bytes wait.
const MAX_LINGER: usize = 64 * 1024;

/// What the first bytes of a connection say so far.
#[derive(Debug, PartialEq, Eq)]
enum Looks {
    /// A request line: a method and a space.
    Http,
    /// The start of a method: more bytes will tell.
    Unsure,
    /// Anything else: a ClientHello, or something the handshake will refuse.
    NotHttp,
}

fn looks(bytes: &[u8]) -> Looks {
    if METHODS.iter().any(|m| bytes.starts_with(m)) {
        Looks::Http
    } else if !bytes.is_empty() && METHODS.iter().any(|m| m.starts_with(bytes)) {
        Looks::Unsure
    } else {
        Looks::NotHttp
    }
}

/// Whether the connection starts with a plain-HTTP request line. Nothing is taken
/// off the socket. An error, or the end of the stream, counts as "not HTTP": the
/// TLS handshake then fails as it would have.
pub(super) async fn sniff(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; LONGEST_METHOD];
    for _ in 0..MAX_PEEKS {
        let Ok(n) = tcp.peek(&mut buf).await else {
            return false;
        };
        match looks(&buf[..n]) {
            Looks::Http => return true,
            Looks::NotHttp => return false,
            // Peeking again at once would return the same bytes, so pause first.
            Looks::Unsure => tokio::time::sleep(PEEK_PAUSE).await,
        }
    }
    false
}

/// Reads the request head (until `deadline`), answers 400 with the `https://` URL
/// to use, and closes the connection.
pub(super) async fn refuse(mut tcp: TcpStream, deadline: Instant) {
    let mut head = Vec::new();
    // An unfinished head still gets its answer, with what it said so far.
    let _ = tokio::time::timeout_at(deadline, read_head(&mut tcp, &mut head)).await;
    let fallback = tcp.local_addr().map(|a| a.to_string()).ok();
    let authority = host(&head)
        .map(with_port)
        .or(fallback)
        .unwrap_or_else(|| "HOST:PORT".to_string());
    let answer = answer(&authority);
    let send = async {
        tcp.write_all(&answer).await?;
        tcp.shutdown().await?;
        linger(&mut tcp).await
    };
    if let Err(e) = tokio::time::timeout(ANSWER_TIMEOUT, send)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    {
        tracing::debug!(error = %e, "plain-HTTP answer not delivered");
    }
}

async fn read_head(tcp: &mut TcpStream, head: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 1024];
    while head.len() < MAX_HEAD && !ends_head(head) {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Whether `head` holds a whole request head: an empty line, ended by CRLF or, from
/// a hand-typed request (`nc` without `-C`), by a bare LF.
fn ends_head(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// Reads and drops what the client still sends, up to [`MAX_LINGER`], until it closes.
async fn linger(tcp: &mut TcpStream) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    let mut total = 0;
    while total < MAX_LINGER {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        total += n;
    }
    Ok(())
}

/// The `Host` header's value, if the head has one that is a plain host name or
/// address with an optional port (it is echoed back, so nothing else is taken).
fn host(head: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(head).ok()?;
    let value = text.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("host").then(|| value.trim())
    })?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    (!value.is_empty() && value.len() <= 255 && value.chars().all(allowed)).then_some(value)
}

/// `host` with its port; without one, the client meant port 80 (`http://host/`),
/// and that port reaches this TLS listener.
fn with_port(host: &str) -> String {
    // `Host: name:` has an empty port, which means the default (RFC 3986 §3.2.3).
    let host = host.strip_suffix(':').unwrap_or(host);
    let has_port = match host.rsplit_once(':') {
        Some((name, port)) => {
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (name.ends_with(']') || !name.contains(':'))
        }
        None => false,
    };
    if has_port {
        host.to_string()
    } else {
        format!("{host}:80")
    }
}

/// The whole answer: status line, headers and body.
fn answer(authority: &str) -> Vec<u8> {
    let body = format!("This is a TLS port: use https://{authority}/\n");
    format!(
        "HTTP/1.1 400 Bad Request\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\
         \r\n\
         {body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_told_from_tls() {
        let cases: [(&[u8], Looks); 12] = [
            (b"GET /v2/ HTTP/1.1\r\n", Looks::Http),
            (b"HEAD / HTTP/1.0", Looks::Http),
            (b"PUT ", Looks::Http),
            (b"OPTIONS", Looks::Unsure),
            (b"G", Looks::Unsure),
            (b"DEL", Looks::Unsure),
            (b"", Looks::NotHttp),
            // A TLS 1.0-1.3 ClientHello record.
            (b"\x16\x03\x01\x02\x00\x01", Looks::NotHttp),
            // An SSLv2-style hello.
            (b"\x80\x2e\x01\x03\x01", Looks::NotHttp),
            (b"PROXY TCP4 1.2.3.4", Looks::NotHttp),
            (b"GETX /", Looks::NotHttp),
            (b"get / HTTP/1.1", Looks::NotHttp),
        ];
        for (bytes, expected) in cases {
            assert_eq!(looks(bytes), expected, "bytes={bytes:?}");
        }
    }

    #[test]
    fn the_host_header_names_the_url() {
        let cases: [(&[u8], Option<&str>); 7] = [
            (
                b"GET / HTTP/1.1\r\nUser-Agent: x\r\nHost: 127.0.0.1:8443\r\n\r\n",
                Some("127.0.0.1:8443"),
            ),
            (
                b"GET / HTTP/1.1\r\nhost:  gate.example \r\n\r\n",
                Some("gate.example"),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
                Some("[::1]:8443"),
            ),
            (b"GET / HTTP/1.1\r\n\r\n", None),
            (b"GET / HTTP/1.1\r\nHost: a<script>\r\n\r\n", None),
            // The request line is not a header, whatever it holds.
            (b"GET Host:x HTTP/1.1\r\n\r\n", None),
            (b"GET / HTTP/1.1\nHost: typed:8443\n\n", Some("typed:8443")),
        ];
        for (head, expected) in cases {
            assert_eq!(host(head), expected, "head={head:?}");
        }
    }

    #[test]
    fn heads_end_with_an_empty_line() {
        let cases: [(&[u8], bool); 5] = [
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
            (b"GET / HTTP/1.1\nHost: a\n\n", true),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", false),
            (b"GET / HTTP/1.1\r\n", false),
            (b"", false),
        ];
        for (head, expected) in cases {
            assert_eq!(ends_head(head), expected, "head={head:?}");
        }
    }

    #[test]
    fn a_host_without_port_meant_port_80() {
        let cases = [
            ("gate.example:8443", "gate.example:8443"),
            ("gate.example", "gate.example:80"),
            ("[::1]:8443", "[::1]:8443"),
            ("[::1]", "[::1]:80"),
            ("gate.example:", "gate.example:80"),
        ];
        for (host, expected) in cases {
            assert_eq!(with_port(host), expected, "host={host:?}");
        }
    }

    #[test]
    fn the_answer_is_a_complete_400() {
        let answer = String::from_utf8(answer("localhost:8443")).expect("utf-8");
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert_eq!(body, "This is a TLS port: use https://localhost:8443/\n");
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: close"), "{head}");
        assert!(
            head.contains(&format!("\r\nContent-Length: {}", body.len())),
            "{head}"
        );
    }
}
