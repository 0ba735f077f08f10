//! Snapshots of a workspace: its working tree and `.git`, content-addressed and deduplicated in
//! a store, listed and restored. The stored format is described in `docs/FORMAT.md`.

mod binary;
mod browse;
mod cache;
mod check;
mod create;
pub mod id;
pub mod index;
mod manifest;
mod pack;
pub mod policy;
mod progress;
pub mod prune;
mod restore;
pub mod retention;
mod scan;
mod state;
mod tree;
mod workspace;

use futures::StreamExt;

pub use browse::{
    Change, Entry, Kind, NoMatch, PathError, RelPath, Status, diff, parse_path, select,
};
pub use cache::RACY_WINDOW;
pub use check::{CheckError, Damage, Damaged, Object, Options as CheckOptions, Report, check};
pub use create::{
    MAX_RUN, Options as SnapshotOptions, Outcome as SnapshotOutcome, RECHECK_EVERY, SnapshotError,
    create,
};
pub use manifest::{FORMAT_VERSION, Manifest, ManifestError, SnapshotObject, Summary};
pub use progress::{Progress, Silent};
pub use restore::{
    BATCH as RESTORE_BATCH, Options as RestoreOptions, Outcome as RestoreOutcome, RestoreError,
    restore,
};
pub use scan::STATE_DIR;
pub use tree::TreeError;
pub use workspace::{Workspace, WorkspaceError};

use crate::store::{Store, StoreError};
use id::IdError;

const SNAPSHOTS: &str = "snapshots/";
const LIST_CONCURRENCY: usize = 16;

/// The key of a snapshot's manifest; refuses a workspace or id that is not one safe segment.
fn manifest_key(workspace: &str, id: &str) -> Result<String, IdError> {
    id::check_workspace(workspace)?;
    id::check_snapshot(id)?;
    Ok(format!("{SNAPSHOTS}{workspace}/{id}.json"))
}

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("workspace `{workspace}` has no snapshots in {store}")]
    NoSnapshots { workspace: String, store: String },
    #[error("no snapshot of workspace `{workspace}` can be read; the newest: {newest}")]
    AllDamaged { workspace: String, newest: String },
    #[error("no snapshot `{id}` of workspace `{workspace}` in {store}")]
    NoSuchSnapshot {
        id: String,
        workspace: String,
        store: String,
    },
    #[error("the manifest of snapshot `{0}` is not valid")]
    BadManifest(String, #[source] serde_json::Error),
    #[error("the manifest of snapshot `{0}` is damaged")]
    Damaged(String, #[source] ManifestError),
    #[error(
        "snapshot `{id}` is in store format {version}, written by a newer gitkit; this one reads formats 1 to {FORMAT_VERSION}: upgrade gitkit"
    )]
    Newer { id: String, version: u32 },
    #[error("snapshot `{0}` is damaged")]
    Tree(String, #[source] TreeError),
    #[error("snapshot `{0}` names its root tree with a bad hash")]
    BadTree(String, #[source] IdError),
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FindError {
    /// A tree of snapshot `id` that could not be read: the store's error as it is, anything
    /// else as damage.
    fn from_tree(id: &str, error: TreeError) -> Self {
        match error {
            TreeError::Store(e) => FindError::Store(e),
            other => FindError::Tree(id.to_string(), other),
        }
    }
}

/// Snapshots listed, and the manifests that could not be read, each with why.
#[derive(Debug, Default)]
pub struct Listing {
    pub summaries: Vec<Summary>,
    pub damaged: Vec<String>,
}

/// The workspaces that have snapshots in `store` (names that are not safe are passed over).
pub async fn workspaces<S: Store>(store: &S) -> Result<Vec<String>, StoreError> {
    let mut names: Vec<String> = store
        .list(SNAPSHOTS)
        .await?
        .iter()
        .filter_map(|object| {
            let (name, _) = object.key.strip_prefix(SNAPSHOTS)?.split_once('/')?;
            id::check_workspace(name).ok()?;
            Some(name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Snapshot ids of `workspace`, oldest first (keys that are not snapshot ids are passed over).
pub async fn ids<S: Store>(store: &S, workspace: &str) -> Result<Vec<String>, FindError> {
    id::check_workspace(workspace)?;
    let prefix = format!("{SNAPSHOTS}{workspace}/");
    let mut ids: Vec<String> = store
        .list(&prefix)
        .await?
        .iter()
        .filter_map(|object| {
            let id = object.key.strip_prefix(&prefix)?.strip_suffix(".json")?;
            id::check_snapshot(id).ok()?;
            Some(id.to_string())
        })
        .collect();
    ids.sort();
    Ok(ids)
}

/// The snapshots of each of `workspaces`, newest first. A manifest that cannot be read is
/// passed over and named in [`Listing::damaged`]: one bad object does not hide the others.
pub async fn list<S: Store>(store: &S, workspaces: &[String]) -> Result<Listing, FindError> {
    let mut keys = Vec::new();
    for workspace in workspaces {
        keys.extend(
            ids(store, workspace)
                .await?
                .into_iter()
                .map(|id| (workspace.clone(), id)),
        );
    }
    let read: Vec<Result<Summary, FindError>> = futures::stream::iter(keys)
        .map(|(workspace, id)| async move {
            let data = store.get(&manifest_key(&workspace, &id)?).await?;
            let bad = |e| FindError::BadManifest(id.clone(), e);
            let summary = if check_version(&id, &data)? == 1 {
                serde_json::from_slice::<Summary>(&data).map_err(bad)?
            } else {
                // A snapshot object is small: check all of it, as restore would.
                let object: manifest::SnapshotObject =
                    serde_json::from_slice(&data).map_err(bad)?;
                id::check_hash(&object.tree).map_err(|e| FindError::BadTree(id.clone(), e))?;
                object.summary
            };
            summary
                .check(&workspace, &id)
                .map_err(|e| FindError::Damaged(id, e))?;
            Ok(summary)
        })
        .buffer_unordered(LIST_CONCURRENCY)
        .collect()
        .await;
    let mut listing = Listing::default();
    for result in read {
        match result {
            Ok(summary) => listing.summaries.push(summary),
            Err(FindError::Store(e)) if !matches!(e, StoreError::NotFound { .. }) => {
                return Err(FindError::Store(e));
            }
            Err(damaged) => listing.damaged.push(crate::text::chain_text(&damaged)),
        }
    }
    listing.summaries.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(listing)
}

/// Removes snapshot `id` of `workspace` from the store: its snapshot object only, never the
/// data it uses (that is `prune`'s). One already gone is not an error.
pub async fn forget<S: Store>(store: &S, workspace: &str, id: &str) -> Result<(), FindError> {
    store.delete(&manifest_key(workspace, id)?).await?;
    Ok(())
}

/// The manifest of snapshot `id` of `workspace`, checked for everything restore relies on.
/// For `latest`, the newest one that is whole: damaged ones are passed over and returned.
pub async fn find<S: Store>(
    store: &S,
    workspace: &str,
    id: &str,
) -> Result<(Manifest, Vec<String>), FindError> {
    Reader::new(store).find(workspace, id).await
}

/// Snapshot `id` of `workspace` to restore, checked for everything restore relies on, as
/// [`find`] finds it, but not held whole: see [`Restorable`].
pub async fn find_to_restore<S: Store>(
    store: &S,
    workspace: &str,
    id: &str,
) -> Result<(Restorable, Vec<String>), FindError> {
    let mut reader = Reader::new(store);
    let (found, damaged) = reader.find_as(workspace, id, Want::Restorable).await?;
    let restorable = match found {
        Found::Manifest(manifest) => Restorable::Manifest(manifest),
        Found::Trees {
            version,
            summary,
            root,
        } => Restorable::Trees(Box::new(restore::Trees {
            version,
            summary,
            root,
            index: reader.index.take().expect("loaded to read the trees"),
            packs: reader.tree_packs,
        })),
    };
    Ok((restorable, damaged))
}

/// A snapshot ready to restore: a format-1 manifest as stored, or a format-2 snapshot whose
/// trees were all read and checked once, to be read again a batch of entries at a time as its
/// files are written: a restore holds a batch, not the whole snapshot.
pub enum Restorable {
    Manifest(Manifest),
    Trees(Box<restore::Trees>),
}

impl Restorable {
    pub fn summary(&self) -> &Summary {
        match self {
            Restorable::Manifest(manifest) => &manifest.summary,
            Restorable::Trees(trees) => &trees.summary,
        }
    }
}

/// What [`Reader::find_as`] is to make of a snapshot.
#[derive(Clone, Copy)]
enum Want {
    Manifest,
    Restorable,
}

/// What [`Reader::find_as`] found.
enum Found {
    Manifest(Manifest),
    Trees {
        version: u32,
        summary: Summary,
        root: id::Hash,
    },
}

/// Reads snapshots out of one store, loading its pack index once for all of them.
pub struct Reader<'a, S: Store> {
    store: &'a S,
    index: Option<index::BlobIndex>,
    /// The packs trees were read from, kept for the next snapshot.
    tree_packs: tree::TreePacks,
}

impl<'a, S: Store> Reader<'a, S> {
    pub fn new(store: &'a S) -> Self {
        Self {
            store,
            index: None,
            tree_packs: Default::default(),
        }
    }

    /// [`find`], through this reader.
    pub async fn find(
        &mut self,
        workspace: &str,
        id: &str,
    ) -> Result<(Manifest, Vec<String>), FindError> {
        let (found, damaged) = self.find_as(workspace, id, Want::Manifest).await?;
        match found {
            Found::Manifest(manifest) => Ok((manifest, damaged)),
            Found::Trees { .. } => unreachable!("a manifest was asked for"),
        }
    }

    /// [`find`] or [`find_to_restore`].
    async fn find_as(
        &mut self,
        workspace: &str,
        id: &str,
        want: Want,
    ) -> Result<(Found, Vec<String>), FindError> {
        if id != "latest" {
            id::check_snapshot(id)?;
            return Ok((self.read_as(workspace, id, want).await?, Vec::new()));
        }
        let mut damaged = Vec::new();
        for id in ids(self.store, workspace).await?.iter().rev() {
            match self.read_as(workspace, id, want).await {
                Ok(found) => return Ok((found, damaged)),
                Err(FindError::Store(e)) => return Err(FindError::Store(e)),
                // The newest is in a format this gitkit cannot read: restoring an older one
                // instead would be a surprise. Say so.
                Err(e @ FindError::Newer { .. }) => return Err(e),
                Err(e) => damaged.push(crate::text::chain_text(&e)),
            }
        }
        if let Some(newest) = damaged.into_iter().next() {
            return Err(FindError::AllDamaged {
                workspace: workspace.to_string(),
                newest,
            });
        }
        Err(FindError::NoSnapshots {
            workspace: workspace.to_string(),
            store: self.store.name().to_string(),
        })
    }

    /// Snapshot `id`, as `want` says: whole, or (format 2) its trees read through and checked
    /// a batch of entries at a time, none of them kept.
    async fn read_as(&mut self, workspace: &str, id: &str, want: Want) -> Result<Found, FindError> {
        if matches!(want, Want::Manifest) {
            return Ok(Found::Manifest(self.read(workspace, id).await?));
        }
        let object = match read_object(self.store, workspace, id).await? {
            Stored::Manifest(manifest) => return Ok(Found::Manifest(manifest)),
            Stored::Object(object) => object,
        };
        let root = id::Hash::parse(&object.tree).expect("read_object checked it");
        self.index().await?;
        let index = self.index.as_ref().expect("loaded");
        let mut loader =
            tree::Loader::with_packs(self.store, index, std::mem::take(&mut self.tree_packs));
        let mut walk = tree::Walk::new(&root);
        let checked = async {
            loop {
                let mut entries = Vec::new();
                let more = loader.next(&mut walk, &mut entries, restore::BATCH).await;
                let more = more.map_err(|e| FindError::from_tree(id, e))?;
                let batch = Manifest {
                    version: object.version,
                    summary: object.summary.clone(),
                    entries,
                };
                batch
                    .validate()
                    .map_err(|e| FindError::Damaged(id.to_string(), e))?;
                if !more {
                    return Ok::<_, FindError>(());
                }
            }
        }
        .await;
        self.tree_packs = loader.into_packs();
        checked?;
        Ok(Found::Trees {
            version: object.version,
            summary: object.summary,
            root,
        })
    }

    /// The store's pack index, as listed the first time it was needed; packs that claim a
    /// blob another pack also holds are checked before either is believed.
    pub async fn index(&mut self) -> Result<&index::BlobIndex, StoreError> {
        if self.index.is_none() {
            // What is read is kept in the temporary folder: a machine without one is told so
            // before anything is fetched.
            tempfile::tempfile().map_err(|source| StoreError::Local {
                action: "create",
                what: "a temporary file",
                source,
            })?;
            let mut loaded = index::BlobIndex::default();
            loaded.refresh(self.store).await?;
            loaded.settle(self.store).await?;
            self.index = Some(loaded);
        }
        Ok(self.index.as_ref().expect("loaded"))
    }

    /// Snapshot `id` of `workspace`, whole: a format-1 manifest as it is stored, or a format-2
    /// snapshot object with its trees, read through the store's pack index. Either way it is
    /// checked as restore needs.
    pub async fn read(&mut self, workspace: &str, id: &str) -> Result<Manifest, FindError> {
        Ok(self.read_traced(workspace, id).await?.0)
    }

    /// [`Reader::read`], and the packs its trees were read from (none for format 1).
    pub async fn read_traced(
        &mut self,
        workspace: &str,
        id: &str,
    ) -> Result<(Manifest, Vec<String>), FindError> {
        let store = self.store;
        let mut tree_packs = Vec::new();
        let manifest = match read_object(store, workspace, id).await? {
            Stored::Manifest(manifest) => manifest,
            Stored::Object(object) => {
                self.index().await?;
                let index = self.index.as_ref().expect("loaded");
                let cache = std::mem::take(&mut self.tree_packs);
                let mut loader = tree::Loader::with_packs(store, index, cache);
                let root = id::Hash::parse(&object.tree).expect("read_object checked it");
                let entries = loader.entries(&root, object.summary.files).await;
                tree_packs.extend(loader.packs_read().map(id::Hash::to_hex));
                self.tree_packs = loader.into_packs();
                let entries = entries.map_err(|e| FindError::from_tree(id, e))?;
                let manifest = Manifest {
                    version: object.version,
                    summary: object.summary,
                    entries,
                };
                // The object's summary was checked as it was read; its entries are new.
                manifest
                    .validate()
                    .map_err(|e| FindError::Damaged(id.to_string(), e))?;
                manifest
            }
        };
        Ok((manifest, tree_packs))
    }
}

/// A snapshot as stored: a format-1 manifest (checked whole), or a format-2 snapshot object
/// (checked, its trees not yet read).
pub enum Stored {
    Manifest(Manifest),
    Object(manifest::SnapshotObject),
}

/// Reads what is stored for snapshot `id` of `workspace`.
pub async fn read_object<S: Store>(
    store: &S,
    workspace: &str,
    id: &str,
) -> Result<Stored, FindError> {
    let data = store
        .get(&manifest_key(workspace, id)?)
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => FindError::NoSuchSnapshot {
                id: id.to_string(),
                workspace: workspace.to_string(),
                store: store.name().to_string(),
            },
            other => FindError::Store(other),
        })?;
    let bad = |e| FindError::BadManifest(id.to_string(), e);
    let damaged = |e| FindError::Damaged(id.to_string(), e);
    if check_version(id, &data)? == 1 {
        let manifest = serde_json::from_slice::<Manifest>(&data).map_err(bad)?;
        manifest
            .validate()
            .and_then(|()| manifest.summary.check(workspace, id))
            .map_err(damaged)?;
        return Ok(Stored::Manifest(manifest));
    }
    let object: manifest::SnapshotObject = serde_json::from_slice(&data).map_err(bad)?;
    object.summary.check(workspace, id).map_err(damaged)?;
    id::check_hash(&object.tree).map_err(|e| FindError::BadTree(id.to_string(), e))?;
    Ok(Stored::Object(object))
}

/// The format of a stored snapshot, refused when it is newer than this gitkit reads.
fn check_version(id: &str, data: &[u8]) -> Result<u32, FindError> {
    let version = serde_json::from_slice::<manifest::Versioned>(data)
        .map_err(|e| FindError::BadManifest(id.to_string(), e))?
        .version;
    if version > FORMAT_VERSION {
        return Err(FindError::Newer {
            id: id.to_string(),
            version,
        });
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DirStore;

    const ID: &str = "20261128T093000.123Z-1a2b3c";

    /// Runs `f` on a folder store holding snapshot [`ID`] of workspace `w`, its object
    /// `{"version": 2, ...}` with `tree` as given.
    fn with_object<T>(tree: serde_json::Value, f: impl AsyncFnOnce(&DirStore) -> T) -> T {
        let root = tempfile::tempdir().expect("temp dir");
        let store = DirStore::new(root.path().to_path_buf());
        let object = serde_json::json!({
            "version": 2, "id": ID, "workspace": "w", "time": "2026-11-28T09:30:00Z",
            "host": "h", "commit": null, "branch": null, "files": 0, "bytes": 0,
            "tree": tree,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let key = manifest_key("w", ID).expect("key");
            store
                .put(&key, object.to_string().into_bytes().into())
                .await
                .expect("put");
            f(&store).await
        })
    }

    #[test]
    fn a_snapshot_object_whose_tree_is_not_a_hash_is_named_in_the_error() {
        let id = ID;
        let read = with_object("../../etc".into(), async |store| {
            read_object(store, "w", ID).await
        });
        let Err(error) = read else {
            panic!("a tree that is not a hash was read");
        };
        let text = crate::text::chain_text(&error);
        assert!(
            text.contains(id) && text.contains("../../etc"),
            "the error names the snapshot and the bad tree: {text}"
        );
    }

    /// Listing reads only snapshot objects, but all of each: one that restore would refuse
    /// for its own content is named as damaged, not listed.
    #[test]
    fn listing_warns_about_a_snapshot_object_restore_would_refuse() {
        for tree in [serde_json::json!(7), "../../etc".into()] {
            let listing = with_object(tree.clone(), async |store| {
                list(store, &["w".to_string()]).await.expect("listed")
            });
            assert!(listing.summaries.is_empty(), "{tree}: {listing:?}");
            assert_eq!(listing.damaged.len(), 1, "{tree}");
            assert!(listing.damaged[0].contains(ID), "{listing:?}");
        }
    }
}
