//! A restore that stops part-way (interrupted, or a pack that fails its check among many
//! written at once) leaves the target as it found it.

use std::path::{Path, PathBuf};

use crate::snapshot::{restore_project, snapshot_json};
use crate::support::folder_store;
use crate::support::{Env, describe, pseudo_random_bytes, stderr};

const STAGING: &str = ".gitkit-tmp-restore-";

/// A project of many small files of their own (many packs, and pack writes that each make
/// hundreds of files), snapshotted into a folder store.
fn many_files() -> (Env, PathBuf, PathBuf) {
    let (env, repo) = Env::with_project();
    for folder in 0..16 {
        let dir = repo.join(format!("d{folder:02}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for file in 0..500 {
            let seed = folder * 1000 + file + 1;
            let data = pseudo_random_bytes(seed, 700);
            std::fs::write(dir.join(format!("f{file:03}.bin")), data).expect("write");
        }
    }
    let store = env.dir("store");
    snapshot_json(&env, &repo, store.to_str().expect("utf-8"));
    (env, repo, store)
}

/// Whether `target` holds a staging folder with at least `files` files in it already.
fn staging_holds(target: &Path, files: usize) -> bool {
    let Ok(entries) = std::fs::read_dir(target) else {
        return false;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING))
        .any(|staging| {
            walkdir::WalkDir::new(staging.path())
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .take(files)
                .count()
                == files
        })
}

/// What is in `dir`, if it exists.
fn contents(dir: &Path) -> Option<Vec<String>> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
    )
}

/// Guards a restore stopped while its pack writers were making files: the writers ran on
/// after the restore was dropped, so the staging folder's removal found it not empty and part
/// of it stayed in the target (and a target the restore made stayed too).
#[test]
fn a_restore_interrupted_while_packs_are_written_leaves_nothing() {
    let (env, _repo, store) = many_files();
    let store = store.to_str().expect("utf-8");
    for (round, signal) in ["-TERM", "-INT", "-TERM", "-INT"].into_iter().enumerate() {
        // Rounds alternate: a target the restore makes, and an empty one that is there.
        let made = round % 2 == 0;
        let target = env.root_path().join(format!("restored-{round}"));
        if !made {
            std::fs::create_dir_all(&target).expect("mkdir");
        }
        let mut restoring = restore_project(&env, store, &target).spawn();
        // Interrupt it once its writers are busy (a condition, not a delay).
        let started = std::time::Instant::now();
        while !staging_holds(&target, 200) {
            if restoring.try_wait().expect("wait").is_some() {
                panic!("round {round}: the restore ended before it was interrupted");
            }
            assert!(started.elapsed().as_secs() < 120, "never began writing");
            std::thread::yield_now();
        }
        env.command("kill")
            .args([signal, &restoring.id().to_string()])
            .success();
        let status = restoring.wait().expect("wait");
        assert_eq!(status.code(), Some(1), "round {round}: {status:?}");
        let left = contents(&target);
        if made {
            assert_eq!(
                left, None,
                "round {round}: the target it made is still there"
            );
        } else {
            assert_eq!(left, Some(Vec::new()), "round {round}: left in the target");
        }
    }
}

/// A pack among many that fails its check as it streams: a clear error, exit 1, and the
/// target as it was, while the other packs were being written at the same time.
#[test]
fn a_damaged_pack_among_many_is_named_and_nothing_is_left() {
    let (env, _repo, store) = many_files();
    // The largest pack: file content, written alongside the others.
    let packs = folder_store::blobs(&store);
    let pack = packs
        .values()
        .map(|place| place.pack.clone())
        .max_by_key(|pack| {
            std::fs::metadata(folder_store::pack_path(&store, pack))
                .expect("pack")
                .len()
        })
        .expect("packs");
    let path = folder_store::pack_path(&store, &pack);
    let mut data = std::fs::read(&path).expect("read");
    let at = data.len() * 9 / 10;
    data[at] ^= 1;
    std::fs::write(&path, data).expect("write");
    let store = store.to_str().expect("utf-8");
    for made in [true, false] {
        let target = env.root_path().join(if made { "made" } else { "empty" });
        if !made {
            std::fs::create_dir_all(&target).expect("mkdir");
        }
        let output = restore_project(&env, store, &target).output();
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        assert!(
            stderr(&output).contains(&format!("does not match its hash (pack {pack})")),
            "{}",
            describe(&output)
        );
        let expected = (!made).then(Vec::new);
        assert_eq!(contents(&target), expected, "{}", describe(&output));
    }
}

/// A machine whose temporary folder is missing: the restore says that it is this machine's
/// folder, not the store, that needs seeing to, and the target is not made.
#[test]
fn a_restore_without_a_temporary_folder_names_it_and_leaves_nothing() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    snapshot_json(&env, &repo, store);
    let target = env.root_path().join("restored");
    let output = restore_project(&env, store, &target)
        .env("TMPDIR", env.root_path().join("no such folder"))
        .output();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let said = stderr(&output);
    assert!(
        said.contains("this machine") && said.contains("TMPDIR"),
        "{}",
        describe(&output)
    );
    assert!(
        !said.contains("store is reachable"),
        "{}",
        describe(&output)
    );
    assert_eq!(contents(&target), None, "{}", describe(&output));
}
