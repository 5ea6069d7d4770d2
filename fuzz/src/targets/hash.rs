//! `PasswordHash::parse` on any text, then `verify` when the hash is cheap to check.
//!
//! Input: the hash field, then optionally `\n` and the password bytes. The hash is read as
//! lossy UTF-8, as an htpasswd line would reach the parser.

use crate::verify_is_cheap;
use registry_gate::auth::hash::{Error, PasswordHash};

/// The longest scheme prefix an error may echo (`MAX_SCHEME_LEN` in `auth/hash.rs`).
const MAX_ECHOED_PREFIX: usize = 24;

/// One input of the `hash` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let (hash, password) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let hash = String::from_utf8_lossy(hash);
    match PasswordHash::parse(&hash) {
        Ok(parsed) => {
            // `Debug` shows the scheme only: every valid hash has a `$`, a `{...}` prefix or
            // 13 crypt characters, none of which the `Debug` text can contain.
            let shown = format!("{parsed:?}");
            assert!(!shown.contains(&*hash), "Debug shows the hash: {shown}");
            // A valid but deliberately slow hash (bcrypt cost 31, yescrypt asking for
            // 1 GiB) would take seconds to minutes: not a bug, but libFuzzer would stop on a
            // timeout. `verify_is_cheap` reads the cost from the text itself.
            if verify_is_cheap(&hash) {
                parsed.verify(password);
            }
        }
        // Errors are logged, so they may echo a short scheme prefix and nothing more.
        Err(Error::UnsupportedScheme { scheme }) => {
            assert!(hash.starts_with(&scheme), "scheme={scheme:?}");
            assert!(scheme.len() <= MAX_ECHOED_PREFIX, "scheme={scheme:?}");
        }
        Err(Error::Empty | Error::NoScheme | Error::Malformed { .. }) => {}
    }
}
