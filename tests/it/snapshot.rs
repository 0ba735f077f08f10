//! `gitkit snapshot`, `snapshots` and `restore`, against a folder store and a real S3 server.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::process::Output;

use serde_json::Value;

use crate::support::http::{Response, Server};
use crate::support::proxy::forward;
use crate::support::s3::{BUCKET, Weed};
use crate::support::{
    Env, assert_file_holds, assert_stderr_contains, describe, folder_store, pseudo_random_bytes,
    stderr, stdout, write_executable,
};

/// A repository with everything a snapshot must bring back: tracked, untracked and ignored
/// files, an executable, a symlink, an empty file, a non-UTF-8 name, an unpushed commit on a
/// second branch, and a stash.
pub(crate) fn rich_repository(env: &Env) -> PathBuf {
    let repo = env.repo_with_commit("project");
    let write = |path: &str, content: &[u8]| {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    };
    write(".gitignore", b"*.log\ncache/\n");
    write("src/model.py", b"print('model')\n");
    write("run.sh", b"#!/bin/sh\necho run\n");
    std::fs::set_permissions(repo.join("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    env.git(&repo, ["add", "."]).success();
    env.git(&repo, ["commit", "-q", "-m", "code"]).success();
    env.git(&repo, ["checkout", "-q", "-b", "experiment"])
        .success();
    write("src/model.py", b"print('experiment')\n");
    env.git(&repo, ["commit", "-q", "-am", "unpushed experiment"])
        .success();
    write("README.md", b"stashed change\n");
    env.git(&repo, ["stash", "-q"]).success();
    write("notebook.ipynb", b"{\"cells\": []}\n");
    write("data/results.csv", b"a,b\n1,2\n");
    write("empty.txt", b"");
    write("train.log", b"ignored\n");
    write("cache/blob.bin", b"ignored too\n");
    let odd_name = std::ffi::OsStr::from_bytes(b"caf\xe9 notes.txt");
    std::fs::write(repo.join(odd_name), b"latin-1 name\n").expect("write");
    symlink("src/model.py", repo.join("model-link")).expect("symlink");
    symlink("/nonexistent/target", repo.join("dangling")).expect("symlink");
    repo
}

/// What a working tree holds outside `.git`: path -> kind, mode and content or link target.
pub(crate) fn tree(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut found = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
    {
        let entry = entry.expect("walk");
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("under root")
            .as_os_str()
            .as_bytes()
            .to_vec();
        let metadata = entry.path().symlink_metadata().expect("stat");
        let description = if metadata.file_type().is_symlink() {
            format!(
                "link -> {}",
                std::fs::read_link(entry.path())
                    .expect("readlink")
                    .display()
            )
        } else if metadata.is_dir() {
            continue;
        } else {
            let content = std::fs::read(entry.path()).expect("read");
            format!(
                "file {:o} {}",
                metadata.permissions().mode() & 0o777,
                String::from_utf8_lossy(&content)
            )
        };
        found.insert(relative, description);
    }
    found
}

/// What git says of a repository: status, branches with their commits, stashes.
pub(crate) fn git_state(env: &Env, repo: &Path) -> Vec<String> {
    [
        vec!["status", "--porcelain=v1", "--untracked-files=all"],
        vec!["for-each-ref", "--format=%(refname) %(objectname)"],
        vec!["stash", "list"],
        vec!["rev-parse", "HEAD"],
    ]
    .into_iter()
    .map(|args| stdout(&env.git(repo, args).success()))
    .collect()
}

pub(crate) fn snapshot_json(env: &Env, repo: &Path, store: &str) -> Value {
    let output = env
        .gitkit_in(repo, ["snapshot", "--json", "--store", store])
        .success();
    serde_json::from_str(stdout(&output).trim()).expect("one JSON object")
}

/// `gitkit restore` of workspace `project` from `store` into `target`.
pub(crate) fn restore_project(env: &Env, store: &str, target: &Path) -> crate::support::Cmd {
    env.gitkit(restore_project_args(store, target))
}

/// `gitkit restore latest` from `store` into `target`, the workspace left for gitkit to find.
pub(crate) fn restore_latest(env: &Env, store: &str, target: &Path) -> crate::support::Cmd {
    env.gitkit(["restore", "latest", "--store", store, "--to"])
        .args([target])
}

/// Snapshots `repo` to a new folder store and restores it into a new folder: the same files
/// come back, and the workspace and each repository `nested` in it are sound repositories in
/// the same state. The store and the restored folder.
#[track_caller]
fn assert_round_trip(env: &Env, repo: &Path, nested: &[&str]) -> (String, PathBuf) {
    let store = env.dir("store").to_str().expect("utf-8").to_string();
    let first = snapshot_json(env, repo, &store);
    assert_eq!(first["unchanged"], false, "{first:#}");
    let target = env.root_path().join("restored");
    restore_latest(env, &store, &target).success();
    assert_eq!(tree(&target), tree(repo));
    for nested in std::iter::once("").chain(nested.iter().copied()) {
        let (original, restored) = (repo.join(nested), target.join(nested));
        env.git(&restored, ["fsck", "--strict"]).success();
        assert_eq!(git_state(env, &restored), git_state(env, &original));
    }
    (store, target)
}

/// `gitkit restore ID` of workspace `project` from `store` into `target`.
pub(crate) fn restore_snapshot(env: &Env, store: &str, id: &str, target: &Path) -> Output {
    env.gitkit([
        "restore",
        id,
        "--store",
        store,
        "--workspace",
        "project",
        "--to",
    ])
    .args([target])
    .success()
}

/// The arguments of [`restore_project`], for a gitkit started another way.
pub(crate) fn restore_project_args<'a>(store: &'a str, target: &'a Path) -> [&'a str; 7] {
    let target = target.to_str().expect("utf-8");
    [
        "restore",
        "--store",
        store,
        "--workspace",
        "project",
        "--to",
        target,
    ]
}

#[track_caller]
pub(crate) fn assert_restored(env: &Env, original: &Path, restored: &Path) {
    let mut expected = tree(original);
    expected.retain(|path, _| !path.ends_with(b".log") && !path.starts_with(b"cache/"));
    assert_eq!(tree(restored), expected);
    env.git(restored, ["fsck", "--strict"]).success();
    assert_eq!(git_state(env, restored), git_state(env, original));
}

#[test]
fn folder_store_round_trip_brings_back_the_whole_workspace() {
    let env = Env::new();
    let repo = rich_repository(&env);
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    let before = git_state(&env, &repo);

    let output = env
        .gitkit_in(&repo, ["snapshot", "--store", store])
        .success();
    let id = stdout(&output).lines().last().expect("an id").to_string();
    assert!(
        stderr(&output).contains("files"),
        "a summary on stderr: {}",
        stderr(&output)
    );
    assert_eq!(
        git_state(&env, &repo),
        before,
        "a snapshot changes nothing in the repository"
    );

    let target = env.root_path().join("restored");
    restore_snapshot(&env, store, &id, &target);
    assert_restored(&env, &repo, &target);
    assert!(!target.join("train.log").exists(), "ignored files stay out");
}

/// A restore writes a snapshot's files a batch of entries at a time (a whole folder's at
/// least), so that it never holds the whole snapshot: with batches of two, every folder is a
/// batch of its own, packs are read once per batch that needs them, and the same content in
/// two batches is written into both.
#[test]
fn a_restore_in_small_batches_brings_back_the_whole_workspace() {
    let env = Env::new();
    let repo = rich_repository(&env);
    for folder in ["a", "a/b", "c"] {
        std::fs::create_dir_all(repo.join(folder)).expect("mkdir");
        for n in 0..3 {
            let content = format!("the same in every folder {n}\n");
            std::fs::write(repo.join(format!("{folder}/file{n}.txt")), content).expect("write");
        }
    }
    let large: Vec<u8> = (0..300_000u32)
        .flat_map(|n| (n * 7919).to_le_bytes())
        .collect();
    std::fs::write(repo.join("a/b/large.bin"), &large).expect("write");
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    snapshot_json(&env, &repo, store);

    let target = env.root_path().join("restored");
    let output = env
        .gitkit(restore_project_args(store, &target))
        .env("GITKIT_TEST_RESTORE_BATCH", "2")
        .env("GITKIT_LOG", "debug")
        .success();
    let batches = stderr(&output).matches("restoring a batch").count();
    assert!(batches > 10, "{batches} batches: {}", stderr(&output));
    assert_restored(&env, &repo, &target);
}

#[test]
fn s3_round_trip_through_a_real_server() {
    let env = Weed::shared_env();
    let repo = rich_repository(&env);
    let store = format!("s3://{BUCKET}/round-trip");

    let first = snapshot_json(&env, &repo, &store);
    assert_eq!(first["unchanged"], false);
    assert!(first["new_bytes"].as_u64().expect("number") > 0);

    let target = env.root_path().join("restored");
    restore_latest(&env, &store, &target).success();
    assert_restored(&env, &repo, &target);
}

#[test]
fn unchanged_workspace_makes_no_new_snapshot_and_an_edit_does() {
    let env = Env::new();
    let repo = rich_repository(&env);
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");

    let first = snapshot_json(&env, &repo, store);
    let again = snapshot_json(&env, &repo, store);
    assert_eq!(again["unchanged"], true);
    assert_eq!(again["summary"]["id"], first["summary"]["id"]);
    assert_eq!(again["new_bytes"], 0);

    let before = folder_store::blob_hashes(Path::new(store));
    let content = b"{\"cells\": [1]}\n";
    std::fs::write(repo.join("notebook.ipynb"), content).expect("write");
    let edited = snapshot_json(&env, &repo, store);
    assert_eq!(edited["unchanged"], false);
    assert_ne!(edited["summary"]["id"], first["summary"]["id"]);
    let new: Vec<String> = folder_store::blob_hashes(Path::new(store))
        .difference(&before)
        .cloned()
        .collect();
    assert_eq!(
        new.len(),
        2,
        "the edited file's content and the root tree: {new:?}"
    );
    assert!(new.contains(&blake3::hash(content).to_hex().to_string()));

    let listed = env
        .gitkit_in(&repo, ["snapshots", "--json", "--store", store])
        .success();
    let listed: Vec<Value> = serde_json::from_str(&stdout(&listed)).expect("a JSON array");
    let ids: Vec<&Value> = listed.iter().map(|s| &s["id"]).collect();
    assert_eq!(
        ids,
        [&edited["summary"]["id"], &first["summary"]["id"]],
        "newest first"
    );
    for key in [
        "id",
        "time",
        "workspace",
        "commit",
        "branch",
        "host",
        "files",
        "bytes",
    ] {
        assert!(listed[0].get(key).is_some(), "missing {key}: {}", listed[0]);
    }
    assert_eq!(listed[0]["branch"], "experiment");
    assert!(listed[0]["time"].as_str().expect("string").ends_with('Z'));
}

/// The edit `aws s3 sync` misses: same size, same modification time, different content.
#[test]
fn edit_keeping_size_and_mtime_is_never_missed() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    let file = repo.join("weights.txt");
    std::fs::write(&file, b"AAAA").expect("write");
    let mtime = std::fs::metadata(&file)
        .expect("stat")
        .modified()
        .expect("mtime");
    // With no racy window, the cache trusts the entry as soon as the file's ctime is past.
    let env = env.with("GITKIT_TEST_RACY_WINDOW_MS", "0");
    snapshot_json(&env, &repo, store);
    let unchanged = snapshot_json(&env, &repo, store);
    assert_eq!(
        unchanged["read_bytes"], 0,
        "an unchanged file is not read again"
    );

    std::fs::write(&file, b"BBBB").expect("write");
    std::fs::File::options()
        .write(true)
        .open(&file)
        .expect("open")
        .set_modified(mtime)
        .expect("set mtime");
    let edited = snapshot_json(&env, &repo, store);
    assert_eq!(edited["unchanged"], false);

    let target = env.root_path().join("restored");
    restore_project(&env, store, &target).success();
    assert_file_holds(&target.join("weights.txt"), b"BBBB");
}

#[test]
fn identical_content_is_stored_once_across_workspaces() {
    let env = Env::new();
    let store = env.dir("store");
    let store_str = store.to_str().expect("utf-8");
    let data = pseudo_random_bytes(0x5eed, 800_000);
    let mut new_bytes = Vec::new();
    for name in ["first", "second"] {
        let repo = env.repo_with_commit(name);
        std::fs::write(repo.join("data.bin"), &data).expect("write");
        new_bytes.push(
            snapshot_json(&env, &repo, store_str)["new_bytes"]
                .as_u64()
                .expect("number"),
        );
    }
    assert!(new_bytes[0] >= data.len() as u64);
    assert!(
        new_bytes[1] < 10_000,
        "the second workspace re-uploaded {} bytes",
        new_bytes[1]
    );
}

#[test]
fn ignored_files_only_with_include_ignored_and_gitkit_exclude_leaves_files_out() {
    let env = Env::new();
    let repo = rich_repository(&env);
    env.git(&repo, ["config", "gitkit.exclude", "data/"])
        .success();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    env.gitkit_in(&repo, ["snapshot", "--include-ignored", "--store", store])
        .success();
    let target = env.root_path().join("restored");
    restore_project(&env, store, &target).success();
    assert!(target.join("train.log").exists());
    assert!(target.join("cache/blob.bin").exists());
    assert!(!target.join("data/results.csv").exists());
}

#[test]
fn large_file_is_chunked_and_restored_exactly() {
    let (env, repo) = Env::with_project();
    let data = pseudo_random_bytes(0x9e37_79b9_7f4a_7c15, 9 << 20);
    std::fs::write(repo.join("model.bin"), &data).expect("write");
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    snapshot_json(&env, &repo, store);
    let target = env.root_path().join("restored");
    restore_project(&env, store, &target).success();
    assert!(std::fs::read(target.join("model.bin")).expect("read") == data);
}

#[test]
fn restore_refuses_a_non_empty_folder_unless_forced() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    snapshot_json(&env, &repo, store);
    let target = env.dir("occupied");
    std::fs::write(target.join("mine.txt"), b"keep me").expect("write");

    let refused = restore_project(&env, store, &target).failure();
    assert_stderr_contains(&refused, "not empty");
    assert_stderr_contains(&refused, "--force");
    assert_eq!(
        std::fs::read_dir(&target).expect("list").count(),
        1,
        "nothing was written"
    );

    env.gitkit([
        "restore",
        "--store",
        store,
        "--workspace",
        "project",
        "--force",
        "--to",
        target.to_str().expect("utf-8"),
    ])
    .success();
    assert_file_holds(&target.join("README.md"), b"hello\n");
    assert_file_holds(&target.join("mine.txt"), b"keep me");
}

/// Rewrites the only snapshot in a folder store with `edit`, as a format-1 manifest (which
/// names every entry and its blobs' places: what restore checks before it writes anything).
pub(crate) fn tamper_manifest(store: &Path, edit: impl FnOnce(&mut Value)) {
    let path = folder_store::only_snapshot(store);
    let mut manifest = folder_store::as_format_1(store, &folder_store::read_json(&path));
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_vec(&manifest).expect("json")).expect("write");
}

/// Issue 9: a one-file edit deep in a workspace stores that file's content and the trees of
/// the folders on its path, nothing else.
#[test]
fn a_one_file_edit_stores_the_blob_and_the_trees_on_its_path() {
    let env = Env::new();
    let repo = env.repo_with_commit("project");
    for folder in ["data/raw/2026", "data/clean", "src", "notes"] {
        std::fs::create_dir_all(repo.join(folder)).expect("mkdir");
        for n in 0..20 {
            let path = repo.join(folder).join(format!("file {n}.txt"));
            std::fs::write(path, format!("{folder} {n}\n")).expect("write");
        }
    }
    env.git(&repo, ["add", "."]).success();
    env.git(&repo, ["commit", "-q", "-m", "data"]).success();
    let store = env.dir("store");
    snapshot_json(&env, &repo, store.to_str().expect("utf-8"));
    let before = folder_store::blob_hashes(&store);

    let content = b"data/raw/2026 7, edited\n";
    std::fs::write(repo.join("data/raw/2026/file 7.txt"), content).expect("write");
    let second = snapshot_json(&env, &repo, store.to_str().expect("utf-8"));

    let new: Vec<String> = folder_store::blob_hashes(&store)
        .difference(&before)
        .cloned()
        .collect();
    assert_eq!(
        new.len(),
        5,
        "the content, and the trees of data/raw/2026, data/raw, data and the root: {new:?}"
    );
    assert!(new.contains(&blake3::hash(content).to_hex().to_string()));
    let object = folder_store::read_json(&store.join("snapshots/project").join(format!(
        "{}.json",
        second["summary"]["id"].as_str().expect("id")
    )));
    assert!(new.contains(&object["tree"].as_str().expect("tree").to_string()));
    assert!(
        std::fs::metadata(store.join("snapshots/project").join(format!(
            "{}.json",
            second["summary"]["id"].as_str().expect("id")
        )))
        .expect("stat")
        .len()
            < 1024,
        "a snapshot object is small"
    );
}

/// A change made to a manifest, to see restore refuse it.
type Tamper = fn(&mut Value);

#[test]
fn restore_refuses_manifests_that_escape_the_folder() {
    let cases: [(&str, Tamper); 4] = [
        ("parent", |m| m["entries"][0]["path"] = "../escaped".into()),
        ("absolute", |m| {
            m["entries"][0]["path"] = "/tmp/escaped".into()
        }),
        ("duplicate", |m| {
            let first = m["entries"][0].clone();
            m["entries"].as_array_mut().expect("array").push(first);
        }),
        ("through a symlink", |m| {
            let entries = m["entries"].as_array_mut().expect("array");
            let mut link = entries[0].clone();
            link["path"] = "sneaky".into();
            link["kind"] = "symlink".into();
            link["target"] = "/tmp".into();
            let mut file = entries
                .iter()
                .find(|e| e["kind"] == "file")
                .expect("a file")
                .clone();
            file["path"] = "sneaky/escaped".into();
            entries.push(link);
            entries.push(file);
        }),
    ];
    for (name, edit) in cases {
        let (env, repo) = Env::with_project();
        let store = env.dir("store");
        snapshot_json(&env, &repo, store.to_str().expect("utf-8"));
        tamper_manifest(&store, edit);
        let target = env.root_path().join("nested").join("restored");
        let output = restore_project(&env, store.to_str().expect("utf-8"), &target).failure();
        assert!(
            stderr(&output).contains("manifest"),
            "{name}: {}",
            stderr(&output)
        );
        assert!(
            !env.root_path().join("nested").join("escaped").exists(),
            "{name}"
        );
        assert!(
            !target.exists() || std::fs::read_dir(&target).expect("list").count() == 0,
            "{name}: wrote into the target"
        );
    }
}

#[test]
fn corrupt_object_fails_the_restore_and_leaves_no_wrong_file() {
    let (env, repo) = Env::with_project();
    std::fs::write(repo.join("precious.txt"), b"the real content\n").expect("write");
    let store = env.dir("store");
    snapshot_json(&env, &repo, store.to_str().expect("utf-8"));
    let (pack, mut data, at) = walkdir::WalkDir::new(store.join("data"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .find_map(|e| {
            let data = std::fs::read(e.path()).expect("read");
            let at = data.windows(8).position(|w| w == b"the real")?;
            Some((e.into_path(), data, at))
        })
        .expect("content in a pack");
    data[at..at + 8].copy_from_slice(b"the fake");
    std::fs::write(&pack, data).expect("write");

    let target = env.root_path().join("restored");
    let output = restore_project(&env, store.to_str().expect("utf-8"), &target).failure();
    assert_stderr_contains(&output, "precious.txt");
    assert!(!target.join("precious.txt").exists());
    let leftovers: Vec<_> = walkdir::WalkDir::new(&target)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".gitkit-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn s3_server_stopping_mid_snapshot_fails_cleanly_and_the_next_run_reuses_the_upload() {
    let mut env = Env::new();
    let weed_dir = env.dir("weed");
    let weed = Arc::new(Mutex::new(Weed::start(&weed_dir)));
    let weed_port: u16 = weed
        .lock()
        .expect("lock")
        .endpoint()
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port");
    // Stop the server for real right after the first pack's index object is stored.
    let stop_after_first_index = Arc::new(Mutex::new(true));
    let proxy = {
        let weed = Arc::clone(&weed);
        let armed = Arc::clone(&stop_after_first_index);
        Server::start(move |request| {
            let Some(response) = forward(request, weed_port) else {
                return Response::hangup();
            };
            let mut armed = armed.lock().expect("lock");
            if *armed
                && request.method == "PUT"
                && request.path().contains("/index/")
                && response.status == 200
            {
                *armed = false;
                weed.lock().expect("lock").stop();
            }
            response
        })
    };
    weed.lock().expect("lock").configure(&mut env);
    env.set("AWS_ENDPOINT_URL_S3", proxy.url());
    env.set("AWS_MAX_ATTEMPTS", "2");

    let repo = env.repo_with_commit("project");
    for n in 0..6 {
        let data = pseudo_random_bytes(0x2545_f491_4f6c_dd1d + n, 4 << 20);
        std::fs::write(repo.join(format!("part{n}.bin")), data).expect("write");
    }
    let store = format!("s3://{BUCKET}/interrupted");
    let repo_arg = repo.to_str().expect("utf-8");

    let failed = env
        .gitkit(["-C", repo_arg, "snapshot", "--store", &store])
        .failure();
    let message = stderr(&failed);
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.contains(&store), "names the store: {message}");
    assert!(
        message.contains("could not reach"),
        "says what happened: {message}"
    );
    assert_eq!(stdout(&failed), "", "no snapshot id");

    weed.lock().expect("lock").restart();
    let listed = env
        .gitkit(["-C", repo_arg, "snapshots", "--json", "--store", &store])
        .success();
    assert_eq!(stdout(&listed).trim(), "[]", "no manifest was written");

    let done = snapshot_json(&env, &repo, &store);
    let total = done["summary"]["bytes"].as_u64().expect("number");
    let new = done["new_bytes"].as_u64().expect("number");
    assert!(
        new <= total - (4 << 20),
        "at least the first pack (4 MiB or more) was reused: {new} new of {total}"
    );
    let target = env.root_path().join("restored");
    restore_project(&env, &store, &target).success();
    assert_eq!(
        std::fs::read(target.join("part5.bin")).expect("read"),
        std::fs::read(repo.join("part5.bin")).expect("read")
    );
}

/// Asserts that `output` failed with an error naming each of `needles`, and a hint on the
/// line after it; returns what it said.
#[track_caller]
fn assert_one_line_error_with_hint(output: &std::process::Output, needles: &[&str]) -> String {
    assert!(!output.status.success(), "{}", describe(output));
    let message = stderr(output);
    for needle in needles {
        assert!(message.contains(needle), "{message}");
    }
    assert!(
        message
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("hint: ")),
        "{message}"
    );
    message
}

#[test]
fn wrong_credentials_and_missing_bucket_are_one_line_errors_with_a_hint() {
    let mut env = Weed::shared_env();
    let repo = env.repo_with_commit("project");
    let repo_arg = repo.to_str().expect("utf-8");

    let missing = env
        .gitkit([
            "-C",
            repo_arg,
            "snapshot",
            "--store",
            "s3://no-such-bucket/x",
        ])
        .failure();
    assert_one_line_error_with_hint(&missing, &["s3://no-such-bucket/x", "does not exist"]);

    env.set("AWS_SECRET_ACCESS_KEY", "wrong-secret");
    let store = format!("s3://{BUCKET}/denied");
    let denied = env
        .gitkit(["-C", repo_arg, "snapshot", "--store", &store])
        .failure();
    let message = assert_one_line_error_with_hint(&denied, &[&store, "access denied"]);
    assert!(!message.contains("wrong-secret"), "{message}");

    env.remove("AWS_ACCESS_KEY_ID");
    env.remove("AWS_SECRET_ACCESS_KEY");
    let anonymous = env
        .gitkit(["-C", repo_arg, "snapshot", "--store", &store])
        .failure();
    let message = stderr(&anonymous);
    assert!(message.contains("no AWS credentials found"), "{message}");
}

#[test]
fn listing_outside_a_repository_shows_every_workspace() {
    let env = Env::new();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    for name in ["alpha", "beta"] {
        let repo = env.repo_with_commit(name);
        snapshot_json(&env, &repo, store);
    }
    let outside = env.dir("elsewhere");
    let listed = env
        .gitkit(["snapshots", "--json", "--store", store])
        .current_dir(&outside)
        .success();
    let listed: Vec<Value> = serde_json::from_str(&stdout(&listed)).expect("array");
    let mut workspaces: Vec<&str> = listed
        .iter()
        .map(|s| s["workspace"].as_str().expect("string"))
        .collect();
    workspaces.sort();
    assert_eq!(workspaces, ["alpha", "beta"]);

    let target = env.root_path().join("restored");
    let ambiguous = env
        .gitkit([
            "restore",
            "--store",
            store,
            "--to",
            target.to_str().expect("utf-8"),
        ])
        .current_dir(&outside)
        .failure();
    assert_stderr_contains(&ambiguous, "--workspace");
}

/// Guards the listing's columns: the ID column was wider than its header, so nothing lined up.
#[test]
fn the_snapshot_table_lines_up_under_its_headers() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    let first = snapshot_json(&env, &repo, store);
    let listed = env
        .gitkit(["snapshots", "--store", store, "--workspace", "project"])
        .success();
    let text = stdout(&listed);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let header = lines[0];
    let row = lines[1];
    let id = first["summary"]["id"].as_str().expect("id");
    let time = first["summary"]["time"].as_str().expect("time");
    assert!(row.starts_with(id), "{text}");
    assert_eq!(header.find("TIME"), row.find(time), "{text}");
    assert_eq!(header.find("WORKSPACE"), row.find("project"), "{text}");
    assert_eq!(
        header.find("SIZE").map(|at| at + 4),
        Some(row.len()),
        "{text}"
    );
}

/// Guards the snapshot settings being read through git2, which ignores `git -c` and
/// GIT_CONFIG_* (what a hook run by `git -c gitkit.workspace=... commit` sees).
#[test]
fn settings_given_to_git_on_the_command_line_apply() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let output = env
        .gitkit_in(&repo, ["snapshot", "--json"])
        .env("GIT_CONFIG_COUNT", "2")
        .env("GIT_CONFIG_KEY_0", "gitkit.workspace")
        .env("GIT_CONFIG_VALUE_0", "from-the-command-line")
        .env("GIT_CONFIG_KEY_1", "gitkit.store")
        .env("GIT_CONFIG_VALUE_1", store.to_str().expect("utf-8"))
        .success();
    let outcome: Value = serde_json::from_str(stdout(&output).trim()).expect("json");
    assert_eq!(outcome["summary"]["workspace"], "from-the-command-line");
    assert!(store.join("snapshots/from-the-command-line").is_dir());
}

/// `-C DIR` as git has it: every relative path on the command line is relative to DIR (this was
/// done by changing the whole process's folder).
#[test]
fn paths_are_relative_to_the_folder_given_with_dash_c() {
    let (env, repo) = Env::with_project();
    let repo_arg = repo.to_str().expect("utf-8");
    env.gitkit(["-C", repo_arg, "snapshot", "--store", "../store"])
        .success();
    assert!(env.root_path().join("store/snapshots/project").is_dir());
    env.gitkit([
        "-C",
        repo_arg,
        "restore",
        "--store",
        "../store",
        "--to",
        "../restored",
    ])
    .success();
    assert_file_holds(&env.root_path().join("restored/README.md"), b"hello\n");
    let missing = env.root_path().join("missing");
    let output = env.gitkit_in(&missing, ["snapshots"]).failure();
    assert_stderr_contains(&output, "cannot change to");
}

/// Guards the workspace's `.git` being held back and built last (create/sink.rs): names that
/// sort around `.git` (before it, between `.git` and `.git/`, after it) and a nested
/// repository's `sub/.git` are ordinary entries, and all of it comes back as it was.
#[test]
fn names_around_dot_git_and_a_nested_repository_round_trip() {
    let (env, repo) = Env::with_project();
    for (path, content) in [
        ("-x", "dash\n"),
        ("#x", "hash\n"),
        (".git!", "bang\n"),
        (".git-", "dash after\n"),
        (".git-foo/x", "between .git and .git/\n"),
        (".git0", "zero\n"),
        (".gita", "a\n"),
        (".github/workflows/ci.yml", "on: push\n"),
        ("sub/s.txt", "nested\n"),
    ] {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
    let sub = repo.join("sub");
    env.git(&sub, ["init", "-q"]).success();
    env.git(&sub, ["add", "."]).success();
    env.git(&sub, ["commit", "-q", "-m", "nested"]).success();
    env.git(&repo, ["add", "-A"]).success();
    env.git(&repo, ["commit", "-q", "-m", "odd names"])
        .success();
    assert_round_trip(&env, &repo, &["sub"]);
}

/// A snapshot's entries come in git's tree order (a folder's as if it ended in `/`), merged
/// from git's sorted lists and the `.git` walks as they come. Names that sort between a folder
/// and its contents once broke that: branches `feature/x` and `feature-y` (a folder and a file
/// in `.git/refs/heads` and `.git/logs/refs/heads`), `.git/hooks` beside `.git/hooks.bak`, a
/// nested repository with a `.git-blame-ignore-revs`, and work-tree files around a folder, a
/// tracked nested repository and an untracked one. Every one of them snapshots and comes back.
#[test]
fn names_that_sort_between_a_folder_and_its_contents_round_trip() {
    let (env, repo) = Env::with_project();
    let files = [
        ("a/b", "in a\n"),
        ("a!", "bang\n"),
        ("a-1", "dash\n"),
        ("a.txt", "dot\n"),
        ("a0", "zero\n"),
        ("sub-x", "beside the tracked nested repository\n"),
        ("sub.txt", "beside it too\n"),
        ("sub/.git-blame-ignore-revs", "abc\n"),
        ("sub/s.txt", "nested\n"),
        ("data/raw.csv", "1,2\n"),
        ("data-raw/x.csv", "3,4\n"),
        ("data.csv", "5,6\n"),
    ];
    for (path, content) in files {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
    for nested in ["sub", "data"] {
        let nested = repo.join(nested);
        env.git(&nested, ["init", "-q"]).success();
        env.git(&nested, ["add", "."]).success();
        env.git(&nested, ["commit", "-q", "-m", "nested"]).success();
        env.git(&nested, ["branch", "fix/one"]).success();
        env.git(&nested, ["branch", "fix-two"]).success();
    }
    // `data` stays untracked: git lists it as `data/`.
    env.git(
        &repo,
        ["add", "a", "a!", "a-1", "a.txt", "a0", "sub", "sub-x"],
    )
    .success();
    env.git(&repo, ["commit", "-q", "-m", "names"]).success();
    env.git(&repo, ["branch", "feature/x"]).success();
    env.git(&repo, ["branch", "feature-y"]).success();
    let hooks = repo.join(".git/hooks");
    let copy = repo.join(".git/hooks.bak");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for entry in std::fs::read_dir(&hooks).expect("hooks") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), copy.join(entry.file_name())).expect("copy");
    }
    let (store, target) = assert_round_trip(&env, &repo, &["sub", "data"]);
    let again = snapshot_json(&env, &repo, &store);
    assert_eq!(again["unchanged"], true, "the order is the same every time");
    let names = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("a folder")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&target.join(".git/hooks.bak")), names(&copy));
}

/// A repository made inside a folder whose files the workspace already tracks: git lists
/// those files (and the folder's untracked ones) as the workspace's own, and never names the
/// folder as a nested repository; its `.git` is still part of the workspace.
#[test]
fn a_repository_inside_a_folder_the_workspace_tracks_keeps_its_git() {
    let (env, repo) = Env::with_project();
    let lib = repo.join("lib");
    std::fs::create_dir_all(lib.join("src")).expect("mkdir");
    std::fs::write(lib.join("src/a.rs"), "fn a() {}\n").expect("write");
    env.git(&repo, ["add", "lib"]).success();
    env.git(&repo, ["commit", "-q", "-m", "lib"]).success();
    env.git(&lib, ["init", "-q"]).success();
    env.git(&lib, ["add", "."]).success();
    env.git(&lib, ["commit", "-q", "-m", "inner"]).success();
    std::fs::write(lib.join("notes.txt"), "untracked in both\n").expect("write");
    assert_round_trip(&env, &repo, &["lib"]);
}

/// A `gitkit.exclude` pattern for a folder (`dep/`) leaves out a repository nested there,
/// tracked or not, whole: its `.git` as well as its files.
#[test]
fn a_folder_pattern_in_gitkit_exclude_leaves_out_a_nested_repository_whole() {
    let (env, repo) = Env::with_project();
    for nested in ["dep", "mod"] {
        let nested = repo.join(nested);
        std::fs::create_dir_all(&nested).expect("mkdir");
        std::fs::write(nested.join("v.txt"), "v\n").expect("write");
        env.git(&nested, ["init", "-q"]).success();
        env.git(&nested, ["add", "."]).success();
        env.git(&nested, ["commit", "-q", "-m", "nested"]).success();
    }
    // `mod` is tracked (a gitlink); `dep` stays untracked (git lists it as `dep/`).
    env.git(&repo, ["add", "mod"]).success();
    env.git(&repo, ["commit", "-q", "-m", "mod"]).success();
    for pattern in ["dep/", "mod/"] {
        env.git(&repo, ["config", "--add", "gitkit.exclude", pattern])
            .success();
    }
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    snapshot_json(&env, &repo, store);

    let target = env.root_path().join("restored");
    restore_latest(&env, store, &target).success();
    for nested in ["dep", "mod"] {
        assert!(!target.join(nested).exists(), "{nested} left out whole");
    }
}

/// A work tree whose repository lives elsewhere, through a `.git` file (`git init
/// --separate-git-dir`) or a `.git` link, is the workspace: the folder holding that `.git`,
/// not the one above the repository (which is where libgit2 puts the work tree).
#[test]
fn a_work_tree_whose_repository_is_elsewhere_is_the_one_snapshotted() {
    let env = Env::new();
    let elsewhere = env.dir("elsewhere");
    let other = env.dir("other");
    env.git(&other, ["init", "-q"]).success();
    std::fs::write(other.join("other.txt"), "not this one\n").expect("write");
    let separate = env.root_path().join("separate");
    let gitdir = elsewhere.join("separate.git");
    env.git(env.root_path(), ["init", "-q", "--separate-git-dir"])
        .args([gitdir.as_os_str(), separate.as_os_str()])
        .success();
    let linked = env.dir("linked");
    symlink(other.join(".git"), linked.join(".git")).expect("symlink");
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    for (repo, name) in [(&separate, "separate"), (&linked, "linked")] {
        std::fs::write(repo.join("mine.txt"), format!("{name}\n")).expect("write");
        let snapshot = snapshot_json(&env, repo, store);
        assert_eq!(snapshot["summary"]["workspace"], name);
        // The link is kept as a link, and the snapshot says the repository is not in it.
        let warned = snapshot["warnings"]
            .to_string()
            .contains("repository it leads to");
        assert_eq!(warned, name == "linked", "{snapshot:#}");
        let id = snapshot["summary"]["id"].as_str().expect("an id");
        let target = env.root_path().join(format!("restored-{name}"));
        env.gitkit(["restore", id, "--store", store, "--workspace", name, "--to"])
            .args([&target])
            .success();
        assert_eq!(tree(&target), tree(repo));
    }
}

/// A damaged `.git/index` that git still reads makes it list paths out of order: the snapshot
/// fails naming the index as the likely cause, and nothing is published.
#[test]
fn a_damaged_index_fails_the_snapshot_naming_the_index() {
    let (env, repo) = Env::with_project();
    for (path, content) in [("d/e/f", "1\n"), ("d-1", "2\n"), ("top", "3\n")] {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
    env.git(&repo, ["add", "-A"]).success();
    env.git(&repo, ["commit", "-q", "-m", "files"]).success();
    let index = repo.join(".git/index");
    let damaged = std::fs::read(&index).expect("index")[..100].to_vec();
    std::fs::write(&index, damaged).expect("write");
    let store = env.dir("store");
    let failed = env
        .gitkit_in(
            &repo,
            ["snapshot", "--store", store.to_str().expect("utf-8")],
        )
        .failure();
    assert!(stderr(&failed).contains("index"), "{}", stderr(&failed));
    assert!(!store.join("snapshots").exists(), "nothing published");
}

/// A repository nested in the workspace is listed by its own `git ls-files`, which would run
/// the command its configuration names as `core.fsmonitor`; `git status` in the workspace never
/// runs a nested repository's commands, and neither does a snapshot.
#[test]
fn a_nested_repositorys_fsmonitor_command_is_not_run() {
    let (env, repo) = Env::with_project();
    let nested = repo.join("tool");
    std::fs::create_dir_all(&nested).expect("mkdir");
    env.git(&nested, ["init", "-q"]).success();
    std::fs::write(nested.join("t.txt"), "tool\n").expect("write");
    env.git(&nested, ["add", "."]).success();
    env.git(&nested, ["commit", "-q", "-m", "tool"]).success();
    let marker = env.root_path().join("ran");
    let command = env.root_path().join("fsmonitor.sh");
    write_executable(
        &command,
        &format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    );
    env.git(&nested, ["config", "core.fsmonitor"])
        .args([&command])
        .success();
    let store = env.dir("store");
    snapshot_json(&env, &repo, store.to_str().expect("utf-8"));
    assert!(
        !marker.exists(),
        "the nested repository's fsmonitor command ran"
    );
    // The command itself works: git in the nested repository runs it.
    env.git(&nested, ["status", "--porcelain"]).success();
    assert!(marker.exists(), "git runs it where it belongs");
}
