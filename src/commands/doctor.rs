//! `gitkit doctor`.

use std::io::Write;

use crate::aws::{self, Profile};
use crate::cli::DoctorArgs;
use crate::git;
use crate::github::{self, Client};
use crate::home;
use crate::secret::Secret;
use crate::setup::doctor::{self, Check, Input, Status};
use crate::setup::state;
use crate::store;

pub fn doctor(args: DoctorArgs) -> anyhow::Result<()> {
    let layout = super::setup::layout()?;
    let (_, source) = home::gitkit_home_and_source();
    let saved = state::load(&layout.gitkit_home)?;
    let host = gethostname::gethostname().to_string_lossy().into_owned();

    // The store as the commands would choose it outside a repository.
    let config_store = git::run(&layout.home, ["config", "--get", "gitkit.store"])
        .ok()
        .map(|out| String::from_utf8_lossy(&out).trim().to_string())
        .filter(|s| !s.is_empty());
    let env_store = std::env::var("GITKIT_STORE").ok();
    let location = store::choose(
        None,
        env_store.as_deref(),
        config_store
            .as_deref()
            .or(saved.as_ref().and_then(|s| s.store.as_deref())),
        &layout.gitkit_home,
    );

    let (credentials, region, store_check) = super::runtime().block_on(async {
        let region = aws::default_region(&Profile(None)).await;
        let signing_region = region
            .clone()
            .unwrap_or_else(|| aws_types::region::Region::new("us-east-1"));
        let credentials =
            match aws::credentials(&Profile(None), signing_region, aws::CHAIN_DEADLINE).await {
                Ok(found) => Ok(provider_name(&found)),
                Err(e) => Err((
                    e.to_string(),
                    "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or give the \
                 instance a role"
                        .to_string(),
                )),
            };
        let store_check = match &location {
            Ok(location) => {
                let store = super::workspace::open(location, None);
                doctor::store_check(&location.to_string(), &store, &host).await
            }
            Err(e) => Check {
                check: "store".into(),
                status: Status::Fail,
                message: e.to_string(),
                hint: Some("gitkit setup --store s3://BUCKET/PREFIX".into()),
            },
        };
        (credentials, region.map(|r| r.to_string()), store_check)
    });

    let github_registered = github_token().map(|token| {
        let public =
            std::fs::read_to_string(github::ssh_dir(&layout.gitkit_home).join("id_ed25519.pub"))
                .map_err(|e| e.to_string())?;
        let material = github::key::material(&public);
        let api =
            std::env::var("GITKIT_GITHUB_API").unwrap_or_else(|_| github::GITHUB_API.to_string());
        let keys = Client::new(&api, token)
            .list_keys()
            .map_err(|e| crate::text::chain_text(&e))?;
        Ok(keys
            .iter()
            .any(|k| github::key::material(&k.key) == material))
    });

    let input = Input {
        layout: &layout,
        home_source: source,
        saved: saved.as_ref(),
        credentials,
        region,
        github_registered,
    };
    let mut checks = doctor::local_checks(&input);
    // The store after the AWS checks it depends on.
    let at = checks
        .iter()
        .position(|c| c.check == "aws region")
        .map_or(checks.len(), |i| i + 1);
    checks.insert(at, store_check);

    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &checks)?;
        writeln!(stdout)?;
    } else {
        for check in &checks {
            let status = match check.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            match &check.hint {
                Some(hint) if check.status != Status::Ok => writeln!(
                    stdout,
                    "{status} {}: {} (fix: {hint})",
                    check.check, check.message
                )?,
                _ => writeln!(stdout, "{status} {}: {}", check.check, check.message)?,
            }
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    anyhow::ensure!(failed == 0, "{failed} checks failed");
    Ok(())
}

fn github_token() -> Option<Secret<String>> {
    ["GITHUB_TOKEN", "GH_TOKEN"]
        .iter()
        .find_map(|name| std::env::var(name).ok())
        .filter(|t| !t.is_empty())
        .map(Secret::new)
}

/// The provider that found the credentials. The SDK exposes the name only through `Debug`
/// (which redacts the secret); only that one field is taken from it.
fn provider_name(credentials: &aws_credential_types::Credentials) -> String {
    let debug = format!("{credentials:?}");
    debug
        .split_once("provider_name: \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or_else(
            || "source unknown".to_string(),
            |(name, _)| name.to_string(),
        )
}
