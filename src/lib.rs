//! registry-gate: an authenticating TLS reverse proxy for Docker/OCI registries.
//!
//! It stands in front of a CNCF distribution registry (`registry:2`), terminates
//! TLS, checks credentials, refuses pre-1.6 docker clients, sets the forwarding
//! headers the registry builds its upload URLs from, and streams everything else
//! through untouched.
//!
//! # Layout
//!
//! Fifteen top-level modules; each behaviour has one home. Internal modules are
//! `pub(crate)`; read them with `cargo doc --document-private-items`.
//!
//! - [`cli`]: command line (`serve`, `check-config`, `certs generate`, `import`, ...).
//! - [`config`]: the `proxy.toml` structs, range-checked value types, defaults and validation.
//! - [`state`]: the built, immutable runtime form of the config; the unit of reload.
//! - [`reload`]: SIGHUP reload: rebuild a [`state::State`], swap it in, say what needs a restart.
//! - [`signals`]: SIGTERM/SIGINT shutdown and the SIGHUP stream.
//! - [`server`]: accept loop, PROXY protocol, TLS handshake, HTTP/1.1 + HTTP/2, timeouts,
//!   graceful shutdown, and the admin listener (`/metrics`, `/healthz`, `/readyz`).
//! - [`proxy`]: the request pipeline as phases (route, user agent, authenticate, authorize,
//!   forward), its one error type, the forwarding headers, streaming bodies, the token
//!   endpoint and the keep-alive pool to the registry with its start-up probe.
//! - [`auth`]: credentials → identity, with no HTTP types: [`auth::login`] (one entry per
//!   credential kind: throttle, verification, groups, login metrics), the throttle, htpasswd
//!   files and their edits, password hashes, LDAP.
//! - [`authz`]: rules, and [`authz::policy`], the one answer to "may this identity (or
//!   anonymous) do these actions on this resource" that every front door asks.
//! - [`token`]: token mode: the token server's scope grammar, grants, keys and JWTs.
//! - [`tls`]: PEM files to rustls configs, client certificates, OCSP, ticket keys,
//!   certificate generation, and a bounded DER reader.
//! - [`import`]: other auth servers' configs (docker_auth) to a `proxy.toml`.
//! - [`metrics`]: the counters, gauges and histograms behind `/metrics`.
//! - [`chain`]: an error and its sources as one log line.
//! - [`log_batch`]: the log writer; a worker thread's lines go out in batches.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]
// The docs link to internal modules; they resolve under `--document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod auth;
pub mod authz;
pub(crate) mod chain;
pub mod cli;
pub mod config;
pub mod import;
pub(crate) mod log_batch;
pub(crate) mod metrics;
pub mod proxy;
pub(crate) mod reload;
pub mod server;
pub(crate) mod signals;
pub mod state;
pub mod tls;
pub mod token;
