//! Tests for `htpasswd`: the line rules, loading, and files written by Apache's `htpasswd`.

use std::path::Path;

use super::{dummy_model, Error, Htpasswd, Reason, Warning};
use crate::auth::hash::tests::tool;
use crate::auth::hash::{Cost, PasswordHash};

const ORIGIN: &str = "auth/htpasswd";
const APR1: &str = "$apr1$f2gG.5yc$2NAIKfdE0GbT49XV6TqZu/"; // "pä:ss wörd"

fn render(warnings: &[Warning]) -> Vec<String> {
    warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn parse_follows_the_line_rules() {
    struct Case {
        name: &'static str,
        text: String,
        users: &'static [&'static str],
        logins: &'static [(&'static str, &'static str)],
        warnings: &'static [&'static str],
    }
    let case = |name, text: &str, users, logins, warnings| Case {
        name,
        text: text.to_owned(),
        users,
        logins,
        warnings,
    };
    let cases = [
        case("empty file", "", &[], &[], &[]),
        case(
            "comments and blanks",
            "# users\n\n   \nalice:{PLAIN}a\n  # indented\n\t\n",
            &["alice"],
            &[("alice", "a")],
            &[],
        ),
        case(
            "CRLF and no final newline",
            "alice:{PLAIN}a\r\nbob:{PLAIN}b",
            &["alice", "bob"],
            &[("alice", "a"), ("bob", "b")],
            &[],
        ),
        case(
            "surrounding whitespace is trimmed",
            "  alice:{PLAIN}a \t\r\n",
            &["alice"],
            &[("alice", "a")],
            &[],
        ),
        case(
            "extra fields are ignored",
            &format!("alice:{APR1}:Alice Liddell:x\nbob:{{PLAIN}}b:"),
            &["alice", "bob"],
            &[("alice", "pä:ss wörd"), ("bob", "b")],
            &[],
        ),
        case(
            "byte-order mark",
            "\u{feff}alice:{PLAIN}a",
            &["alice"],
            &[("alice", "a")],
            &[],
        ),
        case(
            "user names are case-sensitive",
            "alice:{PLAIN}a\nAlice:{PLAIN}b\nALICE:{PLAIN}c\njürgen:{PLAIN}ü",
            &["ALICE", "Alice", "alice", "jürgen"],
            &[("alice", "a"), ("Alice", "b"), ("ALICE", "c"), ("jürgen", "ü")],
            &[],
        ),
        case(
            "duplicate user: first wins",
            "alice:{PLAIN}a\nbob:{PLAIN}b\nalice:{PLAIN}c\n",
            &["alice", "bob"],
            &[("alice", "a")],
            &[r#"auth/htpasswd:3: duplicate user "alice" ignored; first defined on line 1"#],
        ),
        case(
            "an invalid first entry still wins",
            "alice:{SMD5}abc\nalice:{PLAIN}a\n",
            &[],
            &[],
            &[
                r#"auth/htpasswd:1: unsupported hash scheme "{SMD5}""#,
                r#"auth/htpasswd:2: duplicate user "alice" ignored; first defined on line 1"#,
            ],
        ),
        case(
            "bad lines leave the others working",
            "alice:$2y$05$abc\nno colon here\n:{PLAIN}x\nbob:{PLAIN}b\ncarol:\ndave::x\neve:hunter2",
            &["bob"],
            &[("bob", "b")],
            &[
                "auth/htpasswd:1: malformed bcrypt hash: expected 60 characters",
                "auth/htpasswd:2: missing ':' between user name and hash",
                "auth/htpasswd:3: empty user name",
                "auth/htpasswd:5: empty hash",
                "auth/htpasswd:6: empty hash",
                "auth/htpasswd:7: unsupported hash scheme: no recognised prefix \
                 (a plaintext password needs \"{PLAIN}\")",
            ],
        ),
    ];
    for case in cases {
        let (file, warnings) = Htpasswd::parse(&case.text, Path::new(ORIGIN));
        assert_eq!(
            file.users().collect::<Vec<_>>(),
            case.users,
            "{}",
            case.name
        );
        assert_eq!(file.len(), case.users.len(), "{}", case.name);
        assert_eq!(file.is_empty(), case.users.is_empty(), "{}", case.name);
        assert_eq!(render(&warnings), case.warnings, "{}", case.name);
        for (user, password) in case.logins {
            assert!(
                file.verify(user, password.as_bytes()),
                "{}: {user}",
                case.name
            );
            assert!(!file.verify(user, b"wrong"), "{}: {user}", case.name);
        }
    }
}

#[test]
fn lines_that_are_not_utf8_become_warnings() {
    let bytes = b"alice:{PLAIN}a\n\xff\xfe:{PLAIN}x\n# caf\xe9\nbob:{PLAIN}\xe9\nbob:{PLAIN}b\n";
    let (file, warnings) = super::parse_bytes(bytes, Path::new(ORIGIN));
    assert_eq!(file.users().collect::<Vec<_>>(), ["alice", "bob"]);
    assert!(file.verify("bob", b"b"));
    assert_eq!(
        render(&warnings),
        [
            "auth/htpasswd:2: line is not valid UTF-8",
            "auth/htpasswd:4: line is not valid UTF-8",
        ]
    );
}

#[test]
fn a_very_long_line_is_one_warning() {
    let text = format!("alice:{}\nbob:{{PLAIN}}b\n", "x".repeat(1 << 20));
    let (file, warnings) = Htpasswd::parse(&text, Path::new(ORIGIN));
    assert_eq!(file.users().collect::<Vec<_>>(), ["bob"]);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line, 1);
    assert_eq!(
        warnings[0].reason,
        Reason::Hash(crate::auth::hash::Error::NoScheme)
    );
}

#[test]
fn load_tags_warnings_with_the_path() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("htpasswd");
    std::fs::write(&path, b"alice:{PLAIN}a\r\n\xffbob\r\n").expect("write the file");
    let (file, warnings) = Htpasswd::load(&path).expect("the file is readable");
    assert_eq!(file.users().collect::<Vec<_>>(), ["alice"]);
    let expected = format!("{}:2: line is not valid UTF-8", path.display());
    assert_eq!(render(&warnings), [expected]);
}

#[test]
fn load_fails_on_a_missing_file_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (path, kind) in [
        (dir.path().join("missing"), std::io::ErrorKind::NotFound),
        (dir.path().to_owned(), std::io::ErrorKind::IsADirectory),
    ] {
        let Err(error @ Error::Read { .. }) = Htpasswd::load(&path) else {
            panic!("loading {} should fail", path.display());
        };
        let expected = format!("failed to read htpasswd file {}", path.display());
        assert_eq!(error.to_string(), expected);
        let Error::Read { source, .. } = error;
        assert_eq!(source.kind(), kind, "{}", path.display());
    }
}

#[test]
fn a_file_written_by_apache_htpasswd_verifies() {
    let users = [
        ("bcrypt", "pä:ss wörd", &["-nbB", "-C", "4"][..]),
        ("md5", "a:b:c", &["-nbm"]),
        ("sha1", "secret ", &["-nbs"]),
        ("crypt", "pä:ss", &["-nbd"]),
        ("sha256", "ü", &["-nb", "-2"]),
        ("sha512", "pw", &["-nb", "-5", "-r", "1000"]),
    ];
    let mut text = String::from("# made by htpasswd\n");
    for (user, password, flags) in users {
        let args = [flags, &[user, password]].concat();
        text += &tool("apache2-utils", "htpasswd", &args);
    }
    let (file, warnings) = Htpasswd::parse(&text, Path::new(ORIGIN));
    assert_eq!(render(&warnings), Vec::<String>::new());
    assert_eq!(file.len(), users.len());
    for (user, password, _) in users {
        assert!(file.verify(user, password.as_bytes()), "{user}");
        assert!(
            !file.verify(user, format!("x{password}").as_bytes()),
            "{user}"
        );
    }
}

#[test]
fn unknown_users_are_refused() {
    let (file, _) = Htpasswd::parse("alice:{PLAIN}a", Path::new(ORIGIN));
    let cases = [
        ("alice", true),
        ("ALICE", false),
        ("bob", false),
        ("", false),
    ];
    for (user, known) in cases {
        assert_eq!(file.get(user).is_some(), known, "{user:?}");
        assert_eq!(file.verify(user, b"a"), known, "{user:?}");
    }
}

#[test]
fn debug_lists_users_but_no_hashes() {
    let text = format!("bob:{APR1}\nalice:{{PLAIN}}secret\n");
    let (file, _) = Htpasswd::parse(&text, Path::new(ORIGIN));
    assert_eq!(
        format!("{file:?}"),
        r#"Htpasswd { users: ["alice", "bob"] }"#
    );
}

#[test]
fn unknown_users_are_checked_against_the_files_typical_scheme_and_cost() {
    // F8 (issue 17): the dummy costs what a typical known user costs.
    let bcrypt = |cost| bcrypt::hash("pw", cost).expect("bcrypt");
    let sha512 = |rounds: u32| {
        format!(
            "$6$rounds={rounds}$fC8yz37PZL7B7mkc$1ZzLmMfTtjwVn2tiHoUp5BlKyqLirth93BxYNNfuKH3yW4ZGGmqruXZkZz48smIUBttLELbgMob1eCVytkOjx."
        )
    };
    let cases: Vec<(&str, Vec<String>, Cost)> = vec![
        ("no users: the fixed bcrypt 10", vec![], Cost::Bcrypt(10)),
        ("one bcrypt 5", vec![bcrypt(5)], Cost::Bcrypt(5)),
        (
            "the most common bcrypt cost",
            vec![bcrypt(4), bcrypt(6), bcrypt(6)],
            Cost::Bcrypt(6),
        ),
        (
            "a tie goes to the earlier line",
            vec![bcrypt(6), bcrypt(4), bcrypt(4), bcrypt(6)],
            Cost::Bcrypt(6),
        ),
        (
            "the most common scheme first, then its most common cost",
            vec![
                bcrypt(12),
                bcrypt(12),
                APR1.into(),
                APR1.into(),
                APR1.into(),
                "{SHA}jae4SHgds0RkoNTb3xXBCDPVeis=".into(),
            ],
            Cost::Fixed("apr1"),
        ),
        (
            "bcrypt the most common scheme although one cost is more common",
            vec![sha512(1000), sha512(1000), bcrypt(4), bcrypt(5), bcrypt(6)],
            Cost::Bcrypt(4),
        ),
        (
            "sha512-crypt rounds",
            vec![sha512(2000), sha512(1000), sha512(2000)],
            Cost::ShaCrypt {
                sha512: true,
                rounds: 2000,
            },
        ),
    ];
    for (name, hashes, want) in cases {
        let text: String = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| format!("u{i}:{h}\n"))
            .collect();
        let (file, warnings) = Htpasswd::parse(&text, Path::new(ORIGIN));
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
        assert_eq!(file.dummy_cost(), want, "{name}");
        assert!(!file.verify("nobody", b"pw"), "{name}");
        let parsed: Vec<_> = hashes
            .iter()
            .map(|h| PasswordHash::parse(h).expect("valid"))
            .collect();
        let refs: Vec<_> = parsed.iter().collect();
        let model = dummy_model(&refs).map(PasswordHash::cost);
        assert_eq!(
            model.unwrap_or(Cost::Bcrypt(10)),
            want,
            "{name}: pure choice"
        );
    }
}
