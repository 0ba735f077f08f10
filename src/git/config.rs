//! Reading git configuration through `git config` itself, so that every source git honours
//! (`-c`, `GIT_CONFIG_*`, includes, worktrees) is honoured here too; and editing the global
//! file only through `git config --global`, so that the rest of the user's file is untouched.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use super::GitError as Error;
use super::{GitError, run};

/// Every `(key, value)` whose key matches `pattern` (a regular expression, as git takes it).
/// Keys come back as git prints them: section and name lower-cased.
pub fn get_regexp(dir: Option<&Path>, pattern: &str) -> Result<Vec<(String, String)>, GitError> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command
        .args(["config", "-z", "--get-regexp", pattern])
        .output()
        .map_err(GitError::Spawn)?;
    match output.status.code() {
        Some(0) => Ok(parse_z(&output.stdout)),
        Some(1) => Ok(Vec::new()),
        _ => Err(GitError::failed(
            format!("config --get-regexp {pattern}"),
            &output.stderr,
        )),
    }
}

/// Parses `git config -z` output: `key\nvalue\0` per entry, `key\0` for a key with no value.
fn parse_z(output: &[u8]) -> Vec<(String, String)> {
    output
        .split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            match entry.split_once('\n') {
                Some((key, value)) => (key.to_string(), value.to_string()),
                None => (entry.to_string(), String::new()),
            }
        })
        .collect()
}

/// One `credential.*` entry as `git config --show-origin` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub origin: String,
    pub key: String,
    pub value: String,
}

/// Parses `git config -z --show-origin --get-regexp` output: `origin\0key\nvalue\0` per entry.
pub fn parse_entries(output: &[u8]) -> Vec<Entry> {
    let fields: Vec<String> = output
        .split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    fields
        .chunks(2)
        .filter(|pair| pair.len() == 2)
        .map(|pair| {
            let (key, value) = pair[1].split_once('\n').unwrap_or((&pair[1], ""));
            Entry {
                origin: pair[0].clone(),
                key: key.to_string(),
                value: value.to_string(),
            }
        })
        .collect()
}

/// Every `credential.*` entry in every scope, in the order git reads them.
pub fn credential_entries(dir: &Path) -> Result<Vec<Entry>, GitError> {
    entries_with_origin(dir, r"^credential\.")
}

/// Values of `key` and where each comes from, every scope.
pub fn get_all_with_origin(dir: &Path, key: &str) -> Result<Vec<Entry>, GitError> {
    entries_with_origin(dir, &regex_key(key))
}

/// Every entry whose key matches `pattern`, with the file it comes from, in git's order.
fn entries_with_origin(dir: &Path, pattern: &str) -> Result<Vec<Entry>, GitError> {
    let args = ["config", "-z", "--show-origin", "--get-regexp", pattern];
    Ok(parse_entries(&run(dir, args)?))
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

#[cfg(test)]
mod tests {
    use super::parse_z;

    #[test]
    fn parses_null_terminated_entries() {
        let entries = parse_z(b"gitkit.codecommit.allowhost\na b\0gitkit.flag\0");
        assert_eq!(
            entries,
            [
                ("gitkit.codecommit.allowhost".into(), "a b".into()),
                ("gitkit.flag".into(), String::new())
            ]
        );
    }

    #[test]
    fn parses_show_origin_output_and_versions() {
        let entries = super::parse_entries(
            b"file:/h/.gitconfig\0credential.helper\ncache\0file:/x\0credential.usehttppath\0",
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].value, "cache");
        assert_eq!(entries[1].key, "credential.usehttppath");
        assert_eq!(
            super::super::parse_version("git version 2.47.3"),
            Some((2, 47))
        );
        assert_eq!(
            super::super::parse_version("git version 2.39.5 (Apple Git-154)"),
            Some((2, 39))
        );
        assert_eq!(
            super::super::parse_version("git version 2.40.rc1"),
            Some((2, 40))
        );
    }
}
