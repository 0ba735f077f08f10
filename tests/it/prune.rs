//! `gitkit prune`: what no snapshot uses goes, through a grace period; what any snapshot uses
//! stays restorable, whatever step a prune stopped at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::snapshot::{snapshot_json, tree};
use crate::support::{Env, describe, folder_store, pseudo_random_bytes, stderr, stdout};

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

fn prune(env: &Env, store: &Path, args: &[&str]) -> Value {
    let output = env
        .gitkit(["prune", "--json", "--store", utf8(store)])
        .args(args)
        .success();
    serde_json::from_str(stdout(&output).trim()).expect("one JSON object")
}

/// The snapshot ids in the store, oldest first.
fn snapshot_ids(store: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(store.join("snapshots/project"))
        .expect("list")
        .map(|e| {
            let name = e.expect("entry").file_name();
            name.to_str()
                .expect("utf-8")
                .trim_end_matches(".json")
                .to_string()
        })
        .collect();
    ids.sort();
    ids
}

fn snapshot_path(store: &Path, id: &str) -> PathBuf {
    store.join("snapshots/project").join(format!("{id}.json"))
}

/// Forgets a snapshot the way `gitkit forget` does: its object goes, its data stays.
fn forget(store: &Path, id: &str) {
    std::fs::remove_file(snapshot_path(store, id)).expect("rm");
}

/// Restores snapshot `id` and returns what it holds (the work tree, without `.git`).
fn restored(env: &Env, store: &Path, id: &str) -> BTreeMap<Vec<u8>, String> {
    let target = env.root_path().join(format!("restored-{id}"));
    let _ = std::fs::remove_dir_all(&target);
    env.gitkit([
        "restore",
        id,
        "--store",
        utf8(store),
        "--workspace",
        "project",
        "--to",
        utf8(&target),
    ])
    .success();
    let files = tree(&target);
    env.git(&target, ["fsck", "--strict"]).success();
    std::fs::remove_dir_all(&target).expect("rm");
    files
}

/// Three snapshots: the first holds `big.bin` (random, in packs of its own) and a small file
/// in a pack with it; the second drops `big.bin`; the third adds `later.txt`. Returns each
/// snapshot's id and work tree.
/// A snapshot's id, and the files it holds (path: kind, mode and content).
type Made = (String, BTreeMap<Vec<u8>, String>);

/// [`three_snapshots`], then the first forgotten and a prune that marks what only it used;
/// the snapshots, and the first one's object as it was stored (for a late writer to publish).
fn first_forgotten_and_marked(env: &Env, repo: &Path, store: &Path) -> (Vec<Made>, Vec<u8>) {
    let made = three_snapshots(env, repo, store);
    let object = std::fs::read(snapshot_path(store, &made[0].0)).expect("read");
    forget(store, &made[0].0);
    let marking = prune(env, store, &[]);
    assert!(marking["marked"].as_u64().expect("count") > 0, "{marking}");
    (made, object)
}

fn three_snapshots(env: &Env, repo: &Path, store: &Path) -> Vec<Made> {
    let mut made = Vec::new();
    std::fs::write(repo.join("big.bin"), pseudo_random_bytes(1, 600_000)).expect("write");
    std::fs::write(repo.join("small.txt"), b"small and kept\n").expect("write");
    for step in 0..3 {
        match step {
            1 => std::fs::remove_file(repo.join("big.bin")).expect("rm"),
            2 => std::fs::write(repo.join("later.txt"), b"later\n").expect("write"),
            _ => {}
        }
        let id = snapshot_json(env, repo, utf8(store))["summary"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        made.push((id, tree(repo)));
    }
    made
}

fn store_bytes(store: &Path) -> u64 {
    walkdir::WalkDir::new(store)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().expect("stat").len())
        .sum()
}

#[test]
fn prune_marks_first_then_frees_what_only_forgotten_snapshots_used() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let made = three_snapshots(&env, &repo, &store);
    forget(&store, &made[0].0);
    let before = store_bytes(&store);

    let dry = prune(&env, &store, &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(store_bytes(&store), before, "a dry run changes nothing");
    assert!(
        dry["marked_bytes"].as_u64().expect("bytes") >= 600_000,
        "{dry}"
    );

    // With the default grace period, unused packs are only marked.
    let first = prune(&env, &store, &[]);
    assert_eq!(first["deleted"], 0, "{first}");
    assert!(first["marked"].as_u64().expect("count") > 0, "{first}");
    assert!(store.join("deleting").read_dir().expect("marks").count() > 0);
    let marked: Vec<String> = std::fs::read_dir(store.join("deleting"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();

    // A writer never reuses a marked pack: the same content comes back, it is uploaded again.
    std::fs::write(repo.join("big.bin"), pseudo_random_bytes(1, 600_000)).expect("write");
    let again = snapshot_json(&env, &repo, utf8(&store));
    assert!(
        again["new_bytes"].as_u64().expect("bytes") >= 600_000,
        "uploaded again: {again}"
    );
    let again_id = again["summary"]["id"].as_str().expect("id").to_string();

    // Once the grace period is over (0 here), marked packs go and the bytes are freed.
    let before = store_bytes(&store);
    let second = prune(&env, &store, &["--grace", "0"]);
    assert_eq!(
        second["deleted"].as_u64(),
        Some(marked.len() as u64),
        "{second}"
    );
    assert!(second["deleted_bytes"].as_u64().expect("bytes") >= 600_000);
    for pack in &marked {
        assert!(
            !folder_store::pack_path(&store, pack).exists(),
            "{pack} deleted"
        );
    }
    let after = store_bytes(&store);
    assert!(after + 500_000 < before, "{after} bytes left of {before}");
    for (id, files) in &made[1..] {
        assert_eq!(&restored(&env, &store, id), files, "{id}");
    }
    assert_eq!(restored(&env, &store, &again_id), tree(&repo));

    // Nothing left to do.
    let third = prune(&env, &store, &["--grace", "0"]);
    for field in ["marked", "deleted", "repacked", "unmarked"] {
        assert_eq!(third[field], 0, "{field}: {third}");
    }
}

/// The race the grace period is for: a writer that listed the packs before a prune marked one
/// reused it, and published afterwards. The next prune sees the snapshot and copies what it
/// uses out of the marked pack before the pack goes; the mark itself is never taken back.
#[test]
fn a_marked_pack_a_snapshot_uses_again_is_copied_out_before_it_goes() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let (made, object) = first_forgotten_and_marked(&env, &repo, &store);
    let (first_id, first_files) = &made[0];

    // The late writer's snapshot appears.
    std::fs::write(snapshot_path(&store, first_id), object).expect("write");
    let second = prune(&env, &store, &["--grace", "0"]);
    assert!(second["rescued"].as_u64().expect("count") > 0, "{second}");
    assert_eq!(second["unmarked"], 0, "{second}");
    assert_eq!(&restored(&env, &store, first_id), first_files);
    assert!(
        !store.join("deleting").exists()
            || store.join("deleting").read_dir().expect("list").count() == 0
    );
}

/// Prune stopped after each of its steps (as if killed): every snapshot still restores, and
/// the next prune finishes the job.
#[test]
fn an_interrupted_prune_leaves_the_store_restorable_and_the_next_finishes_it() {
    for stop_after in 1..=5 {
        let (env, repo) = Env::with_project();
        let store = env.dir("store");
        let made = three_snapshots(&env, &repo, &store);
        forget(&store, &made[0].0);
        let stopped = env
            .gitkit(["prune", "--grace", "0", "--store", utf8(&store)])
            .env("GITKIT_TEST_PRUNE_STOP_AFTER", stop_after.to_string())
            .failure();
        assert!(
            crate::support::stderr(&stopped).contains("stopped after step"),
            "{}",
            crate::support::stderr(&stopped)
        );
        for (id, files) in &made[1..] {
            assert_eq!(
                &restored(&env, &store, id),
                files,
                "step {stop_after}: {id}"
            );
        }
        prune(&env, &store, &["--grace", "0"]);
        let after = prune(&env, &store, &["--grace", "0", "--dry-run"]);
        for field in ["marked", "deleted", "repacked"] {
            assert_eq!(after[field], 0, "step {stop_after}, {field}: {after}");
        }
        for (id, files) in &made[1..] {
            assert_eq!(
                &restored(&env, &store, id),
                files,
                "step {stop_after}: {id}"
            );
        }
        assert_eq!(snapshot_ids(&store).len(), 2);
    }
}

/// After a prune the per-pack index objects are folded into an index set: a fresh machine
/// reads a handful of objects, and still finds every blob the store holds.
#[test]
fn a_fresh_machine_reads_a_pruned_store_through_its_index_sets() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let made = three_snapshots(&env, &repo, &store);
    let outcome = prune(&env, &store, &["--grace", "0"]);
    assert!(outcome["folded"].as_u64().expect("count") > 1, "{outcome}");
    let per_pack = std::fs::read_dir(store.join("index")).map_or(0, |l| l.count());
    assert_eq!(per_pack, 0, "every index object folded");
    assert_eq!(
        std::fs::read_dir(store.join("indexes"))
            .expect("sets")
            .count(),
        1
    );

    // Another machine: the same repository, none of this one's caches.
    let clone = env.root_path().join("clone");
    env.command("cp")
        .args(["-a", utf8(&repo), utf8(&clone)])
        .success();
    std::fs::remove_dir_all(clone.join(".git/gitkit")).expect("no caches");
    let fresh = snapshot_json(&env, &clone, utf8(&store));
    assert!(
        fresh["new_bytes"].as_u64().expect("bytes") < 10_000,
        "content found through the index set, not uploaded again: {fresh}"
    );
    for (id, files) in &made {
        assert_eq!(&restored(&env, &store, id), files, "{id}");
    }
}

/// Two prunes at once, interleaved as they can be on two machines: prune A listed the marks
/// (old enough), prune B then found a late snapshot X using a marked pack, and a writer made
/// snapshot Y after; prune A lists the snapshots after X was forgotten but before Y was
/// published. Were B to take the mark back, the writer would reuse the pack and A delete it
/// under Y. B copies what X uses out instead (to a pack of a new id), the mark stays, and Y
/// reuses the copy.
#[test]
fn a_prune_with_an_older_view_of_the_marks_does_not_delete_what_a_new_snapshot_reuses() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let (made, x_object) = first_forgotten_and_marked(&env, &repo, &store);
    let (x_id, _) = &made[0];
    let marks: Vec<(PathBuf, String)> = std::fs::read_dir(store.join("deleting"))
        .expect("list")
        .map(|e| {
            let e = e.expect("entry");
            (e.path(), e.file_name().into_string().expect("utf-8"))
        })
        .collect();
    // The marks are old enough (the default grace period is a day).
    let age_marks = || {
        for (mark, _) in &marks {
            if mark.exists() {
                env.command("touch")
                    .args(["-m", "-d", "3 days ago"])
                    .args([mark])
                    .success();
            }
        }
    };
    age_marks();

    // X, whose writer reused the packs before they were marked, appears; prune B sees it.
    std::fs::write(snapshot_path(&store, x_id), &x_object).expect("write");
    prune(&env, &store, &[]);
    // A writer takes the same content again: Y.
    std::fs::write(repo.join("big.bin"), pseudo_random_bytes(1, 600_000)).expect("write");
    let y = snapshot_json(&env, &repo, utf8(&store));
    let y_id = y["summary"]["id"].as_str().expect("id").to_string();
    let y_files = tree(&repo);

    // Prune A's view: the marks as they were before B ran, X forgotten, Y not yet there.
    forget(&store, x_id);
    let y_object = std::fs::read(snapshot_path(&store, &y_id)).expect("read");
    forget(&store, &y_id);
    for (mark, _) in &marks {
        std::fs::write(mark, b"").expect("mark");
    }
    age_marks();
    prune(&env, &store, &[]);
    std::fs::write(snapshot_path(&store, &y_id), &y_object).expect("write");
    assert_eq!(restored(&env, &store, &y_id), y_files);
}

/// A writer that takes back content a prune marked uploads it again. Were the same blobs in
/// the same order to make the same pack, its id would be the marked pack's, whose mark is old,
/// and a prune listing the snapshots before the writer publishes would delete the pack the new
/// snapshot uses. Packs start with random bytes, so the new pack has an id of its own.
#[test]
fn a_pack_uploaded_again_under_a_marked_id_is_not_deleted_with_the_old_mark() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let base = snapshot_json(&env, &repo, utf8(&store));
    assert!(base["summary"]["id"].is_string());
    // Content of its own: one pack holds only big.bin's chunks (it is not committed, so .git
    // does not change).
    let big = pseudo_random_bytes(7, 600_000);
    std::fs::write(repo.join("big.bin"), &big).expect("write");
    let with_big = snapshot_json(&env, &repo, utf8(&store));
    let with_big_id = with_big["summary"]["id"].as_str().expect("id").to_string();
    std::fs::remove_file(repo.join("big.bin")).expect("rm");
    snapshot_json(&env, &repo, utf8(&store));
    forget(&store, &with_big_id);
    let marking = prune(&env, &store, &[]);
    assert!(marking["marked"].as_u64().expect("count") > 0, "{marking}");

    // big.bin comes back: uploaded again, into a pack with the marked pack's id.
    std::fs::write(repo.join("big.bin"), &big).expect("write");
    let again = snapshot_json(&env, &repo, utf8(&store));
    assert!(
        again["new_bytes"].as_u64().expect("bytes") >= 600_000,
        "{again}"
    );
    let again_id = again["summary"]["id"].as_str().expect("id").to_string();
    let files = tree(&repo);
    let modified = |path: &Path| path.metadata().expect("stat").modified().expect("mtime");
    let same_id = std::fs::read_dir(store.join("deleting"))
        .expect("marks")
        .map(|mark| mark.expect("entry"))
        .any(|mark| {
            let pack = folder_store::pack_path(&store, mark.file_name().to_str().expect("utf-8"));
            pack.exists() && modified(&pack) > modified(&mark.path())
        });
    assert!(
        !same_id,
        "no pack is written again under a marked pack's id: each pack's bytes start with salt"
    );

    // The marks are old (the default grace is a day); a prune lists the snapshots just before
    // the writer publishes.
    for mark in std::fs::read_dir(store.join("deleting")).expect("marks") {
        env.command("touch")
            .args(["-m", "-d", "3 days ago"])
            .args([mark.expect("entry").path()])
            .success();
    }
    let object = std::fs::read(snapshot_path(&store, &again_id)).expect("read");
    forget(&store, &again_id);
    prune(&env, &store, &[]);
    std::fs::write(snapshot_path(&store, &again_id), object).expect("write");
    assert_eq!(restored(&env, &store, &again_id), files);
}

/// Red-team (sixth session): a pack whose index object is gone (deleted by hand, or by a
/// bucket's lifecycle rule) while a snapshot uses what it holds. Prune took it for a crashed
/// writer's leftover and deleted its data once older than the grace period: damage that putting
/// the index object back would have mended became for good. Now prune stops before changing
/// anything and names the snapshot, as for a missing tree; with the object back, it prunes.
#[test]
fn a_used_pack_without_its_index_object_stops_prune_and_stays() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let content = pseudo_random_bytes(7, 10_000);
    std::fs::write(repo.join("weights.bin"), &content).expect("write");
    let id = snapshot_json(&env, &repo, utf8(&store))["summary"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let hash = blake3::hash(&content).to_hex().to_string();
    let pack = folder_store::blobs(&store)[&hash].pack.clone();
    let index_object = store.join("index").join(&pack);
    let described = std::fs::read(&index_object).expect("read");
    std::fs::remove_file(&index_object).expect("rm");
    // Everything older than the grace period (a day).
    for file in walkdir::WalkDir::new(&store)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        env.command("touch")
            .args(["-m", "-d", "3 days ago"])
            .args([file.path()])
            .success();
    }

    let output = env
        .gitkit(["prune", "--json", "--store", utf8(&store)])
        .output();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let said = stderr(&output);
    let in_pack: Value = serde_json::from_slice(&described).expect("JSON");
    let names_one = in_pack["blobs"]
        .as_array()
        .expect("blobs")
        .iter()
        .any(|blob| said.contains(&format!("blob {}", blob["hash"].as_str().expect("hash"))));
    assert!(
        said.contains(&format!("snapshot `project/{id}`")) && names_one,
        "{}",
        describe(&output)
    );
    assert!(
        folder_store::pack_path(&store, &pack).exists(),
        "the pack stays"
    );

    std::fs::write(&index_object, described).expect("write");
    prune(&env, &store, &[]);
    assert_eq!(restored(&env, &store, &id), tree(&repo));
}

/// The store passes `check --read-data`, and each of `made` restores as it was.
fn assert_whole(env: &Env, store: &Path, made: &[Made]) {
    env.gitkit(["check", "--read-data", "--store", utf8(store)])
        .success();
    for (id, files) in made {
        assert_eq!(&restored(env, store, id), files, "{id}");
    }
}

/// Runs a prune that pauses once it has read the first snapshot object (before its trees),
/// runs `meanwhile`, lets the prune go on and returns how it ended.
fn prune_paused(env: &Env, store: &Path, meanwhile: impl FnOnce()) -> std::process::Output {
    use std::os::unix::fs::OpenOptionsExt;
    let pause = env.root_path().join("pause");
    env.command("mkfifo").args([&pause]).success();
    let paused = env
        .gitkit(["prune", "--json", "--store", utf8(store)])
        .env("GITKIT_TEST_PRUNE_PAUSE", &pause);
    let output = std::thread::scope(|scope| {
        let paused = scope.spawn(move || paused.output());
        // The pipe opens for writing once the paused prune has opened it to read.
        let resume = loop {
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&pause);
            match opened {
                Ok(pipe) => break pipe,
                Err(_) if !paused.is_finished() => std::thread::yield_now(),
                Err(e) => panic!("the prune did not pause ({e})"),
            }
        };
        meanwhile();
        drop(resume);
        paused.join().expect("the prune's thread")
    });
    std::fs::remove_file(&pause).expect("rm the pipe");
    output
}

/// Red-team (sixth session): two prunes at once. One lists; the other then copies the used
/// blobs out of a sparse pack and deletes it (`--grace 0`); the first, coming to copy the same
/// pack, found it gone and failed with "no object data/..." (4 prunes in 281 in a race of three
/// machines). Now it passes the pack over, and the store stays whole.
#[test]
fn a_pack_another_prune_deleted_meanwhile_is_passed_over() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let made = three_snapshots(&env, &repo, &store);
    forget(&store, &made[0].0);
    let output = prune_paused(&env, &store, || {
        let quick = prune(&env, &store, &["--grace", "0"]);
        assert!(quick["repacked"].as_u64().expect("count") > 0, "{quick}");
    });
    assert!(output.status.success(), "{}", describe(&output));

    prune(&env, &store, &["--grace", "0"]);
    assert_whole(&env, &store, &made[1..]);
}

/// Red-team (sixth session): a prune read a snapshot object; the snapshot was then forgotten
/// and another prune deleted the packs of its trees (`--grace 0`). Reading the trees, the
/// first prune failed with "no object data/..."; the race test saw it. Now it lists the packs
/// again, finds the snapshot gone, and goes on without it.
#[test]
fn a_snapshot_forgotten_and_pruned_while_a_prune_reads_it_is_passed_over() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let made = three_snapshots(&env, &repo, &store);
    // The second snapshot's trees (its root alone: the first dropped `big.bin`) are then the
    // first a prune reads.
    forget(&store, &made[0].0);
    prune(&env, &store, &["--grace", "0"]);
    let output = prune_paused(&env, &store, || {
        forget(&store, &made[1].0);
        let quick = prune(&env, &store, &["--grace", "0"]);
        assert!(quick["deleted"].as_u64().expect("count") > 0, "{quick}");
    });
    assert!(output.status.success(), "{}", describe(&output));
    let outcome: Value = serde_json::from_str(stdout(&output).trim()).expect("JSON");
    assert_eq!(outcome["snapshots"], 1, "{outcome}");
    assert_whole(&env, &store, &made[2..]);
}

/// How many packs in `store` hold each blob, by the index objects and index sets of packs
/// whose data is there.
fn copies(store: &Path) -> BTreeMap<String, usize> {
    let mut packs: Vec<Value> = Vec::new();
    for folder in ["index", "indexes"] {
        let Ok(listing) = std::fs::read_dir(store.join(folder)) else {
            continue;
        };
        for object in listing {
            let json = folder_store::read_json(&object.expect("entry").path());
            match json["packs"].as_array() {
                Some(set) => packs.extend(set.iter().cloned()),
                None => packs.push(json),
            }
        }
    }
    let mut copies = BTreeMap::new();
    for pack in packs {
        let id = pack["pack"].as_str().expect("pack id");
        if !folder_store::pack_path(store, id).exists() {
            continue;
        }
        for blob in pack["blobs"].as_array().expect("blobs") {
            let hash = blob["hash"].as_str().expect("hash").to_string();
            *copies.entry(hash).or_insert(0) += 1;
        }
    }
    copies
}

/// Red-team (sixth session): two machines that uploaded the same content at once left it in
/// two packs, both snapshots naming it by hash. Prune kept both for good (each pack all
/// used), and every reader downloaded both to check one against the other. Now a blob counts
/// as used in one pack only: the other copy goes like garbage, and both snapshots restore.
#[test]
fn content_two_machines_uploaded_at_once_is_kept_once() {
    let (env, repo) = Env::with_project();
    std::fs::write(repo.join("data.bin"), pseudo_random_bytes(3, 300_000)).expect("write");
    let store = env.dir("store");
    let elsewhere = env.dir("elsewhere");
    // The second machine's upload, made without seeing the first, then in the same store.
    let first = snapshot_json(&env, &repo, utf8(&store));
    std::fs::remove_dir_all(repo.join(".git/gitkit")).expect("rm the first machine's caches");
    let second = snapshot_json(&env, &repo, utf8(&elsewhere));
    for entry in walkdir::WalkDir::new(&elsewhere)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        let relative = entry.path().strip_prefix(&elsewhere).expect("inside");
        let to = store.join(relative);
        std::fs::create_dir_all(to.parent().expect("a folder")).expect("mkdir");
        std::fs::copy(entry.path(), to).expect("copy");
    }
    let twice = copies(&store).values().filter(|&&n| n == 2).count();
    assert!(twice > 0, "the content is in the store twice");

    let pruned = prune(&env, &store, &["--grace", "0"]);
    assert!(pruned["deleted"].as_u64().expect("count") > 0, "{pruned}");
    let left = copies(&store);
    assert!(left.values().all(|&n| n == 1), "{left:?}");
    env.gitkit(["check", "--read-data", "--store", utf8(&store)])
        .success();
    for made in [first, second] {
        let id = made["summary"]["id"].as_str().expect("id");
        assert_eq!(restored(&env, &store, id), tree(&repo), "{id}");
    }
}
