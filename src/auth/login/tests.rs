//! Tests for the login flow: the cache-hit bypass of the throttle, a refused
//! reservation, the group merge and an unreachable directory, each with the
//! metrics it leaves.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::auth::directory::DirectoryLogins;
use crate::auth::htpasswd::Htpasswd;
use crate::auth::ldap::Directory;
use crate::auth::throttle::Limits;
use crate::auth::Password;
use crate::config::ldap::LdapConfig;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const WINDOW: Duration = Duration::from_secs(60);

/// The parts a [`Login`] borrows, as a `State` holds them.
struct Parts {
    authenticator: Authenticator,
    throttle: Throttle,
    groups: Groups,
    metrics: Arc<Metrics>,
}

impl Parts {
    /// `alice:pw` in htpasswd; at most `failures` failures per address and per user.
    fn new(failures: u32) -> Parts {
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let (users, warnings) = Htpasswd::parse(&format!("alice:{hash}\n"), Path::new("test"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let (mut groups, warnings) =
            Groups::parse("devs: alice bob\nops: alice\n", Path::new("groups"));
        assert!(warnings.is_empty(), "{warnings:?}");
        groups.add("admins", ["alice"]);
        groups.add("devs", ["alice"]);
        Parts {
            authenticator: Authenticator::new(users, Duration::from_secs(300), 100),
            throttle: Throttle::new(Limits {
                enabled: true,
                window: WINDOW,
                per_address: failures,
                per_user: failures,
                ipv6_prefix: 64,
            }),
            groups,
            metrics: Arc::new(Metrics::new()),
        }
    }

    fn login(&self) -> Login<'_> {
        Login::new(
            &self.authenticator,
            &self.throttle,
            &self.groups,
            &self.metrics,
        )
    }

    /// The value of one metric line, such as `registry_gate_throttled_total`.
    fn metric(&self, name: &str) -> String {
        let text = self.metrics.render();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"));
        line.rsplit(' ').next().unwrap_or_default().to_owned()
    }

    fn auth_count(&self, result: &str) -> String {
        self.metric(&format!("registry_gate_auth_total{{result=\"{result}\"}}"))
    }
}

fn creds(user: &str, password: &str) -> Credentials {
    Credentials {
        user: user.to_owned(),
        password: Password::new(password.as_bytes().to_vec()),
    }
}

#[tokio::test]
async fn a_cached_login_passes_an_address_the_throttle_blocks() {
    let parts = Parts::new(2);
    let login = parts.login();
    let alice = login
        .password(CLIENT, &creds("alice", "pw"))
        .await
        .expect("alice's first login");
    assert_eq!(alice.user, "alice");
    for i in 0..2 {
        let guess = login.password(CLIENT, &creds("mallory", "guess")).await;
        assert!(
            matches!(guess, Err(LoginError::Invalid)),
            "guess {i}: {guess:?}"
        );
    }
    let blocked = login.password(CLIENT, &creds("mallory", "guess")).await;
    assert!(
        matches!(blocked, Err(LoginError::Throttled(_))),
        "{blocked:?}"
    );
    let checks = parts.authenticator.verifications();
    let again = login
        .password(CLIENT, &creds("alice", "pw"))
        .await
        .expect("a cached login passes the block");
    assert_eq!(again, alice);
    assert_eq!(parts.authenticator.verifications(), checks, "no hash check");
    let wrong = login.password(CLIENT, &creds("alice", "wrong")).await;
    assert!(
        matches!(wrong, Err(LoginError::Throttled(_))),
        "an unproven password for alice is still throttled: {wrong:?}"
    );
    assert_eq!(parts.auth_count("success"), "1");
    assert_eq!(parts.auth_count("cache_hit"), "1");
    assert_eq!(parts.auth_count("failure"), "2");
    assert_eq!(parts.metric("registry_gate_throttled_total"), "2");
}

#[tokio::test]
async fn a_refused_reservation_is_a_throttled_error_and_checks_nothing() {
    let parts = Parts::new(1);
    let login = parts.login();
    let first = login.password(CLIENT, &creds("alice", "wrong")).await;
    assert!(matches!(first, Err(LoginError::Invalid)), "{first:?}");
    let checks = parts.authenticator.verifications();
    match login.password(CLIENT, &creds("alice", "pw")).await {
        Err(LoginError::Throttled(left)) => {
            assert!(!left.is_zero() && left <= WINDOW, "retry after {left:?}");
        }
        other => panic!("throttled expected, got {other:?}"),
    }
    assert_eq!(parts.authenticator.verifications(), checks, "no hash check");
    assert_eq!(parts.metric("registry_gate_throttled_total"), "1");
    assert_eq!(parts.auth_count("success"), "0");
}

#[tokio::test]
async fn every_kind_of_login_gets_the_merged_groups() {
    let parts = Parts::new(5);
    let login = parts.login();
    let want = ["admins", "devs", "ops"].map(String::from).to_vec();
    let by_password = login
        .password(CLIENT, &creds("alice", "pw"))
        .await
        .expect("valid");
    assert_eq!(by_password.groups, want, "password");
    assert_eq!(
        login.certificate("alice").expect("alice").groups,
        want,
        "certificate"
    );
    let refreshed = login.refresh("alice").await.expect("alice exists");
    assert_eq!(refreshed.groups, want, "refresh");
    assert_eq!(
        parts.auth_count("success"),
        "2",
        "refresh is no login check"
    );
    let from_backend = Identity {
        user: "alice".into(),
        groups: vec!["ops".into(), "zeta".into()],
    };
    assert_eq!(
        login.with_groups(from_backend).groups,
        ["admins", "devs", "ops", "zeta"].map(String::from).to_vec(),
        "the backend's groups merged with the file's and config's, sorted, no repeats"
    );
    let bob = login.certificate("bob");
    assert_eq!(
        bob.expect("bob").groups,
        vec!["devs".to_owned()],
        "a certificate user"
    );
    let gone = login.refresh("bob").await;
    assert!(
        matches!(gone, Err(LoginError::UnknownUser)),
        "bob is in no user database: {gone:?}"
    );
}

/// A directory on a loopback port nothing listens on.
fn unreachable_directory(metrics: &Metrics) -> (Arc<DirectoryLogins>, Duration) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let config: LdapConfig = toml::from_str(&format!(
        "url = \"ldap://127.0.0.1:{port}\"\nbase = \"dc=example\"\n\
         connect_timeout = \"2s\"\nretry_after = \"7s\"\n"
    ))
    .expect("ldap config");
    let directory = Directory::new(&config, None, metrics.ldap.clone()).expect("directory");
    let logins = DirectoryLogins::new(directory, &config, Duration::from_secs(300), 100);
    (Arc::new(logins), config.retry_after.0)
}

#[tokio::test]
async fn an_unreachable_directory_is_a_typed_error_and_no_failure() {
    let mut parts = Parts::new(1);
    let (directory, retry) = unreachable_directory(&parts.metrics);
    parts.authenticator = parts.authenticator.clone().with_directory(directory);
    let login = parts.login();
    for i in 0..2 {
        // Twice: the first attempt's reservation was released, not counted, so the
        // second (with one failure allowed) is not throttled.
        match login.password(CLIENT, &creds("carol", "pw")).await {
            Err(LoginError::Unavailable { retry_after, .. }) => {
                assert_eq!(retry_after, retry, "attempt {i}");
            }
            other => panic!("attempt {i}: unavailable expected, got {other:?}"),
        }
    }
    assert_eq!(parts.auth_count("unavailable"), "2");
    assert_eq!(parts.auth_count("failure"), "0");
    let refreshed = login.refresh("carol").await;
    assert!(
        matches!(refreshed, Err(LoginError::Unavailable { .. })),
        "{refreshed:?}"
    );
}

/// `robot$ci` (pull on team/*) with a secret, and `robot$old`, which expired.
fn robots() -> (crate::auth::robots::Robots, String) {
    use crate::auth::robots::{create, Robots, Spec};
    use crate::authz::access::Action;
    use std::time::SystemTime;
    let rng = ring::rand::SystemRandom::new();
    let spec = |name: &str, expires_in| Spec {
        name: name.into(),
        repos: vec!["team/*".into()],
        actions: vec![Action::Pull],
        expires_in,
        description: String::new(),
    };
    let (text, ci) = create("", &spec("ci", None), SystemTime::now(), &rng).expect("ci");
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let short = Some(Duration::from_secs(60));
    let (text, _) = create(&text, &spec("old", short), an_hour_ago, &rng).expect("old");
    let (robots, warnings) = Robots::parse(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    (robots, ci.secret)
}

#[tokio::test]
async fn robots_log_in_with_their_secret_only_and_never_through_the_other_doors() {
    let parts = Parts::new(5);
    let (robots, secret) = robots();
    let login = parts.login().with_robots(&robots);
    let ci = login
        .password(CLIENT, &creds("robot$ci", &secret))
        .await
        .expect("the robot's secret");
    assert_eq!(ci.user, "robot$ci");
    assert!(ci.groups.is_empty(), "a robot has no groups: {ci:?}");
    let checks = parts.authenticator.verifications();
    let wrong = login
        .password(CLIENT, &creds("robot$ci", "rgr_guess"))
        .await;
    assert!(matches!(wrong, Err(LoginError::Invalid)), "{wrong:?}");
    let expired = login.password(CLIENT, &creds("robot$old", &secret)).await;
    assert!(
        matches!(expired, Err(LoginError::Invalid)),
        "not old's secret: {expired:?}"
    );
    assert_eq!(
        parts.authenticator.verifications(),
        checks,
        "no htpasswd check"
    );
    match login.refresh("robot$old").await {
        Err(LoginError::Refused(why)) => {
            assert!(why.starts_with("robot old: expired at "), "{why}")
        }
        other => panic!("an expired robot's refresh: {other:?}"),
    }
    assert_eq!(login.refresh("robot$ci").await.expect("still a robot"), ci);
    let gone = login.refresh("robot$gone").await;
    assert!(matches!(gone, Err(LoginError::UnknownUser)), "{gone:?}");
    match login.certificate("robot$ci") {
        Err(LoginError::Refused(why)) => assert!(why.contains("names are robots'"), "{why}"),
        other => panic!("a certificate naming a robot: {other:?}"),
    }
    // Without the robots file, a robot name is nobody, wherever it is written.
    let blind = parts.login();
    let refused = blind.password(CLIENT, &creds("robot$ci", &secret)).await;
    assert!(matches!(refused, Err(LoginError::Invalid)), "{refused:?}");
    assert_eq!(parts.auth_count("success"), "1");
    assert_eq!(parts.auth_count("failure"), "4");
}

#[tokio::test]
async fn an_expired_robot_is_refused_with_the_reason_at_login() {
    use crate::auth::robots::{create, Robots, Spec};
    use crate::authz::access::Action;
    use std::time::SystemTime;
    let parts = Parts::new(5);
    let spec = Spec {
        name: "old".into(),
        repos: vec!["x".into()],
        actions: vec![Action::Pull],
        expires_in: Some(Duration::from_secs(60)),
        description: String::new(),
    };
    let then = SystemTime::now() - Duration::from_secs(3600);
    let (text, old) = create("", &spec, then, &ring::rand::SystemRandom::new()).expect("old");
    let (robots, _) = Robots::parse(&text);
    let login = parts.login().with_robots(&robots);
    match login
        .password(CLIENT, &creds("robot$old", &old.secret))
        .await
    {
        Err(LoginError::Refused(why)) => {
            assert!(why.starts_with("robot old: expired at "), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn robots_log_in_while_the_directory_is_down_since_it_is_never_asked() {
    let mut parts = Parts::new(5);
    let (directory, _) = unreachable_directory(&parts.metrics);
    parts.authenticator = parts.authenticator.clone().with_directory(directory);
    let (robots, secret) = robots();
    let login = parts.login().with_robots(&robots);
    let ci = login
        .password(CLIENT, &creds("robot$ci", &secret))
        .await
        .expect("a robot needs no directory");
    assert_eq!(ci.user, "robot$ci");
    assert_eq!(login.refresh("robot$ci").await.expect("refresh"), ci);
    let wrong = login.password(CLIENT, &creds("robot$ci", "rgr_x")).await;
    assert!(
        matches!(wrong, Err(LoginError::Invalid)),
        "not unavailable: {wrong:?}"
    );
    assert_eq!(
        parts.auth_count("unavailable"),
        "0",
        "the directory was not asked"
    );
}
