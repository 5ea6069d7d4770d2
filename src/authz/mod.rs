//! Authorization: what a request needs ([`access`]: method + path → repository and
//! actions). Pure functions, no HTTP types beyond the method; the per-repository
//! rules of issue 7 will sit beside it.

pub mod access;
