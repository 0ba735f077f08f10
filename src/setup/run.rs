//! `gitkit setup`: puts every piece in place, from what it was given and what it saved last
//! time, changing only what differs. Run again at every start of an instance.

use std::path::{Path, PathBuf};

use super::gitconfig::{self, IncludeFile};
use super::report::Report;
use super::state::{self, Saved, StateError};
use super::{Layout, files};
use crate::git::{self, GitError};
use crate::github::{self, ssh_config};
use crate::hooks::{self, Schedule, ScheduleError, Target};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("could not write {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("`{0}` is not a schedule cron can keep")]
    BadInterval(String),
    #[error("the workspace root {0} is not a folder")]
    NoWorkspaceRoot(PathBuf),
    #[error(transparent)]
    Schedule(ScheduleError),
    #[error(transparent)]
    Hook(hooks::HookError),
    #[error(transparent)]
    Ssh(#[from] ssh_config::WriteError),
}

/// What the command line gave; `None` keeps the saved choice.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub store: Option<String>,
    pub every: Option<String>,
    pub workspace_root: Option<PathBuf>,
}

pub struct Options<'a> {
    pub choices: Choices,
    pub dry_run: bool,
    /// The bash completion script to install.
    pub bash_completion: &'a str,
    /// Variables a cron job should see (the schedule passes on settings, never credentials).
    pub env: &'a [(String, String)],
}

/// The outcome: the report, and the choices now in force.
pub struct Done {
    pub report: Report,
    pub saved: Saved,
    /// A GitHub key exists under GITKIT_HOME.
    pub has_github_key: bool,
}

pub fn setup(layout: &Layout, options: &Options<'_>) -> Result<Done, SetupError> {
    let mut report = Report::new(options.dry_run);
    let previous = state::load(&layout.gitkit_home)?;
    let mut saved = previous.clone().unwrap_or_default();
    let choices = &options.choices;
    if let Some(store) = &choices.store {
        saved.store = Some(store.clone());
    }
    if let Some(every) = &choices.every {
        Schedule::parse(every).map_err(|_| SetupError::BadInterval(every.clone()))?;
        saved.every = Some(every.clone());
    }
    if let Some(root) = &choices.workspace_root {
        let root = root
            .canonicalize()
            .ok()
            .filter(|r| r.is_dir())
            .ok_or_else(|| SetupError::NoWorkspaceRoot(root.clone()))?;
        saved.workspace_root = Some(root);
    }
    let mut w = Writer {
        report: &mut report,
        dry_run: options.dry_run,
    };

    // The binary every path below names.
    let bin = layout.bin();
    if !same_file(&layout.exe, &bin) {
        let data =
            std::fs::read(&layout.exe).map_err(|e| SetupError::Write(layout.exe.clone(), e))?;
        w.file(&bin, &data, 0o755, "the gitkit binary")?;
    }

    // `gitkit` on PATH: the link install.sh makes, gone with the rest of the home folder.
    let link = layout.path_link();
    match std::fs::read_link(&link) {
        Ok(target) if target == bin => {}
        Err(_) if std::fs::symlink_metadata(&link).is_err() => {
            if !options.dry_run {
                let dir = link.parent().expect("a link has a folder");
                std::fs::create_dir_all(dir)
                    .and_then(|()| std::os::unix::fs::symlink(&bin, &link))
                    .map_err(|e| SetupError::Write(link.clone(), e))?;
                saved.added.path_link = true;
            }
            w.report
                .changed(format!("{} -> {}", link.display(), bin.display()));
        }
        // Another gitkit (or something else) of the user's: left alone.
        _ => {}
    }

    warn_about_git(&mut w, layout)?;

    // init.templateDir, unless the user has their own.
    let include = layout.include_file();
    let theirs: Vec<_> = git::config::get_all_with_origin(&layout.home, "init.templatedir")?
        .into_iter()
        .filter(|e| e.origin != format!("file:{}", include.display()))
        .collect();
    let template_dir = if let Some(theirs) = theirs.first() {
        w.report.warn(
            format!(
                "init.templateDir is already set ({}, from {}): new clones will not get gitkit's hook",
                theirs.value, theirs.origin
            ),
            format!(
                "copy {} into {}/hooks/, or run `gitkit hooks install` in each new clone",
                layout.template_hook().display(),
                theirs.value
            ),
        );
        None
    } else {
        let hook = hooks::install::script(&bin).map_err(SetupError::Hook)?;
        w.file(
            &layout.template_hook(),
            hook.as_bytes(),
            0o755,
            "the hook template for new clones",
        )?;
        Some(layout.template_dir())
    };

    // The gitkit-owned git config file, and the one line that includes it.
    let text = IncludeFile {
        gitkit: &bin,
        store: saved.store.as_deref(),
        template_dir: template_dir.as_deref(),
    }
    .text();
    w.file(
        &include,
        text.as_bytes(),
        0o644,
        "git config for CodeCommit",
    )?;
    let include_value = include.to_string_lossy().into_owned();
    let included = git::config::global_get_all(&layout.home, "include.path")?;
    if !included.contains(&include_value) {
        if !options.dry_run {
            saved.added.gitconfig_created = !layout.global_gitconfig.exists();
            saved.added.include_section_created =
                !git::config::global_has_section(&layout.home, "include")?;
            git::config::global_add(&layout.home, "include.path", &include_value)?;
        }
        w.report.changed(format!(
            "{}: include.path = {include_value}",
            layout.global_gitconfig.display()
        ));
    }

    // Shell completion, and the line in ~/.bashrc that loads it.
    w.file(
        &layout.bash_completion(),
        options.bash_completion.as_bytes(),
        0o644,
        "bash completion",
    )?;
    let line = files::bashrc_line(&layout.bash_completion());
    if files::add_line(&layout.bashrc(), &line, options.dry_run)
        .map_err(|e| SetupError::Write(layout.bashrc(), e))?
    {
        saved.added.bashrc = true;
        w.report.changed(format!(
            "{}: loads gitkit's completion",
            layout.bashrc().display()
        ));
    }

    // Hooks in every repository under the workspace root, and the schedule.
    let root = super::workspace_root(layout, Some(&saved));
    match &root {
        None => w.report.note(
            "no workspace root (no ~/SageMaker, no --workspace-root): no repository hooks \
             installed; new clones still get the hook",
        ),
        Some(root) => {
            for repo in hooks::repositories_under(root) {
                let was = hooks::install::is_installed(&repo).is_ok_and(|(was, _)| was);
                if options.dry_run {
                    if !was {
                        w.report
                            .changed(format!("post-commit hook in {}", repo.display()));
                    }
                    continue;
                }
                // One repository's trouble does not stop the others, nor the rest of setup.
                let installed = match hooks::install(&repo, &bin) {
                    Ok(installed) => installed,
                    Err(e) => {
                        w.report.warn(
                            format!(
                                "no hook in {}: {}",
                                repo.display(),
                                crate::text::chain_text(&e)
                            ),
                            format!(
                                "fix that, then `gitkit hooks install -C {}`",
                                repo.display()
                            ),
                        );
                        continue;
                    }
                };
                if !installed.unchanged {
                    w.report
                        .changed(format!("post-commit hook: {}", installed.hook.display()));
                }
                if !was && !saved.added.hooks.contains(&repo) {
                    saved.added.hooks.push(repo);
                }
            }
        }
    }
    if let Some(every) = &saved.every {
        match &root {
            None => w.report.warn(
                "--every needs a workspace root to snapshot",
                "gitkit setup --workspace-root DIR",
            ),
            Some(root) => {
                let schedule =
                    Schedule::parse(every).map_err(|_| SetupError::BadInterval(every.clone()))?;
                let target = Target::All(root.clone());
                let line = hooks::schedule::line(schedule, &target, &bin, options.env)
                    .map_err(SetupError::Schedule)?;
                let result = if options.dry_run {
                    Ok(true)
                } else {
                    hooks::schedule::update(&layout.crontab, &target, Some(&line))
                };
                match result {
                    Ok(changed) => {
                        saved.added.schedule = Some(root.clone());
                        if changed {
                            w.report.changed(format!("crontab: {line}"));
                        }
                    }
                    Err(ScheduleError::NoCrontab(_)) => w.report.warn(
                        "no crontab on this machine (SageMaker Studio has none): no periodic \
                         snapshots; the commit hook still snapshots after every commit",
                        "install cron, or leave out --every",
                    ),
                    Err(e) => return Err(SetupError::Schedule(e)),
                }
            }
        }
    }

    // GitHub over SSH: put back what a restart removed.
    let key = github::ssh_dir(&layout.gitkit_home).join("id_ed25519");
    let has_github_key = key.exists();
    if has_github_key {
        let config = github::ssh_dir(&layout.gitkit_home).join("config");
        let user_config = layout.home.join(".ssh/config");
        if config.exists() {
            if files::add_ssh_include(&user_config, &config, options.dry_run)
                .map_err(|e| SetupError::Write(user_config.clone(), e))?
            {
                saved.added.ssh_include = true;
                w.report.changed(format!(
                    "{}: Include {}",
                    user_config.display(),
                    config.display()
                ));
            }
        } else if !options.dry_run {
            let keys: Vec<String> = ssh_config::GITHUB_HOST_KEYS
                .iter()
                .map(|k| k.to_string())
                .collect();
            let had_include = std::fs::read_to_string(&user_config)
                .is_ok_and(|t| t.contains(&config.display().to_string()));
            let written = ssh_config::write(
                &github::ssh_dir(&layout.gitkit_home),
                &user_config,
                &ssh_config::github_hosts(),
                &key,
                &keys,
            )?;
            if !had_include {
                saved.added.ssh_include = true;
            }
            for path in written.changed {
                w.report
                    .changed(format!("{} (GitHub over SSH)", path.display()));
            }
        }
    }

    // The choices, last: a run that failed before here is run again in full.
    let text = state::text(&saved);
    w.file(
        &layout.gitkit_home.join(state::FILE),
        text.as_bytes(),
        0o644,
        "setup's saved choices",
    )?;
    Ok(Done {
        report,
        saved,
        has_github_key,
    })
}

/// The warnings about git itself and the helpers it would run.
fn warn_about_git(w: &mut Writer<'_>, layout: &Layout) -> Result<(), SetupError> {
    match git::version(&layout.home)? {
        Some(v) if v < (2, 27) => w.report.warn(
            format!(
                "git {}.{} does not match `*` in credential URLs: the helper will not run",
                v.0, v.1
            ),
            "install git 2.27 or later",
        ),
        Some(v) if v < (2, 40) => w.report.warn(
            format!(
                "git {}.{} ignores password_expiry_utc: a caching helper may keep an expired password",
                v.0, v.1
            ),
            "install git 2.40 or later",
        ),
        _ => {}
    }
    let entries = git::config::credential_entries(&layout.home)?;
    for entry in &entries {
        let unscoped = entry.key == "credential.helper";
        if unscoped && gitconfig::is_aws_helper(&entry.value) {
            w.report.warn(
                format!(
                    "a global credential helper runs `aws codecommit credential-helper` for every \
                     host, GitHub included ({})",
                    entry.origin
                ),
                format!(
                    "git config --global --unset-all credential.helper '{}' (gitkit answers for \
                     CodeCommit)",
                    regex_literal(&entry.value)
                ),
            );
        }
    }
    let url = "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/r";
    for helper in gitconfig::helper_chain(&entries, url) {
        if gitconfig::keeps_passwords(&helper.command) {
            w.report.warn(
                format!(
                    "the `{}` helper ({}) would keep CodeCommit passwords",
                    helper.command, helper.origin
                ),
                "scope it to the hosts it is for, e.g. credential.https://github.com.helper",
            );
        }
    }
    Ok(())
}

fn regex_literal(value: &str) -> String {
    value.replace('\'', r"'\''")
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Writes files only when their content differs, and reports each change.
struct Writer<'a> {
    report: &'a mut Report,
    dry_run: bool,
}

impl Writer<'_> {
    fn file(&mut self, path: &Path, data: &[u8], mode: u32, what: &str) -> Result<(), SetupError> {
        if files::same_content(path, data, mode) {
            return Ok(());
        }
        if !self.dry_run {
            files::write(path, data, mode).map_err(|e| SetupError::Write(path.to_path_buf(), e))?;
        }
        self.report.changed(format!("{} ({what})", path.display()));
        Ok(())
    }
}
