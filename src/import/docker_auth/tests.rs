use super::*;
use crate::auth::Identity;
use crate::authz::rules::{Request, Rights, Rules};

const SEED001: &str = include_str!("../../../tests/fixtures/docker_auth/seed001.yml");
const SEED004: &str = include_str!("../../../tests/fixtures/docker_auth/seed004.yml");

/// A config around `users` and `acl` (YAML, indented at top level).
fn with(rest: &str) -> String {
    format!(
        "server: {{addr: \":5001\", certificate: s.pem, key: s.key}}\n\
         token: {{issuer: iss, expiration: 900}}\n{rest}"
    )
}

fn import_ok(text: &str) -> Import {
    import(text, &Options::default()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn refusal(text: &str) -> String {
    match import(text, &Options::default()) {
        Ok(i) => panic!("expected a refusal, got\n{}", i.proxy_toml),
        Err(e) => e.to_string(),
    }
}

fn rules(import: &Import) -> Rules {
    let config = Config::from_toml_str(&import.proxy_toml).expect("valid proxy.toml");
    Rules::compile(&config.authz)
        .expect("rules compile")
        .expect("rules set")
}

/// The `rules = [...]` lines, comments and all.
fn rule_lines(import: &Import) -> Vec<&str> {
    let text = &import.proxy_toml;
    let start = text.find("rules = [\n").expect("rules") + "rules = [\n".len();
    text[start..]
        .lines()
        .take_while(|l| *l != "]")
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(str::trim)
        .collect()
}

fn rights(rules: &Rules, who: Option<(&str, &[&str])>, repository: &str) -> Rights {
    let identity = who.map(|(user, groups)| Identity {
        user: user.into(),
        groups: groups.iter().map(|g| (*g).to_string()).collect(),
    });
    rules
        .decide(identity.as_ref(), Request::Repository(repository))
        .rights
}

fn has_note(import: &Import, needle: &str) -> bool {
    import.notes.iter().any(|n| n.contains(needle))
}

#[test]
fn seed001_keeps_docker_auth_decisions() {
    let import = import_ok(SEED001);
    assert_eq!(
        rule_lines(&import),
        [
            r#"{ account = "admin", actions = ["*"] },"#,
            r#"{ account = "hussien", name = "ubuntu", actions = ["pull", "push", "delete"] },"#,
            r#"{ account = "test", actions = [] },"#,
            r#"{ account = "*", actions = ["pull"] },"#,
            r#"{ account = "anonymous", name = "hello-world", actions = ["pull"] },"#,
        ]
    );
    assert_eq!(
        import.htpasswd.as_deref(),
        Some(
            "admin:$2y$05$B.x046DV3bvuwFgn0I42F.W/SbRU5fUoCbCGtjFl7S33aCUHNBxbq\n\
             hussein:$2y$05$xN3hNmNlBIYpST7UzqwK/O5T1/JyXDGuJgKJzf4XuILmvX7L5ensa\n"
        )
    );
    let rules = rules(&import);
    let all = Rights::ALL;
    let repo_all = Rights {
        catalog: false,
        ..Rights::ALL
    };
    let pull = Rights {
        pull: true,
        ..Rights::NONE
    };
    let none = Rights::NONE;
    let cases: [(Option<&str>, &str, Rights); 10] = [
        (Some("admin"), "ubuntu", all),
        (Some("admin"), "team/app/deep", all),
        (Some("hussien"), "ubuntu", repo_all),
        (Some("hussien"), "debian", pull),
        (Some("hussein"), "ubuntu", pull),
        (Some("test"), "ubuntu", none),
        (Some("test"), "hello-world", none),
        (Some("alice"), "anything/at/all", pull),
        (None, "hello-world", pull),
        (None, "ubuntu", none),
    ];
    for (user, repository, expected) in cases {
        let who = user.map(|u| (u, &[][..]));
        assert_eq!(
            rights(&rules, who, repository),
            expected,
            "user={user:?} repository={repository}"
        );
    }
    let config = Config::from_toml_str(&import.proxy_toml).expect("config");
    assert_eq!(config.listen.addr.to_string(), "0.0.0.0:5001");
    let token = config.token.expect("[token]");
    assert_eq!(token.issuer, "Auth Service");
    assert_eq!(token.expiration.0.as_secs(), 900);
    assert_eq!(token.service, SERVICE_PLACEHOLDER);
    assert_eq!(token.cert.to_str(), Some("/ssl/server.pem"));
    assert_eq!(token.key.to_str(), Some("/ssl/server.key"));
    assert!(has_note(&import, "token.service"), "{:?}", import.notes);
    assert!(has_note(
        &import,
        "acl[2]: account \"hussien\" is not in users"
    ));
    assert!(
        import.proxy_toml.contains("# - token.service"),
        "notes head the file"
    );
}

#[test]
fn seed004_unknown_match_key_is_refused_with_the_label_to_use() {
    let e = refusal(SEED004);
    assert!(
        e.starts_with("acl[1].match: unknown condition \"gidNumber\""),
        "{e}"
    );
    assert!(e.contains("write `labels: {groups: VALUE}`"), "{e}");
}

#[test]
fn seed004_with_a_label_match_becomes_ldap_groups() {
    let fixed = SEED004.replace(r#"{"gidNumber": "6000"}"#, r#"{labels: {groups: "6000"}}"#);
    let import = import_ok(&fixed);
    let ldap = import.proxy_toml.split("[ldap]\n").nth(1).expect("[ldap]");
    let ldap: Vec<&str> = ldap.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(
        ldap,
        [
            r#"url = "ldaps://10.10.122.250:1636""#,
            r#"bind_dn = "cn=proxy,ou=profile,dc=domain,dc=com""#,
            r#"bind_password_file = "/ssl/pass""#,
            r#"base = "o=company1.com,dc=domain,dc=com""#,
            r#"filter = "(&(uid=${account})(objectClass=posixAccount))""#,
            r#"group_attribute = "gidNumber""#,
            r#"group_attribute_holds = "names""#,
        ]
    );
    assert_eq!(
        rule_lines(&import),
        [
            r#"{ group = "6000", actions = ["*"], comment = "If you are part of Ops group you can do anything." },"#
        ]
    );
    assert_eq!(import.htpasswd, None, "no static users");
    assert!(has_note(&import, "insecure_tls_skip_verify"));
    let rules = rules(&import);
    assert_eq!(
        rights(&rules, Some(("ops", &["6000"])), "any/thing"),
        Rights::ALL
    );
    assert_eq!(
        rights(&rules, Some(("dev", &["7000"])), "any/thing"),
        Rights::NONE
    );
    assert_eq!(rights(&rules, None, "any/thing"), Rights::NONE);
}

#[test]
fn yaml_errors_name_the_line() {
    let text = with("acl:\n  - match: {account: admin}\n   actions: [\"*\"]\n");
    match import(&text, &Options::default()) {
        Err(Error::Yaml { line, .. }) => assert_eq!(line, 5, "{text}"),
        other => panic!("expected a YAML error, got {other:?}"),
    }
    let text = with("acl:\n  - match: {account: [admin]}\n    actions: []\n");
    let e = import(&text, &Options::default()).expect_err("a list is no pattern");
    assert!(e.to_string().starts_with("line 4, column "), "{e}");
}

#[test]
fn unknown_keys_outside_match_are_noted() {
    let text = with("users: {}\nacl:\n  - match: {}\n    actions: []\n    coment: typo\nfoo: 1\n");
    let import = import_ok(&text);
    assert!(
        has_note(&import, "acl[1].coment: unknown key"),
        "{:?}",
        import.notes
    );
    assert!(has_note(&import, "foo: unknown key"), "{:?}", import.notes);
}

#[test]
fn an_entry_the_gate_cannot_express_is_dropped_only_when_that_cannot_widen() {
    let deny_then_allow = with(
        "users: {}\nacl:\n  - match: {account: bob, ip: 10.0.0.0/8}\n    actions: []\n  \
         - match: {account: \"/.+/\"}\n    actions: [pull]\n",
    );
    let e = refusal(&deny_then_allow);
    assert!(
        e.starts_with("acl[1]: the gate cannot express this entry"),
        "{e}"
    );
    assert!(e.contains("acl[2] grants pull beyond it"), "{e}");

    let allow_all_then_pull = deny_then_allow.replace("actions: []", "actions: [\"*\"]");
    let import = import_ok(&allow_all_then_pull);
    assert_eq!(
        rule_lines(&import),
        [r#"{ account = "*", actions = ["pull"] },"#]
    );
    assert!(
        has_note(&import, "acl[1]: left out: ip"),
        "{:?}",
        import.notes
    );

    let other_user_later = deny_then_allow.replace("\"/.+/\"", "carol");
    let import = import_ok(&other_user_later);
    assert_eq!(
        rule_lines(&import),
        [r#"{ account = "carol", actions = ["pull"] },"#]
    );
}

#[test]
fn globs_keep_star_within_a_segment_and_anonymous_where_docker_auth_had_it() {
    let text = with(
        "users: {\"\": {}}\nacl:\n  - match: {account: \"*\", name: \"team/*\"}\n    actions: [pull]\n",
    );
    let import = import_ok(&text);
    assert_eq!(
        rule_lines(&import),
        [
            r#"{ account = "/[^/]*/", name = "team/*", actions = ["pull"] },"#,
            r#"{ account = "anonymous", name = "team/*", actions = ["pull"] },"#,
        ]
    );
    let rules = rules(&import);
    let pull = Rights {
        pull: true,
        ..Rights::NONE
    };
    for (who, repository, expected) in [
        (Some("bob"), "team/app", pull),
        (Some("bob"), "team/app/sub", Rights::NONE),
        (Some("ci/bot"), "team/app", Rights::NONE),
        (None, "team/app", pull),
    ] {
        let user = who.map(|u| (u, &[][..]));
        assert_eq!(
            rights(&rules, user, repository),
            expected,
            "{who:?} {repository}"
        );
    }
}

#[test]
fn anonymous_entries_go_when_docker_auth_refused_anonymous_clients() {
    let text =
        with("users: {}\nacl:\n  - match: {account: \"\", name: public}\n    actions: [pull]\n");
    let import = import_ok(&text);
    assert_eq!(
        rule_lines(&import),
        ["{ actions = [] },"],
        "deny-all, not allow-all"
    );
    assert!(has_note(
        &import,
        "acl[1]: left out: docker_auth refused anonymous"
    ));
}

#[test]
fn regexes_search_anywhere_as_go_does() {
    let text = with("users: {}\nacl:\n  - match: {account: \"/adm/\"}\n    actions: [\"*\"]\n");
    let import = import_ok(&text);
    assert_eq!(
        rule_lines(&import),
        [r#"{ account = "/(?s:.*)(?:adm)(?s:.*)/", actions = ["*"] },"#]
    );
    let rules = rules(&import);
    assert_eq!(rights(&rules, Some(("sysadmin", &[])), "x"), Rights::ALL);
    assert_eq!(rights(&rules, Some(("bob", &[])), "x"), Rights::NONE);
}

#[test]
fn service_and_type_are_decided_once() {
    let text = with(
        "users: {}\nacl:\n  - match: {service: other, account: a}\n    actions: [\"*\"]\n  \
         - match: {type: registry, account: b}\n    actions: [\"*\"]\n  \
         - match: {type: \"repo*\", service: \"reg*\", account: c}\n    actions: [pull]\n",
    );
    let options = Options {
        service: Some("registry.example".into()),
    };
    let import = import(&text, &options).expect("import");
    assert_eq!(
        rule_lines(&import),
        [r#"{ account = "c", actions = ["pull"] },"#]
    );
    assert!(has_note(&import, "acl[1]: left out: service \"other\""));
    assert!(has_note(&import, "acl[2]: left out: type \"registry\""));
    let upper = with("users: {}\nacl:\n  - match: {name: Ubuntu}\n    actions: [pull]\n");
    let uppercase = import_ok(&upper);
    assert!(
        has_note(
            &uppercase,
            "acl[1]: left out: name \"Ubuntu\" never matches"
        ),
        "{:?}",
        uppercase.notes
    );
    assert!(import.proxy_toml.contains("service = \"registry.example\""));
    let deny_by_service = with(
        "users: {}\nacl:\n  - match: {service: other}\n    actions: []\n  \
         - match: {account: \"/.+/\"}\n    actions: [pull]\n",
    );
    let e = refusal(&deny_by_service);
    assert!(e.contains("pass --service"), "{e}");
}

#[test]
fn labels_become_groups_and_substitution() {
    let text = with(
        "users:\n  alice: {password: \"$2y$05$B.x046DV3bvuwFgn0I42F.W/SbRU5fUoCbCGtjFl7S33aCUHNBxbq\", \
         labels: {team: [web, ops]}}\nacl:\n  - match: {account: \"/.+/\", name: \"${labels:team}/*\"}\n    \
         actions: [pull, push]\n  - match: {labels: {team: ops}}\n    actions: [pull]\n",
    );
    let import = import_ok(&text);
    assert_eq!(
        rule_lines(&import),
        [
            r#"{ account = "*", name = "${group}/*", actions = ["pull", "push"] },"#,
            r#"{ group = "ops", actions = ["pull"] },"#,
        ]
    );
    assert!(import
        .proxy_toml
        .contains(r#"groups = { "ops" = ["alice"], "web" = ["alice"] }"#));
    let other_label = with(
        "users: {}\nacl:\n  - match: {labels: {site: eu}}\n    actions: []\n  \
         - match: {account: \"/.+/\"}\n    actions: [pull]\n",
    );
    let e = refusal(&other_label);
    assert!(e.starts_with("acl[1]: the gate cannot express"), "{e}");
    assert!(e.contains("labels.site"), "{e}");
}

#[test]
fn the_catalog_follows_docker_auth_first_match() {
    let text = with(
        "users: {}\nacl:\n  - match: {account: admin, name: ubuntu}\n    actions: [\"*\"]\n  \
         - match: {account: \"/.+/\", name: \"*\"}\n    actions: [pull]\n  \
         - match: {account: root}\n    actions: [\"*\"]\n",
    );
    let import = import_ok(&text);
    assert_eq!(
        rule_lines(&import),
        [
            r#"{ account = "admin", name = "ubuntu", actions = ["pull", "push", "delete"] },"#,
            r#"{ account = "*", name = "*", actions = ["pull"] },"#,
            r#"{ account = "root", actions = ["pull", "push", "delete"] },"#,
        ]
    );
    assert!(has_note(
        &import,
        "acl[3]: no catalog: docker_auth decided the catalog at acl[2]"
    ));
}

#[test]
fn users_that_cannot_be_carried_over() {
    let text = with(
        "users:\n  nopass: {}\n  plain: {password: secret}\nacl:\n  - match: {}\n    actions: [pull]\n",
    );
    let import = import_ok(&text);
    assert_eq!(import.htpasswd.as_deref(), Some(""));
    assert!(has_note(
        &import,
        "users[\"nopass\"]: not carried over: no password"
    ));
    assert!(has_note(
        &import,
        "users[\"plain\"]: not carried over: the password is not a bcrypt"
    ));
    let with_ldap = text.replace(
        "acl:",
        "ldap_auth: {addr: \"ldap:389\", base: \"dc=x\", filter: \"(uid=${account})\"}\nacl:",
    );
    let e = refusal(&with_ldap);
    assert!(e.starts_with("users[\"plain\"]"), "{e}");
}

#[test]
fn server_and_token_settings() {
    let cases = [
        ("server: {addr: \":5001\"}", "0.0.0.0:5001"),
        ("server: {addr: \"127.0.0.1:443\"}", "127.0.0.1:443"),
        ("server: {addr: \"[::]:8443\"}", "[::]:8443"),
        ("server: {addr: \"localhost:5001\"}", "127.0.0.1:5001"),
        ("server: {addr: \"auth.example:5001\"}", "127.0.0.1:5001"),
    ];
    for (server, expected) in cases {
        let text = format!(
            "{server}\ntoken: {{issuer: i, expiration: 30, certificate: t.pem, key: t.key}}\n\
             users: {{}}\nacl: []\n"
        );
        let import = import_ok(&text);
        let config = Config::from_toml_str(&import.proxy_toml).expect("config");
        assert_eq!(config.listen.addr.to_string(), expected, "{server}");
        assert_eq!(config.token.expect("token").expiration.0.as_secs(), 60);
        assert!(has_note(&import, "server: no certificate"), "{server}");
        assert!(
            has_note(&import, "relative paths (t.key, t.pem)"),
            "{:?}",
            import.notes
        );
    }
    for (text, key) in [
        (
            "server: {addr: \":1\"}\ntoken: {expiration: 9}\nusers: {}\nacl: []",
            "token.issuer",
        ),
        (
            "server: {addr: \":1\"}\ntoken: {issuer: i}\nusers: {}\nacl: []",
            "token.expiration",
        ),
        (
            "server: {addr: \":1\"}\ntoken: {issuer: i, expiration: 9}\nusers: {}\nacl: []",
            "token:",
        ),
        (
            "server: {net: unix, addr: /s}\ntoken: {issuer: i}\nacl: []",
            "server.net",
        ),
        (&with("users: {}\n"), "acl: missing"),
        (&with("acl: []\n"), "users, ldap_auth"),
        (
            &with("users: {}\nacl:\n  - actions: []\n"),
            "acl[1]: no `match`",
        ),
    ] {
        let e = refusal(text);
        assert!(e.starts_with(key), "{text}: {e}");
    }
}

#[test]
fn an_entry_without_actions_denies() {
    let text =
        with("users: {}\nacl:\n  - match: {account: bob}\n  - match: {}\n    actions: [pull]\n");
    let import = import_ok(&text);
    assert_eq!(
        rule_lines(&import),
        [
            r#"{ account = "bob", actions = [] },"#,
            r#"{ actions = ["pull"] },"#
        ]
    );
    assert!(has_note(&import, "acl[1]: no `actions`"));
}

#[test]
fn docker_auth_substitutes_before_telling_a_regex_from_a_glob() {
    // For anonymous clients "${account}/ubuntu/" is "/ubuntu/": a regex searching for
    // "ubuntu" anywhere. For users it would depend on the name, so that part is refused
    // (here it has none: account "" only matches anonymous clients).
    let text = with(
        "users: {\"\": {}}\nacl:\n  - match: {account: \"\", name: \"${account}/ubuntu/\"}\n    \
         actions: [pull]\n",
    );
    let import = import_ok(&text);
    assert_eq!(
        rule_lines(&import),
        [r#"{ account = "anonymous", name = "/(?s:.*)(?:ubuntu)(?s:.*)/", actions = ["pull"] },"#]
    );
    let rules = rules(&import);
    assert!(rights(&rules, None, "library/ubuntu-dev").pull);
    let for_users = text.replace("account: \"\", ", "");
    let e = refusal(&for_users.replace("[pull]", "[]\n  - match: {}\n    actions: [pull]"));
    assert!(e.contains("depends on the substituted value"), "{e}");
}
