//! The real binary's `import docker-auth`: seed 001's auth_config.yml becomes a
//! proxy.toml that `check-config` accepts, and `acl explain` then decides as
//! docker_auth's ACL did (first match wins, `*` within a path segment, an empty
//! `actions` denying, anonymous clients as the account `""`).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::gate::{generate_certs, run, Certs};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/docker_auth")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn certs(dir: &Path) {
    generate_certs(dir, "certs", Certs::WithToken);
}

fn import(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["import", "docker-auth"];
    all.extend_from_slice(args);
    run(&all, dir)
}

/// `acl explain` on CONFIG: true when allowed (exit 0), false when denied (exit 1).
fn allowed(dir: &Path, config: &str, user: &str, repository: &str, action: &str) -> bool {
    let o = run(
        &[
            "--config", config, "acl", "explain", user, repository, action,
        ],
        dir,
    );
    match o.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!(
            "acl explain {user} {repository} {action}: exit {other:?}\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        ),
    }
}

/// Points the imported [tls] and [token] at the files `certs generate` wrote (the seed
/// names docker_auth's container paths, /ssl/server.pem and /ssl/server.key).
fn use_generated_certs(config: &Path, certs: &Path) {
    let mut table: toml::Table =
        toml::from_str(&std::fs::read_to_string(config).expect("read proxy.toml")).expect("TOML");
    let path = |name: &str| toml::Value::String(certs.join(name).display().to_string());
    let tls = table["tls"].as_table_mut().expect("[tls]");
    assert_eq!(tls["cert"].as_str(), Some("/ssl/server.pem"));
    tls.insert("cert".into(), path("server.crt"));
    tls.insert("key".into(), path("server.key"));
    let token = table["token"].as_table_mut().expect("[token]");
    assert_eq!(
        token["cert"].as_str(),
        Some("/ssl/server.pem"),
        "docker_auth signs with the server's pair when token has none"
    );
    token.insert("cert".into(), path("token.crt"));
    token.insert("key".into(), path("token.key"));
    std::fs::write(config, toml::to_string(&table).expect("TOML")).expect("write proxy.toml");
}

#[test]
fn seed001_imports_passes_check_config_and_decides_as_docker_auth() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs(dir.path());
    let seed = fixture("seed001.yml");
    let seed = seed.to_str().expect("utf-8 path");
    let o = import(dir.path(), &[seed, "--out", "gate"]);
    assert!(o.status.success(), "import: {}", text(&o.stderr));
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(
        stderr.contains("note: token.service = \"CHANGE-ME\""),
        "{stderr}"
    );
    assert!(
        stdout.contains("registry-gate --config gate/proxy.toml check-config"),
        "{stdout}"
    );
    let mode = std::fs::metadata(dir.path().join("gate/htpasswd"))
        .expect("htpasswd written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the htpasswd file holds hashes");

    let again = import(dir.path(), &[seed, "--out", "gate"]);
    assert_eq!(again.status.code(), Some(1), "no overwrite without --force");
    assert!(
        text(&again.stderr).contains("pass --force"),
        "{}",
        text(&again.stderr)
    );
    assert!(import(dir.path(), &[seed, "--out", "gate", "--force"])
        .status
        .success());

    use_generated_certs(
        &dir.path().join("gate/proxy.toml"),
        &dir.path().join("certs"),
    );
    let o = run(&["--config", "gate/proxy.toml", "check-config"], dir.path());
    assert!(o.status.success(), "check-config: {}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("# gate/proxy.toml: ok"),
        "{}",
        text(&o.stdout)
    );

    // (user, repository, action, what docker_auth's ACL of seed 001 decides)
    let cases = [
        // acl[1]: admin has full access to everything.
        ("admin", "ubuntu", "push", true),
        ("admin", "team/app/deep", "delete", true),
        ("admin", "_catalog", "catalog", true),
        // acl[2]: "hussien" (as the ACL spells it) gets everything on ubuntu only...
        ("hussien", "ubuntu", "push", true),
        ("hussien", "ubuntu", "delete", true),
        ("hussien", "debian", "push", false),
        ("hussien", "debian", "pull", true),
        // ...while the user "hussein" (as users spells it) only pulls, by acl[4].
        ("hussein", "ubuntu", "pull", true),
        ("hussein", "ubuntu", "push", false),
        // acl[3]: "test" is denied everything, though acl[4] lets users pull.
        ("test", "ubuntu", "pull", false),
        ("test", "hello-world", "pull", false),
        // acl[4]: any signed-in user pulls anything, and nothing more.
        ("alice", "library/alpine", "pull", true),
        ("alice", "library/alpine", "push", false),
        ("alice", "_catalog", "catalog", false),
        // acl[5]: anonymous clients pull hello-world, and nothing else.
        ("anonymous", "hello-world", "pull", true),
        ("anonymous", "ubuntu", "pull", false),
        ("anonymous", "hello-world", "push", false),
    ];
    for (user, repository, action, expected) in cases {
        assert_eq!(
            allowed(dir.path(), "gate/proxy.toml", user, repository, action),
            expected,
            "{user} {action} {repository}"
        );
    }
}

#[test]
fn star_stays_within_a_path_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs(dir.path());
    let yaml = "\
server: {addr: \":5001\", certificate: certs/server.crt, key: certs/server.key}
token: {issuer: gate, expiration: 300, certificate: certs/token.crt, key: certs/token.key}
users:
  alice: {password: \"$2y$05$B.x046DV3bvuwFgn0I42F.W/SbRU5fUoCbCGtjFl7S33aCUHNBxbq\"}
  \"\": {}
acl:
  - match: {name: \"team/*\"}
    actions: [pull]
";
    std::fs::write(dir.path().join("auth_config.yml"), yaml).expect("write");
    let o = import(
        dir.path(),
        &["auth_config.yml", "--service", "registry.example"],
    );
    assert!(o.status.success(), "import: {}", text(&o.stderr));
    let config = std::fs::read_to_string(dir.path().join("proxy.toml")).expect("proxy.toml");
    assert!(
        config.contains("service = \"registry.example\""),
        "{config}"
    );
    let o = run(&["check-config"], dir.path());
    assert!(o.status.success(), "check-config: {}", text(&o.stderr));
    for (user, repository, expected) in [
        ("alice", "team/app", true),
        ("alice", "team/app/sub", false),
        ("anonymous", "team/app", true),
        ("anonymous", "team/app/sub", false),
    ] {
        assert_eq!(
            allowed(dir.path(), "proxy.toml", user, repository, "pull"),
            expected,
            "{user} pull {repository}"
        );
    }
}

#[test]
fn seed004_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = fixture("seed004.yml");
    let o = import(dir.path(), &[seed.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("seed004.yml: acl[1].match: unknown condition \"gidNumber\""),
        "{stderr}"
    );
    assert!(!dir.path().join("proxy.toml").exists());
}

#[test]
fn unreadable_or_invalid_input_exits_64_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = import(dir.path(), &["missing.yml"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(
        text(&o.stderr).contains("cannot read missing.yml"),
        "{}",
        text(&o.stderr)
    );

    std::fs::write(
        dir.path().join("bad.yml"),
        "server:\n  addr: \":5001\"\n bad: [\n",
    )
    .expect("write");
    let o = import(dir.path(), &["bad.yml"]);
    assert_eq!(o.status.code(), Some(64));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("bad.yml: line 3, column"), "{stderr}");
}
