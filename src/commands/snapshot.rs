//! `gitkit snapshot`, `gitkit snapshots` and `gitkit restore`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use crate::cli::{RestoreArgs, SnapshotArgs, SnapshotsArgs, StoreArgs};
use crate::error::Hinted;
use crate::snapshot::{self, Summary, Workspace};
use crate::store::{self, AnyStore, Store};
use crate::text::printable;
use crate::{home, progress_bar};

/// Snapshots the repository containing `dir`.
pub fn take(
    dir: &Path,
    store_args: &StoreArgs,
    include_ignored: bool,
    progress: Arc<dyn snapshot::Progress>,
) -> anyhow::Result<(snapshot::SnapshotOutcome, store::Location)> {
    let workspace = Workspace::discover(dir).map_err(|e| match e {
        e @ snapshot::WorkspaceError::NotARepository(_) => {
            Hinted::new(e, "run it inside a repository, or name one with -C DIR").into()
        }
        other => anyhow::Error::from(other),
    })?;
    let location = location(store_args, Some(&workspace), dir)?;
    let options = snapshot::SnapshotOptions {
        include_ignored,
        host: host_name(),
        now: SystemTime::now(),
        racy_window: test_knob("GITKIT_TEST_RACY_WINDOW_MS", Duration::from_millis)
            .unwrap_or(snapshot::RACY_WINDOW),
        recheck_every: test_knob("GITKIT_TEST_RECHECK_SECS", Duration::from_secs)
            .unwrap_or(snapshot::RECHECK_EVERY),
    };
    let deadline = deadline(dir)?;
    let runtime = super::runtime();
    let outcome = runtime.block_on(async {
        let store = open(&location, store_args);
        let work = snapshot::create(&store, &workspace, &options, progress);
        tokio::time::timeout(deadline, work).await
    });
    let outcome = match outcome {
        Ok(outcome) => outcome?,
        Err(_) => {
            // Work still blocked on the store or the disk is abandoned, not waited for.
            runtime.shutdown_background();
            return Err(Hinted::new(
                anyhow::anyhow!(
                    "the snapshot to {location} did not finish within {}",
                    show_duration(deadline)
                ),
                format!(
                    "check that the store is reachable; to allow a large snapshot more time, \
                     set {DEADLINE_ENV}=2h or run `git config gitkit.snapshotTimeout 2h` \
                     (the default is {})",
                    show_duration(DEFAULT_DEADLINE)
                ),
            )
            .into());
        }
    };
    Ok((outcome, location))
}

/// How long a whole snapshot may take, reads and uploads included, unless configured: a
/// backstop past the per-request timeouts, and long enough for a large first snapshot.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(60 * 60);
const DEADLINE_ENV: &str = "GITKIT_SNAPSHOT_TIMEOUT";

/// The snapshot's deadline: GITKIT_SNAPSHOT_TIMEOUT, else git config gitkit.snapshotTimeout.
fn deadline(dir: &Path) -> anyhow::Result<Duration> {
    let (text, source) = match std::env::var(DEADLINE_ENV) {
        Ok(text) if !text.is_empty() => (text, DEADLINE_ENV),
        _ => {
            let config = crate::gitconfig::get_regexp(Some(dir), r"^gitkit\.snapshottimeout$")
                .context("cannot read gitkit.snapshotTimeout")?;
            match config.into_iter().last() {
                Some((_, text)) => (text, "gitkit.snapshotTimeout"),
                None => return Ok(DEFAULT_DEADLINE),
            }
        }
    };
    parse_duration(&text).ok_or_else(|| {
        Hinted::new(
            anyhow::anyhow!("{source} is `{text}`, which is not a duration"),
            "give seconds, minutes or hours: 90s, 10m, 2h (a bare number is seconds)",
        )
        .into()
    })
}

/// `90`, `90s`, `10m`, `2h`: a positive duration.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" | "seconds" => 1,
        "m" | "min" | "mins" | "minutes" => 60,
        "h" | "hour" | "hours" => 60 * 60,
        _ => return None,
    };
    let seconds = number.checked_mul(scale)?;
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

fn show_duration(duration: Duration) -> String {
    match duration.as_secs() {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub fn snapshot(args: SnapshotArgs, dir: &Path) -> anyhow::Result<()> {
    let progress = progress_bar::for_terminal("snapshot");
    let (outcome, location) = take(dir, &args.store, args.include_ignored, progress)?;
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
            human_bytes(summary.bytes),
            human_bytes(outcome.new_bytes),
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
    let location = location(&args.store, workspace.as_ref(), dir)?;
    let named = args.workspace.clone().or_else(|| workspace.map(|w| w.name));
    let summaries = super::runtime().block_on(async {
        let store = open(&location, &args.store);
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
    let workspace = Workspace::discover(dir).ok();
    let location = location(&args.store, workspace.as_ref(), dir)?;
    let target = args.to.clone();
    let outcome = super::runtime().block_on(async {
        let store = open(&location, &args.store);
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
        human_bytes(outcome.bytes),
        target.display(),
        outcome.seconds,
    )?;
    Ok(())
}

async fn only_workspace(store: &AnyStore) -> anyhow::Result<String> {
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

/// The store to use, a folder made absolute before anything is keyed on it: relative to `dir`
/// (`-C`, else the current folder) when given by flag or environment, to the work tree when by
/// git config.
fn location(
    args: &StoreArgs,
    workspace: Option<&Workspace>,
    dir: &Path,
) -> anyhow::Result<store::Location> {
    let env = std::env::var("GITKIT_STORE").ok().filter(|s| !s.is_empty());
    let config = workspace.and_then(|w| w.store.as_deref());
    let location = store::choose(
        args.store.as_deref(),
        env.as_deref(),
        config,
        &home::gitkit_home(),
    )
    .context("cannot use the store")?;
    let store::Location::Dir(path) = location else {
        return Ok(location);
    };
    let base = match workspace {
        Some(workspace) if args.store.is_none() && env.is_none() && config.is_some() => {
            workspace.root.clone()
        }
        _ => std::path::absolute(dir).context("cannot tell the current folder")?,
    };
    Ok(store::Location::Dir(store::absolute(&base.join(path))))
}

fn open(location: &store::Location, args: &StoreArgs) -> AnyStore {
    super::open_store(location, args.profile.clone(), Default::default())
}

/// A duration tests set so that they need not wait for it (the racy window's three seconds, the
/// hour between listings of an unchanged store's packs); never set in normal use.
fn test_knob(name: &str, unit: fn(u64) -> Duration) -> Option<Duration> {
    std::env::var(name).ok()?.parse().ok().map(unit)
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
fn warn_damaged(damaged: &[String]) -> std::io::Result<()> {
    let mut stderr = std::io::stderr().lock();
    for reason in damaged {
        writeln!(stderr, "warning: skipped: {}", printable(reason))?;
    }
    Ok(())
}

fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
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
                &human_bytes(s.bytes),
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

/// `8.2 MB`: decimal units, as `du --si` and S3 consoles print them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_for_the_snapshot_deadline() {
        let parse = super::parse_duration;
        assert_eq!(parse("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse(" 2h "), Some(Duration::from_secs(7200)));
        for bad in [
            "",
            "0",
            "0s",
            "soon",
            "1d",
            "-5s",
            "1.5h",
            "99999999999999999999h",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(super::show_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(super::show_duration(Duration::from_secs(120)), "2m");
        assert_eq!(super::show_duration(Duration::from_secs(3)), "3s");
    }

    #[test]
    fn human_bytes() {
        assert_eq!(super::human_bytes(999), "999 B");
        assert_eq!(super::human_bytes(8_192_000), "8.2 MB");
    }
}
