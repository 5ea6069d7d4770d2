//! Issue 18, "a newcomer's first hour": the command line as a new user meets it, on
//! the real binary.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::gate::BIN;
use crate::support::process::{run_bounded_with_stdin, Run};

/// Longest a one-shot command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the binary with `args` in `dir`, `stdin` as its input, and a bound.
fn gate(args: &[&str], dir: &Path, stdin: Option<&str>) -> Run {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("REGISTRY_GATE_CONFIG");
    run_bounded_with_stdin(command, "registry-gate", stdin, COMMAND_TIMEOUT)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The README's second command, verbatim, on a fresh clone: `auth/` does not exist.
#[test]
fn htpasswd_add_creates_the_missing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let add = ["htpasswd", "add", "--file", "auth/htpasswd", "alice"];
    let run = gate(&add, dir.path(), Some("s3cret\n")).expect_success();
    assert_eq!(
        run.stderr,
        "created directory auth/ (mode 0700)\nadded user \"alice\" to auth/htpasswd\n"
    );
    assert_eq!(mode(&dir.path().join("auth")), 0o700);
    assert_eq!(mode(&dir.path().join("auth/htpasswd")), 0o600);
    let verify = ["htpasswd", "verify", "--file", "auth/htpasswd", "alice"];
    let run = gate(&verify, dir.path(), Some("s3cret\n")).expect_success();
    assert_eq!(run.stdout, "password ok for \"alice\"\n");

    std::fs::write(dir.path().join("notes"), "a file").expect("write");
    let below = ["htpasswd", "add", "--file", "notes/htpasswd", "alice"];
    let run = gate(&below, dir.path(), Some("s3cret\n")).expect_failure();
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "registry-gate: error: htpasswd file notes/htpasswd: notes is not a directory; \
         name a file in a directory\n"
    );
}
