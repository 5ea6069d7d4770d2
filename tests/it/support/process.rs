//! Running external programs with a bound: [`run_bounded`] for one-shot commands, [`poll`] for
//! waiting on a server. Both are blocking; tests call them from plain `#[test]` functions.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use super::install_hint;

/// Pause between checks whether a command has exited.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A finished command.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (UTF-8; invalid bytes replaced).
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Run {
    /// Panics with the command line, exit status and output unless the command exited 0.
    #[track_caller]
    pub fn expect_success(self) -> Run {
        assert!(self.status.success(), "{}", self.failure_message("succeed"));
        self
    }

    /// Panics with the command line and output if the command exited 0; for tests of rejection,
    /// which then assert on [`Run::stderr`].
    #[track_caller]
    pub fn expect_failure(self) -> Run {
        assert!(!self.status.success(), "{}", self.failure_message("fail"));
        self
    }

    fn failure_message(&self, expected: &str) -> String {
        format!(
            "expected `{}` to {expected}, but it exited with {}\n\
             --- stderr ---\n{}\n--- stdout ---\n{}",
            self.command, self.status, self.stderr, self.stdout
        )
    }
}

/// Runs `command` with stdin closed and stdout/stderr captured in temp files, and waits at most
/// `timeout`: past that it kills the command and panics with its stderr so far. If the program
/// is not installed, panics naming the Debian `package` that provides it.
pub fn run_bounded(command: Command, package: &str, timeout: Duration) -> Run {
    run_bounded_with_stdin(command, package, None, timeout)
}

/// [`run_bounded`], with `input` (if any) as the command's stdin instead of nothing.
pub fn run_bounded_with_stdin(
    mut command: Command,
    package: &str,
    input: Option<&str>,
    timeout: Duration,
) -> Run {
    let program = command.get_program().to_string_lossy().into_owned();
    let command_line = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ");
    let stdin = match input {
        None => Stdio::null(),
        Some(text) => {
            let mut file = tempfile::tempfile().expect("creating a temp file for stdin");
            file.write_all(text.as_bytes())
                .and_then(|()| file.rewind())
                .expect("writing the stdin file");
            Stdio::from(file)
        }
    };
    let mut stdout = tempfile::tempfile().expect("creating a temp file for stdout");
    let mut stderr = tempfile::tempfile().expect("creating a temp file for stderr");
    let mut child = command
        .stdin(stdin)
        .stdout(stdout.try_clone().expect("duplicating a file handle"))
        .stderr(stderr.try_clone().expect("duplicating a file handle"))
        .spawn()
        .unwrap_or_else(|e| match e.kind() {
            io::ErrorKind::NotFound => panic!("{}", install_hint(&program, package)),
            _ => panic!("starting `{command_line}`: {e}"),
        });

    let status = poll(timeout, EXIT_POLL_INTERVAL, || {
        child.try_wait().expect("polling a child process")
    });
    let Some(status) = status else {
        // `kill` fails only if the child exited just now; `wait` reaps it either way.
        let _ = child.kill();
        child.wait().expect("reaping a child process");
        panic!(
            "`{command_line}` did not finish within {timeout:?} and was killed\n--- stderr ---\n{}",
            read_all(&mut stderr)
        );
    };
    Run {
        command: command_line,
        status,
        stdout: read_all(&mut stdout),
        stderr: read_all(&mut stderr),
    }
}

/// Calls `probe` every `interval` until it returns `Some`, for at most about `timeout`; `None`
/// if time runs out. The blocking twin of [`crate::support::eventually`], for harness code
/// that runs outside a tokio runtime (process readiness, `GateProcess::wait_for_log`).
// Blocking harness code that never runs inside a (paused) tokio runtime, so the std clock is the
// right one here even where clippy.toml steers server code to tokio's.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
pub fn poll<T>(
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}

fn read_all(file: &mut File) -> String {
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|()| file.read_to_end(&mut bytes))
        .expect("reading captured output");
    String::from_utf8_lossy(&bytes).into_owned()
}
