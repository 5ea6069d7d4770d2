//! The real CNCF registry (`docker-registry serve`, Debian package `docker-registry`, 2.8) as a
//! child process: filesystem storage and config in a temp dir, plain HTTP on a loopback port.
//!
//! Facts about 2.8.2 this harness relies on, checked by experiment:
//!
//! - With `http.addr: 127.0.0.1:0` the registry binds a kernel-chosen port and logs it at info
//!   level on stderr (`msg="listening on 127.0.0.1:42089"`). We read the port from there, so there
//!   is no free-port race; [`Registry::restart`] then pins that port in the config.
//! - It has no log-file setting: stderr (app log) and stdout (access log) go to `registry.log`.
//! - A second registry on a taken port exits 1 with `bind: address already in use`.
//! - Absolute URLs (upload `Location`, and the others built the same way) come from the
//!   request, and `harness::upload_location_follows_forwarding_headers` pins the rules:
//!   - if a `Forwarded` header is present, `X-Forwarded-*` are ignored entirely: the scheme is
//!     its `proto=` (else `http`), the host its `host=` (else `Host`), first element only. A
//!     `Forwarded` that does not parse (an unquoted `host=h:9443`) yields `http` + `Host`;
//!   - otherwise the scheme is `X-Forwarded-Proto` verbatim (`https, http` gives a broken URL)
//!     or `http`, and the host the first comma-separated `X-Forwarded-Host` value or `Host`;
//!   - `X-Forwarded-Port` is ignored; `http.relativeurls: true` makes `Location` a bare path.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::install_hint;
use super::process::poll;

/// How long the registry may take to bind and to answer `/v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Bound on one probe request (connect, write, read).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A fixed upload-state secret, so an upload started before [`Registry::restart`] can resume
/// after it (the default is random per process).
const HTTP_SECRET: &str = "registry-gate-tests";

/// A running `docker-registry`. Killed (and reaped) on drop; its temp dir is removed after.
pub struct Registry {
    /// Where it listens: `127.0.0.1:<port>`. Stays the same across [`Registry::restart`].
    pub addr: SocketAddr,
    /// The temp dir holding `config.yml`, `registry.log` and `storage/`.
    pub root: PathBuf,
    child: Option<Child>,
    // Declared last: removed only after `Drop` has killed the child.
    _dir: tempfile::TempDir,
}

/// Options for [`Registry`]; start with [`Registry::builder`].
#[derive(Debug, Default)]
pub struct RegistryBuilder {
    auth_yaml: Option<String>,
    http_yaml: Option<String>,
}

impl RegistryBuilder {
    /// Raw YAML for the body of the `auth:` section, written at column 0 and indented by the
    /// builder. With auth configured, readiness accepts `401` from `/v2/` as well as `200`. E.g.
    ///
    /// ```yaml
    /// token:
    ///   realm: https://127.0.0.1:1234/token
    ///   service: registry
    ///   issuer: registry-gate
    ///   rootcertbundle: /tmp/x/token-ca.pem
    /// ```
    pub fn auth_yaml(mut self, yaml: &str) -> Self {
        self.auth_yaml = Some(yaml.to_owned());
        self
    }

    /// Token auth with the gate as the issuer (`registry-gate`): tokens for `service` from
    /// `realm`, verified with the certificate bundle at `bundle`.
    pub fn token_auth(self, realm: &str, service: &str, bundle: &std::path::Path) -> Self {
        self.auth_yaml(&format!(
            "token:\n  realm: {realm}\n  service: {service}\n  issuer: registry-gate\n  rootcertbundle: {}\n",
            bundle.display()
        ))
    }

    /// Raw YAML appended to the `http:` section (after `addr` and `secret`), written at column
    /// 0, e.g. `"relativeurls: true\n"`.
    pub fn http_yaml(mut self, yaml: &str) -> Self {
        self.http_yaml = Some(yaml.to_owned());
        self
    }

    /// Writes the config, starts the registry, and returns once `GET /v2/` answers. Panics with
    /// the registry's log if it exits or does not become ready within 15 s.
    pub fn start(self) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir()
            .expect("creating the registry temp dir");
        let root = dir.path().to_owned();
        fs::create_dir(root.join("storage")).expect("creating the registry storage dir");
        let unbound: SocketAddr = "127.0.0.1:0".parse().expect("valid socket address literal");
        let mut registry = Registry {
            addr: unbound,
            root,
            child: None,
            _dir: dir,
        };
        registry.write_config(&self, unbound);
        let log_start = registry.log().len();
        registry.spawn();
        registry.addr = registry.wait_for_listen_addr(log_start);
        // Pin the port so that `restart` comes back on the same one.
        registry.write_config(&self, registry.addr);
        registry.wait_ready();
        registry
    }
}

impl Registry {
    /// Starts a registry with no auth; see [`RegistryBuilder::start`].
    pub fn start() -> Registry {
        Registry::builder().start()
    }

    /// Options for a registry with auth or extra HTTP settings.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:<port>`, the registry part of a `docker://` reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Everything the registry has logged so far, across restarts.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether the process is running (started and not yet exited).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the registry (SIGKILL, like a crash) and reaps it. The port is closed when this
    /// returns. Does nothing if it is already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `kill` fails only if the child has already exited; `wait` reaps it either way.
            let _ = child.kill();
            child.wait().expect("reaping the registry process");
        }
    }

    /// Stops the registry if it runs, then starts it again on the same port with the same
    /// storage and config, and waits until it is ready. Panics with the log if it cannot bind.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_ready();
    }

    fn config_path(&self) -> PathBuf {
        self.root.join("config.yml")
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("registry.log")
    }

    fn write_config(&self, options: &RegistryBuilder, addr: SocketAddr) {
        let yaml = config_yaml(
            &self.root.join("storage"),
            addr,
            options.http_yaml.as_deref(),
            options.auth_yaml.as_deref(),
        );
        let path = self.config_path();
        fs::write(&path, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    fn spawn(&mut self) {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log_path.display()));
        let stdout = log.try_clone().expect("duplicating the log file handle");
        let mut command = Command::new("docker-registry");
        command
            .arg("serve")
            .arg(self.config_path())
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log);
        // REGISTRY_* variables override the config file; keep the test's config authoritative.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("REGISTRY_") {
                command.env_remove(name);
            }
        }
        let child = command.spawn().unwrap_or_else(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                panic!("{}", install_hint("docker-registry", "docker-registry"))
            }
            _ => panic!("starting docker-registry: {e}"),
        });
        self.child = Some(child);
    }

    /// Reads the bound address from the `listening on` line logged after byte `log_start`.
    fn wait_for_listen_addr(&mut self, log_start: usize) -> SocketAddr {
        let found = poll(READY_TIMEOUT, POLL_INTERVAL, || {
            self.panic_if_exited();
            listen_addr(self.log().get(log_start..)?)
        });
        found.unwrap_or_else(|| {
            panic!(
                "docker-registry logged no `listening on` line within {READY_TIMEOUT:?}; log:\n{}",
                self.log()
            )
        })
    }

    fn wait_ready(&mut self) {
        let addr = self.addr;
        let ready = poll(READY_TIMEOUT, POLL_INTERVAL, || {
            self.panic_if_exited();
            matches!(http_status(addr, "/v2/"), Ok(200 | 401)).then_some(())
        });
        assert!(
            ready.is_some(),
            "docker-registry on {addr} did not answer GET /v2/ within {READY_TIMEOUT:?}; log:\n{}",
            self.log()
        );
    }

    fn panic_if_exited(&mut self) {
        let child = self.child.as_mut().expect("registry was spawned");
        if let Some(status) = child.try_wait().expect("polling the registry process") {
            let config = fs::read_to_string(self.config_path()).unwrap_or_default();
            panic!(
                "docker-registry exited during startup ({status})\n\
                 --- config.yml ---\n{config}\n--- log ---\n{}",
                self.log()
            );
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // No panics here (a drop during unwinding would abort): both calls fail only if the
            // child is already gone.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Status and headers of an HTTP response (the body is not read).
#[derive(Debug)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET path` over HTTP/1.1 to `addr` and returns the status code. The error is the
/// connection's (`ConnectionRefused` when nothing listens).
pub fn http_status(addr: SocketAddr, path: &str) -> io::Result<u16> {
    Ok(request_head(addr, "GET", path, &[])?.status)
}

/// Sends a body-less HTTP/1.1 request (`Content-Length: 0`, `Connection: close`) and reads the
/// response head. `Host` defaults to `addr` unless `headers` has one. Bounded by a 2 s timeout
/// per socket operation.
pub fn request_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<ResponseHead> {
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");

    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    stream.write_all(request.as_bytes())?;
    parse_head(&read_head(&mut stream)?)
}

/// Reads up to the blank line that ends a response head (at most 64 KiB).
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 || head.len() > 64 * 1024 {
            return Err(invalid_data(format!(
                "response head incomplete: {:?}",
                String::from_utf8_lossy(&head)
            )));
        }
        head.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(head).map_err(|e| invalid_data(format!("response head is not UTF-8: {e}")))
}

fn parse_head(head: &str) -> io::Result<ResponseHead> {
    let head = &head[..head.find("\r\n\r\n").unwrap_or(head.len())];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid_data(format!("not an HTTP status line: {status_line:?}")))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
        .collect();
    Ok(ResponseHead { status, headers })
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The address in the registry's `msg="listening on 127.0.0.1:PORT"` log line (with TLS the
/// message goes on `, tls`).
fn listen_addr(log: &str) -> Option<SocketAddr> {
    let rest = &log[log.find("listening on ")? + "listening on ".len()..];
    let end = rest.find(['"', ',', ' ', '\n'])?;
    rest[..end].parse().ok()
}

fn config_yaml(
    storage: &Path,
    addr: SocketAddr,
    http_extra: Option<&str>,
    auth: Option<&str>,
) -> String {
    // A JSON string is a valid YAML double-quoted scalar: safe for any temp path.
    let storage = serde_json::to_string(&storage).expect("paths serialise to JSON");
    let mut yaml = format!(
        "version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {addr}
  secret: {HTTP_SECRET}
"
    );
    if let Some(extra) = http_extra {
        yaml.push_str(&indent(extra));
    }
    if let Some(auth) = auth {
        yaml.push_str("auth:\n");
        yaml.push_str(&indent(auth));
    }
    yaml
}

fn indent(fragment: &str) -> String {
    fragment.lines().map(|line| format!("  {line}\n")).collect()
}
