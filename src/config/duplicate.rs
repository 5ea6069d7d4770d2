//! toml says only "duplicate key", at the second of the two. This finds the first, so
//! that the error names the table (or key) and both lines.

/// The message for a "duplicate key" error on 1-based `line` of `text`: a table
/// header written twice, or a key set twice in one table; `None` when the line is
/// neither (toml's own message then stands).
pub fn message(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let earlier = &lines[..line - 1];
    if let Some(name) = header(here) {
        let first = earlier.iter().position(|l| header(l) == Some(name));
        return Some(match first {
            Some(i) => format!(
                "duplicate table [{name}] (at line {} and line {line}): write all its keys \
                 under one [{name}]",
                i + 1
            ),
            None => format!(
                "duplicate table [{name}]: it is already set above as a key; write all its \
                 keys under one [{name}]"
            ),
        });
    }
    let key = key(here)?;
    // The first setting is in the same table: after the last header above this line.
    let table_start = earlier
        .iter()
        .rposition(|l| header(l).is_some())
        .map_or(0, |i| i + 1);
    let first = (table_start..earlier.len()).find(|&i| self::key(earlier[i]) == Some(key))?;
    Some(format!(
        "duplicate key (at line {} and line {line}): keep one of them",
        first + 1
    ))
}

/// The table name of a `[name]` or `[[name]]` header line.
fn header(line: &str) -> Option<&str> {
    let l = line.trim();
    let l = l.split_once('#').map_or(l, |(h, _)| h).trim();
    let inner = l.strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(inner);
    Some(inner.trim())
}

/// The key of a `key = value` line.
fn key(line: &str) -> Option<&str> {
    let l = line.trim();
    if l.starts_with(['#', '[']) {
        return None;
    }
    l.split_once('=').map(|(k, _)| k.trim())
}

#[cfg(test)]
mod tests {
    use super::message;

    #[test]
    fn both_places_are_named() {
        let text = "[tls]\ncert = \"a\"\n\n[upstream]\nurl = \"x\"\n[tls]  # again\nkey = \"b\"\n";
        assert_eq!(
            message(text, 6).as_deref(),
            Some(
                "duplicate table [tls] (at line 1 and line 6): write all its keys under one [tls]"
            )
        );
        let text = "[tls]\ncert = \"a\"\n[[tls]]\n";
        assert!(
            message(text, 3).is_some_and(|m| m.starts_with("duplicate table [tls] (at line 1")),
            "{:?}",
            message(text, 3)
        );
        let text = "cert = 1\n[tls]\ncert = \"a\"\nkey = \"k\"\ncert = \"b\"\n";
        assert_eq!(
            message(text, 5).as_deref(),
            Some("duplicate key (at line 3 and line 5): keep one of them")
        );
        let text = "tls = { cert = \"a\" }\n[tls]\n";
        assert!(
            message(text, 2).is_some_and(|m| m.contains("already set above as a key")),
            "{:?}",
            message(text, 2)
        );
        assert_eq!(message("x = 1\n", 7), None);
        assert_eq!(message("x = 1\n", 0), None);
    }
}
