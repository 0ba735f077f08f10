//! A snapshot's manifest: what the workspace held, and where each piece of content is stored.
//! See `docs/FORMAT.md`.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    #[serde(flatten)]
    pub summary: Summary,
    pub entries: Vec<Entry>,
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
        /// BLAKE3 of the whole content, hex.
        hash: String,
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

/// A stored piece of content: `len` bytes at `offset` in pack `pack`, with BLAKE3 `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub hash: String,
    pub pack: String,
    pub offset: u64,
    pub len: u64,
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

    /// Every proper ancestor: `a/b/c` gives `a` and `a/b`.
    pub fn ancestors(&self) -> impl Iterator<Item = &[u8]> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| &self.0[..i])
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
    #[error("the manifest puts {path:?} under {parent:?}, which is not a folder")]
    ThroughNonDirectory { path: RelPath, parent: RelPath },
    #[error("the manifest's blobs for {0:?} do not add up to its size")]
    BadBlobs(RelPath),
    #[error("manifest format {0} is newer than this gitkit understands (format {FORMAT_VERSION})")]
    Version(u32),
}

impl Manifest {
    /// Checks everything restore relies on before it writes a single file: every path relative
    /// and clean, none twice, none below a symbolic link or a file, blobs consistent.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.version > FORMAT_VERSION {
            return Err(ManifestError::Version(self.version));
        }
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
            if let Kind::File { size, blobs, .. } = &entry.kind
                && blobs.iter().map(|b| b.len).sum::<u64>() != *size
            {
                return Err(ManifestError::BadBlobs(path.clone()));
            }
        }
        for entry in &self.entries {
            if let Some(parent) = entry.path.ancestors().find(|a| non_dirs.contains(a)) {
                return Err(ManifestError::ThroughNonDirectory {
                    path: entry.path.clone(),
                    parent: RelPath(parent.to_vec()),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(entries: Vec<Entry>) -> Manifest {
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

    fn file(path: &str) -> Entry {
        Entry {
            path: RelPath(path.as_bytes().to_vec()),
            kind: Kind::File {
                mode: 0o644,
                size: 0,
                hash: String::new(),
                mtime_ns: 0,
                blobs: vec![],
            },
        }
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
            Err(ManifestError::ThroughNonDirectory { .. })
        ));
        assert!(matches!(
            manifest(vec![file("a"), file("a/b")]).validate(),
            Err(ManifestError::ThroughNonDirectory { .. })
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
