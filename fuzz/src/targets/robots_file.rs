//! `auth::robots::Robots::parse`, `check` and `get` on a robots file's text, and the
//! edits `robot create`, `rotate` and `revoke` make to it.
//!
//! Input: the file's text (UTF-8). Nothing may panic. Every warning names a line of the
//! text; every robot read has a valid name and valid repository patterns, and a wrong
//! secret is refused for it. A robot created in the text can then log in with its
//! secret until it expires, keeps its old secret through a rotation's grace period and
//! is gone once revoked; every other robot stays as it was, and after the revoke the text
//! is the input's again, byte for byte.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use registry_gate::auth::robots::{self, Refusal, Robots, Spec};
use registry_gate::authz::access::Action;
use ring::rand::SystemRandom;

/// The clock, in seconds since 1970 (2023-11-14).
const NOW: u64 = 1_700_000_000;
/// The robot the target adds.
const NEW: &str = "fuzz-new";
/// A secret of the right shape that no robot has.
const WRONG_SECRET: &str = "rgr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// One input of the `robots_file` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let (before, warnings) = Robots::parse(text);
    let lines = text.split('\n').count();
    for w in &warnings {
        assert!((1..=lines).contains(&w.line), "warning={w} text={text:?}");
        assert!(
            w.to_string().starts_with(&format!("line {}: ", w.line)),
            "warning={w}"
        );
    }
    assert!(before.len() + warnings.len() <= lines, "text={text:?}");
    assert_eq!(before.iter().count(), before.len());
    for robot in before.iter() {
        assert!(robots::check_name(&robot.name).is_ok(), "robot={robot:?}");
        assert!(!robot.repos.is_empty(), "robot={robot:?}");
        for repo in &robot.repos {
            assert!(robots::check_repo(repo).is_ok(), "robot={robot:?}");
        }
        assert_eq!(robot.user(), format!("robot${}", robot.name));
        assert_eq!(robots::robot_name(&robot.user()), Some(robot.name.as_str()));
        assert_eq!(
            before.get(&robot.name).map(|r| &r.name),
            Some(&robot.name),
            "robot={robot:?}"
        );
        assert_eq!(
            before.check(&robot.name, WRONG_SECRET, now).err(),
            Some(Refusal::Secret),
            "robot={robot:?}"
        );
        // A warning for a line that parsed would mean the robot is both usable and not.
        assert!(
            !warnings
                .iter()
                .any(|w| w.name.as_deref() == Some(&robot.name)),
            "robot={robot:?} warnings={warnings:?}"
        );
    }
    if before.get(NEW).is_none() {
        assert_eq!(
            before.check(NEW, WRONG_SECRET, now).err(),
            Some(Refusal::Unknown),
            "text={text:?}"
        );
    }
    edits(text, &before, now);
}

/// Create, rotate with a grace period, and revoke `NEW`.
fn edits(text: &str, before: &Robots, now: SystemTime) {
    let rng = SystemRandom::new();
    let spec = Spec {
        name: NEW.to_owned(),
        repos: vec!["ci/**".to_owned()],
        actions: vec![Action::Pull, Action::Push],
        expires_in: Some(Duration::from_secs(3600)),
        description: "fuzz".to_owned(),
    };
    // Refused when a line already names it; then there is nothing more to check.
    let Ok((created, issued)) = robots::create(text, &spec, now, &rng) else {
        return;
    };
    let (after, _) = Robots::parse(&created);
    let robot = after.check(NEW, &issued.secret, now);
    assert!(robot.is_ok(), "{robot:?} text={text:?}");
    assert_eq!(issued.user, format!("robot${NEW}"));
    let later = now + Duration::from_secs(3600);
    assert_eq!(
        after.check(NEW, &issued.secret, later).err(),
        Some(Refusal::Expired(later)),
        "text={text:?}"
    );
    same_others(before, &after, text);

    let grace = Duration::from_secs(60);
    let rotated = robots::rotate(&created, NEW, Some(grace), now, &rng);
    let Ok((rotated, new)) = rotated else {
        panic!("rotating the robot just created: {rotated:?} text={text:?}");
    };
    let (after, _) = Robots::parse(&rotated);
    assert!(after.check(NEW, &new.secret, now).is_ok(), "text={text:?}");
    assert!(
        after.check(NEW, &issued.secret, now).is_ok(),
        "text={text:?}"
    );
    let over = now + grace;
    assert_eq!(
        after.check(NEW, &issued.secret, over).err(),
        Some(Refusal::Rotated(over)),
        "text={text:?}"
    );
    same_others(before, &after, text);

    let revoked = robots::revoke(&rotated, NEW);
    let Ok(revoked) = revoked else {
        panic!("revoking the robot just rotated: {revoked:?} text={text:?}");
    };
    let (after, _) = Robots::parse(&revoked);
    assert!(after.get(NEW).is_none(), "text={text:?}");
    same_others(before, &after, text);
    // `create` ends an unterminated last line before adding its own.
    let mut original = text.to_owned();
    if !original.is_empty() && !original.ends_with('\n') {
        original.push('\n');
    }
    assert_eq!(revoked, original, "every other line stays byte for byte");
}

/// Every robot of `before` but `NEW` is in `after` with the same scope, and no other.
fn same_others(before: &Robots, after: &Robots, text: &str) {
    let names = |r: &Robots| -> Vec<(String, Vec<String>)> {
        r.iter()
            .filter(|r| r.name != NEW)
            .map(|r| (r.name.clone(), r.repos.clone()))
            .collect()
    };
    assert_eq!(names(before), names(after), "text={text:?}");
}
