//! `gitkit doctor`: every link, one check each. A part that was never set up is a warning that
//! names the command; once setup has run, anything it installed that is missing or broken is a
//! failure.

mod github;
mod workspace;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use super::Layout;
use super::gitconfig::{self, helper_command};
use super::state::Saved;
use crate::git;
use crate::home::Source;
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
    let included = git::config::global_get_all(&layout.home, "include.path")
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
    checks.extend(github::checks(input));
    checks.extend(workspace::hook_checks(input, missing));
    checks.push(workspace::schedule_check(input));
    checks
}

fn helper_check(layout: &Layout, missing: Status) -> Check {
    let url = "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/r";
    let entries = git::config::credential_entries(&layout.home).unwrap_or_default();
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
    let answer = crate::git::credential_fill(
        &layout.home,
        b"protocol=https\nhost=git-codecommit.us-east-1.amazonaws.com\npath=v1/repos/gitkit-doctor\n\n",
    );
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
            .map_err(|e| crate::text::chain_text(&e))?;
        let back = tokio::time::timeout(STORE_TIMEOUT, store.get(&key))
            .await
            .map_err(|_| format!("reading took over {}s", STORE_TIMEOUT.as_secs()))?
            .map_err(|e| crate::text::chain_text(&e))?;
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

pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
