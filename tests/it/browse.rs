//! `gitkit ls`, `gitkit diff` and `gitkit restore --path`, through a real S3 server, with
//! names that break naive code; and a version-1 store written by gitkit 0.1.0.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::snapshot::{snapshot_json, tree};
use crate::support::s3::{BUCKET, Weed};
use crate::support::{Env, stderr, stdout};

const NEWLINE_NAME: &str = "new\nline.txt";

/// A repository (workspace `odd`) with a space, non-ASCII, non-UTF-8, a newline and a leading
/// dash in its names, an executable and a link.
fn odd_repository(env: &Env) -> PathBuf {
    let repo = env.repo_with_commit("odd");
    let write = |path: &str, content: &str| {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    };
    write("note book.py", "print('hello')\n");
    write("données/sub dir/table.csv", "a,b\n1,2\n");
    write("données/other.txt", "other\n");
    write(NEWLINE_NAME, "first line\n");
    write("-dash.txt", "dash\n");
    write("run.sh", "#!/bin/sh\necho run\n");
    std::fs::set_permissions(repo.join("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(repo.join(latin1), "latin-1\n").expect("write");
    symlink("note book.py", repo.join("link")).expect("symlink");
    repo
}

/// A store of its own on the shared S3 server.
fn s3_store(env: &mut Env, name: &str) -> String {
    Weed::shared().configure(env);
    format!("s3://{BUCKET}/browse-{name}")
}

fn snapshot_id(env: &Env, repo: &Path, store: &str) -> String {
    snapshot_json(env, repo, store)["summary"]["id"]
        .as_str()
        .expect("an id")
        .to_string()
}

/// `gitkit ARGS... --store STORE --workspace odd`.
fn gitkit_odd<const N: usize>(env: &Env, store: &str, args: [&str; N]) -> crate::support::Cmd {
    env.gitkit(args)
        .args(["--store", store, "--workspace", "odd"])
}

/// Lines of stdout that are not under `.git/`.
fn outside_git(output: &std::process::Output) -> Vec<String> {
    stdout(output)
        .lines()
        .filter(|line| !line.contains(".git/"))
        .map(str::to_string)
        .collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

#[test]
fn restore_path_brings_back_a_file_or_a_folder_and_refuses_a_missing_one() {
    let mut env = Env::new();
    let store = s3_store(&mut env, "restore-path");
    let repo = odd_repository(&env);
    let id = snapshot_id(&env, &repo, &store);

    let files = env.root_path().join("files");
    gitkit_odd(
        &env,
        &store,
        [
            "restore",
            &id,
            "--path",
            NEWLINE_NAME,
            "--path",
            "-dash.txt",
            "--to",
            path_str(&files),
        ],
    )
    .success();
    let found: Vec<(Vec<u8>, String)> = tree(&files).into_iter().collect();
    assert_eq!(
        found,
        [
            (b"-dash.txt".to_vec(), "file 644 dash\n".to_string()),
            (NEWLINE_NAME.into(), "file 644 first line\n".to_string()),
        ]
    );
    assert!(!files.join(".git").exists(), "only what was asked for");

    let folder = env.root_path().join("folder");
    gitkit_odd(
        &env,
        &store,
        [
            "restore",
            "latest",
            "--path",
            "données/",
            "--to",
            path_str(&folder),
        ],
    )
    .success();
    let found: Vec<(Vec<u8>, String)> = tree(&folder).into_iter().collect();
    assert_eq!(
        found,
        [
            ("données/other.txt".into(), "file 644 other\n".to_string()),
            (
                "données/sub dir/table.csv".into(),
                "file 644 a,b\n1,2\n".to_string()
            ),
        ]
    );

    // `.git` alone: a repository git can read.
    let git_only = env.root_path().join("git-only");
    gitkit_odd(
        &env,
        &store,
        [
            "restore",
            &id,
            "--path",
            ".git",
            "--to",
            path_str(&git_only),
        ],
    )
    .success();
    let log = env
        .git(&git_only, ["--git-dir=.git", "log", "--format=%s"])
        .success();
    assert_eq!(stdout(&log), "first\n");
    assert!(tree(&git_only).is_empty(), "nothing outside .git");

    // A path that matches nothing: an error naming it, and nothing written, even with --force
    // into a folder that has files and with another path that does match.
    let missing = env.root_path().join("missing");
    let output = gitkit_odd(
        &env,
        &store,
        [
            "restore",
            &id,
            "--path",
            "nope/",
            "--to",
            path_str(&missing),
        ],
    )
    .failure();
    assert!(
        stderr(&output).contains("holds nothing at `nope`")
            && stderr(&output).contains("gitkit ls"),
        "{}",
        stderr(&output)
    );
    assert!(!missing.exists(), "no target folder left behind");
    let before = tree(&files);
    let output = gitkit_odd(
        &env,
        &store,
        [
            "restore",
            &id,
            "--force",
            "--path",
            "note book.py",
            "--path",
            "note",
            "--to",
            path_str(&files),
        ],
    )
    .failure();
    assert!(stderr(&output).contains("`note`"), "{}", stderr(&output));
    assert_eq!(tree(&files), before, "the target is untouched");
}

#[test]
fn ls_lists_every_file_or_those_under_a_path() {
    let mut env = Env::new();
    let store = s3_store(&mut env, "ls");
    let repo = odd_repository(&env);
    let id = snapshot_id(&env, &repo, &store);

    let all = gitkit_odd(&env, &store, ["ls", &id]).success();
    assert_eq!(
        outside_git(&all),
        [
            "-dash.txt",
            "README.md",
            r"caf\xe9.txt",
            "données/other.txt",
            "données/sub dir/table.csv",
            "link",
            r"new\u{a}line.txt",
            "note book.py",
            "run.sh",
        ],
        "sorted by bytes, names that are not printable escaped"
    );
    assert!(
        stdout(&all).lines().any(|line| line == ".git/HEAD"),
        ".git is listed too"
    );

    let folder = gitkit_odd(&env, &store, ["ls", "latest", "données"]).success();
    assert_eq!(
        stdout(&folder),
        "données/other.txt\ndonnées/sub dir/table.csv\n"
    );
    let dash = env
        .gitkit([
            "ls",
            &id,
            "--store",
            &store,
            "--workspace",
            "odd",
            "--",
            "-dash.txt",
        ])
        .success();
    assert_eq!(stdout(&dash), "-dash.txt\n");

    let long = gitkit_odd(&env, &store, ["ls", &id, "--long", "run.sh", "link"]).success();
    let long = stdout(&long);
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("120000 ") && lines[0].ends_with(" link -> note book.py"));
    assert!(lines[1].starts_with("100755 19 20") && lines[1].ends_with("Z run.sh"));

    let json = gitkit_odd(&env, &store, ["ls", &id, "--json", NEWLINE_NAME, "link"]).success();
    let json: Value = serde_json::from_str(&stdout(&json)).expect("JSON");
    assert_eq!(json[0]["path"], "link");
    assert_eq!(json[0]["kind"], "symlink");
    assert_eq!(json[0]["target"], "note book.py");
    assert_eq!(
        json[1]["path"], NEWLINE_NAME,
        "the name as it is, newline included"
    );
    assert_eq!(json[1]["size"], 11);
    assert_eq!(json[1]["mode"], 0o644);

    let latin1 = env
        .gitkit(["ls", &id, "--json", "--store", &store, "--workspace", "odd"])
        .args([std::ffi::OsStr::from_bytes(b"caf\xe9.txt")])
        .success();
    let latin1: Value = serde_json::from_str(&stdout(&latin1)).expect("JSON");
    assert_eq!(
        latin1[0]["path"],
        serde_json::json!({"hex": "636166e92e747874"}),
        "a name that is not UTF-8, as the manifest stores it"
    );

    let missing = gitkit_odd(&env, &store, ["ls", &id, "données/sub"]).failure();
    assert!(
        stderr(&missing).contains("holds nothing at `données/sub`"),
        "a folder's name is matched whole: {}",
        stderr(&missing)
    );
}

#[test]
fn diff_shows_added_deleted_modified_and_mode_changes_sorted() {
    let mut env = Env::new();
    let store = s3_store(&mut env, "diff");
    let repo = odd_repository(&env);
    let first = snapshot_id(&env, &repo, &store);

    std::fs::write(repo.join("added file.txt"), "new\n").expect("write");
    std::fs::remove_file(repo.join("-dash.txt")).expect("remove");
    std::fs::write(repo.join(NEWLINE_NAME), "first line\nsecond\n").expect("write");
    std::fs::set_permissions(
        repo.join("note book.py"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let second = snapshot_id(&env, &repo, &store);
    assert_ne!(first, second);

    let diff = gitkit_odd(&env, &store, ["diff", &first, &second]).success();
    assert_eq!(
        outside_git(&diff),
        [
            "D\t-dash.txt",
            "A\tadded file.txt",
            r"M	new\u{a}line.txt",
            "m\tnote book.py",
        ]
    );
    let reverse = gitkit_odd(&env, &store, ["diff", "latest", &first]).success();
    assert_eq!(
        outside_git(&reverse),
        [
            "A\t-dash.txt",
            "D\tadded file.txt",
            r"M	new\u{a}line.txt",
            "m\tnote book.py",
        ]
    );
    let same = gitkit_odd(&env, &store, ["diff", &first, &first]).success();
    assert_eq!(stdout(&same), "", "a snapshot does not differ from itself");

    let json = gitkit_odd(&env, &store, ["diff", &first, &second, "--json"]).success();
    let json: Vec<Value> = serde_json::from_str(&stdout(&json)).expect("JSON");
    let changes: Vec<&Value> = json
        .iter()
        .filter(|c| !c["path"].as_str().is_some_and(|p| p.starts_with(".git/")))
        .collect();
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert_eq!(changes[0]["status"], "D");
    assert_eq!(changes[0]["new"], Value::Null);
    assert_eq!(changes[1]["status"], "A");
    assert_eq!(changes[1]["old"], Value::Null);
    assert_eq!(changes[2]["path"], NEWLINE_NAME);
    assert_eq!(changes[2]["old"]["size"], 11);
    assert_eq!(changes[2]["new"]["size"], 18);
    assert_eq!(changes[3]["status"], "m");
    assert_eq!(changes[3]["new"]["mode"], 0o755);
}

/// A copy of the version-1 store of `tests/fixtures/v1-store` (tests never write into the
/// repository).
fn v1_store(env: &Env) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store");
    let copy = env.dir("v1-store");
    for entry in walkdir::WalkDir::new(&fixture).min_depth(1) {
        let entry = entry.expect("walk the fixture");
        let to = copy.join(entry.path().strip_prefix(&fixture).expect("under it"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
    copy
}

const V1_FIRST: &str = "20261129T052520.428Z-e9444e";
const V1_SECOND: &str = "20261129T052520.476Z-5649c5";

#[test]
fn a_version_1_store_still_lists_and_restores() {
    let env = Env::new();
    let store = v1_store(&env);
    let store = path_str(&store);

    let listed = env
        .gitkit(["snapshots", "--json", "--store", store])
        .success();
    let listed: Vec<Value> = serde_json::from_str(&stdout(&listed)).expect("JSON");
    let ids: Vec<&str> = listed
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [V1_SECOND, V1_FIRST], "newest first");
    assert!(listed.iter().all(|s| s["workspace"] == "fixture"));

    let target = env.root_path().join("restored");
    env.gitkit([
        "restore",
        "latest",
        "--store",
        store,
        "--to",
        path_str(&target),
    ])
    .success();
    let read = |path: &str| std::fs::read(target.join(path)).expect(path);
    assert_eq!(read("note book.py"), b"print(\"hello again\")\n");
    assert_eq!(read("données/sub dir/table.csv"), b"a,b\n1,2\n");
    assert_eq!(read("run.sh"), b"#!/bin/sh\necho run\n");
    assert_eq!(read("scratch.txt"), b"untracked\n");
    assert_eq!(read("big.bin"), vec![0u8; (2 << 20) + 100]);
    let mode = std::fs::metadata(target.join("run.sh"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        std::fs::read_link(target.join("link")).expect("a link"),
        Path::new("données/sub dir/table.csv")
    );
    let log = env.git(&target, ["log", "--format=%s"]).success();
    assert_eq!(stdout(&log), "first\n");
    let status = env
        .git(&target, ["status", "--porcelain", "--untracked-files=all"])
        .success();
    assert_eq!(stdout(&status), " M \"note book.py\"\n?? scratch.txt\n");

    let part = env.root_path().join("part");
    env.gitkit([
        "restore",
        V1_FIRST,
        "--store",
        store,
        "--path",
        "note book.py",
        "--to",
        path_str(&part),
    ])
    .success();
    assert_eq!(
        tree(&part).into_iter().collect::<Vec<_>>(),
        [(
            b"note book.py".to_vec(),
            "file 644 print(\"hello\")\n".to_string()
        )]
    );

    let ls = env.gitkit(["ls", "latest", "--store", store]).success();
    assert_eq!(
        outside_git(&ls),
        [
            "big.bin",
            "données/sub dir/table.csv",
            "link",
            "note book.py",
            "run.sh",
            "scratch.txt",
        ]
    );
    let diff = env
        .gitkit(["diff", V1_FIRST, V1_SECOND, "--store", store])
        .success();
    assert_eq!(stdout(&diff), "M\tnote book.py\n");
}
