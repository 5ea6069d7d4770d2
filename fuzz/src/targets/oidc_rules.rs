//! `auth::oidc::ClaimRule::compile` and `auth::oidc::rules::decide` on rule text and
//! claims.
//!
//! Input: `RULES \0 CLAIMS`, both UTF-8. `RULES` is rules separated by lines `--`; in
//! each, a line `user TEMPLATE` sets the user, `group TEMPLATE` adds a group and
//! `NAME=GLOB` adds a claim to match. `CLAIMS` is a JSON object.
//!
//! Checked against a reference reading of the rules' documentation (`rules.rs`'s module
//! docs), written apart from their code: a rule compiles exactly when it lists a claim,
//! every claim name is 1 to 64 of letters, digits and `_ - . :`, and every `${...}` of
//! its user (not empty, its text before any hole not starting with `robot$`, and when it has no hole a user name:
//! not blank, no control character) and groups is `${claim.NAME}` with such a name. A claim value
//! is usable only when plain. The first rule whose every claim is present, plain and
//! matches decides; its user and groups are the templates filled with plain values
//! only. So a mapped user never starts with `robot$` and holds no control character,
//! and a substituted value never brings an empty, `.` or `..` segment, a glob or a
//! `${` into it: when the rule's own text has no `/`, neither has the user such a
//! segment. A `/` itself is allowed: `ci-${claim.repository}` gives `ci-octo-org/app`,
//! by design.

use registry_gate::auth::oidc::rules::decide;
use registry_gate::auth::oidc::ClaimRule;
use registry_gate::authz::rules::Glob;
use serde_json::{Map, Value};

/// The longest claim value a rule may use.
const VALUE_MAX_LEN: usize = 255;
/// The longest claim name.
const NAME_MAX_LEN: usize = 64;
/// The user-name prefix that is robots' only.
const ROBOT_PREFIX: &str = "robot$";

/// A rule as the input writes it.
#[derive(Debug, Default)]
struct Written {
    claims: Vec<(String, String)>,
    user: String,
    groups: Vec<String>,
}

/// One input of the `oidc_rules` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let Some(at) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let (Ok(rules), Ok(claims)) = (
        std::str::from_utf8(&data[..at]),
        std::str::from_utf8(&data[at + 1..]),
    ) else {
        return;
    };
    let Ok(claims) = serde_json::from_str::<Map<String, Value>>(claims) else {
        return;
    };
    let written = read(rules);
    let mut compiled = Vec::new();
    for rule in &written {
        let result = ClaimRule::compile(&rule.claims, &rule.user, &rule.groups);
        assert_eq!(result.is_ok(), compiles(rule), "{result:?} rule={rule:?}");
        match result {
            Ok(c) => compiled.push(c),
            // A rule that does not compile is a config error, with a message.
            Err(e) => {
                assert!(!e.is_empty(), "rule={rule:?}");
                return;
            }
        }
    }
    let decided = decide(&compiled, &claims);
    let first = written.iter().position(|r| matches(r, &claims));
    let Ok(mapped) = decided else {
        // Refused: no rule matches, or the first that does gives no usable identity.
        if let Some(i) = first {
            let rule = &written[i];
            let user = fill(&rule.user, &claims);
            let groups: Option<Vec<String>> =
                rule.groups.iter().map(|g| fill(g, &claims)).collect();
            assert!(
                !user.as_deref().is_some_and(usable) || groups.is_none(),
                "rule {i} matches and gives {user:?} {groups:?}, yet refused ({decided:?}): rules={rules:?} claims={claims:?}"
            );
        }
        return;
    };
    let user = &mapped.user;
    assert!(!user.starts_with(ROBOT_PREFIX), "user={user:?}");
    assert!(!user.chars().any(char::is_control), "user={user:?}");
    assert!(!user.trim().is_empty(), "user={user:?}");
    assert_eq!(
        first,
        Some(mapped.rule),
        "rules={rules:?} claims={claims:?}"
    );
    let rule = &written[mapped.rule];
    assert_eq!(
        fill(&rule.user, &claims).as_deref(),
        Some(user.as_str()),
        "rule={rule:?} claims={claims:?}"
    );
    if !rule.user.contains('/') {
        assert!(
            !user.contains('/') || user.split('/').all(|s| !matches!(s, "" | "." | "..")),
            "a substituted value made a path trick: user={user:?} rule={rule:?}"
        );
    }
    let mut groups: Vec<String> = rule
        .groups
        .iter()
        .map(|g| fill(g, &claims))
        .collect::<Option<_>>()
        .unwrap_or_else(|| panic!("mapped, yet a group has no plain value: rule={rule:?}"));
    groups.retain(|g| !g.is_empty());
    groups.sort();
    groups.dedup();
    assert_eq!(mapped.groups, groups, "rule={rule:?} claims={claims:?}");
}

/// The rules of the input text.
fn read(text: &str) -> Vec<Written> {
    let mut rules = vec![Written::default()];
    for line in text.lines() {
        if line == "--" {
            rules.push(Written::default());
            continue;
        }
        let Some(current) = rules.last_mut() else {
            continue;
        };
        if let Some(user) = line.strip_prefix("user ") {
            current.user = user.to_owned();
        } else if let Some(group) = line.strip_prefix("group ") {
            current.groups.push(group.to_owned());
        } else if let Some((name, glob)) = line.split_once('=') {
            current.claims.push((name.to_owned(), glob.to_owned()));
        }
    }
    rules
}

/// Whether the documentation says `rule` compiles.
fn compiles(rule: &Written) -> bool {
    !rule.claims.is_empty()
        && rule.claims.iter().all(|(name, _)| claim_name(name))
        && !rule.user.is_empty()
        && !rule
            .user
            .split("${")
            .next()
            .is_some_and(|text| text.starts_with(ROBOT_PREFIX))
        && holes(&rule.user).is_some_and(|names| !names.is_empty() || user_name(&rule.user))
        && rule.groups.iter().all(|g| holes(g).is_some())
}

/// A literal user is checked as a user name when the rule compiles: not blank, no
/// control character.
fn user_name(user: &str) -> bool {
    !user.trim().is_empty() && !user.chars().any(char::is_control)
}

/// The claim names of `template`'s `${claim.NAME}` holes, in order; `None` if a `${`
/// has no `}` or holds anything else.
fn holes(template: &str) -> Option<Vec<&str>> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let name = after[..end].strip_prefix("claim.")?;
        if !claim_name(name) {
            return None;
        }
        names.push(name);
        rest = &after[end + 1..];
    }
    Some(names)
}

/// A claim name a rule may use.
fn claim_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

/// Whether every claim `rule` lists is there, plain, and matches its glob.
fn matches(rule: &Written, claims: &Map<String, Value>) -> bool {
    rule.claims
        .iter()
        .all(|(name, glob)| value(claims, name).is_some_and(|v| Glob::name(glob).matches(&v)))
}

/// `template` with each `${claim.NAME}` replaced by the claim's plain value; `None` if
/// one is missing or not plain, or the template does not compile.
fn fill(template: &str, claims: &Map<String, Value>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    for name in holes(template)? {
        let hole = format!("${{claim.{name}}}");
        let start = rest.find(&hole)?;
        out.push_str(&rest[..start]);
        out.push_str(&value(claims, name)?);
        rest = &rest[start + hole.len()..];
    }
    out.push_str(rest);
    Some(out)
}

/// A claim's value as rules read it (a string, or a number's or boolean's JSON text),
/// if it is plain.
fn value(claims: &Map<String, Value>, name: &str) -> Option<String> {
    let v = match claims.get(name)? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    plain(&v).then_some(v)
}

/// At most 255 bytes of letters, digits and `. _ - / @ : +`, no empty, `.` or `..`
/// segment.
fn plain(v: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._-/@:+".contains(&b);
    let segments_ok = v.split('/').all(|s| !matches!(s, "" | "." | ".."));
    !v.is_empty() && v.len() <= VALUE_MAX_LEN && v.bytes().all(allowed) && segments_ok
}

/// A user name a rule may give: not a robot's, not blank, no control character.
fn usable(user: &str) -> bool {
    !user.starts_with(ROBOT_PREFIX)
        && !user.trim().is_empty()
        && !user.chars().any(char::is_control)
}
