//! serde's and toml's type errors (`invalid type: string "many", expected usize`)
//! said in plain words (`must be a whole number from 0 to 18446744073709551615, not
//! the string "many"`), with a hint when the fix is plain (quotes, brackets).
//! Every other message passes through unchanged.

/// `message` in plain words, when it is a type error; else as it is.
pub fn plain(message: &str) -> String {
    let message = message.trim();
    if message == "wanted string or table" {
        // toml's word for an enum key given a number, list or boolean.
        return "must be one of the names this key takes, as a string in quotes".into();
    }
    if message.contains("did not match any variant of untagged enum LdapUrls") {
        return "must be a URL in quotes, or a list of them, like \
                [\"ldaps://dc1.example\", \"ldaps://dc2.example\"]"
            .into();
    }
    let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    else {
        return message.to_string();
    };
    let Some((got, expected)) = rest.rsplit_once(", expected ") else {
        return message.to_string();
    };
    let Some(want) = expectation(expected) else {
        return message.to_string();
    };
    let got = Got::parse(got);
    let mut text = format!("must be {want}, not {}", got.words());
    if let Some(hint) = hint(&got, expected) {
        text.push_str("; ");
        text.push_str(&hint);
    }
    text
}

/// What serde's `expected ...` asks for, in words; `None` when it is not one of
/// the types the config uses.
fn expectation(expected: &str) -> Option<String> {
    let whole = |min: i128, max: i128| format!("a whole number from {min} to {max}");
    let words = match expected {
        "u8" => whole(0, u8::MAX.into()),
        "u16" => whole(0, u16::MAX.into()),
        "u32" => whole(0, u32::MAX.into()),
        "u64" => whole(0, u64::MAX.into()),
        "usize" => whole(0, i128::try_from(usize::MAX).ok()?),
        "i8" => whole(i8::MIN.into(), i8::MAX.into()),
        "i16" => whole(i16::MIN.into(), i16::MAX.into()),
        "i32" => whole(i32::MIN.into(), i32::MAX.into()),
        "i64" | "i128" | "u128" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" | "a borrowed string" | "a character" => "a string".into(),
        "path string" => "a path (a string in quotes)".into(),
        "a sequence" => "a list".into(),
        "a map" => "a table".into(),
        s if s.starts_with("struct ") => "a table".into(),
        _ => return None,
    };
    Some(words)
}

/// The value serde got, from its `Unexpected` text.
enum Got {
    Text(String),
    Number(String),
    Bool(String),
    Other(String),
}

impl Got {
    fn parse(got: &str) -> Got {
        let quoted = |p: &str| got.strip_prefix(p).map(|v| v.trim_matches('`').to_string());
        if let Some(s) = got.strip_prefix("string ") {
            return Got::Text(s.to_string());
        }
        if let Some(n) = quoted("integer ").or_else(|| quoted("floating point ")) {
            return Got::Number(n);
        }
        if let Some(b) = quoted("boolean ") {
            return Got::Bool(b);
        }
        Got::Other(match got {
            "sequence" => "a list".into(),
            "map" => "a table".into(),
            other => other.to_string(),
        })
    }

    fn words(&self) -> String {
        match self {
            Got::Text(s) => format!("the string {s}"),
            Got::Number(v) | Got::Bool(v) | Got::Other(v) => v.clone(),
        }
    }
}

/// The fix, when the value is right but written as the wrong type.
fn hint(got: &Got, expected: &str) -> Option<String> {
    let numeric = expected.starts_with(['u', 'i', 'f']) && expected.len() <= 5;
    match got {
        Got::Text(s) => {
            let inner = s.strip_prefix('"')?.strip_suffix('"')?;
            let bare: Option<toml::Value> = toml::from_str::<toml::Table>(&format!("v = {inner}"))
                .ok()
                .and_then(|mut t| t.remove("v"));
            match (bare, expected) {
                (Some(toml::Value::Integer(_) | toml::Value::Float(_)), _) if numeric => {
                    Some(format!("write it without quotes: {inner}"))
                }
                (Some(toml::Value::Boolean(_)), "a boolean") => {
                    Some(format!("write it without quotes: {inner}"))
                }
                (_, "a sequence") => Some(format!("write it in brackets: [{s}]")),
                _ => None,
            }
        }
        Got::Number(v) | Got::Bool(v) if matches!(expected, "a string" | "path string") => {
            Some(format!("put it in quotes: \"{v}\""))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn type_errors_read_as_plain_words_with_a_hint() {
        let max = u64::MAX;
        let cases = [
            (
                "invalid type: string \"many\", expected usize",
                format!("must be a whole number from 0 to {max}, not the string \"many\""),
            ),
            (
                "invalid value: integer `-1`, expected usize",
                format!("must be a whole number from 0 to {max}, not -1"),
            ),
            (
                "invalid type: string \"64\", expected i64",
                "must be a whole number, not the string \"64\"; write it without quotes: 64".into(),
            ),
            (
                "invalid type: floating point `1.5`, expected u32",
                "must be a whole number from 0 to 4294967295, not 1.5".into(),
            ),
            (
                "invalid type: string \"yes\", expected a boolean",
                "must be true or false, not the string \"yes\"".into(),
            ),
            (
                "invalid type: string \"false\", expected a boolean",
                "must be true or false, not the string \"false\"; write it without quotes: false"
                    .into(),
            ),
            (
                "invalid type: integer `5`, expected a string",
                "must be a string, not 5; put it in quotes: \"5\"".into(),
            ),
            (
                "invalid type: integer `5`, expected path string",
                "must be a path (a string in quotes), not 5; put it in quotes: \"5\"".into(),
            ),
            (
                "invalid type: string \"10.0.0.0/8\", expected a sequence",
                "must be a list, not the string \"10.0.0.0/8\"; write it in brackets: \
                 [\"10.0.0.0/8\"]"
                    .into(),
            ),
            (
                "invalid type: integer `5`, expected a map",
                "must be a table, not 5".into(),
            ),
            (
                "invalid type: integer `5`, expected struct TlsConfig",
                "must be a table, not 5".into(),
            ),
            (
                "invalid type: sequence, expected a string",
                "must be a string, not a list".into(),
            ),
            (
                "wanted string or table",
                "must be one of the names this key takes, as a string in quotes".into(),
            ),
            // Not a type error, or a type the config does not use: unchanged.
            (
                "unknown field `x`, expected `a` or `b`",
                "unknown field `x`, expected `a` or `b`".into(),
            ),
            (
                "invalid type: integer `5`, expected something odd",
                "invalid type: integer `5`, expected something odd".into(),
            ),
        ];
        for (serde, want) in cases {
            assert_eq!(plain(serde), want, "serde={serde:?}");
        }
    }
}
