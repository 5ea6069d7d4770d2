//! The fuzz targets' bodies, one module per target, each a `run(&[u8])` that panics when a
//! check fails. `fuzz_targets/<name>.rs` hands libFuzzer's inputs to `<name>::run`;
//! `tests/regressions.rs` hands it the kept inputs on stable, with no libFuzzer linked. So a
//! crash found once stays a test (`fuzz/regressions/README.md`).

pub mod access;
pub mod authorization;
pub mod client_cert;
pub mod config;
pub mod hash;
pub mod htpasswd;
pub mod oidc_rules;
pub mod oidc_token;
pub mod proxy_protocol;
pub mod robots_file;
pub mod route;
pub mod rules;
pub mod scope;
pub mod user_agent;

/// A target's body.
pub type Run = fn(&[u8]);

/// Every target, by its cargo-fuzz name (the `[[bin]]` name and the file name in
/// `fuzz_targets/`, `corpus/` and `regressions/`).
pub const TARGETS: &[(&str, Run)] = &[
    ("access", access::run),
    ("authorization", authorization::run),
    ("client_cert", client_cert::run),
    ("config", config::run),
    ("hash", hash::run),
    ("htpasswd", htpasswd::run),
    ("oidc_rules", oidc_rules::run),
    ("oidc_token", oidc_token::run),
    ("proxy_protocol", proxy_protocol::run),
    ("robots_file", robots_file::run),
    ("route", route::run),
    ("rules", rules::run),
    ("scope", scope::run),
    ("user_agent", user_agent::run),
];
