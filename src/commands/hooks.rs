//! `gitkit hooks`, `gitkit schedule` and the entry points they install (`gitkit hook ...`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use indicatif::DecimalBytes;

use super::workspace::{Settings, take};
use crate::cli::{AllArgs, HookCommand, HooksCommand, ScheduleArgs};
use crate::error::Hinted;
use crate::git;
use crate::hooks::{self, Removed, Schedule, Target};
use crate::snapshot::{STATE_DIR, Silent};
use crate::text::printable;

pub fn hooks(command: HooksCommand, dir: &Path) -> anyhow::Result<()> {
    let mut stderr = std::io::stderr().lock();
    match command {
        HooksCommand::Install(all) => {
            let gitkit = std::env::current_exe().context("cannot tell where gitkit is")?;
            let mut failed = 0;
            for repo in repositories(&all, dir)? {
                // With --all, one repository's trouble does not stop the others.
                let installed = match hooks::install(&repo, &gitkit) {
                    Ok(installed) => installed,
                    Err(e) => {
                        failed += 1;
                        crate::error::report(&e.into(), &mut stderr);
                        continue;
                    }
                };
                let what = if installed.unchanged {
                    "already installed"
                } else {
                    "installed"
                };
                writeln!(stderr, "{what}: {}", installed.hook.display())?;
                if let Some(chained) = &installed.chained {
                    writeln!(
                        stderr,
                        "  the hook that was there runs first, kept as {}",
                        chained.display()
                    )?;
                }
                if let Some(edited) = &installed.edited {
                    writeln!(
                        stderr,
                        "  gitkit's hook had been edited since install: the edited hook is kept as {}",
                        edited.display()
                    )?;
                }
                if installed.in_worktree {
                    writeln!(
                        stderr,
                        "  note: core.hooksPath puts hooks inside the working tree; a tool that \
                         regenerates that folder (husky) may drop gitkit's hook: run \
                         `gitkit hooks install` again after it does"
                    )?;
                }
            }
            anyhow::ensure!(
                failed == 0,
                "the hook could not be installed in {failed} repositories"
            );
        }
        HooksCommand::Uninstall(all) => {
            for repo in repositories(&all, dir)? {
                let edited = match hooks::uninstall(&repo)? {
                    Removed::Restored { hook, edited } => {
                        writeln!(
                            stderr,
                            "removed; the original hook is back: {}",
                            hook.display()
                        )?;
                        edited
                    }
                    Removed::Removed { hook, edited } => {
                        writeln!(stderr, "removed: {}", hook.display())?;
                        edited
                    }
                    Removed::NotInstalled => {
                        writeln!(stderr, "not installed in {}", repo.display())?;
                        None
                    }
                };
                if let Some(edited) = edited {
                    writeln!(
                        stderr,
                        "  gitkit's hook had been edited since install: the edited hook is kept as {}",
                        edited.display()
                    )?;
                }
            }
        }
        HooksCommand::Status { json } => {
            let (installed, hook) = hooks::install::is_installed(dir)?;
            let status = hooks::status(&state_dir(dir)?, installed, hook)?;
            let mut stdout = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut stdout, &status)?;
                writeln!(stdout)?;
            } else {
                write_status(&mut stdout, &status)?;
            }
        }
    }
    Ok(())
}

/// `hooks status` as text. What comes from the status file is shown through [`printable`]:
/// anyone who can write the repository can write that file.
fn write_status(out: &mut impl Write, status: &hooks::HookStatus) -> std::io::Result<()> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    writeln!(
        out,
        "hook installed: {} ({})",
        yes_no(status.installed),
        printable(&status.hook.to_string_lossy())
    )?;
    let running = match (&status.worker, status.running) {
        (Some(worker), _) => format!("yes, for {} min (pid {})", worker.seconds / 60, worker.pid),
        (None, running) => yes_no(running).to_string(),
    };
    writeln!(
        out,
        "snapshot running: {running}, pending: {}",
        yes_no(status.pending)
    )?;
    if let Some(worker) = status.worker.as_ref().filter(|w| w.stuck) {
        writeln!(
            out,
            "  that is longer than a snapshot should take: it may be stuck; `kill {}` stops it",
            worker.pid
        )?;
    }
    match &status.record.last_snapshot {
        Some(last) => {
            writeln!(
                out,
                "last snapshot: {} at {}",
                printable(&last.id),
                printable(&last.at)
            )?;
            for warning in &last.warnings {
                writeln!(out, "  warning: {}", printable(warning))?;
            }
        }
        None => writeln!(out, "last snapshot: none")?,
    }
    match &status.record.last_error {
        Some(error) => writeln!(
            out,
            "last error: {} at {}{}",
            printable(&error.message),
            printable(&error.at),
            if status.record.failing {
                ""
            } else {
                " (since succeeded)"
            }
        )?,
        None => writeln!(out, "last error: none")?,
    }
    Ok(())
}

pub fn schedule(args: ScheduleArgs, dir: &Path) -> anyhow::Result<()> {
    let target = match &args.all.all {
        Some(all) => Target::All(absolute(all)?),
        None => Target::Repository(toplevel(dir)?),
    };
    let gitkit = std::env::current_exe().context("cannot tell where gitkit is")?;
    let line = match &args.every {
        Some(every) => {
            let schedule = Schedule::parse(every)
                .map_err(|e| Hinted::new(e, "use minutes that divide an hour (15m, 30m), hours that divide a day (1h, 6h), or 1d"))?;
            let env: Vec<(String, String)> = std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect();
            Some(hooks::schedule::line(schedule, &target, &gitkit, &env)?)
        }
        None => None,
    };
    let crontab = super::crontab_program();
    let changed = hooks::schedule::update(&crontab, &target, line.as_deref())?;
    let mut stderr = std::io::stderr().lock();
    match (&line, changed) {
        (Some(line), true) => writeln!(stderr, "scheduled: {line}")?,
        (Some(_), false) => writeln!(stderr, "already scheduled")?,
        (None, true) => writeln!(stderr, "schedule removed")?,
        (None, false) => writeln!(stderr, "nothing was scheduled")?,
    }
    Ok(())
}

pub fn hook(command: HookCommand, dir: &Path) -> anyhow::Result<()> {
    match command {
        HookCommand::PostCommit => {
            // Git runs hooks at the top of the working tree with GIT_DIR set: open the
            // repository from that, spawning nothing (this runs inside every commit).
            let repo = git::Repository::from_hook_env().context("not in a git repository")?;
            let root = repo.work_tree().unwrap_or_else(|| dir.to_path_buf());
            hooks::post_commit(&repo.git_dir().join(STATE_DIR), &root)
                .context("cannot start the snapshot")?;
        }
        HookCommand::Run => {
            hooks::worker::detach();
            run_worker(dir)?;
        }
        HookCommand::Scheduled(all) => {
            // Like `hooks install --all`: one repository's trouble does not stop the others.
            let mut stderr = std::io::stderr().lock();
            let mut failed = 0;
            for repo in repositories(&all, dir)? {
                let ran = state_dir(&repo).and_then(|state| {
                    hooks::worker::want_snapshot(&state)?;
                    run_worker(&repo)
                });
                if let Err(e) = ran {
                    failed += 1;
                    crate::error::report(&e.context(format!("{}", repo.display())), &mut stderr);
                }
            }
            anyhow::ensure!(
                failed == 0,
                "{failed} repositories could not be snapshotted"
            );
        }
    }
    Ok(())
}

fn run_worker(repo: &Path) -> anyhow::Result<()> {
    let state = state_dir(repo)?;
    // GITKIT_TEST_SETTLE_MS: a test's burst of commits must fall within one settle, however
    // loaded its machine.
    let settle = super::test_knob("GITKIT_TEST_SETTLE_MS", std::time::Duration::from_millis)
        .unwrap_or(hooks::worker::SETTLE);
    hooks::run(&state, settle, || {
        let (outcome, location) = take(repo, &Settings::unattended(), Arc::new(Silent))?;
        let summary = &outcome.summary;
        // Only a new snapshot can make an older one redundant.
        let after = if outcome.unchanged {
            Vec::new()
        } else {
            match forget_after(repo, &location, &summary.workspace) {
                Ok(done) => done.into_iter().collect(),
                Err(e) => vec![format!(
                    "forget failed (the snapshot is fine): {}",
                    crate::text::chain_text(e.as_ref())
                )],
            }
        };
        Ok(hooks::worker::Snapshotted {
            after,
            id: summary.id.clone(),
            commit: summary.commit.clone(),
            warnings: outcome.warnings.iter().map(ToString::to_string).collect(),
            summary: if outcome.unchanged {
                format!("unchanged since {}", summary.id)
            } else {
                format!(
                    "snapshot {} to {location}: {} files, {} new",
                    summary.id,
                    summary.files,
                    DecimalBytes(outcome.new_bytes)
                )
            },
        })
    })?;
    Ok(())
}

/// Applies the keep policy (configured, else the default) to `workspace` after the worker's
/// snapshot, unless `gitkit.keep.auto` is false; what it did, for the log.
fn forget_after(
    repo: &Path,
    location: &crate::store::Location,
    workspace: &str,
) -> anyhow::Result<Option<String>> {
    let Some(policy) = super::forget::hook_policy(repo)? else {
        return Ok(None);
    };
    let now = i64::try_from(crate::time::unix_seconds(super::now())).unwrap_or(i64::MAX);
    let done = super::runtime().block_on(async {
        let store = super::workspace::open(location, None);
        crate::snapshot::retention::forget(&store, workspace, &policy, now, false).await
    })?;
    Ok(Some(format!(
        "forget ({policy}): kept {}, removed {}{}",
        done.snapshots.len() - done.removed,
        done.removed,
        if done.damaged.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable left alone", done.damaged.len())
        }
    )))
}

/// The repositories a command acts on: those under `--all DIR`, else the one containing `dir`.
fn repositories(all: &AllArgs, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    match &all.all {
        Some(root) => {
            let found = hooks::repositories_under(root);
            if found.is_empty() {
                anyhow::bail!("no git repository under {}", root.display());
            }
            Ok(found)
        }
        None => Ok(vec![toplevel(dir)?]),
    }
}

/// The repository containing `dir`, found one way for every use below.
fn repository(dir: &Path) -> anyhow::Result<git::Repository> {
    git::Repository::discover(dir)
        .with_context(|| format!("{} is not in a git repository", dir.display()))
}

fn toplevel(dir: &Path) -> anyhow::Result<PathBuf> {
    repository(dir)?
        .work_tree()
        .with_context(|| format!("{} is a bare repository", dir.display()))
}

fn state_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    Ok(repository(dir)?.git_dir().join(STATE_DIR))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    path.canonicalize()
        .with_context(|| format!("cannot find {}", path.display()))
}
