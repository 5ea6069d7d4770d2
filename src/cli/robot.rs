//! `robot create|list|revoke|rotate`: the robot accounts of a robots file
//! (`auth.robots`). A secret is printed once and stored nowhere; the file is
//! replaced atomically (mode 0600), and a running gate applies it within
//! `reload.watch_interval`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context as _};
use ring::rand::SystemRandom;

use super::load::source;
use super::stdout::outln;
use super::{Failure, RobotCommand};
use crate::auth::robots::{self, EditError, Issued, Robots, Spec};
use crate::authz::access::Action;

/// How long a robot works when `create` is given neither `--expires` nor `--no-expiry`.
pub(super) const DEFAULT_EXPIRY: &str = "90d";

/// Runs a `robot` subcommand; `config` is the config file whose `auth.robots` is the
/// file when `--file` is not given.
pub(super) fn run(command: RobotCommand, config: &Path) -> Result<(), Failure> {
    let usage = |e: anyhow::Error| Failure::Config(e);
    match command {
        RobotCommand::Create {
            name,
            file,
            repos,
            actions,
            expires,
            no_expiry,
            description,
            json,
        } => {
            let path = robots_file(file, config)?;
            let expires_in = match (no_expiry, expires.as_deref()) {
                (true, _) => None,
                (false, words) => Some(duration("--expires", words.unwrap_or(DEFAULT_EXPIRY))?),
            };
            let spec = Spec {
                name,
                repos,
                actions: parse_actions(&actions).map_err(usage)?,
                expires_in,
                description: description.unwrap_or_default(),
            };
            let text = read(&path)?;
            let (text, issued) =
                robots::create(&text, &spec, SystemTime::now(), &SystemRandom::new())
                    .map_err(edit_failure)?;
            write(&path, &text)?;
            eprintln!("created robot {} in {}", spec.name, path.display());
            print_issued(&issued, json)
        }
        RobotCommand::Rotate {
            name,
            file,
            grace,
            json,
        } => {
            let path = robots_file(file, config)?;
            let grace = grace.map(|g| duration("--grace", &g)).transpose()?;
            let text = read(&path)?;
            let (text, issued) =
                robots::rotate(&text, &name, grace, SystemTime::now(), &SystemRandom::new())
                    .map_err(edit_failure)?;
            write(&path, &text)?;
            match grace {
                Some(g) => eprintln!(
                    "rotated robot {name}: the old secret works until {}",
                    robots::rfc3339(SystemTime::now() + g)
                ),
                None => eprintln!("rotated robot {name}: the old secret no longer works"),
            }
            print_issued(&issued, json)
        }
        RobotCommand::Revoke { name, file } => {
            let path = robots_file(file, config)?;
            let text = read(&path)?;
            let text = robots::revoke(&text, &name).map_err(edit_failure)?;
            write(&path, &text)?;
            eprintln!("revoked robot {name}: it can no longer log in");
            Ok(())
        }
        RobotCommand::List { file } => list(&robots_file(file, config)?),
    }
}

/// `--file`, else the config's `auth.robots`.
fn robots_file(file: Option<PathBuf>, config: &Path) -> Result<PathBuf, Failure> {
    if let Some(file) = file {
        return Ok(file);
    }
    let (_, config_file) = source(config)?;
    config_file.auth.robots.ok_or_else(|| {
        Failure::Config(anyhow!(
            "{} sets no auth.robots: name the robots file with --file, or set auth.robots",
            config.display()
        ))
    })
}

/// `--actions pull,push`: the words of the list, read by the robots file's own reader.
fn parse_actions(list: &str) -> anyhow::Result<Vec<Action>> {
    let words: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    robots::parse_actions(&words).map_err(|e| anyhow!("--actions: {e}"))
}

fn duration(flag: &str, words: &str) -> Result<Duration, Failure> {
    let d = humantime::parse_duration(words).map_err(|e| {
        Failure::Config(anyhow!(
            "{flag} {words:?}: {e}; write a duration such as \"90d\" or \"24h\""
        ))
    })?;
    if d.is_zero() {
        return Err(Failure::Config(anyhow!("{flag} must be longer than 0s")));
    }
    Ok(d)
}

/// The file's text; a file that does not exist yet is empty.
fn read(path: &Path) -> Result<String, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Failure::Runtime(
            anyhow::Error::new(e).context(format!("reading robots file {}", path.display())),
        )),
    }
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    crate::auth::replace::replace(path, text.as_bytes())
        .map_err(|e| match e {
            crate::auth::replace::Error::Write(e) | crate::auth::replace::Error::SyncDir(e) => {
                anyhow::Error::new(e)
            }
        })
        .with_context(|| format!("writing robots file {}", path.display()))
        .map_err(Failure::Runtime)
}

fn edit_failure(e: EditError) -> Failure {
    match e {
        EditError::Random => Failure::Runtime(e.into()),
        _ => Failure::Config(e.into()),
    }
}

fn print_issued(issued: &Issued, json: bool) -> Result<(), Failure> {
    if json {
        return outln!("{}", issued.to_json());
    }
    let expires = issued
        .expires
        .map_or_else(|| "never".to_owned(), robots::rfc3339);
    outln!("user:    {}", issued.user)?;
    outln!("secret:  {}", issued.secret)?;
    outln!("expires: {expires}")?;
    eprintln!(
        "the secret is shown only now; log in with: docker login -u '{}' --password-stdin HOST",
        issued.user
    );
    Ok(())
}

/// Every robot, never a secret; unusable lines are named on stderr.
fn list(path: &Path) -> Result<(), Failure> {
    let text = read(path)?;
    let (robots, warnings) = Robots::parse(&text);
    for warning in &warnings {
        eprintln!("{}: {warning} (this robot cannot log in)", path.display());
    }
    let now = SystemTime::now();
    let time = |t: Option<SystemTime>| t.map_or_else(|| "-".to_owned(), robots::rfc3339);
    outln!("USER\tSCOPE\tCREATED\tEXPIRES\tROTATED\tDESCRIPTION")?;
    for robot in robots.iter() {
        let expired = robot.expires.is_some_and(|at| at <= now);
        let mut expires = robot
            .expires
            .map_or_else(|| "never".into(), robots::rfc3339);
        if expired {
            expires.push_str(" (expired)");
        }
        let mut rotated = time(robot.rotated);
        if let Some(until) = robot.grace_until(now) {
            rotated.push_str(&format!(" (old secret until {})", robots::rfc3339(until)));
        }
        outln!(
            "{}\t{} on {}\t{}\t{expires}\t{rotated}\t{}",
            robot.user(),
            robot.actions,
            robot.repos.join(","),
            robots::rfc3339(robot.created),
            robot.description,
        )?;
    }
    Ok(())
}
