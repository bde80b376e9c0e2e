//! How long work reports how far it got: the pipeline calls a [`Progress`], and the caller
//! decides what to show (a bar, a log line, nothing).

/// Receives reports from long work.
pub trait Progress: Sync {
    /// `stage` ("encoding", "building", ...) has done `done` of `total` items.
    fn update(&self, stage: &str, done: u64, total: u64);
    /// The current stage is over (a bar can be cleared).
    fn finish(&self) {}
    /// A line of information for the user ("using cached document vectors ...").
    fn note(&self, message: &str);
}

/// Shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn update(&self, _stage: &str, _done: u64, _total: u64) {}
    fn note(&self, _message: &str) {}
}
