//! `users` (and the label that becomes the gate's groups): the htpasswd file,
//! `[authz] groups`, and whether anonymous clients got in.

use std::collections::{BTreeMap, BTreeSet};

use super::acl::Anonymous;
use super::pattern;
use super::yaml::{AuthConfig, User};
use super::{refused, Error};

/// The one label that becomes the gate's groups: the only one defined, or the only
/// one of several that the ACL uses.
pub fn group_label(config: &AuthConfig, notes: &mut Vec<String>) -> Option<String> {
    let mut defined = BTreeSet::new();
    if let Some(ldap) = &config.ldap_auth {
        defined.extend(ldap.labels.keys().cloned());
    }
    for user in config.users.iter().flat_map(|u| u.values()).flatten() {
        defined.extend(user.labels.keys().cloned());
    }
    let chosen = if defined.len() == 1 {
        defined.first().cloned()
    } else {
        let used: BTreeSet<String> = acl_labels(config).intersection(&defined).cloned().collect();
        (used.len() == 1).then(|| used.into_iter().next()).flatten()
    };
    for other in defined.iter().filter(|l| Some(*l) != chosen.as_ref()) {
        let why = match &chosen {
            Some(c) => format!("the gate has one kind of group, and {c:?} became it"),
            None => "several labels, and the ACL does not single one out".into(),
        };
        notes.push(format!(
            "label {other:?}: not carried over ({why}); ACL entries using it are left out or refused"
        ));
    }
    chosen
}

/// Labels the ACL matches on or substitutes.
fn acl_labels(config: &AuthConfig) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    for c in config
        .acl
        .iter()
        .flatten()
        .filter_map(|e| e.conditions.as_ref())
    {
        labels.extend(c.labels.keys().cloned());
        for p in [&c.account, &c.name, &c.kind, &c.service]
            .into_iter()
            .flatten()
        {
            for part in pattern::parts(p) {
                if let pattern::Part::Placeholder(pattern::Placeholder::Label(l), _) = part {
                    labels.insert(l.to_string());
                }
            }
        }
    }
    labels
}

/// The static users, as the gate takes them.
pub struct Users {
    /// The htpasswd file's text.
    pub htpasswd: String,
    /// Every name docker_auth had a user entry for (but `""`).
    pub names: BTreeSet<String>,
    /// `[authz] groups`: group → members, from the users' group label.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Whether docker_auth let anonymous clients through to the ACL.
    pub anonymous: Anonymous,
}

/// The static users; `ldap` when `ldap_auth` is set too.
pub fn users(
    map: &BTreeMap<String, Option<User>>,
    group_label: Option<&str>,
    ldap: bool,
    notes: &mut Vec<String>,
) -> Result<Users, Error> {
    let mut out = Users {
        htpasswd: String::new(),
        names: BTreeSet::new(),
        groups: BTreeMap::new(),
        anonymous: Anonymous::Refused,
    };
    for (name, user) in map {
        let Some(user) = user else {
            notes.push(format!(
                "users[{name:?}]: empty entry: docker_auth skips it (as if absent)"
            ));
            continue;
        };
        if name.is_empty() {
            out.anonymous = anonymous_user(user, notes);
            continue;
        }
        out.names.insert(name.clone());
        if let Err(why) = usable_user(name, user) {
            let key = format!("users[{name:?}]");
            if ldap && matches!(why, Unusable::NotBcrypt) {
                return Err(refused(
                    &key,
                    format!(
                        "{why}; docker_auth let no one sign in as {name:?}, but the gate would ask \
                         the directory: remove the entry or give it a bcrypt password"
                    ),
                ));
            }
            notes.push(format!("{key}: not carried over: {why}"));
            continue;
        }
        let hash = user.password.as_deref().unwrap_or_default();
        out.htpasswd.push_str(&format!("{name}:{hash}\n"));
        for (label, values) in &user.labels {
            if Some(label.as_str()) == group_label {
                for group in values {
                    out.groups
                        .entry(group.clone())
                        .or_default()
                        .push(name.clone());
                }
            }
        }
    }
    Ok(out)
}

fn anonymous_user(user: &User, notes: &mut Vec<String>) -> Anonymous {
    if user.password.is_some() {
        notes.push(
            "users[\"\"]: has a password, so docker_auth let no anonymous client in; nor will \
             the gate"
                .into(),
        );
        return Anonymous::Refused;
    }
    if !user.labels.is_empty() {
        notes.push(
            "users[\"\"]: its labels are not carried over (the gate's anonymous clients have \
             no groups)"
                .into(),
        );
    }
    Anonymous::Allowed {
        labels: !user.labels.is_empty(),
    }
}

/// Why a static user cannot go into the htpasswd file.
enum Unusable {
    AnyPassword,
    NotBcrypt,
    BadName,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unusable::AnyPassword => {
                "no password: docker_auth accepted any; give the user one with \
                 `registry-gate htpasswd add`"
            }
            Unusable::NotBcrypt => "the password is not a bcrypt hash, which docker_auth needs",
            Unusable::BadName => "the name holds ':' or a control character",
        })
    }
}

fn usable_user(name: &str, user: &User) -> Result<(), Unusable> {
    if name.contains(':') || name.chars().any(char::is_control) {
        return Err(Unusable::BadName);
    }
    let Some(hash) = &user.password else {
        return Err(Unusable::AnyPassword);
    };
    let bcrypt = hash.len() == 60 && ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
    if !bcrypt {
        return Err(Unusable::NotBcrypt);
    }
    Ok(())
}
