//! One `acl` entry as a rule for one audience: its placeholders resolved, its
//! conditions decided or translated, and whether the gate can say it at all.

use super::super::pattern::{self, Field, Part, Piece, Placeholder, Translation};
use super::super::yaml::Conditions;
use super::{Anonymous, Audience, Context, Entry, Granted, Kind};
use crate::authz::rules::Rules;
use crate::config::{AuthzConfig, RuleConfig};

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

/// Conditions common to both audiences, `type`, `service` and `ip`, into `problems`
/// when they do not simply hold.
fn request_conditions(c: &Conditions, r: &Resolve<'_>, problems: &mut Vec<Kind>) {
    if let Some(kind) = &c.kind {
        match r.holds(kind, "repository") {
            Ok(true) => {}
            Ok(false) => problems.push(Kind::Never(Some(format!(
                "type {kind:?} never matches repository requests"
            )))),
            Err(why) => problems.push(Kind::Inexpressible(format!("type {kind:?}: {why}"))),
        }
    }
    if let Some(service) = &c.service {
        match r.ctx.service.map(|ours| (ours, r.holds(service, ours))) {
            None => problems.push(Kind::Inexpressible(format!(
                "service {service:?} is decided by the registry's service name: pass --service"
            ))),
            Some((_, Ok(true))) => {}
            Some((ours, Ok(false))) => problems.push(Kind::Never(Some(format!(
                "service {service:?} does not match {ours:?}"
            )))),
            Some((_, Err(why))) => {
                problems.push(Kind::Inexpressible(format!("service {service:?}: {why}")))
            }
        }
    }
    if let Some(ip) = &c.ip {
        problems.push(Kind::Inexpressible(format!(
            "ip {ip:?}: the gate's rules have no client-address condition"
        )));
    }
}

/// The entry for signed-in users.
pub(super) fn signed_in(entry: &Entry<'_>, ctx: &Context<'_>) -> Kind {
    let r = Resolve {
        audience: Audience::SignedIn,
        kind: "repository",
        ctx,
    };
    let c = entry.conditions;
    let mut problems = Vec::new();
    request_conditions(c, &r, &mut problems);
    let account = c.account.as_ref().and_then(|p| {
        field(
            r.translate(p, Field::Account),
            Some("*"),
            None,
            &mut problems,
        )
    });
    let (group, group_is_any) = group(c, &r, &mut problems);
    let name = c
        .name
        .as_ref()
        .and_then(|p| name_pattern(p, &r, &mut problems));
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
    let narrower = match (uses_group, group_is_any, name.as_deref()) {
        (true, false, _) => Some(
            "with a group condition, the gate substitutes only matching groups for ${group}; \
             docker_auth tried all of the user's",
        ),
        (true, true, Some(n)) if n.starts_with('/') => {
            Some("docker_auth also tried this regex with ${labels:...} left as text")
        }
        _ => None,
    };
    let catalog = entry.granted.star && catalog_possible(c, ctx);
    let config = RuleConfig {
        account,
        group,
        name,
        actions: entry.granted.words(catalog),
        comment: entry.comment.map(str::to_string),
    };
    checked(config, narrower.map(str::to_string))
}

/// The `group` pattern from `labels`, and whether it matches any group; labels other
/// than the group label go to `problems`.
fn group(c: &Conditions, r: &Resolve<'_>, problems: &mut Vec<Kind>) -> (Option<String>, bool) {
    let (mut group, mut any) = (None, true);
    for (label, p) in &c.labels {
        if Some(label.as_str()) != r.ctx.group_label {
            problems.push(Kind::Inexpressible(format!(
                "labels.{label}: a label that did not become the gate's groups"
            )));
            continue;
        }
        let t = r.translate(p, Field::Group);
        any = t == Translation::Any;
        group = field(t, Some("*"), None, problems);
    }
    (group, any)
}

/// A field's pattern, or what it says about the entry in `problems`: `any` stands for
/// [`Translation::Any`] (`None`: leave the field out), `never` says why the field never
/// matches when that is worth a note.
fn field(
    t: Translation,
    any: Option<&str>,
    never: Option<String>,
    problems: &mut Vec<Kind>,
) -> Option<String> {
    match t {
        Translation::Pattern(p) => Some(p),
        Translation::Any => any.map(str::to_string),
        Translation::Never => {
            problems.push(Kind::Never(never));
            None
        }
        Translation::Inexpressible(why) => {
            problems.push(Kind::Inexpressible(why));
            None
        }
    }
}

/// The name in the gate's syntax, a never-matching one noted.
fn name_pattern(pattern: &str, r: &Resolve<'_>, problems: &mut Vec<Kind>) -> Option<String> {
    let never = format!("name {pattern:?} never matches a repository name");
    field(
        r.translate(pattern, Field::Name),
        None,
        Some(never),
        problems,
    )
}

/// The entry for anonymous clients (docker_auth's account `""`).
pub(super) fn anonymous(entry: &Entry<'_>, ctx: &Context<'_>, notes: &mut Vec<String>) -> Kind {
    // Translated as if docker_auth had let them in, to tell which entries were for them.
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
    let (name, problem) = anonymous_conditions(c, &r);
    if ctx.anonymous == Anonymous::Refused {
        // Worth a note only for entries written for anonymous clients alone.
        let only_anonymous = c.account.as_deref() == Some("");
        return match problem {
            Some(Kind::Never(_)) => Kind::Never(None),
            _ => {
                Kind::Never(only_anonymous.then(|| {
                    "docker_auth refused anonymous clients (users has no \"\" entry)".into()
                }))
            }
        };
    }
    if let Some(problem) = problem {
        return problem;
    }
    if entry.granted.push || entry.granted.delete {
        notes.push(format!(
            "acl[{}]: anonymous clients get pull only from the gate, not push or delete",
            entry.n
        ));
    }
    let config = RuleConfig {
        account: Some("anonymous".into()),
        group: None,
        name,
        actions: Granted {
            pull: entry.granted.pull,
            ..Granted::default()
        }
        .words(false),
        comment: entry.comment.map(str::to_string),
    };
    checked(config, None)
}

/// The name for anonymous clients, or why the entry cannot become their rule.
fn anonymous_conditions(c: &Conditions, r: &Resolve<'_>) -> (Option<String>, Option<Kind>) {
    let mut problems = Vec::new();
    request_conditions(c, r, &mut problems);
    if let Some(account) = &c.account {
        match r.holds(account, "") {
            Ok(true) => {}
            Ok(false) => problems.push(Kind::Never(None)),
            Err(why) => problems.push(Kind::Inexpressible(why)),
        }
    }
    if !c.labels.is_empty() {
        problems.push(match r.ctx.anonymous {
            Anonymous::Allowed { labels: true } => {
                Kind::Inexpressible("it matches labels, which the anonymous user carries".into())
            }
            _ => Kind::Never(None),
        });
    }
    let name = c
        .name
        .as_ref()
        .and_then(|p| name_pattern(p, r, &mut problems));
    (name, worst(problems))
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
pub(super) fn catalog_possible(c: &Conditions, ctx: &Context<'_>) -> bool {
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

/// Whether the entry's account can match a signed-in user.
pub(super) fn may_sign_in(entry: &Entry<'_>, ctx: &Context<'_>) -> bool {
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
