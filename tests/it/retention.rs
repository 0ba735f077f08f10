//! `gitkit forget`, `snapshots --keep-*` and the hook's worker applying the keep policy,
//! against a folder store and a real S3 server. Snapshot times are set with GITKIT_TEST_NOW
//! (a test-only clock), so that the policy sees hours and days that never had to pass.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::hooks::{commit, head, install, wait_until};
use crate::support::s3::{BUCKET, Weed};
use crate::support::{Env, assert_stderr_contains, stderr, stdout};

/// 2026-11-28T12:00:00Z, a Saturday.
const NOON: i64 = 1_795_867_200;
const HOUR: i64 = 3600;

/// Snapshots `repo` into `store` as if at `time` (Unix seconds), after an edit so that there is
/// something new; returns the snapshot's id.
#[track_caller]
fn snapshot_at(env: &Env, repo: &Path, store: &str, time: i64) -> String {
    std::fs::write(repo.join("work.txt"), format!("as of {time}\n")).expect("write");
    let output = env
        .gitkit_in(repo, ["snapshot", "--json", "--store", store])
        .env("GITKIT_TEST_NOW", time.to_string())
        .success();
    let json: Value = serde_json::from_str(stdout(&output).trim()).expect("one JSON object");
    assert_eq!(json["unchanged"], false, "{json:#}");
    json["summary"]["id"].as_str().expect("an id").to_string()
}

/// The ids of `workspace`'s snapshots in `store`, as `gitkit snapshots` lists them.
#[track_caller]
fn ids(env: &Env, store: &str, workspace: &str) -> BTreeSet<String> {
    let output = env
        .gitkit([
            "snapshots",
            "--json",
            "--store",
            store,
            "--workspace",
            workspace,
        ])
        .success();
    let listed: Vec<Value> = serde_json::from_str(&stdout(&output)).expect("array");
    listed
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

/// Restores snapshot `id` of `project` and checks it holds the edit made for it.
#[track_caller]
fn assert_restores(env: &Env, store: &str, id: &str, time: i64) {
    let target = env.root_path().join(format!("restored-{id}"));
    crate::snapshot::restore_snapshot(env, store, id, &target);
    assert_eq!(
        std::fs::read_to_string(target.join("work.txt")).expect("restored"),
        format!("as of {time}\n")
    );
}

#[test]
fn forget_removes_what_the_policy_does_not_keep_and_dry_run_removes_nothing() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    let times = [
        NOON - 3 * 24 * HOUR, // Wednesday
        NOON - 21 * HOUR,     // Friday 15:00
        NOON - 27 * HOUR,     // Friday 09:00
        NOON - 4 * HOUR,      // Saturday 08:00
        NOON,                 // Saturday 12:00
    ];
    let made: Vec<String> = times
        .iter()
        .map(|&t| snapshot_at(&env, &repo, store, t))
        .collect();
    let all = ids(&env, store, "project");
    assert_eq!(all.len(), 5);
    // The newest of the two most recent days that have a snapshot.
    let expected = set(&[&made[4], &made[1]]);

    // `snapshots` shows what the policy would keep, and why.
    let shown = env
        .gitkit_in(
            &repo,
            ["snapshots", "--json", "--store", store, "--keep-daily", "2"],
        )
        .success();
    let shown: Vec<Value> = serde_json::from_str(&stdout(&shown)).expect("array");
    let kept: BTreeSet<String> = shown
        .iter()
        .filter(|s| s["keep"] == true)
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(kept, expected, "{shown:#?}");
    assert_eq!(shown[0]["reasons"][0], "daily snapshot", "{shown:#?}");
    let table = stdout(
        &env.gitkit_in(&repo, ["snapshots", "--store", store, "--keep-daily", "2"])
            .success(),
    );
    assert!(
        table
            .lines()
            .next()
            .expect("header")
            .ends_with("KEEP   REASONS"),
        "{table}"
    );
    assert_eq!(
        table.lines().filter(|l| l.contains(" forget ")).count(),
        3,
        "{table}"
    );

    let dry = env
        .gitkit_in(
            &repo,
            ["forget", "--keep-daily", "2", "--dry-run", "--store", store],
        )
        .success();
    assert_stderr_contains(&dry, "would remove 3 snapshots");
    assert_stderr_contains(&dry, "nothing was removed");
    assert_eq!(
        ids(&env, store, "project"),
        all,
        "a dry run removes nothing"
    );

    let done = env
        .gitkit_in(&repo, ["forget", "--keep-daily", "2", "--store", store])
        .success();
    assert_stderr_contains(&done, "kept 2, removed 3 snapshots");
    assert_eq!(ids(&env, store, "project"), expected);
    for (id, time) in [(&made[4], times[4]), (&made[1], times[1])] {
        assert_restores(&env, store, id, time);
    }
}

#[test]
fn keep_within_counts_from_the_newest_snapshot_however_long_ago() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    let made: Vec<String> = [NOON - 50 * HOUR, NOON - 47 * HOUR, NOON]
        .iter()
        .map(|&t| snapshot_at(&env, &repo, store, t))
        .collect();
    // A year later, nothing new: `--keep-within 48h` still keeps the last 48 hours of work.
    env.gitkit_in(&repo, ["forget", "--keep-within", "48h", "--store", store])
        .env("GITKIT_TEST_NOW", (NOON + 365 * 24 * HOUR).to_string())
        .success();
    assert_eq!(ids(&env, store, "project"), set(&[&made[1], &made[2]]));
    // The newest is kept whatever the policy.
    env.gitkit_in(&repo, ["forget", "--keep-monthly", "1", "--store", store])
        .success();
    assert_eq!(ids(&env, store, "project"), set(&[&made[2]]));
}

#[test]
fn forget_without_a_policy_is_refused_and_removes_nothing() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    snapshot_at(&env, &repo, store, NOON - HOUR);
    snapshot_at(&env, &repo, store, NOON);
    let refused = env.gitkit_in(&repo, ["forget", "--store", store]).failure();
    assert_stderr_contains(&refused, "no keep policy");
    assert_stderr_contains(&refused, "hint: ");
    let empty = env
        .gitkit_in(&repo, ["forget", "--keep-last", "0", "--store", store])
        .failure();
    assert_stderr_contains(&empty, "keeps nothing");
    let bad = env
        .gitkit_in(&repo, ["forget", "--keep-within", "2x", "--store", store])
        .failure();
    assert_stderr_contains(&bad, "not a duration");
    assert_eq!(ids(&env, store, "project").len(), 2);
}

#[test]
fn the_configured_policy_applies_without_flags() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    let made: Vec<String> = (0..4)
        .map(|i| snapshot_at(&env, &repo, store, NOON + i * HOUR))
        .collect();

    env.git(&repo, ["config", "gitkit.keep.last", "lots"])
        .success();
    let bad = env.gitkit_in(&repo, ["forget", "--store", store]).failure();
    assert_stderr_contains(&bad, "gitkit.keep.last is `lots`");
    assert_eq!(
        ids(&env, store, "project").len(),
        4,
        "bad config removes nothing"
    );

    env.git(&repo, ["config", "gitkit.keep.last", "2"])
        .success();
    // Listing shows the configured policy's decisions.
    let table = stdout(
        &env.gitkit_in(&repo, ["snapshots", "--store", store])
            .success(),
    );
    assert!(table.contains("KEEP"), "{table}");
    // Flags win over config.
    env.gitkit_in(&repo, ["forget", "--keep-last", "3", "--store", store])
        .success();
    assert_eq!(ids(&env, store, "project").len(), 3);
    let done = env.gitkit_in(&repo, ["forget", "--store", store]).success();
    assert_stderr_contains(&done, "git config gitkit.keep.*");
    assert_eq!(ids(&env, store, "project"), set(&[&made[2], &made[3]]));
}

#[test]
fn one_workspace_or_all_of_them() {
    let env = Env::new();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    let alpha = env.repo_with_commit("alpha");
    let beta = env.repo_with_commit("beta");
    for time in [NOON, NOON + HOUR, NOON + 2 * HOUR] {
        snapshot_at(&env, &alpha, store, time);
        snapshot_at(&env, &beta, store, time);
    }
    let outside = env.dir("elsewhere");
    let unnamed = env
        .gitkit(["forget", "--keep-last", "1", "--store", store])
        .current_dir(&outside)
        .failure();
    assert_stderr_contains(&unnamed, "--all");

    // The current repository's workspace only.
    env.gitkit_in(&alpha, ["forget", "--keep-last", "2", "--store", store])
        .success();
    assert_eq!(ids(&env, store, "alpha").len(), 2);
    assert_eq!(ids(&env, store, "beta").len(), 3);

    let json = env
        .gitkit([
            "forget",
            "--keep-last",
            "1",
            "--all",
            "--json",
            "--store",
            store,
        ])
        .current_dir(&outside)
        .success();
    let json: Vec<Value> = serde_json::from_str(&stdout(&json)).expect("array");
    let removed: Vec<(&str, u64)> = json
        .iter()
        .map(|w| {
            (
                w["workspace"].as_str().expect("name"),
                w["removed"].as_u64().expect("count"),
            )
        })
        .collect();
    assert_eq!(removed, [("alpha", 1), ("beta", 2)]);
    assert_eq!(ids(&env, store, "alpha").len(), 1);
    assert_eq!(ids(&env, store, "beta").len(), 1);
}

#[test]
fn nothing_to_forget_is_not_an_error() {
    let (env, repo) = Env::with_project();
    let store = env.dir("store");
    let store = store.to_str().expect("utf-8");
    for args in [vec!["--all"], vec![]] {
        let output = env
            .gitkit_in(&repo, ["forget", "--keep-last", "1", "--store", store])
            .args(args)
            .success();
        assert_stderr_contains(&output, "nothing to forget");
        assert_eq!(stdout(&output), "");
    }
}

#[test]
fn a_snapshot_that_cannot_be_read_is_never_forgotten() {
    let (env, repo) = Env::with_project();
    let store_dir = env.dir("store");
    let store = store_dir.to_str().expect("utf-8");
    snapshot_at(&env, &repo, store, NOON - HOUR);
    snapshot_at(&env, &repo, store, NOON);
    // An older snapshot object that this gitkit cannot read: damaged, or a newer format.
    let unreadable = store_dir.join("snapshots/project/20200101T000000.000Z-abcdef.json");
    std::fs::write(&unreadable, br#"{"version": 99}"#).expect("write");
    let output = env
        .gitkit_in(&repo, ["forget", "--keep-last", "1", "--store", store])
        .success();
    assert_stderr_contains(&output, "warning: skipped");
    assert_stderr_contains(&output, "cannot be read left as they are");
    assert!(unreadable.exists(), "{}", stderr(&output));
    assert_eq!(ids(&env, store, "project").len(), 1);
}

#[test]
fn forget_through_s3() {
    let env = Weed::shared_env();
    let repo = env.repo_with_commit("project");
    let store = format!("s3://{BUCKET}/forget");
    let made: Vec<String> = [NOON - 2 * HOUR, NOON - HOUR, NOON]
        .iter()
        .map(|&t| snapshot_at(&env, &repo, &store, t))
        .collect();
    env.gitkit_in(
        &repo,
        ["forget", "--keep-last", "1", "--dry-run", "--store", &store],
    )
    .success();
    assert_eq!(ids(&env, &store, "project").len(), 3);
    env.gitkit_in(&repo, ["forget", "--keep-last", "1", "--store", &store])
        .success();
    assert_eq!(ids(&env, &store, "project"), set(&[&made[2]]));
    assert_restores(&env, &store, &made[2], NOON);
}

/// The hook's log, all of it.
fn hook_log(repo: &Path) -> String {
    std::fs::read_to_string(repo.join(".git/gitkit/hook.log")).unwrap_or_default()
}

/// Commits and waits until the hook's worker has snapshotted that commit.
#[track_caller]
fn commit_and_wait(env: &Env, repo: &Path, message: &str) {
    commit(env, repo, message);
    let head = head(env, repo);
    let settled = wait_until(env, repo, |s| s["last_snapshot"]["commit"] == head.as_str());
    assert_eq!(settled["failing"], false, "{settled:#}");
}

#[test]
fn the_worker_applies_the_configured_policy_after_a_snapshot() {
    let (mut env, repo) = Env::with_project();
    env.use_folder_store();
    env.git(&repo, ["config", "gitkit.keep.last", "2"])
        .success();
    install(&env, &repo);
    for message in ["one", "two", "three"] {
        commit_and_wait(&env, &repo, message);
    }
    let store = env.root_path().join("store");
    let store = store.to_str().expect("utf-8");
    assert_eq!(ids(&env, store, "project").len(), 2, "{}", hook_log(&repo));
    assert!(
        hook_log(&repo).contains("forget (last 2): kept 2, removed 1"),
        "{}",
        hook_log(&repo)
    );

    // gitkit.keep.auto=false: the worker forgets nothing.
    env.git(&repo, ["config", "gitkit.keep.auto", "false"])
        .success();
    commit_and_wait(&env, &repo, "four");
    assert_eq!(ids(&env, store, "project").len(), 3);
}

#[test]
fn the_worker_applies_the_default_policy_and_its_failures_fail_nothing() {
    let (mut env, repo) = Env::with_project();
    env.use_folder_store();
    let store = env.root_path().join("store");
    let store = store.to_str().expect("utf-8");
    // Two snapshots from long ago: the newest of them is a year and a half before the hook's.
    let old = snapshot_at(&env, &repo, store, NOON - 2 * 365 * 24 * HOUR);
    let older_kept = snapshot_at(&env, &repo, store, NOON - 300 * 24 * HOUR);
    install(&env, &repo);
    let env = env.with("GITKIT_TEST_NOW", NOON.to_string());
    commit_and_wait(&env, &repo, "now");
    let left = ids(&env, store, "project");
    assert!(!left.contains(&old), "{}", hook_log(&repo));
    assert!(left.contains(&older_kept), "weekly within a year");
    assert_eq!(left.len(), 2);

    // A policy the worker cannot read: logged, the snapshot still succeeds, nothing removed.
    env.git(&repo, ["config", "gitkit.keep.daily", "lots"])
        .success();
    let env = env.with("GITKIT_TEST_NOW", (NOON + HOUR).to_string());
    commit_and_wait(&env, &repo, "later");
    assert!(
        hook_log(&repo).contains("forget failed (the snapshot is fine)"),
        "{}",
        hook_log(&repo)
    );
    assert_eq!(ids(&env, store, "project").len(), 3);
}
