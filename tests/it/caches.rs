//! The local caches under `.git/gitkit/` tampered with between snapshots: a damaged or lying
//! record never makes a snapshot that reports success but cannot be restored as it was.

use std::path::{Path, PathBuf};

use crate::snapshot::{restore_latest, snapshot_json, tree};
use crate::support::{Env, describe, pseudo_random_bytes, stderr};

/// One record of `files.bin` (see `src/snapshot/cache.rs`): the path, the fixed stat fields
/// and racy byte kept as they are, the content hash and the blobs.
struct Record {
    path: Vec<u8>,
    fixed: Vec<u8>,
    hash: [u8; 32],
    blobs: Vec<([u8; 32], u64)>,
}

const FILES_MAGIC: &[u8; 16] = b"gitkit-files\x00\x00\x00\x01";
const END: u32 = u32::MAX;

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

fn read_records(file: &Path) -> Vec<Record> {
    let data = std::fs::read(file).expect("read the file cache");
    assert_eq!(&data[..16], FILES_MAGIC);
    let mut at = 16;
    let mut records = Vec::new();
    loop {
        let len = u32_at(&data, at);
        at += 4;
        if len == END {
            return records;
        }
        let path = data[at..at + len as usize].to_vec();
        at += len as usize;
        let fixed = data[at..at + 45].to_vec();
        at += 45;
        let hash = data[at..at + 32].try_into().expect("32 bytes");
        at += 32;
        let count = u32_at(&data, at);
        at += 4;
        let blobs = (0..count)
            .map(|_| {
                let hash = data[at..at + 32].try_into().expect("32 bytes");
                let len = u64::from_le_bytes(data[at + 32..at + 40].try_into().expect("8"));
                at += 40;
                (hash, len)
            })
            .collect();
        records.push(Record {
            path,
            fixed,
            hash,
            blobs,
        });
    }
}

fn write_records(file: &Path, records: &[Record]) {
    let mut data = FILES_MAGIC.to_vec();
    for record in records {
        data.extend((record.path.len() as u32).to_le_bytes());
        data.extend(&record.path);
        data.extend(&record.fixed);
        data.extend(record.hash);
        data.extend((record.blobs.len() as u32).to_le_bytes());
        for (hash, len) in &record.blobs {
            data.extend(hash);
            data.extend(len.to_le_bytes());
        }
    }
    data.extend(END.to_le_bytes());
    std::fs::write(file, data).expect("write the file cache");
}

/// A project whose files are trusted from the cache as soon as they were read (no racy
/// window), snapshotted once into a folder store.
fn snapshotted() -> (Env, PathBuf, String) {
    let (env, repo) = Env::with_project();
    let env = env.with("GITKIT_TEST_RACY_WINDOW_MS", "0");
    std::fs::write(repo.join("a.txt"), b"hello\n").expect("write");
    std::fs::write(repo.join("b.txt"), b"world\n").expect("write");
    let store = env.dir("store").to_str().expect("utf-8").to_string();
    snapshot_json(&env, &repo, &store);
    (env, repo, store)
}

/// Guards a file cache record whose blobs could not be what a read of the file found (none
/// for a file that is not empty, a lone blob that is not the file's hash): it was trusted, and
/// the snapshot it made named a blob no pack held, or a file disagreeing with its one blob, so
/// `restore latest` skipped it for an older one.
#[test]
fn a_file_cache_record_of_the_wrong_shape_is_not_trusted() {
    for case in ["no blobs", "a lone blob that is not the file's hash"] {
        let (env, repo, store) = snapshotted();
        let cache = repo.join(".git/gitkit/files.bin");
        let mut records = read_records(&cache);
        let record = records
            .iter_mut()
            .find(|r| r.path == b"a.txt")
            .expect("a.txt is cached");
        match case {
            "no blobs" => {
                record.blobs.clear();
                record.hash = [7; 32];
            }
            _ => record.hash = [7; 32],
        }
        write_records(&cache, &records);
        std::fs::write(repo.join("c.txt"), b"new\n").expect("write");
        snapshot_json(&env, &repo, &store);

        let target = env.dir("restored");
        let output = restore_latest(&env, &store, &target).output();
        assert!(output.status.success(), "{case}:\n{}", describe(&output));
        assert!(
            !stderr(&output).contains("skipped"),
            "{case}: the new snapshot is broken:\n{}",
            describe(&output)
        );
        assert_eq!(tree(&target), tree(&repo), "{case}");
    }
}

/// The temporary files in `.git/gitkit/`.
fn temporaries(state: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(".gitkit-tmp-"))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Guards the new file cache a snapshot writes as it reads (a temporary file as long as the
/// snapshot runs): a snapshot killed outright left it in `.git/gitkit/`, and every later run
/// left it there too, one more for each run killed.
#[test]
fn a_killed_snapshots_cache_file_is_removed_by_the_next_run() {
    let (env, repo) = Env::with_project();
    std::fs::write(repo.join("big.bin"), pseudo_random_bytes(7, 64 << 20)).expect("write");
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    let state = repo.join(".git/gitkit");
    let mut snapshot = env.gitkit_in(&repo, ["snapshot", "--store", store]).spawn();
    // Stopped, then killed, once it writes its new cache (a condition, not a delay).
    let started = std::time::Instant::now();
    while temporaries(&state).is_empty() {
        if snapshot.try_wait().expect("wait").is_some() {
            panic!("the snapshot ended before it was killed");
        }
        assert!(started.elapsed().as_secs() < 120, "never began");
        std::thread::yield_now();
    }
    // Another run may have made one a moment ago and not locked it yet: only one left alone
    // for a while is taken for a killed run's. Aged so, the live run's is still its own.
    let age = |file: &Path| {
        let a_while_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        std::fs::File::options()
            .write(true)
            .open(file)
            .and_then(|file| file.set_modified(a_while_ago))
            .expect("age it");
    };
    // Held still (its lock held), so that it cannot finish meanwhile.
    env.command("kill")
        .args(["-STOP", &snapshot.id().to_string()])
        .success();
    let live = temporaries(&state);
    age(&live[0]);
    snapshot_json(&env, &repo, store);
    assert!(live[0].exists(), "a running snapshot's cache was removed");

    snapshot.kill().expect("kill");
    snapshot.wait().expect("wait");
    let left = temporaries(&state);
    assert_eq!(left, live);
    age(&left[0]);
    snapshot_json(&env, &repo, store);
    assert_eq!(temporaries(&state), Vec::<PathBuf>::new());
}

/// Makes a FIFO at `path`, in place of whatever was there.
fn fifo_at(env: &Env, path: &Path) {
    let _ = std::fs::remove_file(path);
    env.command("mkfifo")
        .args([path.to_str().expect("utf-8")])
        .success();
}

/// Red-team (fifth session): a folder in the index copy's place made every snapshot fail ("Is
/// a directory") for ever. The copy is a cache: the snapshot is made (`-v` says it was not
/// saved), and the next run learns from the store what the copy lacks.
#[test]
fn a_folder_in_place_of_the_index_copy_does_not_stop_snapshots() {
    let (env, repo, store) = snapshotted();
    let state = repo.join(".git/gitkit");
    let copy = std::fs::read_dir(&state)
        .expect("state")
        .map(|entry| entry.expect("entry").path())
        .find(|path| {
            let name = path.file_name().expect("a name").to_string_lossy();
            name.starts_with("index-") && name.ends_with(".bin")
        })
        .expect("an index copy");
    std::fs::remove_file(&copy).expect("remove");
    std::fs::create_dir(&copy).expect("a folder in its place");
    for round in 0..2 {
        std::fs::write(repo.join("a.txt"), format!("changed {round}\n")).expect("write");
        let output = env
            .gitkit_in(&repo, ["snapshot", "--json", "--store", &store])
            .output();
        assert!(output.status.success(), "{}", describe(&output));
        let target = env.root_path().join(format!("restored-{round}"));
        restore_latest(&env, &store, &target).success();
        assert_eq!(tree(&target), tree(&repo));
    }
}

/// Guards gitkit's own files replaced by FIFOs (nobody writes them): opening one to read
/// waited for ever, so a snapshot never ended, and the hook's marker, lock and log would
/// have held up the commit itself. Each is now not a cache (rebuilt) or an error the hook
/// swallows; nothing waits.
#[test]
fn a_fifo_in_place_of_a_cache_or_a_hook_file_makes_nothing_wait() {
    let (env, repo, store) = snapshotted();
    let state = repo.join(".git/gitkit");
    let mut replaced = Vec::new();
    for entry in std::fs::read_dir(&state).expect("state") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let ours = name == "files.bin"
            || name.starts_with("index-") && name.ends_with(".bin")
            || name.starts_with("last-") && name.ends_with(".json");
        if ours {
            fifo_at(&env, &path);
            replaced.push(name);
        }
    }
    replaced.sort();
    assert_eq!(
        replaced.len(),
        3,
        "files.bin, index-*.bin and last-*.json: {replaced:?}"
    );
    std::fs::write(repo.join("a.txt"), b"changed\n").expect("write");
    let limit = std::time::Duration::from_secs(60);
    let output = env
        .gitkit_in(&repo, ["snapshot", "--json", "--store", &store])
        .output_within(limit);
    assert!(output.status.success(), "{}", describe(&output));
    let target = env.root_path().join("restored");
    restore_latest(&env, &store, &target).success();
    assert_eq!(tree(&target), tree(&repo));

    env.gitkit_in(&repo, ["hooks", "install"]).success();
    for name in ["pending", "snapshot.lock", "hook.log"] {
        fifo_at(&env, &state.join(name));
    }
    std::fs::write(repo.join("b.txt"), b"committed\n").expect("write");
    env.git(&repo, ["add", "b.txt"]).success();
    let output = env
        .git(&repo, ["commit", "-q", "-m", "with FIFOs in the way"])
        .output_within(limit);
    assert!(output.status.success(), "{}", describe(&output));
}
