//! Reloading: build a whole new [`State`] from the config file, swap it in on
//! success, keep the old one on any error.
//!
//! A reload happens on SIGHUP and when a watched file (the config, the
//! certificate and key, the client CAs and OCSP response of `[tls]`, the htpasswd
//! file, the upstream CA, and the others `State::watched_files` lists) changes:
//! every `reload.watch_interval` their size, modification time and inode are
//! compared with the last ones seen. Polling, rather than inotify, also sees a file
//! replaced by rename or a Kubernetes secret's symlink swap.
//!
//! Every `[tls]` key applies on reload: each new connection's handshake uses the
//! newest server configuration, and open connections keep the one they began with.
//! The session-ticket keys survive a reload unless the ticket lifetime, the
//! certificate or the client CAs changed (see `tls::Tickets`).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::chain::error_chain;
use crate::config::{Config, Override};
use crate::signals;
use crate::state::{State, Strictness};

/// What changed between two states that a reload cannot apply.
pub fn needs_restart(old: &State, new: &State) -> Vec<String> {
    let mut keys = Vec::new();
    if old.listen_addr != new.listen_addr {
        keys.push(format!(
            "listen.addr ({} -> {})",
            old.listen_addr, new.listen_addr
        ));
    }
    if old.max_connections != new.max_connections {
        keys.push("listen.max_connections".to_string());
    }
    if old.admin_addr != new.admin_addr {
        keys.push("admin.addr / admin.enabled".to_string());
    }
    if old.log_format != new.log_format {
        keys.push("log.format".to_string());
    }
    keys
}

/// Re-reads the config file (with the environment's overrides) and everything it
/// names. Returns whether the new state was swapped in.
pub fn reload(source: &Source, state: &watch::Sender<Arc<State>>) -> bool {
    let config_path = source.path.as_path();
    let built = Config::load_with(config_path, &source.overrides)
        .map_err(|e| e.to_string())
        .and_then(|config| {
            State::build_from(&config, Strictness::Strict, Some(&state.borrow()))
                .map_err(|e| error_chain(&e))
        });
    match built {
        Ok(mut new) => {
            new.carry_over_from(&state.borrow());
            let pending = needs_restart(&state.borrow(), &new);
            let summary = new.summary();
            new.metrics.reload(true);
            state.send_replace(Arc::new(new));
            tracing::info!(%summary, "configuration reloaded");
            if !pending.is_empty() {
                tracing::warn!(keys = %pending.join(", "), "changed keys apply after a restart");
            }
            true
        }
        Err(error) => {
            state.borrow().metrics.reload(false);
            tracing::error!(%error, path = %config_path.display(), "reload failed; keeping the running configuration");
            false
        }
    }
}

/// What is known of one watched file: size, modification time and inode, or
/// nothing when it cannot be read.
type Stamp = Option<(u64, SystemTime, u64)>;

fn stamps(config_path: &Path, state: &State) -> Vec<Stamp> {
    std::iter::once(config_path)
        .chain(state.watched_files.iter().map(PathBuf::as_path))
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.len(), m.modified().ok()?, m.ino()))
        })
        .collect()
}

/// Where the configuration comes from: the file and the environment's overrides
/// (read once at start).
#[derive(Clone, Debug)]
pub struct Source {
    /// The config file.
    pub path: PathBuf,
    /// `REGISTRY_GATE_*` overrides.
    pub overrides: Vec<Override>,
}

/// Reloads on SIGHUP and when a watched file changes, until the process ends.
pub async fn run(source: Source, state: watch::Sender<Arc<State>>) {
    let config_path = source.path.clone();
    let mut hangups = signals::hangups();
    let mut seen = stamps(&config_path, &state.borrow());
    loop {
        let interval = state.borrow().watch_interval;
        let tick = async {
            if interval.is_zero() {
                std::future::pending::<()>().await;
            } else {
                tokio::time::sleep(interval).await;
            }
        };
        let hangup = async {
            match hangups.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let by_signal = tokio::select! {
            () = hangup => true,
            () = tick => false,
        };
        // Stamped before reading: a change made while the reload reads the files
        // shows up as a difference on the next tick.
        let current = stamps(&config_path, &state.borrow());
        if !by_signal && current == seen {
            continue;
        }
        seen = current;
        let cause = if by_signal {
            "SIGHUP"
        } else {
            "a watched file changed"
        };
        tracing::info!(cause, "reloading");
        let (source, sender) = (source.clone(), state.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || reload(&source, &sender)).await {
            tracing::error!(error = %e, "reload task failed");
        }
    }
}
