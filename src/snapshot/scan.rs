//! What a snapshot holds: the working tree's files as git sees them (tracked, and untracked
//! but not ignored) and the whole `.git` folder, minus gitkit's own state.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::manifest::RelPath;
use super::workspace::Workspace;

/// gitkit's own folder inside `.git`: caches, logs and locks, never snapshotted.
pub const STATE_DIR: &str = "gitkit";

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("could not run `git ls-files`")]
    Spawn(#[source] std::io::Error),
    #[error("`git ls-files` failed: {0}")]
    LsFiles(String),
    #[error("bad gitkit.exclude pattern")]
    Pattern(#[source] ignore::Error),
    #[error("could not read {0}")]
    Walk(PathBuf, #[source] walkdir::Error),
}

/// One thing found in the workspace.
#[derive(Debug)]
pub struct Found {
    pub path: RelPath,
    pub full: PathBuf,
    /// `None` for a file git never changes once written (see [`is_immutable`]), which is not
    /// stat'ed when the cache already knows it.
    pub metadata: Option<std::fs::Metadata>,
}

pub struct Options {
    pub include_ignored: bool,
}

/// Everything to snapshot, sorted by path.
pub fn scan(workspace: &Workspace, options: &Options) -> Result<Vec<Found>, ScanError> {
    let mut found = worktree_files(workspace, options)?;
    found.extend(git_dir(workspace)?);
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|a, b| a.path == b.path);
    Ok(found)
}

fn worktree_files(workspace: &Workspace, options: &Options) -> Result<Vec<Found>, ScanError> {
    let mut command = Command::new("git");
    command
        .current_dir(&workspace.root)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .args(["ls-files", "-z", "--cached", "--others"]);
    if !options.include_ignored {
        command.arg("--exclude-standard");
    }
    let output = command.output().map_err(ScanError::Spawn)?;
    if !output.status.success() {
        return Err(ScanError::LsFiles(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    let exclude = exclude_matcher(&workspace.root, &workspace.exclude)?;
    let mut found = Vec::new();
    for path in output.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let relative = Path::new(std::ffi::OsStr::from_bytes(path));
        if exclude
            .matched_path_or_any_parents(relative, false)
            .is_ignore()
        {
            continue;
        }
        let full = workspace.root.join(relative);
        // Tracked but deleted, or a submodule's folder: nothing to keep here.
        let Ok(metadata) = std::fs::symlink_metadata(&full) else {
            continue;
        };
        if metadata.is_dir() {
            continue;
        }
        found.push(Found {
            path: RelPath(path.to_vec()),
            full,
            metadata: Some(metadata),
        });
    }
    Ok(found)
}

fn exclude_matcher(root: &Path, patterns: &[String]) -> Result<Gitignore, ScanError> {
    let mut builder = GitignoreBuilder::new(root);
    for pattern in patterns {
        builder
            .add_line(None, pattern)
            .map_err(ScanError::Pattern)?;
    }
    builder.build().map_err(ScanError::Pattern)
}

/// The `.git` folder: folders, files and links, except gitkit's state and git's lock files.
fn git_dir(workspace: &Workspace) -> Result<Vec<Found>, ScanError> {
    let dot_git = workspace.root.join(".git");
    let Ok(metadata) = std::fs::symlink_metadata(&dot_git) else {
        return Ok(Vec::new());
    };
    if !metadata.is_dir() {
        // A linked worktree's `.git` file: keep the file; its git folder lives elsewhere.
        return Ok(vec![Found {
            path: RelPath(b".git".to_vec()),
            full: dot_git,
            metadata: Some(metadata),
        }]);
    }
    let walk = walkdir::WalkDir::new(&dot_git)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            let ours = entry.depth() == 1 && entry.file_name() == STATE_DIR;
            let lock = entry.file_name().as_bytes().ends_with(b".lock");
            !(ours || lock)
        });
    let mut found = Vec::new();
    for entry in walk {
        // git may remove a file while we walk (a gc, a lock released): that is not an error.
        let vanished = |e: &walkdir::Error| {
            e.io_error()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
        };
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if vanished(&e) => continue,
            Err(e) => return Err(ScanError::Walk(dot_git.clone(), e)),
        };
        let relative = entry
            .path()
            .strip_prefix(&workspace.root)
            .expect("under the root");
        let path = RelPath(relative.as_os_str().as_bytes().to_vec());
        let metadata = if entry.file_type().is_file() && is_immutable(&path) {
            None
        } else {
            match entry.metadata() {
                Ok(metadata) => Some(metadata),
                Err(e) if vanished(&e) => continue,
                Err(e) => return Err(ScanError::Walk(dot_git.clone(), e)),
            }
        };
        found.push(Found {
            path,
            full: entry.path().to_path_buf(),
            metadata,
        });
    }
    Ok(found)
}

/// Files git names after their content and never rewrites: loose objects
/// (`.git/objects/ab/cdef...`) and pack files (`.git/objects/pack/pack-<hash>.pack`, `.idx`,
/// `.rev`). Once the cache knows one, it need not be stat'ed again.
pub fn is_immutable(path: &RelPath) -> bool {
    let Some(rest) = path.0.strip_prefix(b".git/objects/") else {
        return false;
    };
    let is_hex = |bytes: &[u8]| !bytes.is_empty() && bytes.iter().all(u8::is_ascii_hexdigit);
    match rest.split(|&b| b == b'/').collect::<Vec<_>>().as_slice() {
        [dir, name] if dir.len() == 2 && is_hex(dir) && name.len() >= 38 && is_hex(name) => true,
        [b"pack", name] => {
            let name = String::from_utf8_lossy(name);
            let stem = name.strip_prefix("pack-").and_then(|n| n.rsplit_once('.'));
            stem.is_some_and(|(hash, ext)| {
                is_hex(hash.as_bytes()) && matches!(ext, "pack" | "idx" | "rev")
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_named_git_files_are_immutable() {
        let immutable = |p: &str| is_immutable(&RelPath(p.as_bytes().to_vec()));
        assert!(immutable(
            ".git/objects/22/dc1f0481cccfbb03d58279d4ad09377c2cd07c"
        ));
        assert!(immutable(".git/objects/pack/pack-4ca8a55c91f3aa.pack"));
        assert!(immutable(".git/objects/pack/pack-4ca8a55c91f3aa.idx"));
        assert!(!immutable(".git/objects/pack/pack-4ca8a55c91f3aa.keep"));
        assert!(!immutable(".git/objects/info/packs"));
        assert!(!immutable(".git/index"));
        assert!(!immutable(
            "src/objects/22/dc1f0481cccfbb03d58279d4ad09377c2cd07c"
        ));
        assert!(!immutable(".git/objects/22/tmp_obj_xyz"));
    }
}
