//! Doctor's GitHub checks: the key, the `Include` that uses it, the pinned host keys, and
//! whether the account has it.

use super::{Check, Input, Status};
use crate::github::{self, ssh_config};

pub(super) fn checks(input: &Input<'_>) -> Vec<Check> {
    let layout = input.layout;
    let dir = github::ssh_dir(&layout.gitkit_home);
    let key = dir.join("id_ed25519");
    if !key.exists() {
        return vec![Check::bad(
            Status::Warn,
            "github key",
            "no GitHub key",
            "GITHUB_TOKEN=... gitkit github-key (or gitkit github-key --no-register)",
        )];
    }
    let mut checks = vec![Check::ok("github key", key.display().to_string())];
    let config = dir.join("config");
    let user_config = layout.home.join(".ssh/config");
    let include = format!("Include \"{}\"", config.display());
    let included =
        std::fs::read_to_string(&user_config).is_ok_and(|t| t.lines().any(|l| l.trim() == include));
    checks.push(if included && config.exists() {
        Check::ok(
            "ssh config",
            format!("{} includes {}", user_config.display(), config.display()),
        )
    } else {
        Check::bad(
            Status::Fail,
            "ssh config",
            format!(
                "{} does not include {}",
                user_config.display(),
                config.display()
            ),
            "gitkit setup",
        )
    });
    let known = std::fs::read_to_string(dir.join("known_hosts")).unwrap_or_default();
    let pinned = ssh_config::GITHUB_HOST_KEYS
        .iter()
        .all(|k| known.contains(k))
        || (!known.is_empty() && config.exists());
    checks.push(if pinned {
        Check::ok("github host keys", "pinned")
    } else {
        Check::bad(
            Status::Fail,
            "github host keys",
            format!(
                "{} lacks GitHub's host keys",
                dir.join("known_hosts").display()
            ),
            "gitkit github-key --no-register",
        )
    });
    checks.push(match &input.github_registered {
        None => Check::bad(
            Status::Warn,
            "github registration",
            "not checked: no GITHUB_TOKEN",
            "set GITHUB_TOKEN to check, or see https://github.com/settings/keys",
        ),
        Some(Ok(true)) => Check::ok("github registration", "the key is registered"),
        Some(Ok(false)) => Check::bad(
            Status::Fail,
            "github registration",
            "the key is not registered with this account",
            "gitkit github-key",
        ),
        Some(Err(why)) => Check::bad(
            Status::Warn,
            "github registration",
            format!("could not ask GitHub: {why}"),
            "check the token and the network",
        ),
    });
    checks
}
