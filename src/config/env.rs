//! Configuration from the environment: `REGISTRY_GATE_<SECTION>_<KEY>` overrides
//! `[section] key` of the file, the way container images are configured.
//!
//! A value is read as a TOML value when it is one (`true`, `30`, `["10.0.0.0/8"]`,
//! `"quoted"`); anything else is a string, so `REGISTRY_GATE_UPSTREAM_URL=http://registry:5000`
//! and `REGISTRY_GATE_SHUTDOWN_GRACE_PERIOD=2m` need no quotes. Section names hold
//! underscores too (`user_agent`), so a variable is split at the longest section name
//! it starts with, and the rest is the key. Every key of every section can be set so,
//! but `authz.rules` (a list of tables: `authz.rules_file` names a file of them) and
//! the `[[oidc]]` issuers (a list of tables, written in the file);
//! a table-valued key such as `authz.groups` is set whole, as an inline table. A
//! variable under the prefix that names no section or key is an error listing what
//! can be set, rather than silently ignored, so a typo does not go unnoticed.

use super::Error;

mod keys;

/// The prefix of every override variable.
pub const ENV_PREFIX: &str = "REGISTRY_GATE_";
/// The config file path (`--config`): under the prefix, but not a key.
const CONFIG_PATH_VAR: &str = "REGISTRY_GATE_CONFIG";
/// Keys no variable can set, and why, with what to set instead.
const REFUSED: &[(&str, &str)] = &[(
    "authz.rules",
    "its rules are a list of tables, read in order, whose mistakes need a file and \
     line to be found; write them in a file and set REGISTRY_GATE_AUTHZ_RULES_FILE to \
     its path (or write them in the config file)",
)];
/// Keys whose value is a table: a variable sets the whole table, as an inline one.
const TABLES: &[&str] = &["authz.groups"];

/// One `REGISTRY_GATE_<SECTION>_<KEY>` variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// The variable's name, for messages.
    pub var: String,
    /// The section it sets.
    pub section: &'static str,
    /// The key within the section, lower case.
    pub key: String,
    /// The value.
    pub value: toml::Value,
}

impl Override {
    /// `section.key`, as error messages name keys.
    pub fn key_path(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }
}

/// The overrides among `vars` (such as `std::env::vars_os()`), sorted by variable name.
pub fn overrides<I, K, V>(vars: I) -> Result<Vec<Override>, Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<std::ffi::OsString>,
    V: Into<std::ffi::OsString>,
{
    let mut found = Vec::new();
    for (name, value) in vars {
        let (name, value) = (name.into(), value.into());
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(ENV_PREFIX) || name == CONFIG_PATH_VAR {
            continue;
        }
        let value = value.into_string().map_err(|_| Error::Env {
            var: name.to_string(),
            message: "value is not valid UTF-8".into(),
        })?;
        found.push(parse(name, &value)?);
    }
    found.sort_by(|a, b| a.var.cmp(&b.var));
    Ok(found)
}

fn parse(var: &str, raw: &str) -> Result<Override, Error> {
    let rest = var[ENV_PREFIX.len()..].to_ascii_lowercase();
    let error = |message: String| Error::Env {
        var: var.to_string(),
        message,
    };
    let section = keys::sections()
        .iter()
        .copied()
        .filter(|s| {
            rest.strip_prefix(*s)
                .is_some_and(|k| k.len() > 1 && k.starts_with('_'))
        })
        .max_by_key(|s| s.len())
        .ok_or_else(|| {
            error(format!(
                "names no config key: write {ENV_PREFIX}<SECTION>_<KEY> with a section of {}",
                keys::sections().join(", ")
            ))
        })?;
    let key = &rest[section.len() + 1..];
    check_key(section, key, raw).map_err(error)?;
    Ok(Override {
        var: var.to_string(),
        section,
        key: key.to_string(),
        value: value(raw),
    })
}

/// Whether a variable may set `section.key`; else what it may set.
fn check_key(section: &str, key: &str, raw: &str) -> Result<(), String> {
    if section == "oidc" {
        return Err(
            "[[oidc]] cannot be set from the environment: its issuers are a list of \
                    tables, each with its own rules; write them in the config file"
                .into(),
        );
    }
    let path = format!("{section}.{key}");
    if let Some((_, why)) = REFUSED.iter().find(|(k, _)| *k == path) {
        return Err(format!(
            "{path} cannot be set from the environment: {why}; {}",
            settable(section)
        ));
    }
    for table in TABLES {
        if let Some(entry) = path.strip_prefix(&format!("{table}_")) {
            let var = format!(
                "{ENV_PREFIX}{}",
                table.replace('.', "_").to_ascii_uppercase()
            );
            return Err(format!(
                "{table} is set as a whole table, not one entry per variable (a variable's \
                 name loses the case of the names in it): write {var}='{{ {entry} = {raw} }}'"
            ));
        }
    }
    if !keys::of(section).contains(&key) {
        return Err(format!(
            "unknown field `{key}` in [{section}]; {}",
            settable(section)
        ));
    }
    Ok(())
}

/// The variables of `section`, for messages.
fn settable(section: &str) -> String {
    let vars: Vec<String> = keys::of(section)
        .iter()
        .filter(|k| !REFUSED.iter().any(|(r, _)| *r == format!("{section}.{k}")))
        .map(|k| format!("{ENV_PREFIX}{section}_{k}").to_ascii_uppercase())
        .collect();
    format!("the environment can set {}", vars.join(", "))
}

/// `raw` as a TOML value if it is exactly one, else as a string.
fn value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(table) if table.len() == 1 => table
            .into_iter()
            .next()
            .map_or_else(|| toml::Value::String(raw.into()), |(_, v)| v),
        _ => toml::Value::String(raw.to_string()),
    }
}

/// Sets each override in a parsed file.
pub(super) fn apply(table: &mut toml::Table, overrides: &[Override]) -> Result<(), Error> {
    for o in overrides {
        let section = table
            .entry(o.section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(section) = section else {
            return Err(Error::Env {
                var: o.var.clone(),
                message: format!("{} is not a table in the config file", o.section),
            });
        };
        section.insert(o.key.clone(), o.value.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Result<Vec<Override>, Error> {
        overrides([(name, value)])
    }

    #[test]
    fn variables_split_at_the_longest_section() {
        let o = one("REGISTRY_GATE_USER_AGENT_BLOCK", "[]").expect("valid");
        assert_eq!((o[0].section, o[0].key.as_str()), ("user_agent", "block"));
        let o = one("REGISTRY_GATE_LIMITS_MAX_BODY_SIZE", "10GiB").expect("valid");
        assert_eq!(o[0].key_path(), "limits.max_body_size");
        assert_eq!(o[0].value, toml::Value::String("10GiB".into()));
    }

    #[test]
    fn values_are_toml_when_they_parse_and_strings_otherwise() {
        let cases = [
            ("true", toml::Value::Boolean(true)),
            ("30", toml::Value::Integer(30)),
            ("\"a b\"", toml::Value::String("a b".into())),
            (
                "http://registry:5000",
                toml::Value::String("http://registry:5000".into()),
            ),
            ("0.0.0.0:443", toml::Value::String("0.0.0.0:443".into())),
            // Two keys' worth of text is not one value: it stays a string.
            ("1\nx = 2", toml::Value::String("1\nx = 2".into())),
        ];
        for (raw, want) in cases {
            assert_eq!(value(raw), want, "{raw:?}");
        }
        let list = value("[\"10.0.0.0/8\", \"192.168.0.0/16\"]");
        assert!(matches!(list, toml::Value::Array(a) if a.len() == 2));
    }

    #[test]
    fn unknown_sections_are_errors_and_the_config_path_is_not_a_key() {
        let e = one("REGISTRY_GATE_UPSTRAEM_URL", "x").expect_err("typo");
        assert!(
            e.to_string()
                .starts_with("REGISTRY_GATE_UPSTRAEM_URL: names no config key"),
            "{e}"
        );
        assert!(one("REGISTRY_GATE_UPSTREAM", "x").is_err());
        assert!(one("REGISTRY_GATE_UPSTREAM_", "x").is_err());
        assert_eq!(
            one("REGISTRY_GATE_CONFIG", "/etc/x.toml").expect("skipped"),
            vec![]
        );
        assert_eq!(one("PATH", "/bin").expect("skipped"), vec![]);
    }

    #[test]
    fn every_section_is_reached_and_multi_word_names_split_right() {
        let cases = [
            ("REGISTRY_GATE_LDAP_URL", "ldap.url"),
            (
                "REGISTRY_GATE_LDAP_BIND_PASSWORD_FILE",
                "ldap.bind_password_file",
            ),
            ("REGISTRY_GATE_TOKEN_SERVICE", "token.service"),
            ("REGISTRY_GATE_TOKEN_PREVIOUS_CERTS", "token.previous_certs"),
            (
                "REGISTRY_GATE_HEADERS_STRICT_TRANSPORT_SECURITY",
                "headers.strict_transport_security",
            ),
            ("REGISTRY_GATE_AUTHZ_PUSH_GROUP", "authz.push_group"),
            ("REGISTRY_GATE_AUTHZ_RULES_FILE", "authz.rules_file"),
            ("REGISTRY_GATE_AUTH_CACHE_TTL", "auth.cache_ttl"),
            ("REGISTRY_GATE_TLS_CLIENT_CA", "tls.client_ca"),
            ("REGISTRY_GATE_USER_AGENT_BLOCK", "user_agent.block"),
        ];
        for (var, want) in cases {
            let o = one(var, "x").unwrap_or_else(|e| panic!("{var}: {e}"));
            assert_eq!(o[0].key_path(), want, "{var}");
        }
    }

    #[test]
    fn keys_no_variable_can_set_are_refused_with_what_can_be() {
        let e = one("REGISTRY_GATE_AUTHZ_RULES", "[]").expect_err("rules");
        assert_eq!(
            e.to_string(),
            "REGISTRY_GATE_AUTHZ_RULES: authz.rules cannot be set from the environment: its \
             rules are a list of tables, read in order, whose mistakes need a file and line \
             to be found; write them in a file and set REGISTRY_GATE_AUTHZ_RULES_FILE to its \
             path (or write them in the config file); the environment can set \
             REGISTRY_GATE_AUTHZ_PUSH_GROUP, REGISTRY_GATE_AUTHZ_GROUPS, \
             REGISTRY_GATE_AUTHZ_RULES_FILE"
        );
        let e = one("REGISTRY_GATE_TOKEN_SERVICES", "x").expect_err("typo");
        assert!(
            e.to_string().starts_with(
                "REGISTRY_GATE_TOKEN_SERVICES: unknown field `services` in [token]; the \
                 environment can set REGISTRY_GATE_TOKEN_PATH, REGISTRY_GATE_TOKEN_ISSUER, \
                 REGISTRY_GATE_TOKEN_SERVICE,"
            ),
            "{e}"
        );
        let e = one("REGISTRY_GATE_AUTHZ_GROUPS_CI", "[\"alice\"]").expect_err("entry");
        assert!(
            e.to_string()
                .ends_with("write REGISTRY_GATE_AUTHZ_GROUPS='{ ci = [\"alice\"] }'"),
            "{e}"
        );
        let o = one("REGISTRY_GATE_AUTHZ_GROUPS", "{ ci = [\"alice\"] }").expect("whole");
        assert!(matches!(&o[0].value, toml::Value::Table(t) if t.contains_key("ci")));
    }
}
