//! `gitkit lifecycle`: the SageMaker lifecycle scripts, the CloudFormation template, and the
//! restore that on-create starts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::{LifecycleCommand, LifecycleTarget};
use crate::error::Hinted;
use crate::setup::{Report, deploy, lifecycle, state};
use crate::snapshot::{self, Silent};
use crate::store::{self, Location};

pub fn lifecycle(command: LifecycleCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match command {
        LifecycleCommand::OnStart { target } => {
            let (user, home, gitkit_home) = target_of(&target)?;
            let script = lifecycle::on_start(&lifecycle::Target {
                user: &user,
                home: &home,
                gitkit_home: &gitkit_home,
            });
            write_script(&mut stdout, &script)?;
        }
        LifecycleCommand::OnCreate { store, target } => {
            let (user, home, gitkit_home) = target_of(&target)?;
            let layout = super::setup::layout()?;
            let saved = state::load(&layout.gitkit_home)?;
            let store = store
                .or_else(|| saved.and_then(|s| s.store))
                .ok_or_else(|| {
                    Hinted::new(
                        anyhow::anyhow!(
                            "on-create fetches gitkit from an S3 store, and none is set"
                        ),
                        "gitkit setup --store s3://BUCKET/PREFIX (or pass --store)",
                    )
                })?;
            let location = Location::parse(&store)?;
            if !matches!(location, Location::S3 { .. }) {
                return Err(Hinted::new(
                    anyhow::anyhow!("{store} is not an S3 store"),
                    "on-create fetches the binary with the AWS CLI: use --store s3://BUCKET/PREFIX",
                )
                .into());
            }
            let bin = if layout.bin().exists() {
                layout.bin()
            } else {
                layout.exe.clone()
            };
            let data =
                std::fs::read(&bin).with_context(|| format!("cannot read {}", bin.display()))?;
            let mut report = Report::new(false);
            let (url, sha) = super::setup::upload_binary(&location, &data, false, &mut report)?;
            report.write_to(std::io::stderr().lock())?;
            let script = lifecycle::on_create(
                &lifecycle::Target {
                    user: &user,
                    home: &home,
                    gitkit_home: &gitkit_home,
                },
                &lifecycle::Fetch {
                    store: &location.to_string(),
                    binary_url: &url,
                    sha256: &sha,
                },
            );
            write_script(&mut stdout, &script)?;
        }
        LifecycleCommand::Cloudformation => stdout.write_all(deploy::template().as_bytes())?,
        LifecycleCommand::Restore { into, store, log } => restore_all(&into, store, log)?,
    }
    Ok(())
}

fn write_script(out: &mut impl Write, script: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        script.len() <= lifecycle::MAX_SCRIPT_CHARS,
        "the script is {} characters; SageMaker takes {} at most",
        script.len(),
        lifecycle::MAX_SCRIPT_CHARS
    );
    out.write_all(script.as_bytes())?;
    Ok(())
}

fn target_of(target: &LifecycleTarget) -> anyhow::Result<(String, String, String)> {
    let user = match &target.user {
        Some(user) => user.clone(),
        None => current_user()?,
    };
    let home = target.home.clone().unwrap_or_else(crate::home::home_dir);
    let gitkit_home = target
        .gitkit_home
        .clone()
        .unwrap_or_else(crate::home::gitkit_home);
    let absolute = |p: PathBuf| -> anyhow::Result<String> {
        anyhow::ensure!(p.is_absolute(), "{} is not an absolute path", p.display());
        Ok(p.to_string_lossy().into_owned())
    };
    Ok((user, absolute(home)?, absolute(gitkit_home)?))
}

fn current_user() -> anyhow::Result<String> {
    let output = std::process::Command::new("id")
        .arg("-un")
        .output()
        .context("cannot run `id -un`")?;
    let user = String::from_utf8_lossy(&output.stdout).trim().to_string();
    anyhow::ensure!(
        output.status.success() && !user.is_empty(),
        "cannot tell the current user; pass --user"
    );
    Ok(user)
}

/// Restores the latest snapshot of each workspace in the store into `into/NAME`, where that
/// folder is absent. Each goes to a hidden folder first and is renamed into place when
/// complete, so that an interrupted restore is never taken for a finished one.
fn restore_all(into: &Path, store: Option<String>, log: Option<PathBuf>) -> anyhow::Result<()> {
    let layout = super::setup::layout()?;
    let saved = state::load(&layout.gitkit_home)?;
    let location = store::choose(
        store.as_deref(),
        None,
        saved.as_ref().and_then(|s| s.store.as_deref()),
        &layout.gitkit_home,
    )?;
    let mut log_file = match &log {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => None,
    };
    let mut say = |line: String| {
        let _ = writeln!(std::io::stderr(), "{line}");
        if let Some(file) = &mut log_file {
            let _ = writeln!(file, "{line}");
        }
    };
    std::fs::create_dir_all(into).with_context(|| format!("cannot create {}", into.display()))?;
    let result = super::runtime().block_on(async {
        let store = super::workspace::open(&location, None);
        let names = snapshot::workspaces(&store).await?;
        let mut failed = 0;
        for name in names {
            // The name becomes a folder: one safe segment only.
            if snapshot::id::check_workspace(&name).is_err() {
                say(format!(
                    "skipped workspace `{name}`: not a safe folder name"
                ));
                continue;
            }
            let target = into.join(&name);
            if target.exists() {
                say(format!("kept {}: it is already there", target.display()));
                continue;
            }
            let partial = into.join(format!(".{name}.gitkit-restoring"));
            let _ = std::fs::remove_dir_all(&partial);
            let outcome = async {
                let (snapshot, damaged) =
                    snapshot::find_to_restore(&store, &name, "latest").await?;
                for reason in damaged {
                    say(format!("skipped a damaged snapshot of `{name}`: {reason}"));
                }
                let options = snapshot::RestoreOptions {
                    force: false,
                    special_bits: false,
                    paths: Vec::new(),
                    batch: snapshot::RESTORE_BATCH,
                };
                snapshot::restore(&store, &snapshot, &partial, &options, Arc::new(Silent)).await?;
                std::fs::rename(&partial, &target)?;
                Ok::<_, anyhow::Error>(snapshot.summary().id.clone())
            }
            .await;
            match outcome {
                Ok(id) => say(format!("restored {} from snapshot {id}", target.display())),
                Err(e) => {
                    failed += 1;
                    say(format!(
                        "could not restore `{name}`: {}",
                        crate::text::chain_text(e.as_ref())
                    ));
                }
            }
        }
        Ok::<_, anyhow::Error>(failed)
    });
    match result {
        Ok(0) => {
            say(format!("restore finished from {location}"));
            Ok(())
        }
        Ok(failed) => {
            say(format!("restore finished, {failed} workspaces failed"));
            anyhow::bail!("{failed} workspaces could not be restored")
        }
        Err(e) => {
            say(format!(
                "restore failed: {}",
                crate::text::chain_text(e.as_ref())
            ));
            Err(e)
        }
    }
}
