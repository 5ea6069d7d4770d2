use super::*;

#[test]
fn rights() {
    let pull_push = Rights {
        pull: true,
        push: true,
        ..Rights::NONE
    };
    assert_eq!(Rights::NONE.to_string(), "nothing");
    assert_eq!(pull_push.to_string(), "pull,push");
    assert_eq!(Rights::ALL.to_string(), "pull,push,delete,catalog");
    let catalog = Rights {
        catalog: true,
        ..Rights::NONE
    };
    assert_eq!(catalog.to_string(), "catalog");
    assert!(pull_push.allows(Action::Pull));
    assert!(pull_push.allows(Action::Push));
    assert!(!pull_push.allows(Action::Delete));
    assert!(pull_push.allows_all(&[Action::Pull, Action::Push]));
    assert!(!pull_push.allows_all(&[Action::Delete]));
    assert!(Rights::NONE.allows_all(&[]));
    assert!(Rights::NONE.is_empty());
    assert!(!catalog.is_empty());
    assert_eq!(Rights::default(), Rights::NONE);
}
