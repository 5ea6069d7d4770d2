//! Process signals: SIGTERM/SIGINT start a graceful shutdown (a second one exits at
//! once); SIGHUP asks for a reload ([`crate::reload::run`] acts on it).

use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGTERM and SIGINT, listened to from the moment [`Termination::install`] runs, so
/// that neither a signal sent right after start-up nor a quick second one is missed.
pub struct Termination {
    streams: Option<(Signal, Signal)>,
}

impl Termination {
    /// Installs the handlers (logged when they cannot be: then only kill stops us).
    pub fn install() -> Self {
        let streams = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT; shutdown only by kill");
                None
            }
        };
        Termination { streams }
    }

    /// Completes on the first SIGTERM or SIGINT; a second one ends the process with
    /// status 130 without draining.
    pub async fn first(self) {
        let Some(mut streams) = self.streams else {
            return std::future::pending().await;
        };
        next(&mut streams).await;
        tracing::info!("shutdown signal received; send it again to exit at once");
        tokio::spawn(async move {
            next(&mut streams).await;
            tracing::warn!("second shutdown signal: exiting now");
            std::process::exit(130);
        });
    }
}

async fn next((term, int): &mut (Signal, Signal)) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
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
