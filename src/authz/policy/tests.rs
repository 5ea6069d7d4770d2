use super::*;
use crate::config::AuthzConfig;

/// alice pulls and pushes team/app; anonymous clients pull team/app, and a rule
/// lists everything for them on open/app (they still only pull it).
const RULES: &str = r#"
rules = [
  { account = "alice", name = "team/app", actions = ["pull", "push"] },
  { account = "anonymous", name = "team/app", actions = ["pull"] },
  { account = "anonymous", name = "open/app", actions = ["*"] },
]
"#;

fn rules() -> Rules {
    let config: AuthzConfig = toml::from_str(RULES).expect("test [authz] is valid TOML");
    match Rules::compile(&config) {
        Ok(Some(rules)) => rules,
        other => panic!("{other:?} from {RULES}"),
    }
}

fn alice() -> Identity {
    Identity {
        user: "alice".to_owned(),
        groups: vec![],
    }
}

/// An action word as `acl explain` takes it: the resource and the rights asked.
fn ask<'a>(repository: &'a str, action: &str) -> (Request<'a>, Rights) {
    match action {
        "pull" => (Request::Repository(repository), Rights::PULL),
        "push" => (
            Request::Repository(repository),
            Rights {
                push: true,
                ..Rights::NONE
            },
        ),
        "delete" => (
            Request::Repository(repository),
            Rights {
                delete: true,
                ..Rights::NONE
            },
        ),
        "catalog" => (Request::Catalog, Rights::CATALOG),
        other => panic!("no action {other:?}"),
    }
}

/// With rules?, as alice (else anonymous), repository, action: granted?, basis.
type Row = (bool, bool, &'static str, &'static str, bool, Basis);

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // No rules: authenticated users do everything, anonymous clients nothing.
    (false, true,  "team/app", "pull",    true,  Basis::NoRules),
    (false, true,  "team/app", "push",    true,  Basis::NoRules),
    (false, true,  "team/app", "delete",  true,  Basis::NoRules),
    (false, true,  "team/app", "catalog", true,  Basis::NoRules),
    (false, false, "team/app", "pull",    false, Basis::NoRules),
    (false, false, "team/app", "push",    false, Basis::NoRules),
    (false, false, "team/app", "delete",  false, Basis::NoRules),
    (false, false, "team/app", "catalog", false, Basis::NoRules),
    // Rules: the first that applies decides.
    (true,  true,  "team/app", "pull",    true,  Basis::Rule(0)),
    (true,  true,  "team/app", "push",    true,  Basis::Rule(0)),
    (true,  true,  "team/app", "delete",  false, Basis::Rule(0)),
    (true,  true,  "team/app", "catalog", false, Basis::NoRuleApplies),
    (true,  true,  "other/app", "pull",   false, Basis::NoRuleApplies),
    // A rule granting anonymous pull.
    (true,  false, "team/app", "pull",    true,  Basis::Rule(1)),
    (true,  false, "team/app", "push",    false, Basis::Rule(1)),
    (true,  false, "team/app", "delete",  false, Basis::Rule(1)),
    (true,  false, "other/app", "pull",   false, Basis::NoRuleApplies),
    // A rule listing everything for anonymous clients: they still only pull.
    (true,  false, "open/app", "pull",    true,  Basis::Rule(2)),
    (true,  false, "open/app", "push",    false, Basis::Rule(2)),
    (true,  false, "open/app", "delete",  false, Basis::Rule(2)),
    (true,  false, "open/app", "catalog", false, Basis::Rule(2)),
];

#[test]
fn decisions() {
    let rules = rules();
    let alice = alice();
    assert!(!TABLE.is_empty());
    for &(with_rules, authenticated, repository, action, granted, basis) in TABLE {
        let policy = Policy::new(with_rules.then_some(&rules));
        let who = authenticated.then_some(&alice);
        let (resource, asked) = ask(repository, action);
        let decision = policy.decide(who, resource, asked);
        let row = format!("rules={with_rules} who={who:?} {action} {repository}");
        assert_eq!(decision.allowed(), granted, "{row}: {decision:?}");
        assert_eq!(decision.basis, basis, "{row}");
        assert_eq!(decision.granted, asked.intersection(decision.held), "{row}");
        if !authenticated {
            assert!(
                ANONYMOUS_AT_MOST.contains(decision.held),
                "{row}: {decision:?}"
            );
        }
    }
}

#[test]
fn what_anonymous_clients_are_denied_is_reported_as_withheld() {
    let rules = rules();
    let policy = Policy::new(Some(&rules));
    let decision = policy.decide(None, Request::Repository("open/app"), Rights::ALL);
    assert_eq!(decision.held.to_string(), "pull");
    assert_eq!(decision.withheld.to_string(), "push,delete,catalog");
    assert_eq!(decision.granted.to_string(), "pull");
    let alice = alice();
    let decision = policy.decide(Some(&alice), Request::Repository("team/app"), Rights::ALL);
    assert_eq!(decision.held.to_string(), "pull,push");
    assert!(decision.withheld.is_empty());
}

#[test]
fn anonymous_clients_are_admitted_only_by_a_rule_naming_them() {
    let rules = rules();
    assert!(Policy::new(Some(&rules)).admits_anonymous());
    assert!(!Policy::new(None).admits_anonymous());
    let config: AuthzConfig = toml::from_str("push_group = \"pushers\"").expect("toml");
    let push_group = Rules::compile(&config).expect("valid").expect("rules");
    assert!(!Policy::new(Some(&push_group)).admits_anonymous());
}

/// A robot `ci` that pulls and pushes `team/*`, and one whose name is also matched by
/// a rule granting everything: neither rules nor groups widen a robot.
fn robots() -> crate::auth::robots::Robots {
    use crate::auth::robots::{create, Robots, Spec};
    use crate::authz::access::Action;
    let rng = ring::rand::SystemRandom::new();
    let spec = Spec {
        name: "ci".into(),
        repos: vec!["team/*".into()],
        actions: vec![Action::Pull, Action::Push],
        expires_in: None,
        description: String::new(),
    };
    let (text, _) = create("", &spec, std::time::SystemTime::now(), &rng).expect("create");
    let (robots, warnings) = Robots::parse(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    robots
}

#[test]
fn a_robot_holds_its_scope_and_nothing_else_with_or_without_rules() {
    let everything: AuthzConfig = toml::from_str(
        r#"rules = [{ account = "*", name = "**", actions = ["*"] }]
           groups = { admins = ["robot$ci"] }"#,
    )
    .expect("toml");
    let everything = Rules::compile(&everything).expect("valid").expect("rules");
    let robots = robots();
    let ci = Identity {
        user: "robot$ci".to_owned(),
        groups: vec!["admins".to_owned()],
    };
    let gone = Identity {
        user: "robot$gone".to_owned(),
        groups: vec![],
    };
    for rules in [None, Some(&everything)] {
        let policy = Policy::new(rules).with_robots(&robots);
        assert!(!policy.unrestricted(Some(&ci)), "rules={rules:?}");
        let rights = |who: &Identity, repository, action| {
            let (resource, asked) = ask(repository, action);
            policy.decide(Some(who), resource, asked)
        };
        for (repository, action, granted) in [
            ("team/app", "pull", true),
            ("team/app", "push", true),
            ("team/app", "delete", false),
            ("team/app/sub", "pull", false),
            ("other/app", "pull", false),
            ("team/app", "catalog", false),
        ] {
            let decision = rights(&ci, repository, action);
            assert_eq!(
                decision.allowed(),
                granted,
                "{rules:?} {action} {repository}"
            );
            assert_eq!(decision.basis, Basis::RobotScope);
            assert!(decision.withheld.is_empty());
        }
        assert!(
            !rights(&gone, "team/app", "pull").allowed(),
            "a robot not in the file"
        );
        // A policy that was not given the robots fails closed.
        let blind = Policy::new(rules);
        let (resource, asked) = ask("team/app", "pull");
        assert!(!blind.decide(Some(&ci), resource, asked).allowed());
        assert!(!blind.unrestricted(Some(&ci)));
    }
}
