//! `[[oidc]]` and `auth.robots`.

use super::super::*;

const BASE: &str = r#"
[tls]
cert = "certs/server.crt"
key = "certs/server.key"

[upstream]
url = "http://127.0.0.1:5000"

[auth]
robots = "robots.jsonl"
"#;

const GITHUB: &str = r#"
[[oidc]]
issuer = "https://token.actions.githubusercontent.com"
audience = "registry.example.com"
rules = [
  { claims = { repository = "octo-org/*", ref = "refs/heads/main" }, user = "ci-${claim.repository}", groups = ["pushers"] },
]
"#;

fn err(text: &str) -> String {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn robots_alone_or_an_issuer_alone_is_a_user_database() {
    let c = Config::from_toml_str(BASE).expect("robots only");
    assert_eq!(c.auth.robots.as_deref(), Some(Path::new("robots.jsonl")));
    let text = format!(
        "{}\n{GITHUB}",
        BASE.replace("robots = \"robots.jsonl\"", "")
    );
    let c = Config::from_toml_str(&text).expect("oidc only");
    let issuer = &c.oidc[0];
    assert_eq!(
        issuer.issuer.0,
        "https://token.actions.githubusercontent.com"
    );
    assert_eq!(issuer.username.0, "oidc");
    assert_eq!(issuer.max_lifetime.0, Duration::from_secs(3600));
    assert!(issuer.jwks_file.is_none() && issuer.ca.is_none());
    assert_eq!(issuer.rules.len(), 1);
    let printed = toml::to_string(&c).expect("serialize");
    assert!(printed.contains("[[oidc]]"), "{printed}");
    assert!(
        printed.contains("user = \"ci-${claim.repository}\""),
        "{printed}"
    );
    let again = Config::from_toml_str(&printed).expect("what check-config prints reads back");
    assert_eq!(again.oidc[0].issuer, issuer.issuer);
}

#[test]
fn oidc_values_are_checked_where_they_are_written() {
    let bad = |from: &str, to: &str| err(&format!("{BASE}{}", GITHUB.replace(from, to)));
    let e = bad(
        "\"https://token.actions.githubusercontent.com\"",
        "\"http://token.actions.githubusercontent.com\"",
    );
    assert!(
        e.contains("line 13, column 10") && e.contains("is not an https:// issuer URL"),
        "{e}"
    );
    let e = bad("audience = \"registry.example.com\"", "audience = \" \"");
    assert!(
        e.contains("line 14") && e.contains("must not be empty"),
        "{e}"
    );
    let e = bad(
        "user = \"ci-${claim.repository}\"",
        "user = \"ci-${account}\"",
    );
    assert!(
        e.contains("line 16, column 3: oidc.rules: ")
            && e.contains("only `${claim.NAME}` can be substituted"),
        "{e}"
    );
    let e = bad("rules = [", "username = \"robot$x\"\nrules = [");
    assert!(
        e.contains("line 15") && e.contains("names are robots'"),
        "{e}"
    );
    let e = bad("rules = [", "max_lifetime = \"48h\"\nrules = [");
    assert!(
        e.contains("line 15") && e.contains("from \"1s\" to \"24h\""),
        "{e}"
    );
    let e = bad("rules = [", "secret = \"x\"\nrules = [");
    assert!(e.contains("unknown field `secret`"), "{e}");
}

#[test]
fn issuers_need_rules_one_table_each_and_not_both_a_file_and_a_ca() {
    let no_rules = GITHUB.replace(
        "rules = [\n  { claims = { repository = \"octo-org/*\", ref = \"refs/heads/main\" }, user = \"ci-${claim.repository}\", groups = [\"pushers\"] },\n]",
        "rules = []",
    );
    assert!(err(&format!("{BASE}{no_rules}")).contains(
        "oidc: issuer https://token.actions.githubusercontent.com has no rules: no token of it could log in"
    ));
    let e = err(&format!("{BASE}{GITHUB}{GITHUB}"));
    assert!(
        e.contains("has two [[oidc]] tables; merge their rules into one"),
        "{e}"
    );
    let both = GITHUB.replace(
        "rules = [",
        "jwks_file = \"k.json\"\nca = \"ca.pem\"\nrules = [",
    );
    assert!(err(&format!("{BASE}{both}")).contains("`ca` is for discovery over HTTPS"));
}

#[test]
fn no_user_database_at_all_is_refused() {
    let e = err(&BASE.replace("robots = \"robots.jsonl\"", ""));
    assert!(
        e.contains("auth.htpasswd: missing: set auth.htpasswd, an [ldap] section, or both (or, for machines only, auth.robots or [[oidc]] issuers)"),
        "{e}"
    );
}

#[test]
fn relative_robot_and_key_files_resolve_against_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{BASE}{}",
        GITHUB.replace("rules = [", "jwks_file = \"keys/gh.json\"\nrules = [")
    );
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, text).expect("write");
    let c = Config::load(&path).expect("load");
    assert_eq!(c.auth.robots, Some(dir.path().join("robots.jsonl")));
    assert_eq!(c.oidc[0].jwks_file, Some(dir.path().join("keys/gh.json")));
}

#[test]
fn oidc_cannot_come_from_the_environment() {
    let direct = env::overrides([("REGISTRY_GATE_OIDC_ISSUER", "https://x")]).unwrap_err();
    assert!(
        direct
            .to_string()
            .contains("[[oidc]] cannot be set from the environment"),
        "{direct}"
    );
    let robots =
        env::overrides([("REGISTRY_GATE_AUTH_ROBOTS", "/etc/gate/robots")]).expect("robots");
    let c = Config::from_toml_str_with(BASE, &robots).expect("override");
    assert_eq!(
        c.auth.robots.as_deref(),
        Some(Path::new("/etc/gate/robots"))
    );
}
