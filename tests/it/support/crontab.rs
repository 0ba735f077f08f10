//! A crontab of the test's own: a `crontab` program first on PATH that keeps the table in a
//! file under the test's folder, so that tests never touch the machine's real crontab.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::Env;

pub struct FakeCrontab {
    pub file: PathBuf,
}

impl FakeCrontab {
    /// Puts the program first on `env`'s PATH.
    pub fn install(env: &mut Env) -> Self {
        let bin = env.dir("crontab-bin");
        let file = env.root_path().join("crontab.txt");
        let script = format!(
            "#!/bin/sh\n\
             f='{}'\n\
             case \"$1\" in\n\
             -l) if [ -f \"$f\" ]; then cat \"$f\"; else echo \"no crontab for $(id -un)\" >&2; exit 1; fi ;;\n\
             -r) rm -f \"$f\" ;;\n\
             -) cat > \"$f\" ;;\n\
             *) echo \"crontab: unsupported: $*\" >&2; exit 2 ;;\n\
             esac\n",
            file.display()
        );
        let program = bin.join("crontab");
        std::fs::write(&program, script).expect("write crontab");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = std::env::var("PATH").unwrap_or_default();
        env.set("PATH", format!("{}:{path}", bin.display()));
        Self { file }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap_or_default()
    }

    /// gitkit's lines.
    pub fn ours(&self) -> Vec<String> {
        self.text()
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
}
