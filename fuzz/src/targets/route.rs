//! `route::classify` on UTF-8 paths.

use registry_gate::proxy::route::{self, Error, Route};

/// One input of the `route` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    match route::classify(path) {
        Ok(route) => {
            // What the registry would route on is what was checked: no dot-segment and no
            // encoded separator, in any case.
            assert_eq!(
                route == Route::Registry,
                path.starts_with("/v2/"),
                "path={path:?}"
            );
            assert!(
                path.split('/').all(|s| s != "." && s != ".."),
                "path={path:?}"
            );
            let lower = path.to_ascii_lowercase();
            let encoded = [
                "\\", "%2f", "%5c", "%00", "/%2e/", "/%2e%2e/", "/.%2e/", "/%2e./",
            ];
            assert!(encoded.iter().all(|e| !lower.contains(e)), "path={path:?}");
        }
        Err(Error::NotAbsolute) => assert!(!path.starts_with('/'), "path={path:?}"),
        Err(Error::DotSegment | Error::EncodedSeparator) => {
            assert!(path.starts_with('/'), "path={path:?}")
        }
    }
}
