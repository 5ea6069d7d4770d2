//! Edits of the robots file's text for `robot create`, `rotate` and `revoke`: the
//! robot's own line is written or removed, every other line stays byte for byte.

use std::fmt;
use std::time::{Duration, SystemTime};

use ring::rand::SecureRandom;
use serde::Serialize;

use super::secret::{new_secret, Stored};
use super::{
    check_entry, check_name, content, line_name, numbered, rfc3339, skipped, Entry, Previous,
    USER_PREFIX,
};
use crate::authz::access::Action;

/// What `robot create` is asked for.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The name.
    pub name: String,
    /// Repository patterns.
    pub repos: Vec<String>,
    /// Actions.
    pub actions: Vec<Action>,
    /// How long it works from now; `None`: no expiry.
    pub expires_in: Option<Duration>,
    /// What it is for.
    pub description: String,
}

/// A secret handed out once, by `create` or `rotate`.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The user name to log in with.
    pub user: String,
    /// The secret; shown once, stored nowhere.
    pub secret: String,
    /// When the robot expires.
    pub expires: Option<SystemTime>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

impl Issued {
    /// `{"user": ..., "secret": ..., "expires": RFC 3339 or null}`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            user: &'a str,
            secret: &'a str,
            expires: Option<String>,
        }
        let out = Out {
            user: &self.user,
            secret: &self.secret,
            expires: self.expires.map(rfc3339),
        };
        // Strings and an option only: serializing cannot fail.
        serde_json::to_string(&out).unwrap_or_default()
    }
}

/// Why an edit of the robots file was refused; nothing was changed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// What was asked is not a valid robot.
    #[error("{0}")]
    Invalid(String),
    /// `create` of a name that exists.
    #[error(
        "robot {0} exists (line {1}); rotate its secret with `robot rotate`, or revoke it first"
    )]
    Exists(String, usize),
    /// `rotate` or `revoke` of a name that does not exist.
    #[error("no robot {name} in the file{}", unreadable_note(.unreadable))]
    NotFound {
        /// The name asked for.
        name: String,
        /// Lines whose robot could not be read (one of them may have been it).
        unreadable: Vec<usize>,
    },
    /// `rotate` of a robot whose line is unusable.
    #[error("robot {name}'s line {line} is unusable ({message}); fix it or revoke the robot")]
    Unusable {
        /// The name.
        name: String,
        /// Its line.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The system's random generator failed.
    #[error("the system random generator failed")]
    Random,
}

fn unreadable_note(lines: &[usize]) -> String {
    match lines {
        [] => String::new(),
        lines => {
            let list: Vec<String> = lines.iter().map(usize::to_string).collect();
            format!(" (lines {} could not be read)", list.join(", "))
        }
    }
}

/// Adds a robot for `spec` at the end of `text`. Returns the new text and the secret.
pub fn create(
    text: &str,
    spec: &Spec,
    now: SystemTime,
    rng: &dyn SecureRandom,
) -> Result<(String, Issued), EditError> {
    check_name(&spec.name).map_err(EditError::Invalid)?;
    for (number, line) in numbered(text) {
        if line_name(line).as_deref() == Some(spec.name.as_str()) {
            return Err(EditError::Exists(spec.name.clone(), number));
        }
    }
    let secret = new_secret(rng)?;
    let expires = spec.expires_in.map(|d| now + d);
    let entry = Entry {
        name: spec.name.clone(),
        repos: spec.repos.clone(),
        actions: spec.actions.iter().map(|a| a.as_str().to_owned()).collect(),
        created: rfc3339(now),
        expires: expires.map(rfc3339),
        rotated: None,
        description: spec.description.clone(),
        secret: Stored::new(&secret, rng)?.to_string(),
        previous: None,
    };
    let line = entry_line(&entry)?;
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&line);
    out.push('\n');
    let issued = Issued {
        user: format!("{USER_PREFIX}{}", spec.name),
        secret,
        expires,
    };
    Ok((out, issued))
}

/// Gives robot `name` a new secret. With a `grace`, the current secret keeps working
/// for that long (a rotation within another's grace period ends the older secret at once).
pub fn rotate(
    text: &str,
    name: &str,
    grace: Option<Duration>,
    now: SystemTime,
    rng: &dyn SecureRandom,
) -> Result<(String, Issued), EditError> {
    let (index, number) = find(text, name)?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let line = content(lines[index]);
    let unusable = |message: String| EditError::Unusable {
        name: name.to_owned(),
        line: number,
        message,
    };
    let mut entry: Entry = serde_json::from_str(line).map_err(|e| unusable(e.to_string()))?;
    let robot = check_entry(&entry).map_err(unusable)?;
    let secret = new_secret(rng)?;
    entry.previous = grace.map(|grace| Previous {
        secret: entry.secret.clone(),
        // Stored to the second, rounded up: a grace is never shorter than asked.
        until: rfc3339(round_up(now + grace)),
    });
    entry.secret = Stored::new(&secret, rng)?.to_string();
    entry.rotated = Some(rfc3339(now));
    let mut out = String::with_capacity(text.len() + 100);
    for (i, l) in lines.iter().enumerate() {
        if i == index {
            out.push_str(&entry_line(&entry)?);
            out.push_str(if l.ends_with("\r\n") { "\r\n" } else { "\n" });
        } else {
            out.push_str(l);
        }
    }
    let issued = Issued {
        user: robot.user(),
        secret,
        expires: robot.expires,
    };
    Ok((out, issued))
}

/// Removes robot `name`'s line (every line that names it).
pub fn revoke(text: &str, name: &str) -> Result<String, EditError> {
    find(text, name)?;
    Ok(text
        .split_inclusive('\n')
        .filter(|l| line_name(content(l)).as_deref() != Some(name))
        .collect())
}

/// The line index (from 0, in `split_inclusive`) and number (from 1) of robot `name`.
fn find(text: &str, name: &str) -> Result<(usize, usize), EditError> {
    let mut unreadable = Vec::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line = content(line);
        if skipped(line) {
            continue;
        }
        match line_name(line) {
            Some(n) if n == name => return Ok((index, index + 1)),
            Some(_) => {}
            None => unreadable.push(index + 1),
        }
    }
    Err(EditError::NotFound {
        name: name.to_owned(),
        unreadable,
    })
}

fn entry_line(entry: &Entry) -> Result<String, EditError> {
    check_entry(entry).map_err(EditError::Invalid)?;
    serde_json::to_string(entry).map_err(|e| EditError::Invalid(e.to_string()))
}

/// `t` rounded up to a whole second.
fn round_up(t: SystemTime) -> SystemTime {
    let past = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    match past {
        0 => t,
        n => t + Duration::from_nanos(u64::from(1_000_000_000 - n)),
    }
}
