//! Configuration from the environment: `REGISTRY_GATE_<SECTION>_<KEY>` overrides
//! `[section] key` of the file, the way container images are configured.
//!
//! A value is read as a TOML value when it is one (`true`, `30`, `["10.0.0.0/8"]`,
//! `"quoted"`); anything else is a string, so `REGISTRY_GATE_UPSTREAM_URL=http://registry:5000`
//! and `REGISTRY_GATE_SHUTDOWN_GRACE_PERIOD=2m` need no quotes. Section names hold
//! underscores too (`user_agent`), so a variable is split at the longest section name
//! it starts with; a variable under the prefix that names no section is an error
//! rather than silently ignored, so a typo does not go unnoticed.

use super::Error;

/// The prefix of every override variable.
pub const ENV_PREFIX: &str = "REGISTRY_GATE_";
/// The config file path (`--config`): under the prefix, but not a key.
const CONFIG_PATH_VAR: &str = "REGISTRY_GATE_CONFIG";
/// The sections of `proxy.toml`.
const SECTIONS: &[&str] = &[
    "listen",
    "tls",
    "upstream",
    "auth",
    "forwarding",
    "user_agent",
    "limits",
    "shutdown",
    "throttle",
    "reload",
    "admin",
    "log",
];

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
    let section = SECTIONS
        .iter()
        .filter(|s| {
            rest.strip_prefix(*s)
                .is_some_and(|k| k.len() > 1 && k.starts_with('_'))
        })
        .max_by_key(|s| s.len())
        .ok_or_else(|| Error::Env {
            var: var.to_string(),
            message: format!(
                "names no config key: write {ENV_PREFIX}<SECTION>_<KEY> with a section of {}",
                SECTIONS.join(", ")
            ),
        })?;
    Ok(Override {
        var: var.to_string(),
        section,
        key: rest[section.len() + 1..].to_string(),
        value: value(raw),
    })
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
}
