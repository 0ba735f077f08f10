//! A keep policy applied to the snapshots in a store: which are kept and why, and removing the
//! others. The rules themselves are in `policy.rs`; this reads and deletes.

use futures::StreamExt;
use serde::Serialize;

use super::policy::{self, Candidate, Policy};
use super::{FindError, Summary};
use crate::store::Store;

const DELETE_CONCURRENCY: usize = 16;

/// A snapshot with what the policy decided for it.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    #[serde(flatten)]
    pub summary: Summary,
    pub keep: bool,
    /// Why it is kept; empty when it goes.
    pub reasons: Vec<String>,
}

/// What `forget` did to one workspace, or would do with `dry_run`.
#[derive(Debug, Clone, Serialize)]
pub struct Forgotten {
    pub workspace: String,
    pub dry_run: bool,
    /// Newest first.
    pub snapshots: Vec<Judged>,
    /// Snapshots removed (with `dry_run`, that would be).
    pub removed: usize,
    /// Snapshot objects that could not be read, and why: never removed.
    pub damaged: Vec<String>,
}

/// Applies `policy` to each workspace's snapshots on its own, as of `now` (Unix seconds).
/// The result keeps the order of `summaries`.
pub fn judge(summaries: Vec<Summary>, policy: &Policy, now: i64) -> Vec<Judged> {
    let mut by_workspace: std::collections::BTreeMap<&str, Vec<Candidate>> = Default::default();
    for summary in &summaries {
        by_workspace
            .entry(&summary.workspace)
            .or_default()
            .push(Candidate {
                id: summary.id.clone(),
                time: crate::time::parse_rfc3339(&summary.time),
            });
    }
    let mut decided: std::collections::HashMap<(String, String), policy::Decision> =
        Default::default();
    for (workspace, candidates) in by_workspace {
        for decision in policy::apply(&candidates, policy, now) {
            decided.insert((workspace.to_string(), decision.id.clone()), decision);
        }
    }
    summaries
        .into_iter()
        .map(|summary| {
            let decision = decided
                .remove(&(summary.workspace.clone(), summary.id.clone()))
                .expect("every summary is decided");
            Judged {
                summary,
                keep: decision.keep,
                reasons: decision.reasons,
            }
        })
        .collect()
}

/// Removes the snapshots of `workspace` that `policy` does not keep, as of `now` (unless
/// `dry_run`). Only snapshot objects that were read whole are ever removed: one that cannot be
/// read (damaged, or in a newer format from another machine) stays, named in `damaged`.
pub async fn forget<S: Store>(
    store: &S,
    workspace: &str,
    policy: &Policy,
    now: i64,
    dry_run: bool,
) -> Result<Forgotten, FindError> {
    let listing = super::list(store, &[workspace.to_string()]).await?;
    let snapshots = judge(listing.summaries, policy, now);
    let doomed: Vec<&str> = snapshots
        .iter()
        .filter(|s| !s.keep)
        .map(|s| s.summary.id.as_str())
        .collect();
    let removed = doomed.len();
    if !dry_run {
        let results: Vec<Result<(), FindError>> = futures::stream::iter(doomed)
            .map(|id| super::forget(store, workspace, id))
            .buffer_unordered(DELETE_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>()?;
    }
    Ok(Forgotten {
        workspace: workspace.to_string(),
        dry_run,
        snapshots,
        removed,
        damaged: listing.damaged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(workspace: &str, id: &str, time: &str) -> Summary {
        Summary {
            id: id.into(),
            workspace: workspace.into(),
            time: time.into(),
            host: "h".into(),
            commit: None,
            branch: None,
            files: 0,
            bytes: 0,
        }
    }

    #[test]
    fn each_workspace_is_judged_on_its_own_and_the_order_is_kept() {
        let listed = vec![
            summary("b", "3", "2026-11-28T12:00:00Z"),
            summary("a", "2", "2026-11-28T11:00:00Z"),
            summary("b", "1", "2026-11-28T10:00:00Z"),
            summary("a", "0", "not a time"),
        ];
        let policy = Policy {
            last: 1,
            ..Policy::default()
        };
        let judged = judge(listed, &policy, 1_795_867_200);
        let shown: Vec<(&str, bool)> = judged
            .iter()
            .map(|j| (j.summary.id.as_str(), j.keep))
            .collect();
        assert_eq!(shown, [("3", true), ("2", true), ("1", false), ("0", true)]);
        assert_eq!(judged[3].reasons, ["time unreadable"]);
    }
}
