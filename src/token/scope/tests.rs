use super::*;
use crate::config::AuthzConfig;

fn scope(resource_type: &str, class: Option<&str>, name: &str, actions: &[&str]) -> Scope {
    Scope {
        resource_type: resource_type.to_owned(),
        resource_class: class.map(str::to_owned),
        name: name.to_owned(),
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn repo(name: &str, actions: &[&str]) -> Scope {
    scope(REPOSITORY, None, name, actions)
}

fn invalid(scope: &str, problem: Problem) -> Error {
    Error::Invalid {
        scope: scope.to_owned(),
        problem,
    }
}

#[test]
fn parses() {
    let cases: &[(&[&str], Vec<Scope>)] = &[
        (
            &["repository:samalba/my-app:pull"],
            vec![repo("samalba/my-app", &["pull"])],
        ),
        (
            &["repository:samalba/my-app:pull,push"],
            vec![repo("samalba/my-app", &["pull", "push"])],
        ),
        (
            &["repository(plugin):samalba/my-plugin:pull"],
            vec![scope(
                REPOSITORY,
                Some("plugin"),
                "samalba/my-plugin",
                &["pull"],
            )],
        ),
        (
            &["repository:localhost:5000/foo/bar:pull,push"],
            vec![repo("localhost:5000/foo/bar", &["pull", "push"])],
        ),
        (
            &["registry:catalog:*"],
            vec![scope(REGISTRY, None, CATALOG, &["*"])],
        ),
        (
            &["repository:a:pull repository:b:push"],
            vec![repo("a", &["pull"]), repo("b", &["push"])],
        ),
        (
            &["repository:a:pull", "repository:b:push registry:catalog:*"],
            vec![
                repo("a", &["pull"]),
                repo("b", &["push"]),
                scope(REGISTRY, None, CATALOG, &["*"]),
            ],
        ),
        (
            &["  repository:a:pull   repository:b:push ", " ", ""],
            vec![repo("a", &["pull"]), repo("b", &["push"])],
        ),
        (&[], vec![]),
        (&[""], vec![]),
        // Unknown words and repeats are kept; granting decides.
        (
            &["repository:a:pull,frobnicate,*,pull"],
            vec![repo("a", &["pull", "frobnicate", "*", "pull"])],
        ),
        // The name is not held to the grammar; granting decides.
        (
            &["repository:Example.com/A:pull"],
            vec![repo("Example.com/A", &["pull"])],
        ),
        (&["repository:a:b:c:pull"], vec![repo("a:b:c", &["pull"])]),
        (
            &["x1(y2):n,m:pull"],
            vec![scope("x1", Some("y2"), "n,m", &["pull"])],
        ),
    ];
    for (params, want) in cases {
        let got = parse_scopes(params.iter().copied());
        assert_eq!(got.as_ref(), Ok(want), "params={params:?}");
    }
}

#[test]
fn refuses() {
    let cases: &[(&str, Problem)] = &[
        ("repository", Problem::Shape),
        ("repository:foo", Problem::Shape),
        ("repository::pull", Problem::EmptyName),
        (":foo:pull", Problem::Type("".into())),
        ("Repository:foo:pull", Problem::Type("Repository".into())),
        ("repo-sitory:foo:pull", Problem::Type("repo-sitory".into())),
        ("repo.sitory:foo:pull", Problem::Type("repo.sitory".into())),
        (
            "repository(plugin:foo:pull",
            Problem::Type("repository(plugin".into()),
        ),
        (
            "repository():foo:pull",
            Problem::Type("repository()".into()),
        ),
        ("(plugin):foo:pull", Problem::Type("(plugin)".into())),
        (
            "repository(Plugin):foo:pull",
            Problem::Type("repository(Plugin)".into()),
        ),
        (
            "repository(a)(b):foo:pull",
            Problem::Type("repository(a)(b)".into()),
        ),
        ("repository:foo:", Problem::EmptyAction),
        ("repository:foo:pull,", Problem::EmptyAction),
        ("repository:foo:pull,,push", Problem::EmptyAction),
        ("repository:foo:,pull", Problem::EmptyAction),
        ("repository:foo:Pull", Problem::Action("Pull".into())),
        ("repository:foo:pu*ll", Problem::Action("pu*ll".into())),
        ("repository:foo:**", Problem::Action("**".into())),
        ("repository:foo:pull2", Problem::Action("pull2".into())),
        ("repository:f\u{f6}o:pull", Problem::NameCharacter('\u{f6}')),
        ("repository:foo\t:pull", Problem::NameCharacter('\t')),
    ];
    for (text, problem) in cases {
        let got = parse_scopes([*text]);
        assert_eq!(got, Err(invalid(text, problem.clone())), "text={text:?}");
    }
    // The error names the offending scope among good ones.
    assert_eq!(
        parse_scopes(["repository:a:pull", "repository:b:push repository:c:PUSH"]),
        Err(invalid("repository:c:PUSH", Problem::Action("PUSH".into())))
    );
}

#[test]
fn bounds() {
    let sized = |len: usize| format!("repository:{}:pull", "a".repeat(len - 16));
    assert_eq!(sized(MAX_SCOPE_LEN).len(), MAX_SCOPE_LEN);
    let at_limit = sized(MAX_SCOPE_LEN);
    assert_eq!(parse_scopes([at_limit.as_str()]).map(|s| s.len()), Ok(1));
    let over = sized(MAX_SCOPE_LEN + 1);
    assert_eq!(
        parse_scopes([over.as_str()]),
        Err(Error::TooLong {
            start: format!("repository:{}", "a".repeat(29)),
            len: MAX_SCOPE_LEN + 1,
        })
    );

    let many = |n: usize| vec!["repository:a:pull"; n].join(" ");
    let at_limit = many(MAX_SCOPES);
    assert_eq!(
        parse_scopes([at_limit.as_str()]).map(|s| s.len()),
        Ok(MAX_SCOPES)
    );
    let over = many(MAX_SCOPES + 1);
    assert_eq!(parse_scopes([over.as_str()]), Err(Error::TooMany));
    // Counted over all parameters, and what follows the limit is not read.
    let half = many(MAX_SCOPES / 2);
    let params = [half.as_str(), half.as_str(), "not a scope"];
    assert_eq!(parse_scopes(params), Err(Error::TooMany));
}

#[test]
fn error_messages() {
    let cases = [
        (
            parse_scopes(["repository:a:pull,"]),
            "invalid scope \"repository:a:pull,\": empty action",
        ),
        (
            parse_scopes(["Repository:a:pull"]),
            "invalid scope \"Repository:a:pull\": resource type \"Repository\" is not \
             [a-z0-9]+ with an optional ([a-z0-9]+) class",
        ),
        (
            parse_scopes(["repository"]),
            "invalid scope \"repository\": expected type:name:actions",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got.map_err(|e| e.to_string()), Err(want.to_owned()));
    }
    let over = "a".repeat(MAX_SCOPE_LEN + 1);
    let want = format!("scope \"{}\"... is 513 bytes, more than 512", &over[..40]);
    assert_eq!(Scope::parse(&over).map_err(|e| e.to_string()), Err(want));
}

#[test]
fn display_round_trips() {
    let texts = [
        "repository:samalba/my-app:pull",
        "repository:samalba/my-app:pull,push",
        "repository(plugin):samalba/my-plugin:pull,push",
        "repository:localhost:5000/foo/bar:pull,push",
        "registry:catalog:*",
        "repository:a:b:c:pull,pull,frobnicate",
    ];
    for text in texts {
        let scope = Scope::parse(text).expect("valid scope");
        assert_eq!(scope.to_string(), text);
        assert_eq!(Scope::parse(&scope.to_string()), Ok(scope), "text={text:?}");
    }
}

/// No `[authz]`.
const NO_RULES: &str = "";
const PUSH_GROUP: &str = r#"push_group = "pushers""#;
const PER_REPOSITORY: &str = r#"
    rules = [
      { account = "anonymous", name = "public/**", actions = ["pull", "push"] },
      { name = "${account}/**", actions = ["pull", "push", "delete"] },
      { account = "reader", actions = ["pull"] },
      { account = "lister", actions = ["catalog"] },
    ]
"#;

/// Rules TOML, who (user and groups; `None`: anonymous), the scope parameters,
/// and the granted entries as `type:name:actions`.
type Case<'a> = (
    &'a str,
    Option<(&'a str, &'a [&'a str])>,
    &'a [&'a str],
    &'a [&'a str],
);

fn granted(rules: &str, who: Option<(&str, &[&str])>, params: &[&str]) -> Vec<String> {
    let config: AuthzConfig = toml::from_str(rules).expect("test [authz] is valid TOML");
    let rules = Rules::compile(&config).expect("test [authz] compiles");
    let who = who.map(|(user, groups)| Identity {
        user: user.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    });
    let requested = parse_scopes(params.iter().copied()).expect("test scopes parse");
    grant(rules.as_ref(), who.as_ref(), &requested)
        .iter()
        .map(|a| format!("{}:{}:{}", a.resource_type, a.name, a.actions.join(",")))
        .collect()
}

#[test]
fn grants() {
    let alice = Some(("alice", &[][..]));
    let bob = Some(("bob", &["pushers"][..]));
    let carol = Some(("carol", &["devs"][..]));
    let reader = Some(("reader", &[][..]));
    let lister = Some(("lister", &[][..]));
    let cases: &[Case<'_>] = &[
        // No [authz]: an authenticated user may do everything, anonymous nothing.
        (
            NO_RULES,
            alice,
            &["repository:a/b:pull,push,delete"],
            &["repository:a/b:pull,push,delete"],
        ),
        (
            NO_RULES,
            alice,
            &["repository:a/b:*"],
            &["repository:a/b:*"],
        ),
        (
            NO_RULES,
            alice,
            &["registry:catalog:*"],
            &["registry:catalog:*"],
        ),
        (
            NO_RULES,
            None,
            &["repository:a/b:pull"],
            &["repository:a/b:"],
        ),
        (
            NO_RULES,
            None,
            &["registry:catalog:*"],
            &["registry:catalog:"],
        ),
        // push_group.
        (
            PUSH_GROUP,
            bob,
            &["repository:x:pull,push"],
            &["repository:x:pull,push"],
        ),
        (PUSH_GROUP, bob, &["repository:x:*"], &["repository:x:*"]),
        (
            PUSH_GROUP,
            carol,
            &["repository:x:pull,push"],
            &["repository:x:pull"],
        ),
        (PUSH_GROUP, carol, &["repository:x:*"], &["repository:x:"]),
        (
            PUSH_GROUP,
            carol,
            &["registry:catalog:*"],
            &["registry:catalog:*"],
        ),
        (PUSH_GROUP, None, &["repository:x:pull"], &["repository:x:"]),
        // ${account}.
        (
            PER_REPOSITORY,
            alice,
            &["repository:alice/app:pull,push,delete"],
            &["repository:alice/app:pull,push,delete"],
        ),
        (
            PER_REPOSITORY,
            alice,
            &["repository:alice/app:*"],
            &["repository:alice/app:*"],
        ),
        (
            PER_REPOSITORY,
            alice,
            &["repository:bob/app:pull"],
            &["repository:bob/app:"],
        ),
        // Pull only, asking for pull and push; and for * with pull only.
        (
            PER_REPOSITORY,
            reader,
            &["repository:bob/app:pull,push"],
            &["repository:bob/app:pull"],
        ),
        (
            PER_REPOSITORY,
            reader,
            &["repository:bob/app:*"],
            &["repository:bob/app:"],
        ),
        // Anonymous on an open repository: reads only, whatever the rule lists.
        (
            PER_REPOSITORY,
            None,
            &["repository:public/x:pull,push"],
            &["repository:public/x:pull"],
        ),
        (
            PER_REPOSITORY,
            None,
            &["repository:private/x:pull"],
            &["repository:private/x:"],
        ),
        // The catalog needs the catalog right, and only * is granted on it.
        (
            PER_REPOSITORY,
            reader,
            &["registry:catalog:*"],
            &["registry:catalog:"],
        ),
        (
            PER_REPOSITORY,
            lister,
            &["registry:catalog:*"],
            &["registry:catalog:*"],
        ),
        (
            NO_RULES,
            alice,
            &["registry:catalog:pull"],
            &["registry:catalog:"],
        ),
        (NO_RULES, alice, &["registry:other:*"], &["registry:other:"]),
        // Unknown types and actions, invalid and host-prefixed names: nothing.
        (NO_RULES, alice, &["foo:bar:pull"], &["foo:bar:"]),
        (
            NO_RULES,
            alice,
            &["repository:a:frobnicate,pull"],
            &["repository:a:pull"],
        ),
        (
            NO_RULES,
            alice,
            &["repository:Library/a:pull"],
            &["repository:Library/a:"],
        ),
        (
            NO_RULES,
            alice,
            &["repository:localhost:5000/a:pull"],
            &["repository:localhost:5000/a:"],
        ),
        // Merged by type and name (the class is ignored), in the order first asked.
        (
            NO_RULES,
            alice,
            &[
                "repository:a:pull repository:b:pull",
                "repository(plugin):a:push,pull",
                "repository:a:pull",
            ],
            &["repository:a:pull,push", "repository:b:pull"],
        ),
        (NO_RULES, alice, &[], &[]),
    ];
    for (rules, who, params, want) in cases {
        assert_eq!(
            granted(rules, *who, params),
            *want,
            "rules={rules:?} who={who:?} params={params:?}"
        );
    }
}

#[test]
fn access_claim_json() {
    let requested = parse_scopes(["repository:a:pull,push foo:b:pull"]).expect("valid");
    let reader = Identity {
        user: "reader".to_owned(),
        groups: Vec::new(),
    };
    let config: AuthzConfig = toml::from_str(PER_REPOSITORY).expect("valid TOML");
    let rules = Rules::compile(&config).expect("compiles");
    let access = grant(rules.as_ref(), Some(&reader), &requested);
    assert_eq!(
        serde_json::to_string(&access).expect("serialises"),
        r#"[{"type":"repository","name":"a","actions":["pull"]},{"type":"foo","name":"b","actions":[]}]"#
    );
}

/// Issue 17: anonymous clients never get `registry:catalog:*`, whatever the rules
/// give `anonymous` or everyone (`*`), and with no `[authz]` at all.
#[test]
fn anonymous_clients_never_get_the_catalog() {
    let generous = r#"
        rules = [
          { account = "anonymous", actions = ["*"] },
          { account = "*", actions = ["catalog"] },
        ]
    "#;
    for rules in [generous, PER_REPOSITORY, PUSH_GROUP, NO_RULES] {
        assert_eq!(
            granted(rules, None, &["registry:catalog:*"]),
            ["registry:catalog:"],
            "rules={rules:?}"
        );
    }
    // The same rules do give it to a user.
    assert_eq!(
        granted(generous, Some(("u", &[])), &["registry:catalog:*"]),
        ["registry:catalog:*"]
    );
}
