//! gitkit: git on throw-away cloud machines.

pub mod aws;
pub mod cli;
pub mod codecommit;
pub mod commands;
pub mod credential;
pub mod error;
pub mod fs;
pub mod git;
pub mod github;
pub mod home;
pub mod hooks;
pub mod logging;
pub mod progress_bar;
pub mod secret;
pub mod setup;
pub mod snapshot;
pub mod store;
pub mod text;
pub mod time;

use std::io;
use std::process::ExitCode;
use std::time::SystemTime;

use cli::{Cli, Command, CredentialArgs, CredentialOperation};

/// Runs one command line and maps the outcome to an exit code.
pub fn run(cli: Cli) -> ExitCode {
    let Cli {
        directory,
        mut command,
        ..
    } = cli;
    let dir = directory.unwrap_or_else(|| std::path::PathBuf::from("."));
    if !dir.is_dir() {
        let error = anyhow::anyhow!("cannot change to {}: not a folder", dir.display());
        error::report(&error, io::stderr());
        return ExitCode::FAILURE;
    }
    commands::anchor(&mut command, &dir);
    let dir = dir.as_path();
    let result = match command {
        Command::Credential(args) => return credential(args),
        Command::Snapshot(args) => commands::snapshot::snapshot(args, dir),
        Command::Snapshots(args) => commands::snapshot::snapshots(args, dir),
        Command::Forget(args) => commands::forget::forget(args, dir),
        Command::Restore(args) => commands::snapshot::restore(args, dir),
        Command::Prune(args) => commands::prune::prune(args, dir),
        Command::Ls(args) => commands::browse::ls(args, dir),
        Command::Diff(args) => commands::browse::diff(args, dir),
        Command::Check(args) => commands::check::check(args, dir),
        Command::Hooks(command) => commands::hooks::hooks(command, dir),
        Command::Schedule(args) => commands::hooks::schedule(args, dir),
        Command::Hook(command) => commands::hooks::hook(command, dir),
        Command::GithubKey(args) => commands::github::github_key(args),
        Command::Setup(args) => commands::setup::setup(args),
        Command::Doctor(args) => commands::doctor::doctor(args),
        Command::Lifecycle(command) => commands::lifecycle::lifecycle(command),
        Command::Completions { shell } => commands::setup::completions(shell),
    };
    if let Err(error) = &result {
        error::report(error, io::stderr());
    }
    error::exit_code(&result)
}

/// `gitkit credential`: one exchange with git, answered by CodeCommit.
fn credential(args: CredentialArgs) -> ExitCode {
    let operation = match args.operation {
        CredentialOperation::Get => credential::Operation::Get,
        CredentialOperation::Store => credential::Operation::Store,
        CredentialOperation::Erase => credential::Operation::Erase,
    };
    let options = codecommit::Options {
        profile: aws::Profile(args.profile),
        now: SystemTime::now(),
        // GITKIT_TEST_CHAIN_DEADLINE_MS: a test's bound on waiting for instance metadata.
        chain_deadline: commands::test_knob(
            "GITKIT_TEST_CHAIN_DEADLINE_MS",
            std::time::Duration::from_millis,
        )
        .unwrap_or(aws::CHAIN_DEADLINE),
        settings: || {
            git::config::get_regexp(None, r"^gitkit\.codecommit\.")
                .map(codecommit::Settings::from_entries)
        },
    };
    let stdout = io::stdout();
    let result = credential::run(
        operation,
        io::stdin().lock(),
        stdout.lock(),
        |operation, context| codecommit::answer_git(operation, context, options),
    );
    error::credential_exit(result, io::stderr())
}
