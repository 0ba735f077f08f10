//! `gitkit github-key`.

use std::io::{Read, Write};

use anyhow::Context as _;

use crate::cli::GithubKeyArgs;
use crate::error::Hinted;
use crate::github::{self, ApiError, Client, GITHUB_API, ssh_config};
use crate::home::{gitkit_home, home_dir};
use crate::secret::Secret;

/// Where SageMaker notebook instances describe themselves.
const SAGEMAKER_METADATA: &str = "/opt/ml/metadata/resource-metadata.json";

pub fn github_key(args: GithubKeyArgs) -> anyhow::Result<()> {
    tracing::debug!(?args, "github-key");
    github::api::check_base_url(&args.api_url).map_err(|e| {
        Hinted::new(
            e,
            "use the https:// URL of the API (https://HOST/api/v3 for GitHub Enterprise Server)",
        )
    })?;
    let token = if args.no_register {
        None
    } else {
        Some(token(args.token_stdin, args.token.clone())?)
    };
    let host_name = gethostname::gethostname().to_string_lossy().into_owned();
    let dir = github::ssh_dir(&gitkit_home());
    let key = github::key::load_or_create(&dir.join("id_ed25519"), &format!("gitkit@{host_name}"))?;
    let mut stderr = std::io::stderr().lock();
    writeln!(
        stderr,
        "{} key {}",
        if key.created { "created" } else { "using" },
        key.path.display()
    )?;

    let is_github = args.api_url.trim_end_matches('/') == GITHUB_API;
    let client = token.map(|token| Client::new(&args.api_url, token));
    let (hosts, host_keys) = if is_github {
        let keys = ssh_config::GITHUB_HOST_KEYS
            .iter()
            .map(|k| k.to_string())
            .collect();
        (ssh_config::github_hosts(), keys)
    } else {
        let host = github::ssh_host_for(&args.api_url)
            .with_context(|| format!("cannot tell the SSH host of {}", args.api_url))?;
        let client = client.as_ref().context("an Enterprise server's host keys come from its /meta: drop --no-register and give a token")?;
        let keys = client.ssh_host_keys().map_err(api_error)?;
        anyhow::ensure!(
            !keys.is_empty(),
            "{}/meta lists no SSH host keys",
            args.api_url
        );
        (
            vec![ssh_config::SshHost {
                name: host,
                port: None,
            }],
            keys,
        )
    };
    let user_config = home_dir().join(".ssh/config");
    let written = ssh_config::write(&dir, &user_config, &hosts, &key.path, &host_keys)?;
    for path in &written.changed {
        writeln!(stderr, "wrote {}", path.display())?;
    }

    if let Some(client) = &client {
        let material = key.material();
        let existing = client.list_keys().map_err(api_error)?;
        match existing.iter().find(|k| key.is(&k.key)) {
            Some(found) => writeln!(
                stderr,
                "already registered on GitHub as \"{}\" (id {})",
                found.title, found.id
            )?,
            None => {
                let title = args.title.clone().unwrap_or_else(|| {
                    github::default_title(std::path::Path::new(SAGEMAKER_METADATA), &host_name)
                });
                let added = client.add_key(&title, &material).map_err(api_error)?;
                writeln!(
                    stderr,
                    "registered on GitHub as \"{}\" (id {})",
                    added.title, added.id
                )?;
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", key.public_line())?;
    writeln!(stdout, "{}", key.fingerprint())?;
    Ok(())
}

/// The token: from standard input when asked, else `--token` or GITHUB_TOKEN (clap reads
/// both), else GH_TOKEN, which clap cannot name beside GITHUB_TOKEN. An empty one is none.
fn token(from_stdin: bool, given: Option<Secret<String>>) -> anyhow::Result<Secret<String>> {
    let token = if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the token from standard input")?;
        Some(text.trim().to_string())
    } else {
        given
            .map(|token| token.expose().clone())
            .filter(|token| !token.is_empty())
            .or_else(|| std::env::var("GH_TOKEN").ok())
    };
    match token.filter(|t| !t.is_empty()) {
        Some(token) => {
            let token = Secret::new(token);
            tracing::debug!(%token, from_stdin, "token");
            Ok(token)
        }
        None => Err(Hinted::new(
            anyhow::anyhow!("no GitHub token"),
            "set GITHUB_TOKEN (a token with the write:public_key scope), pass --token-stdin, or use --no-register",
        )
        .into()),
    }
}

fn api_error(error: ApiError) -> anyhow::Error {
    let hint = match &error {
        ApiError::Unauthorized => {
            Some("create a new token at https://github.com/settings/tokens and set GITHUB_TOKEN")
        }
        ApiError::Forbidden { .. } => Some(
            "give the token that permission, or add the public key below by hand at https://github.com/settings/keys",
        ),
        ApiError::KeyInUseElsewhere => Some(
            "remove the key from the other account or repository, or delete gitkit's key to make a new one",
        ),
        _ => None,
    };
    match hint {
        Some(hint) => Hinted::new(error, hint).into(),
        None => error.into(),
    }
}
