//! A snapshot's manifest: what the workspace held, and where each piece of content is stored.
//! See `docs/FORMAT.md`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::id::Hash;

/// The store format this gitkit writes; it reads this one and every older one.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    #[serde(flatten)]
    pub summary: Summary,
    pub entries: Vec<Entry>,
}

/// Format 2's snapshot object: what `gitkit snapshots` lists, and the hash of the root tree
/// (see `tree.rs`). A few hundred bytes, however large the workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotObject {
    pub version: u32,
    #[serde(flatten)]
    pub summary: Summary,
    pub tree: String,
}

/// Only the version of a snapshot object or manifest, read before anything else of it.
#[derive(Deserialize)]
pub struct Versioned {
    pub version: u32,
}

/// What `gitkit snapshots` lists about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub id: String,
    pub workspace: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub host: String,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// Regular files, symbolic links included.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: RelPath,
    #[serde(flatten)]
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Kind {
    File {
        /// Permission bits (`0o644`, `0o755`, ...).
        mode: u32,
        size: u64,
        /// BLAKE3 of the whole content.
        hash: Hash,
        /// Modification time, nanoseconds since the Unix epoch.
        mtime_ns: i64,
        /// The content's pieces in order: one for a small file, one per chunk for a large one.
        blobs: Vec<BlobRef>,
    },
    Symlink {
        target: RelPath,
    },
    Dir {
        mode: u32,
    },
}

/// A stored piece of content: `len` bytes at `offset` in pack `pack`, whose content has
/// BLAKE3 `hash`. `raw_len` is the content's length when the stored bytes are compressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub hash: Hash,
    pub pack: Hash,
    pub offset: u64,
    pub len: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_len: Option<u64>,
}

impl BlobRef {
    /// How many bytes of the file this blob holds.
    pub fn content_len(&self) -> u64 {
        self.raw_len.unwrap_or(self.len)
    }
}

/// A path relative to the workspace, as bytes: any file name a Unix file system allows.
/// Serialized as a string where it is UTF-8, else as `{"hex": "..."}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(pub Vec<u8>);

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.0))
    }
}

impl RelPath {
    pub fn as_path(&self) -> &std::path::Path {
        use std::os::unix::ffi::OsStrExt;
        std::path::Path::new(std::ffi::OsStr::from_bytes(&self.0))
    }

    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == b'/')
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RelPathRepr {
    Text(String),
    Bytes { hex: String },
}

impl Serialize for RelPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => RelPathRepr::Text(text.to_string()),
            Err(_) => RelPathRepr::Bytes {
                hex: hex::encode(&self.0),
            },
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match RelPathRepr::deserialize(deserializer)? {
            RelPathRepr::Text(text) => Ok(RelPath(text.into_bytes())),
            RelPathRepr::Bytes { hex } => hex::decode(hex)
                .map(RelPath)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("the manifest names an unsafe path {0:?} (absolute, empty, `.` or `..`)")]
    UnsafePath(RelPath),
    #[error("the manifest names {0:?} twice")]
    Duplicate(RelPath),
    #[error("the manifest puts entries under {0:?}, which is not a folder")]
    ThroughNonDirectory(RelPath),
    #[error("the manifest's blobs for {0:?} do not add up to its size")]
    BadBlobs(RelPath),
    #[error("the manifest's hash for {0:?} disagrees with its only blob's")]
    HashMismatch(RelPath),
    #[error("the manifest places two different blobs at overlapping bytes of pack {0}")]
    Overlap(String),
    #[error("the manifest names a bad link target for {0:?}")]
    BadTarget(RelPath),
    #[error("the manifest is for snapshot `{found}`, not `{expected}`")]
    WrongSnapshot { expected: String, found: String },
    #[error("manifest format {0} is newer than this gitkit understands (format {FORMAT_VERSION})")]
    Version(u32),
}

impl Manifest {
    /// Every folder the entries need, once each, parents before their children: the folders
    /// the entries lie in and the `dir` entries themselves. Each entry costs a look-up of its
    /// parent; a chain of folders is walked once however many entries share it.
    pub fn folders(&self) -> Vec<&[u8]> {
        let mut seen: HashSet<&[u8]> = HashSet::new();
        let mut order = Vec::new();
        let mut chain = Vec::new();
        for entry in &self.entries {
            let mut folder = match entry.kind {
                Kind::Dir { .. } => Some(entry.path.0.as_slice()),
                _ => parent(&entry.path.0),
            };
            while let Some(f) = folder.filter(|f| !seen.contains(f)) {
                chain.push(f);
                folder = parent(f);
            }
            for f in chain.drain(..).rev() {
                seen.insert(f);
                order.push(f);
            }
        }
        order
    }
}

/// `a/b` for `a/b/c`; `None` at the top.
fn parent(path: &[u8]) -> Option<&[u8]> {
    path.iter()
        .rposition(|&b| b == b'/')
        .map(|end| &path[..end])
}

/// No pack is larger than this; a place past it is not believed.
pub const MAX_PACK_LEN: u64 = 1 << 30;

impl Summary {
    /// Checks that a manifest read from `workspace/id` says it is that snapshot.
    pub fn check(&self, workspace: &str, id: &str) -> Result<(), ManifestError> {
        if self.id != id || self.workspace != workspace {
            return Err(ManifestError::WrongSnapshot {
                expected: format!("{workspace}/{id}"),
                found: format!("{}/{}", self.workspace, self.id)
                    .escape_debug()
                    .to_string(),
            });
        }
        Ok(())
    }
}

impl Manifest {
    /// Checks everything restore relies on before it writes a single file: every path relative
    /// and clean, none twice, none below a symbolic link or a file; every hash and pack id well
    /// formed; blobs that add up to their file, with checked arithmetic, and never two different
    /// blobs claiming the same bytes of a pack.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.version > FORMAT_VERSION {
            return Err(ManifestError::Version(self.version));
        }
        let mut places: HashMap<Hash, Vec<&BlobRef>> = HashMap::new();
        let mut seen = HashSet::new();
        let mut non_dirs = HashSet::new();
        for entry in &self.entries {
            let path = &entry.path;
            let unsafe_component =
                |c: &[u8]| c.is_empty() || c == b"." || c == b".." || c.contains(&0);
            if path.0.is_empty() || path.components().any(unsafe_component) {
                return Err(ManifestError::UnsafePath(path.clone()));
            }
            if !seen.insert(path.0.as_slice()) {
                return Err(ManifestError::Duplicate(path.clone()));
            }
            if !matches!(entry.kind, Kind::Dir { .. }) {
                non_dirs.insert(path.0.as_slice());
            }
            match &entry.kind {
                Kind::File {
                    size, blobs, hash, ..
                } => {
                    check_blobs(path, *size, hash, blobs)?;
                    for blob in blobs {
                        places.entry(blob.pack).or_default().push(blob);
                    }
                }
                Kind::Symlink { target } => {
                    if target.0.is_empty() || target.0.contains(&0) {
                        return Err(ManifestError::BadTarget(path.clone()));
                    }
                }
                Kind::Dir { .. } => {}
            }
        }
        for (pack, mut blobs) in places {
            blobs.sort_by_key(|b| (b.offset, b.len));
            blobs.dedup_by(|a, b| a == b);
            for pair in blobs.windows(2) {
                // Sorted by offset: a blob must end before the next one starts.
                if pair[0].offset + pair[0].len > pair[1].offset {
                    return Err(ManifestError::Overlap(pack.to_string()));
                }
            }
        }
        if let Some(folder) = self.folders().into_iter().find(|f| non_dirs.contains(f)) {
            return Err(ManifestError::ThroughNonDirectory(RelPath(folder.to_vec())));
        }
        Ok(())
    }
}

/// A file's blobs: well-formed ids, places inside a pack, lengths that add up to the size
/// without overflow, and a file of one blob (or none) whose hash is that blob's.
fn check_blobs(
    path: &RelPath,
    size: u64,
    hash: &Hash,
    blobs: &[BlobRef],
) -> Result<(), ManifestError> {
    let mut total = 0u64;
    for blob in blobs {
        // Every blob holds at least one byte (an empty file has none): a blob of no bytes
        // could share a place with another and dodge the overlap check.
        let end = blob.offset.checked_add(blob.len);
        let bad_raw_len = blob
            .raw_len
            .is_some_and(|raw| raw == 0 || raw > super::pack::MAX_BLOB_LEN);
        if blob.len == 0 || end.is_none_or(|end| end > MAX_PACK_LEN) || bad_raw_len {
            return Err(ManifestError::BadBlobs(path.clone()));
        }
        total = total
            .checked_add(blob.content_len())
            .ok_or_else(|| ManifestError::BadBlobs(path.clone()))?;
    }
    if total != size {
        return Err(ManifestError::BadBlobs(path.clone()));
    }
    let whole = match blobs {
        [] => Hash::of(b""),
        [only] => only.hash,
        _ => return Ok(()), // hashed whole again when restored
    };
    if whole != *hash {
        return Err(ManifestError::HashMismatch(path.clone()));
    }
    Ok(())
}

/// A manifest of snapshot `id` of workspace `ws` holding `entries`, for unit tests.
#[cfg(test)]
pub(crate) fn test_manifest(entries: Vec<Entry>) -> Manifest {
    Manifest {
        version: FORMAT_VERSION,
        summary: Summary {
            id: "id".into(),
            workspace: "ws".into(),
            time: "2026-11-28T00:00:00Z".into(),
            host: "h".into(),
            commit: None,
            branch: None,
            files: 0,
            bytes: 0,
        },
        entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_manifest as manifest;

    fn file(path: &str) -> Entry {
        Entry {
            path: RelPath(path.as_bytes().to_vec()),
            kind: Kind::File {
                mode: 0o644,
                size: 0,
                hash: Hash::of(b""),
                mtime_ns: 0,
                blobs: vec![],
            },
        }
    }

    /// A file of one blob each, with the hash, pack and place given.
    fn stored(path: &str, hash: Hash, blob: BlobRef) -> Entry {
        Entry {
            path: RelPath(path.as_bytes().to_vec()),
            kind: Kind::File {
                mode: 0o644,
                size: blob.len,
                hash,
                mtime_ns: 0,
                blobs: vec![blob],
            },
        }
    }

    fn blob(hash: Hash, offset: u64, len: u64) -> BlobRef {
        BlobRef {
            hash,
            pack: Hash([0xcc; 32]),
            offset,
            len,
            raw_len: None,
        }
    }

    /// Guards the hash-check bypass: a second file naming the first one's place with another
    /// hash got the first file's bytes, and a one-blob file's own hash was never checked.
    #[test]
    fn refuses_blobs_that_would_dodge_the_hash_check() {
        let (a, b) = (Hash([0xaa; 32]), Hash([0xbb; 32]));
        assert_eq!(
            manifest(vec![
                stored("x", a, blob(a, 0, 5)),
                stored("y", a, blob(a, 0, 5))
            ])
            .validate(),
            Ok(()),
            "the same blob twice is fine"
        );
        assert!(matches!(
            manifest(vec![
                stored("x", a, blob(a, 0, 5)),
                stored("y", b, blob(b, 0, 5))
            ])
            .validate(),
            Err(ManifestError::Overlap(_))
        ));
        assert!(matches!(
            manifest(vec![
                stored("x", a, blob(a, 0, 5)),
                stored("y", b, blob(b, 4, 5))
            ])
            .validate(),
            Err(ManifestError::Overlap(_))
        ));
        assert!(matches!(
            manifest(vec![stored("x", b, blob(a, 0, 5))]).validate(),
            Err(ManifestError::HashMismatch(_))
        ));
        let json = serde_json::to_value(stored("x", a, blob(a, 0, 5))).expect("serializes");
        let long = "A".repeat(64);
        for (field, bad) in [
            ("hash", "../../etc/hostname"),
            ("pack", "a"),
            ("pack", &long),
        ] {
            let mut entry = json.clone();
            match field {
                "hash" => entry["hash"] = bad.into(),
                _ => entry["blobs"][0]["pack"] = bad.into(),
            }
            assert!(
                serde_json::from_value::<Entry>(entry).is_err(),
                "a {field} of {bad:?} is not read"
            );
        }
        assert!(matches!(
            manifest(vec![stored("x", a, blob(a, u64::MAX, 5))]).validate(),
            Err(ManifestError::BadBlobs(_))
        ));
        let empty = Hash::of(b"");
        assert!(
            matches!(
                manifest(vec![
                    stored("x", a, blob(a, 0, 5)),
                    stored("z", empty, blob(empty, 0, 0))
                ])
                .validate(),
                Err(ManifestError::BadBlobs(_))
            ),
            "a blob of no bytes at another blob's place"
        );
    }

    fn symlink(path: &str, target: &str) -> Entry {
        Entry {
            path: RelPath(path.as_bytes().to_vec()),
            kind: Kind::Symlink {
                target: RelPath(target.as_bytes().to_vec()),
            },
        }
    }

    #[test]
    fn refuses_paths_that_escape_the_target() {
        for path in ["../x", "/etc/passwd", "a/../../x", "a//b", "./a", "", "a/"] {
            assert!(
                matches!(
                    manifest(vec![file(path)]).validate(),
                    Err(ManifestError::UnsafePath(_))
                ),
                "{path:?}"
            );
        }
    }

    #[test]
    fn refuses_duplicates_and_paths_through_links_or_files() {
        assert!(matches!(
            manifest(vec![file("a"), file("a")]).validate(),
            Err(ManifestError::Duplicate(_))
        ));
        assert!(matches!(
            manifest(vec![symlink("link", "/etc"), file("link/passwd")]).validate(),
            Err(ManifestError::ThroughNonDirectory(_))
        ));
        assert!(matches!(
            manifest(vec![file("a"), file("a/b")]).validate(),
            Err(ManifestError::ThroughNonDirectory(_))
        ));
        assert_eq!(
            manifest(vec![file("a/b"), symlink("c", "../../etc")]).validate(),
            Ok(())
        );
    }

    #[test]
    fn non_utf8_paths_round_trip() {
        let entry = file("x");
        let entry = Entry {
            path: RelPath(b"caf\xe9 \n.txt".to_vec()),
            ..entry
        };
        let json = serde_json::to_string(&entry).expect("serialize");
        assert!(
            json.contains(r#""path":{"hex":"636166e9200a2e747874"}"#),
            "{json}"
        );
        let back: Entry = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, entry);
    }
}
