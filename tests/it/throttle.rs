//! The login throttle, on the real binary.
//! A blocked address keeps its logged-in users (only unproven attempts get 429),
//! attempts are counted before their password is checked, so a burst costs at most
//! the limit in hash checks (read from `registry_gate_password_checks_total`), and
//! IPv6 clients count per /64.

use std::time::Duration;

use crate::support::client::{basic, Client, Proto};
use tokio::io::AsyncWriteExt as _;

use crate::support::gate::{replace_file, write_setup, write_users, GateProcess};
use crate::support::process::poll;
use crate::support::upstream::TestUpstream;

/// The limit both tests configure, per address and per user.
const LIMIT: u32 = 10;

/// A gate whose throttle allows [`LIMIT`] failures per address (and per user)
/// in an hour, with users alice/pw and carol/pw-c, plus `extra` TOML.
async fn start(extra: &str) -> (tempfile::TempDir, GateProcess, TestUpstream) {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_setup(
        dir.path(),
        &upstream.url(),
        &format!(
            "[throttle]\nwindow = \"1h\"\nmax_failures_per_address = {LIMIT}\n\
             max_failures_per_user = {LIMIT}\n{extra}"
        ),
    );
    write_users(dir.path(), &[("alice", "pw"), ("carol", "pw-c")]);
    let gate = GateProcess::start(dir.path());
    (dir, gate, upstream)
}

/// One metric's value from the admin listener's `/metrics`; 0 for a labelled
/// series not yet created.
fn metric(gate: &GateProcess, name: &str) -> u64 {
    let (status, text) = gate.admin_get("/metrics");
    assert_eq!(status, 200, "{text}");
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok());
    match value {
        Some(value) => value,
        None if name.contains('{') => 0,
        None => panic!("no {name} in:\n{text}"),
    }
}

fn password_checks(gate: &GateProcess) -> u64 {
    metric(gate, "registry_gate_password_checks_total")
}

async fn get(client: &Client, proto: Proto, path: &str, user: &str, password: &str) -> u16 {
    let req = client.request_as(proto, "GET", path, user, password);
    client.status_of(proto, req).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_address_keeps_its_logged_in_user_and_refuses_new_attempts() {
    let (_dir, gate, upstream) = start("").await;
    let client = gate.client();
    let pull = "/v2/alice/app/manifests/latest";
    assert_eq!(get(&client, Proto::H1, pull, "alice", "pw").await, 200);
    for i in 0..LIMIT {
        let status = get(&client, Proto::H1, "/v2/", "alice", &format!("guess{i}")).await;
        assert_eq!(status, 401, "wrong password {i} is a plain 401");
    }
    let checks = password_checks(&gate);
    assert_eq!(
        checks,
        1 + u64::from(LIMIT),
        "each login so far was hashed once"
    );

    for round in 0..5 {
        for proto in [Proto::H1, Proto::H2] {
            let status = get(&client, proto, pull, "alice", "pw").await;
            assert_eq!(
                status, 200,
                "the logged-in user keeps pulling ({round}, {proto:?})"
            );
        }
    }
    let req = client
        .request(Proto::H1, "GET", "/v2/")
        .header("authorization", basic("alice", "guess-again"));
    let refused = client.send_empty(Proto::H1, req).await;
    assert_eq!(refused.status, 429, "a new wrong attempt is refused");
    let retry: u64 = refused.one("retry-after").parse().expect("seconds");
    assert!((3500..=3600).contains(&retry), "retry-after {retry}");
    assert_eq!(
        get(&client, Proto::H2, "/v2/", "carol", "pw-c").await,
        429,
        "a right password never proven from this address waits out the block"
    );
    assert_eq!(
        get(&client, Proto::H1, "/v2/", "ALICE", "pw").await,
        429,
        "another spelling is not the cached login"
    );
    assert_eq!(
        password_checks(&gate),
        checks,
        "cache hits and refused attempts cost no password check"
    );
    assert!(metric(&gate, "registry_gate_throttled_total") >= 3);

    let log = gate.wait_for_log(&["login throttle started"], Duration::from_secs(5));
    let starts: Vec<_> = log
        .lines()
        .filter(|l| l.contains("login throttle started"))
        .collect();
    assert!(
        starts
            .iter()
            .all(|l| l.contains("WARN") && l.contains("127.0.0.1")),
        "{starts:?}"
    );
    assert!(
        starts.len() <= 2,
        "one WARN per block (address, user), not one per refused request: {starts:?}"
    );
    for _ in 0..11 {
        upstream.next_request().await;
    }
    assert!(
        upstream.is_quiet().await,
        "only the cached user's pulls reached the registry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_150_wrong_attempts_costs_at_most_the_limit_in_hash_checks() {
    let (_dir, gate, _upstream) = start("").await;
    let client = gate.client();
    let before = password_checks(&gate);
    let attempts: Vec<_> = (0..150)
        .map(|i| {
            let client = client.clone();
            // Half over HTTP/2 (streams of shared connections), half over HTTP/1.1;
            // a third repeat one guess, the rest are distinct.
            let proto = if i % 2 == 0 { Proto::H2 } else { Proto::H1 };
            let password = if i % 3 == 0 {
                "same-guess".to_owned()
            } else {
                format!("guess{i}")
            };
            let user = if i % 5 == 0 { "nobody" } else { "alice" };
            tokio::spawn(async move { get(&client, proto, "/v2/", user, &password).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.expect("task"));
    }
    let unauthorized = statuses.iter().filter(|&&s| s == 401).count();
    let throttled = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(
        unauthorized + throttled,
        150,
        "only 401 and 429: {statuses:?}"
    );
    // Requests that joined a guess under way share its 401, so more than the limit
    // may be 401; what is bounded is the number of checks.
    assert!(throttled >= 100, "{statuses:?}");
    let checks = password_checks(&gate) - before;
    assert!(
        (1..=u64::from(LIMIT)).contains(&checks),
        "150 concurrent wrong attempts cost {checks} hash checks; the limit is {LIMIT}"
    );
    assert_eq!(
        get(&client, Proto::H1, "/v2/", "alice", "pw").await,
        429,
        "the address is blocked for unproven logins"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv6_clients_count_per_slash_64() {
    // The client address is the one a trusted balancer forwards, so loopback can
    // stand for any IPv6 network.
    let (_dir, gate, _upstream) = start("[forwarding]\ntrusted_proxies = [\"127.0.0.1/32\"]").await;
    let client = gate.client();
    let from = |address: &str, password: &str| {
        client
            .request(Proto::H1, "GET", "/v2/")
            .header("x-forwarded-for", address)
            .header("authorization", basic("nobody", password))
    };
    for i in 0..LIMIT {
        // A new address of the same /64 for every guess.
        let req = from(&format!("2001:db8:0:7::{:x}", i + 1), &format!("g{i}"));
        assert_eq!(
            client.send_empty(Proto::H1, req).await.status,
            401,
            "guess {i}"
        );
    }
    let req = from("2001:db8:0:7:ffff::1", "again");
    assert_eq!(
        client.send_empty(Proto::H1, req).await.status,
        429,
        "the whole /64 is blocked"
    );
    let req = from("2001:db8:0:8::1", "elsewhere");
    assert_eq!(
        client.send_empty(Proto::H1, req).await.status,
        401,
        "the next /64 is not"
    );
    gate.wait_for_log(
        &["login throttle started", "2001:db8:0:7::/64"],
        Duration::from_secs(5),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_the_client_abandons_are_counted_and_logged() {
    // A hung-up guess: the client sends a guess and closes the connection while the hash runs.
    let (dir, gate, _upstream) = start("").await;
    // Cost-11 hashes, so that the (dummy) check outlasts the client.
    let slow = bcrypt::hash("pw", 11).expect("hash");
    replace_file(&dir.path().join("htpasswd"), &format!("alice:{slow}\n"));
    gate.wait_for_log(&["configuration reloaded"], Duration::from_secs(5));
    let client = gate.client();
    let failures =
        |gate: &GateProcess| metric(gate, "registry_gate_auth_total{result=\"failure\"}");
    let mut checks = password_checks(&gate);
    for i in 0..LIMIT {
        let failed = failures(&gate);
        let mut tls = client.connect_raw().await;
        let head = format!(
            "GET /v2/ HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
            client.authority(),
            basic("nobody", &format!("guess{i}"))
                .to_str()
                .expect("ASCII"),
        );
        tls.write_all(head.as_bytes()).await.expect("send");
        tls.flush().await.expect("flush");
        // Not `eventually`: a 2 ms look, so that the drop below lands while the hash runs.
        let started = poll(Duration::from_secs(5), Duration::from_millis(2), || {
            (password_checks(&gate) > checks).then_some(())
        });
        assert!(started.is_some(), "attempt {i}: no hash check started");
        drop(tls); // Gone before the answer.
        checks += 1;
        let counted = poll(Duration::from_secs(10), Duration::from_millis(10), || {
            (failures(&gate) > failed).then_some(())
        });
        assert!(counted.is_some(), "abandoned attempt {i} was never counted");
    }
    let lines = gate.log();
    let abandoned = lines
        .lines()
        .filter(|l| l.contains("access:") && l.contains("status=499"))
        .count();
    assert!(
        abandoned >= LIMIT as usize,
        "each abandoned login has its access line: {abandoned}\n{lines}"
    );
    assert_eq!(
        get(&client, Proto::H1, "/v2/", "nobody", "one-more").await,
        429,
        "the abandoned attempts counted toward the block"
    );
    assert_eq!(password_checks(&gate), checks);
}
