//! `gitkit snapshot`, `gitkit snapshots` and `gitkit restore`.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

use indicatif::DecimalBytes;

use super::workspace::{Settings, location, open, take};
use crate::cli::{RestoreArgs, SnapshotArgs, SnapshotsArgs};
use crate::error::Hinted;
use crate::progress_bar;
use crate::snapshot::{self, Summary, Workspace};
use crate::store::{AnyStore, Store};
use crate::text::printable;

pub fn snapshot(args: SnapshotArgs, dir: &Path) -> anyhow::Result<()> {
    let progress = progress_bar::for_terminal("snapshot");
    let settings = Settings {
        store: args.store.store.clone(),
        profile: args.store.profile.clone(),
        include_ignored: args.include_ignored,
    };
    let (outcome, location) = take(dir, &settings, progress)?;
    let summary = &outcome.summary;
    let mut stderr = std::io::stderr().lock();
    for warning in &outcome.warnings {
        writeln!(stderr, "warning: {warning}")?;
    }
    if outcome.unchanged {
        writeln!(
            stderr,
            "unchanged since snapshot {} of {}",
            summary.id, summary.time
        )?;
    } else {
        writeln!(
            stderr,
            "snapshot {} of `{}` in {}: {} files, {} ({} new in {} packs), {:.2}s",
            summary.id,
            summary.workspace,
            location,
            summary.files,
            DecimalBytes(summary.bytes),
            DecimalBytes(outcome.new_bytes),
            outcome.new_packs,
            outcome.seconds,
        )?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut stdout, &outcome)?;
        writeln!(stdout)?;
    } else {
        writeln!(stdout, "{}", summary.id)?;
    }
    Ok(())
}

pub fn snapshots(args: SnapshotsArgs, dir: &Path) -> anyhow::Result<()> {
    let workspace = Workspace::discover(dir).ok();
    let location = location(args.store.store.as_deref(), workspace.as_ref(), dir)?;
    let named = args.workspace.clone().or_else(|| workspace.map(|w| w.name));
    let summaries = super::runtime().block_on(async {
        let store = open(&location, args.store.profile.clone());
        let workspaces = match named {
            Some(name) => vec![name],
            None => snapshot::workspaces(&store).await?,
        };
        snapshot::list(&store, &workspaces)
            .await
            .map_err(anyhow::Error::from)
    })?;
    warn_damaged(&summaries.damaged)?;
    let summaries = summaries.summaries;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &summaries)?;
        writeln!(stdout)?;
    } else {
        write_table(&mut stdout, &summaries)?;
    }
    Ok(())
}

pub fn restore(args: RestoreArgs, dir: &Path) -> anyhow::Result<()> {
    let paths = super::browse::parse_paths(&args.paths)?;
    let workspace = Workspace::discover(dir).ok();
    let location = location(args.store.store.as_deref(), workspace.as_ref(), dir)?;
    let target = args.to.clone();
    let outcome = super::runtime().block_on(async {
        let store = open(&location, args.store.profile.clone());
        let name = match args.workspace.clone().or_else(|| workspace.map(|w| w.name)) {
            Some(name) => name,
            None => only_workspace(&store).await?,
        };
        let (manifest, damaged) = snapshot::find(&store, &name, &args.snapshot).await?;
        warn_damaged(&damaged)?;
        let progress = progress_bar::for_terminal("restore");
        let options = snapshot::RestoreOptions {
            force: args.force,
            special_bits: args.keep_setuid,
            paths,
        };
        let restoring = snapshot::restore(&store, &manifest, &target, &options, progress);
        let outcome = until_interrupted(restoring).await??;
        Ok::<_, anyhow::Error>((manifest.summary, outcome))
    })?;
    let (summary, outcome) = outcome;
    writeln!(
        std::io::stderr().lock(),
        "restored snapshot {} of `{}` ({} files, {}) into {} in {:.2}s",
        summary.id,
        summary.workspace,
        outcome.files,
        DecimalBytes(outcome.bytes),
        target.display(),
        outcome.seconds,
    )?;
    Ok(())
}

pub(super) async fn only_workspace(store: &AnyStore) -> anyhow::Result<String> {
    let mut names = snapshot::workspaces(store).await?;
    match names.len() {
        1 => Ok(names.remove(0)),
        0 => Err(Hinted::new(
            anyhow::anyhow!("{} holds no snapshots", store.name()),
            "name the store with --store URL (or GITKIT_STORE, or git config gitkit.store)",
        )
        .into()),
        _ => Err(Hinted::new(
            anyhow::anyhow!(
                "{} holds several workspaces: {}",
                store.name(),
                names.join(", ")
            ),
            "name one with --workspace NAME",
        )
        .into()),
    }
}

/// Runs `work` unless Ctrl-C or SIGTERM comes first, in which case `work` is dropped (and so
/// cleans up after itself) and the command fails.
async fn until_interrupted<T>(work: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let stop = std::pin::pin!(async {
        futures::future::select(Box::pin(interrupt.recv()), Box::pin(terminate.recv())).await;
    });
    match futures::future::select(std::pin::pin!(work), stop).await {
        futures::future::Either::Left((done, _)) => Ok(done),
        futures::future::Either::Right(_) => anyhow::bail!("interrupted; nothing was left behind"),
    }
}

/// Names each manifest that was passed over because it could not be read.
pub(super) fn warn_damaged(damaged: &[String]) -> std::io::Result<()> {
    let mut stderr = std::io::stderr().lock();
    for reason in damaged {
        writeln!(stderr, "warning: skipped: {}", printable(reason))?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, summaries: &[Summary]) -> std::io::Result<()> {
    if summaries.is_empty() {
        return Ok(());
    }
    let rows: Vec<[String; 8]> = summaries
        .iter()
        .map(|s| {
            let commit = s.commit.as_deref().map_or("-", |c| &c[..c.len().min(12)]);
            // What a store says is shown, never obeyed: no escape sequence reaches the terminal.
            [
                &s.id,
                &s.time,
                &s.workspace,
                commit,
                s.branch.as_deref().unwrap_or("-"),
                &s.host,
                &s.files.to_string(),
                &DecimalBytes(s.bytes).to_string(),
            ]
            .map(|cell| printable(cell).into_owned())
        })
        .collect();
    let header = [
        "ID",
        "TIME",
        "WORKSPACE",
        "COMMIT",
        "BRANCH",
        "HOST",
        "FILES",
        "SIZE",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_string);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            // Counts are right-aligned, text left-aligned; no padding after the last column.
            match i {
                6 | 7 => line.push_str(&format!("{cell:>width$}")),
                _ => line.push_str(&format!("{cell:<width$}")),
            }
            line.push(' ');
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
