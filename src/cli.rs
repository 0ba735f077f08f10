//! The command line: clap types only. The doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Git credential helper for AWS CodeCommit (git calls this).
    #[command(hide = true)]
    Credential(CredentialArgs),
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
