//! Importers: other registry auth servers' configurations turned into a `proxy.toml`
//! (and the files it names), for `registry-gate import`.
//!
//! Each importer is a pure function from the other server's file to text: the caller
//! reads and writes the files. What cannot be carried over is reported, never
//! silently dropped, and nothing is carried over with more access than it had.

pub(crate) mod docker_auth;
