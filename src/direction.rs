//! The two directions a bridge pair carries value in. Each has its own watcher, planner,
//! recovery loop and cursor; the destination's tx manager is shared with the other direction's
//! source side.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Requests on the parent bridge, handled on the child bridge.
    ParentToChild,
    /// Requests on the child bridge, handled on the parent bridge.
    ChildToParent,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::ParentToChild, Direction::ChildToParent];

    /// The stable name used in the store, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ParentToChild => "parent_to_child",
            Direction::ChildToParent => "child_to_parent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
