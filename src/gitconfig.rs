//! Reading git configuration through `git config` itself, so that every source git honours
//! (`-c`, `GIT_CONFIG_*`, includes, worktrees) is honoured here too.

use std::path::Path;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not run `git config`; is git installed?")]
    Spawn(#[source] std::io::Error),
    #[error("`git config` failed: {0}")]
    Failed(String),
}

/// Every `(key, value)` whose key matches `pattern` (a regular expression, as git takes it).
/// Keys come back as git prints them: section and name lower-cased.
pub fn get_regexp(dir: Option<&Path>, pattern: &str) -> Result<Vec<(String, String)>, Error> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command
        .args(["config", "-z", "--get-regexp", pattern])
        .output()
        .map_err(Error::Spawn)?;
    match output.status.code() {
        Some(0) => Ok(parse_z(&output.stdout)),
        Some(1) => Ok(Vec::new()),
        _ => Err(Error::Failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
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
}
