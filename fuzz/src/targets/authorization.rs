//! `basic::parse` on one or two `Authorization` values.
//!
//! Input: the first value, then optionally `\n` and the second. A value that is not a valid
//! `HeaderValue` (hyper would have refused it) is left out.

use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use registry_gate::proxy::basic::{self, Error};

/// One input of the `authorization` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for value in data.splitn(2, |&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(AUTHORIZATION, value);
        }
    }
    let values = headers.get_all(AUTHORIZATION).iter().count();
    match basic::parse(&headers) {
        Ok(None) => {
            let value = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
            assert!(
                values == 0 || values == 1 && value.is_some_and(no_credentials),
                "value={value:?}"
            );
        }
        Ok(Some(credentials)) => {
            assert_eq!(values, 1);
            let user = &credentials.user;
            assert!(!user.is_empty() && !user.contains(':'), "user={user:?}");
            // The password is what follows the first colon of the decoded base64.
            assert!(credentials.password.expose().len() < data.len());
        }
        Err(Error::Duplicate) => assert_eq!(values, 2),
        Err(Error::Malformed) => assert_eq!(values, 1),
    }
}

/// Whether `value` is `Basic` and the base64 of `:`, padding optional: an empty user and
/// password, which skopeo and podman send when they have no credentials and the gate takes
/// for none (`basic.rs`, since 2515e7d).
fn no_credentials(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let Some((scheme, rest)) = text.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic") && ["Og", "Og=", "Og=="].contains(&rest.trim())
}
