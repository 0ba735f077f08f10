//! `gitkit hooks install` and `uninstall`: gitkit's post-commit hook, chained after the one the
//! repository already had, which is kept byte for byte and put back on uninstall.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The hook as shipped in `hooks/post-commit`.
const HOOK: &str = include_str!("../../hooks/post-commit");
/// A line only gitkit's hook has.
pub const MARKER: &str = "gitkit: GITKIT_HOOK_VERSION=";
/// Where the repository's own hook goes while gitkit's is installed.
pub const CHAINED: &str = "post-commit.gitkit-chained";

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{0} is not in a git repository")]
    NotARepository(PathBuf),
    #[error("could not run git in {0}")]
    Git(PathBuf, #[source] std::io::Error),
    #[error(
        "{hook} is not gitkit's, and {chained} is already there too: refusing to guess which to keep"
    )]
    Ambiguous { hook: PathBuf, chained: PathBuf },
    #[error("could not write {0}")]
    Write(PathBuf, #[source] std::io::Error),
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
}

/// What `uninstall` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Removed {
    /// gitkit's hook removed and the original put back.
    Restored(PathBuf),
    /// gitkit's hook removed; there was none before it.
    Removed(PathBuf),
    NotInstalled,
}

/// The hook's text, with the path of the gitkit that installs it.
pub fn script(gitkit: &Path) -> String {
    HOOK.replace(
        "GITKIT_INSTALLED_BIN",
        &shell_quote(&gitkit.to_string_lossy()),
    )
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The hooks folder git uses for `repo`, `core.hooksPath` included, and the working tree.
pub fn hooks_dir(repo: &Path) -> Result<(PathBuf, PathBuf), HookError> {
    let output = Command::new("git")
        .current_dir(repo)
        .args([
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "hooks",
            "--show-toplevel",
        ])
        .output()
        .map_err(|e| HookError::Git(repo.to_path_buf(), e))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    match (output.status.success(), lines.next(), lines.next()) {
        (true, Some(hooks), Some(top)) => Ok((PathBuf::from(hooks), PathBuf::from(top))),
        _ => Err(HookError::NotARepository(repo.to_path_buf())),
    }
}

pub fn install(repo: &Path, gitkit: &Path) -> Result<Installed, HookError> {
    let (dir, top) = hooks_dir(repo)?;
    let hook = dir.join("post-commit");
    let chained = dir.join(CHAINED);
    let wanted = script(gitkit);
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |e| HookError::Write(path, e)
    };
    std::fs::create_dir_all(&dir).map_err(write_error(&dir))?;
    let existing = std::fs::symlink_metadata(&hook)
        .ok()
        .map(|_| std::fs::read(&hook).unwrap_or_default());
    let ours = existing.as_deref().is_some_and(is_ours);
    let unchanged = ours && existing.as_deref() == Some(wanted.as_bytes());
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
        hook,
    })
}

pub fn uninstall(repo: &Path) -> Result<Removed, HookError> {
    let (dir, _) = hooks_dir(repo)?;
    let hook = dir.join("post-commit");
    let chained = dir.join(CHAINED);
    let ours = std::fs::read(&hook).is_ok_and(|text| is_ours(&text));
    if !ours {
        return Ok(Removed::NotInstalled);
    }
    if std::fs::symlink_metadata(&chained).is_ok() {
        std::fs::rename(&chained, &hook).map_err(|e| HookError::Write(hook.clone(), e))?;
        Ok(Removed::Restored(hook))
    } else {
        std::fs::remove_file(&hook).map_err(|e| HookError::Write(hook.clone(), e))?;
        Ok(Removed::Removed(hook))
    }
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

fn write_executable(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let parent = path.parent().expect("a hook has a folder");
    let mut file = tempfile::Builder::new()
        .prefix(crate::fs::TEMPORARY_PREFIX)
        .tempfile_in(parent)?;
    std::io::Write::write_all(&mut file, data)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_names_the_installing_binary_quoted() {
        let text = script(Path::new("/opt/it's here/gitkit"));
        assert!(
            text.contains(r"gitkit='/opt/it'\''s here/gitkit'"),
            "{text}"
        );
        assert!(is_ours(text.as_bytes()));
        assert!(!is_ours(b"#!/bin/sh\necho mine\n"));
    }
}
