//! Login attempts under way, merged per client address: the same credentials
//! from the same address share one verification task and one result. What the
//! first of them reserved (a throttle reservation) is the whole group's, so the
//! thirty parallel requests of a first `docker push` cost one reservation and
//! one hash check, and one guess repeated a hundred times at once costs one too.
//!
//! The leader's task runs to its end even if every request waiting for it is
//! dropped, and its entry is removed by a drop guard, also if the task dies.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::cache::Fingerprint;
use super::{Error, Verified};

/// One verification's result, `None` until it is known.
type Outcome = Option<Result<Verified, Error>>;

/// The client address and the keyed fingerprint of (user, password).
pub type Key = (IpAddr, Fingerprint);

/// The verifications under way, by [`Key`].
#[derive(Debug, Default)]
pub struct Attempts {
    running: Mutex<HashMap<Key, watch::Receiver<Outcome>>>,
}

/// How an attempt began.
#[derive(Debug)]
pub enum Begun<R> {
    /// The same credentials from the same address are being verified: wait for that.
    Joined(Waiter),
    /// The first of its kind: what `reserve` gave, the guard to finish with the
    /// result, and the waiter that receives it.
    Leading(R, Leader, Waiter),
}

impl Attempts {
    /// Joins the attempt under way for `key`, or, if there is none, calls
    /// `reserve` and (when it grants) registers a new one. Under one lock, so no
    /// two attempts for one key are ever led at once and a joiner never starts a
    /// check of its own.
    pub fn begin<R, E>(
        self: &Arc<Self>,
        key: Key,
        reserve: impl FnOnce() -> Result<R, E>,
    ) -> Result<Begun<R>, E> {
        let mut running = self.running.lock();
        if let Some(rx) = running.get(&key) {
            return Ok(Begun::Joined(Waiter(rx.clone())));
        }
        let reserved = reserve()?;
        let (tx, rx) = watch::channel(None);
        running.insert(key, rx.clone());
        let leader = Leader {
            attempts: self.clone(),
            key,
            tx,
        };
        Ok(Begun::Leading(reserved, leader, Waiter(rx)))
    }

    /// How many attempts are under way.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.running.lock().len()
    }

    /// Whether no attempt is under way.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The leading attempt of its key: sends the result to every waiter, and removes
/// the key when dropped (only a leader inserts or removes its key, so the entry
/// is this leader's).
#[derive(Debug)]
pub struct Leader {
    attempts: Arc<Attempts>,
    key: Key,
    tx: watch::Sender<Outcome>,
}

impl Leader {
    /// Hands the result to every waiter, then ends the attempt.
    pub fn finish(self, result: &Result<Verified, Error>) {
        self.tx.send_replace(Some(result.clone()));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.attempts.running.lock().remove(&self.key);
    }
}

/// Waits for one attempt's result.
#[derive(Debug)]
pub struct Waiter(watch::Receiver<Outcome>);

impl Waiter {
    /// The result; an internal error if the leader ended without one.
    pub async fn outcome(mut self) -> Result<Verified, Error> {
        let ended = || Error::Internal("the verification ended without a result".into());
        match self.0.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or_else(|| Err(ended())),
            Err(_) => Err(ended()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::auth::Identity;

    fn key(last: u8, fp: u8) -> Key {
        (IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), [fp; 32])
    }

    fn alice() -> Result<Verified, Error> {
        Ok(Verified {
            identity: Identity {
                user: "alice".into(),
                groups: Vec::new(),
            },
            from_cache: false,
        })
    }

    #[tokio::test]
    async fn the_same_key_joins_and_only_the_first_reserves() {
        let attempts = Arc::new(Attempts::default());
        let mut reserved = 0;
        let mut reserve = || {
            reserved += 1;
            Ok::<_, ()>(reserved)
        };
        let Ok(Begun::Leading(1, leader, first)) = attempts.begin(key(1, 7), &mut reserve) else {
            panic!("the first attempt leads");
        };
        let Ok(Begun::Joined(second)) = attempts.begin(key(1, 7), &mut reserve) else {
            panic!("the same key joins");
        };
        let Ok(Begun::Leading(2, other_address, _)) = attempts.begin(key(2, 7), &mut reserve)
        else {
            panic!("another address leads its own");
        };
        let Ok(Begun::Leading(3, other_password, _)) = attempts.begin(key(1, 8), &mut reserve)
        else {
            panic!("other credentials lead their own");
        };
        assert_eq!(attempts.len(), 3);
        leader.finish(&alice());
        assert_eq!(first.outcome().await.expect("ok").identity.user, "alice");
        assert_eq!(second.outcome().await.expect("ok").identity.user, "alice");
        assert_eq!(attempts.len(), 2, "a finished attempt is forgotten");
        drop((other_address, other_password));
        assert!(attempts.is_empty());
        assert!(
            matches!(
                attempts.begin(key(1, 7), &mut reserve),
                Ok(Begun::Leading(4, ..))
            ),
            "after the end, the next attempt leads again"
        );
    }

    #[tokio::test]
    async fn a_refused_reservation_registers_nothing() {
        let attempts = Arc::new(Attempts::default());
        let refused = attempts.begin(key(1, 7), || Err::<(), _>("blocked"));
        assert!(matches!(refused, Err("blocked")));
        assert!(attempts.is_empty());
    }

    #[tokio::test]
    async fn a_leader_dropped_without_a_result_ends_its_waiters_with_an_error() {
        let attempts = Arc::new(Attempts::default());
        let Ok(Begun::Leading((), leader, waiter)) = attempts.begin(key(1, 7), || Ok::<_, ()>(()))
        else {
            panic!("leads");
        };
        let Ok(Begun::Joined(joined)) = attempts.begin(key(1, 7), || Ok::<_, ()>(())) else {
            panic!("joins");
        };
        drop(leader);
        assert!(attempts.is_empty());
        assert!(matches!(waiter.outcome().await, Err(Error::Internal(_))));
        assert!(matches!(joined.outcome().await, Err(Error::Internal(_))));
    }
}
