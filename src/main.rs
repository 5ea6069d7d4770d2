//! The `registry-gate` binary: parse the command line, run, map the error to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Logging is set up by `cli::run`, once the config's log format is known.
    let cli = registry_gate::cli::Cli::parse();
    match registry_gate::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("registry-gate: error: {:#}", failure.error());
            ExitCode::from(failure.exit_code())
        }
    }
}
