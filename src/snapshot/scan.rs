//! What a snapshot holds: the working tree's files as git sees them (tracked, and untracked
//! but not ignored) and the whole `.git` folder, minus gitkit's own state.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::cache::Stat;
use super::manifest::RelPath;
use super::state::StatDigest;
use super::workspace::Workspace;

mod spool;
pub use spool::Spool;

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
    #[error("could not keep the list of files found in a temporary file")]
    Spool(#[source] std::io::Error),
    #[error(
        "git listed {0:?} out of order (a damaged index does that; `git status` tells); gitkit \
         relies on git's listing being sorted"
    )]
    Unsorted(String),
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

    pub fn is_dir(&self) -> bool {
        self.stat.is_some_and(|stat| stat.is_dir())
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

/// What a scan found: everything to snapshot, in [`order`], kept in a [`Spool`] (on disk
/// past a few MiB, so that a workspace of any size costs the same memory), the stat data's
/// digest, and what could not be looked at.
pub struct Scanned {
    pub found: Spool,
    /// [`state::StatDigest`] of what was found.
    pub stats: String,
    pub warnings: Vec<Warning>,
}

/// The order of a snapshot's entries, git's tree order: by path bytes, a folder's as if it
/// ended in `/`, so that a folder's entries follow it at once (`a`, `a/b`, `a-1`; not
/// `a`, `a-1`, `a/b`). Files compare as their paths do.
pub fn order(a: &[u8], a_is_dir: bool, b: &[u8], b_is_dir: bool) -> Ordering {
    let common = a.len().min(b.len());
    let slash = |is_dir: bool| -> &'static [u8] { if is_dir { b"/" } else { b"" } };
    a[..common].cmp(&b[..common]).then_with(|| {
        let a_rest = a[common..].iter().chain(slash(a_is_dir));
        a_rest.cmp(b[common..].iter().chain(slash(b_is_dir)))
    })
}

/// Everything to snapshot, in [`order`], and what could not be looked at. The lists git
/// prints and the `.git` folders walked are merged as they come (each already in order), so
/// nothing is sorted or held whole; what is found goes to a spool in `spool_dir`.
pub fn scan(
    workspace: &Workspace,
    options: &Options,
    spool_dir: &Path,
) -> Result<Scanned, ScanError> {
    let exclude = exclude_matcher(&workspace.root, &workspace.exclude)?;
    let context = Context {
        root: &workspace.root,
        exclude: &exclude,
        include_ignored: options.include_ignored,
    };
    let mut merge = Merge::new(&context);
    merge.open_work_tree(Vec::new())?;
    let mut spool = Spool::new_in(spool_dir);
    let mut stats = StatDigest::default();
    while let Some(found) = merge.next()? {
        stats.add(&found);
        spool.push(&found).map_err(ScanError::Spool)?;
    }
    Ok(Scanned {
        found: spool,
        stats: stats.finish(),
        warnings: merge.warnings,
    })
}

/// The workspace's `.git` folder walked again, in [`order`], for the objects that appeared
/// since [`scan`] (what cannot be listed now is left to the next snapshot).
pub fn git_dir_again(workspace: &Workspace) -> impl Iterator<Item = Found> + '_ {
    walk_git_dir(&workspace.root, Vec::new())
        .into_iter()
        .flatten()
        .map_while(|next| match next {
            Ok(Next::Found(found)) => Some(found),
            _ => None,
        })
}

/// The git objects in `now` (in [`order`]) that `known` (in [`order`] too) does not hold.
pub fn new_git_objects(
    known: impl Iterator<Item = Found>,
    now: impl Iterator<Item = Found>,
) -> Vec<Found> {
    let mut known = known.filter(|f| is_git_object(&f.path)).peekable();
    let mut new = Vec::new();
    for found in now.filter(|f| is_git_object(&f.path)) {
        let (path, is_dir) = (&found.path.0, found.is_dir());
        while known
            .next_if(|k| order(&k.path.0, k.is_dir(), path, is_dir) == Ordering::Less)
            .is_some()
        {}
        let listed = known
            .peek()
            .is_some_and(|k| order(&k.path.0, k.is_dir(), path, is_dir) == Ordering::Equal);
        if !listed {
            new.push(found);
        }
    }
    new
}

/// Whether `path` is a git object or pack file: under an `objects` folder inside a `.git`.
pub fn is_git_object(path: &RelPath) -> bool {
    let mut components = path.components();
    components.next() == Some(b".git") && components.any(|c| c == b"objects")
}

/// What a scan reads everywhere.
struct Context<'a> {
    root: &'a Path,
    exclude: &'a Gitignore,
    include_ignored: bool,
}

/// What a source of a scan gives, in [`order`] but for warnings, which may come any time.
enum Next {
    Found(Found),
    /// A work tree nested at this path (a submodule, or a repository inside this one): its
    /// files and its `.git` belong to the workspace too.
    Nested(Vec<u8>),
    Warning(Warning),
}

type Source<'a> = Box<dyn Iterator<Item = Result<Next, ScanError>> + 'a>;

/// The sources' next entries, merged into one list in [`order`], each path once.
struct Merge<'a> {
    context: &'a Context<'a>,
    sources: Vec<Option<Source<'a>>>,
    heads: BinaryHeap<Reverse<Head>>,
    /// The last path given, and whether it was a folder's.
    last: Option<(Vec<u8>, bool)>,
    warnings: Vec<Warning>,
}

/// A source's next entry, or a nested work tree to open when the merge gets to it.
enum Head {
    Found { found: Found, source: usize },
    Nested(Vec<u8>),
}

impl Head {
    /// Its path, and whether that is a folder's: what [`order`] compares.
    fn key(&self) -> (&[u8], bool) {
        match self {
            Head::Found { found, .. } => (&found.path.0, found.is_dir()),
            Head::Nested(path) => (path, true),
        }
    }

    fn tie_break(&self) -> usize {
        match self {
            Head::Found { source, .. } => *source,
            Head::Nested(_) => usize::MAX,
        }
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        let ((a, a_is_dir), (b, b_is_dir)) = (self.key(), other.key());
        order(a, a_is_dir, b, b_is_dir).then_with(|| self.tie_break().cmp(&other.tie_break()))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl<'a> Merge<'a> {
    fn new(context: &'a Context<'a>) -> Self {
        Self {
            context,
            sources: Vec::new(),
            heads: BinaryHeap::new(),
            last: None,
            warnings: Vec::new(),
        }
    }

    /// The next entry in [`order`]; `None` at the end.
    fn next(&mut self) -> Result<Option<Found>, ScanError> {
        while let Some(Reverse(head)) = self.heads.pop() {
            if let Head::Found { source, .. } = &head {
                self.pull(*source)?;
            }
            let (path, is_dir) = head.key();
            if let Some((last, last_is_dir)) = &self.last {
                match order(last, *last_is_dir, path, is_dir) {
                    Ordering::Less => {}
                    // git lists a path once per merge stage while a merge is unresolved.
                    Ordering::Equal => continue,
                    Ordering::Greater => return Err(ScanError::Unsorted(lossy(path))),
                }
            }
            let last = self.last.get_or_insert_with(Default::default);
            last.0.clear();
            last.0.extend_from_slice(path);
            last.1 = is_dir;
            match head {
                Head::Found { found, .. } => return Ok(Some(found)),
                Head::Nested(path) => self.open_work_tree(path)?,
            }
        }
        Ok(None)
    }

    /// Adds the sources of the work tree at `prefix`: what git lists in it, tracked and not,
    /// and its `.git`.
    fn open_work_tree(&mut self, prefix: Vec<u8>) -> Result<(), ScanError> {
        let dir = self.context.root.join(path_of(&prefix));
        let include_ignored = self.context.include_ignored;
        let lists = [
            crate::git::Listed::Tracked,
            crate::git::Listed::Untracked { include_ignored },
        ];
        for listed in lists {
            let listing = crate::git::ls_files(&dir, listed, !prefix.is_empty())?;
            self.add_source(Box::new(Listed::new(self.context, &prefix, listing)))?;
        }
        if let Some(walk) = walk_git_dir(self.context.root, prefix) {
            self.add_source(walk)?;
        }
        Ok(())
    }

    fn add_source(&mut self, source: Source<'a>) -> Result<(), ScanError> {
        self.sources.push(Some(source));
        self.pull(self.sources.len() - 1)
    }

    /// Takes the next entry of `source` into the heads (and what comes out of band on the way).
    fn pull(&mut self, source: usize) -> Result<(), ScanError> {
        loop {
            let Some(next) = self.sources[source].as_mut().and_then(Iterator::next) else {
                self.sources[source] = None;
                return Ok(());
            };
            match next? {
                Next::Warning(warning) => self.warnings.push(warning),
                Next::Nested(path) => self.heads.push(Reverse(Head::Nested(path))),
                Next::Found(found) => {
                    self.heads.push(Reverse(Head::Found { found, source }));
                    return Ok(());
                }
            }
        }
    }
}

/// Paths listed and looked at a batch at a time.
const LOOK_BATCH: usize = 4096;

/// What `git ls-files` lists in the work tree at `prefix`, each path looked at.
struct Listed<'a> {
    context: &'a Context<'a>,
    prefix: Vec<u8>,
    listing: crate::git::Listing,
    ended: bool,
    ready: VecDeque<Next>,
    /// The folders on the way to the last path listed, and whether each is a real folder
    /// (not a link): the listing is sorted, so these are all a path's next ones can share.
    folders: Vec<(Vec<u8>, bool)>,
}

impl<'a> Listed<'a> {
    fn new(context: &'a Context<'a>, prefix: &[u8], listing: crate::git::Listing) -> Self {
        Self {
            context,
            prefix: prefix.to_vec(),
            listing,
            ended: false,
            ready: VecDeque::new(),
            folders: Vec::new(),
        }
    }

    /// Lists the next batch of paths and looks at them.
    fn list(&mut self) -> Result<(), ScanError> {
        let mut paths = Vec::new();
        while paths.len() < LOOK_BATCH {
            let Some(listed) = self.listing.next_path()? else {
                self.ended = true;
                let said = self.listing.finish()?;
                let warnings = git_warnings(&self.prefix, &said);
                self.ready.extend(warnings.into_iter().map(Next::Warning));
                break;
            };
            // An untracked nested repository is listed as `nested/`.
            let listed = listed.strip_suffix(b"/").unwrap_or(listed);
            let path = join(&self.prefix, listed);
            let excluded = self
                .context
                .exclude
                .matched_path_or_any_parents(path_of(&path), false)
                .is_ignore();
            if excluded {
                continue;
            }
            // A path git still lists under a folder that became a link is not read through it.
            if !self.under_real_folders(&path) {
                tracing::debug!(path = %lossy(&path), "under a link; not followed");
                continue;
            }
            paths.push(path);
        }
        // Looking at every file is most of a scan, and the kernel does it faster on two
        // threads than on one: spread it over the cores, as git's preloadIndex does.
        use rayon::prelude::*;
        let root = self.context.root;
        let looked: Vec<std::io::Result<std::fs::Metadata>> = paths
            .par_iter()
            .map(|path| std::fs::symlink_metadata(root.join(path_of(path))))
            .collect();
        for (path, metadata) in paths.into_iter().zip(looked) {
            let metadata = match metadata {
                Ok(metadata) => metadata,
                // Tracked but deleted: nothing to keep.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    let message = format!("cannot be looked at ({e}); left out");
                    self.ready.push_back(Next::Warning(warning(&path, message)));
                    continue;
                }
            };
            if metadata.is_dir() {
                // A submodule or a nested repository, unless a pattern names its folder (`dep/`);
                // any other folder holds nothing to keep.
                let nested = root.join(path_of(&path)).join(".git");
                let excluded = self
                    .context
                    .exclude
                    .matched(path_of(&path), true)
                    .is_ignore();
                if !excluded && std::fs::symlink_metadata(nested).is_ok() {
                    self.ready.push_back(Next::Nested(path));
                }
                continue;
            }
            self.ready.push_back(Next::Found(Found {
                path: RelPath(path),
                stat: Some(Stat::of(&metadata)),
            }));
        }
        Ok(())
    }

    /// Whether every folder on the way to `path` is a real folder, not a link or a file. A
    /// folder below the prefix that holds a repository of its own (one made inside a folder
    /// git tracks files in, which git lists as plain files) is said when first seen.
    fn under_real_folders(&mut self, path: &[u8]) -> bool {
        let ancestors = path
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| &path[..i]);
        for (depth, folder) in ancestors.enumerate() {
            let known = self.folders.get(depth).filter(|(f, _)| f == folder);
            let real = match known {
                Some((_, real)) => *real,
                None => {
                    self.folders.truncate(depth);
                    let full = self.context.root.join(path_of(folder));
                    let real = std::fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir());
                    if real && folder.len() > self.prefix.len() && holds_repository(&full) {
                        self.ready.push_back(Next::Nested(folder.to_vec()));
                    }
                    self.folders.push((folder.to_vec(), real));
                    real
                }
            };
            if !real {
                return false;
            }
        }
        true
    }
}

impl Iterator for Listed<'_> {
    type Item = Result<Next, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(next) = self.ready.pop_front() {
                return Some(Ok(next));
            }
            if self.ended {
                return None;
            }
            if let Err(e) = self.list() {
                self.ended = true;
                return Some(Err(e));
            }
        }
    }
}

/// Whether `folder` holds a repository: a `.git` folder with a `HEAD`, or a `.git` file
/// pointing to one (`gitdir: ...`), as git itself checks before it takes a folder for one.
fn holds_repository(folder: &Path) -> bool {
    let dot_git = folder.join(".git");
    match std::fs::symlink_metadata(&dot_git) {
        Ok(metadata) if metadata.is_file() && metadata.len() <= 4096 => {
            let Ok(link) = std::fs::read(&dot_git) else {
                return false;
            };
            let Some(target) = link.strip_prefix(b"gitdir: ") else {
                return false;
            };
            let target = path_of(target.trim_ascii_end());
            folder.join(target).join("HEAD").exists()
        }
        Ok(_) => dot_git.join("HEAD").exists(),
        Err(_) => false,
    }
}

/// git's own warnings about folders it could not read: each becomes a warning.
fn git_warnings(prefix: &[u8], stderr: &[u8]) -> Vec<Warning> {
    let mut warnings = Vec::new();
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
        warnings.push(warning(&folder, message));
    }
    warnings
}

fn warning(path: &[u8], message: String) -> Warning {
    tracing::warn!(path = %lossy(path), %message);
    Warning::new(lossy(path), message)
}

/// The `.git` of the work tree at `prefix`, in [`order`]: folders, files and links, except
/// gitkit's state and git's lock files; a `.git` file (a submodule's, a linked worktree's) as
/// it is. `None` when there is none.
fn walk_git_dir<'a>(root: &'a Path, prefix: Vec<u8>) -> Option<Source<'a>> {
    let path = join(&prefix, b".git");
    let dot_git = root.join(path_of(&path));
    let metadata = std::fs::symlink_metadata(&dot_git).ok()?;
    if !metadata.is_dir() {
        // A link is kept as a link: the repository it leads to is not in the snapshot.
        let elsewhere = metadata.is_symlink().then(|| {
            let message = "is a link; the repository it leads to is not in the snapshot";
            Ok(Next::Warning(warning(&path, message.to_string())))
        });
        let found = Found {
            path: RelPath(path),
            stat: Some(Stat::of(&metadata)),
        };
        let found = elsewhere.into_iter().chain([Ok(Next::Found(found))]);
        return Some(Box::new(found));
    }
    let walk = walkdir::WalkDir::new(&dot_git)
        .sort_by(|a, b| {
            let (a_name, b_name) = (a.file_name().as_bytes(), b.file_name().as_bytes());
            order(
                a_name,
                a.file_type().is_dir(),
                b_name,
                b.file_type().is_dir(),
            )
        })
        .into_iter()
        .filter_entry(|entry| {
            let ours = entry.depth() == 1 && entry.file_name() == STATE_DIR;
            let lock = entry.file_name().as_bytes().ends_with(b".lock");
            !(ours || lock)
        });
    // git may remove a file while we walk (a gc, a lock released): that is not an error.
    let vanished = |e: &walkdir::Error| {
        e.io_error()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    };
    let found = walk.filter_map(move |entry| {
        let walk_error = |e| Some(Err(ScanError::Walk(dot_git.clone(), e)));
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if vanished(&e) => return None,
            Err(e) => return walk_error(e),
        };
        let relative = entry.path().strip_prefix(root).expect("under the root");
        let path = RelPath(relative.as_os_str().as_bytes().to_vec());
        let stat = if entry.file_type().is_file() && is_immutable(&path) {
            None
        } else {
            match entry.metadata() {
                Ok(metadata) => Some(Stat::of(&metadata)),
                Err(e) if vanished(&e) => return None,
                Err(e) => return walk_error(e),
            }
        };
        Some(Ok(Next::Found(Found { path, stat })))
    });
    Some(Box::new(found))
}

fn path_of(bytes: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
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

    fn merged(lists: &[&[(&str, bool)]]) -> Result<Vec<String>, ScanError> {
        let root = Path::new("/nonexistent");
        let exclude = Gitignore::empty();
        let context = Context {
            root,
            exclude: &exclude,
            include_ignored: false,
        };
        let mut merge = Merge::new(&context);
        for list in lists {
            let found = list.iter().map(|(path, is_dir)| {
                let mode = if *is_dir { 0o040755 } else { 0o100644 };
                let stat = Stat {
                    size: 0,
                    mtime_ns: 0,
                    ctime_ns: 0,
                    ino: 0,
                    dev: 0,
                    mode,
                };
                Ok(Next::Found(Found {
                    path: RelPath(path.as_bytes().to_vec()),
                    stat: Some(stat),
                }))
            });
            merge.add_source(Box::new(found.collect::<Vec<_>>().into_iter()))?;
        }
        let mut paths = Vec::new();
        while let Some(found) = merge.next()? {
            paths.push(found.path.to_string());
        }
        Ok(paths)
    }

    #[test]
    fn sources_merge_into_one_ordered_list_each_path_once() {
        let tracked: &[(&str, bool)] = &[("a-1", false), ("a.txt", false), ("a/b", false)];
        let untracked: &[(&str, bool)] = &[("a/a", false), ("a/b", false), ("c", false)];
        let walked: &[(&str, bool)] = &[(".git", true), (".git/x", false)];
        assert_eq!(
            merged(&[tracked, untracked, walked]).unwrap(),
            [".git", ".git/x", "a-1", "a.txt", "a/a", "a/b", "c"]
        );
    }

    #[test]
    fn a_source_out_of_order_fails_the_scan_rather_than_misplace_an_entry() {
        let unsorted: &[(&str, bool)] = &[("b", false), ("a", false)];
        let error = merged(&[unsorted]).unwrap_err();
        assert!(matches!(error, ScanError::Unsorted(path) if path == "a"));
    }

    /// git's tree order: a folder sorts as if its name ended in `/`.
    #[test]
    fn a_folder_sorts_as_its_name_and_a_slash() {
        let mut names = vec![
            ("a", true),
            ("a!", false),
            ("a-1", false),
            ("a.txt", false),
            ("a0", false),
            ("a/b", false),
            ("a/b", false),
            ("", true),
            ("B", false),
        ];
        names.sort_by(|a, b| order(a.0.as_bytes(), a.1, b.0.as_bytes(), b.1));
        let sorted: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            sorted,
            ["", "B", "a!", "a-1", "a.txt", "a", "a/b", "a/b", "a0"]
        );
        for (a, b) in [("a", "a.txt"), ("a.txt", "a/b"), ("ab", "b")] {
            let (a, b) = (a.as_bytes(), b.as_bytes());
            assert_eq!(
                order(a, false, b, false),
                a.cmp(b),
                "files compare as bytes"
            );
        }
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
