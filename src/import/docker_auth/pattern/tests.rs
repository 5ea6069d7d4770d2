use super::*;

fn src(s: &str) -> Vec<Piece> {
    vec![Piece::Source(s.into())]
}

fn pattern(p: &str) -> String {
    p.into()
}

#[test]
fn globs_for_each_field() {
    use Translation::*;
    let cases = [
        ("ubuntu", Field::Name, Pattern(pattern("ubuntu"))),
        ("library/*", Field::Name, Pattern(pattern("library/*"))),
        ("library/**", Field::Name, Pattern(pattern("library/*"))),
        ("a?c", Field::Name, Pattern(pattern("a?c"))),
        ("lib\\.x", Field::Name, Pattern(pattern("lib.x"))),
        ("[ab]/x", Field::Name, Pattern(pattern("/[ab]/x/"))),
        ("Ubuntu", Field::Name, Never),
        ("/abs", Field::Name, Never),
        ("a[", Field::Name, Never),
        ("[]a]", Field::Name, Never),
        ("admin", Field::Account, Pattern(pattern("admin"))),
        ("anonymous", Field::Account, Pattern(pattern("/anonymous/"))),
        ("anonymous", Field::Group, Pattern(pattern("anonymous"))),
        ("*", Field::Account, Pattern(pattern("/[^/]*/"))),
        ("ci-*", Field::Group, Pattern(pattern("/ci-[^/]*/"))),
        ("[a\\-z]", Field::Account, Pattern(pattern("/[a\\-z]/"))),
        ("a\\*", Field::Account, Pattern(pattern("/a\\*/"))),
        ("[^x]?", Field::Account, Pattern(pattern("/[^x][^/]/"))),
    ];
    for (glob, field, expected) in cases {
        assert_eq!(
            translate(&src(glob), false, field),
            expected,
            "glob={glob:?} field={field:?}"
        );
    }
}

#[test]
fn regexes_are_anchored_only_when_that_keeps_their_meaning() {
    use Translation::*;
    let cases = [
        (".+", Any),
        (".*", Any),
        ("^admin$", Pattern(pattern("/^admin$/"))),
        ("^a|b$", Pattern(pattern("/(?s:.*)(?:^a|b$)(?s:.*)/"))),
        ("admin", Pattern(pattern("/(?s:.*)(?:admin)(?s:.*)/"))),
        ("^\\d+$", Pattern(pattern("/^[0-9]+$/"))),
    ];
    for (body, expected) in cases {
        assert_eq!(
            translate(&src(body), true, Field::Account),
            expected,
            "{body}"
        );
    }
    assert!(matches!(
        translate(&src("(a"), true, Field::Name),
        Inexpressible(_)
    ));
}

#[test]
fn placeholders_stay_for_the_gate_in_names_only() {
    let pieces = [Piece::Account, Piece::Source("/*".into())];
    assert_eq!(
        translate(&pieces, false, Field::Name),
        Translation::Pattern("${account}/*".into())
    );
    let pieces = [
        Piece::Source("team-".into()),
        Piece::Group,
        Piece::Source("/.*".into()),
    ];
    assert_eq!(
        translate(&pieces, true, Field::Name),
        Translation::Pattern("/(?s:.*)(?:team-${group}/.*)(?s:.*)/".into())
    );
    assert!(matches!(
        translate(&[Piece::Account], false, Field::Account),
        Translation::Inexpressible(_)
    ));
    // Anonymous: ${account} is the empty text, so "${account}/*" is "/*".
    let anonymous = [Piece::Literal(String::new()), Piece::Source("/*".into())];
    assert_eq!(
        translate(&anonymous, false, Field::Name),
        Translation::Never
    );
}

#[test]
fn matching_follows_go() {
    let cases = [
        ("*", false, "", true),
        ("*", false, "a/b", false),
        ("[a-c]", false, "b", true),
        ("[^a]", false, "/", true),
        ("?", false, "/", false),
        ("[a\\-z]", false, "b", false),
        ("[a\\-z]", false, "-", true),
        ("repo*", false, "repository", true),
        ("", false, "", true),
        ("a[", false, "a[", false),
        (".+", true, "", false),
        (".*", true, "", true),
        ("dmi", true, "admin", true),
        ("^dmi", true, "admin", false),
        ("\\d", true, "\u{0663}", false),
    ];
    for (p, regex, text, expected) in cases {
        assert_eq!(matches(&src(p), regex, text), expected, "{p:?} on {text:?}");
    }
}

#[test]
fn parts_split_at_replaced_placeholders_only() {
    use Part::*;
    assert_eq!(
        parts("${account}/x-${labels:team}"),
        [
            Placeholder(self::Placeholder::Account, "${account}"),
            Text("/x-"),
            Placeholder(self::Placeholder::Label("team"), "${labels:team}")
        ]
    );
    assert_eq!(parts("a${other}b"), [Text("a${other}b")]);
    assert_eq!(
        parts("${name:1}"),
        [Placeholder(self::Placeholder::Capture, "${name:1}")]
    );
    assert_eq!(parts("${unclosed"), [Text("${unclosed")]);
}
