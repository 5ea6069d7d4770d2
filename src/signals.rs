//! Process signals: SIGTERM/SIGINT start a graceful shutdown (a second one exits at
//! once), SIGHUP reloads the configuration.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::reload;
use crate::state::State;

/// Completes on the first SIGTERM or SIGINT; a second one ends the process with
/// status 130 without draining.
pub async fn shutdown() {
    wait_for_termination().await;
    tracing::info!("shutdown signal received; send it again to exit at once");
    tokio::spawn(async {
        wait_for_termination().await;
        tracing::warn!("second shutdown signal: exiting now");
        std::process::exit(130);
    });
}

async fn wait_for_termination() {
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT; shutdown only by kill");
            std::future::pending::<()>().await;
        }
    }
}

/// Reloads on every SIGHUP until the process ends.
pub async fn reload_on_hangup(config_path: PathBuf, state: watch::Sender<Arc<State>>) {
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reload disabled");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        reload::reload(&config_path, &state);
    }
}
