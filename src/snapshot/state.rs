//! What this repository last snapshotted to each store, so that an unchanged workspace does not
//! make a new snapshot.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::Summary;
use super::manifest::{Entry, Kind};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Last {
    /// [`digest`] of the entries that snapshot held.
    pub digest: String,
    pub summary: Summary,
}

impl Last {
    fn path(state_dir: &Path, store_name: &str) -> PathBuf {
        let tag = &blake3::hash(store_name.as_bytes()).to_hex()[..16];
        state_dir.join(format!("last-{tag}.json"))
    }

    pub fn load(state_dir: &Path, store_name: &str) -> Option<Self> {
        let data = std::fs::read(Self::path(state_dir, store_name)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    pub fn save(&self, state_dir: &Path, store_name: &str) -> std::io::Result<()> {
        let data = serde_json::to_vec(self).expect("serializes");
        crate::fs::write_atomically(&Self::path(state_dir, store_name), &data)
    }
}

/// A hash of what the entries hold: paths, kinds, modes, content and link targets. File times
/// are left out: touching a file without changing it is not a change worth a snapshot.
pub fn digest(entries: &[Entry]) -> String {
    let mut hasher = blake3::Hasher::new();
    for entry in entries {
        let mut entry = entry.clone();
        if let Kind::File { mtime_ns, .. } = &mut entry.kind {
            *mtime_ns = 0;
        }
        hasher.update(&serde_json::to_vec(&entry).expect("serializes"));
        hasher.update(b"\n");
    }
    hasher.finalize().to_hex().to_string()
}
