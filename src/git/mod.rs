//! The one boundary to git: every git command gitkit runs, and every repository it opens.
//!
//! No other module runs `git` or opens a repository. Two ways in, each for a reason:
//! - **In process** (`git2`, [`Repository`]), only to find a repository and read HEAD: the
//!   post-commit hook does this inside every commit, where starting a `git` process would cost
//!   milliseconds, and these are plain files whose format git keeps stable.
//! - **A `git` subprocess** for everything git decides: configuration (so that `git -c`,
//!   `GIT_CONFIG_*`, includes and conditional includes apply exactly as git applies them;
//!   [`config`]), which files a work tree holds (`git ls-files`: git's ignore rules and index;
//!   [`ls_files`]), where hooks go (`rev-parse --git-path hooks`: `core.hooksPath` as git
//!   resolves it; [`hooks_dir`]), and what git's credential helpers answer (doctor asks
//!   `git credential fill`; [`credential_fill`]).

pub mod config;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("could not run git; is it installed?")]
    Spawn(#[source] std::io::Error),
    #[error("`git {args}` failed: {detail}")]
    Failed { args: String, detail: String },
    #[error("could not read what git printed")]
    Read(#[source] std::io::Error),
}

impl GitError {
    fn failed(args: impl Into<String>, stderr: &[u8]) -> Self {
        Self::Failed {
            args: args.into(),
            detail: String::from_utf8_lossy(stderr).trim().to_string(),
        }
    }
}

/// git run in `dir`, finding the repository from there as a user's git would: not the one a
/// hook's environment names (`GIT_DIR`, `GIT_WORK_TREE`).
fn git_in(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    command
}

/// Runs git in `dir`; exit 1 (nothing found) counts as success with no output.
pub fn run<I, S>(dir: &Path, args: I) -> Result<Vec<u8>, GitError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = Command::new("git")
        .current_dir(dir)
        .args(&args)
        .output()
        .map_err(GitError::Spawn)?;
    match output.status.code() {
        Some(0) => Ok(output.stdout),
        Some(1) => Ok(Vec::new()),
        _ => {
            let args: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
            Err(GitError::failed(args.join(" "), &output.stderr))
        }
    }
}

/// `git --version`, as (major, minor).
pub fn version(dir: &Path) -> Result<Option<(u32, u32)>, GitError> {
    let out = run(dir, ["--version"])?;
    Ok(parse_version(&String::from_utf8_lossy(&out)))
}

/// `git version 2.47.3` -> (2, 47).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().nth(2)?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((major, minor))
}

/// Which files `git ls-files` lists.
#[derive(Debug, Clone, Copy)]
pub enum Listed {
    /// The files in the index.
    Tracked,
    /// The files not in it (and not ignored unless `include_ignored`); a nested repository as
    /// `nested/`.
    Untracked { include_ignored: bool },
}

/// `git ls-files` running in `dir`: its paths are read one at a time, in git's order (sorted
/// by bytes), as git prints them. Never takes the index lock, and never reads another
/// repository's index. Dropped before its end, git is stopped.
pub struct Listing {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    /// What git says on stderr, read on a thread of its own so that git never waits on it.
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    path: Vec<u8>,
    ended: bool,
}

/// Starts `git ls-files` in `dir` (see [`Listing`]). In a repository `nested` in the
/// workspace, its own configuration's `core.fsmonitor` (a command git would run) is turned
/// off: `git status` in the workspace never runs it either.
pub fn ls_files(dir: &Path, listed: Listed, nested: bool) -> Result<Listing, GitError> {
    use std::process::Stdio;
    let mut command = git_in(dir);
    if nested {
        command.args(["-c", "core.fsmonitor=false"]);
    }
    command
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env_remove("GIT_INDEX_FILE")
        .args(["ls-files", "-z"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match listed {
        Listed::Tracked => {
            command.arg("--cached");
        }
        Listed::Untracked { include_ignored } => {
            command.arg("--others");
            if !include_ignored {
                command.arg("--exclude-standard");
            }
        }
    }
    let mut child = command.spawn().map_err(GitError::Spawn)?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let stderr = std::thread::spawn(move || {
        let mut said = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut said);
        said
    });
    Ok(Listing {
        child,
        stdout: std::io::BufReader::with_capacity(64 << 10, stdout),
        stderr: Some(stderr),
        path: Vec::new(),
        ended: false,
    })
}

impl Listing {
    /// The next path, or `None` at the end of the list.
    pub fn next_path(&mut self) -> Result<Option<&[u8]>, GitError> {
        use std::io::BufRead;
        loop {
            self.path.clear();
            let read = self
                .stdout
                .read_until(0, &mut self.path)
                .map_err(GitError::Read)?;
            if read == 0 {
                return Ok(None);
            }
            if self.path.last() == Some(&0) {
                self.path.pop();
            }
            if !self.path.is_empty() {
                return Ok(Some(&self.path));
            }
        }
    }

    /// Waits for git to end (its list read to the end); what it said on stderr, or how it
    /// failed.
    pub fn finish(&mut self) -> Result<Vec<u8>, GitError> {
        self.ended = true;
        let status = self.child.wait().map_err(GitError::Read)?;
        let said = self
            .stderr
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();
        if !status.success() {
            return Err(GitError::failed("ls-files", &said));
        }
        Ok(said)
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A repository opened in process (see the module's first point).
pub struct Repository(git2::Repository);

impl Repository {
    /// The repository containing `dir`.
    pub fn discover(dir: &Path) -> Option<Self> {
        git2::Repository::discover(dir).ok().map(Self)
    }

    /// The repository a hook runs in, as git tells it (`GIT_DIR` and friends).
    pub fn from_hook_env() -> Option<Self> {
        git2::Repository::open_from_env().ok().map(Self)
    }

    /// The `.git` folder.
    pub fn git_dir(&self) -> &Path {
        self.0.path()
    }

    /// The working tree's top folder, resolved; `None` for a bare repository.
    pub fn work_tree(&self) -> Option<std::path::PathBuf> {
        let root = self.0.workdir()?;
        Some(root.canonicalize().unwrap_or_else(|_| root.to_path_buf()))
    }

    /// The commit HEAD points at, and the branch it is on (`None` when detached).
    pub fn head(&self) -> (Option<String>, Option<String>) {
        let branch = self
            .0
            .find_reference("HEAD")
            .ok()
            .and_then(|head| head.symbolic_target().ok().flatten().map(str::to_string))
            .map(|target| {
                target
                    .strip_prefix("refs/heads/")
                    .unwrap_or(&target)
                    .to_string()
            });
        let commit = self
            .0
            .head()
            .ok()
            .and_then(|head| head.peel_to_commit().ok())
            .map(|commit| commit.id().to_string());
        (commit, branch)
    }
}

/// The top of the working tree containing `dir`, as git finds it: the folder holding the
/// `.git` (file, folder or link) git found, or `core.worktree`. (libgit2 takes the folder above
/// the repository instead, wrong for a `.git` file made by `git init --separate-git-dir` or a
/// `.git` that is a link.)
pub fn top_level(dir: &Path) -> Result<std::path::PathBuf, GitError> {
    use std::os::unix::ffi::OsStrExt;
    let output = git_in(dir)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .map_err(GitError::Spawn)?;
    if !output.status.success() {
        return Err(GitError::failed(
            "rev-parse --show-toplevel",
            &output.stderr,
        ));
    }
    let out = output.stdout.strip_suffix(b"\n").unwrap_or(&output.stdout);
    Ok(Path::new(OsStr::from_bytes(out)).to_path_buf())
}

/// The hooks folder git uses for the repository at `dir` (`core.hooksPath` included) and the
/// working tree's top, as `git rev-parse` prints them, one a line.
pub fn hooks_dir(dir: &Path) -> Result<String, GitError> {
    let out = run(
        dir,
        [
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "hooks",
            "--show-toplevel",
        ],
    )?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// What git's own credential machinery answers `request` with, from `dir` (doctor's end-to-end
/// check): never prompting, whatever the terminal.
pub fn credential_fill(dir: &Path, request: &[u8]) -> std::io::Result<std::process::Output> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new("git")
        .current_dir(dir)
        .args(["credential", "fill"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(request)?;
    drop(stdin);
    child.wait_with_output()
}
