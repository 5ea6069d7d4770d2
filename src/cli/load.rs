//! Reading the config as every command that takes `--config` does: the file with the
//! `REGISTRY_GATE_*` overrides, and the state built from it.

use std::path::Path;

use anyhow::Context as _;

use super::Failure;
use crate::config::{self, Config};
use crate::reload::Source;
use crate::state::State;

/// The config file with the environment's `REGISTRY_GATE_*` overrides.
pub(super) fn source(path: &Path) -> Result<(Source, Config), Failure> {
    let overrides =
        config::env::overrides(std::env::vars_os()).map_err(|e| Failure::Config(e.into()))?;
    let config = Config::load_with(path, &overrides).map_err(|e| Failure::Config(e.into()))?;
    let source = Source {
        path: path.to_path_buf(),
        overrides,
    };
    Ok((source, config))
}

/// Builds the state as `serve` does. The ignored htpasswd and group file lines are
/// left to the caller to show.
pub(super) fn build(config: &Config, path: &Path) -> Result<State, Failure> {
    State::build(config)
        .with_context(|| format!("config {}", path.display()))
        .map_err(Failure::Config)
}
