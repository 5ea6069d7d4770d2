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
