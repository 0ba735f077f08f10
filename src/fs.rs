//! File-system helpers shared by the stores, caches, hooks and keys.

use std::io::Write;
use std::path::Path;

/// Names of files being written; readers skip them.
pub const TEMPORARY_PREFIX: &str = ".gitkit-tmp-";

/// How [`write_with`] puts a file in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Atomic {
    /// The file's permission bits, set before it has its name.
    pub mode: u32,
    /// Wait for the disk before the rename, so that a crash leaves the old content or the new.
    pub sync: bool,
    /// Replace a file already at the path; when false, one already there (even one another
    /// process put there meanwhile) is kept and the write fails with `AlreadyExists`.
    pub overwrite: bool,
}

impl Atomic {
    /// A private file (0600) that matters: synced, replacing what was there.
    pub const PRIVATE: Atomic = Atomic {
        mode: 0o600,
        sync: true,
        overwrite: true,
    };

    /// A cache (0600), rebuilt when a crash leaves it empty or unreadable: not synced.
    pub const CACHE: Atomic = Atomic {
        sync: false,
        ..Atomic::PRIVATE
    };
}

/// Opens one of gitkit's own files (a cache, a state record) for reading. Whatever took its
/// place that is not a regular file (a FIFO, which would block the open for ever, a device, a
/// folder) is an error, as a missing file is: the caller treats it as absent.
pub fn open_own(path: &Path) -> std::io::Result<std::fs::File> {
    let file = no_wait(std::fs::File::options().read(true)).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// `options` for one of gitkit's own files, that never wait on a FIFO or device that took its
/// place: the open fails instead (for writing to a FIFO nobody reads, with ENXIO), where it
/// would otherwise block a hook, and with it a commit, for ever.
pub fn no_wait(options: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
}

/// Makes one of gitkit's own marker files, empty, without waiting ([`no_wait`]).
pub fn touch_own(path: &Path) -> std::io::Result<()> {
    no_wait(
        std::fs::File::options()
            .create(true)
            .write(true)
            .truncate(true),
    )
    .open(path)?;
    Ok(())
}

/// [`open_own`], read whole.
pub fn read_own(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut open_own(path)?, &mut data)?;
    Ok(data)
}

/// Writes to a temporary file beside `path`, syncs it, then renames it into place, so a reader
/// sees the old content or the new, never part of it. The file is private (0600).
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_with(path, data, Atomic::PRIVATE)
}

/// Like [`write_atomically`] without waiting for the disk: for caches, which are rebuilt when
/// a crash leaves them empty or unreadable.
pub fn write_cache(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_with(path, data, Atomic::CACHE)
}

/// A cache written as `write` streams it: a large cache is never held whole in memory.
pub fn write_cache_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write_streaming(path, write, Atomic::CACHE)
}

/// The one way gitkit writes a file: complete, with its mode, under a temporary name beside
/// `path` (its folder is created if need be), then renamed into place as `how` says.
pub fn write_with(path: &Path, data: &[u8], how: Atomic) -> std::io::Result<()> {
    write_streaming(path, |out| out.write_all(data), how)
}

fn write_streaming(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    how: Atomic,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    // tempfile creates the file 0600: no other user ever sees a private one, even briefly.
    let mut file = tempfile::Builder::new()
        .prefix(TEMPORARY_PREFIX)
        .tempfile_in(parent)?;
    {
        let mut out = std::io::BufWriter::new(file.as_file_mut());
        write(&mut out)?;
        out.flush()?;
    }
    if how.mode != 0o600 {
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(how.mode))?;
    }
    if how.sync {
        file.as_file().sync_all()?;
    }
    if how.overwrite {
        file.persist(path).map_err(|e| e.error)?;
    } else {
        file.persist_noclobber(path).map_err(|e| e.error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn writes_with_the_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/file");
        write_atomically(&path, b"one").expect("written");
        assert_eq!(mode(&path), 0o600);
        let executable = Atomic {
            mode: 0o755,
            ..Atomic::PRIVATE
        };
        write_with(&path, b"two", executable).expect("replaced");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(mode(&path), 0o755);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["file"]);
    }

    #[test]
    fn never_overwrites_when_told_not_to() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key");
        let once = Atomic {
            overwrite: false,
            ..Atomic::PRIVATE
        };
        write_with(&path, b"first", once).expect("written");
        let error = write_with(&path, b"second", once).expect_err("kept");
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).expect("read"), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
