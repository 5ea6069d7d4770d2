//! Printing to stdout without panicking. `println!` panics when stdout is a pipe
//! whose reader has gone (`registry-gate check-config | head -1`); here that ends the
//! command quietly with [`Failure::StdoutClosed`], as a SIGPIPE ends `cat`.

use std::io::Write as _;

use super::Failure;

/// Writes `args` to stdout and flushes; a closed pipe is [`Failure::StdoutClosed`],
/// any other error (a full disk) a runtime failure.
pub(super) fn write(args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|e| classify(&e))
}

/// What a failed write to stdout means for the command.
fn classify(e: &std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Failure::StdoutClosed
    } else {
        Failure::Runtime(anyhow::anyhow!("writing to stdout: {e}"))
    }
}

/// `print!` that returns a [`Failure`] instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!($($arg)*))
    };
}

/// `println!` that returns a [`Failure`] instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(super) use {out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_a_quiet_exit_and_other_errors_are_named() {
        let closed = classify(&std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(matches!(closed, Failure::StdoutClosed), "{closed:?}");
        assert_eq!(closed.exit_code(), 141);
        let full = classify(&std::io::Error::from_raw_os_error(28));
        assert_eq!(full.exit_code(), 1);
        assert_eq!(
            full.error().map(|e| e.to_string()),
            Some("writing to stdout: No space left on device (os error 28)".to_string())
        );
    }
}
