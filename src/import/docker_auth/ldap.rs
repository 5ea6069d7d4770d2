//! `ldap_auth` → `[ldap]`.
//!
//! docker_auth (`authn/ldap_auth.go`) searches as `bind_dn` under `base` with `filter`,
//! then binds as the entry found: what the gate does too. Its labels read user
//! attributes; the one label that became the gate's groups becomes `group_attribute`.

use super::render::LdapSection;
use super::yaml::LdapAuth;
use super::{refused, Error};

/// `ldap_auth.tls`: how the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    None,
    Always,
    StartTls,
}

/// Where the groups come from.
#[derive(Debug, Default)]
struct Groups {
    attribute: Option<String>,
    /// Values as they are (no `parse_cn`).
    names: bool,
    /// docker_auth lower-cased them.
    lower_case: bool,
}

/// `[ldap]`, and whether the group label's values were lower-cased.
pub fn ldap_section(
    l: &LdapAuth,
    group_label: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<(LdapSection, bool), Error> {
    if l.initial_bind_as_user {
        return Err(refused(
            "ldap_auth.initial_bind_as_user",
            "not supported: the gate searches for the user as bind_dn, then binds as the DN found",
        ));
    }
    let (url, tls) = url(l)?;
    if l.insecure_tls_skip_verify {
        notes.push(
            "ldap_auth.insecure_tls_skip_verify: not carried over: the gate always verifies the \
             directory's certificate; set ldap.ca to the CA that signed it"
                .into(),
        );
    }
    let ca = match (&l.ca_certificate, tls) {
        (Some(_), Security::None) => {
            notes.push("ldap_auth.ca_certificate: left out: tls is none, so it was unused".into());
            None
        }
        (ca, _) => ca.clone(),
    };
    let (bind_dn, bind_password_file) = bind(l, notes)?;
    let base = l
        .base
        .clone()
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| refused("ldap_auth.base", "missing: the gate needs a search base"))?;
    let filter = l.filter.clone().filter(|f| !f.is_empty()).ok_or_else(|| {
        refused(
            "ldap_auth.filter",
            "missing: docker_auth cannot search without one, so no one signed in through it",
        )
    })?;
    let groups = groups(l, group_label, notes)?;
    let section = LdapSection {
        url,
        starttls: tls == Security::StartTls,
        ca,
        bind_dn,
        bind_password_file,
        base,
        filter,
        group_attribute: groups.attribute,
        group_attribute_holds_names: groups.names,
    };
    Ok((section, groups.lower_case))
}

/// `ldap.url` from `addr` and `tls` (unset: `always` on port 636, as docker_auth does).
fn url(l: &LdapAuth) -> Result<(String, Security), Error> {
    let addr = l
        .addr
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| refused("ldap_auth.addr", "missing"))?;
    let tls = match l.tls.as_deref() {
        None | Some("") if addr.ends_with(":636") => Security::Always,
        None | Some("" | "none") => Security::None,
        Some("always") => Security::Always,
        Some("starttls") => Security::StartTls,
        Some(other) => {
            return Err(refused(
                "ldap_auth.tls",
                format!("{other:?}: expected none, always or starttls"),
            ))
        }
    };
    let scheme = if tls == Security::Always {
        "ldaps"
    } else {
        "ldap"
    };
    Ok((format!("{scheme}://{addr}"), tls))
}

/// `bind_dn` and `bind_password_file`, which the gate takes together only.
fn bind(l: &LdapAuth, notes: &mut Vec<String>) -> Result<(Option<String>, Option<String>), Error> {
    match (&l.bind_dn, &l.bind_password_file) {
        (Some(dn), Some(file)) => Ok((Some(dn.clone()), Some(file.clone()))),
        (Some(_), None) => Err(refused(
            "ldap_auth.bind_dn",
            "set without bind_password_file: docker_auth cannot read a password either",
        )),
        (None, Some(_)) => {
            notes.push(
                "ldap_auth.bind_password_file: left out: without bind_dn docker_auth searched \
                 anonymously"
                    .into(),
            );
            Ok((None, None))
        }
        (None, None) => Ok((None, None)),
    }
}

/// The group label's attribute, if `ldap_auth` defines it.
fn groups(l: &LdapAuth, label: Option<&str>, notes: &mut Vec<String>) -> Result<Groups, Error> {
    let Some((label, map)) = label.and_then(|label| Some((label, l.labels.get(label)?))) else {
        return Ok(Groups::default());
    };
    let attribute = map
        .attribute
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            refused(
                &format!("ldap_auth.labels.{label}.attribute"),
                "missing: docker_auth fails every LDAP sign-in like this",
            )
        })?;
    if map.parse_cn {
        notes.push(format!(
            "ldap_auth.labels.{label}.parse_cn: the gate takes the CN of DN values when it is \
             their first RDN and skips other values; docker_auth took the first CN anywhere in \
             the DN, or the whole value"
        ));
    }
    if map.lower_case {
        notes.push(format!(
            "ldap_auth.labels.{label}.lower_case: not carried over: the gate keeps group names \
             as the directory has them"
        ));
    }
    Ok(Groups {
        attribute: Some(attribute),
        names: !map.parse_cn,
        lower_case: map.lower_case,
    })
}
