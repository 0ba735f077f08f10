//! Packs: many blobs in one object, so that thousands of small files cost a few requests.
//! A pack's id is the BLAKE3 of its bytes; its index object lists the blobs inside.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A pack is sealed once it holds this much.
pub const PACK_TARGET: usize = 4 << 20;
/// Files larger than this are split into chunks of this size, each a blob.
pub const CHUNK_SIZE: usize = 2 << 20;

pub fn data_key(pack: &str) -> String {
    format!("data/{}/{pack}", &pack[..2])
}

pub fn index_key(pack: &str) -> String {
    format!("index/{pack}")
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
