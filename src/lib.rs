//! registry-gate: an authenticating TLS reverse proxy for Docker/OCI registries.
//!
//! It stands in front of a CNCF distribution registry (`registry:2`), terminates
//! TLS, checks credentials, refuses pre-1.6 docker clients, sets the forwarding
//! headers the registry builds its upload URLs from, and streams everything else
//! through untouched.
//!
//! # Layout
//!
//! - [`cli`]: command line (`serve`, `check-config`, `certs generate`, `import`, ...).
//! - [`server`]: accept loop, TLS handshake, HTTP/1.1 + HTTP/2, graceful shutdown.
//! - [`proxy`]: the request pipeline as phases, its error type and streaming bodies.
//! - [`state`]: the built, immutable runtime form of the config; the unit of reload.
//! - [`signals`], [`reload`]: SIGTERM/SIGINT shutdown and SIGHUP reload.
//! - [`config`]: the `proxy.toml` structs, newtypes, defaults and validation.
//! - `der`: a bounded DER reader for the few certificate, key and OCSP fields read by hand.
//! - [`tls`]: PEM files to rustls configs; certificate generation.
//! - [`token`]: token mode: the token server's scope grammar, grants and JWTs.
//! - [`authz`]: rules, and [`authz::policy`], the one answer to "may this identity (or
//!   anonymous) do these actions on this resource" that every front door asks.
//! - [`upstream`]: the keep-alive connection pool to the registry.
//! - [`probe`]: one `GET /v2/` to the registry at start and after each reload, logged.
//! - [`auth`]: credentials → identity, with no HTTP types: [`auth::login`] (one entry per
//!   credential kind: throttle, verification, groups, login metrics), htpasswd and hashes.
//! - [`htpasswd_edit`]: the `htpasswd` subcommand's file edits and password checks.
//! - [`import`]: other auth servers' configs (docker_auth) to a `proxy.toml`.
//! - [`basic`]: the `Authorization: Basic` header to plain strings.
//! - [`chain`]: an error and its sources as one log line.
//! - [`headers`]: hop-by-hop removal, forwarding headers, the API-version header.
//! - [`route`]: which paths go to the registry, and which are refused.
//! - [`throttle`]: failed-login counters per client address and user; 429 past the limits.
//! - [`ua`]: the user-agent blocklist.
//! - [`admin`]: the admin listener (`/metrics`, `/healthz`, `/readyz`).
//! - [`metrics`]: the counters, gauges and histograms behind `/metrics`.
//! - [`proxy_protocol`]: PROXY protocol v1/v2 headers from a balancer.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod admin;
pub mod auth;
pub mod authz;
pub mod basic;
pub mod chain;
pub mod cli;
pub mod config;
pub(crate) mod der;
pub mod headers;
pub mod htpasswd_edit;
pub mod import;
pub mod metrics;
pub mod probe;
pub mod proxy;
pub mod proxy_protocol;
pub mod reload;
pub mod route;
pub mod server;
pub mod signals;
pub mod state;
pub mod throttle;
pub mod tls;
pub mod token;
pub mod ua;
pub mod upstream;
