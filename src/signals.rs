//! Process signals: SIGTERM/SIGINT start a graceful shutdown (a second one exits at
//! once); SIGHUP asks for a reload ([`crate::reload::run`] acts on it).

use tokio::signal::unix::{signal, Signal, SignalKind};

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

/// The SIGHUP stream, or `None` (logged) when it cannot be set up.
pub fn hangups() -> Option<Signal> {
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reload by signal disabled");
            None
        }
    }
}
