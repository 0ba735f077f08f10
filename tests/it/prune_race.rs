//! The race issue 10 asks for, run for real: two workspaces snapshot in a loop into one store
//! while forget (snapshot objects deleted, all that `gitkit forget` does) and `gitkit prune`
//! run again and again with a short grace period. At the end, after a last prune, every
//! snapshot left restores (each blob checked against its hash), holds what its writer had,
//! and passes `git fsck`, and the store passes `gitkit check --read-data`.
//!
//! The protocol is safe when the grace period is longer than the longest snapshot run, so the
//! test shortens both: runs may take `MAX_RUN_MS` (GITKIT_TEST_MAX_RUN_MS), packs are marked
//! for `GRACE`. A run that takes longer fails without publishing; the test counts those and
//! tolerates no other failure, of a writer or of a prune. The margin between the two covers
//! what the argument leaves out at this scale: S3 dates a mark to the whole second (up to one
//! second early), and a run's last upload lands after its clock was checked (on a loaded
//! machine, up to a second or more later).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::s3::{BUCKET, Weed};
use crate::support::{Env, describe, pseudo_random_bytes, stdout};

const MAX_RUN_MS: u64 = 2000;
const GRACE: &str = "5s";
/// Snapshots of each workspace forget leaves, the newest.
const KEEP: usize = 2;
/// How long the writers, forget and prune race (GITKIT_TEST_RACE_SECS for a longer run).
const RACE: Duration = Duration::from_secs(25);

fn race_length() -> Duration {
    std::env::var("GITKIT_TEST_RACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(RACE, Duration::from_secs)
}

/// The store under test, and how the test forgets snapshots in it.
enum Target {
    Folder(PathBuf),
    S3 { prefix: String, endpoint: String },
}

impl Target {
    fn arg(&self) -> String {
        match self {
            Target::Folder(path) => path.to_str().expect("utf-8").to_string(),
            Target::S3 { prefix, .. } => format!("s3://{BUCKET}/{prefix}"),
        }
    }

    /// The snapshot ids of `workspace`, oldest first.
    fn ids(&self, env: &Env, workspace: &str) -> Vec<String> {
        let mut ids: Vec<String> = match self {
            Target::Folder(path) => match std::fs::read_dir(path.join("snapshots").join(workspace))
            {
                // A snapshot being written is a hidden temporary file until it is renamed.
                Ok(listing) => listing
                    .filter_map(|e| {
                        let name = e.expect("entry").file_name();
                        let name = name.to_str().expect("utf-8");
                        let id = name.strip_suffix(".json")?;
                        (!id.starts_with('.')).then(|| id.to_string())
                    })
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => panic!("list snapshots: {e}"),
            },
            Target::S3 { .. } => {
                let output = env
                    .gitkit(["snapshots", "--json", "--store", &self.arg()])
                    .args(["--workspace", workspace])
                    .success();
                let listed: Vec<Value> =
                    serde_json::from_str(stdout(&output).trim()).expect("a JSON array");
                listed
                    .iter()
                    .map(|s| s["id"].as_str().expect("id").to_string())
                    .collect()
            }
        };
        ids.sort();
        ids
    }

    /// Deletes the snapshot objects of `ids`, as `gitkit forget` does.
    fn forget(&self, env: &Env, workspace: &str, ids: &[String]) {
        match self {
            Target::Folder(path) => {
                for id in ids {
                    let object = path
                        .join("snapshots")
                        .join(workspace)
                        .join(format!("{id}.json"));
                    std::fs::remove_file(&object).expect("rm snapshot object");
                }
            }
            Target::S3 { prefix, endpoint } => {
                let objects: Vec<Value> = ids
                    .iter()
                    .map(|id| serde_json::json!({"Key": format!("{prefix}/snapshots/{workspace}/{id}.json")}))
                    .collect();
                let delete = serde_json::json!({ "Objects": objects, "Quiet": true });
                env.command("aws")
                    .args(["s3api", "delete-objects", "--bucket", BUCKET])
                    .args(["--endpoint-url", endpoint, "--delete", &delete.to_string()])
                    .success();
            }
        }
    }
}

/// What a work tree holds, `.git` aside: each path with its mode and content hash.
type Fingerprint = BTreeMap<PathBuf, String>;

fn fingerprint(root: &Path) -> Fingerprint {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let mode = e.metadata().expect("stat").permissions().mode() & 0o777;
            let hash = blake3::hash(&std::fs::read(e.path()).expect("read"));
            let path = e
                .path()
                .strip_prefix(root)
                .expect("under root")
                .to_path_buf();
            (path, format!("{mode:o} {hash}"))
        })
        .collect()
}

/// A repository that changes on every step: small files edited, added and deleted, a few
/// random files large enough to span chunks replaced, then committed (and one edit left out
/// of the commit).
struct Churn {
    repo: PathBuf,
    seed: u64,
    small: Vec<PathBuf>,
    large: Vec<PathBuf>,
    next: usize,
}

impl Churn {
    fn new(env: &Env, name: &str, seed: u64) -> Self {
        let repo = env.repo_with_commit(name);
        let mut churn = Self {
            repo,
            seed,
            small: Vec::new(),
            large: Vec::new(),
            next: 0,
        };
        for _ in 0..150 {
            churn.add_small();
        }
        for _ in 0..3 {
            churn.add_large(300_000);
        }
        // One that spans several chunks, edited in place now and then.
        let big = churn.repo.join("big.bin");
        std::fs::write(&big, churn.random(1_500_000)).expect("write");
        churn.commit(env, "start");
        churn
    }

    fn random(&mut self, len: usize) -> Vec<u8> {
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        pseudo_random_bytes(self.seed, len)
    }

    fn pick(&mut self, below: usize) -> usize {
        (self.random(8).iter().fold(0u64, |a, b| a << 8 | *b as u64) % below as u64) as usize
    }

    fn add_small(&mut self) {
        self.next += 1;
        let path = self
            .repo
            .join(format!("dir{}", self.next % 8))
            .join(format!("file{}.txt", self.next));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let len = 200 + self.pick(3000);
        let text = hex::encode(self.random(len / 2));
        std::fs::write(&path, text).expect("write");
        self.small.push(path);
    }

    fn add_large(&mut self, len: usize) {
        self.next += 1;
        let path = self.repo.join(format!("large{}.bin", self.next));
        let data = self.random(len);
        std::fs::write(&path, data).expect("write");
        self.large.push(path);
    }

    fn edit_small(&mut self) {
        let at = self.pick(self.small.len());
        let path = self.small[at].clone();
        let line = hex::encode(self.random(40));
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str(&line);
        std::fs::write(&path, text).expect("write");
    }

    fn step(&mut self, env: &Env, n: usize) {
        for _ in 0..8 {
            self.edit_small();
        }
        for _ in 0..4 {
            self.add_small();
        }
        for _ in 0..3 {
            let at = self.pick(self.small.len());
            std::fs::remove_file(self.small.swap_remove(at)).expect("rm");
        }
        // One large file replaced, and now and then one more or one fewer.
        let at = self.pick(self.large.len());
        std::fs::remove_file(self.large.swap_remove(at)).expect("rm");
        let len = 250_000 + self.pick(100_000);
        self.add_large(len);
        match n % 4 {
            1 if self.large.len() > 1 => {
                let at = self.pick(self.large.len());
                std::fs::remove_file(self.large.swap_remove(at)).expect("rm");
            }
            3 => self.add_large(300_000),
            _ => {}
        }
        if n.is_multiple_of(3) {
            // An edit in the middle of the big file: one new chunk or two, the rest reused.
            let big = self.repo.join("big.bin");
            let mut data = std::fs::read(&big).expect("read");
            let at = self.pick(data.len() - 1000);
            let patch = self.random(1000);
            data[at..at + 1000].copy_from_slice(&patch);
            std::fs::write(&big, data).expect("write");
        }
        self.commit(env, &format!("step {n}"));
        self.edit_small();
    }

    fn commit(&self, env: &Env, message: &str) {
        env.git(&self.repo, ["add", "-A"]).success();
        env.git(&self.repo, ["commit", "-q", "-m", message])
            .success();
    }
}

/// What one writer did.
#[derive(Default)]
struct Written {
    /// Each published snapshot's id, with its work tree and HEAD.
    snapshots: HashMap<String, (Fingerprint, String)>,
    last: Option<String>,
    runs: usize,
    /// Runs that took longer than the maximum and failed (as they must, or for what a prune
    /// did to what they reused meanwhile).
    too_long: usize,
    longest: Duration,
}

/// What the race did, for the report.
#[derive(Default, Debug)]
struct Tally {
    prunes: usize,
    longest_prune: Duration,
    forgotten: usize,
    marked: u64,
    unmarked: u64,
    deleted: u64,
    repacked: u64,
    folded: u64,
}

struct Race<'a> {
    env: &'a Env,
    target: &'a Target,
    stop: AtomicBool,
    failures: Mutex<Vec<String>>,
    tally: Mutex<Tally>,
}

impl Race<'_> {
    fn fail(&self, what: String) {
        self.failures.lock().expect("lock").push(what);
        self.stop.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn write(&self, mut churn: Churn) -> Written {
        let mut written = Written::default();
        let store = self.target.arg();
        let max_run = Duration::from_millis(MAX_RUN_MS);
        let mut n = 0;
        while !self.stopped() {
            n += 1;
            churn.step(self.env, n);
            let head = head(self.env, &churn.repo);
            let started = Instant::now();
            let output = self
                .env
                .gitkit_in(&churn.repo, ["snapshot", "--json", "--store", &store])
                .env("GITKIT_TEST_MAX_RUN_MS", MAX_RUN_MS.to_string())
                .output();
            let took = started.elapsed();
            written.runs += 1;
            written.longest = written.longest.max(took);
            if !output.status.success() {
                if took > max_run {
                    written.too_long += 1;
                    continue;
                }
                self.fail(format!(
                    "snapshot of {} failed after {took:?}:\n{}",
                    churn.repo.display(),
                    describe(&output)
                ));
                break;
            }
            let outcome: Value = serde_json::from_str(stdout(&output).trim()).expect("JSON");
            if outcome["unchanged"] == true {
                self.fail(format!(
                    "a changed workspace was called unchanged: {outcome}"
                ));
                break;
            }
            let id = outcome["summary"]["id"].as_str().expect("id").to_string();
            written
                .snapshots
                .insert(id.clone(), (fingerprint(&churn.repo), head));
            written.last = Some(id);
        }
        written
    }

    fn forget(&self, workspaces: &[&str]) {
        while !self.stopped() {
            for workspace in workspaces {
                let ids = self.target.ids(self.env, workspace);
                if ids.len() > KEEP {
                    let old = &ids[..ids.len() - KEEP];
                    self.target.forget(self.env, workspace, old);
                    self.tally.lock().expect("lock").forgotten += old.len();
                }
            }
            // Pacing, not synchronisation: a round now and then, between snapshots.
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn prune(&self) {
        while !self.stopped() {
            let started = Instant::now();
            let output = self
                .env
                .gitkit([
                    "prune",
                    "--json",
                    "--grace",
                    GRACE,
                    "--store",
                    &self.target.arg(),
                ])
                .output();
            if !output.status.success() {
                self.fail(format!("prune failed:\n{}", describe(&output)));
                break;
            }
            let outcome: Value = serde_json::from_str(stdout(&output).trim()).expect("JSON");
            let count = |field: &str| outcome[field].as_u64().expect("a count");
            let mut tally = self.tally.lock().expect("lock");
            tally.prunes += 1;
            tally.longest_prune = tally.longest_prune.max(started.elapsed());
            tally.marked += count("marked");
            tally.unmarked += count("unmarked") + count("rescued");
            tally.deleted += count("deleted");
            tally.repacked += count("repacked");
            tally.folded += count("folded");
        }
    }
}

fn head(env: &Env, repo: &Path) -> String {
    stdout(&env.git(repo, ["rev-parse", "HEAD"]).success())
        .trim()
        .to_string()
}

/// Runs the race against `target` with `pruners` prunes at once, then checks every snapshot
/// left.
fn race(env: &Env, target: &Target, pruners: usize) {
    let alpha = Churn::new(env, "alpha", 1);
    let beta = Churn::new(env, "beta", 2);
    let race = Race {
        env,
        target,
        stop: AtomicBool::new(false),
        failures: Mutex::new(Vec::new()),
        tally: Mutex::new(Tally::default()),
    };
    let length = race_length();
    let started = Instant::now();
    let (alpha_written, beta_written) = std::thread::scope(|scope| {
        let race = &race;
        let writers = [
            scope.spawn(move || race.write(alpha)),
            scope.spawn(move || race.write(beta)),
        ];
        scope.spawn(move || race.forget(&["alpha", "beta"]));
        for _ in 0..pruners {
            scope.spawn(move || race.prune());
        }
        while !race.stopped() && started.elapsed() < length {
            std::thread::sleep(Duration::from_millis(100));
        }
        race.stop.store(true, Ordering::SeqCst);
        let [a, b] = writers.map(|w| w.join().expect("the writer does not panic"));
        (a, b)
    });
    let raced = started.elapsed();
    let failures = race.failures.into_inner().expect("lock");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Everything stopped: a last prune with nothing else writing deletes all it may.
    let output = env
        .gitkit(["prune", "--json", "--grace", "0", "--store", &target.arg()])
        .success();
    let last: Value = serde_json::from_str(stdout(&output).trim()).expect("JSON");
    // The whole store checks: every remaining snapshot's trees and blobs, read and hashed.
    env.gitkit(["check", "--read-data", "--store", &target.arg()])
        .success();

    let mut restored = 0;
    for (workspace, written) in [("alpha", &alpha_written), ("beta", &beta_written)] {
        let ids = target.ids(env, workspace);
        let newest = written.last.as_ref().expect("a snapshot was written");
        assert!(ids.contains(newest), "{workspace}: newest {newest} is gone");
        for id in &ids {
            let (files, head_then) = written
                .snapshots
                .get(id)
                .unwrap_or_else(|| panic!("{workspace}/{id}: not one a writer reported"));
            let to = env.root_path().join(format!("restored-{workspace}-{id}"));
            env.gitkit(["restore", id, "--store", &target.arg()])
                .args(["--workspace", workspace, "--to"])
                .args([&to])
                .success();
            assert_eq!(&fingerprint(&to), files, "{workspace}/{id}");
            assert_eq!(&head(env, &to), head_then, "{workspace}/{id}");
            env.git(&to, ["fsck", "--strict"]).success();
            std::fs::remove_dir_all(&to).expect("rm");
            restored += 1;
        }
    }
    let tally = race.tally.into_inner().expect("lock");
    eprintln!(
        "prune race ({}, {pruners} pruning): {raced:?} racing, {:?} checking; snapshots alpha {} of {} runs \
         ({} too long, longest {:?}), beta {} of {} runs ({} too long, longest {:?}); {tally:?}; \
         last prune {last}; {restored} snapshots restored",
        match target {
            Target::Folder(_) => "folder",
            Target::S3 { .. } => "SeaweedFS",
        },
        started.elapsed() - raced,
        alpha_written.snapshots.len(),
        alpha_written.runs,
        alpha_written.too_long,
        alpha_written.longest,
        beta_written.snapshots.len(),
        beta_written.runs,
        beta_written.too_long,
        beta_written.longest,
    );
    assert!(
        tally.prunes > 3 && tally.deleted > 0 && tally.forgotten > 0,
        "the race did too little to mean anything: {tally:?}"
    );
}

/// Two writers, forget and one prune at a time, in a folder store.
#[test]
fn snapshots_that_race_forget_and_prune_in_a_folder_store_all_restore() {
    let env = Env::new();
    let store = env.dir("store");
    race(&env, &Target::Folder(store), 1);
}

/// The same against SeaweedFS, with two prunes at once.
#[test]
fn snapshots_that_race_forget_and_two_prunes_in_s3_all_restore() {
    let env = Weed::shared_env();
    let target = Target::S3 {
        prefix: "prune-race".to_string(),
        endpoint: Weed::shared().endpoint(),
    };
    race(&env, &target, 2);
}
