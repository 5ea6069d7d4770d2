//! `serve` (the default command): bind, log the start line, and run the gate, the
//! admin listener and the reloader until a termination signal.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use super::load::{build, source};
use super::{bind, expiry, logging, Failure};
use crate::server::admin;
use crate::{reload, server, signals};

/// Runs the gate on the config at `path` until SIGTERM or SIGINT.
pub(super) fn run(path: &Path) -> Result<(), Failure> {
    let (source, config) = source(path)?;
    logging::init(config.log.format);
    for o in &source.overrides {
        tracing::info!(var = %o.var, key = %o.key_path(), "config key set from the environment");
    }
    let state = build(&config, path)?;
    state
        .ignored_lines
        .iter()
        .for_each(crate::state::IgnoredLine::log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::Runtime)?;
    runtime.block_on(async {
        let listener = bind::bind(bind::Listener::Listen, state.listen_addr)
            .await
            .map_err(Failure::Runtime)?;
        let bound = listener
            .local_addr()
            .context("reading the bound address")
            .map_err(Failure::Runtime)?;
        let admin = match state.admin_addr {
            Some(addr) => Some(
                bind::bind(bind::Listener::Admin, addr)
                    .await
                    .map_err(Failure::Runtime)?,
            ),
            None => None,
        };
        let termination = signals::Termination::install();
        let upstream = state
            .upstream
            .as_ref()
            .and_then(|u| u.uri_for(None).ok())
            .map_or_else(|| "none (token server)".into(), |u| u.to_string());
        let expiry = expiry::Expiry::of(&config.tls.cert);
        tracing::info!(
            addr = %bound,
            config = %path.display(),
            version = %env!("CARGO_PKG_VERSION"),
            cert_not_after = %expiry.not_after(),
            cert_days_left = %expiry.days_left(),
            upstream = %upstream,
            summary = %state.summary(),
            "listening"
        );
        expiry.warn_if_near(&config.tls.cert);
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(state));
        let (draining_tx, draining) = tokio::sync::watch::channel(false);
        if let Some(admin) = admin {
            if let Ok(addr) = admin.local_addr() {
                tracing::info!(%addr, "admin listening (/metrics, /healthz, /readyz)");
            }
            tokio::spawn(admin::run(admin, rx.clone(), draining));
        }
        tokio::spawn(reload::run(source, config, tx));
        let shutdown = async move {
            termination.first().await;
            draining_tx.send_replace(true);
        };
        server::run(listener, rx, shutdown).await;
        tracing::info!("stopped");
        Ok(())
    })
}
