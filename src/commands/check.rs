//! `gitkit check`: whether every snapshot in the store can be restored.

use std::io::Write;
use std::path::Path;

use indicatif::DecimalBytes;

use super::workspace::{location, open};
use crate::cli::CheckArgs;
use crate::snapshot::{self, Damaged, Report, Workspace};
use crate::text::printable;

pub fn check(args: CheckArgs, dir: &Path) -> anyhow::Result<()> {
    let workspace = Workspace::discover(dir).ok();
    let location = location(args.store.store.as_deref(), workspace.as_ref(), dir)?;
    let options = snapshot::CheckOptions {
        workspace: args.workspace.clone(),
        read_data: args.read_data,
    };
    let progress = if args.read_data {
        crate::progress_bar::for_terminal("check")
    } else {
        std::sync::Arc::new(snapshot::Silent)
    };
    let report = super::runtime().block_on(async {
        let store = open(&location, args.store.profile.clone());
        snapshot::check(&store, &options, progress).await
    })?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    } else {
        write_text(&mut stdout, &report)?;
    }
    drop(stdout);
    say_summary(&report, args.read_data)?;
    match Damaged::of(&report) {
        Some(damaged) => Err(damaged.into()),
        None => Ok(()),
    }
}

/// Each damaged object, what is wrong with it, and the snapshots it touches, one per line.
fn write_text(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    for damage in &report.damaged {
        // What a store says is shown, never obeyed: no escape sequence reaches the terminal.
        writeln!(
            out,
            "damaged {} {}: {}",
            damage.object,
            printable(&damage.id),
            printable(&damage.problem)
        )?;
        if damage.snapshots.is_empty() {
            writeln!(out, "  no snapshot uses it")?;
        }
        for name in &damage.snapshots {
            writeln!(out, "  snapshot {}", printable(name))?;
        }
    }
    Ok(())
}

fn say_summary(report: &Report, read_data: bool) -> std::io::Result<()> {
    let mut stderr = std::io::stderr().lock();
    if report.snapshots == 0 {
        return writeln!(
            stderr,
            "nothing to check: {} holds no snapshots{}",
            printable(&report.store),
            match report.workspaces.as_slice() {
                [only] => format!(" of `{}`", printable(only)),
                _ => String::new(),
            }
        );
    }
    let read = if read_data {
        format!(
            ", read {} ({})",
            count(report.packs_read, "pack"),
            DecimalBytes(report.bytes_read)
        )
    } else {
        String::new()
    };
    let verdict = if report.damaged.is_empty() {
        "no damage found".to_string()
    } else {
        format!(
            "{} damaged",
            count(report.damaged_snapshots().len(), "snapshot")
        )
    };
    writeln!(
        stderr,
        "checked {} of {} using {}{read}: {verdict}",
        count(report.snapshots, "snapshot"),
        count(report.workspaces.len(), "workspace"),
        count(report.packs, "pack"),
    )?;
    if !read_data && report.damaged.is_empty() {
        writeln!(
            stderr,
            "packs were not read; `gitkit check --read-data` also checks their content"
        )?;
    }
    Ok(())
}

/// `1 pack`, `2 packs`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
