//! `gitkit snapshot`: scan, read what changed, upload new blobs in packs, then the manifest.
//!
//! Order matters for crash safety: packs, then their index objects, then the manifest. A run
//! that dies part-way leaves only unreferenced packs behind, which the next run finds through
//! their index objects and reuses.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::cache::{Content, FileCache, Stat};
use super::index::BlobIndex;
use super::manifest::{BlobRef, Entry, FORMAT_VERSION, Kind, Manifest, RelPath, Summary};
use super::pack::{CHUNK_SIZE, Pack, Packer, data_key, index_key};
use super::progress::Progress;
use super::scan::{self, Found, STATE_DIR, ScanError};
use super::workspace::Workspace;
use super::{manifest_key, state};
use crate::store::{Store, StoreError};

/// Packs uploading at once; with one more queued and one filling, this bounds memory.
const UPLOAD_CONCURRENCY: usize = 4;
/// A file that keeps changing while it is read is read this many times at most.
const READ_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not write gitkit's state in {0}")]
    State(String, #[source] std::io::Error),
}

pub struct Options {
    pub include_ignored: bool,
    pub host: String,
    pub now: SystemTime,
}

/// What a snapshot run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub summary: Summary,
    /// The workspace had not changed since this machine's last snapshot to this store, which is
    /// `summary`; nothing was written.
    pub unchanged: bool,
    /// Bytes read from disk (files whose cached hash could not be trusted).
    pub read_bytes: u64,
    /// Bytes of new content uploaded, and in how many packs.
    pub new_bytes: u64,
    pub new_packs: usize,
    /// Files that could not be read (permission denied), left out.
    pub skipped: Vec<String>,
    pub seconds: f64,
}

pub async fn create<S: Store>(
    store: &S,
    workspace: &Workspace,
    options: &Options,
    progress: Arc<dyn Progress>,
) -> Result<Outcome, SnapshotError> {
    let started = Instant::now();
    let state_dir = workspace.git_dir.join(STATE_DIR);
    let state_error = |e| SnapshotError::State(state_dir.display().to_string(), e);
    std::fs::create_dir_all(&state_dir).map_err(state_error)?;

    let index_cache = BlobIndex::cache_path(&state_dir, store.name());
    let mut index = BlobIndex::load(&index_cache);
    debug!("index cache loaded");
    let last = state::Last::load(&state_dir, store.name());
    let (found, cache) = {
        let workspace = workspace.clone();
        let state_dir = state_dir.clone();
        let include_ignored = options.include_ignored;
        tokio::task::spawn_blocking(move || {
            let found = scan::scan(&workspace, &scan::Options { include_ignored })?;
            debug!(found = found.len(), "scanned");
            let cache = FileCache::load(&state_dir);
            debug!("file cache loaded");
            Ok::<_, ScanError>((found, cache))
        })
        .await
        .expect("the scan does not panic")?
    };
    // Nothing to read and nothing changed since the last snapshot: the store need not be asked.
    let mut cached = Reader::without_reading(&index, cache);
    let unchanged = cached
        .entries(&found)
        .zip(last.clone())
        .and_then(|(entries, last)| {
            let same =
                last.describes(workspace) && state::digest(&locate(entries, &index)) == last.digest;
            same.then_some(last)
        });
    let cache = cached.cache;
    debug!(
        unchanged = unchanged.is_some(),
        "compared with the last snapshot"
    );
    if let Some(last) = unchanged {
        return Ok(Outcome {
            summary: last.summary,
            unchanged: true,
            read_bytes: 0,
            new_bytes: 0,
            new_packs: 0,
            skipped: Vec::new(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    let fetched = index.refresh(store).await?;
    debug!(fetched, "pack indexes fetched");
    let index = Arc::new(index);
    let (packs_tx, packs_rx) = mpsc::channel::<Pack>(1);
    let reader = {
        let index = Arc::clone(&index);
        tokio::task::spawn_blocking(move || {
            progress.start(found.len() as u64, 0);
            let mut reader = Reader::new(&index, cache, Some(packs_tx), progress);
            let entries = reader
                .entries(&found)
                .expect("a reading reader has every entry");
            reader.progress.finish();
            let Reader {
                cache,
                read_bytes,
                skipped,
                ..
            } = reader;
            (entries, cache, read_bytes, skipped)
        })
    };
    let uploaded = upload(store, packs_rx).await;
    let (entries, cache, read_bytes, skipped) = reader.await.expect("the reader does not panic");
    let new_packs = uploaded?;

    let mut index = Arc::into_inner(index).expect("the reader is done with the index");
    let new_bytes: u64 = new_packs
        .iter()
        .map(|p| p.blobs.iter().map(|b| b.len).sum::<u64>())
        .sum();
    let new_pack_count = new_packs.len();
    for pack in new_packs {
        index.add(pack);
    }
    let entries = locate(entries, &index);
    cache.save(&state_dir).map_err(state_error)?;
    index.save(&index_cache).map_err(state_error)?;

    let files = entries
        .iter()
        .filter(|e| !matches!(e.kind, Kind::Dir { .. }))
        .count() as u64;
    let bytes = entries
        .iter()
        .map(|e| {
            if let Kind::File { size, .. } = e.kind {
                size
            } else {
                0
            }
        })
        .sum();
    let digest = state::digest(&entries);
    let outcome = |summary, unchanged| Outcome {
        summary,
        unchanged,
        read_bytes,
        new_bytes,
        new_packs: new_pack_count,
        skipped: skipped.clone(),
        seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(last) = last.filter(|last| last.digest == digest && last.describes(workspace)) {
        return Ok(outcome(last.summary, true));
    }

    let summary = Summary {
        id: snapshot_id(options.now, &digest),
        workspace: workspace.name.clone(),
        time: crate::time::rfc3339(options.now),
        host: options.host.clone(),
        commit: workspace.commit.clone(),
        branch: workspace.branch.clone(),
        files,
        bytes,
    };
    let manifest = Manifest {
        version: FORMAT_VERSION,
        summary: summary.clone(),
        entries,
    };
    let data = serde_json::to_vec(&manifest).expect("a manifest serializes");
    store
        .put(
            &manifest_key(&summary.workspace, &summary.id),
            Bytes::from(data),
        )
        .await?;
    state::Last {
        digest,
        summary: summary.clone(),
    }
    .save(&state_dir, store.name())
    .map_err(state_error)?;
    Ok(outcome(summary, false))
}

/// `20261128T093000.123Z-1a2b3c`: sorts by time to the millisecond; the suffix keeps two
/// machines apart.
fn snapshot_id(now: SystemTime, digest: &str) -> String {
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let salt = blake3::hash(format!("{digest}{nanos}{}", std::process::id()).as_bytes());
    let second = crate::time::compact(now);
    let second = second.trim_end_matches('Z');
    format!("{second}.{:03}Z-{}", nanos / 1_000_000, &salt.to_hex()[..6])
}

/// Uploads packs as they come, a few at a time; each pack's index object after its data.
async fn upload<S: Store>(
    store: &S,
    mut packs: mpsc::Receiver<Pack>,
) -> Result<Vec<super::pack::PackIndex>, StoreError> {
    let mut running = JoinSet::new();
    let mut done = Vec::new();
    let mut first_error = None;
    loop {
        while running.len() >= UPLOAD_CONCURRENCY {
            match running
                .join_next()
                .await
                .expect("not empty")
                .expect("upload tasks do not panic")
            {
                Ok(index) => done.push(index),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            if first_error.is_some() {
                break;
            }
        }
        if first_error.is_some() {
            break;
        }
        let Some(pack) = packs.recv().await else {
            break;
        };
        let store = store.clone();
        running.spawn(async move {
            debug!(pack = %pack.id, bytes = pack.data.len(), "uploading pack");
            store.put(&data_key(&pack.id), pack.data.clone()).await?;
            store.put(&index_key(&pack.id), pack.index_bytes()).await?;
            Ok::<_, StoreError>(pack.index)
        });
    }
    // Stop the reader (its sends fail once the receiver is gone), then let uploads settle.
    drop(packs);
    while let Some(result) = running.join_next().await {
        match result.expect("upload tasks do not panic") {
            Ok(index) => done.push(index),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

/// A manifest entry whose blobs are known by hash, not yet by place.
pub(super) struct Pending {
    path: RelPath,
    kind: PendingKind,
}

enum PendingKind {
    File {
        mode: u32,
        size: u64,
        hash: String,
        mtime_ns: i64,
        blobs: Vec<(String, u64)>,
    },
    Symlink(RelPath),
    Dir(u32),
}

fn locate(entries: Vec<Pending>, index: &BlobIndex) -> Vec<Entry> {
    entries
        .into_iter()
        .map(|Pending { path, kind }| {
            let kind = match kind {
                PendingKind::File {
                    mode,
                    size,
                    hash,
                    mtime_ns,
                    blobs,
                } => Kind::File {
                    mode,
                    size,
                    hash,
                    mtime_ns,
                    blobs: blobs
                        .iter()
                        .map(|(hash, _)| {
                            index
                                .locate(hash)
                                .cloned()
                                .expect("every blob read was packed and uploaded")
                        })
                        .collect::<Vec<BlobRef>>(),
                },
                PendingKind::Symlink(target) => Kind::Symlink { target },
                PendingKind::Dir(mode) => Kind::Dir { mode },
            };
            Entry { path, kind }
        })
        .collect()
}

/// Reads files whose content is not known, feeding new blobs to the packer.
struct Reader<'a> {
    index: &'a BlobIndex,
    cache: FileCache,
    packer: Packer,
    /// Blobs packed in this run.
    packed: HashSet<String>,
    /// Where full packs go; `None` for a reader that may not read, only use the cache.
    packs: Option<mpsc::Sender<Pack>>,
    progress: Arc<dyn Progress>,
    /// A file had to be read and this reader may not.
    needs_reading: bool,
    read_bytes: u64,
    skipped: Vec<String>,
    /// The uploader stopped (an upload failed): stop reading.
    cancelled: bool,
}

impl<'a> Reader<'a> {
    /// A reader that only looks files up in the cache.
    fn without_reading(index: &'a BlobIndex, cache: FileCache) -> Self {
        Self::new(index, cache, None, Arc::new(super::progress::Silent))
    }

    fn new(
        index: &'a BlobIndex,
        cache: FileCache,
        packs: Option<mpsc::Sender<Pack>>,
        progress: Arc<dyn Progress>,
    ) -> Self {
        Self {
            index,
            cache,
            packer: Packer::default(),
            packed: HashSet::new(),
            packs,
            progress,
            read_bytes: 0,
            skipped: Vec::new(),
            cancelled: false,
            needs_reading: false,
        }
    }

    /// The entries for everything found, or `None` from a reader that may not read when some
    /// file must be read.
    fn entries(&mut self, found: &[Found]) -> Option<Vec<Pending>> {
        let keep: HashSet<&RelPath> = found.iter().map(|f| &f.path).collect();
        self.cache.retain(|path| keep.contains(path));
        let mut entries = Vec::with_capacity(found.len());
        for item in found {
            if self.cancelled || self.needs_reading {
                break;
            }
            if let Some(entry) = self.entry(item) {
                entries.push(entry);
            }
            self.progress
                .advance(item.metadata.as_ref().map_or(0, |m| m.len()));
        }
        if let Some(pack) = self.packer.seal() {
            self.send(pack);
        }
        (!self.needs_reading).then_some(entries)
    }

    fn entry(&mut self, found: &Found) -> Option<Pending> {
        let Found {
            path,
            full,
            metadata,
        } = found;
        let path = path.clone();
        let stat_now;
        let metadata = match metadata {
            Some(metadata) => metadata,
            None => {
                if let Some(entry) = self.known_immutable(&path) {
                    return Some(entry);
                }
                stat_now = std::fs::symlink_metadata(full).ok()?;
                &stat_now
            }
        };
        let file_type = metadata.file_type();
        let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o7777;
        let kind = if file_type.is_symlink() {
            use std::os::unix::ffi::OsStrExt;
            let target = std::fs::read_link(full).ok()?;
            PendingKind::Symlink(RelPath(target.as_os_str().as_bytes().to_vec()))
        } else if file_type.is_dir() {
            PendingKind::Dir(mode)
        } else if file_type.is_file() {
            let stat = Stat::of(metadata);
            let (Content { hash, blobs }, stat) = match self.known(&path, &stat) {
                Some(content) => (content, stat),
                None if self.packs.is_none() => {
                    debug!(path = %path, "changed or not known to be stored");
                    self.needs_reading = true;
                    return None;
                }
                None => match self.read(&path, full) {
                    Ok(read) => read,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                    Err(e) => {
                        warn!(path = %path, error = %e, "cannot read; left out of the snapshot");
                        self.skipped.push(path.to_string());
                        return None;
                    }
                },
            };
            PendingKind::File {
                mode: stat.mode & 0o7777,
                size: stat.size,
                hash,
                mtime_ns: stat.mtime_ns,
                blobs,
            }
        } else {
            return None; // sockets, FIFOs, devices
        };
        Some(Pending { path, kind })
    }

    /// A file git never rewrites, as the cache last saw it, if its blobs are stored.
    fn known_immutable(&self, path: &RelPath) -> Option<Pending> {
        let known = self.cache.lookup_immutable(path)?;
        let stored = known
            .content
            .blobs
            .iter()
            .all(|(hash, _)| self.index.contains(hash) || self.packed.contains(hash));
        stored.then(|| Pending {
            path: path.clone(),
            kind: PendingKind::File {
                mode: known.stat.mode & 0o7777,
                size: known.stat.size,
                hash: known.content.hash.clone(),
                mtime_ns: known.stat.mtime_ns,
                blobs: known.content.blobs.clone(),
            },
        })
    }

    /// The cached content of an unchanged file whose blobs the store holds.
    fn known(&self, path: &RelPath, stat: &Stat) -> Option<Content> {
        let known = self.cache.lookup(path, stat)?;
        let stored = known
            .content
            .blobs
            .iter()
            .all(|(hash, _)| self.index.contains(hash) || self.packed.contains(hash));
        stored.then(|| known.content.clone())
    }

    /// Reads a file once, chunk by chunk, hashing and packing as it goes; reads again if it
    /// changed meanwhile.
    fn read(&mut self, path: &RelPath, full: &Path) -> std::io::Result<(Content, Stat)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let read_at = SystemTime::now();
            let mut file = File::open(full)?;
            let before = Stat::of(&file.metadata()?);
            let mut hasher = blake3::Hasher::new();
            let mut blobs = Vec::new();
            let mut chunk = vec![0u8; CHUNK_SIZE.min(before.size as usize + 1).max(1)];
            loop {
                let n = read_full(&mut file, &mut chunk)?;
                if n == 0 {
                    break;
                }
                let data = &chunk[..n];
                hasher.update(data);
                let hash = blake3::hash(data).to_hex().to_string();
                self.store_blob(&hash, data);
                blobs.push((hash, n as u64));
                self.read_bytes += n as u64;
                if n < chunk.len() {
                    break;
                }
                if chunk.len() < CHUNK_SIZE {
                    chunk.resize(CHUNK_SIZE, 0); // the file grew past what its size said
                }
            }
            let after = Stat::of(&std::fs::symlink_metadata(full)?);
            let total: u64 = blobs.iter().map(|(_, n)| n).sum();
            let settled = after == before && total == before.size;
            if settled || attempt == READ_ATTEMPTS {
                let content = Content {
                    hash: hasher.finalize().to_hex().to_string(),
                    blobs,
                };
                if settled {
                    self.cache
                        .record(path.clone(), after, content.clone(), read_at);
                } else {
                    // Not cached: the next snapshot reads it again.
                    warn!(path = %path, "kept changing while read; the snapshot holds the last read");
                }
                return Ok((content, after));
            }
            debug!(path = %path, attempt, "changed while read; reading again");
        }
    }

    fn store_blob(&mut self, hash: &str, data: &[u8]) {
        if self.index.contains(hash) || !self.packed.insert(hash.to_string()) {
            return;
        }
        if let Some(pack) = self.packer.add(hash.to_string(), data) {
            self.send(pack);
        }
    }

    fn send(&mut self, pack: Pack) {
        let sent = self
            .packs
            .as_ref()
            .is_some_and(|packs| packs.blocking_send(pack).is_ok());
        if !sent {
            self.cancelled = true;
        }
    }
}

/// Fills `buffer` unless the file ends first; returns how much was read.
fn read_full(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
