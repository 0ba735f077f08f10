//! An S3 store that accepts connections and never answers: every request has its timeouts, and
//! a snapshot has its deadline, so `gitkit snapshot` fails with a clear error instead of hanging.

use std::time::Duration;

use crate::support::black_hole::BlackHole;
use crate::support::s3::BUCKET;
use crate::support::{Env, describe, stderr};

/// Well under the 2 minutes the issue allows; the test kills gitkit and fails past it.
const GUARD: Duration = Duration::from_secs(100);

fn env_against(hole: &BlackHole) -> (Env, std::path::PathBuf) {
    let mut env = Env::new();
    env.set_aws_keys();
    env.set("AWS_ENDPOINT_URL", hole.url());
    env.set("GITKIT_STORE", format!("s3://{BUCKET}/never-answers"));
    let repo = env.repo_with_commit("project");
    (env, repo)
}

/// Guards the overall deadline: a snapshot against a store that never answers ends, non-zero,
/// by `GITKIT_SNAPSHOT_TIMEOUT`, saying so and how to allow more time.
#[test]
fn snapshot_against_a_store_that_never_answers_fails_at_its_deadline() {
    let hole = BlackHole::start();
    let (env, repo) = env_against(&hole);
    let output = env
        .gitkit(["-C", repo.to_str().expect("utf-8"), "snapshot"])
        .env("GITKIT_SNAPSHOT_TIMEOUT", "3s")
        .output_within(GUARD);
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(output.stdout.is_empty(), "{}", describe(&output));
    let said = stderr(&output);
    assert!(
        said.contains("did not finish within 3s"),
        "names the deadline: {said}"
    );
    assert!(
        said.contains("hint: ") && said.contains("GITKIT_SNAPSHOT_TIMEOUT"),
        "says how to allow more time: {said}"
    );
}

/// Guards the per-request timeouts: with the default deadline (far off) and no retries, the
/// first request gives up on its own, and says it could not reach the endpoint.
#[test]
fn s3_requests_time_out_on_their_own() {
    let hole = BlackHole::start();
    let (env, repo) = env_against(&hole);
    let output = env
        .gitkit(["-C", repo.to_str().expect("utf-8"), "snapshot"])
        .env("AWS_MAX_ATTEMPTS", "1")
        .output_within(GUARD);
    assert!(!output.status.success(), "{}", describe(&output));
    let said = stderr(&output);
    assert!(
        said.contains("could not reach the S3 endpoint") && said.contains("timeout"),
        "{said}"
    );
    assert!(said.contains("hint: "), "{said}");
}

#[test]
fn a_bad_snapshot_timeout_is_refused_with_the_forms_it_takes() {
    let hole = BlackHole::start();
    let (env, repo) = env_against(&hole);
    let output = env
        .gitkit(["-C", repo.to_str().expect("utf-8"), "snapshot"])
        .env("GITKIT_SNAPSHOT_TIMEOUT", "soon")
        .output_within(GUARD);
    assert!(!output.status.success(), "{}", describe(&output));
    let said = stderr(&output);
    assert!(said.contains("`soon`") && said.contains("hint: "), "{said}");
}

#[test]
fn the_deadline_can_come_from_git_config() {
    let hole = BlackHole::start();
    let (env, repo) = env_against(&hole);
    env.git(&repo, ["config", "gitkit.snapshotTimeout", "2s"])
        .success();
    let output = env
        .gitkit(["-C", repo.to_str().expect("utf-8"), "snapshot"])
        .output_within(GUARD);
    assert!(!output.status.success(), "{}", describe(&output));
    let said = stderr(&output);
    assert!(said.contains("did not finish within 2s"), "{said}");
}
