//! The HAProxy PROXY protocol, [version 1 (text) and version 2 (binary)][spec].
//!
//! A TCP load balancer in front of the gate (AWS NLB, HAProxy in `mode tcp`) passes the
//! TLS bytes through untouched, so the gate's TCP peer is the balancer, not the client.
//! With the PROXY protocol the balancer first sends one header naming the original client;
//! [`read_header`] takes exactly that header off the stream and leaves the TLS ClientHello
//! behind it unread. [`parse`] is the pure parser under it, also used by the fuzz target.
//!
//! The parser is strict, as the spec asks: "Any sequence which does not exactly match the
//! protocol must be discarded and cause the receiver to abort the connection. It is
//! recommended to abort the connection as soon as possible" (§2.1). A buffer that is a
//! strict prefix of a valid header is [`Parsed::Incomplete`]; one that can no longer
//! become valid is an error at once. A client that skips the balancer and sends its TLS
//! ClientHello directly fails on its first byte (`0x16`), which starts neither version.
//!
//! Version 1, one US-ASCII line (§2.1):
//! - it starts with `PROXY ` (upper case) and ends at the first CRLF, which must end
//!   within [`V1_MAX_LEN`] bytes; a lone CR or LF does not end it;
//! - `TCP4` and `TCP6` lines have exactly the fields `SRC DST SRCPORT DSTPORT`, each
//!   preceded by exactly one space, with nothing after the destination port;
//! - addresses must be of the announced family, IPv4 as four decimal numbers without
//!   leading zeroes, IPv6 as std's [`Ipv6Addr`] parses it (1–4 hex digits per group, one
//!   `::`, an embedded IPv4 tail allowed; no zone index);
//! - ports are 0–65535 in decimal, without leading zeroes or a sign;
//! - `UNKNOWN` must be followed by the CRLF or by a space; anything from that space to
//!   the CRLF is ignored, as the spec says ("the receiver must ignore anything presented
//!   before the CRLF is found").
//!
//! Version 2, binary (§2.2):
//! - the 12-byte signature, then a version nibble that must be 2 and a command that must
//!   be 0 (`LOCAL`) or 1 (`PROXY`);
//! - for `PROXY`, the family/transport byte must be one of the seven values the spec lists
//!   (`0x00`, `0x11`, `0x12`, `0x21`, `0x22`, `0x31`, `0x32`) and the declared length must
//!   hold its address block (12 bytes for IPv4, 36 for IPv6, 216 for `AF_UNIX`); for
//!   `LOCAL`, the byte is ignored, as the spec says ("discard the protocol block including
//!   the family which is ignored");
//! - the declared length may be at most [`V2_MAX_PAYLOAD`] (the spec allows 65535);
//! - TLVs after the addresses are skipped, not validated.
//!
//! [spec]: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// The longest version 1 header, CRLF included: "If the CRLF sequence is not found in the
/// first 107 characters, the receiver should declare the line invalid" (§2.1).
pub const V1_MAX_LEN: usize = 107;
/// The longest version 2 payload (addresses and TLVs) accepted. The spec allows 65535;
/// the balancers we sit behind send the addresses plus a few short TLVs (AWS NLB: a VPC
/// endpoint id), so 4 KiB is generous and bounds what a connection buffers.
pub const V2_MAX_PAYLOAD: usize = 4096;
/// The longest header [`parse`] accepts, either version; [`read_header`]'s buffer size.
pub const MAX_HEADER_LEN: usize = V2_FIXED_LEN + V2_MAX_PAYLOAD;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/transport and the 2-byte length.
const V2_FIXED_LEN: usize = 16;

/// What a PROXY header says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// The original client and the address it connected to (v1 `TCP4`/`TCP6`, v2 `PROXY`
    /// with `AF_INET`/`AF_INET6` over `STREAM`).
    Proxied {
        /// The client's address and port.
        source: SocketAddr,
        /// The address and port the client connected to (the balancer's listener).
        destination: SocketAddr,
    },
    /// No address: v1 `UNKNOWN`, v2 `LOCAL` (balancer health checks), or v2 `PROXY` with
    /// a family or transport we do not use (`AF_UNSPEC`, `AF_UNIX`, `DGRAM`). The caller
    /// uses the TCP peer address.
    Unknown,
}

impl Header {
    /// The client's address: the header's source, or `peer` (the TCP peer) if it has none.
    pub fn client_addr(&self, peer: SocketAddr) -> SocketAddr {
        match self {
            Header::Proxied { source, .. } => *source,
            Header::Unknown => peer,
        }
    }
}

/// Result of looking at the first bytes of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header.
    Complete {
        /// What it says.
        header: Header,
        /// How many bytes it occupies at the start of the buffer; the rest is payload.
        len: usize,
    },
    /// The buffer is a strict prefix of a valid header: read more and parse again.
    Incomplete,
}

/// Why the start of a connection is not an acceptable PROXY header.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The first bytes match neither `PROXY ` nor the v2 signature.
    #[error("no proxy protocol header: the first bytes match neither the v1 nor the v2 signature")]
    NotProxyProtocol,
    /// A version 1 line that breaks the grammar; the text names the field.
    #[error("proxy protocol v1 header: {0}")]
    MalformedV1(&'static str),
    /// A version 1 line with no CRLF within [`V1_MAX_LEN`] bytes.
    #[error("proxy protocol v1 header: no CRLF in the first {V1_MAX_LEN} bytes")]
    V1TooLong,
    /// A version 2 header that breaks the format; the text says how.
    #[error("proxy protocol v2 header: {0}")]
    MalformedV2(&'static str),
    /// A version 2 header declaring more than [`V2_MAX_PAYLOAD`] bytes after the fixed part.
    #[error("proxy protocol v2 header: declared length {0} is over the limit of {V2_MAX_PAYLOAD}")]
    V2TooLong(u16),
    /// A version 2 version nibble other than 2.
    #[error("proxy protocol v2 header: unsupported version {0}")]
    UnsupportedVersion(u8),
    /// A version 2 command other than `LOCAL` (0) or `PROXY` (1).
    #[error("proxy protocol v2 header: unsupported command {0}")]
    UnsupportedCommand(u8),
    /// A version 2 `PROXY` family/transport byte outside the spec's list.
    #[error("proxy protocol v2 header: unknown address family and transport {0:#04x}")]
    UnknownFamily(u8),
    /// The peer closed the connection before the end of the header.
    #[error("connection closed before the end of the proxy protocol header")]
    Eof,
    /// Reading from the socket failed.
    #[error("failed to read the proxy protocol header")]
    Io(#[from] std::io::Error),
}

/// Parses the header at the start of `buf`, the first bytes of a connection.
///
/// Pure and total: never panics, and looks at no more than [`MAX_HEADER_LEN`] bytes.
/// The results are consistent as `buf` grows: `Incomplete` for every strict prefix of a
/// header, then the same `Complete` (or an error) for every longer buffer.
pub fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    if agrees(buf, V1_PREFIX) {
        parse_v1(buf)
    } else if agrees(buf, V2_SIGNATURE) {
        parse_v2(buf)
    } else {
        Err(Error::NotProxyProtocol)
    }
}

/// Reads exactly one header from the start of `stream`, leaving the bytes after it (the
/// TLS ClientHello) unread. The caller bounds the time this may take.
///
/// Bytes are only ever consumed when they are known to belong to the header: each round
/// peeks at what has arrived, and if [`parse`] says `Incomplete` then all of it is header,
/// so it is read off the socket; the next peek then waits for new bytes rather than
/// returning the same ones again (no polling), and sees end of stream as 0 bytes even when
/// the peer closed mid-header. Once `parse` says `Complete`, exactly the rest of the
/// header is read.
pub async fn read_header(stream: &mut TcpStream) -> Result<Header, Error> {
    let mut buf = [0u8; MAX_HEADER_LEN];
    // buf[..have] has been read off the socket; all of it is part of the header.
    let mut have = 0;
    while have < buf.len() {
        let peeked = stream.peek(&mut buf[have..]).await?;
        if peeked == 0 {
            return Err(Error::Eof);
        }
        match parse(&buf[..have + peeked])? {
            Parsed::Complete { header, len } => {
                // parse said Incomplete for buf[..have], so len > have; checked, not
                // trusted, since these are outside bytes.
                let rest = buf
                    .get_mut(have..len)
                    .ok_or(Error::MalformedV2("inconsistent header length"))?;
                stream.read_exact(rest).await?;
                return Ok(header);
            }
            Parsed::Incomplete => {
                stream.read_exact(&mut buf[have..have + peeked]).await?;
                have += peeked;
            }
        }
    }
    // parse never says Incomplete for MAX_HEADER_LEN bytes; should it, the header is
    // longer than any accepted.
    Err(Error::MalformedV2(
        "longer than the largest header accepted",
    ))
}

/// Whether `buf` and `signature` are equal over their common length.
fn agrees(buf: &[u8], signature: &[u8]) -> bool {
    let n = buf.len().min(signature.len());
    buf[..n] == signature[..n]
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, Error> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    if let Some(end) = window.windows(2).position(|w| w == b"\r\n") {
        let header = v1_line(&window[..end], true)?.ok_or(Error::MalformedV1("truncated"))?;
        return Ok(Parsed::Complete {
            header,
            len: end + 2,
        });
    }
    // No CRLF yet. A trailing CR can only be the CRLF's first half (no field may hold a
    // CR, and an `UNKNOWN` line may end anywhere), so the line before it must be whole.
    let (line, whole) = match window.split_last() {
        Some((b'\r', line)) => (line, true),
        _ => (window, false),
    };
    v1_line(line, whole)?;
    if line.len() > V1_MAX_LEN - 2 {
        return Err(Error::V1TooLong);
    }
    Ok(Parsed::Incomplete)
}

/// One field of a v1 line, and whether it is finished (followed by a space, or the last
/// of a whole line) or may still grow.
struct Field<'a> {
    text: &'a [u8],
    done: bool,
}

/// Checks a v1 line without its CRLF. With `whole`, the line must be complete and its
/// header is returned; without, it only has to be a prefix of a valid line (`Ok(None)`).
fn v1_line(line: &[u8], whole: bool) -> Result<Option<Header>, Error> {
    let Some(rest) = line.strip_prefix(V1_PREFIX) else {
        // `parse` checked that the line agrees with the prefix as far as it goes.
        return if whole {
            Err(Error::MalformedV1("no protocol family"))
        } else {
            Ok(None)
        };
    };
    let mut split = rest.split(|&b| b == b' ').peekable();
    let mut fields = std::iter::from_fn(|| {
        let text = split.next()?;
        let done = whole || split.peek().is_some();
        Some(Field { text, done })
    });
    let family = fields
        .next()
        .ok_or(Error::MalformedV1("no protocol family"))?;
    if !family.done {
        let families: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];
        return if families.iter().any(|f| f.starts_with(family.text)) {
            Ok(None)
        } else {
            Err(Error::MalformedV1("bad protocol family"))
        };
    }
    let v6 = match family.text {
        b"TCP4" => false,
        b"TCP6" => true,
        b"UNKNOWN" => return Ok(whole.then_some(Header::Unknown)),
        _ => return Err(Error::MalformedV1("bad protocol family")),
    };
    let ip = |text: &[u8]| v1_ip(text, v6);
    let ip_viable = |text: &[u8]| v1_ip_viable(text, v6);
    let Some(src) = v1_field(fields.next(), "bad source address", ip, ip_viable)? else {
        return Ok(None);
    };
    let Some(dst) = v1_field(fields.next(), "bad destination address", ip, ip_viable)? else {
        return Ok(None);
    };
    let port_viable = |text: &[u8]| text.is_empty() || v1_port(text).is_some();
    let Some(src_port) = v1_field(fields.next(), "bad source port", v1_port, port_viable)? else {
        return Ok(None);
    };
    let Some(dst_port) = v1_field(fields.next(), "bad destination port", v1_port, port_viable)?
    else {
        return Ok(None);
    };
    if fields.next().is_some() {
        return Err(Error::MalformedV1("data after the destination port"));
    }
    Ok(Some(Header::Proxied {
        source: SocketAddr::new(src, src_port),
        destination: SocketAddr::new(dst, dst_port),
    }))
}

/// A finished field must `parse`; an unfinished one (the end of a partial line) need only
/// be `viable`, a prefix of something that parses (`Ok(None)`).
fn v1_field<T>(
    field: Option<Field<'_>>,
    bad: &'static str,
    parse: impl Fn(&[u8]) -> Option<T>,
    viable: impl Fn(&[u8]) -> bool,
) -> Result<Option<T>, Error> {
    // Fields only run out in a whole line: a partial line ends in an unfinished field.
    let field = field.ok_or(Error::MalformedV1("too few fields"))?;
    if !field.done {
        return if viable(field.text) {
            Ok(None)
        } else {
            Err(Error::MalformedV1(bad))
        };
    }
    if field.text.is_empty() {
        return Err(Error::MalformedV1(
            "empty field (fields are separated by one space)",
        ));
    }
    parse(field.text).map(Some).ok_or(Error::MalformedV1(bad))
}

fn v1_ip(text: &[u8], v6: bool) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?;
    if v6 {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// Whether `text` can still grow into an address of the family.
///
/// It can if one of a few completions parses. The last group of a partial IPv4 address,
/// or of an IPv4 tail in IPv6, needs at most `0.0.0` or `.0.0.0`: a digit prefix of an
/// octet is itself an octet, and a dot needs a digit. A partial IPv6 hex group is a group;
/// after it, `::` supplies the missing groups, or a bare `:` a second colon, or `0` a group
/// after a colon. If none of these parses, no longer text does either.
fn v1_ip_viable(text: &[u8], v6: bool) -> bool {
    const V4: [&[u8]; 7] = [b"", b"0", b".0", b"0.0", b".0.0", b"0.0.0", b".0.0.0"];
    const V6: [&[u8]; 8] = [b"", b"0", b":", b"::", b".0", b"0.0", b".0.0", b"0.0.0"];
    let completions: &[&[u8]] = if v6 { &V6 } else { &V4 };
    let mut scratch = [0u8; V1_MAX_LEN + 8];
    text.is_empty()
        || completions.iter().any(|suffix| {
            let n = text.len() + suffix.len();
            match scratch.get_mut(..n) {
                Some(out) => {
                    out[..text.len()].copy_from_slice(text);
                    out[text.len()..].copy_from_slice(suffix);
                    v1_ip(out, v6).is_some()
                }
                None => false,
            }
        })
}

/// A port: 1 to 5 decimal digits, no leading zero unless it is `0`, at most 65535.
fn v1_port(text: &[u8]) -> Option<u16> {
    let plain = matches!(text, [b'1'..=b'9', ..] | [b'0']);
    if !plain || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = text.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    u16::try_from(value).ok()
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, Error> {
    let Some(&version_command) = buf.get(12) else {
        return Ok(Parsed::Incomplete);
    };
    let version = version_command >> 4;
    if version != 2 {
        return Err(Error::UnsupportedVersion(version));
    }
    let local = match version_command & 0x0f {
        0 => true,
        1 => false,
        command => return Err(Error::UnsupportedCommand(command)),
    };
    let Some(&family) = buf.get(13) else {
        return Ok(Parsed::Incomplete);
    };
    let addresses_len = if local { 0 } else { v2_addresses_len(family)? };
    let Some(&[hi, lo]) = buf.get(14..16) else {
        return Ok(Parsed::Incomplete);
    };
    let declared = u16::from_be_bytes([hi, lo]);
    if usize::from(declared) > V2_MAX_PAYLOAD {
        return Err(Error::V2TooLong(declared));
    }
    if usize::from(declared) < addresses_len {
        return Err(Error::MalformedV2(
            "declared length shorter than the address block",
        ));
    }
    let len = V2_FIXED_LEN + usize::from(declared);
    let Some(payload) = buf.get(V2_FIXED_LEN..len) else {
        return Ok(Parsed::Incomplete);
    };
    let header = match (local, family) {
        (false, 0x11) => v2_tcp4(payload),
        (false, 0x21) => v2_tcp6(payload),
        _ => Some(Header::Unknown),
    };
    let header = header.ok_or(Error::MalformedV2(
        "declared length shorter than the address block",
    ))?;
    Ok(Parsed::Complete { header, len })
}

/// The address block's size for a `PROXY` command's family/transport byte (§2.2, "In
/// practice, the following protocol bytes are expected").
fn v2_addresses_len(family: u8) -> Result<usize, Error> {
    match family {
        0x00 => Ok(0),
        0x11 | 0x12 => Ok(12),
        0x21 | 0x22 => Ok(36),
        0x31 | 0x32 => Ok(216),
        _ => Err(Error::UnknownFamily(family)),
    }
}

/// Source and destination IPv4 addresses, then source and destination ports, big-endian.
fn v2_tcp4(payload: &[u8]) -> Option<Header> {
    let block: [u8; 12] = payload.get(..12)?.try_into().ok()?;
    let [s0, s1, s2, s3, d0, d1, d2, d3, sp0, sp1, dp0, dp1] = block;
    Some(Header::Proxied {
        source: SocketAddr::from(([s0, s1, s2, s3], u16::from_be_bytes([sp0, sp1]))),
        destination: SocketAddr::from(([d0, d1, d2, d3], u16::from_be_bytes([dp0, dp1]))),
    })
}

/// Source and destination IPv6 addresses, then source and destination ports, big-endian.
fn v2_tcp6(payload: &[u8]) -> Option<Header> {
    let src: [u8; 16] = payload.get(..16)?.try_into().ok()?;
    let dst: [u8; 16] = payload.get(16..32)?.try_into().ok()?;
    let &[sp0, sp1, dp0, dp1] = payload.get(32..36)? else {
        return None;
    };
    Some(Header::Proxied {
        source: SocketAddr::from((src, u16::from_be_bytes([sp0, sp1]))),
        destination: SocketAddr::from((dst, u16::from_be_bytes([dp0, dp1]))),
    })
}

#[cfg(test)]
mod tests;
