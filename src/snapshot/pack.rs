//! Packs: many blobs in one object, so that thousands of small files cost a few requests.
//! A pack's id is the BLAKE3 of its bytes; its index object lists the blobs inside.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::id::{IdError, check_hash};

/// A pack is sealed once it holds this much.
pub const PACK_TARGET: usize = 4 << 20;
/// Files larger than this are split into chunks of this size, each a blob.
pub const CHUNK_SIZE: usize = 2 << 20;

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

/// One blob inside a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed {
    pub hash: String,
    pub offset: u64,
    pub len: u64,
}

/// A pack's index object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackIndex {
    pub pack: String,
    pub blobs: Vec<Packed>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadIndex {
    #[error("the index object names pack `{0}`, not the pack it is stored for")]
    WrongPack(String),
    #[error("the index object names a blob that is not a content hash")]
    BadHash,
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
            if check_hash(&blob.hash).is_err() {
                return Err(BadIndex::BadHash);
            }
            let blob_end = blob
                .offset
                .checked_add(blob.len)
                .ok_or(BadIndex::BadPlace)?;
            if blob.offset < end || blob_end > size {
                return Err(BadIndex::BadPlace);
            }
            end = blob_end;
        }
        Ok(())
    }

    /// Whether `data` is this pack: its hash is the pack id and every blob hashes right.
    /// Call after [`PackIndex::check`] with the data's length.
    pub fn matches(&self, data: &[u8]) -> bool {
        let whole = blake3::hash(data).to_hex();
        whole.as_str() == self.pack
            && self.blobs.iter().all(|blob| {
                let range = usize::try_from(blob.offset)
                    .ok()
                    .zip(usize::try_from(blob.offset.saturating_add(blob.len)).ok())
                    .and_then(|(start, end)| data.get(start..end));
                range.is_some_and(|bytes| blake3::hash(bytes).to_hex().as_str() == blob.hash)
            })
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

/// Collects blobs until a pack is full.
#[derive(Debug, Default)]
pub struct Packer {
    data: Vec<u8>,
    blobs: Vec<Packed>,
}

impl Packer {
    /// Adds a blob; returns a sealed pack when this one filled it.
    pub fn add(&mut self, hash: String, blob: &[u8]) -> Option<Pack> {
        self.blobs.push(Packed {
            hash,
            offset: self.data.len() as u64,
            len: blob.len() as u64,
        });
        self.data.extend_from_slice(blob);
        (self.data.len() >= PACK_TARGET)
            .then(|| self.seal())
            .flatten()
    }

    /// Seals what was added, if anything.
    pub fn seal(&mut self) -> Option<Pack> {
        if self.blobs.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.data);
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
        assert!(packer.add("a".into(), b"hello").is_none());
        let big = vec![7u8; PACK_TARGET];
        let pack = packer.add("b".into(), &big).expect("full");
        assert_eq!(
            pack.index.blobs[0],
            Packed {
                hash: "a".into(),
                offset: 0,
                len: 5
            }
        );
        assert_eq!(
            pack.index.blobs[1],
            Packed {
                hash: "b".into(),
                offset: 5,
                len: PACK_TARGET as u64
            }
        );
        assert_eq!(pack.id, blake3::hash(&pack.data).to_hex().to_string());
        assert!(packer.seal().is_none());
    }
}
