//! Authentication through the gate: hashes made by the real tools log in, bad
//! lines cost only their own user, and a storm of expensive wrong passwords does
//! not hold up requests whose credentials are cached.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::client::{basic, Proto};
use crate::support::proxy::TestProxy;
use crate::support::upstream::TestUpstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_logins_are_served_during_a_storm_of_costly_wrong_passwords() {
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::builder(upstream.url())
        .user("alice", "pw")
        .user_with_cost("bob", "right", 12)
        .toml("[throttle]\nenabled = false")
        .start()
        .await;
    let client = proxy.client();
    let get =
        |user: &str, password: &str| client.request_as(Proto::H1, "GET", "/v2/", user, password);
    assert_eq!(
        client
            .send_empty(Proto::H1, get("alice", "pw"))
            .await
            .status,
        200
    );

    const STORM: usize = 16;
    let finished = Arc::new(AtomicUsize::new(0));
    let storm: Vec<_> = (0..STORM)
        .map(|i| {
            let (client, finished) = (client.clone(), finished.clone());
            // Distinct passwords, so no two checks are merged.
            let req = get("bob", &format!("wrong{i}"));
            tokio::spawn(async move {
                let status = client.send_empty(Proto::H1, req).await.status;
                finished.fetch_add(1, Ordering::SeqCst);
                status
            })
        })
        .collect();
    // Wait until the storm occupies the verifiers.
    crate::support::eventually(
        "the storm to occupy two verifiers",
        std::time::Duration::from_secs(10),
        || {
            let busy = proxy.state_tx.borrow().authenticator.verifications();
            std::future::ready((busy >= 2).then_some(()).ok_or(format!("{busy} busy")))
        },
    )
    .await;
    for _ in 0..20 {
        assert_eq!(
            client
                .send_empty(Proto::H1, get("alice", "pw"))
                .await
                .status,
            200
        );
    }
    let done = finished.load(Ordering::SeqCst);
    assert!(
        done < STORM,
        "20 cached logins finished only after the whole storm ({done} of {STORM} done): \
         cached requests waited behind bcrypt"
    );
    for s in storm {
        assert_eq!(s.await.expect("task"), 401);
    }
}

/// Runs a hashing tool and returns its trimmed stdout.
fn tool(program: &str, args: &[&str], package: &str) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{program}: {e}; {}",
                crate::support::install_hint(program, package)
            )
        });
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_format_made_by_real_tools_logs_in_and_bad_lines_cost_only_their_user() {
    let htpasswd_line =
        |flag: &str, user: &str, pw: &str| tool("htpasswd", &[flag, user, pw], "apache2-utils");
    let hash = |program: &str, args: &[&str], package: &str| tool(program, args, package);
    let users: Vec<(String, String)> = vec![
        (htpasswd_line("-nbB", "bcrypt", "p:1"), "p:1".into()),
        (htpasswd_line("-nbm", "apr1", "p2 ü"), "p2 ü".into()),
        (htpasswd_line("-nbs", "sha", "p3"), "p3".into()),
        (htpasswd_line("-nbd", "des", "p4"), "p4".into()),
        (
            format!(
                "md5:{}",
                hash("openssl", &["passwd", "-1", "p5"], "openssl")
            ),
            "p5".into(),
        ),
        (
            format!(
                "sha256:{}",
                hash("openssl", &["passwd", "-5", "p6"], "openssl")
            ),
            "p6".into(),
        ),
        (
            format!(
                "sha512:{}",
                hash("openssl", &["passwd", "-6", "p7"], "openssl")
            ),
            "p7".into(),
        ),
        (
            format!(
                "yescrypt:{}",
                hash("mkpasswd", &["-m", "yescrypt", "p8"], "whois")
            ),
            "p8".into(),
        ),
        ("plain:{PLAIN}p9".into(), "p9".into()),
        (
            format!(
                "scrypt:{}",
                hash("mkpasswd", &["-m", "scrypt", "-R", "6", "p10"], "whois")
            ),
            "p10".into(),
        ),
        (
            format!(
                "gost:{}",
                hash("mkpasswd", &["-m", "gost-yescrypt", "p11"], "whois")
            ),
            "p11".into(),
        ),
    ];
    let mut file = String::from("# made by the real tools\r\n\r\n");
    for (line, _) in &users {
        file.push_str(line);
        file.push_str("\r\n");
    }
    file.push_str(
        "truncated:$2y$05$abc\nshortapr:$apr1$\nnocolon\nempty:\n:nouser\nbare:plaintext\n",
    );
    file.push_str("bcrypt:$2y$05$duplicateduplicateduplicateduplicateduplicateduplicat\n");

    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::builder(upstream.url())
        .htpasswd_text(&file)
        .start()
        .await;
    let loaded = proxy.state_tx.borrow().authenticator.user_count();
    assert_eq!(loaded, users.len(), "every good line loaded, no bad one");
    let client = proxy.client();
    for (line, password) in &users {
        let user = line.split(':').next().expect("user");
        for (pw, want) in [(password.as_str(), 200), ("wrong", 401)] {
            let req = client
                .request(Proto::H1, "GET", "/v2/")
                .header("authorization", basic(user, pw));
            let got = client.send_empty(Proto::H1, req).await.status;
            assert_eq!(got, want, "{user} with {pw:?} (line {line:?})");
        }
    }
    for user in ["truncated", "shortapr", "nocolon", "empty", "bare"] {
        let req = client
            .request(Proto::H1, "GET", "/v2/")
            .header("authorization", basic(user, "anything"));
        assert_eq!(
            client.send_empty(Proto::H1, req).await.status,
            401,
            "{user}"
        );
    }
}
