//! The htpasswd file: one `user:hash` per line, as written by Apache's `htpasswd`.
//!
//! Loading never fails because of one bad line. Each problem becomes a [`Warning`] tagged
//! `file:line`, and only that line's user is left out, so one typo locks out one user rather
//! than everyone. The rules follow Apache and nginx:
//!
//! - Each line is trimmed of surrounding whitespace (as Apache does). Blank lines and lines
//!   that then start with `#` are skipped. `\r\n` endings and a missing final newline are fine,
//!   and so is a UTF-8 byte-order mark at the start of the file.
//! - The user name is everything before the first `:`, compared case-sensitively. The hash is
//!   everything after it up to the next `:`, and any further fields are ignored.
//! - A user listed twice keeps the first line, as nginx and Apache both stop at the first
//!   match. That holds even when the first line is invalid: the user is then absent.
//! - The file is read as bytes; a line that is not UTF-8 is a warning, not a failed load.
//!
//! An unknown user's password is checked against a dummy hash with the scheme and cost of the
//! file's typical entry ([`dummy_model`]), so that timing does not tell unknown users from
//! known ones, whatever cost the file's hashes have.

pub(crate) mod edit;
mod lines;

use std::collections::btree_map::{BTreeMap, Entry};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::auth::hash::{self, Cost, PasswordHash};
use lines::{lines, Content, Line};

/// The users of an htpasswd file and their password hashes. Its `Debug` lists user names only.
#[derive(Clone)]
pub struct Htpasswd {
    /// User name → hash. Sorted, so that [`Htpasswd::users`] is stable.
    users: BTreeMap<String, PasswordHash>,
    /// What unknown users are checked against: like [`dummy_model`]'s choice, or
    /// [`PasswordHash::dummy`] for a file without users.
    dummy: PasswordHash,
}

impl Default for Htpasswd {
    fn default() -> Self {
        Htpasswd {
            users: BTreeMap::new(),
            dummy: PasswordHash::dummy().clone(),
        }
    }
}

/// A file that could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is missing or unreadable.
    #[error("failed to read htpasswd file {}", path.display())]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
}

/// A line that was skipped. Displays as `{path}:{line}: {reason}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file the line comes from.
    pub path: PathBuf,
    /// The line's number, counting from 1.
    pub line: usize,
    /// Why the line was skipped.
    pub reason: Reason,
}

/// Why a line of an htpasswd file was skipped. Never quotes a hash or an unparsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The line is not valid UTF-8.
    NotUtf8,
    /// The line has no `:`.
    MissingColon,
    /// The line starts with `:`.
    EmptyUser,
    /// The user was already defined on an earlier line, which wins.
    Duplicate {
        /// The user name.
        user: String,
        /// The line that defines the user.
        first_line: usize,
    },
    /// The hash field is malformed or uses an unsupported scheme.
    Hash(hash::Error),
}

impl Htpasswd {
    /// Parses the text of an htpasswd file. `origin` is only used to tag warnings.
    pub fn parse(text: &str, origin: &Path) -> (Htpasswd, Vec<Warning>) {
        parse_bytes(text.as_bytes(), origin)
    }

    /// Parses the bytes of an htpasswd file, as [`Htpasswd::load`] does those it reads.
    pub fn parse_bytes(bytes: &[u8], origin: &Path) -> (Htpasswd, Vec<Warning>) {
        parse_bytes(bytes, origin)
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<(Htpasswd, Vec<Warning>), Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(parse_bytes(&bytes, path))
    }

    /// The hash of `user`, if the file defines that user with a valid hash.
    pub fn get(&self, user: &str) -> Option<&PasswordHash> {
        self.users.get(user)
    }

    /// Checks `user`'s password. An unknown user is checked against the file's dummy hash (see
    /// [`Htpasswd::dummy_cost`]) so that the answer takes as long as for a typical known one.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                self.dummy.verify(password);
                false
            }
        }
    }

    /// The scheme and cost of the hash unknown users are checked against.
    pub fn dummy_cost(&self) -> Cost {
        self.dummy.cost()
    }

    /// The number of users with a valid hash.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user has a valid hash.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user names, in byte order.
    pub fn users(&self) -> impl Iterator<Item = &str> + '_ {
        self.users.keys().map(String::as_str)
    }
}

impl fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotUtf8 => f.write_str("line is not valid UTF-8"),
            Reason::MissingColon => f.write_str("missing ':' between user name and hash"),
            Reason::EmptyUser => f.write_str("empty user name"),
            Reason::Duplicate { user, first_line } => write!(
                f,
                "duplicate user {user:?} ignored; first defined on line {first_line}"
            ),
            Reason::Hash(e) => e.fmt(f),
        }
    }
}

/// Parses a file's bytes line by line; see the module docs for the rules.
fn parse_bytes(bytes: &[u8], origin: &Path) -> (Htpasswd, Vec<Warning>) {
    let mut users = BTreeMap::new();
    // Every user seen so far and its first line, including users whose hash was rejected.
    let mut first_lines = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut warn = |line, reason| {
        warnings.push(Warning {
            path: origin.to_owned(),
            line,
            reason,
        })
    };
    for Line {
        number: line,
        content,
        ..
    } in lines(bytes)
    {
        let (user, hash) = match content {
            Content::Blank => continue,
            Content::Invalid(reason) => {
                warn(line, reason);
                continue;
            }
            Content::Entry { user, hash } => (user, hash),
        };
        match first_lines.entry(user) {
            Entry::Occupied(first) => warn(
                line,
                Reason::Duplicate {
                    user: user.to_owned(),
                    first_line: *first.get(),
                },
            ),
            Entry::Vacant(slot) => {
                slot.insert(line);
                match PasswordHash::parse(hash) {
                    Ok(hash) => {
                        users.insert(user.to_owned(), hash);
                    }
                    Err(e) => warn(line, Reason::Hash(e)),
                }
            }
        }
    }
    let mut in_file_order: Vec<_> = users
        .iter()
        .map(|(user, hash)| (first_lines.get(user.as_str()).copied(), hash))
        .collect();
    in_file_order.sort_by_key(|(line, _)| *line);
    let hashes: Vec<_> = in_file_order.into_iter().map(|(_, hash)| hash).collect();
    let dummy =
        dummy_model(&hashes).map_or_else(|| PasswordHash::dummy().clone(), |m| m.dummy_like());
    (Htpasswd { users, dummy }, warnings)
}

/// The entry (of `hashes`, in file order) that unknown users' dummy is modelled on: one of the
/// most common scheme, with the most common cost among that scheme's entries; ties go to the
/// earlier line. `None` without entries.
pub fn dummy_model<'a>(hashes: &[&'a PasswordHash]) -> Option<&'a PasswordHash> {
    let scheme = most_common(hashes.iter().map(|h| h.scheme()))?;
    let of_scheme: Vec<_> = hashes.iter().filter(|h| h.scheme() == scheme).collect();
    let cost = most_common(of_scheme.iter().map(|h| h.cost()))?;
    of_scheme.into_iter().find(|h| h.cost() == cost).copied()
}

/// The most frequent item; ties go to the one seen first.
fn most_common<T: Eq + std::hash::Hash>(items: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: HashMap<T, (usize, usize)> = HashMap::new();
    for (index, item) in items.enumerate() {
        counts.entry(item).or_insert((0, index)).0 += 1;
    }
    counts
        .into_iter()
        .max_by(|(_, (n1, first1)), (_, (n2, first2))| n1.cmp(n2).then(first2.cmp(first1)))
        .map(|(item, _)| item)
}

#[cfg(test)]
mod tests;
