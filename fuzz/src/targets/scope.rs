//! `token::scope::parse_scopes` on UTF-8 text, and `grant` on what it accepts.
//!
//! Input: the `scope` parameters, separated by `\n` (each may hold several scopes
//! separated by spaces). Every scope accepted displays as text that parses back to it,
//! and the granted access only ever holds actions that were asked for.

use registry_gate::auth::Identity;
use registry_gate::token::scope::{grant, parse_scopes, Scope, MAX_SCOPES, MAX_SCOPE_LEN};

/// One input of the `scope` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scopes) = parse_scopes(text.split('\n')) else {
        return;
    };
    assert!(scopes.len() <= MAX_SCOPES, "text={text:?}");
    for scope in &scopes {
        let shown = scope.to_string();
        assert!(shown.len() <= MAX_SCOPE_LEN, "scope={scope:?}");
        assert!(!shown.contains([' ', '\n']), "scope={scope:?}");
        assert_eq!(Scope::parse(&shown).as_ref(), Ok(scope), "text={text:?}");
    }
    // Displayed and joined, the scopes parse back to the same list.
    let joined: Vec<String> = scopes.iter().map(Scope::to_string).collect();
    assert_eq!(
        parse_scopes([joined.join(" ").as_str()]).as_ref(),
        Ok(&scopes),
        "text={text:?}"
    );

    // Without [authz] an authenticated user holds every right; what is granted is still
    // only what was asked, once per type and name.
    let who = Identity {
        user: "fuzz".to_owned(),
        groups: Vec::new(),
    };
    let granted = grant(None, Some(&who), &scopes);
    for (i, access) in granted.iter().enumerate() {
        let asked: Vec<&Scope> = scopes
            .iter()
            .filter(|s| s.resource_type == access.resource_type && s.name == access.name)
            .collect();
        assert!(!asked.is_empty(), "access={access:?} text={text:?}");
        for action in &access.actions {
            assert!(
                asked.iter().any(|s| s.actions.contains(action)),
                "action={action:?} text={text:?}"
            );
        }
        assert!(
            granted[..i]
                .iter()
                .all(|a| (&a.resource_type, &a.name) != (&access.resource_type, &access.name)),
            "text={text:?}"
        );
    }
    assert!(grant(None, None, &scopes)
        .iter()
        .all(|a| a.actions.is_empty()));
}
