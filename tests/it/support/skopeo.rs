//! Thin wrappers around the real `skopeo` (Debian package `skopeo`, 1.9): run it with a bound,
//! capture its output, and fail with the command line and stderr ([`Run::expect_success`]).
//!
//! Every run is hermetic: `--insecure-policy` (no `/etc/containers/policy.json` needed), and a
//! fresh temp dir as `HOME`, `XDG_*` and `--tmpdir`, so no auth file, user config or blob-info
//! cache of the machine leaks in. [`copy`] and [`inspect_raw`] pass `--retry-times 0`, so a
//! failure shows at once instead of after skopeo's retries.
//!
//! Flags that matter to our tests (`--src-*` / `--dest-*` per side of `copy`; `inspect` takes
//! the unprefixed forms):
//!
//! - `--dest-tls-verify=false`: plain HTTP to the registry (without it skopeo insists on HTTPS);
//! - `--dest-cert-dir DIR`: trust `DIR/*.crt` (put the test CA in `DIR/ca.crt`);
//! - `--dest-creds user:password` (`--dest-no-creds` for anonymous);
//! - `--preserve-digests`: without it, pushing `oci:` to `docker://` gzips uncompressed layers
//!   (new layer digests, new manifest digest; the config is unchanged). With it the blobs and
//!   the manifest go up byte for byte;
//! - `--dest-oci-accept-uncompressed-layers`: without it, pulling uncompressed layers into
//!   `oci:` gzips them too.
//!
//! Seen on the wire (skopeo 1.9.3 pushing to the registry): per blob `HEAD` (404) → `POST
//! /blobs/uploads/` → one `PATCH` carrying the whole blob → `PUT ?digest=` with an empty body;
//! then `PUT /manifests/TAG`. The `PATCH` has `Content-Length` when the blob goes up unchanged
//! and `Transfer-Encoding: chunked` when skopeo compresses on the fly. A relative upload
//! `Location` is resolved against the registry URL.

use std::process::Command;
use std::time::Duration;

use super::process::{run_bounded, Run};

/// Longest a single skopeo command may run before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// `skopeo copy --retry-times 0 [args] SRC DST`, e.g.
/// `copy(&image.reference(), "docker://127.0.0.1:5000/a/b:t", &["--dest-tls-verify=false"])`.
pub fn copy(src: &str, dst: &str, args: &[&str]) -> Run {
    let mut all = vec!["copy", "--retry-times", "0"];
    all.extend_from_slice(args);
    all.extend([src, dst]);
    run(&all)
}

/// `skopeo inspect --raw --retry-times 0 [args] IMAGE`: stdout is the manifest, byte for byte
/// (no newline added), so its SHA-256 is the manifest digest.
pub fn inspect_raw(image: &str, args: &[&str]) -> Run {
    let mut all = vec!["inspect", "--raw", "--retry-times", "0"];
    all.extend_from_slice(args);
    all.push(image);
    run(&all)
}

/// Runs `skopeo --insecure-policy --tmpdir T <args>` hermetically, bounded by [`TIMEOUT`].
pub fn run(args: &[&str]) -> Run {
    let home = tempfile::Builder::new()
        .prefix("skopeo-")
        .tempdir()
        .expect("creating a temp HOME for skopeo");
    let mut command = Command::new("skopeo");
    command
        .arg("--insecure-policy")
        .arg("--tmpdir")
        .arg(home.path())
        .args(args)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        // As root, skopeo keeps a machine-wide blob-info cache in /var/lib/containers/cache that
        // makes later pushes skip or cross-mount blobs it has seen, so one run would depend on
        // earlier ones. A non-zero value here moves that cache to $XDG_DATA_HOME.
        .env("_CONTAINERS_ROOTLESS_UID", "1")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .env_remove("CONTAINERS_REGISTRIES_CONF");
    run_bounded(command, "skopeo", TIMEOUT)
}
