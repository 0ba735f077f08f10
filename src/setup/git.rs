//! The `git` commands setup and doctor run: reading every scope as git sees it, and editing the
//! global file only through `git config --global`, so the rest of the user's file is untouched.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::gitconfig::{self, Entry};

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
    Ok(gitconfig::parse_git_version(&String::from_utf8_lossy(&out)))
}

/// Every `credential.*` entry in every scope, in the order git reads them.
pub fn credential_entries(dir: &Path) -> Result<Vec<Entry>, GitError> {
    let out = run(
        dir,
        [
            "config",
            "-z",
            "--show-origin",
            "--get-regexp",
            r"^credential\.",
        ],
    )?;
    Ok(gitconfig::parse_entries(&out))
}

/// Values of `key` and where each comes from, every scope.
pub fn get_all_with_origin(dir: &Path, key: &str) -> Result<Vec<Entry>, GitError> {
    let out = run(
        dir,
        [
            "config",
            "-z",
            "--show-origin",
            "--get-regexp",
            &regex_key(key),
        ],
    )?;
    Ok(gitconfig::parse_entries(&out))
}

/// Values of `key` in the global file.
pub fn global_get_all(dir: &Path, key: &str) -> Result<Vec<String>, GitError> {
    let out = run(dir, ["config", "--global", "-z", "--get-all", key])?;
    Ok(out
        .split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect())
}

/// Whether the global file has any key of `section`.
pub fn global_has_section(dir: &Path, section: &str) -> Result<bool, GitError> {
    let out = run(
        dir,
        [
            "config",
            "--global",
            "--get-regexp",
            &format!("^{}\\.", regex_escape(section)),
        ],
    )?;
    Ok(!out.is_empty())
}

pub fn global_add(dir: &Path, key: &str, value: &str) -> Result<(), GitError> {
    run(dir, ["config", "--global", "--add", key, value]).map(|_| ())
}

/// Removes every `key = value` from the global file (the value matched exactly).
pub fn global_unset(dir: &Path, key: &str, value: &str) -> Result<(), GitError> {
    let pattern = format!("^{}$", regex_escape(value));
    match run(dir, ["config", "--global", "--unset-all", key, &pattern]) {
        // 5: nothing to unset.
        Err(GitError::Failed { .. }) if global_get_all(dir, key)?.iter().all(|v| v != value) => {
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// The file `git config --global` writes: `GIT_CONFIG_GLOBAL`, else `~/.gitconfig` unless only
/// the XDG file exists.
pub fn global_file(
    home: &Path,
    git_config_global: Option<&OsStr>,
    xdg_config_home: Option<&OsStr>,
) -> PathBuf {
    if let Some(path) = git_config_global.filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let dotfile = home.join(".gitconfig");
    let xdg = xdg_config_home
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"))
        .join("git/config");
    if !dotfile.exists() && xdg.exists() {
        xdg
    } else {
        dotfile
    }
}

fn regex_key(key: &str) -> String {
    format!("^{}$", regex_escape(key))
}

/// Escapes a literal for git's (POSIX extended) regular expressions.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
