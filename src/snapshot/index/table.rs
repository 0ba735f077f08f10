//! Sorted runs of fixed-width records on disk, found by hash with eight bytes of memory per
//! block of records (the start of its first hash) and one read of a block: how the blob index of
//! a store of any size stays out of memory. git's pack `.idx` (sorted hashes, read in place)
//! and a log-structured merge tree (new records in memory, written out as sorted runs, runs
//! merged now and then) are the models.
//!
//! Records are read with `pread` into a buffer on the stack rather than mapped: a mapped page
//! a lookup touched stays in the process's resident set, and lookups in a large index touch
//! them all.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::snapshot::binary::bad;
use crate::snapshot::id::Hash;

/// Records per block: a lookup reads one block (a KiB of the widest record), and a table holds
/// half a byte a record in memory.
pub const BLOCK: usize = 16;
/// The widest record there is.
const MAX_WIDTH: usize = 64;
/// Records a table holds in memory before it writes them out as a run (4 MiB of the widest).
/// A debug build (the one the tests run) writes runs at a few dozen, so that every test with
/// more blobs than that reads them from disk, and merges runs.
const FRESH_LIMIT: usize = if cfg!(debug_assertions) { 48 } else { 65_536 };

/// A fixed-width record that begins with the hash it is found by.
pub trait Entry: Sized + Clone {
    const WIDTH: usize;
    fn hash(&self) -> &Hash;
    /// Writes the record into `out` (`WIDTH` bytes, the hash first).
    fn put(&self, out: &mut [u8]);
    /// Reads a record back from `WIDTH` bytes.
    fn get(bytes: &[u8]) -> Self;
}

impl Entry for Hash {
    const WIDTH: usize = 32;

    fn hash(&self) -> &Hash {
        self
    }

    fn put(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0);
    }

    fn get(bytes: &[u8]) -> Self {
        Hash(bytes.try_into().expect("32 bytes"))
    }
}

/// Where a hash sorts among others, to eight bytes.
fn fence(hash: &Hash) -> u64 {
    u64::from_be_bytes(hash.0[..8].try_into().expect("8 bytes"))
}

/// Records read one after another, or the error that stopped them.
type Source<'a, E> = Box<dyn Iterator<Item = io::Result<E>> + 'a>;

/// Records sorted by hash in a file, from byte `start`, with the [`fence`] of each block's
/// first record.
pub struct Run<E> {
    file: File,
    start: u64,
    count: u64,
    fences: Vec<u64>,
    entry: PhantomData<E>,
}

impl<E: Entry> Run<E> {
    /// Writes `entries`, sorted by hash, to an unnamed file in `dir`.
    fn write(dir: &Path, entries: impl Iterator<Item = io::Result<E>>) -> io::Result<Self> {
        let file = tempfile::tempfile_in(dir)?;
        let mut out = BufWriter::with_capacity(64 << 10, &file);
        let (count, fences) = write_sorted(&mut out, entries)?;
        out.flush()?;
        drop(out);
        Ok(Self {
            file,
            start: 0,
            count,
            fences,
            entry: PhantomData,
        })
    }

    /// The records [`write_sorted`] wrote into `file` at `start`, followed by [`write_fences`]'s
    /// fences, which are read here; refuses a file too short for them, or fences out of order.
    pub fn open(file: File, start: u64, count: u64) -> io::Result<Self> {
        let blocks = count.div_ceil(BLOCK as u64);
        let fences_at = count
            .checked_mul(E::WIDTH as u64)
            .and_then(|len| len.checked_add(start))
            .ok_or_else(bad)?;
        let end = blocks
            .checked_mul(8)
            .and_then(|len| len.checked_add(fences_at))
            .ok_or_else(bad)?;
        if file.metadata()?.len() < end {
            return Err(bad());
        }
        let mut bytes = vec![0u8; (end - fences_at) as usize];
        file.read_exact_at(&mut bytes, fences_at)?;
        let fences: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|fence| u64::from_le_bytes(fence.try_into().expect("8 bytes")))
            .collect();
        if !fences.is_sorted() {
            return Err(bad());
        }
        Ok(Self {
            file,
            start,
            count,
            fences,
            entry: PhantomData,
        })
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    /// Calls `each` with every record of `hash`.
    fn find(&self, hash: &Hash, each: &mut dyn FnMut(E)) -> io::Result<()> {
        // The blocks that may hold it: from the one before the first whose first record may
        // be it or after it (records of one hash, or of one fence, may run over a block's
        // end; every record before that block is smaller), up to the first that starts past
        // it. Fences that lie (a damaged copy) bound the reads all the same.
        let key = fence(hash);
        let mut block = self
            .fences
            .partition_point(|&fence| fence < key)
            .saturating_sub(1);
        let end = self.fences.partition_point(|&fence| fence <= key);
        let mut buffer = [0u8; BLOCK * MAX_WIDTH];
        while block < end {
            let first = (block * BLOCK) as u64;
            let records = (self.count - first).min(BLOCK as u64) as usize;
            let bytes = &mut buffer[..records * E::WIDTH];
            self.file
                .read_exact_at(bytes, self.start + first * E::WIDTH as u64)?;
            for record in bytes.chunks_exact(E::WIDTH) {
                match record[..32].cmp(&hash.0) {
                    Ordering::Less => {}
                    Ordering::Equal => each(E::get(record)),
                    Ordering::Greater => return Ok(()),
                }
            }
            block += 1;
        }
        Ok(())
    }

    /// Every record, in order.
    fn records(&self) -> Source<'_, E> {
        Box::new(RunIter {
            run: self,
            buffer: Vec::new(),
            at: 0,
            next: 0,
        })
    }
}

/// Reads a run 64 KiB at a time.
struct RunIter<'a, E> {
    run: &'a Run<E>,
    buffer: Vec<u8>,
    /// The next record in `buffer`.
    at: usize,
    /// The run's next record not in `buffer`.
    next: u64,
}

impl<E: Entry> Iterator for RunIter<'_, E> {
    type Item = io::Result<E>;

    fn next(&mut self) -> Option<io::Result<E>> {
        if self.at * E::WIDTH == self.buffer.len() {
            let records = (self.run.count - self.next).min((64 << 10) / E::WIDTH as u64);
            if records == 0 {
                return None;
            }
            self.buffer.resize(records as usize * E::WIDTH, 0);
            let at = self.run.start + self.next * E::WIDTH as u64;
            if let Err(e) = self.run.file.read_exact_at(&mut self.buffer, at) {
                // Nothing more is read after an error.
                self.next = self.run.count;
                self.buffer.clear();
                self.at = 0;
                return Some(Err(e));
            }
            self.next += records;
            self.at = 0;
        }
        let record = &self.buffer[self.at * E::WIDTH..][..E::WIDTH];
        self.at += 1;
        Some(Ok(E::get(record)))
    }
}

/// Writes `entries` (sorted by hash) to `out`; how many, and the [`fence`] of each block.
pub fn write_sorted<E: Entry>(
    out: &mut dyn Write,
    entries: impl Iterator<Item = io::Result<E>>,
) -> io::Result<(u64, Vec<u64>)> {
    let mut bytes = [0u8; MAX_WIDTH];
    let (mut count, mut fences) = (0u64, Vec::new());
    for entry in entries {
        let entry = entry?;
        if count % BLOCK as u64 == 0 {
            fences.push(fence(entry.hash()));
        }
        entry.put(&mut bytes[..E::WIDTH]);
        out.write_all(&bytes[..E::WIDTH])?;
        count += 1;
    }
    Ok((count, fences))
}

/// Writes the fences [`write_sorted`] gave, as [`Run::open`] reads them (little-endian).
pub fn write_fences(out: &mut dyn Write, fences: &[u64]) -> io::Result<()> {
    fences
        .iter()
        .try_for_each(|fence| out.write_all(&fence.to_le_bytes()))
}

/// Records found by hash: the newest in memory, the rest in sorted runs on disk.
pub struct Table<E> {
    runs: Vec<Run<E>>,
    /// Sorted by hash up to `sorted`; [`Table::seal`] sorts the rest in.
    fresh: Vec<E>,
    sorted: usize,
    /// Where runs are written.
    dir: PathBuf,
    /// A run could not be written there: records stay in memory from then on.
    cannot_write: bool,
}

impl<E: Entry> Table<E> {
    /// An empty table that writes its runs in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            runs: Vec::new(),
            fresh: Vec::new(),
            sorted: 0,
            dir,
            cannot_write: false,
        }
    }

    /// A table whose records so far are `run`.
    pub fn with_run(dir: PathBuf, run: Run<E>) -> Self {
        Self {
            runs: vec![run],
            ..Self::new(dir)
        }
    }

    /// Where runs are written.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn len(&self) -> u64 {
        self.runs.iter().map(Run::len).sum::<u64>() + self.fresh.len() as u64
    }

    /// Adds a record; call [`Table::seal`] before the next lookup.
    pub fn push(&mut self, entry: E) {
        self.fresh.push(entry);
        if self.fresh.len() >= FRESH_LIMIT && !self.cannot_write {
            self.seal();
        }
    }

    /// Makes what was pushed findable, writing the records in memory out as a run when there
    /// are many. A run that cannot be written leaves them in memory.
    pub fn seal(&mut self) {
        if self.sorted < self.fresh.len() {
            let mut tail = self.fresh.split_off(self.sorted);
            tail.sort_unstable_by(|a, b| a.hash().cmp(b.hash()));
            let head = std::mem::take(&mut self.fresh);
            self.fresh = merge_sorted(head, tail);
            self.sorted = self.fresh.len();
        }
        if self.fresh.len() >= FRESH_LIMIT {
            self.write_out();
        }
    }

    /// Adds `entries`, sorted by hash, and writes what is in memory out as a run.
    pub fn add_sorted(&mut self, entries: Vec<E>) {
        self.seal();
        let fresh = std::mem::take(&mut self.fresh);
        self.fresh = merge_sorted(fresh, entries);
        self.sorted = self.fresh.len();
        self.write_out();
    }

    /// Writes the records in memory out as a run, and merges runs as they grow.
    fn write_out(&mut self) {
        if self.cannot_write {
            return;
        }
        let written = Run::write(&self.dir, self.fresh.iter().cloned().map(Ok));
        match written {
            Ok(run) => {
                self.runs.push(run);
                self.fresh = Vec::new();
                self.sorted = 0;
            }
            Err(e) => {
                tracing::warn!(error = %e, dir = %self.dir.display(), "index records kept in memory: they could not be written out");
                self.cannot_write = true;
                return;
            }
        }
        // The newest run merged into the one before while it is at least half as large: runs
        // halve in size from the oldest, so a table of n records has about log2(n / FRESH_LIMIT)
        // of them, and each record is written again that many times at most.
        while let [.., older, newer] = &self.runs[..]
            && newer.len() * 2 >= older.len()
        {
            match Run::write(
                &self.dir,
                Merged::new(vec![older.records(), newer.records()]),
            ) {
                Ok(merged) => {
                    self.runs.truncate(self.runs.len() - 2);
                    self.runs.push(merged);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "index runs not merged");
                    self.cannot_write = true;
                    return;
                }
            }
        }
    }

    /// Calls `each` with every record of `hash`.
    pub fn find(&self, hash: &Hash, each: &mut dyn FnMut(E)) -> io::Result<()> {
        debug_assert_eq!(self.sorted, self.fresh.len(), "sealed before a lookup");
        for run in &self.runs {
            run.find(hash, each)?;
        }
        let sorted = &self.fresh[..self.sorted];
        let first = sorted.partition_point(|entry| entry.hash() < hash);
        for entry in sorted[first..].iter().take_while(|e| e.hash() == hash) {
            each(entry.clone());
        }
        Ok(())
    }

    /// Whether any record has `hash`; a read that fails says no.
    pub fn contains(&self, hash: &Hash) -> bool {
        let mut found = false;
        match self.find(hash, &mut |_| found = true) {
            Ok(()) => found,
            Err(e) => {
                tracing::warn!(error = %e, "index records unreadable");
                false
            }
        }
    }

    /// Every record, in hash order (records of one hash in no given order).
    pub fn merged(&self) -> Merged<'_, E> {
        debug_assert_eq!(self.sorted, self.fresh.len(), "sealed before a scan");
        let mut sources: Vec<Source<'_, E>> = self.runs.iter().map(Run::records).collect();
        sources.push(Box::new(self.fresh.iter().cloned().map(Ok)));
        Merged::new(sources)
    }
}

/// A set of hashes that grows without bound in use (every blob a first snapshot packs): the
/// newest in memory, the rest written out as sorted runs.
pub struct Seen {
    recent: std::collections::HashSet<Hash>,
    older: Table<Hash>,
}

impl Seen {
    /// An empty set that writes its runs in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            recent: Default::default(),
            older: Table::new(dir),
        }
    }

    /// Adds `hash`; whether it was new.
    pub fn insert(&mut self, hash: Hash) -> bool {
        if self.contains(&hash) {
            return false;
        }
        self.recent.insert(hash);
        // As many as a table of FRESH_LIMIT places holds before it grows (7 in 8).
        if self.recent.len() >= FRESH_LIMIT / 8 * 7 {
            let mut hashes: Vec<Hash> = self.recent.drain().collect();
            hashes.sort_unstable();
            self.older.add_sorted(hashes);
        }
        true
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.recent.contains(hash) || self.older.contains(hash)
    }
}

/// Two sorted lists as one.
fn merge_sorted<E: Entry>(a: Vec<E>, b: Vec<E>) -> Vec<E> {
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.hash() <= y.hash(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

/// A k-way merge of sorted sources (a table has a few: its runs and what is in memory).
pub struct Merged<'a, E> {
    sources: Vec<Source<'a, E>>,
    heads: Vec<Option<E>>,
    started: bool,
}

impl<'a, E: Entry> Merged<'a, E> {
    fn new(sources: Vec<Source<'a, E>>) -> Self {
        let heads = sources.iter().map(|_| None).collect();
        Self {
            sources,
            heads,
            started: false,
        }
    }
}

impl<E: Entry> Iterator for Merged<'_, E> {
    type Item = io::Result<E>;

    fn next(&mut self) -> Option<io::Result<E>> {
        if !self.started {
            self.started = true;
            for (source, head) in self.sources.iter_mut().zip(&mut self.heads) {
                match source.next().transpose() {
                    Ok(next) => *head = next,
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        let (smallest, _) = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(n, head)| Some((n, head.as_ref()?.hash())))
            .min_by(|a, b| a.1.cmp(b.1))?;
        let entry = self.heads[smallest].take();
        match self.sources[smallest].next().transpose() {
            Ok(next) => self.heads[smallest] = next,
            Err(e) => return Some(Err(e)),
        }
        entry.map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(count: u32) -> Vec<Hash> {
        (0..count).map(|n| Hash::of(&n.to_le_bytes())).collect()
    }

    #[test]
    fn records_written_out_as_runs_are_found_and_merged_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut table = Table::new(dir.path().to_path_buf());
        let all = hashes((FRESH_LIMIT * 37 + 29) as u32);
        for chunk in all.chunks(10_000) {
            chunk.iter().for_each(|hash| table.push(*hash));
            table.seal();
        }
        // Some in memory, the rest in runs, each less than half the one before.
        assert!(!table.fresh.is_empty() && !table.runs.is_empty());
        for pair in table.runs.windows(2) {
            assert!(
                pair[1].len() * 2 < pair[0].len(),
                "runs merged as they should be"
            );
        }
        assert!(
            table.runs.len() <= 7,
            "{} runs for 37 written",
            table.runs.len()
        );
        assert_eq!(table.len(), all.len() as u64);
        for hash in all.iter().step_by(997) {
            assert!(table.contains(hash));
        }
        assert!(!table.contains(&Hash::of(b"never added")));
        let merged: Vec<Hash> = table.merged().collect::<io::Result<_>>().expect("read");
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(merged, sorted);
    }

    #[test]
    fn every_record_of_a_hash_is_found_across_blocks_and_runs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut table = Table::new(dir.path().to_path_buf());
        let many = Hash::of(b"many");
        // More copies than a block holds, in a run and in memory both.
        for _ in 0..FRESH_LIMIT - 5 {
            table.push(Hash::of(b"other"));
        }
        for _ in 0..BLOCK * 2 + 3 {
            table.push(many);
        }
        table.seal();
        table.push(many);
        table.seal();
        assert_eq!(table.runs.len(), 1);
        let mut found = 0;
        table.find(&many, &mut |_| found += 1).expect("read");
        assert_eq!(found, BLOCK * 2 + 4);
    }

    #[test]
    fn a_set_of_hashes_written_out_still_knows_every_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut seen = Seen::new(dir.path().to_path_buf());
        let all = hashes((FRESH_LIMIT * 5) as u32);
        assert!(all.iter().all(|hash| seen.insert(*hash)));
        assert!(!seen.older.runs.is_empty(), "some were written out");
        assert!(all.iter().all(|hash| !seen.insert(*hash)));
        assert!(!seen.contains(&Hash::of(b"never added")));
    }

    #[test]
    fn fences_that_lie_bound_what_a_lookup_reads_and_fences_out_of_order_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run");
        let mut sorted = hashes(BLOCK as u32 * 40);
        sorted.sort();
        let write = |fences: &[u64]| {
            let mut file = File::create(&path).expect("create");
            write_sorted(&mut file, sorted.iter().copied().map(Ok)).expect("records");
            write_fences(&mut file, fences).expect("fences");
        };
        let count = sorted.len() as u64;
        // Every block said to start past every hash: a lookup reads no block at all, rather
        // than every block from the first.
        write(&[u64::MAX; 40]);
        let run: Run<Hash> = Run::open(File::open(&path).expect("open"), 0, count).expect("run");
        let mut read = 0;
        run.find(&sorted[BLOCK * 20], &mut |_| read += 1)
            .expect("find");
        assert_eq!(read, 0);

        let mut descending: Vec<u64> = (0..40).collect();
        descending.reverse();
        write(&descending);
        assert!(Run::<Hash>::open(File::open(&path).expect("open"), 0, count).is_err());
    }

    #[test]
    fn records_that_cannot_be_written_out_stay_in_memory_and_are_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut table = Table::new(dir.path().join("missing"));
        let all = hashes((FRESH_LIMIT * 3) as u32);
        all.iter().for_each(|hash| table.push(*hash));
        table.seal();
        assert!(table.cannot_write && table.runs.is_empty());
        assert!(all.iter().all(|hash| table.contains(hash)));
    }

    #[test]
    fn a_run_reopened_from_its_file_finds_the_same_and_a_short_file_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run");
        let mut sorted = hashes(1000);
        sorted.sort();
        let mut file = File::create(&path).expect("create");
        file.write_all(b"head").expect("write");
        let (count, fences) = write_sorted(&mut file, sorted.iter().copied().map(Ok)).expect("w");
        write_fences(&mut file, &fences).expect("fences");
        let run: Run<Hash> = Run::open(File::open(&path).expect("open"), 4, count).expect("run");
        for hash in &sorted {
            let mut found = false;
            run.find(hash, &mut |_| found = true).expect("read");
            assert!(found);
        }
        let short = std::fs::read(&path).expect("read");
        std::fs::write(&path, &short[..short.len() - 1]).expect("write");
        assert!(Run::<Hash>::open(File::open(&path).expect("open"), 4, count).is_err());
    }
}
