//! What `gitkit setup` remembers under GITKIT_HOME: the user's choices, so that a bare `gitkit
//! setup` after a restart puts back the same state, and what it added, so that `--undo` removes
//! exactly that.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE: &str = "setup.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// `--store`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// `--every`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// `--workspace-root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_root: Option<PathBuf>,
    #[serde(default)]
    pub added: Added,
}

/// What setup added that was not there before it, for `--undo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Added {
    /// The global git config file did not exist before setup.
    #[serde(default)]
    pub gitconfig_created: bool,
    /// Setup made the `[include]` section that holds its `path`.
    #[serde(default)]
    pub include_section_created: bool,
    /// The `Include` line in `~/.ssh/config`.
    #[serde(default)]
    pub ssh_include: bool,
    /// The line in `~/.bashrc`.
    #[serde(default)]
    pub bashrc: bool,
    /// The link `~/.local/bin/gitkit`.
    #[serde(default)]
    pub path_link: bool,
    /// Repositories whose post-commit hook setup installed.
    #[serde(default)]
    pub hooks: Vec<PathBuf>,
    /// The folder whose crontab line setup wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("could not read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("{0} is not setup's saved state")]
    Parse(PathBuf, #[source] serde_json::Error),
}

/// The saved state, or `None` when setup never ran.
pub fn load(gitkit_home: &Path) -> Result<Option<Saved>, StateError> {
    let path = gitkit_home.join(FILE);
    match std::fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| StateError::Parse(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::Read(path, e)),
    }
}

/// The state as it is written: stable, so that an unchanged state is an unchanged file.
pub fn text(saved: &Saved) -> String {
    let mut text = serde_json::to_string_pretty(saved).expect("the state serializes");
    text.push('\n');
    text
}
