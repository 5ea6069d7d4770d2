//! LDAP filter text built from templates, with every substituted value escaped
//! (RFC 4515 §3), and group names read out of distinguished names (RFC 4514).
//!
//! A user name is outside input: without escaping, `*` would match every entry and
//! `)(uid=*` would rewrite the filter. Escaping turns each of `*`, `(`, `)`, `\` and
//! NUL into `\XX`, so the directory compares the name as a plain value.

/// Escapes a value for use inside a filter's assertion value (RFC 4515 §3).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Fills `${name}` placeholders of a filter template with escaped values. Unknown
/// placeholders are left as written (config validation refuses them).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match values.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => out.push_str(&escape(v)),
                    None => out.push_str(&rest[start..start + 2 + end + 1]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `text` is a filter the LDAP client can encode (RFC 4515 syntax).
/// The client library also takes a bare `uid=x`; the RFC form is parenthesised.
pub fn is_valid(text: &str) -> bool {
    let text = text.trim();
    text.starts_with('(') && text.ends_with(')') && ldap3::parse_filter(text).is_ok()
}

/// The `${...}` placeholder names a template uses.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        names.push(&after[..end]);
        rest = &after[end + 1..];
    }
    names
}

/// The attribute that every `${placeholder}` of `template` is compared with in a plain
/// equality term `(ATTR=${placeholder})`: `uid` in `(&(uid=${account})(objectClass=x))`.
/// `None` when a use is anything else (substring, extensible match, part of a longer
/// value) or the uses name different attributes (`(|(uid=..)(mail=..))`).
pub fn equality_attribute<'a>(template: &'a str, placeholder: &str) -> Option<&'a str> {
    let token = format!("${{{placeholder}}}");
    let mut found: Option<&str> = None;
    for (at, _) in template.match_indices(&token) {
        if !template[at + token.len()..].starts_with(')') {
            return None;
        }
        let before = template[..at].strip_suffix('=')?;
        let open = before.rfind('(')?;
        let attribute = &before[open + 1..];
        if !is_attribute_name(attribute) {
            return None;
        }
        match found {
            Some(f) if !f.eq_ignore_ascii_case(attribute) => return None,
            Some(_) => {}
            None => found = Some(attribute),
        }
    }
    found
}

/// Whether `name` is an attribute description without options (RFC 4512 §1.4): a
/// `descr` (a letter, then letters, digits and `-`) or a numeric OID.
pub fn is_attribute_name(name: &str) -> bool {
    let descr = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !name.is_empty()
        && name
            .split('.')
            .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    descr || oid
}

/// The value of a DN's first RDN when its attribute is `attribute` (case-insensitive),
/// unescaped: `cn=Dev Ops\, EU,ou=groups,dc=example` → `Dev Ops, EU`. `None` when the
/// first RDN is another attribute or multi-valued (`cn=a+uid=b`).
pub fn first_rdn_value(dn: &str, attribute: &str) -> Option<String> {
    let (name, rest) = dn.split_once('=')?;
    if !name.trim().eq_ignore_ascii_case(attribute) {
        return None;
    }
    let mut value = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            ',' | ';' => break,
            '+' => return None,
            '\\' => {
                let next = chars.next()?;
                if next.is_ascii_hexdigit() {
                    // `\XX` hex pairs: collect the UTF-8 bytes they spell.
                    let mut bytes = vec![hex_pair(next, chars.next()?)?];
                    let mut look = chars.clone();
                    while look.next() == Some('\\') {
                        let (Some(a), Some(b)) = (look.next(), look.next()) else {
                            break;
                        };
                        let Some(byte) = hex_pair(a, b) else { break };
                        bytes.push(byte);
                        chars = look.clone();
                    }
                    value.push_str(&String::from_utf8(bytes).ok()?);
                } else {
                    value.push(next);
                }
            }
            c => value.push(c),
        }
    }
    let value = value.trim().to_string();
    (!value.is_empty()).then_some(value)
}

fn hex_pair(a: char, b: char) -> Option<u8> {
    let hi = a.to_digit(16)?;
    let lo = b.to_digit(16)?;
    u8::try_from(hi * 16 + lo).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metacharacters_are_escaped() {
        assert_eq!(escape("alice"), "alice");
        assert_eq!(escape("*"), "\\2a");
        assert_eq!(escape(")(uid=*"), "\\29\\28uid=\\2a");
        assert_eq!(escape("a\\b\0"), "a\\5cb\\00");
        assert_eq!(escape("jürgen"), "jürgen", "UTF-8 stays as it is");
    }

    #[test]
    fn templates_substitute_escaped_values() {
        let f = fill(
            "(&(uid=${account})(objectClass=inetOrgPerson))",
            &[("account", "*)(uid=*")],
        );
        assert_eq!(
            f,
            "(&(uid=\\2a\\29\\28uid=\\2a)(objectClass=inetOrgPerson))"
        );
        let g = fill(
            "(|(member=${dn})(memberUid=${account}))",
            &[("dn", "uid=a\\,b,ou=p"), ("account", "a,b")],
        );
        assert_eq!(g, "(|(member=uid=a\\5c,b,ou=p)(memberUid=a,b))");
        assert_eq!(fill("(x=${other})", &[("account", "a")]), "(x=${other})");
        assert_eq!(fill("(x=${account", &[("account", "a")]), "(x=${account");
        assert_eq!(
            placeholders("(&(a=${account})(b=${dn}))"),
            ["account", "dn"]
        );
    }

    #[test]
    fn the_attribute_compared_with_the_account() {
        let cases = [
            ("(uid=${account})", Some("uid")),
            (
                "(&(sAMAccountName=${account})(objectClass=user))",
                Some("sAMAccountName"),
            ),
            ("(|(uid=${account})(UID=${account}))", Some("uid")),
            ("(|(uid=${account})(mail=${account}))", None),
            ("(uid=${account}*)", None),
            ("(uid=x${account})", None),
            ("(uid~=${account})", None),
            ("(uid:caseExactMatch:=${account})", None),
            ("(&(uid=${account})(cn=*${account}))", None),
            ("(uid=alice)", None),
            ("(1.2.3=${account})", Some("1.2.3")),
        ];
        for (template, want) in cases {
            assert_eq!(equality_attribute(template, "account"), want, "{template}");
        }
        for bad in ["", "1uid", "uid;x", "u_id", "1..2", "-a"] {
            assert!(!is_attribute_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn group_names_come_from_the_first_rdn() {
        assert_eq!(
            first_rdn_value("cn=pushers,ou=groups,dc=example,dc=org", "cn").as_deref(),
            Some("pushers")
        );
        assert_eq!(
            first_rdn_value("CN=Dev Ops\\, EU,OU=Groups,DC=corp", "cn").as_deref(),
            Some("Dev Ops, EU")
        );
        assert_eq!(
            first_rdn_value("cn=J\\C3\\BCrgen,ou=x", "cn").as_deref(),
            Some("Jürgen")
        );
        assert_eq!(first_rdn_value("ou=groups,dc=x", "cn"), None);
        assert_eq!(first_rdn_value("cn=a+uid=b,dc=x", "cn"), None);
        assert_eq!(first_rdn_value("cn=,dc=x", "cn"), None);
        assert_eq!(first_rdn_value("garbage", "cn"), None);
    }
}
