//! The config's error type, and the rendering of toml's errors as one line that
//! names the file, line, column and key.

use std::path::{Path, PathBuf};

use super::{duplicate, env, words, Config, Override};

/// Errors from reading or checking the config file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read config file {}: {error}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The TOML is malformed or a value is invalid, at a known place.
    #[error("{}line {line}, column {column}: {key}{message}", prefix(path))]
    Parse {
        /// The config file, if read from one.
        path: Option<PathBuf>,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column of the offending text.
        column: usize,
        /// `section.key: ` when the offending line is a key, else empty.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// An environment override is unusable, or the config with overrides applied
    /// is invalid.
    #[error("{var}: {message}")]
    Env {
        /// The variable, or the variables applied when the error cannot be pinned on one.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A check across keys failed.
    #[error("{}{key}: {message}", prefix(path))]
    Invalid {
        /// The config file, if read from one.
        path: Option<PathBuf>,
        /// The dotted key path, such as `upstream.ca`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn prefix(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!("{}: ", p.display()),
        None => String::new(),
    }
}

impl Error {
    pub(super) fn with_path(self, p: &Path) -> Error {
        let path = Some(p.to_path_buf());
        match self {
            Error::Parse {
                line,
                column,
                key,
                message,
                ..
            } => Error::Parse {
                path,
                line,
                column,
                key,
                message,
            },
            Error::Invalid { key, message, .. } => Error::Invalid { path, key, message },
            e @ (Error::Read { .. } | Error::Env { .. }) => e,
        }
    }
}

/// Blames an error of the merged config on the file, with its line, when the file
/// alone fails the same way on a key no override sets; else on the one override
/// that alone fails the same way, or on all of them.
pub(super) fn merged_error(text: &str, overrides: &[Override], e: &toml::de::Error) -> Error {
    let message = words::plain(e.message());
    if let Err(located @ Error::Parse { .. }) = Config::from_toml_str(text) {
        if let Error::Parse {
            key, message: m, ..
        } = &located
        {
            let overridden = overrides
                .iter()
                .any(|o| key.starts_with(&format!("{}: ", o.key_path())));
            if *m == message && !overridden {
                return located;
            }
        }
    }
    let culprit = overrides
        .iter()
        .find(|o| alone_fails_with(text, o, &message));
    let var = match culprit {
        Some(o) => o.var.clone(),
        None => overrides
            .iter()
            .map(|o| o.var.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    };
    Error::Env { var, message }
}

/// Whether the file with this one override set fails with `message`: then the
/// error is that variable's, and only it is named.
fn alone_fails_with(text: &str, o: &Override, message: &str) -> bool {
    let Ok(mut table) = toml::from_str::<toml::Table>(text) else {
        return false;
    };
    if env::apply(&mut table, std::slice::from_ref(o)).is_err() {
        return false;
    }
    match toml::Value::Table(table).try_into::<Config>() {
        Err(e) => words::plain(e.message()) == message,
        Ok(_) => false,
    }
}

/// Turns a toml error into one line: where, which key, what.
pub(super) fn parse_error(text: &str, e: &toml::de::Error) -> Error {
    let rule = super::oidc::bad_rule_at(text, e.message());
    let mut offset = rule
        .or(e.span().map(|s| s.start))
        .unwrap_or(0)
        .min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let section = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    let key = match line_text.split_once('=') {
        // An inline table of `rules = [...]`, named by its own line.
        _ if rule.is_some() => "oidc.rules: ".to_owned(),
        Some((k, _)) if !line_text.trim_start().starts_with('[') => match section {
            Some(s) => format!("{s}.{}: ", k.trim()),
            None => format!("{}: ", k.trim()),
        },
        _ => String::new(),
    };
    let message = match e.message().trim() {
        "duplicate key" => duplicate::message(text, line),
        _ => None,
    };
    Error::Parse {
        path: None,
        line,
        column,
        key,
        message: message.unwrap_or_else(|| words::plain(e.message())),
    }
}
