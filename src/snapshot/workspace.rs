//! The repository a snapshot is taken of: where it is, what it is called, what HEAD is.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0} is not inside a git repository")]
    NotARepository(PathBuf),
    #[error("{0} is a bare repository; snapshots need a working tree")]
    Bare(PathBuf),
    #[error("could not read the repository's gitkit.* configuration")]
    Config(#[source] crate::git::config::Error),
}

#[derive(Debug, Clone)]
pub struct Workspace {
    /// The working tree's top folder.
    pub root: PathBuf,
    /// The `.git` folder.
    pub git_dir: PathBuf,
    /// `gitkit.workspace`, else the top folder's name.
    pub name: String,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// `gitkit.exclude` patterns, gitignore syntax.
    pub exclude: Vec<String>,
    /// `gitkit.store`.
    pub store: Option<String>,
    /// `gitkit.snapshotTimeout`, as written.
    pub snapshot_timeout: Option<String>,
}

impl Workspace {
    pub fn discover(dir: &Path) -> Result<Self, WorkspaceError> {
        let repo = crate::git::Repository::discover(dir).ok_or_else(|| {
            WorkspaceError::NotARepository(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()))
        })?;
        let root = repo
            .work_tree()
            .ok_or_else(|| WorkspaceError::Bare(dir.to_path_buf()))?;
        // libgit2 misplaces the top of a work tree whose `.git` is a file or a link to a
        // repository elsewhere; git itself knows.
        let root = match crate::git::top_level(dir) {
            Ok(top) if !top.as_os_str().is_empty() => top,
            _ => root,
        };
        // Through `git config` itself, so that `git -c`, GIT_CONFIG_* and includes apply.
        let settings = crate::git::config::get_regexp(Some(&root), r"^gitkit\.")
            .map_err(WorkspaceError::Config)?;
        let last = |key: &str| {
            settings
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let name = last("gitkit.workspace")
            .map(|name| sanitize(&name))
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| default_name(&root));
        let exclude = settings
            .iter()
            .filter(|(k, _)| k == "gitkit.exclude")
            .map(|(_, v)| v.clone())
            .collect();
        let store = last("gitkit.store").filter(|s| !s.is_empty());
        let snapshot_timeout = last("gitkit.snapshottimeout");
        let (commit, branch) = repo.head();
        Ok(Self {
            git_dir: repo.git_dir().to_path_buf(),
            root,
            name,
            commit,
            branch,
            exclude,
            store,
            snapshot_timeout,
        })
    }
}

fn default_name(root: &Path) -> String {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = sanitize(&name);
    if name.is_empty() {
        "workspace".to_string()
    } else {
        name
    }
}

/// A workspace name is one key segment: letters, digits, `-`, `_` and `.` only.
pub fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.trim_matches(['.', '-']).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_single_safe_segments() {
        assert_eq!(super::sanitize("my project/../x"), "my-project-..-x");
        assert_eq!(super::sanitize(".."), "");
        assert_eq!(super::sanitize("churn-model_v2"), "churn-model_v2");
    }
}
