//! The change-detection cache under `.git/gitkit/`: what each file's content hash was the last
//! time it was read, and the stat data that proves it has not changed since.
//!
//! An entry is trusted only when size, mtime, ctime, inode and device all match. ctime cannot be
//! set by a program, so any write changes it; and an entry whose ctime was too close to the read
//! to be told apart from a later write in the same clock tick is stored as racy and read again
//! next time (git's "racy clean" problem, and the edit `aws s3 sync` misses).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::manifest::RelPath;

/// Timestamps closer than this to the moment a file was read are not trusted: it covers the
/// coarsest file system clocks (FAT's two seconds) with room to spare.
pub const RACY_WINDOW: Duration = Duration::from_secs(3);

const FILE_NAME: &str = "files.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    pub mode: u32,
}

impl Stat {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub hash: String,
    pub blobs: Vec<(String, u64)>,
}

/// What is known of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    pub stat: Stat,
    pub content: Content,
    /// Read too close to its last change to be trusted next time.
    pub racy: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FileCache {
    #[serde(with = "path_map")]
    files: HashMap<RelPath, Known>,
    /// Changed since it was loaded.
    #[serde(skip)]
    dirty: bool,
    /// [`RACY_WINDOW`], unless a test sets another.
    #[serde(skip)]
    racy_window: Option<Duration>,
}

impl FileCache {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    /// The cache, or an empty one when it is missing or unreadable (it is only a cache).
    /// Entries are trusted only if they changed more than `racy_window` before they were read.
    pub fn load(state_dir: &Path, racy_window: Duration) -> Self {
        let mut cache: Self = std::fs::read(Self::path(state_dir))
            .ok()
            .and_then(|data| serde_json::from_slice(&data).ok())
            .unwrap_or_default();
        cache.racy_window = Some(racy_window);
        cache
    }

    /// Writes the cache if it changed.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        crate::fs::write_cache_with(&Self::path(state_dir), |out| {
            serde_json::to_writer(out, self).map_err(std::io::Error::from)
        })
    }

    /// The known content of `path`, if its stat data proves it unchanged.
    pub fn lookup(&self, path: &RelPath, stat: &Stat) -> Option<&Known> {
        self.files
            .get(path)
            .filter(|known| !known.racy && known.stat == *stat)
    }

    /// What the cache knows of a file that never changes once written, whatever its stat.
    pub fn lookup_immutable(&self, path: &RelPath) -> Option<&Known> {
        self.files.get(path)
    }

    /// Records what was read at `read_at`.
    pub fn record(&mut self, path: RelPath, stat: Stat, content: Content, read_at: SystemTime) {
        let read_ns = read_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i64;
        let newest_change = stat.mtime_ns.max(stat.ctime_ns);
        let window = self.racy_window.unwrap_or(RACY_WINDOW);
        let racy = newest_change > read_ns - window.as_nanos() as i64;
        self.files.insert(
            path,
            Known {
                stat,
                content,
                racy,
            },
        );
        self.dirty = true;
    }

    /// Forgets files that are gone, so the cache does not grow forever.
    pub fn retain(&mut self, keep: impl Fn(&RelPath) -> bool) {
        let before = self.files.len();
        self.files.retain(|path, _| keep(path));
        self.dirty |= self.files.len() != before;
    }
}

/// JSON object keys must be strings: store the map as a list of pairs.
mod path_map {
    use std::collections::HashMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Known, RelPath};

    pub fn serialize<S: Serializer>(
        map: &HashMap<RelPath, Known>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        map.iter().collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<HashMap<RelPath, Known>, D::Error> {
        Ok(Vec::<(RelPath, Known)>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(ctime_ns: i64) -> Stat {
        Stat {
            size: 4,
            mtime_ns: ctime_ns,
            ctime_ns,
            ino: 7,
            dev: 1,
            mode: 0o100644,
        }
    }

    /// Guards the cache being saved after a file is read again (a lost update made every
    /// later snapshot re-read the file).
    #[test]
    fn a_recorded_file_is_saved_and_loaded_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = FileCache::load(dir.path(), RACY_WINDOW);
        let path = RelPath(b"a".to_vec());
        cache.record(path.clone(), stat(1), content(), SystemTime::now());
        cache.save(dir.path()).expect("save");
        assert!(
            FileCache::load(dir.path(), RACY_WINDOW)
                .files
                .contains_key(&path)
        );
    }

    fn content() -> Content {
        Content {
            hash: "h".into(),
            blobs: vec![],
        }
    }

    #[test]
    fn trusts_only_matching_settled_entries() {
        let now = SystemTime::now();
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as i64;
        let old = now_ns - 60_000_000_000;
        let mut cache = FileCache::default();
        let path = RelPath(b"a".to_vec());
        cache.record(path.clone(), stat(old), content(), now);
        assert!(cache.lookup(&path, &stat(old)).is_some());
        assert!(
            cache.lookup(&path, &stat(old + 1)).is_none(),
            "any change means read again"
        );

        cache.record(path.clone(), stat(now_ns - 1_000_000), content(), now);
        assert!(
            cache.lookup(&path, &stat(now_ns - 1_000_000)).is_none(),
            "a file changed just before it was read is read again"
        );
    }
}
