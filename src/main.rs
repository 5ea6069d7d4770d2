//! The `registry-gate` binary: parse the command line, run, map the error to an exit code.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Logging is set up by `cli::run`, once the config's log format is known.
    let cli = registry_gate::cli::Cli::parse();
    match registry_gate::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(error) = failure.error() {
                // A closed stderr leaves nowhere to say it; the exit status still does.
                let _ = writeln!(std::io::stderr(), "registry-gate: error: {error:#}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}
