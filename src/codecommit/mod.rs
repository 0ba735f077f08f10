//! AWS CodeCommit: which requests gitkit answers, and the password it answers with.

mod helper;
mod host;
mod sign;

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;

pub use helper::{Error, Options, answer_git};
pub use host::{AllowedHosts, HostPort, codecommit_region};
pub use sign::{Request, password};

use crate::credential::Context;
use crate::secret::Secret;

/// How long CodeCommit accepts a signed password.
pub const PASSWORD_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The user's CodeCommit settings from git config (`gitkit.codecommit.*`).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `allowHost`: extra host names to sign for (private DNS names).
    pub allowed: AllowedHosts,
    /// `region`: the region of the allowed hosts.
    pub region: Option<String>,
}

impl Settings {
    pub fn from_entries(entries: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut allowed = Vec::new();
        let mut region = None;
        for (key, value) in entries {
            match key.as_str() {
                "gitkit.codecommit.allowhost" => allowed.push(value),
                "gitkit.codecommit.region" => region = Some(value),
                _ => {}
            }
        }
        Self {
            allowed: AllowedHosts::new(allowed),
            region,
        }
    }
}

/// Where the signing region comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Region {
    /// Named by the CodeCommit host itself.
    Host(String),
    /// An allowed host: `gitkit.codecommit.region`, else the AWS config.
    Configured(Option<String>),
}

/// A request gitkit signs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// The host name without its port: that is what is signed.
    pub host: &'a str,
    /// git's `host` as given, with its port: for messages and config hints.
    pub host_port: &'a str,
    pub path: Option<&'a str>,
    pub region: Region,
}

/// The CodeCommit request `context` describes, or `None` when it is not ours to answer.
///
/// `settings` is asked only for hosts that are not CodeCommit endpoints, so the common case
/// does not run `git config`.
pub fn target<'a, E>(
    context: &'a Context,
    settings: impl FnOnce() -> Result<Settings, E>,
) -> Result<Option<Target<'a>>, E> {
    let (Some(protocol), Some(host_port)) = (&context.protocol, &context.host) else {
        return Ok(None);
    };
    let Some(host) = HostPort::parse(host_port) else {
        return Ok(None);
    };
    let region = match codecommit_region(host.name) {
        Some(region) if protocol == "https" => Region::Host(region),
        Some(_) => return Ok(None),
        None => {
            let settings = settings()?;
            if !allowed(&settings.allowed, protocol, &host) {
                return Ok(None);
            }
            Region::Configured(settings.region)
        }
    };
    Ok(Some(Target {
        host: host.name,
        host_port,
        path: context.path.as_deref(),
        region,
    }))
}

/// An allowed host is signed for over `https`, and over plain `http` only where the entry says
/// so explicitly (`http://HOST:PORT`, for a local proxy or a test rig).
fn allowed(allowed: &AllowedHosts, protocol: &str, host: &HostPort<'_>) -> bool {
    match protocol {
        "https" => allowed.allows(host),
        "http" => allowed.allows_plain_http(host),
        _ => false,
    }
}

/// The answer git gets: `username`, `password` (byte-identical to awscli's) and
/// `password_expiry_utc`, the earlier of the signature's and the credentials' expiry.
pub fn answer(credentials: &Credentials, request: &Request<'_>) -> Context {
    let username = match credentials.session_token() {
        Some(token) => format!("{}%{token}", credentials.access_key_id()),
        None => credentials.access_key_id().to_string(),
    };
    let secret = Secret::new(credentials.secret_access_key().to_string());
    let mut expiry = request.time + PASSWORD_LIFETIME;
    if let Some(credentials_expiry) = credentials.expiry() {
        expiry = expiry.min(credentials_expiry);
    }
    Context {
        username: Some(Secret::new(username)),
        password: Some(password(&secret, request)),
        password_expiry_utc: Some(
            expiry
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        ),
        ..Context::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(input: &str) -> Context {
        Context::read_from(input.as_bytes()).expect("valid input")
    }

    fn no_settings() -> Result<Settings, ()> {
        panic!("settings must not be read for a CodeCommit host")
    }

    fn settings(entries: &[(&str, &str)]) -> impl FnOnce() -> Result<Settings, ()> {
        let entries: Vec<_> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move || Ok(Settings::from_entries(entries))
    }

    #[test]
    fn codecommit_hosts_are_ours_over_https_only() {
        let request = context(
            "protocol=https\nhost=git-codecommit.eu-west-1.amazonaws.com:443\npath=v1/repos/r\n",
        );
        let ours = target(&request, no_settings)
            .expect("no error")
            .expect("ours");
        assert_eq!(ours.host, "git-codecommit.eu-west-1.amazonaws.com");
        assert_eq!(ours.region, Region::Host("eu-west-1".into()));
        assert_eq!(ours.path, Some("v1/repos/r"));

        let plain = context("protocol=http\nhost=git-codecommit.eu-west-1.amazonaws.com\n");
        assert_eq!(target(&plain, no_settings), Ok(None));
    }

    #[test]
    fn other_hosts_only_when_allowed() {
        let request = context("protocol=https\nhost=git.corp.internal\npath=v1/repos/r\n");
        assert_eq!(target(&request, settings(&[])), Ok(None));
        let allowed = target(
            &request,
            settings(&[
                ("gitkit.codecommit.allowhost", "git.corp.internal"),
                ("gitkit.codecommit.region", "us-west-2"),
            ]),
        )
        .expect("no error")
        .expect("allowed");
        assert_eq!(allowed.region, Region::Configured(Some("us-west-2".into())));
    }

    #[test]
    fn plain_http_only_for_entries_that_say_so() {
        let request = context("protocol=http\nhost=127.0.0.1:8080\npath=r.git\n");
        let https_entry = [("gitkit.codecommit.allowhost", "127.0.0.1:8080")];
        assert_eq!(target(&request, settings(&https_entry)), Ok(None));
        let http_entry = [("gitkit.codecommit.allowhost", "http://127.0.0.1:8080")];
        assert!(
            target(&request, settings(&http_entry))
                .expect("no error")
                .is_some()
        );
    }

    #[test]
    fn answer_expires_with_the_signature_or_the_credentials() {
        let time = UNIX_EPOCH + Duration::from_secs(1_795_858_200);
        let request = Request {
            host: "git-codecommit.us-east-1.amazonaws.com",
            path: "v1/repos/demo",
            region: "us-east-1",
            time,
        };
        let long_lived = Credentials::new("AKID", "SECRET", None, None, "test");
        let answer_long = answer(&long_lived, &request);
        let username = |answer: &Context| answer.username.as_ref().map(|u| u.expose().clone());
        assert_eq!(username(&answer_long).as_deref(), Some("AKID"));
        assert_eq!(answer_long.password_expiry_utc, Some(1_795_858_200 + 900));

        let expiry = time + Duration::from_secs(60);
        let session =
            Credentials::new("ASIA", "SECRET", Some("TOKEN".into()), Some(expiry), "test");
        let answer_session = answer(&session, &request);
        assert_eq!(username(&answer_session).as_deref(), Some("ASIA%TOKEN"));
        let debug = format!("{answer_session:?}");
        assert!(
            !debug.contains("TOKEN"),
            "the session token is kept out: {debug}"
        );
        assert_eq!(answer_session.password_expiry_utc, Some(1_795_858_200 + 60));
    }
}
