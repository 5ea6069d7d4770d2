//! The access policy: the one answer to "may this identity (or an anonymous client)
//! do these actions on this resource". The proxy's authorize phase, the token
//! endpoint's scope grant and `acl explain` all ask [`Policy::decide`], so the front
//! doors cannot disagree.
//!
//! Three built-in rules hold whatever `[authz]` says, and are written only here:
//!
//! - **A robot's rights are exactly its scope** (`robot$NAME`, from the robots
//!   file): its patterns and actions, never the catalog, never what `[authz]` or a
//!   group would add. A robot the policy was not given the robots of (or that is
//!   gone from them) holds nothing: forgetting the robots fails closed.
//! - **No rules** (`[authz]` sets neither `rules` nor `push_group`): every
//!   authenticated user may do everything; anonymous clients get nothing.
//! - **Anonymous clients only ever pull**: whatever a rule naming `anonymous` lists,
//!   they hold pull at most (no push, no delete, no catalog). The proxy serves them
//!   reads of a repository only, and the token endpoint is no wider.
//!
//! Otherwise the first rule that applies decides ([`Rules::decide`]). Pure: no I/O,
//! no HTTP types.

use super::rules::{Request, Rights, Rules};
use crate::auth::robots::{robot_name, Robots};
use crate::auth::Identity;

/// The most an anonymous client may hold.
const ANONYMOUS_AT_MOST: Rights = Rights::PULL;

/// The rules in force: `[authz]` compiled, or none.
#[derive(Clone, Copy, Debug)]
pub struct Policy<'a> {
    /// `None`: no `[authz]` rules (every authenticated user may do everything).
    rules: Option<&'a Rules>,
    /// The robot accounts whose scopes bound `robot$` identities.
    robots: Option<&'a Robots>,
}

/// What decided a [`Decision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The rule at this index (from 0) applied first.
    Rule(usize),
    /// Rules are set but none applies: nothing is granted.
    NoRuleApplies,
    /// No rules at all: everything for an authenticated user, nothing for an
    /// anonymous client.
    NoRules,
    /// A robot: its scope, and only that.
    RobotScope,
}

/// The answer of [`Policy::decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What was asked.
    pub asked: Rights,
    /// Everything the identity holds on the resource (built-in rules applied).
    pub held: Rights,
    /// `asked` ∩ `held`.
    pub granted: Rights,
    /// What the deciding rule lists but an anonymous client does not get; empty for
    /// an authenticated user.
    pub withheld: Rights,
    /// The deciding rule, or the built-in reason.
    pub basis: Basis,
}

impl Decision {
    /// Whether everything asked is granted.
    pub fn allowed(&self) -> bool {
        self.granted == self.asked
    }
}

impl<'a> Policy<'a> {
    /// The policy of `rules` (`None`: no `[authz]` rules).
    pub fn new(rules: Option<&'a Rules>) -> Policy<'a> {
        Policy {
            rules,
            robots: None,
        }
    }

    /// This policy with the robot accounts whose scopes bound robot identities.
    pub fn with_robots(self, robots: &'a Robots) -> Policy<'a> {
        Policy {
            robots: Some(robots),
            ..self
        }
    }

    /// Whether rules are set (and so whether a user's groups can matter).
    pub fn has_rules(&self) -> bool {
        self.rules.is_some()
    }

    /// Whether `who` may do anything at all, whatever the request ([`Basis::NoRules`]
    /// for an authenticated user): then the proxy checks nothing of what it asks,
    /// not even that it is a registry API request.
    pub fn unrestricted(&self, who: Option<&Identity>) -> bool {
        self.rules.is_none() && who.is_some_and(|w| robot_name(&w.user).is_none())
    }

    /// Whether some rule grants anything to anonymous clients, so that a refused
    /// request without credentials is told "anonymous access denied" rather than
    /// "no credentials".
    pub fn admits_anonymous(&self) -> bool {
        self.rules.is_some_and(Rules::allows_anonymous)
    }

    /// The rights of `who` (`None`: an anonymous client) on `resource`, for the
    /// `asked` actions; see the module documentation.
    pub fn decide(&self, who: Option<&Identity>, resource: Request<'_>, asked: Rights) -> Decision {
        if let Some(name) = who.and_then(|w| robot_name(&w.user)) {
            let robot = self.robots.and_then(|r| r.get(name));
            let held = match (robot, resource) {
                (Some(robot), Request::Repository(repository)) => robot.rights(repository),
                _ => Rights::NONE,
            };
            return Decision {
                asked,
                held,
                granted: asked.intersection(held),
                withheld: Rights::NONE,
                basis: Basis::RobotScope,
            };
        }
        let (listed, basis) = match (self.rules, who) {
            (None, Some(_)) => (Rights::ALL, Basis::NoRules),
            (None, None) => (Rights::NONE, Basis::NoRules),
            (Some(rules), _) => {
                let found = rules.decide(who, resource);
                let basis = found.rule.map_or(Basis::NoRuleApplies, Basis::Rule);
                (found.rights, basis)
            }
        };
        let held = match who {
            Some(_) => listed,
            None => listed.intersection(ANONYMOUS_AT_MOST),
        };
        Decision {
            asked,
            held,
            granted: asked.intersection(held),
            withheld: listed.without(held),
            basis,
        }
    }

    /// The rule at `index` (from 0, as [`Basis::Rule`]) as the config has it, for
    /// `acl explain` ([`Rules::describe`]).
    pub fn describe(&self, index: usize) -> String {
        match self.rules {
            Some(rules) => rules.describe(index),
            None => format!("authz.rules[{}]: no such rule (no rules)", index + 1),
        }
    }
}

#[cfg(test)]
mod tests;
