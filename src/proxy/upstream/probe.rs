//! One `GET /v2/` to the registry at start and after each reload, so that a
//! registry that is down (or a wrong `upstream.url`) shows in the log at once,
//! not first as clients' 502s.
//!
//! The probe runs in its own task and only logs: start-up and reloads never wait
//! for it, and its answer changes nothing. Any HTTP status means the registry is
//! up (200 without auth, 401 with). A token server alone has no registry to ask.

use crate::proxy::upstream::Upstream;
use crate::state::State;

/// Probes the state's registry, if it has one, in the background.
pub fn spawn(state: &State) {
    if let Some(upstream) = state.upstream.clone() {
        tokio::spawn(async move { check(&upstream).await });
    }
}

/// Asks the registry once, within `upstream.connect_timeout`, and logs the result:
/// INFO when it answered, WARN (with what to check) when it did not.
pub async fn check(upstream: &Upstream) {
    let url = upstream.origin();
    match upstream.announced_probe(upstream.connect_timeout).await {
        Ok(status) => tracing::info!(url, status = status.as_u16(), "upstream reachable"),
        Err(error) => tracing::warn!(
            url,
            %error,
            "upstream not reachable: check that the registry runs and that upstream.url \
             names it; the gate serves anyway, and clients get 502 until it answers"
        ),
    }
}
