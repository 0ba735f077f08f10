//! gitkit's own folder: `GITKIT_HOME`, else `~/.gitkit`. On a notebook instance `gitkit setup`
//! points it at the persistent volume.

use std::path::PathBuf;

pub fn gitkit_home() -> PathBuf {
    if let Some(home) = std::env::var_os("GITKIT_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".gitkit")
}
