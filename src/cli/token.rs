//! `token jwks`: the public keys of `[token]` as a JWKS, for the registry.

use std::path::Path;

use anyhow::Context as _;

use super::load::source;
use super::stdout::outln;
use super::Failure;

/// Prints the JWKS of the configured token keys.
pub(super) fn jwks(path: &Path) -> Result<(), Failure> {
    let (_, config) = source(path)?;
    let Some(token) = &config.token else {
        return Err(Failure::Config(anyhow::anyhow!(
            "{}: no [token] section",
            path.display()
        )));
    };
    let service = crate::token::service::TokenService::load(token)
        .map_err(|e| Failure::Config(anyhow::Error::new(e)))?;
    let text = serde_json::to_string_pretty(&service.jwks())
        .context("encoding the JWKS")
        .map_err(Failure::Runtime)?;
    outln!("{text}")?;
    Ok(())
}
