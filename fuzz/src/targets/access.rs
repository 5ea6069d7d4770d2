//! `authz::access::classify` on a method, a UTF-8 path and an optional query.
//!
//! Input: the method, `\n`, the path, and optionally `\n` and the raw query. A method that
//! is not an HTTP token (hyper would have refused it) is left out.

use http::Method;
use registry_gate::authz::access::{self, Target};

/// One input of the `access` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let query = parts.next();
    let Ok(access) = access::classify(&method, path, query) else {
        return;
    };
    // What is checked is what the registry routes on: no escape left to decode.
    assert!(
        path.starts_with("/v2/") && !path.contains('%'),
        "path={path:?}"
    );
    let global = matches!(access.target, Target::Base | Target::Catalog);
    assert_eq!(access.repository.is_none(), global, "path={path:?}");
    assert_eq!(access.actions.is_empty(), global, "path={path:?}");
    assert_eq!(access.primary_action().is_none(), global, "path={path:?}");
    if let Some(object) = access.target.object() {
        assert!(path.ends_with(&format!("/{object}")), "path={path:?}");
    }
    for name in access.repository.iter().chain(access.mount_from.iter()) {
        assert!(
            !name.is_empty()
                && name.len() <= 255
                && !name.starts_with('/')
                && !name.ends_with('/')
                && !name.contains("//"),
            "name={name:?}"
        );
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b);
        assert!(name.bytes().all(allowed), "name={name:?}");
    }
    if let Some(repository) = &access.repository {
        assert!(
            path.starts_with(&format!("/v2/{repository}/")),
            "path={path:?} repository={repository:?}"
        );
    }
    if access.mount_from.is_some() {
        assert!(query.is_some_and(|q| !q.contains(';')), "query={query:?}");
    }
}
