//! install.sh: a binary that Amazon Linux 2 (glibc 2.26) can run, installed into GITKIT_HOME,
//! linked from ~/.local/bin, set up; and running it twice is safe.
//!
//! This builds a release binary with cargo-zigbuild: minutes when cold, seconds after.

use std::path::{Path, PathBuf};

use crate::support::crontab::PrivateCrontab;
use crate::support::{Env, assert_stderr_contains, describe, stderr, stdout};

/// The newest `GLIBC_x.y` symbol version a binary needs.
fn newest_glibc(objdump: &str) -> Option<(u32, u32)> {
    objdump
        .split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let version: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut parts = version.split('.');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .max()
}

#[test]
fn install_sh_installs_a_binary_amazon_linux_2_can_run_and_is_safe_twice() {
    let mut env = Env::new();
    env.remove("GITKIT_HOME");
    std::fs::create_dir_all(env.home().join("SageMaker")).expect("mkdir");
    let _crontab = PrivateCrontab::install(&mut env);
    // The toolchains live in the real home; the test's HOME is a temporary one.
    let real_home = PathBuf::from(std::env::var("HOME").expect("HOME"));
    for (var, default) in [
        ("RUSTUP_HOME", real_home.join(".rustup")),
        ("CARGO_HOME", real_home.join(".cargo")),
        ("XDG_CACHE_HOME", real_home.join(".cache")),
    ] {
        let value = std::env::var_os(var).map_or(default, PathBuf::from);
        env.set(var, value.to_str().expect("utf-8"));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh");
    let lint = env.command("shellcheck").args([&script]).output();
    assert!(lint.status.success(), "{}", describe(&lint));

    let first = env.command("bash").args([&script]).success();
    let said = stderr(&first);
    assert!(!said.contains("will NOT run"), "zig was not used:\n{said}");
    let bin = env.home().join("SageMaker/.gitkit/bin/gitkit");
    let link = env.home().join(".local/bin/gitkit");
    assert_eq!(std::fs::read_link(&link).expect("a link"), bin);
    env.command(&link).args(["--version"]).success();

    let objdump = env
        .command("objdump")
        .args(["-T".as_ref(), bin.as_os_str()])
        .success();
    let newest = newest_glibc(&stdout(&objdump)).expect("glibc symbols");
    assert!(
        newest <= (2, 26),
        "the installed binary needs GLIBC_{}.{}: Amazon Linux 2 has 2.26",
        newest.0,
        newest.1
    );

    let second = env.command("bash").args([&script]).success();
    assert_stderr_contains(&second, "nothing changed");
}

#[test]
fn reads_the_newest_glibc_version() {
    let text = "0000 DF *UND* 0 (GLIBC_2.2.5) memcpy\n0000 DF *UND* 0 (GLIBC_2.17) clock_gettime\n0000 DF *UND* 0 GLIBC_2.9 pipe2\n";
    assert_eq!(newest_glibc(text), Some((2, 17)));
}
