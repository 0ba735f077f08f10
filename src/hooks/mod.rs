//! The post-commit hook: installing it beside whatever hook a repository already has, the
//! detached snapshot it starts, and a periodic schedule through cron.

pub mod install;
pub mod schedule;
pub mod worker;

pub use install::{HookError, Installed, Removed, install, uninstall};
pub use schedule::{Schedule, ScheduleError, Target};
pub use worker::{HookStatus, RunOutcome, post_commit, run, status};

use std::path::{Path, PathBuf};

/// The repositories under `dir` (a folder with a `.git`), not looking inside repositories or
/// hidden folders, three levels deep at most: `~/SageMaker/*/` and a little below.
pub fn repositories_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut walk = walkdir::WalkDir::new(dir)
        .max_depth(3)
        .sort_by_file_name()
        .into_iter();
    while let Some(Ok(entry)) = walk.next() {
        if !entry.file_type().is_dir() {
            continue;
        }
        if entry.path().join(".git").exists() {
            found.push(entry.path().to_path_buf());
            walk.skip_current_dir();
        } else if entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.') {
            walk.skip_current_dir();
        }
    }
    found
}
