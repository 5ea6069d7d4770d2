//! Test harness: the gate in-process, a recording upstream, a TLS client, and the
//! real registry and skopeo.

pub mod blob;
pub mod client;
pub mod gate;
pub mod nginx;
pub mod oci;
pub mod podman;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod skopeo;
pub mod slapd;
pub mod upstream;

use std::time::Duration;

/// Every value of header `name`, as text (lossy for non-UTF-8 bytes).
pub fn header_values(headers: &http::HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// Polls `check` until it returns `Some`, for at most `limit`.
pub async fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The failure message for a missing external program, naming the Debian package to install.
/// Tests that need the program fail with it; they never skip.
pub fn install_hint(tool: &str, package: &str) -> String {
    format!(
        "`{tool}` is not on PATH: install the Debian package with `apt-get install -y {package}`"
    )
}
