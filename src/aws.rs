//! The AWS SDK's standard credential and region chains, with instance metadata bounded so that a
//! machine without it never waits more than a few seconds.

use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::imds;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_types::region::Region;
use tracing::debug;

/// How long the whole credential chain may take, instance metadata included.
pub const CHAIN_DEADLINE: Duration = Duration::from_secs(8);

/// Where the SDK looks, in order; named in the error when it finds nothing.
pub const CREDENTIAL_SOURCES: &str = "environment (AWS_ACCESS_KEY_ID), shared config and \
     credentials files (profile, SSO, assume-role, credential_process), web identity token, \
     container credentials, EC2 instance metadata";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no AWS credentials found (tried {CREDENTIAL_SOURCES}): {detail}")]
    NoCredentials { detail: String },
    #[error("no AWS credentials found within {:.1}s (tried {CREDENTIAL_SOURCES})", .0.as_secs_f64())]
    Timeout(Duration),
}

/// Which profile to use: the command line's, else the SDK's own (`AWS_PROFILE`, `default`).
#[derive(Debug, Clone, Default)]
pub struct Profile(pub Option<String>);

/// Instance metadata with short timeouts and one retry: IMDSv2 answers in milliseconds where it
/// exists, and elsewhere the default retries would hold git for many seconds.
pub fn imds_client() -> imds::Client {
    imds::Client::builder()
        .connect_timeout(Duration::from_millis(1000))
        .read_timeout(Duration::from_millis(1000))
        .max_attempts(2)
        .build()
}

/// The region from the environment, the profile, then instance metadata.
pub async fn default_region(profile: &Profile) -> Option<Region> {
    let mut profile_region = ProfileFileRegionProvider::builder();
    if let Some(name) = &profile.0 {
        profile_region = profile_region.profile_name(name);
    }
    RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(profile_region.build())
        .or_else(
            ImdsRegionProvider::builder()
                .imds_client(imds_client())
                .build(),
        )
        .region()
        .await
}

/// The standard credential chain; `region` is where STS, SSO and friends are called.
pub async fn credentials_provider(profile: &Profile, region: Region) -> DefaultCredentialsChain {
    let mut chain = DefaultCredentialsChain::builder()
        .region(region)
        .imds_client(imds_client());
    if let Some(name) = &profile.0 {
        chain = chain.profile_name(name);
    }
    chain.build().await
}

/// Credentials from the standard chain, within `deadline` ([`CHAIN_DEADLINE`] but in tests).
///
/// The chain's first link, the environment, is tried before the rest of the chain is built:
/// the same order, without the cost of setting up profile, SSO, container and instance
/// metadata providers (and their HTTP clients) when the answer is already at hand.
pub async fn credentials(
    profile: &Profile,
    region: Region,
    deadline: Duration,
) -> Result<Credentials, Error> {
    if let Ok(credentials) = EnvironmentVariableCredentialsProvider::new()
        .provide_credentials()
        .await
    {
        return Ok(credentials);
    }
    let chain = credentials_provider(profile, region).await;
    match tokio::time::timeout(deadline, chain.provide_credentials()).await {
        Ok(Ok(credentials)) => Ok(credentials),
        Ok(Err(error)) => {
            debug!(error = %DisplayErrorContext(&error), "credential chain failed");
            let detail = match error {
                CredentialsError::CredentialsNotLoaded(_) => "none of them had any".to_string(),
                other => one_line(&DisplayErrorContext(&other).to_string()),
            };
            Err(Error::NoCredentials { detail })
        }
        Err(_) => Err(Error::Timeout(deadline)),
    }
}

/// An SDK error report (`DisplayErrorContext`), which runs over several lines and ends in a
/// Debug dump of the error, folded onto one line with the Debug tail left off and blank lines
/// dropped: for the credential chain's report and for S3's.
pub fn one_line(text: &str) -> String {
    let text = text.split(" (").next().unwrap_or(text);
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_folds_lines_and_drops_the_debug_tail() {
        assert_eq!(
            one_line("dispatch failure: io error\n\n  connection refused (Os { code: 111 })"),
            "dispatch failure: io error; connection refused"
        );
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(one_line(""), "");
    }
}
