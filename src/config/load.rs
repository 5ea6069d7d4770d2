//! Reading the file: parsing, environment overrides, the checks across keys and
//! the resolution of relative paths.

use std::path::{Path, PathBuf};

use super::error::{merged_error, parse_error};
use super::{env, AuthMode, ClientAuth, Config, Error, Override};

impl Config {
    /// Parses and validates TOML text; relative paths stay as written.
    pub fn from_toml_str(text: &str) -> Result<Config, Error> {
        let config: Config = toml::from_str(text).map_err(|e| parse_error(text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text with environment overrides set on top of it, then validates.
    /// Errors in the file keep their line and column; errors in an override name it.
    pub fn from_toml_str_with(text: &str, overrides: &[Override]) -> Result<Config, Error> {
        if overrides.is_empty() {
            return Config::from_toml_str(text);
        }
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_error(text, &e))?;
        env::apply(&mut table, overrides)?;
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| merged_error(text, overrides, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a file; relative paths in it are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Config, Error> {
        Config::load_with(path, &[])
    }

    /// [`Config::load`] with environment overrides (see [`env`]).
    pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let mut config =
            Config::from_toml_str_with(&text, overrides).map_err(|e| e.with_path(path))?;
        let base = path.parent().unwrap_or(Path::new(""));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Cross-field checks, naming the key path.
    pub fn validate(&self) -> Result<(), Error> {
        if self.auth.htpasswd.is_none()
            && self.ldap.is_none()
            && self.auth.robots.is_none()
            && self.oidc.is_empty()
        {
            return Err(Error::Invalid {
                path: None,
                key: "auth.htpasswd",
                message: "missing: set auth.htpasswd, an [ldap] section, or both (or, for \
                          machines only, auth.robots or [[oidc]] issuers)"
                    .into(),
            });
        }
        super::oidc::check_issuers(&self.oidc).map_err(|message| Error::Invalid {
            path: None,
            key: "oidc",
            message,
        })?;
        if let Some(ldap) = &self.ldap {
            ldap.validate().map_err(|(key, message)| Error::Invalid {
                path: None,
                key,
                message,
            })?;
        }
        let invalid = |key: &'static str, message: String| Error::Invalid {
            path: None,
            key,
            message,
        };
        match (self.auth.mode, &self.token) {
            (AuthMode::Token, None) => {
                return Err(invalid(
                    "token",
                    "missing: auth.mode = \"token\" needs a [token] section".into(),
                ))
            }
            (AuthMode::Basic, Some(_)) => {
                return Err(invalid(
                    "token",
                    "set, but auth.mode is not \"token\"".into(),
                ))
            }
            (_, Some(token)) => token.validate().map_err(|(k, m)| invalid(k, m))?,
            (AuthMode::Basic, None) => {}
        }
        match &self.upstream {
            None if self.auth.mode == AuthMode::Basic => {
                return Err(invalid(
                    "upstream",
                    "missing: the registry behind the gate (only a token server may go without)"
                        .into(),
                ))
            }
            Some(upstream) if upstream.ca.is_some() && upstream.url.scheme() != "https" => {
                return Err(invalid(
                    "upstream.ca",
                    "set, but upstream.url is not https".into(),
                ));
            }
            _ => {}
        }
        if self.throttle.enabled
            && (self.throttle.max_failures_per_address == 0
                || self.throttle.max_failures_per_user == 0)
        {
            return Err(Error::Invalid {
                path: None,
                key: "throttle",
                message: "max_failures_per_address and max_failures_per_user must be at least 1 \
                          (set enabled = false to turn the throttle off)"
                    .into(),
            });
        }
        if self.authz.rules_file.is_some()
            && (self.authz.push_group.is_some() || !self.authz.rules.is_empty())
        {
            return Err(Error::Invalid {
                path: None,
                key: "authz.rules_file",
                message: "set either rules_file, rules or push_group".into(),
            });
        }
        if self.authz.push_group.is_some() && !self.authz.rules.is_empty() {
            return Err(Error::Invalid {
                path: None,
                key: "authz.push_group",
                message: "set either push_group or rules, not both (write the push group as rules)"
                    .into(),
            });
        }
        if self.tls.client_auth == ClientAuth::Required && self.tls.client_ca.is_none() {
            return Err(Error::Invalid {
                path: None,
                key: "tls.client_auth",
                message:
                    "\"required\" needs tls.client_ca (the CAs client certificates must chain to)"
                        .into(),
            });
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.tls.cert);
        resolve(&mut self.tls.key);
        if let Some(ca) = self.tls.client_ca.as_mut() {
            resolve(ca);
        }
        if let Some(ocsp) = self.tls.ocsp.as_mut() {
            resolve(ocsp);
        }
        if let Some(htpasswd) = self.auth.htpasswd.as_mut() {
            resolve(htpasswd);
        }
        if let Some(ldap) = self.ldap.as_mut() {
            if let Some(ca) = ldap.ca.as_mut() {
                resolve(ca);
            }
            if let Some(file) = ldap.bind_password_file.as_mut() {
                resolve(file);
            }
        }
        if let Some(groups) = self.auth.groups.as_mut() {
            resolve(groups);
        }
        if let Some(robots) = self.auth.robots.as_mut() {
            resolve(robots);
        }
        for issuer in &mut self.oidc {
            if let Some(file) = issuer.jwks_file.as_mut() {
                resolve(file);
            }
            if let Some(ca) = issuer.ca.as_mut() {
                resolve(ca);
            }
        }
        if let Some(rules) = self.authz.rules_file.as_mut() {
            resolve(rules);
        }
        if let Some(ca) = self.upstream.as_mut().and_then(|u| u.ca.as_mut()) {
            resolve(ca);
        }
        if let Some(token) = self.token.as_mut() {
            resolve(&mut token.key);
            resolve(&mut token.cert);
            token.previous_certs.iter_mut().for_each(resolve);
        }
    }
}
