use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::SystemRandom;

use super::*;

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn spec(name: &str, repos: &[&str], actions: &[Action], expires_in: Option<u64>) -> Spec {
    Spec {
        name: name.into(),
        repos: repos.iter().map(|r| r.to_string()).collect(),
        actions: actions.to_vec(),
        expires_in: expires_in.map(Duration::from_secs),
        description: "ci pushes".into(),
    }
}

fn created(text: &str, spec: &Spec) -> (String, Issued) {
    create(text, spec, t(0), &SystemRandom::new()).expect("create")
}

fn robots(text: &str) -> Robots {
    let (robots, warnings) = Robots::parse(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    robots
}

#[test]
fn a_created_robot_logs_in_with_its_secret_only() {
    let (text, issued) = created("", &spec("ci", &["team/**"], &[Action::Pull], None));
    assert_eq!(issued.user, "robot$ci");
    assert!(issued.secret.starts_with("rgr_") && issued.secret.len() == 47);
    assert!(
        !text.contains(&issued.secret),
        "only a hash is stored: {text}"
    );
    let robots = robots(&text);
    let robot = robots.check("ci", &issued.secret, t(1)).expect("login");
    assert_eq!(robot.user(), "robot$ci");
    assert_eq!(robot.description, "ci pushes");
    assert_eq!(robot.created, t(0));
    assert_eq!(
        robots.check("ci", "rgr_wrong", t(1)).unwrap_err(),
        Refusal::Secret
    );
    assert_eq!(
        robots.check("cd", &issued.secret, t(1)).unwrap_err(),
        Refusal::Unknown
    );
    assert_eq!(robot_name("robot$ci"), Some("ci"));
    assert_eq!(robot_name("ci"), None);
}

#[test]
fn two_robots_get_different_secrets_and_salts() {
    let (text, a) = created("", &spec("a", &["x"], &[Action::Pull], None));
    let (text, b) = created(&text, &spec("b", &["x"], &[Action::Pull], None));
    assert_ne!(a.secret, b.secret);
    let robots = robots(&text);
    assert_eq!(
        robots.check("a", &b.secret, t(1)).unwrap_err(),
        Refusal::Secret
    );
    assert!(robots.check("b", &b.secret, t(1)).is_ok());
    let salts: Vec<&str> = text
        .lines()
        .map(|l| {
            l.split("hmac-sha256:")
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(salts[0].len(), 22, "16 bytes of salt: {salts:?}");
    assert_ne!(salts[0], salts[1]);
}

#[test]
fn an_expired_robot_is_refused_from_the_second_it_expires() {
    let (text, issued) = created("", &spec("ci", &["x"], &[Action::Pull], Some(60)));
    assert_eq!(issued.expires, Some(t(60)));
    let robots = robots(&text);
    assert!(robots.check("ci", &issued.secret, t(59)).is_ok());
    assert_eq!(
        robots.check("ci", &issued.secret, t(60)).unwrap_err(),
        Refusal::Expired(t(60))
    );
    // A wrong secret says so, expired or not: it tells a guesser nothing more.
    assert_eq!(
        robots.check("ci", "rgr_x", t(61)).unwrap_err(),
        Refusal::Secret
    );
    assert_eq!(
        Refusal::Expired(t(60)).to_string(),
        "expired at 2027-01-15T08:01:00Z"
    );
}

#[test]
fn rotation_with_grace_keeps_the_old_secret_until_the_grace_ends() {
    let rng = SystemRandom::new();
    let (text, old) = created("", &spec("ci", &["x"], &[Action::Pull], None));
    let (text, new) =
        rotate(&text, "ci", Some(Duration::from_secs(3600)), t(100), &rng).expect("rotate");
    assert_eq!(new.user, "robot$ci");
    assert_ne!(new.secret, old.secret);
    let robots = robots(&text);
    let robot = robots.check("ci", &new.secret, t(101)).expect("new secret");
    assert_eq!(robot.rotated, Some(t(100)));
    assert_eq!(robot.grace_until(t(101)), Some(t(3700)));
    assert!(robots.check("ci", &old.secret, t(3699)).is_ok());
    assert_eq!(
        robots.check("ci", &old.secret, t(3700)).unwrap_err(),
        Refusal::Rotated(t(3700))
    );
    assert!(robots.check("ci", &new.secret, t(3700)).is_ok());
    assert_eq!(robot.grace_until(t(3700)), None);
    // Mid-second, the stored end is rounded up: a 2 s grace is never 1.5 s.
    let half = t(200) + Duration::from_millis(500);
    let (text, _) = rotate(&text, "ci", Some(Duration::from_secs(2)), half, &rng).expect("rotate");
    let (again, _) = Robots::parse(&text);
    let robot = again.get("ci").expect("ci");
    assert_eq!(robot.grace_until(half), Some(t(203)));
}

#[test]
fn rotation_without_grace_ends_the_old_secret_at_once_and_a_second_ends_the_first() {
    let rng = SystemRandom::new();
    let (text, first) = created("", &spec("ci", &["x"], &[Action::Pull], None));
    let (text2, second) = rotate(&text, "ci", None, t(10), &rng).expect("rotate");
    let robots2 = robots(&text2);
    assert_eq!(
        robots2.check("ci", &first.secret, t(11)).unwrap_err(),
        Refusal::Secret
    );
    assert!(robots2.check("ci", &second.secret, t(11)).is_ok());
    let grace = Some(Duration::from_secs(3600));
    let (text3, _) = rotate(&text, "ci", grace, t(10), &rng).expect("rotate");
    let (text4, fourth) = rotate(&text3, "ci", grace, t(20), &rng).expect("rotate");
    let robots4 = robots(&text4);
    assert_eq!(
        robots4.check("ci", &first.secret, t(21)).unwrap_err(),
        Refusal::Secret
    );
    assert!(robots4.check("ci", &fourth.secret, t(21)).is_ok());
}

#[test]
fn the_scope_is_the_patterns_and_actions_and_nothing_else() {
    let actions = [Action::Pull, Action::Push];
    let (text, _) = created("", &spec("ci", &["team/*", "base/**"], &actions, None));
    let robots = robots(&text);
    let robot = robots.get("ci").expect("robot");
    let push = Rights::of(&actions);
    assert_eq!(robot.rights("team/app"), push);
    assert_eq!(
        robot.rights("team/app/sub"),
        Rights::NONE,
        "* stays in a segment"
    );
    assert_eq!(robot.rights("base/a/b"), push);
    assert_eq!(robot.rights("other"), Rights::NONE);
    assert!(!robot.rights("team/app").catalog);
    assert!(!robot.rights("team/app").delete);
}

#[test]
fn a_bad_line_costs_only_its_own_robot() {
    let (text, a) = created("# robots\n\n", &spec("a", &["x"], &[Action::Pull], None));
    let text = format!(
        "{text}{{\"name\":\"broken\",\"repos\":[]}}\nnot json\n{}\n",
        text.lines()
            .last()
            .unwrap()
            .replace("\"a\"", "\"b\"")
            .replace("\"x\"", "\"X\"")
    );
    let (robots, warnings) = Robots::parse(&text);
    assert!(robots.check("a", &a.secret, t(1)).is_ok());
    assert_eq!(robots.len(), 1);
    let shown: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(
        shown[0].starts_with("line 4: robot broken: not a robot entry"),
        "{shown:?}"
    );
    assert!(
        shown[1].starts_with("line 5: not a robot entry"),
        "{shown:?}"
    );
    assert!(
        shown[2].starts_with("line 6: robot b: repository pattern \"X\""),
        "{shown:?}"
    );
}

#[test]
fn a_name_also_on_an_unusable_line_is_refused() {
    // The fuzzer's find: the usable line must not log in when the other line with
    // the same name (a narrowed copy with a typo, say) cannot be read, whichever comes first.
    let (text, a) = created("", &spec("a", &["x"], &[Action::Pull], None));
    let line = text.lines().next().unwrap();
    let typo = line.replace("\"pull\"", "\"fly\"");
    assert_ne!(typo, line);
    for (text, good, bad) in [
        (format!("{line}\n{typo}\n"), 1, 2),
        (format!("{typo}\n{line}\n"), 2, 1),
    ] {
        let (robots, warnings) = Robots::parse(&text);
        assert_eq!(
            robots.check("a", &a.secret, t(1)).unwrap_err(),
            Refusal::Unknown,
            "{text}"
        );
        assert_eq!(warnings.iter().map(|w| w.line).collect::<Vec<_>>(), {
            let mut lines = vec![good, bad];
            lines.sort();
            lines
        });
        let on_good = warnings.iter().find(|w| w.line == good).unwrap();
        assert_eq!(
            on_good.message,
            format!(
                "the name is also on line {bad}, which cannot be read; fix or remove that line"
            )
        );
    }
}

#[test]
fn a_name_on_two_lines_is_refused_on_both() {
    let (text, a) = created("", &spec("a", &["x"], &[Action::Pull], None));
    let line = text.lines().next().unwrap();
    let (robots, warnings) = Robots::parse(&format!("{line}\n{line}\n"));
    assert_eq!(
        robots.check("a", &a.secret, t(1)).unwrap_err(),
        Refusal::Unknown
    );
    assert_eq!(
        warnings.iter().map(|w| w.line).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(warnings[0].message.contains("more than one line"));
}

#[test]
fn revoke_removes_the_robot_and_leaves_every_other_line_byte_for_byte() {
    let (text, _) = created("# keep me\r\n", &spec("a", &["x"], &[Action::Pull], None));
    let (text, b) = created(&text, &spec("b", &["x"], &[Action::Pull], None));
    let text = format!("{text}garbage line\n");
    let after = revoke(&text, "a").expect("revoke");
    let a_line = text.lines().nth(1).unwrap();
    assert_eq!(after, text.replace(&format!("{a_line}\n"), ""));
    assert!(after.starts_with("# keep me\r\n") && after.ends_with("garbage line\n"));
    let (robots, _) = Robots::parse(&after);
    assert!(robots.get("a").is_none());
    assert!(robots.check("b", &b.secret, t(1)).is_ok());
    assert_eq!(
        revoke(&after, "a").unwrap_err().to_string(),
        "no robot a in the file (lines 3 could not be read)"
    );
}

#[test]
fn edits_refuse_what_is_not_a_robot_and_change_nothing() {
    let rng = SystemRandom::new();
    let (text, _) = created("", &spec("a", &["x"], &[Action::Pull], None));
    let err = |s: &Spec| create(&text, s, t(0), &rng).unwrap_err().to_string();
    assert_eq!(
        err(&spec("a", &["x"], &[Action::Pull], None)),
        "robot a exists (line 1); rotate its secret with `robot rotate`, or revoke it first"
    );
    assert!(err(&spec("Bad$", &["x"], &[Action::Pull], None)).starts_with("robot name \"Bad$\""));
    assert_eq!(
        err(&spec("c", &["x"], &[Action::Push], None)),
        "push and delete need pull too (the registry checks both): add pull"
    );
    assert_eq!(
        err(&spec("c", &[], &[Action::Pull], None)),
        "no repository pattern (`repos`)"
    );
    assert!(err(&spec("c", &["a//b"], &[Action::Pull], None)).contains("no empty segment"));
    assert_eq!(
        rotate(&text, "zz", None, t(0), &rng)
            .unwrap_err()
            .to_string(),
        "no robot zz in the file"
    );
    assert_eq!(
        parse_actions(&["pull", "admin"]).unwrap_err(),
        "action \"admin\": the actions are pull, push and delete"
    );
}

#[test]
fn issued_secrets_print_as_json_and_never_in_debug() {
    let issued = Issued {
        user: "robot$ci".into(),
        secret: "rgr_s3cret".into(),
        expires: Some(t(60)),
    };
    assert_eq!(
        issued.to_json(),
        r#"{"user":"robot$ci","secret":"rgr_s3cret","expires":"2027-01-15T08:01:00Z"}"#
    );
    assert!(!format!("{issued:?}").contains("s3cret"));
    let forever = Issued {
        expires: None,
        ..issued
    };
    assert!(forever.to_json().contains("\"expires\":null"));
}
