//! The change-detection cache under `.git/gitkit/`: what each file's content hash was the last
//! time it was read, and the stat data that proves it has not changed since.
//!
//! An entry is trusted only when size, mtime, ctime, inode and device all match. ctime cannot be
//! set by a program, so any write changes it; and an entry whose ctime was too close to the read
//! to be told apart from a later write in the same clock tick is stored as racy and read again
//! next time (git's "racy clean" problem, and the edit `aws s3 sync` misses).
//!
//! The file is binary and sorted by path, as git's index is: a run reads it alongside the
//! scan, which is sorted the same way, one record at a time, and writes the next one as it
//! goes. Neither is ever held whole: a workspace of any size costs a buffer and a record.
//! Layout (little-endian): [`MAGIC`], then per file the path's length (u32) and bytes, size,
//! mtime_ns, ctime_ns, inode, device (u64 each), mode (u32), racy (u8), the content hash
//! (32 bytes), the number of blobs (u32) and each blob's hash and length (u64); then [`END`].

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::binary;
use super::id::Hash;
use super::manifest::RelPath;

/// Timestamps closer than this to the moment a file was read are not trusted: it covers the
/// coarsest file system clocks (FAT's two seconds) with room to spare.
pub const RACY_WINDOW: Duration = Duration::from_secs(3);

const FILE_NAME: &str = "files.bin";
/// Format 2 kept this cache as JSON: removed when the binary one is first written.
const OLD_FILE_NAME: &str = "files.json";
const MAGIC: &[u8; 16] = b"gitkit-files\x00\x00\x00\x01";
/// After the last record, where a path's length would be: a file cut short lacks it.
const END: u32 = u32::MAX;
/// No path is longer (Linux's PATH_MAX), and no file is cut into more chunks than this (a
/// 256 GiB file in 64 KiB chunks): a record claiming more is not read.
pub const MAX_PATH: usize = 4096;
const MAX_BLOBS: usize = 1 << 22;

/// The file-type bits of `st_mode`, and the types a snapshot records.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    pub mode: u32,
}

impl Stat {
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// Size, times, inode and device, as numbers: what a record and a digest are made of.
    pub fn numbers(&self) -> [u64; 5] {
        [
            self.size,
            self.mtime_ns as u64,
            self.ctime_ns as u64,
            self.ino,
            self.dev,
        ]
    }

    /// As a binary record holds it: [`Stat::numbers`], then the mode.
    pub fn write(&self, out: &mut (impl Write + ?Sized)) -> std::io::Result<()> {
        for field in self.numbers() {
            binary::put_u64(out, field)?;
        }
        binary::put_u32(out, self.mode)
    }

    pub fn read(input: &mut (impl Read + ?Sized)) -> std::io::Result<Self> {
        Ok(Self {
            size: binary::u64(input)?,
            mtime_ns: binary::u64(input)? as i64,
            ctime_ns: binary::u64(input)? as i64,
            ino: binary::u64(input)?,
            dev: binary::u64(input)?,
            mode: binary::u32(input)?,
        })
    }

    pub fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            size: metadata.len(),
            mtime_ns: metadata.mtime() * 1_000_000_000 + metadata.mtime_nsec(),
            ctime_ns: metadata.ctime() * 1_000_000_000 + metadata.ctime_nsec(),
            ino: metadata.ino(),
            dev: metadata.dev(),
            mode: metadata.mode(),
        }
    }
}

/// A file's content, by hash: the whole, and its blobs (one, or one per chunk) with lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub hash: Hash,
    pub blobs: Vec<(Hash, u64)>,
}

impl Content {
    /// Whether this could be what a read of a file of `size` bytes found: blobs of a byte or
    /// more whose lengths add up to the size, none for an empty file (whose hash is the empty
    /// content's), and a lone blob whose hash is the whole file's. A snapshot records the blobs
    /// by this shape (a lone blob is named by the file's hash): a record of another shape would
    /// make a snapshot that names blobs no pack holds, or a file whose hash disagrees with its
    /// blob.
    fn fits(&self, size: u64) -> bool {
        let total = self.blobs.iter().try_fold(0u64, |total, (_, len)| {
            (*len > 0).then_some(total.checked_add(*len)).flatten()
        });
        total == Some(size)
            && match self.blobs.as_slice() {
                [] => self.hash == Hash::of(b""),
                [(only, _)] => *only == self.hash,
                _ => true,
            }
    }
}

/// What is known of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub stat: Stat,
    pub content: Content,
    /// Read too close to its last change to be trusted next time.
    pub racy: bool,
}

/// The cache as one run sees it: the last run's records, read in path order, and this run's,
/// written in path order.
pub struct FileCache {
    /// The last run's records still ahead, and the next of them.
    old: Option<BufReader<std::fs::File>>,
    next: Option<(RelPath, Known)>,
    /// This run's records; `None` for a run that only looks.
    new: Option<Writer>,
    /// [`RACY_WINDOW`], unless a test sets another.
    racy_window: Duration,
    /// Every file kept so far has a record that proves it unchanged as its scan saw it.
    settled: bool,
}

struct Writer {
    out: BufWriter<tempfile::NamedTempFile>,
    /// The path and record last written: records go in path order, each path once.
    last: Option<(RelPath, Known)>,
}

impl FileCache {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    /// The cache, to look files up in path order; an empty one when it is missing or
    /// unreadable (it is only a cache). Entries are trusted only if they changed more than
    /// `racy_window` before they were read.
    pub fn load(state_dir: &Path, racy_window: Duration) -> Self {
        let mut old = crate::fs::open_own(&Self::path(state_dir))
            .ok()
            .map(|file| BufReader::with_capacity(64 << 10, file));
        if let Some(reader) = &mut old
            && binary::check_magic(reader, MAGIC).is_err()
        {
            old = None;
        }
        let mut cache = Self {
            old,
            next: None,
            new: None,
            racy_window,
            settled: true,
        };
        cache.advance();
        cache
    }

    /// The cache, as [`FileCache::load`], and a new one to write alongside it: what
    /// [`FileCache::record`] and [`FileCache::keep`] put there replaces the old file when it
    /// is saved.
    pub fn load_for_update(state_dir: &Path, racy_window: Duration) -> std::io::Result<Self> {
        remove_stale(state_dir);
        let file = tempfile::Builder::new()
            .prefix(crate::fs::TEMPORARY_PREFIX)
            .tempfile_in(state_dir)?;
        // Held as long as this run may write it: see `remove_stale`.
        rustix::fs::flock(file.as_file(), rustix::fs::FlockOperation::LockExclusive)?;
        let mut out = BufWriter::with_capacity(64 << 10, file);
        out.write_all(MAGIC)?;
        let mut cache = Self::load(state_dir, racy_window);
        cache.new = Some(Writer { out, last: None });
        Ok(cache)
    }

    /// The known content of `path`, if its stat data proves it unchanged. Paths are looked up
    /// in increasing order; one before the last asked for is not found.
    pub fn lookup(&mut self, path: &RelPath, stat: &Stat) -> Option<Known> {
        self.lookup_immutable(path)
            .filter(|known| !known.racy && known.stat == *stat)
    }

    /// What the cache knows of a file that never changes once written, whatever its stat.
    pub fn lookup_immutable(&mut self, path: &RelPath) -> Option<Known> {
        while self.next.as_ref().is_some_and(|(next, _)| next < path) {
            self.advance();
        }
        match &self.next {
            Some((next, known)) if next == path => Some(known.clone()),
            _ => None,
        }
    }

    /// Records what was read at `read_at`. A path that does not come after the last one
    /// recorded or kept (a git object found late) is left out: it is read again next time.
    pub fn record(&mut self, path: &RelPath, stat: Stat, content: Content, read_at: SystemTime) {
        let read_ns = read_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i64;
        let newest_change = stat.mtime_ns.max(stat.ctime_ns);
        let racy = newest_change > read_ns - self.racy_window.as_nanos() as i64;
        let known = Known {
            stat,
            content,
            racy,
        };
        self.write(path, known);
    }

    /// Ends `path`'s turn: unless this run recorded it, the last run's record for it is kept.
    /// `scan` is the stat data the scan found (`None` for a file not looked at); whether the
    /// record kept proves the file unchanged as it was found counts towards
    /// [`FileCache::settled`].
    pub fn keep(&mut self, path: &RelPath, scan: Option<&Stat>) {
        let recorded = self
            .new
            .as_ref()
            .and_then(|new| new.last.as_ref())
            .filter(|(last, _)| last == path)
            .map(|(_, known)| known.clone());
        let known = match recorded {
            Some(known) => Some(known),
            None => {
                let old = self.lookup_immutable(path);
                if let Some(known) = &old {
                    self.write(path, known.clone());
                }
                old
            }
        };
        self.settled &=
            known.is_some_and(|known| !known.racy && scan.is_none_or(|scan| *scan == known.stat));
    }

    /// Whether every file kept had a record that proves it unchanged since the scan.
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// Puts the new cache in place of the old one. The last run's records past the last path
    /// this run reached (a run that stopped part-way) are kept.
    pub fn save(mut self, state_dir: &Path) -> std::io::Result<()> {
        let Some(mut new) = self.new.take() else {
            return Ok(());
        };
        while let Some((path, known)) = self.next.take() {
            if new.last.as_ref().is_none_or(|(last, _)| *last < path) {
                write_record(&mut new.out, &path, &known)?;
            }
            self.advance();
        }
        new.out.write_all(&END.to_le_bytes())?;
        let file = new.out.into_inner().map_err(|e| e.into_error())?;
        file.persist(Self::path(state_dir)).map_err(|e| e.error)?;
        let _ = std::fs::remove_file(state_dir.join(OLD_FILE_NAME));
        Ok(())
    }

    fn write(&mut self, path: &RelPath, known: Known) {
        let Some(new) = &mut self.new else {
            return;
        };
        if new.last.as_ref().is_some_and(|(last, _)| last >= path) {
            return;
        }
        if write_record(&mut new.out, path, &known).is_err() {
            // A cache that cannot be written is not saved: the next run reads files again.
            self.new = None;
            return;
        }
        new.last = Some((path.clone(), known));
    }

    /// Reads the next of the last run's records; at the end, or at anything unreadable, stops.
    fn advance(&mut self) {
        self.next = self
            .old
            .as_mut()
            .and_then(|old| read_record(old).ok().flatten());
        if self.next.is_none() {
            self.old = None;
        }
    }
}

/// A new cache being written lives as long as its snapshot (minutes, for a large workspace),
/// so a snapshot killed outright leaves it behind. Each run removes those left so: a file
/// nothing holds a lock on (its writer holds one until it ends, and the kernel lets go of a
/// dead process's) and that no one wrote for a minute (the same name another run made a moment
/// ago, before it took its lock). Anything it cannot look at is left alone.
fn remove_stale(state_dir: &Path) {
    const QUIET: Duration = Duration::from_secs(60);
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        if !name
            .to_string_lossy()
            .starts_with(crate::fs::TEMPORARY_PREFIX)
        {
            continue;
        }
        let path = entry.path();
        let Ok(file) = crate::fs::open_own(&path) else {
            continue;
        };
        let quiet = file
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > QUIET);
        let free = quiet
            && rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .is_ok();
        if free {
            tracing::debug!(path = %path.display(), "removing a cache a killed run left");
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn write_record(out: &mut impl Write, path: &RelPath, known: &Known) -> std::io::Result<()> {
    let Known {
        stat,
        content,
        racy,
    } = known;
    binary::put_u32(out, path.0.len() as u32)?;
    out.write_all(&path.0)?;
    stat.write(out)?;
    out.write_all(&[u8::from(*racy)])?;
    out.write_all(&content.hash.0)?;
    binary::put_u32(out, content.blobs.len() as u32)?;
    for (hash, len) in &content.blobs {
        out.write_all(&hash.0)?;
        binary::put_u64(out, *len)?;
    }
    Ok(())
}

/// The next record, `None` at the end; an error for anything that is not a whole record.
fn read_record(input: &mut impl BufRead) -> std::io::Result<Option<(RelPath, Known)>> {
    let path_len = binary::u32(input)?;
    if path_len == END {
        return Ok(None);
    }
    if path_len as usize > MAX_PATH {
        return Err(binary::bad());
    }
    let mut path = vec![0u8; path_len as usize];
    input.read_exact(&mut path)?;
    let stat = Stat::read(input)?;
    let racy = binary::bytes::<1>(input)?[0] != 0;
    let hash = binary::hash(input)?;
    let count = binary::count(input, MAX_BLOBS)?;
    let mut blobs = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        blobs.push((binary::hash(input)?, binary::u64(input)?));
    }
    let content = Content { hash, blobs };
    if !content.fits(stat.size) {
        return Err(binary::bad());
    }
    let known = Known {
        stat,
        content,
        racy,
    };
    Ok(Some((RelPath(path), known)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(ctime_ns: i64) -> Stat {
        Stat {
            size: 1,
            mtime_ns: ctime_ns,
            ctime_ns,
            ino: 7,
            dev: 1,
            mode: 0o100644,
        }
    }

    fn content(text: &[u8]) -> Content {
        Content {
            hash: Hash::of(text),
            blobs: vec![(Hash::of(text), text.len() as u64)],
        }
    }

    fn path(text: &str) -> RelPath {
        RelPath(text.as_bytes().to_vec())
    }

    const LONG_AGO: i64 = 1_000_000_000;

    /// Guards the cache being saved after a file is read again (a lost update made every
    /// later snapshot re-read the file), and records kept from run to run.
    #[test]
    fn records_are_saved_kept_and_dropped_with_their_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = SystemTime::now();
        let mut cache = FileCache::load_for_update(dir.path(), RACY_WINDOW).expect("cache");
        for name in ["a", "b", "c"] {
            cache.record(&path(name), stat(LONG_AGO), content(name.as_bytes()), now);
            cache.keep(&path(name), Some(&stat(LONG_AGO)));
        }
        assert!(cache.settled());
        cache.save(dir.path()).expect("save");

        // `b` is gone and `a` changed: `c` is kept as it was.
        let mut cache = FileCache::load_for_update(dir.path(), RACY_WINDOW).expect("cache");
        assert_eq!(cache.lookup(&path("a"), &stat(LONG_AGO + 1)), None);
        cache.record(&path("a"), stat(LONG_AGO + 1), content(b"A"), now);
        cache.keep(&path("a"), Some(&stat(LONG_AGO + 1)));
        assert!(cache.lookup(&path("c"), &stat(LONG_AGO)).is_some());
        cache.keep(&path("c"), Some(&stat(LONG_AGO)));
        cache.save(dir.path()).expect("save");

        let mut cache = FileCache::load(dir.path(), RACY_WINDOW);
        let a = cache.lookup(&path("a"), &stat(LONG_AGO + 1)).expect("a");
        assert_eq!(a.content, content(b"A"));
        assert_eq!(cache.lookup_immutable(&path("b")), None, "b was dropped");
        assert_eq!(
            cache.lookup(&path("c"), &stat(LONG_AGO)).map(|k| k.content),
            Some(content(b"c"))
        );
    }

    #[test]
    fn trusts_only_matching_settled_entries() {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = SystemTime::now();
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as i64;
        let old = now_ns - 60_000_000_000;
        let fresh = now_ns - 1_000_000;
        let mut cache = FileCache::load_for_update(dir.path(), RACY_WINDOW).expect("cache");
        cache.record(&path("a"), stat(old), content(b"a"), now);
        cache.keep(&path("a"), Some(&stat(old)));
        cache.record(&path("b"), stat(fresh), content(b"b"), now);
        cache.keep(&path("b"), Some(&stat(fresh)));
        assert!(!cache.settled(), "a file read just after a change");
        cache.save(dir.path()).expect("save");

        let mut cache = FileCache::load(dir.path(), RACY_WINDOW);
        assert!(
            cache.lookup(&path("a"), &stat(old + 1)).is_none(),
            "any change means read again"
        );
        assert!(cache.lookup(&path("a"), &stat(old)).is_some());
        assert!(
            cache.lookup(&path("b"), &stat(fresh)).is_none(),
            "a file changed just before it was read is read again"
        );
    }

    #[test]
    fn only_what_a_read_could_find_fits_a_file() {
        let two = Content {
            hash: Hash::of(b"ab"),
            blobs: vec![(Hash::of(b"a"), 1), (Hash::of(b"b"), 1)],
        };
        assert!(content(b"abcd").fits(4));
        assert!(two.fits(2));
        let empty = Content {
            hash: Hash::of(b""),
            blobs: Vec::new(),
        };
        assert!(empty.fits(0));
        for (what, content, size) in [
            ("lengths that miss the size", two.clone(), 3),
            (
                "no blobs for a file that is not empty",
                Content {
                    blobs: vec![],
                    ..two.clone()
                },
                2,
            ),
            (
                "a lone blob not named by the file's hash",
                Content {
                    blobs: vec![(Hash::of(b"x"), 2)],
                    ..two.clone()
                },
                2,
            ),
            (
                "an empty file named by other content",
                Content {
                    hash: Hash::of(b"x"),
                    blobs: vec![],
                },
                0,
            ),
            (
                "a blob of no bytes",
                Content {
                    hash: Hash::of(b"x"),
                    blobs: vec![(Hash::of(b"x"), 0)],
                },
                0,
            ),
            (
                "lengths that overflow",
                Content {
                    blobs: vec![(Hash::of(b"a"), u64::MAX), (Hash::of(b"b"), 3)],
                    ..two.clone()
                },
                2,
            ),
        ] {
            assert!(!content.fits(size), "{what}");
        }
    }

    #[test]
    fn a_damaged_or_foreign_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = FileCache::load_for_update(dir.path(), RACY_WINDOW).expect("cache");
        cache.record(&path("a"), stat(LONG_AGO), content(b"a"), SystemTime::now());
        cache.save(dir.path()).expect("save");
        let file = FileCache::path(dir.path());
        let whole = std::fs::read(&file).expect("read");
        for (what, data) in [
            ("cut short", whole[..whole.len() - 10].to_vec()),
            ("JSON", b"{\"files\": []}".to_vec()),
            ("a path 4 GB long", {
                let mut data = whole.clone();
                data[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&(END - 1).to_le_bytes());
                data
            }),
        ] {
            std::fs::write(&file, data).expect("write");
            let mut cache = FileCache::load(dir.path(), RACY_WINDOW);
            assert_eq!(cache.lookup_immutable(&path("a")), None, "{what}");
        }
    }
}
