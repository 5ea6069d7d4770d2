//! [`Rights`]: the set of actions a rule grants, and the `actions` words that name them.

use std::fmt;

use crate::authz::access::Action;

/// A set of rights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights {
    /// Read manifests, blobs, tags and referrers.
    pub pull: bool,
    /// Write manifests and blobs.
    pub push: bool,
    /// Delete manifests and blobs.
    pub delete: bool,
    /// List `/v2/_catalog`.
    pub catalog: bool,
}

impl Rights {
    /// No rights at all.
    pub const NONE: Rights = Rights {
        pull: false,
        push: false,
        delete: false,
        catalog: false,
    };

    /// Pull alone.
    pub const PULL: Rights = Rights {
        pull: true,
        ..Rights::NONE
    };

    /// The catalog alone.
    pub const CATALOG: Rights = Rights {
        catalog: true,
        ..Rights::NONE
    };

    /// Every right (the action `*`).
    pub const ALL: Rights = Rights {
        pull: true,
        push: true,
        delete: true,
        catalog: true,
    };

    /// Whether the set holds the right to `action` on a repository.
    pub fn allows(&self, action: Action) -> bool {
        match action {
            Action::Pull => self.pull,
            Action::Push => self.push,
            Action::Delete => self.delete,
        }
    }

    /// Whether the set holds every one of `actions`.
    pub fn allows_all(&self, actions: &[Action]) -> bool {
        actions.iter().all(|&action| self.allows(action))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        *self == Rights::NONE
    }

    /// The rights to every one of `actions`.
    pub fn of(actions: &[Action]) -> Rights {
        let mut rights = Rights::NONE;
        for action in actions {
            match action {
                Action::Pull => rights.pull = true,
                Action::Push => rights.push = true,
                Action::Delete => rights.delete = true,
            }
        }
        rights
    }

    /// The rights held in both sets.
    pub fn intersection(self, other: Rights) -> Rights {
        Rights {
            pull: self.pull && other.pull,
            push: self.push && other.push,
            delete: self.delete && other.delete,
            catalog: self.catalog && other.catalog,
        }
    }

    /// The rights held in either set.
    pub fn union(self, other: Rights) -> Rights {
        Rights {
            pull: self.pull || other.pull,
            push: self.push || other.push,
            delete: self.delete || other.delete,
            catalog: self.catalog || other.catalog,
        }
    }

    /// The rights of `self` that `other` lacks.
    pub fn without(self, other: Rights) -> Rights {
        Rights {
            pull: self.pull && !other.pull,
            push: self.push && !other.push,
            delete: self.delete && !other.delete,
            catalog: self.catalog && !other.catalog,
        }
    }

    /// Whether every right in `other` is held.
    pub fn contains(self, other: Rights) -> bool {
        self.intersection(other) == other
    }

    /// The rights an `actions` list names; `Err` gives the first unknown word.
    pub(super) fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Rights, &'a str> {
        let mut rights = Rights::NONE;
        for word in words {
            match word {
                "pull" => rights.pull = true,
                "push" => rights.push = true,
                "delete" => rights.delete = true,
                "catalog" => rights.catalog = true,
                "*" => rights = Rights::ALL,
                other => return Err(other),
            }
        }
        Ok(rights)
    }
}

/// `pull,push,delete,catalog` (those held, in that order), or `nothing`.
impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = [
            (self.pull, "pull"),
            (self.push, "push"),
            (self.delete, "delete"),
            (self.catalog, "catalog"),
        ];
        let mut words = held.iter().filter(|(on, _)| *on).map(|(_, word)| *word);
        match words.next() {
            None => f.write_str("nothing"),
            Some(first) => {
                f.write_str(first)?;
                words.try_for_each(|word| write!(f, ",{word}"))
            }
        }
    }
}

#[cfg(test)]
mod tests;
