//! The one boundary to git: every git command gitkit runs, and every repository it opens.
//!
//! Two ways in, each for a reason:
//! - **In process** (`git2`), only to find a repository and read where HEAD points: the
//!   post-commit hook does this inside every commit, where starting a `git` process would cost
//!   milliseconds, and these are plain files whose format git keeps stable.
//! - **A `git` subprocess** for everything git decides: configuration (so that `git -c`,
//!   `GIT_CONFIG_*`, includes and conditional includes apply exactly as git applies them;
//!   [`config`]), which files a work tree holds (`git ls-files`: git's ignore rules and index;
//!   [`ls_files`]), where hooks go (`rev-parse --git-path hooks`: `core.hooksPath` as git
//!   resolves it), and which credential helpers git would run (doctor asks `git credential fill`).

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
        _ => Err(GitError::Failed {
            args: args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        }),
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

/// `git ls-files` in `dir`: tracked files and untracked ones (not ignored unless
/// `include_ignored`), NUL-separated, and what git said on stderr (the folders it could not
/// read). Never takes the index lock, and never reads another repository's index.
pub fn ls_files(dir: &Path, include_ignored: bool) -> Result<(Vec<u8>, Vec<u8>), GitError> {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .args(["ls-files", "-z", "--cached", "--others"]);
    if !include_ignored {
        command.arg("--exclude-standard");
    }
    let output = command.output().map_err(GitError::Spawn)?;
    if !output.status.success() {
        return Err(GitError::Failed {
            args: "ls-files".to_string(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok((output.stdout, output.stderr))
}
