//! Command-line interface: `serve` (the default), `check-config`, `certs generate`,
//! `htpasswd add|verify`, `acl explain`, `ldap test`, `token jwks`, `import docker-auth`,
//! `robot create|list|revoke|rotate`.
//!
//! This file holds the clap definitions and the dispatch; each subcommand's body is in
//! `cli/<subcommand>.rs`, with the config loading they share in `cli/load.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::auth::htpasswd::edit as htpasswd_edit;
use crate::config::LogFormat;

mod acl;
mod bind;
mod certs;
mod check_config;
mod expiry;
mod files;
mod htpasswd;
mod import;
mod ldap;
mod load;
mod logging;
mod robot;
mod serve;
mod stdout;
mod token;

const DEFAULT_CONFIG: &str = "proxy.toml";

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
    /// Manage robot accounts: machine logins (CI, cluster pulls) with a scope of
    /// their own, as `robot$NAME`.
    #[command(subcommand)]
    Robot(RobotCommand),
}

#[derive(Debug, Subcommand)]
enum RobotCommand {
    /// Create a robot and print its secret, once: only a hash of it is stored.
    ///
    /// It logs in as `robot$NAME` with the secret as password, and may do ACTIONS on
    /// the repositories the patterns match, never more (no [authz] rule or group
    /// widens it). The robots file is replaced atomically (mode 0600); a running gate
    /// applies it within reload.watch_interval.
    Create {
        /// The robot's name: 1 to 64 of a-z, 0-9, `.`, `_`, `-`.
        name: String,
        /// The robots file [default: auth.robots of the config].
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// A repository pattern it may use (`team/*`, `base/**`); repeat for more.
        #[arg(long = "repo", value_name = "PATTERN", required = true)]
        repos: Vec<String>,
        /// What it may do: pull, and push or delete if it needs them, such as pull,push.
        #[arg(long, value_name = "LIST")]
        actions: String,
        /// How long it works, such as 90d or 12h [default: 90d].
        #[arg(long, value_name = "DURATION", conflicts_with = "no_expiry")]
        expires: Option<String>,
        /// It never expires (revoke or rotate it by hand).
        #[arg(long)]
        no_expiry: bool,
        /// What it is for, shown by `robot list`.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Print {"user": ..., "secret": ..., "expires": ...} as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// List the robots: user, scope, created, expires, last rotation; never a secret.
    List {
        /// The robots file [default: auth.robots of the config].
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Remove a robot: it is refused from the next request on.
    Revoke {
        /// The robot's name.
        name: String,
        /// The robots file [default: auth.robots of the config].
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Give a robot a new secret and print it; with --grace the old secret keeps
    /// working that long (so copied pull secrets can be updated), else it stops now.
    Rotate {
        /// The robot's name.
        name: String,
        /// The robots file [default: auth.robots of the config].
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// How long the old secret keeps working, such as 24h.
        #[arg(long, value_name = "DURATION")]
        grace: Option<String>,
        /// Print {"user": ..., "secret": ..., "expires": ...} as one JSON line.
        #[arg(long)]
        json: bool,
    },
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
        logging::init(LogFormat::Text);
    }
    // `--config` after the subcommand's name, else before it (or its default).
    let file = |config: Option<PathBuf>| config.unwrap_or_else(|| cli.config.clone());
    match command {
        Command::Serve { config } => serve::run(&file(config)),
        Command::CheckConfig { config } => check_config::run(&file(config)),
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
        Command::Htpasswd(command) => htpasswd::run(command),
        Command::Ldap(LdapCommand::Test { user, config }) => ldap::test(&file(config), &user),
        Command::Token(TokenCommand::Jwks { config }) => token::jwks(&file(config)),
        Command::Import(ImportCommand::DockerAuth {
            file,
            out,
            force,
            service,
        }) => import::docker_auth(&file, &out, force, service),
        Command::Acl(AclCommand::Explain {
            user,
            repository,
            action,
            config,
        }) => acl::explain(&file(config), &user, &repository, &action),
        Command::Robot(command) => robot::run(command, &cli.config),
    }
}
