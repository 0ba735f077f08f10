//! `gitkit forget`, and the keep policy as the flags and git config give it (which `snapshots`
//! and the hook's worker use too).

use std::io::Write;
use std::path::Path;

use super::snapshot::{warn_damaged, write_judged};
use super::workspace::{location, open};
use crate::cli::{ForgetArgs, KeepArgs};
use crate::error::Hinted;
use crate::snapshot::policy::Policy;
use crate::snapshot::{self, Workspace};

/// A policy and where it came from, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Chosen {
    pub policy: Policy,
    pub source: &'static str,
}

/// The policy the `--keep-*` flags give; without any flag, the one git config gives (as seen
/// from `dir`: the repository's, else the global one); `None` when neither gives one.
pub fn chosen_policy(keep: &KeepArgs, dir: &Path) -> anyhow::Result<Option<Chosen>> {
    if let Some(policy) = flags_policy(keep) {
        return Ok(Some(Chosen {
            policy,
            source: "the --keep-* flags",
        }));
    }
    let policy = configured_policy(dir)?;
    Ok((!policy.is_empty()).then_some(Chosen {
        policy,
        source: "git config gitkit.keep.*",
    }))
}

/// The policy of the flags, when any is given.
fn flags_policy(keep: &KeepArgs) -> Option<Policy> {
    let KeepArgs {
        keep_last,
        keep_hourly,
        keep_daily,
        keep_weekly,
        keep_monthly,
        keep_within,
        keep_within_hourly,
        keep_within_daily,
        keep_within_weekly,
        keep_within_monthly,
    } = keep.clone();
    let any = [
        keep_last,
        keep_hourly,
        keep_daily,
        keep_weekly,
        keep_monthly,
    ]
    .iter()
    .any(Option::is_some)
        || [
            keep_within,
            keep_within_hourly,
            keep_within_daily,
            keep_within_weekly,
            keep_within_monthly,
        ]
        .iter()
        .any(Option::is_some);
    any.then(|| Policy {
        last: keep_last.unwrap_or(0),
        hourly: keep_hourly.unwrap_or(0),
        daily: keep_daily.unwrap_or(0),
        weekly: keep_weekly.unwrap_or(0),
        monthly: keep_monthly.unwrap_or(0),
        within: keep_within,
        within_hourly: keep_within_hourly,
        within_daily: keep_within_daily,
        within_weekly: keep_within_weekly,
        within_monthly: keep_within_monthly,
    })
}

/// `gitkit.keep.*` as git config gives it from `dir` (empty when none is set).
pub fn configured_policy(dir: &Path) -> anyhow::Result<Policy> {
    let entries = keep_entries(dir)?;
    Ok(Policy::from_config(&entries).map_err(|e| {
        Hinted::new(
            e,
            "fix it with `git config gitkit.keep.KEY VALUE`, or remove it with `git config --unset`",
        )
    })?)
}

fn keep_entries(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    crate::git::config::get_regexp(Some(dir), r"^gitkit\.keep\.")
        .map_err(|e| anyhow::Error::from(e).context("cannot read git config gitkit.keep.*"))
}

/// What the hook's worker applies after a snapshot of the repository at `dir`: the configured
/// policy, else [`Policy::hook_default`]; `None` when `gitkit.keep.auto` is false.
pub fn hook_policy(dir: &Path) -> anyhow::Result<Option<Policy>> {
    let entries = keep_entries(dir)?;
    let auto = entries
        .iter()
        .rev()
        .find(|(key, _)| key == "gitkit.keep.auto")
        .map(|(_, value)| value.as_str());
    match auto.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "yes" | "on" | "1" | "") => {}
        Some("false" | "no" | "off" | "0") => return Ok(None),
        Some(other) => anyhow::bail!(
            "git config gitkit.keep.auto is `{}`, which is not true or false",
            other.escape_debug()
        ),
    }
    let policy = Policy::from_config(&entries)?;
    Ok(Some(if policy.is_empty() {
        Policy::hook_default()
    } else {
        policy
    }))
}

pub fn forget(args: ForgetArgs, dir: &Path) -> anyhow::Result<()> {
    let chosen = chosen_policy(&args.keep, dir)?.ok_or_else(|| {
        Hinted::new(
            anyhow::anyhow!("no keep policy: give --keep-* flags, or set git config gitkit.keep.*"),
            "for example `gitkit forget --keep-within 48h --keep-within-daily 30d`, or \
             `git config gitkit.keep.withinDaily 30d`; --dry-run shows what would go",
        )
    })?;
    if chosen.policy.is_empty() {
        return Err(Hinted::new(
            anyhow::anyhow!(
                "the policy of {} keeps nothing: refusing to remove every snapshot",
                chosen.source
            ),
            "give a count above 0 or a duration, such as --keep-last 1",
        )
        .into());
    }
    let workspace = Workspace::discover(dir).ok();
    let location = location(args.store.store.as_deref(), workspace.as_ref(), dir)?;
    let named = match (args.all, args.workspace.clone()) {
        (true, _) => None,
        (false, Some(name)) => Some(name),
        (false, None) => Some(workspace.map(|w| w.name).ok_or_else(|| {
            Hinted::new(
                anyhow::anyhow!("{} is not inside a git repository", dir.display()),
                "name the workspace with --workspace NAME, or give --all for every workspace",
            )
        })?),
    };
    let now = i64::try_from(crate::time::unix_seconds(super::now())).unwrap_or(i64::MAX);
    let outcomes = super::runtime().block_on(async {
        let store = open(&location, args.store.profile.clone());
        let workspaces = match named {
            Some(name) => vec![name],
            None => snapshot::workspaces(&store).await?,
        };
        let mut outcomes = Vec::new();
        for workspace in workspaces {
            let outcome =
                snapshot::retention::forget(&store, &workspace, &chosen.policy, now, args.dry_run)
                    .await?;
            outcomes.push(outcome);
        }
        Ok::<_, anyhow::Error>(outcomes)
    })?;
    let mut stderr = std::io::stderr().lock();
    for outcome in &outcomes {
        warn_damaged(&outcome.damaged)?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &outcomes)?;
        writeln!(stdout)?;
    }
    if outcomes.iter().all(|o| o.snapshots.is_empty()) {
        writeln!(stderr, "nothing to forget in {location}")?;
        return Ok(());
    }
    if !args.json {
        let judged: Vec<_> = outcomes.iter().flat_map(|o| o.snapshots.clone()).collect();
        write_judged(&mut stdout, &judged)?;
    }
    writeln!(stderr, "policy ({}): {}", chosen.source, chosen.policy)?;
    for outcome in outcomes.iter().filter(|o| !o.snapshots.is_empty()) {
        let kept = outcome.snapshots.len() - outcome.removed;
        let what = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        writeln!(
            stderr,
            "`{}`: kept {kept}, {what} {} snapshots{}",
            outcome.workspace,
            outcome.removed,
            if outcome.damaged.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} that cannot be read left as they are)",
                    outcome.damaged.len()
                )
            },
        )?;
    }
    if args.dry_run {
        writeln!(stderr, "dry run: nothing was removed")?;
    } else if outcomes.iter().any(|o| o.removed > 0) {
        writeln!(
            stderr,
            "the data only they used stays in the store until `gitkit prune`"
        )?;
    }
    Ok(())
}
