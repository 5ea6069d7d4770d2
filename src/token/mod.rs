//! Token mode: a token server per the distribution token spec.

pub mod scope;
