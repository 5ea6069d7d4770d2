//! The user-agent blocklist: pre-1.6 docker clients get a 404 under `/v2/`.
//!
//! docker before 1.6 spoke registry API v1 and did not set its user agent on the
//! ping, so the recipe refuses `docker/1.3`–`1.5` and bare `Go ` clients with a 404,
//! which makes them fall back to v1 instead of failing on a v2 answer they
//! misread. The recipe's pattern uses a look-ahead (`5(?!\.[0-9]-dev)`), which the
//! `regex` crate cannot express; `fancy-regex` can, and hands look-around-free
//! patterns to `regex` unchanged.

use http::HeaderValue;

use crate::config::UaPattern;

/// Compiled blocklist patterns.
#[derive(Clone, Debug, Default)]
pub struct UaBlocklist {
    patterns: Vec<UaPattern>,
}

impl UaBlocklist {
    /// Builds the list from configured patterns.
    pub fn new(patterns: Vec<UaPattern>) -> Self {
        UaBlocklist { patterns }
    }

    /// How many patterns there are.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether a request with this `User-Agent` (absent = empty, as nginx's
    /// `$http_user_agent`) is refused. A pattern that gives up (backtracking
    /// limit) does not block.
    pub fn is_blocked(&self, user_agent: Option<&HeaderValue>) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let text = user_agent
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .unwrap_or_default();
        self.patterns.iter().any(|p| match p.0.is_match(text.as_ref()) {
            Ok(matched) => matched,
            Err(e) => {
                tracing::warn!(error = %e, pattern = p.0.as_str(), "user-agent pattern gave up");
                false
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_UA_BLOCK;

    fn recipe() -> UaBlocklist {
        let p = UaPattern::try_from(DEFAULT_UA_BLOCK.to_string()).expect("recipe pattern compiles");
        UaBlocklist::new(vec![p])
    }

    #[test]
    fn recipe_pattern_matches_nginx() {
        // Expected values are what PCRE (nginx) gives for the recipe's pattern.
        let cases: &[(Option<&str>, bool)] = &[
            (Some("docker/1.3.0 go/go1.3.3"), true),
            (Some("docker/1.4.1"), true),
            (Some("docker/1.5.0"), true),
            (
                Some("docker/1.5.0 go/go1.4.1 git-commit/a8a31ef kernel/3.13"),
                true,
            ),
            (Some("docker/1.5.1-dev"), false),
            (Some("docker/1.5.0-dev"), false),
            (Some("docker/1.5"), true),
            (Some("docker/1.6.0"), false),
            (Some("docker/1.10.0"), false),
            (Some("docker/1.30.0"), true), // 1.3 prefix: the recipe blocks it, and so do we
            (Some("docker/24.0.7 go/go1.20.10"), false),
            (Some("Go 1.1 package http"), true),
            (Some("Go-http-client/1.1"), false),
            (Some("go 1.1 package http"), false),
            (Some("containers/5.29 (github.com/containers/image)"), false),
            (Some(""), false),
            (None, false),
        ];
        let list = recipe();
        for (ua, want) in cases {
            let value = ua.map(|s| HeaderValue::from_str(s).expect("valid header"));
            assert_eq!(list.is_blocked(value.as_ref()), *want, "ua={ua:?}");
        }
    }

    #[test]
    fn non_utf8_user_agent_is_matched_lossily() {
        let list = recipe();
        let v = HeaderValue::from_bytes(b"docker/1.4\xff").expect("obs-text is a valid header");
        assert!(list.is_blocked(Some(&v)));
    }

    #[test]
    fn empty_list_blocks_nothing() {
        let v = HeaderValue::from_static("docker/1.4.0");
        assert!(!UaBlocklist::default().is_blocked(Some(&v)));
    }
}
