//! `gitkit restore`: write a snapshot's files into a folder, each verified against its hash.
//!
//! Everything that could refuse is checked before the first write: the manifest (no path out of
//! the folder, none twice, none through a link, every id and length well formed, no two blobs
//! claiming the same bytes), and on disk, that no folder on the way is a link or a file. A
//! format-2 snapshot is not held whole: its trees were all read and checked when it was found
//! (`find_to_restore`), and its entries are read again and written a batch at a time, each
//! batch checked as a whole manifest is before it is written.
//! Everything is written into a staging folder inside the target, each blob checked against
//! its hash as it arrives and each file of several blobs hashed whole, and only once all of it
//! is right is it moved into place. A restore that fails removes its staging folder: the target
//! is left as it was found.

use std::collections::HashMap;

use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use futures::TryStreamExt;
use tokio::task::JoinSet;

use super::Restorable;
use super::browse::NoMatch;
use super::id::{Hash, IdError};
use super::index::BlobIndex;
use super::manifest::{Entry, Kind, Manifest, ManifestError, RelPath, Summary};
use super::pack::data_key;
use super::progress::Progress;
use super::tree::{Loader, TreeError, Walk};
use crate::fs::TEMPORARY_PREFIX;
use crate::store::{Store, StoreError};

/// Packs streamed at once.
const PACKS_AT_ONCE: usize = 8;
/// setuid, setgid and sticky: restored only when asked for.
const SPECIAL_BITS: u32 = 0o7000;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Part(#[from] NoMatch),
    #[error("{0} is not empty")]
    NotEmpty(PathBuf),
    #[error("{0} is in the way: it is a link or a file where the snapshot has a folder")]
    InTheWay(PathBuf),
    #[error("{0} is a folder where the snapshot has a file or link")]
    FolderInTheWay(PathBuf),
    #[error("the stored content of {path} does not match its hash (pack {pack})")]
    Corrupt { path: RelPath, pack: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the snapshot's trees changed in the store while it was restored")]
    Tree(#[source] TreeError),
    #[error("{0} files of the snapshot were not written whole")]
    Unwritten(u64),
    #[error("could not write {0}")]
    Write(PathBuf, #[source] std::io::Error),
}

pub struct Options {
    /// Restore into a folder that is not empty, replacing what the snapshot names.
    pub force: bool,
    /// Keep setuid, setgid and sticky bits (dropped otherwise).
    pub special_bits: bool,
    /// Restore only these files and folders (everything below them); none: everything.
    pub paths: Vec<RelPath>,
    /// Entries of a format-2 snapshot written at a time: [`BATCH`] but in tests.
    pub batch: usize,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub files: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Entries a restore of a format-2 snapshot holds at once (a whole folder's at least): the
/// pieces of one batch are sorted by pack, and a pack that holds files of two batches is
/// read twice, up to the last piece each needs.
pub const BATCH: usize = 32_768;

/// A format-2 snapshot to restore, its trees checked ([`super::find_to_restore`]), with the
/// store's index and the tree packs read, to read its entries again a batch at a time.
pub struct Trees {
    pub version: u32,
    pub summary: Summary,
    pub root: Hash,
    pub index: BlobIndex,
    pub packs: super::tree::TreePacks,
}

pub async fn restore<S: Store>(
    store: &S,
    snapshot: &Restorable,
    target: &Path,
    options: &Options,
    progress: Arc<dyn Progress>,
) -> Result<Outcome, RestoreError> {
    let started = Instant::now();
    let trees = match snapshot {
        Restorable::Manifest(manifest) => {
            return restore_whole(store, manifest, target, options, progress, started).await;
        }
        Restorable::Trees(trees) => trees,
    };
    let mut loader = Loader::with_packs(store, &trees.index, trees.packs.clone());
    let mut walk = Walk::new(&trees.root);
    if !options.paths.is_empty() {
        // A part: what the paths may want (what they match, and the folders above them), a
        // batch of the snapshot's entries at a time; `restore_whole` picks from it exactly
        // and says which path matched nothing.
        let mut entries = Vec::new();
        loop {
            let mut batch = Vec::new();
            let more = loader
                .next(&mut walk, &mut batch, options.batch.max(1))
                .await?;
            entries.extend(
                batch
                    .into_iter()
                    .filter(|entry| may_want(&options.paths, entry)),
            );
            if !more {
                break;
            }
        }
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest {
            version: trees.version,
            summary: trees.summary.clone(),
            entries,
        };
        return restore_whole(store, &manifest, target, options, progress, started).await;
    }
    let staged = Staged::new(target, options.force)?;
    progress.start(trees.summary.files, trees.summary.bytes);
    let mut dirs = Vec::new();
    let (mut files, mut bytes) = (0, 0);
    loop {
        let mut entries = Vec::new();
        let more = loader
            .next(&mut walk, &mut entries, options.batch.max(1))
            .await?;
        tracing::debug!(entries = entries.len(), "restoring a batch");
        let batch = Manifest {
            version: trees.version,
            summary: trees.summary.clone(),
            entries,
        };
        // Each batch is checked as a whole snapshot is: a path twice, or through a file or
        // link, cannot span two (a tree names each entry once, sorted), nor can two blobs
        // at overlapping places (the index refuses a pack listing them).
        batch.validate()?;
        if !staged.empty {
            check_disk(target, &batch)?;
        }
        write_all(store, &batch, staged.path(), options, &progress).await?;
        dirs.extend(dir_modes(&batch.entries));
        files += file_count(&batch.entries);
        bytes += batch.entries.iter().map(file_size).sum::<u64>();
        if !more {
            break;
        }
    }
    staged.finish(dirs, options, &progress)?;
    Ok(Outcome {
        files,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether a part made of `paths` may hold `entry`: one of them matches it, or it is a folder
/// above one of them.
fn may_want(paths: &[RelPath], entry: &Entry) -> bool {
    paths.iter().any(|path| {
        super::browse::matches(path, &entry.path)
            || matches!(entry.kind, Kind::Dir { .. })
                && path
                    .0
                    .strip_prefix(entry.path.0.as_slice())
                    .is_some_and(|rest| rest.first() == Some(&b'/'))
    })
}

/// Restores a snapshot held whole: a format-1 manifest, or a part of a format-2 snapshot.
async fn restore_whole<S: Store>(
    store: &S,
    manifest: &Manifest,
    target: &Path,
    options: &Options,
    progress: Arc<dyn Progress>,
    started: Instant,
) -> Result<Outcome, RestoreError> {
    manifest.validate()?;
    let part = super::browse::part(manifest, &options.paths)?;
    let manifest = &*part;
    let staged = Staged::new(target, options.force)?;
    if !staged.empty {
        check_disk(target, manifest)?;
    }
    let bytes = manifest.entries.iter().map(file_size).sum();
    let files = file_count(&manifest.entries);
    progress.start(files, bytes);
    write_all(store, manifest, staged.path(), options, &progress).await?;
    staged.finish(dir_modes(&manifest.entries).collect(), options, &progress)?;
    Ok(Outcome {
        files,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A restore under way: the target, made ready, and the staging folder inside it that what is
/// restored is written into.
struct Staged<'a> {
    /// Dropped first (fields drop in order): whatever is left in it goes, then the target if
    /// this restore made it.
    staging: tempfile::TempDir,
    created: Created<'a>,
    /// The target held nothing: nothing can be in the way.
    empty: bool,
}

impl<'a> Staged<'a> {
    fn new(target: &'a Path, force: bool) -> Result<Self, RestoreError> {
        let prepared = prepare_target(target, force)?;
        let created = Created {
            target,
            by_us: prepared.created,
        };
        Ok(Self {
            staging: staging_folder(target)?,
            created,
            empty: prepared.empty,
        })
    }

    fn path(&self) -> &Path {
        self.staging.path()
    }

    /// Moves what was staged into place and gives folders their modes (`dirs`): the restore
    /// succeeded, and the target it made stays.
    fn finish(
        self,
        dirs: Vec<(RelPath, u32)>,
        options: &Options,
        progress: &Arc<dyn Progress>,
    ) -> Result<(), RestoreError> {
        let target = self.created.target;
        merge(self.staging.path(), target)?;
        set_dir_modes(target, dirs, options)?;
        drop(self.staging);
        self.created.keep();
        progress.finish();
        Ok(())
    }
}

/// A staging folder inside the target, removed when dropped: on every way out (an error, or
/// the restore itself dropped on Ctrl-C) whatever is left in it goes, and so does a target
/// this restore created, unless it succeeded.
fn staging_folder(target: &Path) -> Result<tempfile::TempDir, RestoreError> {
    tempfile::Builder::new()
        .prefix(&staging_prefix())
        .tempdir_in(target)
        .map_err(|e| RestoreError::Write(target.to_path_buf(), e))
}

/// Regular files and links.
fn file_count(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .filter(|e| !matches!(e.kind, Kind::Dir { .. }))
        .count() as u64
}

/// How a restore's staging folder inside the target begins.
fn staging_prefix() -> String {
    format!("{TEMPORARY_PREFIX}restore-")
}

/// The target folder, and whether this restore created it: removed again unless kept.
struct Created<'a> {
    target: &'a Path,
    by_us: bool,
}

impl From<TreeError> for RestoreError {
    fn from(error: TreeError) -> Self {
        match error {
            TreeError::Store(e) => RestoreError::Store(e),
            other => RestoreError::Tree(other),
        }
    }
}

impl Created<'_> {
    fn keep(mut self) {
        self.by_us = false;
    }
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        if self.by_us {
            let _ = std::fs::remove_dir_all(self.target);
        }
    }
}

/// Writes every folder, file and link of the manifest under `root`, each file verified whole.
async fn write_all<S: Store>(
    store: &S,
    manifest: &Manifest,
    root: &Path,
    options: &Options,
    progress: &Arc<dyn Progress>,
) -> Result<(), RestoreError> {
    let files: Vec<&Entry> = manifest
        .entries
        .iter()
        .filter(|e| matches!(e.kind, Kind::File { .. }))
        .collect();
    create_dirs(root, manifest)?;
    write_files(store, root, &files, options, progress).await?;
    finish_files(root, &files, options)?;
    create_symlinks(root, &manifest.entries)
}

fn file_size(entry: &Entry) -> u64 {
    if let Kind::File { size, .. } = entry.kind {
        size
    } else {
        0
    }
}

/// What a restore found at its target.
struct Prepared {
    /// This restore made the target: it is removed again unless the restore succeeds.
    created: bool,
    /// Nothing was there (but a killed restore's staging folder): nothing can be in the way.
    empty: bool,
}

/// Makes sure the target exists and may be written. A staging folder left by a restore that
/// was killed is removed first (nothing else in it is touched).
fn prepare_target(target: &Path, force: bool) -> Result<Prepared, RestoreError> {
    let entries = match std::fs::read_dir(target) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let created = std::fs::create_dir_all(target);
            created.map_err(|e| RestoreError::Write(target.to_path_buf(), e))?;
            return Ok(Prepared {
                created: true,
                empty: true,
            });
        }
        Err(e) => return Err(RestoreError::Write(target.to_path_buf(), e)),
    };
    let mut empty = true;
    for entry in entries {
        let entry = entry.map_err(|e| RestoreError::Write(target.to_path_buf(), e))?;
        let stale = entry
            .file_name()
            .to_string_lossy()
            .starts_with(&staging_prefix())
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if stale {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| RestoreError::Write(path, e))?;
        } else {
            empty = false;
        }
    }
    if !empty && !force {
        return Err(RestoreError::NotEmpty(target.to_path_buf()));
    }
    Ok(Prepared {
        created: false,
        empty,
    })
}

/// Refuses, before anything is written, a link or file where a folder must go (it could lead
/// outside the target) and a folder where a file must go.
fn check_disk(target: &Path, manifest: &Manifest) -> Result<(), RestoreError> {
    for folder in manifest.folders() {
        let path = target.join(RelPath(folder.to_vec()).as_path());
        if let Ok(metadata) = std::fs::symlink_metadata(&path)
            && !metadata.is_dir()
        {
            return Err(RestoreError::InTheWay(path));
        }
    }
    for entry in manifest
        .entries
        .iter()
        .filter(|e| !matches!(e.kind, Kind::Dir { .. }))
    {
        let path = target.join(entry.path.as_path());
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return Err(RestoreError::FolderInTheWay(path));
        }
    }
    Ok(())
}

fn create_dirs(root: &Path, manifest: &Manifest) -> Result<(), RestoreError> {
    for folder in manifest.folders() {
        let path = root.join(RelPath(folder.to_vec()).as_path());
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(RestoreError::Write(path, e)),
        }
    }
    Ok(())
}

/// Moves what was staged into the target: a folder the target lacks moves whole, one it has is
/// merged into, and a file or link replaces the target's (only with --force is there one).
fn merge(staged: &Path, target: &Path) -> Result<(), RestoreError> {
    let entries = std::fs::read_dir(staged).map_err(|e| RestoreError::Write(staged.into(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| RestoreError::Write(staged.into(), e))?;
        let from = entry.path();
        let to = target.join(entry.file_name());
        let is_dir = entry
            .file_type()
            .map_err(|e| RestoreError::Write(from.clone(), e))?
            .is_dir();
        if is_dir && std::fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir()) {
            merge(&from, &to)?;
        } else {
            std::fs::rename(&from, &to).map_err(|e| RestoreError::Write(to, e))?;
        }
    }
    Ok(())
}

/// The permission bits to give: setuid, setgid and sticky only when asked for.
fn restored_mode(mode: u32, special_bits: bool) -> u32 {
    let mode = mode & 0o7777;
    if special_bits {
        mode
    } else {
        mode & !SPECIAL_BITS
    }
}

/// One blob's stretch of a pack, and every place in the restored files it goes.
struct Stretch {
    pack_offset: u64,
    len: u64,
    /// The content's length when the stored bytes are compressed.
    raw_len: Option<u64>,
    hash: Hash,
    /// (file, offset in the file)
    places: Vec<(u32, u64)>,
}

/// One blob a file needs, where it is and where it goes: 80 bytes. A restore holds one per
/// blob of the snapshot, sorted by pack and place; each pack's stretches are made from its
/// run of pieces only when it is read.
struct Piece {
    /// Which of the packs (its place in the list of pack ids).
    pack: u32,
    offset: u64,
    len: u64,
    raw_len: Option<u64>,
    hash: Hash,
    file: u32,
    file_offset: u64,
}

/// What every pack write needs to know of the files: shared by the packs written at once,
/// each on a worker of its own (creating files is most of a restore, and the kernel does it
/// on every core).
struct Files {
    root: PathBuf,
    files: Vec<FileAttrs>,
    special_bits: bool,
    progress: Arc<dyn Progress>,
    /// Files of one blob finished as their blob was written.
    finished: AtomicU64,
}

/// A file to write, as its pieces need it.
struct FileAttrs {
    path: RelPath,
    mode: u32,
    mtime_ns: i64,
    /// Of one blob: finished as soon as it is written.
    single: bool,
}

impl Files {
    fn path(&self, file: u32) -> PathBuf {
        self.root.join(self.files[file as usize].path.as_path())
    }

    /// File `file`, opened to write, made if it is not there yet (the first piece of it).
    fn open(&self, file: u32) -> Result<std::fs::File, RestoreError> {
        let path = self.path(file);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false) // a file of several blobs is opened once for each
            .open(&path)
            .map_err(|e| RestoreError::Write(path, e))
    }

    /// After a piece of `file` was written through `handle`: a file of that one blob is whole
    /// (the blob was checked, and is the file's content), so it gets its time and mode now,
    /// through the same handle; a file of several is finished once all are written.
    fn wrote(&self, file: u32, handle: &std::fs::File) -> Result<(), RestoreError> {
        let attrs = &self.files[file as usize];
        if attrs.single {
            set_time_and_mode(handle, attrs.mode, attrs.mtime_ns, self.special_bits)
                .map_err(|e| RestoreError::Write(self.path(file), e))?;
            self.finished.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

async fn write_files<S: Store>(
    store: &S,
    root: &Path,
    files: &[&Entry],
    options: &Options,
    progress: &Arc<dyn Progress>,
) -> Result<(), RestoreError> {
    // Each file is made when its first piece is written, in whatever order the packs arrive;
    // empty files are made when the rest are finished.
    let mut packs: Vec<Hash> = Vec::new();
    let mut pack_numbers: HashMap<Hash, u32> = HashMap::new();
    let mut pieces = Vec::new();
    let mut attrs = Vec::with_capacity(files.len());
    for entry in files {
        let Kind::File {
            mode,
            mtime_ns,
            blobs,
            ..
        } = &entry.kind
        else {
            continue;
        };
        let file = attrs.len() as u32;
        attrs.push(FileAttrs {
            path: entry.path.clone(),
            mode: *mode,
            mtime_ns: *mtime_ns,
            single: blobs.len() == 1,
        });
        let mut file_offset = 0;
        for blob in blobs {
            let pack = *pack_numbers.entry(blob.pack).or_insert_with(|| {
                packs.push(blob.pack);
                packs.len() as u32 - 1
            });
            pieces.push(Piece {
                pack,
                offset: blob.offset,
                len: blob.len,
                raw_len: blob.raw_len,
                hash: blob.hash,
                file,
                file_offset,
            });
            file_offset += blob.content_len();
        }
    }
    drop(pack_numbers);
    // A stretch is one blob: the same place, length and hash (validation refused two
    // different blobs at overlapping places).
    pieces.sort_unstable_by_key(|p| (p.pack, p.offset, p.len, p.hash, p.file, p.file_offset));
    let single = attrs.iter().filter(|a| a.single).count() as u64;
    let files = Arc::new(Files {
        root: root.to_path_buf(),
        files: attrs,
        special_bits: options.special_bits,
        progress: Arc::clone(progress),
        finished: AtomicU64::new(0),
    });
    let mut writers = Writers::new();
    for run in pieces.chunk_by(|a, b| a.pack == b.pack) {
        while writers.running.len() >= PACKS_AT_ONCE {
            writers
                .running
                .join_next()
                .await
                .expect("not empty")
                .expect("pack writes do not panic")?;
        }
        let pack = packs[run[0].pack as usize];
        let write = write_pack(store.clone(), pack, stretches(run), Arc::clone(&files));
        writers.spawn(write);
    }
    while let Some(written) = writers.running.join_next().await {
        written.expect("pack writes do not panic")?;
    }
    // Every file of one blob was finished as it was written.
    let finished = files.finished.load(Ordering::Relaxed);
    if finished != single {
        return Err(RestoreError::Unwritten(single.abs_diff(finished)));
    }
    Ok(())
}

/// The pack writes under way, each on a worker of its own. Dropped (a pack that failed, or
/// the restore itself dropped on Ctrl-C), it stops them and waits until every one has let go
/// of its files: a writer still making files in the staging folder as it is removed leaves
/// part of it behind (its removal finds a folder not empty).
struct Writers {
    running: JoinSet<Result<(), RestoreError>>,
    /// Each writer holds a sender: when all are gone, every writer is.
    alive: Option<std::sync::mpsc::Sender<()>>,
    all_gone: std::sync::mpsc::Receiver<()>,
}

impl Writers {
    fn new() -> Self {
        let (alive, all_gone) = std::sync::mpsc::channel();
        Self {
            running: JoinSet::new(),
            alive: Some(alive),
            all_gone,
        }
    }

    fn spawn(
        &mut self,
        write: impl std::future::Future<Output = Result<(), RestoreError>> + Send + 'static,
    ) {
        let alive = self.alive.clone();
        self.running.spawn(async move {
            let _alive = alive;
            write.await
        });
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        self.running.abort_all();
        self.alive = None;
        // On a runtime of one thread nothing runs while this does, and an aborted writer never
        // runs again; on one of several, the others may be in the middle of a write.
        let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
        if let Ok(tokio::runtime::RuntimeFlavor::MultiThread) = flavor {
            tokio::task::block_in_place(|| {
                // Err once every sender is dropped: no writer is left.
                let _ = self.all_gone.recv();
            });
        }
    }
}

/// The stretches of one pack's run of pieces, in order: each blob once, with every place it
/// goes.
fn stretches(run: &[Piece]) -> Vec<Stretch> {
    let mut wanted: Vec<Stretch> = Vec::new();
    for piece in run {
        let same = wanted.last().is_some_and(|last| {
            (last.pack_offset, last.len, last.hash) == (piece.offset, piece.len, piece.hash)
        });
        if !same {
            wanted.push(Stretch {
                pack_offset: piece.offset,
                len: piece.len,
                raw_len: piece.raw_len,
                hash: piece.hash,
                places: Vec::new(),
            });
        }
        let last = wanted.last_mut().expect("pushed");
        last.places.push((piece.file, piece.file_offset));
    }
    wanted
}

/// Streams one pack into the files that need it, checking each blob against its hash as it
/// passes; nothing of the pack is held beyond the piece in hand (or the compressed blob being
/// gathered, at most [`MAX_BLOB_LEN`](super::pack::MAX_BLOB_LEN)), and nothing past the last
/// blob wanted is read.
async fn write_pack<S: Store>(
    store: S,
    pack: Hash,
    wanted: Vec<Stretch>,
    files: Arc<Files>,
) -> Result<(), RestoreError> {
    let corrupt = |stretch: &Stretch| RestoreError::Corrupt {
        path: files.files[stretch.places[0].0 as usize].path.clone(),
        pack: pack.to_hex(),
    };
    let mut body = store.get_stream(&data_key(&pack.to_hex())?).await?;
    let mut position = 0u64;
    let mut next = 0;
    let mut hasher = blake3::Hasher::new();
    let mut compressed = Vec::new();
    let mut open: Vec<std::fs::File> = Vec::new();
    while next < wanted.len() {
        let Some(piece) = body.try_next().await? else {
            return Err(corrupt(&wanted[next])); // the pack ended early
        };
        let mut data: &[u8] = &piece;
        while !data.is_empty() && next < wanted.len() {
            let stretch = &wanted[next];
            if position < stretch.pack_offset {
                let skip = (stretch.pack_offset - position).min(data.len() as u64);
                data = &data[skip as usize..];
                position += skip;
                continue;
            }
            let done = position - stretch.pack_offset;
            // Validation refused empty and overlapping blobs; never step back in any case.
            let Some(left) = stretch.len.checked_sub(done).filter(|left| *left > 0) else {
                return Err(corrupt(stretch));
            };
            let take = left.min(data.len() as u64) as usize;
            if stretch.raw_len.is_some() {
                compressed.extend_from_slice(&data[..take]);
                data = &data[take..];
                position += take as u64;
                if done + take as u64 == stretch.len {
                    let content = super::pack::unpack(&compressed, stretch.raw_len)
                        .map_err(|_| corrupt(stretch))?;
                    if Hash::of(&content) != stretch.hash {
                        return Err(corrupt(stretch));
                    }
                    for (file, offset) in &stretch.places {
                        let handle = files.open(*file)?;
                        handle
                            .write_all_at(&content, *offset)
                            .map_err(|e| RestoreError::Write(files.path(*file), e))?;
                        files.wrote(*file, &handle)?;
                    }
                    let written = content.len() as u64 * stretch.places.len() as u64;
                    drop(content);
                    compressed.clear();
                    files.progress.advance(written);
                    next += 1;
                }
                continue;
            }
            if open.is_empty() {
                for (file, _) in &stretch.places {
                    open.push(files.open(*file)?);
                }
            }
            for ((file, offset), handle) in stretch.places.iter().zip(&open) {
                handle
                    .write_all_at(&data[..take], offset + done)
                    .map_err(|e| RestoreError::Write(files.path(*file), e))?;
            }
            hasher.update(&data[..take]);
            data = &data[take..];
            position += take as u64;
            if done + take as u64 == stretch.len {
                if Hash::from(hasher.finalize()) != stretch.hash {
                    return Err(corrupt(stretch));
                }
                hasher.reset();
                for ((file, _), handle) in stretch.places.iter().zip(&open) {
                    files.wrote(*file, handle)?;
                }
                open.clear();
                files
                    .progress
                    .advance(stretch.len * stretch.places.len() as u64);
                next += 1;
            }
        }
    }
    Ok(())
}

/// Makes the empty files, and verifies each file of several blobs whole; gives both their
/// time and mode (a file of one blob got them as it was written).
fn finish_files(root: &Path, files: &[&Entry], options: &Options) -> Result<(), RestoreError> {
    for entry in files {
        let Kind::File { hash, blobs, .. } = &entry.kind else {
            continue;
        };
        if blobs.len() == 1 {
            continue;
        }
        let path = root.join(entry.path.as_path());
        let write_error = |e| RestoreError::Write(path.clone(), e);
        // Each blob was checked as it was written: a file of several is hashed whole again.
        if !blobs.is_empty() && !has_content(&path, hash).map_err(write_error)? {
            return Err(RestoreError::Corrupt {
                path: entry.path.clone(),
                pack: blobs.first().map(|b| b.pack.to_hex()).unwrap_or_default(),
            });
        }
        let file = std::fs::File::options()
            .write(true)
            .create(blobs.is_empty())
            .truncate(false)
            .open(&path)
            .map_err(write_error)?;
        if let Kind::File { mode, mtime_ns, .. } = &entry.kind {
            set_time_and_mode(&file, *mode, *mtime_ns, options.special_bits)
                .map_err(write_error)?;
        }
    }
    Ok(())
}

/// A file's time and mode, the time first, through a handle that may still write: git's
/// objects are read-only, and a user who is not root could not open them again once the mode
/// is set.
fn set_time_and_mode(
    file: &std::fs::File,
    mode: u32,
    mtime_ns: i64,
    special_bits: bool,
) -> std::io::Result<()> {
    let mtime = UNIX_EPOCH + Duration::from_nanos(mtime_ns.max(0) as u64);
    file.set_modified(mtime)?;
    file.set_permissions(std::fs::Permissions::from_mode(restored_mode(
        mode,
        special_bits,
    )))
}

/// Hashes the file as written, on every core: this read-back is on the restore's critical
/// path. It maps the file a window at a time (no copy, and no more of it resident at once).
fn has_content(path: &Path, hash: &Hash) -> std::io::Result<bool> {
    const WINDOW: u64 = 16 << 20;
    let file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    let mut hasher = blake3::Hasher::new();
    let mut offset = 0;
    while offset < length {
        let len = WINDOW.min(length - offset);
        // SAFETY: the file is gitkit's own temporary, which nothing else writes while it is
        // mapped; the mapping lives only for this iteration.
        let window = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(len as usize)
                .map(&file)?
        };
        hasher.update_rayon(&window);
        offset += len;
    }
    Ok(Hash::from(hasher.finalize()) == *hash)
}

fn create_symlinks(root: &Path, entries: &[Entry]) -> Result<(), RestoreError> {
    for entry in entries {
        let Kind::Symlink { target: link } = &entry.kind else {
            continue;
        };
        let path = root.join(entry.path.as_path());
        std::os::unix::fs::symlink(link.as_path(), &path)
            .map_err(|e| RestoreError::Write(path, e))?;
    }
    Ok(())
}

/// The folders the entries give modes to.
fn dir_modes(entries: &[Entry]) -> impl Iterator<Item = (RelPath, u32)> + '_ {
    entries.iter().filter_map(|e| match e.kind {
        Kind::Dir { mode } => Some((e.path.clone(), mode)),
        _ => None,
    })
}

/// Folder modes last, deepest first, so a read-only folder is filled before it is closed.
fn set_dir_modes(
    target: &Path,
    mut dirs: Vec<(RelPath, u32)>,
    options: &Options,
) -> Result<(), RestoreError> {
    dirs.sort_by(|a, b| b.0.cmp(&a.0));
    for (path, mode) in dirs {
        let path = target.join(path.as_path());
        let mode = restored_mode(mode, options.special_bits);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| RestoreError::Write(path, e))?;
    }
    Ok(())
}
