//! The `tracing` subscriber, set up once per process.

use crate::config::LogFormat;

/// Logs go to stderr ([`crate::log_batch`]: a worker thread's lines in batches), as text or one JSON object per line; `RUST_LOG` sets the
/// level (default `info`). Colours only on a terminal (and not with `NO_COLOR`):
/// a log file or a container log collector gets plain text.
pub(super) fn init(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(crate::log_batch::Stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
