//! What the hook starts: one snapshot at a time per repository, commits that arrive meanwhile
//! folded into one more run, and every outcome written down under `.git/gitkit/`.
//!
//! The hook marks a snapshot as wanted (`pending`) and starts a worker detached from git (a new
//! session, no pipes to git's callers), then returns; while a worker holds the lock, the hook
//! only marks. A worker takes the lock, waits for the mark to settle (a burst of commits makes
//! one snapshot), clears it and snapshots, again while the mark comes back; one that finds the
//! lock taken leaves the work to its holder, which looks for the mark once more after letting
//! the lock go.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};

const PENDING: &str = "pending";
const LOCK: &str = "snapshot.lock";
const LOG: &str = "hook.log";
const RECORD: &str = "hook-status.json";
/// How long after the last commit the snapshot starts.
pub const SETTLE: Duration = Duration::from_millis(500);
/// The log is rotated to `hook.log.1` past this size.
const LOG_LIMIT: u64 = 256 * 1024;
/// A worker running longer than this is shown as possibly stuck: a snapshot takes seconds
/// when little changed, and its own deadline stops it in any case.
const STUCK_AFTER: Duration = Duration::from_secs(15 * 60);

/// The last outcomes, as `gitkit hooks status` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub last_snapshot: Option<LastSnapshot>,
    pub last_error: Option<LastError>,
    /// Whether the most recent run failed.
    pub failing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSnapshot {
    pub id: String,
    pub commit: Option<String>,
    /// When the run finished, RFC 3339.
    pub at: String,
    /// What that snapshot left out or kept from before, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub message: String,
    pub at: String,
}

/// `gitkit hooks status`.
#[derive(Debug, Clone, Serialize)]
pub struct HookStatus {
    pub installed: bool,
    pub hook: PathBuf,
    /// A snapshot is running now.
    pub running: bool,
    /// A snapshot is wanted and not yet started.
    pub pending: bool,
    /// The worker that is running, as it wrote itself down in the lock file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<Worker>,
    #[serde(flatten)]
    pub record: Record,
}

/// The process holding the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Worker {
    pub pid: u32,
    /// When it took the lock, RFC 3339.
    pub started: String,
    /// How long it has been running.
    pub seconds: u64,
    /// It has been running for longer than a snapshot should take.
    pub stuck: bool,
}

/// What a worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    /// Snapshots run (0: another worker holds the lock and will do the work).
    pub runs: usize,
}

/// One snapshot's result, as the worker records it.
pub struct Snapshotted {
    pub id: String,
    pub commit: Option<String>,
    /// A one-line summary for the log.
    pub summary: String,
    /// What was left out or kept from before, and why.
    pub warnings: Vec<String>,
    /// What was done after the snapshot (the keep policy applied), for the log only: it never
    /// makes the run fail.
    pub after: Vec<String>,
}

/// The post-commit hook: marks a snapshot as wanted, starts a detached worker, returns.
pub fn post_commit(state_dir: &Path, root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    crate::fs::touch_own(&state_dir.join(PENDING))?;
    // A worker holds the lock: it will see the mark, as it looks again after letting go.
    if try_lock(state_dir)?.is_none() {
        return Ok(());
    }
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["hook", "run"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Never take the index lock from under the user, and never read a temporary index
        // that git is about to delete.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env_remove("GIT_INDEX_FILE");
    // No pre_exec hook: that would force a full fork. The worker leaves git's session itself,
    // first thing (see `detach`).
    command.spawn()?;
    Ok(())
}

/// Called first by the worker: a session of its own, so that nothing aimed at git's terminal
/// or process group reaches it, and a lower priority, so the user's next command comes first.
pub fn detach() {
    let _ = rustix::process::setsid();
    let _ = rustix::process::nice(10);
}

/// Runs snapshots while one is wanted, unless another worker holds the lock; each starts once
/// no commit has marked work for `settle` ([`SETTLE`] but in tests).
pub fn run(
    state_dir: &Path,
    settle: Duration,
    mut snapshot: impl FnMut() -> anyhow::Result<Snapshotted>,
) -> std::io::Result<RunOutcome> {
    std::fs::create_dir_all(state_dir)?;
    let mut runs = 0;
    loop {
        let Some(mut lock) = try_lock_patiently(state_dir)? else {
            return Ok(RunOutcome { runs });
        };
        // Who holds the lock and since when, for `hooks status`.
        lock.set_len(0)?;
        writeln!(
            lock,
            "pid {} started {}",
            std::process::id(),
            unix_seconds(SystemTime::now())
        )?;
        while settled_pending(state_dir, settle)? && take_pending(state_dir)? {
            runs += 1;
            log(state_dir, &format!("pid {} start", std::process::id()))?;
            let mut record = load_record(state_dir);
            let now = crate::time::rfc3339(SystemTime::now());
            match snapshot() {
                Ok(done) => {
                    log(
                        state_dir,
                        &format!("pid {} ok {}", std::process::id(), done.summary),
                    )?;
                    for warning in &done.warnings {
                        log(
                            state_dir,
                            &format!("pid {} warning: {warning}", std::process::id()),
                        )?;
                    }
                    for line in &done.after {
                        log(state_dir, &format!("pid {} {line}", std::process::id()))?;
                    }
                    record.last_snapshot = Some(LastSnapshot {
                        id: done.id,
                        commit: done.commit,
                        at: now,
                        warnings: done.warnings,
                    });
                    record.failing = false;
                }
                Err(error) => {
                    let message = crate::text::chain_text(error.as_ref());
                    log(
                        state_dir,
                        &format!("pid {} error: {message}", std::process::id()),
                    )?;
                    record.last_error = Some(LastError { message, at: now });
                    record.failing = true;
                }
            }
            save_record(state_dir, &record)?;
        }
        drop(lock);
        // A commit may have marked work between the last look and the unlock.
        if !state_dir.join(PENDING).exists() {
            return Ok(RunOutcome { runs });
        }
    }
}

/// Marks a snapshot as wanted, for a run started other than by the hook (cron).
pub fn want_snapshot(state_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    crate::fs::touch_own(&state_dir.join(PENDING))
}

pub fn status(state_dir: &Path, installed: bool, hook: PathBuf) -> std::io::Result<HookStatus> {
    let running = std::fs::metadata(state_dir.join(LOCK)).is_ok() && try_lock(state_dir)?.is_none();
    let worker = running
        .then(|| crate::fs::read_own(&state_dir.join(LOCK)).ok())
        .flatten()
        .and_then(|data| String::from_utf8(data).ok())
        .and_then(|text| worker(&text, SystemTime::now()));
    Ok(HookStatus {
        installed,
        hook,
        running,
        pending: state_dir.join(PENDING).exists(),
        worker,
        record: load_record(state_dir),
    })
}

/// The worker a lock file describes (`pid P started UNIX_SECONDS`), as of `now`.
fn worker(lock_text: &str, now: SystemTime) -> Option<Worker> {
    let mut words = lock_text.split_whitespace();
    let (Some("pid"), Some(pid), Some("started"), Some(started)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    let started = std::time::UNIX_EPOCH + Duration::from_secs(started.parse().ok()?);
    let running = now.duration_since(started).unwrap_or_default();
    Some(Worker {
        pid: pid.parse().ok()?,
        started: crate::time::rfc3339(started),
        seconds: running.as_secs(),
        stuck: running > STUCK_AFTER,
    })
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn try_lock(state_dir: &Path) -> std::io::Result<Option<File>> {
    let file = crate::fs::no_wait(File::options().create(true).truncate(false).write(true))
        .open(state_dir.join(LOCK))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// [`try_lock`], trying again for a moment: a lock can be held for an instant by a process
/// that is not a worker (the hook looking whether one runs, or a process forked while it held
/// the lock and not yet running its program), and a worker that gave up then could leave a
/// mark nobody takes.
fn try_lock_patiently(state_dir: &Path) -> std::io::Result<Option<File>> {
    for _ in 0..10 {
        if let Some(lock) = try_lock(state_dir)? {
            return Ok(Some(lock));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    try_lock(state_dir)
}

/// Waits until the last mark is `settle` old, so that a burst of commits (a rebase, a script)
/// makes one snapshot after it rather than many during it; whether there is a mark at all.
fn settled_pending(state_dir: &Path, settle: Duration) -> std::io::Result<bool> {
    loop {
        let modified = match std::fs::metadata(state_dir.join(PENDING)) {
            Ok(metadata) => metadata.modified()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let age = SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default();
        if age >= settle {
            return Ok(true);
        }
        std::thread::sleep(settle - age);
    }
}

fn take_pending(state_dir: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(state_dir.join(PENDING)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn log(state_dir: &Path, line: &str) -> std::io::Result<()> {
    let path = state_dir.join(LOG);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > LOG_LIMIT) {
        std::fs::rename(&path, state_dir.join(format!("{LOG}.1")))?;
    }
    let mut file = crate::fs::no_wait(File::options().create(true).append(true)).open(path)?;
    writeln!(file, "{} {line}", crate::time::rfc3339(SystemTime::now()))
}

fn load_record(state_dir: &Path) -> Record {
    crate::fs::read_own(&state_dir.join(RECORD))
        .ok()
        .and_then(|data| serde_json::from_slice(&data).ok())
        .unwrap_or_default()
}

fn save_record(state_dir: &Path, record: &Record) -> std::io::Result<()> {
    let data = serde_json::to_vec_pretty(record).expect("serializes");
    crate::fs::write_cache(&state_dir.join(RECORD), &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(id: &str) -> anyhow::Result<Snapshotted> {
        Ok(Snapshotted {
            id: id.into(),
            commit: None,
            summary: id.into(),
            warnings: Vec::new(),
            after: Vec::new(),
        })
    }

    #[test]
    fn runs_only_when_wanted_and_records_outcomes() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            run(dir.path(), SETTLE, || done("never")).expect("run").runs,
            0
        );

        want_snapshot(dir.path()).expect("mark");
        assert_eq!(run(dir.path(), SETTLE, || done("s1")).expect("run").runs, 1);
        assert_eq!(
            load_record(dir.path()).last_snapshot.expect("recorded").id,
            "s1"
        );

        want_snapshot(dir.path()).expect("mark");
        run(dir.path(), SETTLE, || {
            Err(anyhow::anyhow!("store unreachable"))
        })
        .expect("run");
        let record = load_record(dir.path());
        assert!(record.failing);
        assert_eq!(
            record.last_error.expect("recorded").message,
            "store unreachable"
        );
        assert_eq!(record.last_snapshot.expect("kept").id, "s1");
    }

    #[test]
    fn work_marked_during_a_run_gets_one_more_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        want_snapshot(dir.path()).expect("mark");
        let mut calls = 0;
        let outcome = run(dir.path(), SETTLE, || {
            calls += 1;
            if calls <= 2 {
                // Two commits land while this snapshot runs: they fold into one more run.
                want_snapshot(dir.path()).expect("mark");
                want_snapshot(dir.path()).expect("mark");
            }
            done("s")
        })
        .expect("run");
        assert_eq!(outcome.runs, 3);
    }

    #[test]
    fn the_worker_is_read_from_the_lock_file_and_flagged_when_long() {
        let start = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let text = "pid 4242 started 1800000000\n";
        let fresh = worker(text, start + Duration::from_secs(90)).expect("parsed");
        assert_eq!((fresh.pid, fresh.seconds, fresh.stuck), (4242, 90, false));
        let old = worker(text, start + STUCK_AFTER + Duration::from_secs(1)).expect("parsed");
        assert!(old.stuck);
        assert_eq!(worker("", start), None);
        assert_eq!(worker("pid x started 1", start), None);
    }

    #[test]
    fn the_lock_names_its_holder_while_it_runs() {
        let dir = tempfile::tempdir().expect("temp dir");
        want_snapshot(dir.path()).expect("mark");
        run(dir.path(), SETTLE, || {
            let now = status(dir.path(), true, PathBuf::new()).expect("status");
            assert!(now.running);
            let worker = now.worker.expect("the worker wrote itself down");
            assert_eq!(worker.pid, std::process::id());
            done("s")
        })
        .expect("run");
    }

    #[test]
    fn a_second_worker_leaves_the_work_to_the_lock_holder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let held = try_lock(dir.path()).expect("lock").expect("free");
        want_snapshot(dir.path()).expect("mark");
        assert_eq!(run(dir.path(), SETTLE, || done("no")).expect("run").runs, 0);
        assert!(
            dir.path().join(PENDING).exists(),
            "the mark stays for the holder"
        );
        drop(held);
    }
}
