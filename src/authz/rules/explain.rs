//! The text `acl explain` prints for the rule that decided: the rule as the config
//! has it, as a TOML inline table.

use super::{Origin, Rules};
use crate::config::RuleConfig;

impl Rules {
    /// The rule at `index` (from 0, as [`Match::rule`](super::Match::rule)) as the config has it, for
    /// `acl explain`: `authz.rules[3]: { group = "pushers", actions = ["pull"] } # comment`
    /// (counting from 1). A rule synthesized from `push_group` says so.
    pub fn describe(&self, index: usize) -> String {
        let Some(rule) = self.rules.get(index) else {
            return format!("authz.rules[{}]: no such rule", index + 1);
        };
        let table = inline_table(&rule.config);
        match &self.origin {
            Origin::Rules => {
                let comment = rule.config.comment.as_deref().map_or(String::new(), |c| {
                    format!(" # {}", c.replace(['\n', '\r'], " "))
                });
                format!("authz.rules[{}]: {table}{comment}", index + 1)
            }
            Origin::PushGroup(group) => {
                let why = if index == 0 {
                    "members of the push group pull, push, delete and list the catalog"
                } else {
                    "every authenticated user pulls and lists the catalog"
                };
                format!(
                    "authz.push_group = {} (rule {} of {}): {table} # {why}",
                    toml_string(group),
                    index + 1,
                    self.rules.len()
                )
            }
        }
    }
}

/// `{ account = "..", group = "..", name = "..", actions = [..] }`.
fn inline_table(rule: &RuleConfig) -> String {
    let fields = [
        ("account", &rule.account),
        ("group", &rule.group),
        ("name", &rule.name),
    ];
    let mut out = String::from("{ ");
    for (key, value) in fields {
        if let Some(value) = value {
            out.push_str(&format!("{key} = {}, ", toml_string(value)));
        }
    }
    let actions: Vec<String> = rule.actions.iter().map(|a| toml_string(a)).collect();
    out.push_str(&format!("actions = [{}] }}", actions.join(", ")));
    out
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
