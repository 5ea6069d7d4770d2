//! Robot accounts: machine identities (CI pipelines, cluster nodes pulling) with a
//! secret the gate made and a scope of their own, which is all they may ever do.
//!
//! Clients log in as `robot$NAME` (Harbor's convention: `$` is in no htpasswd,
//! LDAP or docker_auth user name we accept as a person's, and docker, podman, skopeo
//! and Kubernetes pull secrets pass it through as any other byte of the user).
//!
//! The robots file has one robot per line, a JSON object, so that a bad line costs
//! only its own robot, at start and on reload alike, and an edit of one robot leaves
//! every other line byte for byte. Blank lines and `#` comments are kept.
//!
//! Secrets are 256 random bits (`rgr_` and 43 base64url characters), stored as
//! HMAC-SHA256 under a random per-robot salt, compared in constant time. A slow hash
//! (bcrypt) protects a guessable password after the file leaks; a 256-bit secret
//! cannot be guessed whatever the hash, so the check can be fast: microseconds, on
//! the request's own thread, with no login cache. Expiry, revocation and the end of
//! a rotation's grace period therefore apply to the very next request.
//!
//! This module is text in, text out and knows no HTTP and no files; the caller reads
//! and writes the file.

use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::authz::access::Action;
use crate::authz::glob::Glob;
use crate::authz::rules::Rights;

/// The user-name prefix that marks a robot login.
pub const USER_PREFIX: &str = "robot$";
/// The longest robot name.
const NAME_MAX_LEN: usize = 64;
/// The most repository patterns one robot may have.
const MAX_REPOS: usize = 64;
/// The longest repository pattern (the registry's name limit).
const REPO_MAX_LEN: usize = 255;
/// The longest description.
const DESCRIPTION_MAX_LEN: usize = 500;

/// The robot name of a user name, if it is a robot's (`robot$NAME` → `NAME`).
pub fn robot_name(user: &str) -> Option<&str> {
    user.strip_prefix(USER_PREFIX)
}

/// One robot, as its line says, checked.
#[derive(Clone, Debug)]
pub struct Robot {
    /// The name (the user is `robot$NAME`).
    pub name: String,
    /// The repository patterns of its scope, as written.
    pub repos: Vec<String>,
    globs: Vec<Glob>,
    /// What it may do on a repository its patterns match.
    pub actions: Rights,
    /// When it was created.
    pub created: SystemTime,
    /// When it stops working; `None`: never.
    pub expires: Option<SystemTime>,
    /// When its secret was last rotated.
    pub rotated: Option<SystemTime>,
    /// What it is for.
    pub description: String,
    secret: Stored,
    /// The secret before the last rotation, and until when it still works.
    previous: Option<(Stored, SystemTime)>,
}

impl Robot {
    /// The user name it logs in with.
    pub fn user(&self) -> String {
        format!("{USER_PREFIX}{}", self.name)
    }

    /// What it may do on `repository`: its actions if a pattern matches, else nothing.
    pub fn rights(&self, repository: &str) -> Rights {
        if self.globs.iter().any(|g| g.matches(repository)) {
            self.actions
        } else {
            Rights::NONE
        }
    }

    /// Until when the secret from before the last rotation still works, if it does at `now`.
    pub fn grace_until(&self, now: SystemTime) -> Option<SystemTime> {
        self.previous
            .as_ref()
            .map(|(_, until)| *until)
            .filter(|until| *until > now)
    }
}

/// Why a robot login was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No usable robot has this name (none, or its line is unusable).
    #[error("no such robot")]
    Unknown,
    /// The secret is not the robot's.
    #[error("wrong secret")]
    Secret,
    /// The secret is the one from before the last rotation, and its grace period is over.
    #[error("secret replaced by a rotation; its grace period ended at {}", rfc3339(*.0))]
    Rotated(SystemTime),
    /// The robot expired.
    #[error("expired at {}", rfc3339(*.0))]
    Expired(SystemTime),
}

/// A line of the robots file that was skipped: its robot cannot log in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The line, from 1.
    pub line: usize,
    /// The robot the line names, if that much could be read.
    pub name: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "line {}: robot {name}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// The usable robots of a file.
#[derive(Clone, Debug, Default)]
pub struct Robots {
    by_name: HashMap<String, Robot>,
    /// A stored secret to check unknown names against, so an unknown name costs the
    /// same as a wrong secret.
    dummy: Option<Stored>,
}

impl Robots {
    /// Reads a robots file's text. Every unusable line is a warning and only its own
    /// robot is missing; a name on two lines is refused on both (neither can be the
    /// one an operator meant to keep), also when one of the two cannot be read.
    pub fn parse(text: &str) -> (Robots, Vec<Warning>) {
        let mut warnings = Vec::new();
        let mut lines: HashMap<String, (usize, Robot)> = HashMap::new();
        let mut duplicates: HashMap<String, Vec<usize>> = HashMap::new();
        for (number, line) in numbered(text) {
            match parse_line(line) {
                Ok(robot) => {
                    if let Some((first, _)) = lines.get(&robot.name) {
                        duplicates
                            .entry(robot.name.clone())
                            .or_insert_with(|| vec![*first])
                            .push(number);
                    } else {
                        lines.insert(robot.name.clone(), (number, robot));
                    }
                }
                Err((name, message)) => warnings.push(Warning {
                    line: number,
                    name,
                    message,
                }),
            }
        }
        // A name on an unusable line is on two lines too: the usable one may be the
        // copy an operator meant to replace (a narrowed scope with a typo), so
        // neither logs in.
        let unusable: Vec<(String, usize)> = warnings
            .iter()
            .filter_map(|w: &Warning| w.name.clone().map(|n| (n, w.line)))
            .collect();
        for (name, bad) in unusable {
            if let Some((good, _)) = lines.remove(&name) {
                warnings.push(Warning {
                    line: good,
                    name: Some(name),
                    message: format!(
                        "the name is also on line {bad}, which cannot be read; fix or remove that line"
                    ),
                });
            }
        }
        for (name, numbers) in duplicates {
            lines.remove(&name);
            for line in numbers {
                warnings.push(Warning {
                    line,
                    name: Some(name.clone()),
                    message: "the name is on more than one line; remove all but one".into(),
                });
            }
        }
        warnings.sort_by_key(|w| w.line);
        let by_name: HashMap<String, Robot> = lines.into_iter().map(|(n, (_, r))| (n, r)).collect();
        let dummy = by_name.values().next().map(|r| r.secret.clone());
        (Robots { by_name, dummy }, warnings)
    }

    /// The robot `name` if `secret` is its secret (or the one before its last
    /// rotation, within the grace period) and it has not expired at `now`.
    pub fn check(&self, name: &str, secret: &str, now: SystemTime) -> Result<&Robot, Refusal> {
        let Some(robot) = self.by_name.get(name) else {
            if let Some(dummy) = &self.dummy {
                dummy.matches(secret);
            }
            return Err(Refusal::Unknown);
        };
        if !robot.secret.matches(secret) {
            match &robot.previous {
                Some((old, until)) if old.matches(secret) => {
                    if *until <= now {
                        return Err(Refusal::Rotated(*until));
                    }
                }
                _ => return Err(Refusal::Secret),
            }
        }
        match robot.expires {
            Some(at) if at <= now => Err(Refusal::Expired(at)),
            _ => Ok(robot),
        }
    }

    /// The robot `name`, however its secret stands.
    pub fn get(&self, name: &str) -> Option<&Robot> {
        self.by_name.get(name)
    }

    /// Every usable robot, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Robot> {
        let mut robots: Vec<&Robot> = self.by_name.values().collect();
        robots.sort_by(|a, b| a.name.cmp(&b.name));
        robots.into_iter()
    }

    /// How many robots can log in.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no robot can log in.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// The lines that hold robots, numbered from 1.
fn numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .map(content)
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !skipped(l))
}

/// A line without its line ending (`\n`, `\r\n`): the one place that says what a
/// line of the file is, for reading it and for editing it.
fn content(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// Blank lines and comments.
fn skipped(line: &str) -> bool {
    let line = line.trim();
    line.is_empty() || line.starts_with('#')
}

/// The `name` a line gives, if it is a JSON object with a string `name`.
fn line_name(line: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Named {
        name: String,
    }
    serde_json::from_str::<Named>(line).ok().map(|n| n.name)
}

/// A line as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    repos: Vec<String>,
    actions: Vec<String>,
    created: String,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    rotated: Option<String>,
    #[serde(default)]
    description: String,
    secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<Previous>,
}

/// The secret before the last rotation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Previous {
    secret: String,
    until: String,
}

/// One line to a robot, or (the name if readable, what is wrong).
fn parse_line(line: &str) -> Result<Robot, (Option<String>, String)> {
    let entry: Entry = serde_json::from_str(line).map_err(|e| {
        (
            line_name(line),
            format!("not a robot entry (a JSON object on one line): {e}"),
        )
    })?;
    check_entry(&entry).map_err(|m| (Some(entry.name.clone()), m))
}

fn check_entry(entry: &Entry) -> Result<Robot, String> {
    check_name(&entry.name)?;
    if entry.repos.is_empty() {
        return Err("no repository pattern (`repos`)".into());
    }
    if entry.repos.len() > MAX_REPOS {
        return Err(format!("more than {MAX_REPOS} repository patterns"));
    }
    for repo in &entry.repos {
        check_repo(repo)?;
    }
    let actions = Rights::of(&parse_actions(&entry.actions)?);
    if entry.description.len() > DESCRIPTION_MAX_LEN
        || entry.description.chars().any(char::is_control)
    {
        return Err(format!(
            "the description must be at most {DESCRIPTION_MAX_LEN} bytes without control characters"
        ));
    }
    let time = |what: &str, value: &str| {
        humantime::parse_rfc3339(value)
            .map_err(|e| format!("`{what}` is not an RFC 3339 time ({value:?}): {e}"))
    };
    let previous = match &entry.previous {
        Some(p) => Some((Stored::parse(&p.secret)?, time("previous.until", &p.until)?)),
        None => None,
    };
    Ok(Robot {
        name: entry.name.clone(),
        repos: entry.repos.clone(),
        globs: entry.repos.iter().map(|r| Glob::name(r)).collect(),
        actions,
        created: time("created", &entry.created)?,
        expires: entry
            .expires
            .as_deref()
            .map(|e| time("expires", e))
            .transpose()?,
        rotated: entry
            .rotated
            .as_deref()
            .map(|r| time("rotated", r))
            .transpose()?,
        description: entry.description.clone(),
        secret: Stored::parse(&entry.secret)?,
        previous,
    })
}

/// A robot name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "robot name {name:?}: use 1 to {NAME_MAX_LEN} of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit"
        ))
    }
}

/// A repository pattern: the registry's name characters, `/`, and the globs `*`, `**`, `?`.
pub fn check_repo(pattern: &str) -> Result<(), String> {
    let ok = !pattern.is_empty()
        && pattern.len() <= REPO_MAX_LEN
        && !pattern.starts_with('/')
        && !pattern.ends_with('/')
        && !pattern.contains("//")
        && pattern
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/*?".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "repository pattern {pattern:?}: use a-z, 0-9, `.`, `_`, `-`, `/` and the globs `*`, `**`, `?` (at most {REPO_MAX_LEN} bytes, no empty segment)"
        ))
    }
}

/// `pull`, `push`, `delete`; push and delete need pull too, as the registry checks.
/// The one reader of actions, for the file and for `robot create --actions` alike.
pub fn parse_actions<S: AsRef<str>>(words: &[S]) -> Result<Vec<Action>, String> {
    let mut actions = Vec::new();
    for word in words {
        let action = match word.as_ref() {
            "pull" => Action::Pull,
            "push" => Action::Push,
            "delete" => Action::Delete,
            other => {
                return Err(format!(
                    "action {other:?}: the actions are pull, push and delete"
                ))
            }
        };
        actions.push(action);
    }
    if actions.is_empty() {
        return Err("no action: give pull, and push or delete if it needs them".into());
    }
    if !actions.contains(&Action::Pull) {
        return Err("push and delete need pull too (the registry checks both): add pull".into());
    }
    Ok(actions)
}

/// A time as RFC 3339 in UTC, to the second.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

mod edit;
mod secret;

pub use self::edit::{create, revoke, rotate, EditError, Issued, Spec};
use self::secret::Stored;

#[cfg(test)]
mod tests;
