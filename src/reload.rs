//! Reloading: build a new [`State`] from the config file and swap it in.
//!
//! The user sources (the htpasswd and group files, `[authz] groups`) always apply:
//! whom you remove is out, whatever else is wrong. Their unusable lines are ignored
//! as at start. A part that cannot be built (a bad certificate, rules file or token
//! key, an unreadable htpasswd file, ...) keeps its running value and is logged at
//! ERROR with its key; the reload then counts as failed in the metrics, but the
//! rest is in force. A config file that cannot be loaded (a syntax error, a bad
//! value) is logged likewise, and the state is rebuilt from the last good config,
//! so the user files it names are read again.
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
use crate::proxy::upstream::probe;
use crate::signals;
use crate::state::{IgnoredLine, Rebuilt, State};

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
/// names, falling back on `last_good` when the file cannot be loaded (and replacing
/// it when it can), and swaps the new state in. Returns whether every part applied.
pub fn reload(source: &Source, last_good: &mut Config, state: &watch::Sender<Arc<State>>) -> bool {
    let config_path = source.path.as_path();
    let mut complete = true;
    match Config::load_with(config_path, &source.overrides) {
        Ok(config) => *last_good = config,
        Err(error) => {
            complete = false;
            tracing::error!(
                %error,
                path = %config_path.display(),
                "reload failed: the config file cannot be used; the last good one is applied \
                 again, with the files it names read anew"
            );
        }
    }
    let previous = state.borrow().clone();
    let Rebuilt {
        state: mut new,
        kept,
    } = State::rebuild(last_good, &previous);
    complete &= kept.is_empty();
    new.carry_over_from(&previous);
    let pending = needs_restart(&previous, &new);
    new.metrics.reload(complete);
    let new = Arc::new(new);
    state.send_replace(new.clone());
    // Logged once in force, so that a line in the log means the state serves.
    for part in &kept {
        tracing::error!(
            key = part.key,
            error = %error_chain(&part.error),
            "reload failed for this key: it keeps its running value; the rest applies"
        );
    }
    new.ignored_lines.iter().for_each(IgnoredLine::log);
    let summary = new.summary();
    if complete {
        tracing::info!(%summary, "configuration reloaded");
    } else {
        let keys: Vec<_> = kept.iter().map(|k| k.key).collect();
        tracing::warn!(%summary, kept = %keys.join(", "), "configuration partly reloaded");
    }
    if !pending.is_empty() {
        tracing::warn!(keys = %pending.join(", "), "changed keys apply after a restart");
    }
    complete
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
/// `config` is the one the running state was built from. The registry is probed
/// ([`probe`]) once now and again after each reload, without waiting for it.
pub async fn run(source: Source, config: Config, state: watch::Sender<Arc<State>>) {
    probe::spawn(&state.borrow());
    let config_path = source.path.clone();
    let last_good = Arc::new(parking_lot::Mutex::new(config));
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
        let (source, sender, last_good) = (source.clone(), state.clone(), last_good.clone());
        let task = move || reload(&source, &mut last_good.lock(), &sender);
        if let Err(e) = tokio::task::spawn_blocking(task).await {
            tracing::error!(error = %e, "reload task failed");
        }
        probe::spawn(&state.borrow());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogFormat;

    /// Two states built from one config (a certificate in a temp directory) so
    /// that each test changes only the fields it means to.
    fn two_states() -> (tempfile::TempDir, State, State) {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = crate::tls::generate(&["localhost".to_string()]).expect("certificates");
        let cert = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        std::fs::write(&cert, &certs.server_cert).expect("write the certificate");
        std::fs::write(&key, &certs.server_key).expect("write the key");
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, "alice:{PLAIN}pw\n").expect("write the htpasswd file");
        let text = format!(
            "[listen]\naddr = \"127.0.0.1:5000\"\n\
             [tls]\ncert = {:?}\nkey = {:?}\n\
             [upstream]\nurl = \"http://127.0.0.1:9\"\n\
             [auth]\nhtpasswd = {:?}\n",
            cert.display().to_string(),
            key.display().to_string(),
            htpasswd.display().to_string(),
        );
        let config = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let old = State::build(&config).expect("old state builds");
        let new = State::build(&config).expect("new state builds");
        (dir, old, new)
    }

    #[test]
    fn equal_states_need_no_restart() {
        let (_dir, old, new) = two_states();
        assert_eq!(needs_restart(&old, &new), Vec::<String>::new());
    }

    #[test]
    fn each_restart_key_is_named_once_and_in_order() {
        let (_dir, old, mut new) = two_states();
        new.listen_addr = "127.0.0.1:5001".parse().expect("an address");
        new.max_connections = old.max_connections + 1;
        new.admin_addr = match old.admin_addr {
            Some(_) => None,
            None => Some("127.0.0.1:9090".parse().expect("an address")),
        };
        new.log_format = match old.log_format {
            LogFormat::Text => LogFormat::Json,
            LogFormat::Json => LogFormat::Text,
        };
        assert_eq!(
            needs_restart(&old, &new),
            vec![
                "listen.addr (127.0.0.1:5000 -> 127.0.0.1:5001)".to_string(),
                "listen.max_connections".to_string(),
                "admin.addr / admin.enabled".to_string(),
                "log.format".to_string(),
            ]
        );
    }

    #[test]
    fn a_lone_change_names_only_its_key() {
        let (_dir, old, mut new) = two_states();
        new.max_connections = old.max_connections + 1;
        assert_eq!(needs_restart(&old, &new), vec!["listen.max_connections"]);
        let (_dir, old, mut new) = two_states();
        new.admin_addr = match old.admin_addr {
            Some(_) => None,
            None => Some("127.0.0.1:9090".parse().expect("an address")),
        };
        assert_eq!(
            needs_restart(&old, &new),
            vec!["admin.addr / admin.enabled"]
        );
    }
}
