//! The three front doors give one answer: for every row of the policy table
//! (authenticated or anonymous × rules or none × pull, push, delete, catalog, with a
//! rule granting anonymous pull and one listing everything for anonymous clients),
//! the real binary in Basic mode, its token endpoint in token mode and
//! `registry-gate acl explain` all agree with the table, and so with each other.

use std::path::Path;

use serde_json::Value;

use crate::support::client::{basic, Client, Proto};
use crate::support::gate::{run, write_setup, write_users, GateProcess};
use crate::support::upstream::{Reply, TestUpstream};
use crate::token::{claims, write_token_gate, SERVICE};

/// alice pulls and pushes team/app; bob may do everything; anonymous clients pull
/// team/app, and a rule lists everything for them on open/app (they still only pull).
const RULES: &str = r#"
[authz]
rules = [
  { account = "alice", name = "team/app", actions = ["pull", "push"] },
  { account = "bob", actions = ["*"] },
  { account = "anonymous", name = "team/app", actions = ["pull"] },
  { account = "anonymous", name = "open/app", actions = ["*"] },
]
"#;

/// The users (name, password); `None` is a client without credentials.
const WHO: [Option<(&str, &str)>; 3] = [Some(("alice", "pw-a")), Some(("bob", "pw-b")), None];

const REPOSITORIES: [&str; 2] = ["team/app", "open/app"];

const ACTIONS: [&str; 4] = ["pull", "push", "delete", "catalog"];

/// The table: whether `user` (`anonymous`) may do `action` on `repository`.
fn expected(rules: bool, user: &str, repository: &str, action: &str) -> bool {
    match (rules, user) {
        (false, "anonymous") => false,
        (false, _) => true,
        (true, "bob") => true,
        (true, "alice") => repository == "team/app" && matches!(action, "pull" | "push"),
        (true, _) => action == "pull",
    }
}

/// A digest for DELETE, which the registry API only takes by digest.
const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// What the Basic-mode gate answers `user` for `action` on `repository`.
async fn proxy_status(
    client: &Client,
    who: Option<(&str, &str)>,
    repository: &str,
    action: &str,
) -> u16 {
    let (method, path) = match action {
        "pull" => ("GET", format!("/v2/{repository}/manifests/latest")),
        "push" => ("PUT", format!("/v2/{repository}/manifests/latest")),
        "delete" => ("DELETE", format!("/v2/{repository}/manifests/{DIGEST}")),
        _ => ("GET", "/v2/_catalog".to_owned()),
    };
    let mut req = client.request(Proto::H1, method, &path);
    if let Some((user, pw)) = who {
        req = req.header("authorization", basic(user, pw));
    }
    client.send_empty(Proto::H1, req).await.status.as_u16()
}

/// The actions the token endpoint grants `who`, per resource name (`catalog` for
/// `registry:catalog:*`), for every repository and the catalog in one request.
async fn token_grants(client: &Client, who: Option<(&str, &str)>) -> Vec<(String, Vec<String>)> {
    let scopes: String = REPOSITORIES
        .iter()
        .map(|r| format!("&scope=repository:{r}:pull,push,delete"))
        .collect();
    let path = format!("/auth?service={SERVICE}{scopes}&scope=registry:catalog:*");
    let mut req = client.request(Proto::H1, "GET", &path);
    if let Some((user, pw)) = who {
        req = req.header("authorization", basic(user, pw));
    }
    let answer = client.send_empty(Proto::H1, req).await;
    assert_eq!(answer.status, 200, "{who:?}: {}", answer.text());
    let body: Value = serde_json::from_str(&answer.text()).expect("token JSON");
    let (_, payload) = claims(body["token"].as_str().expect("token"));
    let access = payload["access"].as_array().expect("access claim").clone();
    access
        .iter()
        .map(|entry| {
            let actions = entry["actions"].as_array().expect("actions");
            let actions = actions.iter().map(|a| a.as_str().expect("word").to_owned());
            let name = entry["name"].as_str().expect("name").to_owned();
            (name, actions.collect())
        })
        .collect()
}

/// Whether the token grants `action` on `repository` (`*` on the catalog).
fn token_allows(grants: &[(String, Vec<String>)], repository: &str, action: &str) -> bool {
    let (name, word) = match action {
        "catalog" => ("catalog", "*"),
        other => (repository, other),
    };
    let entry = grants.iter().find(|(n, _)| n == name);
    let (_, actions) = entry.unwrap_or_else(|| panic!("no access entry for {name}: {grants:?}"));
    actions.iter().any(|a| a == word)
}

/// `acl explain`: true on exit 0, false on exit 1.
fn explain_allows(dir: &Path, user: &str, repository: &str, action: &str) -> bool {
    let o = run(&["acl", "explain", user, repository, action], dir);
    match o.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!(
            "acl explain {user} {repository} {action}: exit {other:?}\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// Checks every row for one config (`rules`: with [`RULES`], else no `[authz]`).
async fn doors_agree(rules: bool, upstream: &TestUpstream) -> usize {
    let extra = if rules { RULES } else { "" };
    let basic_dir = tempfile::tempdir().expect("tempdir");
    write_setup(basic_dir.path(), &upstream.url(), extra);
    write_users(basic_dir.path(), &[("alice", "pw-a"), ("bob", "pw-b")]);
    let token_dir = tempfile::tempdir().expect("tempdir");
    write_token_gate(token_dir.path(), None, "", extra);
    let basic_gate = GateProcess::start(basic_dir.path());
    let token_gate = GateProcess::start(token_dir.path());
    let (basic_client, token_client) = (basic_gate.client(), token_gate.client());
    let mut rows = 0;
    for who in WHO {
        let user = who.map_or("anonymous", |(user, _)| user);
        let grants = token_grants(&token_client, who).await;
        for repository in REPOSITORIES {
            for action in ACTIONS {
                let want = expected(rules, user, repository, action);
                let row = format!("rules={rules} {user} {action} {repository}");
                let refused = if who.is_some() { 403 } else { 401 };
                let status = proxy_status(&basic_client, who, repository, action).await;
                let proxy = match status {
                    200 => true,
                    s if s == refused => false,
                    other => panic!("{row}: the proxy answered {other}"),
                };
                let token = token_allows(&grants, repository, action);
                let target = if action == "catalog" {
                    "_catalog"
                } else {
                    repository
                };
                let explain = explain_allows(basic_dir.path(), user, target, action);
                assert_eq!(
                    (proxy, token, explain),
                    (want, want, want),
                    "{row}: (proxy, token endpoint, acl explain) against the table"
                );
                rows += 1;
            }
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_the_token_endpoint_and_acl_explain_agree_on_every_row() {
    let upstream = TestUpstream::start_with(|parts| {
        let mut reply = Reply::default();
        if parts.uri.path() == "/v2/_catalog" {
            reply.body = r#"{"repositories":["open/app","team/app"]}"#.into();
        }
        reply
    })
    .await;
    let rows = doors_agree(true, &upstream).await + doors_agree(false, &upstream).await;
    assert_eq!(rows, 2 * WHO.len() * REPOSITORIES.len() * ACTIONS.len());
}
