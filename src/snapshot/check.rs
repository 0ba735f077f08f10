//! `check`: whether every snapshot in a store can be restored, and if not, what is damaged and
//! which snapshots that touches.
//!
//! Without reading data, every snapshot is read as restore reads it ([`Reader::read`]: its
//! manifest or snapshot object parses, its trees hash right and parse, its names are safe), and
//! every blob it names must lie inside a pack the store lists. With `read_data`, every pack a
//! snapshot uses is also streamed once and checked: its bytes hash to its id, and every blob its
//! index object names (and every place a format-1 manifest names) hashes right. Nothing this
//! machine remembers about the store is trusted: damage done in place is found.

mod stream;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use stream::{Place, checks, read_pack};

use super::id::Hash;
use super::id::{self, IdError, is_hash};
use super::index::{INDEX_SETS, IndexSet, index_set_key};
use super::manifest::{Kind, MAX_PACK_LEN};
use super::pack::{PackIndex, Packed, index_key};
use super::progress::Progress;
use super::tree::TreeError;
use super::{FindError, Reader};
use crate::store::{Store, StoreError};
use crate::text::chain_text;

/// Packs streamed at once with `read_data`.
const READ_CONCURRENCY: usize = 4;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only this workspace's snapshots; every workspace's when `None`.
    pub workspace: Option<String>,
    /// Also stream every pack a snapshot uses and check its content.
    pub read_data: bool,
}

/// What kind of object is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Object {
    Pack,
    Tree,
    Blob,
    /// A snapshot object or format-1 manifest.
    Snapshot,
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Object::Pack => "pack",
            Object::Tree => "tree",
            Object::Blob => "blob",
            Object::Snapshot => "snapshot",
        })
    }
}

/// One damaged object, and the snapshots (`workspace/id`) that cannot be restored whole
/// because of it.
#[derive(Debug, Clone, Serialize)]
pub struct Damage {
    pub object: Object,
    /// A pack id, a blob or tree hash, or `workspace/id`.
    pub id: String,
    pub problem: String,
    pub snapshots: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub store: String,
    pub workspaces: Vec<String>,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Packs the snapshots use.
    pub packs: usize,
    /// Packs streamed and checked (with `read_data`), and their bytes.
    pub packs_read: usize,
    pub bytes_read: u64,
    pub damaged: Vec<Damage>,
}

impl Report {
    /// The snapshots some damage touches.
    pub fn damaged_snapshots(&self) -> BTreeSet<&str> {
        self.damaged
            .iter()
            .flat_map(|d| d.snapshots.iter().map(String::as_str))
            .collect()
    }
}

/// The store is damaged: what the command fails with once the report is written.
#[derive(Debug, thiserror::Error)]
#[error(
    "{store} is damaged: {objects} damaged object(s), touching {snapshots} of {checked} snapshot(s)"
)]
pub struct Damaged {
    pub store: String,
    pub objects: usize,
    pub snapshots: usize,
    pub checked: usize,
}

impl Damaged {
    /// `Some` when `report` found damage.
    pub fn of(report: &Report) -> Option<Self> {
        (!report.damaged.is_empty()).then(|| Self {
            store: report.store.clone(),
            objects: report.damaged.len(),
            snapshots: report.damaged_snapshots().len(),
            checked: report.snapshots,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Find(#[from] FindError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the snapshots read so far use, and the damage found.
#[derive(Default)]
struct Scan {
    /// Damaged objects, each with the first problem said of it and the snapshots (indexes into
    /// the names checked) it touches.
    damage: BTreeMap<(Object, String), (String, BTreeSet<usize>)>,
    /// Which snapshots use each pack, for their files or their trees.
    users: HashMap<String, BTreeSet<usize>>,
    /// The places format-1 manifests name, by pack: checked too with `read_data`.
    named: HashMap<String, BTreeSet<Place>>,
    /// Blobs and trees no pack the index believes holds, and the snapshot that needs each.
    missing: Vec<(&'static str, String, usize)>,
    checked: usize,
}

/// The packs the store lists: data objects by size, and index objects.
struct Listed {
    sizes: HashMap<String, u64>,
    indexed: BTreeSet<String>,
}

impl Scan {
    fn add(&mut self, object: Object, id: &str, problem: String, snapshot: Option<usize>) {
        let (_, touched) = self
            .damage
            .entry((object, id.to_string()))
            .or_insert_with(|| (problem, BTreeSet::new()));
        touched.extend(snapshot);
    }

    fn uses(&mut self, pack: &str, snapshot: usize) {
        self.users
            .entry(pack.to_string())
            .or_default()
            .insert(snapshot);
    }

    /// Reads snapshot `n`, `workspace/id`, and records what it uses and what is damaged.
    async fn snapshot<S: Store>(
        &mut self,
        reader: &mut Reader<'_, S>,
        listed: &Listed,
        n: usize,
        (workspace, id): (&str, &str),
    ) -> Result<(), CheckError> {
        let (manifest, tree_packs) = match reader.read_traced(workspace, id).await {
            Ok(read) => read,
            // Forgotten since it was listed: nothing to check.
            Err(FindError::NoSuchSnapshot { .. }) => return Ok(()),
            Err(FindError::Store(StoreError::NotFound { key, .. })) => {
                // A pack listed a moment ago is gone.
                let pack = key.rsplit('/').next().unwrap_or_default();
                self.add(Object::Pack, pack, "its data is gone".into(), Some(n));
                self.checked += 1;
                return Ok(());
            }
            Err(FindError::Store(e)) => return Err(e.into()),
            Err(FindError::Tree(_, TreeError::Missing { what, hash })) => {
                self.missing.push((what, hash, n));
                self.checked += 1;
                return Ok(());
            }
            Err(FindError::Tree(_, error)) if damaged_tree(&error).is_some() => {
                let hash = damaged_tree(&error).expect("a tree");
                self.add(Object::Tree, hash, chain_text(&error), Some(n));
                // The pack holding it is read with `read_data`, and names this snapshot.
                let located = match Hash::parse(hash) {
                    Some(hash) => reader.index().await?.locate(&hash),
                    None => None,
                };
                if let Some(blob) = located {
                    self.uses(&blob.pack.to_hex(), n);
                }
                self.checked += 1;
                return Ok(());
            }
            Err(other) => {
                let name = snapshot_name(workspace, id);
                self.add(Object::Snapshot, &name, chain_text(&other), Some(n));
                self.checked += 1;
                return Ok(());
            }
        };
        self.checked += 1;
        for pack in tree_packs {
            self.uses(&pack, n);
        }
        for entry in &manifest.entries {
            let Kind::File { blobs, .. } = &entry.kind else {
                continue;
            };
            for blob in blobs {
                let pack = blob.pack.to_hex();
                self.uses(&pack, n);
                let end = blob.offset.saturating_add(blob.len);
                match listed.sizes.get(&pack) {
                    None => {
                        let problem = if listed.indexed.contains(&pack) {
                            "its data is gone (its index object is still there)"
                        } else {
                            "its data is gone"
                        };
                        self.add(Object::Pack, &pack, problem.into(), Some(n));
                    }
                    Some(&size) if end > size => self.add(
                        Object::Pack,
                        &pack,
                        format!("truncated: {size} bytes, but a snapshot names bytes up to {end}"),
                        Some(n),
                    ),
                    Some(_) => {}
                }
                if manifest.version == 1 {
                    let place = (blob.offset, blob.len, blob.hash, blob.raw_len);
                    self.named.entry(pack).or_default().insert(place);
                }
            }
        }
        Ok(())
    }

    /// Records `problem` of `pack`, which the index does not believe, if a snapshot needs it:
    /// one uses it, or it holds a blob or tree that is missing (`blobs`).
    fn blame(
        &mut self,
        pack: &str,
        problem: String,
        blobs: Vec<Packed>,
        held_by: &mut HashMap<String, String>,
    ) {
        let holds_missing = blobs.iter().any(|b| {
            self.missing
                .iter()
                .any(|(_, hash, _)| b.hash == *hash.as_str())
        });
        if !holds_missing && !self.users.contains_key(pack) {
            return;
        }
        for blob in blobs {
            held_by.insert(blob.hash.to_hex(), pack.to_string());
        }
        self.add(Object::Pack, pack, problem, None);
    }

    /// Says why each index object the index did not believe was doubted, where a snapshot
    /// needs its pack, and names the pack that held each missing blob or tree.
    async fn explain<S: Store>(
        &mut self,
        store: &S,
        listed: &Listed,
        believed: &HashMap<&str, &PackIndex>,
    ) -> Result<(), StoreError> {
        let mut held_by: HashMap<String, String> = HashMap::new();
        let doubted = listed
            .indexed
            .iter()
            .filter(|pack| !believed.contains_key(pack.as_str()));
        for pack in doubted {
            let (problem, blobs) = match fetch_index(store, pack).await? {
                Ok(index) => (
                    judge(
                        pack,
                        &index,
                        listed.sizes.get(pack).copied(),
                        "index object",
                    ),
                    index.blobs,
                ),
                Err(problem) => (problem.to_string(), Vec::new()),
            };
            self.blame(pack, problem, blobs, &mut held_by);
        }
        // Packs an index set describes have no index object of their own: look for the
        // missing blobs and trees in the sets too, if there are any left to find.
        if self
            .missing
            .iter()
            .any(|(_, hash, _)| !held_by.contains_key(hash))
        {
            for set in index_sets(store).await? {
                for index in set.packs {
                    let pack = index.pack.clone();
                    if believed.contains_key(pack.as_str()) || listed.indexed.contains(&pack) {
                        continue;
                    }
                    let size = listed.sizes.get(&pack).copied();
                    let problem = judge(&pack, &index, size, "index set");
                    self.blame(&pack, problem, index.blobs, &mut held_by);
                }
            }
        }
        for (what, hash, n) in std::mem::take(&mut self.missing) {
            match held_by.get(&hash) {
                Some(pack) => self.uses(pack, n),
                None => {
                    let object = match what {
                        "tree" => Object::Tree,
                        _ => Object::Blob,
                    };
                    let problem = "no pack in the store holds it".to_string();
                    self.add(object, &hash, problem, Some(n));
                }
            }
        }
        Ok(())
    }

    /// Streams every pack a snapshot uses that is not known to be damaged already, and checks
    /// it against its index object and the places format-1 manifests name in it.
    async fn read_data<S: Store>(
        &mut self,
        store: &S,
        listed: &Listed,
        believed: &HashMap<&str, &PackIndex>,
        progress: &dyn Progress,
    ) -> Result<(usize, u64), StoreError> {
        let to_read: Vec<(String, u64)> = self
            .users
            .keys()
            .filter(|pack| !self.damage.contains_key(&(Object::Pack, pack.to_string())))
            .filter_map(|pack| Some((pack.clone(), *listed.sizes.get(pack)?)))
            .collect();
        progress.start(
            to_read.len() as u64,
            to_read.iter().map(|(_, size)| size).sum(),
        );
        let named = &self.named;
        let jobs = to_read.into_iter().map(|(pack, size)| {
            let index = believed.get(pack.as_str()).copied();
            let checks = checks(&pack, index, named.get(&pack));
            (pack, size, checks)
        });
        let results: Vec<(String, u64, Option<String>)> = futures::stream::iter(jobs)
            .map(|(pack, size, checks)| async move {
                let problem = read_pack(store, &pack, &checks).await?;
                progress.advance(size);
                Ok::<_, StoreError>((pack, size, problem))
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        progress.finish();
        let (mut packs, mut bytes) = (0, 0);
        for (pack, size, problem) in results {
            packs += 1;
            bytes += size;
            if let Some(problem) = problem {
                self.add(Object::Pack, &pack, problem, None);
            }
        }
        Ok((packs, bytes))
    }

    /// The damage found, each naming the snapshots it touches; a pack names every snapshot
    /// that uses it.
    fn damage(self, names: &[(String, String)]) -> Vec<Damage> {
        let users = self.users;
        self.damage
            .into_iter()
            .map(|((object, id), (problem, mut touched))| {
                if object == Object::Pack {
                    touched.extend(users.get(&id).into_iter().flatten());
                }
                Damage {
                    object,
                    id,
                    problem,
                    snapshots: touched
                        .into_iter()
                        .map(|n| snapshot_name(&names[n].0, &names[n].1))
                        .collect(),
                }
            })
            .collect()
    }
}

/// Checks the snapshots of `options.workspace`, or of every workspace, in `store`.
///
/// Damage is confirmed by a second look with the store listed afresh: a prune running
/// meanwhile copies what snapshots use out of packs it then deletes, which the first look,
/// holding the older listing, would take for lost data.
pub async fn check<S: Store>(
    store: &S,
    options: &Options,
    progress: Arc<dyn Progress>,
) -> Result<Report, CheckError> {
    let first = check_once(store, options, progress).await?;
    if first.damaged.is_empty() {
        return Ok(first);
    }
    check_once(store, options, Arc::new(super::Silent)).await
}

async fn check_once<S: Store>(
    store: &S,
    options: &Options,
    progress: Arc<dyn Progress>,
) -> Result<Report, CheckError> {
    let workspaces = match &options.workspace {
        Some(name) => {
            id::check_workspace(name)?;
            vec![name.clone()]
        }
        None => super::workspaces(store).await?,
    };
    let mut report = Report {
        store: store.name().to_string(),
        workspaces: workspaces.clone(),
        ..Report::default()
    };
    let mut names = Vec::new();
    for workspace in &workspaces {
        for id in super::ids(store, workspace).await? {
            names.push((workspace.clone(), id));
        }
    }
    if names.is_empty() {
        return Ok(report);
    }
    let listed = list(store).await?;

    let mut scan = Scan::default();
    let mut reader = Reader::new(store);
    for (n, (workspace, id)) in names.iter().enumerate() {
        scan.snapshot(&mut reader, &listed, n, (workspace, id))
            .await?;
    }
    report.snapshots = scan.checked;
    let packs = reader.index().await?.packs()?;
    let believed: HashMap<&str, &PackIndex> = packs.iter().map(|p| (p.pack.as_str(), p)).collect();
    scan.explain(store, &listed, &believed).await?;
    report.packs = scan.users.len();
    if options.read_data {
        (report.packs_read, report.bytes_read) = scan
            .read_data(store, &listed, &believed, progress.as_ref())
            .await?;
    }
    report.damaged = scan.damage(&names);
    let forgotten = forgotten_since(store, &report.damaged).await?;
    if !forgotten.is_empty() {
        // Forgotten (and pruned) while this ran: not damage, and not checked.
        for damage in &mut report.damaged {
            damage.snapshots.retain(|name| !forgotten.contains(name));
        }
        report.damaged.retain(|damage| !damage.snapshots.is_empty());
        report.snapshots -= forgotten.len();
    }
    Ok(report)
}

/// Which of the snapshots `damaged` names are no longer in the store.
async fn forgotten_since<S: Store>(
    store: &S,
    damaged: &[Damage],
) -> Result<BTreeSet<String>, CheckError> {
    let named: BTreeSet<&String> = damaged.iter().flat_map(|d| &d.snapshots).collect();
    let mut gone = BTreeSet::new();
    for name in named {
        let (workspace, id) = name.split_once('/').expect("workspace/id");
        match store.get(&super::manifest_key(workspace, id)?).await {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                gone.insert(name.clone());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(gone)
}

/// The packs `store` lists.
async fn list<S: Store>(store: &S) -> Result<Listed, StoreError> {
    let (data, indexes) = futures::try_join!(store.list("data/"), store.list("index/"))?;
    let sizes = super::index::pack_sizes(&data)
        .into_iter()
        .map(|(pack, size)| (pack.to_string(), size))
        .collect();
    let indexed = indexes
        .iter()
        .filter_map(|object| object.key.strip_prefix("index/"))
        .filter(|pack| is_hash(pack))
        .map(str::to_string)
        .collect();
    Ok(Listed { sizes, indexed })
}

/// The tree `error` says is damaged, if it names one.
fn damaged_tree(error: &TreeError) -> Option<&str> {
    match error {
        TreeError::Corrupt(hash) | TreeError::Parse(hash, _) | TreeError::BadName(hash) => {
            Some(hash)
        }
        TreeError::Missing { .. } | TreeError::TooLarge | TreeError::Store(_) => None,
    }
}

fn snapshot_name(workspace: &str, id: &str) -> String {
    format!("{workspace}/{id}")
}

/// The index object of `pack`, or why there is none to read.
async fn fetch_index<S: Store>(
    store: &S,
    pack: &str,
) -> Result<Result<PackIndex, &'static str>, StoreError> {
    match store
        .get(&index_key(pack).expect("listed as a pack id"))
        .await
    {
        Ok(data) => Ok(serde_json::from_slice::<PackIndex>(&data)
            .map_err(|_| "its index object does not parse")),
        Err(StoreError::NotFound { .. }) => Ok(Err("its index object is gone")),
        Err(e) => Err(e),
    }
}

/// The index sets in `store` that match their names (the others are not believed by anyone).
async fn index_sets<S: Store>(store: &S) -> Result<Vec<IndexSet>, StoreError> {
    let mut sets = Vec::new();
    for object in store.list(INDEX_SETS).await? {
        let data = match store.get(&object.key).await {
            Ok(data) => data,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        if index_set_key(&data) == object.key
            && let Ok(set) = serde_json::from_slice::<IndexSet>(&data)
        {
            sets.push(set);
        }
    }
    Ok(sets)
}

/// Why `index` (from an index object or an index set, `source`) of `pack`, whose data is
/// `size` bytes or gone, was not believed.
fn judge(pack: &str, index: &PackIndex, size: Option<u64>, source: &str) -> String {
    let Some(size) = size else {
        return format!("its data is gone (its {source} is still there)");
    };
    let end = index
        .blobs
        .iter()
        .map(|b| b.offset.saturating_add(b.len))
        .max();
    match index.check(pack, size) {
        Err(_) if end.is_some_and(|end| end > size && end <= MAX_PACK_LEN) => format!(
            "truncated: {size} bytes, but its {source} names bytes up to {}",
            end.unwrap_or_default()
        ),
        Err(e) => format!("its {source} does not describe it: {e}"),
        Ok(()) => format!("it does not hold what its {source} says"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_why_an_index_was_not_believed() {
        let pack = "a".repeat(64);
        let index = PackIndex {
            pack: pack.clone(),
            blobs: vec![Packed {
                hash: Hash([0xbb; 32]),
                offset: 0,
                len: 100,
                raw_len: None,
            }],
        };
        assert_eq!(
            judge(&pack, &index, None, "index set"),
            "its data is gone (its index set is still there)"
        );
        assert_eq!(
            judge(&pack, &index, Some(90), "index object"),
            "truncated: 90 bytes, but its index object names bytes up to 100"
        );
        assert!(
            judge(&"c".repeat(64), &index, Some(100), "index object").contains("does not describe")
        );
        assert_eq!(
            judge(&pack, &index, Some(100), "index object"),
            "it does not hold what its index object says"
        );
    }
}
