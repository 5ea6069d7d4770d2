//! The `htpasswd` subcommand's work: add or update a user in an htpasswd file, and check a
//! password against one, so that no Apache tools are needed to run the gate.
//!
//! The gate itself only reads htpasswd files ([`crate::auth::htpasswd`]). Editing here reads
//! the lines with that loader's own line reader, so the line we replace is the line the gate
//! uses:
//!
//! - The user's line is the first non-comment line, after trimming, whose text before the first
//!   `:` is the user name. A line that is not UTF-8 is never the user's line (the loader skips
//!   it). Updating replaces that line's text with `user:hash` (any extra fields go, as with
//!   Apache's `htpasswd`) and keeps its line ending.
//! - Every other byte of the file stays as it was: comments, blank lines, later duplicates,
//!   `\r\n` endings, a byte-order mark. A new user is appended with the file's line ending
//!   (that of its first line, `\n` if it has none), after a line break if the file lacks a
//!   final one.
//! - The file is replaced atomically ([`crate::auth::replace`]): a temp file beside it (mode
//!   0600) is written, synced and renamed over it, then the directory is synced. A reader, such as the gate reloading on
//!   `SIGHUP`, sees the old file or the new one, never half of one. A symlink is followed and
//!   its target replaced. Two concurrent edits are not merged: the last rename wins.
//!
//! New hashes are bcrypt `$2y$`, the format `htpasswd -B` writes and every reader accepts.
//!
//! Both commands read the whole file as the gate does and report the lines it ignores
//! (each costs only its own user), so that they can be named to whoever edits the file.
//! `add` checks, before writing, that the gate will read the user's new line as the
//! user's: it never reports a user added that the gate would not let in.

use std::fs;
use std::io::{self, BufRead, IsTerminal as _};
use std::ops::Range;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use super::lines::{lines, Content};
use crate::auth::hash::MAX_PASSWORD_LEN;
use crate::auth::htpasswd::{self, Htpasswd, Warning};
use crate::auth::Password;

/// The bcrypt cost when `--cost` is not given (Apache `htpasswd -B` defaults to 5; 10 costs
/// an attacker 32 times more per guess, and the gate's login cache hides it from pushes).
pub const DEFAULT_COST: u32 = 10;
/// The lowest bcrypt cost (the bcrypt format's limit).
pub const MIN_COST: u32 = 4;
/// The highest bcrypt cost (the bcrypt format's limit).
pub const MAX_COST: u32 = 31;
/// bcrypt uses the first 72 bytes of a password and ignores the rest, so a longer password
/// is refused rather than silently weakened.
pub const MAX_BCRYPT_PASSWORD_LEN: usize = 72;
/// Mode of the directories created for a new file (as `certs generate --out`'s).
const DIR_MODE: u32 = 0o700;

/// Why an edit or a check could not be done. `Display` never shows a password or a hash.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user name cannot be written to an htpasswd file, or would not be read back as is.
    #[error("invalid user name {user:?}: {reason}")]
    InvalidUser {
        /// The name as given.
        user: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The password is empty.
    #[error("empty password")]
    EmptyPassword,
    /// The password is longer than `limit` bytes.
    #[error("password longer than {limit} bytes")]
    PasswordTooLong {
        /// The longest password allowed here.
        limit: usize,
    },
    /// The password contains a NUL byte, where C implementations (Apache, nginx) stop reading.
    #[error("password contains a NUL byte")]
    PasswordNul,
    /// The two passwords typed at the prompt differ.
    #[error("passwords do not match")]
    Mismatch,
    /// The bcrypt cost is out of range.
    #[error("bcrypt cost {0} out of range: must be from 4 to 31")]
    Cost(u32),
    /// The password could not be read from the terminal or stdin.
    #[error("failed to read the password from {from}")]
    ReadPassword {
        /// `the terminal` or `stdin`.
        from: &'static str,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// The htpasswd file exists but could not be read.
    #[error(transparent)]
    Load(#[from] htpasswd::Error),
    /// The new htpasswd file could not be written or moved into place.
    #[error("failed to write htpasswd file {}", path.display())]
    Write {
        /// The file as named by the user.
        path: PathBuf,
        /// Why writing failed.
        #[source]
        source: io::Error,
    },
    /// A directory above the file exists but is not a directory.
    #[error("htpasswd file {}: {} is not a directory; name a file in a directory", path.display(), dir.display())]
    NotADirectory {
        /// The file as named by the user.
        path: PathBuf,
        /// The ancestor that is not a directory.
        dir: PathBuf,
    },
    /// A missing directory above the file could not be created (or looked at).
    #[error("htpasswd file {}: cannot create directory {}", path.display(), dir.display())]
    CreateDir {
        /// The file as named by the user.
        path: PathBuf,
        /// The directory.
        dir: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The file was replaced, but its directory could not be synced to disk.
    #[error("wrote htpasswd file {} but failed to sync its directory", path.display())]
    SyncDir {
        /// The file as named by the user.
        path: PathBuf,
        /// Why syncing failed.
        #[source]
        source: io::Error,
    },
    /// The edited file would not let the user in with the new password (a bug: the
    /// edit follows the loader's rules); nothing was written.
    #[error("htpasswd file {}: the new line for {user:?} would not be read as the user's; nothing written", path.display())]
    NotUsable {
        /// The file as named by the user.
        path: PathBuf,
        /// The user.
        user: String,
    },
    /// bcrypt failed (it does not for validated input).
    #[error("failed to hash the password for htpasswd file {}", path.display())]
    Hash {
        /// The file as named by the user.
        path: PathBuf,
        /// bcrypt's error.
        #[source]
        source: bcrypt::BcryptError,
    },
}

impl Error {
    /// Whether the command line or the typed input is at fault (exit 64), rather than the
    /// file system (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InvalidUser { .. }
                | Error::EmptyPassword
                | Error::PasswordTooLong { .. }
                | Error::PasswordNul
                | Error::Mismatch
                | Error::Cost(_)
        )
    }
}

/// A user name that can be written to an htpasswd file and read back unchanged: not empty, no
/// `:` or control characters, and not starting with `#` or a space (the loader would read a
/// comment, or trim the space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Checks `name`.
    pub fn new(name: String) -> Result<Username, Error> {
        let reason = if name.is_empty() {
            "empty"
        } else if name.contains(':') {
            "contains ':'"
        } else if name.chars().any(char::is_control) {
            "contains a control character"
        } else if name.starts_with('#') {
            "starts with '#', which makes the line a comment"
        } else if name.starts_with(' ') {
            "starts with a space, which the file format drops"
        } else {
            return Ok(Username(name));
        };
        Err(Error::InvalidUser { user: name, reason })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A bcrypt cost from [`MIN_COST`] to [`MAX_COST`]. Each step doubles the time a hash takes,
/// both here and at every login the gate has to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost(u32);

impl Cost {
    /// Checks `cost`.
    pub fn new(cost: u32) -> Result<Cost, Error> {
        if (MIN_COST..=MAX_COST).contains(&cost) {
            Ok(Cost(cost))
        } else {
            Err(Error::Cost(cost))
        }
    }
}

impl Default for Cost {
    fn default() -> Self {
        Cost(DEFAULT_COST)
    }
}

/// What [`add_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// Whether the user was new.
    pub outcome: Outcome,
    /// The lines of the new file the gate ignores (never the user's own line).
    pub ignored: Vec<Warning>,
    /// The directories created for the file, outermost first (mode 0700).
    pub created: Vec<PathBuf>,
}

/// Whether [`add_user`] added a user or replaced one's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The user was new and its line was appended (creating the file if needed).
    Added,
    /// The user's line was replaced in place.
    Updated,
}

/// What [`verify_user`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The password matches the user's hash.
    Match,
    /// The user has a usable hash and the password does not match it.
    WrongPassword,
    /// The file gives the user no usable hash: the user is absent, or the user's line was
    /// skipped when loading, with this warning.
    NoEntry(Option<Warning>),
}

/// Sets `user`'s password in the htpasswd file at `path` to a bcrypt `$2y$` hash at `cost`,
/// creating the file, and the missing directories above it (mode 0700), if it is missing;
/// see the module docs for what is kept. Nothing is created unless the user's line is
/// written.
pub fn add_user(
    path: &Path,
    user: &Username,
    password: &Password,
    cost: Cost,
) -> Result<Added, Error> {
    check_new_password(password)?;
    let missing = missing_dirs(path)?;
    let old = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            let path = path.to_owned();
            return Err(htpasswd::Error::Read { path, source }.into());
        }
    };
    let hash = bcrypt::hash_with_result(password.expose(), cost.0)
        .map_err(|source| Error::Hash {
            path: path.to_owned(),
            source,
        })?
        .format_for_version(bcrypt::Version::TwoY);
    let (new, outcome) = upsert(&old, user.as_str(), &hash);
    // Read back as the gate will: the user must log in with this password.
    let (users, ignored) = Htpasswd::parse_bytes(&new, path);
    if !users
        .get(user.as_str())
        .is_some_and(|h| h.verify(password.expose()))
    {
        return Err(Error::NotUsable {
            path: path.to_owned(),
            user: user.as_str().to_owned(),
        });
    }
    if let Some(innermost) = missing.last() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(innermost)
            .map_err(|source| Error::CreateDir {
                path: path.to_owned(),
                dir: innermost.clone(),
                source,
            })?;
    }
    write_atomically(path, &new)?;
    Ok(Added {
        outcome,
        ignored,
        created: missing,
    })
}

/// The directories above `path` that do not exist yet, outermost first. An ancestor
/// that exists but is not a directory (a file, or a symlink to one) is an error naming it.
fn missing_dirs(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut missing = Vec::new();
    let Some(parent) = path.parent() else {
        return Ok(missing);
    };
    for dir in parent.ancestors().filter(|d| !d.as_os_str().is_empty()) {
        match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(Error::NotADirectory {
                    path: path.to_owned(),
                    dir: dir.to_owned(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(dir.to_owned()),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {}
            Err(source) => {
                return Err(Error::CreateDir {
                    path: path.to_owned(),
                    dir: dir.to_owned(),
                    source,
                })
            }
        }
    }
    missing.reverse();
    Ok(missing)
}

/// Checks `password` against `user`'s entry in the htpasswd file at `path`, loaded exactly as
/// the gate loads it. Also returns the lines the gate ignores, but for the user's own
/// (which a [`Verdict::NoEntry`] carries).
pub fn verify_user(
    path: &Path,
    user: &Username,
    password: &Password,
) -> Result<(Verdict, Vec<Warning>), Error> {
    let (users, mut warnings) = Htpasswd::load(path)?;
    let Some(hash) = users.get(user.as_str()) else {
        let own = entry_warning(path, user, &warnings);
        warnings.retain(|w| Some(w) != own.as_ref());
        return Ok((Verdict::NoEntry(own), warnings));
    };
    let verdict = if hash.verify(password.expose()) {
        Verdict::Match
    } else {
        Verdict::WrongPassword
    };
    Ok((verdict, warnings))
}

/// Reads a password: from a prompt without echo when stdin is a terminal (typed twice if
/// `confirm`), otherwise from the first line of stdin, without its `\n` or `\r\n`.
pub fn read_password(confirm: bool) -> Result<Password, Error> {
    if !io::stdin().is_terminal() {
        return first_line(io::stdin().lock());
    }
    let prompt = |text: &str| {
        rpassword::prompt_password(text).map_err(|source| Error::ReadPassword {
            from: "the terminal",
            source,
        })
    };
    let password = prompt(if confirm {
        "New password: "
    } else {
        "Password: "
    })?;
    if confirm && prompt("Re-type new password: ")? != password {
        return Err(Error::Mismatch);
    }
    Ok(Password::new(password.into_bytes()))
}

/// The first line of `reader`, without its `\n` or `\r\n`; empty if there is none. Reads at
/// most [`MAX_PASSWORD_LEN`] bytes of password, as the gate refuses longer ones.
fn first_line(reader: impl BufRead) -> Result<Password, Error> {
    let limit = MAX_PASSWORD_LEN + "\r\n".len();
    let mut line = Vec::new();
    reader
        .take(limit as u64)
        .read_until(b'\n', &mut line)
        .map_err(|source| Error::ReadPassword {
            from: "stdin",
            source,
        })?;
    if line.pop_if(|b| *b == b'\n').is_some() {
        line.pop_if(|b| *b == b'\r');
    }
    if line.len() > MAX_PASSWORD_LEN {
        return Err(Error::PasswordTooLong {
            limit: MAX_PASSWORD_LEN,
        });
    }
    Ok(Password::new(line))
}

/// Refuses passwords that bcrypt would hash differently from what was typed, or not at all.
fn check_new_password(password: &Password) -> Result<(), Error> {
    let bytes = password.expose();
    if bytes.is_empty() {
        Err(Error::EmptyPassword)
    } else if bytes.len() > MAX_BCRYPT_PASSWORD_LEN {
        Err(Error::PasswordTooLong {
            limit: MAX_BCRYPT_PASSWORD_LEN,
        })
    } else if bytes.contains(&0) {
        Err(Error::PasswordNul)
    } else {
        Ok(())
    }
}

/// `old` with `user`'s line set to `user:hash`: replaced in place if the user has one,
/// appended otherwise.
fn upsert(old: &[u8], user: &str, hash: &str) -> (Vec<u8>, Outcome) {
    let entry = format!("{user}:{hash}");
    let mut new = Vec::with_capacity(old.len() + entry.len() + 2);
    if let Some((_, range)) = find_entry(old, user) {
        new.extend_from_slice(&old[..range.start]);
        new.extend_from_slice(entry.as_bytes());
        new.extend_from_slice(&old[range.end..]);
        return (new, Outcome::Updated);
    }
    let newline = line_ending(old);
    new.extend_from_slice(old);
    if !old.is_empty() && !old.ends_with(b"\n") {
        new.extend_from_slice(newline);
    }
    new.extend_from_slice(entry.as_bytes());
    new.extend_from_slice(newline);
    (new, Outcome::Added)
}

/// The first line the loader would read as `user`'s: its number (from 1) and the byte range
/// of its text, without a byte-order mark or the line ending.
fn find_entry(bytes: &[u8], user: &str) -> Option<(usize, Range<usize>)> {
    lines(bytes)
        .find(|line| matches!(line.content, Content::Entry { user: name, .. } if name == user))
        .map(|line| (line.number, line.text))
}

/// The line ending of the first line of `bytes`: `\r\n` or `\n` (also for a single line).
fn line_ending(bytes: &[u8]) -> &'static [u8] {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(end) if end > 0 && bytes[end - 1] == b'\r' => b"\r\n",
        _ => b"\n",
    }
}

/// The load warning for `user`'s line, if the loader skipped it.
fn entry_warning(path: &Path, user: &Username, warnings: &[Warning]) -> Option<Warning> {
    let bytes = fs::read(path).ok()?;
    let (line, _) = find_entry(&bytes, user.as_str())?;
    warnings.iter().find(|w| w.line == line).cloned()
}

/// Replaces the file at `path` (or a symlink's target) with `contents`: see the module docs.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), Error> {
    crate::auth::replace::replace(path, contents).map_err(|e| match e {
        crate::auth::replace::Error::Write(source) => Error::Write {
            path: path.to_owned(),
            source,
        },
        crate::auth::replace::Error::SyncDir(source) => Error::SyncDir {
            path: path.to_owned(),
            source,
        },
    })
}

#[cfg(test)]
mod tests;
