//! `gitkit prune`: remove the data no snapshot uses.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use indicatif::DecimalBytes;

use super::workspace::{location, open, parse_duration};
use crate::cli::PruneArgs;
use crate::error::Hinted;
use crate::snapshot::{Workspace, prune as engine};

pub fn prune(args: PruneArgs, dir: &Path) -> anyhow::Result<()> {
    let grace = match args.grace.trim() {
        "0" => Duration::ZERO,
        text => parse_duration(text).ok_or_else(|| {
            Hinted::new(
                anyhow::anyhow!("--grace `{text}` is not a duration"),
                "give minutes, hours or days: 90m, 12h, 2d (0 deletes at once)",
            )
        })?,
    };
    let workspace = Workspace::discover(dir).ok();
    let location = location(args.store.store.as_deref(), workspace.as_ref(), dir)?;
    let options = engine::Options {
        grace,
        dry_run: args.dry_run,
        now: std::time::SystemTime::now(),
        stop_after: super::test_knob("GITKIT_TEST_PRUNE_STOP_AFTER", Duration::from_secs)
            .map(|n| n.as_secs() as usize),
        pause: std::env::var_os("GITKIT_TEST_PRUNE_PAUSE").map(Into::into),
    };
    let outcome = super::runtime().block_on(async {
        let store = open(&location, args.store.profile.clone());
        engine::prune(&store, &options).await
    })?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &outcome)?;
        writeln!(stdout)?;
        return Ok(());
    }
    let would = if outcome.dry_run { "would be " } else { "" };
    writeln!(
        stdout,
        "{} snapshots use {} packs ({})",
        outcome.snapshots,
        outcome.packs,
        DecimalBytes(outcome.bytes)
    )?;
    writeln!(
        stdout,
        "{} packs {}deleted, {} freed; {} {}marked for deletion ({}), {} waiting for their grace period",
        outcome.deleted,
        would,
        DecimalBytes(outcome.deleted_bytes),
        outcome.marked,
        would,
        DecimalBytes(outcome.marked_bytes),
        outcome.waiting
    )?;
    if outcome.repacked > 0 {
        writeln!(
            stdout,
            "{} mostly unused packs {}copied out of ({} written)",
            outcome.repacked,
            would,
            DecimalBytes(outcome.repacked_bytes)
        )?;
    }
    if outcome.rescued > 0 {
        writeln!(
            stdout,
            "{} marked packs were used again: what they hold was copied out first",
            outcome.rescued
        )?;
    }
    if outcome.unmarked > 0 {
        writeln!(
            stdout,
            "{} marked packs are used again: kept",
            outcome.unmarked
        )?;
    }
    if outcome.folded > 0 {
        writeln!(
            stdout,
            "{} index objects {}folded into {} index sets",
            outcome.folded, would, outcome.sets
        )?;
    }
    Ok(())
}
