use super::*;

/// The lines of `bytes` as (number, text, content), the text cut out of `bytes`.
fn read(bytes: &[u8]) -> Vec<(usize, &[u8], Content<'_>)> {
    lines(bytes)
        .map(|line| (line.number, &bytes[line.text], line.content))
        .collect()
}

#[test]
fn every_kind_of_line_with_its_number_and_text() {
    let bytes = b"\xEF\xBB\xBFalice:{PLAIN}a\r\n  # note\n\n bob:{SHA}x:extra \r\n\xFF:x\nnocolon\n:nouser\ncarol:";
    let entry = |user, hash| Content::Entry { user, hash };
    assert_eq!(
        read(bytes),
        vec![
            (1, &b"alice:{PLAIN}a"[..], entry("alice", "{PLAIN}a")),
            (2, &b"  # note"[..], Content::Blank),
            (3, &b""[..], Content::Blank),
            (4, &b" bob:{SHA}x:extra "[..], entry("bob", "{SHA}x")),
            (5, &b"\xFF:x"[..], Content::Invalid(Reason::NotUtf8)),
            (6, &b"nocolon"[..], Content::Invalid(Reason::MissingColon)),
            (7, &b":nouser"[..], Content::Invalid(Reason::EmptyUser)),
            (8, &b"carol:"[..], entry("carol", "")),
        ],
        "bytes={bytes:?}"
    );
}

#[test]
fn a_byte_order_mark_counts_only_at_the_start() {
    let bytes = b"a:1\n\xEF\xBB\xBFb:2\n";
    let lines = read(bytes);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[1],
        (
            2,
            &b"\xEF\xBB\xBFb:2"[..],
            Content::Entry {
                user: "\u{FEFF}b",
                hash: "2"
            }
        ),
        "{lines:?}"
    );
}
