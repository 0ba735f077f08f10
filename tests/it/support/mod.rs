//! Test support: a hermetic environment, a command builder, and real peers on 127.0.0.1.

pub mod black_hole;
pub mod crontab;
pub mod folder_store;
pub mod git_http;
pub mod github;
pub mod http;
pub mod proxy;
pub mod s3;
pub mod sigv4;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// The AWS credentials every test signs with unless it says otherwise.
pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A temporary HOME with its own git config, and no variable from the outside world but PATH.
pub struct Env {
    root: TempDir,
    vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("gitkit-it-")
            .tempdir()
            .expect("temp dir");
        let home = root.path().join("home");
        std::fs::create_dir_all(&home).expect("create home");
        let home_str = home.to_str().expect("utf-8 temp path").to_string();
        let root_str = root.path().to_str().expect("utf-8 temp path").to_string();
        let mut env = Self {
            root,
            vars: Vec::new(),
        };
        let path = std::env::var("PATH").unwrap_or_default();
        for (key, value) in [
            ("PATH", path.as_str()),
            ("HOME", &home_str),
            ("XDG_CONFIG_HOME", &format!("{home_str}/.config")),
            ("GIT_CONFIG_GLOBAL", &format!("{home_str}/.gitconfig")),
            ("GIT_CONFIG_NOSYSTEM", "1"),
            ("GIT_CEILING_DIRECTORIES", &root_str),
            ("GIT_TERMINAL_PROMPT", "0"),
            ("GIT_AUTHOR_NAME", "Test Author"),
            ("GIT_AUTHOR_EMAIL", "author@example.com"),
            ("GIT_COMMITTER_NAME", "Test Author"),
            ("GIT_COMMITTER_EMAIL", "author@example.com"),
            ("LANG", "C"),
            ("GITKIT_HOME", &format!("{home_str}/.gitkit")),
            // Never reach for a real instance metadata service from a test.
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_REGION", "us-east-1"),
        ] {
            env.set(key, value);
        }
        env.git(&home, ["config", "--global", "init.defaultBranch", "main"])
            .success();
        env
    }

    /// A new environment holding `project`, a repository with one commit (see
    /// [`Env::repo_with_commit`]): where most tests start.
    pub fn with_project() -> (Self, PathBuf) {
        let env = Self::new();
        let repo = env.repo_with_commit("project");
        (env, repo)
    }

    /// Sets (or replaces) a variable for every command this environment builds.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_string(), value.into()));
    }

    /// This environment with one more variable set.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// Makes a folder store, `store` under the root, the one GITKIT_STORE names; returns it.
    pub fn use_folder_store(&mut self) -> PathBuf {
        let store = self.dir("store");
        self.set("GITKIT_STORE", store.to_str().expect("utf-8 temp path"));
        store
    }

    pub fn remove(&mut self, key: &str) {
        self.vars.retain(|(k, _)| k != key);
    }

    pub fn set_aws_keys(&mut self) {
        self.set("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        self.set("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    }

    pub fn root_path(&self) -> &Path {
        self.root.path()
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// A new empty folder under the environment's root.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).expect("create dir");
        dir
    }

    pub fn command(&self, program: impl AsRef<OsStr>) -> Cmd {
        let mut command = Command::new(program);
        command.env_clear().current_dir(self.home());
        for (key, value) in &self.vars {
            command.env(key, value);
        }
        Cmd {
            command,
            stdin: None,
        }
    }

    pub fn gitkit<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(gitkit_bin()).args(args)
    }

    /// `gitkit -C DIR ARGS...`: gitkit run as if started in `dir`, as `git -C` is.
    pub fn gitkit_in<I, S>(&self, dir: &Path, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.gitkit([OsStr::new("-C"), dir.as_os_str()]).args(args)
    }

    pub fn git<I, S>(&self, dir: &Path, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command("git").current_dir(dir).args(args)
    }

    /// A bare clone of a one-commit repository at `served/NAME`, as a server holds it;
    /// returns the `served` folder.
    pub fn served_repository(&self, name: &str) -> PathBuf {
        let source = self.repo_with_commit("source");
        let served = self.dir("served");
        let source = source.to_str().expect("utf-8 temp path");
        self.git(&served, ["clone", "-q", "--bare", source, name])
            .success();
        served
    }

    /// A repository with one commit holding `README.md`.
    pub fn repo_with_commit(&self, name: &str) -> PathBuf {
        let dir = self.dir(name);
        self.git(&dir, ["init", "-q"]).success();
        std::fs::write(dir.join("README.md"), "hello\n").expect("write");
        self.git(&dir, ["add", "README.md"]).success();
        self.git(&dir, ["commit", "-q", "-m", "first"]).success();
        dir
    }
}

/// Writes an executable script. The file is written by a child `sh`, never open for writing
/// in this process: a test thread forking meanwhile would inherit the descriptor, and running
/// the script would then fail with "Text file busy" (seen in CI).
pub fn write_executable(path: &Path, text: &str) {
    let mut child = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(text.as_bytes()).expect("write script");
    drop(stdin);
    let status = child.wait().expect("sh finishes");
    assert!(status.success(), "writing {} failed", path.display());
}

/// `len` bytes that do not compress or repeat, the same for the same seed (xorshift64).
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut data: Vec<u8> = (0..len.div_ceil(8))
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    data.truncate(len);
    data
}

pub fn gitkit_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gitkit")
}

/// A command to run, with the checks tests make on how it ended.
#[must_use]
pub struct Cmd {
    command: Command,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Starts the command in the background, its output discarded; the test waits for it.
    pub fn spawn(mut self) -> std::process::Child {
        self.command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.command))
    }

    pub fn output(mut self) -> Output {
        self.command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.command));
        if let Some(input) = self.stdin.take() {
            let mut stdin = child.stdin.take().expect("piped stdin");
            // The program may exit without reading all of it; that is its business.
            let _ = stdin.write_all(&input);
        }
        child.wait_with_output().expect("wait for child")
    }

    /// Runs the command, killing it and failing the test if it has not ended within `limit`:
    /// a wall-clock guard for commands that must not hang.
    #[track_caller]
    pub fn output_within(mut self, limit: std::time::Duration) -> Output {
        assert!(self.stdin.is_none(), "output_within takes no input");
        let description = format!("{:?}", self.command);
        let child = self
            .command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {description}: {e}"));
        let pid = child.id();
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        match result.recv_timeout(limit) {
            Ok(output) => output.expect("wait for child"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("{description} was still running after {limit:?}");
            }
        }
    }

    #[track_caller]
    pub fn success(self) -> Output {
        let description = format!("{:?}", self.command);
        let output = self.output();
        assert!(
            output.status.success(),
            "{description} failed:\n{}",
            describe(&output)
        );
        output
    }

    #[track_caller]
    pub fn failure(self) -> Output {
        let description = format!("{:?}", self.command);
        let output = self.output();
        assert!(
            !output.status.success(),
            "{description} succeeded:\n{}",
            describe(&output)
        );
        output
    }
}

pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts that a command said `needle` on stderr; if not, shows all it said and how it ended.
#[track_caller]
pub fn assert_stderr_contains(output: &Output, needle: &str) {
    assert!(
        stderr(output).contains(needle),
        "stderr does not contain {needle:?}:\n{}",
        describe(output)
    );
}

/// Asserts that the file at `path` holds exactly `expected`.
#[track_caller]
pub fn assert_file_holds(path: &Path, expected: impl AsRef<[u8]>) {
    let found = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(found, expected.as_ref(), "{}", path.display());
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
