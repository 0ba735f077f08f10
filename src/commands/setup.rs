//! `gitkit setup` and `gitkit completions`.

use std::io::Write;

use anyhow::Context as _;
use bytes::Bytes;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionShell, GithubKeyArgs, SetupArgs};
use crate::error::Hinted;
use crate::git;
use crate::github::GITHUB_API;
use crate::home;
use crate::setup::{self, Choices, Layout, Report, binary, undo};
use crate::store::{self, Location, Store};

pub fn setup(args: SetupArgs) -> anyhow::Result<()> {
    let layout = layout()?;
    let mut stderr = std::io::stderr().lock();
    if args.undo {
        let report = undo::undo(&layout, args.dry_run).context("setup --undo failed")?;
        report.write_to(&mut stderr)?;
        if !report.any_change() {
            writeln!(stderr, "nothing to undo: setup added nothing here")?;
        }
        return Ok(());
    }
    if let Some(store) = &args.store {
        Location::parse(store)
            .map_err(|e| Hinted::new(e, "use s3://BUCKET/PREFIX, file:///PATH or a folder"))?;
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let completion = completion_text(CompletionShell::Bash);
    let options = setup::Options {
        choices: Choices {
            store: args.store.clone(),
            every: args.every.clone(),
            workspace_root: args.workspace_root.clone(),
        },
        dry_run: args.dry_run,
        bash_completion: &completion,
        env: &env,
    };
    let done = setup::setup(&layout, &options).map_err(|e| match e {
        e @ setup::SetupError::BadInterval(_) => Hinted::new(
            e,
            "use minutes that divide an hour (15m, 30m), hours that divide a day (1h, 6h), or 1d",
        )
        .into(),
        e @ setup::SetupError::NoWorkspaceRoot(_) => {
            Hinted::new(e, "give an existing folder to --workspace-root").into()
        }
        other => anyhow::Error::new(other).context("setup failed"),
    })?;
    let mut report = done.report;

    // With an S3 store, the binary goes there too, for new instances' on-create.
    let location = done
        .saved
        .store
        .as_deref()
        .map(Location::parse)
        .transpose()?;
    if let Some(location @ Location::S3 { .. }) = &location {
        let data = std::fs::read(&layout.exe).context("cannot read the running binary")?;
        upload_binary(location, &data, args.dry_run, &mut report)?;
    }

    let mut changed_before = false;
    if !done.has_github_key {
        let token = ["GITHUB_TOKEN", "GH_TOKEN"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        if token && !args.dry_run {
            report.write_to(&mut stderr)?;
            changed_before = report.any_change();
            report.lines.clear();
            report.changed("a GitHub key, registered (below)");
            super::github::github_key(GithubKeyArgs {
                title: None,
                api_url: std::env::var("GITKIT_GITHUB_API")
                    .unwrap_or_else(|_| GITHUB_API.to_string()),
                token: std::env::var("GITHUB_TOKEN")
                    .ok()
                    .map(crate::secret::Secret::new),
                token_stdin: false,
                no_register: false,
            })
            .context("setting up GitHub over SSH failed")?;
        } else {
            report.note(
                "GitHub over SSH is not set up: run `GITHUB_TOKEN=... gitkit github-key` (or \
                 `gitkit github-key --no-register` and add the key yourself)",
            );
        }
    }

    report.write_to(&mut stderr)?;
    if !report.any_change() && !changed_before {
        writeln!(stderr, "nothing changed: everything was already set up")?;
    } else if args.dry_run {
        writeln!(stderr, "dry run: nothing was changed")?;
    }
    Ok(())
}

/// Puts the binary in the S3 store under its versioned key, unless it is there already.
pub fn upload_binary(
    location: &Location,
    data: &[u8],
    dry_run: bool,
    report: &mut Report,
) -> anyhow::Result<(String, String)> {
    let sha = binary::sha256_hex(data);
    let key = binary::store_key(env!("CARGO_PKG_VERSION"), &sha);
    let url = format!("{location}/{key}");
    let present = super::runtime().block_on(async {
        let store = super::workspace::open(location, None);
        let there = store.exists(&key).await?;
        if !there && !dry_run {
            store.put(&key, Bytes::copy_from_slice(data)).await?;
        }
        Ok::<_, store::StoreError>(there)
    });
    let present = present?;
    if !present {
        report.changed(format!("{url} (the binary, for new instances)"));
    }
    report.note(format!("binary for new instances: {url} sha256 {sha}"));
    Ok((url, sha))
}

/// Where setup works, from this process's environment.
pub fn layout() -> anyhow::Result<Layout> {
    let home = home::home_dir();
    let global_gitconfig = git::config::global_file(
        &home,
        std::env::var_os("GIT_CONFIG_GLOBAL").as_deref(),
        std::env::var_os("XDG_CONFIG_HOME").as_deref(),
    );
    Ok(Layout {
        crontab: super::crontab_program(),
        gitkit_home: home::gitkit_home(),
        exe: std::env::current_exe().context("cannot tell where gitkit is")?,
        global_gitconfig,
        home,
    })
}

pub fn completions(shell: CompletionShell) -> anyhow::Result<()> {
    std::io::stdout()
        .lock()
        .write_all(completion_text(shell).as_bytes())?;
    Ok(())
}

fn completion_text(shell: CompletionShell) -> String {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gitkit", &mut out);
    String::from_utf8(out).expect("completion scripts are UTF-8")
}
