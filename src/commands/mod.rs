//! The command edge: turns parsed arguments into calls on the core, and results into output.

pub mod doctor;
pub mod github;
pub mod hooks;
pub mod lifecycle;
pub mod setup;
pub mod snapshot;

/// A runtime for commands that do network I/O; parsing and local work happen before it starts.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime builds")
}
