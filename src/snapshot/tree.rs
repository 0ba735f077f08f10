//! Format 2: a snapshot's folders as trees, as git and restic have them. Each folder is a
//! tree blob (its entries, sorted by name, as JSON) named by the hash of those bytes and packed,
//! compressed and deduplicated like file content; a folder that did not change is the same
//! blob as before, so a one-file edit stores that file and the trees on its path.
//!
//! In memory a snapshot stays the flat, checked [`Manifest`] that restore works from: [`build`]
//! turns its entries into trees, [`Loader::entries`] turns trees read from a store back into
//! entries, checking every tree against its hash and every name before believing it.

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::id::{check_hash, is_hash};
use super::index::BlobIndex;
use super::manifest::{BlobRef, Entry, Kind, RelPath};
use super::pack::{data_key, unpack};
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
        hash: String,
        /// The content's blobs in order; absent when the file is one blob whose hash is the
        /// file's (or, empty, none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blobs: Option<Vec<String>>,
    },
    Symlink {
        target: RelPath,
    },
    Dir {
        tree: String,
        /// The folder's permission bits, where the snapshot records them (`.git`'s folders).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
}

/// A tree to store: its hash and its bytes (uncompressed).
pub struct TreeBlob {
    pub hash: String,
    pub data: Vec<u8>,
}

/// The trees of `entries` (a checked manifest's), children before parents; the last is the
/// root.
pub fn build(entries: &[Entry]) -> Vec<TreeBlob> {
    let mut folders: HashMap<&[u8], Tree> = HashMap::new();
    let mut modes: HashMap<&[u8], u32> = HashMap::new();
    folders.insert(b"", Tree::default());
    for entry in entries {
        let path = entry.path.0.as_slice();
        let (parent, name) = split(path);
        let kind = match &entry.kind {
            Kind::Dir { mode } => {
                modes.insert(path, *mode);
                add_folder(&mut folders, path);
                continue;
            }
            Kind::File {
                mode,
                size,
                hash,
                mtime_ns,
                blobs,
            } => {
                let implied = match blobs.as_slice() {
                    [] => *size == 0,
                    [only] => only.hash == *hash,
                    _ => false,
                };
                NodeKind::File {
                    mode: *mode,
                    size: *size,
                    mtime_ns: *mtime_ns,
                    hash: hash.clone(),
                    blobs: (!implied).then(|| blobs.iter().map(|b| b.hash.clone()).collect()),
                }
            }
            Kind::Symlink { target } => NodeKind::Symlink {
                target: target.clone(),
            },
        };
        add_folder(&mut folders, parent);
        let node = Node {
            name: RelPath(name.to_vec()),
            kind,
        };
        folders.get_mut(parent).expect("added").entries.push(node);
    }
    // Deepest first, so that each folder's tree is done before its parent's.
    let mut order: Vec<&[u8]> = folders.keys().copied().collect();
    order.sort_by_key(|path| std::cmp::Reverse(depth(path)));
    let mut trees = Vec::with_capacity(order.len());
    for path in order {
        let mut tree = folders.remove(path).expect("listed");
        tree.entries.sort_by(|a, b| a.name.cmp(&b.name));
        let data = serde_json::to_vec(&tree).expect("a tree serializes");
        let hash = blake3::hash(&data).to_hex().to_string();
        if !path.is_empty() {
            let (parent, name) = split(path);
            folders
                .get_mut(parent)
                .expect("parents outlive children")
                .entries
                .push(Node {
                    name: RelPath(name.to_vec()),
                    kind: NodeKind::Dir {
                        tree: hash.clone(),
                        mode: modes.get(path).copied(),
                    },
                });
        }
        trees.push(TreeBlob { hash, data });
    }
    trees
}

/// A file node's blobs: as listed, or, when the list is left out, the file's own hash (one
/// blob) or none (an empty file).
fn content_blobs(blobs: Option<Vec<String>>, size: u64, hash: &str) -> Vec<String> {
    match blobs {
        Some(blobs) => blobs,
        None if size == 0 => Vec::new(),
        None => vec![hash.to_string()],
    }
}

/// Adds `path` and every folder above it.
fn add_folder<'a>(folders: &mut HashMap<&'a [u8], Tree>, mut path: &'a [u8]) {
    while !folders.contains_key(path) {
        folders.insert(path, Tree::default());
        path = split(path).0;
    }
}

/// (`a/b`, `c`) for `a/b/c`; (``, `c`) for `c`.
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (b"", path),
    }
}

fn depth(path: &[u8]) -> usize {
    if path.is_empty() {
        0
    } else {
        1 + path.iter().filter(|&&b| b == b'/').count()
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
    #[error("tree {0} names a bad hash")]
    BadHash(String),
    #[error("the snapshot's trees nest deeper or hold more entries than any workspace can")]
    TooLarge,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads trees out of a store, through its pack index.
pub struct Loader<'a, S: Store> {
    store: &'a S,
    index: &'a BlobIndex,
    /// Packs read so far: trees are packed apart from file content, so a few packs hold them.
    packs: HashMap<String, Bytes>,
    /// The packs this loader's trees came from.
    touched: std::collections::HashSet<String>,
    /// [`MAX_ENTRIES`]; smaller in tests.
    limit: usize,
}

impl<'a, S: Store> Loader<'a, S> {
    pub fn new(store: &'a S, index: &'a BlobIndex) -> Self {
        Self::with_packs(store, index, HashMap::new())
    }

    /// A loader that starts with the packs another one read ([`Loader::into_packs`]): many
    /// snapshots of a workspace share most of their trees.
    pub fn with_packs(store: &'a S, index: &'a BlobIndex, packs: HashMap<String, Bytes>) -> Self {
        Self {
            store,
            index,
            packs,
            touched: Default::default(),
            limit: MAX_ENTRIES,
        }
    }

    pub fn into_packs(self) -> HashMap<String, Bytes> {
        self.packs
    }

    /// The entries of the tree `root`, sorted by path, each file's blobs located in the index.
    pub async fn entries(&mut self, root: &str) -> Result<Vec<Entry>, TreeError> {
        let mut entries = Vec::new();
        let mut pending = vec![(Vec::new(), root.to_string(), 0usize)];
        // Every node counts, folders without an entry of their own too: a few trees that name
        // each other twice at each level unfold into 2^depth folders and no other entry.
        let mut nodes = 0usize;
        while let Some((folder, hash, depth)) = pending.pop() {
            if depth > MAX_DEPTH {
                return Err(TreeError::TooLarge);
            }
            let tree = self.tree(&hash).await?;
            for Node { name, kind } in tree.entries {
                nodes += 1;
                if nodes > self.limit {
                    return Err(TreeError::TooLarge);
                }
                let path = if folder.is_empty() {
                    name.0
                } else {
                    [folder.as_slice(), b"/", &name.0].concat()
                };
                let kind = match kind {
                    NodeKind::Dir { tree, mode } => {
                        check_hash(&tree).map_err(|_| TreeError::BadHash(hash.clone()))?;
                        pending.push((path.clone(), tree, depth + 1));
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
                        let blobs = content_blobs(blobs, size, &content);
                        if !is_hash(&content) || !blobs.iter().all(|b| is_hash(b)) {
                            return Err(TreeError::BadHash(hash.clone()));
                        }
                        Kind::File {
                            mode,
                            size,
                            hash: content,
                            mtime_ns,
                            blobs: blobs
                                .iter()
                                .map(|blob| self.locate("blob", blob))
                                .collect::<Result<_, _>>()?,
                        }
                    }
                };
                entries.push(Entry {
                    path: RelPath(path),
                    kind,
                });
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Adds to `used` the hashes of tree `root`, of every tree below it and of every blob
    /// their files hold. A tree already in `used` is not read again: across many snapshots of
    /// one workspace, each distinct tree is read once.
    pub async fn collect(
        &mut self,
        root: &str,
        used: &mut std::collections::HashSet<String>,
    ) -> Result<(), TreeError> {
        let mut pending = vec![root.to_string()];
        while let Some(hash) = pending.pop() {
            if used.len() >= self.limit {
                return Err(TreeError::TooLarge);
            }
            if !used.insert(hash.clone()) {
                continue;
            }
            for node in self.tree(&hash).await?.entries {
                match node.kind {
                    NodeKind::Dir { tree, .. } => {
                        check_hash(&tree).map_err(|_| TreeError::BadHash(hash.clone()))?;
                        pending.push(tree);
                    }
                    NodeKind::File {
                        size,
                        hash: content,
                        blobs,
                        ..
                    } => {
                        let blobs = content_blobs(blobs, size, &content);
                        for blob in blobs {
                            check_hash(&blob).map_err(|_| TreeError::BadHash(hash.clone()))?;
                            used.insert(blob);
                        }
                    }
                    NodeKind::Symlink { .. } => {}
                }
            }
        }
        Ok(())
    }

    /// The packs trees were read from so far.
    pub fn packs_read(&self) -> impl Iterator<Item = &String> {
        self.touched.iter()
    }

    fn locate(&self, what: &'static str, hash: &str) -> Result<BlobRef, TreeError> {
        self.index.locate(hash).ok_or_else(|| TreeError::Missing {
            what,
            hash: hash.to_string(),
        })
    }

    /// Tree `hash`, checked: its content hashes to its name, it parses, and its names are
    /// single safe segments in strictly increasing order.
    async fn tree(&mut self, hash: &str) -> Result<Tree, TreeError> {
        let blob = self.locate("tree", hash)?;
        self.touched.insert(blob.pack.clone());
        if !self.packs.contains_key(&blob.pack) {
            let key = data_key(&blob.pack).map_err(|_| TreeError::BadHash(hash.to_string()))?;
            let data = self.store.get(&key).await?;
            self.packs.insert(blob.pack.clone(), data);
        }
        let pack = &self.packs[&blob.pack];
        let corrupt = || TreeError::Corrupt(hash.to_string());
        let end = blob.offset.checked_add(blob.len).ok_or_else(corrupt)?;
        let stored = pack
            .get(blob.offset as usize..end as usize)
            .ok_or_else(corrupt)?;
        let data = unpack(stored, blob.raw_len).map_err(|_| corrupt())?;
        if blake3::hash(&data).to_hex().as_str() != hash {
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

    fn file(path: &str, content: &[u8]) -> Entry {
        let hash = blake3::hash(content).to_hex().to_string();
        Entry {
            path: RelPath(path.as_bytes().to_vec()),
            kind: Kind::File {
                mode: 0o644,
                size: content.len() as u64,
                hash: hash.clone(),
                mtime_ns: 1,
                blobs: if content.is_empty() {
                    vec![]
                } else {
                    vec![BlobRef {
                        hash,
                        pack: "p".repeat(64),
                        offset: 0,
                        len: content.len() as u64,
                        raw_len: None,
                    }]
                },
            },
        }
    }

    fn tree_of(trees: &[TreeBlob], hash: &str) -> Tree {
        let blob = trees.iter().find(|t| t.hash == hash).expect("present");
        serde_json::from_slice(&blob.data).expect("parses")
    }

    #[test]
    fn one_tree_per_folder_children_first_names_sorted() {
        let entries = vec![
            file("a.b", b"x"),
            file("a/c", b"y"),
            Entry {
                path: RelPath(b".git".to_vec()),
                kind: Kind::Dir { mode: 0o755 },
            },
            file("a/d/e", b""),
        ];
        let trees = build(&entries);
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
                assert_eq!(tree_of(&trees, tree).entries.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_edit_changes_only_the_trees_on_its_path() {
        let before = vec![file("a/x", b"1"), file("b/y", b"2"), file("c", b"3")];
        let mut after = before.clone();
        after[0] = file("a/x", b"changed");
        let old: Vec<String> = build(&before).into_iter().map(|t| t.hash).collect();
        let new: Vec<String> = build(&after).into_iter().map(|t| t.hash).collect();
        let changed = new.iter().filter(|h| !old.contains(h)).count();
        assert_eq!(changed, 2, "the tree of `a` and the root");
    }

    /// 21 trees, each naming the one below twice: 2^20 folders, and not one entry of their
    /// own (no mode), which the limit once did not count, so reading them never ended early.
    #[test]
    fn trees_that_fan_out_stop_at_the_limit() {
        use super::super::pack::{PackIndex, Packed};
        let mut trees = vec![br#"{"entries":[]}"#.to_vec()];
        for _ in 0..20 {
            let below = blake3::hash(trees.last().expect("one"))
                .to_hex()
                .to_string();
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
            let hash = blake3::hash(tree).to_hex().to_string();
            blobs.push(Packed {
                hash,
                offset,
                len: tree.len() as u64,
                raw_len: None,
            });
            offset += tree.len() as u64;
        }
        let top = blobs.last().expect("top").hash.clone();
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
            loader.entries(&top).await
        });
        assert!(matches!(read, Err(TreeError::TooLarge)), "{read:?}");
    }
}
