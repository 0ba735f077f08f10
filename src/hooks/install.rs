//! `gitkit hooks install` and `uninstall`: gitkit's post-commit hook, chained after the one the
//! repository already had, which is kept byte for byte and put back on uninstall.

use std::path::{Path, PathBuf};

/// The hook as shipped in `hooks/post-commit`.
const HOOK: &str = include_str!("../../hooks/post-commit");
/// A line only gitkit's hook has.
pub const MARKER: &str = "gitkit: GITKIT_HOOK_VERSION=";
/// Where the repository's own hook goes while gitkit's is installed.
pub const CHAINED: &str = "post-commit.gitkit-chained";
/// Where `uninstall` keeps gitkit's hook when it was edited after install.
pub const EDITED: &str = "post-commit.gitkit-edited";

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{0} is not in a git repository")]
    NotARepository(PathBuf),
    #[error("could not run git in {0}")]
    Git(PathBuf, #[source] crate::git::GitError),
    #[error(
        "{hook} is not gitkit's, and {chained} is already there too: refusing to guess which to keep"
    )]
    Ambiguous { hook: PathBuf, chained: PathBuf },
    #[error("could not write {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("{0} is a folder, not a hook script")]
    NotAFile(PathBuf),
    #[error(transparent)]
    Unsafe(#[from] super::ControlCharacter),
}

impl HookError {
    /// How the user fixes it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            HookError::Ambiguous { .. } => Some(
                "keep the hook you want as post-commit, move the other away, then run \
                 `gitkit hooks install` again",
            ),
            HookError::NotAFile(_) => Some(
                "git runs post-commit as a program: move the folder away, then run \
                 `gitkit hooks install` again",
            ),
            HookError::Unsafe(_) => {
                Some("install gitkit at a path without control characters (such as ~/.local/bin)")
            }
            HookError::NotARepository(_) | HookError::Git(..) | HookError::Write(..) => None,
        }
    }
}

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Installed {
    pub hook: PathBuf,
    /// The repository's own hook, kept and run first.
    pub chained: Option<PathBuf>,
    /// Nothing needed doing.
    pub unchanged: bool,
    /// The hooks folder is inside the working tree (`core.hooksPath`, as husky sets it): a
    /// tool that regenerates it may remove gitkit's hook.
    pub in_worktree: bool,
    /// gitkit's hook had been edited since it was installed: kept here before the rewrite.
    pub edited: Option<PathBuf>,
}

/// What `uninstall` did. `edited`: gitkit's hook had been edited since install, and was kept
/// there rather than deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Removed {
    /// gitkit's hook removed and the original put back.
    Restored {
        hook: PathBuf,
        edited: Option<PathBuf>,
    },
    /// gitkit's hook removed; there was none before it.
    Removed {
        hook: PathBuf,
        edited: Option<PathBuf>,
    },
    NotInstalled,
}

/// The placeholder in `hooks/post-commit` for the installing gitkit's path.
const BIN_PLACEHOLDER: &str = "GITKIT_INSTALLED_BIN";

/// The hook's text, with the path of the gitkit that installs it.
pub fn script(gitkit: &Path) -> Result<String, HookError> {
    let path = gitkit.to_string_lossy();
    super::refuse_control_characters(
        format!("gitkit's path {}", gitkit.display()),
        &path,
        "a hook",
    )?;
    Ok(HOOK.replace(BIN_PLACEHOLDER, &super::shell_quote(&path)))
}

/// Whether `text` is gitkit's hook exactly as some gitkit installed it, unedited.
fn is_unedited(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let (before, after) = HOOK
        .split_once(BIN_PLACEHOLDER)
        .expect("the hook names the binary");
    let Some(quoted) = text
        .strip_prefix(before)
        .and_then(|rest| rest.strip_suffix(after))
    else {
        return false;
    };
    let Some(inner) = quoted
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    else {
        return false;
    };
    let path = inner.replace(r"'\''", "'");
    super::shell_quote(&path) == quoted && !path.contains('\n')
}

/// The hooks folder git uses for `repo`, `core.hooksPath` included, and the working tree.
pub fn hooks_dir(repo: &Path) -> Result<(PathBuf, PathBuf), HookError> {
    let text = crate::git::hooks_dir(repo).map_err(|e| match e {
        crate::git::GitError::Failed { .. } => HookError::NotARepository(repo.to_path_buf()),
        spawn => HookError::Git(repo.to_path_buf(), spawn),
    })?;
    let lines: Vec<&str> = text.lines().collect();
    match lines.as_slice() {
        [hooks, top] => Ok((PathBuf::from(hooks), PathBuf::from(top))),
        [] => Err(HookError::NotARepository(repo.to_path_buf())),
        // A path with a new line in it comes back as more lines than asked for.
        _ => Err(super::refuse_control_characters(
            "the repository's path",
            text.trim_end_matches('\n'),
            "a hook or the crontab",
        )
        .err()
        .map_or_else(
            || HookError::NotARepository(repo.to_path_buf()),
            HookError::from,
        )),
    }
}

pub fn install(repo: &Path, gitkit: &Path) -> Result<Installed, HookError> {
    let (dir, top) = hooks_dir(repo)?;
    let hook = dir.join("post-commit");
    let chained = dir.join(CHAINED);
    let wanted = script(gitkit)?;
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |e| HookError::Write(path, e)
    };
    std::fs::create_dir_all(&dir).map_err(write_error(&dir))?;
    if std::fs::metadata(&hook).is_ok_and(|m| m.is_dir()) {
        return Err(HookError::NotAFile(hook));
    }
    let existing = std::fs::symlink_metadata(&hook)
        .ok()
        .map(|_| std::fs::read(&hook).unwrap_or_default());
    let ours = existing.as_deref().is_some_and(is_ours);
    let unchanged = ours && existing.as_deref() == Some(wanted.as_bytes());
    let mut edited = None;
    if ours && !unchanged && !existing.as_deref().is_some_and(is_unedited) {
        let aside = free_name(&dir, EDITED);
        std::fs::rename(&hook, &aside).map_err(write_error(&aside))?;
        edited = Some(aside);
    }
    if existing.is_some() && !ours {
        if std::fs::symlink_metadata(&chained).is_ok() {
            return Err(HookError::Ambiguous { hook, chained });
        }
        // A rename keeps the original exactly: bytes, mode, even a symbolic link as a link.
        std::fs::rename(&hook, &chained).map_err(write_error(&chained))?;
    }
    if !unchanged {
        write_executable(&hook, wanted.as_bytes()).map_err(write_error(&hook))?;
    }
    Ok(Installed {
        chained: std::fs::symlink_metadata(&chained)
            .is_ok()
            .then_some(chained),
        unchanged,
        in_worktree: dir.starts_with(&top) && !dir.starts_with(top.join(".git")),
        edited,
        hook,
    })
}

pub fn uninstall(repo: &Path) -> Result<Removed, HookError> {
    let (dir, _) = hooks_dir(repo)?;
    let hook = dir.join("post-commit");
    let chained = dir.join(CHAINED);
    let Ok(text) = std::fs::read(&hook) else {
        return Ok(Removed::NotInstalled);
    };
    if !is_ours(&text) {
        return Ok(Removed::NotInstalled);
    }
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |e| HookError::Write(path, e)
    };
    // Edits made to gitkit's hook since install are the user's work: kept aside, not deleted.
    let edited = if is_unedited(&text) {
        None
    } else {
        let aside = free_name(&dir, EDITED);
        std::fs::rename(&hook, &aside).map_err(write_error(&aside))?;
        Some(aside)
    };
    if std::fs::symlink_metadata(&chained).is_ok() {
        std::fs::rename(&chained, &hook).map_err(write_error(&hook))?;
        Ok(Removed::Restored { hook, edited })
    } else {
        if edited.is_none() {
            std::fs::remove_file(&hook).map_err(write_error(&hook))?;
        }
        Ok(Removed::Removed { hook, edited })
    }
}

/// `dir/name`, or `dir/name.2`, `.3`... where that is taken: never over an earlier copy.
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let mut candidate = dir.join(name);
    let mut n = 1;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        n += 1;
        candidate = dir.join(format!("{name}.{n}"));
    }
    candidate
}

/// Whether the hook at `repo` is gitkit's.
pub fn is_installed(repo: &Path) -> Result<(bool, PathBuf), HookError> {
    let (dir, _) = hooks_dir(repo)?;
    let hook = dir.join("post-commit");
    Ok((std::fs::read(&hook).is_ok_and(|text| is_ours(&text)), hook))
}

fn is_ours(text: &[u8]) -> bool {
    text.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())
}

/// A hook: complete before it has its name, executable by all.
fn write_executable(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let executable = crate::fs::Atomic {
        mode: 0o755,
        ..crate::fs::Atomic::PRIVATE
    };
    crate::fs::write_with(path, data, executable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_names_the_installing_binary_quoted() {
        let text = script(Path::new("/opt/it's here/gitkit")).expect("a plain path");
        assert!(
            text.contains(r"gitkit='/opt/it'\''s here/gitkit'"),
            "{text}"
        );
        assert!(is_ours(text.as_bytes()));
        assert!(!is_ours(b"#!/bin/sh\necho mine\n"));
    }

    #[test]
    fn edits_are_told_from_the_script_as_installed() {
        for path in ["/usr/local/bin/gitkit", "/opt/it's here/gitkit", "/a b/'x'"] {
            let text = script(Path::new(path)).expect("a plain path");
            assert!(is_unedited(text.as_bytes()), "{path}");
            let mut edited = text.clone();
            edited.push_str("echo mine\n");
            assert!(!is_unedited(edited.as_bytes()), "{path}");
            let changed = text.replace("exit $status", "exit 0");
            assert!(!is_unedited(changed.as_bytes()), "{path}");
        }
        assert!(script(Path::new("/bin\nrm -rf ~\n/gitkit")).is_err());
    }
}
