//! Doctor's checks of the workspaces: the hook in each repository and the binary it names,
//! each repository's last snapshot and error, and the schedule.

use std::path::Path;

use super::{Check, Input, Status, is_executable};
use crate::hooks;
use crate::setup::workspace_root;

pub(super) fn hook_checks(input: &Input<'_>, missing: Status) -> Vec<Check> {
    let Some(root) = workspace_root(input.layout, input.saved) else {
        return vec![Check::bad(
            Status::Warn,
            "hooks",
            "no workspace root (no ~/SageMaker)",
            "gitkit setup --workspace-root DIR",
        )];
    };
    let mut checks = Vec::new();
    for repo in hooks::repositories_under(&root) {
        let name = format!("hook {}", repo.display());
        let Ok((installed, hook)) = hooks::install::is_installed(&repo) else {
            continue;
        };
        if !installed {
            checks.push(Check::bad(
                missing,
                name,
                format!("no gitkit post-commit hook at {}", hook.display()),
                "gitkit setup (or gitkit hooks install -C REPO)",
            ));
            continue;
        }
        let text = std::fs::read_to_string(&hook).unwrap_or_default();
        match hook_binary(&text) {
            Some(bin) if is_executable(Path::new(&bin)) => {
                checks.push(Check::ok(name, format!("installed, runs {bin}")))
            }
            other => checks.push(Check::bad(
                Status::Fail,
                name,
                format!(
                    "the hook runs {}, which is missing",
                    other.unwrap_or_else(|| "an unknown gitkit".into())
                ),
                "gitkit setup",
            )),
        }
        let state = repo.join(".git").join(crate::snapshot::STATE_DIR);
        if let Ok(status) = hooks::status(&state, installed, hook) {
            let record = &status.record;
            let last = record
                .last_snapshot
                .as_ref()
                .map_or("none yet".to_string(), |s| format!("{} at {}", s.id, s.at));
            let snap = format!("snapshots {}", repo.display());
            checks.push(match &record.last_error {
                Some(error) if record.failing => Check::bad(
                    Status::Fail,
                    snap,
                    format!(
                        "last snapshot: {last}; failing since {}: {}",
                        error.at, error.message
                    ),
                    format!("gitkit -C {} snapshot, to see the error", repo.display()),
                ),
                _ => Check::ok(snap, format!("last snapshot: {last}")),
            });
        }
    }
    if checks.is_empty() {
        checks.push(Check::ok(
            "hooks",
            format!("no repository under {} yet", root.display()),
        ));
    }
    checks
}

/// The binary a gitkit hook names: its `gitkit='...'` line.
fn hook_binary(text: &str) -> Option<String> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("gitkit='"))?;
    let quoted = line.trim().strip_prefix("gitkit=")?;
    Some(quoted.trim_matches('\'').replace(r"'\''", "'"))
}

pub(super) fn schedule_check(input: &Input<'_>) -> Check {
    let every = input.saved.and_then(|s| s.every.as_deref());
    let crontab = std::process::Command::new(&input.layout.crontab)
        .arg("-l")
        .output();
    let Ok(crontab) = crontab else {
        return Check::bad(
            Status::Warn,
            "schedule",
            "no crontab on this machine: snapshots happen after commits only",
            "install cron for periodic snapshots",
        );
    };
    let text = String::from_utf8_lossy(&crontab.stdout);
    let bin = input.layout.bin().to_string_lossy().into_owned();
    let ours = text
        .lines()
        .find(|l| l.contains("# gitkit schedule:") && l.contains(&bin));
    match (every, ours) {
        (Some(every), Some(_)) => Check::ok("schedule", format!("every {every} (crontab)")),
        (Some(every), None) => Check::bad(
            Status::Fail,
            "schedule",
            format!("setup chose every {every}, but the crontab has no line for it"),
            "gitkit setup",
        ),
        (None, Some(line)) => Check::ok("schedule", line.to_string()),
        (None, None) => Check::bad(
            Status::Warn,
            "schedule",
            "no periodic snapshot (the commit hook still snapshots)",
            "gitkit setup --every 1h",
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_binary_a_hook_names() {
        let hook = crate::hooks::install::script(std::path::Path::new("/g/it's/gitkit"))
            .expect("a path without control characters");
        assert_eq!(super::hook_binary(&hook).as_deref(), Some("/g/it's/gitkit"));
    }
}
