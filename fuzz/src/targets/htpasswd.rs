//! `Htpasswd::parse` on lossy-UTF-8 text, then `verify` of users and passwords from it.
//!
//! The passwords are the lines' third fields (`user:hash:password`), which the parser
//! ignores, so the fuzzer can make a line verify against its own hash.

use std::path::Path;

use crate::verify_is_cheap;
use registry_gate::auth::htpasswd::Htpasswd;

/// At most this many `verify` calls per input.
const MAX_VERIFIES: usize = 4;

/// The fields of a line, split as `auth/htpasswd.rs` splits them.
struct Entry<'a> {
    user: &'a str,
    hash: &'a str,
    password: &'a str,
}

fn entries(text: &str) -> Vec<Entry<'_>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.split('\n')
        .filter_map(|line| {
            let (user, rest) = line.trim_ascii().split_once(':')?;
            let (hash, password) = rest.split_once(':').unwrap_or((rest, ""));
            Some(Entry {
                user,
                hash,
                password: password.split(':').next().unwrap_or(""),
            })
        })
        .collect()
}

/// One input of the `htpasswd` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (htpasswd, warnings) = Htpasswd::parse(&text, Path::new("fuzz"));
    for warning in &warnings {
        let shown = warning.to_string();
        assert!(shown.starts_with("fuzz:"), "warning={shown:?}");
        assert!(warning.line >= 1, "warning={shown:?}");
    }
    assert_eq!(htpasswd.users().count(), htpasswd.len());
    for user in htpasswd.users() {
        assert!(!user.is_empty() && !user.contains(':'), "user={user:?}");
    }

    // Only known users: an unknown one is checked against the bcrypt cost-10 dummy, which
    // would take most of each run. And only users whose every line has a cheap hash (see
    // `verify_is_cheap`), so that which line wins for a duplicated user does not matter.
    let entries = entries(&text);
    let cheap = |user: &str| {
        entries
            .iter()
            .filter(|e| e.user == user)
            .all(|e| verify_is_cheap(e.hash))
    };
    for entry in entries.iter().take(MAX_VERIFIES) {
        if htpasswd.get(entry.user).is_some() && cheap(entry.user) {
            htpasswd.verify(entry.user, entry.password.as_bytes());
        }
    }
}
