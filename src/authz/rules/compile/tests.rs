use super::*;
use crate::authz::rules::tests::compile;

#[test]
fn nothing_to_compile() {
    assert!(matches!(compile(""), Ok(None)));
    assert!(matches!(compile("[groups]\nops = [\"alice\"]"), Ok(None)));
}

#[test]
fn compile_errors() {
    let cases = [
        (
            r#"rules = [{ actions = ["pull"] }, { actions = ["pull", "pul"] }]"#,
            r#"authz.rules[2].actions: unknown action "pul" (expected pull, push, delete, catalog or *)"#,
        ),
        (
            r#"rules = [{ actions = ["Pull"] }]"#,
            r#"authz.rules[1].actions: unknown action "Pull" (expected pull, push, delete, catalog or *)"#,
        ),
        (
            r#"rules = [{ name = "${user}/**", actions = ["pull"] }]"#,
            r#"authz.rules[1].name: unknown substitution "${user}" in "${user}/**" (expected ${account} or ${group})"#,
        ),
        (
            r#"rules = [{ name = "/${Account}/", actions = ["pull"] }]"#,
            r#"authz.rules[1].name: unknown substitution "${Account}" in "/${Account}/" (expected ${account} or ${group})"#,
        ),
        (
            r#"rules = [{ name = "${account/**", actions = ["pull"] }]"#,
            r#"authz.rules[1].name: unclosed substitution in "${account/**""#,
        ),
        (
            r#"rules = [{ account = "${account}", actions = ["pull"] }]"#,
            r#"authz.rules[1].account: substitution is only allowed in name: "${account}""#,
        ),
        (
            r#"rules = [{ group = "${group}", actions = ["pull"] }]"#,
            r#"authz.rules[1].group: substitution is only allowed in name: "${group}""#,
        ),
        (
            r#"rules = [{ actions = [] }, { name = "/lib[/", actions = ["pull"] }]"#,
            r#"authz.rules[2].name: invalid regex "/lib[/""#,
        ),
        (
            r#"rules = [{ account = "/(/", actions = ["pull"] }]"#,
            r#"authz.rules[1].account: invalid regex "/(/""#,
        ),
        (
            r#"rules = [{ group = "/a)|(b/", actions = ["pull"] }]"#,
            r#"authz.rules[1].group: invalid regex "/a)|(b/""#,
        ),
        (
            r#"rules = [{ name = "/${account})|(x/", actions = ["pull"] }]"#,
            r#"authz.rules[1].name: invalid regex "/${account})|(x/""#,
        ),
        (
            r#"rules = [{ name = "", actions = ["pull"] }]"#,
            r#"authz.rules[1].name: empty pattern """#,
        ),
        (
            r#"rules = [{ name = "//", actions = ["pull"] }]"#,
            r#"authz.rules[1].name: empty pattern "//""#,
        ),
        (
            r#"rules = [{ account = "", actions = ["pull"] }]"#,
            r#"authz.rules[1].account: empty pattern """#,
        ),
        (
            r#"rules = [{ group = "//", actions = ["pull"] }]"#,
            r#"authz.rules[1].group: empty pattern "//""#,
        ),
        (
            r#"rules = [{ name = "Library/**", actions = ["pull"] }]"#,
            r#"authz.rules[1].name: 'L' cannot occur in a repository name (only a-z, 0-9, '.', '_', '-', '/'), so "Library/**" never matches"#,
        ),
        (
            r#"rules = [{ account = "anonymous", group = "x", actions = ["pull"] }]"#,
            r#"authz.rules[1]: never applies: account = "anonymous" with a group (anonymous clients have no groups)"#,
        ),
        (
            r#"rules = [{ account = "anonymous", name = "${account}/**", actions = ["pull"] }]"#,
            r#"authz.rules[1]: never applies: account = "anonymous" with ${account} or ${group} in name (anonymous clients have neither)"#,
        ),
        (
            "push_group = \"p\"\nrules = [{ actions = [\"pull\"] }]",
            "authz.push_group: set either push_group or rules, not both",
        ),
        (r#"push_group = """#, "authz.push_group: empty group name"),
    ];
    for (toml, expected) in cases {
        match compile(toml) {
            Err(e) => assert_eq!(e.to_string(), expected, "{toml}"),
            Ok(_) => panic!("compiled: {toml}"),
        }
    }
}

#[test]
fn regex_errors_keep_their_source() {
    let Err(e) = compile(r#"rules = [{ name = "/a[/", actions = ["pull"] }]"#) else {
        panic!("compiled a bad regex");
    };
    assert!(
        matches!(
            e,
            Error::Regex {
                rule: 1,
                field: "name",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(std::error::Error::source(&e).is_some(), "{e:?}");
}
