//! `check`: whether every snapshot in a store can be restored, and if not, what is damaged and
//! which snapshots that touches.
//!
//! Without reading data, every snapshot is read as restore reads it ([`Reader::read`]: its
//! manifest or snapshot object parses, its trees hash right and parse, its names are safe), and
//! every blob it names must lie inside a pack the store lists. With `read_data`, every pack a
//! snapshot uses is also streamed once and checked: its bytes hash to its id, and every blob its
//! index object names (and every place a format-1 manifest names) hashes right. Nothing this
//! machine remembers about the store is trusted: damage done in place is found.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::id::{self, IdError, is_hash};
use super::manifest::{BlobRef, Kind, MAX_PACK_LEN};
use super::pack::{PackChecker, PackIndex, Packed, data_key, index_key};
use super::progress::Progress;
use super::tree::TreeError;
use super::{FindError, Reader};
use crate::store::{Store, StoreError};

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
#[error("{objects} damaged objects in {store} touch {snapshots} of its {checked} snapshots")]
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

/// Damage found so far, by object; each with the snapshots (indexes into `names`) it touches.
#[derive(Default)]
struct Findings {
    damage: BTreeMap<(Object, String), (String, BTreeSet<usize>)>,
}

impl Findings {
    /// Records `problem` of `object` `id`, touching `snapshot` if given. The first problem
    /// said of an object is kept.
    fn add(&mut self, object: Object, id: &str, problem: String, snapshot: Option<usize>) {
        let (_, touched) = self
            .damage
            .entry((object, id.to_string()))
            .or_insert_with(|| (problem, BTreeSet::new()));
        touched.extend(snapshot);
    }

    fn has_pack(&self, pack: &str) -> bool {
        self.damage.contains_key(&(Object::Pack, pack.to_string()))
    }
}

/// Checks the snapshots of `options.workspace`, or of every workspace, in `store`.
pub async fn check<S: Store>(
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

    let (data, indexes) = futures::try_join!(store.list("data/"), store.list("index/"))?;
    let sizes: HashMap<String, u64> = data
        .iter()
        .filter_map(|object| {
            let pack = object.key.rsplit('/').next()?;
            (is_hash(pack) && data_key(pack).ok()? == object.key)
                .then(|| (pack.to_string(), object.size))
        })
        .collect();
    let indexed: BTreeSet<String> = indexes
        .iter()
        .filter_map(|object| object.key.strip_prefix("index/"))
        .filter(|pack| is_hash(pack))
        .map(str::to_string)
        .collect();

    let mut findings = Findings::default();
    // Which snapshots use each pack, for their files or their trees.
    let mut users: HashMap<String, BTreeSet<usize>> = HashMap::new();
    // The places format-1 manifests name, by pack: checked on their own with `read_data`.
    let mut named: HashMap<String, BTreeSet<(u64, u64, String, Option<u64>)>> = HashMap::new();
    // Blobs and trees no pack the index believes holds, and the snapshot that needs each.
    let mut missing: Vec<(&'static str, String, usize)> = Vec::new();
    let mut reader = Reader::new(store);
    let mut checked = HashSet::new();
    for (n, (workspace, id)) in names.iter().enumerate() {
        let (manifest, tree_packs) = match reader.read_traced(workspace, id).await {
            Ok(read) => read,
            // Forgotten since it was listed: nothing to check.
            Err(FindError::NoSuchSnapshot { .. }) => continue,
            Err(FindError::Tree(_, TreeError::Missing { what, hash })) => {
                missing.push((what, hash, n));
                checked.insert(n);
                continue;
            }
            Err(FindError::Tree(_, error)) => {
                let problem = crate::text::chain_text(&error);
                match &error {
                    TreeError::Corrupt(hash)
                    | TreeError::Parse(hash, _)
                    | TreeError::BadName(hash)
                    | TreeError::BadHash(hash) => {
                        findings.add(Object::Tree, hash, problem, Some(n));
                        // The pack holding it is read with `read_data`, and names this one.
                        if let Some(blob) = reader.index().await?.locate(hash) {
                            users.entry(blob.pack.clone()).or_default().insert(n);
                        }
                    }
                    _ => findings.add(
                        Object::Snapshot,
                        &snapshot_name(workspace, id),
                        problem,
                        Some(n),
                    ),
                }
                checked.insert(n);
                continue;
            }
            // A pack listed a moment ago is gone.
            Err(FindError::Store(StoreError::NotFound { key, .. })) => {
                let pack = key.rsplit('/').next().unwrap_or_default().to_string();
                findings.add(Object::Pack, &pack, "its data is gone".into(), Some(n));
                checked.insert(n);
                continue;
            }
            Err(FindError::Store(e)) => return Err(e.into()),
            Err(other) => {
                let name = snapshot_name(workspace, id);
                findings.add(
                    Object::Snapshot,
                    &name,
                    crate::text::chain_text(&other),
                    Some(n),
                );
                checked.insert(n);
                continue;
            }
        };
        checked.insert(n);
        for pack in tree_packs {
            users.entry(pack).or_default().insert(n);
        }
        for entry in &manifest.entries {
            let Kind::File { blobs, .. } = &entry.kind else {
                continue;
            };
            for blob in blobs {
                users.entry(blob.pack.clone()).or_default().insert(n);
                match sizes.get(&blob.pack) {
                    None => findings.add(
                        Object::Pack,
                        &blob.pack,
                        gone(&indexed, &blob.pack),
                        Some(n),
                    ),
                    Some(&size) if blob.offset.saturating_add(blob.len) > size => findings.add(
                        Object::Pack,
                        &blob.pack,
                        format!(
                            "truncated: {size} bytes, but a snapshot names bytes up to {}",
                            blob.offset.saturating_add(blob.len)
                        ),
                        Some(n),
                    ),
                    Some(_) => {}
                }
                if manifest.version == 1 {
                    named
                        .entry(blob.pack.clone())
                        .or_default()
                        .insert(place(blob));
                }
            }
        }
    }
    report.snapshots = checked.len();

    // Index objects the index did not believe: say why, and find which packs held the blobs
    // and trees that are missing.
    let believed: HashMap<&str, &PackIndex> = reader
        .index()
        .await?
        .packs()
        .iter()
        .map(|p| (p.pack.as_str(), p))
        .collect();
    let doubted: Vec<String> = indexed
        .iter()
        .filter(|pack| !believed.contains_key(pack.as_str()))
        .cloned()
        .collect();
    let mut held_by: HashMap<String, String> = HashMap::new();
    for pack in doubted {
        let (problem, blobs) = doubt(store, &pack, sizes.get(&pack).copied()).await?;
        let needed = blobs
            .iter()
            .any(|b| missing.iter().any(|(_, hash, _)| *hash == b.hash))
            || users.contains_key(&pack);
        if !needed {
            continue;
        }
        for blob in blobs {
            held_by.insert(blob.hash, pack.clone());
        }
        findings.add(Object::Pack, &pack, problem, None);
    }
    for (what, hash, n) in missing {
        match held_by.get(&hash) {
            Some(pack) => {
                users.entry(pack.clone()).or_default().insert(n);
            }
            None => {
                let object = if what == "tree" {
                    Object::Tree
                } else {
                    Object::Blob
                };
                findings.add(
                    object,
                    &hash,
                    "no pack in the store holds it".into(),
                    Some(n),
                );
            }
        }
    }
    report.packs = users.len();

    if options.read_data {
        let to_read: Vec<(String, u64)> = users
            .keys()
            .filter(|pack| !findings.has_pack(pack))
            .filter_map(|pack| Some((pack.clone(), *sizes.get(pack)?)))
            .collect();
        progress.start(
            to_read.len() as u64,
            to_read.iter().map(|(_, size)| size).sum(),
        );
        let jobs = to_read.into_iter().map(|(pack, size)| {
            let mut checks: Vec<PackIndex> = believed
                .get(pack.as_str())
                .map(|p| (*p).clone())
                .into_iter()
                .collect();
            let listed: HashSet<(u64, u64, &str, Option<u64>)> = checks
                .first()
                .map(|index| {
                    index
                        .blobs
                        .iter()
                        .map(|b| (b.offset, b.len, b.hash.as_str(), b.raw_len))
                        .collect()
                })
                .unwrap_or_default();
            let others: Vec<Packed> = named
                .get(&pack)
                .into_iter()
                .flatten()
                .filter(|(offset, len, hash, raw_len)| {
                    !listed.contains(&(*offset, *len, hash.as_str(), *raw_len))
                })
                .map(|(offset, len, hash, raw_len)| Packed {
                    hash: hash.clone(),
                    offset: *offset,
                    len: *len,
                    raw_len: *raw_len,
                })
                .collect();
            checks.extend(apart(&pack, others));
            (pack, size, checks)
        });
        let progress = &progress;
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
        for (pack, size, problem) in results {
            report.packs_read += 1;
            report.bytes_read += size;
            if let Some(problem) = problem {
                findings.add(Object::Pack, &pack, problem, None);
            }
        }
    }

    report.damaged = findings
        .damage
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
        .collect();
    Ok(report)
}

fn snapshot_name(workspace: &str, id: &str) -> String {
    format!("{workspace}/{id}")
}

fn place(blob: &BlobRef) -> (u64, u64, String, Option<u64>) {
    (blob.offset, blob.len, blob.hash.clone(), blob.raw_len)
}

/// Why a pack a snapshot names is not in the data listing.
fn gone(indexed: &BTreeSet<String>, pack: &str) -> String {
    if indexed.contains(pack) {
        "its data is gone (its index object is still there)".into()
    } else {
        "its data is gone".into()
    }
}

/// Why the index object of `pack` (whose data is `size` bytes, or gone) was not believed, and
/// the blobs it claims, where it parses.
async fn doubt<S: Store>(
    store: &S,
    pack: &str,
    size: Option<u64>,
) -> Result<(String, Vec<Packed>), StoreError> {
    let data = match store
        .get(&index_key(pack).expect("listed as a pack id"))
        .await
    {
        Ok(data) => data,
        Err(StoreError::NotFound { .. }) => {
            return Ok(("its index object is gone".into(), Vec::new()));
        }
        Err(e) => return Err(e),
    };
    let Ok(index) = serde_json::from_slice::<PackIndex>(&data) else {
        return Ok(("its index object does not parse".into(), Vec::new()));
    };
    let problem = match size {
        None => "its data is gone (its index object is still there)".to_string(),
        Some(size) => {
            let end = index
                .blobs
                .iter()
                .map(|b| b.offset.saturating_add(b.len))
                .max();
            match index.check(pack, size) {
                Err(_) if end.is_some_and(|end| end > size && end <= MAX_PACK_LEN) => format!(
                    "truncated: {size} bytes, but its index object names bytes up to {}",
                    end.unwrap_or_default()
                ),
                Err(e) => format!("its index object does not describe it: {e}"),
                Ok(()) => "it does not hold what its index object says".to_string(),
            }
        }
    };
    Ok((problem, index.blobs))
}

/// `blobs` (places in `pack` that format-1 manifests name and its index object does not) as
/// checks of their own, each a list of places that do not overlap, in order.
fn apart(pack: &str, mut blobs: Vec<Packed>) -> Vec<PackIndex> {
    blobs.sort_by_key(|b| (b.offset, b.len));
    let mut groups: Vec<PackIndex> = Vec::new();
    for blob in blobs {
        let fits = groups.iter_mut().find(|g| {
            g.blobs
                .last()
                .is_none_or(|last| last.offset.saturating_add(last.len) <= blob.offset)
        });
        match fits {
            Some(group) => group.blobs.push(blob),
            None => groups.push(PackIndex {
                pack: pack.to_string(),
                blobs: vec![blob],
            }),
        }
    }
    groups
}

/// Streams `pack` once through `checks` (its index object, and the places manifests name);
/// returns what is wrong with it, if anything.
async fn read_pack<S: Store>(
    store: &S,
    pack: &str,
    checks: &[PackIndex],
) -> Result<Option<String>, StoreError> {
    let key = data_key(pack).expect("a pack id");
    let mut body = match store.get_stream(&key).await {
        Ok(body) => body,
        Err(StoreError::NotFound { .. }) => return Ok(Some("its data is gone".into())),
        Err(e) => return Err(e),
    };
    let mut whole = blake3::Hasher::new();
    let mut checkers: Vec<PackChecker> = checks.iter().map(PackChecker::new).collect();
    let mut read = 0u64;
    loop {
        let piece = match body.try_next().await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::InvalidData =>
            {
                return Ok(Some(format!("it cannot be read: {source}")));
            }
            Err(e) => return Err(e),
        };
        read += piece.len() as u64;
        if read > MAX_PACK_LEN {
            return Ok(Some("it is larger than any pack can be".into()));
        }
        whole.update(&piece);
        for checker in &mut checkers {
            checker.update(&piece);
        }
    }
    if whole.finalize().to_hex().as_str() != pack {
        return Ok(Some(format!(
            "its {read} bytes do not hash to its id (damaged or truncated)"
        )));
    }
    if !checkers.into_iter().all(PackChecker::finish) {
        return Ok(Some(
            "its bytes are whole, but a blob its index object or a manifest names does not hash right"
                .into(),
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(offset: u64, len: u64) -> Packed {
        Packed {
            hash: "a".repeat(64),
            offset,
            len,
            raw_len: None,
        }
    }

    #[test]
    fn overlapping_places_are_checked_apart() {
        let groups = apart("p", vec![packed(10, 5), packed(0, 10), packed(5, 10)]);
        let places: Vec<Vec<(u64, u64)>> = groups
            .iter()
            .map(|g| g.blobs.iter().map(|b| (b.offset, b.len)).collect())
            .collect();
        assert_eq!(places, [vec![(0, 10), (10, 5)], vec![(5, 10)]]);
    }
}
