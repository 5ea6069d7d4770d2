//! Command-line interface: `serve` (the default), `check-config`, `certs generate`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::state::State;
use crate::{server, signals, tls};

const DEFAULT_CONFIG: &str = "proxy.toml";
/// Sub-directory of `certs generate --out` holding only `ca.crt`: docker, skopeo and
/// podman read a `--cert-dir` as client key pairs (`*.cert` + `*.key`) plus CAs
/// (`*.crt`), and refuse a directory with a `.key` that has no `.cert`.
const TRUST_DIR: &str = "trust";

/// An authenticating TLS reverse proxy for Docker/OCI registries.
#[derive(Debug, Parser)]
#[command(name = "registry-gate", version, about)]
pub struct Cli {
    /// The config file (for `serve` and `check-config`).
    #[arg(long, short, global = true, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gate (the default command).
    Serve,
    /// Validate the config and every file it names, then exit.
    CheckConfig,
    /// Certificates for development and tests.
    #[command(subcommand)]
    Certs(CertsCommand),
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Write a CA (ca.crt, ca.key) and a server certificate signed by it
    /// (server.crt, server.key) for the given names, and trust/ca.crt for clients.
    Generate {
        /// DNS names or IP addresses the server certificate is valid for.
        #[arg(long = "san", required = true)]
        sans: Vec<String>,
        /// Directory to write to (created if missing).
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// Replace files that already exist.
        #[arg(long)]
        force: bool,
    },
}

/// A failed command, with the exit status it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Bad configuration or usage: exit 64 (EX_USAGE).
    Config(anyhow::Error),
    /// Anything else: exit 1.
    Runtime(anyhow::Error),
}

impl Failure {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Config(_) => 64,
            Failure::Runtime(_) => 1,
        }
    }
    /// The error to print.
    pub fn error(&self) -> &anyhow::Error {
        match self {
            Failure::Config(e) | Failure::Runtime(e) => e,
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::CheckConfig => check_config(&cli.config),
        Command::Certs(CertsCommand::Generate { sans, out, force }) => {
            generate_certs(&sans, &out, force).map_err(Failure::Runtime)
        }
    }
}

fn load(path: &Path) -> Result<State, Failure> {
    let config = Config::load(path).map_err(|e| Failure::Config(e.into()))?;
    State::build(&config)
        .with_context(|| format!("config {}", path.display()))
        .map_err(Failure::Config)
}

fn check_config(path: &Path) -> Result<(), Failure> {
    let state = load(path)?;
    println!("{}: ok ({})", path.display(), state.summary());
    Ok(())
}

fn serve(path: &Path) -> Result<(), Failure> {
    let state = load(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::Runtime)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(state.listen_addr)
            .await
            .with_context(|| format!("binding listen.addr {}", state.listen_addr))
            .map_err(Failure::Runtime)?;
        let bound = listener
            .local_addr()
            .context("reading the bound address")
            .map_err(Failure::Runtime)?;
        tracing::info!(addr = %bound, upstream = %state.upstream.uri_for(None).map(|u| u.to_string()).unwrap_or_default(), summary = %state.summary(), "listening");
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(state));
        tokio::spawn(signals::reload_on_hangup(path.to_path_buf(), tx));
        server::run(listener, rx, signals::shutdown()).await;
        tracing::info!("stopped");
        Ok(())
    })
}

fn generate_certs(sans: &[String], out: &Path, force: bool) -> anyhow::Result<()> {
    let files = ["ca.crt", "ca.key", "server.crt", "server.key"];
    if !force {
        if let Some(existing) = files.iter().map(|f| out.join(f)).find(|p| p.exists()) {
            anyhow::bail!(
                "{} already exists; pass --force to replace it",
                existing.display()
            );
        }
    }
    let generated = tls::generate(sans)?;
    let trust = out.join(TRUST_DIR);
    std::fs::create_dir_all(&trust).with_context(|| format!("creating {}", trust.display()))?;
    let contents = [
        (&generated.ca_cert, false),
        (&generated.ca_key, true),
        (&generated.server_cert, false),
        (&generated.server_key, true),
    ];
    for (name, (text, secret)) in files.iter().zip(contents) {
        write_file(&out.join(name), text, secret)?;
    }
    write_file(&trust.join("ca.crt"), &generated.ca_cert, false)?;
    println!(
        "wrote {dir}/ca.crt, ca.key, server.crt, server.key and {trust}/ca.crt for {names}\n\
         clients must trust ca.crt: for docker copy it to /etc/docker/certs.d/HOST:PORT/ca.crt;\n\
         for skopeo and podman pass --cert-dir {trust} (a directory with no *.key file in it)",
        dir = out.display(),
        trust = trust.display(),
        names = sans.join(", "),
    );
    Ok(())
}

fn write_file(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mode = if secret { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
