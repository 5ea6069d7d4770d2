//! Token mode: a token server per the distribution token spec.

pub mod jwt;
pub mod keys;
pub mod request;
pub mod scope;
pub mod service;
