//! One issuer's keys as the gate holds them: a fixed set (`jwks_file`, re-read on
//! reload like every other file) or a set fetched by discovery and cached.
//!
//! A cached set is refreshed when a token names a `kid` it lacks (the issuer rotated
//! its keys), at most once per [`REFRESH_INTERVAL`] however many tokens ask, and one
//! fetch at a time: a flood of forged `kid`s costs the issuer one request per
//! interval. A failed refresh keeps the cached set, so an issuer outage breaks no
//! token whose key is cached; it is logged, naming the issuer.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::fetch::{FetchError, Fetcher};
use super::jwks::Jwks;

/// The least time between two fetches of one issuer's keys.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Where an issuer's keys come from.
#[derive(Debug)]
pub enum IssuerKeys {
    /// `jwks_file`: read when the state was built.
    Fixed(Arc<Jwks>),
    /// Discovery over HTTPS, cached; shared, so a reload that keeps the issuer keeps
    /// the cache (and an issuer outage during a reload loses no key).
    Discovered(Arc<Discovered>),
}

/// A fetched, cached key set.
#[derive(Debug)]
pub struct Discovered {
    fetcher: Fetcher,
    interval: Duration,
    cached: Mutex<Cache>,
    /// Held while a fetch runs, so concurrent refreshes make one request.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Cache {
    jwks: Option<Arc<Jwks>>,
    last_fetch: Option<Instant>,
}

impl IssuerKeys {
    /// The key set to check a token whose header names `kid`: the cached set if it
    /// has that key, else the set after a refresh (when one is due). `None`: no key
    /// set could be had at all.
    pub async fn for_kid(&self, kid: &str) -> Option<Arc<Jwks>> {
        match self {
            IssuerKeys::Fixed(jwks) => Some(jwks.clone()),
            IssuerKeys::Discovered(d) => d.for_kid(kid).await,
        }
    }
}

#[cfg(test)]
impl IssuerKeys {
    /// Whether these are fixed keys that hold `kid`.
    pub fn is_fixed_with(&self, kid: &str) -> bool {
        matches!(self, IssuerKeys::Fixed(jwks) if jwks.get(kid).is_some())
    }
}

impl Discovered {
    /// A cache that has fetched nothing yet.
    pub fn new(fetcher: Fetcher) -> Discovered {
        Discovered::with_interval(fetcher, REFRESH_INTERVAL)
    }

    /// A cache that fetches at most once per `interval`.
    pub fn with_interval(fetcher: Fetcher, interval: Duration) -> Discovered {
        Discovered {
            fetcher,
            interval,
            cached: Mutex::new(Cache::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The cached set, if any.
    pub fn cached(&self) -> Option<Arc<Jwks>> {
        self.cached.lock().jwks.clone()
    }

    async fn for_kid(&self, kid: &str) -> Option<Arc<Jwks>> {
        let has = |jwks: &Option<Arc<Jwks>>| jwks.as_ref().is_some_and(|j| j.get(kid).is_some());
        let cached = self.cached();
        if has(&cached) {
            return cached;
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(
                issuer = %self.fetcher.issuer(),
                error = %e,
                "OIDC issuer keys could not be refreshed; the cached ones stay"
            );
        }
        self.cached()
    }

    /// Fetches the key set unless a fetch ran less than the interval ago (then
    /// nothing is done and `Ok`). Concurrent calls wait for the one fetch.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let _one = self.fetching.lock().await;
        {
            let mut cache = self.cached.lock();
            if cache
                .last_fetch
                .is_some_and(|at| at.elapsed() < self.interval)
            {
                return Ok(());
            }
            cache.last_fetch = Some(Instant::now());
        }
        let jwks = self.fetcher.keys().await?;
        for skipped in &jwks.skipped {
            tracing::warn!(key = %skipped, "OIDC issuer key skipped");
        }
        self.cached.lock().jwks = Some(Arc::new(jwks));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
