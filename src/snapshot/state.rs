//! What this repository last snapshotted to each store, so that an unchanged workspace does not
//! make a new snapshot.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::id::Hash;
use super::index::BlobIndex;
use super::manifest::{RelPath, Summary};
use super::tree::Item;
use super::workspace::Workspace;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Last {
    /// [`digest`] of the entries that snapshot held.
    pub digest: String,
    pub summary: Summary,
    /// When the store's packs were last listed and checked against what this machine knows,
    /// in seconds since the Unix epoch (0: never).
    #[serde(default)]
    pub checked_at: u64,
    /// The snapshot's trees (format 2; none for a format-1 manifest, which holds everything).
    #[serde(default)]
    pub trees: Vec<Hash>,
    /// [`stat_digest`] of the scan that made this snapshot, when every file was read settled
    /// (unchanged while read, and long enough after its last change to be sure of it).
    #[serde(default)]
    pub stats: Option<String>,
}

impl Last {
    fn path(state_dir: &Path, store_name: &str) -> PathBuf {
        let tag = &blake3::hash(store_name.as_bytes()).to_hex()[..16];
        state_dir.join(format!("last-{tag}.json"))
    }

    pub fn load(state_dir: &Path, store_name: &str) -> Option<Self> {
        let data = crate::fs::read_own(&Self::path(state_dir, store_name)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Whether this snapshot's name and HEAD are the workspace's now. A commit that lands
    /// while a snapshot reads can leave the content newer than the HEAD it names: the next run
    /// then finds the same content but another HEAD, and says so in a new snapshot.
    pub fn describes(&self, workspace: &Workspace) -> bool {
        self.summary.workspace == workspace.name
            && self.summary.commit == workspace.commit
            && self.summary.branch == workspace.branch
    }

    /// Whether the store holds every tree of this snapshot, as far as `index` knows: a
    /// snapshot whose trees were removed (a lifecycle rule) is not one to stand for the
    /// workspace, however unchanged the files are.
    pub fn trees_in(&self, index: &BlobIndex) -> bool {
        self.trees.iter().all(|tree| index.contains(tree))
    }

    pub fn save(&self, state_dir: &Path, store_name: &str) -> std::io::Result<()> {
        let data = serde_json::to_vec(self).expect("serializes");
        crate::fs::write_atomically(&Self::path(state_dir, store_name), &data)
    }
}

/// A hash of what a scan found as stat data: each path with its kind, size, times, inode,
/// device and mode (a link's target cannot change without its ctime). Equal digests mean no
/// file was written, created, removed, renamed or touched since.
#[derive(Default)]
pub struct StatDigest(blake3::Hasher);

impl StatDigest {
    pub fn add(&mut self, found: &super::scan::Found) {
        self.0.update(&(found.path.0.len() as u64).to_le_bytes());
        self.0.update(&found.path.0);
        match &found.stat {
            Some(stat) => {
                for field in stat.numbers().into_iter().chain([u64::from(stat.mode)]) {
                    self.0.update(&field.to_le_bytes());
                }
            }
            None => {
                self.0.update(b"immutable");
            }
        }
    }

    pub fn finish(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// A hash of what a snapshot holds: paths, kinds, modes, content and link targets, in order.
/// File times are left out: touching a file without changing it is not a change worth a
/// snapshot. Where the content is stored is left out too: a prune may move it.
#[derive(Default)]
pub struct Digest(blake3::Hasher);

impl Digest {
    pub fn add(&mut self, path: &RelPath, item: &Item<'_>) {
        let mut field = |bytes: &[u8]| {
            self.0.update(&(bytes.len() as u64).to_le_bytes());
            self.0.update(bytes);
        };
        field(&path.0);
        match item {
            Item::File {
                mode,
                size,
                hash,
                blobs,
                ..
            } => {
                field(b"file");
                field(&mode.to_le_bytes());
                field(&size.to_le_bytes());
                field(&hash.0);
                for blob in *blobs {
                    field(&blob.0);
                }
            }
            Item::Symlink(target) => {
                field(b"symlink");
                field(&target.0);
            }
            Item::Dir(mode) => {
                field(b"dir");
                field(&mode.to_le_bytes());
            }
        }
    }

    pub fn finish(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}
