use std::path::Path;

use super::*;

fn authenticator(ttl: Duration) -> Authenticator {
    authenticator_with_cost(ttl, 4)
}

fn authenticator_with_cost(ttl: Duration, cost: u32) -> Authenticator {
    let hash = bcrypt::hash("pw", cost).expect("hash");
    let (users, warnings) = Htpasswd::parse(&format!("alice:{hash}\n"), Path::new("test"));
    assert!(warnings.is_empty(), "{warnings:?}");
    Authenticator::new(users, ttl, 100)
}

const CLIENT: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

fn reserve_freely() -> Result<(), ()> {
    Ok(())
}

fn pw(s: &str) -> Password {
    Password::new(s.as_bytes().to_vec())
}

#[tokio::test(start_paused = true)]
async fn repeated_logins_cost_one_verification_until_the_ttl_ends() {
    let auth = authenticator(Duration::from_secs(300));
    for i in 0..5 {
        let v = auth.verify("alice", &pw("pw")).await.expect("valid");
        assert_eq!(v.identity.user, "alice");
        assert_eq!(v.from_cache, i > 0, "login {i}");
    }
    assert_eq!(auth.verifications(), 1);
    tokio::time::advance(Duration::from_secs(301)).await;
    auth.verify("alice", &pw("pw")).await.expect("valid");
    assert_eq!(auth.verifications(), 2, "expired entry re-verified");
}

#[tokio::test]
async fn failures_are_never_cached() {
    let auth = authenticator(Duration::from_secs(300));
    for _ in 0..3 {
        assert!(matches!(
            auth.verify("alice", &pw("wrong")).await,
            Err(Error::InvalidCredentials)
        ));
    }
    assert_eq!(auth.verifications(), 3);
    assert!(matches!(
        auth.verify("bob", &pw("pw")).await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(
        auth.verifications(),
        4,
        "an unknown user is checked against the dummy hash, costing the same"
    );
    auth.verify("alice", &pw("pw"))
        .await
        .expect("the right password still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_of_the_same_credentials_are_merged() {
    // Cost 10 keeps one verification in flight far longer than spawning 16 tasks takes.
    let auth = Arc::new(authenticator_with_cost(Duration::ZERO, 10));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move {
                auth.verify("alice", &pw("pw"))
                    .await
                    .map(|v| v.identity.user)
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("valid"), "alice");
    }
    // With caching off, only merging keeps this below 16.
    assert!(
        auth.verifications() < 16,
        "verifications = {}",
        auth.verifications()
    );
}

#[tokio::test(start_paused = true)]
async fn only_fresh_successes_are_cached_hits() {
    let auth = authenticator(Duration::from_secs(300));
    assert!(!auth.is_cached("alice", &pw("pw")), "never logged in");
    auth.verify("alice", &pw("wrong")).await.expect_err("wrong");
    assert!(
        !auth.is_cached("alice", &pw("wrong")),
        "failures are not hits"
    );
    auth.verify("alice", &pw("pw")).await.expect("valid");
    assert!(auth.is_cached("alice", &pw("pw")));
    assert!(!auth.is_cached("alice", &pw("pW")), "another password");
    assert!(!auth.is_cached("Alice", &pw("pw")), "another user");
    tokio::time::advance(Duration::from_secs(301)).await;
    assert!(!auth.is_cached("alice", &pw("pw")), "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_verification_still_reports_its_outcome_and_leaves_no_cell() {
    // F2 (issue 17): the client went away; the hash runs on, and its result counts.
    let checks = Counter::default();
    let auth =
        authenticator_with_cost(Duration::from_secs(300), 10).with_check_counter(checks.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let wrong = pw("wrong");
    let request = auth
        .attempt(
            CLIENT,
            "alice",
            &wrong,
            reserve_freely,
            move |(), result| {
                let _ = tx.send(matches!(result, Err(Error::InvalidCredentials)));
            },
        )
        .expect("reserved")
        .outcome();
    // The request is dropped as soon as the hash check has started.
    tokio::select! {
        _ = request => panic!("a cost-10 bcrypt cannot be done before the check starts"),
        () = async {
            while checks.get() == 0 {
                tokio::task::yield_now().await;
            }
        } => {}
    }
    let failed = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("the outcome arrives")
        .expect("on_done was called");
    assert!(failed, "reported as invalid credentials");
    assert_eq!(auth.verifications(), 1);
    assert_eq!(checks.get(), 1, "the metric counts the hash check");
    assert_eq!(auth.cache.in_flight(), 0, "no in-flight cell left");
    // The task ends the attempt just after `on_done`.
    for _ in 0..1000 {
        if auth.attempts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(auth.attempts.is_empty(), "no attempt left");

    let (tx, rx) = tokio::sync::oneshot::channel();
    let right = pw("pw");
    drop(auth.attempt(
        CLIENT,
        "alice",
        &right,
        reserve_freely,
        move |(), result| {
            let _ = tx.send(result.is_ok());
        },
    ));
    let ok = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("the outcome arrives")
        .expect("on_done was called");
    assert!(ok, "a never-polled request's verification runs too");
    assert!(
        auth.is_cached("alice", &pw("pw")),
        "and its success is cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attempts_with_the_same_credentials_share_one_reservation_and_check() {
    // Issue 17: a first push's parallel requests must not each take a reservation.
    let auth = authenticator_with_cost(Duration::from_secs(300), 8);
    let reserved = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut waiting = Vec::new();
    for _ in 0..30 {
        let (reserved, done) = (reserved.clone(), done.clone());
        let attempt = auth
            .attempt(
                CLIENT,
                "alice",
                &pw("pw"),
                move || {
                    reserved.fetch_add(1, Ordering::Relaxed);
                    Ok::<_, ()>(())
                },
                move |(), _| {
                    done.fetch_add(1, Ordering::Relaxed);
                },
            )
            .expect("reserved");
        waiting.push(attempt);
    }
    assert_eq!(waiting.iter().filter(|a| !a.joined).count(), 1, "one leads");
    for attempt in waiting {
        let verified = attempt.outcome().await.expect("valid");
        assert_eq!(verified.identity.user, "alice");
    }
    assert_eq!(reserved.load(Ordering::Relaxed), 1);
    assert_eq!(done.load(Ordering::Relaxed), 1);
    assert_eq!(auth.verifications(), 1);
    let other = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
    let attempt = auth
        .attempt(other, "alice", &pw("pw"), reserve_freely, |(), _| {})
        .expect("reserved");
    assert!(!attempt.joined, "another address leads its own attempt");
    assert!(attempt.outcome().await.expect("valid").from_cache);
}
