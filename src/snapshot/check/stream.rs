//! Reading a pack once, as it streams past, against everything that says what it holds: its
//! id (the hash of its bytes), its index object, and the places format-1 manifests name in it.
//! Only a compressed blob is ever held whole (by [`PackChecker`]), never the pack.

use std::collections::{BTreeSet, HashSet};

use futures::TryStreamExt;

use super::super::id::Hash;
use super::super::manifest::MAX_PACK_LEN;
use super::super::pack::{PackChecker, PackIndex, Packed, data_key};
use crate::store::{Store, StoreError};

/// A place in a pack a format-1 manifest names: offset, length, hash, content length.
pub type Place = (u64, u64, Hash, Option<u64>);

/// What a pack is checked against as it streams past, besides its id.
pub struct Checks {
    /// Its index object, if believed.
    index: Option<PackIndex>,
    /// The places format-1 manifests name in it that the index object does not list, in
    /// groups that do not overlap.
    named: Vec<PackIndex>,
}

/// The [`Checks`] of `pack`.
pub fn checks(pack: &str, index: Option<&PackIndex>, named: Option<&BTreeSet<Place>>) -> Checks {
    let listed: HashSet<Place> = index
        .iter()
        .flat_map(|index| &index.blobs)
        .map(|b| (b.offset, b.len, b.hash, b.raw_len))
        .collect();
    let others: Vec<Packed> = named
        .into_iter()
        .flatten()
        .filter(|(offset, len, hash, raw_len)| !listed.contains(&(*offset, *len, *hash, *raw_len)))
        .map(|(offset, len, hash, raw_len)| Packed {
            hash: *hash,
            offset: *offset,
            len: *len,
            raw_len: *raw_len,
        })
        .collect();
    Checks {
        index: index.cloned(),
        named: apart(pack, others),
    }
}

/// `blobs` (places in `pack` that format-1 manifests name and its index object does not) as
/// checks of their own, each a list of places that do not overlap, in order.
fn apart(pack: &str, mut blobs: Vec<Packed>) -> Vec<PackIndex> {
    blobs.sort_by_key(|b| (b.offset, b.len));
    let mut groups: Vec<PackIndex> = Vec::new();
    for blob in blobs {
        let fits = groups.iter_mut().find(|g| {
            g.blobs
                .last()
                .is_none_or(|last| last.offset.saturating_add(last.len) <= blob.offset)
        });
        match fits {
            Some(group) => group.blobs.push(blob),
            None => groups.push(PackIndex {
                pack: pack.to_string(),
                blobs: vec![blob],
            }),
        }
    }
    groups
}

/// Streams `pack` once through `checks`; returns what is wrong with it, if anything.
pub async fn read_pack<S: Store>(
    store: &S,
    pack: &str,
    checks: &Checks,
) -> Result<Option<String>, StoreError> {
    let key = data_key(pack).expect("a pack id");
    let mut body = match store.get_stream(&key).await {
        Ok(body) => body,
        Err(StoreError::NotFound { .. }) => return Ok(Some("its data is gone".into())),
        Err(e) => return Err(e),
    };
    let mut whole = blake3::Hasher::new();
    let mut index = checks.index.as_ref().map(PackChecker::new);
    let mut named: Vec<PackChecker> = checks.named.iter().map(PackChecker::new).collect();
    let mut read = 0u64;
    loop {
        let piece = match body.try_next().await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::InvalidData =>
            {
                return Ok(Some(format!("it cannot be read: {source}")));
            }
            Err(e) => return Err(e),
        };
        read += piece.len() as u64;
        if read > MAX_PACK_LEN {
            return Ok(Some("it is larger than any pack can be".into()));
        }
        whole.update(&piece);
        for checker in index.iter_mut().chain(&mut named) {
            checker.update(&piece);
        }
    }
    if whole.finalize().to_hex().as_str() != pack {
        return Ok(Some(format!(
            "its {read} bytes do not hash to its id (damaged or truncated)"
        )));
    }
    if !index.is_none_or(PackChecker::finish) {
        return Ok(Some(
            "its bytes are whole, but its index object names a blob that does not hash right"
                .into(),
        ));
    }
    if !named.into_iter().all(PackChecker::finish) {
        return Ok(Some(
            "its bytes are whole, but a format-1 snapshot names a place in it that does not \
             hold the blob it says"
                .into(),
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(offset: u64, len: u64) -> Packed {
        Packed {
            hash: Hash([0xaa; 32]),
            offset,
            len,
            raw_len: None,
        }
    }

    #[test]
    fn overlapping_places_are_checked_apart() {
        let groups = apart("p", vec![packed(10, 5), packed(0, 10), packed(5, 10)]);
        let places: Vec<Vec<(u64, u64)>> = groups
            .iter()
            .map(|g| g.blobs.iter().map(|b| (b.offset, b.len)).collect())
            .collect();
        assert_eq!(places, [vec![(0, 10), (10, 5)], vec![(5, 10)]]);
    }
}
