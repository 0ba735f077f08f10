//! The command edge: turns parsed arguments into calls on the core, and results into output.

pub mod browse;
pub mod check;
pub mod doctor;
pub mod forget;
pub mod github;
pub mod hooks;
pub mod lifecycle;
pub mod prune;
pub mod setup;
pub mod snapshot;
pub mod workspace;

use std::path::PathBuf;

use crate::aws::Profile;
use crate::store::{AnyStore, Location, S3Options, Timeouts};

/// Makes every relative path on the command line relative to `dir` (`-C DIR`, as git does),
/// rather than changing the process's folder, which every thread shares.
pub fn anchor(command: &mut crate::cli::Command, dir: &std::path::Path) {
    use crate::cli::{Command, HookCommand, HooksCommand, LifecycleCommand};
    let path = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    };
    // A store named as a folder; URLs are left as they are.
    let store = |s: &mut Option<String>| {
        if let Some(text) = s
            && !text.contains("://")
            && std::path::Path::new(text).is_relative()
        {
            *text = dir.join(&*text).to_string_lossy().into_owned();
        }
    };
    match command {
        Command::Snapshot(args) => store(&mut args.store.store),
        Command::Snapshots(args) => store(&mut args.store.store),
        Command::Prune(args) => store(&mut args.store.store),
        Command::Forget(args) => store(&mut args.store.store),
        // Paths inside a snapshot are relative to the workspace's root, never to `dir`.
        Command::Ls(args) => store(&mut args.store.store),
        Command::Diff(args) => store(&mut args.store.store),
        Command::Check(args) => store(&mut args.store.store),
        Command::Restore(args) => {
            store(&mut args.store.store);
            path(&mut args.to);
        }
        Command::Hooks(HooksCommand::Install(all) | HooksCommand::Uninstall(all))
        | Command::Hook(HookCommand::Scheduled(all)) => all.all.iter_mut().for_each(path),
        Command::Schedule(args) => args.all.all.iter_mut().for_each(path),
        Command::Setup(args) => {
            store(&mut args.store);
            args.workspace_root.iter_mut().for_each(path);
        }
        Command::Lifecycle(LifecycleCommand::OnCreate { store: s, target }) => {
            store(s);
            target
                .home
                .iter_mut()
                .chain(&mut target.gitkit_home)
                .for_each(path);
        }
        Command::Lifecycle(LifecycleCommand::OnStart { target }) => {
            target
                .home
                .iter_mut()
                .chain(&mut target.gitkit_home)
                .for_each(path);
        }
        Command::Lifecycle(LifecycleCommand::Restore {
            into,
            store: s,
            log,
        }) => {
            path(into);
            store(s);
            log.iter_mut().for_each(path);
        }
        Command::Hooks(HooksCommand::Status { .. })
        | Command::Hook(HookCommand::PostCommit | HookCommand::Run)
        | Command::Lifecycle(LifecycleCommand::Cloudformation)
        | Command::GithubKey(_)
        | Command::Doctor(_)
        | Command::Completions { .. }
        | Command::Credential(_) => {}
    }
}

/// A duration a test sets so that it need not wait for the real one (the racy window's three
/// seconds, the hour between listings of an unchanged store's packs, the hook's settle time,
/// the credential chain's deadline); never set in normal use.
pub fn test_knob(name: &str, unit: fn(u64) -> std::time::Duration) -> Option<std::time::Duration> {
    test_count(name).map(unit)
}

/// A number a test sets in variable `name`, if it does.
pub fn test_count(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// The clock: now, or GITKIT_TEST_NOW (Unix seconds), which only tests set, so that their
/// snapshots have the times a retention test needs. Read here and nowhere else.
pub fn now() -> std::time::SystemTime {
    test_knob("GITKIT_TEST_NOW", std::time::Duration::from_secs)
        .map_or_else(std::time::SystemTime::now, |since| {
            std::time::UNIX_EPOCH + since
        })
}

/// The crontab program: `crontab`, or `GITKIT_CRONTAB` (tests give one with a spool of its own).
pub fn crontab_program() -> PathBuf {
    std::env::var_os("GITKIT_CRONTAB")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("crontab"), PathBuf::from)
}

/// A store as the SDK's environment says to reach it: path-style addressing when an endpoint
/// URL is set (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`), as S3-compatible servers need.
pub fn open_store(location: &Location, profile: Option<String>, timeouts: Timeouts) -> AnyStore {
    let endpoint_set = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    let options = S3Options {
        profile: Profile(profile),
        path_style: endpoint_set,
        timeouts,
    };
    AnyStore::open(location, &options)
}

/// A runtime for commands that do network I/O; parsing and local work happen before it starts.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime builds")
}
