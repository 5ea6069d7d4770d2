//! One line for an error and everything under it, for logs:
//! `reload failed: auth.htpasswd: failed to read htpasswd file x: No such file`.

/// The error's message followed by each `source()`'s, joined by `": "`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_source_is_included() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(super::error_chain(&e), "outer: inner");
        assert_eq!(super::error_chain(&std::io::Error::other("alone")), "alone");
    }
}
