//! Integration tests: each drives the real `gitkit` binary against real peers on 127.0.0.1.

mod browse;
mod caches;
mod check;
mod credential;
mod format;
mod github;
mod hooks;
mod install;
mod layout;
mod prune;
mod prune_race;
mod restore;
mod retention;
mod setup;
mod snapshot;
mod store;
mod support;
mod trust;
