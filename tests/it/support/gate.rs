//! The real `registry-gate` binary: a working directory with generated
//! certificates, an htpasswd file and a config, and a `serve` process whose
//! stderr is collected for assertions on its log.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::Client;
use super::process::poll;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_registry-gate");

/// Runs the binary to completion in `dir` (log level warn).
pub fn run(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run registry-gate")
}

/// What [`generate_certs`] makes besides the TLS CA and server pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Certs {
    /// Only the TLS CA and server pair.
    Tls,
    /// Also the token signing pair (`--token`).
    WithToken,
}

/// `certs generate --san localhost [--token] --out OUT` in `dir`; fails the test with the
/// command's stderr if it fails.
pub fn generate_certs(dir: &Path, out: &str, certs: Certs) {
    let mut args = vec!["certs", "generate", "--san", "localhost"];
    if certs == Certs::WithToken {
        args.push("--token");
    }
    args.extend(["--out", out]);
    let o = run(&args, dir);
    assert!(
        o.status.success(),
        "certs generate: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Writes `certs/` (via `certs generate`), `htpasswd` with alice/pw and a
/// `proxy.toml` in front of `upstream`, plus `extra` TOML sections.
pub fn write_setup(dir: &Path, upstream: &str, extra: &str) {
    generate_certs(dir, "certs", Certs::Tls);
    write_users(dir, &[("alice", "pw")]);
    std::fs::write(
        dir.join("proxy.toml"),
        format!(
            "[listen]\naddr = \"127.0.0.1:0\"\n\
             [admin]\naddr = \"127.0.0.1:0\"\n\
             [tls]\ncert = \"certs/server.crt\"\nkey = \"certs/server.key\"\n\
             [upstream]\nurl = \"{upstream}\"\n\
             [auth]\nhtpasswd = \"htpasswd\"\n{extra}\n"
        ),
    )
    .expect("config");
}

/// Replaces `htpasswd` (bcrypt cost 4) the way editors do: a new file renamed over it.
pub fn write_users(dir: &Path, users: &[(&str, &str)]) {
    let mut text = String::new();
    for (user, password) in users {
        let hash = bcrypt::hash(password, 4).expect("hash");
        text.push_str(&format!("{user}:{hash}\n"));
    }
    replace_file(&dir.join("htpasswd"), &text);
}

/// Writes `path` through a temporary file and a rename.
pub fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename over the file");
}

/// A running `registry-gate serve`; killed on drop.
pub struct GateProcess {
    /// The address it logged as bound.
    pub addr: SocketAddr,
    /// The admin listener's address, if it logged one.
    pub admin: Option<SocketAddr>,
    /// Its working directory.
    pub dir: PathBuf,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl GateProcess {
    /// Starts `serve` in `dir` and waits (at most 10 s) for its listening line.
    pub fn start(dir: &Path) -> GateProcess {
        GateProcess::start_with_env(dir, &[])
    }

    /// [`GateProcess::start`] with extra environment variables.
    pub fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> GateProcess {
        let mut child = Command::new(BIN)
            .arg("serve")
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut gate = GateProcess {
            addr: "0.0.0.0:0".parse().expect("placeholder"),
            admin: None,
            dir: dir.to_path_buf(),
            child,
            log,
        };
        let addr = poll(Duration::from_secs(10), Duration::from_millis(20), || {
            logged_addr(&gate.log(), "listening")
        });
        gate.addr =
            addr.unwrap_or_else(|| panic!("no listening line within 10 s:\n{}", gate.log()));
        gate.admin = logged_addr(&gate.log(), "admin listening");
        gate
    }

    /// The admin listener's address. "admin listening" follows "listening" in the
    /// log: waits for it (at most 5 s) if it was not there at start.
    pub fn admin_addr(&self) -> SocketAddr {
        let admin = self.admin.or_else(|| {
            poll(Duration::from_secs(5), Duration::from_millis(20), || {
                logged_addr(&self.log(), "admin listening")
            })
        });
        admin.unwrap_or_else(|| panic!("no admin listening line:\n{}", self.log()))
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits (at most `limit`) until the log contains every one of `needles` on one line.
    pub fn wait_for_log(&self, needles: &[&str], limit: Duration) -> String {
        poll(limit, Duration::from_millis(20), || {
            self.log()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            panic!(
                "no log line with {needles:?} within {limit:?}:\n{}",
                self.log()
            )
        })
    }

    /// `GET path` on the admin listener (plain HTTP, `Connection: close`): status and body.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read as _, Write as _};
        let addr = self.admin_addr();
        let mut tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .expect("connect to the admin listener");
        tcp.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("send the admin request");
        let mut text = String::new();
        tcp.read_to_string(&mut text)
            .expect("read the admin answer");
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, body.to_string())
    }

    /// A client trusting the generated CA.
    pub fn client(&self) -> Client {
        let ca = std::fs::read_to_string(self.dir.join("certs/ca.crt")).expect("ca");
        Client::new(self.addr, &ca, &format!("localhost:{}", self.addr.port()))
    }

    /// Sends a signal (`"TERM"`, `"HUP"`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Waits (at most `limit`) for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = &mut self.child;
        poll(limit, Duration::from_millis(20), || {
            child.try_wait().expect("wait")
        })
        .unwrap_or_else(|| panic!("serve did not exit within {limit:?}"))
    }
}

/// The `addr=` of the first log line whose message starts with `message`, as text
/// (`... cli: listening addr=...`) or JSON (`"message":"listening","addr":"..."`).
fn logged_addr(log: &str, message: &str) -> Option<SocketAddr> {
    let text = format!(": {message} ");
    let json = format!("\"message\":\"{message}");
    log.lines()
        .find(|l| l.contains(&text) || l.contains(&json))
        .and_then(|line| {
            let rest = line.split("addr").nth(1)?;
            let value = rest.trim_start_matches(['=', '"', ':']);
            value
                .split(|c: char| c.is_whitespace() || c == '"')
                .next()?
                .parse()
                .ok()
        })
}

impl Drop for GateProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
