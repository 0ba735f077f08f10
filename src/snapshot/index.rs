//! Which blobs a store already holds, from its pack index objects, cached locally.
//!
//! Index objects never change once written, so the local copy only ever grows: each run lists
//! `index/` and fetches the ones it has not seen, whichever machine or workspace wrote them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::manifest::BlobRef;
use super::pack::PackIndex;
use crate::store::{Store, StoreError};

const FETCH_CONCURRENCY: usize = 16;

#[derive(Debug, Default)]
pub struct BlobIndex {
    packs: Vec<PackIndex>,
    known_packs: HashSet<String>,
    blobs: HashMap<String, BlobRef>,
    /// Packs added since it was loaded.
    dirty: bool,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    packs: Vec<PackIndex>,
}

impl BlobIndex {
    /// Where the local copy for `store` lives inside `state_dir`.
    pub fn cache_path(state_dir: &Path, store_name: &str) -> PathBuf {
        let tag = &blake3::hash(store_name.as_bytes()).to_hex()[..16];
        state_dir.join(format!("index-{tag}.json"))
    }

    /// The local copy, or an empty index when there is none yet.
    pub fn load(cache: &Path) -> Self {
        let mut index = Self::default();
        let cached: Option<CacheFile> = std::fs::read(cache)
            .ok()
            .and_then(|data| serde_json::from_slice(&data).ok());
        for pack in cached.map(|c| c.packs).unwrap_or_default() {
            index.add(pack);
        }
        index
    }

    pub fn save(&self, cache: &Path) -> std::io::Result<()> {
        let data = serde_json::to_vec(&CacheFile {
            packs: self.packs.clone(),
        })
        .expect("serializes");
        crate::fs::write_atomically(cache, &data)
    }

    /// Adds the index objects in `store` that are not known yet.
    pub async fn refresh<S: Store>(&mut self, store: &S) -> Result<usize, StoreError> {
        let keys = store.list("index/").await?;
        let missing: Vec<String> = keys
            .into_iter()
            .filter(|key| {
                let pack = key.trim_start_matches("index/");
                !pack.contains('/') && !self.known_packs.contains(pack)
            })
            .collect();
        let fetched: Vec<PackIndex> = futures::stream::iter(missing)
            .map(|key| {
                let store = store.clone();
                async move {
                    let data = store.get(&key).await?;
                    Ok::<_, StoreError>(serde_json::from_slice::<PackIndex>(&data).ok())
                }
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .collect();
        let count = fetched.len();
        for pack in fetched {
            self.add(pack);
        }
        Ok(count)
    }

    pub fn add(&mut self, pack: PackIndex) {
        if !self.known_packs.insert(pack.pack.clone()) {
            return;
        }
        for blob in &pack.blobs {
            self.blobs
                .entry(blob.hash.clone())
                .or_insert_with(|| BlobRef {
                    hash: blob.hash.clone(),
                    pack: pack.pack.clone(),
                    offset: blob.offset,
                    len: blob.len,
                });
        }
        self.packs.push(pack);
        self.dirty = true;
    }

    pub fn locate(&self, hash: &str) -> Option<&BlobRef> {
        self.blobs.get(hash)
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.blobs.contains_key(hash)
    }
}
