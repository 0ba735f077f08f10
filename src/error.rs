//! What the user sees when a command fails, and the exit codes, in one place.

use std::io::{self, Write};
use std::process::ExitCode;

use crate::text::chain_text;

/// An error with the command that fixes it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Hinted {
    #[source]
    error: anyhow::Error,
    hint: String,
}

impl Hinted {
    pub fn new(error: impl Into<anyhow::Error>, hint: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            hint: hint.into(),
        }
    }
}

/// The exit codes: 0 success, 1 failure, 2 usage (clap's).
pub fn exit_code(result: &anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(error) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// `error: <what failed>: <cause>: <cause>`, then `hint: <how to fix>` where there is one.
pub fn report(error: &anyhow::Error, mut stderr: impl Write) {
    if is_broken_pipe(error) {
        return;
    }
    // A message may quote what a store or a repository holds: show it, never obey it.
    let message = chain_text(error.as_ref());
    let _ = writeln!(stderr, "error: {}", crate::text::printable(&message));
    if let Some(hint) = hint(error.as_ref()) {
        let _ = writeln!(stderr, "hint: {hint}");
    }
}

/// How the user fixes what failed: the first hint found along the chain, from a [`Hinted`]
/// the command edge added, or from the error types that know their own fix. Every hint the
/// user sees is found here.
pub fn hint(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use crate::snapshot::prune::PruneError;
    use crate::snapshot::{FindError, NoMatch, RestoreError, SnapshotError};
    use crate::store::StoreError;
    // `#[error(transparent)]` wrappers pass their source's source on: look inside them.
    fn store_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a StoreError> {
        cause.downcast_ref::<StoreError>().or(
            match (
                cause.downcast_ref::<SnapshotError>(),
                cause.downcast_ref::<FindError>(),
                cause.downcast_ref::<RestoreError>(),
            ) {
                (Some(SnapshotError::Store(e)), _, _)
                | (_, Some(FindError::Store(e)), _)
                | (_, _, Some(RestoreError::Store(e))) => Some(e),
                _ => match cause.downcast_ref::<PruneError>() {
                    Some(PruneError::Store(e)) => Some(e),
                    _ => None,
                },
            },
        )
    }
    let mut next = Some(error);
    while let Some(cause) = next {
        let found = if let Some(hinted) = cause.downcast_ref::<Hinted>() {
            Some(hinted.hint.clone())
        } else if let Some(e) = store_error(cause) {
            e.hint().map(str::to_string)
        } else if let Some(e) = cause.downcast_ref::<crate::hooks::HookError>() {
            e.hint().map(str::to_string)
        } else if let Some(e) = cause.downcast_ref::<PruneError>() {
            e.hint().map(str::to_string)
        } else if let Some(FindError::NoSuchSnapshot { .. }) = cause.downcast_ref::<FindError>() {
            Some("list the snapshots with `gitkit snapshots`".to_string())
        } else if cause.downcast_ref::<NoMatch>().is_some()
            || matches!(cause.downcast_ref(), Some(RestoreError::Part(_)))
        {
            Some("list what the snapshot holds with `gitkit ls ID`".to_string())
        } else if let Some(damaged) = cause.downcast_ref::<crate::snapshot::Damaged>() {
            // With every snapshot touched there is nothing better to restore: no hint.
            (damaged.snapshots < damaged.checked).then(|| {
                "the snapshots not named above are not touched by what was found; restore one \
                 of those"
                    .to_string()
            })
        } else if let Some(RestoreError::NotEmpty(_)) = cause.downcast_ref::<RestoreError>() {
            Some(
                "restore into an empty or new folder, or add --force to replace the files the \
                 snapshot holds"
                    .to_string(),
            )
        } else {
            None
        };
        if found.is_some() {
            return found;
        }
        next = cause.source();
    }
    None
}

/// The credential helper's outcome as git needs it: one stderr line (with the hint) on an
/// error, exit 1 when the exchange itself failed (a bad request, a reply that cannot be
/// written), and exit 0 whenever the user must act, so that git goes on to its next helper.
pub fn credential_exit(
    result: Result<(), crate::credential::Error<crate::codecommit::Error>>,
    mut stderr: impl Write,
) -> ExitCode {
    let Err(error) = result else {
        return ExitCode::SUCCESS;
    };
    let mut line = format!("gitkit: {}", chain_text(&error));
    if let crate::credential::Error::Answer(answer) = &error
        && let Some(hint) = answer.hint()
    {
        line.push_str(&format!(" (hint: {hint})"));
    }
    let _ = writeln!(stderr, "{line}");
    if error.is_bad_input() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_chain_once_and_the_hint() {
        let inner = anyhow::anyhow!("bucket `b` does not exist");
        let error = anyhow::Error::new(Hinted::new(inner, "create it")).context("snapshot failed");
        let mut out = Vec::new();
        report(&error, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "error: snapshot failed: bucket `b` does not exist\nhint: create it\n"
        );
    }
}
