//! `check-config`: the load and build `serve` would do, then the resolved config.

use std::path::Path;

use anyhow::Context as _;

use super::load::{build, source};
use super::stdout::{out, outln};
use super::Failure;

/// Checks what `serve` would do with the config: what would stop it is an error
/// (exit 64); an htpasswd or group file line it would ignore (costing only its own
/// user) is a warning on stderr, `warning: file:line: reason`, one per line.
/// The resolved config goes to stdout as TOML, itself a valid config file. It holds
/// no secret values: secrets stay in the files it names.
pub(super) fn run(path: &Path) -> Result<(), Failure> {
    let (source, config) = source(path)?;
    let state = build(&config, path)?;
    for line in &state.ignored_lines {
        eprintln!("warning: {line}: {}", ignored_effect(line));
    }
    let resolved = toml::to_string(&config)
        .context("printing the resolved config")
        .map_err(Failure::Runtime)?;
    let from_env: Vec<_> = source.overrides.iter().map(|o| o.var.as_str()).collect();
    outln!("# {}: ok ({})", path.display(), state.summary())?;
    if !from_env.is_empty() {
        outln!("# environment overrides: {}", from_env.join(", "))?;
    }
    out!("{resolved}")?;
    Ok(())
}

/// What ignoring `line` means, for `check-config`.
fn ignored_effect(line: &crate::state::IgnoredLine) -> &'static str {
    match line {
        crate::state::IgnoredLine::Htpasswd(_) => "line ignored, as serve and reload ignore it",
        crate::state::IgnoredLine::Groups(_) => {
            "line ignored (its memberships do not count), as serve and reload ignore it"
        }
        crate::state::IgnoredLine::Robots(..) => {
            "line ignored (its robot cannot log in), as serve and reload ignore it"
        }
    }
}
