//! Group membership: an Apache-style group file (`auth.groups`) and the groups
//! written in the config (`[authz] groups`), merged.
//!
//! The file format is Apache's `AuthGroupFile`: one `group: user1 user2 ...` per
//! line, members separated by spaces or tabs. A group may span several lines
//! (their members add up). Blank lines and lines starting with `#` are skipped,
//! `\r\n` endings are fine. A line without `:` or with an empty group name is a
//! [`Warning`] tagged `file:line` and skipped; the rest of the file still counts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Who belongs to which groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Groups {
    /// User → the groups they are in, sorted.
    by_user: BTreeMap<String, BTreeSet<String>>,
}

/// A group file that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("failed to read group file {}", path.display())]
pub struct Error {
    /// The file.
    pub path: PathBuf,
    /// Why reading failed.
    #[source]
    pub source: io::Error,
}

/// A skipped line of a group file. Displays as `{path}:{line}: {reason}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The file.
    pub path: PathBuf,
    /// The line, counting from 1.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

impl Groups {
    /// Parses the text of a group file; `origin` only tags warnings.
    pub fn parse(text: &str, origin: &Path) -> (Groups, Vec<Warning>) {
        let mut groups = Groups::default();
        let mut warnings = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let warn = |reason| Warning {
                path: origin.to_path_buf(),
                line: i + 1,
                reason,
            };
            let Some((group, members)) = line.split_once(':') else {
                warnings.push(warn("no ':' after the group name"));
                continue;
            };
            let group = group.trim();
            if group.is_empty() || group.contains(char::is_whitespace) {
                warnings.push(warn("the group name is empty or has spaces"));
                continue;
            }
            groups.add(group, members.split_whitespace());
        }
        (groups, warnings)
    }

    /// Reads and parses a group file.
    pub fn load(path: &Path) -> Result<(Groups, Vec<Warning>), Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Groups::parse(&text, path))
    }

    /// Adds members to a group.
    pub fn add<'a>(&mut self, group: &str, members: impl IntoIterator<Item = &'a str>) {
        for user in members {
            self.by_user
                .entry(user.to_string())
                .or_default()
                .insert(group.to_string());
        }
    }

    /// The groups of a user, sorted (empty for a user in none).
    pub fn of(&self, user: &str) -> Vec<String> {
        self.by_user
            .get(user)
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many distinct groups have members.
    pub fn group_count(&self) -> usize {
        self.by_user
            .values()
            .flatten()
            .collect::<BTreeSet<_>>()
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_group_files_parse_and_bad_lines_are_tagged() {
        let text = "\u{feff}# admins\npushers: alice bob\r\n\nreaders:\tcarol  alice\npushers: dave\nno colon here\n: nobody\n";
        let (g, warnings) = Groups::parse(text, Path::new("groups"));
        assert_eq!(g.of("alice"), vec!["pushers", "readers"]);
        assert_eq!(g.of("dave"), vec!["pushers"], "a group may span lines");
        assert_eq!(g.of("carol"), vec!["readers"]);
        assert!(g.of("eve").is_empty());
        assert_eq!(g.group_count(), 2);
        let shown: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "groups:6: no ':' after the group name",
                "groups:7: the group name is empty or has spaces"
            ]
        );
    }

    #[test]
    fn config_groups_add_to_the_file() {
        let (mut g, _) = Groups::parse("pushers: alice\n", Path::new("g"));
        g.add("admins", ["alice", "zoe"]);
        assert_eq!(g.of("alice"), vec!["admins", "pushers"]);
        assert_eq!(g.of("zoe"), vec!["admins"]);
    }
}
