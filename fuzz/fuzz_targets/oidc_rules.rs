//! The `oidc_rules` fuzz target: the body is `registry_gate_fuzz::targets::oidc_rules::run`, which
//! `cargo test` also runs on the kept inputs (fuzz/regressions/README.md).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| registry_gate_fuzz::targets::oidc_rules::run(data));
