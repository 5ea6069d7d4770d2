//! `Config::from_toml_str` on UTF-8 text, and the rendering of its errors (which locate the
//! offending line and column in that text).

use registry_gate::config::{Config, Error};

/// One input of the `config` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(text) {
        Ok(config) => drop(format!("{config:?}")),
        Err(e) => {
            let shown = e.to_string();
            if let Error::Parse { line, column, .. } = e {
                let lines = text.matches('\n').count() + 1;
                assert!((1..=lines).contains(&line), "{shown}");
                assert!(column >= 1, "{shown}");
            }
        }
    }
}
