//! `gitkit prune`: removes what no snapshot uses, safely while other machines write.
//!
//! S3 has no locks and no rename, so prune never deletes a pack the moment it finds it unused:
//! a snapshot being written elsewhere may have decided to reuse it. It marks the pack
//! (`deleting/<pack>`), and writers never reuse a marked pack. A later prune deletes a marked
//! pack only once the mark is older than the grace period; what a snapshot listed after that
//! still uses is first copied to a new pack (a mark is never taken back). A writer that listed
//! the packs before the mark was made published within [`MAX_RUN`](super::MAX_RUN) (it does
//! not publish later), so with a grace period longer than that, its snapshot is seen. The
//! argument is written out in `docs/FORMAT.md`.
//!
//! Steps, each safe to interrupt (the next prune finishes the job):
//! 1. list every snapshot and collect what each uses (a snapshot that cannot be read stops
//!    the prune: it cannot tell what that one needs);
//! 2. copy the used blobs out of packs that are mostly unused, and out of marked packs a
//!    snapshot still uses, into new packs;
//! 3. mark the packs nothing uses (and those just copied out of);
//! 4. delete marked packs whose grace has passed (what a snapshot still used was copied out
//!    in step 2: a mark is never taken back);
//! 5. fold the per-pack index objects into a few index sets.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::id::Hash;
use super::index::{BlobIndex, INDEX_SETS, IndexSet, MARKS, index_set_key, mark_key, pack_sizes};
use super::pack::{Pack, PackIndex, Packer, data_key, index_key, unpack};
use super::{FindError, Stored, TreeError, ids, read_object, tree, workspaces};
use crate::store::{Object, Store, StoreError};

/// A pack less than this share of which is used is repacked.
const REPACK_BELOW: f64 = 0.5;
/// Index objects folded into one index set at most.
const PACKS_PER_SET: usize = 10_000;
const CONCURRENCY: usize = 8;

/// The default grace period: far longer than a snapshot may take ([`super::MAX_RUN`]).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

pub struct Options {
    /// How long a pack stays marked before it is deleted. Zero deletes at once: safe only
    /// when nothing else writes to the store.
    pub grace: Duration,
    pub dry_run: bool,
    pub now: SystemTime,
    /// Test knob: stop (as if killed) after this many steps.
    pub stop_after: Option<usize>,
    /// Test knob: once the first snapshot object is read, before its trees are, read this
    /// pipe to its end (another prune runs meanwhile).
    pub pause: Option<std::path::PathBuf>,
}

/// What a prune did (or, dry, would do).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Outcome {
    pub snapshots: usize,
    pub packs: usize,
    pub bytes: u64,
    /// Packs copied out of (their used blobs moved to new packs), and the new packs' bytes.
    pub repacked: usize,
    pub repacked_bytes: u64,
    /// Packs marked for deletion in this run.
    pub marked: usize,
    pub marked_bytes: u64,
    /// Marked packs a snapshot uses again (reused before the mark was seen): what it uses
    /// was copied out.
    pub rescued: usize,
    /// Marked packs a format-1 manifest names: marks taken back.
    pub unmarked: usize,
    /// Packs deleted, and the bytes freed.
    pub deleted: usize,
    pub deleted_bytes: u64,
    /// Marked packs waiting for their grace period to pass.
    pub waiting: usize,
    /// Index objects folded into index sets, and the sets written.
    pub folded: usize,
    pub sets: usize,
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(
        "snapshot `{workspace}/{id}` cannot be read, so what it uses is unknown; nothing was pruned"
    )]
    Unreadable {
        workspace: String,
        id: String,
        #[source]
        source: Box<FindError>,
    },
    #[error("stopped after step {0} (test)")]
    Stopped(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PruneError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            PruneError::Unreadable { .. } => Some(
                "`gitkit check` names what is damaged; forget that snapshot (or upgrade gitkit if it is newer) and prune again",
            ),
            _ => None,
        }
    }
}

/// What the snapshots use: blobs and trees by hash, and (format 1 names places, not hashes)
/// whole packs that must stay as they are.
#[derive(Default)]
struct Used {
    blobs: HashSet<Hash>,
    pinned: HashSet<String>,
}

pub async fn prune<S: Store>(store: &S, options: &Options) -> Result<Outcome, PruneError> {
    let mut outcome = Outcome {
        dry_run: options.dry_run,
        ..Outcome::default()
    };
    let step = |n: usize| match options.stop_after {
        Some(stop) if stop == n => Err(PruneError::Stopped(n)),
        _ => Ok(()),
    };
    // The packs first, then the snapshots: a pack uploaded after this listing is not touched,
    // and a snapshot published before the snapshots were listed is seen.
    let (data, marks, index_objects, old_sets) = futures::try_join!(
        store.list("data/"),
        store.list(MARKS),
        store.list("index/"),
        store.list(INDEX_SETS),
    )?;
    let mut index = BlobIndex::default();
    index.refresh(store).await?;
    let listed_at = options.now;
    let used = used(store, &index, options.pause.clone(), &mut outcome).await?;
    step(1)?;

    let sizes = pack_sizes(&data);
    let packs = index.packs()?;
    outcome.packs = packs.len();
    outcome.bytes = packs
        .iter()
        .filter_map(|p| sizes.get(p.pack.as_str()))
        .sum();
    let mark_times: HashMap<&str, SystemTime> = marks
        .iter()
        .filter_map(|o| Some((o.key.strip_prefix(MARKS)?, o.modified)))
        .collect();

    // Which unmarked packs keep a used blob that no other kept pack has.
    let unmarked: Vec<&PackIndex> = packs.iter().filter(|p| !index.is_marked(&p.pack)).collect();
    let mut garbage: Vec<&PackIndex> = Vec::new();
    let mut sparse: Vec<&PackIndex> = Vec::new();
    // A used blob counts in one pack only: a pack format 1 pins (it stays whatever it holds),
    // else of the unmarked packs that hold it the most used (then the lowest id), so that
    // prunes running at once choose alike. Two machines that uploaded the same content at once
    // left it twice; the other copy is reclaimed like garbage (and, until it is, every reader
    // downloads both packs to check them against each other).
    let mut claimed: HashSet<Hash> = HashSet::new();
    for pack in unmarked.iter().filter(|p| used.pinned.contains(&p.pack)) {
        claimed.extend(pack.blobs.iter().map(|b| b.hash));
    }
    let used_in = |pack: &PackIndex| -> u64 {
        pack.blobs
            .iter()
            .filter(|b| used.blobs.contains(&b.hash))
            .map(|b| b.len)
            .sum()
    };
    let mut claiming: Vec<(u64, &PackIndex)> = unmarked
        .iter()
        .filter(|p| !used.pinned.contains(&p.pack))
        .map(|p| (used_in(p), *p))
        .collect();
    claiming.sort_by(|(a, p), (b, q)| b.cmp(a).then_with(|| p.pack.cmp(&q.pack)));
    for (_, pack) in claiming {
        let size = sizes.get(pack.pack.as_str()).copied().unwrap_or(0).max(1);
        let used_bytes: u64 = pack
            .blobs
            .iter()
            .filter(|b| used.blobs.contains(&b.hash) && claimed.insert(b.hash))
            .map(|b| b.len)
            .sum();
        if used_bytes == 0 {
            garbage.push(pack);
        } else if (used_bytes as f64) < REPACK_BELOW * size as f64 {
            sparse.push(pack);
        }
    }
    let leaving: HashSet<&str> = garbage
        .iter()
        .chain(&sparse)
        .map(|p| p.pack.as_str())
        .collect();
    // A used blob is safe once a pack that stays holds it.
    let mut kept_blobs: HashSet<Hash> = HashSet::new();
    for pack in unmarked
        .iter()
        .filter(|p| !leaving.contains(p.pack.as_str()))
    {
        kept_blobs.extend(pack.blobs.iter().map(|b| b.hash));
    }

    // Marked packs a snapshot still needs: a writer that listed the packs before the mark
    // reused them. A mark is never taken back (a prune that listed the marks earlier may be
    // about to delete the pack); what is needed is copied out, as from a sparse pack.
    let rescue: Vec<&PackIndex> = packs
        .iter()
        .filter(|p| index.is_marked(&p.pack) && !used.pinned.contains(&p.pack))
        .filter(|p| {
            p.blobs
                .iter()
                .any(|b| used.blobs.contains(&b.hash) && !kept_blobs.contains(&b.hash))
        })
        .collect();

    // 2. Repack: the used blobs of sparse packs, and of marked packs still needed, that no
    // staying pack holds move to new packs (whose ids are new: see `pack::SALT_LEN`).
    let mut new_packs: Vec<PackIndex> = Vec::new();
    let mut vanished: HashSet<&str> = HashSet::new();
    let copying = !sparse.is_empty() || !rescue.is_empty();
    if copying && !options.dry_run {
        let mut packer = Packer::default();
        let mut moved: HashSet<Hash> = HashSet::new();
        for pack in sparse.iter().chain(&rescue) {
            let wanted: Vec<_> = pack
                .blobs
                .iter()
                .filter(|b| used.blobs.contains(&b.hash) && !kept_blobs.contains(&b.hash))
                .filter(|b| !moved.contains(&b.hash))
                .cloned()
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let data = match store.get(&data_key(&pack.pack).expect("a pack id")).await {
                Ok(data) => data,
                // Deleted since the listing by another prune, which copied out what the
                // snapshots it saw use (a snapshot published since did not reuse a marked
                // pack): nothing to copy, mark or fold.
                Err(StoreError::NotFound { .. }) => {
                    vanished.insert(pack.pack.as_str());
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for blob in wanted {
                let end = blob.offset + blob.len;
                let Some(stored) = data.get(blob.offset as usize..end as usize) else {
                    continue; // listed shorter than it says: damaged, `check` reports it
                };
                let whole = unpack(stored, blob.raw_len)
                    .is_ok_and(|content| Hash::of(&content) == blob.hash);
                if !whole {
                    tracing::warn!(pack = %pack.pack, blob = %blob.hash, "damaged blob not copied");
                    continue;
                }
                moved.insert(blob.hash);
                if let Some(full) = packer.add_stored(blob.hash, stored, blob.raw_len) {
                    new_packs.push(upload(store, full, &mut outcome).await?);
                }
            }
        }
        if let Some(last) = packer.seal() {
            new_packs.push(upload(store, last, &mut outcome).await?);
        }
    }
    outcome.repacked = sparse.len();
    outcome.rescued = rescue.len();
    step(2)?;

    // 3. Mark what is no longer needed: garbage, and sparse packs now copied out of. A
    // sparse pack whose copies failed is not marked (its used blobs have no other home).
    let new_blobs: HashSet<Hash> = new_packs
        .iter()
        .flat_map(|p| p.blobs.iter().map(|b| b.hash))
        .collect();
    let moved_everything = |pack: &PackIndex| {
        pack.blobs.iter().all(|b| {
            !used.blobs.contains(&b.hash)
                || kept_blobs.contains(&b.hash)
                || new_blobs.contains(&b.hash)
        })
    };
    let to_mark: Vec<&PackIndex> = garbage
        .iter()
        .copied()
        .chain(
            sparse
                .iter()
                .copied()
                .filter(|p| options.dry_run || moved_everything(p)),
        )
        .collect();
    for pack in &to_mark {
        outcome.marked += 1;
        outcome.marked_bytes += sizes.get(pack.pack.as_str()).copied().unwrap_or(0);
    }
    let now_marked: HashSet<&str> = to_mark.iter().map(|p| p.pack.as_str()).collect();
    if !options.dry_run && !options.grace.is_zero() {
        futures::stream::iter(&to_mark)
            .map(|pack| async move {
                let key = mark_key(&pack.pack).expect("a pack id");
                store.put(&key, Bytes::new()).await
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
    }
    step(3)?;

    // 4. Marked packs: deleted once their grace has passed and no snapshot needs them (what
    // one needed was copied out in step 2). Only a pack a format-1 manifest names by place
    // has its mark taken back (those are never marked by this gitkit). With no grace, what
    // was just marked goes at once.
    let staying: HashSet<Hash> = kept_blobs.union(&new_blobs).copied().collect();
    let mut delete: Vec<&str> = Vec::new();
    let mut unmark: Vec<&str> = Vec::new();
    for pack in packs.iter().filter(|p| index.is_marked(&p.pack)) {
        let needed = used.pinned.contains(&pack.pack)
            || pack
                .blobs
                .iter()
                .any(|b| used.blobs.contains(&b.hash) && !staying.contains(&b.hash));
        let marked_at = mark_times.get(pack.pack.as_str()).copied();
        let ripe = marked_at.is_some_and(|at| {
            listed_at
                .duration_since(at)
                .is_ok_and(|age| age >= options.grace)
        });
        if used.pinned.contains(&pack.pack) {
            unmark.push(&pack.pack);
        } else if needed {
            outcome.waiting += 1; // its copy failed: a damaged blob `check` names
        } else if ripe {
            delete.push(&pack.pack);
        } else {
            outcome.waiting += 1;
        }
    }
    if options.grace.is_zero() {
        delete.extend(now_marked.iter().copied());
    }
    // Marks of packs that are gone already (a prune stopped between its deletes).
    let stale_marks: Vec<&str> = mark_times
        .keys()
        .copied()
        .filter(|pack| !sizes.contains_key(pack))
        .collect();
    // What interrupted runs left: packs no index object describes (a writer stopped between
    // the two uploads), index objects whose pack is gone (a prune stopped between its
    // deletes). Only once older than the grace period: a writer may be between the two now.
    let ripe = |object: &&Object| {
        listed_at
            .duration_since(object.modified)
            .is_ok_and(|age| age >= options.grace)
    };
    let known: HashSet<&str> = packs.iter().map(|p| p.pack.as_str()).collect();
    let orphans: Vec<&str> = data
        .iter()
        .filter(ripe)
        .filter(|o| {
            o.key
                .rsplit('/')
                .next()
                .is_some_and(|p| sizes.contains_key(p) && !known.contains(p))
        })
        .map(|o| o.key.as_str())
        .chain(
            index_objects
                .iter()
                .filter(ripe)
                .filter(|o| {
                    o.key
                        .strip_prefix("index/")
                        .is_some_and(|p| !sizes.contains_key(p))
                })
                .map(|o| o.key.as_str()),
        )
        .collect();
    outcome.unmarked = unmark.len();
    outcome.deleted = delete.len();
    outcome.deleted_bytes = delete.iter().filter_map(|p| sizes.get(p)).sum();
    if !options.dry_run {
        futures::stream::iter(&unmark)
            .map(|pack| async move { store.delete(&mark_key(pack).expect("a pack id")).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
        // The data first: an index object without its pack is passed over by every reader,
        // and a mark without a pack is cleared by the next prune.
        futures::stream::iter(&delete)
            .map(|pack| async move {
                store.delete(&data_key(pack).expect("a pack id")).await?;
                store.delete(&index_key(pack).expect("a pack id")).await?;
                store.delete(&mark_key(pack).expect("a pack id")).await
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
        futures::stream::iter(&stale_marks)
            .filter_map(|pack| async move { mark_key(pack).ok() })
            .map(|key| async move { store.delete(&key).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
        futures::stream::iter(&orphans)
            .map(|key| store.delete(key))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
    }
    step(4)?;

    // 5. Fold the index objects listed at the start into index sets, covering every pack that
    // stays, then remove what the sets now cover. A pack uploaded meanwhile keeps its own.
    let deleted: HashSet<&str> = delete.iter().copied().collect();
    let mut covered: Vec<PackIndex> = packs
        .iter()
        .filter(|p| !deleted.contains(p.pack.as_str()) && !vanished.contains(p.pack.as_str()))
        .cloned()
        .collect();
    covered.extend(new_packs.iter().cloned());
    let covered_ids: HashSet<&str> = covered.iter().map(|p| p.pack.as_str()).collect();
    let per_pack: Vec<&Object> = index_objects
        .iter()
        .filter(|o| {
            o.key
                .strip_prefix("index/")
                .is_some_and(|pack| covered_ids.contains(pack))
        })
        .collect();
    let worth_folding = per_pack.len() + old_sets.len() > 1;
    if worth_folding {
        outcome.folded = per_pack.len();
        outcome.sets = covered.len().div_ceil(PACKS_PER_SET);
    }
    if !options.dry_run && worth_folding {
        covered.sort_by(|a, b| a.pack.cmp(&b.pack));
        for packs in covered.chunks(PACKS_PER_SET) {
            let data = serde_json::to_vec(&IndexSet {
                packs: packs.to_vec(),
            })
            .expect("an index set serializes");
            let key = index_set_key(&data);
            store.put(&key, Bytes::from(data)).await?;
        }
        step(5)?;
        let new_keys: HashSet<String> = covered
            .chunks(PACKS_PER_SET)
            .map(|packs| {
                index_set_key(
                    &serde_json::to_vec(&IndexSet {
                        packs: packs.to_vec(),
                    })
                    .expect("serializes"),
                )
            })
            .collect();
        // The index objects of the packs this prune wrote are covered too.
        let written: Vec<String> = new_packs
            .iter()
            .map(|p| index_key(&p.pack).expect("a pack id"))
            .collect();
        let obsolete: Vec<&str> = per_pack
            .iter()
            .map(|o| o.key.as_str())
            .chain(written.iter().map(String::as_str))
            .chain(
                old_sets
                    .iter()
                    .map(|o| o.key.as_str())
                    .filter(|key| !new_keys.contains(*key)),
            )
            .collect();
        futures::stream::iter(obsolete)
            .map(|key| store.delete(key))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
    }
    Ok(outcome)
}

/// Uploads a pack written by a repack, data before its index object.
async fn upload<S: Store>(
    store: &S,
    pack: Pack,
    outcome: &mut Outcome,
) -> Result<PackIndex, StoreError> {
    outcome.repacked_bytes += pack.data.len() as u64;
    store
        .put(&data_key(&pack.id).expect("a pack id"), pack.data.clone())
        .await?;
    store
        .put(&index_key(&pack.id).expect("a pack id"), pack.index_bytes())
        .await?;
    Ok(pack.index)
}

/// What every snapshot in the store uses.
async fn used<S: Store>(
    store: &S,
    index: &BlobIndex,
    mut pause: Option<std::path::PathBuf>,
    outcome: &mut Outcome,
) -> Result<Used, PruneError> {
    let mut used = Used::default();
    let mut loader = tree::Loader::new(store, index);
    // The packs listed again, for snapshots published after the first listing.
    let mut late: Option<BlobIndex> = None;
    for workspace in workspaces(store).await? {
        let unreadable = |id: &str, source| PruneError::Unreadable {
            workspace: workspace.clone(),
            id: id.to_string(),
            source: Box::new(source),
        };
        let ids = ids(store, &workspace)
            .await
            .map_err(|e| unreadable("*", e))?;
        for id in ids {
            let stored = match read_object(store, &workspace, &id).await {
                Ok(stored) => stored,
                // Forgotten meanwhile: it needs nothing any more.
                Err(FindError::NoSuchSnapshot { .. }) => continue,
                Err(FindError::Store(e)) => return Err(e.into()),
                Err(e) => return Err(unreadable(&id, e)),
            };
            outcome.snapshots += 1;
            if let Some(pipe) = pause.take() {
                let waited = tokio::task::spawn_blocking(move || std::fs::read(pipe)).await;
                waited
                    .expect("waiting does not panic")
                    .map_err(|source| StoreError::Local {
                        action: "read",
                        what: "the test's pause pipe",
                        source,
                    })?;
            }
            match stored {
                Stored::Manifest(manifest) => {
                    for entry in manifest.entries {
                        if let super::manifest::Kind::File { blobs, .. } = entry.kind {
                            for blob in blobs {
                                used.pinned.insert(blob.pack.to_hex());
                                used.blobs.insert(blob.hash);
                            }
                        }
                    }
                }
                Stored::Object(object) => {
                    let root = Hash::parse(&object.tree).expect("read_object checked it");
                    let mut found = loader.collect(&root, &mut used.blobs).await;
                    let gone = |found: &Result<(), TreeError>| {
                        matches!(
                            found,
                            Err(TreeError::Missing { .. }
                                | TreeError::Store(StoreError::NotFound { .. }))
                        )
                    };
                    if gone(&found) {
                        // Published after the packs were listed, its trees may be in packs
                        // uploaded since; a pack listed may have been copied out and deleted
                        // since by another prune: read them through a listing made now. What
                        // it uses is only added to what is kept; the packs pruned stay those
                        // listed first.
                        let late = match late.as_mut() {
                            Some(late) => late,
                            None => late.insert(BlobIndex::default()),
                        };
                        late.refresh(store).await?;
                        found = tree::Loader::new(store, late)
                            .collect(&root, &mut used.blobs)
                            .await;
                    }
                    if gone(&found)
                        && let Err(FindError::NoSuchSnapshot { .. }) =
                            read_object(store, &workspace, &id).await
                    {
                        outcome.snapshots -= 1;
                        continue; // forgotten meanwhile, and its packs pruned by another
                    }
                    found.map_err(|e| match e {
                        TreeError::Store(e) => PruneError::Store(e),
                        other => unreadable(&id, FindError::Tree(id.clone(), other)),
                    })?;
                }
            }
        }
    }
    Ok(used)
}
