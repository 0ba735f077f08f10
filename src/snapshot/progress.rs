//! Progress of long work, reported by the core and drawn (or not) by the command line.

/// Receives progress; implementations must be cheap, they are called per file.
pub trait Progress: Send + Sync {
    /// The amount of work is known: `files` items, `bytes` where known (else 0).
    fn start(&self, _files: u64, _bytes: u64) {}
    /// One item done, `bytes` of it read or written.
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// Reports nothing: hooks, and stderr that is not a terminal.
pub struct Silent;

impl Progress for Silent {}
