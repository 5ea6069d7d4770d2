//! Which part of the gate a request path belongs to, and paths that are refused.
//!
//! The gate forwards the path bytes exactly as the client sent them (the
//! registry's `_state` query and digests must survive untouched). So the path the
//! gate checks must be the path the registry routes on: a path whose dot-segments
//! ([RFC 3986 §5.2.4]) or percent-encoded separators would be resolved differently
//! by the registry (`/x/../v2/`, `/v2/%2e%2e/`, `%2f`) is refused.
//!
//! [RFC 3986 §5.2.4]: https://www.rfc-editor.org/rfc/rfc3986#section-5.2.4

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The registry API: `/v2/` and below.
    Registry,
    /// Exactly `/v2`: redirected to `/v2/`, as nginx does for the recipe's `location /v2/`.
    RegistryNoSlash,
    /// Anything else: answered 404 by the gate.
    Other,
}

/// Why a path is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A `.` or `..` segment, literal or percent-encoded.
    #[error("path has a dot-segment")]
    DotSegment,
    /// A percent-encoded `/`, `\` or NUL, which the registry would decode into a separator.
    #[error("path has an encoded separator")]
    EncodedSeparator,
    /// A path that is not absolute.
    #[error("path is not absolute")]
    NotAbsolute,
}

/// Classifies a raw request path (no query).
pub fn classify(path: &str) -> Result<Route, Error> {
    if !path.starts_with('/') {
        return Err(Error::NotAbsolute);
    }
    for segment in path.split('/') {
        check_segment(segment)?;
    }
    Ok(if path.starts_with("/v2/") {
        Route::Registry
    } else if path == "/v2" {
        Route::RegistryNoSlash
    } else {
        Route::Other
    })
}

fn check_segment(segment: &str) -> Result<(), Error> {
    let bytes = segment.as_bytes();
    if bytes.contains(&b'\\') {
        return Err(Error::EncodedSeparator);
    }
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(b'/' | b'\\' | 0) => return Err(Error::EncodedSeparator),
            Some(b) => {
                decoded.push(b);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    if decoded == b"." || decoded == b".." {
        return Err(Error::DotSegment);
    }
    Ok(())
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        let cases: &[(&str, Result<Route, Error>)] = &[
            ("/v2/", Ok(Route::Registry)),
            ("/v2/library/alpine/manifests/latest", Ok(Route::Registry)),
            ("/v2/a/b/c/blobs/uploads/6f1c-a", Ok(Route::Registry)),
            ("/v2/a.b/c..d/.e/manifests/x", Ok(Route::Registry)),
            ("/v2", Ok(Route::RegistryNoSlash)),
            ("/v2x", Ok(Route::Other)),
            ("/", Ok(Route::Other)),
            ("/v1/_ping", Ok(Route::Other)),
            ("/v2x/", Ok(Route::Other)),
            ("/x/../v2/", Err(Error::DotSegment)),
            ("/v2/../v2/", Err(Error::DotSegment)),
            ("/v2/./", Err(Error::DotSegment)),
            ("/v2/a/..", Err(Error::DotSegment)),
            ("/v2/%2e%2e/", Err(Error::DotSegment)),
            ("/v2/%2E%2e/", Err(Error::DotSegment)),
            ("/v2/.%2e/x", Err(Error::DotSegment)),
            ("/v2/%2e/x", Err(Error::DotSegment)),
            ("/v2/a%2f..%2fb/manifests/x", Err(Error::EncodedSeparator)),
            ("/v2/a%2Fb/manifests/x", Err(Error::EncodedSeparator)),
            ("/v2/a%5cb/manifests/x", Err(Error::EncodedSeparator)),
            ("/v2/a\\b/manifests/x", Err(Error::EncodedSeparator)),
            ("/v2/a%00/manifests/x", Err(Error::EncodedSeparator)),
            ("/v2/a%zz/manifests/x", Ok(Route::Registry)),
            ("/v2/a%2", Ok(Route::Registry)),
            ("/v2/%", Ok(Route::Registry)),
            ("*", Err(Error::NotAbsolute)),
            ("", Err(Error::NotAbsolute)),
        ];
        for (path, want) in cases {
            assert_eq!(classify(path), *want, "path={path:?}");
        }
    }
}
