//! Brute-force protection: too many failed logins from one client address, or
//! for one user from one address, within a window, and further attempts are
//! refused (429) without a password check until the window ends.
//!
//! Only failures count: a success is never counted and clears its user's count,
//! so parallel good logins (every layer of a push) cannot trip it. The check runs
//! before the credential cache and the hash check, so a blocked guesser learns
//! nothing and costs no CPU. The counters survive a reload
//! ([`Throttle::carry_over`]) and are bounded in number.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Most addresses (and address–user pairs) tracked at once; beyond that the
/// expired windows are dropped, then the oldest.
const MAX_TRACKED: usize = 100_000;

/// The configured limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Whether the throttle is on.
    pub enabled: bool,
    /// How long failures are counted, and how long a block lasts at most.
    pub window: Duration,
    /// Failures allowed per client address within the window.
    pub per_address: u32,
    /// Failures allowed per (client address, user) within the window.
    pub per_user: u32,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    failures: u32,
}

#[derive(Debug, Default)]
struct Counters {
    by_address: HashMap<IpAddr, Window>,
    by_user: HashMap<(IpAddr, String), Window>,
}

/// Failed-login counters with their limits.
#[derive(Clone, Debug)]
pub struct Throttle {
    limits: Limits,
    counters: Arc<Mutex<Counters>>,
}

impl Throttle {
    /// A throttle with no failures recorded.
    pub fn new(limits: Limits) -> Throttle {
        Throttle {
            limits,
            counters: Arc::default(),
        }
    }

    /// The same counters under new limits (for a reload).
    pub fn carry_over(&self, limits: Limits) -> Throttle {
        Throttle {
            limits,
            counters: self.counters.clone(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// `Err(retry_after)` when this address, or this user from it, is blocked.
    pub fn check(&self, address: IpAddr, user: &str) -> Result<(), Duration> {
        if !self.limits.enabled {
            return Ok(());
        }
        let now = Instant::now();
        let counters = self.counters.lock();
        let blocked_for = |w: Option<&Window>, limit: u32| {
            w.filter(|w| w.failures >= limit)
                .and_then(|w| (w.start + self.limits.window).checked_duration_since(now))
                .filter(|left| !left.is_zero())
        };
        let by_address = blocked_for(counters.by_address.get(&address), self.limits.per_address);
        let by_user = blocked_for(
            counters.by_user.get(&(address, user.to_owned())),
            self.limits.per_user,
        );
        match by_address.max(by_user) {
            Some(left) => Err(left),
            None => Ok(()),
        }
    }

    /// Counts a wrong password or unknown user.
    pub fn record_failure(&self, address: IpAddr, user: &str) {
        if !self.limits.enabled {
            return;
        }
        let now = Instant::now();
        let window = self.limits.window;
        let mut counters = self.counters.lock();
        bump(&mut counters.by_address, address, now, window);
        bump(
            &mut counters.by_user,
            (address, user.to_owned()),
            now,
            window,
        );
    }

    /// Clears the user's count from this address after a good login.
    pub fn record_success(&self, address: IpAddr, user: &str) {
        if !self.limits.enabled {
            return;
        }
        let mut counters = self.counters.lock();
        if !counters.by_user.is_empty() {
            counters.by_user.remove(&(address, user.to_owned()));
        }
    }
}

fn bump<K: Hash + Eq + Clone>(
    map: &mut HashMap<K, Window>,
    key: K,
    now: Instant,
    window: Duration,
) {
    if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
        map.retain(|_, w| w.start + window > now);
        if map.len() >= MAX_TRACKED {
            let oldest = map
                .iter()
                .min_by_key(|(_, w)| w.start)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
    }
    let entry = map.entry(key).or_insert(Window {
        start: now,
        failures: 0,
    });
    if entry.start + window <= now {
        *entry = Window {
            start: now,
            failures: 0,
        };
    }
    entry.failures = entry.failures.saturating_add(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        enabled: true,
        window: Duration::from_secs(60),
        per_address: 5,
        per_user: 3,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[tokio::test(start_paused = true)]
    async fn user_from_address_is_blocked_for_the_rest_of_the_window() {
        let t = Throttle::new(LIMITS);
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(t.check(a, "alice"), Ok(()));
            t.record_failure(a, "alice");
        }
        assert_eq!(t.check(a, "alice"), Err(Duration::from_secs(60)));
        assert_eq!(
            t.check(a, "bob"),
            Ok(()),
            "other users from the address still try"
        );
        assert_eq!(
            t.check(ip("192.0.2.2"), "alice"),
            Ok(()),
            "other addresses too"
        );
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(t.check(a, "alice"), Err(Duration::from_secs(15)));
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(t.check(a, "alice"), Ok(()), "the window is over");
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_spraying_users_is_blocked() {
        let t = Throttle::new(LIMITS);
        let a = ip("2001:db8::1");
        for user in ["u1", "u2", "u3", "u4", "u5"] {
            assert_eq!(t.check(a, user), Ok(()));
            t.record_failure(a, user);
        }
        assert_eq!(t.check(a, "u6"), Err(Duration::from_secs(60)));
    }

    #[tokio::test(start_paused = true)]
    async fn success_clears_the_user_count_and_is_never_counted() {
        let t = Throttle::new(LIMITS);
        let a = ip("192.0.2.1");
        t.record_failure(a, "alice");
        t.record_failure(a, "alice");
        t.record_success(a, "alice");
        for _ in 0..100 {
            t.record_success(a, "alice");
        }
        t.record_failure(a, "alice");
        assert_eq!(t.check(a, "alice"), Ok(()), "1 failure since the success");
    }

    #[tokio::test(start_paused = true)]
    async fn disabled_never_blocks_and_carry_over_keeps_counts() {
        let off = Throttle::new(Limits {
            enabled: false,
            ..LIMITS
        });
        let a = ip("192.0.2.1");
        for _ in 0..10 {
            off.record_failure(a, "alice");
        }
        assert_eq!(off.check(a, "alice"), Ok(()));

        let t = Throttle::new(LIMITS);
        for _ in 0..3 {
            t.record_failure(a, "alice");
        }
        let reloaded = t.carry_over(Limits {
            per_user: 4,
            ..LIMITS
        });
        assert_eq!(reloaded.check(a, "alice"), Ok(()), "new limit applies");
        reloaded.record_failure(a, "alice");
        assert!(
            reloaded.check(a, "alice").is_err(),
            "old count carried over"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tracking_is_bounded() {
        let mut map = HashMap::new();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            bump(&mut map, i, now, Duration::from_secs(60));
        }
        assert_eq!(map.len(), MAX_TRACKED);
    }
}
