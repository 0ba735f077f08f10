//! `gitkit setup --undo`: takes out exactly what setup added, and nothing of the user's. Keys
//! and snapshots stay.

use super::report::Report;
use super::run::SetupError;
use super::state::{self, Saved};
use super::{Layout, files};
use crate::git;
use crate::github;
use crate::hooks::{self, Removed, Target};

pub fn undo(layout: &Layout, dry_run: bool) -> Result<Report, SetupError> {
    let mut report = Report::new(dry_run);
    let saved = state::load(&layout.gitkit_home)?.unwrap_or_default();
    let write_err = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |e| SetupError::Write(path, e)
    };

    // The include line, then the rest of what setup made of the global file.
    let include = layout.include_file();
    let value = include.to_string_lossy().into_owned();
    if git::config::global_get_all(&layout.home, "include.path")?.contains(&value) {
        if !dry_run {
            git::config::global_unset(&layout.home, "include.path", &value)?;
            tidy_global_file(layout, &saved).map_err(write_err(&layout.global_gitconfig))?;
        }
        report.changed(format!(
            "{}: include.path = {value} removed",
            layout.global_gitconfig.display()
        ));
    }

    for repo in &saved.added.hooks {
        if dry_run {
            report.changed(format!("post-commit hook in {} removed", repo.display()));
            continue;
        }
        match hooks::uninstall(repo) {
            Ok(Removed::Restored { hook, edited }) => {
                report.changed(format!("{}: the original hook is back", hook.display()));
                kept_aside(&mut report, edited);
            }
            Ok(Removed::Removed { hook, edited }) => {
                report.changed(format!("{} removed", hook.display()));
                kept_aside(&mut report, edited);
            }
            Ok(Removed::NotInstalled) => {}
            Err(e) => report.warn(
                format!("could not remove the hook in {}: {e}", repo.display()),
                format!("gitkit -C {} hooks uninstall", repo.display()),
            ),
        }
    }

    if let Some(root) = &saved.added.schedule {
        let target = Target::All(root.clone());
        let removed = if dry_run {
            Ok(true)
        } else {
            hooks::schedule::update(&layout.crontab, &target, None)
        };
        match removed {
            Ok(true) => report.changed(format!(
                "crontab: the schedule for {} removed",
                root.display()
            )),
            Ok(false) => {}
            Err(e) => report.warn(
                format!("could not remove the schedule: {e}"),
                format!("gitkit schedule --off --all {}", root.display()),
            ),
        }
    }

    if saved.added.bashrc {
        let line = files::bashrc_line(&layout.bash_completion());
        let rc = layout.bashrc();
        let there = std::fs::read_to_string(&rc).is_ok_and(|t| t.lines().any(|l| l == line));
        if there {
            if !dry_run {
                files::remove_line(&rc, &line).map_err(write_err(&rc))?;
            }
            report.changed(format!("{}: the completion line removed", rc.display()));
        }
    }

    if saved.added.ssh_include {
        let user_config = layout.home.join(".ssh/config");
        let config = github::ssh_dir(&layout.gitkit_home).join("config");
        let there = std::fs::read_to_string(&user_config)
            .is_ok_and(|t| t.contains(&format!("Include \"{}\"", config.display())));
        if there {
            if !dry_run {
                files::remove_ssh_include(&user_config, &config)
                    .map_err(write_err(&user_config))?;
            }
            report.changed(format!("{}: the Include removed", user_config.display()));
        }
    }

    let link = layout.path_link();
    if saved.added.path_link && std::fs::read_link(&link).is_ok_and(|t| t == layout.bin()) {
        if !dry_run {
            files::remove(&link).map_err(write_err(&link))?;
        }
        report.changed(format!("{} removed", link.display()));
    }

    for (path, what) in [
        (layout.include_file(), "git config for CodeCommit"),
        (layout.template_hook(), "the hook template"),
        (layout.bash_completion(), "bash completion"),
        (layout.bin(), "the gitkit binary"),
        (
            layout.gitkit_home.join(state::FILE),
            "setup's saved choices",
        ),
    ] {
        if path.exists() {
            if !dry_run {
                files::remove(&path).map_err(write_err(&path))?;
            }
            report.changed(format!("{} removed ({what})", path.display()));
        }
    }
    if !dry_run {
        for dir in [
            layout.template_dir().join("hooks"),
            layout.template_dir(),
            layout.gitkit_home.join("completions"),
            layout.gitkit_home.join("bin"),
        ] {
            // Only when empty: anything else there is not setup's.
            let _ = std::fs::remove_dir(dir);
        }
    }

    let ssh = github::ssh_dir(&layout.gitkit_home);
    if ssh.join("id_ed25519").exists() {
        report.note(format!(
            "kept: the GitHub key in {} (delete it yourself if you no longer want it, and remove it from https://github.com/settings/keys)",
            ssh.display()
        ));
    }
    match &saved.store {
        Some(store) => report.note(format!("kept: snapshots in {store}")),
        None if layout.gitkit_home.join("store").exists() => report.note(format!(
            "kept: snapshots in {}",
            layout.gitkit_home.join("store").display()
        )),
        None => {}
    }
    Ok(report)
}

/// Puts the global file back as setup found it: git leaves an empty `[include]` header behind
/// on older versions, and a file setup created is removed when nothing else is in it.
fn tidy_global_file(layout: &Layout, saved: &Saved) -> std::io::Result<()> {
    let path = &layout.global_gitconfig;
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let mut text = text;
    if saved.added.include_section_created
        && let Some(stripped) = text.strip_suffix("[include]\n")
    {
        text = stripped.to_string();
        files::write(path, text.as_bytes(), mode_of(path))?;
    }
    if saved.added.gitconfig_created && text.trim().is_empty() {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644)
}

/// An edited gitkit hook that uninstall kept aside rather than discard.
fn kept_aside(report: &mut Report, edited: Option<std::path::PathBuf>) {
    if let Some(edited) = edited {
        report.warn(
            format!(
                "gitkit's hook had been edited; your version is kept as {}",
                edited.display()
            ),
            "look at it, and put back what you need",
        );
    }
}
