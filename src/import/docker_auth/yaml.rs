//! docker_auth's `auth_config.yml` as typed structs, read the way docker_auth reads
//! it (Go's `yaml.v2`, not strict): keys it does not know are ignored there, and
//! collected here so the import can report them.
//!
//! Keys docker_auth knows but the import does not carry over are held as raw
//! [`Value`]s, so that they are reported as "not carried over" rather than as
//! unknown.

use std::collections::BTreeMap;

use serde::Deserialize;
use yaml_serde::Value;

use super::Error;

/// The whole file (docker_auth's `server.Config`). Every key is a field, not
/// `#[serde(flatten)]`: a flattened struct drops unknown keys unseen by
/// `serde_ignored`, and its values lose their line in errors.
#[derive(Debug, Default, Deserialize)]
pub struct AuthConfig {
    /// `server`: listener and TLS.
    #[serde(default)]
    pub server: Server,
    /// `token`: the tokens docker_auth issues.
    #[serde(default)]
    pub token: Token,
    /// `users`: the static user map; `None` when the key is absent.
    pub users: Option<BTreeMap<String, Option<User>>>,
    /// `ldap_auth`.
    pub ldap_auth: Option<LdapAuth>,
    /// `acl`: the static ACL; `None` when the key is absent.
    pub acl: Option<Vec<AclEntry>>,
    google_auth: Option<Value>,
    github_auth: Option<Value>,
    oidc_auth: Option<Value>,
    gitlab_auth: Option<Value>,
    mongo_auth: Option<Value>,
    xorm_auth: Option<Value>,
    ext_auth: Option<Value>,
    plugin_authn: Option<Value>,
    acl_mongo: Option<Value>,
    acl_xorm: Option<Value>,
    ext_authz: Option<Value>,
    plugin_authz: Option<Value>,
    casbin_authz: Option<Value>,
}

impl AuthConfig {
    /// The keys of the authentication backends present that the gate does not have.
    pub fn other_authn(&self) -> Vec<&'static str> {
        present(&[
            ("google_auth", &self.google_auth),
            ("github_auth", &self.github_auth),
            ("oidc_auth", &self.oidc_auth),
            ("gitlab_auth", &self.gitlab_auth),
            ("mongo_auth", &self.mongo_auth),
            ("xorm_auth", &self.xorm_auth),
            ("ext_auth", &self.ext_auth),
            ("plugin_authn", &self.plugin_authn),
        ])
    }

    /// The keys of the authorization backends present that the gate does not have.
    pub fn other_authz(&self) -> Vec<&'static str> {
        present(&[
            ("acl_mongo", &self.acl_mongo),
            ("acl_xorm", &self.acl_xorm),
            ("ext_authz", &self.ext_authz),
            ("plugin_authz", &self.plugin_authz),
            ("casbin_authz", &self.casbin_authz),
        ])
    }
}

fn present(keys: &[(&'static str, &Option<Value>)]) -> Vec<&'static str> {
    keys.iter()
        .filter(|(_, v)| v.as_ref().is_some_and(|v| !v.is_null()))
        .map(|(k, _)| *k)
        .collect()
}

/// `server`.
#[derive(Debug, Default, Deserialize)]
pub struct Server {
    /// `addr`: `":5001"`, `"host:port"`, or a socket path with `net: unix`.
    pub addr: Option<String>,
    /// `net`: `tcp` (default) or `unix`.
    pub net: Option<String>,
    /// `path_prefix`: put before `/auth`.
    pub path_prefix: Option<String>,
    /// `certificate`: the TLS certificate (and token certificate when `token` has none).
    pub certificate: Option<String>,
    /// `key`: the TLS key.
    pub key: Option<String>,
    real_ip_header: Option<Value>,
    real_ip_pos: Option<Value>,
    hsts: Option<Value>,
    tls_min_version: Option<Value>,
    tls_curve_preferences: Option<Value>,
    tls_cipher_suites: Option<Value>,
    letsencrypt: Option<Value>,
}

impl Server {
    /// The keys present that the gate has no counterpart for.
    pub fn other_keys(&self) -> Vec<&'static str> {
        present(&[
            ("real_ip_header", &self.real_ip_header),
            ("real_ip_pos", &self.real_ip_pos),
            ("hsts", &self.hsts),
            ("tls_min_version", &self.tls_min_version),
            ("tls_curve_preferences", &self.tls_curve_preferences),
            ("tls_cipher_suites", &self.tls_cipher_suites),
            ("letsencrypt", &self.letsencrypt),
        ])
    }
}

/// `token`.
#[derive(Debug, Default, Deserialize)]
pub struct Token {
    /// `issuer`: required by docker_auth.
    pub issuer: Option<String>,
    /// `certificate`: signs tokens with `key`; the server's pair when absent.
    pub certificate: Option<String>,
    /// `key`.
    pub key: Option<String>,
    /// `expiration`: seconds, more than zero.
    pub expiration: Option<i64>,
    /// `disable_legacy_key_id`: the `kid` form; the gate picks its own.
    pub disable_legacy_key_id: Option<Value>,
}

/// One entry of `users` (docker_auth's `authn.Requirements`).
#[derive(Debug, Default, Deserialize)]
pub struct User {
    /// `password`: a bcrypt hash; absent: any password is accepted.
    pub password: Option<String>,
    /// `labels`: label name → values.
    #[serde(default)]
    pub labels: BTreeMap<String, Vec<String>>,
}

/// `ldap_auth`.
#[derive(Debug, Default, Deserialize)]
pub struct LdapAuth {
    /// `addr`: `host:port`.
    pub addr: Option<String>,
    /// `tls`: `none` (default; `always` when `addr` ends in `:636`), `always`, `starttls`.
    pub tls: Option<String>,
    /// `insecure_tls_skip_verify`.
    #[serde(default)]
    pub insecure_tls_skip_verify: bool,
    /// `ca_certificate`: PEM CA for the directory's certificate.
    pub ca_certificate: Option<String>,
    /// `base`: where users are searched.
    pub base: Option<String>,
    /// `filter`: `${account}` is the escaped user name.
    pub filter: Option<String>,
    /// `bind_dn`: the search identity.
    pub bind_dn: Option<String>,
    /// `bind_password_file`.
    pub bind_password_file: Option<String>,
    /// `labels`: label name → the user attribute it is read from.
    #[serde(default)]
    pub labels: BTreeMap<String, LabelMap>,
    /// `initial_bind_as_user`: bind as `bind_dn` with `${account}` filled in.
    #[serde(default)]
    pub initial_bind_as_user: bool,
}

/// One `ldap_auth.labels` entry.
#[derive(Debug, Default, Deserialize)]
pub struct LabelMap {
    /// `attribute`: the user attribute whose values become the label's.
    pub attribute: Option<String>,
    /// `parse_cn`: take the CN of DN values.
    #[serde(default)]
    pub parse_cn: bool,
    /// `lower_case`: lower-case the values.
    #[serde(default)]
    pub lower_case: bool,
}

/// One `acl` entry.
#[derive(Debug, Default, Deserialize)]
pub struct AclEntry {
    /// `match`: the conditions; docker_auth does not start without it.
    #[serde(rename = "match")]
    pub conditions: Option<Conditions>,
    /// `actions`: what is granted; `[]` denies, `["*"]` grants what was asked.
    pub actions: Option<Vec<String>>,
    /// `comment`.
    pub comment: Option<String>,
}

/// `match` (docker_auth's `MatchConditions`): every condition set must hold.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Conditions {
    /// `account`: glob (`path.Match`) or `/regex/` over the user name (`""` anonymous).
    pub account: Option<String>,
    /// `type`: over the scope type (`repository`, `registry`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `name`: over the repository (or `catalog` for the registry type).
    pub name: Option<String>,
    /// `ip`: an address or CIDR the client must be in.
    pub ip: Option<String>,
    /// `service`: over the `service` the client asked for.
    pub service: Option<String>,
    /// `labels`: label name → pattern; one of the user's values must match.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A key docker_auth would ignore: its path (`acl[2].match.gidNumber`) and whether it
/// sits in an ACL entry's `match`, where ignoring it widens the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// The key path, with sequence indexes counted from 1.
    pub path: String,
    /// The ACL entry (from 1) when the key is in its `match`.
    pub in_match: Option<usize>,
}

/// Parses the file; errors carry the line and column. Keys docker_auth would ignore
/// come back beside the config.
pub fn parse(text: &str) -> Result<(AuthConfig, Vec<Ignored>), Error> {
    let mut ignored = Vec::new();
    let deserializer = yaml_serde::Deserializer::from_str(text);
    let config: Option<AuthConfig> = serde_ignored::deserialize(deserializer, |path| {
        ignored.push(ignored_key(&path));
    })
    .map_err(|e| yaml_error(&e))?;
    Ok((config.unwrap_or_default(), ignored))
}

fn yaml_error(e: &yaml_serde::Error) -> Error {
    let message = e.to_string();
    // The message ends with its own " at line L column C"; the location leads instead.
    let message = match message.rsplit_once(" at line ") {
        Some((head, tail)) if tail.split(' ').count() == 3 => head.to_string(),
        _ => message,
    };
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    Error::Yaml {
        line,
        column,
        message,
    }
}

fn ignored_key(path: &serde_ignored::Path<'_>) -> Ignored {
    let mut segments = Vec::new();
    segments_of(path, &mut segments);
    let in_match = match segments.as_slice() {
        [Segment::Key(acl), Segment::Index(n), Segment::Key(m), ..]
            if acl == "acl" && m == "match" =>
        {
            Some(*n)
        }
        _ => None,
    };
    let mut text = String::new();
    for segment in &segments {
        match segment {
            Segment::Key(k) if text.is_empty() => text.push_str(k),
            Segment::Key(k) => {
                text.push('.');
                text.push_str(k);
            }
            Segment::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    Ignored {
        path: text,
        in_match,
    }
}

enum Segment {
    Key(String),
    /// From 1.
    Index(usize),
}

fn segments_of(path: &serde_ignored::Path<'_>, out: &mut Vec<Segment>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            segments_of(parent, out);
            out.push(Segment::Index(index + 1));
        }
        Path::Map { parent, key } => {
            segments_of(parent, out);
            out.push(Segment::Key(key.clone()));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments_of(parent, out),
    }
}
