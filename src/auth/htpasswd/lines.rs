//! The one reading of an htpasswd file's lines, shared by the loader
//! ([`super::Htpasswd::parse_bytes`]) and the `htpasswd` subcommand's editor
//! ([`super::edit`]), so that the line the editor replaces is the line the gate reads as
//! the user's. The rules are in the [`super`] module docs.

use std::ops::Range;

use super::Reason;

/// A UTF-8 byte-order mark, allowed at the start of the file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One line of an htpasswd file.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Line<'a> {
    /// The line's number, counting from 1.
    pub(super) number: usize,
    /// Where the line's text is in the file: without a byte-order mark, the `\r` of a
    /// `\r\n` ending or the `\n`, but with any other surrounding whitespace.
    pub(super) text: Range<usize>,
    /// What the line holds.
    pub(super) content: Content<'a>,
}

/// What one line of the file holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Content<'a> {
    /// A blank or comment line.
    Blank,
    /// A line that names no user.
    Invalid(Reason),
    /// A user and its (unparsed) hash field: the text after the first `:` up to the next.
    Entry {
        /// The user name, before the first `:`; never empty.
        user: &'a str,
        /// The hash field.
        hash: &'a str,
    },
}

/// The lines of `bytes`, in order, each with its number, range and content.
pub(super) fn lines(bytes: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut start = 0;
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(move |(index, line)| {
            let mut text = start..start + line.len();
            start = text.end + 1;
            if index == 0 && line.starts_with(BOM) {
                text.start += BOM.len();
            }
            if bytes[text.clone()].ends_with(b"\r") {
                text.end -= 1;
            }
            let content = content(&bytes[text.clone()]);
            Line {
                number: index + 1,
                text,
                content,
            }
        })
}

/// Reads one line's text (without its line ending).
fn content(text: &[u8]) -> Content<'_> {
    let text = text.trim_ascii();
    if text.is_empty() || text.starts_with(b"#") {
        return Content::Blank;
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return Content::Invalid(Reason::NotUtf8);
    };
    match text.split_once(':') {
        None => Content::Invalid(Reason::MissingColon),
        Some(("", _)) => Content::Invalid(Reason::EmptyUser),
        Some((user, rest)) => Content::Entry {
            user,
            hash: rest.split_once(':').map_or(rest, |(hash, _extra)| hash),
        },
    }
}

#[cfg(test)]
mod tests;
