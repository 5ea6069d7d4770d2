//! Test harness: the gate in-process, a recording upstream, a TLS client, the real
//! registry, skopeo, slapd and nginx, the differential engine, and the one way to wait
//! for a state ([`eventually`]).

pub mod blob;
pub mod client;
pub mod differential;
pub mod gate;
pub mod issuer;
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

/// Runs blocking test code (child processes) off the runtime that serves the gate, and passes
/// its panic on as it is.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// How often [`eventually`] looks again.
const EVENTUALLY_INTERVAL: Duration = Duration::from_millis(20);

/// What one look of [`eventually`] saw: done with a value, or not yet (with what it saw
/// instead, for the failure message).
pub trait Outcome {
    /// The value a successful look returns.
    type Value;
    /// `Ok` once the state is reached, else what was seen instead.
    fn into_outcome(self) -> Result<Self::Value, String>;
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "not yet".to_owned())
    }
}

impl<T, E: std::fmt::Display> Outcome for Result<T, E> {
    type Value = T;
    fn into_outcome(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Looks at `check` every 20 ms until it reports the state `what` names, for at most `limit`
/// (and so at most `limit / 20 ms + 1` looks); returns the value it reported. On timeout it
/// panics with `what`, the limit, the number of looks and what the last look saw.
pub async fn eventually<F, Fut>(
    what: &str,
    limit: Duration,
    check: F,
) -> <Fut::Output as Outcome>::Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
    Fut::Output: Outcome,
{
    match within(limit, check).await {
        Ok(value) => value,
        Err(TimedOut { looks, seen }) => {
            panic!("waited {limit:?} ({looks} looks) for {what}; the last look saw: {seen}")
        }
    }
}

/// Why [`within`] gave up: how often it looked, and what the last look saw.
#[derive(Debug)]
pub struct TimedOut {
    /// How many looks were made.
    pub looks: u128,
    /// What the last look saw instead of the state.
    pub seen: String,
}

/// [`eventually`] for a caller to whom running out of time is an answer, not a failure.
pub async fn within<F, Fut>(
    limit: Duration,
    mut check: F,
) -> Result<<Fut::Output as Outcome>::Value, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
    Fut::Output: Outcome,
{
    let deadline = tokio::time::Instant::now() + limit;
    let most = limit.as_millis() / EVENTUALLY_INTERVAL.as_millis() + 1;
    let mut looks = 0u128;
    loop {
        looks += 1;
        let seen = match check().await.into_outcome() {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        if looks >= most || tokio::time::Instant::now() >= deadline {
            return Err(TimedOut { looks, seen });
        }
        tokio::time::sleep(EVENTUALLY_INTERVAL).await;
    }
}

/// The failure message for a missing external program, naming the Debian package to install.
/// Tests that need the program fail with it; they never skip.
pub fn install_hint(tool: &str, package: &str) -> String {
    format!(
        "`{tool}` is not on PATH: install the Debian package with `apt-get install -y {package}`"
    )
}
