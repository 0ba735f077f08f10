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

mod table;

pub use table::Seen;
use table::{Entry, Run, Table};

use super::binary;
use super::id::{Hash, is_hash};
use super::manifest::{BlobRef, MAX_PACK_LEN};
use super::pack::{PackChecker, PackIndex, Packed, data_key, index_key};
use crate::store::{Store, StoreError};

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

const FETCH_CONCURRENCY: usize = 16;
const VERIFY_CONCURRENCY: usize = 4;
/// Listings a refresh makes at most when what it listed keeps vanishing before it is read.
const REFRESH_ROUNDS: usize = 3;

/// Which blobs the store holds and where. The packs are in memory (a few bytes each); the
/// blobs are records in a [`Table`]: the local copy's, read in place, and those learnt since,
/// in memory until there are many.
pub struct BlobIndex {
    /// Every pack added, by number (records name a pack by its number); a pack forgotten
    /// stays, flagged, until the copy is saved again.
    packs: Vec<Pack>,
    /// The numbers of the packs known (not forgotten), by id.
    numbers: HashMap<String, u32>,
    blobs: Table<Record>,
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
    /// Changed since it was loaded.
    dirty: bool,
}

impl Default for BlobIndex {
    fn default() -> Self {
        Self::empty(std::env::temp_dir())
    }
}

impl std::fmt::Debug for BlobIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobIndex")
            .field("packs", &self.numbers.len())
            .field("blobs", &self.blobs.len())
            .finish_non_exhaustive()
    }
}

/// A pack, as the index knows it.
#[derive(Debug)]
struct Pack {
    id: String,
    /// Where its last blob ends: the pack is at least this long.
    end: u64,
    forgotten: bool,
}

/// Where a blob is: a pack (by number) and a place in it. 64 bytes on disk: the hash, the
/// pack number, four zero bytes, then offset, length and content length (0: stored as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    hash: Hash,
    pack: u32,
    offset: u64,
    len: u64,
    raw_len: u64,
}

impl Entry for Record {
    const WIDTH: usize = 64;

    fn hash(&self) -> &Hash {
        &self.hash
    }

    fn put(&self, out: &mut [u8]) {
        out[..32].copy_from_slice(&self.hash.0);
        out[32..36].copy_from_slice(&self.pack.to_le_bytes());
        out[36..40].fill(0);
        out[40..48].copy_from_slice(&self.offset.to_le_bytes());
        out[48..56].copy_from_slice(&self.len.to_le_bytes());
        out[56..64].copy_from_slice(&self.raw_len.to_le_bytes());
    }

    fn get(bytes: &[u8]) -> Self {
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        Self {
            hash: Hash(bytes[..32].try_into().expect("32 bytes")),
            pack: u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes")),
            offset: u64_at(40),
            len: u64_at(48),
            raw_len: u64_at(56),
        }
    }
}

/// The local copy's first bytes (see [`BlobIndex::save`] for the rest).
const CACHE_MAGIC: &[u8; 16] = b"gitkit-index\x00\x00\x00\x03";
/// The same layout as gitkit wrote it before it noted every pack an index set covers: its sets
/// are read again once, so that what they cover is noted, and learnt again if it was forgotten.
const CACHE_MAGIC_V2: &[u8; 16] = b"gitkit-index\x00\x00\x00\x02";
/// The local copy's first bytes as gitkit wrote it before the blob records were a table.
const CACHE_MAGIC_V1: &[u8; 16] = b"gitkit-index\x00\x00\x00\x01";
/// More packs than a cache file is believed to list.
const MAX_CACHED: usize = 1 << 24;

/// What a refresh found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    pub fetched: usize,
    /// Known packs the store no longer holds.
    pub forgotten: usize,
    /// Index objects that were not believed.
    pub refused: usize,
}

/// A scan of the index's own files failed (they are this machine's, not the store's).
fn unreadable(e: std::io::Error) -> StoreError {
    StoreError::Local {
        action: "read",
        what: "the local blob index",
        source: e,
    }
}

impl BlobIndex {
    /// An empty index that writes what it cannot hold in memory in `dir`.
    fn empty(dir: PathBuf) -> Self {
        Self {
            packs: Vec::new(),
            numbers: HashMap::new(),
            blobs: Table::new(dir),
            verified: HashSet::new(),
            refused: HashSet::new(),
            marked: HashSet::new(),
            sets: HashSet::new(),
            in_sets: HashSet::new(),
            dirty: false,
        }
    }

    /// Where the local copy for `store` lives inside `state_dir`.
    pub fn cache_path(state_dir: &Path, store_name: &str) -> PathBuf {
        let tag = &blake3::hash(store_name.as_bytes()).to_hex()[..16];
        state_dir.join(format!("index-{tag}.bin"))
    }

    /// The local copy, or an empty index when there is none yet (or it is not one this gitkit
    /// wrote). It is only a cache: what it says is checked against the store before anything
    /// relies on it. Its blob records are read in place, as lookups need them.
    pub fn load(cache: &Path) -> Self {
        let dir = cache
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map_or_else(std::env::temp_dir, Path::to_path_buf);
        match Self::read_copy(cache, dir.clone()) {
            Ok(index) => index,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!(error = %e, "local index copy not used");
                }
                Self::empty(dir)
            }
        }
    }

    /// Writes the local copy if it changed: [`CACHE_MAGIC`]; the verified, refused, marked and
    /// in-a-set pack ids and the index sets read (each a count and 32-byte hashes); the packs
    /// (a count, then each one's id and where its last blob ends); the blob records sorted by
    /// hash ([`Record`]), the first eight bytes of the first hash of every 16 records (read as
    /// a big-endian number, written little-endian), and last the number of records
    /// and where they start. Little-endian counts (u32) and numbers (u64). The packs are
    /// numbered again, the forgotten ones and their records left out.
    pub fn save(&mut self, cache: &Path) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        crate::fs::write_cache_with(cache, |out| self.write_cache(out))?;
        // gitkit before the binary copy kept a JSON one beside it.
        let _ = std::fs::remove_file(cache.with_extension("json"));
        // What was saved is read from the copy from now on: nothing more held in memory.
        match Self::read_copy(cache, self.blobs.dir().to_path_buf()) {
            Ok(saved) => *self = saved,
            Err(_) => self.dirty = false,
        }
        Ok(())
    }

    fn write_cache(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = Counted { out, written: 0 };
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
            binary::put_u32(&mut out, hashes.len() as u32)?;
            for hash in hashes {
                out.write_all(&hash.0)?;
            }
        }
        // New numbers: the packs kept, in the order they were added (the first seen of two
        // that hold a blob stays the first).
        let mut renumbered = vec![u32::MAX; self.packs.len()];
        let mut kept = 0u32;
        for (number, pack) in self.packs.iter().enumerate() {
            if !pack.forgotten {
                renumbered[number] = kept;
                kept += 1;
            }
        }
        binary::put_u32(&mut out, kept)?;
        for pack in self.packs.iter().filter(|pack| !pack.forgotten) {
            out.write_all(&Hash::parse(&pack.id).expect("known packs are pack ids").0)?;
            binary::put_u64(&mut out, pack.end)?;
        }
        let start = out.written;
        // Only records that could be believed: a damaged copy's others are not carried on.
        let records = self.blobs.merged().filter_map(|record| match record {
            Ok(record) if self.is_live(&record) => {
                let pack = renumbered[record.pack as usize];
                Some(Ok(Record { pack, ..record }))
            }
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        });
        let (count, fences) = table::write_sorted(&mut out, records)?;
        table::write_fences(&mut out, &fences)?;
        binary::put_u64(&mut out, count)?;
        binary::put_u64(&mut out, start)?;
        Ok(())
    }

    /// The local copy at `cache`, its runs to be written in `dir`.
    fn read_copy(cache: &Path, dir: PathBuf) -> std::io::Result<Self> {
        Self::read_cache(crate::fs::open_own(cache)?, dir)
    }

    /// A local copy as [`BlobIndex::save`] wrote it; an error for anything else.
    fn read_cache(file: std::fs::File, dir: PathBuf) -> std::io::Result<Self> {
        use std::io::{Read, Seek};
        let mut input = std::io::BufReader::with_capacity(64 << 10, &file);
        let magic = binary::bytes::<16>(&mut input)?;
        if ![CACHE_MAGIC, CACHE_MAGIC_V2, CACHE_MAGIC_V1].contains(&&magic) {
            return Err(binary::bad());
        }
        let ids = |input: &mut dyn Read| -> std::io::Result<HashSet<String>> {
            let count = binary::count(input, MAX_CACHED)?;
            (0..count)
                .map(|_| binary::hash(input).map(|hash| hash.to_hex()))
                .collect()
        };
        let mut index = Self::empty(dir.clone());
        index.verified = ids(&mut input)?;
        index.refused = ids(&mut input)?;
        index.marked = ids(&mut input)?;
        index.sets = ids(&mut input)?
            .into_iter()
            .map(|hash| format!("{INDEX_SETS}{hash}"))
            .collect();
        index.in_sets = ids(&mut input)?;
        if &magic != CACHE_MAGIC {
            index.sets.clear();
            index.dirty = true;
        }
        if &magic == CACHE_MAGIC_V1 {
            index.read_v1_packs(&mut input)?;
            return Ok(index);
        }
        let count = binary::count(&mut input, MAX_CACHED)?;
        for number in 0..count {
            let id = binary::hash(&mut input)?.to_hex();
            let end = binary::u64(&mut input)?;
            if end > MAX_PACK_LEN || index.numbers.insert(id.clone(), number as u32).is_some() {
                return Err(binary::bad());
            }
            index.packs.push(Pack {
                id,
                end,
                forgotten: false,
            });
        }
        let start = input.stream_position()?;
        drop(input);
        let len = file.metadata()?.len();
        let mut footer = [0u8; 16];
        let footer_at = len.checked_sub(16).ok_or_else(binary::bad)?;
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut footer, footer_at)?;
        let records = u64::from_le_bytes(footer[..8].try_into().expect("8 bytes"));
        let records_at = u64::from_le_bytes(footer[8..].try_into().expect("8 bytes"));
        let fences = records.div_ceil(table::BLOCK as u64) * 8;
        let expected = records
            .checked_mul(Record::WIDTH as u64)
            .and_then(|bytes| bytes.checked_add(fences))
            .and_then(|bytes| bytes.checked_add(start + 16));
        if records_at != start || expected != Some(len) {
            return Err(binary::bad());
        }
        index.blobs = Table::with_run(dir, Run::open(file, start, records)?);
        index.verified.retain(|p| index.numbers.contains_key(p));
        Ok(index)
    }

    /// The packs of a copy an earlier gitkit wrote ([`CACHE_MAGIC_V1`], the lists as now):
    /// each its id, its blob count (u32) and per blob the hash, offset, length and content
    /// length (u64). Read a pack at a time into the table, and written in the new layout by the
    /// next save, so that an upgrade keeps what was verified.
    fn read_v1_packs(&mut self, input: &mut impl std::io::Read) -> std::io::Result<()> {
        let in_sets = std::mem::take(&mut self.in_sets);
        let count = binary::count(input, MAX_CACHED)?;
        for _ in 0..count {
            let pack = read_pack(input)?;
            if pack.check(&pack.pack, MAX_PACK_LEN).is_ok() {
                let in_set = in_sets.contains(&pack.pack);
                self.add(pack, in_set);
            }
        }
        self.blobs.seal();
        self.verified.retain(|p| self.numbers.contains_key(p));
        self.dirty = true;
        Ok(())
    }

    /// Adds the packs this machine wrote that `log` lists ([`BlobIndex::add_written`]).
    pub fn add_logged(&mut self, log: PackLog) {
        let PackLog { file, held, .. } = log;
        if let Some(file) = file {
            let read = file
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|mut file| {
                    use std::io::Seek;
                    file.rewind()?;
                    let mut input = std::io::BufReader::new(file);
                    loop {
                        match read_pack(&mut input) {
                            Ok(pack) => self.add_own(pack),
                            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                                return Ok(());
                            }
                            Err(e) => return Err(e),
                        }
                    }
                });
            if let Err(e) = read {
                // Only known later: the next listing finds them, as another machine's.
                tracing::warn!(error = %e, "packs written could not all be read back");
            }
        }
        held.into_iter().for_each(|pack| self.add_own(pack));
        self.blobs.seal();
    }

    /// Forgets everything: the store is not the one this copy describes.
    pub fn clear(&mut self) {
        let refused = std::mem::take(&mut self.refused);
        *self = Self {
            refused,
            dirty: true,
            ..Self::empty(self.blobs.dir().to_path_buf())
        };
    }
    /// Brings the copy in line with the store: forgets packs the store no longer holds, adds
    /// the index objects (and index sets) it has not seen that pass their checks, and learns
    /// which packs a prune marked for deletion.
    ///
    /// A prune folds index objects into an index set while this runs: it writes the set
    /// before it deletes the objects the set covers. So `index/` is listed before `indexes/`
    /// (an object gone from the first listing is in a set the second one shows), new sets are
    /// read before a pack without an index object is called gone, and an object listed but
    /// gone when fetched sends the whole refresh round again. `data/` is listed last: a pack a
    /// set or an index object names is uploaded before either, so a set's pack missing from
    /// it is gone for good (and the set need not be read again).
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
        let (indexes, marks) = futures::try_join!(store.list("index/"), store.list(MARKS))?;
        let sets = store.list(INDEX_SETS).await?;
        let data = store.list("data/").await?;
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
            self.dirty = true;
        }
        let listed: HashSet<&str> = indexes
            .iter()
            .filter_map(|object| object.key.strip_prefix("index/"))
            .filter(|pack| is_hash(pack) && sizes.contains_key(pack))
            .collect();
        let mut refreshed = Refreshed::default();
        // Gone from the store, or (a local copy tampered with) reaching past the pack's end.
        let gone = self.known_where(|id, pack| sizes.get(id).is_none_or(|&size| pack.end > size));
        self.forget(&gone);

        // Index sets not read yet, before anything is called undescribed: a prune writes the
        // set that covers a pack before it deletes the pack's index object.
        let listed_sets: HashSet<&str> = sets
            .iter()
            .map(|object| object.key.as_str())
            .filter(|key| key.strip_prefix(INDEX_SETS).is_some_and(is_hash))
            .collect();
        let sets_before = self.sets.len();
        self.sets.retain(|key| listed_sets.contains(key.as_str()));
        self.dirty |= self.sets.len() != sets_before;
        let new_sets: Vec<String> = listed_sets
            .iter()
            .filter(|key| !self.sets.contains(**key))
            .map(|key| key.to_string())
            .collect();
        self.read_sets(store, new_sets, &sizes, &mut refreshed)
            .await?;
        // A pack an index set describes needs no index object of its own; one that neither
        // describes is not believed any more.
        let undescribed =
            self.known_where(|id, _| !listed.contains(id) && !self.in_sets.contains(id));
        self.forget(&undescribed);
        refreshed.forgotten = gone.len() + undescribed.len();

        let missing: Vec<(String, u64)> = listed
            .iter()
            .filter(|pack| !self.numbers.contains_key(**pack) && !self.refused.contains(**pack))
            .map(|pack| (pack.to_string(), sizes[pack]))
            .collect();
        // Each added as it comes: a store's index objects together list every blob it holds.
        let mut fetched = futures::stream::iter(missing)
            .map(|(pack, size)| async move {
                let key = index_key(&pack).expect("listed packs are pack ids");
                let data = store.get(&key).await?;
                let index = serde_json::from_slice::<PackIndex>(&data)
                    .ok()
                    .filter(|index| index.check(&pack, size).is_ok());
                Ok::<_, StoreError>(index.ok_or(pack))
            })
            .buffer_unordered(FETCH_CONCURRENCY);
        while let Some(result) = fetched.try_next().await? {
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
        self.blobs.seal();
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
        let unverified: HashSet<&str> = packs
            .iter()
            .map(String::as_str)
            .filter(|p| self.numbers.contains_key(*p) && !self.verified.contains(*p))
            .collect();
        let unverified = if unverified.is_empty() {
            Vec::new()
        } else {
            self.pack_indexes(|id| unverified.contains(id))
                .map_err(unreadable)?
        };
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
    /// Honest stores have them only until a prune (two machines uploading the same file at
    /// once: prune keeps one copy). Where one of the two is marked for deletion, the other is
    /// read and neither checked.
    pub async fn settle<S: Store>(&mut self, store: &S) -> Result<(), StoreError> {
        let ambiguous = self.ambiguous().map_err(unreadable)?;
        self.verify(store, ambiguous).await?;
        Ok(())
    }

    /// The packs [`BlobIndex::settle`] checks: a scan of every record, in hash order.
    fn ambiguous(&self) -> std::io::Result<HashSet<String>> {
        let mut ambiguous = HashSet::new();
        let mut same: Vec<Record> = Vec::new();
        let mut records = self.blobs.merged();
        loop {
            let record = records.next().transpose()?;
            if let (Some(first), next) = (same.first(), record.as_ref())
                && next.is_none_or(|next| next.hash != first.hash)
            {
                self.note_ambiguous(&same, &mut ambiguous);
                same.clear();
            }
            match record {
                Some(record) if self.is_live(&record) => same.push(record),
                Some(_) => {}
                None => return Ok(ambiguous),
            }
        }
    }

    /// Adds to `ambiguous` the packs of `same` (records of one blob) that are believed alike:
    /// all of them, unless some are marked and some not (the unmarked are read).
    fn note_ambiguous(&self, same: &[Record], ambiguous: &mut HashSet<String>) {
        let packs: HashSet<u32> = same.iter().map(|record| record.pack).collect();
        if packs.len() < 2 {
            return;
        }
        let unmarked: Vec<u32> = packs
            .iter()
            .copied()
            .filter(|&n| !self.is_marked_number(n))
            .collect();
        let alike = match unmarked.len() {
            0 => packs.into_iter().collect(),
            1 => Vec::new(),
            _ => unmarked,
        };
        ambiguous.extend(alike.into_iter().map(|n| self.packs[n as usize].id.clone()));
    }

    /// Adds a pack this machine wrote: its content is known to be what its index says.
    pub fn add_written(&mut self, pack: PackIndex) {
        self.add_own(pack);
        self.blobs.seal();
    }

    /// [`BlobIndex::add_written`], but for the seal.
    fn add_own(&mut self, pack: PackIndex) {
        self.verified.insert(pack.pack.clone());
        self.add(pack, false);
    }

    /// Reads the index sets `keys` and adds each pack in them that the store holds as the set
    /// says. Each set is checked by its name (the hash of its bytes), and each pack in it as an
    /// index object of its own would be.
    async fn read_sets<S: Store>(
        &mut self,
        store: &S,
        keys: Vec<String>,
        sizes: &HashMap<&str, u64>,
        refreshed: &mut Refreshed,
    ) -> Result<(), StoreError> {
        let mut read = futures::stream::iter(keys)
            .map(|key| async move {
                let data = store.get(&key).await?;
                let set = (index_set_key(&data) == key)
                    .then(|| serde_json::from_slice::<IndexSet>(&data).ok())
                    .flatten();
                Ok::<_, StoreError>((key, set))
            })
            .buffer_unordered(FETCH_CONCURRENCY);
        while let Some((key, set)) = read.try_next().await? {
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
                if fits && !self.refused.contains(&pack.pack) && self.add(pack, true) {
                    refreshed.fetched += 1;
                }
            }
        }
        Ok(())
    }

    /// The ids of the packs known that `pick` picks.
    fn known_where(&self, pick: impl Fn(&str, &Pack) -> bool) -> HashSet<String> {
        self.numbers
            .iter()
            .filter(|&(id, &number)| pick(id, &self.packs[number as usize]))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Adds a pack's blobs unless it is known (call `self.blobs.seal()` before the next
    /// lookup); notes that an index set covers it if `in_set`. Whether it was new.
    fn add(&mut self, pack: PackIndex, in_set: bool) -> bool {
        if in_set && !self.in_sets.contains(&pack.pack) {
            self.in_sets.insert(pack.pack.clone());
            self.dirty = true;
        }
        if self.numbers.contains_key(&pack.pack) {
            return false;
        }
        let number = self.packs.len() as u32;
        let end = pack
            .blobs
            .iter()
            .map(|b| b.offset + b.len)
            .max()
            .unwrap_or(0);
        for blob in &pack.blobs {
            self.blobs.push(Record {
                hash: blob.hash,
                pack: number,
                offset: blob.offset,
                len: blob.len,
                raw_len: blob.raw_len.unwrap_or(0),
            });
        }
        self.numbers.insert(pack.pack.clone(), number);
        self.packs.push(Pack {
            id: pack.pack,
            end,
            forgotten: false,
        });
        self.dirty = true;
        true
    }

    fn forget(&mut self, gone: &HashSet<String>) {
        for id in gone {
            if let Some(number) = self.numbers.remove(id) {
                self.packs[number as usize].forgotten = true;
                self.dirty = true;
            }
        }
        self.verified.retain(|p| !gone.contains(p));
        self.in_sets.retain(|p| !gone.contains(p));
    }

    /// Whether pack number `number` is marked for deletion.
    fn is_marked_number(&self, number: u32) -> bool {
        self.marked.contains(&self.packs[number as usize].id)
    }

    /// Whether `record` is a blob of a pack known, not empty, inside where the pack's blobs end.
    fn is_live(&self, record: &Record) -> bool {
        self.packs.get(record.pack as usize).is_some_and(|pack| {
            !pack.forgotten
                && record.len > 0
                && record
                    .offset
                    .checked_add(record.len)
                    .is_some_and(|end| end <= pack.end)
        })
    }

    /// Where blob `hash` is read from: of the packs known to hold it, the first seen that no
    /// prune marked for deletion, or else the first seen.
    fn best(&self, hash: &Hash) -> Option<Record> {
        let mut best: Option<Record> = None;
        let rank = |record: &Record| (self.is_marked_number(record.pack), record.pack);
        let found = self.blobs.find(hash, &mut |record| {
            if self.is_live(&record) && best.is_none_or(|best| rank(&record) < rank(&best)) {
                best = Some(record);
            }
        });
        if let Err(e) = found {
            tracing::warn!(error = %e, "the local blob index could not be read");
            return None;
        }
        best
    }

    /// Whether `pack` was written here or checked.
    pub fn is_verified(&self, pack: &str) -> bool {
        self.verified.contains(pack)
    }

    /// Where blob `hash` is stored, preferring a pack no prune marked for deletion.
    pub fn locate(&self, hash: &Hash) -> Option<BlobRef> {
        let record = self.best(hash)?;
        let pack = &self.packs[record.pack as usize];
        Some(BlobRef {
            hash: *hash,
            pack: Hash::parse(&pack.id).expect("known packs are pack ids"),
            offset: record.offset,
            len: record.len,
            raw_len: Some(record.raw_len).filter(|&raw| raw != 0),
        })
    }

    /// The pack blob `hash` is read from ([`BlobIndex::locate`]'s).
    pub fn pack_of(&self, hash: &Hash) -> Option<&str> {
        let record = self.best(hash)?;
        Some(&self.packs[record.pack as usize].id)
    }

    /// Whether a snapshot being written may reuse blob `hash`: the store holds it in a pack no
    /// prune marked for deletion (a marked pack may be gone before the snapshot is).
    pub fn contains(&self, hash: &Hash) -> bool {
        self.stored_in(hash).is_some()
    }

    /// The pack a snapshot being written reads blob `hash` from, if it may reuse it
    /// ([`BlobIndex::contains`]).
    pub fn stored_in(&self, hash: &Hash) -> Option<&str> {
        let record = self.best(hash)?;
        (!self.is_marked_number(record.pack))
            .then_some(self.packs[record.pack as usize].id.as_str())
    }

    /// Where what does not fit in memory is written.
    pub fn spill_dir(&self) -> &Path {
        self.blobs.dir()
    }

    /// Every pack known, with what it holds, in the order they were added: a scan of every
    /// record.
    pub fn packs(&self) -> Result<Vec<PackIndex>, StoreError> {
        self.pack_indexes(|_| true).map_err(unreadable)
    }

    /// The packs known that `wanted` picks, with what they hold (blobs in pack order).
    fn pack_indexes(&self, wanted: impl Fn(&str) -> bool) -> std::io::Result<Vec<PackIndex>> {
        let mut blobs: HashMap<u32, Vec<Packed>> = self
            .packs
            .iter()
            .enumerate()
            .filter(|(_, pack)| !pack.forgotten && wanted(&pack.id))
            .map(|(number, _)| (number as u32, Vec::new()))
            .collect();
        for record in self.blobs.merged() {
            let record = record?;
            if let Some(list) = blobs.get_mut(&record.pack)
                && self.is_live(&record)
            {
                list.push(Packed {
                    hash: record.hash,
                    offset: record.offset,
                    len: record.len,
                    raw_len: Some(record.raw_len).filter(|&raw| raw != 0),
                });
            }
        }
        let mut packs: Vec<(u32, Vec<Packed>)> = blobs.into_iter().collect();
        packs.sort_unstable_by_key(|(number, _)| *number);
        Ok(packs
            .into_iter()
            .map(|(number, mut blobs)| {
                blobs.sort_unstable_by_key(|blob| blob.offset);
                PackIndex {
                    pack: self.packs[number as usize].id.clone(),
                    blobs,
                }
            })
            .collect())
    }

    pub fn is_marked(&self, pack: &str) -> bool {
        self.marked.contains(pack)
    }
}

/// A pack's index as layout 1 of the local copy kept it, and [`PackLog`] does: its id, its blob
/// count (u32) and per blob the hash, offset, length and content length (u64; 0: stored as
/// it is).
fn read_pack(input: &mut impl std::io::Read) -> std::io::Result<PackIndex> {
    let id = binary::hash(input)?.to_hex();
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
    Ok(PackIndex { pack: id, blobs })
}

fn write_pack(out: &mut impl std::io::Write, pack: &PackIndex) -> std::io::Result<()> {
    let id = Hash::parse(&pack.pack).ok_or_else(binary::bad)?;
    out.write_all(&id.0)?;
    binary::put_u32(out, pack.blobs.len() as u32)?;
    for blob in &pack.blobs {
        out.write_all(&blob.hash.0)?;
        binary::put_u64(out, blob.offset)?;
        binary::put_u64(out, blob.len)?;
        binary::put_u64(out, blob.raw_len.unwrap_or(0))?;
    }
    Ok(())
}

/// The packs a run wrote, kept in an unnamed file until the index takes them
/// ([`BlobIndex::add_logged`]): a first snapshot of a large workspace writes a list of every
/// blob it holds. Where no file can be written, they are held in memory.
pub struct PackLog {
    file: Option<std::io::BufWriter<std::fs::File>>,
    held: Vec<PackIndex>,
    count: usize,
    bytes: u64,
}

impl PackLog {
    /// A log whose file is made in `dir`.
    pub fn new(dir: &Path) -> Self {
        let file = tempfile::tempfile_in(dir)
            .map(std::io::BufWriter::new)
            .map_err(|e| tracing::warn!(error = %e, "packs written are held in memory"))
            .ok();
        Self {
            file,
            held: Vec::new(),
            count: 0,
            bytes: 0,
        }
    }

    pub fn push(&mut self, pack: PackIndex) {
        self.count += 1;
        self.bytes += pack.blobs.iter().map(|blob| blob.len).sum::<u64>();
        match &mut self.file {
            Some(file) => {
                if let Err(e) = write_pack(file, &pack) {
                    // What it held is learnt again from the store by the next listing.
                    tracing::warn!(error = %e, "packs written are held in memory from now on");
                    self.file = None;
                    self.held.push(pack);
                }
            }
            None => self.held.push(pack),
        }
    }

    /// How many packs were logged.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes of their blobs, as stored.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Counts what passes through to `out`.
struct Counted<'a> {
    out: &'a mut dyn std::io::Write,
    written: u64,
}

impl std::io::Write for Counted<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let written = self.out.write(data)?;
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
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
    use std::collections::HashSet;

    use super::{BlobIndex, IndexSet, index_set_key};
    use crate::snapshot::id::Hash;
    use crate::snapshot::pack::{Pack, PackIndex, Packer, data_key, index_key};
    use crate::store::{ByteStream, DirStore, Object, Store, StoreError};

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

    /// A pack uploaded to `store` as a writer uploads it: data, then index object.
    async fn upload(store: &DirStore, content: &[u8]) -> Pack {
        let mut packer = Packer::default();
        packer.add(Hash::of(content), content);
        let pack = packer.seal().expect("a pack");
        let data_key = data_key(&pack.id).expect("key");
        store.put(&data_key, pack.data.clone()).await.expect("put");
        let index_key = index_key(&pack.id).expect("key");
        store
            .put(&index_key, pack.index_bytes())
            .await
            .expect("put");
        pack
    }

    /// What a prune does when it folds `packs`' index objects into an index set: the set is
    /// written, then the index objects are deleted.
    async fn fold(store: &DirStore, packs: &[&Pack], then_delete: bool) {
        let set = IndexSet {
            packs: packs.iter().map(|p| p.index.clone()).collect(),
        };
        let data = serde_json::to_vec(&set).expect("serializes");
        store
            .put(&index_set_key(&data), data.into())
            .await
            .expect("put");
        if then_delete {
            for pack in packs {
                let key = index_key(&pack.id).expect("key");
                store.delete(&key).await.expect("delete");
            }
        }
    }

    fn run<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    /// A pack learnt from its index object, then read in an index set (a prune folding it
    /// wrote the set and had not deleted the object yet), stays known once the object is
    /// gone: the set is not read again, so the copy must remember that it covers the pack.
    /// (It was forgotten: a prune refreshing twice then could not find a snapshot's trees.)
    #[test]
    fn a_pack_read_in_an_index_set_while_known_stays_known_when_its_index_object_goes() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = DirStore::new(root.path().to_path_buf());
        run(async {
            let pack = upload(&store, b"content").await;
            let mut index = BlobIndex::default();
            index.refresh(&store).await.expect("refresh");
            assert!(index.contains(&Hash::of(b"content")));

            fold(&store, &[&pack], false).await;
            index.refresh(&store).await.expect("refresh");
            let key = index_key(&pack.id).expect("key");
            store.delete(&key).await.expect("delete");
            let refreshed = index.refresh(&store).await.expect("refresh");
            assert_eq!(refreshed.forgotten, 0, "{refreshed:?}");
            assert!(index.contains(&Hash::of(b"content")), "still known");
        });
    }

    /// A set written and the index objects it covers deleted between two refreshes: the
    /// set is read before anything is called gone, so the pack is never forgotten (and what
    /// was checked of it is not checked again).
    #[test]
    fn a_pack_folded_between_two_refreshes_is_not_forgotten_meanwhile() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = DirStore::new(root.path().to_path_buf());
        run(async {
            let mut index = BlobIndex::default();
            let pack = upload(&store, b"content").await;
            index.add_written(pack.index.clone());
            index.refresh(&store).await.expect("refresh");

            fold(&store, &[&pack], true).await;
            let refreshed = index.refresh(&store).await.expect("refresh");
            assert_eq!(refreshed.forgotten, 0, "{refreshed:?}");
            assert!(index.contains(&Hash::of(b"content")));
            assert!(
                index.is_verified(&pack.id),
                "what was checked stays checked"
            );
        });
    }

    /// A copy the previous layout saved may lack what its sets cover: a pack its refresh
    /// forgot (the set was read while the pack was known, then the index object went) and the
    /// note that a set covers another. Loaded, its sets are read again: both packs are known,
    /// and stay known once their index objects are gone; a set no longer listed is dropped.
    #[test]
    fn a_copy_of_the_previous_layout_reads_its_sets_again() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = DirStore::new(root.path().to_path_buf());
        let dir = tempfile::tempdir().expect("temp dir");
        let path = BlobIndex::cache_path(dir.path(), "store");
        run(async {
            let forgotten = upload(&store, b"forgotten").await;
            let unnoted = upload(&store, b"unnoted").await;
            let mut index = BlobIndex::default();
            index.refresh(&store).await.expect("refresh");
            fold(&store, &[&forgotten, &unnoted], true).await;
            index.refresh(&store).await.expect("refresh");
            // What the previous refresh could leave.
            index.forget(&HashSet::from([forgotten.id.clone()]));
            index.in_sets.clear();
            index.sets.insert(format!("indexes/{}", "f".repeat(64)));
            index.save(&path).expect("saved");
            let mut copy = std::fs::read(&path).expect("read");
            copy[15] = 2;
            std::fs::write(&path, copy).expect("write");

            let mut loaded = BlobIndex::load(&path);
            assert!(loaded.contains(&Hash::of(b"unnoted")), "the copy was read");
            let refreshed = loaded.refresh(&store).await.expect("refresh");
            assert_eq!(refreshed.forgotten, 0, "{refreshed:?}");
            for content in [&b"forgotten"[..], b"unnoted"] {
                assert!(loaded.contains(&Hash::of(content)));
            }
            assert_eq!(loaded.sets.len(), 1, "only the set listed");
            loaded.save(&path).expect("saved");
            assert_eq!(std::fs::read(&path).expect("read")[15], 3);
        });
    }

    /// A folder store in which a writer and a prune act just before `indexes/` is listed: a
    /// pack is uploaded, folded into a set, and its index object deleted.
    #[derive(Clone)]
    struct FoldedWhileListing {
        inner: DirStore,
        content: std::sync::Arc<std::sync::Mutex<Option<&'static [u8]>>>,
    }

    impl Store for FoldedWhileListing {
        fn name(&self) -> &str {
            self.inner.name()
        }
        async fn put(&self, key: &str, data: bytes::Bytes) -> Result<(), StoreError> {
            self.inner.put(key, data).await
        }
        async fn get(&self, key: &str) -> Result<bytes::Bytes, StoreError> {
            self.inner.get(key).await
        }
        async fn get_stream(&self, key: &str) -> Result<ByteStream, StoreError> {
            self.inner.get_stream(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<Object>, StoreError> {
            let content = (prefix == super::INDEX_SETS)
                .then(|| self.content.lock().expect("lock").take())
                .flatten();
            if let Some(content) = content {
                let pack = upload(&self.inner, content).await;
                fold(&self.inner, &[&pack], true).await;
            }
            self.inner.list(prefix).await
        }
        async fn exists(&self, key: &str) -> Result<bool, StoreError> {
            self.inner.exists(key).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.inner.delete(key).await
        }
    }

    /// A pack uploaded and folded into a set between a refresh's listing of `index/` and its
    /// listing of `indexes/` is learnt from the set: `data/` is listed after both, so the set's
    /// pack is seen in the store. (Listed first, the pack was passed over and the set marked
    /// as read: the pack was never learnt.)
    #[test]
    fn a_pack_folded_while_a_refresh_lists_is_learnt_from_its_set() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = FoldedWhileListing {
            inner: DirStore::new(root.path().to_path_buf()),
            content: std::sync::Arc::new(std::sync::Mutex::new(Some(b"folded meanwhile"))),
        };
        run(async {
            let mut index = BlobIndex::default();
            index.refresh(&store).await.expect("refresh");
            assert!(index.contains(&Hash::of(b"folded meanwhile")));
        });
    }

    /// A pack holding `blobs`, and as many more of its own.
    fn pack_with(blobs: &[&[u8]], own: usize, seed: &str) -> PackIndex {
        let mut packer = Packer::default();
        for blob in blobs {
            packer.add(Hash::of(blob), blob);
        }
        for n in 0..own {
            let blob = format!("{seed} {n}");
            packer.add(Hash::of(blob.as_bytes()), blob.as_bytes());
        }
        packer.seal().expect("a pack").index
    }

    #[test]
    fn a_blob_is_read_from_the_first_pack_not_marked_and_what_is_forgotten_is_not_saved() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = BlobIndex::cache_path(dir.path(), "store");
        let shared: &[u8] = b"in every pack";
        let hash = Hash::of(shared);
        // Enough blobs of their own that the records are written out as runs (debug builds).
        let [a, b, c] = ["a", "b", "c"].map(|seed| pack_with(&[shared], 100, seed));
        let mut index = BlobIndex::load(&path);
        index.add(a.clone(), false);
        index.add(b.clone(), false);
        index.blobs.seal();
        assert_eq!(
            index.pack_of(&hash),
            Some(a.pack.as_str()),
            "the first seen"
        );
        assert_eq!(
            index.ambiguous().expect("scan"),
            HashSet::from([a.pack.clone(), b.pack.clone()])
        );

        index.marked.insert(a.pack.clone());
        assert_eq!(
            index.stored_in(&hash),
            Some(b.pack.as_str()),
            "not the marked one"
        );
        assert!(index.ambiguous().expect("scan").is_empty(), "one is marked");

        index.forget(&HashSet::from([b.pack.clone()]));
        assert_eq!(index.pack_of(&hash), Some(a.pack.as_str()), "a last resort");
        assert!(!index.contains(&hash), "not to be reused");
        index.add_written(c.clone());
        assert_eq!(index.stored_in(&hash), Some(c.pack.as_str()));

        index.save(&path).expect("saved");
        let loaded = BlobIndex::load(&path);
        assert_eq!(loaded.packs().expect("packs"), vec![a.clone(), c.clone()]);
        assert_eq!(loaded.stored_in(&hash), Some(c.pack.as_str()));
        for blob in &b.blobs[1..] {
            assert_eq!(
                loaded.locate(&blob.hash),
                None,
                "the forgotten pack's own blobs"
            );
        }
        for blob in &c.blobs {
            let found = loaded.locate(&blob.hash).expect("found");
            assert_eq!((found.offset, found.len), (blob.offset, blob.len));
        }
    }

    #[test]
    fn packs_written_are_logged_to_a_file_and_taken_in_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let packs = ["one", "two"].map(|seed| pack_with(&[], 70, seed));
        let mut log = super::PackLog::new(dir.path());
        packs.iter().cloned().for_each(|pack| log.push(pack));
        assert!(
            log.file.is_some() && log.held.is_empty(),
            "in the file, not in memory"
        );
        assert_eq!(log.len(), 2);
        let bytes: u64 = packs.iter().flat_map(|p| &p.blobs).map(|b| b.len).sum();
        assert_eq!(log.bytes(), bytes);

        let mut index = BlobIndex::load(&BlobIndex::cache_path(dir.path(), "store"));
        index.add_logged(log);
        assert_eq!(index.packs().expect("packs"), packs.to_vec());
        assert!(packs.iter().all(|pack| index.is_verified(&pack.pack)));
    }

    #[test]
    fn a_copy_an_earlier_gitkit_wrote_is_read_and_saved_anew() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = BlobIndex::cache_path(dir.path(), "store");
        let pack = pack_with(&[], 60, "old");
        let id = Hash::parse(&pack.pack).expect("an id");
        // The earlier layout: magic, five lists (verified: this pack), then the packs with
        // their blobs in full.
        let mut old = b"gitkit-index\x00\x00\x00\x01".to_vec();
        old.extend(1u32.to_le_bytes());
        old.extend(id.0);
        old.extend([0u8; 16]);
        old.extend(1u32.to_le_bytes());
        old.extend(id.0);
        old.extend((pack.blobs.len() as u32).to_le_bytes());
        for blob in &pack.blobs {
            old.extend(blob.hash.0);
            for field in [blob.offset, blob.len, blob.raw_len.unwrap_or(0)] {
                old.extend(field.to_le_bytes());
            }
        }
        std::fs::write(&path, &old).expect("write");

        let mut loaded = BlobIndex::load(&path);
        assert!(loaded.is_verified(&pack.pack), "what was verified stays so");
        assert_eq!(loaded.packs().expect("packs"), vec![pack.clone()]);
        loaded.save(&path).expect("saved");
        assert!(
            std::fs::read(&path)
                .expect("read")
                .starts_with(super::CACHE_MAGIC)
        );
        let again = BlobIndex::load(&path);
        assert!(again.is_verified(&pack.pack));
        assert_eq!(again.packs().expect("packs"), vec![pack]);
    }

    #[test]
    fn the_local_copy_is_saved_and_read_back_and_a_damaged_one_is_empty() {
        let mut packer = Packer::default();
        let text = b"print('hello')\n".repeat(100);
        packer.add(Hash::of(b"hello"), b"hello");
        packer.add(Hash::of(&text), &text);
        let pack = packer.seal().expect("a pack");
        let mut index = BlobIndex::default();
        index.add_written(pack.index.clone());
        index.marked.insert("e".repeat(64));
        index.dirty = true;
        index.sets.insert(format!("indexes/{}", "f".repeat(64)));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = BlobIndex::cache_path(dir.path(), "store");
        let before = index.packs().expect("packs");
        index.save(&path).expect("saved");

        let loaded = BlobIndex::load(&path);
        assert_eq!(loaded.packs().expect("packs"), before);
        for hash in [Hash::of(b"hello"), Hash::of(&text)] {
            assert_eq!(loaded.locate(&hash), index.locate(&hash));
        }
        assert!(loaded.is_verified(&pack.id));
        assert!(loaded.is_marked(&"e".repeat(64)));
        assert_eq!(loaded.sets, index.sets);

        let whole = std::fs::read(&path).expect("read");
        for damaged in [&whole[..whole.len() - 1], &whole[1..], b"{\"packs\": []}"] {
            std::fs::write(&path, damaged).expect("write");
            assert!(BlobIndex::load(&path).packs().expect("packs").is_empty());
        }
    }
}
