//! Authorization: what a request needs ([`access`]: method + path → repository and
//! actions) and what the rules grant ([`rules`], with [`glob`] for their patterns).
//! Pure functions; no HTTP types beyond the method.

pub mod access;
pub mod glob;
pub mod rules;
