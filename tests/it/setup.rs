//! `gitkit setup`, `doctor`, the lifecycle scripts and the deploy template, with real git,
//! the S3 server, a crontab of the test's own, shellcheck and cfn-lint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::support::crontab::PrivateCrontab;
use crate::support::github::{Account, FakeGitHub, GOOD_TOKEN};
use crate::support::s3::{BUCKET, Weed};
use crate::support::{ACCESS_KEY, Env, assert_stderr_contains, describe, stderr, stdout};

/// A GitHub helper the user already had: it must keep answering for github.com.
const USER_GITCONFIG: &str = "[user]\n\tname = Someone\n[credential \"https://github.com\"]\n\thelper = \"!f() { echo username=octo; echo password=gh-secret; }; f\"\n";

const CODECOMMIT_HOSTS: &[&str] = &[
    "git-codecommit.us-east-1.amazonaws.com",
    "git-codecommit-fips.us-gov-west-1.amazonaws.com",
    "git-codecommit.cn-north-1.amazonaws.com.cn",
    "vpce-0b7d2939e-ku8f3ry0.git-codecommit.eu-west-1.vpce.amazonaws.com",
    "vpce-0b7d2939e-ku8f3ry0-eu-west-1a.git-codecommit-fips.eu-west-1.vpce.amazonaws.com",
];

/// An environment as on a notebook instance: `~/SageMaker` holds the work, GITKIT_HOME is the
/// default, the crontab is the test's own.
fn notebook() -> (Env, PrivateCrontab) {
    let mut env = Env::new();
    env.remove("GITKIT_HOME");
    env.set_aws_keys();
    std::fs::create_dir_all(env.home().join("SageMaker")).expect("mkdir");
    let crontab = PrivateCrontab::install(&mut env);
    (env, crontab)
}

/// `gitkit setup --store STORE --every EVERY`.
fn setup_with_store(env: &Env, store: &Path, every: &str) -> crate::support::Cmd {
    env.gitkit(["setup", "--store"])
        .args([store])
        .args(["--every", every])
}

fn gitkit_home(env: &Env) -> PathBuf {
    env.home().join("SageMaker/.gitkit")
}

/// A repository with one commit at `~/SageMaker/NAME`.
fn workspace(env: &Env, name: &str) -> PathBuf {
    let dir = env.home().join("SageMaker").join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    env.git(&dir, ["init", "-q"]).success();
    std::fs::write(dir.join("README.md"), "hello\n").expect("write");
    env.git(&dir, ["add", "README.md"]).success();
    env.git(&dir, ["commit", "-q", "-m", "first"]).success();
    dir
}

fn fill(env: &Env, host: &str) -> BTreeMap<String, String> {
    let output = env
        .git(&env.home(), ["credential", "fill"])
        .stdin(format!("protocol=https\nhost={host}\npath=v1/repos/r\n\n"))
        .success();
    stdout(&output)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[track_caller]
fn assert_helper_answers(env: &Env) {
    for host in CODECOMMIT_HOSTS {
        let answer = fill(env, host);
        assert_eq!(
            answer.get("username").map(String::as_str),
            Some(ACCESS_KEY),
            "{host}: {answer:?}"
        );
        let password = answer.get("password").expect("a password");
        // A SigV4 password: a timestamp, then 64 hex digits.
        assert!(
            password.len() == 16 + 64 && password.as_bytes()[8] == b'T',
            "{host}: {password}"
        );
    }
}

/// Every file under `dir`, with its bytes and modification time.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    walkdir(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let meta = std::fs::metadata(&p).expect("stat");
            let data = std::fs::read(&p).expect("read");
            (p, (data, meta.modified().expect("mtime")))
        })
        .collect()
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn setup_signs_for_every_codecommit_shape_leaves_github_alone_and_undo_restores_gitconfig() {
    let (env, crontab) = notebook();
    let gitconfig = env.home().join(".gitconfig");
    let mut original = std::fs::read(&gitconfig).expect("read");
    original.extend_from_slice(USER_GITCONFIG.as_bytes());
    std::fs::write(&gitconfig, &original).expect("write");
    let repo = workspace(&env, "project");
    let store = env.dir("store");

    let first = setup_with_store(&env, &store, "1h").success();
    let said = stderr(&first);
    assert!(said.contains("changed:"), "{said}");
    assert!(said.contains("GitHub over SSH is not set up"), "{said}");
    assert_helper_answers(&env);
    let github = fill(&env, "github.com");
    assert_eq!(
        github.get("password").map(String::as_str),
        Some("gh-secret")
    );
    let bin = gitkit_home(&env).join("bin/gitkit");
    assert!(bin.is_file());
    let hook = std::fs::read_to_string(repo.join(".git/hooks/post-commit")).expect("hook");
    assert!(
        hook.contains(&format!("gitkit='{}'", bin.display())),
        "{hook}"
    );
    assert_eq!(crontab.ours().len(), 1, "{}", crontab.current());
    assert!(crontab.ours()[0].contains(&bin.display().to_string()));
    // One include line, the rest of the user's file as it was.
    let text = std::fs::read_to_string(&gitconfig).expect("read");
    assert!(
        text.starts_with(std::str::from_utf8(&original).expect("utf-8")),
        "{text}"
    );
    assert_eq!(text.matches("path = ").count(), 1, "{text}");
    // A new clone gets the hook through init.templateDir.
    let clone = env.home().join("SageMaker/fresh");
    env.git(&env.home(), ["init", "-q", clone.to_str().expect("utf-8")])
        .success();
    assert!(clone.join(".git/hooks/post-commit").exists());
    // Completion: a line in ~/.bashrc that bash really runs.
    let complete = env
        .command("bash")
        .args(["-c", ". ~/.bashrc; complete -p gitkit"])
        .success();
    assert!(
        stdout(&complete).contains("gitkit"),
        "{}",
        describe(&complete)
    );

    let before = tree(&env.home());
    let crontab_before = crontab.current();
    let second = env.gitkit(["setup"]).success();
    assert_stderr_contains(&second, "nothing changed");
    assert_eq!(tree(&env.home()), before, "a second setup changes no file");
    assert_eq!(crontab.current(), crontab_before);

    let undo = env.gitkit(["setup", "--undo"]).success();
    let said = stderr(&undo);
    assert_eq!(std::fs::read(&gitconfig).expect("read"), original, "{said}");
    assert!(!env.home().join(".bashrc").exists(), "{said}");
    assert!(crontab.ours().is_empty(), "{}", crontab.current());
    assert!(!repo.join(".git/hooks/post-commit").exists());
    assert!(!bin.exists());
    assert!(!env.home().join(".local/bin/gitkit").exists(), "{said}");
    assert!(said.contains("kept: snapshots in"), "{said}");
    let again = env.gitkit(["setup", "--undo"]).success();
    assert_stderr_contains(&again, "nothing to undo");
}

#[test]
fn setup_warns_about_helpers_that_would_misbehave_and_a_template_dir_of_the_users() {
    let (env, _crontab) = notebook();
    let gitconfig = env.home().join(".gitconfig");
    let mut text = std::fs::read_to_string(&gitconfig).expect("read");
    text.push_str(
        "[credential]\n\thelper = \"!aws codecommit credential-helper $@\"\n\tUseHttpPath = true\n\
         [init]\n\ttemplateDir = /opt/my-template\n",
    );
    std::fs::write(&gitconfig, &text).expect("write");
    let dry = env.gitkit(["setup", "--dry-run"]).success();
    assert_stderr_contains(&dry, "would change:");
    assert_eq!(
        std::fs::read_to_string(&gitconfig).expect("read"),
        text,
        "a dry run changes nothing"
    );
    assert!(!gitkit_home(&env).exists());

    // A repository whose hooks setup cannot sort out is named, and the rest goes on.
    let odd = workspace(&env, "odd");
    std::fs::create_dir_all(odd.join(".git/hooks")).expect("mkdir");
    std::fs::write(odd.join(".git/hooks/post-commit"), "#!/bin/sh\n").expect("write");
    std::fs::write(
        odd.join(".git/hooks/post-commit.gitkit-chained"),
        "#!/bin/sh\n",
    )
    .expect("write");
    let fine = workspace(&env, "fine");

    let output = env.gitkit(["setup"]).success();
    let said = stderr(&output);
    assert!(
        said.contains(&format!("no hook in {}", odd.display())),
        "{said}"
    );
    assert!(fine.join(".git/hooks/post-commit").exists());
    assert!(said.contains("aws codecommit credential-helper"), "{said}");
    assert!(
        said.contains("git config --global --unset-all credential.helper"),
        "{said}"
    );
    assert!(said.contains("init.templateDir is already set"), "{said}");
    // gitkit still answers first for CodeCommit.
    assert_helper_answers(&env);

    // A cache helper after gitkit's would keep CodeCommit passwords.
    let mut text = std::fs::read_to_string(&gitconfig).expect("read");
    text.push_str("[credential]\n\thelper = cache --timeout=3600\n");
    std::fs::write(&gitconfig, &text).expect("write");
    let output = env.gitkit(["setup"]).success();
    assert_stderr_contains(&output, "would keep CodeCommit passwords");
}

#[test]
fn setup_makes_and_registers_the_github_key_once_when_a_token_is_given() {
    let (mut env, _crontab) = notebook();
    let github = FakeGitHub::start(Account {
        host_keys: vec![
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGitkitTestHostKeyNotARealKeyxxxxxxxxxxxx".into(),
        ],
        ..Account::default()
    });
    env.set("GITHUB_TOKEN", GOOD_TOKEN);
    env.set("GITKIT_GITHUB_API", github.api_url());
    env.gitkit(["setup"]).success();
    assert!(gitkit_home(&env).join("ssh/id_ed25519").exists());
    let again = env.gitkit(["setup"]).success();
    assert_stderr_contains(&again, "nothing changed");
    let posts = github
        .account
        .lock()
        .expect("lock")
        .requests
        .iter()
        .filter(|(method, _)| method == "POST")
        .count();
    assert_eq!(posts, 1, "registered once");
}

#[test]
fn setup_refuses_bad_input_and_changes_nothing() {
    let (env, _crontab) = notebook();
    let gitconfig = std::fs::read(env.home().join(".gitconfig")).expect("read");
    for args in [
        &["setup", "--every", "45m"][..],
        &["setup", "--store", "gs://bucket"],
        &["setup", "--workspace-root", "/no/such/folder"],
    ] {
        let output = env.gitkit(args).failure();
        assert_stderr_contains(&output, "hint:");
    }
    assert!(!gitkit_home(&env).exists());
    assert_eq!(
        std::fs::read(env.home().join(".gitconfig")).expect("read"),
        gitconfig
    );
}

#[test]
fn gitkit_home_defaults_to_the_persistent_volume() {
    let (env, _crontab) = notebook();
    env.gitkit(["github-key", "--no-register"]).success();
    assert!(gitkit_home(&env).join("ssh/id_ed25519").exists());

    // An old ~/.gitkit is kept, and doctor says to move it.
    std::fs::create_dir(env.home().join(".gitkit")).expect("mkdir");
    let output = env.gitkit(["doctor", "--json"]).output();
    let checks: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    let home = checks
        .iter()
        .find(|c| c["check"] == "gitkit home")
        .expect("a gitkit home check");
    assert_eq!(home["status"], "warn", "{home}");
    assert!(
        home["hint"]
            .as_str()
            .is_some_and(|h| h.contains("~/SageMaker/.gitkit"))
    );

    // Without ~/SageMaker: the XDG data folder.
    let mut plain = Env::new();
    plain.remove("GITKIT_HOME");
    plain.gitkit(["github-key", "--no-register"]).success();
    assert!(
        plain
            .home()
            .join(".local/share/gitkit/ssh/id_ed25519")
            .exists()
    );
}

#[track_caller]
fn shellcheck(env: &Env, script: &Path) {
    let output = env.command("shellcheck").args([script]).output();
    assert!(
        output.status.success(),
        "shellcheck (apt-get install shellcheck) on {}:\n{}",
        script.display(),
        describe(&output)
    );
}

#[track_caller]
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn snapshot_count(env: &Env, store: &Path) -> usize {
    let output = env
        .gitkit([
            "snapshots",
            "--store",
            store.to_str().expect("utf-8"),
            "--json",
        ])
        .success();
    serde_json::from_str::<Vec<Value>>(&stdout(&output))
        .expect("JSON")
        .len()
}

#[test]
fn a_simulated_restart_is_undone_by_the_on_start_script() {
    let (env, crontab) = notebook();
    let repo = workspace(&env, "project");
    let store = env.dir("store");
    env.gitkit(["github-key", "--no-register"]).success();
    let key = gitkit_home(&env).join("ssh/id_ed25519.pub");
    let public = std::fs::read(&key).expect("key");
    setup_with_store(&env, &store, "15m").success();
    let script = env.root_path().join("on-start.sh");
    let printed = env.gitkit(["lifecycle", "on-start"]).success();
    std::fs::write(&script, &printed.stdout).expect("write");
    assert!(printed.stdout.len() <= 16_384);
    shellcheck(&env, &script);

    // The restart: all of the home folder but ~/SageMaker goes, and so does the crontab.
    for entry in std::fs::read_dir(env.home()).expect("ls") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n != "SageMaker") {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("rm");
            } else {
                std::fs::remove_file(&path).expect("rm");
            }
        }
    }
    crontab.remove();
    let started = Instant::now();
    let run = env.command("bash").args([&script]).success();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "on-start took {took:?}: {}",
        describe(&run)
    );

    // The helper, and gitkit on PATH.
    assert_helper_answers(&env);
    assert_eq!(
        std::fs::read_link(env.home().join(".local/bin/gitkit")).expect("link"),
        gitkit_home(&env).join("bin/gitkit")
    );
    // The same key, and ssh uses it for GitHub.
    assert_eq!(std::fs::read(&key).expect("key"), public);
    let ssh = env
        .command("ssh")
        .args(["-F"])
        .args([env.home().join(".ssh/config")])
        .args(["-G", "github.com"])
        .success();
    let resolved = stdout(&ssh);
    assert!(
        resolved.contains(&format!(
            "identityfile {}",
            gitkit_home(&env).join("ssh/id_ed25519").display()
        )),
        "{resolved}"
    );
    // A commit is snapshotted by the hook.
    std::fs::write(repo.join("work.txt"), "after the restart\n").expect("write");
    env.git(&repo, ["add", "work.txt"]).success();
    env.git(&repo, ["commit", "-q", "-m", "after"]).success();
    let head = stdout(&env.git(&repo, ["rev-parse", "HEAD"]).success())
        .trim()
        .to_string();
    wait_for("the hook's snapshot", || {
        let status = crate::hooks::status(&env, &repo);
        status["running"] == false
            && status["pending"] == false
            && status["last_snapshot"]["commit"] == head.as_str()
    });
    // The cron line is back, and what it runs snapshots.
    let lines = crontab.ours();
    assert_eq!(lines.len(), 1, "{}", crontab.current());
    let before = snapshot_count(&env, &store);
    std::fs::write(repo.join("scratch.txt"), "not committed\n").expect("write");
    env.command("sh")
        .args(["-c", &PrivateCrontab::command_of(&lines[0])])
        .success();
    assert_eq!(snapshot_count(&env, &store), before + 1);
    // And doctor agrees.
    env.gitkit(["doctor"]).success();
}

fn s3_env(prefix: &str) -> (Env, PrivateCrontab, String) {
    let (mut env, crontab) = notebook();
    Weed::shared().configure(&mut env);
    (env, crontab, format!("s3://{BUCKET}/{prefix}"))
}

fn wipe_home(env: &Env) {
    std::fs::remove_dir_all(env.home()).expect("rm home");
    std::fs::create_dir_all(env.home().join("SageMaker")).expect("mkdir");
}

#[test]
fn on_create_fetches_checks_sets_up_and_restores_and_refuses_a_tampered_binary() {
    let unique = format!(
        "on-create-{}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("time")
            .as_nanos()
    );
    let (env, _crontab, store) = s3_env(&unique);
    let repo = workspace(&env, "project");
    env.gitkit(["setup", "--store", &store]).success();
    env.gitkit_in(&repo, ["snapshot"]).success();
    let printed = env.gitkit(["lifecycle", "on-create"]).success();
    let script = env.root_path().join("on-create.sh");
    std::fs::write(&script, &printed.stdout).expect("write");
    shellcheck(&env, &script);
    let text = stdout(&printed);
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("binary_url="))
        .expect("the binary's URL")
        .trim_matches('\'')
        .to_string();

    wipe_home(&env);
    env.command("bash").args([&script]).success();
    let home = gitkit_home(&env);
    assert!(home.join("bin/gitkit").is_file());
    assert_helper_answers(&env);
    let log = home.join("restore.log");
    wait_for("the restore", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("restore finished"))
    });
    let restored = env.home().join("SageMaker/project");
    assert_eq!(
        std::fs::read_to_string(restored.join("README.md")).expect("restored"),
        "hello\n",
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    env.git(&restored, ["log", "--oneline"]).success();

    // Someone replaces the binary in the bucket: the script refuses it.
    let evil = env.root_path().join("evil");
    std::fs::write(&evil, "#!/bin/sh\ntouch /tmp/gitkit-tampered-binary-ran\n").expect("write");
    env.command("aws")
        .args(["s3", "cp", "--only-show-errors"])
        .args([&evil])
        .args([url.as_str()])
        .args(["--endpoint-url", &Weed::shared().endpoint()])
        .success();
    wipe_home(&env);
    let refused = env.command("bash").args([&script]).failure();
    assert!(
        stderr(&refused).contains("refusing"),
        "{}",
        describe(&refused)
    );
    assert!(!home.join("bin/gitkit").exists());
}

#[test]
fn doctor_fails_and_names_the_fix_for_each_broken_link() {
    let (mut env, _crontab) = notebook();
    let repo = workspace(&env, "project");
    let store = env.dir("store");
    let never = env.gitkit(["doctor", "--json"]).output();
    let checks: Vec<Value> = serde_json::from_slice(&never.stdout).expect("JSON");
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "setup" && c["status"] == "warn" && c["hint"] == "gitkit setup"),
        "{checks:#?}"
    );

    setup_with_store(&env, &store, "1h").success();
    let healthy = env.gitkit(["doctor", "--json"]).success();
    let checks: Vec<Value> = serde_json::from_slice(&healthy.stdout).expect("JSON");
    for check in &checks {
        assert!(check["status"] != "fail", "{check}");
        for field in ["check", "status", "message", "hint"] {
            assert!(check.get(field).is_some(), "{check}");
        }
    }

    #[track_caller]
    fn broken(env: &Env, check: &str) -> String {
        let output = env.gitkit(["doctor", "--json"]).failure();
        let checks: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
        let found = checks
            .iter()
            .find(|c| {
                c["status"] == "fail" && c["check"].as_str().is_some_and(|n| n.starts_with(check))
            })
            .unwrap_or_else(|| panic!("no failing {check}: {checks:#?}"));
        found["hint"].as_str().expect("a hint").to_string()
    }

    // Credentials gone.
    env.remove("AWS_ACCESS_KEY_ID");
    env.remove("AWS_SECRET_ACCESS_KEY");
    assert!(broken(&env, "aws credentials").contains("AWS_"));
    env.set_aws_keys();

    // The store down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    env.set("GITKIT_STORE", "s3://bucket/prefix");
    env.set("AWS_ENDPOINT_URL_S3", format!("http://127.0.0.1:{port}"));
    assert!(broken(&env, "store").contains("--store"));
    env.remove("GITKIT_STORE");
    env.remove("AWS_ENDPOINT_URL_S3");

    // The include removed.
    let include = gitkit_home(&env).join("gitconfig");
    env.git(
        &env.home(),
        ["config", "--global", "--unset", "include.path"],
    )
    .success();
    assert_eq!(broken(&env, "git config"), "gitkit setup");
    env.gitkit(["setup"]).success();

    // A helper reset after gitkit's, in the user's own file.
    let key = "credential.https://git-codecommit.us-east-1.amazonaws.com.helper";
    env.git(&env.home(), ["config", "--global", "--add", key, ""])
        .success();
    assert_eq!(broken(&env, "credential helper"), "gitkit setup");
    env.git(&env.home(), ["config", "--global", "--unset-all", key])
        .success();
    let checks: Vec<Value> =
        serde_json::from_slice(&env.gitkit(["doctor", "--json"]).success().stdout).expect("JSON");
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "git credential fill" && c["status"] == "ok"),
        "{checks:#?}"
    );

    // A hook deleted.
    std::fs::remove_file(repo.join(".git/hooks/post-commit")).expect("rm");
    assert!(broken(&env, "hook").contains("gitkit setup"));
    env.gitkit(["setup"]).success();

    // The binary moved.
    let bin = gitkit_home(&env).join("bin/gitkit");
    std::fs::rename(&bin, env.root_path().join("moved")).expect("mv");
    assert!(broken(&env, "binary").contains("gitkit setup"));
    env.gitkit(["setup"]).success();
    assert!(include.exists());
    env.gitkit(["doctor"]).success();
}

#[test]
fn the_deploy_template_is_generated_and_passes_cfn_lint() {
    let env = Env::new();
    let output = env.gitkit(["lifecycle", "cloudformation"]).success();
    let checked_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/notebook.yaml");
    let file = std::fs::read_to_string(&checked_in).unwrap_or_default();
    assert!(
        file == stdout(&output),
        "deploy/notebook.yaml differs from `gitkit lifecycle cloudformation`: regenerate it with \
         `cargo run -q -- lifecycle cloudformation > deploy/notebook.yaml`"
    );
    let lint = env.command("cfn-lint").args([&checked_in]).output();
    assert!(
        lint.status.success(),
        "cfn-lint (pip install cfn-lint):\n{}",
        describe(&lint)
    );
}

#[test]
fn completions_for_each_shell() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish"] {
        let output = env.gitkit(["completions", shell]).success();
        assert!(stdout(&output).contains("setup"), "{shell}");
    }
    let bash = env.root_path().join("gitkit.bash");
    std::fs::write(&bash, env.gitkit(["completions", "bash"]).success().stdout).expect("write");
    env.command("bash")
        .args(["-n".as_ref(), bash.as_os_str()])
        .success();
}

/// The scripts run as root and set up as the user: through `su` where there is no sudo.
#[test]
fn on_start_run_as_root_sets_up_as_the_user() {
    let uid = |user: &str| {
        let output = std::process::Command::new("id")
            .args(["-u", user])
            .output()
            .expect("id");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse::<u32>()
            .ok()
    };
    let me = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("id");
    if me.stdout != b"0\n" {
        eprintln!(
            "skipped: runs as root only (as SageMaker runs lifecycle scripts, and as CI does)"
        );
        return;
    }
    let nobody = uid("nobody").expect("the `nobody` user");
    let env = Env::new();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for dir in [env.root_path().to_path_buf(), env.home()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let home = env.home();
    let gitkit_home = home.join("SageMaker/.gitkit");
    std::fs::create_dir_all(gitkit_home.join("bin")).expect("mkdir");
    std::fs::copy(crate::support::gitkit_bin(), gitkit_home.join("bin/gitkit")).expect("copy");
    env.command("chown")
        .args(["-R".as_ref(), "nobody".as_ref(), home.as_os_str()])
        .success();
    let printed = env
        .gitkit([
            "lifecycle".as_ref(),
            "on-start".as_ref(),
            "--user".as_ref(),
            "nobody".as_ref(),
            "--home".as_ref(),
            home.as_os_str(),
            "--gitkit-home".as_ref(),
            gitkit_home.as_os_str(),
        ])
        .success();
    let script = env.root_path().join("on-start.sh");
    std::fs::write(&script, &printed.stdout).expect("write");
    let run = env.command("bash").args([&script]).success();
    let state = gitkit_home.join("setup.json");
    assert!(state.exists(), "{}", describe(&run));
    for written in [
        state,
        home.join(".gitconfig"),
        gitkit_home.join("gitconfig"),
    ] {
        let owner = std::fs::metadata(&written).expect("stat").uid();
        assert_eq!(owner, nobody, "{} belongs to the user", written.display());
    }
    let text = std::fs::read_to_string(home.join(".gitconfig")).expect("read");
    assert!(
        text.contains(&gitkit_home.join("gitconfig").display().to_string()),
        "{text}"
    );
}

/// SageMaker Studio has no crontab: setup says so, and the commit hook still goes in.
#[test]
fn without_crontab_setup_warns_and_the_hook_still_goes_in() {
    let (mut env, _crontab) = notebook();
    let repo = workspace(&env, "project");
    // A PATH with git and a shell, and no crontab.
    let bin = env.dir("no-cron-bin");
    for tool in ["git", "sh", "bash", "env", "id"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .expect("sh");
        let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
        std::os::unix::fs::symlink(&path, bin.join(tool)).expect("link");
    }
    env.set("PATH", bin.to_str().expect("utf-8"));
    env.remove("GITKIT_CRONTAB");
    let output = env.gitkit(["setup", "--every", "1h"]).success();
    let said = stderr(&output);
    assert!(said.contains("no crontab on this machine"), "{said}");
    assert!(said.contains("the commit hook still"), "{said}");
    assert!(repo.join(".git/hooks/post-commit").exists());
}
