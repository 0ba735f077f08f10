//! `gitkit snapshot`, `gitkit snapshots` and `gitkit restore`.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

use indicatif::DecimalBytes;

use super::workspace::{Settings, location, open, take};
use crate::cli::{RestoreArgs, SnapshotArgs, SnapshotsArgs};
use crate::error::Hinted;
use crate::progress_bar;
use crate::snapshot::retention::Judged;
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
    // A policy from the flags, else from git config; without one the listing is as it was.
    // A configured policy that cannot be read does not stand between the user and a listing.
    let policy = super::forget::chosen_policy(&args.keep, dir).unwrap_or_else(|e| {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "warning: {}; listing without a keep policy",
            printable(&crate::text::chain_text(e.as_ref()))
        );
        None
    });
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
    if let Some(policy) = policy {
        let now = i64::try_from(crate::time::unix_seconds(super::now())).unwrap_or(i64::MAX);
        let judged = snapshot::retention::judge(summaries, &policy.policy, now);
        if args.json {
            serde_json::to_writer_pretty(&mut stdout, &judged)?;
            writeln!(stdout)?;
        } else {
            write_judged(&mut stdout, &judged)?;
        }
        return Ok(());
    }
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
        let (snapshot, damaged) = snapshot::find_to_restore(&store, &name, &args.snapshot).await?;
        warn_damaged(&damaged)?;
        let progress = progress_bar::for_terminal("restore");
        let options = snapshot::RestoreOptions {
            force: args.force,
            special_bits: args.keep_setuid,
            paths,
            batch: super::test_count("GITKIT_TEST_RESTORE_BATCH")
                .map_or(snapshot::RESTORE_BATCH, |batch| batch as usize),
        };
        let restoring = snapshot::restore(&store, &snapshot, &target, &options, progress);
        let outcome = until_interrupted(restoring).await??;
        Ok::<_, anyhow::Error>((snapshot.summary().clone(), outcome))
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
    write_rows(out, summaries.iter().map(|s| (s, None)).collect())
}

/// The table of [`write_table`] with two more columns: KEEP (`keep` or `forget`) and the
/// REASONS the policy keeps a snapshot for.
pub(super) fn write_judged(out: &mut impl Write, judged: &[Judged]) -> std::io::Result<()> {
    write_rows(
        out,
        judged
            .iter()
            .map(|j| (&j.summary, Some((j.keep, j.reasons.as_slice()))))
            .collect(),
    )
}

type Row<'a> = (&'a Summary, Option<(bool, &'a [String])>);

fn write_rows(out: &mut impl Write, rows: Vec<Row<'_>>) -> std::io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let judged = rows.iter().any(|(_, keep)| keep.is_some());
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(s, keep)| {
            let commit = s.commit.as_deref().map_or("-", |c| &c[..c.len().min(12)]);
            let mut cells = vec![
                s.id.clone(),
                s.time.clone(),
                s.workspace.clone(),
                commit.to_string(),
                s.branch.as_deref().unwrap_or("-").to_string(),
                s.host.clone(),
                s.files.to_string(),
                DecimalBytes(s.bytes).to_string(),
            ];
            if let Some((keep, reasons)) = keep {
                cells.push(if *keep { "keep" } else { "forget" }.to_string());
                cells.push(if reasons.is_empty() {
                    "-".to_string()
                } else {
                    reasons.join(", ")
                });
            }
            // What a store says is shown, never obeyed: no escape sequence reaches the terminal.
            cells
                .iter()
                .map(|cell| printable(cell).into_owned())
                .collect()
        })
        .collect();
    let mut header = vec![
        "ID",
        "TIME",
        "WORKSPACE",
        "COMMIT",
        "BRANCH",
        "HOST",
        "FILES",
        "SIZE",
    ];
    if judged {
        header.extend(["KEEP", "REASONS"]);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.into_iter().map(str::to_string).collect();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, &width)) in row.iter().zip(&widths).enumerate() {
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
