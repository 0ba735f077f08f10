//! Which blobs a store holds, from its pack index objects, cached locally and checked against
//! the store on every run that writes.
//!
//! Nothing read from the store is believed as it is. Each run that may write lists `index/` and
//! `data/`: a pack whose index object or data is gone is forgotten (a bucket emptied, a pack
//! pruned), and a new index object is kept only when its name is a pack id, it names that pack,
//! its blobs lie inside the pack's listed size, one after another. A pack written by another
//! machine is downloaded and hashed before a snapshot relies on it ([`BlobIndex::verify`]); a
//! pack that fails is never used again from this machine.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::id::is_hash;
use super::manifest::{BlobRef, MAX_PACK_LEN};
use super::pack::{PackChecker, PackIndex, data_key, index_key};
use crate::store::{Store, StoreError};

const FETCH_CONCURRENCY: usize = 16;
const VERIFY_CONCURRENCY: usize = 4;

#[derive(Debug, Default)]
pub struct BlobIndex {
    packs: Vec<PackIndex>,
    known_packs: HashSet<String>,
    blobs: HashMap<String, BlobRef>,
    /// Packs whose bytes were seen to hold what their index says: written here, or checked.
    verified: HashSet<String>,
    /// Packs that failed a check: never believed again.
    refused: HashSet<String>,
    /// Packs that hold a blob another pack holds too: which of the two is believed depends on
    /// which was seen first, unless they are checked ([`BlobIndex::settle`]).
    ambiguous: HashSet<String>,
    /// Changed since it was loaded.
    dirty: bool,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    packs: Vec<PackIndex>,
    #[serde(default)]
    verified: Vec<String>,
    #[serde(default)]
    refused: Vec<String>,
}

/// What a refresh found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    pub fetched: usize,
    /// Known packs the store no longer holds.
    pub forgotten: usize,
    /// Index objects that were not believed.
    pub refused: usize,
}

impl BlobIndex {
    /// Where the local copy for `store` lives inside `state_dir`.
    pub fn cache_path(state_dir: &Path, store_name: &str) -> PathBuf {
        let tag = &blake3::hash(store_name.as_bytes()).to_hex()[..16];
        state_dir.join(format!("index-{tag}.json"))
    }

    /// The local copy, or an empty index when there is none yet. It is only a cache: what it
    /// says is checked against the store before anything relies on it.
    pub fn load(cache: &Path) -> Self {
        let mut index = Self::default();
        let cached: Option<CacheFile> = std::fs::read(cache)
            .ok()
            .and_then(|data| serde_json::from_slice(&data).ok());
        if let Some(cached) = cached {
            index.refused = cached.refused.into_iter().collect();
            for pack in cached.packs {
                if pack.check(&pack.pack, MAX_PACK_LEN).is_ok() {
                    index.add(pack);
                }
            }
            index.verified = cached
                .verified
                .into_iter()
                .filter(|p| index.known_packs.contains(p))
                .collect();
        }
        index.dirty = false;
        index
    }

    /// Writes the local copy if it changed.
    pub fn save(&self, cache: &Path) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let data = serde_json::to_vec(&CacheFile {
            packs: self.packs.clone(),
            verified: self.verified.iter().cloned().collect(),
            refused: self.refused.iter().cloned().collect(),
        })
        .expect("serializes");
        crate::fs::write_cache(cache, &data)
    }

    /// Forgets everything: the store is not the one this copy describes.
    pub fn clear(&mut self) {
        let refused = std::mem::take(&mut self.refused);
        *self = Self {
            refused,
            dirty: true,
            ..Self::default()
        };
    }

    /// Brings the copy in line with the store: forgets packs the store no longer holds, and
    /// adds the index objects it has not seen that pass their checks.
    pub async fn refresh<S: Store>(&mut self, store: &S) -> Result<Refreshed, StoreError> {
        let (indexes, data) = futures::try_join!(store.list("index/"), store.list("data/"))?;
        let sizes: HashMap<&str, u64> = data
            .iter()
            .filter_map(|object| {
                let pack = object.key.rsplit('/').next()?;
                let fits = object.size <= MAX_PACK_LEN;
                (fits && is_hash(pack) && data_key(pack).ok()? == object.key)
                    .then_some((pack, object.size))
            })
            .collect();
        let listed: HashSet<&str> = indexes
            .iter()
            .filter_map(|object| object.key.strip_prefix("index/"))
            .filter(|pack| is_hash(pack) && sizes.contains_key(pack))
            .collect();
        let mut refreshed = Refreshed::default();
        // Gone from the store, or (a local copy tampered with) reaching past the pack's end.
        let gone: HashSet<String> = self
            .packs
            .iter()
            .filter(|pack| {
                !listed.contains(pack.pack.as_str())
                    || pack.check(&pack.pack, sizes[pack.pack.as_str()]).is_err()
            })
            .map(|pack| pack.pack.clone())
            .collect();
        refreshed.forgotten = gone.len();
        self.forget(&gone);

        let missing: Vec<(String, u64)> = listed
            .iter()
            .filter(|pack| !self.known_packs.contains(**pack) && !self.refused.contains(**pack))
            .map(|pack| (pack.to_string(), sizes[pack]))
            .collect();
        let fetched: Vec<Result<PackIndex, String>> = futures::stream::iter(missing)
            .map(|(pack, size)| async move {
                let key = index_key(&pack).expect("listed packs are pack ids");
                let data = store.get(&key).await?;
                let index = serde_json::from_slice::<PackIndex>(&data)
                    .ok()
                    .filter(|index| index.check(&pack, size).is_ok());
                Ok::<_, StoreError>(index.ok_or(pack))
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        for result in fetched {
            match result {
                Ok(pack) => {
                    refreshed.fetched += 1;
                    self.add(pack);
                }
                Err(pack) => {
                    tracing::warn!(pack = %pack, "index object not believed: it does not describe its pack");
                    refreshed.refused += 1;
                    self.refused.insert(pack);
                    self.dirty = true;
                }
            }
        }
        Ok(refreshed)
    }

    /// Downloads each of `packs` not yet verified and checks that its bytes hash to its id and
    /// hold every blob its index names. Those that fail are forgotten and refused from then on;
    /// they are returned.
    pub async fn verify<S: Store>(
        &mut self,
        store: &S,
        packs: HashSet<String>,
    ) -> Result<HashSet<String>, StoreError> {
        let unverified: Vec<PackIndex> = self
            .packs
            .iter()
            .filter(|p| packs.contains(&p.pack) && !self.verified.contains(&p.pack))
            .cloned()
            .collect();
        let checked: Vec<(String, bool)> = futures::stream::iter(unverified)
            .map(|index| async move {
                let good = match stream_matches(store, &index).await {
                    Ok(good) => good,
                    // Gone, or not a file a store could hold: the pack is not there to use.
                    Err(StoreError::NotFound { .. } | StoreError::BadKey { .. }) => false,
                    Err(StoreError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::InvalidData =>
                    {
                        false
                    }
                    Err(e) => return Err(e),
                };
                Ok((index.pack, good))
            })
            .buffer_unordered(VERIFY_CONCURRENCY)
            .try_collect()
            .await?;
        let mut bad = HashSet::new();
        for (pack, good) in checked {
            self.dirty = true;
            if good {
                self.verified.insert(pack);
            } else {
                tracing::warn!(pack = %pack, "pack does not hold what its index says; not used");
                self.refused.insert(pack.clone());
                bad.insert(pack);
            }
        }
        self.forget(&bad);
        Ok(bad)
    }

    /// Checks every pack that holds a blob some other pack holds too, so that a made-up index
    /// object claiming content it does not have cannot stand in for the pack that has it.
    /// Honest stores rarely have any (two machines uploading the same file at once).
    pub async fn settle<S: Store>(&mut self, store: &S) -> Result<(), StoreError> {
        let ambiguous = std::mem::take(&mut self.ambiguous);
        self.verify(store, ambiguous).await?;
        Ok(())
    }

    /// Adds a pack this machine wrote: its content is known to be what its index says.
    pub fn add_written(&mut self, pack: PackIndex) {
        self.verified.insert(pack.pack.clone());
        self.add(pack);
    }

    fn add(&mut self, pack: PackIndex) {
        if !self.known_packs.insert(pack.pack.clone()) {
            return;
        }
        for blob in &pack.blobs {
            if let Some(known) = self.blobs.get(&blob.hash)
                && known.pack != pack.pack
            {
                self.ambiguous.insert(known.pack.clone());
                self.ambiguous.insert(pack.pack.clone());
            }
            self.blobs
                .entry(blob.hash.clone())
                .or_insert_with(|| BlobRef {
                    hash: blob.hash.clone(),
                    pack: pack.pack.clone(),
                    offset: blob.offset,
                    len: blob.len,
                    raw_len: blob.raw_len,
                });
        }
        self.packs.push(pack);
        self.dirty = true;
    }

    fn forget(&mut self, gone: &HashSet<String>) {
        if gone.is_empty() {
            return;
        }
        let packs = std::mem::take(&mut self.packs);
        let (verified, refused) = (
            std::mem::take(&mut self.verified),
            std::mem::take(&mut self.refused),
        );
        self.clear();
        self.refused = refused;
        for pack in packs.into_iter().filter(|p| !gone.contains(&p.pack)) {
            self.add(pack);
        }
        self.verified = verified
            .into_iter()
            .filter(|p| self.known_packs.contains(p))
            .collect();
        self.dirty = true;
    }

    /// Whether `pack` was written here or checked.
    pub fn is_verified(&self, pack: &str) -> bool {
        self.verified.contains(pack)
    }

    pub fn locate(&self, hash: &str) -> Option<&BlobRef> {
        self.blobs.get(hash)
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.blobs.contains_key(hash)
    }

    /// The index objects of the packs believed.
    pub fn packs(&self) -> &[PackIndex] {
        &self.packs
    }
}

/// Streams pack `index.pack` from the store and checks it against its index.
async fn stream_matches<S: Store>(store: &S, index: &PackIndex) -> Result<bool, StoreError> {
    let key = data_key(&index.pack).expect("known packs are pack ids");
    let mut body = store.get_stream(&key).await?;
    let mut checker = PackChecker::new(index);
    while let Some(piece) = body.try_next().await? {
        checker.update(&piece);
    }
    Ok(checker.finish())
}

#[cfg(test)]
mod tests {
    use crate::snapshot::pack::Packer;

    #[test]
    fn a_pack_that_does_not_hold_its_blobs_is_caught() {
        let mut packer = Packer::default();
        let hello = blake3::hash(b"hello").to_hex().to_string();
        packer.add(hello.clone(), b"hello");
        let pack = packer.seal().expect("a pack");
        assert!(pack.index.matches(&pack.data));
        assert_eq!(pack.index.check(&pack.id, pack.data.len() as u64), Ok(()));

        let mut lying = pack.index.clone();
        lying.blobs[0].hash = blake3::hash(b"other").to_hex().to_string();
        assert!(!lying.matches(&pack.data), "a blob that is not in the pack");
        assert!(
            pack.index.check(&"0".repeat(64), 5).is_err(),
            "an index object naming another pack"
        );
        assert!(
            pack.index.check(&pack.id, 4).is_err(),
            "past the pack's end"
        );
    }
}
