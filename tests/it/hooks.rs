//! `gitkit hooks`, the post-commit hook in real commits, and `gitkit schedule` with the real
//! crontab program (on a spool of the test's own).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::black_hole::BlackHole;
use crate::support::crontab::PrivateCrontab;
use crate::support::s3::{BUCKET, Weed};
use crate::support::{Env, assert_stderr_contains, stderr, stdout, write_executable};

const ORIGINAL_HOOK: &str =
    "#!/bin/sh\necho \"original ran for $(git rev-parse HEAD)\" >> original-hook.log\n";

pub(crate) fn status(env: &Env, repo: &Path) -> Value {
    let output = env.gitkit_in(repo, ["hooks", "status", "--json"]).success();
    serde_json::from_str(&stdout(&output)).expect("JSON status")
}

/// Waits until no snapshot runs or is wanted and `done` holds: the worker is detached, so the
/// test watches what it leaves behind.
#[track_caller]
pub(crate) fn wait_until(env: &Env, repo: &Path, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let current = status(env, repo);
        if current["running"] == false && current["pending"] == false && done(&current) {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "the hook's snapshot never settled: {current:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn head(env: &Env, repo: &Path) -> String {
    stdout(&env.git(repo, ["rev-parse", "HEAD"]).success())
        .trim()
        .to_string()
}

pub(crate) fn commit(env: &Env, repo: &Path, message: &str) -> std::process::Output {
    std::fs::write(repo.join("work.txt"), message).expect("write");
    env.git(repo, ["add", "work.txt"]).success();
    env.git(repo, ["commit", "-q", "-m", message]).success()
}

/// Points S3 back at the real server, commits, and waits for the hook to snapshot that
/// commit; returns it.
#[track_caller]
fn commit_once_s3_is_back(env: &mut Env, repo: &Path) -> String {
    env.set("AWS_ENDPOINT_URL_S3", Weed::shared().endpoint());
    commit(env, repo, "S3 is back");
    let head = head(env, repo);
    let settled = wait_until(env, repo, |s| s["failing"] == false);
    assert_eq!(
        settled["last_snapshot"]["commit"],
        head.as_str(),
        "{settled:#}"
    );
    head
}

/// A repository with gitkit's hook whose S3 store sits behind an endpoint that never answers,
/// and one more setting.
fn hooked_behind_a_black_hole(
    prefix: &str,
    key: &str,
    value: &str,
) -> (Env, BlackHole, std::path::PathBuf) {
    let mut env = Env::new();
    Weed::shared().configure(&mut env);
    let hole = BlackHole::start();
    env.set("AWS_ENDPOINT_URL_S3", hole.url());
    env.set(key, value);
    env.set("GITKIT_STORE", format!("s3://{BUCKET}/{prefix}"));
    let repo = env.repo_with_commit("project");
    install(&env, &repo);
    (env, hole, repo)
}

pub(crate) fn install(env: &Env, repo: &Path) -> String {
    stderr(&env.gitkit_in(repo, ["hooks", "install"]).success())
}

#[test]
fn existing_hook_still_runs_and_uninstall_puts_it_back_exactly() {
    let (mut env, repo) = Env::with_project();
    env.use_folder_store();
    let hook = repo.join(".git/hooks/post-commit");
    std::fs::write(&hook, ORIGINAL_HOOK).expect("write hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o750)).expect("chmod");

    let said = install(&env, &repo);
    assert!(said.contains("runs first"), "{said}");
    let installed = std::fs::read(&hook).expect("read");
    assert!(said.contains("installed"));
    let again = install(&env, &repo);
    assert!(again.contains("already installed"), "{again}");
    assert_eq!(
        std::fs::read(&hook).expect("read"),
        installed,
        "installing twice changes nothing"
    );

    commit(&env, &repo, "second");
    let head = head(&env, &repo);
    let settled = wait_until(&env, &repo, |s| {
        s["last_snapshot"]["commit"] == head.as_str()
    });
    assert_eq!(settled["installed"], true);
    let log =
        std::fs::read_to_string(repo.join("original-hook.log")).expect("the original hook ran");
    assert!(log.contains(&head), "{log}");

    env.gitkit_in(&repo, ["hooks", "uninstall"]).success();
    assert_eq!(std::fs::read_to_string(&hook).expect("read"), ORIGINAL_HOOK);
    let mode = std::fs::metadata(&hook).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o750, "the original's mode is back too");
    assert!(!repo.join(".git/hooks/post-commit.gitkit-chained").exists());
    assert_eq!(status(&env, &repo)["installed"], false);
}

#[test]
fn uninstall_without_an_original_removes_the_hook() {
    let (mut env, repo) = Env::with_project();
    env.use_folder_store();
    install(&env, &repo);
    assert!(repo.join(".git/hooks/post-commit").exists());
    env.gitkit_in(&repo, ["hooks", "uninstall"]).success();
    assert!(!repo.join(".git/hooks/post-commit").exists());
}

#[test]
fn commit_returns_while_s3_hangs_and_the_next_commit_lands_once_it_is_back() {
    let (mut env, hole, repo) =
        hooked_behind_a_black_hole("hooks-unreachable", "AWS_MAX_ATTEMPTS", "1");

    // Captured output, as IDEs and jupyterlab-git run it: the commit must not wait for the
    // snapshot, which cannot finish while the server hangs.
    let output = commit(&env, &repo, "while S3 hangs");
    assert!(output.status.success());
    hole.wait_for_a_caller();
    let during = status(&env, &repo);
    assert_eq!(
        during["running"], true,
        "the snapshot is still waiting on S3: {during:#}"
    );

    hole.close();
    let failed = wait_until(&env, &repo, |s| s["failing"] == true);
    assert!(
        failed["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("s3://")),
        "{failed:#}"
    );

    let head = commit_once_s3_is_back(&mut env, &repo);
    let listed = env.gitkit_in(&repo, ["snapshots", "--json"]).success();
    let listed: Vec<Value> = serde_json::from_str(&stdout(&listed)).expect("array");
    assert_eq!(listed[0]["commit"], head.as_str());
}

#[test]
fn ten_quick_commits_all_succeed_and_snapshots_never_overlap() {
    let mut env = Env::new();
    // The design: a burst of commits, each within the settle time of the last, makes exactly
    // one snapshot, after it. A settle longer than any stall of a loaded machine keeps the
    // burst one burst.
    env.set("GITKIT_TEST_SETTLE_MS", "5000");
    let weed = Weed::shared();
    weed.configure(&mut env);
    env.set("GITKIT_STORE", format!("s3://{BUCKET}/hooks-burst"));
    let repo = env.repo_with_commit("project");
    install(&env, &repo);

    for n in 0..10 {
        commit(&env, &repo, &format!("commit {n}"));
    }
    let head = head(&env, &repo);
    let settled = wait_until(&env, &repo, |s| {
        s["last_snapshot"]["commit"] == head.as_str()
    });
    assert_eq!(settled["failing"], false, "{settled:#}");

    let log = std::fs::read_to_string(repo.join(".git/gitkit/hook.log")).expect("hook log");
    let mut running = None;
    let mut last = None;
    let mut runs = 0;
    for line in log.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let pid = words[2];
        match words[3] {
            "start" => {
                assert_eq!(running, None, "two snapshots at once:\n{log}");
                running = Some(pid);
                last = Some(pid);
                runs += 1;
            }
            "ok" | "error:" => {
                assert_eq!(running, Some(pid), "an end without its start:\n{log}");
                running = None;
            }
            // Warnings and what the keep policy did, after the run's end.
            _ => assert_eq!(last, Some(pid), "a line of no run:\n{log}"),
        }
    }
    assert_eq!(runs, 1, "{runs} runs:\n{log}");
}

#[test]
fn core_hooks_path_is_honoured_and_explained() {
    let (mut env, repo) = Env::with_project();
    env.use_folder_store();
    let hooks_dir = repo.join(".githooks");
    std::fs::create_dir_all(&hooks_dir).expect("mkdir");
    write_executable(&hooks_dir.join("post-commit"), ORIGINAL_HOOK);
    env.git(&repo, ["config", "core.hooksPath", ".githooks"])
        .success();

    let said = install(&env, &repo);
    assert!(said.contains(".githooks/post-commit"), "{said}");
    assert!(said.contains("core.hooksPath"), "explains the risk: {said}");
    assert!(
        !repo.join(".git/hooks/post-commit").exists(),
        "installed where git looks"
    );

    commit(&env, &repo, "second");
    let head = head(&env, &repo);
    wait_until(&env, &repo, |s| {
        s["last_snapshot"]["commit"] == head.as_str()
    });
    assert!(
        std::fs::read_to_string(repo.join("original-hook.log"))
            .expect("ran")
            .contains(&head)
    );

    env.gitkit_in(&repo, ["hooks", "uninstall"]).success();
    assert_eq!(
        std::fs::read_to_string(hooks_dir.join("post-commit")).expect("read"),
        ORIGINAL_HOOK
    );
}

#[test]
fn install_all_finds_every_repository_under_a_folder() {
    let env = Env::new();
    let root = env.dir("SageMaker");
    for name in ["SageMaker/alpha", "SageMaker/team/beta"] {
        env.repo_with_commit(name);
    }
    std::fs::create_dir_all(root.join("not-a-repo")).expect("mkdir");
    let said = stderr(
        &env.gitkit(["hooks", "install", "--all", root.to_str().expect("utf-8")])
            .success(),
    );
    assert_eq!(
        said.lines().filter(|l| l.starts_with("installed")).count(),
        2,
        "{said}"
    );
    for repo in [root.join("alpha"), root.join("team/beta")] {
        assert_eq!(status(&env, &repo)["installed"], true);
    }
}

#[test]
fn schedule_writes_one_crontab_line_idempotently_and_removes_it() {
    let mut env = Env::new();
    let crontab = PrivateCrontab::install(&mut env);
    crontab.set("# the user's own line\n17 3 * * * /usr/bin/true\n");
    env.use_folder_store();
    let repo = env.repo_with_commit("project");
    let repo_arg = repo.to_str().expect("utf-8");
    let ours = |text: &str| {
        text.lines()
            .filter(|l| l.contains("# gitkit schedule:"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };

    env.gitkit(["-C", repo_arg, "schedule", "--every", "1h"])
        .success();
    let lines = ours(&crontab.current());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("0 */1 * * * ") && lines[0].contains("hook scheduled -C"),
        "{lines:?}"
    );
    assert!(
        lines[0].contains("GITKIT_STORE="),
        "the store goes with it: {lines:?}"
    );

    let again = env
        .gitkit(["-C", repo_arg, "schedule", "--every", "1h"])
        .success();
    assert!(stderr(&again).contains("already scheduled"));
    env.gitkit(["-C", repo_arg, "schedule", "--every", "30m"])
        .success();
    let text = crontab.current();
    let lines = ours(&text);
    assert_eq!(lines.len(), 1, "replaced, not added: {lines:?}");
    assert!(lines[0].starts_with("*/30 * * * * "), "{lines:?}");
    assert!(
        text.contains("17 3 * * * /usr/bin/true"),
        "the user's line stays: {text}"
    );

    let refused = env
        .gitkit(["-C", repo_arg, "schedule", "--every", "45m"])
        .failure();
    assert_stderr_contains(&refused, "hint: ");

    env.gitkit(["-C", repo_arg, "schedule", "--off"]).success();
    let text = crontab.current();
    assert!(ours(&text).is_empty(), "{text}");
    assert!(text.contains("17 3 * * * /usr/bin/true"), "{text}");
}

#[test]
fn scheduled_run_snapshots_only_when_something_changed() {
    let mut env = Env::new();
    env.use_folder_store();
    let repo = env.repo_with_commit("project");
    let repo_arg = repo.to_str().expect("utf-8");
    let count = |env: &Env| {
        let listed = env
            .gitkit(["-C", repo_arg, "snapshots", "--json"])
            .success();
        serde_json::from_str::<Vec<Value>>(&stdout(&listed))
            .expect("array")
            .len()
    };
    env.gitkit(["-C", repo_arg, "hook", "scheduled"]).success();
    assert_eq!(count(&env), 1);
    env.gitkit(["-C", repo_arg, "hook", "scheduled"]).success();
    assert_eq!(count(&env), 1, "nothing changed, no new snapshot");
    std::fs::write(repo.join("notes.txt"), "new").expect("write");
    env.gitkit(["-C", repo_arg, "hook", "scheduled"]).success();
    assert_eq!(count(&env), 2);
}

/// Guards against guessing: a foreign hook where gitkit's chained copy already is would lose
/// one of them, so install refuses there and goes on with the other repositories.
#[test]
fn install_refuses_to_guess_and_goes_on_with_the_rest() {
    let env = Env::new();
    let root = env.dir("SageMaker");
    let tangled = env.repo_with_commit("SageMaker/tangled");
    env.repo_with_commit("SageMaker/fine");
    let hooks = tangled.join(".git/hooks");
    std::fs::write(hooks.join("post-commit"), ORIGINAL_HOOK).expect("write");
    std::fs::write(hooks.join("post-commit.gitkit-chained"), "#!/bin/sh\n").expect("write");

    let output = env
        .gitkit(["hooks", "install", "--all", root.to_str().expect("utf-8")])
        .failure();
    let said = stderr(&output);
    assert!(said.contains("refusing to guess"), "{said}");
    assert_eq!(
        std::fs::read_to_string(hooks.join("post-commit")).expect("read"),
        ORIGINAL_HOOK
    );
    assert_eq!(status(&env, &root.join("fine"))["installed"], true);
}

/// Guards the worker against a store that never answers: it gives up at the snapshot's
/// deadline, records why in hook-status.json and hook.log, and lets go of its lock, so that the
/// next commit is snapshotted.
#[test]
fn worker_records_a_store_that_never_answers_and_frees_its_lock() {
    let (mut env, hole, repo) =
        hooked_behind_a_black_hole("hooks-never-answers", "GITKIT_SNAPSHOT_TIMEOUT", "2s");

    commit(&env, &repo, "while S3 never answers");
    hole.wait_for_a_caller();
    let failed = wait_until(&env, &repo, |s| s["failing"] == true);
    let message = failed["last_error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("did not finish within 2s"), "{failed:#}");
    let log = std::fs::read_to_string(repo.join(".git/gitkit/hook.log")).expect("hook log");
    assert!(
        log.lines()
            .any(|l| l.contains(" error: ") && l.contains("did not finish within 2s")),
        "{log}"
    );

    commit_once_s3_is_back(&mut env, &repo);
}

/// Guards `hooks status` against a worker that holds the lock for too long: it says since when
/// and which process, and past a threshold flags it.
#[test]
fn status_shows_how_long_the_worker_has_been_running() {
    let (env, repo) = Env::with_project();
    let state = repo.join(".git/gitkit");
    std::fs::create_dir_all(&state).expect("mkdir");
    let lock = state.join("snapshot.lock");
    // A worker that started an hour ago and still holds the lock: `flock` holds it for real.
    // `--no-fork`: flock becomes the sleep, so killing it leaves no process behind.
    let mut holder = std::process::Command::new("flock")
        .arg("--no-fork")
        .arg(&lock)
        .args(["sleep", "600"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("flock(1) holds the lock");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        - 3600;
    std::fs::write(&lock, format!("pid {} started {started}\n", holder.id())).expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    let json = loop {
        let json = status(&env, &repo);
        if json["running"] == true {
            break json;
        }
        assert!(Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(json["worker"]["pid"], holder.id(), "{json:#}");
    assert_eq!(json["worker"]["stuck"], true, "{json:#}");
    let text = stdout(&env.gitkit_in(&repo, ["hooks", "status"]).success());
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        text.contains(&format!("running: yes, for 60 min (pid {})", holder.id())),
        "{text}"
    );
    assert!(text.contains("stuck"), "{text}");
}

/// Guards against crontab injection: a newline in a value gitkit writes to cron (the store,
/// the repository's path) would start a line of its own, run by cron as the user.
#[test]
fn control_characters_never_reach_the_crontab() {
    let mut env = Env::new();
    let crontab = PrivateCrontab::install(&mut env);
    crontab.set("17 3 * * * /usr/bin/true\n");
    let repo = env.repo_with_commit("project");
    let repo_arg = repo.to_str().expect("utf-8");

    let injected = env
        .gitkit(["-C", repo_arg, "schedule", "--every", "1h"])
        .env(
            "GITKIT_STORE",
            "s3://bucket/p\n* * * * * touch /tmp/gitkit-injected",
        )
        .failure();
    assert_stderr_contains(&injected, "GITKIT_STORE");
    assert_stderr_contains(&injected, "control character");

    let odd = env.repo_with_commit("odd\n* * * * * touch x #");
    let refused = env.gitkit_in(&odd, ["schedule", "--every", "1h"]).failure();
    assert_stderr_contains(&refused, "control character");

    assert_eq!(
        crontab.current(),
        "17 3 * * * /usr/bin/true\n",
        "nothing changed"
    );
}

/// Guards the hook script the same way: a gitkit installed at a path with a newline is refused.
#[test]
fn control_characters_never_reach_the_hook() {
    let (env, repo) = Env::with_project();
    let odd = env.dir("bin\nexit 0\n#");
    let gitkit = odd.join("gitkit");
    std::fs::hard_link(crate::support::gitkit_bin(), &gitkit)
        .or_else(|_| std::fs::copy(crate::support::gitkit_bin(), &gitkit).map(drop))
        .expect("a gitkit at an odd path");
    let output = env
        .command(&gitkit)
        .args(["-C", repo.to_str().expect("utf-8"), "hooks", "install"])
        .failure();
    assert_stderr_contains(&output, "control character");
    assert!(!repo.join(".git/hooks/post-commit").exists());
}

/// Guards edits to gitkit's hook: uninstall keeps them aside rather than deleting them.
#[test]
fn uninstall_keeps_an_edited_hook_aside_and_says_so() {
    let (mut env, repo) = Env::with_project();
    env.use_folder_store();
    let hooks = repo.join(".git/hooks");
    write_executable(&hooks.join("post-commit"), ORIGINAL_HOOK);
    install(&env, &repo);
    let mut edited = std::fs::read_to_string(hooks.join("post-commit")).expect("read");
    edited.push_str("echo my own addition\n");
    std::fs::write(hooks.join("post-commit"), &edited).expect("edit");

    let output = env.gitkit_in(&repo, ["hooks", "uninstall"]).success();
    let said = stderr(&output);
    assert!(said.contains("post-commit.gitkit-edited"), "{said}");
    assert_eq!(
        std::fs::read_to_string(hooks.join("post-commit.gitkit-edited")).expect("kept"),
        edited
    );
    assert_eq!(
        std::fs::read_to_string(hooks.join("post-commit")).expect("read"),
        ORIGINAL_HOOK,
        "the original is back"
    );

    // Installing again over an edited hook keeps the edits aside too.
    install(&env, &repo);
    std::fs::write(hooks.join("post-commit"), &edited).expect("edit");
    let said = install(&env, &repo);
    assert!(said.contains("post-commit.gitkit-edited.2"), "{said}");
    assert_eq!(
        std::fs::read_to_string(hooks.join("post-commit.gitkit-edited.2")).expect("kept"),
        edited
    );

    // An unedited hook goes without a trace.
    let output = env.gitkit_in(&repo, ["hooks", "uninstall"]).success();
    assert!(!stderr(&output).contains("edited"), "{}", stderr(&output));
}

#[test]
fn a_hook_that_is_a_folder_gets_a_clear_error_and_is_left_alone() {
    let (env, repo) = Env::with_project();
    let hook = repo.join(".git/hooks/post-commit");
    std::fs::create_dir_all(hook.join("inside")).expect("mkdir");
    let output = env.gitkit_in(&repo, ["hooks", "install"]).failure();
    let said = stderr(&output);
    assert!(said.contains("is a folder"), "{said}");
    assert!(said.contains("hint: "), "{said}");
    assert!(hook.join("inside").is_dir(), "left as it was");
    assert!(!repo.join(".git/hooks/post-commit.gitkit-chained").exists());
}

/// Guards the terminal: what `hooks status` prints comes from a file anyone with write access
/// to the repository can edit, so escape sequences are shown, not sent.
#[test]
fn status_shows_escape_sequences_instead_of_sending_them() {
    let (env, repo) = Env::with_project();
    let state = repo.join(".git/gitkit");
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::write(
        state.join("hook-status.json"),
        r#"{"last_snapshot":{"id":"abc\u001b[2J","commit":null,"at":"now\u0007"},
            "last_error":{"message":"\u001b]0;pwned\u0007red \u001b[31mtext\u009b1m\r\nline","at":"t"},
            "failing":true}"#,
    )
    .expect("write");
    let output = env.gitkit_in(&repo, ["hooks", "status"]).success();
    let text = stdout(&output);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains(r"\u{1b}]0;pwned"), "{text:?}");
    assert_eq!(text.lines().count(), 4, "one line each: {text:?}");
}

/// Guards the trust issue's item 1 for hooks: what a hook's snapshot left out is said in
/// `hooks status` (text and JSON), not only in a log nobody reads.
#[test]
fn hooks_status_names_what_the_last_snapshot_left_out() {
    let (mut env, repo) = Env::with_project();
    env.use_folder_store();
    std::fs::write(repo.join("queue"), b"a tracked file\n").expect("write");
    env.git(&repo, ["add", "queue"]).success();
    env.git(&repo, ["commit", "-q", "-m", "queue"]).success();
    std::fs::remove_file(repo.join("queue")).expect("rm");
    env.command("mkfifo")
        .args([repo.join("queue").to_str().expect("utf-8")])
        .success();
    install(&env, &repo);

    commit(&env, &repo, "second");
    let head = head(&env, &repo);
    let settled = wait_until(&env, &repo, |s| {
        s["last_snapshot"]["commit"] == head.as_str()
    });
    assert_eq!(
        settled["last_snapshot"]["warnings"][0],
        "queue: is a socket, pipe or device, not a file; left out",
        "{settled:#}"
    );
    let text = stdout(&env.gitkit_in(&repo, ["hooks", "status"]).success());
    assert!(
        text.contains("  warning: queue: is a socket, pipe or device, not a file; left out"),
        "{text}"
    );
}

/// Guards `hook scheduled --all` stopping at the first repository it could not snapshot,
/// unlike `hooks install --all`: each is reported, and the others are still snapshotted.
#[test]
fn a_scheduled_run_goes_on_past_a_repository_that_fails() {
    let mut env = Env::new();
    let store = env.use_folder_store();
    let root = env.dir("workspaces");
    let broken = env.repo_with_commit("workspaces/a-broken");
    env.repo_with_commit("workspaces/b-fine");
    // gitkit's state folder cannot be made: a file is in its place.
    std::fs::write(broken.join(".git/gitkit"), b"in the way").expect("write");

    let output = env
        .gitkit(["hook", "scheduled", "--all", root.to_str().expect("utf-8")])
        .failure();
    let said = stderr(&output);
    assert!(said.contains("a-broken"), "{said}");
    assert!(
        said.contains("1 repositories could not be snapshotted"),
        "{said}"
    );
    assert!(
        store.join("snapshots/b-fine").is_dir(),
        "the other was snapshotted: {said}"
    );
}
