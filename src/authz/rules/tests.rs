use super::*;
use crate::config::AuthzConfig;

/// Compiles `[authz]` written as TOML.
pub(super) fn compile(toml: &str) -> Result<Option<Rules>, Error> {
    let config: AuthzConfig = toml::from_str(toml).expect("test [authz] is valid TOML");
    Rules::compile(&config)
}

/// Compiles `[authz]` that must yield rules.
pub(super) fn ruleset(toml: &str) -> Rules {
    match compile(toml) {
        Ok(Some(rules)) => rules,
        Ok(None) => panic!("no rules from {toml}"),
        Err(e) => panic!("{e} from {toml}"),
    }
}

fn user(name: &str, groups: &[&str]) -> Identity {
    Identity {
        user: name.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

/// Who, what, then the expected rights (as displayed) and deciding rule (from 0).
type Case<'a> = (Option<Identity>, Request<'a>, &'a str, Option<usize>);

fn check(rules: &Rules, cases: &[Case<'_>]) {
    assert!(!cases.is_empty());
    for (who, request, rights, rule) in cases {
        let decision = rules.decide(who.as_ref(), *request);
        assert_eq!(
            (decision.rights.to_string().as_str(), decision.rule),
            (*rights, *rule),
            "who={who:?} request={request:?}"
        );
    }
}

fn repo(name: &str) -> Request<'_> {
    Request::Repository(name)
}

/// Backtracking reference matcher for name globs, for small inputs.
fn reference(pattern: &[char], text: &[char]) -> bool {
    match pattern {
        [] => text.is_empty(),
        ['*', '*', rest @ ..] => (0..=text.len()).any(|i| reference(rest, &text[i..])),
        ['*', rest @ ..] => (0..=text.len())
            .take_while(|&i| i == 0 || text[i - 1] != '/')
            .any(|i| reference(rest, &text[i..])),
        ['?', rest @ ..] => matches!(text, [c, ..] if *c != '/') && reference(rest, &text[1..]),
        [c, rest @ ..] => text.first() == Some(c) && reference(rest, &text[1..]),
    }
}

#[test]
fn name_globs() {
    let cases = [
        ("library/*", "library/alpine", true),
        ("library/*", "library/a/b", false),
        ("library/*", "library", false),
        ("library/**", "library/alpine", true),
        ("library/**", "library/a/b", true),
        ("library/**", "library", false),
        ("library/**", "library/", true),
        ("library/**", "libraryx/a", false),
        ("**", "a/b/c", true),
        ("**", "", true),
        ("*", "", true),
        ("*", "alpine", true),
        ("*", "a/b", false),
        ("*/*", "a/b", true),
        ("*/*", "a/b/c", false),
        ("**/alpine", "library/alpine", true),
        ("**/alpine", "a/b/alpine", true),
        ("**/alpine", "alpine", false),
        ("team-*/**", "team-a/app/web", true),
        ("team-*/**", "team-a", false),
        ("a?c", "abc", true),
        ("a?c", "a/c", false),
        ("a?c", "ac", false),
        ("a?c", "abbc", false),
        ("a.b", "a.b", true),
        ("a.b", "axb", false),
        ("***", "a/b", true),
        ("*a*", "banana", true),
        ("*a*", "b/a", false),
        ("library/alpine", "library/alpine", true),
        ("library/alpine", "library/alpinex", false),
        ("", "", true),
        ("", "a", false),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(
            Glob::name(pattern).matches(text),
            expected,
            "pattern={pattern:?} text={text:?}"
        );
    }
}

#[test]
fn account_globs() {
    let cases = [
        ("*", "alice", true),
        ("*", "", true),
        ("*", "dom/alice", true),
        ("**", "dom/alice", true),
        ("ci-*", "ci-bot", true),
        ("ci-*", "xci-bot", false),
        ("a?", "ab", true),
        ("a?", "a/", true),
        ("a?", "a", false),
        ("alice", "alice", true),
        ("alice", "Alice", false),
        ("a*b", "a*b", true),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(
            Glob::account(pattern).matches(text),
            expected,
            "pattern={pattern:?} text={text:?}"
        );
    }
}

/// Every name glob over a small alphabet, against every short text, agrees with the
/// backtracking reference.
#[test]
fn name_globs_agree_with_reference() {
    fn words(alphabet: &[char], max: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max {
            last = last
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }
    let patterns = words(&['a', '/', '*', '?'], 4);
    let texts = words(&['a', 'b', '/'], 4);
    let mut matched = 0;
    for pattern in &patterns {
        let glob = Glob::name(pattern);
        let p: Vec<char> = pattern.chars().collect();
        for text in &texts {
            let t: Vec<char> = text.chars().collect();
            let expected = reference(&p, &t);
            assert_eq!(
                glob.matches(text),
                expected,
                "pattern={pattern:?} text={text:?}"
            );
            matched += usize::from(expected);
        }
    }
    assert!(matched > 1000, "matched={matched}");
}

/// Patterns that make a backtracking matcher take exponential time finish at once:
/// the automaton does at most (text + 1) × (pattern + 1) steps (here ~10^6).
#[test]
fn pathological_globs_are_polynomial() {
    let text = "a".repeat(5_000);
    let cases = [
        (format!("{}b", "**a".repeat(100)), false),
        (format!("{}b", "*a".repeat(100)), false),
        (format!("{}*", "**a".repeat(100)), true),
        (format!("{}b", "?*".repeat(100)), false),
    ];
    for (pattern, expected) in cases {
        assert_eq!(
            Glob::name(&pattern).matches(&text),
            expected,
            "pattern={pattern:?}"
        );
        assert_eq!(
            Glob::account(&pattern).matches(&text),
            expected,
            "pattern={pattern:?}"
        );
    }
    let rules =
        ruleset(r#"rules = [{ name = "**a**a**a**a**a**a**a**a**b", actions = ["pull"] }]"#);
    let name = "a".repeat(255);
    check(
        &rules,
        &[(Some(user("alice", &[])), repo(&name), "nothing", None)],
    );
}

#[test]
fn issue_example() {
    let rules = ruleset(
        r#"rules = [
            { account = "admin", actions = ["*"] },
            { group = "pushers", name = "**", actions = ["pull", "push"] },
            { account = "*", name = "${account}/**", actions = ["pull", "push", "delete"] },
            { name = "library/**", actions = ["pull"] },
        ]"#,
    );
    let admin = Some(user("admin", &[]));
    let pusher = Some(user("carol", &["pushers"]));
    let alice = Some(user("alice", &[]));
    check(
        &rules,
        &[
            (
                admin.clone(),
                repo("any/thing"),
                "pull,push,delete,catalog",
                Some(0),
            ),
            (admin, Request::Catalog, "pull,push,delete,catalog", Some(0)),
            (pusher.clone(), repo("library/alpine"), "pull,push", Some(1)),
            (pusher.clone(), repo("carol/x"), "pull,push", Some(1)),
            (pusher, Request::Catalog, "nothing", None),
            (alice.clone(), repo("alice/x"), "pull,push,delete", Some(2)),
            (
                alice.clone(),
                repo("alice/x/y"),
                "pull,push,delete",
                Some(2),
            ),
            (alice.clone(), repo("alice"), "nothing", None),
            (alice.clone(), repo("bob/x"), "nothing", None),
            (alice.clone(), repo("library/alpine"), "pull", Some(3)),
            (alice, repo("library"), "nothing", None),
            (None, repo("library/alpine"), "nothing", None),
        ],
    );
    assert_eq!(rules.len(), 4);
    assert!(!rules.is_empty());
    assert!(!rules.allows_anonymous());
}

#[test]
fn regex_names() {
    let rules = ruleset(
        r#"rules = [
            { name = "/lib.*/", actions = ["pull"] },
            { name = "/a|b/", actions = ["push"] },
            { name = "/team-(a|b)(/.*)?/", actions = ["delete"] },
            { name = '/(?!secret/)x.*/', actions = ["pull", "push"] },
        ]"#,
    );
    let alice = || Some(user("alice", &[]));
    check(
        &rules,
        &[
            (alice(), repo("library/alpine"), "pull", Some(0)),
            (alice(), repo("mylib"), "nothing", None),
            (alice(), repo("a"), "push", Some(1)),
            (alice(), repo("ab"), "nothing", None),
            (alice(), repo("team-a"), "delete", Some(2)),
            (alice(), repo("team-b/x/y"), "delete", Some(2)),
            (alice(), repo("team-c"), "nothing", None),
            (alice(), repo("x/y"), "pull,push", Some(3)),
        ],
    );
}

#[test]
fn accounts_and_groups() {
    let rules = ruleset(
        r#"rules = [
            { account = "ci-*", actions = ["push"] },
            { account = "/ops[0-9]+/", actions = ["delete"] },
            { group = "dev*", actions = ["pull", "push"] },
            { group = "/qa|test/", actions = ["pull"] },
            { account = "*", name = "public/*", actions = ["pull"] },
        ]"#,
    );
    check(
        &rules,
        &[
            (Some(user("ci-bot", &["dev"])), repo("x"), "push", Some(0)),
            (Some(user("xci-bot", &[])), repo("x"), "nothing", None),
            (Some(user("ops12", &[])), repo("x"), "delete", Some(1)),
            (Some(user("ops12x", &[])), repo("x"), "nothing", None),
            (
                Some(user("bob", &["qa", "developers"])),
                repo("x"),
                "pull,push",
                Some(2),
            ),
            (Some(user("bob", &["test"])), repo("x"), "pull", Some(3)),
            (Some(user("bob", &["testers"])), repo("x"), "nothing", None),
            (Some(user("bob", &[])), repo("public/x"), "pull", Some(4)),
            (None, repo("public/x"), "nothing", None),
            (None, repo("x"), "nothing", None),
        ],
    );
}

#[test]
fn account_substitution() {
    let rules = ruleset(
        r#"rules = [
            { account = "*", name = "${account}/**", actions = ["pull", "push"] },
            { name = "/${account}-[0-9]+/", actions = ["delete"] },
        ]"#,
    );
    check(
        &rules,
        &[
            (
                Some(user("alice", &[])),
                repo("alice/x"),
                "pull,push",
                Some(0),
            ),
            (Some(user("alice", &[])), repo("bob/x"), "nothing", None),
            (Some(user("bob", &[])), repo("bob/x"), "pull,push", Some(0)),
            // Substituted text is literal in a glob and escaped in a regex.
            (Some(user("a*", &[])), repo("ab/x"), "nothing", None),
            (Some(user("a**", &[])), repo("a/b/x"), "nothing", None),
            (Some(user("a?", &[])), repo("ab/x"), "nothing", None),
            (Some(user("al.ce", &[])), repo("alice-1"), "nothing", None),
            (
                Some(user("alice", &[])),
                repo("alice-12"),
                "delete",
                Some(1),
            ),
            (Some(user("alice", &[])), repo("alice-x"), "nothing", None),
            (None, repo("alice/x"), "nothing", None),
        ],
    );
}

#[test]
fn group_substitution() {
    let rules = ruleset(
        r#"rules = [
            { group = "team-*", name = "${group}/**", actions = ["pull", "push"] },
            { name = "shared/${group}", actions = ["pull"] },
            { name = "/${group}\\.mirror/", actions = ["delete"] },
        ]"#,
    );
    let member = || Some(user("alice", &["admins", "team-a", "team-b"]));
    check(
        &rules,
        &[
            (member(), repo("team-a/app"), "pull,push", Some(0)),
            (member(), repo("team-b/app"), "pull,push", Some(0)),
            (member(), repo("team-c/app"), "nothing", None),
            // `${group}` only takes the groups that match the rule's `group`.
            (member(), repo("admins/app"), "nothing", None),
            (member(), repo("shared/admins"), "pull", Some(1)),
            (member(), repo("shared/team-b"), "pull", Some(1)),
            (member(), repo("admins.mirror"), "delete", Some(2)),
            (member(), repo("adminsxmirror"), "nothing", None),
            (Some(user("bob", &[])), repo("shared/bob"), "nothing", None),
            (Some(user("bob", &[])), repo("shared/"), "nothing", None),
            (None, repo("shared/team-a"), "nothing", None),
        ],
    );
}

#[test]
fn first_match_wins() {
    let rules = ruleset(
        r#"rules = [
            { account = "mallory", actions = [] },
            { name = "library/secret", actions = [] },
            { account = "*", actions = ["pull", "push"] },
            { account = "mallory", actions = ["*"] },
        ]"#,
    );
    check(
        &rules,
        &[
            (
                Some(user("mallory", &[])),
                repo("library/alpine"),
                "nothing",
                Some(0),
            ),
            (
                Some(user("alice", &[])),
                repo("library/secret"),
                "nothing",
                Some(1),
            ),
            (
                Some(user("alice", &[])),
                repo("library/alpine"),
                "pull,push",
                Some(2),
            ),
        ],
    );
}

#[test]
fn anonymous() {
    let rules = ruleset(
        r#"rules = [
            { account = "anonymous", name = "public/**", actions = ["pull"] },
            { account = "*", actions = ["pull", "push"] },
            { actions = ["delete"] },
        ]"#,
    );
    check(
        &rules,
        &[
            (None, repo("public/alpine"), "pull", Some(0)),
            (None, repo("private/alpine"), "nothing", None),
            (None, Request::Catalog, "nothing", None),
            // A user who logs in as `anonymous` is an authenticated user.
            (
                Some(user("anonymous", &[])),
                repo("private/x"),
                "pull,push",
                Some(1),
            ),
            (
                Some(user("alice", &[])),
                repo("public/alpine"),
                "pull,push",
                Some(1),
            ),
        ],
    );
    assert!(rules.allows_anonymous());

    // No other rule opens anything to anonymous clients.
    let closed = [
        (r#"rules = [{ account = "*", actions = ["pull"] }]"#, None),
        (
            r#"rules = [{ account = "/.*/", actions = ["pull"] }]"#,
            None,
        ),
        (r#"rules = [{ account = "?*", actions = ["pull"] }]"#, None),
        (r#"rules = [{ actions = ["*"] }]"#, None),
        (
            r#"rules = [{ account = "anonymous", actions = [] }]"#,
            Some(0),
        ),
        (r#"push_group = "pushers""#, None),
    ];
    for (toml, rule) in closed {
        let rules = ruleset(toml);
        assert!(!rules.allows_anonymous(), "{toml}");
        let decision = rules.decide(None, repo("x"));
        assert_eq!(
            (decision.rights, decision.rule),
            (Rights::NONE, rule),
            "{toml}"
        );
    }
}

#[test]
fn catalog() {
    let rules = ruleset(
        r#"rules = [
            { account = "bob", actions = [] },
            { account = "alice", name = "team-a/**", actions = ["pull"] },
            { account = "alice", name = "team-a/**", actions = ["pull", "catalog"] },
            { name = "${account}/**", actions = ["*"] },
            { name = "${group}/**", actions = ["catalog"] },
            { account = "anonymous", actions = ["catalog"] },
        ]"#,
    );
    check(
        &rules,
        &[
            // The first rule with `catalog` decides; its name is ignored.
            (
                Some(user("alice", &[])),
                Request::Catalog,
                "pull,catalog",
                Some(2),
            ),
            // A deny rule without `catalog` does not hide the catalog.
            (
                Some(user("bob", &[])),
                Request::Catalog,
                "pull,push,delete,catalog",
                Some(3),
            ),
            (Some(user("bob", &[])), repo("bob/x"), "nothing", Some(0)),
            (None, Request::Catalog, "catalog", Some(5)),
        ],
    );
    // `${group}` needs a group even though the name is ignored; rules without
    // `catalog` are skipped.
    let groups = ruleset(
        r#"rules = [
            { name = "${group}/**", actions = ["catalog"] },
            { account = "*", actions = ["pull"] },
        ]"#,
    );
    check(
        &groups,
        &[
            (
                Some(user("carol", &["dev"])),
                Request::Catalog,
                "catalog",
                Some(0),
            ),
            (Some(user("carol", &[])), Request::Catalog, "nothing", None),
            (Some(user("carol", &[])), repo("dev/x"), "pull", Some(1)),
        ],
    );
}

#[test]
fn push_group() {
    let rules = ruleset(r#"push_group = "pushers""#);
    let member = || Some(user("carol", &["devs", "pushers"]));
    let other = || Some(user("dave", &["devs"]));
    check(
        &rules,
        &[
            (
                member(),
                repo("library/alpine"),
                "pull,push,delete,catalog",
                Some(0),
            ),
            (
                member(),
                Request::Catalog,
                "pull,push,delete,catalog",
                Some(0),
            ),
            (other(), repo("library/alpine"), "pull,catalog", Some(1)),
            (other(), Request::Catalog, "pull,catalog", Some(1)),
            // The group name is literal, not a pattern.
            (
                Some(user("eve", &["pushersx"])),
                repo("x"),
                "pull,catalog",
                Some(1),
            ),
            (None, repo("library/alpine"), "nothing", None),
            (None, Request::Catalog, "nothing", None),
        ],
    );
    assert_eq!(rules.len(), 2);
    assert!(!rules.allows_anonymous());
    assert_eq!(
        rules.describe(0),
        r#"authz.push_group = "pushers" (rule 1 of 2): { group = "pushers", actions = ["pull", "push", "delete", "catalog"] } # members of the push group pull, push, delete and list the catalog"#
    );
    assert_eq!(
        rules.describe(1),
        r#"authz.push_group = "pushers" (rule 2 of 2): { account = "*", actions = ["pull", "catalog"] } # every authenticated user pulls and lists the catalog"#
    );
    let glob = ruleset(r#"push_group = "dev*""#);
    check(
        &glob,
        &[(
            Some(user("x", &["developers"])),
            repo("x"),
            "pull,catalog",
            Some(1),
        )],
    );
}
