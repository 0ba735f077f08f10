//! Snapshots of a workspace: its working tree and `.git`, content-addressed and deduplicated in
//! a store, listed and restored. The stored format is described in `docs/FORMAT.md`.

mod cache;
mod create;
mod index;
mod manifest;
mod pack;
mod progress;
mod restore;
mod scan;
mod state;
mod workspace;

use futures::{StreamExt, TryStreamExt};

pub use create::{Options as SnapshotOptions, Outcome as SnapshotOutcome, SnapshotError, create};
pub use manifest::{Manifest, ManifestError, Summary};
pub use progress::{Progress, Silent};
pub use restore::{Options as RestoreOptions, Outcome as RestoreOutcome, RestoreError, restore};
pub use scan::STATE_DIR;
pub use workspace::{Workspace, WorkspaceError};

use crate::store::{Store, StoreError};

const SNAPSHOTS: &str = "snapshots/";
const LIST_CONCURRENCY: usize = 16;

fn manifest_key(workspace: &str, id: &str) -> String {
    format!("{SNAPSHOTS}{workspace}/{id}.json")
}

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("workspace `{workspace}` has no snapshots in {store}")]
    NoSnapshots { workspace: String, store: String },
    #[error("no snapshot `{id}` of workspace `{workspace}` in {store}")]
    NoSuchSnapshot {
        id: String,
        workspace: String,
        store: String,
    },
    #[error("the manifest of snapshot `{0}` is not valid")]
    BadManifest(String, #[source] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The workspaces that have snapshots in `store`.
pub async fn workspaces<S: Store>(store: &S) -> Result<Vec<String>, StoreError> {
    let mut names: Vec<String> = store
        .list(SNAPSHOTS)
        .await?
        .iter()
        .filter_map(|key| {
            key.strip_prefix(SNAPSHOTS)?
                .split_once('/')
                .map(|(ws, _)| ws.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Snapshot ids of `workspace`, oldest first.
async fn ids<S: Store>(store: &S, workspace: &str) -> Result<Vec<String>, StoreError> {
    let prefix = format!("{SNAPSHOTS}{workspace}/");
    let mut ids: Vec<String> = store
        .list(&prefix)
        .await?
        .iter()
        .filter_map(|key| {
            key.strip_prefix(&prefix)?
                .strip_suffix(".json")
                .map(str::to_string)
        })
        .filter(|id| !id.contains('/'))
        .collect();
    ids.sort();
    Ok(ids)
}

/// The snapshots of each of `workspaces`, newest first.
pub async fn list<S: Store>(store: &S, workspaces: &[String]) -> Result<Vec<Summary>, FindError> {
    let mut keys = Vec::new();
    for workspace in workspaces {
        keys.extend(
            ids(store, workspace)
                .await?
                .into_iter()
                .map(|id| (workspace.clone(), id)),
        );
    }
    let mut summaries: Vec<Summary> = futures::stream::iter(keys)
        .map(|(workspace, id)| async move {
            let data = store.get(&manifest_key(&workspace, &id)).await?;
            serde_json::from_slice::<Summary>(&data).map_err(|e| FindError::BadManifest(id, e))
        })
        .buffer_unordered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    summaries.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(summaries)
}

/// The manifest of snapshot `id` (or the newest, for `latest`) of `workspace`.
pub async fn find<S: Store>(store: &S, workspace: &str, id: &str) -> Result<Manifest, FindError> {
    let id = if id == "latest" {
        ids(store, workspace)
            .await?
            .pop()
            .ok_or_else(|| FindError::NoSnapshots {
                workspace: workspace.to_string(),
                store: store.name().to_string(),
            })?
    } else {
        id.to_string()
    };
    let data = store
        .get(&manifest_key(workspace, &id))
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => FindError::NoSuchSnapshot {
                id: id.clone(),
                workspace: workspace.to_string(),
                store: store.name().to_string(),
            },
            other => FindError::Store(other),
        })?;
    serde_json::from_slice(&data).map_err(|e| FindError::BadManifest(id, e))
}
