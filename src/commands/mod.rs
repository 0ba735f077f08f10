//! The command edge: turns parsed arguments into calls on the core, and results into output.

pub mod doctor;
pub mod github;
pub mod hooks;
pub mod lifecycle;
pub mod setup;
pub mod snapshot;

use std::path::PathBuf;

use crate::aws::Profile;
use crate::store::{AnyStore, Location, S3Options, Timeouts};

/// The crontab program: `crontab`, or `GITKIT_CRONTAB` (tests give one with a spool of its own).
pub fn crontab_program() -> PathBuf {
    std::env::var_os("GITKIT_CRONTAB")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("crontab"), PathBuf::from)
}

/// A store as the SDK's environment says to reach it: path-style addressing when an endpoint
/// URL is set (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`), as S3-compatible servers need.
pub fn open_store(location: &Location, profile: Option<String>, timeouts: Timeouts) -> AnyStore {
    let endpoint_set = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    let options = S3Options {
        profile: Profile(profile),
        path_style: endpoint_set,
        timeouts,
    };
    AnyStore::open(location, &options)
}

/// A runtime for commands that do network I/O; parsing and local work happen before it starts.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime builds")
}
