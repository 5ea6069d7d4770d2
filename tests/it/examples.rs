//! The deployment examples (`examples/compose`, `examples/sidecar`, `examples/elb`) and the
//! `Dockerfile`. No Docker engine or cluster runs here, so each file is held to what it
//! promises: every YAML file parses with `yaml_serde` (the parser `import docker-auth` uses)
//! and the facts are checked in Rust on the parsed structure; every gate config passes the real binary's
//! `check-config`, run the way its deployment runs it: with the container's environment
//! overrides, and with the certificate, key and htpasswd files it names created (by
//! `certs generate` and `htpasswd add`) where the deployment's volumes put them.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::support::gate::BIN;
use crate::support::process::{run_bounded, run_bounded_with_stdin};

/// Longest any one command of these tests may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Prefix of the gate's override variables.
const ENV_PREFIX: &str = "REGISTRY_GATE_";
/// The config keys that name files (`REGISTRY_GATE_<SECTION>_<KEY>` overrides each), and
/// what the test puts there.
const FILE_KEYS: &[(&str, &str, Fixture)] = &[
    ("tls", "cert", Fixture::Cert),
    ("tls", "key", Fixture::Key),
    ("auth", "htpasswd", Fixture::Htpasswd),
    ("upstream", "ca", Fixture::Ca),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn examples() -> PathBuf {
    repo().join("examples")
}

/// Every file under `dir` whose name ends with one of `suffixes`, sorted.
fn files_under(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if suffixes.iter().any(|s| path.to_string_lossy().ends_with(s)) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The documents of a YAML file, as JSON values (empty documents dropped).
fn load_yaml(path: &Path) -> Vec<Value> {
    let text = read(path);
    let docs: Vec<Value> = yaml_serde::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: not valid YAML: {e}", path.display()))
        })
        .collect();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, found {v}"))
}

/// A YAML scalar as the text a container would see (`5000` and `"5000"` alike).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn port_of(v: &Value, what: &str) -> u16 {
    scalar(v)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: expected a port number, found {v}"))
}

fn seconds(text: &str, what: &str) -> Duration {
    humantime::parse_duration(text).unwrap_or_else(|e| panic!("{what}: {text:?}: {e}"))
}

/// The value after `--config` in a command line, if any.
fn config_flag(args: &[String]) -> Option<PathBuf> {
    args.iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
}

fn string_list(v: &Value, what: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what}: expected a list, found {v}"))
        .iter()
        .map(|a| str_of(a, what).to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

/// One instruction of a Dockerfile: keyword (upper case) and its arguments.
struct Instruction {
    keyword: String,
    args: String,
}

/// One build stage: its `FROM` arguments and the instructions after it.
struct Stage {
    from: String,
    instructions: Vec<Instruction>,
}

impl Stage {
    /// The name after `AS`, if any.
    fn name(&self) -> Option<&str> {
        let words: Vec<&str> = self.from.split_whitespace().collect();
        words
            .iter()
            .position(|w| w.eq_ignore_ascii_case("as"))
            .and_then(|i| words.get(i + 1).copied())
    }

    /// The base image: the first argument of `FROM` that is not a `--flag`.
    fn image(&self) -> &str {
        self.from
            .split_whitespace()
            .find(|w| !w.starts_with("--"))
            .expect("FROM names an image")
    }

    fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
            .map(|i| i.args.as_str())
    }

    /// The JSON (exec) form of the last `keyword` instruction.
    fn exec_form(&self, keyword: &str) -> Vec<String> {
        let args = self
            .all(keyword)
            .last()
            .unwrap_or_else(|| panic!("the final stage has no {keyword}"));
        serde_json::from_str(args)
            .unwrap_or_else(|e| panic!("{keyword} {args}: not the exec (JSON) form: {e}"))
    }
}

/// The stages of the repository's `Dockerfile`, continuation lines joined.
fn dockerfile() -> Vec<Stage> {
    let text = read(&repo().join("Dockerfile"));
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical.iter().filter(|l| !l.is_empty()) {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let (keyword, args) = (keyword.to_ascii_uppercase(), args.trim().to_owned());
        if keyword == "FROM" {
            stages.push(Stage {
                from: args,
                instructions: Vec::new(),
            });
        } else {
            let stage = stages
                .last_mut()
                .unwrap_or_else(|| panic!("Dockerfile: {keyword} before the first FROM"));
            stage.instructions.push(Instruction { keyword, args });
        }
    }
    stages
}

/// Where the image's default command reads its configuration (`CMD [..., "--config", PATH]`).
fn image_config_path() -> PathBuf {
    let stages = dockerfile();
    let last = stages.last().expect("a stage");
    config_flag(&last.exec_form("CMD")).expect("the image's CMD passes --config")
}

#[test]
fn dockerfile_runs_the_built_binary_as_non_root() {
    let stages = dockerfile();
    assert!(stages.len() >= 2, "a multi-stage build");
    let last = stages.last().expect("a stage");

    // Non-root: the last USER of the final stage names neither root nor 0, and there is
    // one, or the base is a :nonroot image.
    let user = last.all("USER").last().map(|u| {
        let name = u.split(':').next().unwrap_or(u).trim();
        assert!(
            name != "root" && name != "0",
            "final stage USER {u} is root"
        );
        name.to_owned()
    });
    assert!(
        user.is_some() || last.image().ends_with(":nonroot"),
        "final stage ({}) has no USER and is not a :nonroot image",
        last.image()
    );

    // The ENTRYPOINT is the file a COPY --from=<build stage> puts there, and that stage
    // builds it with `cargo build --release --locked` and copies it to the COPY's source.
    let entrypoint = last.exec_form("ENTRYPOINT");
    let binary = entrypoint.first().expect("ENTRYPOINT names the binary");
    let copy = last
        .all("COPY")
        .find(|c| c.split_whitespace().last() == Some(binary.as_str()))
        .unwrap_or_else(|| panic!("no COPY in the final stage puts the binary at {binary}"));
    let words: Vec<&str> = copy.split_whitespace().collect();
    let from = words
        .iter()
        .find_map(|w| w.strip_prefix("--from="))
        .unwrap_or_else(|| panic!("COPY {copy}: not from the build stage"));
    let source = words[words.len() - 2];
    let build = stages
        .iter()
        .find(|s| s.name() == Some(from))
        .unwrap_or_else(|| panic!("no stage named {from}"));
    let runs: Vec<&str> = build.all("RUN").collect();
    let producer = runs
        .iter()
        .find(|r| r.contains("cargo build") && r.contains(source))
        .unwrap_or_else(|| panic!("no RUN of stage {from} builds and writes {source}: {runs:?}"));
    assert!(
        producer.contains("--release") && producer.contains("--locked"),
        "{producer}"
    );
    assert!(
        producer.contains("target/release/registry-gate"),
        "{producer}"
    );

    let cmd = last.exec_form("CMD");
    assert_eq!(cmd.first().map(String::as_str), Some("serve"), "{cmd:?}");
    assert!(config_flag(&cmd).is_some(), "CMD passes --config: {cmd:?}");
    let exposed: Vec<&str> = last.all("EXPOSE").flat_map(str::split_whitespace).collect();
    for port in ["5043", "9143"] {
        assert!(exposed.contains(&port), "EXPOSE {port}: {exposed:?}");
    }
}

/// Whether the `.dockerignore` pattern `pattern` matches `path` or a directory above it,
/// with Docker's rules: `*` within one path element, `**` for any number of them.
fn docker_ignores(pattern: &str, path: &str) -> bool {
    fn element(p: &str, s: &str) -> bool {
        match p.split_once('*') {
            None => p == s,
            Some((head, tail)) => {
                s.starts_with(head) && (head.len()..=s.len()).any(|i| element(tail, &s[i..]))
            }
        }
    }
    fn elements(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"**"), _) => elements(&p[1..], s) || (!s.is_empty() && elements(p, &s[1..])),
            (Some(pe), Some(se)) => element(pe, se) && elements(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    (1..=s.len()).any(|n| elements(&p, &s[..n]))
}

#[test]
fn dockerignore_keeps_what_the_build_reads() {
    let patterns: Vec<String> = read(&repo().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert!(
        patterns.iter().all(|p| !p.starts_with('!')),
        "exceptions are not modelled here: {patterns:?}"
    );
    for ignored in ["target", ".git", "fuzz/target/debug", "certs/server.key"] {
        assert!(
            patterns.iter().any(|p| docker_ignores(p, ignored)),
            "{ignored} is sent to the docker daemon"
        );
    }
    // cargo reads every target the manifest declares, not just the binary's sources.
    let manifest: toml::Table = toml::from_str(&read(&repo().join("Cargo.toml"))).expect("TOML");
    let mut needed = vec![
        "Cargo.toml".to_owned(),
        "Cargo.lock".to_owned(),
        "src/main.rs".to_owned(),
        "src/lib.rs".to_owned(),
    ];
    for bench in manifest["bench"].as_array().expect("[[bench]]") {
        needed.push(format!(
            "benches/{}.rs",
            bench["name"].as_str().expect("name")
        ));
    }
    for test in manifest["test"].as_array().expect("[[test]]") {
        needed.push(test["path"].as_str().expect("path").to_owned());
    }
    for path in &needed {
        assert!(repo().join(path).exists(), "{path}");
        for p in &patterns {
            assert!(!docker_ignores(p, path), ".dockerignore {p} drops {path}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running check-config the way a deployment does

/// The files a config names, made once per check.
#[derive(Clone, Copy)]
enum Fixture {
    Cert,
    Key,
    Htpasswd,
    Ca,
}

/// A volume mount as the container sees it.
struct Mount {
    target: PathBuf,
    read_only: bool,
    /// The files it holds, where the manifest says (a ConfigMap's keys).
    files: Option<Vec<String>>,
}

/// How a deployment runs the gate.
struct Deployment {
    /// For messages.
    name: String,
    /// The config file's text.
    config_text: String,
    /// Where the container sees the config file (absolute).
    config_at: PathBuf,
    /// The container's mounts; `None` outside a container.
    mounts: Option<Vec<Mount>>,
    /// The container's environment.
    env: Vec<(String, String)>,
}

/// `path` below `root`, for an absolute container path.
fn under(root: &Path, path: &Path) -> PathBuf {
    let mut out = root.to_path_buf();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    under(Path::new("/"), path)
}

/// Runs `check-config` on the deployment's config: its environment applied, and each file it
/// names (which must lie in a read-only mount, in a container) created in a temporary copy of
/// the container's file system. Returns the resolved config it prints.
fn check_config(dep: &Deployment) -> toml::Table {
    let name = &dep.name;
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = tmp.path().join("fs");
    let made = tmp.path().join("made");

    let mut command = Command::new(BIN);
    command
        .args(["certs", "generate", "--san", "localhost", "--out"])
        .arg(made.join("certs"));
    run_bounded(command, "registry-gate", TIMEOUT).expect_success();
    let mut command = Command::new(BIN);
    command
        .args(["htpasswd", "add", "--cost", "4", "--file"])
        .arg(made.join("htpasswd"))
        .arg("alice");
    run_bounded_with_stdin(command, "registry-gate", Some("pw\n"), TIMEOUT).expect_success();

    let config: toml::Table = toml::from_str(&dep.config_text)
        .unwrap_or_else(|e| panic!("{name}: the config is not TOML: {e}"));
    let config_dir = dep
        .config_at
        .parent()
        .expect("the config is in a directory");
    let mounted = |path: &Path, what: &str| {
        if let Some(mounts) = &dep.mounts {
            let mount = mounts
                .iter()
                .filter(|m| path.starts_with(&m.target))
                .max_by_key(|m| m.target.components().count())
                .unwrap_or_else(|| {
                    panic!("{name}: {what} {} is in no volume mount", path.display())
                });
            assert!(
                mount.read_only,
                "{name}: {what} is in a writable mount at {}",
                mount.target.display()
            );
            if let Some(files) = &mount.files {
                let file = path.strip_prefix(&mount.target).expect("under the mount");
                assert!(
                    files.iter().any(|f| Path::new(f) == file),
                    "{name}: {what} {} is not among the files of its mount: {files:?}",
                    path.display()
                );
            }
        }
    };
    mounted(&dep.config_at, "the config file");
    let config_file = under(&fs, &dep.config_at);
    std::fs::create_dir_all(config_file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&config_file, &dep.config_text).expect("write the config");

    let mut env: Vec<(String, String)> = dep
        .env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != "REGISTRY_GATE_CONFIG")
        .cloned()
        .collect();
    for (section, key, fixture) in FILE_KEYS {
        let var = format!("{ENV_PREFIX}{section}_{key}").to_ascii_uppercase();
        let named = env
            .iter()
            .find(|(k, _)| *k == var)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                config
                    .get(*section)
                    .and_then(|s| s.get(*key))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            });
        let Some(named) = named else { continue };
        let in_container = normalize(&config_dir.join(&named));
        mounted(&in_container, &format!("{section}.{key}"));
        let host = under(&fs, &in_container);
        let source = match fixture {
            Fixture::Cert => made.join("certs/server.crt"),
            Fixture::Key => made.join("certs/server.key"),
            Fixture::Htpasswd => made.join("htpasswd"),
            Fixture::Ca => made.join("certs/ca.crt"),
        };
        std::fs::create_dir_all(host.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&source, &host).expect("copy a fixture file");
        env.retain(|(k, _)| *k != var);
        env.push((var, host.to_string_lossy().into_owned()));
    }

    let mut command = Command::new(BIN);
    command
        .arg("check-config")
        .arg("--config")
        .arg(&config_file)
        .current_dir(tmp.path())
        .env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with(ENV_PREFIX) {
            command.env_remove(k);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let run = run_bounded(command, "registry-gate", TIMEOUT);
    assert!(
        run.status.success(),
        "{name}: check-config failed ({}) with env {env:?}:\n{}",
        run.status,
        run.stderr
    );
    toml::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{name}: check-config printed no TOML: {e}\n{}", run.stdout))
}

fn resolved_str<'a>(resolved: &'a toml::Table, section: &str, key: &str) -> &'a str {
    resolved[section][key]
        .as_str()
        .unwrap_or_else(|| panic!("resolved {section}.{key} is not a string"))
}

fn resolved_addr(resolved: &toml::Table, section: &str) -> SocketAddr {
    resolved_str(resolved, section, "addr")
        .parse()
        .unwrap_or_else(|e| panic!("resolved {section}.addr: {e}"))
}

fn resolved_grace(resolved: &toml::Table) -> Duration {
    seconds(
        resolved_str(resolved, "shutdown", "grace_period"),
        "shutdown.grace_period",
    )
}

// ---------------------------------------------------------------------------------------------
// Every file

#[test]
fn every_yaml_file_under_examples_parses() {
    let files = files_under(&examples(), &[".yml", ".yaml"]);
    assert!(files.len() >= 2, "compose and sidecar: {files:?}");
    for file in files {
        let docs = load_yaml(&file);
        assert!(!docs.is_empty(), "{}: no documents", file.display());
        for doc in docs {
            assert!(
                doc.is_object(),
                "{}: a document is not a map",
                file.display()
            );
        }
    }
}

#[test]
fn every_config_under_examples_passes_check_config() {
    let files = files_under(&examples(), &[".toml"]);
    assert!(files.len() >= 3, "compose, elb, elb nlb: {files:?}");
    for file in files {
        let name = file.file_name().expect("file name");
        check_config(&Deployment {
            name: file.display().to_string(),
            config_text: read(&file),
            config_at: Path::new("/etc/registry-gate").join(name),
            mounts: None,
            env: Vec::new(),
        });
    }
}

// ---------------------------------------------------------------------------------------------
// docker compose

/// A port of a compose service: `[[IP:]PUBLISHED:]TARGET` or the long form.
#[derive(Debug)]
struct Port {
    host_ip: Option<String>,
    published: Option<u16>,
    target: u16,
}

fn compose_ports(service: &Value, what: &str) -> Vec<Port> {
    let Some(list) = service.get("ports") else {
        return Vec::new();
    };
    let list = list
        .as_array()
        .unwrap_or_else(|| panic!("{what}.ports is not a list"));
    list.iter()
        .map(|p| {
            if p.is_object() {
                return Port {
                    host_ip: p.get("host_ip").and_then(scalar),
                    published: p.get("published").map(|v| port_of(v, what)),
                    target: port_of(&p["target"], what),
                };
            }
            let text = scalar(p).unwrap_or_else(|| panic!("{what}: port {p}"));
            let text = text.split('/').next().unwrap_or(&text).to_owned();
            let mut parts: Vec<&str> = text.rsplitn(3, ':').collect();
            parts.reverse();
            let num = |s: &str| -> u16 {
                s.parse()
                    .unwrap_or_else(|_| panic!("{what}: port {text:?}"))
            };
            match parts.as_slice() {
                [target] => Port {
                    host_ip: None,
                    published: None,
                    target: num(target),
                },
                [published, target] => Port {
                    host_ip: None,
                    published: Some(num(published)),
                    target: num(target),
                },
                [ip, published, target] => Port {
                    host_ip: Some(ip.trim_matches(['[', ']']).to_owned()),
                    published: Some(num(published)),
                    target: num(target),
                },
                _ => unreachable!("rsplitn(3) gives 1 to 3 parts"),
            }
        })
        .collect()
}

/// A compose volume: its source (a path or a named volume) and the mount.
fn compose_volumes(service: &Value, what: &str) -> Vec<(String, Mount)> {
    let Some(list) = service.get("volumes") else {
        return Vec::new();
    };
    list.as_array()
        .unwrap_or_else(|| panic!("{what}.volumes is not a list"))
        .iter()
        .map(|v| {
            if v.is_object() {
                let source = v.get("source").and_then(scalar).unwrap_or_default();
                let mount = Mount {
                    target: PathBuf::from(str_of(&v["target"], what)),
                    read_only: v.get("read_only").and_then(Value::as_bool) == Some(true),
                    files: None,
                };
                return (source, mount);
            }
            let text = str_of(v, what);
            let parts: Vec<&str> = text.split(':').collect();
            assert!(parts.len() >= 2, "{what}: volume {text:?} has no target");
            let mode = parts.get(2).copied().unwrap_or("");
            let mount = Mount {
                target: PathBuf::from(parts[1]),
                read_only: mode.split(',').any(|m| m == "ro"),
                files: None,
            };
            (parts[0].to_owned(), mount)
        })
        .collect()
}

/// `environment:` as a map or as a list of `NAME=value`.
fn compose_env(service: &Value) -> Vec<(String, String)> {
    match service.get("environment") {
        Some(Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| scalar(v).map(|v| (k.clone(), v)))
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        _ => Vec::new(),
    }
}

fn command_line(v: Option<&Value>, what: &str) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(s.split_whitespace().map(str::to_owned).collect()),
        other => Some(string_list(other, what)),
    }
}

fn image_of(service: &Value) -> &str {
    service.get("image").and_then(Value::as_str).unwrap_or("")
}

#[test]
fn compose_publishes_only_the_gate_on_5043_and_its_config_checks() {
    let dir = examples().join("compose");
    let docs = load_yaml(&dir.join("docker-compose.yml"));
    assert_eq!(docs.len(), 1, "one compose document");
    let services = docs[0]["services"]
        .as_object()
        .expect("docker-compose.yml has services");

    let (gate_name, gate) = services
        .iter()
        .find(|(_, s)| image_of(s).starts_with("registry-gate"))
        .expect("a service runs the registry-gate image");
    let (registry_name, registry) = services
        .iter()
        .find(|(_, s)| image_of(s).starts_with("registry:2"))
        .expect("a service runs registry:2");

    // The registry is reachable only through the gate; the gate only on 5043 (the recipe's
    // port), anything else it publishes only on the host's loopback.
    let registry_ports = compose_ports(registry, registry_name);
    assert!(
        registry_ports.is_empty(),
        "{registry_name} publishes {registry_ports:?}"
    );
    let ports = compose_ports(gate, gate_name);
    let public: Vec<&Port> = ports
        .iter()
        .filter(|p| p.host_ip.as_deref() != Some("127.0.0.1"))
        .collect();
    assert_eq!(public.len(), 1, "{gate_name} publishes {ports:?}");
    assert_eq!((public[0].published, public[0].target), (Some(5043), 443));
    assert!(
        ports.iter().all(|p| p.published.is_some()),
        "no random host ports: {ports:?}"
    );
    assert_eq!(gate["restart"].as_str(), Some("always"));
    assert!(
        gate["depends_on"]
            .to_string()
            .contains(registry_name.as_str()),
        "{gate_name} depends on {registry_name}, so compose stops the gate first"
    );

    // The config: what the service mounts where the image's command reads it.
    let config_at = command_line(gate.get("command"), gate_name)
        .and_then(|c| config_flag(&c))
        .unwrap_or_else(image_config_path);
    let volumes = compose_volumes(gate, gate_name);
    let (source, target) = volumes
        .iter()
        .find_map(|(source, m)| {
            config_at.strip_prefix(&m.target).ok().map(|rest| {
                let source = dir.join(source);
                let file = match rest.as_os_str().is_empty() {
                    true => source,
                    false => source.join(rest),
                };
                (file, m.target.clone())
            })
        })
        .unwrap_or_else(|| panic!("nothing is mounted at {}", config_at.display()));
    assert!(
        source.is_file(),
        "{} (mounted at {}) is not in examples/compose",
        source.display(),
        target.display()
    );
    let resolved = check_config(&Deployment {
        name: format!("compose service {gate_name}"),
        config_text: read(&source),
        config_at: config_at.clone(),
        mounts: Some(volumes.into_iter().map(|(_, m)| m).collect()),
        env: compose_env(gate),
    });

    assert_eq!(resolved_addr(&resolved, "listen").port(), public[0].target);
    assert_eq!(
        resolved_str(&resolved, "upstream", "url"),
        format!("http://{registry_name}:5000"),
        "the registry service on the compose network"
    );
    let admin = resolved_addr(&resolved, "admin");
    for p in ports.iter().filter(|p| p.target != public[0].target) {
        assert_eq!(p.target, admin.port(), "{p:?} is the admin listener");
        assert!(
            admin.ip().is_unspecified(),
            "a published admin port needs [admin] addr on 0.0.0.0, not {admin}"
        );
    }
    let stop = seconds(
        gate["stop_grace_period"]
            .as_str()
            .expect("the gate sets stop_grace_period (docker's default is 10 s)"),
        "stop_grace_period",
    );
    assert!(
        stop > resolved_grace(&resolved),
        "stop_grace_period {stop:?} must exceed the drain"
    );
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

fn by_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// A container port given by number or by name.
fn container_port(container: &Value, port: &Value, what: &str) -> u16 {
    if let Some(name) = port.as_str().filter(|s| s.parse::<u16>().is_err()) {
        let found = container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{what}: no container port named {name}"));
        return port_of(&found["containerPort"], what);
    }
    port_of(port, what)
}

fn k8s_env(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?.to_owned(), scalar(&e["value"])?)))
        .collect()
}

#[test]
fn sidecar_probes_the_admin_port_runs_non_root_and_outlasts_the_drain() {
    let docs = load_yaml(&examples().join("sidecar/registry.yaml"));
    let workloads = by_kind(&docs, "Deployment");
    assert_eq!(workloads.len(), 1, "one Deployment");
    let template = &workloads[0]["spec"]["template"];
    let pod = &template["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    let gate = containers
        .iter()
        .find(|c| str_of(&c["image"], "image").contains("registry-gate"))
        .expect("a registry-gate container");
    let registry = containers
        .iter()
        .find(|c| str_of(&c["image"], "image").starts_with("registry:2"))
        .expect("a registry:2 container");

    // The registry listens on the pod's loopback only, and the gate forwards there.
    let registry_addr = k8s_env(registry)
        .into_iter()
        .find(|(k, _)| k == "REGISTRY_HTTP_ADDR")
        .map(|(_, v)| v)
        .expect("the registry sets REGISTRY_HTTP_ADDR");
    let registry_addr: SocketAddr = registry_addr.parse().expect("REGISTRY_HTTP_ADDR");
    assert!(registry_addr.ip().is_loopback(), "{registry_addr}");
    assert!(
        registry["ports"].is_null(),
        "the registry declares no container port"
    );

    // The config: the ConfigMap key mounted where the gate's args read it, checked with the
    // container's env and the Secrets' files where their mounts put them.
    let config_at = command_line(gate.get("args"), "args")
        .and_then(|a| config_flag(&a))
        .unwrap_or_else(image_config_path);
    let volumes = pod["volumes"].as_array().expect("volumes");
    let volume = |name: &Value| {
        volumes
            .iter()
            .find(|v| v["name"] == *name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    let mounts = gate["volumeMounts"]
        .as_array()
        .expect("the gate mounts volumes");
    let config_mount = mounts
        .iter()
        .find(|m| config_at.starts_with(str_of(&m["mountPath"], "mountPath")))
        .unwrap_or_else(|| panic!("nothing is mounted at {}", config_at.display()));
    let config_map = &volume(&config_mount["name"])["configMap"]["name"];
    assert!(config_map.is_string(), "the config comes from a ConfigMap");
    let key = config_at
        .strip_prefix(str_of(&config_mount["mountPath"], "mountPath"))
        .expect("under the mount")
        .to_string_lossy()
        .into_owned();
    let config_maps = by_kind(&docs, "ConfigMap");
    let config_text = config_maps
        .iter()
        .find(|c| c["metadata"]["name"] == *config_map)
        .and_then(|c| c["data"][&key].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no ConfigMap {config_map} with key {key}"));
    let config_map_keys = |name: &Value| {
        let data = &config_maps
            .iter()
            .find(|c| c["metadata"]["name"] == *name)?["data"];
        Some(data.as_object()?.keys().cloned().collect::<Vec<_>>())
    };
    for m in mounts {
        let v = volume(&m["name"]);
        assert!(
            v["secret"].is_object() || v["configMap"].is_object(),
            "the gate mounts only Secrets and ConfigMaps: {v}"
        );
        assert!(
            m["subPath"].is_null(),
            "subPath mounts never see updates: {m}"
        );
    }
    let resolved = check_config(&Deployment {
        name: "sidecar gate container".into(),
        config_text,
        config_at,
        mounts: Some(
            mounts
                .iter()
                .map(|m| Mount {
                    target: PathBuf::from(str_of(&m["mountPath"], "mountPath")),
                    read_only: m["readOnly"] == true,
                    files: config_map_keys(&volume(&m["name"])["configMap"]["name"]),
                })
                .collect(),
        ),
        env: k8s_env(gate),
    });
    assert_eq!(
        resolved_str(&resolved, "upstream", "url"),
        format!("http://{registry_addr}")
    );

    // Probes: readiness /readyz and liveness /healthz, on the admin listener, which must
    // listen on the pod's address for the kubelet to reach it.
    let admin = resolved_addr(&resolved, "admin");
    assert!(admin.ip().is_unspecified(), "admin on {admin}");
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &gate[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(
            container_port(gate, &get["port"], probe),
            admin.port(),
            "{probe} asks the admin port"
        );
    }

    // The TLS port: unprivileged, declared, and what the Service's 443 sends to.
    let listen = resolved_addr(&resolved, "listen");
    assert!(
        listen.port() >= 1024,
        "{listen} would need NET_BIND_SERVICE"
    );
    let services = by_kind(&docs, "Service");
    assert_eq!(services.len(), 1, "one Service");
    let service = services[0];
    let labels = template["metadata"]["labels"]
        .as_object()
        .expect("pod labels");
    for (k, v) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(labels.get(k), Some(v), "the Service selects the pod");
    }
    let https = service["spec"]["ports"]
        .as_array()
        .expect("Service ports")
        .iter()
        .find(|p| p["port"] == 443)
        .expect("the Service answers on 443");
    assert_eq!(
        container_port(gate, &https["targetPort"], "targetPort"),
        listen.port()
    );

    // Non-root, read-only, no capabilities, every container.
    let pod_non_root = pod["securityContext"]["runAsNonRoot"] == true;
    for c in containers {
        let name = str_of(&c["name"], "name");
        let sc = &c["securityContext"];
        assert!(
            pod_non_root || sc["runAsNonRoot"] == true,
            "{name}: runAsNonRoot"
        );
        assert!(
            sc["runAsUser"] != 0 && pod["securityContext"]["runAsUser"] != 0,
            "{name}: uid 0"
        );
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert!(
            sc["capabilities"]["drop"]
                .as_array()
                .is_some_and(|d| d.iter().any(|c| c == "ALL")),
            "{name}: drops ALL capabilities"
        );
        assert!(
            sc["capabilities"]["add"]
                .as_array()
                .is_none_or(Vec::is_empty),
            "{name}: adds capabilities"
        );
    }

    // The pod is killed only after the preStop sleep and the gate's drain.
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let pre_stop = gate["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0);
    let drain = resolved_grace(&resolved);
    assert!(
        Duration::from_secs(grace) > drain + Duration::from_secs(pre_stop),
        "terminationGracePeriodSeconds {grace} <= preStop {pre_stop} s + grace_period {drain:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// AWS load balancers

#[test]
fn elb_configs_trust_the_balancer_or_read_the_proxy_protocol() {
    let files = files_under(&examples().join("elb"), &[".toml"]);
    let (mut http_mode, mut tcp_mode) = (0, 0);
    for file in files {
        let name = file.display().to_string();
        let resolved = check_config(&Deployment {
            name: name.clone(),
            config_text: read(&file),
            config_at: Path::new("/etc/registry-gate").join(file.file_name().expect("name")),
            mounts: None,
            env: Vec::new(),
        });
        let trusted = resolved["forwarding"]["trusted_proxies"]
            .as_array()
            .expect("trusted_proxies");
        let proxy_protocol = resolved["listen"]["proxy_protocol"].as_bool() == Some(true);
        if proxy_protocol {
            // TCP mode: no HTTP headers come from the balancer, so none are believed.
            assert!(trusted.is_empty(), "{name}: {trusted:?}");
            tcp_mode += 1;
        } else {
            // HTTP(S) mode: the balancer's forwarding headers are kept, from private
            // networks only; the admin listener answers the balancer's /readyz check.
            assert!(!trusted.is_empty(), "{name}: no trusted_proxies");
            for net in trusted {
                let net: ipnet::IpNet = net
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{name}: trusted proxy {net}"));
                assert!(net.prefix_len() > 0, "{name}: trusts everyone");
            }
            let admin = resolved_addr(&resolved, "admin");
            assert!(admin.ip().is_unspecified(), "{name}: admin on {admin}");
            http_mode += 1;
        }
    }
    assert_eq!(
        (http_mode, tcp_mode),
        (1, 1),
        "one config per balancer mode"
    );
}
