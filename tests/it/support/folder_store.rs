//! Reads a folder store the way `docs/FORMAT.md` describes it, written independently of
//! gitkit's own reader, so that tests can count what a snapshot stored and tamper with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Where a blob is stored: its pack, place, stored length and content length if compressed.
#[derive(Debug, Clone)]
pub struct Place {
    pub pack: String,
    pub offset: u64,
    pub len: u64,
    pub raw_len: Option<u64>,
}

/// Every blob the store's index objects name, by hash.
pub fn blobs(store: &Path) -> BTreeMap<String, Place> {
    let mut blobs = BTreeMap::new();
    let Ok(listing) = std::fs::read_dir(store.join("index")) else {
        return blobs;
    };
    for object in listing {
        let object = object.expect("list").path();
        let index: Value = serde_json::from_slice(&std::fs::read(&object).expect("read"))
            .expect("an index object is JSON");
        for blob in index["blobs"].as_array().expect("blobs") {
            blobs.insert(
                blob["hash"].as_str().expect("hash").to_string(),
                Place {
                    pack: index["pack"].as_str().expect("pack").to_string(),
                    offset: blob["offset"].as_u64().expect("offset"),
                    len: blob["len"].as_u64().expect("len"),
                    raw_len: blob["raw_len"].as_u64(),
                },
            );
        }
    }
    blobs
}

/// The hashes of every blob in the store.
pub fn blob_hashes(store: &Path) -> BTreeSet<String> {
    blobs(store).into_keys().collect()
}

pub fn pack_path(store: &Path, pack: &str) -> PathBuf {
    store.join("data").join(&pack[..2]).join(pack)
}

/// A blob's content, decompressed.
pub fn read_blob(store: &Path, place: &Place) -> Vec<u8> {
    let pack = std::fs::read(pack_path(store, &place.pack)).expect("read the pack");
    let stored = &pack[place.offset as usize..(place.offset + place.len) as usize];
    match place.raw_len {
        Some(raw_len) => zstd::bulk::decompress(stored, raw_len as usize).expect("zstd"),
        None => stored.to_vec(),
    }
}

/// The only snapshot object (or format-1 manifest) in the store.
pub fn only_snapshot(store: &Path) -> PathBuf {
    let objects: Vec<PathBuf> = walkdir::WalkDir::new(store.join("snapshots"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect();
    assert_eq!(objects.len(), 1, "{objects:?}");
    objects.into_iter().next().expect("one")
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

/// A tree, by hash.
pub fn tree(store: &Path, hash: &str) -> Value {
    let place = blobs(store).remove(hash).expect("the tree is in the store");
    serde_json::from_slice(&read_blob(store, &place)).expect("a tree is JSON")
}

/// A format-2 snapshot object rewritten as the format-1 manifest of the same snapshot: every
/// entry with its path and its blobs' places. Format 1 stays readable, and its manifests carry
/// everything restore checks, so tests tamper with that form.
pub fn as_format_1(store: &Path, object: &Value) -> Value {
    if object["version"] == 1 {
        return object.clone();
    }
    let places = blobs(store);
    let mut entries = Vec::new();
    let mut folders = vec![(
        String::new(),
        object["tree"].as_str().expect("tree").to_string(),
    )];
    while let Some((folder, hash)) = folders.pop() {
        for node in tree(store, &hash)["entries"].as_array().expect("entries") {
            let name = node["name"].as_str().expect("tests use UTF-8 names");
            let path = if folder.is_empty() {
                name.to_string()
            } else {
                format!("{folder}/{name}")
            };
            let mut entry = node.clone();
            let entry_map = entry.as_object_mut().expect("object");
            entry_map.remove("name");
            entry_map.insert("path".into(), path.clone().into());
            match node["kind"].as_str().expect("kind") {
                "dir" => {
                    folders.push((path, node["tree"].as_str().expect("tree").to_string()));
                    entry_map.remove("tree");
                    if node.get("mode").is_none() {
                        continue;
                    }
                }
                "file" => {
                    let hashes: Vec<String> = match node.get("blobs") {
                        Some(blobs) => blobs
                            .as_array()
                            .expect("blobs")
                            .iter()
                            .map(|b| b.as_str().expect("hash").to_string())
                            .collect(),
                        None if node["size"] == 0 => Vec::new(),
                        None => vec![node["hash"].as_str().expect("hash").to_string()],
                    };
                    let blobs: Vec<Value> = hashes
                        .iter()
                        .map(|hash| {
                            let place = &places[hash];
                            let mut blob = json!({
                                "hash": hash, "pack": place.pack,
                                "offset": place.offset, "len": place.len,
                            });
                            if let Some(raw_len) = place.raw_len {
                                blob["raw_len"] = raw_len.into();
                            }
                            blob
                        })
                        .collect();
                    entry_map.insert("blobs".into(), blobs.into());
                }
                _ => {}
            }
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    let mut manifest = object.clone();
    let map = manifest.as_object_mut().expect("object");
    map.remove("tree");
    map.insert("version".into(), 1.into());
    map.insert("entries".into(), entries.into());
    manifest
}
