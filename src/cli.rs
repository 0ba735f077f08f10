//! The command line: clap types only. The doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::secret::Secret;
use crate::snapshot::policy::Span;

/// Git on throw-away cloud machines: CodeCommit credentials, GitHub over SSH, snapshots to S3.
#[derive(Debug, Parser)]
#[command(name = "gitkit", version, propagate_version = true)]
pub struct Cli {
    /// Run as if started in DIR, like `git -C`.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Log what happens to stderr (-v: debug, -vv: trace). Also GITKIT_LOG=debug.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save the workspace (working tree, untracked files and .git) to the store.
    Snapshot(SnapshotArgs),

    /// List snapshots, newest first; with a keep policy, which of them it keeps.
    ///
    /// With --keep-* flags, or a policy in git config gitkit.keep.*, a KEEP column (`keep` and
    /// `reasons` with --json) shows what `gitkit forget` would keep, and why.
    Snapshots(SnapshotsArgs),

    /// Remove snapshots by a keep policy (the --keep-* flags, else git config gitkit.keep.*).
    ///
    /// Only snapshot objects are removed; the data they alone used stays in the store until
    /// `gitkit prune`. The newest snapshot of a workspace is always kept, and a snapshot that
    /// cannot be read is never removed.
    ///
    /// The rules are restic's. Hours, days, ISO weeks (Monday to Sunday) and months are calendar
    /// ones in UTC. A DURATION is years, months, weeks, days and hours: 48h, 7d, 2d3h, 2w, 6m
    /// (months), 1y; --keep-within* count it back from the newest snapshot, not from now.
    Forget(ForgetArgs),

    /// Write a snapshot's files into a folder, each verified against its hash.
    Restore(RestoreArgs),

    /// Remove the data no snapshot uses any more (after `forget`); safe while others write.
    Prune(PruneArgs),

    /// List a snapshot's files and links, one path per line (like `git ls-files`).
    Ls(LsArgs),

    /// What changed between two snapshots: A added, D deleted, M modified, m mode only.
    Diff(DiffArgs),

    /// Verify that every snapshot in the store can be restored; exits 1 if any cannot.
    ///
    /// Reads every snapshot as restore would and checks that every pack it needs is there.
    /// With --read-data, also downloads each pack once and checks every byte against its hash.
    Check(CheckArgs),

    /// Install, remove or inspect the post-commit hook that snapshots after every commit.
    #[command(subcommand)]
    Hooks(HooksCommand),

    /// Snapshot periodically through cron (only when something changed).
    Schedule(ScheduleArgs),

    /// Set up GitHub over SSH: a key that survives restarts, registered once.
    ///
    /// The key is kept under GITKIT_HOME, GitHub's host keys are pinned, and the key is
    /// registered with your account (token from GITHUB_TOKEN, GH_TOKEN or --token-stdin).
    GithubKey(GithubKeyArgs),

    /// Set this machine up, and again after every restart: helper, hooks, schedule, SSH.
    ///
    /// Saves its choices under GITKIT_HOME, so a bare `gitkit setup` puts back the same state.
    /// Each run says what it changed; `--undo` takes out exactly what setup added.
    Setup(SetupArgs),

    /// Check every link (git, helper, AWS, store, GitHub, hooks, schedule) and say how to fix.
    Doctor(DoctorArgs),

    /// SageMaker lifecycle scripts and the CloudFormation template that uses them.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),

    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },

    /// Entry points the hooks and cron call.
    #[command(subcommand, hide = true)]
    Hook(HookCommand),

    /// Git credential helper for AWS CodeCommit (git calls this).
    #[command(hide = true)]
    Credential(CredentialArgs),
}

/// Where snapshots are kept: `--store`, else GITKIT_STORE, else git config `gitkit.store`, else
/// a folder under GITKIT_HOME.
#[derive(Debug, Default, Args)]
pub struct StoreArgs {
    /// `s3://BUCKET/PREFIX`, `file:///PATH` or a folder.
    #[arg(long, value_name = "URL", env = "GITKIT_STORE", hide_env_values = true)]
    pub store: Option<String>,

    /// AWS profile for an S3 store (default: AWS_PROFILE, else `default`).
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Also save files that .gitignore and gitkit.exclude leave out.
    #[arg(long)]
    pub include_ignored: bool,

    /// Print what was done as one JSON object instead of the id.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The workspace to list (default: the current repository's; outside one, every workspace).
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,

    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,

    // Last: its flags are shown under a heading of their own.
    #[command(flatten)]
    pub keep: KeepArgs,
}

/// A keep policy, as restic's `forget` has it. Without any of these flags, git config
/// `gitkit.keep.*` gives the policy.
#[derive(Debug, Default, Clone, Args)]
#[command(next_help_heading = "Keep policy (UTC calendar)")]
pub struct KeepArgs {
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,

    /// For the last N hours that have a snapshot, keep the newest of each hour.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,

    /// For the last N days that have a snapshot, keep the newest of each day.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,

    /// For the last N ISO weeks that have a snapshot, keep the newest of each week.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,

    /// For the last N months that have a snapshot, keep the newest of each month.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,

    /// Keep every snapshot made within DURATION before the newest snapshot (not before now).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<Span>,

    /// Within DURATION before the newest snapshot, keep the newest of each hour.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_hourly: Option<Span>,

    /// Within DURATION before the newest snapshot, keep the newest of each day.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_daily: Option<Span>,

    /// Within DURATION before the newest snapshot, keep the newest of each ISO week.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_weekly: Option<Span>,

    /// Within DURATION before the newest snapshot, keep the newest of each month.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_monthly: Option<Span>,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The workspace whose snapshots to forget (default: the current repository's).
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub workspace: Option<String>,

    /// Every workspace in the store, the policy applied to each on its own.
    #[arg(long)]
    pub all: bool,

    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print a JSON array, one object per workspace, instead of a table.
    #[arg(long)]
    pub json: bool,

    // Last: its flags are shown under a heading of their own.
    #[command(flatten)]
    pub keep: KeepArgs,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// How long a pack nothing uses stays marked before it is deleted (90m, 12h, 2d). The
    /// default, 24h, is far longer than any snapshot may take, so prune is safe while other
    /// machines write. `0` deletes at once: safe ONLY when nothing else writes to the store.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub grace: String,

    /// Say what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print what was done as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A snapshot id, or `latest`.
    #[arg(default_value = "latest")]
    pub snapshot: String,

    /// The folder to restore into; it must be empty unless --force.
    #[arg(long, value_name = "DIR")]
    pub to: std::path::PathBuf,

    #[command(flatten)]
    pub store: StoreArgs,

    /// The workspace to restore (default: the current repository's, or the store's only one).
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,

    /// Restore into a folder that is not empty, replacing the files the snapshot holds.
    #[arg(long)]
    pub force: bool,

    /// Keep setuid, setgid and sticky bits, which are dropped unless asked for.
    #[arg(long)]
    pub keep_setuid: bool,

    /// Restore only this file or folder (everything below it), relative to the workspace's
    /// root as `gitkit ls` prints it; repeat for more. It lands at the same path under --to.
    #[arg(long = "path", value_name = "PATH", allow_hyphen_values = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// A snapshot id, or `latest`.
    pub snapshot: String,

    /// Only this file or folder (everything below it), relative to the workspace's root.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub store: StoreArgs,

    /// The snapshot's workspace (default: the current repository's, or the store's only one).
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,

    /// Also the mode (as git shows it), size and modification time of each, and link targets.
    #[arg(short, long, conflicts_with = "json")]
    pub long: bool,

    /// Print a JSON array of {path, kind, mode, size, hash, mtime_ns | target}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older snapshot: an id, or `latest`.
    pub old: String,

    /// The newer snapshot: an id, or `latest`.
    pub new: String,

    #[command(flatten)]
    pub store: StoreArgs,

    /// The workspace both snapshots belong to (default: the current repository's, or the
    /// store's only one).
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,

    /// Print a JSON array of {status, path, old, new} instead of `STATUS<TAB>PATH` lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Only this workspace's snapshots (default: every workspace in the store).
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,

    /// Also download every pack the snapshots use and check its content (slow: reads it all).
    #[arg(long)]
    pub read_data: bool,

    /// Print a JSON object {store, workspaces, snapshots, packs, packs_read, bytes_read,
    /// damaged: [{object, id, problem, snapshots}]} instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Install gitkit's post-commit hook; an existing hook is kept and still runs, first.
    Install(AllArgs),
    /// Remove gitkit's hook and put back the hook that was there before, exactly.
    Uninstall(AllArgs),
    /// Whether the hook is installed, the last snapshot and the last error.
    Status {
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AllArgs {
    /// Every repository found under DIR (three levels deep), e.g. ~/SageMaker.
    #[arg(long, value_name = "DIR")]
    pub all: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("when").required(true))]
pub struct ScheduleArgs {
    /// How often: 15m, 30m, 1h, 6h, 1d (intervals cron keeps exactly).
    #[arg(long, value_name = "DURATION", group = "when")]
    pub every: Option<String>,

    /// Remove the schedule.
    #[arg(long, group = "when")]
    pub off: bool,

    #[command(flatten)]
    pub all: AllArgs,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Called by the post-commit hook: starts a detached snapshot and returns.
    PostCommit,
    /// The detached snapshot worker.
    Run,
    /// Called by cron: snapshot if anything changed.
    Scheduled(AllArgs),
}

/// A value that must never be printed, as clap hands it over.
fn secret(value: &str) -> Result<Secret<String>, std::convert::Infallible> {
    Ok(Secret::new(value.to_string()))
}

#[derive(Debug, Args)]
pub struct GithubKeyArgs {
    /// The key's title on GitHub (default: the notebook's or machine's name).
    #[arg(long)]
    pub title: Option<String>,

    /// The API: https://HOST/api/v3 for GitHub Enterprise Server, https://api.TENANT.ghe.com.
    #[arg(long, value_name = "URL", default_value = "https://api.github.com")]
    pub api_url: String,

    /// A token with the write:public_key scope; GH_TOKEN is read when GITHUB_TOKEN is not set.
    /// Prefer the environment or --token-stdin: a command line is visible to other users.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_parser = secret
    )]
    pub token: Option<Secret<String>>,

    /// Read the token from standard input instead of GITHUB_TOKEN / GH_TOKEN.
    #[arg(long)]
    pub token_stdin: bool,

    /// Set up the key and SSH, but do not register the key with GitHub.
    #[arg(long)]
    pub no_register: bool,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Where snapshots go (`s3://BUCKET/PREFIX`, `file:///PATH` or a folder); saved.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,

    /// Also snapshot periodically through cron: 15m, 30m, 1h, 6h, 1d; saved.
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,

    /// The folder holding the repositories to hook (default: ~/SageMaker where it exists); saved.
    #[arg(long, value_name = "DIR")]
    pub workspace_root: Option<PathBuf>,

    /// Say what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Remove what setup added; keys and snapshots stay.
    #[arg(long, conflicts_with_all = ["store", "every", "workspace_root"])]
    pub undo: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print a JSON array of {check, status, message, hint} instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// The script for a new instance: fetch gitkit from the S3 store, check it, set up, restore.
    OnCreate {
        /// The S3 store (default: the one `gitkit setup` saved).
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        #[command(flatten)]
        target: LifecycleTarget,
    },
    /// The script for every start: `gitkit setup` again, as the user.
    OnStart {
        #[command(flatten)]
        target: LifecycleTarget,
    },
    /// The CloudFormation template of deploy/notebook.yaml.
    Cloudformation,
    /// Restore the latest snapshot of each workspace into DIR/NAME where that is absent.
    #[command(hide = true)]
    Restore {
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
        #[arg(long, value_name = "URL", env = "GITKIT_STORE", hide_env_values = true)]
        store: Option<String>,
        /// Append what happens to this file too.
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
    },
}

/// Who the script sets up; written into it.
#[derive(Debug, Args)]
pub struct LifecycleTarget {
    /// The user (default: the current one; ec2-user on a notebook instance).
    #[arg(long)]
    pub user: Option<String>,
    /// Their home folder (default: HOME).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Their GITKIT_HOME (default: this one).
    #[arg(long, value_name = "DIR")]
    pub gitkit_home: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// AWS profile to sign with (default: AWS_PROFILE, else `default`).
    #[arg(long)]
    pub profile: Option<String>,

    /// What git asks: `get` answers; `store` and `erase` do nothing.
    #[arg(value_enum)]
    pub operation: CredentialOperation,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CredentialOperation {
    Get,
    Store,
    Erase,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
