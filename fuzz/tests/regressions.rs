//! Kept fuzz inputs as regression tests (issue #11): every file in
//! `fuzz/regressions/<target>/` (crashes `scripts/fuzz` found, kept once fixed) and every
//! tracked seed, `fuzz/corpus/<target>/seed-*`, runs through the target's body, as libFuzzer
//! would run it, on stable and without libFuzzer:
//!
//!     cargo test --manifest-path fuzz/Cargo.toml --no-default-features
//!
//! Every input runs, and the test then names each one that panicked.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

use registry_gate_fuzz::targets::TARGETS;

/// The fuzz crate's directory.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files directly in `dir` whose names `keep` accepts, sorted; none if `dir` is missing.
fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .map(|e| {
            e.expect("a directory entry of a fuzz input directory")
                .path()
        })
        .filter(|p| p.is_file())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&keep))
        .collect();
    found.sort();
    found
}

/// The names of the subdirectories of `dir`.
fn subdirs(dir: &Path) -> Vec<String> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .map(|p| {
            p.file_name()
                .expect("a subdirectory has a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn kept_inputs_pass() {
    let mut ran = 0;
    let mut failed = Vec::new();
    for &(name, run) in TARGETS {
        let seeds = files(&root().join("corpus").join(name), |f| {
            f.starts_with("seed-")
        });
        // README.md and other dot-less notes are not inputs; libFuzzer names reproducers
        // crash-*, timeout-*, oom-*, slow-unit-* and leak-*.
        let kept = files(&root().join("regressions").join(name), |f| {
            !f.ends_with(".md")
        });
        assert!(
            !seeds.is_empty(),
            "{name}: no fuzz/corpus/{name}/seed-* files"
        );
        for path in seeds.iter().chain(&kept) {
            let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            ran += 1;
            if panic::catch_unwind(|| run(&data)).is_err() {
                failed.push(
                    path.strip_prefix(root())
                        .unwrap_or(path)
                        .display()
                        .to_string(),
                );
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {ran} kept inputs panicked (messages above): {}",
        failed.len(),
        failed.join(", ")
    );
    assert!(ran >= TARGETS.len());
}

/// Every `fuzz_targets/*.rs`, every corpus directory and every regressions directory is a
/// target in `TARGETS`, so that no input is skipped for a misspelt or forgotten name.
#[test]
fn every_target_is_replayed() {
    let known: Vec<&str> = TARGETS.iter().map(|&(name, _)| name).collect();
    let binaries = files(&root().join("fuzz_targets"), |f| f.ends_with(".rs"));
    let mut binaries: Vec<String> = binaries
        .iter()
        .map(|p| {
            p.file_stem()
                .expect("a file has a stem")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    binaries.sort();
    assert_eq!(binaries, known, "fuzz_targets/ against TARGETS");
    for dir in ["corpus", "regressions"] {
        for name in subdirs(&root().join(dir)) {
            assert!(
                known.contains(&name.as_str()),
                "fuzz/{dir}/{name}: not a target"
            );
        }
    }
}
