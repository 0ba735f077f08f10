//! `gitkit hooks`, the post-commit hook in real commits, and `gitkit schedule` with the real
//! crontab.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::s3::{BUCKET, Weed};
use crate::support::{Env, stderr, stdout};

const ORIGINAL_HOOK: &str =
    "#!/bin/sh\necho \"original ran for $(git rev-parse HEAD)\" >> original-hook.log\n";

fn status(env: &Env, repo: &Path) -> Value {
    let output = env
        .gitkit([
            "-C",
            repo.to_str().expect("utf-8"),
            "hooks",
            "status",
            "--json",
        ])
        .success();
    serde_json::from_str(&stdout(&output)).expect("JSON status")
}

/// Waits until no snapshot runs or is wanted and `done` holds: the worker is detached, so the
/// test watches what it leaves behind.
#[track_caller]
fn wait_until(env: &Env, repo: &Path, done: impl Fn(&Value) -> bool) -> Value {
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

fn head(env: &Env, repo: &Path) -> String {
    stdout(&env.git(repo, ["rev-parse", "HEAD"]).success())
        .trim()
        .to_string()
}

fn commit(env: &Env, repo: &Path, message: &str) -> std::process::Output {
    std::fs::write(repo.join("work.txt"), message).expect("write");
    env.git(repo, ["add", "work.txt"]).success();
    env.git(repo, ["commit", "-q", "-m", message]).success()
}

fn install(env: &Env, repo: &Path) -> String {
    stderr(
        &env.gitkit(["-C", repo.to_str().expect("utf-8"), "hooks", "install"])
            .success(),
    )
}

#[test]
fn existing_hook_still_runs_and_uninstall_puts_it_back_exactly() {
    let mut env = Env::new();
    let repo = env.repo_with_commit("project");
    env.set("GITKIT_STORE", env.dir("store").to_str().expect("utf-8"));
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

    env.gitkit(["-C", repo.to_str().expect("utf-8"), "hooks", "uninstall"])
        .success();
    assert_eq!(std::fs::read_to_string(&hook).expect("read"), ORIGINAL_HOOK);
    let mode = std::fs::metadata(&hook).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o750, "the original's mode is back too");
    assert!(!repo.join(".git/hooks/post-commit.gitkit-chained").exists());
    assert_eq!(status(&env, &repo)["installed"], false);
}

#[test]
fn uninstall_without_an_original_removes_the_hook() {
    let mut env = Env::new();
    let repo = env.repo_with_commit("project");
    env.set("GITKIT_STORE", env.dir("store").to_str().expect("utf-8"));
    install(&env, &repo);
    assert!(repo.join(".git/hooks/post-commit").exists());
    env.gitkit(["-C", repo.to_str().expect("utf-8"), "hooks", "uninstall"])
        .success();
    assert!(!repo.join(".git/hooks/post-commit").exists());
}

/// A server that accepts connections and never answers: S3 "unreachable" at its worst.
struct BlackHole {
    port: u16,
    /// Connections held open, unanswered; `None` once closed, when every newcomer is hung up on.
    held: Arc<Mutex<Option<Vec<std::net::TcpStream>>>>,
}

impl BlackHole {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let held = Arc::new(Mutex::new(Some(Vec::new())));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                match keep.lock().expect("lock").as_mut() {
                    Some(held) => held.push(stream),
                    None => drop(stream.shutdown(std::net::Shutdown::Both)),
                }
            }
        });
        Self { port, held }
    }

    #[track_caller]
    fn wait_for_a_caller(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .held
            .lock()
            .expect("lock")
            .as_ref()
            .is_some_and(Vec::is_empty)
        {
            assert!(Instant::now() < deadline, "nobody called the server");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Hangs up on everyone who connected, and on everyone who will.
    fn close(&self) {
        for stream in self.held.lock().expect("lock").take().unwrap_or_default() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn commit_returns_while_s3_hangs_and_the_next_commit_lands_once_it_is_back() {
    let mut env = Env::new();
    let weed = Weed::shared();
    weed.configure(&mut env);
    let hole = BlackHole::start();
    env.set(
        "AWS_ENDPOINT_URL_S3",
        format!("http://127.0.0.1:{}", hole.port),
    );
    env.set("AWS_MAX_ATTEMPTS", "1");
    env.set("GITKIT_STORE", format!("s3://{BUCKET}/hooks-unreachable"));
    let repo = env.repo_with_commit("project");
    install(&env, &repo);

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

    env.set("AWS_ENDPOINT_URL_S3", weed.endpoint());
    commit(&env, &repo, "S3 is back");
    let head = head(&env, &repo);
    let settled = wait_until(&env, &repo, |s| s["failing"] == false);
    assert_eq!(
        settled["last_snapshot"]["commit"],
        head.as_str(),
        "{settled:#}"
    );
    let listed = env
        .gitkit(["-C", repo.to_str().expect("utf-8"), "snapshots", "--json"])
        .success();
    let listed: Vec<Value> = serde_json::from_str(&stdout(&listed)).expect("array");
    assert_eq!(listed[0]["commit"], head.as_str());
}

#[test]
fn ten_quick_commits_all_succeed_and_snapshots_never_overlap() {
    let mut env = Env::new();
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
    let mut runs = 0;
    for line in log.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let pid = words[2];
        match words[3] {
            "start" => {
                assert_eq!(running, None, "two snapshots at once:\n{log}");
                running = Some(pid);
                runs += 1;
            }
            _ => {
                assert_eq!(running, Some(pid), "an end without its start:\n{log}");
                running = None;
            }
        }
    }
    assert!((1..=10).contains(&runs), "{runs} runs:\n{log}");
}

#[test]
fn core_hooks_path_is_honoured_and_explained() {
    let mut env = Env::new();
    let repo = env.repo_with_commit("project");
    env.set("GITKIT_STORE", env.dir("store").to_str().expect("utf-8"));
    let hooks_dir = repo.join(".githooks");
    std::fs::create_dir_all(&hooks_dir).expect("mkdir");
    std::fs::write(hooks_dir.join("post-commit"), ORIGINAL_HOOK).expect("write");
    std::fs::set_permissions(
        hooks_dir.join("post-commit"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
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

    env.gitkit(["-C", repo.to_str().expect("utf-8"), "hooks", "uninstall"])
        .success();
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

/// The crontab is the machine's: tests that change it take turns and put it back.
static CRONTAB: Mutex<()> = Mutex::new(());

struct SavedCrontab(Option<String>);

impl SavedCrontab {
    fn save() -> Self {
        let output = std::process::Command::new("crontab")
            .arg("-l")
            .output()
            .expect("crontab is needed for this test (apt-get install cron)");
        Self(
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).into_owned()),
        )
    }

    fn current() -> String {
        let output = std::process::Command::new("crontab")
            .arg("-l")
            .output()
            .expect("crontab");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn set(text: &str) {
        let mut child = std::process::Command::new("crontab")
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("crontab");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
            .expect("write");
        assert!(child.wait().expect("crontab").success());
    }
}

impl Drop for SavedCrontab {
    fn drop(&mut self) {
        match &self.0 {
            Some(text) => Self::set(text),
            None => {
                let _ = std::process::Command::new("crontab").arg("-r").status();
            }
        }
    }
}

#[test]
fn schedule_writes_one_crontab_line_idempotently_and_removes_it() {
    let _turn = CRONTAB.lock().unwrap_or_else(|e| e.into_inner());
    let _saved = SavedCrontab::save();
    SavedCrontab::set("# the user's own line\n17 3 * * * /usr/bin/true\n");
    let mut env = Env::new();
    env.set("GITKIT_STORE", env.dir("store").to_str().expect("utf-8"));
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
    let lines = ours(&SavedCrontab::current());
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
    let crontab = SavedCrontab::current();
    let lines = ours(&crontab);
    assert_eq!(lines.len(), 1, "replaced, not added: {lines:?}");
    assert!(lines[0].starts_with("*/30 * * * * "), "{lines:?}");
    assert!(
        crontab.contains("17 3 * * * /usr/bin/true"),
        "the user's line stays: {crontab}"
    );

    let refused = env
        .gitkit(["-C", repo_arg, "schedule", "--every", "45m"])
        .failure();
    assert!(stderr(&refused).contains("hint: "), "{}", stderr(&refused));

    env.gitkit(["-C", repo_arg, "schedule", "--off"]).success();
    let crontab = SavedCrontab::current();
    assert!(ours(&crontab).is_empty(), "{crontab}");
    assert!(crontab.contains("17 3 * * * /usr/bin/true"), "{crontab}");
}

#[test]
fn scheduled_run_snapshots_only_when_something_changed() {
    let mut env = Env::new();
    let store = env.dir("store");
    env.set("GITKIT_STORE", store.to_str().expect("utf-8"));
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
