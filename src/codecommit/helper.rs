//! `gitkit credential`'s answer: a signed password for a CodeCommit request, nothing for any
//! other host. The AWS chains run here, on a current-thread runtime of their own.

use std::time::SystemTime;

use tracing::debug;

use super::{Region, Settings};
use crate::aws::{self, Profile};
use crate::credential::{Context, Operation};
use crate::git::config as gitconfig;

#[derive(Debug, thiserror::Error)]
pub enum Error {
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
            Error::Config(_) => None,
        }
    }
}

/// What an answer needs from outside: the AWS profile, the clock, and the user's settings.
pub struct Options<S> {
    pub profile: Profile,
    pub now: SystemTime,
    /// How long the AWS credential chain may take ([`aws::CHAIN_DEADLINE`] but in tests).
    pub chain_deadline: std::time::Duration,
    /// Reads `gitkit.codecommit.*`; called only for hosts that are not CodeCommit endpoints.
    pub settings: S,
}

/// The answer to `operation` on `context`: a signed password for a CodeCommit `get`, `None`
/// for any other host, and for `store` and `erase` (nothing is stored: every password is
/// computed afresh).
pub fn answer_git<S>(
    operation: Operation,
    context: Context,
    options: Options<S>,
) -> Result<Option<Context>, Error>
where
    S: FnOnce() -> Result<Settings, gitconfig::Error>,
{
    if operation != Operation::Get {
        return Ok(None);
    }
    let Some(target) = super::target(&context, options.settings)? else {
        debug!("not a CodeCommit host; staying silent");
        return Ok(None);
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
            options.chain_deadline,
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
    let request = super::Request {
        host: target.host,
        path,
        region: &region,
        time: options.now,
    };
    Ok(Some(super::answer(&credentials, &request)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_settings() -> Result<Settings, gitconfig::Error> {
        panic!("settings must not be read")
    }

    #[test]
    fn store_and_erase_are_not_answered_and_read_nothing() {
        let context = Context::read_from(
            "protocol=https\nhost=git-codecommit.us-east-1.amazonaws.com\npath=v1/repos/r\n"
                .as_bytes(),
        )
        .expect("valid input");
        for operation in [Operation::Store, Operation::Erase] {
            let options = Options {
                profile: Profile::default(),
                now: SystemTime::now(),
                chain_deadline: aws::CHAIN_DEADLINE,
                settings: no_settings,
            };
            let answer = answer_git(operation, context.clone(), options).expect("no error");
            assert!(answer.is_none(), "{operation:?}");
        }
    }
}
