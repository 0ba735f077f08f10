//! What a snapshot run makes of its entries as the reader finds them, in path order: their
//! digest and counts, the packs another machine wrote that they rely on, and (for a run that
//! may write) the snapshot's trees, built and packed as the entries stream past. No list of
//! the entries is kept: a workspace of any size costs the open folders' trees and the packed
//! trees, a few percent of what the entries would.

use std::collections::HashSet;

use super::super::cache::{Content, Stat};
use super::super::id::Hash;
use super::super::index::BlobIndex;
use super::super::manifest::{ManifestError, RelPath};
use super::super::pack::{Pack, Packer};
use super::super::{scan, state, tree};

/// One entry of the snapshot being made (held only for the workspace's `.git`, see [`Sink`]).
pub struct Pending {
    pub path: RelPath,
    pub kind: PendingKind,
}

pub enum PendingKind {
    File {
        mode: u32,
        size: u64,
        hash: Hash,
        mtime_ns: i64,
        /// The content's blobs, or none when it is one blob whose hash is the file's (most
        /// files) or it is empty.
        blobs: Box<[Hash]>,
    },
    Symlink(RelPath),
    Dir(u32),
}

impl Pending {
    pub fn file(path: RelPath, stat: &Stat, content: &Content) -> Self {
        let implied = match content.blobs.as_slice() {
            [] => true,
            [(only, _)] => *only == content.hash,
            _ => false,
        };
        let blobs = if implied {
            Box::default()
        } else {
            content.blobs.iter().map(|(hash, _)| *hash).collect()
        };
        Self {
            path,
            kind: PendingKind::File {
                mode: stat.mode & 0o7777,
                size: stat.size,
                hash: content.hash,
                mtime_ns: stat.mtime_ns,
                blobs,
            },
        }
    }

    /// The file's blobs, in order.
    pub fn blobs(&self) -> &[Hash] {
        match &self.kind {
            PendingKind::File {
                size, hash, blobs, ..
            } if blobs.is_empty() && *size > 0 => std::slice::from_ref(hash),
            PendingKind::File { blobs, .. } => blobs,
            _ => &[],
        }
    }

    pub fn item(&self) -> tree::Item<'_> {
        match &self.kind {
            PendingKind::File {
                mode,
                size,
                hash,
                mtime_ns,
                ..
            } => tree::Item::File {
                mode: *mode,
                size: *size,
                mtime_ns: *mtime_ns,
                hash: *hash,
                blobs: self.blobs(),
            },
            PendingKind::Symlink(target) => tree::Item::Symlink(target),
            PendingKind::Dir(mode) => tree::Item::Dir(*mode),
        }
    }
}

/// Whether `path` is the workspace's own `.git` or in it. Its entries come last: git objects
/// found after the first pass join them (see `Reader::entries_then`).
fn in_git_dir(path: &RelPath) -> bool {
    path.0 == b".git" || path.0.starts_with(b".git/")
}

pub struct Sink<'a> {
    index: &'a BlobIndex,
    digest: state::Digest,
    /// Regular files and links, and the bytes of the files.
    files: u64,
    bytes: u64,
    /// Packs another machine wrote that the entries' blobs are read from: checked before the
    /// snapshot is published.
    foreign: HashSet<String>,
    /// The workspace's `.git`, held back until the rest is done.
    git_dir: Vec<Pending>,
    /// `None` for a run that only compares with the last snapshot.
    trees: Option<Trees>,
}

/// The trees being built, and what became of those done.
#[derive(Default)]
struct Trees {
    builder: tree::Builder,
    made: Made,
    /// The first entry a reader would refuse: the snapshot is not published.
    refused: Option<ManifestError>,
}

/// The trees done so far.
#[derive(Default)]
struct Made {
    packer: Packer,
    /// Sealed packs of new trees, not handed on yet ([`Sink::sealed`]).
    packs: Vec<Pack>,
    packed: HashSet<Hash>,
    all: Vec<Hash>,
    /// Trees the store holds in packs another machine wrote, not checked yet.
    foreign: Vec<tree::TreeBlob>,
}

/// The trees of a snapshot, built.
pub struct Built {
    pub root: Hash,
    /// Every tree of the snapshot.
    pub all: Vec<Hash>,
    /// Packs of the trees the store lacks, those not handed on during the scan.
    pub packs: Vec<Pack>,
    /// Trees the store holds in packs another machine wrote, not checked yet.
    pub foreign: Vec<tree::TreeBlob>,
}

impl<'a> Sink<'a> {
    /// A sink that only makes the digest and counts.
    pub fn digest_only(index: &'a BlobIndex) -> Self {
        Self {
            index,
            digest: state::Digest::default(),
            files: 0,
            bytes: 0,
            foreign: HashSet::new(),
            git_dir: Vec::new(),
            trees: None,
        }
    }

    /// A sink that builds the trees too.
    pub fn with_trees(index: &'a BlobIndex) -> Self {
        Self {
            trees: Some(Trees::default()),
            ..Self::digest_only(index)
        }
    }

    /// Takes the next entry: in path order, but for the workspace's `.git`, whose entries may
    /// come in any order.
    pub fn add(&mut self, entry: Pending) {
        if in_git_dir(&entry.path) {
            self.git_dir.push(entry);
        } else {
            self.take(entry);
        }
    }

    fn take(&mut self, entry: Pending) {
        self.digest.add(&entry.path, &entry.item());
        match entry.kind {
            PendingKind::File { size, .. } => {
                self.files += 1;
                self.bytes += size;
            }
            PendingKind::Symlink(_) => self.files += 1,
            PendingKind::Dir(_) => {}
        }
        if let Some(trees) = &mut self.trees {
            trees.add(self.index, &entry);
        }
    }

    /// Packs of new trees sealed since the last call: the reader uploads them as it does
    /// packs of files, so that the trees of a large workspace are not held until the end.
    /// (If the snapshot is not published after all, a prune removes them.)
    pub fn sealed(&mut self) -> Vec<Pack> {
        self.trees
            .as_mut()
            .map(|trees| std::mem::take(&mut trees.made.packs))
            .unwrap_or_default()
    }

    /// Notes that an entry's blob is read from `pack`, which [`Sink::finish`] names as foreign
    /// if it was neither written here nor checked.
    pub fn rely_on(&mut self, pack: &str) {
        if !self.index.is_verified(pack) && !self.foreign.contains(pack) {
            self.foreign.insert(pack.to_string());
        }
    }

    /// What the entries came to: their digest and counts, the packs they rely on, and the
    /// trees built (`None` from a sink that builds none) or the first entry a reader would
    /// refuse.
    pub fn finish(mut self) -> Finished {
        let mut git_dir = std::mem::take(&mut self.git_dir);
        git_dir.sort_unstable_by(|a, b| {
            let is_dir = |entry: &Pending| matches!(entry.kind, PendingKind::Dir(_));
            scan::order(&a.path.0, is_dir(a), &b.path.0, is_dir(b))
        });
        for entry in git_dir {
            self.take(entry);
        }
        let built = match self.trees {
            Some(trees) => trees.finish(self.index).map(Some),
            None => Ok(None),
        };
        Finished {
            digest: self.digest.finish(),
            files: self.files,
            bytes: self.bytes,
            foreign: self.foreign,
            built,
        }
    }
}

/// What a [`Sink`] made.
pub struct Finished {
    /// [`state::Digest`] of the entries.
    pub digest: String,
    pub files: u64,
    pub bytes: u64,
    pub foreign: HashSet<String>,
    pub built: Result<Option<Built>, ManifestError>,
}

impl Trees {
    fn add(&mut self, index: &BlobIndex, entry: &Pending) {
        if self.refused.is_some() {
            return;
        }
        let made = &mut self.made;
        let added = self.builder.add(&entry.path, entry.item(), &mut |tree| {
            made.keep(index, tree)
        });
        if let Err(e) = added {
            self.refused = Some(e);
        }
    }

    fn finish(self, index: &BlobIndex) -> Result<Built, ManifestError> {
        let Self {
            builder,
            mut made,
            refused,
        } = self;
        if let Some(e) = refused {
            return Err(e);
        }
        let root = builder.finish(&mut |tree| made.keep(index, tree))?;
        made.packs.extend(made.packer.seal());
        Ok(Built {
            root,
            all: made.all,
            packs: made.packs,
            foreign: made.foreign,
        })
    }
}

impl Made {
    /// A tree done: packed, unless the store holds it; set aside to be checked, if another
    /// machine's pack holds it.
    fn keep(&mut self, index: &BlobIndex, tree: tree::TreeBlob) {
        self.all.push(tree.hash);
        if let Some(pack) = index.stored_in(&tree.hash) {
            if !index.is_verified(pack) {
                self.foreign.push(tree);
            }
        } else if self.packed.insert(tree.hash) {
            self.packs.extend(self.packer.add(tree.hash, &tree.data));
        }
    }
}
