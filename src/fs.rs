//! File-system helpers shared by the stores, caches and keys.

use std::io::Write;
use std::path::Path;

/// Names of files being written; readers skip them.
pub const TEMPORARY_PREFIX: &str = ".gitkit-tmp-";

/// Writes to a temporary file beside `path`, syncs it, then renames it into place, so a reader
/// sees the old content or the new, never part of it. The file is private (0600).
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_via_rename(path, data, true)
}

/// Like [`write_atomically`] without waiting for the disk: for caches, which are rebuilt when
/// a crash leaves them empty or unreadable.
pub fn write_cache(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_via_rename(path, data, false)
}

fn write_via_rename(path: &Path, data: &[u8], sync: bool) -> std::io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let mut file = tempfile::Builder::new()
        .prefix(TEMPORARY_PREFIX)
        .tempfile_in(parent)?;
    file.write_all(data)?;
    if sync {
        file.as_file().sync_all()?;
    }
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
