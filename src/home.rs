//! gitkit's own folder, where everything it keeps lives: keys, ssh and git config files, setup's
//! saved choices, the default folder store and `bin/gitkit`.
//!
//! `GITKIT_HOME` wins. Else a `~/.gitkit` that already exists is kept (it was the default
//! before), else `~/SageMaker/.gitkit` where `~/SageMaker` is a folder (the only part of a
//! notebook instance that survives a stop and start), else `${XDG_DATA_HOME:-~/.local/share}/gitkit`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Which rule chose the folder; doctor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `GITKIT_HOME` is set.
    Env,
    /// `~/.gitkit` was already there.
    Legacy,
    /// `~/SageMaker/.gitkit`, on the persistent volume.
    SageMaker,
    /// `${XDG_DATA_HOME:-~/.local/share}/gitkit`.
    Xdg,
}

/// The folder, from what the process was given: `GITKIT_HOME`, the home folder and
/// `XDG_DATA_HOME`.
pub fn choose(
    gitkit_home: Option<OsString>,
    home: &Path,
    xdg_data_home: Option<OsString>,
) -> (PathBuf, Source) {
    if let Some(dir) = gitkit_home.filter(|h| !h.is_empty()) {
        return (PathBuf::from(dir), Source::Env);
    }
    let legacy = home.join(".gitkit");
    if legacy.is_dir() {
        return (legacy, Source::Legacy);
    }
    let sagemaker = home.join("SageMaker");
    if sagemaker.is_dir() {
        return (sagemaker.join(".gitkit"), Source::SageMaker);
    }
    // The XDG spec ignores a relative XDG_DATA_HOME.
    let data = xdg_data_home
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .unwrap_or_else(|| home.join(".local/share"));
    (data.join("gitkit"), Source::Xdg)
}

/// The folder for this process, and the rule that chose it.
pub fn gitkit_home_and_source() -> (PathBuf, Source) {
    choose(
        std::env::var_os("GITKIT_HOME"),
        &home_dir(),
        std::env::var_os("XDG_DATA_HOME"),
    )
}

pub fn gitkit_home() -> PathBuf {
    gitkit_home_and_source().0
}

/// The user's home folder: `HOME`, else the current folder.
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_then_legacy_then_sagemaker_then_xdg() {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path();
        let pick = |env: Option<&str>, xdg: Option<&str>| {
            choose(env.map(OsString::from), home, xdg.map(OsString::from))
        };
        assert_eq!(
            pick(None, None),
            (home.join(".local/share/gitkit"), Source::Xdg)
        );
        assert_eq!(
            pick(None, Some("/data")),
            (PathBuf::from("/data/gitkit"), Source::Xdg)
        );
        assert_eq!(
            pick(None, Some("relative")),
            (home.join(".local/share/gitkit"), Source::Xdg),
            "a relative XDG_DATA_HOME is ignored"
        );
        std::fs::write(home.join("SageMaker"), "a file, not a folder").expect("write");
        assert_eq!(pick(None, None).1, Source::Xdg);
        std::fs::remove_file(home.join("SageMaker")).expect("rm");
        std::fs::create_dir(home.join("SageMaker")).expect("mkdir");
        assert_eq!(
            pick(None, Some("/data")),
            (home.join("SageMaker/.gitkit"), Source::SageMaker)
        );
        std::fs::create_dir(home.join(".gitkit")).expect("mkdir");
        assert_eq!(pick(None, None), (home.join(".gitkit"), Source::Legacy));
        assert_eq!(
            pick(Some("/elsewhere"), None),
            (PathBuf::from("/elsewhere"), Source::Env)
        );
        assert_eq!(pick(Some(""), None).1, Source::Legacy, "empty is unset");
    }
}
