//! Reloading: build a whole new [`State`] from the config file, swap it in on
//! success, keep the old one on any error.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::state::State;

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
    keys
}

/// Re-reads the config file and everything it names. Returns whether the new
/// state was swapped in.
pub fn reload(config_path: &Path, state: &watch::Sender<Arc<State>>) -> bool {
    let built = Config::load(config_path)
        .map_err(|e| e.to_string())
        .and_then(|config| State::build(&config).map_err(|e| format!("{e:#}")));
    match built {
        Ok(new) => {
            let pending = needs_restart(&state.borrow(), &new);
            let summary = new.summary();
            state.send_replace(Arc::new(new));
            tracing::info!(%summary, "configuration reloaded");
            if !pending.is_empty() {
                tracing::warn!(keys = %pending.join(", "), "changed keys apply after a restart");
            }
            true
        }
        Err(error) => {
            tracing::error!(%error, path = %config_path.display(), "reload failed; keeping the running configuration");
            false
        }
    }
}
