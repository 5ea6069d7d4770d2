//! `[authz]`: the rules section and the rules file it may point to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::parse_error;
use super::Error;

/// `[authz]`. With none of its keys set, every authenticated user may do
/// everything (the nginx recipe's behaviour).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzConfig {
    /// Shorthand for the recipe's promise: any valid user pulls and lists the
    /// catalog, members of this group also push and delete.
    #[serde(default)]
    pub push_group: Option<String>,
    /// Groups defined here, name → members (added to those of `auth.groups`).
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Rules, first match wins; a request no rule matches is denied.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// A TOML file holding the rules (`rules = [...]` or `[[rules]]` tables) instead
    /// of `rules` here; watched and reloaded like the htpasswd file.
    #[serde(default)]
    pub rules_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

/// Reads `[authz] rules_file`; errors name the file, line and key like the config's.
pub fn load_rules_file(path: &Path) -> Result<Vec<RuleConfig>, Error> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let file: RulesFile =
        toml::from_str(&text).map_err(|e| parse_error(&text, &e).with_path(path))?;
    Ok(file.rules)
}

/// One `[[authz.rules]]` entry (or an inline table in `rules = [...]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Account pattern: a glob (`*` = any authenticated user), a `/regex/`, or
    /// `anonymous` for clients without credentials. Absent: any authenticated user.
    #[serde(default)]
    pub account: Option<String>,
    /// Group pattern (glob or `/regex/`): matches if any of the user's groups does.
    #[serde(default)]
    pub group: Option<String>,
    /// Repository pattern: a glob where `*` stays within one path segment and `**`
    /// crosses `/`, or a `/regex/`; `${account}` and `${group}` are substituted.
    /// Absent: any repository.
    #[serde(default)]
    pub name: Option<String>,
    /// What the rule grants: `pull`, `push`, `delete`, `catalog`, or `*` for all.
    pub actions: Vec<String>,
    /// Free text shown by `acl explain`.
    #[serde(default)]
    pub comment: Option<String>,
}
