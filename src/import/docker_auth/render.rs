//! The imported `proxy.toml` as text: notes on top as comments, each rule's inline
//! table preceded by the `acl` entry it came from.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::acl::Rule;
use crate::config::RuleConfig;

/// Comment lines are wrapped at this width.
const WIDTH: usize = 90;

/// What goes into the file.
#[derive(Debug)]
pub struct Output {
    pub listen_addr: String,
    /// `(cert, key)`.
    pub tls: (String, String),
    /// Whether `auth.htpasswd = "htpasswd"` is written.
    pub htpasswd: bool,
    pub token: TokenSection,
    pub ldap: Option<LdapSection>,
    /// `[authz] groups`: group → members.
    pub groups: BTreeMap<String, Vec<String>>,
    pub rules: Vec<Rule>,
}

/// `[token]`.
#[derive(Debug)]
pub struct TokenSection {
    pub path: String,
    pub issuer: String,
    pub service: String,
    pub key: String,
    pub cert: String,
    pub expiration_seconds: i64,
}

/// `[ldap]`.
#[derive(Debug)]
pub struct LdapSection {
    pub url: String,
    pub starttls: bool,
    pub ca: Option<String>,
    pub bind_dn: Option<String>,
    pub bind_password_file: Option<String>,
    pub base: String,
    pub filter: String,
    pub group_attribute: Option<String>,
    /// `group_attribute_holds = "names"` (else the default, DNs).
    pub group_attribute_holds_names: bool,
}

/// A TOML string (basic or literal, whichever the `toml` crate picks).
fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The whole file.
pub fn proxy_toml(out: &Output, notes: &[String]) -> String {
    let mut t = String::new();
    header(&mut t, notes);
    let _ = write!(t, "\n[listen]\naddr = {}\n", q(&out.listen_addr));
    let _ = write!(
        t,
        "\n[tls]\ncert = {}\nkey = {}\n",
        q(&out.tls.0),
        q(&out.tls.1)
    );
    t.push_str("\n[auth]\nmode = \"token\"\n");
    if out.htpasswd {
        t.push_str("htpasswd = \"htpasswd\"\n");
    }
    let token = &out.token;
    let _ = write!(
        t,
        "\n[token]\npath = {}\nissuer = {}\nservice = {}\nkey = {}\ncert = {}\nexpiration = \"{}s\"\n",
        q(&token.path),
        q(&token.issuer),
        q(&token.service),
        q(&token.key),
        q(&token.cert),
        token.expiration_seconds
    );
    if let Some(ldap) = &out.ldap {
        ldap_section(&mut t, ldap);
    }
    authz_section(&mut t, &out.groups, &out.rules);
    t
}

fn header(t: &mut String, notes: &[String]) {
    t.push_str(
        "# Imported from docker_auth's auth_config.yml by `registry-gate import docker-auth`.\n#\n",
    );
    if notes.is_empty() {
        t.push_str("# Nothing needed attention.\n");
    } else {
        t.push_str("# Needs attention, or not carried over (also printed by the import):\n");
        for note in notes {
            wrap(t, note, "# - ", "#   ");
        }
    }
    t.push_str("#\n# Then: registry-gate --config proxy.toml check-config\n");
}

/// Appends `text` as comment lines of at most [`WIDTH`] characters where words allow.
fn wrap(t: &mut String, text: &str, first: &str, rest: &str) {
    let mut line = String::from(first);
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            t.push_str(&line);
            t.push('\n');
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    t.push_str(&line);
    t.push('\n');
}

fn ldap_section(t: &mut String, ldap: &LdapSection) {
    let _ = write!(t, "\n[ldap]\nurl = {}\n", q(&ldap.url));
    if ldap.starttls {
        t.push_str("starttls = true\n");
    }
    let optional = [
        ("ca", &ldap.ca),
        ("bind_dn", &ldap.bind_dn),
        ("bind_password_file", &ldap.bind_password_file),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            let _ = writeln!(t, "{key} = {}", q(value));
        }
    }
    let _ = write!(
        t,
        "base = {}\nfilter = {}\n",
        q(&ldap.base),
        q(&ldap.filter)
    );
    if let Some(attribute) = &ldap.group_attribute {
        let _ = writeln!(t, "group_attribute = {}", q(attribute));
        if ldap.group_attribute_holds_names {
            t.push_str("group_attribute_holds = \"names\"\n");
        }
    }
}

fn authz_section(t: &mut String, groups: &BTreeMap<String, Vec<String>>, rules: &[Rule]) {
    t.push_str("\n[authz]\n");
    if !groups.is_empty() {
        let members: Vec<String> = groups
            .iter()
            .map(|(group, users)| {
                let users: Vec<String> = users.iter().map(|u| q(u)).collect();
                format!("{} = [{}]", q(group), users.join(", "))
            })
            .collect();
        let _ = writeln!(t, "groups = {{ {} }}", members.join(", "));
    }
    t.push_str("rules = [\n");
    if rules.is_empty() {
        t.push_str(
            "  # docker_auth's ACL grants nothing (without rules the gate would allow everything)\n  { actions = [] },\n",
        );
    }
    for rule in rules {
        let _ = writeln!(t, "  # acl[{}]\n  {},", rule.entry, inline(&rule.config));
    }
    t.push_str("]\n");
}

/// `{ account = "..", group = "..", name = "..", actions = [..], comment = ".." }`.
fn inline(rule: &RuleConfig) -> String {
    let mut fields = Vec::new();
    for (key, value) in [
        ("account", &rule.account),
        ("group", &rule.group),
        ("name", &rule.name),
    ] {
        if let Some(value) = value {
            fields.push(format!("{key} = {}", q(value)));
        }
    }
    let actions: Vec<String> = rule.actions.iter().map(|a| q(a)).collect();
    fields.push(format!("actions = [{}]", actions.join(", ")));
    if let Some(comment) = &rule.comment {
        fields.push(format!("comment = {}", q(comment)));
    }
    format!("{{ {} }}", fields.join(", "))
}
