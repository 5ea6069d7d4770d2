//! Command-line interface: `serve` (the default), `check-config`, `certs generate`,
//! `htpasswd add|verify`, `acl explain`, `import docker-auth`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::auth::htpasswd::edit::{self as htpasswd_edit, Cost, Outcome, Username, Verdict};
use crate::config::{self, Config, LogFormat};
use crate::reload::Source;
use crate::server::admin;
use crate::state::State;
use crate::{reload, server, signals};

mod acl;
mod bind;
mod certs;
mod expiry;
mod stdout;

use stdout::{out, outln};

const DEFAULT_CONFIG: &str = "proxy.toml";
/// Sub-directory of `certs generate --out` holding only `ca.crt`: docker, skopeo and
/// podman read a `--cert-dir` as client key pairs (`*.cert` + `*.key`) plus CAs
/// (`*.crt`), and refuse a directory with a `.key` that has no `.cert`.
const TRUST_DIR: &str = "trust";

/// An authenticating TLS reverse proxy for Docker/OCI registries.
#[derive(Debug, Parser)]
#[command(name = "registry-gate", version, about)]
pub struct Cli {
    /// The config file of the commands that read one: serve (the default),
    /// check-config, acl explain, ldap test and token jwks, which also take
    /// --config after their name. Any key in it can be overridden by a
    /// REGISTRY_GATE_<SECTION>_<KEY> environment variable.
    #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG, env = "REGISTRY_GATE_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gate (the default command).
    Serve {
        /// The config file to serve [default: proxy.toml, or $REGISTRY_GATE_CONFIG].
        /// Any key in it can be overridden by a REGISTRY_GATE_<SECTION>_<KEY>
        /// environment variable.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate the config and every file it names, then print the resolved
    /// config (file, environment overrides and defaults) as TOML.
    CheckConfig {
        /// The config file to check [default: proxy.toml, or $REGISTRY_GATE_CONFIG],
        /// with the REGISTRY_GATE_<SECTION>_<KEY> environment variables applied.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Certificates for development and tests.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Manage the users of an htpasswd file.
    #[command(subcommand)]
    Htpasswd(HtpasswdCommand),
    /// Inspect the `[authz]` rules.
    #[command(subcommand)]
    Acl(AclCommand),
    /// Check the `[ldap]` directory.
    #[command(subcommand)]
    Ldap(LdapCommand),
    /// Token mode's keys.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Turn another auth server's configuration into a proxy.toml.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Read cesanta/docker_auth's auth_config.yml and write a token-mode proxy.toml and
    /// an htpasswd file (mode 0600) that decide as docker_auth did.
    ///
    /// What needs attention or was not carried over is printed (and written at the top
    /// of proxy.toml); where carrying a setting over could grant more than docker_auth
    /// did, nothing is written and the error says what to change.
    DockerAuth {
        /// docker_auth's config file.
        file: PathBuf,
        /// Directory to write proxy.toml and htpasswd to (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Replace files that already exist.
        #[arg(long)]
        force: bool,
        /// The registry's auth.token.service (docker_auth's config has none); a
        /// placeholder is written without it.
        #[arg(long)]
        service: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print the public keys of `[token]` (`cert` and `previous_certs`) as a JWKS, for
    /// registry 3's `auth.token.jwks` file.
    Jwks {
        /// The config file whose [token] keys are printed [default: proxy.toml, or
        /// $REGISTRY_GATE_CONFIG].
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum LdapCommand {
    /// Log USER in against the directory as the gate would: prints the DN found,
    /// the groups and each step's timing; exit 0 if the password is accepted, 1 if not.
    ///
    /// On a terminal the password is asked without echo; otherwise it is the first
    /// line of stdin.
    Test {
        /// The user name as clients send it.
        user: String,
        /// The config file whose [ldap] directory (and auth.htpasswd users) are used
        /// [default: proxy.toml, or $REGISTRY_GATE_CONFIG].
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AclCommand {
    /// Show which rule decides whether USER may do ACTION on REPOSITORY, with the
    /// groups the user is in; exit 0 if allowed, 1 if denied.
    ///
    /// USER `anonymous` is a client without credentials. ACTION is pull, push,
    /// delete or catalog (then REPOSITORY is ignored; write `_catalog`).
    Explain {
        /// The user name (as in the htpasswd file), or `anonymous`.
        user: String,
        /// The repository, such as `team-a/app`.
        repository: String,
        /// pull, push, delete or catalog.
        action: String,
        /// The config file whose [authz] rules, groups and users are read
        /// [default: proxy.toml, or $REGISTRY_GATE_CONFIG].
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Write a CA (ca.crt, ca.key) and a server certificate signed by it
    /// (server.crt, server.key) for the given names, and trust/ca.crt for clients;
    /// with --token also a token signing key (token.key, ES256) and its self-signed
    /// certificate (token.crt: the registry's auth.token.rootcertbundle).
    ///
    /// If ca.crt and ca.key exist, that CA is kept and signs the new server
    /// certificate, so clients that trust it need no change; --new-ca makes a new
    /// one instead.
    Generate {
        /// DNS names or IP addresses the server certificate is valid for.
        #[arg(long = "san", required_unless_present = "token")]
        sans: Vec<String>,
        /// Also write token.key and token.crt for token mode.
        #[arg(long)]
        token: bool,
        /// Directory to write to (created if missing).
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// Replace files that already exist: server.crt and server.key (and token.key,
        /// token.crt); the CA only with --new-ca.
        #[arg(long)]
        force: bool,
        /// Make a new CA even if ca.crt and ca.key exist (with --force to replace
        /// them): every client must then trust the new ca.crt.
        #[arg(long)]
        new_ca: bool,
    },
}

#[derive(Debug, Subcommand)]
enum HtpasswdCommand {
    /// Add a user, or set an existing user's password.
    ///
    /// The password is hashed with bcrypt ($2y$). On a terminal it is asked twice without
    /// echo; otherwise it is the first line of stdin.
    Add {
        /// The htpasswd file: created if missing (with its missing directories, mode
        /// 0700), else the user's line is replaced or a line appended and the file
        /// replaced atomically (mode 0600).
        #[arg(long)]
        file: PathBuf,
        /// The user name: not empty, no ':' and no control characters.
        user: String,
        /// bcrypt cost, from 4 to 31; each step doubles the time of every login check.
        #[arg(long, default_value_t = htpasswd_edit::DEFAULT_COST)]
        cost: u32,
    },
    /// Check a user's password as the gate would: exit 0 if it matches, 1 if not.
    ///
    /// On a terminal the password is asked without echo; otherwise it is the first line
    /// of stdin.
    Verify {
        /// The htpasswd file.
        #[arg(long)]
        file: PathBuf,
        /// The user name.
        user: String,
    },
}

/// A failed command, with the exit status it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Bad configuration or usage: exit 64 (EX_USAGE).
    Config(anyhow::Error),
    /// Anything else: exit 1.
    Runtime(anyhow::Error),
    /// Stdout is a pipe whose reader has gone (`... | head -1`): exit 141 (128 +
    /// SIGPIPE, what a shell reports for `cat` in that place), with nothing printed.
    StdoutClosed,
}

impl Failure {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Config(_) => 64,
            Failure::Runtime(_) => 1,
            Failure::StdoutClosed => 141,
        }
    }
    /// The error to print, if any.
    pub fn error(&self) -> Option<&anyhow::Error> {
        match self {
            Failure::Config(e) | Failure::Runtime(e) => Some(e),
            Failure::StdoutClosed => None,
        }
    }
}

/// Runs the parsed command line. Logging is set up here, once the config (and
/// with it the log format) is known.
pub fn run(cli: Cli) -> Result<(), Failure> {
    let command = cli.command.unwrap_or(Command::Serve { config: None });
    if !matches!(command, Command::Serve { .. }) {
        init_logging(LogFormat::Text);
    }
    // `--config` after the subcommand's name, else before it (or its default).
    let file = |config: Option<PathBuf>| config.unwrap_or_else(|| cli.config.clone());
    match command {
        Command::Serve { config } => serve(&file(config)),
        Command::CheckConfig { config } => check_config(&file(config)),
        Command::Certs(CertsCommand::Generate {
            sans,
            token,
            out,
            force,
            new_ca,
        }) => {
            if !sans.is_empty() {
                certs::generate(&sans, &out, force, new_ca)?;
            }
            if token {
                certs::generate_token_key(&out, force)?;
            }
            Ok(())
        }
        Command::Htpasswd(command) => htpasswd(command),
        Command::Ldap(LdapCommand::Test { user, config }) => ldap_test(&file(config), &user),
        Command::Token(TokenCommand::Jwks { config }) => token_jwks(&file(config)),
        Command::Import(ImportCommand::DockerAuth {
            file,
            out,
            force,
            service,
        }) => import_docker_auth(&file, &out, force, service),
        Command::Acl(AclCommand::Explain {
            user,
            repository,
            action,
            config,
        }) => acl::explain(&file(config), &user, &repository, &action),
    }
}

/// Prints the JWKS of the configured token keys.
fn token_jwks(path: &Path) -> Result<(), Failure> {
    let (_, config) = source(path)?;
    let Some(token) = &config.token else {
        return Err(Failure::Config(anyhow::anyhow!(
            "{}: no [token] section",
            path.display()
        )));
    };
    let service = crate::token::service::TokenService::load(token)
        .map_err(|e| Failure::Config(anyhow::Error::new(e)))?;
    let text = serde_json::to_string_pretty(&service.jwks())
        .context("encoding the JWKS")
        .map_err(Failure::Runtime)?;
    outln!("{text}")?;
    Ok(())
}

/// Runs `ldap test`: the directory's login steps for one user.
fn ldap_test(path: &Path, user: &str) -> Result<(), Failure> {
    let (_, config) = source(path)?;
    let Some(ldap) = &config.ldap else {
        return Err(Failure::Config(anyhow::anyhow!(
            "{}: no [ldap] section",
            path.display()
        )));
    };
    let state = build(&config, path)?;
    state
        .ignored_lines
        .iter()
        .for_each(crate::state::IgnoredLine::log);
    let Some(logins) = state.authenticator.directory() else {
        return Err(Failure::Config(anyhow::anyhow!("[ldap] is not in use")));
    };
    let password = htpasswd_edit::read_password(false)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    outln!("directory: {}", ldap.url.list().join(", "))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(Failure::Runtime)?;
    let report = runtime.block_on(crate::auth::ldap::diagnose::login(
        logins.directory(),
        user,
        password.expose(),
    ));
    out!("{report}")?;
    if state.authenticator.has_htpasswd_user(user) {
        outln!(
            "note: {user} is in auth.htpasswd, so the gate decides it there, not in the directory"
        )?;
    }
    // The identity is the entry's account name, whatever spelling was typed.
    let account = report.account.as_deref().unwrap_or(user);
    if account != user {
        outln!(
            "note: {user:?} signs in as the directory's account name {account:?} \
             (rules, groups, logs and tokens use that)"
        )?;
    }
    if report.accepted && account != user && state.authenticator.has_htpasswd_user(account) {
        outln!("note: {account} is an auth.htpasswd user, so this directory login is refused")?;
        Err(Failure::Runtime(anyhow::anyhow!("{user} may not sign in")))
    } else if report.accepted {
        outln!("result: {account} may sign in")?;
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!("{user} may not sign in")))
    }
}

/// Runs `import docker-auth`: reads FILE, writes OUT/proxy.toml and OUT/htpasswd,
/// prints the notes (stderr) and the next steps (stdout).
fn import_docker_auth(
    file: &Path,
    out: &Path,
    force: bool,
    service: Option<String>,
) -> Result<(), Failure> {
    use crate::import::docker_auth;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(Failure::Config)?;
    let options = docker_auth::Options { service };
    let import = docker_auth::import(&text, &options)
        .map_err(|e| Failure::Config(anyhow::anyhow!("{}: {e}", file.display())))?;
    let config = out.join("proxy.toml");
    let htpasswd = out.join("htpasswd");
    let mut files = vec![(&config, &import.proxy_toml, false)];
    if let Some(text) = &import.htpasswd {
        files.push((&htpasswd, text, true));
    }
    if !force {
        if let Some((existing, ..)) = files.iter().find(|(p, ..)| p.exists()) {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "{} already exists; pass --force to replace it",
                existing.display()
            )));
        }
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating {}", out.display()))
        .map_err(Failure::Runtime)?;
    for (path, text, secret) in &files {
        write_file(path, text, *secret).map_err(Failure::Runtime)?;
    }
    for note in &import.notes {
        eprintln!("note: {note}");
    }
    let written: Vec<String> = files
        .iter()
        .map(|(p, ..)| p.display().to_string())
        .collect();
    let r = &import.registry;
    outln!(
        "wrote {written}\n\
         next steps:\n\
         1. read the notes{above} (they are also at the top of {config})\n\
         2. registry-gate --config {config} check-config\n\
         3. registry-gate --config {config} acl explain USER REPOSITORY pull  (a few users)\n\
         4. point the registry at the gate: auth.token.realm = https://GATE-HOST:PORT{path}, \
         issuer = {issuer:?}, service = {service:?}, rootcertbundle = {cert}\n\
         5. registry-gate --config {config} serve, then stop docker_auth",
        written = written.join(" and "),
        above = if import.notes.is_empty() {
            " (none)"
        } else {
            " above"
        },
        config = config.display(),
        path = r.path,
        issuer = r.issuer,
        service = r.service,
        cert = r.rootcertbundle,
    )?;
    Ok(())
}

/// Runs `htpasswd add` or `htpasswd verify`. Messages name the user, never the password.
fn htpasswd(command: HtpasswdCommand) -> Result<(), Failure> {
    let failure = |e: htpasswd_edit::Error| {
        if e.is_usage() {
            Failure::Config(e.into())
        } else {
            Failure::Runtime(e.into())
        }
    };
    match command {
        HtpasswdCommand::Add { file, user, cost } => {
            let user = Username::new(user).map_err(failure)?;
            let cost = Cost::new(cost).map_err(failure)?;
            let password = htpasswd_edit::read_password(true).map_err(failure)?;
            let (name, file_name) = (user.as_str(), file.display());
            let added = htpasswd_edit::add_user(&file, &user, &password, cost).map_err(failure)?;
            for dir in &added.created {
                eprintln!("created directory {}/ (mode 0700)", dir.display());
            }
            match added.outcome {
                Outcome::Added => eprintln!("added user {name:?} to {file_name}"),
                Outcome::Updated => eprintln!("updated user {name:?} in {file_name}"),
            }
            warn_ignored(&added.ignored);
            Ok(())
        }
        HtpasswdCommand::Verify { file, user } => {
            let user = Username::new(user).map_err(failure)?;
            let password = htpasswd_edit::read_password(false).map_err(failure)?;
            let name = user.as_str();
            let (verdict, ignored) =
                htpasswd_edit::verify_user(&file, &user, &password).map_err(failure)?;
            warn_ignored(&ignored);
            match verdict {
                Verdict::Match => {
                    outln!("password ok for {name:?}")?;
                    Ok(())
                }
                Verdict::WrongPassword => Err(anyhow::anyhow!("wrong password for {name:?}")),
                Verdict::NoEntry(warning) => {
                    let entry = format!("no usable entry for {name:?} in {}", file.display());
                    Err(match warning {
                        Some(warning) => anyhow::anyhow!("{entry}: {warning}"),
                        None => anyhow::anyhow!(entry),
                    })
                }
            }
            .map_err(Failure::Runtime)
        }
    }
}

/// Names on stderr each line of an htpasswd file that the gate ignores.
fn warn_ignored(ignored: &[crate::auth::htpasswd::Warning]) {
    for warning in ignored {
        eprintln!("warning: {warning}: the gate ignores this line (only its user is affected)");
    }
}

/// Logs go to stderr, as text or one JSON object per line; `RUST_LOG` sets the
/// level (default `info`). Colours only on a terminal (and not with `NO_COLOR`):
/// a log file or a container log collector gets plain text.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The config file with the environment's `REGISTRY_GATE_*` overrides.
fn source(path: &Path) -> Result<(Source, Config), Failure> {
    let overrides =
        config::env::overrides(std::env::vars_os()).map_err(|e| Failure::Config(e.into()))?;
    let config = Config::load_with(path, &overrides).map_err(|e| Failure::Config(e.into()))?;
    let source = Source {
        path: path.to_path_buf(),
        overrides,
    };
    Ok((source, config))
}

/// Builds the state as `serve` does. The ignored htpasswd and group file lines are
/// left to the caller to show.
fn build(config: &Config, path: &Path) -> Result<State, Failure> {
    State::build(config)
        .with_context(|| format!("config {}", path.display()))
        .map_err(Failure::Config)
}

/// Checks what `serve` would do with the config: what would stop it is an error
/// (exit 64); an htpasswd or group file line it would ignore (costing only its own
/// user) is a warning on stderr, `warning: file:line: reason`, one per line.
/// The resolved config goes to stdout as TOML, itself a valid config file. It holds
/// no secret values: secrets stay in the files it names.
fn check_config(path: &Path) -> Result<(), Failure> {
    let (source, config) = source(path)?;
    let state = build(&config, path)?;
    for line in &state.ignored_lines {
        eprintln!("warning: {line}: {}", ignored_effect(line));
    }
    let resolved = toml::to_string(&config)
        .context("printing the resolved config")
        .map_err(Failure::Runtime)?;
    let from_env: Vec<_> = source.overrides.iter().map(|o| o.var.as_str()).collect();
    outln!("# {}: ok ({})", path.display(), state.summary())?;
    if !from_env.is_empty() {
        outln!("# environment overrides: {}", from_env.join(", "))?;
    }
    out!("{resolved}")?;
    Ok(())
}

/// What ignoring `line` means, for `check-config`.
fn ignored_effect(line: &crate::state::IgnoredLine) -> &'static str {
    match line {
        crate::state::IgnoredLine::Htpasswd(_) => "line ignored, as serve and reload ignore it",
        crate::state::IgnoredLine::Groups(_) => {
            "line ignored (its memberships do not count), as serve and reload ignore it"
        }
        crate::state::IgnoredLine::Robots(..) => {
            "line ignored (its robot cannot log in), as serve and reload ignore it"
        }
    }
}

fn serve(path: &Path) -> Result<(), Failure> {
    let (source, config) = source(path)?;
    init_logging(config.log.format);
    for o in &source.overrides {
        tracing::info!(var = %o.var, key = %o.key_path(), "config key set from the environment");
    }
    let state = build(&config, path)?;
    state
        .ignored_lines
        .iter()
        .for_each(crate::state::IgnoredLine::log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::Runtime)?;
    runtime.block_on(async {
        let listener = bind::bind(bind::Listener::Listen, state.listen_addr)
            .await
            .map_err(Failure::Runtime)?;
        let bound = listener
            .local_addr()
            .context("reading the bound address")
            .map_err(Failure::Runtime)?;
        let admin = match state.admin_addr {
            Some(addr) => Some(
                bind::bind(bind::Listener::Admin, addr)
                    .await
                    .map_err(Failure::Runtime)?,
            ),
            None => None,
        };
        let termination = signals::Termination::install();
        let upstream = state
            .upstream
            .as_ref()
            .and_then(|u| u.uri_for(None).ok())
            .map_or_else(|| "none (token server)".into(), |u| u.to_string());
        let expiry = expiry::Expiry::of(&config.tls.cert);
        tracing::info!(
            addr = %bound,
            config = %path.display(),
            version = %env!("CARGO_PKG_VERSION"),
            cert_not_after = %expiry.not_after(),
            cert_days_left = %expiry.days_left(),
            upstream = %upstream,
            summary = %state.summary(),
            "listening"
        );
        expiry.warn_if_near(&config.tls.cert);
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(state));
        let (draining_tx, draining) = tokio::sync::watch::channel(false);
        if let Some(admin) = admin {
            if let Ok(addr) = admin.local_addr() {
                tracing::info!(%addr, "admin listening (/metrics, /healthz, /readyz)");
            }
            tokio::spawn(admin::run(admin, rx.clone(), draining));
        }
        tokio::spawn(reload::run(source, config, tx));
        let shutdown = async move {
            termination.first().await;
            draining_tx.send_replace(true);
        };
        server::run(listener, rx, shutdown).await;
        tracing::info!("stopped");
        Ok(())
    })
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
