//! A workspace and its store as the command line, the environment and git config name them,
//! gathered in one place for every command that snapshots: `snapshot`, and the hook's worker
//! and cron, which run unattended.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::error::Hinted;
use crate::home;
use crate::snapshot::{self, Workspace};
use crate::store::{self, AnyStore};
use crate::time::show_duration;

/// What a snapshot takes from the command line; the rest comes from the environment and git
/// config.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--store`: a URL or a folder.
    pub store: Option<String>,
    /// `--profile`: the AWS profile for an S3 store.
    pub profile: Option<String>,
    pub include_ignored: bool,
}

impl Settings {
    /// The hook's worker and cron: no command line, everything from the environment
    /// (GITKIT_STORE, as `--store` takes it) and git config.
    pub fn unattended() -> Self {
        Self {
            store: std::env::var("GITKIT_STORE").ok().filter(|s| !s.is_empty()),
            ..Self::default()
        }
    }
}

/// Snapshots the repository containing `dir`.
pub fn take(
    dir: &Path,
    settings: &Settings,
    progress: Arc<dyn snapshot::Progress>,
) -> anyhow::Result<(snapshot::SnapshotOutcome, store::Location)> {
    let workspace = Workspace::discover(dir).map_err(|e| match e {
        e @ snapshot::WorkspaceError::NotARepository(_) => {
            Hinted::new(e, "run it inside a repository, or name one with -C DIR").into()
        }
        other => anyhow::Error::from(other),
    })?;
    let location = location(settings.store.as_deref(), Some(&workspace), dir)?;
    let options = snapshot::SnapshotOptions {
        include_ignored: settings.include_ignored,
        host: host_name(),
        now: super::now(),
        racy_window: super::test_knob("GITKIT_TEST_RACY_WINDOW_MS", Duration::from_millis)
            .unwrap_or(snapshot::RACY_WINDOW),
        recheck_every: super::test_knob("GITKIT_TEST_RECHECK_SECS", Duration::from_secs)
            .unwrap_or(snapshot::RECHECK_EVERY),
        max_run: super::test_knob("GITKIT_TEST_MAX_RUN_MS", Duration::from_millis)
            .unwrap_or(snapshot::MAX_RUN),
    };
    let deadline = deadline(workspace.snapshot_timeout.as_deref())?;
    let runtime = super::runtime();
    let outcome = runtime.block_on(async {
        let store = open(&location, settings.profile.clone());
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
fn deadline(config: Option<&str>) -> anyhow::Result<Duration> {
    let (text, source) = match std::env::var(DEADLINE_ENV) {
        Ok(text) if !text.is_empty() => (text, DEADLINE_ENV),
        _ => match config {
            Some(text) => (text.to_string(), "gitkit.snapshotTimeout"),
            None => return Ok(DEFAULT_DEADLINE),
        },
    };
    parse_duration(&text).ok_or_else(|| {
        Hinted::new(
            anyhow::anyhow!("{source} is `{text}`, which is not a duration"),
            "give seconds, minutes or hours: 90s, 10m, 2h (a bare number is seconds)",
        )
        .into()
    })
}

/// `90`, `90s`, `10m`, `2h`, `3d`: a positive duration.
pub fn parse_duration(text: &str) -> Option<Duration> {
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
        "d" | "day" | "days" => 24 * 60 * 60,
        _ => return None,
    };
    let seconds = number.checked_mul(scale)?;
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// The store to use, a folder made absolute before anything is keyed on it: relative to `dir`
/// (`-C`, else the current folder) when given by `--store` or GITKIT_STORE (which clap, or
/// [`Settings::unattended`], puts in `flag`), to the work tree when by git config.
pub fn location(
    flag: Option<&str>,
    workspace: Option<&Workspace>,
    dir: &Path,
) -> anyhow::Result<store::Location> {
    let flag = flag.filter(|s| !s.is_empty());
    let config = workspace.and_then(|w| w.store.as_deref());
    let location =
        store::choose(flag, None, config, &home::gitkit_home()).context("cannot use the store")?;
    let store::Location::Dir(path) = location else {
        return Ok(location);
    };
    let base = match workspace {
        Some(workspace) if flag.is_none() && config.is_some() => workspace.root.clone(),
        _ => std::path::absolute(dir).context("cannot tell the current folder")?,
    };
    Ok(store::Location::Dir(store::absolute(&base.join(path))))
}

pub fn open(location: &store::Location, profile: Option<String>) -> AnyStore {
    super::open_store(location, profile, Default::default())
}

fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
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
        assert_eq!(parse("2d"), Some(Duration::from_secs(2 * 86400)));
        for bad in [
            "",
            "0",
            "0s",
            "soon",
            "1w",
            "-5s",
            "1.5h",
            "99999999999999999999h",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(super::show_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(super::show_duration(Duration::from_secs(120)), "2m");
        assert_eq!(super::show_duration(Duration::from_secs(3)), "3s");
        assert_eq!(super::show_duration(Duration::from_millis(2500)), "2500ms");
    }
}
