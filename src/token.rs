//! Token mode: a token server per the distribution token spec.

pub(crate) mod jwt;
pub mod keys;
pub(crate) mod request;
pub mod scope;
pub(crate) mod service;
