//! An S3 store that accepts connections and never answers: every request has its timeouts, and
//! a snapshot has its deadline, so `gitkit snapshot` fails with a clear error instead of hanging.

use std::path::Path;
use std::time::Duration;

use crate::snapshot::restore_latest;
use crate::support::black_hole::BlackHole;
use crate::support::http::{Response, Server};
use crate::support::proxy::forward;
use crate::support::s3::{BUCKET, Weed};
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

/// Runs `gitkit snapshot` against a store that never answers, with `vars` set and after
/// `prepare`; asserts that it fails within GUARD with nothing on stdout, and returns its stderr.
#[track_caller]
fn snapshot_against_a_black_hole(
    vars: &[(&str, &str)],
    prepare: impl FnOnce(&Env, &Path),
) -> String {
    let hole = BlackHole::start();
    let (env, repo) = env_against(&hole);
    prepare(&env, &repo);
    let mut snapshot = env.gitkit_in(&repo, ["snapshot"]);
    for (key, value) in vars {
        snapshot = snapshot.env(key, value);
    }
    let output = snapshot.output_within(GUARD);
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(output.stdout.is_empty(), "{}", describe(&output));
    stderr(&output)
}

/// Guards the overall deadline: a snapshot against a store that never answers ends, non-zero,
/// by `GITKIT_SNAPSHOT_TIMEOUT`, saying so and how to allow more time.
#[test]
fn snapshot_against_a_store_that_never_answers_fails_at_its_deadline() {
    let said = snapshot_against_a_black_hole(&[("GITKIT_SNAPSHOT_TIMEOUT", "3s")], |_, _| {});
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
    let said = snapshot_against_a_black_hole(&[("AWS_MAX_ATTEMPTS", "1")], |_, _| {});
    assert!(
        said.contains("could not reach the S3 endpoint") && said.contains("timeout"),
        "{said}"
    );
    assert!(said.contains("hint: "), "{said}");
}

#[test]
fn a_bad_snapshot_timeout_is_refused_with_the_forms_it_takes() {
    let said = snapshot_against_a_black_hole(&[("GITKIT_SNAPSHOT_TIMEOUT", "soon")], |_, _| {});
    assert!(said.contains("`soon`") && said.contains("hint: "), "{said}");
}

#[test]
fn the_deadline_can_come_from_git_config() {
    let said = snapshot_against_a_black_hole(&[], |env, repo| {
        env.git(repo, ["config", "gitkit.snapshotTimeout", "2s"])
            .success();
    });
    assert!(said.contains("did not finish within 2s"), "{said}");
}

/// Guards downloads against a link that stops mid-object: the read fails after a stall rather
/// than waiting forever (a download that keeps coming, however slowly, is not cut).
#[test]
fn a_download_that_stalls_mid_object_fails() {
    let env = Weed::shared_env();
    let weed = Weed::shared();
    let repo = env.repo_with_commit("project");
    let data: Vec<u8> = (0..1u32 << 18)
        .flat_map(|n| n.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    std::fs::write(repo.join("weights.bin"), data).expect("write");
    let store = format!("s3://{BUCKET}/stalls");
    env.gitkit_in(&repo, ["snapshot", "--store", &store])
        .success();

    let weed_port: u16 = weed
        .endpoint()
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a port");
    let proxy = Server::start(move |request| {
        let Some(response) = forward(request, weed_port) else {
            return Response::hangup();
        };
        if request.method == "GET" && request.path().contains("/data/") && response.status == 200 {
            let half = response.body.len() / 2;
            return response.stalled_after(half);
        }
        response
    });
    let target = env.root_path().join("restored");
    let output = restore_latest(&env, &store, &target)
        .env("AWS_ENDPOINT_URL_S3", proxy.url())
        .env("AWS_MAX_ATTEMPTS", "1")
        .output_within(GUARD);
    assert!(!output.status.success(), "{}", describe(&output));
    let said = stderr(&output);
    assert!(said.contains("the download stalled"), "{said}");
}
