//! gitkit: git on throw-away cloud machines.

pub mod aws;
pub mod cli;
pub mod codecommit;
pub mod credential;
pub mod error;
pub mod gitconfig;
pub mod logging;
pub mod secret;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::SystemTime;

use cli::{Cli, Command, CredentialArgs, CredentialOperation};

/// Runs one command line and maps the outcome to an exit code.
pub fn run(cli: Cli) -> ExitCode {
    if let Some(dir) = &cli.directory
        && let Err(error) = std::env::set_current_dir(dir)
    {
        let error =
            anyhow::Error::new(error).context(format!("cannot change to {}", dir.display()));
        error::report(&error, io::stderr());
        return ExitCode::FAILURE;
    }
    match cli.command {
        Command::Credential(args) => credential(args),
    }
}

/// The credential helper reports in one stderr line, and exits 0 whenever the user must act,
/// so that git goes on to its next helper.
fn credential(args: CredentialArgs) -> ExitCode {
    let operation = match args.operation {
        CredentialOperation::Get => credential::Operation::Get,
        CredentialOperation::Store => credential::Operation::Store,
        CredentialOperation::Erase => credential::Operation::Erase,
    };
    let options = credential::Options {
        profile: aws::Profile(args.profile),
        now: SystemTime::now(),
        settings: || {
            gitconfig::get_regexp(None, r"^gitkit\.codecommit\.")
                .map(codecommit::Settings::from_entries)
        },
    };
    let stdout = io::stdout();
    let result = credential::run(operation, io::stdin().lock(), stdout.lock(), options);
    let Err(error) = result else {
        return ExitCode::SUCCESS;
    };
    let mut line = format!("gitkit: {}", error::chain_text(&error));
    if let Some(hint) = error.hint() {
        line.push_str(&format!(" (hint: {hint})"));
    }
    let _ = writeln!(io::stderr(), "{line}");
    if error.is_bad_input() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
