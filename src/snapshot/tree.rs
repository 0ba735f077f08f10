//! Format 2: a snapshot's folders as trees, as git and restic have them. Each folder is a
//! tree blob (its entries, sorted by name, as JSON) named by the hash of those bytes and packed,
//! compressed and deduplicated like file content; a folder that did not change is the same
//! blob as before, so a one-file edit stores that file and the trees on its path.
//!
//! In memory a snapshot stays the flat, checked [`Manifest`] that restore works from: [`build`]
//! turns its entries into trees, [`Loader::entries`] turns trees read from a store back into
//! entries, checking every tree against its hash and every name before believing it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::id::Hash;
use super::index::BlobIndex;
use super::manifest::{BlobRef, Entry, Kind, ManifestError, RelPath};
use super::pack::{MAX_BLOB_LEN, data_key, unpack};
use crate::store::{Store, StoreError};

/// Deeper than any path a file system allows (4,096 bytes, two per level at least).
const MAX_DEPTH: usize = 2048;
/// More entries than this in one snapshot are not believed: a store that names one tree under
/// many names could otherwise make a few small trees unfold into billions of entries.
const MAX_ENTRIES: usize = 10_000_000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Tree {
    entries: Vec<Node>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Node {
    /// One path segment: not empty, not `.` or `..`, no `/` and no NUL.
    name: RelPath,
    #[serde(flatten)]
    kind: NodeKind,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum NodeKind {
    File {
        mode: u32,
        size: u64,
        mtime_ns: i64,
        hash: Hash,
        /// The content's blobs in order; absent when the file is one blob whose hash is the
        /// file's (or, empty, none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blobs: Option<Vec<Hash>>,
    },
    Symlink {
        target: RelPath,
    },
    Dir {
        tree: Hash,
        /// The folder's permission bits, where the snapshot records them (`.git`'s folders).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
}

/// A tree to store: its hash and its bytes (uncompressed).
pub struct TreeBlob {
    pub hash: Hash,
    pub data: Vec<u8>,
}

/// One entry of a snapshot, as the [`Builder`] takes it.
pub enum Item<'a> {
    File {
        mode: u32,
        size: u64,
        mtime_ns: i64,
        hash: Hash,
        blobs: &'a [Hash],
    },
    Symlink(&'a RelPath),
    /// A folder the snapshot records with its permission bits (`.git`'s folders).
    Dir(u32),
}

/// Makes trees from entries that come sorted by path, as a scan finds them: everything under
/// a folder comes together, so only the folders on the current path are open, and each
/// folder's tree is done (and handed on) as soon as the entries move past it. A workspace of
/// any size holds no more than that path's folders in memory.
///
/// What it makes is what a reader accepts: every name one safe segment, none twice in a
/// folder (a file and a folder of one name included).
pub struct Builder {
    /// The folders on the current path, the root first: each one's path, tree so far, and
    /// recorded mode.
    open: Vec<(Vec<u8>, Tree, Option<u32>)>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            open: vec![(Vec::new(), Tree::default(), None)],
        }
    }
}

impl Builder {
    /// Adds the entry at `path`; `done` gets each tree that is complete.
    pub fn add(
        &mut self,
        path: &RelPath,
        item: Item<'_>,
        done: &mut impl FnMut(TreeBlob),
    ) -> Result<(), ManifestError> {
        let unsafe_name = |c: &[u8]| c.is_empty() || c == b"." || c == b".." || c.contains(&0);
        if path.0.is_empty() || path.components().any(unsafe_name) {
            return Err(ManifestError::UnsafePath(path.clone()));
        }
        let (parent, name) = split(&path.0);
        self.open_folder(parent, done)?;
        let kind = match item {
            Item::Dir(mode) => {
                self.open
                    .push((path.0.clone(), Tree::default(), Some(mode)));
                return Ok(());
            }
            Item::Symlink(target) => NodeKind::Symlink {
                target: target.clone(),
            },
            Item::File {
                mode,
                size,
                mtime_ns,
                hash,
                blobs,
            } => {
                let implied = match blobs {
                    [] => size == 0,
                    [only] => *only == hash,
                    _ => false,
                };
                NodeKind::File {
                    mode,
                    size,
                    mtime_ns,
                    hash,
                    blobs: (!implied).then(|| blobs.to_vec()),
                }
            }
        };
        let node = Node {
            name: RelPath(name.to_vec()),
            kind,
        };
        self.open.last_mut().expect("the root").1.entries.push(node);
        Ok(())
    }

    /// Closes the last folders, the root last; its hash.
    pub fn finish(mut self, done: &mut impl FnMut(TreeBlob)) -> Result<Hash, ManifestError> {
        while self.open.len() > 1 {
            self.close(done)?;
        }
        let (_, tree, _) = self.open.pop().expect("the root");
        let root = seal(b"", tree)?;
        let hash = root.hash;
        done(root);
        Ok(hash)
    }

    /// Makes `folder` the innermost open folder: closes those the entries left, opens those
    /// on the way down.
    fn open_folder(
        &mut self,
        folder: &[u8],
        done: &mut impl FnMut(TreeBlob),
    ) -> Result<(), ManifestError> {
        let inside = |open: &[u8]| {
            open.is_empty()
                || folder == open
                || folder.starts_with(open) && folder.get(open.len()) == Some(&b'/')
        };
        while !inside(&self.open.last().expect("the root").0) {
            self.close(done)?;
        }
        let top = self.open.last().expect("the root").0.len();
        if folder.len() > top {
            let start = if top == 0 { 0 } else { top + 1 };
            for (i, _) in folder[start..]
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'/')
            {
                let path = folder[..start + i].to_vec();
                self.open.push((path, Tree::default(), None));
            }
            self.open.push((folder.to_vec(), Tree::default(), None));
        }
        Ok(())
    }

    /// Closes the innermost folder: its tree is done, and named in its parent's.
    fn close(&mut self, done: &mut impl FnMut(TreeBlob)) -> Result<(), ManifestError> {
        let (path, tree, mode) = self.open.pop().expect("a folder to close");
        let blob = seal(&path, tree)?;
        let node = Node {
            name: RelPath(split(&path).1.to_vec()),
            kind: NodeKind::Dir {
                tree: blob.hash,
                mode,
            },
        };
        done(blob);
        self.open.last_mut().expect("the root").1.entries.push(node);
        Ok(())
    }
}

/// A folder's tree as stored: entries sorted by name, none twice.
fn seal(path: &[u8], mut tree: Tree) -> Result<TreeBlob, ManifestError> {
    tree.entries.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = tree.entries.windows(2).find(|w| w[0].name == w[1].name) {
        let mut twice = path.to_vec();
        if !twice.is_empty() {
            twice.push(b'/');
        }
        twice.extend_from_slice(&pair[0].name.0);
        return Err(ManifestError::Duplicate(RelPath(twice)));
    }
    let data = serde_json::to_vec(&tree).expect("a tree serializes");
    Ok(TreeBlob {
        hash: Hash::of(&data),
        data,
    })
}

/// A file node's blobs: as listed, or, when the list is left out, the file's own hash (one
/// blob) or none (an empty file).
fn content_blobs(blobs: Option<Vec<Hash>>, size: u64, hash: Hash) -> Vec<Hash> {
    match blobs {
        Some(blobs) => blobs,
        None if size == 0 => Vec::new(),
        None => vec![hash],
    }
}

/// (`a/b`, `c`) for `a/b/c`; (``, `c`) for `c`.
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (b"", path),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("the snapshot refers to {what} {hash}, which no pack in the store holds")]
    Missing { what: &'static str, hash: String },
    #[error("tree {0} does not match its hash")]
    Corrupt(String),
    #[error("tree {0} does not parse")]
    Parse(String, #[source] serde_json::Error),
    #[error("tree {0} names an entry that is not one safe path segment, or names one twice")]
    BadName(String),
    #[error("the snapshot's trees nest deeper or hold more entries than any workspace can")]
    TooLarge,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a walk through a snapshot's trees is: the trees still to read, with their folders'
/// paths and depths, and how many nodes it met so far.
pub struct Walk {
    pending: Vec<(Vec<u8>, Hash, usize)>,
    nodes: usize,
}

impl Walk {
    pub fn new(root: &Hash) -> Self {
        Self {
            pending: vec![(Vec::new(), *root, 0)],
            nodes: 0,
        }
    }
}

/// The packs trees were read from, kept in an unnamed file in the temporary folder rather than
/// in memory (the trees of a large workspace fill many packs), each tree read back by its
/// place. Clones share the file: the next snapshot a reader reads, or the restore after the
/// check, finds the packs there.
#[derive(Clone, Default)]
pub struct TreePacks(Arc<Mutex<PackFile>>);

#[derive(Default)]
struct PackFile {
    file: Option<std::fs::File>,
    /// Where each pack is in the file, and its length.
    places: HashMap<Hash, (u64, u64)>,
    end: u64,
}

/// A failure of the file [`TreePacks`] keeps (this machine's, not the store's).
fn pack_file_error(action: &'static str, source: std::io::Error) -> StoreError {
    StoreError::Local {
        action,
        what: "the packs of trees read",
        source,
    }
}

impl TreePacks {
    fn lock(&self) -> std::sync::MutexGuard<'_, PackFile> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn has(&self, pack: &Hash) -> bool {
        self.lock().places.contains_key(pack)
    }

    fn add(&self, pack: Hash, data: &[u8]) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        let mut packs = self.lock();
        if packs.file.is_none() {
            packs.file = Some(tempfile::tempfile().map_err(|e| pack_file_error("create", e))?);
        }
        let at = packs.end;
        let file = packs.file.as_ref().expect("made above");
        file.write_all_at(data, at)
            .map_err(|e| pack_file_error("write", e))?;
        packs.places.insert(pack, (at, data.len() as u64));
        packs.end += data.len() as u64;
        Ok(())
    }

    /// `len` bytes at `offset` in `pack`; `None` when they are not all inside it.
    fn read(&self, pack: &Hash, offset: u64, len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        use std::os::unix::fs::FileExt;
        let packs = self.lock();
        let (Some(&(at, size)), Some(file)) = (packs.places.get(pack), packs.file.as_ref()) else {
            return Ok(None);
        };
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Ok(None);
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, at + offset)
            .map_err(|e| pack_file_error("read", e))?;
        Ok(Some(bytes))
    }
}

/// Reads trees out of a store, through its pack index.
pub struct Loader<'a, S: Store> {
    store: &'a S,
    index: &'a BlobIndex,
    /// Packs read so far: trees are packed apart from file content, so a few packs hold them.
    packs: TreePacks,
    /// The packs this loader's trees came from.
    touched: HashSet<Hash>,
    /// [`MAX_ENTRIES`]; smaller in tests.
    limit: usize,
}

impl<'a, S: Store> Loader<'a, S> {
    pub fn new(store: &'a S, index: &'a BlobIndex) -> Self {
        Self::with_packs(store, index, TreePacks::default())
    }

    /// A loader that starts with the packs another one read ([`Loader::into_packs`]): many
    /// snapshots of a workspace share most of their trees.
    pub fn with_packs(store: &'a S, index: &'a BlobIndex, packs: TreePacks) -> Self {
        Self {
            store,
            index,
            packs,
            touched: Default::default(),
            limit: MAX_ENTRIES,
        }
    }

    pub fn into_packs(self) -> TreePacks {
        self.packs
    }

    /// The entries of the tree `root`, sorted by path, each file's blobs located in the index.
    /// `files` is how many the snapshot says it holds: room for them is made at once (a list
    /// that doubles as it grows holds up to three times its entries while it moves).
    pub async fn entries(&mut self, root: &Hash, files: u64) -> Result<Vec<Entry>, TreeError> {
        let room = files.min(self.limit as u64 / 8) as usize;
        let mut entries = Vec::with_capacity(room + room / 16 + 1024);
        let mut walk = Walk::new(root);
        while self.next(&mut walk, &mut entries, usize::MAX).await? {}
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Adds the entries of the next trees of `walk` to `entries`, a whole tree at a time, until
    /// it holds at least `batch` or the walk is over; whether there are more to come. Folders
    /// come in no particular order, and each folder's entries sorted.
    pub async fn next(
        &mut self,
        walk: &mut Walk,
        entries: &mut Vec<Entry>,
        batch: usize,
    ) -> Result<bool, TreeError> {
        while entries.len() < batch {
            let Some((folder, hash, depth)) = walk.pending.pop() else {
                return Ok(false);
            };
            if depth > MAX_DEPTH {
                return Err(TreeError::TooLarge);
            }
            let tree = self.tree(&hash).await?;
            for Node { name, kind } in tree.entries {
                // Every node counts, folders without an entry of their own too: a few trees
                // that name each other twice at each level unfold into 2^depth folders and no
                // other entry.
                walk.nodes += 1;
                if walk.nodes > self.limit {
                    return Err(TreeError::TooLarge);
                }
                let path = if folder.is_empty() {
                    name.0
                } else {
                    [folder.as_slice(), b"/", &name.0].concat()
                };
                let kind = match kind {
                    NodeKind::Dir { tree, mode } => {
                        walk.pending.push((path.clone(), tree, depth + 1));
                        match mode {
                            Some(mode) => Kind::Dir { mode },
                            None => continue,
                        }
                    }
                    NodeKind::Symlink { target } => Kind::Symlink { target },
                    NodeKind::File {
                        mode,
                        size,
                        mtime_ns,
                        hash: content,
                        blobs,
                    } => {
                        let blobs = content_blobs(blobs, size, content);
                        Kind::File {
                            mode,
                            size,
                            hash: content,
                            mtime_ns,
                            blobs: self.locate_all(&blobs)?,
                        }
                    }
                };
                entries.push(Entry {
                    path: RelPath(path),
                    kind,
                });
            }
        }
        Ok(!walk.pending.is_empty())
    }

    /// Adds to `used` the hashes of tree `root`, of every tree below it and of every blob
    /// their files hold, each of which a pack the index knows must hold ([`TreeError::Missing`]
    /// names the first that none does). A tree already in `used` is not read again: across
    /// many snapshots of one workspace, each distinct tree is read once. On an error `used` is
    /// as it was: a tree in it always stands for everything below it.
    pub async fn collect(
        &mut self,
        root: &Hash,
        used: &mut HashSet<Hash>,
    ) -> Result<(), TreeError> {
        let mut added = Vec::new();
        let collected = self.collect_adding(root, used, &mut added).await;
        if collected.is_err() {
            for hash in &added {
                used.remove(hash);
            }
        }
        collected
    }

    async fn collect_adding(
        &mut self,
        root: &Hash,
        used: &mut HashSet<Hash>,
        added: &mut Vec<Hash>,
    ) -> Result<(), TreeError> {
        let mut pending = vec![*root];
        while let Some(hash) = pending.pop() {
            if used.len() >= self.limit {
                return Err(TreeError::TooLarge);
            }
            if !used.insert(hash) {
                continue;
            }
            added.push(hash);
            for node in self.tree(&hash).await?.entries {
                match node.kind {
                    NodeKind::Dir { tree, .. } => pending.push(tree),
                    NodeKind::File {
                        size,
                        hash: content,
                        blobs,
                        ..
                    } => {
                        for blob in content_blobs(blobs, size, content) {
                            self.locate("blob", &blob)?;
                            if used.insert(blob) {
                                added.push(blob);
                            }
                        }
                    }
                    NodeKind::Symlink { .. } => {}
                }
            }
        }
        Ok(())
    }

    /// The packs trees were read from so far.
    pub fn packs_read(&self) -> impl Iterator<Item = &Hash> {
        self.touched.iter()
    }

    /// Every blob of a file, located; exactly as many places as blobs (a list collected
    /// through `Result` starts with room for four, which at 100,000 files is 30 MB).
    fn locate_all(&self, blobs: &[Hash]) -> Result<Vec<BlobRef>, TreeError> {
        let mut located = Vec::with_capacity(blobs.len());
        for blob in blobs {
            located.push(self.locate("blob", blob)?);
        }
        Ok(located)
    }

    fn locate(&self, what: &'static str, hash: &Hash) -> Result<BlobRef, TreeError> {
        self.index.locate(hash).ok_or_else(|| TreeError::Missing {
            what,
            hash: hash.to_string(),
        })
    }

    /// Tree `hash`, checked: its content hashes to its name, it parses, and its names are
    /// single safe segments in strictly increasing order.
    async fn tree(&mut self, hash: &Hash) -> Result<Tree, TreeError> {
        let blob = self.locate("tree", hash)?;
        self.touched.insert(blob.pack);
        if !self.packs.has(&blob.pack) {
            let key = data_key(&blob.pack.to_hex()).expect("a hash is a pack id");
            let data = self.store.get(&key).await?;
            self.packs.add(blob.pack, &data)?;
        }
        let corrupt = || TreeError::Corrupt(hash.to_string());
        if blob.len > MAX_BLOB_LEN {
            return Err(corrupt());
        }
        let stored = self
            .packs
            .read(&blob.pack, blob.offset, blob.len)?
            .ok_or_else(corrupt)?;
        let data = unpack(&stored, blob.raw_len).map_err(|_| corrupt())?;
        if Hash::of(&data) != *hash {
            return Err(corrupt());
        }
        let tree: Tree =
            serde_json::from_slice(&data).map_err(|e| TreeError::Parse(hash.to_string(), e))?;
        let safe = |name: &RelPath| {
            let n = name.0.as_slice();
            !n.is_empty() && n != b"." && n != b".." && !n.contains(&b'/') && !n.contains(&0)
        };
        let sorted = tree.entries.windows(2).all(|w| w[0].name < w[1].name);
        if !sorted || !tree.entries.iter().all(|node| safe(&node.name)) {
            return Err(TreeError::BadName(hash.to_string()));
        }
        Ok(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the trees of `files` (path, content), sorted by path; the last tree is the root.
    fn build(files: &[(&str, &[u8])], dirs: &[&str]) -> Vec<TreeBlob> {
        let mut items: Vec<(RelPath, Option<Hash>, &[u8])> = files
            .iter()
            .map(|(path, content)| {
                (
                    RelPath(path.as_bytes().to_vec()),
                    Some(Hash::of(content)),
                    *content,
                )
            })
            .chain(
                dirs.iter()
                    .map(|d| (RelPath(d.as_bytes().to_vec()), None, &b""[..])),
            )
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut trees = Vec::new();
        let mut builder = Builder::default();
        let mut done = |tree| trees.push(tree);
        for (path, hash, content) in &items {
            let item = match hash {
                Some(hash) => Item::File {
                    mode: 0o644,
                    size: content.len() as u64,
                    mtime_ns: 1,
                    hash: *hash,
                    blobs: if content.is_empty() {
                        &[]
                    } else {
                        std::slice::from_ref(hash)
                    },
                },
                None => Item::Dir(0o755),
            };
            builder.add(path, item, &mut done).expect("a good entry");
        }
        builder.finish(&mut done).expect("a good snapshot");
        trees
    }

    fn tree_of(trees: &[TreeBlob], hash: &Hash) -> Tree {
        let blob = trees.iter().find(|t| t.hash == *hash).expect("present");
        serde_json::from_slice(&blob.data).expect("parses")
    }

    #[test]
    fn one_tree_per_folder_children_first_names_sorted() {
        let trees = build(
            &[("a.b", b"x"), ("a/c", b"y"), ("a/d/e", b""), ("a/d0", b"z")],
            &[".git"],
        );
        assert_eq!(trees.len(), 4, "root, a, a/d and .git");
        let root = tree_of(&trees, &trees.last().expect("root").hash);
        let names: Vec<&[u8]> = root.entries.iter().map(|n| n.name.0.as_slice()).collect();
        assert_eq!(names, [&b".git"[..], b"a", b"a.b"]);
        match &root.entries[0].kind {
            NodeKind::Dir { mode, .. } => assert_eq!(*mode, Some(0o755)),
            other => panic!("{other:?}"),
        }
        match &root.entries[1].kind {
            NodeKind::Dir { mode, tree } => {
                assert_eq!(*mode, None);
                let names: Vec<String> = tree_of(&trees, tree)
                    .entries
                    .iter()
                    .map(|n| n.name.to_string())
                    .collect();
                assert_eq!(
                    names,
                    ["c", "d", "d0"],
                    "a folder closed and its sibling after it"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_edit_changes_only_the_trees_on_its_path() {
        let before = [("a/x", &b"1"[..]), ("b/y", b"2"), ("c", b"3")];
        let mut after = before;
        after[0].1 = b"changed";
        let old: Vec<Hash> = build(&before, &[]).into_iter().map(|t| t.hash).collect();
        let new: Vec<Hash> = build(&after, &[]).into_iter().map(|t| t.hash).collect();
        let changed = new.iter().filter(|h| !old.contains(h)).count();
        assert_eq!(changed, 2, "the tree of `a` and the root");
    }

    #[test]
    fn a_name_twice_in_a_folder_is_refused() {
        let mut builder = Builder::default();
        let mut done = |_| {};
        let hash = Hash::of(b"");
        let file = || Item::File {
            mode: 0o644,
            size: 0,
            mtime_ns: 0,
            hash,
            blobs: &[],
        };
        builder
            .add(&RelPath(b"a".to_vec()), file(), &mut done)
            .expect("a file");
        builder
            .add(&RelPath(b"a/b".to_vec()), file(), &mut done)
            .expect("opens a folder `a`");
        assert!(matches!(
            builder.finish(&mut done),
            Err(ManifestError::Duplicate(_))
        ));
        for bad in [&b""[..], b"x/../y", b"x//y", b"nul\0"] {
            let bad = RelPath(bad.to_vec());
            assert!(
                Builder::default().add(&bad, file(), &mut done).is_err(),
                "{bad:?}"
            );
        }
    }

    /// 21 trees, each naming the one below twice: 2^20 folders, and not one entry of their
    /// own (no mode), which the limit once did not count, so reading them never ended early.
    #[test]
    fn trees_that_fan_out_stop_at_the_limit() {
        use super::super::pack::{PackIndex, Packed};
        let mut trees = vec![br#"{"entries":[]}"#.to_vec()];
        for _ in 0..20 {
            let below = Hash::of(trees.last().expect("one"));
            let tree = format!(
                r#"{{"entries":[{{"name":"a","kind":"dir","tree":"{below}"}},{{"name":"b","kind":"dir","tree":"{below}"}}]}}"#
            );
            trees.push(tree.into_bytes());
        }
        let pack = trees.concat();
        let id = blake3::hash(&pack).to_hex().to_string();
        let mut offset = 0;
        let mut blobs = Vec::new();
        for tree in &trees {
            blobs.push(Packed {
                hash: Hash::of(tree),
                offset,
                len: tree.len() as u64,
                raw_len: None,
            });
            offset += tree.len() as u64;
        }
        let top = blobs.last().expect("top").hash;
        let mut index = BlobIndex::default();
        index.add_written(PackIndex {
            pack: id.clone(),
            blobs,
        });
        let root = tempfile::tempdir().expect("temp dir");
        let store = crate::store::DirStore::new(root.path().to_path_buf());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let read = runtime.block_on(async {
            store
                .put(&data_key(&id).expect("key"), pack.into())
                .await
                .expect("put");
            let mut loader = Loader::new(&store, &index);
            loader.limit = 1000;
            loader.entries(&top, 0).await
        });
        assert!(matches!(read, Err(TreeError::TooLarge)), "{read:?}");
    }
}
