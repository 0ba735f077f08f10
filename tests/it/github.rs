//! `gitkit github-key` against a local server that behaves as GitHub's API documents, and a
//! real `sshd` for clone and push over SSH through the configuration gitkit writes.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::github::{Account, FakeGitHub, GOOD_TOKEN, READ_ONLY_TOKEN};
use crate::support::{Env, assert_stderr_contains, stderr, stdout};

fn other_keys(count: u64) -> Vec<(u64, String, String)> {
    (0..count)
        .map(|n| {
            (
                n + 1,
                format!("laptop {n}"),
                format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKey{n:06}"),
            )
        })
        .collect()
}

fn key_path(env: &Env) -> PathBuf {
    env.home().join(".gitkit/ssh/id_ed25519")
}

fn github_key(env: &Env, api: &str) -> crate::support::Cmd {
    env.gitkit(["github-key", "--api-url", api])
}

const TEST_HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGitkitTestHostKeyNotARealKeyxxxxxxxxxxxx";

#[test]
fn registers_once_after_reading_every_page_of_existing_keys() {
    let mut env = Env::new();
    env.set("GITHUB_TOKEN", GOOD_TOKEN);
    let github = FakeGitHub::start(Account {
        keys: other_keys(250),
        host_keys: vec![TEST_HOST_KEY.into()],
        ..Account::default()
    });

    let first = github_key(&env, &github.api_url()).success();
    let printed = stdout(&first);
    let mut lines = printed.lines();
    let public = lines.next().expect("the public key");
    assert!(public.starts_with("ssh-ed25519 "), "{printed}");
    assert!(
        lines.next().is_some_and(|l| l.starts_with("SHA256:")),
        "{printed}"
    );
    assert_stderr_contains(&first, "registered");
    assert_eq!(github.posts(), 1);
    let gets = github
        .account
        .lock()
        .expect("lock")
        .requests
        .iter()
        .filter(|(m, p)| m == "GET" && p.contains("/user/keys"))
        .count();
    assert_eq!(gets, 3, "250 keys are three pages of 100");

    let key = key_path(&env);
    let private = std::fs::read(&key).expect("read key");
    assert_eq!(
        std::fs::metadata(&key).expect("stat").permissions().mode() & 0o777,
        0o600
    );

    let again = github_key(&env, &github.api_url()).success();
    assert_stderr_contains(&again, "already registered");
    assert_eq!(github.posts(), 1, "no second registration");
    assert_eq!(
        std::fs::read(&key).expect("read"),
        private,
        "the key is never rewritten"
    );
    assert_eq!(stdout(&again), printed);

    // OpenSSH agrees with what gitkit wrote and printed.
    let derived = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(
        derived.status.success(),
        "{}",
        String::from_utf8_lossy(&derived.stderr)
    );
    let derived = String::from_utf8_lossy(&derived.stdout);
    let material = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(material(&derived), material(public));

    let user_config = std::fs::read_to_string(env.home().join(".ssh/config")).expect("ssh config");
    assert_eq!(user_config.matches("Include").count(), 1, "{user_config}");
    let known_hosts =
        std::fs::read_to_string(env.home().join(".gitkit/ssh/known_hosts")).expect("known_hosts");
    assert_eq!(
        known_hosts,
        format!("127.0.0.1 {TEST_HOST_KEY}\n"),
        "the server's /meta keys are pinned"
    );
}

#[test]
fn github_com_pins_the_published_host_keys_without_network() {
    let env = Env::new();
    let output = env.gitkit(["github-key", "--no-register"]).success();
    assert!(stdout(&output).starts_with("ssh-ed25519 "));
    let known_hosts =
        std::fs::read_to_string(env.home().join(".gitkit/ssh/known_hosts")).expect("known_hosts");
    assert_eq!(known_hosts.lines().count(), 3);
    assert!(
        known_hosts
            .lines()
            .all(|l| l.starts_with("github.com,ssh.github.com ")),
        "{known_hosts}"
    );
    let config = std::fs::read_to_string(env.home().join(".gitkit/ssh/config")).expect("config");
    assert!(
        config.contains("Host ssh.github.com\n  Port 443"),
        "{config}"
    );
    assert!(config.contains("IdentitiesOnly yes"));
}

#[test]
fn bad_token_registers_nothing_and_says_why() {
    let mut env = Env::new();
    env.set("GITHUB_TOKEN", "ghp_expired_or_made_up_token");
    let github = FakeGitHub::start(Account {
        host_keys: vec![TEST_HOST_KEY.into()],
        ..Account::default()
    });
    let output = github_key(&env, &github.api_url()).failure();
    let message = stderr(&output);
    assert!(
        message.contains("401") && message.contains("invalid or expired"),
        "{message}"
    );
    assert!(message.contains("hint: "), "{message}");
    assert!(
        !message.contains("ghp_expired_or_made_up_token"),
        "the token never appears: {message}"
    );
    assert_eq!(github.posts(), 0);
}

#[test]
fn token_without_the_scope_is_named() {
    let env = Env::new();
    let github = FakeGitHub::start(Account {
        host_keys: vec![TEST_HOST_KEY.into()],
        ..Account::default()
    });
    let output = github_key(&env, &github.api_url())
        .args(["--token-stdin"])
        .stdin(READ_ONLY_TOKEN)
        .failure();
    let message = stderr(&output);
    assert!(message.contains("write:public_key"), "{message}");
    assert!(!message.contains(READ_ONLY_TOKEN), "{message}");
}

#[test]
fn key_used_by_another_account_gets_a_clear_422() {
    let mut env = Env::new();
    env.set("GITHUB_TOKEN", GOOD_TOKEN);
    env.gitkit(["github-key", "--no-register"]).success();
    let public = std::fs::read_to_string(key_path(&env).with_extension("pub")).expect("pub");
    let material = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let github = FakeGitHub::start(Account {
        elsewhere: vec![material],
        host_keys: vec![TEST_HOST_KEY.into()],
        ..Account::default()
    });
    let output = github_key(&env, &github.api_url()).failure();
    let message = stderr(&output);
    assert!(
        message.contains("another account") && message.contains("deploy key"),
        "{message}"
    );
}

/// A real sshd on 127.0.0.1, with its own host key and one authorized key.
struct Sshd {
    child: Child,
    port: u16,
    host_key: String,
}

impl Sshd {
    fn start(dir: &Path, authorized: &str) -> Self {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "sshd is needed for this test (apt-get install openssh-server)"
        );
        std::fs::create_dir_all("/run/sshd").expect("sshd's privilege separation folder");
        let host_key = dir.join("host_key");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .status()
            .expect("ssh-keygen");
        assert!(made.success());
        std::fs::write(dir.join("authorized_keys"), authorized).expect("write");
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\n",
                host_key.display(),
                dir.join("authorized_keys").display(),
                dir.join("sshd.pid").display(),
            ),
        )
        .expect("write");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).expect("log"))
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let host_key = std::fs::read_to_string(host_key.with_extension("pub")).expect("host key");
        let host_key = host_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            child,
            port,
            host_key,
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn clone_and_push_over_ssh_through_the_configuration_gitkit_wrote() {
    let mut env = Env::new();
    env.set("GITHUB_TOKEN", GOOD_TOKEN);
    // The key first, so sshd can authorize it.
    env.gitkit(["github-key", "--no-register"]).success();
    let public = std::fs::read_to_string(key_path(&env).with_extension("pub")).expect("pub");
    let sshd = Sshd::start(&env.dir("sshd"), &public);
    let github = FakeGitHub::start(Account {
        host_keys: vec![sshd.host_key.clone()],
        ..Account::default()
    });
    github_key(&env, &github.api_url()).success();
    assert_eq!(github.posts(), 1);

    // Alias the server's host to the loopback port, after gitkit's Include, as a test rig must.
    let user = stdout(&Command::new("id").arg("-un").output().expect("id"))
        .trim()
        .to_string();
    let ssh_config = env.home().join(".ssh/config");
    let mut text = std::fs::read_to_string(&ssh_config).expect("config");
    text.push_str(&format!(
        "\nHost 127.0.0.1\n  Port {}\n  User {user}\n",
        sshd.port
    ));
    std::fs::write(&ssh_config, text).expect("write");
    // ssh reads the account's ~/.ssh/config, not $HOME's: point it at the test's.
    env.set(
        "GIT_SSH_COMMAND",
        format!("ssh -F {} -o BatchMode=yes", ssh_config.display()),
    );

    let served = env.served_repository("remote.git");
    let url = format!("ssh://127.0.0.1{}", served.join("remote.git").display());
    let work = env.dir("work");
    env.git(&work, ["clone", "-q", &url, "clone"]).success();
    let clone = work.join("clone");
    std::fs::write(clone.join("over-ssh.txt"), "pushed over ssh\n").expect("write");
    env.git(&clone, ["add", "over-ssh.txt"]).success();
    env.git(&clone, ["commit", "-q", "-m", "over ssh"])
        .success();
    env.git(&clone, ["push", "-q", "origin", "main"]).success();
    let pushed = env
        .git(&served.join("remote.git"), ["show", "main:over-ssh.txt"])
        .success();
    assert_eq!(stdout(&pushed), "pushed over ssh\n");

    // A server with another host key is refused: the pin holds.
    let impostor = Sshd::start(&env.dir("impostor"), &public);
    let text = std::fs::read_to_string(&ssh_config)
        .expect("config")
        .replace(
            &format!("Port {}", sshd.port),
            &format!("Port {}", impostor.port),
        );
    std::fs::write(&ssh_config, text).expect("write");
    let refused = env.git(&work, ["clone", "-q", &url, "second"]).failure();
    assert!(
        stderr(&refused).contains("HOST IDENTIFICATION HAS CHANGED")
            || stderr(&refused).contains("Host key verification failed"),
        "{}",
        stderr(&refused)
    );
}

/// Guards the token: plain HTTP would send it in clear text, so only loopback may use it (the
/// local test server does).
#[test]
fn plain_http_api_urls_are_refused_except_to_loopback() {
    let mut env = Env::new();
    env.set("GITHUB_TOKEN", GOOD_TOKEN);
    for url in [
        "http://github.example/api/v3",
        "http://127.0.0.1.example/api/v3",
        "ftp://github.example/api/v3",
    ] {
        let output = github_key(&env, url).failure();
        let said = stderr(&output);
        assert!(said.contains("refusing"), "{url}: {said}");
        assert!(said.contains("hint: "), "{url}: {said}");
        assert!(!said.contains(GOOD_TOKEN), "{said}");
    }
    // Loopback over plain HTTP stays possible.
    let github = FakeGitHub::start(Account {
        host_keys: vec![TEST_HOST_KEY.into()],
        ..Account::default()
    });
    let local = github.api_url().replace("127.0.0.1", "localhost");
    github_key(&env, &local).success();
}

/// Guards dotfile set-ups: a `~/.ssh/config` that is a link to a managed file stays a link, and
/// the file it points at gets the Include.
#[test]
fn a_symlinked_ssh_config_is_edited_through_the_link() {
    let env = Env::new();
    let dotfiles = env.home().join("dotfiles");
    std::fs::create_dir_all(&dotfiles).expect("mkdir");
    std::fs::write(dotfiles.join("ssh_config"), "Host mine\n  User me\n").expect("write");
    let ssh = env.home().join(".ssh");
    std::fs::create_dir_all(&ssh).expect("mkdir");
    std::os::unix::fs::symlink("../dotfiles/ssh_config", ssh.join("config")).expect("symlink");

    env.gitkit(["github-key", "--no-register"]).success();
    let link = std::fs::symlink_metadata(ssh.join("config")).expect("stat");
    assert!(link.file_type().is_symlink(), "still a link");
    let text = std::fs::read_to_string(dotfiles.join("ssh_config")).expect("read");
    assert!(text.contains("Include"), "{text}");
    assert!(text.ends_with("Host mine\n  User me\n"), "{text}");
    env.gitkit(["github-key", "--no-register"]).success();
    let again = std::fs::read_to_string(dotfiles.join("ssh_config")).expect("read");
    assert_eq!(again.matches("Include").count(), 1, "{again}");
}

#[test]
fn help_names_the_environment_but_never_its_values() {
    let mut env = Env::new();
    env.set("GITKIT_STORE", "s3://bucket-shown-nowhere/prefix");
    env.set("GITHUB_TOKEN", "ghp_help_must_not_show_this_token");
    let key_help = stdout(&env.gitkit(["github-key", "--help"]).success());
    assert!(key_help.contains("GITHUB_TOKEN"), "{key_help}");
    assert!(key_help.contains("GH_TOKEN"), "{key_help}");
    assert!(
        !key_help.contains("ghp_help_must_not_show_this_token"),
        "{key_help}"
    );
    for command in ["snapshot", "snapshots", "restore"] {
        let help = stdout(&env.gitkit([command, "--help"]).success());
        assert!(help.contains("[env: GITKIT_STORE]"), "{command}: {help}");
        assert!(!help.contains("bucket-shown-nowhere"), "{command}: {help}");
    }
}

#[test]
fn a_token_from_the_environment_never_reaches_the_log_or_an_error() {
    let github = FakeGitHub::start(Account {
        host_keys: vec![TEST_HOST_KEY.into()],
        ..Account::default()
    });
    // Registered with the right token, at the most verbose level.
    let mut env = Env::new();
    env.set("GITHUB_TOKEN", GOOD_TOKEN);
    let output = env
        .gitkit(["-vv", "github-key", "--api-url", &github.api_url()])
        .success();
    assert_eq!(github.posts(), 1);
    let said = format!("{}{}", stdout(&output), stderr(&output));
    assert!(said.contains("DEBUG") || said.contains("TRACE"), "{said}");
    assert!(!said.contains(GOOD_TOKEN), "{said}");

    // Refused, from GH_TOKEN, with the log on.
    const MADE_UP: &str = "ghp_made_up_token_from_gh_token_0123456789";
    let mut env = Env::new();
    env.remove("GITHUB_TOKEN");
    env.set("GH_TOKEN", MADE_UP);
    let output = env
        .gitkit(["-vv", "github-key", "--api-url", &github.api_url()])
        .failure();
    let said = format!("{}{}", stdout(&output), stderr(&output));
    assert!(said.contains("401"), "{said}");
    assert!(!said.contains(MADE_UP), "{said}");

    // A server that cannot be reached: the error names the URL, never the token.
    let closed = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let output = env
        .gitkit(["-vv", "github-key", "--api-url", &url])
        .failure();
    let said = format!("{}{}", stdout(&output), stderr(&output));
    assert!(said.contains("error"), "{said}");
    assert!(!said.contains(MADE_UP), "{said}");
}
