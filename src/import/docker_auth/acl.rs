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

use std::collections::BTreeSet;

use super::pattern::{self, Field, Part, Piece, Placeholder, Translation};
use super::yaml::{AclEntry, Conditions};
use super::Error;
use crate::authz::rules::Rules;
use crate::config::{AuthzConfig, RuleConfig};

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
    let mut entries = Vec::new();
    for (index, entry) in acl.iter().enumerate() {
        let n = index + 1;
        let conditions = entry.conditions.as_ref().ok_or_else(|| Error::Refused {
            key: format!("acl[{n}]"),
            message: "no `match` (docker_auth does not start with such an entry); \
                      write `match: {}` for an entry that matches everything"
                .into(),
        })?;
        let actions = match &entry.actions {
            Some(actions) => actions.clone(),
            None => {
                out.notes.push(format!(
                    "acl[{n}]: no `actions`: docker_auth fails every request the entry \
                     matches, so it becomes a rule that denies"
                ));
                Vec::new()
            }
        };
        let unknown: Vec<&str> = actions
            .iter()
            .map(String::as_str)
            .filter(|a| !matches!(*a, "pull" | "push" | "delete" | "*"))
            .collect();
        if !unknown.is_empty() {
            out.notes.push(format!(
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
    let mut kinds = Vec::new();
    for entry in &entries {
        let signed_in = signed_in(entry, ctx);
        let anonymous = anonymous(entry, ctx, &mut out.notes);
        kinds.push([signed_in, anonymous]);
    }
    for audience in [Audience::SignedIn, Audience::Anonymous] {
        let slot = audience as usize;
        check_widening(&entries, &kinds, slot, audience, &mut out.notes)?;
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

/// How a pattern's placeholders are resolved for one audience.
#[derive(Clone, Copy)]
struct Resolve<'a> {
    audience: Audience,
    /// The scope type the request has (`repository`, or `registry` for the catalog).
    kind: &'a str,
    ctx: &'a Context<'a>,
}

impl Resolve<'_> {
    /// The pattern as pieces for `field` (the inside of a regex), and whether it is one.
    ///
    /// docker_auth substitutes first and then tells a regex from a glob by the first and
    /// last characters, which a substituted value at one end may supply.
    fn pieces(&self, pattern: &str, field: Field) -> Result<(Vec<Piece>, bool), String> {
        let mut pieces = Vec::new();
        for part in pattern::parts(pattern) {
            let piece = match part {
                Part::Text(text) => Piece::Source(text.into()),
                Part::Placeholder(placeholder, raw) => self.placeholder(placeholder, raw, field)?,
            };
            if piece.min_len() > 0 || piece.is_variable() {
                pieces.push(piece);
            }
        }
        let (first, last) = match (pieces.first(), pieces.last()) {
            (Some(first), Some(last)) => (first.first_char(), last.last_char()),
            _ => return Ok((pieces, false)),
        };
        let (slash, variable) = (Some('/'), None);
        if (first == variable && last == slash) || (last == variable && first == slash) {
            return Err("whether it is a regex depends on the substituted value".into());
        }
        let length: usize = pieces.iter().map(Piece::min_len).sum();
        let regex = first == slash && last == slash && length > 2;
        if regex {
            pattern::strip_slashes(&mut pieces);
        }
        Ok((pieces, regex))
    }

    fn placeholder(
        &self,
        placeholder: Placeholder<'_>,
        raw: &str,
        field: Field,
    ) -> Result<Piece, String> {
        let anonymous = self.audience == Audience::Anonymous;
        match placeholder {
            Placeholder::Account if anonymous => Ok(Piece::Literal(String::new())),
            Placeholder::Account if field == Field::Name => Ok(Piece::Account),
            Placeholder::Type => Ok(Piece::Literal(self.kind.into())),
            Placeholder::Service => match self.ctx.service {
                Some(service) => Ok(Piece::Literal(service.into())),
                None => Err("it uses ${service} (pass --service to decide it)".into()),
            },
            Placeholder::Label(_) if anonymous => match self.ctx.anonymous {
                Anonymous::Allowed { labels: true } => {
                    Err("it uses labels, which the anonymous user carries".into())
                }
                _ => Ok(Piece::Source(raw.into())),
            },
            Placeholder::Label(label)
                if field == Field::Name && Some(label) == self.ctx.group_label =>
            {
                Ok(Piece::Group)
            }
            Placeholder::Label(label) => Err(format!(
                "it uses ${{labels:{label}}} outside name or on a label that did not become groups"
            )),
            Placeholder::Account => Err("it uses ${account} outside name".into()),
            Placeholder::Name | Placeholder::Capture => Err(format!("it uses {raw}")),
        }
    }

    /// Whether `pattern` matches the fixed `text`.
    fn holds(&self, pattern: &str, text: &str) -> Result<bool, String> {
        let (pieces, regex) = self.pieces(pattern, Field::Account)?;
        Ok(pattern::matches(&pieces, regex, text))
    }

    /// `pattern` in the gate's syntax for `field`.
    fn translate(&self, pattern: &str, field: Field) -> Translation {
        match self.pieces(pattern, field) {
            Ok((pieces, regex)) => pattern::translate(&pieces, regex, field),
            Err(why) => Translation::Inexpressible(why),
        }
    }
}

/// Conditions common to both audiences: `type`, `service`, `ip`.
fn request_conditions(c: &Conditions, r: &Resolve<'_>) -> Option<Kind> {
    if let Some(kind) = &c.kind {
        match r.holds(kind, "repository") {
            Ok(true) => {}
            Ok(false) => {
                return Some(Kind::Never(Some(format!(
                    "type {kind:?} never matches repository requests"
                ))))
            }
            Err(why) => return Some(Kind::Inexpressible(format!("type {kind:?}: {why}"))),
        }
    }
    if let Some(service) = &c.service {
        let Some(ours) = r.ctx.service else {
            return Some(Kind::Inexpressible(format!(
                "service {service:?} is decided by the registry's service name: pass --service"
            )));
        };
        match r.holds(service, ours) {
            Ok(true) => {}
            Ok(false) => {
                return Some(Kind::Never(Some(format!(
                    "service {service:?} does not match {ours:?}"
                ))))
            }
            Err(why) => return Some(Kind::Inexpressible(format!("service {service:?}: {why}"))),
        }
    }
    c.ip.as_ref().map(|ip| {
        Kind::Inexpressible(format!(
            "ip {ip:?}: the gate's rules have no client-address condition"
        ))
    })
}

fn signed_in(entry: &Entry<'_>, ctx: &Context<'_>) -> Kind {
    let r = Resolve {
        audience: Audience::SignedIn,
        kind: "repository",
        ctx,
    };
    let c = entry.conditions;
    let mut problems = Vec::new();
    if let Some(kind) = request_conditions(c, &r) {
        problems.push(kind);
    }
    let account = c
        .account
        .as_ref()
        .and_then(|p| field(Ok(r.translate(p, Field::Account)), Some("*"), &mut problems));
    let mut group = None;
    let mut group_is_any = true;
    for (label, p) in &c.labels {
        if Some(label.as_str()) != ctx.group_label {
            problems.push(Kind::Inexpressible(format!(
                "labels.{label}: a label that did not become the gate's groups"
            )));
            continue;
        }
        let t = r.translate(p, Field::Group);
        group_is_any = t == Translation::Any;
        group = field(Ok(t), Some("*"), &mut problems);
    }
    let name = c.name.as_ref().and_then(|p| {
        field(
            name_never(p, r.translate(p, Field::Name)),
            None,
            &mut problems,
        )
    });
    let uses_group = name.as_deref().is_some_and(|n| n.contains("${group}"));
    if ctx.group_lower_case && (!c.labels.is_empty() || uses_group) {
        problems.push(Kind::Inexpressible(
            "it matches the group label, whose values docker_auth lower-cased (lower_case) \
             and the gate does not"
                .into(),
        ));
    }
    if let Some(problem) = worst(problems) {
        return problem;
    }
    let mut narrower = None;
    if uses_group && !group_is_any {
        narrower = Some(
            "with a group condition, the gate substitutes only matching groups for ${group}; \
             docker_auth tried all of the user's"
                .into(),
        );
    } else if uses_group && name.as_deref().is_some_and(|n| n.starts_with('/')) {
        narrower = Some("docker_auth also tried this regex with ${labels:...} left as text".into());
    }
    let catalog = entry.granted.star && catalog_possible(c, ctx);
    let config = RuleConfig {
        account,
        group,
        name,
        actions: entry.granted.words(catalog),
        comment: entry.comment.map(str::to_string),
    };
    checked(config, narrower)
}

/// A field's pattern, or what it says about the entry in `problems`; `any` stands for
/// [`Translation::Any`] (`None`: leave the field out).
fn field(
    t: Result<Translation, Kind>,
    any: Option<&str>,
    problems: &mut Vec<Kind>,
) -> Option<String> {
    match t {
        Ok(Translation::Pattern(p)) => Some(p),
        Ok(Translation::Any) => any.map(str::to_string),
        Ok(Translation::Never) => {
            problems.push(Kind::Never(None));
            None
        }
        Ok(Translation::Inexpressible(why)) => {
            problems.push(Kind::Inexpressible(why));
            None
        }
        Err(kind) => {
            problems.push(kind);
            None
        }
    }
}

/// A name that never matches says why: it is worth a note.
fn name_never(pattern: &str, t: Translation) -> Result<Translation, Kind> {
    match t {
        Translation::Never => Err(Kind::Never(Some(format!(
            "name {pattern:?} never matches a repository name"
        )))),
        t => Ok(t),
    }
}

fn anonymous(entry: &Entry<'_>, ctx: &Context<'_>, notes: &mut Vec<String>) -> Kind {
    let refused = ctx.anonymous == Anonymous::Refused;
    // When docker_auth refused anonymous clients, say so for entries that were for them.
    let allowed = Context {
        anonymous: match ctx.anonymous {
            Anonymous::Refused => Anonymous::Allowed { labels: false },
            a => a,
        },
        ..*ctx
    };
    let r = Resolve {
        audience: Audience::Anonymous,
        kind: "repository",
        ctx: &allowed,
    };
    let c = entry.conditions;
    let mut problems = Vec::new();
    if let Some(kind) = request_conditions(c, &r) {
        problems.push(kind);
    }
    if let Some(account) = &c.account {
        match r.holds(account, "") {
            Ok(true) => {}
            Ok(false) => problems.push(Kind::Never(None)),
            Err(why) => problems.push(Kind::Inexpressible(why)),
        }
    }
    if !c.labels.is_empty() {
        problems.push(match ctx.anonymous {
            Anonymous::Allowed { labels: true } => {
                Kind::Inexpressible("it matches labels, which the anonymous user carries".into())
            }
            _ => Kind::Never(None),
        });
    }
    let name = c.name.as_ref().and_then(|p| {
        field(
            name_never(p, r.translate(p, Field::Name)),
            None,
            &mut problems,
        )
    });
    let problem = worst(problems);
    if refused {
        // Worth a note only for entries written for anonymous clients.
        return match problem {
            Some(Kind::Never(_)) => Kind::Never(None),
            _ => {
                Kind::Never(c.account.is_some().then(|| {
                    "docker_auth refused anonymous clients (users has no \"\" entry)".into()
                }))
            }
        };
    }
    if let Some(problem) = problem {
        return problem;
    }
    let n = entry.n;
    if entry.granted.push || entry.granted.delete {
        notes.push(format!(
            "acl[{n}]: anonymous clients get pull only from the gate, not push or delete"
        ));
    }
    let actions = if entry.granted.pull {
        vec!["pull".into()]
    } else {
        Vec::new()
    };
    let config = RuleConfig {
        account: Some("anonymous".into()),
        group: None,
        name,
        actions,
        comment: entry.comment.map(str::to_string),
    };
    checked(config, None)
}

/// Never wins over inexpressible: an entry that cannot apply can be left out safely.
fn worst(problems: Vec<Kind>) -> Option<Kind> {
    let never = problems.iter().position(|k| matches!(k, Kind::Never(_)));
    match never {
        Some(i) => problems.into_iter().nth(i),
        None => problems.into_iter().next(),
    }
}

/// The rule, if the gate compiles it.
fn checked(config: RuleConfig, narrower: Option<String>) -> Kind {
    let authz = AuthzConfig {
        rules: vec![config.clone()],
        ..AuthzConfig::default()
    };
    match Rules::compile(&authz) {
        Ok(_) => Kind::Rule { config, narrower },
        Err(e) => Kind::Inexpressible(format!("the gate refuses its translation ({e})")),
    }
}

/// Whether the entry can match the catalog scope (`registry:catalog:*`) for someone.
fn catalog_possible(c: &Conditions, ctx: &Context<'_>) -> bool {
    let r = Resolve {
        audience: Audience::SignedIn,
        kind: "registry",
        ctx,
    };
    let holds = |p: &Option<String>, text: &str| {
        p.as_ref().is_none_or(|p| r.holds(p, text).unwrap_or(false))
    };
    holds(&c.kind, "registry")
        && holds(&c.name, "catalog")
        && ctx.service.is_none_or(|service| holds(&c.service, service))
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
    slot: usize,
    audience: Audience,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
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

/// Whether the entry's account can match a signed-in user.
fn may_sign_in(entry: &Entry<'_>, ctx: &Context<'_>) -> bool {
    let r = Resolve {
        audience: Audience::SignedIn,
        kind: "registry",
        ctx,
    };
    entry
        .conditions
        .account
        .as_ref()
        .is_none_or(|p| r.translate(p, Field::Account) != Translation::Never)
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
