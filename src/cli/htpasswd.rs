//! `htpasswd add|verify`: the users of an htpasswd file, edited or checked as the
//! gate reads them.

use super::stdout::outln;
use super::{Failure, HtpasswdCommand};
use crate::auth::htpasswd::edit::{self as htpasswd_edit, Cost, Outcome, Username, Verdict};

/// Runs `htpasswd add` or `htpasswd verify`. Messages name the user, never the password.
pub(super) fn run(command: HtpasswdCommand) -> Result<(), Failure> {
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
