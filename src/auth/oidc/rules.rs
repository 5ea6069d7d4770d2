//! Claim rules: which verified OIDC token becomes which identity.
//!
//! A rule lists claims and a glob each (`repository = "octo-org/*"`,
//! `ref = "refs/heads/main"`), with the `[authz]` name globs: `*` and `?` within a
//! `/`-segment, `**` across. Every listed claim must be present, a string (or a
//! number or boolean, read as its JSON text), and match. The first rule whose claims
//! all match decides; the user and groups it gives may use `${claim.NAME}`.
//!
//! A claim value is used (matched or substituted) only if it is plain: at most 255
//! bytes of letters, digits and `. _ - / @ : +`, with no empty, `.` or `..`
//! segment. So a value can never carry a glob (`*`), a `${...}`, a control character
//! or a path trick into a user name, and from there into an `[authz]` pattern.

use serde_json::{Map, Value};

use crate::authz::glob::Glob;

/// The longest claim value used.
const VALUE_MAX_LEN: usize = 255;
/// The user name a rule may not give: robots are only the robots file's.
const RESERVED_PREFIX: &str = crate::auth::robots::USER_PREFIX;

/// One compiled rule.
#[derive(Clone, Debug)]
pub struct ClaimRule {
    claims: Vec<(String, Glob)>,
    user: Template,
    groups: Vec<Template>,
}

/// A string with `${claim.NAME}` holes.
#[derive(Clone, Debug)]
struct Template(Vec<Part>);

#[derive(Clone, Debug)]
enum Part {
    Text(String),
    Claim(String),
}

/// Who a token is, by the rule that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The user name.
    pub user: String,
    /// The groups, sorted and without repeats.
    pub groups: Vec<String>,
    /// The rule's index, from 0.
    pub rule: usize,
}

impl ClaimRule {
    /// Compiles a rule: `claims` (name → glob), the `user` and `groups` templates.
    pub fn compile(
        claims: &[(String, String)],
        user: &str,
        groups: &[String],
    ) -> Result<ClaimRule, String> {
        if claims.is_empty() {
            return Err("a rule needs at least one claim to match (`claims = { ... }`)".into());
        }
        for (name, _) in claims {
            check_claim_name(name)?;
        }
        let user_text = user;
        let user = Template::parse(user, "user")?;
        if user.0.is_empty() {
            return Err("`user` is empty".into());
        }
        // A claim value is plain (no `$`), so only the rule's own text can make a
        // robot's name; and a user without holes is checked whole, here, not at sign-in.
        match user.0.as_slice() {
            [Part::Text(text)] => check_user(text)?,
            [Part::Text(text), ..] if text.starts_with(RESERVED_PREFIX) => {
                return Err(format!(
                    "the rule's user {user_text:?} starts with `{RESERVED_PREFIX}`, and those names are robots'"
                ))
            }
            _ => {}
        }
        let groups = groups
            .iter()
            .map(|g| Template::parse(g, "groups"))
            .collect::<Result<_, _>>()?;
        Ok(ClaimRule {
            claims: claims
                .iter()
                .map(|(n, g)| (n.clone(), Glob::name(g)))
                .collect(),
            user,
            groups,
        })
    }

    /// The user the rule gives when it has no `${claim.NAME}` hole.
    pub fn literal_user(&self) -> Option<&str> {
        match self.user.0.as_slice() {
            [Part::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// Whether every claim the rule lists is present, plain and matches.
    fn matches(&self, claims: &Map<String, Value>) -> bool {
        self.claims.iter().all(|(name, glob)| {
            claim_value(claims, name)
                .ok()
                .is_some_and(|value| glob.matches(&value))
        })
    }
}

/// The first rule that matches `claims`, mapped; or why none does.
pub fn decide(rules: &[ClaimRule], claims: &Map<String, Value>) -> Result<Mapped, String> {
    let (rule, matched) = rules
        .iter()
        .enumerate()
        .find(|(_, r)| r.matches(claims))
        .ok_or_else(|| "no claim rule matches the token".to_string())?;
    let user = matched.user.fill(claims)?;
    check_user(&user)?;
    let mut groups = matched
        .groups
        .iter()
        .map(|g| g.fill(claims))
        .collect::<Result<Vec<_>, _>>()?;
    groups.retain(|g| !g.is_empty());
    groups.sort();
    groups.dedup();
    Ok(Mapped { user, groups, rule })
}

impl Template {
    fn parse(text: &str, key: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("`{key}` {text:?}: `${{` without `}}`"))?;
            let name = after[..end].strip_prefix("claim.").ok_or_else(|| {
                format!(
                    "`{key}` {text:?}: only `${{claim.NAME}}` can be substituted, not `${{{}}}`",
                    &after[..end]
                )
            })?;
            check_claim_name(name).map_err(|e| format!("`{key}` {text:?}: {e}"))?;
            parts.push(Part::Claim(name.to_owned()));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template(parts))
    }

    fn fill(&self, claims: &Map<String, Value>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Claim(name) => out.push_str(&claim_value(claims, name)?),
            }
        }
        Ok(out)
    }
}

/// A claim's value, if it is there and plain (see the module docs).
fn claim_value(claims: &Map<String, Value>, name: &str) -> Result<String, String> {
    let value = match claims.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(_) => return Err(format!("claim {name:?} is not a string")),
        None => return Err(format!("the token has no claim {name:?}")),
    };
    if plain(&value) {
        Ok(value)
    } else {
        Err(format!(
            "claim {name:?} has a value no rule may use (at most {VALUE_MAX_LEN} bytes of letters, digits and . _ - / @ : +, no empty, . or .. segment)"
        ))
    }
}

fn plain(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= VALUE_MAX_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/@:+".contains(&b))
        && value
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

fn check_claim_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "claim name {name:?}: use letters, digits, `_`, `-`, `.`, `:`"
        ))
    }
}

fn check_user(user: &str) -> Result<(), String> {
    if user.starts_with(RESERVED_PREFIX) {
        return Err(format!(
            "the rule gives the user {user:?}, but `{RESERVED_PREFIX}` names are robots'"
        ));
    }
    if user.trim().is_empty() || user.chars().any(char::is_control) {
        return Err(format!(
            "the rule gives the user {user:?}, which is not a user name"
        ));
    }
    Ok(())
}
