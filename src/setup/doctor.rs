//! `gitkit doctor`: every link, one check each. A part that was never set up is a warning that
//! names the command; once setup has run, anything it installed that is missing or broken is a
//! failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use super::gitconfig::{self, helper_command};
use super::state::Saved;
use super::{Layout, git};
use crate::github::{self, ssh_config};
use crate::home::Source;
use crate::hooks;
use crate::store::{AnyStore, Store};

/// How long the store may take for each request doctor makes.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
}

impl Check {
    fn ok(check: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status: Status::Ok,
            message: message.into(),
            hint: None,
        }
    }

    fn bad(
        status: Status,
        check: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            check: check.into(),
            status,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// What doctor looks at besides the layout.
pub struct Input<'a> {
    pub layout: &'a Layout,
    pub home_source: Source,
    /// Setup's saved state; `None` when setup never ran.
    pub saved: Option<&'a Saved>,
    /// The AWS credential check: the provider's name, or the error and its fix.
    pub credentials: Result<String, (String, String)>,
    pub region: Option<String>,
    /// Whether a GitHub key is registered, when a token was at hand.
    pub github_registered: Option<Result<bool, String>>,
}

/// The local checks, the ones that need no network.
pub fn local_checks(input: &Input<'_>) -> Vec<Check> {
    let layout = input.layout;
    let set_up = input.saved.is_some();
    // Missing after setup: a failure; never set up: a warning naming the command.
    let missing = if set_up { Status::Fail } else { Status::Warn };
    let mut checks = Vec::new();

    checks.push(match input.home_source {
        Source::Legacy => Check::bad(
            Status::Warn,
            "gitkit home",
            format!(
                "{} is the old default: it does not survive a notebook instance's restart",
                layout.gitkit_home.display()
            ),
            "mv ~/.gitkit ~/SageMaker/.gitkit && gitkit setup (or set GITKIT_HOME)",
        ),
        source => Check::ok(
            "gitkit home",
            format!(
                "{} ({})",
                layout.gitkit_home.display(),
                match source {
                    Source::Env => "GITKIT_HOME",
                    Source::SageMaker => "on the persistent ~/SageMaker",
                    _ => "XDG data folder",
                }
            ),
        ),
    });

    checks.push(match input.saved {
        Some(saved) => Check::ok(
            "setup",
            format!(
                "set up (store: {}, schedule: {}, workspace root: {})",
                saved.store.as_deref().unwrap_or("default"),
                saved.every.as_deref().unwrap_or("none"),
                saved
                    .workspace_root
                    .as_deref()
                    .map_or("~/SageMaker if present".into(), |p| p.display().to_string())
            ),
        ),
        None => Check::bad(
            Status::Warn,
            "setup",
            "gitkit setup has not run here",
            "gitkit setup",
        ),
    });

    let bin = layout.bin();
    checks.push(if is_executable(&bin) {
        Check::ok("binary", bin.display().to_string())
    } else {
        Check::bad(
            missing,
            "binary",
            format!(
                "{} is missing: hooks, helper and cron name it",
                bin.display()
            ),
            "run `gitkit setup` from a gitkit binary (./install.sh installs one)",
        )
    });

    checks.push(match git::version(&layout.home) {
        Ok(Some(v)) if v < (2, 27) => Check::bad(
            Status::Fail,
            "git",
            format!("git {}.{} cannot match CodeCommit URLs with `*`", v.0, v.1),
            "install git 2.27 or later",
        ),
        Ok(Some(v)) if v < (2, 40) => Check::bad(
            Status::Warn,
            "git",
            format!("git {}.{} ignores password_expiry_utc", v.0, v.1),
            "install git 2.40 or later",
        ),
        Ok(Some(v)) => Check::ok("git", format!("git {}.{}", v.0, v.1)),
        Ok(None) | Err(_) => Check::bad(
            Status::Fail,
            "git",
            "could not run `git --version`",
            "install git",
        ),
    });

    let include = layout.include_file();
    let included = git::global_get_all(&layout.home, "include.path")
        .unwrap_or_default()
        .contains(&include.to_string_lossy().into_owned());
    checks.push(if included && include.exists() {
        Check::ok(
            "git config",
            format!(
                "{} includes {}",
                layout.global_gitconfig.display(),
                include.display()
            ),
        )
    } else {
        Check::bad(
            missing,
            "git config",
            format!(
                "{} does not include {}{}",
                layout.global_gitconfig.display(),
                include.display(),
                if include.exists() { "" } else { " (missing)" }
            ),
            "gitkit setup",
        )
    });

    let helper = helper_check(layout, missing);
    let helper_ok = helper.status == Status::Ok;
    checks.push(helper);
    if helper_ok && input.credentials.is_ok() {
        checks.push(fill_check(layout));
    }
    checks.extend(credential_checks(input));
    checks.extend(github_checks(input));
    checks.extend(hook_checks(input, missing));
    checks.push(schedule_check(input));
    checks
}

fn helper_check(layout: &Layout, missing: Status) -> Check {
    let url = "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/r";
    let entries = git::credential_entries(&layout.home).unwrap_or_default();
    let chain = gitconfig::helper_chain(&entries, url);
    let names: Vec<&str> = chain.iter().map(|h| h.command.as_str()).collect();
    let ours = helper_command(&layout.bin());
    let text = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(" -> ")
    };
    if names.first() == Some(&ours.as_str()) {
        if let Some(keeper) = chain
            .iter()
            .find(|h| gitconfig::keeps_passwords(&h.command))
        {
            return Check::bad(
                Status::Warn,
                "credential helper",
                format!(
                    "for CodeCommit git runs {text}: `{}` ({}) keeps the passwords",
                    keeper.command, keeper.origin
                ),
                "scope that helper to its own hosts, e.g. credential.https://github.com.helper",
            );
        }
        if !is_executable(&layout.bin()) {
            return Check::bad(
                Status::Fail,
                "credential helper",
                format!("for CodeCommit git runs {text}, which is missing"),
                "gitkit setup",
            );
        }
        Check::ok(
            "credential helper",
            format!("for CodeCommit git runs {text}"),
        )
    } else {
        Check::bad(
            missing,
            "credential helper",
            format!("for CodeCommit git runs {text}, not gitkit first"),
            "gitkit setup",
        )
    }
}

/// What git really gets for a CodeCommit URL: `git credential fill`, end to end.
fn fill_check(layout: &Layout) -> Check {
    let answer = std::process::Command::new("git")
        .current_dir(&layout.home)
        .args(["credential", "fill"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("piped");
            stdin.write_all(
                b"protocol=https\nhost=git-codecommit.us-east-1.amazonaws.com\npath=v1/repos/gitkit-doctor\n\n",
            )?;
            drop(stdin);
            child.wait_with_output()
        });
    // Only whether a password came back is looked at; the answer itself is dropped unread.
    let answered = answer.as_ref().is_ok_and(|out| {
        out.status.success()
            && out
                .stdout
                .split(|&b| b == b'\n')
                .any(|line| line.starts_with(b"password=") && line.len() > 9)
    });
    if answered {
        Check::ok(
            "git credential fill",
            "git gets a signed password for CodeCommit",
        )
    } else {
        let why = answer
            .map(|out| String::from_utf8_lossy(&out.stderr).trim().to_string())
            .unwrap_or_else(|e| e.to_string());
        Check::bad(
            Status::Fail,
            "git credential fill",
            format!("git got no password for CodeCommit: {why}"),
            "run `gitkit -v credential get` by hand to see why, or `gitkit setup`",
        )
    }
}

fn credential_checks(input: &Input<'_>) -> Vec<Check> {
    let mut checks = vec![match &input.credentials {
        Ok(source) => Check::ok("aws credentials", format!("found ({source})")),
        Err((message, hint)) => Check::bad(
            Status::Fail,
            "aws credentials",
            message.clone(),
            hint.clone(),
        ),
    }];
    checks.push(match &input.region {
        Some(region) => Check::ok("aws region", region.clone()),
        None => Check::bad(
            Status::Warn,
            "aws region",
            "no region: CodeCommit's comes from its URL, but an S3 store needs one",
            "set AWS_REGION, or `region` in ~/.aws/config",
        ),
    });
    checks
}

/// The store: written and read back, each step within [`STORE_TIMEOUT`].
pub async fn store_check(name: &str, store: &AnyStore, host: &str) -> Check {
    let key = format!("doctor/probe-{host}");
    let data = Bytes::from_static(b"gitkit doctor\n");
    let attempt = async {
        tokio::time::timeout(STORE_TIMEOUT, store.put(&key, data.clone()))
            .await
            .map_err(|_| format!("writing took over {}s", STORE_TIMEOUT.as_secs()))?
            .map_err(|e| crate::error::chain_text(&e))?;
        let back = tokio::time::timeout(STORE_TIMEOUT, store.get(&key))
            .await
            .map_err(|_| format!("reading took over {}s", STORE_TIMEOUT.as_secs()))?
            .map_err(|e| crate::error::chain_text(&e))?;
        if back != data {
            return Err("what was read back differs from what was written".to_string());
        }
        Ok::<_, String>(())
    };
    match attempt.await {
        Ok(()) => Check::ok("store", format!("{name}: writable")),
        Err(why) => Check::bad(
            Status::Fail,
            "store",
            format!("{name}: {why}"),
            "check the network, the credentials and the bucket; or choose another with `gitkit setup --store URL`",
        ),
    }
}

fn github_checks(input: &Input<'_>) -> Vec<Check> {
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

/// The workspace root setup uses.
pub fn workspace_root(layout: &Layout, saved: Option<&Saved>) -> Option<PathBuf> {
    saved.and_then(|s| s.workspace_root.clone()).or_else(|| {
        let default = layout.home.join("SageMaker");
        default
            .is_dir()
            .then(|| default.canonicalize().unwrap_or(default))
    })
}

fn hook_checks(input: &Input<'_>, missing: Status) -> Vec<Check> {
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

fn schedule_check(input: &Input<'_>) -> Check {
    let every = input.saved.and_then(|s| s.every.as_deref());
    let crontab = std::process::Command::new("crontab").arg("-l").output();
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

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_binary_a_hook_names() {
        let hook = crate::hooks::install::script(std::path::Path::new("/g/it's/gitkit"));
        assert_eq!(super::hook_binary(&hook).as_deref(), Some("/g/it's/gitkit"));
    }
}
