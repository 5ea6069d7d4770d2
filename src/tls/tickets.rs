//! Session tickets sealed with keys that rotate every `tls.session_ticket_lifetime`.
//!
//! A key seals new tickets for one lifetime, then only opens tickets for one more,
//! then is dropped: a ticket is accepted for at most two lifetimes after it was
//! issued, and a key that leaks (a memory dump) opens at most two lifetimes of
//! resumed sessions. The lifetime hint sent with each ticket is the lifetime
//! itself, so clients stop offering a ticket well before the server would refuse it.
//!
//! Why not rustls' `TicketRotator`: its sub-ticketer (the ring AEAD one) is
//! private, so it only comes with a fixed six-hour period, and it rotates lazily
//! by one step per call: after an idle spell of many lifetimes, the first
//! handshake demotes the long-expired key to "previous" and still accepts its
//! tickets. Here the age of each key is checked against the clock on every use.
//!
//! Tickets are ChaCha20-Poly1305 sealed (ring), laid out as rustls' own:
//! `key name (16) || nonce (12) || ciphertext || tag (16)`, the key name as AAD.

use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

const KEY_NAME_LEN: usize = 16;
/// rustls' tickets are a few hundred bytes (more with a client certificate chain);
/// anything far larger is not ours and is refused before decryption.
const MAX_TICKET_LEN: usize = 64 * 1024;

/// One ticket key.
struct Key {
    name: [u8; KEY_NAME_LEN],
    key: LessSafeKey,
    /// When it began to seal tickets, Unix seconds.
    since: u64,
}

impl Key {
    fn generate(random: &SystemRandom, since: u64) -> Option<Key> {
        let mut secret = [0u8; 32];
        let mut name = [0u8; KEY_NAME_LEN];
        random.fill(&mut secret).ok()?;
        random.fill(&mut name).ok()?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &secret).ok()?;
        Some(Key {
            name,
            key: LessSafeKey::new(key),
            since,
        })
    }

    fn seal(&self, random: &SystemRandom, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        random.fill(&mut nonce).ok()?;
        let mut sealed = Vec::with_capacity(KEY_NAME_LEN + NONCE_LEN + plain.len() + 16);
        sealed.extend_from_slice(&self.name);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.name),
                &mut sealed[KEY_NAME_LEN + NONCE_LEN..],
            )
            .ok()?;
        sealed.extend_from_slice(tag.as_ref());
        Some(sealed)
    }

    fn open(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let (name, rest) = ticket.split_at_checked(KEY_NAME_LEN)?;
        if name != self.name {
            return None;
        }
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(self.name), &mut buffer)
            .ok()?;
        let len = plain.len();
        buffer.truncate(len);
        Some(buffer)
    }
}

/// The sealing key and the one before it (which only opens).
struct Keys {
    current: Key,
    previous: Option<Key>,
}

/// Seals and opens session tickets with rotating keys; see the module doc.
pub struct RotatingTicketer {
    lifetime: u32,
    random: SystemRandom,
    keys: RwLock<Keys>,
}

impl RotatingTicketer {
    /// A ticketer whose keys seal for `lifetime` seconds (at least one) each.
    /// `None` when the system's random source fails.
    pub fn new(lifetime: u32) -> Option<RotatingTicketer> {
        RotatingTicketer::starting_at(lifetime.max(1), now())
    }

    fn starting_at(lifetime: u32, now: u64) -> Option<RotatingTicketer> {
        let random = SystemRandom::new();
        let current = Key::generate(&random, now)?;
        Some(RotatingTicketer {
            lifetime,
            random,
            keys: RwLock::new(Keys {
                current,
                previous: None,
            }),
        })
    }

    /// Rotates if the current key has sealed for a whole lifetime, and drops the
    /// previous key once it is two lifetimes old. Returns `None` only when a new
    /// key cannot be made (no randomness), in which case nothing is sealed.
    fn rotate(&self, now: u64) -> Option<()> {
        let lifetime = u64::from(self.lifetime);
        let due = |keys: &Keys| {
            now >= keys.current.since.saturating_add(lifetime)
                || keys
                    .previous
                    .as_ref()
                    .is_some_and(|p| now >= p.since.saturating_add(2 * lifetime))
        };
        if !due(&self.keys.read()) {
            return Some(());
        }
        let mut keys = self.keys.write();
        if !due(&keys) {
            return Some(()); // another handshake rotated first
        }
        if now >= keys.current.since.saturating_add(lifetime) {
            let next = Key::generate(&self.random, now)?;
            let old = std::mem::replace(&mut keys.current, next);
            keys.previous = Some(old);
        }
        if keys
            .previous
            .as_ref()
            .is_some_and(|p| now >= p.since.saturating_add(2 * lifetime))
        {
            keys.previous = None;
        }
        Some(())
    }

    fn seal_at(&self, now: u64, plain: &[u8]) -> Option<Vec<u8>> {
        self.rotate(now)?;
        self.keys.read().current.seal(&self.random, plain)
    }

    fn open_at(&self, now: u64, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() > MAX_TICKET_LEN {
            return None;
        }
        // Without a fresh key the old ones are still aged out: keep going.
        let _ = self.rotate(now);
        let keys = self.keys.read();
        std::iter::once(&keys.current)
            .chain(keys.previous.as_ref())
            .find_map(|key| key.open(ticket))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ProducesTickets for RotatingTicketer {
    fn enabled(&self) -> bool {
        true
    }

    /// The lifetime hint of each ticket (RFC 8446 §4.6.1, RFC 5077 §3.3).
    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal_at(now(), plain)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        self.open_at(now(), ticket)
    }
}

impl std::fmt::Debug for RotatingTicketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingTicketer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    #[test]
    fn a_ticket_opens_for_one_to_two_lifetimes_then_never() {
        let t = RotatingTicketer::starting_at(60, T0).expect("random");
        let early = t.seal_at(T0, b"early").expect("seals");
        let late = t.seal_at(T0 + 59, b"late").expect("seals");
        let cases = [
            (T0 + 59, "early", Some("early")),
            (T0 + 60, "early", Some("early")),
            (T0 + 60, "late", Some("late")),
            (T0 + 119, "early", Some("early")),
            (T0 + 119, "late", Some("late")),
            (T0 + 120, "early", None),
            (T0 + 120, "late", None),
        ];
        for (at, which, want) in cases {
            let ticket = if which == "early" { &early } else { &late };
            let got = t.open_at(at, ticket);
            assert_eq!(
                got.as_deref(),
                want.map(str::as_bytes),
                "{which} at +{}",
                at - T0
            );
        }
    }

    #[test]
    fn an_idle_spell_does_not_keep_old_keys() {
        // No handshake for ten lifetimes: the first one after it must not open a
        // ticket of the first key (rustls' TicketRotator would).
        let t = RotatingTicketer::starting_at(60, T0).expect("random");
        let old = t.seal_at(T0 + 30, b"old").expect("seals");
        assert_eq!(t.open_at(T0 + 600, &old), None);
        let fresh = t.seal_at(T0 + 600, b"fresh").expect("seals");
        assert_eq!(t.open_at(T0 + 601, &fresh).as_deref(), Some(&b"fresh"[..]));
    }

    #[test]
    fn forged_truncated_and_foreign_tickets_are_refused() {
        let t = RotatingTicketer::starting_at(60, T0).expect("random");
        let other = RotatingTicketer::starting_at(60, T0).expect("random");
        let ticket = t.seal_at(T0, b"session").expect("seals");
        assert_eq!(t.open_at(T0, &ticket).as_deref(), Some(&b"session"[..]));
        let mut flipped = ticket.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        for (name, bad) in [
            ("flipped", flipped),
            ("truncated", ticket[..ticket.len() - 1].to_vec()),
            ("short", ticket[..10].to_vec()),
            ("empty", Vec::new()),
            ("huge", vec![0; MAX_TICKET_LEN + 1]),
        ] {
            assert_eq!(t.open_at(T0, &bad), None, "{name}");
        }
        assert_eq!(other.open_at(T0, &ticket), None, "another ticketer's key");
        assert_eq!(t.lifetime(), 60, "the hint is the configured lifetime");
    }
}
