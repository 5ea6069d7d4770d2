//! Tests for the throttle: reservations, abandonment, the per-address cap, IPv6
//! grouping, key normalisation and the block's log line, on paused time.

use std::io;
use std::sync::{Arc, Mutex as StdMutex};

use super::*;

const LIMITS: Limits = Limits {
    enabled: true,
    window: Duration::from_secs(60),
    per_address: 5,
    per_user: 3,
    ipv6_prefix: 64,
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// One attempt that turns out wrong.
fn fail(t: &Throttle, a: IpAddr, user: &str) {
    t.reserve(a, user).expect("not refused").fail();
}

fn blocked(t: &Throttle, a: IpAddr, user: &str) -> Option<Duration> {
    match t.reserve(a, user) {
        Ok(r) => {
            r.release();
            None
        }
        Err(Refusal::Blocked(left)) => Some(left),
        Err(Refusal::Busy) => panic!("busy, not blocked: {a} {user}"),
    }
}

#[tokio::test(start_paused = true)]
async fn user_from_address_is_blocked_for_the_rest_of_the_window() {
    let t = Throttle::new(LIMITS);
    let a = ip("192.0.2.1");
    for _ in 0..3 {
        fail(&t, a, "alice");
    }
    assert_eq!(blocked(&t, a, "alice"), Some(Duration::from_secs(60)));
    assert_eq!(blocked(&t, a, "bob"), None, "other users still try");
    assert_eq!(
        blocked(&t, ip("192.0.2.2"), "alice"),
        None,
        "other addresses too"
    );
    tokio::time::advance(Duration::from_secs(45)).await;
    assert_eq!(blocked(&t, a, "alice"), Some(Duration::from_secs(15)));
    tokio::time::advance(Duration::from_secs(15)).await;
    assert_eq!(blocked(&t, a, "alice"), None, "the window is over");
}

#[tokio::test(start_paused = true)]
async fn an_address_spraying_users_is_blocked() {
    let t = Throttle::new(LIMITS);
    let a = ip("2001:db8::1");
    for user in ["u1", "u2", "u3", "u4", "u5"] {
        fail(&t, a, user);
    }
    assert_eq!(blocked(&t, a, "u6"), Some(Duration::from_secs(60)));
}

#[tokio::test(start_paused = true)]
async fn open_reservations_count_as_failures_before_any_hash() {
    // F4: 150 attempts arriving together, resolved only later, pass at most the limit.
    let t = Throttle::new(Limits {
        per_user: 1000,
        ..LIMITS
    });
    let a = ip("192.0.2.1");
    let mut open = Vec::new();
    let mut refused = 0;
    for i in 0..150 {
        match t.reserve(a, &format!("u{i}")) {
            Ok(r) => open.push(r),
            Err(_) => refused += 1,
        }
        if open.len() == MAX_PENDING_PER_ADDRESS as usize {
            // The verifier finishes the oldest ones: all wrong.
            open.drain(..).for_each(Reservation::fail);
        }
    }
    open.into_iter().for_each(Reservation::fail);
    assert_eq!(
        refused,
        150 - LIMITS.per_address,
        "exactly the limit passed"
    );
}

#[tokio::test(start_paused = true)]
async fn checks_under_way_per_address_are_capped() {
    let t = Throttle::new(Limits {
        per_address: 100,
        ..LIMITS
    });
    let a = ip("192.0.2.1");
    let open: Vec<_> = (0..MAX_PENDING_PER_ADDRESS)
        .map(|i| t.reserve(a, &format!("u{i}")).expect("within the cap"))
        .collect();
    let busy = t.reserve(a, "another").expect_err("over the cap");
    assert_eq!(busy, Refusal::Busy);
    assert_eq!(busy.retry_after(), Duration::from_secs(1));
    assert!(t.reserve(ip("192.0.2.2"), "another").is_ok(), "per address");
    let mut open = open.into_iter();
    open.next().expect("one").succeed();
    t.reserve(a, "another")
        .expect("a slot is free again")
        .release();
}

#[tokio::test(start_paused = true)]
async fn success_uncounts_its_reservation_and_clears_the_user() {
    let t = Throttle::new(LIMITS);
    let a = ip("192.0.2.1");
    fail(&t, a, "alice");
    fail(&t, a, "alice");
    let held = [t.reserve(a, "alice").expect("third attempt")];
    assert_eq!(
        blocked(&t, a, "alice"),
        Some(Duration::from_secs(60)),
        "an open reservation counts"
    );
    held.into_iter().for_each(Reservation::succeed);
    for _ in 0..2 {
        fail(&t, a, "alice");
    }
    assert_eq!(
        blocked(&t, a, "alice"),
        None,
        "2 failures since the success"
    );
    // The address still holds the 4 failures, not the success.
    fail(&t, a, "bob");
    assert_eq!(blocked(&t, a, "carol"), Some(Duration::from_secs(60)));
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_reservation_stays_counted() {
    // F2: the client went away before the answer; the attempt is a failure.
    let t = Throttle::new(LIMITS);
    let a = ip("192.0.2.1");
    for _ in 0..3 {
        drop(t.reserve(a, "alice").expect("not refused"));
    }
    assert_eq!(blocked(&t, a, "alice"), Some(Duration::from_secs(60)));
    assert!(
        t.counters.lock().pending.is_empty(),
        "dropped reservations free their slot"
    );
}

#[tokio::test(start_paused = true)]
async fn a_released_reservation_is_not_counted() {
    let t = Throttle::new(LIMITS);
    let a = ip("192.0.2.1");
    fail(&t, a, "alice");
    fail(&t, a, "alice");
    for _ in 0..10 {
        t.reserve(a, "alice").expect("not refused").release();
    }
    assert_eq!(blocked(&t, a, "alice"), None, "still 2 failures");
    fail(&t, a, "alice");
    assert!(
        blocked(&t, a, "alice").is_some(),
        "the user's count was kept"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reservation_resolved_after_its_window_leaves_the_new_one_alone() {
    let t = Throttle::new(LIMITS);
    let a = ip("192.0.2.1");
    let old = t.reserve(a, "u0").expect("first");
    tokio::time::advance(Duration::from_secs(61)).await;
    for i in 1..5 {
        fail(&t, a, &format!("u{i}"));
    }
    old.succeed();
    fail(&t, a, "u5");
    assert!(
        blocked(&t, a, "u6").is_some(),
        "the success of the old window did not un-count a new failure"
    );
}

#[test]
fn ipv6_clients_are_grouped_by_prefix_and_mapped_ipv4_is_ipv4() {
    let key = |s: &str, prefix| ClientKey::new(ip(s), prefix);
    let cases = [
        ("2001:db8::1", "2001:db8::ffff:1", 64, true),
        ("2001:db8::1", "2001:db8:0:0:abcd:ef01:2345:6789", 64, true),
        ("2001:db8::1", "2001:db8:0:1::1", 64, false),
        ("2001:db8::1", "2001:db8:0:1::1", 48, true),
        ("2001:db8::1", "2001:db8::2", 128, false),
        ("2001:db8::1", "2001:db8::1", 128, true),
        ("::ffff:192.0.2.1", "192.0.2.1", 64, true),
        ("::ffff:192.0.2.1", "192.0.2.2", 64, false),
        ("192.0.2.1", "192.0.2.2", 1, false),
        ("2001:db8::1", "8001:db8::1", 1, false),
        ("2001:db8::1", "7001:db8::1", 1, true),
    ];
    for (a, b, prefix, same) in cases {
        assert_eq!(
            key(a, prefix) == key(b, prefix),
            same,
            "{a} vs {b} /{prefix}"
        );
    }
    let shown = |s: &str, prefix| key(s, prefix).to_string();
    assert_eq!(shown("2001:db8::1:2:3:4", 64), "2001:db8::/64");
    assert_eq!(shown("2001:db8::1", 128), "2001:db8::1");
    assert_eq!(shown("::ffff:192.0.2.1", 64), "192.0.2.1");
    assert_eq!(shown("192.0.2.1", 64), "192.0.2.1");
}

#[tokio::test(start_paused = true)]
async fn a_slash_64_shares_one_address_count() {
    // F10: one host with a /64 cannot take a new address per guess.
    let t = Throttle::new(LIMITS);
    for i in 1..=5 {
        fail(&t, ip(&format!("2001:db8::{i}")), &format!("u{i}"));
    }
    assert!(blocked(&t, ip("2001:db8::ffff"), "u6").is_some());
    assert_eq!(
        blocked(&t, ip("2001:db8:0:1::1"), "u6"),
        None,
        "the next /64"
    );
}

#[test]
fn user_keys_are_trimmed_and_lowercased() {
    for name in ["mallory", "MALLORY", " mallory", "mallory ", "\tMaLLoRy  "] {
        assert_eq!(user_key(name), "mallory", "name={name:?}");
    }
    assert_eq!(user_key("jürgen"), "jürgen");
    assert_eq!(user_key("JÜRGEN"), "jÜrgen", "ASCII only");
}

#[tokio::test(start_paused = true)]
async fn spellings_of_one_user_share_the_per_user_count() {
    let t = Throttle::new(LIMITS);
    let a = ip("192.0.2.1");
    for name in ["mallory", "MALLORY", " mallory"] {
        fail(&t, a, name);
    }
    for name in ["mallory", "Mallory", "mallory  "] {
        assert!(blocked(&t, a, name).is_some(), "name={name:?}");
    }
    t.record_success(a, "MALLORY ");
    assert_eq!(
        blocked(&t, a, "mallory"),
        None,
        "a success clears every spelling"
    );
}

#[tokio::test(start_paused = true)]
async fn disabled_never_blocks_and_carry_over_keeps_counts() {
    let off = Throttle::new(Limits {
        enabled: false,
        ..LIMITS
    });
    let a = ip("192.0.2.1");
    let open: Vec<_> = (0..20)
        .map(|_| off.reserve(a, "alice").expect("never refused"))
        .collect();
    drop(open);
    assert_eq!(blocked(&off, a, "alice"), None);

    let t = Throttle::new(LIMITS);
    for _ in 0..3 {
        fail(&t, a, "alice");
    }
    let reloaded = t.carry_over(Limits {
        per_user: 4,
        ..LIMITS
    });
    assert_eq!(blocked(&reloaded, a, "alice"), None, "new limit applies");
    fail(&reloaded, a, "alice");
    assert!(
        blocked(&reloaded, a, "alice").is_some(),
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

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<StdMutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log buffer").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_block_is_logged_once_when_it_starts_and_again_in_a_new_window() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let t = Throttle::new(LIMITS);
    let a = ip("2001:db8::7");
    for i in 0..5 {
        fail(&t, a, &format!("u{i}"));
    }
    for _ in 0..20 {
        assert!(blocked(&t, a, "u9").is_some());
    }
    let started = |log: &Captured| {
        log.lines()
            .into_iter()
            .filter(|l| l.contains("login throttle started"))
            .collect::<Vec<_>>()
    };
    let lines = started(&log);
    assert_eq!(lines.len(), 1, "one line per block: {lines:?}");
    for needle in [
        "WARN",
        "client=2001:db8::/64",
        "scope=\"address\"",
        "window=1m",
    ] {
        assert!(lines[0].contains(needle), "{needle} in {:?}", lines[0]);
    }
    tokio::time::advance(Duration::from_secs(60)).await;
    for _ in 0..3 {
        fail(&t, a, "Dave");
    }
    for _ in 0..5 {
        assert!(blocked(&t, a, "dave").is_some());
    }
    let lines = started(&log);
    assert_eq!(lines.len(), 2, "the user's block, once: {lines:?}");
    for needle in ["scope=\"user\"", "user=\"dave\"", "failures=3"] {
        assert!(lines[1].contains(needle), "{needle} in {:?}", lines[1]);
    }
}
