//! `gitkit restore`: write a snapshot's files into a folder, each verified against its hash.
//!
//! Everything that could refuse is checked before the first write: the manifest (no path out of
//! the folder, none twice, none through a link), and on disk, that no folder on the way is a
//! link or a file. Files are written under temporary names and renamed into place only once
//! their content matches its hash, so no file is ever left with wrong content.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};

use super::manifest::{Entry, Kind, Manifest, ManifestError, RelPath};
use super::pack::data_key;
use super::progress::Progress;
use crate::fs::TEMPORARY_PREFIX;
use crate::store::{Store, StoreError};

/// Packs streamed at once.
const PACKS_AT_ONCE: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
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
    #[error("could not write {0}")]
    Write(PathBuf, #[source] std::io::Error),
}

pub struct Options {
    /// Restore into a folder that is not empty, replacing what the snapshot names.
    pub force: bool,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub files: u64,
    pub bytes: u64,
    pub seconds: f64,
}

pub async fn restore<S: Store>(
    store: &S,
    manifest: &Manifest,
    target: &Path,
    options: &Options,
    progress: Arc<dyn Progress>,
) -> Result<Outcome, RestoreError> {
    let started = Instant::now();
    manifest.validate()?;
    prepare_target(target, options.force)?;
    check_disk(target, &manifest.entries)?;

    let files: Vec<&Entry> = manifest
        .entries
        .iter()
        .filter(|e| matches!(e.kind, Kind::File { .. }))
        .collect();
    let total_bytes = files.iter().map(|e| file_size(e)).sum();
    progress.start(files.len() as u64, total_bytes);

    create_dirs(target, &manifest.entries)?;
    let mut temps = Temporaries::default();
    if let Err(e) = write_files(store, target, &files, &mut temps, &progress).await {
        temps.remove_all();
        return Err(e);
    }
    let finished = finish_files(target, &files, &mut temps);
    temps.remove_all();
    finished?;
    create_symlinks(target, &manifest.entries)?;
    set_dir_modes(target, &manifest.entries)?;
    progress.finish();
    Ok(Outcome {
        files: manifest
            .entries
            .iter()
            .filter(|e| !matches!(e.kind, Kind::Dir { .. }))
            .count() as u64,
        bytes: total_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn file_size(entry: &Entry) -> u64 {
    if let Kind::File { size, .. } = entry.kind {
        size
    } else {
        0
    }
}

fn prepare_target(target: &Path, force: bool) -> Result<(), RestoreError> {
    match std::fs::read_dir(target) {
        Ok(mut entries) => {
            if entries.next().is_some() && !force {
                return Err(RestoreError::NotEmpty(target.to_path_buf()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(target)
            .map_err(|e| RestoreError::Write(target.to_path_buf(), e)),
        Err(e) => Err(RestoreError::Write(target.to_path_buf(), e)),
    }
}

/// Refuses, before anything is written, a link or file where a folder must go (it could lead
/// outside the target) and a folder where a file must go.
fn check_disk(target: &Path, entries: &[Entry]) -> Result<(), RestoreError> {
    let mut folders: HashSet<&[u8]> = HashSet::new();
    for entry in entries {
        folders.extend(entry.path.ancestors());
        if matches!(entry.kind, Kind::Dir { .. }) {
            folders.insert(&entry.path.0);
        }
    }
    for folder in &folders {
        let path = target.join(RelPath(folder.to_vec()).as_path());
        if let Ok(metadata) = std::fs::symlink_metadata(&path)
            && !metadata.is_dir()
        {
            return Err(RestoreError::InTheWay(path));
        }
    }
    for entry in entries
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

fn create_dirs(target: &Path, entries: &[Entry]) -> Result<(), RestoreError> {
    let mut folders: Vec<&[u8]> = entries.iter().flat_map(|e| e.path.ancestors()).collect();
    folders.extend(
        entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::Dir { .. }))
            .map(|e| e.path.0.as_slice()),
    );
    folders.sort();
    folders.dedup();
    for folder in folders {
        let path = target.join(RelPath(folder.to_vec()).as_path());
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(RestoreError::Write(path, e)),
        }
    }
    Ok(())
}

/// Temporary files written so far, by entry index.
#[derive(Default)]
struct Temporaries(HashMap<usize, PathBuf>);

impl Temporaries {
    fn create(&mut self, index: usize, final_path: &Path) -> Result<PathBuf, RestoreError> {
        if let Some(path) = self.0.get(&index) {
            return Ok(path.clone());
        }
        let dir = final_path.parent().expect("a file has a parent");
        let file = tempfile::Builder::new()
            .prefix(TEMPORARY_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| RestoreError::Write(final_path.to_path_buf(), e))?;
        let (_, path) = file
            .keep()
            .map_err(|e| RestoreError::Write(final_path.to_path_buf(), e.error))?;
        self.0.insert(index, path.clone());
        Ok(path)
    }

    fn remove_all(&mut self) {
        for (_, path) in self.0.drain() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One blob's stretch of a pack, and every place in the restored files it goes.
struct Stretch {
    pack_offset: u64,
    len: u64,
    hash: String,
    /// (file, offset in the file)
    places: Vec<(usize, u64)>,
}

/// What every pack write needs to know of the files.
struct Files {
    temps: Vec<PathBuf>,
    names: Vec<RelPath>,
    progress: Arc<dyn Progress>,
}

async fn write_files<S: Store>(
    store: &S,
    target: &Path,
    files: &[&Entry],
    temps: &mut Temporaries,
    progress: &Arc<dyn Progress>,
) -> Result<(), RestoreError> {
    // Every file gets its temporary now: empty files are then done, and the rest have
    // somewhere to receive their pieces in whatever order the packs arrive.
    let mut packs: Vec<String> = Vec::new();
    let mut stretches: HashMap<String, HashMap<u64, Stretch>> = HashMap::new();
    for (index, entry) in files.iter().enumerate() {
        temps.create(index, &target.join(entry.path.as_path()))?;
        let Kind::File { blobs, .. } = &entry.kind else {
            continue;
        };
        let mut file_offset = 0;
        for blob in blobs {
            let in_pack = stretches.entry(blob.pack.clone()).or_insert_with(|| {
                packs.push(blob.pack.clone());
                HashMap::new()
            });
            in_pack
                .entry(blob.offset)
                .or_insert_with(|| Stretch {
                    pack_offset: blob.offset,
                    len: blob.len,
                    hash: blob.hash.clone(),
                    places: Vec::new(),
                })
                .places
                .push((index, file_offset));
            file_offset += blob.len;
        }
    }
    let shared = Arc::new(Files {
        temps: (0..files.len()).map(|i| temps.0[&i].clone()).collect(),
        names: files.iter().map(|e| e.path.clone()).collect(),
        progress: Arc::clone(progress),
    });
    futures::stream::iter(packs)
        .map(|pack| {
            let mut wanted: Vec<Stretch> = stretches
                .remove(&pack)
                .unwrap_or_default()
                .into_values()
                .collect();
            wanted.sort_by_key(|s| s.pack_offset);
            write_pack(store, pack, wanted, Arc::clone(&shared))
        })
        .buffer_unordered(PACKS_AT_ONCE)
        .try_collect::<()>()
        .await
}

/// Streams one pack into the files that need it, checking each blob against its hash as it
/// passes; nothing of the pack is held beyond the piece in hand.
async fn write_pack<S: Store>(
    store: &S,
    pack: String,
    wanted: Vec<Stretch>,
    files: Arc<Files>,
) -> Result<(), RestoreError> {
    let corrupt = |stretch: &Stretch| RestoreError::Corrupt {
        path: files.names[stretch.places[0].0].clone(),
        pack: pack.clone(),
    };
    let mut body = store.get_stream(&data_key(&pack)).await?;
    let mut position = 0u64;
    let mut next = 0;
    let mut hasher = blake3::Hasher::new();
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
            let take = (stretch.len - done).min(data.len() as u64) as usize;
            if open.is_empty() {
                for (file, _) in &stretch.places {
                    let path = &files.temps[*file];
                    let handle = std::fs::OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| RestoreError::Write(path.clone(), e))?;
                    open.push(handle);
                }
            }
            for ((file, offset), handle) in stretch.places.iter().zip(&open) {
                handle
                    .write_all_at(&data[..take], offset + done)
                    .map_err(|e| RestoreError::Write(files.temps[*file].clone(), e))?;
            }
            hasher.update(&data[..take]);
            data = &data[take..];
            position += take as u64;
            if done + take as u64 == stretch.len {
                if hasher.finalize().to_hex().as_str() != stretch.hash {
                    return Err(corrupt(stretch));
                }
                hasher.reset();
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

/// Verifies each whole file, sets its mode and time, and renames it into place.
fn finish_files(
    target: &Path,
    files: &[&Entry],
    temps: &mut Temporaries,
) -> Result<(), RestoreError> {
    for (index, entry) in files.iter().enumerate() {
        let Kind::File {
            mode,
            hash,
            mtime_ns,
            blobs,
            ..
        } = &entry.kind
        else {
            continue;
        };
        let temp = temps.0.remove(&index).expect("every file has a temporary");
        let write_error = |e| RestoreError::Write(temp.clone(), e);
        // Each blob was checked as it was written; a file of one blob is then checked whole,
        // and a file of several is read back and hashed whole.
        if blobs.len() != 1 && !has_content(&temp, hash).map_err(write_error)? {
            let pack = blobs.first().map(|b| b.pack.clone()).unwrap_or_default();
            let _ = std::fs::remove_file(&temp);
            return Err(RestoreError::Corrupt {
                path: entry.path.clone(),
                pack,
            });
        }
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(*mode))
            .map_err(write_error)?;
        let mtime = UNIX_EPOCH + Duration::from_nanos((*mtime_ns).max(0) as u64);
        let file = std::fs::File::options()
            .write(true)
            .open(&temp)
            .map_err(write_error)?;
        file.set_modified(mtime).map_err(write_error)?;
        let final_path = target.join(entry.path.as_path());
        std::fs::rename(&temp, &final_path).map_err(|e| RestoreError::Write(final_path, e))?;
    }
    Ok(())
}

/// Hashes the file as written, on every core: this read-back is on the restore's critical
/// path. It maps the file a window at a time (no copy, and no more of it resident at once).
fn has_content(path: &Path, hash: &str) -> std::io::Result<bool> {
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
    Ok(hasher.finalize().to_hex().as_str() == hash)
}

fn create_symlinks(target: &Path, entries: &[Entry]) -> Result<(), RestoreError> {
    for entry in entries {
        let Kind::Symlink { target: link } = &entry.kind else {
            continue;
        };
        let path = target.join(entry.path.as_path());
        let temp = path.with_file_name(format!("{TEMPORARY_PREFIX}link-{}", std::process::id()));
        let _ = std::fs::remove_file(&temp);
        std::os::unix::fs::symlink(link.as_path(), &temp)
            .map_err(|e| RestoreError::Write(path.clone(), e))?;
        std::fs::rename(&temp, &path).map_err(|e| RestoreError::Write(path, e))?;
    }
    Ok(())
}

/// Folder modes last, deepest first, so a read-only folder is filled before it is closed.
fn set_dir_modes(target: &Path, entries: &[Entry]) -> Result<(), RestoreError> {
    let mut dirs: Vec<(&RelPath, u32)> = entries
        .iter()
        .filter_map(|e| {
            if let Kind::Dir { mode } = e.kind {
                Some((&e.path, mode))
            } else {
                None
            }
        })
        .collect();
    dirs.sort_by(|a, b| b.0.cmp(a.0));
    for (path, mode) in dirs {
        let path = target.join(path.as_path());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| RestoreError::Write(path, e))?;
    }
    Ok(())
}
