//! The `robots_file` fuzz target: the body is `registry_gate_fuzz::targets::robots_file::run`, which
//! `cargo test` also runs on the kept inputs (fuzz/regressions/README.md).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| registry_gate_fuzz::targets::robots_file::run(data));
