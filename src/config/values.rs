//! The value types of the config: durations, sizes, counts, URLs and texts.
//!
//! Each checks its value while it is deserialised, so a bad value's error carries
//! the line and column toml attaches to it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DEFAULT_IPV6_PREFIX, DEFAULT_REALM};

/// A duration written like `"30s"`, `"15m"` or `"1h 30m"`. A bare number is refused
/// with the hint to give it a unit, since it could mean seconds or milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "toml::Value", into = "String")]
pub struct HumanDuration(pub Duration);

impl From<HumanDuration> for String {
    fn from(d: HumanDuration) -> String {
        humantime::format_duration(d.0).to_string()
    }
}

impl TryFrom<toml::Value> for HumanDuration {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => humantime::parse_duration(&s)
                .map(HumanDuration)
                .map_err(|e| format!("invalid duration {s:?} ({e}); write it like \"30s\" or \"15m\"")),
            toml::Value::Integer(n) if n < 0 => Err(format!(
                "invalid duration {n}: must not be negative; write it like \"30s\" or \"15m\""
            )),
            toml::Value::Integer(n) => Err(format!(
                "invalid duration {n} (a number without a unit); write it with a unit, like \"{n}s\""
            )),
            toml::Value::Float(f) => Err(format!(
                "invalid duration {f} (a number without a unit); write it with a unit, like \
                 \"30s\" or \"1500ms\""
            )),
            other => Err(format!(
                "invalid duration {other}: must be a string like \"30s\" or \"15m\""
            )),
        }
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A positive count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Count(pub usize);

/// A size in bytes, written as an integer or a string like `"10GiB"`, `"500MB"`, `"4k"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "toml::Value", into = "u64")]
pub struct ByteSize(pub u64);

impl From<ByteSize> for u64 {
    fn from(b: ByteSize) -> u64 {
        b.0
    }
}

impl TryFrom<toml::Value> for ByteSize {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Integer(n) => u64::try_from(n)
                .map(ByteSize)
                .map_err(|_| format!("invalid size {n}: must not be negative")),
            toml::Value::String(s) => parse_byte_size(&s).map(ByteSize),
            other => Err(format!(
                "invalid size {other}: write a number of bytes or a string like \"10GiB\""
            )),
        }
    }
}

pub(super) fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {s:?}: write it like \"10GiB\" or \"500MB\""))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return Err(format!("invalid size {s:?}: unknown unit {unit:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))
}

/// The registry's base URL: `http` or `https`, a host, no path, query or credentials.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct UpstreamUrl(pub(super) http::Uri);

impl From<UpstreamUrl> for String {
    fn from(u: UpstreamUrl) -> String {
        u.0.to_string().trim_end_matches('/').to_string()
    }
}

impl UpstreamUrl {
    /// The scheme, `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.0.scheme_str().unwrap_or("http")
    }
    /// The URL as a [`http::Uri`] with scheme and authority only.
    pub fn uri(&self) -> &http::Uri {
        &self.0
    }
}

impl TryFrom<String> for UpstreamUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let uri: http::Uri = s
            .parse()
            .map_err(|e| format!("invalid upstream URL {s:?}: {e}"))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(format!(
                    "invalid upstream URL {s:?}: scheme must be http or https"
                ))
            }
        }
        let Some(authority) = uri.authority() else {
            return Err(format!("invalid upstream URL {s:?}: no host"));
        };
        if authority.as_str().contains('@') {
            return Err(format!(
                "invalid upstream URL {s:?}: credentials are not allowed"
            ));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!(
                "invalid upstream URL {s:?}: the registry must be at the root (no path or query)"
            ));
        }
        let base = http::Uri::builder()
            .scheme(uri.scheme_str().unwrap_or("http"))
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| format!("invalid upstream URL {s:?}: {e}"))?;
        Ok(UpstreamUrl(base))
    }
}

/// A header value written in the config: empty (the header is off) or one that
/// HTTP allows, checked once as it is read.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct HeaderText(pub(super) Option<http::HeaderValue>);

impl HeaderText {
    /// The value; `None` when written as `""`.
    pub fn value(&self) -> Option<&http::HeaderValue> {
        self.0.as_ref()
    }
}

impl From<HeaderText> for String {
    fn from(h: HeaderText) -> String {
        h.0.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    }
}

impl TryFrom<String> for HeaderText {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() {
            return Ok(HeaderText(None));
        }
        http::HeaderValue::from_str(&s)
            .map(|v| HeaderText(Some(v)))
            .map_err(|_| format!("{s:?} is not a valid header value"))
    }
}

/// The Basic realm: printable ASCII without `"` or `\`, so it fits a quoted-string as is.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Realm(pub(super) String);

impl From<Realm> for String {
    fn from(r: Realm) -> String {
        r.0
    }
}

impl Realm {
    /// The realm text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Realm {
    fn default() -> Self {
        Realm(DEFAULT_REALM.to_string())
    }
}

impl TryFrom<String> for Realm {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(format!(
                "invalid realm {s:?}: use printable ASCII without quotes or backslashes"
            ));
        }
        Ok(Realm(s))
    }
}

/// A user-agent pattern, compiled with look-around support.
#[derive(Clone, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct UaPattern(pub fancy_regex::Regex);

impl From<UaPattern> for String {
    fn from(p: UaPattern) -> String {
        p.0.as_str().to_string()
    }
}

impl TryFrom<String> for UaPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        fancy_regex::Regex::new(&s)
            .map(UaPattern)
            .map_err(|e| format!("invalid user-agent pattern {s:?}: {e}"))
    }
}

impl fmt::Debug for UaPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_str())
    }
}

/// A duration that must not be zero: a timeout of `"0s"` would refuse every client.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "HumanDuration", into = "HumanDuration")]
pub struct Timeout(pub Duration);

impl From<Timeout> for HumanDuration {
    fn from(t: Timeout) -> HumanDuration {
        HumanDuration(t.0)
    }
}

impl TryFrom<HumanDuration> for Timeout {
    type Error = String;
    fn try_from(HumanDuration(d): HumanDuration) -> Result<Self, String> {
        if d.is_zero() {
            return Err("must be more than 0s".into());
        }
        Ok(Timeout(d))
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A count from `MIN` to `MAX`. It is read as a `usize` first, so a type error
/// reads like any other number's, then the range is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "usize", into = "usize")]
pub struct Bounded<const MIN: usize, const MAX: usize>(pub usize);

/// A count of at least one (`listen.max_connections`).
pub type AtLeastOne = Bounded<1, { usize::MAX }>;

/// `limits.max_headers`: 1 to 10000 header fields.
pub type HeaderCount = Bounded<1, 10_000>;

impl<const MIN: usize, const MAX: usize> From<Bounded<MIN, MAX>> for usize {
    fn from(b: Bounded<MIN, MAX>) -> usize {
        b.0
    }
}

impl<const MIN: usize, const MAX: usize> TryFrom<usize> for Bounded<MIN, MAX> {
    type Error = String;
    fn try_from(n: usize) -> Result<Self, String> {
        match (MIN..=MAX).contains(&n) {
            true => Ok(Bounded(n)),
            false if MAX == usize::MAX => Err(format!("must be at least {MIN}")),
            false => Err(format!("must be between {MIN} and {MAX}")),
        }
    }
}

/// `limits.max_header_bytes`: a head limit hyper can apply. Its HTTP/1.1 read
/// buffer needs at least 8 KiB, and HTTP/2 carries the header list size in 32 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "ByteSize", into = "u64")]
pub struct HeadBytes(pub u64);

/// The sizes [`HeadBytes`] allows: 8 KiB to 1 MiB.
const HEAD_BYTES: std::ops::RangeInclusive<u64> = 8 * 1024..=1024 * 1024;

impl From<HeadBytes> for u64 {
    fn from(b: HeadBytes) -> u64 {
        b.0
    }
}

impl TryFrom<ByteSize> for HeadBytes {
    type Error = String;
    fn try_from(ByteSize(n): ByteSize) -> Result<Self, String> {
        if !HEAD_BYTES.contains(&n) {
            return Err(format!(
                "must be between {} and {} bytes (8KiB to 1MiB)",
                HEAD_BYTES.start(),
                HEAD_BYTES.end()
            ));
        }
        Ok(HeadBytes(n))
    }
}

/// `tls.session_ticket_lifetime`: zero (no resumption) or whole seconds from one
/// second up to seven days, the most TLS 1.3 allows a ticket
/// ([RFC 8446 §4.6.1](https://www.rfc-editor.org/rfc/rfc8446#section-4.6.1)).
#[derive(Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "toml::Value", into = "String")]
pub struct TicketLifetime(pub(super) Duration);

/// The longest ticket lifetime TLS 1.3 allows.
pub const MAX_TICKET_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

impl TicketLifetime {
    /// The lifetime in seconds; `None` when tickets are off.
    pub fn seconds(self) -> Option<u32> {
        u32::try_from(self.0.as_secs()).ok().filter(|s| *s > 0)
    }
}

impl From<TicketLifetime> for String {
    fn from(t: TicketLifetime) -> String {
        humantime::format_duration(t.0).to_string()
    }
}

impl TryFrom<toml::Value> for TicketLifetime {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        let s = v.to_string();
        let HumanDuration(d) = HumanDuration::try_from(v)?;
        if d.subsec_nanos() != 0 {
            return Err(format!(
                "invalid ticket lifetime {s}: must be whole seconds (\"0s\" turns tickets off)"
            ));
        }
        if d > MAX_TICKET_LIFETIME {
            return Err(format!(
                "invalid ticket lifetime {s}: at most 7 days (RFC 8446 section 4.6.1)"
            ));
        }
        Ok(TicketLifetime(d))
    }
}

impl fmt::Debug for TicketLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// `throttle.ipv6_prefix`: a prefix length from 1 to 128 (a /64 by default, what
/// one IPv6 host usually holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct Ipv6Prefix(pub(super) u8);

impl Ipv6Prefix {
    /// The prefix length, 1 to 128.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for Ipv6Prefix {
    fn default() -> Self {
        Ipv6Prefix(DEFAULT_IPV6_PREFIX)
    }
}

impl From<Ipv6Prefix> for u8 {
    fn from(p: Ipv6Prefix) -> u8 {
        p.0
    }
}

impl TryFrom<i64> for Ipv6Prefix {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        u8::try_from(n)
            .ok()
            .filter(|n| (1..=128).contains(n))
            .map(Ipv6Prefix)
            .ok_or_else(|| format!("invalid IPv6 prefix length {n}: must be from 1 to 128"))
    }
}
