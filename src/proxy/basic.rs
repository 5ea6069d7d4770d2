//! The `Authorization: Basic` header ([RFC 7617]), parsed into plain strings for the
//! auth core, which knows nothing of HTTP.
//!
//! Lenient where clients differ (scheme case, extra spaces, padded or unpadded
//! base64), strict where ambiguity could be abused (two `Authorization` headers).
//!
//! [RFC 7617]: https://www.rfc-editor.org/rfc/rfc7617

use base64::Engine as _;
use http::header::{HeaderMap, AUTHORIZATION};

use crate::auth::{Credentials, Password};

/// Why the header was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// More than one `Authorization` header: which one counts is ambiguous.
    #[error("more than one Authorization header")]
    Duplicate,
    /// Not `Basic`, bad base64, no colon, or a non-UTF-8 user name.
    #[error("malformed Basic credentials")]
    Malformed,
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Reads Basic credentials; `Ok(None)` when the request carries none.
pub fn parse(headers: &HeaderMap) -> Result<Option<Credentials>, Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::Duplicate);
    }
    let text = value.to_str().map_err(|_| Error::Malformed)?.trim();
    let (scheme, rest) = text.split_once(' ').ok_or(Error::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::Malformed);
    }
    let decoded = BASE64
        .decode(rest.trim().as_bytes())
        .map_err(|_| Error::Malformed)?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or(Error::Malformed)?;
    let user = std::str::from_utf8(&decoded[..colon]).map_err(|_| Error::Malformed)?;
    if user.is_empty() {
        // skopeo and podman send `Basic Og==` (":") when they have no credentials.
        return if colon + 1 == decoded.len() {
            Ok(None)
        } else {
            Err(Error::Malformed)
        };
    }
    Ok(Some(Credentials {
        user: user.to_owned(),
        password: Password::new(decoded[colon + 1..].to_vec()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                AUTHORIZATION,
                HeaderValue::from_bytes(v).expect("header value"),
            );
        }
        h
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn accepted_forms() {
        let padded = b64(b"alice:pw"); // "YWxpY2U6cHc=" has padding
        let unpadded = padded.trim_end_matches('=').to_string();
        let cases: Vec<(String, &str, &[u8])> = vec![
            (format!("Basic {padded}"), "alice", b"pw"),
            (format!("basic {padded}"), "alice", b"pw"),
            (format!("BASIC    {padded}  "), "alice", b"pw"),
            (format!("Basic {unpadded}"), "alice", b"pw"),
            (
                format!("Basic {}", b64("bob:p:w:x".as_bytes())),
                "bob",
                b"p:w:x",
            ),
            (
                format!("Basic {}", b64("jürgen:pä ss".as_bytes())),
                "jürgen",
                "pä ss".as_bytes(),
            ),
            (format!("Basic {}", b64(b"carol:")), "carol", b""),
            (
                format!("Basic {}", b64(b"dave:\xff\xfe")),
                "dave",
                b"\xff\xfe",
            ),
        ];
        for (value, user, password) in cases {
            let got = parse(&headers(&[value.as_bytes()]))
                .unwrap_or_else(|e| panic!("value={value:?}: {e}"))
                .unwrap_or_else(|| panic!("value={value:?}: no credentials"));
            assert_eq!(got.user, user, "value={value:?}");
            assert_eq!(got.password.expose(), password, "value={value:?}");
        }
    }

    #[test]
    fn refused_forms() {
        let good = format!("Basic {}", b64(b"alice:pw"));
        let cases: Vec<(Vec<&[u8]>, Error)> = vec![
            (vec![b"Bearer abc"], Error::Malformed),
            (vec![b"Basic"], Error::Malformed),
            (vec![b"Basic !!!"], Error::Malformed),
            (vec![b"Basic YWxpY2U="], Error::Malformed), // "alice", no colon
            (vec![b"Basic OnB3"], Error::Malformed),     // ":pw", empty user
            (vec![b"Basic /w=="], Error::Malformed),     // non-UTF-8 user
            (vec![b"Basic\xff"], Error::Malformed),
            (vec![good.as_bytes(), good.as_bytes()], Error::Duplicate),
        ];
        for (values, want) in cases {
            let got = parse(&headers(&values)).map(|c| c.map(|c| c.user));
            assert_eq!(got, Err(want), "values={values:?}");
        }
        assert!(parse(&HeaderMap::new())
            .expect("no header is fine")
            .is_none());
        let anonymous = headers(&[b"Basic Og=="]);
        assert!(parse(&anonymous)
            .expect("\":\" is no credentials")
            .is_none());
    }
}
