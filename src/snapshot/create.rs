//! `gitkit snapshot`: scan, read what changed, upload new blobs in packs, then the manifest.
//!
//! Order matters for crash safety: packs, then their index objects, then the manifest. A run
//! that dies part-way leaves only unreferenced packs behind, which the next run finds through
//! their index objects and reuses.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::cache::{Content, FileCache, Stat};
use super::id::{Hash, IdError};
use super::index::{BlobIndex, PackLog, Seen};
use super::manifest::{FORMAT_VERSION, ManifestError, RelPath, SnapshotObject, Summary};
use super::pack::{Pack, Packer, data_key, index_key};
use super::progress::Progress;
use super::scan::{self, Found, STATE_DIR, ScanError, Warning};
use super::workspace::Workspace;
use super::{manifest_key, state};

mod sink;
use crate::store::{Store, StoreError};
use sink::{Built, Finished, Pending, PendingKind, Sink};

/// Packs uploading at once; with one more queued and one filling, this bounds memory.
const UPLOAD_CONCURRENCY: usize = 4;
/// A file that keeps changing while it is read is read this many times at most.
const READ_ATTEMPTS: usize = 3;
/// File times tick coarser than the clock (a jiffy: 4 to 10 ms): a read proves a file whole by
/// its unchanged stat only if it started this long after the file's last change, so that a
/// write during the read cannot have left the same ctime behind; a fresher file is read twice.
const TICK_MARGIN: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not write gitkit's state in {0}")]
    State(String, #[source] std::io::Error),
    #[error(
        "{0} packs in the store do not hold what their index objects say, even after reading the files again"
    )]
    Untrustworthy(usize),
    #[error("the snapshot would not restore, so it was not written")]
    Invalid(#[source] ManifestError),
    #[error(transparent)]
    Name(#[from] IdError),
    #[error(
        "the snapshot took more than {}, so a prune may have removed what it reused; it was not written",
        crate::time::show_duration(*.0)
    )]
    TooLong(Duration),
}

pub struct Options {
    pub include_ignored: bool,
    pub host: String,
    pub now: SystemTime,
    /// How close to its last change a file may be read and still be trusted unchanged next
    /// time on its stat data alone ([`RACY_WINDOW`] but in tests).
    pub racy_window: Duration,
    /// How long an unchanged workspace goes on trusting that the store still holds every pack
    /// it knows of, before it lists them again ([`RECHECK_EVERY`] but in tests).
    pub recheck_every: Duration,
    /// How long a run may take and still publish its snapshot ([`MAX_RUN`] but in tests).
    pub max_run: Duration,
}

/// A run that took longer than this does not publish its snapshot: a prune's grace period
/// (longer than this) protects the packs a run reuses only for this long after it listed them.
pub const MAX_RUN: Duration = Duration::from_secs(6 * 3600);

/// An unchanged workspace asks the store for one small object a run; every so often it lists
/// the packs too, so that packs removed behind its back (a lifecycle rule) are noticed and
/// uploaded again even while nothing changes.
pub const RECHECK_EVERY: Duration = Duration::from_secs(3600);

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
    /// What was left out, or kept from before, and why.
    pub warnings: Vec<Warning>,
    pub seconds: f64,
}

impl Outcome {
    /// A run that found the workspace as its last snapshot, which it read nothing for.
    fn unchanged(summary: Summary, warnings: Vec<Warning>, started: Instant) -> Self {
        Self {
            summary,
            unchanged: true,
            read_bytes: 0,
            new_bytes: 0,
            new_packs: 0,
            warnings,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

/// Passes over the workspace at most: a second and third only when a pack written elsewhere
/// turned out not to hold what its index says, and the files that relied on it are read again.
const PASSES: usize = 3;

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
    let scanned = {
        let workspace = workspace.clone();
        let options = scan::Options {
            include_ignored: options.include_ignored,
        };
        let state_dir = state_dir.clone();
        tokio::task::spawn_blocking(move || scan::scan(&workspace, &options, &state_dir))
            .await
            .expect("the scan does not panic")?
    };
    let scan::Scanned {
        mut found,
        stats,
        warnings: scan_warnings,
    } = scanned;
    debug!(found = found.len(), "scanned");
    // What the caches say is checked against the store: the last snapshot must still be there
    // (one small request). If it is gone, the store was emptied or is another one: nothing
    // this machine knows of it is trusted.
    let mut last = state::Last::load(&state_dir, store.name());
    let mut last_gone = false;
    if let Some(known) = &last {
        let key = manifest_key(&known.summary.workspace, &known.summary.id);
        let present = match key {
            Ok(key) => store.exists(&key).await?,
            Err(_) => false,
        };
        if !present {
            debug!("the last snapshot is gone from the store; local caches dropped");
            last = None;
            last_gone = true;
        }
    }
    let now_secs = crate::time::unix_seconds(options.now);
    let recheck_due = |last: &state::Last| {
        now_secs.saturating_sub(last.checked_at) >= options.recheck_every.as_secs()
    };
    // Every file's stat data as when the last snapshot read it (none changed, none read too
    // close to a change to be sure): the workspace is that snapshot, without a look at the
    // caches, as git's index tells an unchanged file by its stat data.
    if let Some(last) = &last
        && last.stats.as_deref() == Some(stats.as_str())
        && last.describes(workspace)
        && !recheck_due(last)
    {
        debug!("every file's stat data as the last snapshot read them");
        return Ok(Outcome::unchanged(
            last.summary.clone(),
            scan_warnings,
            started,
        ));
    }
    let mut index = {
        let index_cache = index_cache.clone();
        tokio::task::spawn_blocking(move || BlobIndex::load(&index_cache))
            .await
            .expect("loading the index does not panic")
    };
    debug!("index cache loaded");
    if last_gone {
        index.clear();
    }
    // Now and then the packs themselves are listed again, even when nothing changed.
    let mut refreshed = None;
    if last.as_ref().is_some_and(recheck_due) {
        refreshed = Some(index.refresh(store).await?);
    }
    // Nothing to read and nothing changed since the last snapshot: no more need be asked.
    if let Some(mut last) = last.clone() {
        let root = workspace.root.clone();
        let cache = FileCache::load(&state_dir, options.racy_window);
        let mut cached = Reader::without_reading(&index, cache, root);
        // Unless the packs were just listed again, a file the cache knows stands for content
        // the store holds, as it does when every stat matches (above): the last snapshot,
        // which is there, holds it if the digests match; if they do not, the pass that
        // writes looks every blob up.
        cached.trust_cache = refreshed.is_none();
        let known = cached.entries(&mut found).map_err(ScanError::Spool)?;
        let digest = cached.sink.finish().digest;
        let same =
            known && last.describes(workspace) && digest == last.digest && last.trees_in(&index);
        debug!(unchanged = same, "compared with the last snapshot");
        if same {
            save_index(&mut index, &index_cache);
            // Every file was known, with the stat data the scan found and read settled: the
            // scan's digest stands for this content from now on.
            if refreshed.is_some() || last.stats.as_deref() != Some(stats.as_str()) {
                last.checked_at = now_secs;
                last.stats = Some(stats);
                last.save(&state_dir, store.name()).map_err(state_error)?;
            }
            return Ok(Outcome::unchanged(last.summary, scan_warnings, started));
        }
    }

    if refreshed.is_none() {
        refreshed = Some(index.refresh(store).await?);
    }
    debug!(?refreshed, "pack indexes checked against the store");
    let (mut read_bytes, mut new_bytes, mut new_pack_count) = (0, 0, 0);
    let mut pass = 0;
    let (finished, warnings, settled) = loop {
        pass += 1;
        let cache =
            FileCache::load_for_update(&state_dir, options.racy_window).map_err(state_error)?;
        let shared = Arc::new(index);
        let done = read_and_upload(
            store,
            workspace,
            &shared,
            found,
            cache,
            Arc::clone(&progress),
        )
        .await;
        index = Arc::into_inner(shared).expect("the reader is done with the index");
        let ReadPass {
            finished,
            cache,
            read_bytes: read,
            warnings,
            found: spool,
            whole,
        } = done.reader;
        found = spool;
        if let Err(e) = whole {
            save_index(&mut index, &index_cache);
            return Err(ScanError::Spool(e).into());
        }
        let settled = cache.settled();
        cache.save(&state_dir).map_err(state_error)?;
        read_bytes += read;
        // Packs that did upload are in the store: keep them known whatever else failed.
        let uploaded = done.uploaded;
        new_bytes += uploaded.done.bytes();
        new_pack_count += uploaded.done.len();
        index.add_logged(uploaded.done);
        if let Some(e) = uploaded.error {
            save_index(&mut index, &index_cache);
            return Err(e.into());
        }
        // A pack another machine wrote is believed only once its bytes were seen to hold what
        // its index says; one that does not is refused, and the files on it are read again.
        let refused = index.verify(store, finished.foreign.clone()).await?;
        if refused.is_empty() {
            break (finished, warnings, settled);
        }
        warn!(
            packs = refused.len(),
            "packs in the store do not hold what their index says"
        );
        if pass == PASSES {
            save_index(&mut index, &index_cache);
            return Err(SnapshotError::Untrustworthy(refused.len()));
        }
    };
    save_index(&mut index, &index_cache);
    // What the scan found is done with: let it go before the trees are built.
    let settled = settled.then_some(stats);
    drop(found);
    let mut all_warnings = scan_warnings;
    all_warnings.extend(warnings);

    let Finished {
        digest,
        files,
        bytes,
        built,
        ..
    } = finished;
    let outcome = |summary, unchanged, new_bytes, new_packs| Outcome {
        summary,
        unchanged,
        read_bytes,
        new_bytes,
        new_packs,
        warnings: all_warnings.clone(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let same_as_last = |last: &state::Last| {
        last.digest == digest && last.describes(workspace) && last.trees_in(&index)
    };
    if let Some(mut last) = last.filter(same_as_last) {
        last.checked_at = now_secs;
        last.stats = settled;
        last.save(&state_dir, store.name()).map_err(state_error)?;
        return Ok(outcome(last.summary, true, new_bytes, new_pack_count));
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
    let built = built
        .map_err(SnapshotError::Invalid)?
        .expect("a reading sink builds trees");
    let stored = store_trees(store, &mut index, built).await;
    save_index(&mut index, &index_cache);
    let trees = stored?;
    new_pack_count += trees.packs;
    new_bytes += trees.bytes;
    let object = SnapshotObject {
        version: FORMAT_VERSION,
        summary: summary.clone(),
        tree: trees.root.to_hex(),
    };
    let key = manifest_key(&summary.workspace, &summary.id).map_err(SnapshotError::Name)?;
    if started.elapsed() > options.max_run {
        return Err(SnapshotError::TooLong(options.max_run));
    }
    let data = serde_json::to_vec(&object).expect("a snapshot object serializes");
    store.put(&key, Bytes::from(data)).await?;
    state::Last {
        digest,
        summary: summary.clone(),
        checked_at: now_secs,
        trees: trees.all,
        stats: settled,
    }
    .save(&state_dir, store.name())
    .map_err(state_error)?;
    Ok(outcome(summary, false, new_bytes, new_pack_count))
}

/// Saves the local copy of the store's index. One that cannot be written (a full disk, a
/// folder in its place) is only said: it is a cache, and the next run learns from the store
/// what it lacks.
fn save_index(index: &mut BlobIndex, path: &Path) {
    if let Err(e) = index.save(path) {
        warn!(path = %path.display(), error = %e, "the local copy of the store's index was not saved");
    }
}

/// A snapshot's trees, stored.
struct Trees {
    root: Hash,
    /// Every tree of the snapshot.
    all: Vec<Hash>,
    /// Packs and bytes uploaded for them.
    packs: usize,
    bytes: u64,
}

/// Makes sure the store holds every tree of the snapshot: the new ones' packs are uploaded,
/// and those the store has in packs another machine wrote are checked like file content, and
/// stored again if their pack fails.
async fn store_trees<S: Store>(
    store: &S,
    index: &mut BlobIndex,
    built: Built,
) -> Result<Trees, SnapshotError> {
    let Built {
        root,
        all,
        packs: new,
        foreign,
    } = built;
    let (mut packs, mut bytes) = upload_all(store, index, new).await?;
    let unchecked: HashSet<String> = foreign
        .iter()
        .filter_map(|tree| index.pack_of(&tree.hash))
        .map(str::to_string)
        .collect();
    index.verify(store, unchecked).await?;
    let mut packer = Packer::default();
    let mut again = Vec::new();
    let mut packed = HashSet::new();
    for tree in foreign {
        if !index.contains(&tree.hash) && packed.insert(tree.hash) {
            again.extend(packer.add(tree.hash, &tree.data));
        }
    }
    again.extend(packer.seal());
    let (more_packs, more_bytes) = upload_all(store, index, again).await?;
    packs += more_packs;
    bytes += more_bytes;
    Ok(Trees {
        root,
        all,
        packs,
        bytes,
    })
}

/// Uploads `packs` (a few at a time) and adds them to the index; how many, and their bytes.
async fn upload_all<S: Store>(
    store: &S,
    index: &mut BlobIndex,
    packs: Vec<Pack>,
) -> Result<(usize, u64), StoreError> {
    let (count, bytes) = (packs.len(), packs.iter().map(|p| p.data.len() as u64).sum());
    let (sender, receiver) = mpsc::channel(packs.len().max(1));
    for pack in packs {
        sender.try_send(pack).expect("the channel holds every pack");
    }
    drop(sender);
    let uploaded = upload(store, index.spill_dir(), receiver).await;
    index.add_logged(uploaded.done);
    match uploaded.error {
        Some(e) => Err(e),
        None => Ok((count, bytes)),
    }
}

/// What one pass of reading and uploading gave.
struct Pass {
    reader: ReadPass,
    uploaded: Uploaded,
}

/// What one pass of reading gave, and the scan's list back.
struct ReadPass {
    finished: Finished,
    cache: FileCache,
    read_bytes: u64,
    warnings: Vec<Warning>,
    found: scan::Spool,
    /// Whether the list was read whole.
    whole: std::io::Result<()>,
}

/// Reads what changed on a blocking thread while new packs upload.
async fn read_and_upload<S: Store>(
    store: &S,
    workspace: &Workspace,
    index: &Arc<BlobIndex>,
    mut found: scan::Spool,
    cache: FileCache,
    progress: Arc<dyn Progress>,
) -> Pass {
    let (packs_tx, packs_rx) = mpsc::channel::<Pack>(1);
    let reader = {
        let index = Arc::clone(index);
        let workspace = workspace.clone();
        tokio::task::spawn_blocking(move || {
            progress.start(found.len(), 0);
            let root = workspace.root.clone();
            let mut reader = Reader::new(&index, cache, root, Some(packs_tx), progress);
            let whole = reader
                .entries_then(&mut found, || scan::git_dir_again(&workspace))
                .map(drop);
            reader.progress.finish();
            let Reader {
                cache,
                read_bytes,
                warnings,
                sink,
                ..
            } = reader;
            ReadPass {
                finished: sink.finish(),
                cache,
                read_bytes,
                warnings,
                found,
                whole,
            }
        })
    };
    let uploaded = upload(store, index.spill_dir(), packs_rx).await;
    let reader = reader.await.expect("the reader does not panic");
    Pass { reader, uploaded }
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

/// The packs that were uploaded, and the first error, which stopped the rest.
struct Uploaded {
    done: PackLog,
    error: Option<StoreError>,
}

/// Uploads packs as they come, a few at a time; each pack's index object after its data.
async fn upload<S: Store>(store: &S, dir: &Path, mut packs: mpsc::Receiver<Pack>) -> Uploaded {
    let mut running = JoinSet::new();
    let mut done = PackLog::new(dir);
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
            let data_key = data_key(&pack.id).expect("a pack's id is its hash");
            let index_key = index_key(&pack.id).expect("a pack's id is its hash");
            store.put(&data_key, pack.data.clone()).await?;
            store.put(&index_key, pack.index_bytes()).await?;
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
    Uploaded {
        done,
        error: first_error,
    }
}

/// Reads files whose content is not known, feeding new blobs to the packer.
struct Reader<'a> {
    index: &'a BlobIndex,
    cache: FileCache,
    /// The workspace's folder.
    root: PathBuf,
    packer: Packer,
    /// Blobs packed in this run (as many as the workspace has, on a first snapshot: what
    /// does not fit in memory is written out beside the caches).
    packed: Seen,
    /// Where full packs go; `None` for a reader that may not read, only use the cache.
    packs: Option<mpsc::Sender<Pack>>,
    progress: Arc<dyn Progress>,
    /// A file had to be read and this reader may not.
    needs_reading: bool,
    /// Takes the cache's word that the store holds what it knows, without a lookup.
    trust_cache: bool,
    read_bytes: u64,
    warnings: Vec<Warning>,
    /// The uploader stopped (an upload failed): stop reading.
    cancelled: bool,
    /// Where the entries go.
    sink: Sink<'a>,
}

impl<'a> Reader<'a> {
    /// A reader that only looks files up in the cache.
    fn without_reading(index: &'a BlobIndex, cache: FileCache, root: PathBuf) -> Self {
        Self::new(index, cache, root, None, Arc::new(super::progress::Silent))
    }

    fn new(
        index: &'a BlobIndex,
        cache: FileCache,
        root: PathBuf,
        packs: Option<mpsc::Sender<Pack>>,
        progress: Arc<dyn Progress>,
    ) -> Self {
        let sink = match packs {
            Some(_) => Sink::with_trees(index),
            None => Sink::digest_only(index),
        };
        Self {
            sink,
            index,
            cache,
            root,
            packer: Packer::default(),
            packed: Seen::new(index.spill_dir().to_path_buf()),
            packs,
            progress,
            read_bytes: 0,
            warnings: Vec::new(),
            cancelled: false,
            needs_reading: false,
            trust_cache: false,
        }
    }

    /// Gives the sink an entry for everything found; whether it could (a reader that may not
    /// read cannot when some file must be read).
    fn entries(&mut self, found: &mut scan::Spool) -> std::io::Result<bool> {
        self.entries_then(found, Vec::new)
    }

    /// [`Reader::entries`], then the git objects `objects_now` finds that the first list did
    /// not have. A commit made while the snapshot reads can leave refs (read in the first pass)
    /// naming objects that the first list, made before, could not see; a `git gc` can pack a
    /// listed loose object away. Objects only appear, so every object the refs name was there
    /// before the first pass ended: those are added, from a list made after, and none newer
    /// (a newer one may name objects the list missed, which `git fsck` would call broken).
    fn entries_then<I: IntoIterator<Item = Found>>(
        &mut self,
        found: &mut scan::Spool,
        objects_now: impl Fn() -> I,
    ) -> std::io::Result<bool> {
        let mut replay = found.replay()?;
        self.read_all(&mut replay);
        replay.finish()?;
        if self.packs.is_some() && !self.cancelled {
            let horizon = SystemTime::now();
            let new_objects = |found: &mut scan::Spool| {
                let mut known = found.replay()?;
                let new = scan::new_git_objects(&mut known, objects_now().into_iter());
                known.finish().map(|()| new)
            };
            if !new_objects(found)?.is_empty() {
                // Everything changed by the horizon's clock tick is on disk once the tick is
                // past: list after that, and keep what changed by the horizon.
                std::thread::sleep(TICK_MARGIN);
                // By birth time: git touches an object it would have written again, so its
                // ctime moves; where there is no birth time, every new object is kept.
                let born_by_horizon =
                    |f: &Found| match std::fs::symlink_metadata(f.full(&self.root))
                        .map(|m| m.created())
                    {
                        Ok(Ok(born)) => born <= horizon,
                        Ok(Err(_)) => true,
                        Err(_) => false,
                    };
                let mut new = new_objects(found)?;
                new.retain(born_by_horizon);
                debug!(
                    objects = new.len(),
                    "git objects written while the snapshot read"
                );
                self.read_all(new);
            }
        }
        if let Some(pack) = self.packer.seal() {
            self.send(pack);
        }
        Ok(!self.needs_reading)
    }

    fn read_all(&mut self, found: impl IntoIterator<Item = Found>) {
        for item in found {
            if self.cancelled || self.needs_reading {
                break;
            }
            if let Some(entry) = self.entry(&item) {
                self.sink.add(entry);
                for pack in self.sink.sealed() {
                    self.send(pack);
                }
            }
            if item.stat.is_none_or(|stat| stat.is_file()) {
                self.cache.keep(&item.path, item.stat.as_ref());
            }
            self.progress.advance(item.stat.map_or(0, |stat| stat.size));
        }
    }

    fn entry(&mut self, found: &Found) -> Option<Pending> {
        let path = &found.path;
        let full = found.full(&self.root);
        let stat = match found.stat {
            Some(stat) => stat,
            None => {
                if let Some(entry) = self.known_immutable(path) {
                    return Some(entry);
                }
                Stat::of(&std::fs::symlink_metadata(&full).ok()?)
            }
        };
        let kind = if stat.is_symlink() {
            use std::os::unix::ffi::OsStrExt;
            let target = std::fs::read_link(&full).ok()?;
            PendingKind::Symlink(RelPath(target.as_os_str().as_bytes().to_vec()))
        } else if stat.is_dir() {
            PendingKind::Dir(stat.mode & 0o7777)
        } else if stat.is_file() {
            let (content, stat) = match self.known(path, &stat) {
                Some(content) => (content, stat),
                None if self.packs.is_none() => {
                    debug!(path = %path, "changed or not known to be stored");
                    self.needs_reading = true;
                    return None;
                }
                None => match self.read(path, &full) {
                    Ok(Some(read)) => read,
                    Ok(None) => return self.previous_version(path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                    Err(e) => {
                        warn!(path = %path, error = %e, "cannot read; left out of the snapshot");
                        let message = format!("could not be read ({e}); left out");
                        self.warnings.push(Warning::new(path, message));
                        return None;
                    }
                },
            };
            return Some(Pending::file(path.clone(), &stat, &content));
        } else {
            let message = "is a socket, pipe or device, not a file; left out";
            self.warnings.push(Warning::new(path, message));
            return None;
        };
        Some(Pending {
            path: path.clone(),
            kind,
        })
    }

    /// A file that never held still while it was read: the version the last snapshot holds,
    /// if there is one, else nothing. Never a mix of two versions.
    fn previous_version(&mut self, path: &RelPath) -> Option<Pending> {
        let previous = self.known_immutable(path);
        let message = if previous.is_some() {
            "kept changing while it was read; the previous snapshot's version is kept"
        } else {
            "kept changing while it was read; left out (no earlier version to keep)"
        };
        warn!(path = %path, message);
        self.warnings.push(Warning::new(path, message));
        previous
    }

    /// A file as the cache last saw it, whatever its stat says now, if its blobs are stored:
    /// for files git never rewrites, and the earlier version of a file that will not hold still.
    fn known_immutable(&mut self, path: &RelPath) -> Option<Pending> {
        let known = self.cache.lookup_immutable(path)?;
        self.is_stored(&known.content)
            .then(|| Pending::file(path.clone(), &known.stat, &known.content))
    }

    /// The cached content of an unchanged file whose blobs the store holds.
    fn known(&mut self, path: &RelPath, stat: &Stat) -> Option<Content> {
        let known = self.cache.lookup(path, stat)?;
        self.is_stored(&known.content).then_some(known.content)
    }

    fn is_stored(&mut self, content: &Content) -> bool {
        self.trust_cache
            || content
                .blobs
                .iter()
                .all(|(hash, _)| self.packed.contains(hash) || self.reuse(hash))
    }

    /// Whether the store holds blob `hash` for this snapshot to use; the pack it is read from
    /// is noted, to be checked before the snapshot is published if another machine wrote it.
    fn reuse(&mut self, hash: &Hash) -> bool {
        let index = self.index;
        let Some(pack) = index.stored_in(hash) else {
            return false;
        };
        self.sink.rely_on(pack);
        true
    }

    /// Reads a file once, chunk by chunk, hashing and packing as it goes; reads again if it
    /// changed meanwhile. `None` when it never held still: what was read is not one version.
    fn read(&mut self, path: &RelPath, full: &Path) -> std::io::Result<Option<(Content, Stat)>> {
        let (mut attempts, mut fresh_reads) = (0, 0);
        let mut first_fresh_read: Option<(Hash, Stat)> = None;
        while attempts < READ_ATTEMPTS {
            attempts += 1;
            let read_at = SystemTime::now();
            let mut file = open_no_follow(full)?;
            let before = Stat::of(&file.metadata()?);
            let mut hasher = blake3::Hasher::new();
            let mut blobs = Vec::new();
            // Each chunk goes to the packer only once the next one is read, and the last only
            // once the read proved whole: packing can wait on uploads, and that wait must not
            // fall between the two looks at the file (nor a torn chunk be stored).
            let mut pending: Option<(Hash, Vec<u8>)> = None;
            for data in chunks(&mut file, before.size) {
                let data = data?;
                hasher.update(&data);
                let hash = Hash::of(&data);
                blobs.push((hash, data.len() as u64));
                self.read_bytes += data.len() as u64;
                if let Some((hash, data)) = pending.replace((hash, data)) {
                    self.store_blob(hash, &data);
                }
            }
            // Whole if the file read (through the open handle) did not change from before the
            // first byte to after the last, and held as many bytes as its size said. A git
            // object is written whole under its name and never changed (git only touches its
            // times when it would have written it again): the same file and size suffice.
            let held = Stat::of(&file.metadata()?);
            let total: u64 = blobs.iter().map(|(_, n)| n).sum();
            let immutable = scan::is_immutable(path);
            let unchanged = if immutable {
                (held.ino, held.size) == (before.ino, before.size)
            } else {
                held == before
            };
            if !unchanged || total != before.size {
                debug!(path = %path, attempts, "changed while read; reading again");
                continue;
            }
            // The path may meanwhile name a newer file (git and editors replace files by
            // renaming a new one over them): what was read is still one whole version, but
            // not one the cache may vouch for next time.
            let after = Stat::of(&std::fs::symlink_metadata(full)?);
            let replaced = after.ino != before.ino || after.dev != before.dev;
            let hash = Hash::from(hasher.finalize());
            // Changed a moment before the read began, a write during it could have left the
            // same ctime (file times tick coarsely): only a second read that finds the same
            // file with the same bytes proves it whole.
            let fresh = !immutable && !replaced && too_fresh(read_at, before.ctime_ns);
            if fresh && first_fresh_read != Some((hash, before)) {
                debug!(path = %path, "changed just before it was read; reading again");
                first_fresh_read = Some((hash, before));
                if fresh_reads < READ_ATTEMPTS {
                    fresh_reads += 1;
                    attempts -= 1;
                }
                continue;
            }
            if let Some((hash, data)) = pending {
                self.store_blob(hash, &data);
            }
            let content = Content { hash, blobs };
            // A fresh file is cached as racy (read again next time): the cache's own rule.
            if after == before || immutable && !replaced {
                self.cache.record(path, after, content.clone(), read_at);
            }
            return Ok(Some((content, before)));
        }
        Ok(None)
    }

    fn store_blob(&mut self, hash: Hash, data: &[u8]) {
        if self.reuse(&hash) || !self.packed.insert(hash) {
            return;
        }
        if let Some(pack) = self.packer.add(hash, data) {
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

/// Whether a read that started at `read_at` is too close to a ctime of `ctime_ns` for the
/// ctime to prove that nothing wrote during it. A ctime further ahead than a few ticks (a clock
/// that disagrees, on a network file system) proves nothing either way and does not count.
fn too_fresh(read_at: SystemTime, ctime_ns: i64) -> bool {
    let Ok(read) = read_at.duration_since(UNIX_EPOCH) else {
        return false;
    };
    let margin = TICK_MARGIN.as_nanos() as i64;
    let ahead = ctime_ns + margin - read.as_nanos() as i64;
    ahead > 0 && ahead <= 2 * margin
}

/// Opens a file for reading without following a link in its last component (it is recorded as
/// a link instead) and without blocking on a FIFO that took a file's place.
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = File::options()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no longer a regular file",
        ));
    }
    Ok(file)
}

/// Content-defined chunk sizes (FastCDC): an insertion moves the cut points only near it, so
/// an edit in the middle of a large file stores about one new chunk. Smaller than restic's
/// (512 KiB / 1 MiB / 8 MiB): a `.git/index` rewritten on every commit costs less each time.
const MIN_CHUNK: usize = 64 << 10;
const AVG_CHUNK: usize = 256 << 10;
const MAX_CHUNK: usize = 1 << 20;

/// A file's content in chunks, read to its end (which may lie past the `size` it had): whole
/// when it is smaller than the smallest chunk, else cut where its content says.
fn chunks(file: &mut File, size: u64) -> Box<dyn Iterator<Item = std::io::Result<Vec<u8>>> + '_> {
    if size < MIN_CHUNK as u64 {
        let mut data = Vec::with_capacity(size as usize);
        return match file.read_to_end(&mut data) {
            Ok(0) => Box::new(std::iter::empty()),
            Ok(_) if data.len() < MIN_CHUNK => Box::new(std::iter::once(Ok(data))),
            // It grew meanwhile: the read will not prove whole, but is still cut as usual.
            Ok(_) => Box::new(cut(std::io::Cursor::new(data))),
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
    }
    Box::new(cut(file))
}

fn cut(source: impl Read) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
    fastcdc::v2020::StreamCDC::new(source, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
        .map(|chunk| chunk.map(|c| c.data).map_err(std::io::Error::from))
}
