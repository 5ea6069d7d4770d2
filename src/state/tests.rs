//! Tests of [`State::build`] and [`State::rebuild`] on files in a temp directory:
//! the htpasswd and group files mean the same at start and on reload, and a part
//! that fails on reload keeps its running value while the users apply.

use super::*;

/// `user:{PLAIN}password` lines (cheap to verify) for the users given.
fn plain(users: &[&str]) -> String {
    users.iter().map(|u| format!("{u}:{{PLAIN}}pw\n")).collect()
}

/// A temp directory with a certificate, an htpasswd file and a group file, and the
/// config that names them (plus `extra`).
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(htpasswd: &str, groups: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = tls::generate(&["localhost".to_string()]).expect("certificates");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write a test file")
        };
        write("server.crt", &certs.server_cert);
        write("server.key", &certs.server_key);
        write("htpasswd", htpasswd);
        write("groups", groups);
        Setup { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write a test file");
    }

    fn config(&self, extra: &str) -> Config {
        let p = |name: &str| self.path(name).display().to_string();
        let text = format!(
            "[listen]\naddr = \"127.0.0.1:0\"\n\
             [tls]\ncert = {:?}\nkey = {:?}\n\
             [upstream]\nurl = \"http://127.0.0.1:9\"\n\
             [auth]\nhtpasswd = {:?}\ngroups = {:?}\n{extra}",
            p("server.crt"),
            p("server.key"),
            p("htpasswd"),
            p("groups"),
        );
        Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }
}

fn users(state: &State) -> Vec<&str> {
    state.users.users().collect()
}

fn shown(state: &State) -> Vec<String> {
    let dir = |s: String| s.rsplit('/').next().unwrap_or_default().to_string();
    state
        .ignored_lines
        .iter()
        .map(|l| dir(l.to_string()))
        .collect()
}

fn metric(state: &State, name: &str) -> String {
    let text = state.metrics.render();
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .to_string()
}

#[test]
fn unusable_lines_cost_only_their_user_at_start_and_on_reload() {
    let htpasswd = "alice:{PLAIN}pw\nbob:{SMD5}abc\nno colon here\ncarol:{PLAIN}pw\n";
    let setup = Setup::new(htpasswd, "pushers: alice\nreaders alice\n");
    let start = State::build(&setup.config("")).expect("start builds");
    assert_eq!(users(&start), ["alice", "carol"]);
    assert_eq!(
        shown(&start),
        [
            "htpasswd:2: unsupported hash scheme \"{SMD5}\"",
            "htpasswd:3: missing ':' between user name and hash",
            "groups:2: no ':' after the group name",
        ]
    );
    assert_eq!(start.groups.of("alice"), ["pushers"]);
    assert_eq!(
        metric(&start, "registry_gate_htpasswd_ignored_lines "),
        "registry_gate_htpasswd_ignored_lines 2"
    );
    assert_eq!(
        metric(&start, "registry_gate_groups_ignored_lines "),
        "registry_gate_groups_ignored_lines 1"
    );

    // carol removed, dave added; the bad lines stay: the reload applies it all.
    setup.write(
        "htpasswd",
        &format!(
            "alice:{{PLAIN}}pw\nbob:{{SMD5}}abc\nno colon here\n{}",
            plain(&["dave"])
        ),
    );
    setup.write("groups", "readers alice\n");
    let Rebuilt { state, kept } = State::rebuild(&setup.config(""), &start);
    assert!(kept.is_empty(), "{kept:?}");
    assert_eq!(users(&state), ["alice", "dave"]);
    assert!(
        state.groups.of("alice").is_empty(),
        "the group line is gone"
    );
    assert_eq!(
        metric(&state, "registry_gate_groups_ignored_lines "),
        "registry_gate_groups_ignored_lines 1"
    );
}

#[test]
fn a_broken_part_keeps_its_running_value_and_the_users_still_apply() {
    let setup = Setup::new(&plain(&["alice", "bob"]), "pushers: alice bob\n");
    let extra = "[authz]\ngroups = { admins = [\"bob\"] }\n";
    let start = State::build(&setup.config(extra)).expect("start builds");
    let running_tls = start.tls.clone();

    // A garbage certificate, bob removed from both files and from [authz] groups.
    setup.write("server.crt", "garbage\n");
    setup.write("htpasswd", &plain(&["alice"]));
    setup.write("groups", "pushers: alice\n");
    let extra = "[authz]\ngroups = { admins = [\"alice\"] }\n";
    let Rebuilt { state, kept } = State::rebuild(&setup.config(extra), &start);
    let keys: Vec<_> = kept.iter().map(|k| k.key).collect();
    assert_eq!(keys, ["tls.cert"]);
    assert!(
        kept[0].error.to_string().contains("server.crt"),
        "{}",
        kept[0].error
    );
    assert!(
        Arc::ptr_eq(&state.tls, &running_tls),
        "the old certificate serves"
    );
    assert_eq!(users(&state), ["alice"]);
    assert!(state.groups.of("bob").is_empty());
    assert_eq!(state.groups.of("alice"), ["admins", "pushers"]);
}

#[test]
fn an_unreadable_user_file_keeps_the_running_users_on_reload_only() {
    let setup = Setup::new(&plain(&["alice"]), "pushers: alice\n");
    let start = State::build(&setup.config("")).expect("start builds");
    std::fs::remove_file(setup.path("htpasswd")).expect("remove");
    std::fs::remove_file(setup.path("groups")).expect("remove");
    let Rebuilt { state, kept } = State::rebuild(&setup.config(""), &start);
    let keys: Vec<_> = kept.iter().map(|k| k.key).collect();
    assert_eq!(keys, ["auth.htpasswd", "auth.groups"]);
    assert_eq!(users(&state), ["alice"]);
    assert_eq!(state.groups.of("alice"), ["pushers"]);
    let error = State::build(&setup.config("")).expect_err("start needs the file");
    assert_eq!(error.key(), "auth.htpasswd");
}

#[test]
fn broken_rules_keep_the_running_rules() {
    let setup = Setup::new(&plain(&["alice"]), "");
    let rules_file = setup.path("rules.toml");
    setup.write(
        "rules.toml",
        "rules = [{ account = \"alice\", actions = [\"pull\"] }]\n",
    );
    let extra = format!(
        "[authz]\nrules_file = {:?}\n",
        rules_file.display().to_string()
    );
    let start = State::build(&setup.config(&extra)).expect("start builds");
    setup.write("rules.toml", "");
    let Rebuilt { state, kept } = State::rebuild(&setup.config(&extra), &start);
    let keys: Vec<_> = kept.iter().map(|k| k.key).collect();
    assert_eq!(keys, ["authz.rules_file"]);
    assert_eq!(
        state.rules.as_ref().map(Rules::len),
        Some(1),
        "not every user allowed"
    );
}

/// A robots file with `ci` and one unusable line; an `[[oidc]]` issuer by discovery
/// and one by `jwks_file`.
fn machines(setup: &Setup) -> String {
    let rng = ring::rand::SystemRandom::new();
    let spec = crate::auth::robots::Spec {
        name: "ci".into(),
        repos: vec!["team/*".into()],
        actions: vec![crate::authz::access::Action::Pull],
        expires_in: None,
        description: String::new(),
    };
    let (text, _) =
        crate::auth::robots::create("", &spec, std::time::SystemTime::now(), &rng).expect("create");
    setup.write("robots.jsonl", &format!("not a robot\n{text}"));
    setup.write(
        "keys.json",
        r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
            "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
    );
    format!(
        "robots = {:?}\n\
         [[oidc]]\nissuer = \"https://token.actions.githubusercontent.com\"\naudience = \"gate\"\n\
         rules = [{{ claims = {{ repository = \"octo/*\" }}, user = \"ci\" }}]\n\
         [[oidc]]\nissuer = \"https://gitlab.example.com\"\naudience = \"gate\"\njwks_file = {:?}\n\
         rules = [{{ claims = {{ project_path = \"g/*\" }}, user = \"gl\" }}]\n",
        setup.path("robots.jsonl").display().to_string(),
        setup.path("keys.json").display().to_string(),
    )
}

#[test]
fn robots_and_oidc_issuers_are_built_and_a_reload_keeps_the_fetched_key_cache() {
    use crate::auth::oidc::keys::IssuerKeys;
    let setup = Setup::new(&plain(&["alice"]), "");
    let config = setup.config(&machines(&setup));
    let state = State::build(&config).expect("build");
    assert_eq!(state.robots.len(), 1);
    assert!(state.robots.get("ci").is_some());
    assert_eq!(
        shown(&state),
        vec!["robots.jsonl: line 1: not a robot entry (a JSON object on one line): expected ident at line 1 column 2"]
    );
    assert!(
        state
            .summary()
            .contains("1 users, 1 robots, 2 OIDC issuers"),
        "{}",
        state.summary()
    );
    assert!(state.watched_files.contains(&setup.path("robots.jsonl")));
    assert!(state.watched_files.contains(&setup.path("keys.json")));
    let (discovered, fixed) = (&state.oidc[0], &state.oidc[1]);
    let IssuerKeys::Discovered(cache) = &discovered.keys else {
        panic!("discovery expected: {discovered:?}")
    };
    assert!(matches!(&fixed.keys, IssuerKeys::Fixed(jwks) if jwks.get("k1").is_some()));
    let rebuilt = State::rebuild(&config, &state);
    assert!(rebuilt.kept.is_empty(), "{:?}", rebuilt.kept);
    let IssuerKeys::Discovered(again) = &rebuilt.state.oidc[0].keys else {
        panic!("discovery expected")
    };
    assert!(Arc::ptr_eq(cache, again), "the same issuer keeps its cache");
    // A broken key file on reload keeps the running issuers, and the robots still apply.
    setup.write("keys.json", "{}");
    setup.write("robots.jsonl", "");
    let rebuilt = State::rebuild(&config, &rebuilt.state);
    assert_eq!(rebuilt.kept.len(), 1, "{:?}", rebuilt.kept);
    assert!(rebuilt.state.oidc[1].keys.is_fixed_with("k1"));
    assert!(rebuilt.state.robots.is_empty(), "the robot removed is out");
}
