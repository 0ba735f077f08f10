//! A snapshot that says it succeeded always restores, whatever the workspace did meanwhile and
//! whatever the store holds; a tampered or damaged store never harms the machine.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde_json::Value;

use crate::snapshot::{
    assert_restored, restore_project, restore_project_args, rich_repository, snapshot_json,
    tamper_manifest, tree,
};
use crate::support::s3::{BUCKET, Weed};
use crate::support::{Env, assert_file_holds, assert_stderr_contains, stderr, stdout};

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// Writes `content` to `file` in `repo`, snapshots `repo` to `store`, restores the newest
/// snapshot into a new folder, and asserts that `file` comes back with `content`.
#[track_caller]
fn assert_new_file_round_trips(env: &Env, repo: &Path, store: &Path, file: &str, content: &[u8]) {
    std::fs::write(repo.join(file), content).expect("write");
    snapshot_json(env, repo, utf8(store));
    let target = tempfile::tempdir_in(env.root_path()).expect("temp dir");
    let target = target.path().join("restored");
    restore_project(env, utf8(store), &target).success();
    assert_file_holds(&target.join(file), content);
}

/// A `project` with `big.bin` in its working tree: `len` bytes that do not compress, the same
/// for the same `seed`.
fn project_with_big_file(seed: u64, len: usize) -> (Env, PathBuf) {
    let (env, repo) = Env::with_project();
    std::fs::write(
        repo.join("big.bin"),
        crate::support::pseudo_random_bytes(seed, len),
    )
    .expect("write");
    (env, repo)
}

/// A python process that writes to `file` until killed; started and running when this returns.
struct Writer(Child);

impl Writer {
    fn start(file: &Path, program: &str) -> Self {
        let ready = file.with_extension("ready");
        let script = format!(
            "import os, sys\n\
             path, ready = sys.argv[1], sys.argv[2]\n{program}"
        );
        let child = Command::new("python3")
            .args(["-c", &script, utf8(file), utf8(&ready)])
            .spawn()
            .expect("start python3");
        // The writer touches `ready` once it is writing: no sleep, a condition.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !ready.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never started"
            );
            std::thread::yield_now();
        }
        Self(child)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Appends a kilobyte at a time, a few hundred times a second: a training log that never
/// holds still while a read of it lasts. (As fast as python can, it outran a debug build's
/// reads, each one longer than the last, until the log filled the memory of the test reading it.)
const APPENDER: &str = "import time\nf = open(path, 'ab', 0)\nopen(ready, 'w').close()\n\
                        while True:\n    f.write(b'epoch 1 loss 0.123\\n' * 50)\n    time.sleep(0.002)\n";

/// Guards item 1: a log appended to during the snapshot produced a manifest whose size did not
/// match its blobs, and restore refused the whole snapshot.
#[test]
fn a_file_appended_to_while_snapshotted_is_never_stored_torn() {
    let (env, repo) = Env::with_project();
    let log = repo.join("train.log");
    std::fs::write(&log, b"epoch 0 loss 1.0\n".repeat(1_000_000)).expect("write");
    let earlier = std::fs::read(&log).expect("read");
    let store = env.dir("store");
    snapshot_json(&env, &repo, utf8(&store));

    let writer = Writer::start(&log, APPENDER);
    let second = env
        .gitkit_in(&repo, ["snapshot", "--store", utf8(&store)])
        .success();
    drop(writer);
    let now = std::fs::read(&log).expect("read");

    let target = env.root_path().join("restored");
    restore_project(&env, utf8(&store), &target).success();
    let restored = std::fs::read(target.join("train.log")).expect("the log is restored");
    if restored == earlier {
        assert!(
            stderr(&second).contains("train.log: kept changing while it was read; the previous snapshot's version is kept"),
            "keeping the earlier version is said: {}",
            stderr(&second)
        );
    } else {
        assert!(
            now.starts_with(&restored) && restored.len() > earlier.len(),
            "one version the file really had, never a mix ({} bytes)",
            restored.len()
        );
    }
    assert_file_holds(&target.join("README.md"), b"hello\n");
}

/// A file rewritten in place, over and over, comes back as one version or the other.
#[test]
fn a_file_rewritten_in_place_is_one_version_never_a_mix() {
    let (env, repo) = Env::with_project();
    let data = repo.join("weights.bin");
    let size = 3 << 20;
    std::fs::write(&data, vec![b'A'; size]).expect("write");
    let store = env.dir("store");

    let program = format!(
        "fd = os.open(path, os.O_WRONLY)\nopen(ready, 'w').close()\n\
         while True:\n    for b in (b'B', b'A'):\n        os.pwrite(fd, b * {size}, 0)\n"
    );
    let writer = Writer::start(&data, &program);
    let output = env
        .gitkit_in(&repo, ["snapshot", "--store", utf8(&store)])
        .success();
    drop(writer);

    let target = env.root_path().join("restored");
    restore_project(&env, utf8(&store), &target).success();
    match std::fs::read(target.join("weights.bin")) {
        Ok(restored) => {
            assert_eq!(restored.len(), size);
            assert!(
                restored.iter().all(|&b| b == b'A') || restored.iter().all(|&b| b == b'B'),
                "a mix of two versions was stored"
            );
        }
        Err(_) => assert!(
            stderr(&output).contains("weights.bin: kept changing while it was read; left out"),
            "leaving it out is said: {}",
            stderr(&output)
        ),
    }
}

/// Guards item 2: `rm -rf data && ln -s /mnt/efs data` put both the link and the files read
/// through it into the manifest, and restore refused it.
#[test]
fn a_tracked_folder_replaced_by_a_link_is_recorded_as_the_link() {
    let (env, repo) = Env::with_project();
    std::fs::create_dir_all(repo.join("data")).expect("mkdir");
    std::fs::write(repo.join("data/README"), b"tracked\n").expect("write");
    std::fs::write(repo.join("notes.txt"), b"tracked too\n").expect("write");
    env.git(&repo, ["add", "."]).success();
    env.git(&repo, ["commit", "-q", "-m", "data"]).success();
    let outside = env.dir("efs");
    std::fs::write(outside.join("README"), b"outside the repository\n").expect("write");
    std::fs::write(outside.join("secret"), b"not ours\n").expect("write");
    std::fs::remove_dir_all(repo.join("data")).expect("rm -rf data");
    symlink(&outside, repo.join("data")).expect("ln -s folder");
    std::fs::remove_file(repo.join("notes.txt")).expect("rm");
    symlink(outside.join("secret"), repo.join("notes.txt")).expect("ln -s file");

    let store = env.dir("store");
    snapshot_json(&env, &repo, utf8(&store));
    let target = env.root_path().join("restored");
    restore_project(&env, utf8(&store), &target).success();

    for (link, points_to) in [
        ("data", outside.clone()),
        ("notes.txt", outside.join("secret")),
    ] {
        let restored = target.join(link);
        assert!(
            std::fs::symlink_metadata(&restored)
                .expect("restored")
                .file_type()
                .is_symlink(),
            "{link} is a link again"
        );
        assert_eq!(std::fs::read_link(&restored).expect("link"), points_to);
    }
    let manifest = std::fs::read_to_string(
        walkdir::WalkDir::new(store.join("snapshots"))
            .into_iter()
            .filter_map(Result::ok)
            .find(|e| e.file_type().is_file())
            .expect("a manifest")
            .path(),
    )
    .expect("read");
    assert!(
        !manifest.contains("data/README"),
        "nothing read through the link"
    );
}

/// Guards item 3: after the store was emptied, the next snapshot said "unchanged", and after an
/// edit the new manifest pointed at packs that no longer existed.
#[test]
fn an_emptied_folder_store_is_noticed_and_written_again() {
    let env = Env::new();
    let repo = rich_repository(&env);
    let store = env.dir("store");
    snapshot_json(&env, &repo, utf8(&store));
    std::fs::remove_dir_all(&store).expect("rm -rf store");

    let again = snapshot_json(&env, &repo, utf8(&store));
    assert_eq!(again["unchanged"], false, "{again}");
    let target = env.root_path().join("restored");
    restore_project(&env, utf8(&store), &target).success();
    assert_restored(&env, &repo, &target);

    // Only the packs go: the manifest stays, the listing no longer shows them.
    std::fs::remove_dir_all(store.join("data")).expect("rm -rf data");
    std::fs::write(repo.join("src/model.py"), b"print('edited')\n").expect("edit");
    snapshot_json(&env, &repo, utf8(&store));
    let target = env.root_path().join("restored-after-edit");
    restore_project(&env, utf8(&store), &target).success();
    assert_restored(&env, &repo, &target);
}

/// The same, through the S3 API: every object of the prefix deleted from the bucket.
#[test]
fn an_emptied_bucket_is_noticed_and_written_again() {
    let env = Weed::shared_env();
    let weed = Weed::shared();
    let repo = rich_repository(&env);
    let store = format!("s3://{BUCKET}/emptied");
    snapshot_json(&env, &repo, &store);
    env.command("aws")
        .args(["s3", "rm", "--recursive", "--only-show-errors", &store])
        .args(["--endpoint-url", &weed.endpoint()])
        .success();

    std::fs::write(repo.join("src/model.py"), b"print('edited')\n").expect("edit");
    let again = snapshot_json(&env, &repo, &store);
    assert_eq!(again["unchanged"], false);
    let target = env.root_path().join("restored");
    restore_project(&env, &store, &target).success();
    assert_restored(&env, &repo, &target);
}

/// Guards item 3: `--store ../s` from a subfolder is another folder, yet it said "unchanged".
#[test]
fn a_relative_store_is_the_folder_it_names_from_where_it_is_given() {
    let (env, repo) = Env::with_project();
    std::fs::create_dir_all(repo.join("sub")).expect("mkdir");
    std::fs::write(repo.join("sub/file"), b"x\n").expect("write");
    let from_top = env
        .gitkit(["snapshot", "--store", "../s", "--json"])
        .current_dir(&repo)
        .success();
    assert!(env.root_path().join("s/snapshots").is_dir());
    let from_sub: Value = serde_json::from_str(&stdout(
        &env.gitkit(["snapshot", "--store", "../s", "--json"])
            .current_dir(repo.join("sub"))
            .success(),
    ))
    .expect("json");
    assert_eq!(from_sub["unchanged"], false, "{}", stdout(&from_top));
    assert!(
        repo.join("s/snapshots").is_dir(),
        "written where it was named"
    );
}

/// Guards item 3: a made-up index object (blobs that are not in its pack) was believed, and the
/// snapshot that relied on it could not be restored.
#[test]
fn a_made_up_index_object_is_not_believed() {
    let env = Env::new();
    let store = env.dir("store");
    let content = b"the notebook everybody has\n";
    let hash = blake3::hash(content).to_hex().to_string();
    // An honest pack id for some other bytes, with an index object claiming `content` is in it.
    let other = b"something else entirely, same length!";
    let pack = blake3::hash(other).to_hex().to_string();
    std::fs::create_dir_all(store.join("data").join(&pack[..2])).expect("mkdir");
    std::fs::write(store.join("data").join(&pack[..2]).join(&pack), other).expect("write");
    std::fs::create_dir_all(store.join("index")).expect("mkdir");
    let index = serde_json::json!({
        "pack": pack,
        "blobs": [{"hash": hash, "offset": 0, "len": content.len()}],
    });
    std::fs::write(store.join("index").join(&pack), index.to_string()).expect("write");
    // An index object naming a pack other than its own, and one that is not JSON.
    let wrong = "f".repeat(64);
    std::fs::write(store.join("index").join(&wrong), index.to_string()).expect("write");
    std::fs::write(store.join("index").join("e".repeat(64)), b"{not json").expect("write");

    let repo = env.repo_with_commit("project");
    assert_new_file_round_trips(&env, &repo, &store, "notebook.ipynb", content);
}

/// Guards item 4: a submodule's working tree was not in the snapshot; its edits and untracked
/// files were lost and the restored repository showed `D sm`.
#[test]
fn a_submodule_working_tree_is_snapshotted_with_its_edits() {
    let env = Env::new();
    let library = env.repo_with_commit("library");
    let repo = env.repo_with_commit("project");
    env.git(
        &repo,
        ["-c", "protocol.file.allow=always", "submodule", "add", "-q"],
    )
    .args([utf8(&library), "sm"])
    .success();
    env.git(&repo, ["commit", "-q", "-m", "submodule"])
        .success();
    std::fs::write(repo.join("sm/README.md"), b"edited in the submodule\n").expect("edit");
    std::fs::write(repo.join("sm/untracked.txt"), b"new in the submodule\n").expect("write");

    let store = env.dir("store");
    snapshot_json(&env, &repo, utf8(&store));
    let target = env.root_path().join("restored");
    restore_project(&env, utf8(&store), &target).success();

    assert_eq!(tree(&target), tree(&repo));
    let status = |dir: &Path| stdout(&env.git(dir, ["status", "--porcelain"]).success());
    assert_eq!(status(&target), status(&repo));
    assert!(!status(&target).contains("D sm"), "{}", status(&target));
    assert_eq!(
        stdout(
            &env.git(&target.join("sm"), ["status", "--porcelain"])
                .success()
        ),
        " M README.md\n?? untracked.txt\n"
    );
}

/// A store holding one snapshot of a small repository, and its manifest's path.
fn one_snapshot(env: &Env) -> PathBuf {
    let repo = env.repo_with_commit("project");
    std::fs::write(repo.join("second.txt"), b"second file\n").expect("write");
    let store = env.dir("store");
    snapshot_json(env, &repo, utf8(&store));
    store
}

fn first_file(manifest: &mut Value) -> &mut Value {
    manifest["entries"]
        .as_array_mut()
        .expect("entries")
        .iter_mut()
        .find(|e| e["path"] == "README.md")
        .expect("README.md")
}

/// A change made to a stored manifest, to see restore refuse it cleanly.
type Tamper = fn(&mut Value);

/// Guards items 5 and 6: pack ids used unchecked (a panic, a local file read through `../`, a
/// stream from /dev/zero), and blobs that dodged the hash check.
#[test]
fn restore_refuses_bad_ids_and_blobs_that_dodge_the_hash_check() {
    let cases: [(&str, Tamper); 8] = [
        ("short pack id", |m| {
            first_file(m)["blobs"][0]["pack"] = "a".into()
        }),
        ("pack id off a character boundary", |m| {
            first_file(m)["blobs"][0]["pack"] = "é".into()
        }),
        ("pack id leaving the store", |m| {
            first_file(m)["blobs"][0]["pack"] = "../../../../../../etc/hostname".into()
        }),
        ("pack id of a device", |m| {
            first_file(m)["blobs"][0]["pack"] = "../../../../../../dev/zero".into()
        }),
        ("another file's place with another hash", |m| {
            let readme = first_file(m)["blobs"][0].clone();
            let second = m["entries"]
                .as_array_mut()
                .expect("entries")
                .iter_mut()
                .find(|e| e["path"] == "second.txt")
                .expect("second.txt");
            second["blobs"][0]["pack"] = readme["pack"].clone();
            second["blobs"][0]["offset"] = readme["offset"].clone();
        }),
        ("a file hash that is not its blob's", |m| {
            first_file(m)["hash"] = "0".repeat(64).into()
        }),
        ("a length that overflows", |m| {
            first_file(m)["blobs"][0]["offset"] = u64::MAX.into()
        }),
        ("a blob of no bytes at another blob's place", |m| {
            let mut empty = first_file(m).clone();
            let nothing = blake3::hash(b"").to_hex().to_string();
            empty["path"] = "empty".into();
            empty["size"] = 0.into();
            empty["hash"] = nothing.clone().into();
            empty["blobs"][0]["hash"] = nothing.into();
            empty["blobs"][0]["len"] = 0.into();
            m["entries"].as_array_mut().expect("entries").push(empty);
        }),
    ];
    for (name, edit) in cases {
        let env = Env::new();
        let store = one_snapshot(&env);
        tamper_manifest(&store, edit);
        let target = env.root_path().join("restored");
        let output = restore_project(&env, utf8(&store), &target).failure();
        assert_eq!(output.status.code(), Some(1), "{name}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("error:"),
            "{name}: {}",
            stderr(&output)
        );
        assert!(!target.exists(), "{name}: the target was left behind");
    }
}

/// Ids and names typed by the user are checked too, before they become a key.
#[test]
fn ids_and_workspace_names_from_the_command_line_are_checked() {
    let env = Env::new();
    let store = one_snapshot(&env);
    let target = env.root_path().join("restored");
    for args in [
        vec!["restore", "../../x", "--workspace", "project"],
        vec!["restore", "latest", "--workspace", "../.."],
        vec!["snapshots", "--workspace", "../.."],
    ] {
        let output = env
            .gitkit(&args)
            .args(["--store", utf8(&store)])
            .args(if args[0] == "restore" {
                vec!["--to", utf8(&target)]
            } else {
                vec![]
            })
            .failure();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains("is not a"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!target.exists());
    }
}

/// Guards item 7: a failed restore left a half-written target behind.
#[test]
fn a_failed_restore_leaves_the_target_as_it_found_it() {
    let env = Env::new();
    let repo = rich_repository(&env);
    let big = repo.join("big.bin");
    std::fs::write(
        &big,
        (0..3_000_000u32)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<_>>(),
    )
    .expect("write");
    let store = env.dir("store");
    snapshot_json(&env, &repo, utf8(&store));
    // Damage the last byte of every pack: some files restore before the damage is met.
    for entry in walkdir::WalkDir::new(store.join("data"))
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.file_type().is_file() {
            let mut data = std::fs::read(entry.path()).expect("read");
            let last = data.len() - 1;
            data[last] ^= 0xff;
            std::fs::write(entry.path(), data).expect("write");
        }
    }

    let absent = env.root_path().join("absent");
    restore_project(&env, utf8(&store), &absent).failure();
    assert!(!absent.exists(), "a target that was not there is not there");

    let empty = env.dir("empty");
    restore_project(&env, utf8(&store), &empty).failure();
    assert_eq!(std::fs::read_dir(&empty).expect("list").count(), 0);

    let occupied = env.dir("occupied");
    std::fs::write(occupied.join("mine.txt"), b"keep me").expect("write");
    let before = tree(&occupied);
    restore_project(&env, utf8(&store), &occupied)
        .args(["--force"])
        .failure();
    assert_eq!(
        tree(&occupied),
        before,
        "nothing written, nothing left over"
    );
}

#[test]
fn setuid_setgid_and_sticky_bits_come_back_only_when_asked() {
    let (env, repo) = Env::with_project();
    std::fs::write(repo.join("tool"), b"#!/bin/sh\n").expect("write");
    std::fs::set_permissions(repo.join("tool"), std::fs::Permissions::from_mode(0o6755))
        .expect("chmod");
    let store = env.dir("store");
    snapshot_json(&env, &repo, utf8(&store));
    let mode = |dir: &Path| {
        std::fs::metadata(dir.join("tool"))
            .expect("stat")
            .permissions()
            .mode()
            & 0o7777
    };

    let plain = env.root_path().join("plain");
    restore_project(&env, utf8(&store), &plain).success();
    assert_eq!(mode(&plain), 0o755);
    let kept = env.root_path().join("kept");
    restore_project(&env, utf8(&store), &kept)
        .args(["--keep-setuid"])
        .success();
    assert_eq!(mode(&kept), 0o6755);
}

/// Guards item 7: one damaged manifest stopped `snapshots` and `restore latest`.
#[test]
fn a_damaged_manifest_is_skipped_with_a_warning() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let first = snapshot_json(&env, &repo, utf8(&store));
    std::fs::write(repo.join("later.txt"), b"later\n").expect("write");
    let second = snapshot_json(&env, &repo, utf8(&store));
    let newest = store.join("snapshots/project").join(format!(
        "{}.json",
        second["summary"]["id"].as_str().expect("id")
    ));
    std::fs::write(&newest, b"{\"version\": 1, truncated").expect("damage");

    let listed = env
        .gitkit([
            "snapshots",
            "--json",
            "--store",
            utf8(&store),
            "--workspace",
            "project",
        ])
        .success();
    let listed: Value = serde_json::from_str(&stdout(&listed)).expect("json");
    assert_eq!(listed.as_array().expect("array").len(), 1);
    assert_eq!(listed[0]["id"], first["summary"]["id"]);

    let target = env.root_path().join("restored");
    let output = restore_project(&env, utf8(&store), &target).success();
    assert_stderr_contains(&output, "warning: skipped");
    assert!(target.join("README.md").exists());
    assert!(!target.join("later.txt").exists(), "the older snapshot");
}

/// A folder git cannot read and a path too long to open were left out silently: each is now
/// named in a warning. Runs the snapshot as `nobody`, for whom mode 000 means something.
#[test]
fn folders_and_paths_that_cannot_be_read_are_named_in_a_warning() {
    let (env, repo) = Env::with_project();
    std::fs::create_dir_all(repo.join("secret")).expect("mkdir");
    std::fs::write(repo.join("secret/keys.txt"), b"x\n").expect("write");
    // A path of more than 4,096 bytes, made one folder at a time (no single call could).
    let script = "import os\nfor _ in range(22):\n    os.mkdir('d' * 200)\n    os.chdir('d' * 200)\n\
                  open('deep.txt', 'w').write('deep')\n";
    env.command("python3")
        .args(["-c", script])
        .current_dir(&repo)
        .success();
    let store = env.dir("store");
    for dir in [env.root_path(), &env.home()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    for path in [&repo, &store] {
        env.command("chown")
            .args(["-R", "nobody", utf8(path)])
            .success();
    }
    std::fs::set_permissions(repo.join("secret"), std::fs::Permissions::from_mode(0o000))
        .expect("chmod 000");

    let output = env
        .command("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .args([crate::support::gitkit_bin()])
        .args(["-C", utf8(&repo), "snapshot", "--store", utf8(&store)])
        .success();
    let said = stderr(&output);
    assert!(
        said.contains("warning: secret: folder cannot be read (Permission denied); left out"),
        "{said}"
    );
    let deep = said
        .lines()
        .find(|line| line.starts_with(&format!("warning: {}/{}", "d".repeat(200), "d".repeat(200))))
        .unwrap_or_else(|| panic!("the deep path is named: {said}"));
    assert!(deep.ends_with("left out"), "{deep}");
}

/// `gitkit` run as `nobody`, in a folder `nobody` owns (made so here).
fn as_nobody(env: &Env, owned: &[&Path]) -> crate::support::Cmd {
    for dir in [env.root_path(), &env.home()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    for path in owned {
        env.command("chown")
            .args(["-R", "nobody", utf8(path)])
            .success();
    }
    env.command("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .args([crate::support::gitkit_bin()])
}

/// Red-team F1: as any user but root, no repository restored: git's objects are read-only and
/// restore opened them again to set their time after setting their mode.
#[test]
fn a_user_who_is_not_root_restores_a_repository() {
    let env = Env::new();
    let repo = rich_repository(&env);
    let store = env.dir("store");
    let target = env.dir("restored");
    as_nobody(&env, &[&repo, &store, &target])
        .args(["-C", utf8(&repo), "snapshot", "--store", utf8(&store)])
        .success();
    as_nobody(&env, &[])
        .args(restore_project_args(utf8(&store), &target))
        .success();
    // The checks below run git as root, in folders nobody owns.
    env.git(
        &env.home(),
        ["config", "--global", "--add", "safe.directory", "*"],
    )
    .success();
    assert_restored(&env, &repo, &target);
}

/// Red-team F2: commits made while a snapshot reads could leave refs naming objects the
/// snapshot never listed; every snapshot taken during a stream of commits must pass fsck.
#[test]
fn commits_made_during_a_snapshot_never_leave_refs_to_missing_objects() {
    let (env, repo) = project_with_big_file(7, 48 << 20);
    env.git(&repo, ["add", "big.bin"]).success();
    env.git(&repo, ["commit", "-q", "-m", "big"]).success();
    let store = env.dir("store");
    let script = "i=0; while :; do i=$((i+1)); echo $i > n$((i % 40)).txt; \
                  git add -A && git commit -q -m c$i || exit 1; done";
    let mut committer = env
        .command("sh")
        .args(["-c", script])
        .current_dir(&repo)
        .spawn();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let output = env
            .gitkit_in(&repo, ["snapshot", "--store", utf8(&store)])
            .success();
        ids.push(stdout(&output).trim().to_string());
    }
    let _ = committer.kill();
    let _ = committer.wait();
    for (n, id) in ids.iter().enumerate() {
        let target = env.root_path().join(format!("restored-{n}"));
        env.gitkit([
            "restore",
            id,
            "--store",
            utf8(&store),
            "--workspace",
            "project",
        ])
        .args(["--to", utf8(&target)])
        .success();
        env.git(&target, ["fsck", "--no-dangling"]).success();
        env.git(&target, ["log", "-1", "--format=%H"]).success();
    }
}

/// Red-team F4 and F12: a folder store read a manifest through a link (to a device, to any
/// file), blocked on a pipe, and wrote through a linked folder to anywhere.
#[test]
fn a_folder_store_never_reads_or_writes_through_links_or_pipes() {
    let env = Env::new();
    let store = one_snapshot(&env);
    let manifests = store.join("snapshots/project");
    symlink(
        "/dev/zero",
        manifests.join("29990101T000000.000Z-aaaaaa.json"),
    )
    .expect("ln");
    let fifo = manifests.join("29990101T000000.000Z-bbbbbb.json");
    env.command("mkfifo").args([utf8(&fifo)]).success();
    symlink(
        "/etc/hostname",
        manifests.join("29990101T000000.000Z-cccccc.json"),
    )
    .expect("ln");
    for id in [
        "29990101T000000.000Z-aaaaaa",
        "29990101T000000.000Z-bbbbbb",
        "29990101T000000.000Z-cccccc",
    ] {
        let target = env.root_path().join("restored");
        let output = env
            .command("timeout")
            .args([
                "60",
                crate::support::gitkit_bin(),
                "restore",
                id,
                "--store",
                utf8(&store),
            ])
            .args(["--workspace", "project", "--to", utf8(&target)])
            .failure();
        assert_eq!(output.status.code(), Some(1), "{id}: {}", stderr(&output));
        assert!(!target.exists());
    }
    // `latest` passes over all three and restores the real one.
    let target = env.root_path().join("restored");
    restore_project(&env, utf8(&store), &target).success();

    let outside = env.dir("outside");
    let repo = env.repo_with_commit("linked");
    symlink(&outside, store.join("snapshots/linked")).expect("ln -s");
    let output = env
        .gitkit_in(&repo, ["snapshot", "--store", utf8(&store)])
        .failure();
    assert_stderr_contains(&output, "not a key gitkit writes");
    assert_eq!(
        std::fs::read_dir(&outside).expect("list").count(),
        0,
        "nothing written there"
    );
}

/// Red-team F7: packs removed behind the store's back (a lifecycle rule) while nothing
/// changed; the unchanged workspace went on reporting a snapshot that could not restore.
#[test]
fn packs_removed_while_nothing_changes_are_noticed_at_the_next_recheck() {
    let env = Env::new().with("GITKIT_TEST_RECHECK_SECS", "0");
    let repo = rich_repository(&env);
    let store = env.dir("store");
    snapshot_json(&env, &repo, utf8(&store));
    std::fs::remove_dir_all(store.join("data")).expect("rm -rf data");
    let again = snapshot_json(&env, &repo, utf8(&store));
    assert!(
        again["new_packs"].as_u64().expect("count") > 0,
        "uploaded again: {again}"
    );
    let target = env.root_path().join("restored");
    restore_project(&env, utf8(&store), &target).success();
    assert_restored(&env, &repo, &target);
}

/// Red-team F6: a local index copy edited to name a blob past its pack's end was believed.
#[test]
fn a_tampered_local_index_copy_is_checked_against_the_store() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    snapshot_json(&env, &repo, utf8(&store));
    let content = b"brand new content\n";
    let cache = walkdir::WalkDir::new(repo.join(".git/gitkit"))
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("index-"))
        .expect("a local index copy")
        .into_path();
    // The copy's layout (`BlobIndex::save`): a 16-byte magic, five lists of pack ids (a u32
    // count, 32 bytes each), the pack count, each pack's id and where its blobs end, then the
    // blob records sorted by hash (hash, pack number, 4 zero bytes, offset, length, content
    // length: 64 bytes each), the first 8 bytes of the first hash of every 16 (a big-endian
    // number, stored little-endian), the record count and where they start. A blob is added to the first pack, past its end, with the end moved to fit: a
    // well-made copy in every way but the truth.
    let copy = std::fs::read(&cache).expect("read");
    let u32_at = |at: usize| u32::from_le_bytes(copy[at..at + 4].try_into().expect("4")) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(copy[at..at + 8].try_into().expect("8"));
    let mut at = 16;
    for _ in 0..5 {
        at += 4 + 32 * u32_at(at);
    }
    let packs = u32_at(at);
    let first_end = at + 4 + 32;
    let end = u64_at(first_end);
    let start = at + 4 + packs * 40;
    let count = u64_at(copy.len() - 16) as usize;
    assert_eq!(
        u64_at(copy.len() - 8) as usize,
        start,
        "the layout is as described"
    );
    let mut records: Vec<Vec<u8>> = copy[start..start + count * 64]
        .chunks(64)
        .map(<[u8]>::to_vec)
        .collect();
    let mut record = blake3::hash(content).as_bytes().to_vec();
    record.extend_from_slice(&[0; 8]);
    for field in [end, content.len() as u64, 0] {
        record.extend_from_slice(&field.to_le_bytes());
    }
    records.push(record);
    records.sort();
    let mut copy_out = copy[..start].to_vec();
    copy_out[first_end..first_end + 8].copy_from_slice(&(end + content.len() as u64).to_le_bytes());
    records.iter().for_each(|r| copy_out.extend_from_slice(r));
    for first in records.iter().step_by(16) {
        let fence = u64::from_be_bytes(first[..8].try_into().expect("8 bytes"));
        copy_out.extend_from_slice(&fence.to_le_bytes());
    }
    copy_out.extend_from_slice(&(records.len() as u64).to_le_bytes());
    copy_out.extend_from_slice(&(start as u64).to_le_bytes());
    let copy = copy_out;
    std::fs::write(&cache, copy).expect("write");

    assert_new_file_round_trips(&env, &repo, &store, "new.txt", content);
}

/// Red-team F8: a restore stopped by Ctrl-C left its staging folder and the target it made,
/// and the next restore then refused the target as not empty.
#[test]
fn an_interrupted_restore_cleans_up_and_a_stale_staging_folder_is_cleared() {
    let (env, repo) = project_with_big_file(3, 96 << 20);
    let store = env.dir("store");
    snapshot_json(&env, &repo, utf8(&store));

    let target = env.root_path().join("restored");
    let mut restoring = restore_project(&env, utf8(&store), &target).spawn();
    // Interrupt it once it has begun writing (a condition, not a delay).
    let started = std::time::Instant::now();
    let staging = loop {
        let found = std::fs::read_dir(&target)
            .ok()
            .and_then(|mut entries| entries.find_map(|e| e.ok().map(|e| e.path())));
        if let Some(found) = found {
            break found;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "restore never started writing"
        );
        std::thread::yield_now();
    };
    assert!(
        staging
            .file_name()
            .expect("name")
            .to_string_lossy()
            .starts_with(".gitkit-tmp-restore-")
    );
    env.command("kill")
        .args(["-INT", &restoring.id().to_string()])
        .success();
    let status = restoring.wait().expect("wait");
    if !status.success() {
        assert!(!target.exists(), "the target it made is gone again");
    }

    // A staging folder left by a restore that was killed outright is cleared by the next one.
    std::fs::create_dir_all(target.join(".gitkit-tmp-restore-stale/sub")).expect("mkdir");
    restore_project(&env, utf8(&store), &target)
        .args(["--force"])
        .success();
    assert!(!target.join(".gitkit-tmp-restore-stale").exists());
    assert_file_holds(&target.join("README.md"), b"hello\n");
    let empty = env.dir("only-stale");
    std::fs::create_dir_all(empty.join(".gitkit-tmp-restore-old")).expect("mkdir");
    restore_project(&env, utf8(&store), &empty).success();
}

/// Red-team F13 and F14: what a store says reached the terminal raw, and a pipe in the
/// workspace was left out without a word.
#[test]
fn escapes_from_a_store_are_shown_not_obeyed_and_a_pipe_is_named() {
    let (env, repo) = Env::with_project();
    // git lists a tracked file that became a pipe (an untracked pipe it does not list).
    std::fs::write(repo.join("queue"), b"a tracked file\n").expect("write");
    env.git(&repo, ["add", "queue"]).success();
    env.git(&repo, ["commit", "-q", "-m", "queue"]).success();
    std::fs::remove_file(repo.join("queue")).expect("rm");
    env.command("mkfifo")
        .args([utf8(&repo.join("queue"))])
        .success();
    let store = env.dir("store");
    let output = env
        .gitkit_in(&repo, ["snapshot", "--store", utf8(&store)])
        .success();
    assert_stderr_contains(
        &output,
        "queue: is a socket, pipe or device, not a file; left out",
    );
    tamper_manifest(&store, |m| {
        m["host"] = "evil\u{1b}]0;PWNED\u{7}\u{1b}[31mRED\nFAKE LINE".into();
    });
    let listed = env
        .gitkit([
            "snapshots",
            "--store",
            utf8(&store),
            "--workspace",
            "project",
        ])
        .success();
    assert!(!listed.stdout.contains(&0x1b), "{}", stdout(&listed));
    assert_eq!(stdout(&listed).lines().count(), 2, "no forged line");
}
