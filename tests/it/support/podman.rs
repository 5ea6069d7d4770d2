//! The real `podman` (Debian package `podman`, 4.3) as root, made hermetic: every piece of state
//! it keeps lives in one temp dir per [`Podman`], removed on drop, and nothing of the machine's
//! configuration leaks in.
//!
//! What it takes, checked by experiment with podman 4.3.1 on Debian 12:
//!
//! - global flags `--root`, `--runroot`, `--tmpdir` (image store, run state, libpod state),
//!   `--storage-driver vfs` (no overlay mounts, so no kernel module or fuse),
//!   `--cgroup-manager cgroupfs` and `--events-backend none` (no systemd, no journald);
//! - `CONTAINERS_CONF` naming our own `containers.conf` (then no other one is read) with the
//!   `cni` network backend and a temp `network_config_dir`: with the default, netavark, rootful
//!   podman creates `/run/containers/networks` on every start, whatever the flags say;
//! - `_CONTAINERS_ROOTLESS_UID=1`, as for skopeo: as root, podman keeps its blob-info cache in
//!   `/var/lib/containers/cache`, which makes a push skip or cross-mount blobs an earlier run has
//!   seen. With a non-zero value the cache goes to `$XDG_DATA_HOME` (our temp dir) and podman
//!   otherwise still runs as root;
//! - `REGISTRY_AUTH_FILE` (where `login` writes and `push`/`pull` read; it must exist), `HOME`,
//!   `XDG_*`, `TMPDIR`, `CONTAINERS_STORAGE_CONF` and `CONTAINERS_REGISTRIES_CONF` in the temp
//!   dir;
//! - `--signature-policy` (a hidden flag of `pull`, `push` and `load`) with an accept-anything
//!   policy, so `/etc/containers/policy.json` is not needed: use [`Podman::policy`].
//!
//! Facts the tests rely on: `pull` prints the image ID (the config digest's hex) as the last
//! line of stdout; `pull oci:DIR:TAG` names the image after DIR (see [`Podman::import_oci`]);
//! a refused `login` leaves the auth file as it was; `push` gzips uncompressed layers
//! (new layer digests, same config), and `--digestfile F` writes the pushed manifest's digest;
//! failures exit 125 with `Error: ...` on stderr.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{run_bounded, run_bounded_with_stdin, Run};

/// Longest a single podman command may run before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(300);
/// The Debian package that provides `podman`.
const PACKAGE: &str = "podman";

/// A private podman: its own image store, auth file and configuration in a temp dir.
pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    /// Creates the temp dir and writes the configuration files. Runs nothing.
    pub fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("podman-")
            .tempdir()
            .expect("creating a temp dir for podman");
        let podman = Podman { dir };
        for sub in ["root", "runroot", "tmp", "home", "run", "networks"] {
            let path = podman.path(sub);
            fs::create_dir(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        }
        podman.write(
            "containers.conf",
            &format!(
                "[engine]\nimage_copy_tmp_dir = {}\n\
                 [network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = {}\n",
                toml_path(&podman.path("tmp")),
                toml_path(&podman.path("networks")),
            ),
        );
        podman.write(
            "storage.conf",
            &format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = {}\nrunroot = {}\n",
                toml_path(&podman.path("root")),
                toml_path(&podman.path("runroot")),
            ),
        );
        podman.write("registries.conf", "unqualified-search-registries = []\n");
        // Created empty: with `REGISTRY_AUTH_FILE` naming a missing file, `pull` fails with
        // `stat ...: no such file or directory` instead of pulling anonymously.
        podman.write("auth.json", r#"{"auths":{}}"#);
        podman.write(
            "policy.json",
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        );
        podman
    }

    /// The `--signature-policy` file to pass to `pull`, `push` and `load`.
    pub fn policy(&self) -> String {
        self.path("policy.json").display().to_string()
    }

    /// The auth file `login` writes (it may not exist yet).
    pub fn auth_file(&self) -> PathBuf {
        self.path("auth.json")
    }

    /// `podman <global flags> <args>`, hermetic, not yet run: for [`run_bounded`] with a bound of
    /// the caller's choosing.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("runroot"))
            .arg("--tmpdir")
            .arg(self.path("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ])
            .args(args)
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf"))
            .env("REGISTRY_AUTH_FILE", self.auth_file())
            .env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("XDG_CONFIG_HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("home"))
            .env("TMPDIR", self.path("tmp"))
            .env("_CONTAINERS_ROOTLESS_UID", "1");
        for name in [
            "CONTAINER_HOST",
            "CONTAINER_CONNECTION",
            "CONTAINERS_CONF_OVERRIDE",
            "REGISTRIES_CONFIG_PATH",
            "DOCKER_CONFIG",
            "STORAGE_DRIVER",
            "STORAGE_OPTS",
        ] {
            command.env_remove(name);
        }
        command
    }

    /// Runs `podman <args>` bounded by [`TIMEOUT`].
    pub fn run(&self, args: &[&str]) -> Run {
        run_bounded(self.command(args), PACKAGE, TIMEOUT)
    }

    /// `podman pull oci:DIR:TAG`: imports `tag` of the OCI layout `layout` and returns the run,
    /// whose last stdout line is the image ID. Podman names the image `localhost/` + the path as
    /// written, and refuses upper case there, which temp dirs have: so the path is given relative
    /// (the layout's own name, which must be lower case) from the layout's parent.
    pub fn import_oci(&self, layout: &Path, tag: &str) -> Run {
        let (parent, name) = match (layout.parent(), layout.file_name()) {
            (Some(parent), Some(name)) => (parent, name.to_string_lossy()),
            _ => panic!("{} is not a layout directory", layout.display()),
        };
        assert!(
            !name.chars().any(|c| c.is_ascii_uppercase()),
            "podman refuses the layout name {name:?}: image names are lower case"
        );
        let reference = format!("oci:{name}:{tag}");
        let mut command = self.command(&["pull", "--signature-policy", &self.policy(), &reference]);
        command.current_dir(parent);
        run_bounded(command, PACKAGE, TIMEOUT)
    }

    /// Runs `podman <args>` with `input` on stdin (for `login --password-stdin`), bounded by
    /// `timeout`.
    pub fn run_with_stdin(&self, args: &[&str], input: &str, timeout: Duration) -> Run {
        run_bounded_with_stdin(self.command(args), PACKAGE, Some(input), timeout)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

impl Default for Podman {
    fn default() -> Self {
        Podman::new()
    }
}

/// A TOML basic string holding `path` (a JSON string is one).
fn toml_path(path: &Path) -> String {
    serde_json::to_string(path).expect("paths serialise to JSON")
}
