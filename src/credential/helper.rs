//! `gitkit credential get|store|erase`: answers git for CodeCommit, stays silent otherwise.

use std::io::{BufRead, Write};
use std::time::SystemTime;

use tracing::debug;

use super::{Context, ParseError};
use crate::aws::{self, Profile};
use crate::codecommit::{self, Region, Settings};
use crate::git::config as gitconfig;

/// The operation git asks of a helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Get,
    Store,
    Erase,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("cannot sign for {host}: git did not send the repository path")]
    MissingPath { host: String },
    #[error("no AWS region for {host}")]
    NoRegion { host: String },
    #[error("not signing for {host}: the host name is not in lower case")]
    UpperCaseHost { host: String },
    #[error(transparent)]
    Credentials(#[from] aws::Error),
    #[error("could not read gitkit.codecommit.* from git config")]
    Config(#[from] gitconfig::Error),
    #[error("could not write the answer to git")]
    Write(#[source] std::io::Error),
}

impl Error {
    /// How the user fixes it, naming the exact command.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::MissingPath { host } => Some(format!(
                "run `git config --global credential.https://{host}.useHttpPath true`"
            )),
            Error::UpperCaseHost { host } => Some(format!(
                "write the host in lower case in the remote URL, as in https://{}/v1/repos/NAME \
                 (`git remote set-url`)",
                host.to_ascii_lowercase()
            )),
            Error::NoRegion { .. } => Some(
                "run `git config --global gitkit.codecommit.region REGION`, or set AWS_REGION"
                    .to_string(),
            ),
            Error::Credentials(_) => Some(
                "set AWS_PROFILE (or pass --profile) to a configured profile, run `aws sso login` \
                 for an SSO profile, or give the machine an IAM role with CodeCommit access"
                    .to_string(),
            ),
            Error::Parse(_) | Error::Config(_) | Error::Write(_) => None,
        }
    }

    /// Whether git's request itself was bad, rather than something the user must set up.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::Parse(_) | Error::Write(_))
    }
}

/// What a helper call needs from outside: the AWS profile, the clock, and the user's settings.
pub struct Options<S> {
    pub profile: Profile,
    pub now: SystemTime,
    /// Reads `gitkit.codecommit.*`; called only for hosts that are not CodeCommit endpoints.
    pub settings: S,
}

/// Runs one helper call: git's request on `input`, the answer (if any) on `output`.
pub fn run<S>(
    operation: Operation,
    input: impl BufRead,
    output: impl Write,
    options: Options<S>,
) -> Result<(), Error>
where
    S: FnOnce() -> Result<Settings, gitconfig::Error>,
{
    let context = match operation {
        Operation::Get => Context::read_from(input)?,
        // Nothing is stored: every password is computed afresh.
        Operation::Store | Operation::Erase => {
            let _ = Context::read_from(input);
            return Ok(());
        }
    };
    let Some(target) = codecommit::target(&context, options.settings)? else {
        debug!("not a CodeCommit host; staying silent");
        return Ok(());
    };
    // SigV4 signs a canonical (lower-case) host name while git sends the name as written, and
    // awscli answers nothing for such a host: refuse rather than sign a name that may not
    // verify.
    if target.host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Error::UpperCaseHost {
            host: target.host.to_string(),
        });
    }
    let Some(path) = target.path else {
        return Err(Error::MissingPath {
            host: target.host_port.to_string(),
        });
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let (region, credentials) = runtime.block_on(async {
        let region = match target.region {
            Region::Host(region) | Region::Configured(Some(region)) => region,
            Region::Configured(None) => aws::default_region(&options.profile)
                .await
                .map(|region| region.to_string())
                .ok_or_else(|| Error::NoRegion {
                    host: target.host_port.to_string(),
                })?,
        };
        let credentials = aws::credentials(
            &options.profile,
            aws_types::region::Region::new(region.clone()),
        )
        .await?;
        Ok::<_, Error>((region, credentials))
    })?;
    debug!(
        host = target.host,
        path,
        region,
        session = credentials.session_token().is_some(),
        "signing"
    );
    let request = codecommit::Request {
        host: target.host,
        path,
        region: &region,
        time: options.now,
    };
    codecommit::answer(&credentials, &request)
        .write_to(output)
        .map_err(Error::Write)
}
