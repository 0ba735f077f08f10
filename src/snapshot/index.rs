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
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use super::binary;
use super::id::{Hash, is_hash};
use super::manifest::{BlobRef, MAX_PACK_LEN};
use super::pack::{PackChecker, PackIndex, Packed, data_key, index_key};

/// Where `gitkit prune` marks packs it means to delete (`deleting/<pack-id>`, empty objects):
/// no writer reuses what they hold; readers use them only for blobs no other pack has.
pub const MARKS: &str = "deleting/";
/// Where `gitkit prune` folds many packs' index objects into one (`indexes/<hash>`, the hash
/// of the object's bytes).
pub const INDEX_SETS: &str = "indexes/";

/// An index set: the index objects of many packs in one object.
#[derive(Debug, Serialize, Deserialize)]
pub struct IndexSet {
    pub packs: Vec<PackIndex>,
}

/// The key of the index set whose bytes are `data`.
pub fn index_set_key(data: &[u8]) -> String {
    format!("{INDEX_SETS}{}", blake3::hash(data).to_hex())
}

/// The packs a listing of `data/` shows, by id, with their sizes: only keys that are exactly
/// where gitkit puts a pack (`data/<aa>/<pack-id>`); anything else there is not a pack.
pub fn pack_sizes(data: &[crate::store::Object]) -> HashMap<&str, u64> {
    data.iter()
        .filter_map(|object| {
            let pack = object.key.rsplit('/').next()?;
            (is_hash(pack) && data_key(pack).ok()? == object.key).then_some((pack, object.size))
        })
        .collect()
}

/// The key of pack `pack`'s deletion mark.
pub fn mark_key(pack: &str) -> Result<String, super::id::IdError> {
    super::id::check_hash(pack)?;
    Ok(format!("{MARKS}{pack}"))
}
use crate::store::{Store, StoreError};

const FETCH_CONCURRENCY: usize = 16;
const VERIFY_CONCURRENCY: usize = 4;
/// Listings a refresh makes at most when what it listed keeps vanishing before it is read.
const REFRESH_ROUNDS: usize = 3;

#[derive(Debug, Default)]
pub struct BlobIndex {
    packs: Vec<PackIndex>,
    known_packs: HashSet<String>,
    /// Where each blob is: a pack (its place in `packs`) and the blob's place in its list,
    /// found by the blob's hash, which is read from there rather than held twice (8 bytes a
    /// blob and the table's own, where a map from hash to place takes 40).
    blobs: HashTable<Place>,
    /// Packs whose bytes were seen to hold what their index says: written here, or checked.
    verified: HashSet<String>,
    /// Packs that failed a check: never believed again.
    refused: HashSet<String>,
    /// Packs marked for deletion by a prune: not reused, read only as a last resort.
    marked: HashSet<String>,
    /// Index sets already read.
    sets: HashSet<String>,
    /// Packs an index set describes (they may have no index object of their own).
    in_sets: HashSet<String>,
    /// Packs that hold a blob another pack holds too: which of the two is believed depends on
    /// which was seen first, unless they are checked ([`BlobIndex::settle`]).
    ambiguous: HashSet<String>,
    /// Changed since it was loaded.
    dirty: bool,
}

/// A blob's place: which of the known packs, and which of its blobs.
#[derive(Debug, Clone, Copy)]
struct Place {
    pack: u32,
    blob: u32,
}

impl Place {
    fn hash(self, packs: &[PackIndex]) -> &Hash {
        &packs[self.pack as usize].blobs[self.blob as usize].hash
    }
}

/// Where a blob's hash goes in [`BlobIndex::blobs`]: its first bytes, already uniform.
fn bucket(hash: &Hash) -> u64 {
    u64::from_le_bytes(hash.0[..8].try_into().expect("8 bytes"))
}

/// The local copy's first bytes (see [`BlobIndex::save`] for the rest).
const CACHE_MAGIC: &[u8; 16] = b"gitkit-index\x00\x00\x00\x01";
/// More packs, or more blobs in one pack, than a cache file is believed to list.
const MAX_CACHED: usize = 1 << 24;

/// What a local copy holds.
#[derive(Default)]
struct Cached {
    packs: Vec<PackIndex>,
    verified: Vec<String>,
    refused: Vec<String>,
    marked: Vec<String>,
    sets: Vec<String>,
    in_sets: Vec<String>,
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
        state_dir.join(format!("index-{tag}.bin"))
    }

    /// The local copy, or an empty index when there is none yet. It is only a cache: what it
    /// says is checked against the store before anything relies on it.
    pub fn load(cache: &Path) -> Self {
        let mut index = Self::default();
        let cached = crate::fs::open_own(cache)
            .and_then(|file| read_cache(&mut std::io::BufReader::with_capacity(64 << 10, file)))
            .unwrap_or_default();
        index.refused = cached.refused.into_iter().collect();
        index.marked = cached.marked.into_iter().collect();
        index.sets = cached.sets.into_iter().collect();
        let in_sets: HashSet<String> = cached.in_sets.into_iter().collect();
        // Room for every blob at once: a table that grows as it fills holds two for a moment.
        let blobs = cached.packs.iter().map(|pack| pack.blobs.len()).sum();
        let packs = &index.packs;
        index
            .blobs
            .reserve(blobs, |place| bucket(place.hash(packs)));
        for pack in cached.packs {
            if pack.check(&pack.pack, MAX_PACK_LEN).is_ok() {
                let in_set = in_sets.contains(&pack.pack);
                index.add(pack, in_set);
            }
        }
        index.verified = cached
            .verified
            .into_iter()
            .filter(|p| index.known_packs.contains(p))
            .collect();
        index.dirty = false;
        index
    }

    /// Writes the local copy if it changed: [`CACHE_MAGIC`], the verified, refused, marked
    /// and in-a-set pack ids and the index sets read (each a count and 32-byte hashes), then
    /// the packs, each its id, its blob count and per blob the hash, offset, length and
    /// content length (0: stored as it is). Little-endian counts (u32) and numbers (u64).
    pub fn save(&self, cache: &Path) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        crate::fs::write_cache_with(cache, |out| self.write_cache(out))?;
        // gitkit before the binary copy kept a JSON one beside it.
        let _ = std::fs::remove_file(cache.with_extension("json"));
        Ok(())
    }

    fn write_cache(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(CACHE_MAGIC)?;
        let sets = self
            .sets
            .iter()
            .filter_map(|key| key.strip_prefix(INDEX_SETS));
        let lists: [Vec<&str>; 5] = [
            self.verified.iter().map(String::as_str).collect(),
            self.refused.iter().map(String::as_str).collect(),
            self.marked.iter().map(String::as_str).collect(),
            sets.collect(),
            self.in_sets.iter().map(String::as_str).collect(),
        ];
        for list in lists {
            let hashes: Vec<Hash> = list.iter().filter_map(|id| Hash::parse(id)).collect();
            binary::put_u32(out, hashes.len() as u32)?;
            for hash in hashes {
                out.write_all(&hash.0)?;
            }
        }
        binary::put_u32(out, self.packs.len() as u32)?;
        for pack in &self.packs {
            let id = Hash::parse(&pack.pack).expect("known packs are pack ids");
            out.write_all(&id.0)?;
            binary::put_u32(out, pack.blobs.len() as u32)?;
            for blob in &pack.blobs {
                out.write_all(&blob.hash.0)?;
                binary::put_u64(out, blob.offset)?;
                binary::put_u64(out, blob.len)?;
                binary::put_u64(out, blob.raw_len.unwrap_or(0))?;
            }
        }
        Ok(())
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

    /// Brings the copy in line with the store: forgets packs the store no longer holds, adds
    /// the index objects (and index sets) it has not seen that pass their checks, and learns
    /// which packs a prune marked for deletion.
    ///
    /// A prune folds index objects into an index set while this runs: it writes the set
    /// before it deletes the objects the set covers. So `index/` is listed before `indexes/`
    /// (an object gone from the first listing is in a set the second one shows), and an object
    /// listed but gone when fetched sends the whole refresh round again.
    pub async fn refresh<S: Store>(&mut self, store: &S) -> Result<Refreshed, StoreError> {
        let mut round = 1;
        loop {
            match self.refresh_once(store).await {
                Err(StoreError::NotFound { key, .. }) if round < REFRESH_ROUNDS => {
                    tracing::debug!(key = %key, "listed, then gone: listing again");
                    round += 1;
                }
                done => return done,
            }
        }
    }

    async fn refresh_once<S: Store>(&mut self, store: &S) -> Result<Refreshed, StoreError> {
        let (indexes, data, marks) =
            futures::try_join!(store.list("index/"), store.list("data/"), store.list(MARKS),)?;
        let sets = store.list(INDEX_SETS).await?;
        let mut sizes = pack_sizes(&data);
        sizes.retain(|_, size| *size <= MAX_PACK_LEN);
        let marked: HashSet<String> = marks
            .iter()
            .filter_map(|object| object.key.strip_prefix(MARKS))
            .filter(|pack| is_hash(pack))
            .map(str::to_string)
            .collect();
        if marked != self.marked {
            self.marked = marked;
            self.rebuild();
        }
        let listed: HashSet<&str> = indexes
            .iter()
            .filter_map(|object| object.key.strip_prefix("index/"))
            .filter(|pack| is_hash(pack) && sizes.contains_key(pack))
            .collect();
        let mut refreshed = Refreshed::default();
        // Gone from the store, or (a local copy tampered with) reaching past the pack's end.
        // A pack an index set describes needs no index object of its own.
        let gone: HashSet<String> = self
            .packs
            .iter()
            .filter(|pack| {
                let Some(&size) = sizes.get(pack.pack.as_str()) else {
                    return true;
                };
                let described =
                    listed.contains(pack.pack.as_str()) || self.in_sets.contains(&pack.pack);
                !described || pack.check(&pack.pack, size).is_err()
            })
            .map(|pack| pack.pack.clone())
            .collect();
        refreshed.forgotten = gone.len();
        self.forget(&gone);

        // Index sets not read yet: each is checked by its name (the hash of its bytes), and
        // each pack in it as an index object of its own would be.
        let new_sets: Vec<String> = sets
            .iter()
            .map(|object| object.key.clone())
            .filter(|key| {
                key.strip_prefix(INDEX_SETS).is_some_and(is_hash) && !self.sets.contains(key)
            })
            .collect();
        let read_sets: Vec<(String, Option<IndexSet>)> = futures::stream::iter(new_sets)
            .map(|key| async move {
                let data = store.get(&key).await?;
                let set = (index_set_key(&data) == key)
                    .then(|| serde_json::from_slice::<IndexSet>(&data).ok())
                    .flatten();
                Ok::<_, StoreError>((key, set))
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        for (key, set) in read_sets {
            self.sets.insert(key.clone());
            self.dirty = true;
            let Some(set) = set else {
                tracing::warn!(key = %key, "index set not believed: it does not match its name");
                refreshed.refused += 1;
                continue;
            };
            for pack in set.packs {
                let fits = sizes
                    .get(pack.pack.as_str())
                    .is_some_and(|&size| pack.check(&pack.pack, size).is_ok());
                if fits && !self.refused.contains(&pack.pack) {
                    refreshed.fetched += 1;
                    self.add(pack, true);
                }
            }
        }

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
                    self.add(pack, false);
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
        self.add(pack, false);
    }

    /// Adds a pack's blobs. Where another pack holds a blob too, a pack not marked for
    /// deletion is preferred; between two alike, the first seen, and both are ambiguous.
    fn add(&mut self, pack: PackIndex, in_set: bool) {
        if !self.known_packs.insert(pack.pack.clone()) {
            return;
        }
        if in_set {
            self.in_sets.insert(pack.pack.clone());
        }
        let marked = self.marked.contains(&pack.pack);
        let number = self.packs.len() as u32;
        // Known first, so that the table can read each of its blobs' hashes.
        self.packs.push(pack);
        let packs = &self.packs;
        self.blobs
            .reserve(packs[number as usize].blobs.len(), |place| {
                bucket(place.hash(packs))
            });
        for blob in 0..packs[number as usize].blobs.len() as u32 {
            let place = Place { pack: number, blob };
            let hash = place.hash(packs);
            let is_hash = |known: &Place| known.hash(packs) == hash;
            let Some(known) = self.blobs.find_mut(bucket(hash), is_hash) else {
                self.blobs
                    .insert_unique(bucket(hash), place, |p| bucket(p.hash(packs)));
                continue;
            };
            if known.pack == number {
                continue;
            }
            let known_pack = &packs[known.pack as usize].pack;
            match (self.marked.contains(known_pack), marked) {
                (true, false) => *known = place,
                (false, true) => {}
                _ => {
                    self.ambiguous.insert(known_pack.clone());
                    self.ambiguous.insert(packs[number as usize].pack.clone());
                }
            }
        }
        self.dirty = true;
    }

    fn forget(&mut self, gone: &HashSet<String>) {
        if gone.is_empty() {
            return;
        }
        let packs = std::mem::take(&mut self.packs);
        self.rebuild_from(
            packs
                .into_iter()
                .filter(|p| !gone.contains(&p.pack))
                .collect(),
        );
    }

    /// Places every blob again (after the marks changed).
    fn rebuild(&mut self) {
        let packs = std::mem::take(&mut self.packs);
        self.rebuild_from(packs);
    }

    fn rebuild_from(&mut self, packs: Vec<PackIndex>) {
        let verified = std::mem::take(&mut self.verified);
        let in_sets = std::mem::take(&mut self.in_sets);
        self.known_packs.clear();
        self.blobs.clear();
        self.ambiguous.clear();
        for pack in packs {
            let in_set = in_sets.contains(&pack.pack);
            self.add(pack, in_set);
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

    /// Where blob `hash` is stored, preferring a pack no prune marked for deletion.
    pub fn locate(&self, hash: &Hash) -> Option<BlobRef> {
        let place = self.place(hash)?;
        let pack = &self.packs[place.pack as usize];
        let blob = &pack.blobs[place.blob as usize];
        Some(BlobRef {
            hash: *hash,
            pack: Hash::parse(&pack.pack).expect("known packs are pack ids"),
            offset: blob.offset,
            len: blob.len,
            raw_len: blob.raw_len,
        })
    }

    /// The pack blob `hash` is read from ([`BlobIndex::locate`]'s).
    pub fn pack_of(&self, hash: &Hash) -> Option<&str> {
        let place = self.place(hash)?;
        Some(&self.packs[place.pack as usize].pack)
    }

    /// Whether a snapshot being written may reuse blob `hash`: the store holds it in a pack no
    /// prune marked for deletion (a marked pack may be gone before the snapshot is).
    pub fn contains(&self, hash: &Hash) -> bool {
        self.place(hash)
            .is_some_and(|place| !self.marked.contains(&self.packs[place.pack as usize].pack))
    }

    fn place(&self, hash: &Hash) -> Option<Place> {
        let is_hash = |place: &Place| place.hash(&self.packs) == hash;
        self.blobs.find(bucket(hash), is_hash).copied()
    }

    /// Every pack known, with what it holds.
    pub fn packs(&self) -> &[PackIndex] {
        &self.packs
    }

    pub fn is_marked(&self, pack: &str) -> bool {
        self.marked.contains(pack)
    }

    /// Packs an index set describes.
    pub fn is_in_set(&self, pack: &str) -> bool {
        self.in_sets.contains(pack)
    }
}

/// A local copy as [`BlobIndex::save`] wrote it; an error for anything else.
fn read_cache(input: &mut impl std::io::Read) -> std::io::Result<Cached> {
    binary::check_magic(input, CACHE_MAGIC)?;
    let ids = |input: &mut dyn std::io::Read| -> std::io::Result<Vec<String>> {
        let count = binary::count(input, MAX_CACHED)?;
        (0..count)
            .map(|_| binary::hash(input).map(|hash| hash.to_hex()))
            .collect()
    };
    let verified = ids(input)?;
    let refused = ids(input)?;
    let marked = ids(input)?;
    let sets = ids(input)?
        .into_iter()
        .map(|hash| format!("{INDEX_SETS}{hash}"))
        .collect();
    let in_sets = ids(input)?;
    let count = binary::count(input, MAX_CACHED)?;
    let mut packs = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let pack = binary::hash(input)?.to_hex();
        let count = binary::count(input, MAX_CACHED)?;
        let mut blobs = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            blobs.push(Packed {
                hash: binary::hash(input)?,
                offset: binary::u64(input)?,
                len: binary::u64(input)?,
                raw_len: Some(binary::u64(input)?).filter(|&raw| raw != 0),
            });
        }
        packs.push(PackIndex { pack, blobs });
    }
    Ok(Cached {
        packs,
        verified,
        refused,
        marked,
        sets,
        in_sets,
    })
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
    use crate::snapshot::id::Hash;
    use crate::snapshot::pack::Packer;

    #[test]
    fn a_pack_that_does_not_hold_its_blobs_is_caught() {
        let mut packer = Packer::default();
        packer.add(Hash::of(b"hello"), b"hello");
        let pack = packer.seal().expect("a pack");
        assert!(pack.index.matches(&pack.data));
        assert_eq!(pack.index.check(&pack.id, pack.data.len() as u64), Ok(()));

        let mut lying = pack.index.clone();
        lying.blobs[0].hash = Hash::of(b"other");
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

    #[test]
    fn the_local_copy_is_saved_and_read_back_and_a_damaged_one_is_empty() {
        use super::BlobIndex;
        let mut packer = Packer::default();
        let text = b"print('hello')\n".repeat(100);
        packer.add(Hash::of(b"hello"), b"hello");
        packer.add(Hash::of(&text), &text);
        let pack = packer.seal().expect("a pack");
        let mut index = BlobIndex::default();
        index.add_written(pack.index.clone());
        index.marked.insert("e".repeat(64));
        index.sets.insert(format!("indexes/{}", "f".repeat(64)));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = BlobIndex::cache_path(dir.path(), "store");
        index.save(&path).expect("saved");

        let loaded = BlobIndex::load(&path);
        assert_eq!(loaded.packs(), index.packs());
        for hash in [Hash::of(b"hello"), Hash::of(&text)] {
            assert_eq!(loaded.locate(&hash), index.locate(&hash));
        }
        assert!(loaded.is_verified(&pack.id));
        assert!(loaded.is_marked(&"e".repeat(64)));
        assert_eq!(loaded.sets, index.sets);

        let whole = std::fs::read(&path).expect("read");
        for damaged in [&whole[..whole.len() - 1], &whole[1..], b"{\"packs\": []}"] {
            std::fs::write(&path, damaged).expect("write");
            assert!(BlobIndex::load(&path).packs().is_empty());
        }
    }
}
