//! The gate, in-process, on 127.0.0.1:0 with generated certificates and users.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use registry_gate::config::Config;
use registry_gate::state::State;
use tokio::sync::{oneshot, watch};

use super::client::Client;

/// A running gate.
pub struct TestProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// PEM of the CA that signed its certificate.
    pub ca_pem: String,
    /// The directory holding its config, certificates and htpasswd.
    pub dir: tempfile::TempDir,
    /// Sends a new state in (as a reload does).
    pub state_tx: watch::Sender<Arc<State>>,
    shutdown: Option<oneshot::Sender<()>>,
}

/// Builds a [`TestProxy`].
pub struct Builder {
    upstream: String,
    users: Vec<(String, String, u32)>,
    htpasswd: Option<String>,
    extra: String,
    upstream_keys: String,
    auth_keys: String,
    listen_keys: String,
    /// Files written into the gate's directory before it starts (name, text).
    files: Vec<(String, String)>,
}

impl TestProxy {
    /// Starts building a gate in front of `upstream` (a base URL).
    pub fn builder(upstream: impl Into<String>) -> Builder {
        Builder {
            upstream: upstream.into(),
            users: Vec::new(),
            htpasswd: None,
            extra: String::new(),
            upstream_keys: String::new(),
            auth_keys: String::new(),
            listen_keys: String::new(),
            files: Vec::new(),
        }
    }

    /// A gate in front of `upstream` with one user, `alice` / `pw`.
    pub async fn alice(upstream: impl Into<String>) -> TestProxy {
        TestProxy::builder(upstream)
            .user("alice", "pw")
            .start()
            .await
    }

    /// A TLS client that trusts this gate's CA and uses [`authority`](Self::authority).
    pub fn client(&self) -> Client {
        Client::new(self.addr, &self.ca_pem, &self.authority())
    }

    /// `localhost:PORT`, the authority clients use.
    pub fn authority(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// A directory holding only `ca.crt`, for skopeo's `--cert-dir`.
    pub fn trust_dir(&self) -> String {
        self.dir.path().join("trust").display().to_string()
    }

    /// The path of a file in the gate's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Builder {
    /// Adds a user (bcrypt cost 4, the fastest, to keep tests quick).
    pub fn user(self, name: &str, password: &str) -> Self {
        self.user_with_cost(name, password, 4)
    }

    /// Uses this htpasswd text as it is (instead of the users added).
    pub fn htpasswd_text(mut self, text: &str) -> Self {
        self.htpasswd = Some(text.to_owned());
        self
    }

    /// Adds a user with a bcrypt hash of the given cost.
    pub fn user_with_cost(mut self, name: &str, password: &str, cost: u32) -> Self {
        self.users.push((name.into(), password.into(), cost));
        self
    }

    /// Adds keys to `[upstream]`.
    pub fn upstream_keys(mut self, text: &str) -> Self {
        self.upstream_keys.push_str(text);
        self.upstream_keys.push('\n');
        self
    }

    /// Adds keys to `[listen]`.
    pub fn listen_keys(mut self, text: &str) -> Self {
        self.listen_keys.push_str(text);
        self.listen_keys.push('\n');
        self
    }

    /// Adds keys to `[auth]`.
    pub fn auth_keys(mut self, text: &str) -> Self {
        self.auth_keys.push_str(text);
        self.auth_keys.push('\n');
        self
    }

    /// Token mode: a fresh ES256 signing pair in `token.key` / `token.crt`, `mode = "token"`
    /// in `[auth]`, and a `[token]` section for `service` followed by `more` (further `[token]`
    /// keys, then any whole sections).
    pub fn token(mut self, service: &str, more: &str) -> Self {
        let generated = registry_gate::token::keys::generate_es256("registry-gate test token")
            .expect("token key");
        self.files.push(("token.key".into(), generated.key_pem));
        self.files.push(("token.crt".into(), generated.cert_pem));
        self.auth_keys("mode = \"token\"").toml(&format!(
            "[token]\nservice = \"{service}\"\nkey = \"token.key\"\ncert = \"token.crt\"\n{more}"
        ))
    }

    /// Appends whole TOML sections other than `[listen]`, `[tls]`, `[upstream]`, `[auth]`.
    pub fn toml(mut self, text: &str) -> Self {
        self.extra.push('\n');
        self.extra.push_str(text);
        self
    }

    /// Writes the files, builds the state, binds and serves.
    pub async fn start(self) -> TestProxy {
        self.start_with_files(&[]).await
    }

    /// Like [`start`](Self::start), first writing extra files into the gate's directory.
    pub async fn start_with_files(self, files: &[(&str, &str)]) -> TestProxy {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = registry_gate::tls::generate(&["localhost".into(), "127.0.0.1".into()])
            .expect("generate test certificates");
        std::fs::write(dir.path().join("server.crt"), &certs.server_cert).expect("write cert");
        std::fs::write(dir.path().join("server.key"), &certs.server_key).expect("write key");
        std::fs::write(dir.path().join("ca.crt"), &certs.ca_cert).expect("write ca");
        std::fs::create_dir(dir.path().join("trust")).expect("trust dir");
        std::fs::write(dir.path().join("trust/ca.crt"), &certs.ca_cert).expect("write trust ca");
        let own = self.files.iter().map(|(n, t)| (n.as_str(), t.as_str()));
        for (name, text) in files.iter().copied().chain(own) {
            std::fs::write(dir.path().join(name), text).expect("write extra file");
        }
        let mut htpasswd = String::new();
        for (user, password, cost) in &self.users {
            let hash = bcrypt::hash(password, *cost).expect("bcrypt hash");
            htpasswd.push_str(&format!("{user}:{hash}\n"));
        }
        let htpasswd = self.htpasswd.unwrap_or(htpasswd);
        std::fs::write(dir.path().join("htpasswd"), htpasswd).expect("write htpasswd");
        let text = format!(
            "[listen]\naddr = \"127.0.0.1:0\"\n{}\n\
             [tls]\ncert = \"server.crt\"\nkey = \"server.key\"\n\
             [upstream]\nurl = \"{}\"\n{}\n\
             [auth]\nhtpasswd = \"htpasswd\"\n{}\n{}\n",
            self.listen_keys, self.upstream, self.upstream_keys, self.auth_keys, self.extra
        );
        let config_path = dir.path().join("proxy.toml");
        std::fs::write(&config_path, text).expect("write config");
        let config = Config::load(&config_path).expect("test config is valid");
        let state = State::build(&config).expect("test state builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let (state_tx, state_rx) = watch::channel(Arc::new(state));
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        tokio::spawn(registry_gate::server::run(listener, state_rx, async {
            let _ = shutdown_rx.await;
        }));
        TestProxy {
            addr,
            ca_pem: certs.ca_cert,
            dir,
            state_tx,
            shutdown: Some(shutdown_tx),
        }
    }
}
