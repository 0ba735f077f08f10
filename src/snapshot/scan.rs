//! What a snapshot holds: the working tree's files as git sees them (tracked, and untracked
//! but not ignored) and the whole `.git` folder, minus gitkit's own state.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::cache::Stat;
use super::manifest::RelPath;
use super::workspace::Workspace;

/// gitkit's own folder inside `.git`: caches, logs and locks, never snapshotted.
pub const STATE_DIR: &str = "gitkit";

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("could not list the work tree's files")]
    LsFiles(#[from] crate::git::GitError),
    #[error("bad gitkit.exclude pattern")]
    Pattern(#[source] ignore::Error),
    #[error("could not read {0}")]
    Walk(PathBuf, #[source] walkdir::Error),
}

/// One thing found in the workspace: its path and what a look at it said, in 80 bytes and the
/// path's (a workspace of 100,000 files holds 100,000 of these through a snapshot).
#[derive(Debug)]
pub struct Found {
    pub path: RelPath,
    /// `None` for a file git never changes once written (see [`is_immutable`]), which is not
    /// stat'ed when the cache already knows it.
    pub stat: Option<Stat>,
}

impl Found {
    /// Where it is on disk, in the workspace at `root`.
    pub fn full(&self, root: &Path) -> PathBuf {
        root.join(self.path.as_path())
    }
}

/// Something the snapshot leaves out or keeps from before, and why: said on stderr and in
/// `gitkit hooks status`, never silently.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

impl Warning {
    pub fn new(path: impl std::fmt::Display, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.escape_debug(), self.message)
    }
}

pub struct Options {
    pub include_ignored: bool,
}

/// Everything to snapshot, sorted by path, and what could not be looked at.
pub fn scan(
    workspace: &Workspace,
    options: &Options,
) -> Result<(Vec<Found>, Vec<Warning>), ScanError> {
    let exclude = exclude_matcher(&workspace.root, &workspace.exclude)?;
    let mut scan = Scan::new(&workspace.root, options, exclude);
    scan.worktree(&[])?;
    scan.git_dir(&[])?;
    let Scan {
        mut found,
        warnings,
        ..
    } = scan;
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|a, b| a.path == b.path);
    Ok((found, warnings))
}

/// The workspace's `.git` folder listed again, for the objects that appeared since [`scan`]
/// (what cannot be listed now is left to the next snapshot).
pub fn git_dir_again(workspace: &Workspace) -> Vec<Found> {
    let options = Options {
        include_ignored: false,
    };
    let mut scan = Scan::new(&workspace.root, &options, Gitignore::empty());
    match scan.git_dir(&[]) {
        Ok(()) => scan.found,
        Err(_) => Vec::new(),
    }
}

/// Whether `path` is a git object or pack file: under an `objects` folder inside a `.git`.
pub fn is_git_object(path: &RelPath) -> bool {
    let mut components = path.components();
    components.next() == Some(b".git") && components.any(|c| c == b"objects")
}

struct Scan<'a> {
    root: &'a Path,
    options: &'a Options,
    exclude: Gitignore,
    found: Vec<Found>,
    warnings: Vec<Warning>,
    /// Whether each folder seen on the way to a file is a real folder (not a link).
    folders: HashMap<Vec<u8>, bool>,
}

impl<'a> Scan<'a> {
    fn new(root: &'a Path, options: &'a Options, exclude: Gitignore) -> Self {
        Self {
            root,
            options,
            exclude,
            found: Vec::new(),
            warnings: Vec::new(),
            folders: HashMap::new(),
        }
    }

    /// The files of the work tree at `prefix` (the workspace's own, or a submodule's or nested
    /// repository's) as git lists them, and the work trees nested in it, each with its `.git`.
    fn worktree(&mut self, prefix: &[u8]) -> Result<(), ScanError> {
        let dir = self
            .root
            .join(Path::new(std::ffi::OsStr::from_bytes(prefix)));
        let (listed, said) = crate::git::ls_files(&dir, self.options.include_ignored)?;
        self.git_warnings(prefix, &said);
        let mut paths = Vec::new();
        for listed in listed.split(|&b| b == 0).filter(|p| !p.is_empty()) {
            // An untracked nested repository is listed as `nested/`.
            let listed = listed.strip_suffix(b"/").unwrap_or(listed);
            let path = join(prefix, listed);
            let relative = Path::new(std::ffi::OsStr::from_bytes(&path));
            if self
                .exclude
                .matched_path_or_any_parents(relative, false)
                .is_ignore()
            {
                continue;
            }
            // A path git still lists under a folder that became a link is not read through it.
            if !self.under_real_folders(&path) {
                tracing::debug!(path = %String::from_utf8_lossy(&path), "under a link; not followed");
                continue;
            }
            paths.push(path);
        }
        // Looking at every file is most of a scan, and the kernel does it faster on two
        // threads than on one: spread it over the cores, as git's preloadIndex does, a slice
        // at a time so that what was looked at is not held twice.
        use rayon::prelude::*;
        self.found.reserve(paths.len());
        let mut paths = paths.into_iter();
        loop {
            let slice: Vec<Vec<u8>> = paths.by_ref().take(4096).collect();
            if slice.is_empty() {
                break;
            }
            let looked: Vec<(PathBuf, std::io::Result<std::fs::Metadata>)> = slice
                .par_iter()
                .map(|path| {
                    let full = self.root.join(Path::new(std::ffi::OsStr::from_bytes(path)));
                    let metadata = std::fs::symlink_metadata(&full);
                    (full, metadata)
                })
                .collect();
            for (path, (full, metadata)) in slice.into_iter().zip(looked) {
                self.add(path, full, metadata)?;
            }
        }
        Ok(())
    }

    /// Adds what a look at a listed path found.
    fn add(
        &mut self,
        path: Vec<u8>,
        full: PathBuf,
        metadata: std::io::Result<std::fs::Metadata>,
    ) -> Result<(), ScanError> {
        {
            let metadata = match metadata {
                Ok(metadata) => metadata,
                // Tracked but deleted: nothing to keep.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => {
                    self.warn(&path, format!("cannot be looked at ({e}); left out"));
                    return Ok(());
                }
            };
            if metadata.is_dir() {
                // A submodule, or a repository nested inside this one: its work tree and its
                // `.git` belong to the workspace too. Any other folder holds nothing to keep.
                if std::fs::symlink_metadata(full.join(".git")).is_ok() {
                    self.worktree(&path)?;
                    self.git_dir(&path)?;
                }
                return Ok(());
            }
            self.found.push(Found {
                path: RelPath(path),
                stat: Some(Stat::of(&metadata)),
            });
        }
        Ok(())
    }

    /// git's own warnings about folders it could not read: each becomes a warning.
    fn git_warnings(&mut self, prefix: &[u8], stderr: &[u8]) {
        for line in String::from_utf8_lossy(stderr).lines() {
            let Some(rest) = line.strip_prefix("warning: could not open directory '") else {
                continue;
            };
            // `'secret/': Permission denied`, or for a path too long to open, the path alone.
            let (folder, message) = match rest.split_once("': ") {
                Some((folder, why)) => (folder, format!("folder cannot be read ({why}); left out")),
                None => (
                    rest.trim_end_matches('\''),
                    "folder cannot be read; left out".to_string(),
                ),
            };
            let folder = join(prefix, folder.trim_end_matches('/').as_bytes());
            self.warn(&folder, message);
        }
    }

    fn warn(&mut self, path: &[u8], message: String) {
        tracing::warn!(path = %String::from_utf8_lossy(path), %message);
        self.warnings
            .push(Warning::new(String::from_utf8_lossy(path), message));
    }

    /// Whether every folder on the way to `path` is a real folder, not a link or a file.
    fn under_real_folders(&mut self, path: &[u8]) -> bool {
        let ancestors = path
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| &path[..i]);
        for folder in ancestors {
            let real = match self.folders.get(folder) {
                Some(real) => *real,
                None => {
                    let full = self
                        .root
                        .join(Path::new(std::ffi::OsStr::from_bytes(folder)));
                    let real = std::fs::symlink_metadata(full).is_ok_and(|m| m.is_dir());
                    self.folders.insert(folder.to_vec(), real);
                    real
                }
            };
            if !real {
                return false;
            }
        }
        true
    }

    /// The `.git` of the work tree at `prefix`: folders, files and links, except gitkit's state
    /// and git's lock files; a `.git` file (a submodule's, a linked worktree's) as it is.
    fn git_dir(&mut self, prefix: &[u8]) -> Result<(), ScanError> {
        let path = join(prefix, b".git");
        let dot_git = self
            .root
            .join(Path::new(std::ffi::OsStr::from_bytes(&path)));
        let Ok(metadata) = std::fs::symlink_metadata(&dot_git) else {
            return Ok(());
        };
        if !metadata.is_dir() {
            self.found.push(Found {
                path: RelPath(path),
                stat: Some(Stat::of(&metadata)),
            });
            return Ok(());
        }
        let walk = walkdir::WalkDir::new(&dot_git)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|entry| {
                let ours = entry.depth() == 1 && entry.file_name() == STATE_DIR;
                let lock = entry.file_name().as_bytes().ends_with(b".lock");
                !(ours || lock)
            });
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
                .strip_prefix(self.root)
                .expect("under the root");
            let path = RelPath(relative.as_os_str().as_bytes().to_vec());
            let stat = if entry.file_type().is_file() && is_immutable(&path) {
                None
            } else {
                match entry.metadata() {
                    Ok(metadata) => Some(Stat::of(&metadata)),
                    Err(e) if vanished(&e) => continue,
                    Err(e) => return Err(ScanError::Walk(dot_git.clone(), e)),
                }
            };
            self.found.push(Found { path, stat });
        }
        Ok(())
    }
}

/// `prefix/name`, or `name` at the top.
fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        return name.to_vec();
    }
    let mut path = prefix.to_vec();
    path.push(b'/');
    path.extend_from_slice(name);
    path
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

    /// A snapshot holds one of these per file found (docs/FORMAT.md, "Memory").
    #[test]
    fn what_is_found_of_a_file_stays_small() {
        assert!(std::mem::size_of::<Found>() <= 80);
    }

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
