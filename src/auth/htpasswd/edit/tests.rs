//! Tests for `htpasswd_edit`: line-preserving edits, the written file, checks of input.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use super::{
    add_user, first_line, upsert, verify_user, Cost, Error, Outcome, Username, Verdict,
    MAX_BCRYPT_PASSWORD_LEN,
};
use crate::auth::hash::{PasswordHash, MAX_PASSWORD_LEN};
use crate::auth::Password;

/// The lowest cost keeps the tests fast.
const COST: u32 = 4;

fn user(name: &str) -> Username {
    Username::new(name.to_owned()).unwrap_or_else(|e| panic!("{name:?} is valid: {e}"))
}

fn pw(s: &str) -> Password {
    Password::new(s.as_bytes().to_vec())
}

fn cost(n: u32) -> Cost {
    Cost::new(n).unwrap_or_else(|e| panic!("cost {n} is valid: {e}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The hash on `name`'s first line of `text`.
fn hash_of<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no line for {name:?} in {text:?}"))
}

#[test]
fn upsert_keeps_every_other_byte() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, Outcome)] = &[
        // (name, old file, new file, outcome); the user is "alice" and the hash "H".
        ("empty file", "", "alice:H\n", Outcome::Added),
        ("append", "bob:x\n", "bob:x\nalice:H\n", Outcome::Added),
        ("append, no final newline", "bob:x", "bob:x\nalice:H\n", Outcome::Added),
        ("append, CRLF", "# c\r\nbob:x\r\n", "# c\r\nbob:x\r\nalice:H\r\n", Outcome::Added),
        ("append, CRLF without final newline", "bob:x\r\nc:y", "bob:x\r\nc:y\r\nalice:H\r\n", Outcome::Added),
        ("only a comment line, no newline", "# users", "# users\nalice:H\n", Outcome::Added),
        ("replace", "# c\n\nalice:old\nbob:x\n", "# c\n\nalice:H\nbob:x\n", Outcome::Updated),
        ("replace, CRLF", "bob:x\r\nalice:old\r\n\r\n", "bob:x\r\nalice:H\r\n\r\n", Outcome::Updated),
        ("replace the last line, no final newline", "bob:x\nalice:old", "bob:x\nalice:H", Outcome::Updated),
        ("replace the first of two", "alice:1\nalice:2\n", "alice:H\nalice:2\n", Outcome::Updated),
        ("extra fields go", "alice:old:Alice Liddell\n", "alice:H\n", Outcome::Updated),
        ("surrounding whitespace, as the loader trims", "  alice:old \t\n", "alice:H\n", Outcome::Updated),
        ("byte-order mark kept", "\u{feff}alice:old\n", "\u{feff}alice:H\n", Outcome::Updated),
        ("comment is not the user", "#alice:old\n", "#alice:old\nalice:H\n", Outcome::Added),
        ("prefix is not the user", "alice2:x\nalic:y\n", "alice2:x\nalic:y\nalice:H\n", Outcome::Added),
        ("no colon is not the user", "alice\n", "alice\nalice:H\n", Outcome::Added),
    ];
    for (name, old, want, outcome) in cases {
        let (new, got) = upsert(old.as_bytes(), "alice", "H");
        assert_eq!(
            (String::from_utf8_lossy(&new).as_ref(), got),
            (*want, *outcome),
            "{name}: {old:?}"
        );
    }
}

#[test]
fn upsert_skips_lines_that_are_not_utf8_as_the_loader_does() {
    let old = b"alice:\xff\nbob:x\n";
    let (new, outcome) = upsert(old, "alice", "H");
    assert_eq!(new, b"alice:\xff\nbob:x\nalice:H\n");
    assert_eq!(outcome, Outcome::Added);
}

#[test]
fn add_creates_a_private_file_with_a_2y_hash_at_the_cost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("htpasswd");
    let added = add_user(&path, &user("alice"), &pw("s3cret"), cost(5)).expect("add");
    let (outcome, ignored) = (added.outcome, added.ignored);
    assert!(added.created.is_empty(), "{:?}", added.created);
    assert!(ignored.is_empty(), "{ignored:?}");
    assert_eq!(outcome, Outcome::Added);

    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = read(&path);
    let hash = hash_of(&text, "alice");
    assert_eq!(text, format!("alice:{hash}\n"));
    assert!(hash.starts_with("$2y$05$") && hash.len() == 60, "{hash}");
    let parsed = PasswordHash::parse(hash).expect("the gate parses the hash");
    assert_eq!(parsed.scheme(), "bcrypt");
    assert!(parsed.verify(b"s3cret"));
    assert!(!parsed.verify(b"s3cret "));

    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["htpasswd"], "no temp file left behind");
}

#[test]
fn update_replaces_one_line_and_keeps_the_rest_byte_for_byte() {
    let cases = [
        ("LF", "# team\n\nalice:{PLAIN}old\nbob:{PLAIN}b\n", "\n"),
        (
            "CRLF",
            "# team\r\n\r\nalice:{PLAIN}old\r\nbob:{PLAIN}b\r\n",
            "\r\n",
        ),
        (
            "no final newline",
            "# team\n\nalice:{PLAIN}old\nbob:{PLAIN}b",
            "\n",
        ),
    ];
    for (name, old, eol) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("htpasswd");
        std::fs::write(&path, old).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");

        let outcome = add_user(&path, &user("alice"), &pw("new"), cost(COST))
            .expect(name)
            .outcome;
        assert_eq!(outcome, Outcome::Updated, "{name}");
        let text = read(&path);
        let hash = hash_of(&text, "alice");
        assert_eq!(text, old.replace("{PLAIN}old", hash), "{name}");
        assert!(text.contains(&format!("alice:{hash}{eol}bob:")), "{name}");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");

        let verify = |p| {
            verify_user(&path, &user("alice"), &pw(p))
                .expect("verify")
                .0
        };
        assert_eq!(verify("new"), Verdict::Match, "{name}");
        assert_eq!(verify("old"), Verdict::WrongPassword, "{name}");
        let bob = verify_user(&path, &user("bob"), &pw("b"))
            .expect("verify bob")
            .0;
        assert_eq!(bob, Verdict::Match, "{name}");
    }
}

#[test]
fn add_through_a_symlink_replaces_the_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real");
    let link = dir.path().join("link");
    std::fs::write(&real, "bob:{PLAIN}b\n").expect("write");
    std::os::unix::fs::symlink("real", &link).expect("symlink");
    add_user(&link, &user("alice"), &pw("pw"), cost(COST)).expect("add");
    let meta = std::fs::symlink_metadata(&link).expect("metadata");
    assert!(meta.file_type().is_symlink());
    assert!(read(&real).starts_with("bob:{PLAIN}b\nalice:$2y$04$"));
}

#[test]
fn verify_reports_the_warning_of_the_users_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("htpasswd");
    std::fs::write(&path, "# c\nalice:{SMD5}abc\nalice:{PLAIN}a\n").expect("write");
    let (verdict, _) = verify_user(&path, &user("alice"), &pw("a")).expect("verify");
    let Verdict::NoEntry(Some(warning)) = verdict else {
        panic!("expected a warning, got {verdict:?}");
    };
    let want = format!("{}:2: unsupported hash scheme \"{{SMD5}}\"", path.display());
    assert_eq!(warning.to_string(), want);

    let (nobody, _) = verify_user(&path, &user("carol"), &pw("a")).expect("verify");
    assert_eq!(nobody, Verdict::NoEntry(None));
}

#[test]
fn verify_of_a_missing_file_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing");
    let err = verify_user(&path, &user("alice"), &pw("a")).expect_err("missing file");
    assert!(!err.is_usage());
    let want = format!("failed to read htpasswd file {}", path.display());
    assert_eq!(err.to_string(), want);
}

/// Issue 18: `htpasswd add --file auth/htpasswd` on a fresh clone creates `auth/`.
#[test]
fn add_creates_the_missing_directories_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no/such/htpasswd");
    let added = add_user(&path, &user("alice"), &pw("a"), cost(COST)).expect("add");
    let (outer, inner) = (dir.path().join("no"), dir.path().join("no/such"));
    assert_eq!(added.created, [outer.clone(), inner.clone()]);
    assert_eq!(added.outcome, Outcome::Added);
    for d in [&outer, &inner] {
        let mode = std::fs::metadata(d).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", d.display());
    }
    let (users, _) = crate::auth::htpasswd::Htpasswd::load(&path).expect("load");
    assert!(users.verify("alice", b"a"), "the gate lets alice in");
    let again = add_user(&path, &user("bob"), &pw("b"), cost(COST)).expect("add bob");
    assert!(again.created.is_empty(), "{:?}", again.created);
}

#[test]
fn add_below_a_file_names_it_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("auth");
    std::fs::write(&file, "not a directory").expect("write");
    for path in [file.join("htpasswd"), file.join("sub/htpasswd")] {
        let err = add_user(&path, &user("alice"), &pw("a"), cost(COST)).expect_err("a file");
        assert!(!err.is_usage());
        let want = format!(
            "htpasswd file {}: {} is not a directory; name a file in a directory",
            path.display(),
            file.display()
        );
        assert_eq!(err.to_string(), want);
    }
    assert_eq!(read(&file), "not a directory");
}

#[test]
fn nothing_is_created_when_the_password_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auth/htpasswd");
    let err = add_user(&path, &user("alice"), &pw(""), cost(COST)).expect_err("empty");
    assert!(matches!(err, Error::EmptyPassword), "{err:?}");
    assert!(!dir.path().join("auth").exists());
}

#[test]
fn user_names_are_checked() {
    #[rustfmt::skip]
    let cases: &[(&str, Option<&str>)] = &[
        ("alice", None),
        ("Ärger-ö.x@example.com", None),
        ("alice smith", None),
        ("", Some("invalid user name \"\": empty")),
        ("a:b", Some("invalid user name \"a:b\": contains ':'")),
        ("a\tb", Some("invalid user name \"a\\tb\": contains a control character")),
        ("a\u{7f}", Some("invalid user name \"a\\u{7f}\": contains a control character")),
        ("a\u{85}", Some("invalid user name \"a\\u{85}\": contains a control character")),
        ("#a", Some("invalid user name \"#a\": starts with '#', which makes the line a comment")),
        (" a", Some("invalid user name \" a\": starts with a space, which the file format drops")),
    ];
    for (name, want) in cases {
        let got = Username::new((*name).to_owned());
        match (got, want) {
            (Ok(u), None) => assert_eq!(u.as_str(), *name),
            (Err(e), Some(want)) => {
                assert_eq!(e.to_string(), *want, "{name:?}");
                assert!(e.is_usage(), "{name:?}");
            }
            (got, want) => panic!("{name:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn costs_are_checked() {
    for n in [4, 10, 31] {
        assert_eq!(Cost::new(n).ok(), Some(cost(n)), "cost {n}");
    }
    for n in [0, 3, 32] {
        let err = Cost::new(n).expect_err("out of range");
        assert_eq!(
            err.to_string(),
            format!("bcrypt cost {n} out of range: must be from 4 to 31")
        );
        assert!(err.is_usage());
    }
    assert_eq!(Cost::default(), cost(10));
}

#[test]
fn new_passwords_are_checked_before_the_file_is_touched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("htpasswd");
    let long = "x".repeat(MAX_BCRYPT_PASSWORD_LEN + 1);
    let cases = [
        ("", "empty password"),
        (long.as_str(), "password longer than 72 bytes"),
        ("a\0b", "password contains a NUL byte"),
    ];
    for (password, want) in cases {
        let err = add_user(&path, &user("alice"), &pw(password), cost(COST)).expect_err(want);
        assert_eq!(err.to_string(), want);
        assert!(err.is_usage(), "{want}");
        assert!(!path.exists(), "{want}: no file written");
    }
    let longest = "x".repeat(MAX_BCRYPT_PASSWORD_LEN);
    add_user(&path, &user("alice"), &pw(&longest), cost(COST)).expect("72 bytes");
    let (verdict, _) = verify_user(&path, &user("alice"), &pw(&longest)).expect("verify");
    assert_eq!(verdict, Verdict::Match);
}

#[test]
fn first_line_of_stdin_is_the_password() {
    let max = "x".repeat(MAX_PASSWORD_LEN);
    let cases: &[(&[u8], &[u8])] = &[
        (b"pw\n", b"pw"),
        (b"pw\r\n", b"pw"),
        (b"pw", b"pw"),
        (b"pw\r", b"pw\r"),
        (b" p w \n", b" p w "),
        (b"first\nsecond\n", b"first"),
        (b"", b""),
        (b"\n", b""),
        (b"\xff\xfe\n", b"\xff\xfe"),
    ];
    for (input, want) in cases {
        let got = first_line(*input).expect("read");
        assert_eq!(got.expose(), *want, "{:?}", String::from_utf8_lossy(input));
    }
    let longest = format!("{max}\r\n");
    let got = first_line(longest.as_bytes()).expect("read");
    assert_eq!(got.expose(), max.as_bytes());
    for too_long in [format!("{max}x\n"), format!("{max}xxxxx")] {
        let err = first_line(too_long.as_bytes()).expect_err("too long");
        assert_eq!(err.to_string(), "password longer than 1024 bytes");
        assert!(err.is_usage());
    }
}

#[test]
fn replacing_keeps_the_owner_and_group() {
    use std::os::unix::fs::MetadataExt as _;
    // Needs root to give the file away (the test suite runs as root here).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("htpasswd");
    std::fs::write(&path, "bob:{PLAIN}b\n").expect("write");
    std::os::unix::fs::chown(&path, Some(65534), Some(65534))
        .expect("chown to nobody (the tests run as root)");
    add_user(&path, &user("alice"), &pw("new"), cost(COST)).expect("add");
    let meta = std::fs::metadata(&path).expect("metadata");
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    assert_eq!(meta.mode() & 0o777, 0o600);
}

/// Issue 17: a file with unusable lines still gets the user, usable by the gate, and
/// both commands name every line the gate ignores.
#[test]
fn add_and_verify_name_the_lines_the_gate_ignores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("htpasswd");
    std::fs::write(&path, "bob:{SMD5}abc\nno colon\nalice:{PLAIN}a\n").expect("write");
    let added = add_user(&path, &user("carol"), &pw("c"), cost(COST)).expect("add");
    let (outcome, ignored) = (added.outcome, added.ignored);
    assert_eq!(outcome, Outcome::Added);
    let shown: Vec<_> = ignored.iter().map(|w| w.line).collect();
    assert_eq!(shown, [1, 2], "{ignored:?}");
    let (users, _) = crate::auth::htpasswd::Htpasswd::load(&path).expect("load");
    assert!(users.verify("carol", b"c"), "the gate lets carol in");

    let (verdict, ignored) = verify_user(&path, &user("carol"), &pw("c")).expect("verify");
    assert_eq!(verdict, Verdict::Match);
    let shown: Vec<_> = ignored.iter().map(ToString::to_string).collect();
    let p = path.display();
    assert_eq!(
        shown,
        [
            format!("{p}:1: unsupported hash scheme \"{{SMD5}}\""),
            format!("{p}:2: missing ':' between user name and hash"),
        ]
    );
    // bob's own line is the verdict's warning, not listed again.
    let (verdict, ignored) = verify_user(&path, &user("bob"), &pw("b")).expect("verify");
    assert!(
        matches!(verdict, Verdict::NoEntry(Some(ref w)) if w.line == 1),
        "{verdict:?}"
    );
    assert_eq!(ignored.iter().map(|w| w.line).collect::<Vec<_>>(), [2]);
}
