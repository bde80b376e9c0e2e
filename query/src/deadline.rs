//! When a search must stop: a point in time (a server's time budget), or a number of checks (a
//! budget of work that gives the same stop on every run).
//!
//! Every processor checks its search's deadline once before it starts and then every few blocks
//! (BMP, superblock pruning), every few windows or documents (MaxScore, BMW) or after every
//! query term (exhaustive scoring), through [`crate::TopK::out_of_time`]. Past the deadline it
//! stops where it is and leaves the hits found so far in its collector; the search is then
//! marked stopped ([`crate::Searcher::stopped`]), and its hits are the best of the documents
//! scored so far, not the top-k. Without a deadline ([`Deadline::None`], the default) a check
//! costs a branch.

use std::time::{Duration, Instant};

/// When a search must stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Deadline {
    /// Never: the search runs to its end.
    #[default]
    None,
    /// At this instant.
    At(Instant),
    /// After this many checks have passed (the first check is the one before the search
    /// starts): a budget of work, the same on every run.
    AfterChecks(u32),
}

impl Deadline {
    /// `after` from now.
    pub fn after(after: Duration) -> Self {
        Instant::now()
            .checked_add(after)
            .map_or(Deadline::None, Deadline::At)
    }

    /// Whether the search must stop at the `check`-th check (counted from 1).
    #[inline]
    pub fn passed(&self, check: u32) -> bool {
        match *self {
            Deadline::None => false,
            Deadline::At(at) => Instant::now() >= at,
            Deadline::AfterChecks(n) => check > n,
        }
    }

    /// Whether there is one.
    #[inline]
    pub fn is_some(&self) -> bool {
        !matches!(self, Deadline::None)
    }
}

/// How many steps of a loop (blocks scored, documents or windows visited) go between two checks
/// of the deadline: a check then costs less than a hundredth of the steps it follows.
pub(crate) const CHECK_EVERY: u32 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_pass_when_they_should() {
        assert!(!Deadline::None.passed(u32::MAX));
        assert!(!Deadline::AfterChecks(2).passed(1));
        assert!(!Deadline::AfterChecks(2).passed(2));
        assert!(Deadline::AfterChecks(2).passed(3));
        assert!(Deadline::AfterChecks(0).passed(1));
        let past = Instant::now();
        assert!(Deadline::At(past).passed(1));
        assert!(!Deadline::after(Duration::from_secs(3600)).passed(1));
        assert_eq!(Deadline::after(Duration::MAX), Deadline::None);
        assert!(!Deadline::None.is_some());
        assert!(Deadline::AfterChecks(0).is_some());
    }
}
