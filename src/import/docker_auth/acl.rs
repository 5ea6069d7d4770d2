//! docker_auth's `acl` as the gate's `[authz] rules`, with docker_auth's decisions.
//!
//! docker_auth (`authz/acl.go`) takes the first entry whose `match` holds and grants
//! what was asked intersected with its `actions` (`["*"]` alone grants everything asked;
//! `[]` grants nothing and ends the search); no entry: denied. The gate's rules are also
//! first-match with an empty `actions` denying, so entries map one to one, in order,
//! once each entry is split by who it can apply to:
//!
//! - signed-in users: `account` (absent: anyone), `labels` on the group label
//!   (`group`), `name`;
//! - anonymous clients (account `""`), when docker_auth let them in (a `""` user): an
//!   `account = "anonymous"` rule, with `${account}` in `name` read as `""` as
//!   docker_auth does. Its actions are capped at `pull`, all the gate gives anonymous
//!   clients.
//!
//! Conditions that hold or fail for every repository request are decided here: `type`
//! (against `repository`) and `service` (against `--service`). An entry whose
//! conditions can never hold is left out, which changes nothing. An entry the gate
//! cannot express (`ip`, another label, `${name}`, ...) is left out only when that
//! cannot widen access: when no later entry that may apply to the same requests grants
//! an action it does not. Otherwise the import is refused. An entry the gate matches on
//! fewer requests than docker_auth is kept under the same test.
//!
//! The catalog (`registry:catalog:*`): docker_auth grants it when the first entry
//! matching type `registry`, name `catalog` has `*` among its actions. So a rule here
//! lists `catalog` when its entry would match that scope and grant `*`, and loses it
//! when an earlier entry for possibly the same users would have stopped docker_auth
//! first (the gate skips rules without `catalog` when it decides the catalog).

mod entry;

use std::collections::BTreeSet;

use self::entry::{anonymous, catalog_possible, may_sign_in, signed_in};
use super::pattern;
use super::yaml::{AclEntry, Conditions};
use super::Error;
use crate::config::RuleConfig;

/// What the rest of docker_auth's config says about the requests that reach the ACL.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The label that became the gate's groups, if any.
    pub group_label: Option<&'a str>,
    /// docker_auth lower-cased that label's values (`lower_case`); the gate does not.
    pub group_lower_case: bool,
    /// The registry's service (`--service`), against which `service` is decided.
    pub service: Option<&'a str>,
    /// Whether anonymous clients got past docker_auth's authentication.
    pub anonymous: Anonymous,
    /// The static user names, when no other backend can sign users in.
    pub only_users: Option<&'a BTreeSet<String>>,
}

/// Anonymous clients in docker_auth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anonymous {
    /// Refused before the ACL: no `""` user (or one with a password).
    Refused,
    /// Let in by a `""` user; `labels` when that user carries labels.
    Allowed {
        /// The `""` user has labels.
        labels: bool,
    },
}

/// One translated rule and the entry (from 1) it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The `acl` entry, from 1.
    pub entry: usize,
    /// The rule.
    pub config: RuleConfig,
}

/// The rules in order, and what the user should know about them.
#[derive(Debug, Default)]
pub struct Translated {
    /// The rules, in the order of their entries.
    pub rules: Vec<Rule>,
    /// Entries left out, changed or suspicious, by entry.
    pub notes: Vec<String>,
}

/// What an entry's `actions` grant a repository request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Granted {
    pull: bool,
    push: bool,
    delete: bool,
    /// `*` among the actions: the catalog's only action.
    star: bool,
}

impl Granted {
    fn of(actions: &[String]) -> Granted {
        if actions.len() == 1 && actions[0] == "*" {
            return Granted {
                pull: true,
                push: true,
                delete: true,
                star: true,
            };
        }
        let has = |word: &str| actions.iter().any(|a| a == word);
        Granted {
            pull: has("pull"),
            push: has("push"),
            delete: has("delete"),
            star: has("*"),
        }
    }

    /// The repository actions `later` grants beyond these.
    fn beyond(&self, later: &Granted) -> Vec<&'static str> {
        [
            (later.pull && !self.pull, "pull"),
            (later.push && !self.push, "push"),
            (later.delete && !self.delete, "delete"),
        ]
        .into_iter()
        .filter_map(|(extra, word)| extra.then_some(word))
        .collect()
    }

    fn words(&self, catalog: bool) -> Vec<String> {
        if self.pull && self.push && self.delete && catalog {
            return vec!["*".into()];
        }
        [
            (self.pull, "pull"),
            (self.push, "push"),
            (self.delete, "delete"),
            (catalog, "catalog"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, word)| word.to_string())
        .collect()
    }
}

/// Who a rule is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Audience {
    SignedIn,
    Anonymous,
}

/// What one entry becomes for one audience.
#[derive(Clone, Debug)]
enum Kind {
    /// A rule; `narrower` says why it matches less than the entry did, if it does.
    Rule {
        config: RuleConfig,
        narrower: Option<String>,
    },
    /// The entry never applies; why, when worth telling.
    Never(Option<String>),
    /// The gate cannot say it; why.
    Inexpressible(String),
}

/// An entry, read.
struct Entry<'a> {
    n: usize,
    conditions: &'a Conditions,
    granted: Granted,
    comment: Option<&'a str>,
}

/// Translates the ACL; `Err` when leaving out an entry the gate cannot express
/// could widen access.
pub fn translate(acl: &[AclEntry], ctx: &Context<'_>) -> Result<Translated, Error> {
    let mut out = Translated::default();
    let entries = read(acl, &mut out.notes)?;
    let mut kinds: Vec<[Kind; 2]> = entries
        .iter()
        .map(|entry| [signed_in(entry, ctx), anonymous(entry, ctx, &mut out.notes)])
        .collect();
    for audience in [Audience::SignedIn, Audience::Anonymous] {
        check_widening(&entries, &kinds, audience, &mut out.notes)?;
    }
    strip_catalog(&entries, &mut kinds, ctx, &mut out.notes);
    for (entry, [signed_in, anonymous]) in entries.iter().zip(kinds) {
        for kind in [signed_in, anonymous] {
            match kind {
                Kind::Rule { config, .. } => out.rules.push(Rule {
                    entry: entry.n,
                    config,
                }),
                Kind::Never(Some(why)) => {
                    out.notes.push(format!("acl[{}]: left out: {why}", entry.n))
                }
                Kind::Never(None) | Kind::Inexpressible(_) => {}
            }
        }
        typo_note(entry, ctx, &mut out.notes);
    }
    tidy(&mut out.notes);
    Ok(out)
}

/// The entries with their actions read; refuses one without `match`.
fn read<'a>(acl: &'a [AclEntry], notes: &mut Vec<String>) -> Result<Vec<Entry<'a>>, Error> {
    let mut entries = Vec::new();
    for (index, entry) in acl.iter().enumerate() {
        let n = index + 1;
        let conditions = entry.conditions.as_ref().ok_or_else(|| Error::Refused {
            key: format!("acl[{n}]"),
            message: "no `match` (docker_auth does not start with such an entry); \
                      write `match: {}` for an entry that matches everything"
                .into(),
        })?;
        let actions = entry.actions.clone().unwrap_or_else(|| {
            notes.push(format!(
                "acl[{n}]: no `actions`: docker_auth fails every request the entry \
                 matches, so it becomes a rule that denies"
            ));
            Vec::new()
        });
        let unknown: Vec<&str> = actions
            .iter()
            .map(String::as_str)
            .filter(|a| !matches!(*a, "pull" | "push" | "delete" | "*"))
            .collect();
        if !unknown.is_empty() {
            notes.push(format!(
                "acl[{n}]: actions {unknown:?} left out: registries never ask for them"
            ));
        }
        entries.push(Entry {
            n,
            conditions,
            granted: Granted::of(&actions),
            comment: entry.comment.as_deref(),
        });
    }
    Ok(entries)
}

/// Notes in entry order, each once (both audiences may say the same).
fn tidy(notes: &mut Vec<String>) {
    let entry = |note: &String| {
        note.strip_prefix("acl[")
            .and_then(|rest| rest.split_once(']'))
            .and_then(|(n, _)| n.parse::<usize>().ok())
    };
    notes.sort_by_key(entry);
    let mut seen = BTreeSet::new();
    notes.retain(|note| seen.insert(note.clone()));
}

/// Entries whose accounts are distinct literals never apply to the same user.
fn may_overlap(a: &Entry<'_>, b: &Entry<'_>) -> bool {
    match (literal_account(a), literal_account(b)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

fn literal_account(entry: &Entry<'_>) -> Option<String> {
    let account = entry.conditions.account.as_deref()?;
    if pattern::is_regex(account) || account.contains(['*', '?', '[', '\\', '$']) {
        return None;
    }
    Some(account.to_string())
}

/// Refuses when leaving out (or narrowing) an entry could hand a later entry's
/// actions to requests the entry decided; notes what was left out otherwise.
fn check_widening(
    entries: &[Entry<'_>],
    kinds: &[[Kind; 2]],
    audience: Audience,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
    let slot = audience as usize;
    for (i, entry) in entries.iter().enumerate() {
        let (why, kept) = match &kinds[i][slot] {
            Kind::Inexpressible(why) => (why, false),
            Kind::Rule {
                narrower: Some(why),
                ..
            } => (why, true),
            _ => continue,
        };
        let later = entries
            .iter()
            .zip(kinds)
            .skip(i + 1)
            .find_map(|(other, k)| {
                let applies = !matches!(k[slot], Kind::Never(_))
                    && (audience == Audience::Anonymous || may_overlap(entry, other));
                let extra = entry.granted.beyond(&other.granted);
                (applies && !extra.is_empty()).then_some((other.n, extra))
            });
        let n = entry.n;
        let who = match audience {
            Audience::SignedIn => "",
            Audience::Anonymous => " (for anonymous clients)",
        };
        if let Some((later, extra)) = later {
            return Err(Error::Refused {
                key: format!("acl[{n}]"),
                message: format!(
                    "the gate cannot express this entry{who}: {why}; and {} it could widen \
                     access, since acl[{later}] grants {} beyond it. Change the entry, then \
                     import again",
                    if kept {
                        "matching it on fewer requests"
                    } else {
                        "leaving it out"
                    },
                    extra.join(", ")
                ),
            });
        }
        notes.push(if kept {
            format!("acl[{n}]{who}: matches fewer requests than in docker_auth: {why} (no later entry grants more)")
        } else {
            format!("acl[{n}]{who}: left out: {why} (no later entry grants more, so access cannot widen)")
        });
    }
    Ok(())
}

/// Takes `catalog` from rules that docker_auth would never have reached for the
/// catalog: an earlier entry, for possibly the same users, matched it without `*`.
fn strip_catalog(
    entries: &[Entry<'_>],
    kinds: &mut [[Kind; 2]],
    ctx: &Context<'_>,
    notes: &mut Vec<String>,
) {
    let slot = Audience::SignedIn as usize;
    for j in 0..entries.len() {
        let Kind::Rule { config, .. } = &mut kinds[j][slot] else {
            continue;
        };
        if !config.actions.iter().any(|a| a == "*" || a == "catalog") {
            continue;
        }
        let stopper = entries[..j].iter().find(|earlier| {
            !earlier.granted.star
                && catalog_possible(earlier.conditions, ctx)
                && may_sign_in(earlier, ctx)
                && may_overlap(earlier, &entries[j])
        });
        if let Some(earlier) = stopper {
            let granted = entries[j].granted;
            let Kind::Rule { config, .. } = &mut kinds[j][slot] else {
                continue;
            };
            config.actions = granted.words(false);
            notes.push(format!(
                "acl[{}]: no catalog: docker_auth decided the catalog at acl[{}] first",
                entries[j].n, earlier.n
            ));
        }
    }
}

/// A literal account that no static user has, when static users are all there is.
fn typo_note(entry: &Entry<'_>, ctx: &Context<'_>, notes: &mut Vec<String>) {
    let (Some(users), Some(account)) = (ctx.only_users, literal_account(entry)) else {
        return;
    };
    if !account.is_empty() && !users.contains(&account) {
        notes.push(format!(
            "acl[{}]: account {account:?} is not in users, so no one signs in as it \
             (kept as written)",
            entry.n
        ));
    }
}
