//! The real nginx (Debian 12's `nginx` 1.22, which `nginx-light` pulls in; every module the
//! recipe uses is built in) running the distribution project's "Authenticate proxy with nginx"
//! recipe, for side-by-side tests against the gate.
//!
//! [`RECIPE`] is the recipe's `nginx.conf` with every directive kept; only what running as a
//! test on loopback in a temp dir requires is changed, each change marked `# test:` in the
//! template. nginx runs in the foreground (`daemon off;`, a master and one worker) with its own
//! prefix dir holding the config, pid file, error and access logs and temp dirs, and uses the
//! same certificate, key and htpasswd file as the gate it is compared with.
//!
//! Facts about nginx 1.22 this harness relies on, checked by experiment:
//!
//! - nginx cannot report a kernel-chosen port, so [`Nginx::start`] picks a free one and retries
//!   on `Address already in use`. It is ready once its error log says `start worker process`
//!   (written after every listening socket is bound, so the port is its own) and a plain-HTTP
//!   probe gets nginx's `400` ("plain HTTP request was sent to HTTPS port").
//! - Killing only the master leaves the worker serving on the port, so nginx runs in its own
//!   process group and [`Drop`] kills the whole group.
//! - `ssl_protocols TLSv1.1 TLSv1.2` loads under OpenSSL 3, but Debian's default security level
//!   refuses TLS 1.1 handshakes: in effect nginx speaks TLS 1.2 only.
//! - Request bodies over `client_body_buffer_size` are written to a temp file first (logged at
//!   `warn`: "a client request body is buffered to a temporary file"); the registry gets the body
//!   only once the client has sent all of it, over HTTP/1.0 (one connection per request).

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::install_hint;
use super::process::poll;
use super::proxy::TestProxy;
use super::registry::request_head;

/// How long nginx may take to bind and start its worker.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Attempts at a free port before giving up (another process may take it first).
const PORT_ATTEMPTS: usize = 5;
/// The line nginx logs (at `notice`) once it has bound its sockets and forks a worker.
const STARTED: &str = "start worker process";

/// The recipe's `nginx.conf` (seed 003, the distribution docs' "Authenticate proxy with nginx").
/// `{dir}`, `{listen}`, `{upstream}`, `{cert}`, `{key}` and `{htpasswd}` are filled in.
const RECIPE: &str = r#"
# test: workers read the htpasswd and write temp files in root-only (0700) temp dirs.
user root;
# test: pid file and error log in the prefix dir; `notice` for the "start worker process" line.
pid "{dir}/nginx.pid";
error_log "{dir}/error.log" notice;

events {
    worker_connections  1024;
}

http {
  # test: access log and temp dirs in the prefix dir (the built-in ones are under /var).
  access_log "{dir}/access.log";
  client_body_temp_path "{dir}/client_body";
  proxy_temp_path "{dir}/proxy";
  fastcgi_temp_path "{dir}/fastcgi";
  uwsgi_temp_path "{dir}/uwsgi";
  scgi_temp_path "{dir}/scgi";

  upstream docker-registry {
    # test: the real registry's loopback address instead of `registry:5000`.
    server {upstream};
  }

  ## Set a variable to help us decide if we need to add the
  ## 'Docker-Distribution-Api-Version' header.
  ## The registry always sets this header.
  ## In the case of nginx performing auth, the header is unset
  ## since nginx is auth-ing before proxying.
  map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {
    '' 'registry/2.0';
  }

  server {
    # test: a free loopback port instead of `443`.
    listen {listen} ssl;
    server_name myregistrydomain.com;

    # SSL
    # test: the gate's certificate and key instead of domain.crt and domain.key.
    ssl_certificate "{cert}";
    ssl_certificate_key "{key}";

    # Recommendations from https://raymii.org/s/tutorials/Strong_SSL_Security_On_nginx.html
    # test: kept as is; OpenSSL 3 loads it but refuses TLS 1.1 handshakes (see the module doc).
    ssl_protocols TLSv1.1 TLSv1.2;
    ssl_ciphers 'EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH';
    ssl_prefer_server_ciphers on;
    ssl_session_cache shared:SSL:10m;

    # disable any limits to avoid HTTP 413 for large image uploads
    client_max_body_size 0;

    # required to avoid HTTP 411: see Issue #1486 (https://github.com/moby/moby/issues/1486)
    chunked_transfer_encoding on;

    location /v2/ {
      # Do not allow connections from docker 1.5 and earlier
      # docker pre-1.6.0 did not properly set the user agent on ping, catch "Go *" user agents
      if ($http_user_agent ~ "^(docker\/1\.(3|4|5(?!\.[0-9]-dev))|Go ).*$" ) {
        return 404;
      }

      # To add basic authentication to v2 use auth_basic setting.
      auth_basic "Registry realm";
      # test: the gate's htpasswd file instead of /etc/nginx/conf.d/nginx.htpasswd.
      auth_basic_user_file "{htpasswd}";

      ## If $docker_distribution_api_version is empty, the header is not added.
      ## See the map directive above where this variable is defined.
      add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;

      proxy_pass                          http://docker-registry;
      proxy_set_header  Host              $http_host;   # required for docker client's sake
      proxy_set_header  X-Real-IP         $remote_addr; # pass on real client's IP
      proxy_set_header  X-Forwarded-For   $proxy_add_x_forwarded_for;
      proxy_set_header  X-Forwarded-Proto $scheme;
      proxy_read_timeout                  900;
    }
  }
}
"#;

/// The files nginx serves with: the same ones the gate uses.
#[derive(Debug, Clone)]
pub struct RecipeFiles {
    /// PEM certificate chain (`ssl_certificate`).
    pub cert: PathBuf,
    /// PEM private key (`ssl_certificate_key`).
    pub key: PathBuf,
    /// The htpasswd file (`auth_basic_user_file`).
    pub htpasswd: PathBuf,
}

impl RecipeFiles {
    /// The certificate, key and htpasswd file of a running gate.
    pub fn of(proxy: &TestProxy) -> RecipeFiles {
        RecipeFiles {
            cert: proxy.path("server.crt"),
            key: proxy.path("server.key"),
            htpasswd: proxy.path("htpasswd"),
        }
    }
}

/// A running nginx master (and its worker). Its whole process group is killed on drop; its
/// prefix dir is removed after.
pub struct Nginx {
    /// Where it listens: `127.0.0.1:<port>`.
    pub addr: SocketAddr,
    /// The prefix dir: `nginx.conf`, `nginx.pid`, `error.log`, `access.log`, temp dirs.
    pub root: PathBuf,
    child: Option<Child>,
    // Declared last: removed only after `Drop` has killed nginx.
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Runs the recipe in front of the registry at `upstream` with the gate's files. Returns
    /// once nginx serves; panics with its error log if it exits or is not ready within 15 s.
    /// Blocking: call it from `spawn_blocking` in async tests.
    pub fn start(upstream: SocketAddr, files: &RecipeFiles) -> Nginx {
        let dir = tempfile::Builder::new()
            .prefix("nginx-")
            .tempdir()
            .expect("creating the nginx temp dir");
        let mut nginx = Nginx {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            root: dir.path().to_owned(),
            child: None,
            _dir: dir,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            nginx.addr = free_port();
            nginx.write_config(upstream, files);
            nginx.spawn();
            match nginx.wait_ready() {
                Ok(()) => return nginx,
                Err(log) if log.contains("Address already in use") && attempt < PORT_ATTEMPTS => {
                    nginx.stop();
                    // Start the next attempt's log afresh.
                    let _ = fs::remove_file(nginx.error_log_path());
                }
                Err(log) => panic!(
                    "nginx did not start on {}\n--- nginx.conf ---\n{}\n--- error log ---\n{log}",
                    nginx.addr,
                    fs::read_to_string(nginx.config_path()).unwrap_or_default(),
                ),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Everything nginx has logged to its error log (and stderr) so far.
    pub fn error_log(&self) -> String {
        let log = fs::read_to_string(self.error_log_path()).unwrap_or_default();
        let stderr = fs::read_to_string(self.root.join("stderr.log")).unwrap_or_default();
        format!("{stderr}{log}")
    }

    fn config_path(&self) -> PathBuf {
        self.root.join("nginx.conf")
    }

    fn error_log_path(&self) -> PathBuf {
        self.root.join("error.log")
    }

    fn write_config(&self, upstream: SocketAddr, files: &RecipeFiles) {
        let config = RECIPE
            .replace("{dir}", &conf_path(&self.root))
            .replace("{listen}", &self.addr.to_string())
            .replace("{upstream}", &upstream.to_string())
            .replace("{cert}", &conf_path(&files.cert))
            .replace("{key}", &conf_path(&files.key))
            .replace("{htpasswd}", &conf_path(&files.htpasswd));
        let path = self.config_path();
        fs::write(&path, config).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    fn spawn(&mut self) {
        let stderr_path = self.root.join("stderr.log");
        let stderr = fs::File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", stderr_path.display()));
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&self.root)
            .arg("-c")
            .arg(self.config_path())
            .args(["-g", "daemon off;"])
            .current_dir(&self.root)
            // Its own process group, so that `Drop` can kill the worker along with the master.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| match e.kind() {
                io::ErrorKind::NotFound => panic!("{}", install_hint("nginx", "nginx")),
                _ => panic!("starting nginx: {e}"),
            });
        self.child = Some(child);
    }

    /// Waits for the "started" log line and a served probe; on failure returns the error log.
    fn wait_ready(&mut self) -> Result<(), String> {
        let addr = self.addr;
        let ready = poll(READY_TIMEOUT, POLL_INTERVAL, || {
            if let Some(status) = self.exited() {
                return Some(Err(format!(
                    "nginx exited ({status})\n{}",
                    self.error_log()
                )));
            }
            let started = self.error_log().contains(STARTED);
            // Plain HTTP to the TLS port: nginx answers 400 once a worker serves.
            let served =
                started && matches!(request_head(addr, "GET", "/", &[]), Ok(h) if h.status == 400);
            served.then_some(Ok(()))
        });
        ready.unwrap_or_else(|| {
            Err(format!(
                "not ready within {READY_TIMEOUT:?}\n{}",
                self.error_log()
            ))
        })
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().expect("polling the nginx process")
    }

    /// Kills nginx's process group (master and worker) and reaps the master.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The group id is the master's pid (`process_group(0)`). `kill` fails only if the
            // group is already gone; `wait` reaps the master either way.
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // No panics here: a drop during unwinding would abort.
        self.stop();
    }
}

/// A loopback address with a port that was free a moment ago.
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("bound address")
}

/// A path as text for the inside of an nginx double-quoted string.
fn conf_path(path: &Path) -> String {
    let text = path.to_str().expect("temp paths are UTF-8");
    assert!(
        !text.contains(['"', '\\', '$']),
        "path {text:?} cannot be quoted for nginx"
    );
    text.to_owned()
}
