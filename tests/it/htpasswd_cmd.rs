//! The real binary's `htpasswd add` and `htpasswd verify`, with the password on stdin, and
//! Apache's `htpasswd -v` as a second reader of the file it writes.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::process::run_bounded;

const BIN: &str = env!("CARGO_BIN_EXE_registry-gate");
/// The lowest bcrypt cost keeps the tests fast.
const COST: &str = "4";
/// Longest an Apache `htpasswd -v` may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `registry-gate htpasswd ARGS` with `stdin` as its standard input (not a terminal).
fn htpasswd(args: &[&str], file: &Path, stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("htpasswd")
        .args(args)
        .arg("--file")
        .arg(file)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run registry-gate");
    let mut pipe = child.stdin.take().expect("piped stdin");
    // A usage error exits before reading stdin; the pipe is then closed, which is
    // fine: the exit status and stderr are what such a test checks.
    match pipe.write_all(stdin) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => panic!("write the password to stdin: {e}"),
    }
    drop(pipe);
    child.wait_with_output().expect("wait for registry-gate")
}

fn add(file: &Path, user: &str, password: &str) -> Output {
    let stdin = format!("{password}\n");
    htpasswd(&["add", "--cost", COST, user], file, stdin.as_bytes())
}

fn verify(file: &Path, user: &str, password: &str) -> Output {
    htpasswd(&["verify", user], file, format!("{password}\n").as_bytes())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit status and what the command printed, with the output in the message.
#[track_caller]
fn assert_output(o: &Output, code: i32, stdout: &str, stderr: &str) {
    let got = (o.status.code(), text(&o.stdout), text(&o.stderr));
    let want = (Some(code), stdout.to_owned(), stderr.to_owned());
    assert_eq!(got, want, "(exit code, stdout, stderr)");
}

/// Whether Apache's `htpasswd -vb` accepts the password; panics naming the package if the
/// tool is missing.
fn apache_accepts(file: &Path, user: &str, password: &str) -> bool {
    let mut command = Command::new("htpasswd");
    command.arg("-vb").arg(file).args([user, password]);
    run_bounded(command, "apache2-utils", TOOL_TIMEOUT)
        .status
        .success()
}

#[test]
fn add_creates_a_private_file_that_both_verifiers_accept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("htpasswd");
    let shown = file.display();

    let o = add(&file, "alice", "s3cret pw");
    assert_output(&o, 0, "", &format!("added user \"alice\" to {shown}\n"));
    let mode = std::fs::metadata(&file)
        .expect("file created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let contents = std::fs::read_to_string(&file).expect("read");
    assert!(contents.starts_with("alice:$2y$04$"), "{contents}");

    let o = verify(&file, "alice", "s3cret pw");
    assert_output(&o, 0, "password ok for \"alice\"\n", "");
    let o = verify(&file, "alice", "s3cret");
    assert_output(
        &o,
        1,
        "",
        "registry-gate: error: wrong password for \"alice\"\n",
    );
    let o = verify(&file, "bob", "s3cret pw");
    let want = format!("registry-gate: error: no usable entry for \"bob\" in {shown}\n");
    assert_output(&o, 1, "", &want);

    assert!(apache_accepts(&file, "alice", "s3cret pw"));
    assert!(!apache_accepts(&file, "alice", "s3cret"));
}

#[test]
fn add_again_updates_the_password_and_keeps_the_other_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("htpasswd");
    let shown = file.display();
    let bob = "bob:$apr1$f2gG.5yc$2NAIKfdE0GbT49XV6TqZu/"; // "pä:ss wörd"
    std::fs::write(&file, format!("# registry users\n{bob}\n")).expect("write");

    assert_output(
        &add(&file, "alice", "first"),
        0,
        "",
        &format!("added user \"alice\" to {shown}\n"),
    );
    let o = add(&file, "alice", "second");
    assert_output(&o, 0, "", &format!("updated user \"alice\" in {shown}\n"));

    let contents = std::fs::read_to_string(&file).expect("read");
    let lines: Vec<&str> = contents.lines().collect();
    assert_eq!(lines.len(), 3, "{contents}");
    assert_eq!(lines[..2], ["# registry users", bob]);
    assert!(lines[2].starts_with("alice:$2y$04$"), "{contents}");

    assert_output(
        &verify(&file, "alice", "second"),
        0,
        "password ok for \"alice\"\n",
        "",
    );
    let o = verify(&file, "alice", "first");
    assert_output(
        &o,
        1,
        "",
        "registry-gate: error: wrong password for \"alice\"\n",
    );
    assert_output(
        &verify(&file, "bob", "pä:ss wörd"),
        0,
        "password ok for \"bob\"\n",
        "",
    );
    assert!(apache_accepts(&file, "alice", "second"));
    assert!(!apache_accepts(&file, "alice", "first"));
}

#[test]
fn verify_names_the_load_warning_of_the_users_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, "# c\nalice:{SMD5}abcdef\n").expect("write");
    let shown = file.display();
    let want = format!(
        "registry-gate: error: no usable entry for \"alice\" in {shown}: \
         {shown}:2: unsupported hash scheme \"{{SMD5}}\"\n"
    );
    assert_output(&verify(&file, "alice", "pw"), 1, "", &want);
}

#[test]
fn verify_of_a_missing_file_exits_1_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("missing");
    let o = verify(&file, "alice", "pw");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let want = format!("failed to read htpasswd file {}: ", file.display());
    assert!(text(&o.stderr).contains(&want), "{}", text(&o.stderr));
}

#[test]
fn usage_errors_exit_64_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("htpasswd");
    #[rustfmt::skip]
    let cases: &[(&[&str], &[u8], &str)] = &[
        (&["add", "a:b"], b"pw\n", "invalid user name \"a:b\": contains ':'"),
        (&["add", "a\tb"], b"pw\n", "invalid user name \"a\\tb\": contains a control character"),
        (&["add", ""], b"pw\n", "invalid user name \"\": empty"),
        (&["add", "alice"], b"", "empty password"),
        (&["add", "alice"], b"\n", "empty password"),
        (&["add", "--cost", "3", "alice"], b"pw\n", "bcrypt cost 3 out of range: must be from 4 to 31"),
        (&["add", "--cost", "32", "alice"], b"pw\n", "bcrypt cost 32 out of range: must be from 4 to 31"),
        (&["verify", "a:b"], b"pw\n", "invalid user name \"a:b\": contains ':'"),
    ];
    for (args, stdin, want) in cases {
        let o = htpasswd(args, &file, stdin);
        let want = format!("registry-gate: error: {want}\n");
        assert_output(&o, 64, "", &want);
        assert!(!file.exists(), "{args:?}: no file written");
    }
}

#[test]
fn output_never_shows_the_password_or_the_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("htpasswd");
    let password = "correct-horse-battery";
    let outputs = [
        add(&file, "alice", password),
        add(&file, "alice", password),
        verify(&file, "alice", password),
        verify(&file, "alice", "wrong-staple"),
    ];
    let contents = std::fs::read_to_string(&file).expect("read");
    let hash = contents.trim_end().split_once(':').expect("user:hash").1;
    for o in &outputs {
        let printed = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(printed.contains("\"alice\""), "{printed}");
        for secret in [password, "wrong-staple", hash, "$2y$"] {
            assert!(!printed.contains(secret), "{secret:?} in {printed:?}");
        }
    }
}

/// Into a file with unusable lines, `add` still adds a user the gate lets in,
/// and `add` and `verify` name each line the gate ignores.
#[test]
fn add_and_verify_warn_naming_the_unusable_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, "bob:{SMD5}abc\nno colon\n").expect("write");
    let shown = file.display();
    let warnings = format!(
        "warning: {shown}:1: unsupported hash scheme \"{{SMD5}}\": the gate ignores this line (only its user is affected)\n\
         warning: {shown}:2: missing ':' between user name and hash: the gate ignores this line (only its user is affected)\n"
    );
    let o = add(&file, "carol", "pw");
    assert_output(
        &o,
        0,
        "",
        &format!("added user \"carol\" to {shown}\n{warnings}"),
    );
    let o = verify(&file, "carol", "pw");
    assert_output(&o, 0, "password ok for \"carol\"\n", &warnings);
}
