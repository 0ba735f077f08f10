//! The post-commit hook: installing it beside whatever hook a repository already has, the
//! detached snapshot it starts, and a periodic schedule through cron.

pub mod install;
pub mod schedule;
pub mod worker;

pub use install::{HookError, Installed, Removed, install, uninstall};
pub use schedule::{Schedule, ScheduleError, Target};
pub use worker::{HookStatus, RunOutcome, post_commit, run, status};

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// A value gitkit would write into a hook or the crontab holds a control character: a new line
/// there would start a command of its own.
#[derive(Debug, thiserror::Error)]
#[error("{what} contains a control character ({shown}); refusing to write it into {into}")]
pub struct ControlCharacter {
    what: String,
    shown: String,
    into: &'static str,
}

/// Refuses `value` where it holds a control character (C0, DEL or C1).
pub fn refuse_control_characters(
    what: impl Into<String>,
    value: &str,
    into: &'static str,
) -> Result<(), ControlCharacter> {
    if !value.chars().any(char::is_control) {
        return Ok(());
    }
    let mut shown: String = value
        .chars()
        .take(120)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > 120 {
        shown.push_str("...");
    }
    Err(ControlCharacter {
        what: what.into(),
        shown: format!("\"{shown}\""),
        into,
    })
}

/// `text` as one word for `sh`, always in single quotes: what a hook names.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `text` as one word for `sh`: bare when it holds only characters no shell treats specially
/// (so that a crontab line stays readable), else as [`shell_quote`] writes it.
pub fn shell_word(text: &str) -> Cow<'_, str> {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:=@".contains(&b))
    {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(shell_quote(text))
    }
}

/// The repositories under `dir` (a folder with a `.git`), not looking inside repositories or
/// hidden folders, three levels deep at most: `~/SageMaker/*/` and a little below.
pub fn repositories_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut walk = walkdir::WalkDir::new(dir)
        .max_depth(3)
        .sort_by_file_name()
        .into_iter();
    while let Some(Ok(entry)) = walk.next() {
        if !entry.file_type().is_dir() {
            continue;
        }
        if entry.path().join(".git").exists() {
            found.push(entry.path().to_path_buf());
            walk.skip_current_dir();
        } else if entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.') {
            walk.skip_current_dir();
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sh` makes of `word`: the arguments it passes to `printf`.
    fn as_sh_reads(word: &str) -> Vec<String> {
        let output = std::process::Command::new("sh")
            .args(["-c", &format!("printf '%s\\n' {word}")])
            .output()
            .expect("sh runs");
        String::from_utf8(output.stdout)
            .expect("utf-8")
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn quoted_words_reach_sh_as_one_word_unchanged() {
        for text in [
            "/usr/bin/gitkit",
            "it's here",
            "a b",
            "$HOME",
            "`x`",
            "'",
            "s3://b/p",
        ] {
            assert_eq!(as_sh_reads(&shell_quote(text)), [text], "{text}");
            assert_eq!(as_sh_reads(&shell_word(text)), [text], "{text}");
        }
        assert_eq!(
            shell_word("s3://b/p-1_2.x"),
            "s3://b/p-1_2.x",
            "bare when safe"
        );
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word(""), "''", "an empty word is kept as a word");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
