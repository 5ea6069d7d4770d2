//! `registry-gate ldap test USER`: one login against the directory, step by step,
//! with what each step found and how long it took, for operators.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::pool::Failure;
use super::{Bind, Directory, Found};

/// One step of a login.
#[derive(Debug)]
pub struct Step {
    /// `search`, `bind` or `groups`.
    pub name: &'static str,
    /// What it found, or why it failed.
    pub outcome: String,
    /// How long it took (connection set-up included for the first use of a pool).
    pub elapsed: Duration,
}

/// The steps of a login and whether it succeeded.
#[derive(Debug, Default)]
pub struct Report {
    /// The steps in order; a failing step is the last.
    pub steps: Vec<Step>,
    /// Whether the password was accepted.
    pub accepted: bool,
    /// The account name of the entry found: the identity a login has, whatever
    /// spelling was typed.
    pub account: Option<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(
                f,
                "{:<7} {:>9.1} ms  {}",
                step.name,
                step.elapsed.as_secs_f64() * 1000.0,
                step.outcome
            )?;
        }
        Ok(())
    }
}

/// Runs search, bind and group lookup for `account`, stopping at the first failure.
pub async fn login(directory: &Directory, account: &str, password: &[u8]) -> Report {
    let mut report = Report::default();
    if password.is_empty() {
        report.steps.push(Step {
            name: "bind",
            outcome: "refused before binding: an empty password is an unauthenticated bind \
                      that would succeed (RFC 4513 §5.1.2)"
                .into(),
            elapsed: Duration::ZERO,
        });
        return report;
    }
    let started = Instant::now();
    let found = directory.find_user(account).await;
    let entry = match found {
        Ok(Found::One(entry)) => {
            let text = format!(
                "found {} ({} {:?})",
                entry.dn,
                directory.account_attribute(),
                entry.account
            );
            report.steps.push(step("search", text, started));
            report.account = Some(entry.account.clone());
            entry
        }
        Ok(Found::Unnamed { dn, values }) => {
            let text = format!(
                "found {dn}, but it has {values} values of {} (one is needed): refused \
                 (set ldap.account_attribute to a single-valued attribute)",
                directory.account_attribute()
            );
            report.steps.push(step("search", text, started));
            return report;
        }
        Ok(Found::Nobody) => {
            report
                .steps
                .push(step("search", "no entry: unknown user".into(), started));
            return report;
        }
        Ok(Found::Several(n)) => {
            report.steps.push(step(
                "search",
                format!("{n} entries: ambiguous, refused (narrow ldap.filter or ldap.base)"),
                started,
            ));
            return report;
        }
        Err(e) => {
            report.steps.push(step("search", failed(&e), started));
            return report;
        }
    };
    let started = Instant::now();
    match directory.bind_user(&entry.dn, password).await {
        Ok(Bind::Accepted) => report
            .steps
            .push(step("bind", "password accepted".into(), started)),
        Ok(Bind::Refused) => {
            report.steps.push(step(
                "bind",
                "refused: wrong password or account locked".into(),
                started,
            ));
            return report;
        }
        Err(e) => {
            report.steps.push(step("bind", failed(&e), started));
            return report;
        }
    }
    report.accepted = true;
    let started = Instant::now();
    match directory.groups(&entry).await {
        Ok(groups) => {
            let text = if groups.is_empty() {
                "in no group".to_string()
            } else {
                groups.join(", ")
            };
            report.steps.push(step("groups", text, started));
        }
        Err(e) => report.steps.push(step("groups", failed(&e), started)),
    }
    report
}

fn step(name: &'static str, outcome: String, started: Instant) -> Step {
    Step {
        name,
        outcome,
        elapsed: started.elapsed(),
    }
}

fn failed(e: &Failure) -> String {
    format!("failed: {e}")
}
