//! `gitkit check`: a whole store passes; a deleted, truncated or corrupted pack is found and
//! named with exactly the snapshots it touches.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::snapshot::{rich_repository, snapshot_json};
use crate::support::folder_store;
use crate::support::s3::{BUCKET, Weed};
use crate::support::{Env, describe, pseudo_random_bytes, stdout};

/// A store with two snapshots of `project`: the second adds a large file whose pack only it
/// uses. Returns the store, both snapshots' names (`workspace/id`) and that pack's id.
struct TwoSnapshots {
    env: Env,
    store: PathBuf,
    first: String,
    second: String,
    pack: String,
}

fn two_snapshots() -> TwoSnapshots {
    let env = Env::new();
    let repo = rich_repository(&env);
    let store = env.dir("store");
    let first = name(&snapshot_json(&env, &repo, store.to_str().expect("utf-8")));
    let big = pseudo_random_bytes(10, 300_000);
    std::fs::write(repo.join("weights.bin"), &big).expect("write");
    let second = name(&snapshot_json(&env, &repo, store.to_str().expect("utf-8")));
    let hash = blake3::hash(&big).to_hex().to_string();
    let pack = folder_store::blobs(&store)
        .remove(&hash)
        .expect("the new file is stored as one blob")
        .pack;
    TwoSnapshots {
        env,
        store,
        first,
        second,
        pack,
    }
}

fn name(outcome: &Value) -> String {
    let summary = &outcome["summary"];
    format!(
        "{}/{}",
        summary["workspace"].as_str().expect("workspace"),
        summary["id"].as_str().expect("id")
    )
}

/// `gitkit check --json` with `args`, and its exit code.
fn check(env: &Env, store: &Path, args: &[&str]) -> (i32, Value, String) {
    let output = env
        .gitkit(["check", "--json", "--store"])
        .args([store])
        .args(args)
        .output();
    let code = output.status.code().expect("exited");
    let report: Value = serde_json::from_str(&stdout(&output))
        .unwrap_or_else(|e| panic!("not a JSON report ({e}): {}", describe(&output)));
    (code, report, describe(&output))
}

/// The snapshots each damaged object of `kind` names, by its id.
fn damaged(report: &Value, kind: &str) -> Vec<(String, Vec<String>)> {
    report["damaged"]
        .as_array()
        .expect("damaged")
        .iter()
        .filter(|d| d["object"] == kind)
        .map(|d| {
            let names = d["snapshots"]
                .as_array()
                .expect("snapshots")
                .iter()
                .map(|s| s.as_str().expect("name").to_string())
                .collect();
            (d["id"].as_str().expect("id").to_string(), names)
        })
        .collect()
}

#[track_caller]
fn assert_whole(env: &Env, store: &Path, snapshots: u64) {
    for args in [&[][..], &["--read-data"]] {
        let (code, report, output) = check(env, store, args);
        assert_eq!(code, 0, "{output}");
        assert_eq!(report["damaged"], Value::Array(vec![]), "{output}");
        assert_eq!(report["snapshots"], snapshots, "{output}");
    }
}

/// Asserts that `report` names `pack` as damaged, with exactly `touched`, and nothing else.
#[track_caller]
fn assert_only_pack(code: i32, report: &Value, pack: &str, touched: &[&str], output: &str) {
    assert_eq!(code, 1, "damage fails the check: {output}");
    let packs = damaged(report, "pack");
    let touched: Vec<String> = touched.iter().map(|s| s.to_string()).collect();
    assert_eq!(packs, [(pack.to_string(), touched)], "{output}");
    assert_eq!(
        report["damaged"].as_array().expect("array").len(),
        1,
        "{output}"
    );
}

#[test]
fn a_whole_store_passes_with_and_without_reading_data() {
    let s = two_snapshots();
    assert_whole(&s.env, &s.store, 2);
    let text = s
        .env
        .gitkit(["check", "--store"])
        .args([&s.store])
        .success();
    assert_eq!(stdout(&text), "", "no damage, no data");
}

#[test]
fn an_empty_store_has_nothing_to_check() {
    let env = Env::new();
    let store = env.dir("empty");
    let (code, report, output) = check(&env, &store, &[]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(report["snapshots"], 0);
    assert!(output.contains("nothing to check"), "{output}");
}

#[test]
fn a_deleted_pack_names_only_the_snapshot_that_uses_it() {
    let s = two_snapshots();
    std::fs::remove_file(folder_store::pack_path(&s.store, &s.pack)).expect("delete");
    for args in [&[][..], &["--read-data"]] {
        let (code, report, output) = check(&s.env, &s.store, args);
        assert_only_pack(code, &report, &s.pack, &[&s.second], &output);
        assert!(!output.contains(&s.first), "{output}");
    }
    // The text names the pack and the snapshot on stdout.
    let text = s
        .env
        .gitkit(["check", "--store"])
        .args([&s.store])
        .failure();
    let lines = stdout(&text);
    assert!(
        lines.contains(&format!("damaged pack {}", s.pack)),
        "{lines}"
    );
    assert!(
        lines.contains(&format!("  snapshot {}", s.second)),
        "{lines}"
    );
    let message = crate::support::stderr(&text);
    assert!(message.contains("touching 1 of 2 snapshot"), "{message}");
    assert!(
        message.contains("hint: the snapshots not named"),
        "{message}"
    );
}

/// Plain check catches a truncated pack too: its index object reaches past its listed size.
#[test]
fn a_truncated_pack_is_found_from_its_listed_size() {
    let s = two_snapshots();
    let path = folder_store::pack_path(&s.store, &s.pack);
    let len = std::fs::metadata(&path).expect("stat").len();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(len - 1000)
        .expect("truncate");
    for args in [&[][..], &["--read-data"]] {
        let (code, report, output) = check(&s.env, &s.store, args);
        assert_only_pack(code, &report, &s.pack, &[&s.second], &output);
        assert!(output.contains("truncated"), "{output}");
    }
}

/// A byte changed inside file content passes a plain check (packs are not read) and is found
/// by --read-data.
#[test]
fn a_corrupted_byte_is_found_by_reading_data() {
    let s = two_snapshots();
    let path = folder_store::pack_path(&s.store, &s.pack);
    flip_byte(&path, 5000);
    let (code, _, output) = check(&s.env, &s.store, &[]);
    assert_eq!(code, 0, "plain check does not read file content: {output}");
    let (code, report, output) = check(&s.env, &s.store, &["--read-data"]);
    assert_only_pack(code, &report, &s.pack, &[&s.second], &output);
    assert!(output.contains("hash"), "{output}");
}

/// --workspace limits the check to that workspace's snapshots.
#[test]
fn only_the_named_workspace_is_checked() {
    let s = two_snapshots();
    std::fs::remove_file(folder_store::pack_path(&s.store, &s.pack)).expect("delete");
    let (code, report, output) = check(&s.env, &s.store, &["--workspace", "other"]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(report["snapshots"], 0, "{output}");
    let (code, _, output) = check(&s.env, &s.store, &["--workspace", "project"]);
    assert_eq!(code, 1, "{output}");
}

fn flip_byte(path: &Path, at: usize) {
    let mut data = std::fs::read(path).expect("read");
    data[at] ^= 0x01;
    std::fs::write(path, data).expect("write");
}

#[test]
fn a_format_1_store_passes_and_a_corrupted_pack_is_found() {
    let env = Env::new();
    let store = env.dir("v1");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store"),
        &store,
    );
    assert_whole(&env, &store, 2);

    // The pack one of the manifests names, and every snapshot that names it.
    let manifests: Vec<(String, Value)> = walkdir::WalkDir::new(store.join("snapshots"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let manifest = folder_store::read_json(e.path());
            let name = format!(
                "{}/{}",
                manifest["workspace"].as_str().expect("workspace"),
                manifest["id"].as_str().expect("id")
            );
            (name, manifest)
        })
        .collect();
    let packs_of = |manifest: &Value| -> Vec<String> {
        manifest["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .flat_map(|e| e["blobs"].as_array().cloned().unwrap_or_default())
            .map(|b| b["pack"].as_str().expect("pack").to_string())
            .collect()
    };
    let pack = packs_of(&manifests[0].1)[0].clone();
    let mut touched: Vec<&str> = manifests
        .iter()
        .filter(|(_, m)| packs_of(m).contains(&pack))
        .map(|(name, _)| name.as_str())
        .collect();
    touched.sort();

    flip_byte(&folder_store::pack_path(&store, &pack), 3);
    let (code, report, output) = check(&env, &store, &["--read-data"]);
    assert_only_pack(code, &report, &pack, &touched, &output);
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let target = to.join(entry.path().strip_prefix(from).expect("inside"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Through a real S3 server: whole, then a pack of the second snapshot deleted and another
/// corrupted, each found and naming only that snapshot.
#[test]
fn s3_check_finds_a_deleted_and_a_corrupted_pack() {
    let env = Weed::shared_env();
    let weed = Weed::shared();
    let repo = rich_repository(&env);
    let store = format!("s3://{BUCKET}/check");
    let first = name(&snapshot_json(&env, &repo, &store));
    let before = s3_packs(&env, weed, &store);
    std::fs::write(repo.join("weights.bin"), pseudo_random_bytes(11, 300_000)).expect("write");
    let second = name(&snapshot_json(&env, &repo, &store));
    let new: Vec<(String, u64)> = s3_packs(&env, weed, &store)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert!(!new.is_empty());
    let s3_check = |args: &[&str]| {
        let output = env
            .gitkit(["check", "--json", "--store", &store])
            .args(args)
            .output();
        let report: Value = serde_json::from_str(&stdout(&output)).expect("a JSON report");
        (
            output.status.code().expect("exited"),
            report,
            describe(&output),
        )
    };
    let (code, report, output) = s3_check(&["--read-data"]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(report["snapshots"], 2, "{output}");

    // The largest new pack holds the new file; a changed byte in it needs --read-data.
    let (largest, _) = new
        .iter()
        .max_by_key(|(_, size)| *size)
        .expect("one")
        .clone();
    let key = format!("{store}/data/{}/{largest}", &largest[..2]);
    let local = env.root_path().join("pack");
    aws(
        &env,
        weed,
        &["s3", "cp", "--only-show-errors", &key, path_str(&local)],
    );
    flip_byte(&local, 5000);
    aws(
        &env,
        weed,
        &["s3", "cp", "--only-show-errors", path_str(&local), &key],
    );
    let (code, _, output) = s3_check(&[]);
    assert_eq!(code, 0, "{output}");
    let (code, report, output) = s3_check(&["--read-data"]);
    assert_only_pack(code, &report, &largest, &[&second], &output);
    assert!(!output.contains(&first), "{output}");

    aws(&env, weed, &["s3", "rm", "--only-show-errors", &key]);
    let (code, report, output) = s3_check(&[]);
    assert_only_pack(code, &report, &largest, &[&second], &output);
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

#[track_caller]
fn aws(env: &Env, weed: &Weed, args: &[&str]) -> String {
    let output = env
        .command("aws")
        .args(args)
        .args(["--endpoint-url", &weed.endpoint()])
        .success();
    stdout(&output)
}

/// The packs under `store` (an `s3://` URL), with their sizes.
fn s3_packs(env: &Env, weed: &Weed, store: &str) -> Vec<(String, u64)> {
    let listing = aws(
        env,
        weed,
        &["s3", "ls", "--recursive", &format!("{store}/data/")],
    );
    listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let size = fields.get(2)?.parse().ok()?;
            let pack = fields.get(3)?.rsplit('/').next()?.to_string();
            Some((pack, size))
        })
        .collect()
}

/// A changed byte in a tree is found without reading data (trees are read to list a
/// snapshot's files), and with --read-data the pack holding it is named too.
#[test]
fn a_corrupted_tree_names_the_snapshot_whose_tree_it_is() {
    let s = two_snapshots();
    let (workspace, id) = s.second.split_once('/').expect("workspace/id");
    let object = folder_store::read_json(&s.store.join(format!("snapshots/{workspace}/{id}.json")));
    let root = object["tree"].as_str().expect("a format-2 snapshot");
    let place = folder_store::blobs(&s.store)
        .remove(root)
        .expect("the root tree is stored");
    flip_byte(
        &folder_store::pack_path(&s.store, &place.pack),
        place.offset as usize + 1,
    );
    let (code, report, output) = check(&s.env, &s.store, &[]);
    assert_eq!(code, 1, "{output}");
    assert_eq!(
        damaged(&report, "tree"),
        [(root.to_string(), vec![s.second.clone()])],
        "{output}"
    );
    let (code, report, output) = check(&s.env, &s.store, &["--read-data"]);
    assert_eq!(code, 1, "{output}");
    assert_eq!(
        damaged(&report, "pack"),
        [(place.pack.clone(), vec![s.second.clone()])],
        "{output}"
    );
    assert!(!output.contains(&s.first), "{output}");
}

/// A format-1 manifest names its packs itself: with a pack's index object gone, its
/// snapshots still restore, and --read-data checks the places the manifests name.
#[test]
fn a_format_1_pack_without_its_index_object_is_checked_by_what_the_manifests_name() {
    let env = Env::new();
    let store = env.dir("v1");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store"),
        &store,
    );
    let pack = std::fs::read_dir(store.join("index"))
        .expect("list")
        .next()
        .expect("an index object")
        .expect("entry")
        .file_name()
        .into_string()
        .expect("utf-8");
    std::fs::remove_file(store.join("index").join(&pack)).expect("delete");
    assert_whole(&env, &store, 2);

    // A manifest that names, at a place in that pack, content the place does not hold: the
    // pack is whole and no index object lists the place, so only its own hash can tell.
    let manifest_path = std::fs::read_dir(store.join("snapshots/fixture"))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .find(|path| {
            let manifest = folder_store::read_json(path);
            manifest["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .any(|e| {
                    e["blobs"]
                        .as_array()
                        .is_some_and(|b| b.len() == 1 && b[0]["pack"] == pack.as_str())
                })
        })
        .expect("a manifest naming that pack");
    let mut manifest = folder_store::read_json(&manifest_path);
    let other = blake3::hash(b"not what is stored").to_hex().to_string();
    let entry = manifest["entries"]
        .as_array_mut()
        .expect("entries")
        .iter_mut()
        .find(|e| {
            e["blobs"]
                .as_array()
                .is_some_and(|b| b.len() == 1 && b[0]["pack"] == pack.as_str())
        })
        .expect("one");
    entry["hash"] = other.clone().into();
    entry["blobs"][0]["hash"] = other.into();
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("json")).expect("write");
    let (code, _, output) = check(&env, &store, &[]);
    assert_eq!(code, 0, "a plain check reads no content: {output}");
    let (code, report, output) = check(&env, &store, &["--read-data"]);
    assert_eq!(code, 1, "{output}");
    let packs = damaged(&report, "pack");
    assert_eq!(packs.len(), 1, "{output}");
    assert_eq!(packs[0].0, pack, "{output}");
    assert!(
        output.contains("format-1 snapshot names a place"),
        "{output}"
    );
}

/// After a prune has folded the index objects into index sets, a pack that only a set
/// describes is still named when its data is deleted or truncated.
#[test]
fn a_damaged_pack_that_only_an_index_set_describes_is_named() {
    let s = two_snapshots();
    s.env
        .gitkit(["prune", "--grace", "0", "--store"])
        .args([&s.store])
        .success();
    assert!(
        !s.store.join("index").join(&s.pack).exists(),
        "prune folded the pack's index object into a set"
    );
    assert_whole(&s.env, &s.store, 2);

    let path = folder_store::pack_path(&s.store, &s.pack);
    let len = std::fs::metadata(&path).expect("stat").len();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(len - 10)
        .expect("truncate");
    let (code, report, output) = check(&s.env, &s.store, &[]);
    assert_only_pack(code, &report, &s.pack, &[&s.second], &output);
    assert!(output.contains("truncated"), "{output}");

    std::fs::remove_file(&path).expect("delete");
    let (code, report, output) = check(&s.env, &s.store, &[]);
    assert_only_pack(code, &report, &s.pack, &[&s.second], &output);
    assert!(output.contains("index set"), "{output}");
}
