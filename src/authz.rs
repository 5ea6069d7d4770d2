//! Authorization: what a request needs ([`access`]: method + path → repository and
//! actions), what the rules grant ([`rules`], with [`glob`] for their patterns), and
//! the one answer every front door asks ([`policy`]: rules plus the built-in rules
//! for no `[authz]` and for anonymous clients). Pure functions; no HTTP types beyond
//! the method (and the headers [`access::reads_form_body`] reads).

pub mod access;
pub(crate) mod glob;
pub(crate) mod policy;
pub mod rules;
