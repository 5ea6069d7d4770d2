//! A bounded, expiring cache of verified credentials, and the merging of
//! concurrent verifications of the same credentials.
//!
//! Every layer of a push is its own request with the same credentials; a bcrypt
//! check on each one makes pushes slow and pegs the CPU. Only successes are kept,
//! keyed by an HMAC-SHA256 of user and password under a key drawn at random when
//! the cache is built, so neither the password nor a reusable hash of it is ever
//! stored. The cache lives in the `State`, so a reload (new users) starts empty.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use ring::hmac;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// A keyed fingerprint of (user, password).
pub type Fingerprint = [u8; 32];

/// A verification under way; waiters share its result.
pub type InFlight = Arc<OnceCell<bool>>;

/// Verified credentials, bounded in number and age.
#[derive(Debug)]
pub struct CredentialCache {
    key: hmac::Key,
    ttl: Duration,
    /// How long an entry is kept: the TTL, or longer for an outage grace period.
    retain: Duration,
    capacity: usize,
    /// Fingerprint → when the credentials were verified.
    entries: Mutex<HashMap<Fingerprint, Instant>>,
    /// Fingerprint → the verification running for it.
    in_flight: Mutex<HashMap<Fingerprint, InFlight>>,
}

impl CredentialCache {
    /// A cache holding at most `capacity` successes for `ttl` each. A zero `ttl`
    /// or `capacity` turns caching off (concurrent checks are still merged).
    pub fn new(ttl: Duration, capacity: usize) -> CredentialCache {
        CredentialCache::with_grace(ttl, Duration::ZERO, capacity)
    }

    /// A cache that also keeps successes for `grace` (when longer than `ttl`), for
    /// [`CredentialCache::verified_within`] while a directory is unreachable.
    pub fn with_grace(ttl: Duration, grace: Duration, capacity: usize) -> CredentialCache {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .expect("the system random source is available");
        CredentialCache {
            key,
            ttl,
            retain: ttl.max(grace),
            capacity,
            entries: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// The keyed fingerprint of a user and password (length-prefixed, so
    /// `("a:b", "c")` and `("a", "b:c")` differ).
    pub fn fingerprint(&self, user: &str, password: &[u8]) -> Fingerprint {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password);
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether these credentials were verified within the TTL.
    pub fn is_fresh(&self, fp: &Fingerprint) -> bool {
        self.verified_within(fp, self.ttl)
    }

    /// Whether these credentials were verified less than `age` ago (at most as long
    /// as entries are kept).
    pub fn verified_within(&self, fp: &Fingerprint, age: Duration) -> bool {
        let now = Instant::now();
        let mut entries = self.entries.lock();
        match entries.get(fp) {
            Some(at) if *at + self.retain <= now => {
                entries.remove(fp);
                false
            }
            Some(at) => *at + age.min(self.retain) > now,
            None => false,
        }
    }

    /// Records a success.
    pub fn insert(&self, fp: Fingerprint) {
        if self.retain.is_zero() || self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let retain = self.retain;
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&fp) {
            entries.retain(|_, at| *at + retain > now);
            if entries.len() >= self.capacity {
                // Still full of live entries: drop the oldest.
                if let Some(oldest) = entries.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(fp, now);
    }

    /// Forgets credentials (their user is gone from the directory).
    pub fn remove(&self, fp: &Fingerprint) {
        self.entries.lock().remove(fp);
    }

    /// The verification under way for `fp`, started if there is none. The cell is
    /// forgotten when the returned guard drops (its waiters keep their copy of the
    /// result), also when the caller's future is dropped mid-verification.
    pub fn join(&self, fp: Fingerprint) -> Joined<'_> {
        let cell = self.in_flight.lock().entry(fp).or_default().clone();
        Joined {
            cache: self,
            fp,
            cell,
        }
    }

    /// How many verifications are under way (cells not yet forgotten).
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().len()
    }

    /// How many successes are held (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A share of the verification under way for one fingerprint; dereferences to its
/// cell, and removes the cell from the cache when dropped.
#[derive(Debug)]
pub struct Joined<'a> {
    cache: &'a CredentialCache,
    fp: Fingerprint,
    cell: InFlight,
}

impl Deref for Joined<'_> {
    type Target = OnceCell<bool>;
    fn deref(&self) -> &OnceCell<bool> {
        &self.cell
    }
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.cache.in_flight.lock();
        if in_flight
            .get(&self.fp)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell))
        {
            in_flight.remove(&self.fp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_verification_leaves_no_cell_behind() {
        let cache = CredentialCache::new(Duration::from_secs(60), 10);
        let fp = cache.fingerprint("alice", b"pw");
        let check = async {
            let joined = cache.join(fp);
            joined.get_or_init(std::future::pending::<bool>).await;
        };
        let abandoned = tokio::time::timeout(Duration::from_millis(1), check).await;
        assert!(abandoned.is_err(), "the check never finishes");
        assert_eq!(cache.in_flight(), 0, "the dropped future removed its cell");

        let first = cache.join(fp);
        let second = cache.join(fp);
        assert!(
            Arc::ptr_eq(&first.cell, &second.cell),
            "joiners share one cell"
        );
        drop(first);
        assert_eq!(cache.in_flight(), 0, "the first to finish forgets the cell");
        let third = cache.join(fp);
        drop(second);
        assert_eq!(cache.in_flight(), 1, "a later verification's cell stays");
        drop(third);
        assert_eq!(cache.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn successes_expire_after_the_ttl() {
        let cache = CredentialCache::new(Duration::from_secs(60), 10);
        let fp = cache.fingerprint("alice", b"pw");
        assert!(!cache.is_fresh(&fp));
        cache.insert(fp);
        assert!(cache.is_fresh(&fp));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(cache.is_fresh(&fp));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!cache.is_fresh(&fp));
        assert!(cache.is_empty(), "an expired entry is dropped when touched");
    }

    #[tokio::test(start_paused = true)]
    async fn size_is_bounded() {
        let cache = CredentialCache::new(Duration::from_secs(60), 3);
        let fps: Vec<_> = (0..5)
            .map(|i| cache.fingerprint(&format!("u{i}"), b"pw"))
            .collect();
        for fp in &fps {
            cache.insert(*fp);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(cache.len(), 3);
        assert!(
            !cache.is_fresh(&fps[0]) && !cache.is_fresh(&fps[1]),
            "oldest went first"
        );
        assert!(cache.is_fresh(&fps[4]));
    }

    #[test]
    fn fingerprints_are_keyed_and_unambiguous() {
        let a = CredentialCache::new(Duration::from_secs(1), 1);
        let b = CredentialCache::new(Duration::from_secs(1), 1);
        assert_eq!(a.fingerprint("alice", b"pw"), a.fingerprint("alice", b"pw"));
        assert_ne!(a.fingerprint("alice", b"pw"), b.fingerprint("alice", b"pw"));
        assert_ne!(a.fingerprint("a:b", b"c"), a.fingerprint("a", b"b:c"));
        assert_ne!(a.fingerprint("alice", b"pw"), a.fingerprint("alice", b"pW"));
    }

    #[tokio::test(start_paused = true)]
    async fn grace_keeps_entries_past_the_ttl_without_making_them_fresh() {
        let cache =
            CredentialCache::with_grace(Duration::from_secs(60), Duration::from_secs(600), 10);
        let fp = cache.fingerprint("alice", b"pw");
        cache.insert(fp);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!cache.is_fresh(&fp), "past the TTL");
        assert!(cache.verified_within(&fp, Duration::from_secs(600)));
        assert!(!cache.verified_within(&fp, Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(540)).await;
        assert!(!cache.verified_within(&fp, Duration::from_secs(600)));
        assert!(cache.is_empty(), "dropped once past the grace period");
    }

    #[tokio::test]
    async fn zero_ttl_caches_nothing() {
        let cache = CredentialCache::new(Duration::ZERO, 10);
        let fp = cache.fingerprint("alice", b"pw");
        cache.insert(fp);
        assert!(!cache.is_fresh(&fp));
    }
}
