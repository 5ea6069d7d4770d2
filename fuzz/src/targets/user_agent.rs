//! `UaBlocklist::is_blocked` with the default pattern, checked against the pattern spelled
//! out by hand.

use std::sync::LazyLock;

use http::HeaderValue;
use registry_gate::config::{UaPattern, DEFAULT_UA_BLOCK};
use registry_gate::proxy::ua::UaBlocklist;

/// Compiled once per fuzzing process rather than once per input.
static BLOCKLIST: LazyLock<UaBlocklist> = LazyLock::new(|| {
    let pattern = UaPattern::try_from(DEFAULT_UA_BLOCK.to_string())
        .expect("DEFAULT_UA_BLOCK is a valid pattern");
    UaBlocklist::new(vec![pattern])
});

/// `^(docker\/1\.(3|4|5(?!\.[0-9]-dev))|Go ).*$` without a regex: the `.*$` always matches,
/// as a header value holds no `\n`.
fn recipe_blocks(user_agent: &str) -> bool {
    // `(?!\.[0-9]-dev)`
    let dev = |rest: &[u8]| match rest {
        [b'.', digit, b'-', b'd', b'e', b'v', ..] => digit.is_ascii_digit(),
        _ => false,
    };
    ["Go ", "docker/1.3", "docker/1.4"]
        .iter()
        .any(|p| user_agent.starts_with(p))
        || user_agent
            .strip_prefix("docker/1.5")
            .is_some_and(|rest| !dev(rest.as_bytes()))
}

/// One input of the `user_agent` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let user_agent = String::from_utf8_lossy(data);
    assert_eq!(
        BLOCKLIST.is_blocked(Some(&value)),
        recipe_blocks(&user_agent),
        "user_agent={user_agent:?}"
    );
}
