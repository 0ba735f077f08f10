use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = gitkit::cli::Cli::parse();
    gitkit::logging::init(cli.verbose);
    gitkit::run(cli)
}
