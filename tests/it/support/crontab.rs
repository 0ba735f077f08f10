//! The real `crontab` program with a spool of the test's own, through `GITKIT_CRONTAB`: tests
//! never touch the machine's crontab, and can run at once, in this process or another.
//!
//! The wrapper runs crontab in a mount namespace of its own (`unshare -m`) with the test's
//! folder bound over the spool, so crontab reads, checks and writes exactly as it does for the
//! user, just elsewhere. That needs root, as the tests' machines run them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::Env;

/// Where Debian's cron keeps crontabs.
const SPOOL: &str = "/var/spool/cron/crontabs";

pub struct PrivateCrontab {
    wrapper: PathBuf,
}

impl PrivateCrontab {
    /// Sets `env` up so that gitkit's crontab is a private one.
    pub fn install(env: &mut Env) -> Self {
        let real =
            which("crontab").expect("crontab is needed for this test (apt-get install cron)");
        let dir = env.dir("crontab");
        let spool = dir.join("spool");
        std::fs::create_dir_all(&spool).expect("mkdir spool");
        std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o1730)).expect("chmod");
        let wrapper = dir.join("crontab");
        super::write_executable(
            &wrapper,
            &format!(
                "#!/bin/sh\nexec unshare -m sh -c 'mount --bind \"$0\" {SPOOL} && exec {} \"$@\"' {} \"$@\"\n",
                shell_quote(&real.to_string_lossy()),
                shell_quote(&spool.to_string_lossy()),
            ),
        );
        env.set("GITKIT_CRONTAB", wrapper.to_str().expect("utf-8 temp path"));
        let crontab = Self { wrapper };
        crontab.run_allowing_none(
            "-l",
            "a private crontab needs root and mount namespaces (unshare -m)",
        );
        crontab
    }

    /// Runs `crontab ARG`, which must succeed or find no crontab; `context` is said if not.
    #[track_caller]
    fn run_allowing_none(&self, arg: &str, context: &str) -> Output {
        let output = Command::new(&self.wrapper)
            .arg(arg)
            .output()
            .unwrap_or_else(|e| panic!("crontab {arg}: {e}"));
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() || said.contains("no crontab"),
            "{context}: {said}"
        );
        output
    }

    /// The private crontab's text ("" when there is none).
    pub fn current(&self) -> String {
        let output = self.run_allowing_none("-l", "crontab -l");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// gitkit's lines.
    pub fn ours(&self) -> Vec<String> {
        self.current()
            .lines()
            .filter(|l| l.contains("# gitkit schedule:"))
            .map(str::to_string)
            .collect()
    }

    /// The command of a crontab line: the five time fields and the trailing marker left out.
    pub fn command_of(line: &str) -> String {
        let command = line
            .splitn(6, ' ')
            .nth(5)
            .expect("a cron line has a command");
        command
            .split(" # gitkit schedule:")
            .next()
            .expect("split")
            .to_string()
    }

    /// Removes the crontab, as a restart of a notebook instance does.
    pub fn remove(&self) {
        self.run_allowing_none("-r", "crontab -r");
    }

    pub fn set(&self, text: &str) {
        let mut child = Command::new(&self.wrapper)
            .arg("-")
            .stdin(Stdio::piped())
            .spawn()
            .expect("crontab -");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
            .expect("write");
        assert!(child.wait().expect("crontab").success());
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
