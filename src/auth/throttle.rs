//! Brute-force protection: too many failed logins from one client address, or
//! for one user from one address, within a window, and further attempts are
//! refused (429) without a password check until the window ends.
//!
//! - **Reserve, then hash.** An attempt takes a [`Reservation`] before its password
//!   is checked, and the reservation counts as a failure at once. A success
//!   un-counts it (and clears its user's count); a wrong password leaves it; a
//!   reservation dropped unresolved (the client went away, the task died) stays
//!   counted. So a burst of concurrent guesses from one address passes at most the
//!   limit, never "everything that arrived before the first failure was counted".
//! - **A few checks at a time per address.** At most [`MAX_PENDING_PER_ADDRESS`]
//!   reservations of one address are open at once; more get 429 at once, so one
//!   address cannot fill the verification queue that every login shares.
//! - **Proven credentials pass.** The caller skips the throttle for credentials
//!   that are a fresh login-cache hit (they already succeeded), so a blocked
//!   address stops guessing, not the logged-in users behind the same NAT.
//! - **Keys.** An IPv6 client counts by its prefix (`throttle.ipv6_prefix`, a /64
//!   by default: one host usually holds a whole /64), an IPv4-mapped IPv6 address
//!   as its IPv4 address. The per-user key is the name trimmed and ASCII-lowercased,
//!   so `MALLORY`, ` mallory` and `mallory` share one count.
//! - A WARN line marks the start of each block (once per block and key, not per
//!   refused request). Successes never count, so the parallel good logins of a push
//!   cannot trip it. The counters survive a reload ([`Throttle::carry_over`]) and
//!   are bounded in number.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Most addresses (and address–user pairs) tracked at once; beyond that the
/// expired windows are dropped, then the oldest.
const MAX_TRACKED: usize = 100_000;

/// Password checks one client address (or IPv6 prefix) may have under way at
/// once; a further attempt gets 429 without waiting.
pub const MAX_PENDING_PER_ADDRESS: u32 = 4;

/// What a client refused for [`Refusal::Busy`] is told to wait.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

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
    /// IPv6 clients are counted by this prefix length (1 to 128).
    pub ipv6_prefix: u8,
}

/// Why an attempt was refused before any password check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures from this address, or for this user from it; the block
    /// ends after this long.
    Blocked(Duration),
    /// [`MAX_PENDING_PER_ADDRESS`] checks from this address are under way.
    Busy,
}

impl Refusal {
    /// What to send as `Retry-After`.
    pub fn retry_after(self) -> Duration {
        match self {
            Refusal::Blocked(left) => left,
            Refusal::Busy => BUSY_RETRY_AFTER,
        }
    }
}

/// A client address as the throttle counts it: an IPv4 address (IPv4-mapped IPv6
/// included), or an IPv6 network of the configured prefix. Displays as
/// `192.0.2.1` or `2001:db8::/64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    network: IpAddr,
    /// The prefix length of `network`; 32 for IPv4.
    prefix: u8,
}

impl ClientKey {
    /// The key of `address` with IPv6 addresses grouped by `ipv6_prefix` bits
    /// (clamped to 1..=128).
    pub fn new(address: IpAddr, ipv6_prefix: u8) -> ClientKey {
        match address {
            IpAddr::V4(v4) => ClientKey {
                network: IpAddr::V4(v4),
                prefix: 32,
            },
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::new(IpAddr::V4(v4), ipv6_prefix),
                None => {
                    let prefix = ipv6_prefix.clamp(1, 128);
                    let mask = u128::MAX << (128 - u32::from(prefix));
                    ClientKey {
                        network: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
                        prefix,
                    }
                }
            },
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.network {
            IpAddr::V6(v6) if self.prefix < 128 => write!(f, "{v6}/{}", self.prefix),
            network => network.fmt(f),
        }
    }
}

/// The per-user key: the name trimmed and ASCII-lowercased, so spellings that a
/// directory treats as one account share one count.
pub fn user_key(user: &str) -> String {
    user.trim().to_ascii_lowercase()
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    /// Failures counted in this window, open reservations included.
    failures: u32,
    /// Whether the start of this window's block has been logged.
    warned: bool,
}

#[derive(Debug, Default)]
struct Counters {
    by_address: HashMap<ClientKey, Window>,
    by_user: HashMap<(ClientKey, String), Window>,
    /// Open reservations per address; entries at zero are removed.
    pending: HashMap<ClientKey, u32>,
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

    /// Reserves one unproven login attempt of `user` from `address`, counted as a
    /// failure until the reservation resolves; or why it is refused.
    pub fn reserve(&self, address: IpAddr, user: &str) -> Result<Reservation, Refusal> {
        if !self.limits.enabled {
            return Ok(Reservation { held: None });
        }
        let (now, window) = (Instant::now(), self.limits.window);
        let client = ClientKey::new(address, self.limits.ipv6_prefix);
        let user = user_key(user);
        let mut started = Vec::new();
        let mut guard = self.counters.lock();
        let counters = &mut *guard;
        let user_entry = (client, user);
        let by_address = counters.by_address.get(&client);
        let address_left = blocked_for(by_address, self.limits.per_address, window, now);
        let by_user = counters.by_user.get(&user_entry);
        let user_left = blocked_for(by_user, self.limits.per_user, window, now);
        if address_left.is_some() || user_left.is_some() {
            if let Some(w) = counters.by_address.get_mut(&client) {
                self.note_block(w, self.limits.per_address, client, None, &mut started);
            }
            if let Some(w) = counters.by_user.get_mut(&user_entry) {
                let who = Some(user_entry.1.as_str());
                self.note_block(w, self.limits.per_user, client, who, &mut started);
            }
            drop(guard);
            announce(&started);
            let left = address_left.max(user_left).unwrap_or(window);
            return Err(Refusal::Blocked(left));
        }
        let pending = counters.pending.entry(client).or_insert(0);
        if *pending >= MAX_PENDING_PER_ADDRESS {
            return Err(Refusal::Busy);
        }
        *pending += 1;
        let address_start = bump(&mut counters.by_address, client, now, window);
        let user_start = bump(&mut counters.by_user, user_entry.clone(), now, window);
        Ok(Reservation {
            held: Some(Held {
                throttle: self.clone(),
                client,
                user: user_entry.1,
                address_start,
                user_start,
            }),
        })
    }

    /// Clears the user's count from this address after a good login that took no
    /// reservation (a login-cache hit).
    pub fn record_success(&self, address: IpAddr, user: &str) {
        if !self.limits.enabled {
            return;
        }
        let client = ClientKey::new(address, self.limits.ipv6_prefix);
        let mut counters = self.counters.lock();
        if !counters.by_user.is_empty() {
            counters.by_user.remove(&(client, user_key(user)));
        }
    }

    /// Marks `w` as blocked once, when it is at its limit.
    fn note_block(
        &self,
        w: &mut Window,
        limit: u32,
        client: ClientKey,
        user: Option<&str>,
        started: &mut Vec<Started>,
    ) {
        if w.failures >= limit && !w.warned {
            w.warned = true;
            started.push(Started {
                client,
                user: user.map(str::to_owned),
                failures: w.failures,
                window: self.limits.window,
            });
        }
    }

    /// Resolves a reservation.
    fn settle(&self, held: &Held, outcome: Outcome) {
        let mut started = Vec::new();
        let mut guard = self.counters.lock();
        let counters = &mut *guard;
        if let Entry::Occupied(mut open) = counters.pending.entry(held.client) {
            *open.get_mut() = open.get().saturating_sub(1);
            if *open.get() == 0 {
                open.remove();
            }
        }
        let user_entry = (held.client, held.user.clone());
        let uncount = |w: Option<&mut Window>, start: Instant| {
            if let Some(w) = w.filter(|w| w.start == start) {
                w.failures = w.failures.saturating_sub(1);
            }
        };
        match outcome {
            Outcome::Succeeded => {
                uncount(
                    counters.by_address.get_mut(&held.client),
                    held.address_start,
                );
                counters.by_user.remove(&user_entry);
            }
            Outcome::Released => {
                uncount(
                    counters.by_address.get_mut(&held.client),
                    held.address_start,
                );
                uncount(counters.by_user.get_mut(&user_entry), held.user_start);
            }
            Outcome::Failed => {
                if let Some(w) = counters.by_address.get_mut(&held.client) {
                    self.note_block(w, self.limits.per_address, held.client, None, &mut started);
                }
                if let Some(w) = counters.by_user.get_mut(&user_entry) {
                    let who = Some(held.user.as_str());
                    self.note_block(w, self.limits.per_user, held.client, who, &mut started);
                }
            }
        }
        drop(guard);
        announce(&started);
    }
}

/// One unproven login attempt, counted as a failure until it resolves. Dropping
/// it unresolved leaves it counted: an abandoned attempt is a failed one.
#[must_use = "a reservation counts as a failure unless it is resolved"]
#[derive(Debug)]
pub struct Reservation {
    /// `None` when the throttle is off.
    held: Option<Held>,
}

#[derive(Debug)]
struct Held {
    throttle: Throttle,
    client: ClientKey,
    /// The normalised user name.
    user: String,
    /// The windows the failure was counted in (a later window is not touched).
    address_start: Instant,
    user_start: Instant,
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Succeeded,
    Failed,
    Released,
}

impl Reservation {
    /// The credentials were right: the attempt is un-counted and the user's count
    /// from this address cleared.
    pub fn succeed(mut self) {
        self.resolve(Outcome::Succeeded);
    }

    /// Wrong password or unknown user: the attempt stays counted.
    pub fn fail(mut self) {
        self.resolve(Outcome::Failed);
    }

    /// No answer about the password (directory unreachable, internal error): the
    /// attempt is un-counted, the user's count kept.
    pub fn release(mut self) {
        self.resolve(Outcome::Released);
    }

    fn resolve(&mut self, outcome: Outcome) {
        if let Some(held) = self.held.take() {
            held.throttle.settle(&held, outcome);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.resolve(Outcome::Failed);
    }
}

/// A block that has just started, to be logged once the lock is released.
struct Started {
    client: ClientKey,
    /// `None`: the address's block; `Some`: this user's from the address.
    user: Option<String>,
    failures: u32,
    window: Duration,
}

fn announce(started: &[Started]) {
    for s in started {
        let window = humantime::format_duration(s.window);
        match &s.user {
            None => tracing::warn!(
                client = %s.client,
                scope = "address",
                failures = s.failures,
                %window,
                "login throttle started: too many failed logins from this address"
            ),
            Some(user) => tracing::warn!(
                client = %s.client,
                scope = "user",
                user = ?user,
                failures = s.failures,
                %window,
                "login throttle started: too many failed logins for this user from this address"
            ),
        }
    }
}

/// How long `w` still blocks, if it is at `limit` within its window.
fn blocked_for(w: Option<&Window>, limit: u32, window: Duration, now: Instant) -> Option<Duration> {
    w.filter(|w| w.failures >= limit)
        .and_then(|w| (w.start + window).checked_duration_since(now))
        .filter(|left| !left.is_zero())
}

/// Counts one failure under `key`; returns the start of the window it went into.
fn bump<K: Hash + Eq + Clone>(
    map: &mut HashMap<K, Window>,
    key: K,
    now: Instant,
    window: Duration,
) -> Instant {
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
    let fresh = Window {
        start: now,
        failures: 0,
        warned: false,
    };
    let entry = map.entry(key).or_insert(fresh);
    if entry.start + window <= now {
        *entry = fresh;
    }
    entry.failures = entry.failures.saturating_add(1);
    entry.start
}

#[cfg(test)]
mod tests;
