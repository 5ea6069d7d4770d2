use crate::authz::rules::tests::ruleset;

#[test]
fn describe() {
    let rules = ruleset(
        r#"rules = [
            { group = "pushers", name = "**", actions = ["pull", "push"], comment = "CI and\nrelease" },
            { account = "a\"b\\c", actions = [] },
        ]"#,
    );
    assert_eq!(
        rules.describe(0),
        r#"authz.rules[1]: { group = "pushers", name = "**", actions = ["pull", "push"] } # CI and release"#
    );
    assert_eq!(
        rules.describe(1),
        r#"authz.rules[2]: { account = "a\"b\\c", actions = [] }"#
    );
    assert_eq!(rules.describe(2), "authz.rules[3]: no such rule");
}
