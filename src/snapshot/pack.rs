//! Packs: many blobs in one object, so that thousands of small files cost a few requests.
//! A pack's id is the BLAKE3 of its bytes; its index object lists the blobs inside. A blob is
//! stored zstd-compressed when that pays, as it is otherwise; it is named by the hash of its
//! content either way, so deduplication does not depend on how it was stored.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::id::{Hash, IdError, check_hash};
use super::manifest::MAX_PACK_LEN;

/// A pack is sealed once it holds this much.
pub const PACK_TARGET: usize = 4 << 20;
/// zstd's level: its default, fast enough to keep up with the disk.
const ZSTD_LEVEL: i32 = 3;
/// No blob's content is believed to be larger than this (a tree of a very large folder is the
/// largest blob there is); a stored length claiming more is refused before anything is
/// allocated for it.
pub const MAX_BLOB_LEN: u64 = 256 << 20;

/// The key of pack `pack`'s data; refuses anything but a pack id.
pub fn data_key(pack: &str) -> Result<String, IdError> {
    check_hash(pack)?;
    Ok(format!("data/{}/{pack}", &pack[..2]))
}

/// The key of pack `pack`'s index object; refuses anything but a pack id.
pub fn index_key(pack: &str) -> Result<String, IdError> {
    check_hash(pack)?;
    Ok(format!("index/{pack}"))
}

/// One blob inside a pack: `len` bytes at `offset`. `raw_len` is the content's length when
/// those bytes are a zstd frame (format 2), absent when they are the content itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed {
    pub hash: Hash,
    pub offset: u64,
    pub len: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_len: Option<u64>,
}

/// The content of a stored blob: `stored` itself, or what it decompresses to when the index
/// says it is compressed. Refuses a frame that does not give exactly `raw_len` bytes.
pub fn unpack(stored: &[u8], raw_len: Option<u64>) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
    let Some(raw_len) = raw_len else {
        return Ok(stored.into());
    };
    if raw_len > MAX_BLOB_LEN {
        return Err(std::io::Error::other(
            "a blob claims to be larger than any can be",
        ));
    }
    // One zstd context per thread: making one per blob costs more than a small blob does.
    thread_local! {
        static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let content = DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(zstd::bulk::Decompressor::new()?);
        }
        cell.as_mut()
            .expect("made above")
            .decompress(stored, raw_len as usize)
    })?;
    if content.len() as u64 != raw_len {
        return Err(std::io::Error::other(
            "a blob is not as long as its index says",
        ));
    }
    Ok(content.into())
}

/// A pack's index object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackIndex {
    pub pack: String,
    pub blobs: Vec<Packed>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadIndex {
    #[error("the index object names pack `{0}`, not the pack it is stored for")]
    WrongPack(String),
    #[error("the index object places blobs out of order or past the pack's end")]
    BadPlace,
}

impl PackIndex {
    /// Checks an index object read from the store for pack `pack` of `size` bytes: it names
    /// that pack, and its blobs are content hashes lying one after another inside the pack.
    pub fn check(&self, pack: &str, size: u64) -> Result<(), BadIndex> {
        if self.pack != pack || check_hash(pack).is_err() {
            return Err(BadIndex::WrongPack(self.pack.escape_debug().to_string()));
        }
        let mut end = 0u64;
        for blob in &self.blobs {
            let blob_end = blob
                .offset
                .checked_add(blob.len)
                .ok_or(BadIndex::BadPlace)?;
            if blob.len == 0 || blob.offset < end || blob_end > size.min(MAX_PACK_LEN) {
                return Err(BadIndex::BadPlace);
            }
            if blob
                .raw_len
                .is_some_and(|raw| raw == 0 || raw > MAX_BLOB_LEN)
            {
                return Err(BadIndex::BadPlace);
            }
            end = blob_end;
        }
        Ok(())
    }

    /// Whether `data` is this pack: its hash is the pack id and every blob hashes right.
    /// Call after [`PackIndex::check`].
    #[cfg(test)]
    pub fn matches(&self, data: &[u8]) -> bool {
        let mut checker = PackChecker::new(self);
        checker.update(data);
        checker.finish()
    }
}

/// Checks a pack's bytes against its index as they stream past: the whole hashes to the pack
/// id, each blob's content to its hash, and nothing runs past the largest pack. Only a
/// compressed blob is held, to be decompressed (one at a time, never more than its index says).
pub struct PackChecker<'a> {
    index: &'a PackIndex,
    whole: blake3::Hasher,
    blob: blake3::Hasher,
    compressed: Vec<u8>,
    /// The next blob to finish.
    next: usize,
    position: u64,
    good: bool,
}

impl<'a> PackChecker<'a> {
    /// `index` must have passed [`PackIndex::check`]: blobs in order, not overlapping.
    pub fn new(index: &'a PackIndex) -> Self {
        Self {
            index,
            whole: blake3::Hasher::new(),
            blob: blake3::Hasher::new(),
            compressed: Vec::new(),
            next: 0,
            position: 0,
            good: true,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if self.position.saturating_add(data.len() as u64) > MAX_PACK_LEN {
            self.good = false;
        }
        if !self.good {
            return;
        }
        self.whole.update(data);
        while !data.is_empty() {
            let Some(blob) = self.index.blobs.get(self.next) else {
                self.position += data.len() as u64;
                return;
            };
            if self.position < blob.offset {
                let skip = (blob.offset - self.position).min(data.len() as u64);
                data = &data[skip as usize..];
                self.position += skip;
                continue;
            }
            let left = blob.offset + blob.len - self.position;
            let take = left.min(data.len() as u64) as usize;
            if blob.raw_len.is_some() {
                self.compressed.extend_from_slice(&data[..take]);
            } else {
                self.blob.update(&data[..take]);
            }
            data = &data[take..];
            self.position += take as u64;
            if take as u64 == left {
                if blob.raw_len.is_some() {
                    match unpack(&self.compressed, blob.raw_len) {
                        Ok(content) => {
                            self.blob.update(&content);
                        }
                        Err(_) => self.good = false,
                    }
                    self.compressed.clear();
                }
                self.good &= Hash::from(self.blob.finalize()) == blob.hash;
                self.blob.reset();
                self.next += 1;
            }
        }
    }

    /// Whether everything matched, every blob was seen, and the whole is the pack.
    pub fn finish(self) -> bool {
        self.good
            && self.next == self.index.blobs.len()
            && self.whole.finalize().to_hex().as_str() == self.index.pack
    }
}

/// A sealed pack, ready to upload.
#[derive(Debug)]
pub struct Pack {
    pub id: String,
    pub data: Bytes,
    pub index: PackIndex,
}

impl Pack {
    pub fn index_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.index).expect("an index serializes"))
    }
}

/// Random bytes at the start of every pack: no two packs are ever the same bytes, so no two
/// have the same id, even holding the same blobs. A pack written again (content uploaded
/// anew, blobs copied out of a pack that is to go) is never mistaken for, or deleted with,
/// the one before it.
pub const SALT_LEN: usize = 16;

fn salt() -> [u8; SALT_LEN] {
    use rand_core::RngCore;
    let mut salt = [0u8; SALT_LEN];
    rand_core::OsRng.fill_bytes(&mut salt);
    salt
}

/// Collects blobs until a pack is full.
#[derive(Default)]
pub struct Packer {
    data: Vec<u8>,
    blobs: Vec<Packed>,
    /// One zstd context for every blob: making one per blob costs more than compressing a
    /// small file.
    compressor: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packer")
            .field("bytes", &self.data.len())
            .field("blobs", &self.blobs.len())
            .finish()
    }
}

impl Packer {
    /// Adds a blob, compressed when that saves at least one byte in 32 (a `.git` pack, a PNG
    /// or a parquet file is stored as it is); returns a sealed pack when this one filled it.
    pub fn add(&mut self, hash: Hash, blob: &[u8]) -> Option<Pack> {
        let compressor = match &mut self.compressor {
            Some(compressor) => Some(compressor),
            None => {
                self.compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
                self.compressor.as_mut()
            }
        };
        // Into one buffer kept from blob to blob: a new one each time leaves the allocator
        // holding megabytes of them while packs upload.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.reserve(zstd::zstd_safe::compress_bound(blob.len()));
        let pays = compressor
            .and_then(|c| c.compress_to_buffer(blob, &mut scratch).ok())
            .is_some_and(|len| len + blob.len() / 32 < blob.len());
        let pack = if pays {
            self.add_stored(hash, &scratch, Some(blob.len() as u64))
        } else {
            self.add_stored(hash, blob, None)
        };
        self.scratch = scratch;
        pack
    }

    /// Adds a blob as a pack already stores it (`raw_len` when compressed): a prune moving
    /// blobs out of a pack does not compress them again.
    pub fn add_stored(&mut self, hash: Hash, stored: &[u8], raw_len: Option<u64>) -> Option<Pack> {
        if self.data.is_empty() {
            self.data.reserve(PACK_TARGET + stored.len());
            self.data.extend_from_slice(&salt());
        }
        self.blobs.push(Packed {
            hash,
            offset: self.data.len() as u64,
            len: stored.len() as u64,
            raw_len,
        });
        self.data.extend_from_slice(stored);
        (self.data.len() >= PACK_TARGET)
            .then(|| self.seal())
            .flatten()
    }

    /// Seals what was added, if anything.
    pub fn seal(&mut self) -> Option<Pack> {
        if self.blobs.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        // A vector that grew by doubling can hold twice what it needs; a pack waits in memory
        // while it uploads, several at a time.
        data.shrink_to_fit();
        let blobs = std::mem::take(&mut self.blobs);
        let id = blake3::hash(&data).to_hex().to_string();
        Some(Pack {
            index: PackIndex {
                pack: id.clone(),
                blobs,
            },
            id,
            data: Bytes::from(data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_when_full_and_indexes_offsets() {
        let mut packer = Packer::default();
        assert!(packer.add(Hash::of(b"hello"), b"hello").is_none());
        let mut noise = vec![0u8; PACK_TARGET];
        blake3::Hasher::new().finalize_xof().fill(&mut noise);
        let pack = packer.add(Hash::of(&noise), &noise).expect("full");
        assert_eq!(
            pack.index.blobs[0],
            Packed {
                hash: Hash::of(b"hello"),
                offset: SALT_LEN as u64,
                len: 5,
                raw_len: None,
            }
        );
        assert_eq!(pack.index.blobs[1].offset, SALT_LEN as u64 + 5);
        assert_eq!(pack.id, blake3::hash(&pack.data).to_hex().to_string());
        assert!(packer.seal().is_none());

        let same = |packer: &mut Packer| {
            packer.add(Hash::of(b"hello"), b"hello");
            packer.seal().expect("a pack").id
        };
        assert_ne!(
            same(&mut Packer::default()),
            same(&mut Packer::default()),
            "the same blobs make another pack"
        );
    }

    #[test]
    fn compresses_what_pays_and_checks_the_content() {
        let mut packer = Packer::default();
        let text = b"print('hello')\n".repeat(1000);
        packer.add(Hash::of(&text), &text);
        let pack = packer.seal().expect("one blob");
        let blob = &pack.index.blobs[0];
        assert_eq!(blob.raw_len, Some(text.len() as u64));
        assert!(
            blob.len < text.len() as u64 / 10,
            "stored {} bytes",
            blob.len
        );
        let stored = &pack.data[blob.offset as usize..(blob.offset + blob.len) as usize];
        assert_eq!(
            unpack(stored, blob.raw_len).expect("decompresses").as_ref(),
            &text[..]
        );
        assert!(pack.index.matches(&pack.data));
        assert!(
            unpack(stored, Some(text.len() as u64 - 1)).is_err(),
            "a wrong length is refused"
        );
        assert!(unpack(stored, Some(MAX_BLOB_LEN + 1)).is_err());
    }
}
